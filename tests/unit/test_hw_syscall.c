/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the pages behind hw mode's syscall entry on PVM hosts
 * (vmm/hw_syscall_region.c): where they go, and what a walk through a guest
 * root holding the slot entry finds (shadow/walk.h, as the CPU would):
 * the entry page user-executable and read-only, the MMIO page after it
 * user-writable (and NX in the chain for EFER.NXE = 1), the entry's one
 * instruction a store there (capstone), and the store root mapping every
 * gpa below the region's top one to one, where the store stub runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/walk.h"
#include "shadow/x86.h"
#include "vmm/hw_syscall_region.h"

#define ROOT_GPA 0x1000ull

struct env {
	u64 region_gpa;
	u8 *region;
	u64 region_bytes;
	u8 rom[HW_SYSCALL_ROM_PAGES * PAGE_SIZE]; /* the visible pages, at HW_SYSCALL_ROM_GPA */
	u64 root[512];				  /* a guest PML4 at ROOT_GPA */
	struct walk_mem mem;
	struct walk_ctl ctl;
};

static void *env_gpa_to_hva(void *opaque, gpa_t where, size_t len)
{
	struct env *e = opaque;

	if (where.v >= ROOT_GPA && where.v + len <= ROOT_GPA + PAGE_SIZE)
		return (u8 *)e->root + (where.v - ROOT_GPA);
	if (where.v >= HW_SYSCALL_ROM_GPA && where.v + len <= HW_SYSCALL_ROM_GPA + sizeof(e->rom))
		return e->rom + (where.v - HW_SYSCALL_ROM_GPA);
	if (where.v >= e->region_gpa && where.v + len <= e->region_gpa + e->region_bytes)
		return e->region + (where.v - e->region_gpa);
	return NULL; /* everything else, the MMIO page included, is not memory */
}

static struct env *env_new(u64 ram_top, bool nxe)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->region_gpa = hw_region_gpa(ram_top);
	e->region_bytes = hw_region_bytes(e->region_gpa);
	assert_true(e->region_bytes > 0);
	e->region = calloc(1, e->region_bytes);
	assert_non_null(e->region);
	hw_region_build(e->region, e->region_gpa);
	memset(e->rom, 0xff, sizeof(e->rom)); /* the ROM window as umbra fills it */
	hw_region_build_rom(e->rom, e->region_gpa);
	e->root[HW_SYSCALL_SLOT] = hw_region_slot_entry(nxe);
	e->mem = (struct walk_mem){ .opaque = e, .gpa_to_hva = env_gpa_to_hva };
	e->ctl = (struct walk_ctl){ .cr0 = CR0_PE | CR0_PG | CR0_WP,
				    .cr3 = ROOT_GPA,
				    .cr4 = CR4_PAE,
				    .efer = EFER_LME | EFER_LMA | (nxe ? EFER_NXE : 0),
				    .maxphyaddr = 48 };
	return e;
}

static void env_free(struct env *e)
{
	free(e->region);
	free(e);
}

static enum walk_result walk(struct env *e, u64 va, u32 access, struct guest_walk *w)
{
	return walk_guest(paging_mode_select(&e->ctl), &e->mem, &e->ctl, gva(va), access, WALK_PEEK,
			  w);
}

static void test_placement(void **state)
{
	(void)state;
	assert_true(hw_region_gpa(512 * MiB) == 4 * GiB); /* never in or below the PCI hole */
	assert_true(hw_region_gpa(5 * GiB + 4096) == 6 * GiB);
	/* The store root needs a PD per GiB up to the region's own. */
	assert_true(hw_region_bytes(4 * GiB) == (3 + 5) * PAGE_SIZE);
	assert_true(hw_region_bytes(511 * GiB) > 0);
	assert_true(hw_region_bytes(512 * GiB) == 0); /* its PDPT has 512 entries */
	assert_true(hw_region_mmio_gpa(4 * GiB) >= 4 * GiB + hw_region_bytes(4 * GiB));
	/* The visible pages: the top of the option-ROM window, below the BIOS area. */
	assert_true(HW_SYSCALL_ROM_GPA >= 0xc0000 && HW_SYSCALL_ROM_GPA % PAGE_SIZE == 0);
	assert_true(HW_SYSCALL_ROM_GPA + HW_SYSCALL_ROM_PAGES * PAGE_SIZE == 0xe0000);
	/* The slot: 509, the gva its first byte. */
	assert_true((HW_SYSCALL_GVA >> 39 & 511) == HW_SYSCALL_SLOT);
}

