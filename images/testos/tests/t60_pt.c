/* SPDX-License-Identifier: MIT */
/*
 * Page tables as data (SDM 3A 4.5, 4.10.4): a recursive PML4 entry that
 * makes the tables readable and writable as ordinary memory; a table page
 * unlinked and reused as data with heavy writes; a new table built in a
 * reused data page; tables shared between two address spaces and twice
 * within one.
 */
#include "../arch.h"
#include "../lib.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

#define VA48(va) ((va) & 0xffffffffffffULL)

/*
 * Where the entry of @level translating @va appears through the recursive
 * slot: each extra pass through the slot moves one level up the tree.
 */
static uint64_t selfmap_addr(uint64_t va, int level)
{
	uint64_t a = SELFMAP_BASE;

	for (int i = 1; i < level; i++)
		a |= (uint64_t)SELFMAP_SLOT << (39 - 9 * i);
	return a | ((VA48(va) >> (12 + 9 * (level - 1))) << 3 & ((1ULL << (39 - 9 * (level - 1))) - 8));
}

static void selfmap_install(void)
{
	((uint64_t *)phys_to_virt(kernel_pml4))[SELFMAP_SLOT] = kernel_pml4 | PTE_P | PTE_RW | PTE_NX;
}

/* SDM 3A 4.5: a PML4E that points at the PML4 maps the tables themselves; every level reads back. */
TEST(selfmap_read)
{
	map4k(TWIN + 0x3000, frame_new(0x20), PTE_RW);
	selfmap_install();
	for (int l = LVL_PT; l <= LVL_PML4; l++) {
		uint64_t want = *kentry(TWIN + 0x3000, l) & ~(PTE_A | PTE_D);
		uint64_t seen = read_checked(selfmap_addr(TWIN + 0x3000, l), "read through the self-map");

		CHECK_EQ(l == LVL_PT ? "PTE via self-map" : "upper entry via self-map", want,
			 seen & ~(PTE_A | PTE_D));
	}
}

/* SDM 3A 4.5 + 4.10.4.1: a PTE written through the self-map takes effect after invlpg. */
TEST(selfmap_edit)
{
	uint64_t va = TWIN + 0x3000, b = frame_new(0x22), c = frame_new(0x23);

	map4k(va, frame_new(0x21), PTE_RW);
	CHECK_EQ("before the edit", pat(0x21, 9), peek(va + 72));
	selfmap_install();
	poke(selfmap_addr(va, LVL_PT), b | PTE_P | PTE_RW);
	invlpg(va);
	CHECK_EQ("after editing the PTE via the self-map", pat(0x22, 9), peek(va + 72));
	poke(selfmap_addr(va + PAGE_SIZE, LVL_PT), c | PTE_P | PTE_RW); /* a new PTE */
	invlpg(va + PAGE_SIZE);
	CHECK_EQ("PTE created via the self-map", pat(0x23, 9), peek(va + PAGE_SIZE + 72));
	CHECK_EQ("PTE as seen through the direct map", c | PTE_P | PTE_RW,
		 *kentry(va + PAGE_SIZE, LVL_PT) & ~(PTE_A | PTE_D));
}

#define FILL_ROUNDS 32

/*
 * SDM 3A 4.10.4.1 (invlpg also drops paging-structure caches): a PT unlinked
 * from its PDE and reused as ordinary data, written many times through the
 * direct map and through a data mapping, reads back exactly what was written.
 */
TEST(pt_reuse_data)
{
	uint64_t va = TWIN, *pde, pt, data_va = TWIN + PAGE_1G;
	struct catch c;

	map4k(va, frame_new(0x24), PTE_RW);
	CHECK_EQ("mapped through the PT", pat(0x24, 0), peek(va));
	pde = kentry(va, LVL_PD);
	pt = *pde & PTE_ADDR;
	*pde = 0;
	invlpg(va);
	if (CATCH(&c))
		(void)peek(va);
	catch_disarm();
	expect_fault(&c, VEC_PF, 0, va, "read after the PT was unlinked");
	map4k(data_va, pt, PTE_RW); /* the old PT, now a data page */
	for (uint64_t r = 0; r < FILL_ROUNDS; r++) {
		fill_page64(phys_to_virt(pt), pat(0x25, r));
		fill_page64((void *)data_va, pat(0x26, r));
	}
	for (uint64_t i = 0; i < PAGE_SIZE / 8; i++)
		poke(data_va + i * 8, pat(0x27, i));
	for (uint64_t i = 0; i < PAGE_SIZE / 8; i++)
		if (((uint64_t *)phys_to_virt(pt))[i] != pat(0x27, i))
			test_fail("old PT reused as data, word %lu: expected 0x%lx saw 0x%lx", i,
				  pat(0x27, i), ((uint64_t *)phys_to_virt(pt))[i]);
}

