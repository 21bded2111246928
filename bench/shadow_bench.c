/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of the shadow MMU on synthetic guest memory (no KVM):
 * what one shadow fill, one PT-write update and one CR3 switch (hit and
 * miss) cost in the library itself, in ns. Built -O2 without sanitizers
 * against build/rel/libshadow.a: `make bench-shadow`.
 *
 *  fill           shadow_fault on a gva whose gpte is fine but not yet
 *                 shadowed (a fresh 4 KiB mapping); a new PT sp every 512
 *  pt-write       shadow_pt_write after a gpte in a shadowed PT changed
 *                 target (the spte is updated or zapped in place)
 *  cr3 hit        shadow_set_cr3 between two cached roots
 *  cr3 miss       shadow_set_cr3 to a CR3 never seen: a new root
 *  cr3 unsync     shadow_set_cr3 between two cached roots with NR_PT tables
 *                 out of sync (shadow/unsync.c), unchanged since the last
 *                 sync (a compare each), or with one gpte of one of them
 *                 changed before each switch (one spte updated)
 *  32-bit         fill and pt-write for a guest in 32-bit paging (CR4.PAE =
 *                 0): the same NR_PAGES mappings in NR_PT / 2 page tables of
 *                 1024 4-byte entries, each shadowed by two leaf sps
 *  PAE cr3 hit    shadow_set_pdptes + shadow_set_cr3 between the cached roots
 *                 of two PDPTs in one page (PAE paging outside long mode),
 *                 whose registers differ (PWT) but name the same PD: each
 *                 switch refreshes the level-3 sp's links (shadow/root.c)
 *
 * Each figure is the median over RUNS runs of (time of the loop / ops).
 * The guest: one PML4 / PDPT / PD and NR_PT PTs mapping NR_PT * 512 4 KiB
 * pages, all present, writable, user, accessed and dirty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shadow/shadow.h"

#define RAM_SIZE      (64 * MiB)
#define MAXPHYADDR    40
#define POOL_PAGES    8192
#define POOL_MPA      (1 * TiB)
#define RUNS	      9
#define NR_PT	      16 /* 8192 4 KiB mappings */
#define NR_PAGES      (NR_PT * 512)
#define NR_ROOTS      256 /* distinct CR3s for the miss case */
#define PML4_GPA      0x1000ull
#define PDPT_GPA      0x2000ull
#define PD_GPA	      0x3000ull
#define PT_GPA(i)     (0x10000ull + (i)*PAGE_SIZE)
#define EXTRA_PML4(i) (0x100000ull + (i)*PAGE_SIZE) /* the CR3s of the miss case */
#define DATA_GPA      (32 * MiB)		    /* targets of the 4 KiB mappings */
#define ALIAS_PT_GPA  0x8000ull /* a PT mapping the PTs as data (PD entry NR_PT) */
#define TABLE_FLAGS   (PTE_P | PTE_RW | PTE_US | PTE_A)
#define LEAF_FLAGS    (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)

/* Written at the end so the compiler keeps every measured call. */
static volatile u64 bench_sink;

struct bench {
	u8 *ram;
	void *pool;
	struct shadow_mmu *mmu;
	u64 sink;
};

static void *bench_gpa_to_hva(void *opaque, gpa_t where, size_t len)
{
	struct bench *b = opaque;

	if (where.v >= RAM_SIZE || len > RAM_SIZE - where.v)
		return NULL;
	return b->ram + where.v;
}

static void bench_store(void *opaque, mpa_t spte_mpa, u64 *sptep, u64 val)
{
	(void)opaque;
	(void)spte_mpa;
	*sptep = val;
}

static void bench_flush(void *opaque, enum shadow_flush_kind kind, gva_t where)
{
	struct bench *b = opaque;

	b->sink += kind + where.v;
}