/* What a process sees at the entry page and the page after it. */
static void test_user_view(void **state)
{
	for (int nxe = 0; nxe < 2; nxe++) {
		struct env *e = env_new(1 * GiB, nxe);
		struct guest_walk w;

		(void)state;
		/* The entry page: a user fetch or read reaches it; a write faults. */
		assert_int_equal(walk(e, HW_SYSCALL_GVA, ACC_USER | ACC_FETCH, &w), WALK_OK);
		assert_true(env_gpa_to_hva(e, w.gpa, 1) == e->rom + 6 * PAGE_SIZE);
		assert_false(w.rights & PTE_RW);
		assert_int_equal(walk(e, HW_SYSCALL_GVA + 8, ACC_USER | ACC_WRITE, &w), WALK_FAULT);
		assert_int_equal(w.fault.error_code, PFERR_PRESENT | PFERR_WRITE | PFERR_USER);
		/* The MMIO page: a user write reaches the gpa without memory, which exits. */
		assert_int_equal(walk(e, HW_SYSCALL_MMIO_GVA, ACC_USER | ACC_WRITE, &w), WALK_OK);
		assert_true(w.gpa.v == hw_region_mmio_gpa(e->region_gpa));
		assert_null(env_gpa_to_hva(e, w.gpa, 1));
		/* ... and is executable only where NX does not exist (CONFIG_DEBUG_WX). */
		assert_int_equal(walk(e, HW_SYSCALL_MMIO_GVA, ACC_USER | ACC_FETCH, &w),
				 nxe ? WALK_FAULT : WALK_OK);
		/* The CPU never has to set A or D there: the ROM window is read-only. */
		{
			static u8 before[HW_SYSCALL_ROM_PAGES * PAGE_SIZE];

			memcpy(before, e->rom, sizeof(before));
			assert_int_equal(walk_guest(paging_mode_select(&e->ctl), &e->mem, &e->ctl,
						    gva(HW_SYSCALL_GVA), ACC_USER | ACC_FETCH,
						    WALK_SET_AD, &w),
					 WALK_OK);
			assert_int_equal(walk_guest(paging_mode_select(&e->ctl), &e->mem, &e->ctl,
						    gva(HW_SYSCALL_MMIO_GVA), ACC_USER | ACC_WRITE,
						    WALK_SET_AD, &w),
					 WALK_OK);
			assert_memory_equal(before, e->rom, sizeof(before));
		}
		/* Nothing else in the slot is mapped. */
		assert_int_equal(walk(e, HW_SYSCALL_GVA + 2 * PAGE_SIZE, ACC_USER, &w), WALK_FAULT);
		assert_int_equal(walk(e, HW_SYSCALL_GVA + 2 * MiB, ACC_USER, &w), WALK_FAULT);
		env_free(e);
	}
}

/* The NX chain in a guest without EFER.NXE would be a reserved-bit fault: why two chains. */
static void test_nx_chain_needs_nxe(void **state)
{
	struct env *e = env_new(1 * GiB, false);
	struct guest_walk w;

	(void)state;
	e->root[HW_SYSCALL_SLOT] = hw_region_slot_entry(true);
	assert_int_equal(walk(e, HW_SYSCALL_MMIO_GVA, ACC_USER | ACC_WRITE, &w), WALK_FAULT);
	assert_true(w.fault.error_code & PFERR_RSVD);
	assert_false(hw_region_slot_entry(true) & PTE_NX); /* only the leaf */
	env_free(e);
}

/* Disassemble the first instruction of `code` at `addr`. */
static void disasm_one(const u8 *code, u64 addr, char *text, size_t len, unsigned *size)
{
	csh h;
	cs_insn *insn;

	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	assert_int_equal(cs_disasm(h, code, 16, addr, 1, &insn), 1);
	snprintf(text, len, "%s %s", insn[0].mnemonic, insn[0].op_str);
	*size = insn[0].size;
	cs_free(insn, 1);
	cs_close(&h);
}

static void test_code(void **state)
{
	struct env *e = env_new(1 * GiB, true);
	const u8 *entry = e->rom + 6 * PAGE_SIZE;
	u64 stub_off = hw_region_stub(e->region_gpa) - e->region_gpa;
	char text[80], want[80];
	unsigned size;

	(void)state;
	/* The entry: one store of AL to the MMIO page, 6 bytes, then int3. */
	disasm_one(entry, HW_SYSCALL_GVA, text, sizeof(text), &size);
	assert_int_equal(size, HW_SYSCALL_ENTRY_LEN);
	snprintf(want, sizeof(want), "mov byte ptr [rip + 0x%x], al",
		 (unsigned)(HW_SYSCALL_MMIO_GVA - HW_SYSCALL_GVA - HW_SYSCALL_ENTRY_LEN));
	assert_string_equal(text, want);
	assert_int_equal(entry[HW_SYSCALL_ENTRY_LEN], 0xcc);
	assert_int_equal(entry[PAGE_SIZE - 1], 0xcc);
	/* The store stub: the store, then the `out` whose exit ends it. */
	disasm_one(e->region + stub_off, 0, text, sizeof(text), &size);
	assert_string_equal(text, "mov qword ptr [rdi], rax");
	disasm_one(e->region + stub_off + size, 0, text, sizeof(text), &size);
	snprintf(want, sizeof(want), "out 0x%x, al", HW_SYSCALL_PORT);
	assert_string_equal(text, want);
	assert_true(hw_region_stub_end(e->region_gpa) == hw_region_stub(e->region_gpa) + 5);
	env_free(e);
}

/* The store root: the stub at its own gpa, and any guest root writable by its gpa. */
static void test_store_root(void **state)
{
	struct env *e = env_new(5 * GiB + 4096, true);
	static const u64 gpas[] = { 0x1000, 0x12345000, 3 * GiB - 4096, 5 * GiB, 6 * GiB + 4096 };
	struct guest_walk w;

	(void)state;
	e->ctl.cr3 = hw_region_store_root(e->region_gpa);
	assert_int_equal(walk(e, hw_region_stub(e->region_gpa), ACC_FETCH, &w), WALK_OK);
	assert_true(w.gpa.v == hw_region_stub(e->region_gpa));
	for (unsigned i = 0; i < sizeof(gpas) / sizeof(gpas[0]); i++) {
		assert_int_equal(walk(e, gpas[i] + 8 * HW_SYSCALL_SLOT, ACC_WRITE, &w), WALK_OK);
		assert_true(w.gpa.v == gpas[i] + 8 * HW_SYSCALL_SLOT);
		assert_false(w.rights & PTE_US); /* supervisor only */
	}
	/* Its top: the region's GiB. */
	assert_int_equal(walk(e, e->region_gpa + GiB, ACC_WRITE, &w), WALK_FAULT);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placement),	   cmocka_unit_test(test_user_view),
		cmocka_unit_test(test_nx_chain_needs_nxe), cmocka_unit_test(test_code),
		cmocka_unit_test(test_store_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
