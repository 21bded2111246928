/* SPDX-License-Identifier: MIT */
/*
 * TLB invalidation (SDM 3A 4.10.4): after a PTE changes, invlpg, a CR3 write,
 * CR4.PGE toggles, PCID-aware CR3 writes and invpcid make the new
 * translation visible. Only what the architecture guarantees is checked:
 * never that a stale entry persists.
 */
#include "../arch.h"
#include "../cpu.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

/* Map TWIN to a fresh frame with @flags, use it, and point the PTE at frame 'b'. */
static uint64_t *prime(uint64_t flags, uint64_t *b)
{
	uint64_t *pte;

	map4k(TWIN, frame_new(0xa0), PTE_RW | flags);
	CHECK_EQ("first frame", pat(0xa0, 3), peek(TWIN + 24)); /* fills the TLB */
	*b = frame_new(0xb0);
	pte = kentry(TWIN, LVL_PT);
	*pte = *b | PTE_P | PTE_RW | flags;
	return pte;
}

/* SDM 3A 4.10.4.1: invlpg invalidates the TLB entries for the page. */
TEST(tlb_invlpg)
{
	uint64_t b, *pte = prime(0, &b);

	invlpg(TWIN);
	CHECK_EQ("after PTE change + invlpg", pat(0xb0, 3), peek(TWIN + 24));
	*pte = frame_new(0xb1) | PTE_P | PTE_RW;
	invlpg(TWIN + 0x800); /* any address in the page */
	CHECK_EQ("after invlpg of another byte of the page", pat(0xb1, 5), peek(TWIN + 40));
}

/* SDM 3A 4.10.4.1: a CR3 write (same value, PCIDE=0) invalidates all non-global entries. */
TEST(tlb_cr3_reload)
{
	uint64_t b;

	prime(0, &b);
	write_cr3(read_cr3());
	CHECK_EQ("after PTE change + mov cr3", pat(0xb0, 3), peek(TWIN + 24));
}

/* SDM 3A 4.10.2.4 + 4.10.4.1: invlpg invalidates global translations too. */
TEST(tlb_global_invlpg)
{
	uint64_t b;

	if (!cpu.pge)
		test_skip("CPUID.1:EDX.PGE[13] = 0");
	prime(PTE_G, &b);
	invlpg(TWIN);
	CHECK_EQ("global page after PTE change + invlpg", pat(0xb0, 3), peek(TWIN + 24));
}

/* SDM 3A 4.10.4.1: a CR4 write that changes PGE invalidates all entries, global included. */
TEST(tlb_global_pge_toggle)
{
	uint64_t b, *pte;

	if (!cpu.pge)
		test_skip("CPUID.1:EDX.PGE[13] = 0");
	pte = prime(PTE_G, &b);
	write_cr4(read_cr4() & ~CR4_PGE);
	write_cr4(read_cr4() | CR4_PGE);
	CHECK_EQ("global page after PTE change + PGE off/on", pat(0xb0, 3), peek(TWIN + 24));
	*pte = frame_new(0xb2) | PTE_P | PTE_RW | PTE_G;
	write_cr4(read_cr4() & ~CR4_PGE); /* PGE=0: a CR3 write flushes everything */
	write_cr3(read_cr3());
	CHECK_EQ("after PTE change, PGE=0 and mov cr3", pat(0xb2, 3), peek(TWIN + 24));
}

/*
 * PCIDs (SDM 3A 4.10.1, 4.10.4.1): two address spaces with PCIDs 1 and 2.
 * A CR3 write with bit 63 set keeps the new PCID's entries, so only entries
 * built from that address space's own (unchanged) tables can be used; after
 * a PTE change, invlpg or a CR3 write without bit 63 makes it visible.
 */
TEST(pcid)
{
	uint64_t as1, as2, *pte1;

	if (!cpu.pcid)
		test_skip("CPUID.1:ECX.PCID[17] = 0");
	as1 = as_create();
	as2 = as_create();
	pt_map(as1, TWIN, frame_new(0xc1), PTE_RW, LVL_PT);
	pt_map(as2, TWIN, frame_new(0xc2), PTE_RW, LVL_PT);
	pte1 = pt_entry(as1, TWIN, LVL_PT, 0);
	write_cr4(read_cr4() | CR4_PCIDE); /* needs CR3[11:0] = 0: it is */
	write_cr3(as1 | 1);
	CHECK_EQ("PCID 1", pat(0xc1, 1), peek(TWIN + 8));
	write_cr3(as2 | 2 | CR3_NOFLUSH);
	CHECK_EQ("PCID 2 after a no-flush switch", pat(0xc2, 1), peek(TWIN + 8));
	write_cr3(as1 | 1 | CR3_NOFLUSH);
	CHECK_EQ("PCID 1 again after a no-flush switch", pat(0xc1, 1), peek(TWIN + 8));
	*pte1 = frame_new(0xc3) | PTE_P | PTE_RW;
	invlpg(TWIN);
	CHECK_EQ("PCID 1 after PTE change + invlpg", pat(0xc3, 1), peek(TWIN + 8));
	*pte1 = frame_new(0xc4) | PTE_P | PTE_RW;
	write_cr3(as2 | 2 | CR3_NOFLUSH);
	write_cr3(as1 | 1); /* bit 63 clear: PCID 1's entries are flushed */
	CHECK_EQ("PCID 1 after PTE change + flushing CR3 write", pat(0xc4, 1), peek(TWIN + 8));
	write_cr3(kernel_pml4);
	write_cr4(read_cr4() & ~CR4_PCIDE);
	as_destroy(as1);
	as_destroy(as2);
}