static u64 *gptep(struct bench *b, u64 table, unsigned index)
{
	return (u64 *)(b->ram + table) + index;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static gva_t page_gva(unsigned n)
{
	return gva((u64)n << PAGE_SHIFT); /* PML4 0, PDPT 0, PD n / 512, PT n % 512 */
}

/* The guest tables and a fresh MMU with the guest's CR3 loaded. */
static void setup(struct bench *b, unsigned unsync)
{
	struct shadow_config cfg;
	unsigned i;

	memset(b->ram, 0, RAM_SIZE);
	*gptep(b, PML4_GPA, 0) = PDPT_GPA | TABLE_FLAGS;
	*gptep(b, PDPT_GPA, 0) = PD_GPA | TABLE_FLAGS;
	for (i = 0; i < NR_PT; i++)
		*gptep(b, PD_GPA, i) = PT_GPA(i) | TABLE_FLAGS;
	for (i = 0; i < NR_PAGES; i++)
		*gptep(b, PT_GPA(i / 512), i % 512) = (DATA_GPA + (u64)i * PAGE_SIZE) | LEAF_FLAGS;
	for (i = 0; i < NR_ROOTS; i++)
		*gptep(b, EXTRA_PML4(i), 0) = PDPT_GPA | TABLE_FLAGS;
	*gptep(b, PD_GPA, NR_PT) = ALIAS_PT_GPA | TABLE_FLAGS;
	for (i = 0; i < NR_PT; i++)
		*gptep(b, ALIAS_PT_GPA, i) = PT_GPA(i) | LEAF_FLAGS;

	cfg = (struct shadow_config){
		.mem = { b, bench_gpa_to_hva },
		.pool = { mpa(POOL_MPA), b->pool, POOL_PAGES, false /* aligned_alloc */ },
		.writer = { b, bench_store, NULL },
		.flusher = { b, bench_flush },
		.maxphyaddr = MAXPHYADDR,
		.unsync = unsync,
	};
	b->mmu = shadow_create(&cfg);
	if (!b->mmu) {
		fprintf(stderr, "shadow_bench: shadow_create failed\n");
		exit(1);
	}
	shadow_set_mode(b->mmu, CR0_PE | CR0_PG | CR0_WP, CR4_PAE | CR4_PGE,
			EFER_LME | EFER_LMA | EFER_NXE);
	b->sink += shadow_set_cr3(b->mmu, PML4_GPA, SHADOW_VIEW_KERNEL).v;
}

static void teardown(struct bench *b)
{
	shadow_destroy(b->mmu);
	b->mmu = NULL;
}

static void must_fix(struct bench *b, gva_t at)
{
	struct shadow_fault_info info;
	enum shadow_fault_result r = shadow_fault(b->mmu, at, 0, SHADOW_VIEW_KERNEL, &info);

	if (r != SHADOW_FIXED) {
		fprintf(stderr, "shadow_bench: fault at %#llx gave %d, not FIXED\n",
			(unsigned long long)at.v, r);
		exit(1);
	}
}

static void setup32(struct bench *b);

/* ns per shadow fill: a read fault on each of NR_PAGES fresh 4 KiB mappings (32-bit: paging32). */
static double run_fill(struct bench *b, bool paging32)
{
	double t0, t1;
	unsigned i;

	if (paging32)
		setup32(b);
	else
		setup(b, 0);
	t0 = now_ns();
	for (i = 0; i < NR_PAGES; i++)
		must_fix(b, page_gva(i));
	t1 = now_ns();
	teardown(b);
	return (t1 - t0) / NR_PAGES;
}

/*
 * ns per PT-write update: retarget one gpte in each shadowed PT in turn
 * (so no PT sees a write flood), then walk each PT again untimed.
 */
static double run_pt_write(struct bench *b, u64 *updates, u64 *zaps)
{
	double total = 0;
	unsigned round, pt, n = 0;

	setup(b, 0);
	for (pt = 0; pt < NR_PAGES; pt++)
		must_fix(b, page_gva(pt));
	for (round = 0; round < 64; round++) {
		double t0 = now_ns();

		for (pt = 0; pt < NR_PT; pt++) {
			unsigned index = (round * 7) % 512;
			u64 *p = gptep(b, PT_GPA(pt), index), old = *p, new = old ^ (1ull << 20);

			*p = new;
			shadow_pt_write(b->mmu, gpa(PT_GPA(pt) + index * 8), 8, &old, &new);
			n++;
		}
		total += now_ns() - t0;
		for (pt = 0; pt < NR_PT; pt++)
			must_fix(b, page_gva(pt * 512 + (round * 7 + 1) % 512));
	}
	*updates = shadow_get_stats(b->mmu)->pt_write_updates;
	*zaps = shadow_get_stats(b->mmu)->pt_write_zaps;
	teardown(b);
	return total / n;
}

/* The 32-bit guest: PD at PD_GPA, PT i (1024 entries) at PT_GPA(i); MMU in 32-bit paging. */
static void setup32(struct bench *b)
{
	unsigned i;

	setup(b, 0);
	memset(b->ram + PD_GPA, 0, PAGE_SIZE);
	for (i = 0; i < NR_PT; i++)
		memset(b->ram + PT_GPA(i), 0, PAGE_SIZE);
	for (i = 0; i < NR_PT / 2; i++)
		((u32 *)(b->ram + PD_GPA))[i] = (u32)(PT_GPA(i) | TABLE_FLAGS);
	for (i = 0; i < NR_PAGES; i++)
		((u32 *)(b->ram + PT_GPA(i / 1024)))[i % 1024] =
			(u32)((DATA_GPA + (u64)i * PAGE_SIZE) | LEAF_FLAGS);
	shadow_set_mode(b->mmu, CR0_PE | CR0_PG | CR0_WP, CR4_PSE, 0);
	b->sink += shadow_set_cr3(b->mmu, PD_GPA, SHADOW_VIEW_KERNEL).v;
}

/* ns per 4-byte PT-write update in 32-bit paging (as run_pt_write). */
static double run_pt_write32(struct bench *b)
{
	double total = 0;
	unsigned round, pt, n = 0;

	setup32(b);
	for (pt = 0; pt < NR_PAGES; pt++)
		must_fix(b, page_gva(pt));
	for (round = 0; round < 64; round++) {
		double t0 = now_ns();

		for (pt = 0; pt < NR_PT / 2; pt++) {
			unsigned index = (round * 13) % 1024; /* both halves of the PT in turn */
			u32 *p = (u32 *)(b->ram + PT_GPA(pt)) + index, old = *p,
			    new = old ^ (1u << 20);

			*p = new;
			shadow_pt_write(b->mmu, gpa(PT_GPA(pt) + index * 4), 4, &old, &new);
			n++;
		}
		total += now_ns() - t0;
		for (pt = 0; pt < NR_PT / 2; pt++)
			must_fix(b, page_gva(pt * 1024 + (round * 13 + 1) % 1024));
	}
	teardown(b);
	return total / n;
}

/* ns per CR3 switch between two cached roots. */
static double run_cr3_hit(struct bench *b)
{
	const unsigned n = 20000;
	double t0, t1;
	unsigned i;

	setup(b, 0);
	b->sink += shadow_set_cr3(b->mmu, EXTRA_PML4(0), SHADOW_VIEW_KERNEL).v;
	b->sink += shadow_set_cr3(b->mmu, PML4_GPA, SHADOW_VIEW_KERNEL).v;
	t0 = now_ns();
	for (i = 0; i < n; i++)
		b->sink +=
			shadow_set_cr3(b->mmu, i & 1 ? PML4_GPA : EXTRA_PML4(0), SHADOW_VIEW_KERNEL)
				.v;
	t1 = now_ns();
	teardown(b);
	return (t1 - t0) / n;
}

/* PAE paging: a CR3 load as the VMM makes it (the PDPTE load, then the MMU's side). */
static void load_pae_cr3(struct bench *b, u64 cr3)
{
	struct walk_mem mem = { b, bench_gpa_to_hva };
	u64 regs[4];

	if (!walk_read_pdptes(&mem, cr3, MAXPHYADDR, regs)) {
		fprintf(stderr, "shadow_bench: bad PDPT at 0x%llx\n", (unsigned long long)cr3);
		exit(1);
	}
	shadow_set_pdptes(b->mmu, regs);
	b->sink += shadow_set_cr3(b->mmu, cr3, SHADOW_VIEW_KERNEL).v;
}

/* ns per CR3 switch between the cached roots of two PDPTs of one page (PAE paging). */
static double run_cr3_hit_pae(struct bench *b)
{
	const unsigned n = 20000;
	const u64 pdpt_a = 0x4000, pdpt_b = 0x4020;
	double t0, t1;
	unsigned i;

	setup(b, 0);
	*gptep(b, pdpt_a, 0) = PD_GPA | PTE_P;
	*gptep(b, pdpt_b, 0) = PD_GPA | PTE_P | PTE_PWT;
	shadow_set_mode(b->mmu, CR0_PE | CR0_PG | CR0_WP, CR4_PAE, EFER_NXE);
	load_pae_cr3(b, pdpt_b);
	must_fix(b, page_gva(0));
	load_pae_cr3(b, pdpt_a);
	must_fix(b, page_gva(0));
	t0 = now_ns();
	for (i = 0; i < n; i++)
		load_pae_cr3(b, i & 1 ? pdpt_a : pdpt_b);
	t1 = now_ns();
	teardown(b);
	return (t1 - t0) / n;
}

/* ns per CR3 switch to a CR3 never seen before (a new root). */
static double run_cr3_miss(struct bench *b)
{
	double t0, t1;
	unsigned i;

	setup(b, 0);
	t0 = now_ns();
	for (i = 0; i < NR_ROOTS; i++)
		b->sink += shadow_set_cr3(b->mmu, EXTRA_PML4(i), SHADOW_VIEW_KERNEL).v;
	t1 = now_ns();
	teardown(b);
	return (t1 - t0) / NR_ROOTS;
}

/*
 * ns per CR3 switch between two cached roots with NR_PT tables out of sync;
 * `store`: one gpte of one of them retargeted before each switch.
 */
static double run_cr3_unsync(struct bench *b, bool store)
{
	const unsigned n = 20000;
	struct shadow_fault_info info;
	double t0, t1;
	unsigned i;

	setup(b, NR_PT);
	for (i = 0; i < NR_PT; i++)
		must_fix(b, page_gva(i * 512));
	for (i = 0; i < NR_PT; i++)
		if (shadow_fault(b->mmu, page_gva(NR_PAGES + i), ACC_WRITE, SHADOW_VIEW_KERNEL,
				 &info) != SHADOW_FIXED) {
			fprintf(stderr, "shadow_bench: PT %u did not go out of sync\n", i);
			exit(1);
		}
	b->sink += shadow_set_cr3(b->mmu, EXTRA_PML4(0), SHADOW_VIEW_KERNEL).v;
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		if (store)
			*gptep(b, PT_GPA(i % NR_PT), 0) ^= 1ull << 20;
		b->sink +=
			shadow_set_cr3(b->mmu, i & 1 ? PML4_GPA : EXTRA_PML4(0), SHADOW_VIEW_KERNEL)
				.v;
	}
	t1 = now_ns();
	if (shadow_get_stats(b->mmu)->unsyncs != NR_PT) {
		fprintf(stderr, "shadow_bench: tables went back in sync\n");
		exit(1);
	}
	teardown(b);
	return (t1 - t0) / n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

int main(void)
{
	struct bench b = { 0 };
	double fill[RUNS], ptw[RUNS], hit[RUNS], miss[RUNS], uns[RUNS], uns_store[RUNS];
	double fill32[RUNS], ptw32[RUNS], hit_pae[RUNS];
	u64 updates = 0, zaps = 0;
	unsigned r;

	b.ram = aligned_alloc(PAGE_SIZE, RAM_SIZE);
	b.pool = aligned_alloc(PAGE_SIZE, POOL_PAGES * PAGE_SIZE);
	if (!b.ram || !b.pool) {
		fprintf(stderr, "shadow_bench: out of memory\n");
		return 1;
	}
	for (r = 0; r < RUNS; r++) {
		fill[r] = run_fill(&b, false);
		ptw[r] = run_pt_write(&b, &updates, &zaps);
		hit[r] = run_cr3_hit(&b);
		miss[r] = run_cr3_miss(&b);
		uns[r] = run_cr3_unsync(&b, false);
		uns_store[r] = run_cr3_unsync(&b, true);
		fill32[r] = run_fill(&b, true);
		ptw32[r] = run_pt_write32(&b);
		hit_pae[r] = run_cr3_hit_pae(&b);
	}
	printf("shadow MMU micro-benchmark: synthetic memory, -O2, median of %d runs\n", RUNS);
	printf("%-36s %10s %10s\n", "operation", "ns/op", "ops/run");
	printf("%-36s %10.0f %10d\n", "fill (fault on a fresh 4K mapping)", median(fill, RUNS),
	       NR_PAGES);
	printf("%-36s %10.0f %10d\n", "PT-write update", median(ptw, RUNS), 64 * NR_PT);
	printf("%-36s %10.0f %10d\n", "CR3 switch, hit", median(hit, RUNS), 20000);
	printf("%-36s %10.0f %10d\n", "CR3 switch, miss (new root)", median(miss, RUNS), NR_ROOTS);
	printf("%-36s %10.0f %10d\n", "CR3 switch, 16 tables out of sync", median(uns, RUNS),
	       20000);
	printf("%-36s %10.0f %10d\n", "... one gpte changed before each", median(uns_store, RUNS),
	       20000);
	printf("%-36s %10.0f %10d\n", "32-bit paging: fill", median(fill32, RUNS), NR_PAGES);
	printf("%-36s %10.0f %10d\n", "32-bit paging: PT-write update", median(ptw32, RUNS),
	       64 * NR_PT / 2);
	printf("%-36s %10.0f %10d\n", "PAE paging: CR3 switch, hit", median(hit_pae, RUNS), 20000);
	printf("(last PT-write run: %llu sptes updated in place, %llu zapped)\n",
	       (unsigned long long)updates, (unsigned long long)zaps);
	free(b.pool);
	free(b.ram);
	bench_sink = b.sink; /* keep the results live */
	return 0;
}
