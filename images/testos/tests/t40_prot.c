/* SPDX-License-Identifier: MIT */
/*
 * Protection at CPL0 (SDM 3A 4.6 access rights, 4.7 page-fault error code):
 * R/W with CR0.WP on and off, NX, not-present and reserved-bit faults, SMEP
 * and SMAP. Every fault is checked for vector, exact error code and CR2.
 */
#include "../arch.h"
#include "../cpu.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

#define RET_OPCODE 0xc3

/* Accesses under a catch: @c records whether and how they faulted. */
static void try_write(struct catch *c, uint64_t va, uint64_t v)
{
	if (CATCH(c))
		poke(va, v);
	catch_disarm();
}

static void try_read(struct catch *c, uint64_t va)
{
	if (CATCH(c))
		(void)peek(va);
	catch_disarm();
}

static void try_call(struct catch *c, uint64_t va)
{
	if (CATCH(c))
		((void (*)(void))va)();
	catch_disarm();
}

/* SDM 3A 4.6.1: with CR0.WP=1 supervisor writes to read-only pages fault: #PF P|W, CR2 = address. */
TEST(prot_wp_on)
{
	struct catch c;
	uint64_t f = frame_new(0x10);

	map4k(TWIN, f, 0);
	write_cr0(read_cr0() | CR0_WP);
	try_write(&c, TWIN + 0x28, 0x1);
	expect_fault(&c, VEC_PF, PF_P | PF_W, TWIN + 0x28, "CPL0 write to read-only page, WP=1");
	CHECK_EQ("memory after the faulting write", pat(0x10, 5), peek(TWIN + 0x28));
}

/* SDM 3A 4.6.1: with CR0.WP=0 supervisor writes to read-only pages succeed. */
TEST(prot_wp_off)
{
	struct catch c;
	uint64_t f = frame_new(0x11);

	map4k(TWIN, f, 0);
	write_cr0(read_cr0() & ~CR0_WP);
	try_write(&c, TWIN + 0x30, 0xabcd);
	expect_no_fault(&c, "CPL0 write to read-only page, WP=0");
	CHECK_EQ("written value", 0xabcd, *(uint64_t *)((char *)phys_to_virt(f) + 0x30));
}

/* SDM 3A 4.6.1 + 4.7: a fetch from an XD page with EFER.NXE=1 faults: #PF P|I/D. */
TEST(prot_nx)
{
	struct catch c;
	uint64_t f = pmm_alloc_zeroed();

	if (!cpu.nx)
		test_skip("CPUID.80000001H:EDX.NX[20] = 0");
	((uint8_t *)phys_to_virt(f))[0x80] = RET_OPCODE;
	map4k(TWIN, f, 0);		     /* executable alias: the control */
	map4k(TWIN + PAGE_SIZE, f, PTE_NX);  /* execute-disable alias */
	try_call(&c, TWIN + 0x80);
	expect_no_fault(&c, "call to a ret in an executable page");
	try_call(&c, TWIN + PAGE_SIZE + 0x80);
	expect_fault(&c, VEC_PF, PF_P | PF_ID, TWIN + PAGE_SIZE + 0x80, "fetch from NX page");
	CHECK_EQ("RIP of the NX fault", TWIN + PAGE_SIZE + 0x80, c.rip);
}

/* SDM 3A 4.7: a read through a not-present entry: error code 0 (P=0, W=0, U=0). */
TEST(prot_np_read)
{
	struct catch c;

	map4k(TWIN, frame_new(0x12), PTE_RW);
	*kentry(TWIN, LVL_PT) &= ~PTE_P;
	invlpg(TWIN);
	try_read(&c, TWIN + 0x100);
	expect_fault(&c, VEC_PF, 0, TWIN + 0x100, "read of a not-present PTE");
	try_read(&c, TWIN + PAGE_1G + 0x10); /* no PDPTE at all */
	expect_fault(&c, VEC_PF, 0, TWIN + PAGE_1G + 0x10, "read with a not-present PDPTE");
}

/* SDM 3A 4.7: a write through a not-present entry: error code W. */
TEST(prot_np_write)
{
	struct catch c;

	map4k(TWIN, frame_new(0x13), PTE_RW);
	*kentry(TWIN, LVL_PT) = 0;
	invlpg(TWIN);
	try_write(&c, TWIN + 0x200, 1);
	expect_fault(&c, VEC_PF, PF_W, TWIN + 0x200, "write to a not-present PTE");
}

/*
 * SDM 3A 4.5 (table 4-19: bits MAXPHYADDR..51 of a PTE are reserved) and 4.7:
 * a reserved bit set gives #PF P|RSVD, plus W for a write.
 */
TEST(prot_rsvd)
{
	struct catch c;
	uint64_t rsvd;

	if (cpu.maxphyaddr >= 52)
		test_skip("MAXPHYADDR = 52: no reserved address bits in a PTE");
	rsvd = 1ULL << cpu.maxphyaddr;
	map4k(TWIN, frame_new(0x14) | rsvd, PTE_RW);
	try_read(&c, TWIN + 0x18);
	expect_fault(&c, VEC_PF, PF_P | PF_RSVD, TWIN + 0x18, "read, reserved bit in the PTE");
	try_write(&c, TWIN + 0x20, 1);
	expect_fault(&c, VEC_PF, PF_P | PF_RSVD | PF_W, TWIN + 0x20, "write, reserved bit in the PTE");
}

/* SDM 3A 4.6.1: with CR4.SMEP=1 a supervisor fetch from a user page faults: #PF P|I/D. */
TEST(smep)
{
	struct catch c;
	uint64_t f = pmm_alloc_zeroed();

	if (!cpu.smep)
		test_skip("CPUID.(EAX=7,ECX=0):EBX.SMEP[7] = 0");
	((uint8_t *)phys_to_virt(f))[0x40] = RET_OPCODE;
	map4k(TWIN, f, PTE_US);
	try_call(&c, TWIN + 0x40);
	expect_no_fault(&c, "supervisor fetch from a user page, SMEP=0");
	write_cr4(read_cr4() | CR4_SMEP);
	try_call(&c, TWIN + 0x40);
	expect_fault(&c, VEC_PF, PF_P | PF_ID, TWIN + 0x40, "supervisor fetch from a user page, SMEP=1");
}

/*
 * SDM 3A 4.6.1: with CR4.SMAP=1 supervisor data accesses to user pages fault
 * (#PF P, plus W for a write) unless RFLAGS.AC=1 (stac).
 */
TEST(smap)
{
	struct catch c;
	uint64_t f = frame_new(0x15);
	volatile uint64_t v = 0;

	if (!cpu.smap)
		test_skip("CPUID.(EAX=7,ECX=0):EBX.SMAP[20] = 0");
	map4k(TWIN, f, PTE_US | PTE_RW);
	write_cr4(read_cr4() | CR4_SMAP);
	try_read(&c, TWIN + 0x38);
	expect_fault(&c, VEC_PF, PF_P, TWIN + 0x38, "supervisor read of a user page, SMAP=1 AC=0");
	try_write(&c, TWIN + 0x40, 1);
	expect_fault(&c, VEC_PF, PF_P | PF_W, TWIN + 0x40, "supervisor write of a user page, SMAP=1");
	if (CATCH(&c)) {
		__asm__ volatile("stac" ::: "memory", "cc");
		v = peek(TWIN + 0x38);
		__asm__ volatile("clac" ::: "memory", "cc");
	}
	catch_disarm();
	expect_no_fault(&c, "supervisor read of a user page with stac (AC=1)");
	CHECK_EQ("value read with AC=1", pat(0x15, 7), v);
}
