// SPDX-License-Identifier: MIT
/* The pages behind hw mode's syscall entry (vmm/hw_syscall_region.h). */
#include <string.h>

#include "shadow/x86.h"
#include "vmm/hw_syscall_region.h"

/* The visible pages (in the option-ROM window). */
#define PG_SLOT_PDPT 0u /* + NX_CHAIN: the chain for EFER.NXE = 1 */
#define PG_SLOT_PD   1u
#define PG_SLOT_PT   2u
#define NX_CHAIN     3u
#define PG_ENTRY     6u
/* The region's pages. */
#define PG_STUB	      0u
#define PG_STORE_ROOT 1u
#define PG_STORE_PDPT 2u
#define PG_STORE_PD0  3u

/* A and D set already: the ROM window is read-only, the CPU could not set them. */
#define SLOT_FLAGS  (PTE_P | PTE_RW | PTE_US | PTE_A)
#define MMIO_OFFSET (512 * MiB)
#define INSN_INT3   0xcc

_Static_assert(PG_ENTRY + 1 == HW_SYSCALL_ROM_PAGES, "the visible pages");

static const u8 entry_code[HW_SYSCALL_ENTRY_LEN] = {
	0x88,
	0x05, /* mov %al, disp32(%rip): to the next page */
	(PAGE_SIZE - HW_SYSCALL_ENTRY_LEN) & 0xff,
	(PAGE_SIZE - HW_SYSCALL_ENTRY_LEN) >> 8,
	0,
	0
};
static const u8 stub_code[] = { 0x48, 0x89, 0x07, /* mov %rax, (%rdi) */
				0xe6, HW_SYSCALL_PORT /* out %al, $HW_SYSCALL_PORT */ };

static u64 page_gpa(u64 base, unsigned page)
{
	return base + (u64)page * PAGE_SIZE;
}

static u64 *table(u8 *pages, unsigned page)
{
	return (u64 *)(pages + (u64)page * PAGE_SIZE);
}

/* The store root's PDs: one per GiB of [0, region_gpa + 1 GiB). */
static unsigned nr_pds(u64 region_gpa)
{
	return (unsigned)(region_gpa / GiB) + 1;
}

u64 hw_region_gpa(u64 ram_top)
{
	return ALIGN_UP(MAX(ram_top, 4 * GiB), GiB);
}

u64 hw_region_bytes(u64 region_gpa)
{
	if (nr_pds(region_gpa) > 512)
		return 0;
	return (u64)(PG_STORE_PD0 + nr_pds(region_gpa)) * PAGE_SIZE;
}

void hw_region_build_rom(u8 *rom, u64 region_gpa)
{
	u8 *entry = rom + (u64)PG_ENTRY * PAGE_SIZE;

	memset(rom, 0, (u64)HW_SYSCALL_ROM_PAGES * PAGE_SIZE);
	for (unsigned nx = 0; nx < 2; nx++) {
		unsigned at = nx * NX_CHAIN;

		table(rom, PG_SLOT_PDPT + at)[0] =
			page_gpa(HW_SYSCALL_ROM_GPA, PG_SLOT_PD + at) | SLOT_FLAGS;
		table(rom, PG_SLOT_PD + at)[0] =
			page_gpa(HW_SYSCALL_ROM_GPA, PG_SLOT_PT + at) | SLOT_FLAGS;
		table(rom, PG_SLOT_PT + at)[0] =
			page_gpa(HW_SYSCALL_ROM_GPA, PG_ENTRY) | PTE_P | PTE_US | PTE_A;
		table(rom, PG_SLOT_PT + at)[1] =
			hw_region_mmio_gpa(region_gpa) | SLOT_FLAGS | PTE_D | (nx ? PTE_NX : 0);
	}
	memset(entry, INSN_INT3, PAGE_SIZE);
	memcpy(entry, entry_code, sizeof(entry_code));
}

void hw_region_build(u8 *region, u64 region_gpa)
{
	u8 *stub = region + (u64)PG_STUB * PAGE_SIZE;

	memset(stub, INSN_INT3, PAGE_SIZE);
	memcpy(stub, stub_code, sizeof(stub_code));
	table(region, PG_STORE_ROOT)[0] = page_gpa(region_gpa, PG_STORE_PDPT) | PTE_P | PTE_RW;
	for (unsigned i = 0; i < nr_pds(region_gpa); i++) {
		u64 *pd = table(region, PG_STORE_PD0 + i);

		table(region, PG_STORE_PDPT)[i] =
			page_gpa(region_gpa, PG_STORE_PD0 + i) | PTE_P | PTE_RW;
		for (unsigned j = 0; j < 512; j++)
			pd[j] = ((u64)i * GiB + (u64)j * 2 * MiB) | PTE_P | PTE_RW | PTE_PS;
	}
}

u64 hw_region_slot_entry(bool nxe)
{
	return page_gpa(HW_SYSCALL_ROM_GPA, PG_SLOT_PDPT + (nxe ? NX_CHAIN : 0)) | SLOT_FLAGS;
}

u64 hw_region_mmio_gpa(u64 region_gpa)
{
	return region_gpa + MMIO_OFFSET;
}

u64 hw_region_store_root(u64 region_gpa)
{
	return page_gpa(region_gpa, PG_STORE_ROOT);
}

u64 hw_region_stub(u64 region_gpa)
{
	return page_gpa(region_gpa, PG_STUB);
}

u64 hw_region_stub_end(u64 region_gpa)
{
	return hw_region_stub(region_gpa) + sizeof(stub_code);
}