/*
 * SDM 3A 4.5: a page used as data, then filled with PTEs and linked under a
 * PDE, translates; an edit through its still-present data mapping takes
 * effect after invlpg (SDM 3A 4.10.4.1).
 */
TEST(pt_build_in_reused)
{
	uint64_t data_va = TWIN + PAGE_1G, va = TWIN, d = pmm_alloc(), f[4];

	map4k(data_va, d, PTE_RW);
	for (uint64_t r = 0; r < FILL_ROUNDS; r++)
		fill_page64((void *)data_va, pat(0x28, r));
	CHECK_EQ("data page", pat(0x28, FILL_ROUNDS - 1), peek(data_va + 0x800));
	fill_page64((void *)data_va, 0);
	for (int i = 0; i < 4; i++) {
		f[i] = frame_new(0x29 + i);
		poke(data_va + i * 8, f[i] | PTE_P | PTE_RW);
	}
	map4k(va + PAGE_2M, frame_new(0x2f), PTE_RW); /* creates the PDPT and PD */
	*kentry(va, LVL_PD) = d | PTE_P | PTE_RW | PTE_US;
	invlpg(va);
	for (int i = 0; i < 4; i++)
		CHECK_EQ("through the new PT", pat(0x29 + i, 4), peek(va + i * PAGE_SIZE + 32));
	poke(data_va + 8, frame_new(0x2e) | PTE_P | PTE_RW);
	invlpg(va + PAGE_SIZE);
	CHECK_EQ("after editing the PT through its data mapping", pat(0x2e, 4),
		 peek(va + PAGE_SIZE + 32));
}

/*
 * SDM 3A 4.5 + 4.10.4.1: one PDPT under two PML4s. A change made while one
 * address space is current is seen in the other after a CR3 switch.
 */
TEST(shared_pdpt)
{
	uint64_t as1 = as_create(), as2 = as_create(), slot = pt_index(TWIN, LVL_PML4);
	uint64_t *pml4_2 = phys_to_virt(as2), *pte;

	pt_map(as1, TWIN, frame_new(0x30), PTE_RW, LVL_PT);
	pml4_2[slot] = ((uint64_t *)phys_to_virt(as1))[slot];
	pte = pt_entry(as1, TWIN, LVL_PT, 0);
	write_cr3(as1);
	CHECK_EQ("address space 1", pat(0x30, 2), peek(TWIN + 16));
	write_cr3(as2);
	CHECK_EQ("address space 2, shared PDPT", pat(0x30, 2), peek(TWIN + 16));
	*pte = frame_new(0x31) | PTE_P | PTE_RW; /* changed while as2 is current */
	invlpg(TWIN);
	CHECK_EQ("address space 2 after the change", pat(0x31, 2), peek(TWIN + 16));
	write_cr3(as1);
	CHECK_EQ("address space 1 after the change", pat(0x31, 2), peek(TWIN + 16));
	poke(TWIN + 0x100, 0x4242);
	write_cr3(as2);
	CHECK_EQ("write in 1 read in 2", 0x4242, peek(TWIN + 0x100));
	write_cr3(kernel_pml4);
	pml4_2[slot] = 0;
	as_destroy(as1);
	as_destroy(as2);
}

/* SDM 3A 4.5: two PDEs referencing one PT map the same frames at both addresses. */
TEST(shared_pt_twice)
{
	uint64_t as = as_create(), va1 = TWIN, va2 = TWIN + 5 * PAGE_2M, *pde2, *pte;

	for (int i = 0; i < 4; i++)
		pt_map(as, va1 + i * PAGE_SIZE, frame_new(0x38 + i), PTE_RW, LVL_PT);
	pt_map(as, va2 + PAGE_2M, frame_new(0x3f), PTE_RW, LVL_PT); /* va2's PD exists */
	pde2 = pt_entry(as, va2, LVL_PD, 0);
	*pde2 = *pt_entry(as, va1, LVL_PD, 0);
	write_cr3(as);
	for (int i = 0; i < 4; i++)
		CHECK_EQ("second alias of the PT", peek(va1 + i * PAGE_SIZE + 48),
			 peek(va2 + i * PAGE_SIZE + 48));
	poke(va1 + 2 * PAGE_SIZE, 0x5151);
	CHECK_EQ("write through one alias, read through the other", 0x5151, peek(va2 + 2 * PAGE_SIZE));
	pte = pt_entry(as, va1 + PAGE_SIZE, LVL_PT, 0);
	*pte = frame_new(0x3e) | PTE_P | PTE_RW;
	invlpg(va1 + PAGE_SIZE);
	invlpg(va2 + PAGE_SIZE);
	CHECK_EQ("changed PTE via alias 1", pat(0x3e, 6), peek(va1 + PAGE_SIZE + 48));
	CHECK_EQ("changed PTE via alias 2", pat(0x3e, 6), peek(va2 + PAGE_SIZE + 48));
	write_cr3(kernel_pml4);
	*pde2 = 0;
	as_destroy(as);
}
