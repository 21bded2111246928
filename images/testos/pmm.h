/* SPDX-License-Identifier: MIT */
/*
 * Physical page allocator over the RAM ranges of the boot memory map.
 * Frames come from a free list (frames given back with pmm_free) or else
 * from a bump pointer that walks the RAM ranges upward, so start-up costs
 * nothing per page (guest CPL0 code is emulated on our hosts). Frames are
 * 4 KiB and handed out as physical addresses; reach them with phys_to_virt().
 */
#ifndef TESTOS_PMM_H
#define TESTOS_PMM_H

#include <stdint.h>

#include <umbra/bootinfo.h>

void pmm_init(const struct umbra_mem_entry *mem, uint32_t nr, uint64_t kernel_phys_end);
uint64_t pmm_alloc(void);	 /* contents undefined; panics when out of memory */
uint64_t pmm_alloc_zeroed(void);
/* npages contiguous frames aligned to @align bytes (from the bump region). */
uint64_t pmm_alloc_contig(uint64_t npages, uint64_t align);
void pmm_free(uint64_t pa);
uint64_t pmm_free_frames(void); /* frames still available */
uint64_t pmm_ram_top(void);	 /* end of the highest RAM range */

#endif /* TESTOS_PMM_H */
