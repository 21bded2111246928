/* SPDX-License-Identifier: MIT */
/*
 * 4-level page tables (SDM 3A 4.5): entry bits, walking/creating entries,
 * mapping 4 KiB / 2 MiB / 1 GiB pages, address spaces (a PML4 whose kernel
 * half is shared), and building the kernel's own tables at start-up.
 * Tables are reached through the direct map; nothing here invalidates the
 * TLB: callers do (invlpg / CR3 write) exactly where the test wants it.
 */
#ifndef TESTOS_PAGING_H
#define TESTOS_PAGING_H

#include <stdint.h>

#include "layout.h"

/* Paging-structure entry bits (SDM 3A 4.5, tables 4-14 .. 4-20) */
#define PTE_P (1ULL << 0)   /* present */
#define PTE_RW (1ULL << 1)  /* writable */
#define PTE_US (1ULL << 2)  /* user-accessible */
#define PTE_PWT (1ULL << 3) /* page-level write-through */
#define PTE_PCD (1ULL << 4) /* page-level cache disable */
#define PTE_A (1ULL << 5)   /* accessed */
#define PTE_D (1ULL << 6)   /* dirty (leaf entries only) */
#define PTE_PS (1ULL << 7)  /* page size: a 2 MiB (PDE) or 1 GiB (PDPTE) leaf */
#define PTE_G (1ULL << 8)   /* global (leaf entries, with CR4.PGE) */
#define PTE_NX (1ULL << 63) /* execute-disable (with EFER.NXE) */
#define PTE_ADDR 0x000ffffffffff000ULL
#define PTE_ADDR_2M 0x000fffffffe00000ULL
#define PTE_ADDR_1G 0x000fffffc0000000ULL

/* Levels, named by the table an entry lives in. */
#define LVL_PT 1   /* PTE: maps 4 KiB */
#define LVL_PD 2   /* PDE: a PT or a 2 MiB page */
#define LVL_PDPT 3 /* PDPTE: a PD or a 1 GiB page */
#define LVL_PML4 4 /* PML4E: a PDPT */

static inline unsigned pt_index(uint64_t va, int level)
{
	return (va >> (12 + 9 * (level - 1))) & 511;
}
static inline uint64_t *table_of(uint64_t entry)
{
	return phys_to_virt(entry & PTE_ADDR);
}

/* Physical address of the kernel's PML4 (the address space tests start in). */
extern uint64_t kernel_pml4;

/*
 * Pointer to the entry of @level that translates @va under @root. With
 * @create, missing tables on the way are allocated (zeroed) and linked with
 * P|RW (and US in the user half); without, returns NULL when a table on the
 * way is missing or a large page ends the walk above @level.
 */
uint64_t *pt_entry(uint64_t root, uint64_t va, int level, int create);
/* Map @va -> @pa at @level (LVL_PT 4 KiB, LVL_PD 2 MiB, LVL_PDPT 1 GiB; PS added). */
void pt_map(uint64_t root, uint64_t va, uint64_t pa, uint64_t flags, int level);
/* Physical address @va maps to under @root (software walk), or ~0 if none. */
uint64_t pt_translate(uint64_t root, uint64_t va);

/* A new address space: a zeroed PML4 with the kernel half copied. */
uint64_t as_create(void);
/* Free every page table of the user half (not the frames they map). */
void as_clear_user(uint64_t root);
void as_destroy(uint64_t root);

/* Build the kernel's tables (direct map of RAM, kernel image, LAPIC) and load them. */
#include <umbra/bootinfo.h>
void paging_init(const struct umbra_mem_entry *mem, uint32_t nr, uint64_t lapic_phys);
/* Virtual address of the LAPIC registers once paging_init() ran. */
#define LAPIC_VA MMIO_BASE

#endif /* TESTOS_PAGING_H */
