/* SPDX-License-Identifier: MIT */
/*
 * Translation through 4 KiB, 2 MiB and 1 GiB pages (SDM 3A 4.5, figures
 * 4-8, 4-9, 4-10) reads the right physical data at several offsets, and two
 * aliases of one frame (a 2 MiB page and 4 KiB pages) see each other's writes.
 */
#include "../cpu.h"
#include "../lib.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

static const uint64_t offs[] = { 0, 8, 0x7f8, 0x800, 0xff8 };

/* SDM 3A 4.5, figure 4-8: a PTE maps a 4 KiB frame; bits 11:0 are the offset. */
TEST(pages_4k)
{
	uint64_t f[3], va[3] = { TWIN, TWIN + 0x1000, TWIN + 0x5000 };

	for (int i = 0; i < 3; i++) {
		f[i] = frame_new(0x40 + i);
		map4k(va[i], f[i], PTE_RW);
	}
	for (int i = 0; i < 3; i++)
		for (unsigned j = 0; j < sizeof(offs) / sizeof(offs[0]); j++)
			CHECK_EQ("4 KiB page read", pat(0x40 + i, offs[j] / 8), peek(va[i] + offs[j]));
	poke(va[1] + 0x10, 0x1234);
	CHECK_EQ("write seen through the direct map", 0x1234,
		 *(uint64_t *)((char *)phys_to_virt(f[1]) + 0x10));
}

/* SDM 3A 4.5, figure 4-9 / table 4-18: a PDE with PS=1 maps 2 MiB; bits 20:0 are the offset. */
TEST(pages_2m)
{
	uint64_t pa = pmm_alloc_contig(512, PAGE_2M);
	static const uint64_t o2[] = { 0, 0x1008, 0x100018, 0x1ffff8, 0xabc40 };

	for (unsigned j = 0; j < 5; j++)
		*(uint64_t *)phys_to_virt(pa + o2[j]) = pat(0x50, j);
	pt_map(kernel_pml4, TWIN, pa, PTE_RW, LVL_PD);
	for (unsigned j = 0; j < 5; j++)
		CHECK_EQ("2 MiB page read", pat(0x50, j), peek(TWIN + o2[j]));
	poke(TWIN + 0x155550, 0x77);
	CHECK_EQ("write seen through the direct map", 0x77, *(uint64_t *)phys_to_virt(pa + 0x155550));
	for (uint64_t i = 0; i < 512; i++)
		pmm_free(pa + i * PAGE_SIZE);
}

/* SDM 3A 4.5, figure 4-10 / table 4-16: a PDPTE with PS=1 maps 1 GiB (needs CPUID Page1GB). */
TEST(pages_1g)
{
	uint64_t f[3];
	uint64_t va = TWIN + PAGE_1G; /* 1 GiB aligned */

	if (!cpu.pdpe1gb)
		test_skip("CPUID.80000001H:EDX.Page1GB[26] = 0");
	for (int i = 0; i < 3; i++)
		f[i] = frame_new(0x60 + i);
	pt_map(kernel_pml4, va, 0, PTE_RW, LVL_PDPT); /* physical [0, 1 GiB) */
	for (int i = 0; i < 3; i++)
		for (unsigned j = 0; j < sizeof(offs) / sizeof(offs[0]); j++)
			CHECK_EQ("1 GiB page read", pat(0x60 + i, offs[j] / 8), peek(va + f[i] + offs[j]));
	poke(va + f[2] + 0x18, 0x99);
	CHECK_EQ("write seen through the direct map", 0x99,
		 *(uint64_t *)((char *)phys_to_virt(f[2]) + 0x18));
}

/*
 * A 2 MiB page over memory that 4 KiB pages also map elsewhere (SDM 3A 4.5;
 * 11.12.4 allows such aliases when memory types agree): a write through one
 * alias is read back through the other.
 */
TEST(pages_alias_2m_4k)
{
	uint64_t pa = pmm_alloc_contig(512, PAGE_2M);
	uint64_t big = TWIN, small = TWIN + PAGE_1G;
	static const unsigned pages[] = { 0, 1, 255, 511 };

	pt_map(kernel_pml4, big, pa, PTE_RW, LVL_PD);
	for (unsigned i = 0; i < 4; i++)
		map4k(small + pages[i] * PAGE_SIZE, pa + pages[i] * PAGE_SIZE, PTE_RW);
	for (unsigned i = 0; i < 4; i++) {
		uint64_t o = pages[i] * PAGE_SIZE + 8 * i;

		poke(big + o, pat(0x70, i));
		CHECK_EQ("2 MiB write, 4 KiB read", pat(0x70, i), peek(small + o));
		poke(small + o + 0x100, pat(0x71, i));
		CHECK_EQ("4 KiB write, 2 MiB read", pat(0x71, i), peek(big + o + 0x100));
	}
	for (uint64_t i = 0; i < 512; i++)
		pmm_free(pa + i * PAGE_SIZE);
}