struct invpcid_desc {
	uint64_t pcid;
	uint64_t addr;
};
#define INVPCID_ADDR 0	 /* individual-address invalidation */
#define INVPCID_SINGLE 1 /* single-context invalidation */

static void invpcid(uint64_t type, uint64_t pcid, uint64_t addr)
{
	struct invpcid_desc d = { pcid, addr };

	__asm__ volatile("invpcid %0, %1" : : "m"(d), "r"(type) : "memory");
}

/*
 * INVPCID (SDM 2A INVPCID, 3A 4.10.4.1): type 0 invalidates one address of
 * one PCID, type 1 all of a PCID's entries, also for a PCID that is not the
 * current one (seen after a no-flush switch to it).
 */
TEST(invpcid)
{
	uint64_t as1, as2, *pte1, *pte2;

	if (!cpu.pcid || !cpu.invpcid)
		test_skip("CPUID.1:ECX.PCID[17] = 0 or CPUID.(EAX=7,ECX=0):EBX.INVPCID[10] = 0");
	as1 = as_create();
	as2 = as_create();
	pt_map(as1, TWIN, frame_new(0xd1), PTE_RW, LVL_PT);
	pt_map(as2, TWIN, frame_new(0xd2), PTE_RW, LVL_PT);
	pte1 = pt_entry(as1, TWIN, LVL_PT, 0);
	pte2 = pt_entry(as2, TWIN, LVL_PT, 0);
	write_cr4(read_cr4() | CR4_PCIDE);
	write_cr3(as2 | 2);
	CHECK_EQ("PCID 2", pat(0xd2, 2), peek(TWIN + 16));
	write_cr3(as1 | 1);
	CHECK_EQ("PCID 1", pat(0xd1, 2), peek(TWIN + 16));
	*pte1 = frame_new(0xd3) | PTE_P | PTE_RW;
	invpcid(INVPCID_ADDR, 1, TWIN);
	CHECK_EQ("after invpcid individual-address", pat(0xd3, 2), peek(TWIN + 16));
	*pte1 = frame_new(0xd4) | PTE_P | PTE_RW;
	invpcid(INVPCID_SINGLE, 1, 0);
	CHECK_EQ("after invpcid single-context", pat(0xd4, 2), peek(TWIN + 16));
	*pte2 = frame_new(0xd5) | PTE_P | PTE_RW; /* PCID 2 is not current */
	invpcid(INVPCID_SINGLE, 2, 0);
	write_cr3(as2 | 2 | CR3_NOFLUSH);
	CHECK_EQ("other PCID after invpcid single-context", pat(0xd5, 2), peek(TWIN + 16));
	write_cr3(kernel_pml4);
	write_cr4(read_cr4() & ~CR4_PCIDE);
	as_destroy(as1);
	as_destroy(as2);
}

/*
 * Many page tables changed between flushes: more than Umbra's shadow MMU
 * lets go out of sync at once (16 by default, shadow/unsync.c), so its
 * slots are recycled in the middle. Every change is visible after the
 * flush that follows it (invlpg of each page, then one CR3 write), in
 * whichever table it is.
 */
#define MANY_TABLES 40
#define MANY_STRIDE (2ULL << 20) /* one page per PT */

TEST(tlb_many_tables)
{
	uint64_t *pte[MANY_TABLES];

	for (unsigned i = 0; i < MANY_TABLES; i++) {
		uint64_t va = TWIN + i * MANY_STRIDE;

		map4k(va, frame_new(0x100 + i), PTE_RW);
		CHECK_EQ("first frame", pat(0x100 + i, 7), peek(va + 56));
		pte[i] = kentry(va, LVL_PT);
	}
	for (unsigned i = 0; i < MANY_TABLES; i++)
		*pte[i] = frame_new(0x200 + i) | PTE_P | PTE_RW;
	for (unsigned i = 0; i < MANY_TABLES; i++) {
		invlpg(TWIN + i * MANY_STRIDE);
		CHECK_EQ("after PTE change + invlpg", pat(0x200 + i, 7),
			 peek(TWIN + i * MANY_STRIDE + 56));
	}
	for (unsigned i = 0; i < MANY_TABLES; i++)
		*pte[i] = frame_new(0x300 + i) | PTE_P | PTE_RW;
	write_cr3(read_cr3());
	for (unsigned i = 0; i < MANY_TABLES; i++)
		CHECK_EQ("after PTE change + mov cr3", pat(0x300 + i, 7),
			 peek(TWIN + i * MANY_STRIDE + 56));
}
