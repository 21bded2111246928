/* SPDX-License-Identifier: MIT */
/*
 * Demand paging by the kernel's own #PF handler (SDM 3A 4.7, 6.15 #PF): a
 * 64 MiB range starts not present; each fault allocates a zeroed frame and
 * maps it, and the faulting write is restarted (a fault is precise: RIP
 * points at the faulting instruction). Every page is written and verified,
 * then everything is unmapped and freed.
 */
#include "../arch.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

#define DEMAND_VA (TWIN + PAGE_1G)
#define DEMAND_SIZE (64ULL << 20)
#define DEMAND_PAGES (DEMAND_SIZE / PAGE_SIZE)

static volatile uint64_t demand_faults, demand_bad;

static int demand_fault(struct trap_frame *f)
{
	uint64_t va = read_cr2();

	if (va < DEMAND_VA || va >= DEMAND_VA + DEMAND_SIZE)
		return 0;
	if (f->error & PF_P) { /* a protection fault: not ours to fix */
		demand_bad++;
		return 0;
	}
	/* Not present -> present needs no invalidation (SDM 3A 4.10.4.3). */
	pt_map(kernel_pml4, va & ~(PAGE_SIZE - 1), pmm_alloc_zeroed(), PTE_RW, LVL_PT);
	demand_faults++;
	return 1;
}

static uint64_t word_of(uint64_t p)
{
	return (p * 8 * 67) % PAGE_SIZE & ~7ULL; /* a different offset on each page */
}

TEST(demand_64m)
{
	uint64_t before = pmm_free_frames();
	struct catch c;

	demand_faults = demand_bad = 0;
	pf_hook = demand_fault;
	for (uint64_t p = 0; p < DEMAND_PAGES; p++)
		poke(DEMAND_VA + p * PAGE_SIZE + word_of(p), pat(0x90, p));
	CHECK_EQ("demand faults", DEMAND_PAGES, demand_faults);
	for (uint64_t p = 0; p < DEMAND_PAGES; p++) {
		uint64_t va = DEMAND_VA + p * PAGE_SIZE;

		CHECK_EQ("demand page, written word", pat(0x90, p), peek(va + word_of(p)));
		CHECK_EQ("demand page, another word (zeroed)", 0, peek(va + (word_of(p) ^ 0x800)));
	}
	CHECK_EQ("faults after verification", DEMAND_PAGES, demand_faults);
	pf_hook = 0;
	for (uint64_t p = 0; p < DEMAND_PAGES; p++) {
		uint64_t *pte = kentry(DEMAND_VA + p * PAGE_SIZE, LVL_PT);

		pmm_free(*pte & PTE_ADDR);
		*pte = 0;
	}
	write_cr3(read_cr3());
	if (CATCH(&c))
		(void)peek(DEMAND_VA + 5 * PAGE_SIZE);
	catch_disarm();
	expect_fault(&c, VEC_PF, 0, DEMAND_VA + 5 * PAGE_SIZE, "read after unmapping");
	/* Only the page tables (32 PTs, a PD, a PDPT) are still allocated. */
	CHECK(before - pmm_free_frames() <= 40, "frames not freed: %lu", before - pmm_free_frames());
	CHECK_EQ("protection faults in the range", 0, demand_bad);
}
