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
			test_fail("%s.A after an access: expected 1 saw 0 (entry 0x%lx)", lvl_name[l],
				  *kentry(va, l));
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
