/* SPDX-License-Identifier: MIT */
/*
 * testos memory layout: where things live in physical and virtual memory.
 *
 * Physical: the image is loaded at 1 MiB (p_paddr = 0x100000). The boot area
 * [0x1000, 0x80000) is reused by the page allocator once kmain has copied the
 * boot info. Everything else in the RAM ranges of the memory map is handed
 * out by pmm.c.
 *
 * Virtual (4-level paging, 48-bit):
 *   0x0000000000000000 .. 0x00007fffffffffff  user half, PML4 slots 0-255:
 *       free for tests (and later for processes); torn down after each test
 *   0xffff800000000000 .. 0xffff87ffffffffff  never mapped: the hole shadow
 *       mode reserves for its monitor (DESIGN.md)
 *   0xffff888000000000  DIRECT_MAP: all RAM, 2 MiB pages, RW, NX, global
 *   0xffffc90000000000  MMIO_BASE: LAPIC registers (4 KiB, uncached)
 *   0xfffffe0000000000  SELFMAP_BASE: PML4 slot 508, the recursive entry
 *       installed by the self-map test only
 *   0xffffffff80000000  KERNEL_VMA: the kernel image, virtual = KERNEL_VMA +
 *       physical (-mcmodel=kernel), 4 KiB pages with per-section rights
 * The kernel half (PML4 256-511) is the same in every address space: a new
 * PML4 copies slots 256-511 from the kernel's.
 */
#ifndef TESTOS_LAYOUT_H
#define TESTOS_LAYOUT_H

/* Constants usable from assembly too (no ULL suffix there). */
#ifdef __ASSEMBLER__
#define U64(x) x
#else
#define U64(x) x##ULL
#endif

#define KERNEL_PHYS U64(0x100000)
#define KERNEL_VMA U64(0xffffffff80000000)
#define DIRECT_MAP U64(0xffff888000000000)
#define MMIO_BASE U64(0xffffc90000000000)
#define SELFMAP_SLOT 508
#define SELFMAP_BASE U64(0xfffffe0000000000) /* sign-extended 508 << 39 */
#define USER_HALF_END U64(0x0000800000000000)

/* PML4 slots of the two halves. */
#define PML4_USER_SLOTS 256
#define PML4_DIRECT_SLOT 273 /* DIRECT_MAP >> 39 & 511 */

#define PAGE_SIZE U64(4096)
#define PAGE_2M (U64(2) << 20)
#define PAGE_1G (U64(1) << 30)

#ifndef __ASSEMBLER__
#include <stdint.h>
static inline void *phys_to_virt(uint64_t pa)
{
	return (void *)(pa + DIRECT_MAP);
}
/* Physical address of a kernel-image symbol. */
static inline uint64_t kimg_to_phys(const void *p)
{
	return (uint64_t)p - KERNEL_VMA;
}
#endif

#endif /* TESTOS_LAYOUT_H */
