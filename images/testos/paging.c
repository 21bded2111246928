/* SPDX-License-Identifier: MIT */
/*
 * Page-table construction (SDM 3A 4.5): entry lookup/creation, mappings of
 * the three page sizes, address spaces, and the kernel's own tables built at
 * start-up from the memory map.
 */
#include "arch.h"
#include "cpu.h"
#include "lib.h"
#include "paging.h"
#include "pmm.h"

uint64_t kernel_pml4;

/* Linker-script symbols bounding the kernel image's sections (virtual). */
extern char _text_start[], _text_end[], _rodata_start[], _rodata_end[];
extern char _data_start[], _kernel_end[];

uint64_t *pt_entry(uint64_t root, uint64_t va, int level, int create)
{
	uint64_t *table = phys_to_virt(root & PTE_ADDR);

	for (int l = LVL_PML4; l > level; l--) {
		uint64_t *e = &table[pt_index(va, l)];

		if (!(*e & PTE_P)) {
			if (!create)
				return NULL;
			*e = pmm_alloc_zeroed() | PTE_P | PTE_RW | (va < USER_HALF_END ? PTE_US : 0);
		} else if (l <= LVL_PDPT && (*e & PTE_PS)) {
			return NULL; /* a large page ends the walk */
		}
		table = table_of(*e);
	}
	return &table[pt_index(va, level)];
}

void pt_map(uint64_t root, uint64_t va, uint64_t pa, uint64_t flags, int level)
{
	*pt_entry(root, va, level, 1) = pa | flags | PTE_P | (level > LVL_PT ? PTE_PS : 0);
}

uint64_t pt_translate(uint64_t root, uint64_t va)
{
	uint64_t *table = phys_to_virt(root & PTE_ADDR);

	for (int l = LVL_PML4; l >= LVL_PT; l--) {
		uint64_t e = table[pt_index(va, l)];
		uint64_t span = 1ULL << (12 + 9 * (l - 1));

		if (!(e & PTE_P))
			return ~0ULL;
		if (l == LVL_PT || (l <= LVL_PDPT && (e & PTE_PS)))
			return (e & PTE_ADDR & ~(span - 1)) + (va & (span - 1));
		table = table_of(e);
	}
	return ~0ULL;
}

uint64_t as_create(void)
{
	uint64_t pml4 = pmm_alloc_zeroed();
	uint64_t *dst = phys_to_virt(pml4), *src = phys_to_virt(kernel_pml4);

	for (int i = PML4_USER_SLOTS; i < 512; i++)
		dst[i] = src[i];
	return pml4;
}

/* Free the tables below a present, non-leaf entry of @level. */
static void free_below(uint64_t entry, int level)
{
	uint64_t *t = table_of(entry);

	if (level > LVL_PD) {
		for (int i = 0; i < 512; i++)
			if ((t[i] & PTE_P) && !(t[i] & PTE_PS))
				free_below(t[i], level - 1);
	} else if (level == LVL_PD) {
		for (int i = 0; i < 512; i++)
			if ((t[i] & PTE_P) && !(t[i] & PTE_PS))
				pmm_free(t[i] & PTE_ADDR);
	}
	pmm_free(entry & PTE_ADDR);
}

void as_clear_user(uint64_t root)
{
	uint64_t *pml4 = phys_to_virt(root & PTE_ADDR);

	for (int i = 0; i < PML4_USER_SLOTS; i++) {
		if (pml4[i] & PTE_P)
			free_below(pml4[i], LVL_PDPT);
		pml4[i] = 0;
	}
}

void as_destroy(uint64_t root)
{
	as_clear_user(root);
	pmm_free(root & PTE_ADDR);
}

static void map_kernel_range(char *start, char *end, uint64_t flags)
{
	for (uint64_t va = (uint64_t)start & ~(PAGE_SIZE - 1); va < (uint64_t)end; va += PAGE_SIZE)
		pt_map(kernel_pml4, va, va - KERNEL_VMA, flags, LVL_PT);
}

/*
 * Runs on the early tables of start.S, whose direct map covers the first
 * GiB: every table allocated here comes from there (the bump allocator starts
 * at the lowest RAM).
 */
void paging_init(const struct umbra_mem_entry *mem, uint32_t nr, uint64_t lapic_phys)
{
	uint64_t g = cpu.pge ? PTE_G : 0, nx = cpu.nx ? PTE_NX : 0;

	kernel_pml4 = pmm_alloc_zeroed();
	/* Direct map of every RAM range, 2 MiB pages, rounded out to 2 MiB. */
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t s = mem[i].addr & ~(PAGE_2M - 1), e = mem[i].addr + mem[i].len;

		if (mem[i].type != UMBRA_MEM_RAM)
			continue;
		for (; s < e; s += PAGE_2M)
			pt_map(kernel_pml4, DIRECT_MAP + s, s, PTE_RW | nx | g, LVL_PD);
	}
	/* The kernel image with per-section rights. */
	map_kernel_range(_text_start, _text_end, g);
	map_kernel_range(_rodata_start, _rodata_end, nx | g);
	map_kernel_range(_data_start, _kernel_end, PTE_RW | nx | g);
	/* LAPIC registers: uncached (PCD|PWT), SDM 3A 11.4.1. */
	pt_map(kernel_pml4, LAPIC_VA, lapic_phys, PTE_RW | PTE_PCD | PTE_PWT | nx | g, LVL_PT);

	if (cpu.pge)
		write_cr4(read_cr4() | CR4_PGE);
	write_cr3(kernel_pml4);
}
