/* SPDX-License-Identifier: MIT */
/*
 * Accessed and dirty flags (SDM 3A 4.8): the processor sets A in every
 * paging-structure entry it uses for a translation, and D in the leaf entry
 * on a write; D is never set by a read. Software clears them and, after
 * invalidating (SDM 3A 4.10.4.2), sees them set again.
 */
#include "../arch.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

static const char *const lvl_name[] = { "", "PTE", "PDE", "PDPTE", "PML4E" };

static void clear_ad(uint64_t va, int leaf)
{
	for (int l = leaf; l <= LVL_PML4; l++)
		*kentry(va, l) &= ~(PTE_A | PTE_D);
	invlpg(va);
}

static void check_a(uint64_t va, int leaf)
{
	for (int l = leaf; l <= LVL_PML4; l++)
		if (!(*kentry(va, l) & PTE_A))
			test_fail("%s.A after an access: expected 1 saw 0 (entry 0x%lx)",
				  lvl_name[l], *kentry(va, l));
}

static void check_d(uint64_t va, int leaf, int want)
{
	uint64_t e = *kentry(va, leaf);

	if (!!(e & PTE_D) != want)
		test_fail("%s.D: expected %d saw %d (entry 0x%lx)", lvl_name[leaf], want, !want, e);
}

/* SDM 3A 4.8: a read sets A at all four levels and leaves D clear. */
TEST(ad_read_4k)
{
	map4k(TWIN, frame_new(1), PTE_RW);
	clear_ad(TWIN, LVL_PT);
	(void)peek(TWIN);
	check_a(TWIN, LVL_PT);
	check_d(TWIN, LVL_PT, 0);
}

/* SDM 3A 4.8: a write sets D in the PTE (and A everywhere), also as the first access. */
TEST(ad_write_4k)
{
	map4k(TWIN, frame_new(2), PTE_RW);
	map4k(TWIN + PAGE_SIZE, frame_new(3), PTE_RW);
	clear_ad(TWIN, LVL_PT);
	(void)peek(TWIN);
	poke(TWIN, 5);
	check_d(TWIN, LVL_PT, 1);
	clear_ad(TWIN + PAGE_SIZE, LVL_PT);
	poke(TWIN + PAGE_SIZE, 6); /* write as the first access */
	check_a(TWIN + PAGE_SIZE, LVL_PT);
	check_d(TWIN + PAGE_SIZE, LVL_PT, 1);
}

/* SDM 3A 4.8 + 4.10.4.2: cleared A/D (then invlpg) are set again by new accesses. */
TEST(ad_reset_4k)
{
	map4k(TWIN, frame_new(4), PTE_RW);
	poke(TWIN, 1);
	check_d(TWIN, LVL_PT, 1);
	for (int round = 0; round < 2; round++) {
		clear_ad(TWIN, LVL_PT);
		(void)peek(TWIN + 8);
		check_a(TWIN, LVL_PT);
		check_d(TWIN, LVL_PT, 0);
		poke(TWIN + 8, round);
		check_d(TWIN, LVL_PT, 1);
	}
}

/* SDM 3A 4.8: for a 2 MiB page the PDE is the leaf and holds D. */
TEST(ad_2m)
{
	uint64_t pa = pmm_alloc_contig(512, PAGE_2M);

	pt_map(kernel_pml4, TWIN, pa, PTE_RW, LVL_PD);
	clear_ad(TWIN, LVL_PD);
	(void)peek(TWIN + 0x12340);
	check_a(TWIN, LVL_PD);
	check_d(TWIN, LVL_PD, 0);
	poke(TWIN + 0x1ff000, 1);
	check_d(TWIN, LVL_PD, 1);
	clear_ad(TWIN, LVL_PD);
	(void)peek(TWIN + 0x1ff000);
	check_a(TWIN, LVL_PD);
	check_d(TWIN, LVL_PD, 0);
	for (uint64_t i = 0; i < 512; i++)
		pmm_free(pa + i * PAGE_SIZE);
}

/*
 * SDM 3A 4.8: A and D are set only in the entries of the translations an
 * access uses. Shadow mode fills a fault's neighbours ahead of use
 * (shadow/prefetch.c); none of that may show: a neighbour's PTE keeps A = 0
 * until it is accessed, a clean one keeps D = 0 until it is written, and
 * the first write to a clean neighbour still sets D.
 */
TEST(ad_neighbours_4k)
{
	enum { N = 8 };
	/* 1: A = 1, clean; 2: A = 0; 3: A = 1, dirty; the rest A = 0. */
	static const uint64_t ad[N] = { 0, PTE_A, 0, PTE_A | PTE_D, 0, 0, 0, 0 };

	for (int i = 0; i < N; i++) {
		map4k(TWIN + i * PAGE_SIZE, frame_new(0x40 + i), PTE_RW);
		clear_ad(TWIN + i * PAGE_SIZE, LVL_PT);
		*kentry(TWIN + i * PAGE_SIZE, LVL_PT) |= ad[i];
		invlpg(TWIN + i * PAGE_SIZE);
	}
	(void)peek(TWIN);
	for (int i = 1; i < N; i++) {
		uint64_t e = *kentry(TWIN + i * PAGE_SIZE, LVL_PT);

		if ((e & (PTE_A | PTE_D)) != ad[i])
			test_fail("page %d's PTE after a read of page 0: A/D 0x%lx, expected 0x%lx "
				  "(entry 0x%lx)",
				  i, (uint64_t)(e & (PTE_A | PTE_D)), ad[i], e);
	}
	/* The neighbours read what their frames hold. */
	for (int i = 1; i < N; i++)
		if (peek(TWIN + i * PAGE_SIZE + 8) != pat(0x40 + i, 1))
			test_fail("page %d reads 0x%lx, expected 0x%lx", i,
				  peek(TWIN + i * PAGE_SIZE + 8), pat(0x40 + i, 1));
	check_a(TWIN + 2 * PAGE_SIZE, LVL_PT);
	check_d(TWIN + 2 * PAGE_SIZE, LVL_PT, 0);
	check_d(TWIN + 1 * PAGE_SIZE, LVL_PT, 0);
	/* A write to the clean page 1 sets its D, and lands. */
	poke(TWIN + PAGE_SIZE + 16, 0x1234);
	check_d(TWIN + 1 * PAGE_SIZE, LVL_PT, 1);
	if (peek(TWIN + PAGE_SIZE + 16) != 0x1234)
		test_fail("page 1 lost a write");
	/* Page 4, retargeted while A = 0 (no access yet), reads its new frame. */
	*kentry(TWIN + 4 * PAGE_SIZE, LVL_PT) =
		(*kentry(TWIN + 4 * PAGE_SIZE, LVL_PT) & ~PTE_ADDR) | frame_new(0x50);
	invlpg(TWIN + 4 * PAGE_SIZE);
	if (peek(TWIN + 4 * PAGE_SIZE + 8) != pat(0x50, 1))
		test_fail("page 4 reads 0x%lx after it was retargeted, expected 0x%lx",
			  peek(TWIN + 4 * PAGE_SIZE + 8), pat(0x50, 1));
}
