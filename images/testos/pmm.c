/* SPDX-License-Identifier: MIT */
/*
 * Physical page allocator: a free list threaded through free frames (via the
 * direct map) in front of a bump pointer over the RAM ranges. Page 0 and the
 * kernel image are never handed out; the boot area is, since kmain copies
 * the boot info before calling pmm_init().
 */
#include "layout.h"
#include "lib.h"
#include "pmm.h"

#define MAX_RANGES UMBRA_BOOT_MAX_MEM_ENTRIES

struct range {
	uint64_t start, end; /* page-aligned, [start, end) */
};

static struct range ranges[MAX_RANGES];
static unsigned nr_ranges, cur;
static uint64_t bump;	   /* next never-used frame in ranges[cur] */
static uint64_t free_head; /* physical address of the first free frame, 0 = none */
static uint64_t nr_free_listed, ram_top;

static void add_range(uint64_t s, uint64_t e)
{
	unsigned i;

	s = (s + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	e &= ~(PAGE_SIZE - 1);
	if (s >= e || nr_ranges == MAX_RANGES)
		return;
	/* Keep the ranges sorted by address (insertion). */
	for (i = nr_ranges; i > 0 && ranges[i - 1].start > s; i--)
		ranges[i] = ranges[i - 1];
	ranges[i].start = s;
	ranges[i].end = e;
	nr_ranges++;
}

void pmm_init(const struct umbra_mem_entry *mem, uint32_t nr, uint64_t kernel_phys_end)
{
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t s = mem[i].addr, e = mem[i].addr + mem[i].len;

		if (mem[i].type != UMBRA_MEM_RAM)
			continue;
		if (e > ram_top)
			ram_top = e;
		if (s < PAGE_SIZE)
			s = PAGE_SIZE; /* keep page 0 unused: null stays null */
		/* Cut the kernel image out. */
		if (s < kernel_phys_end && e > KERNEL_PHYS) {
			add_range(s, KERNEL_PHYS);
			add_range(kernel_phys_end, e);
		} else {
			add_range(s, e);
		}
	}
	if (!nr_ranges)
		panic("pmm: no usable RAM in the memory map");
	cur = 0;
	bump = ranges[0].start;
}

uint64_t pmm_alloc(void)
{
	uint64_t pa = free_head;

	if (pa) {
		free_head = *(uint64_t *)phys_to_virt(pa);
		nr_free_listed--;
		return pa;
	}
	while (cur < nr_ranges && bump >= ranges[cur].end) {
		if (++cur < nr_ranges)
			bump = ranges[cur].start;
	}
	if (cur >= nr_ranges)
		panic("pmm: out of memory");
	pa = bump;
	bump += PAGE_SIZE;
	return pa;
}

uint64_t pmm_alloc_zeroed(void)
{
	uint64_t pa = pmm_alloc();

	fill_page64(phys_to_virt(pa), 0);
	return pa;
}

uint64_t pmm_alloc_contig(uint64_t npages, uint64_t align)
{
	for (; cur < nr_ranges; cur++, bump = cur < nr_ranges ? ranges[cur].start : 0) {
		uint64_t s = (bump + align - 1) & ~(align - 1);

		if (s + npages * PAGE_SIZE > ranges[cur].end)
			continue;
		for (; bump < s; bump += PAGE_SIZE) /* the skipped frames stay usable */
			pmm_free(bump);
		bump = s + npages * PAGE_SIZE;
		return s;
	}
	panic("pmm: no %lu contiguous frames aligned to 0x%lx", npages, align);
}

void pmm_free(uint64_t pa)
{
	*(uint64_t *)phys_to_virt(pa) = free_head;
	free_head = pa;
	nr_free_listed++;
}

uint64_t pmm_free_frames(void)
{
	uint64_t n = nr_free_listed;

	for (unsigned i = cur; i < nr_ranges; i++)
		n += (ranges[i].end - (i == cur ? bump : ranges[i].start)) / PAGE_SIZE;
	return n;
}

uint64_t pmm_ram_top(void)
{
	return ram_top;
}
