/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the shadow MMU (shadow/ (all files), interface shadow/mmu.h).
 *
 * The fixture: a malloc'd "guest RAM" (gpa 0 = byte 0; gpas at and above
 * RAM_SIZE are not RAM, i.e. MMIO), guest page tables built by hand in it,
 * a malloc'd shadow pool that claims to sit at mpa POOL_MPA (1 TiB, above
 * guest RAM), a shadow writer that stores directly and counts, and a
 * flusher that records its calls. Each check that a translation is right
 * goes through shadow_translate and the guest walker (the oracle).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/shadow.h"
#include "shadow/sp.h" /* SPTE_MMIO_DIRECT, to check the spte itself */

#define RAM_SIZE	(8 * MiB)
#define TABLE_POOL_GPA	(4 * MiB) /* hand-built tables are allocated upwards from here */
#define TEST_MAXPHYADDR 40
#define POOL_MPA	(1 * TiB)
#define POOL_PAGES	256
#define MMIO_GPA	(3 * GiB) /* below MAXPHYADDR, not RAM */

#define DATA_GPA   0x123000ull
#define DATA2_GPA  0x156000ull
#define GVA_4K	   0x00007f1234567abcull
#define GVA_B	   0x00007f1234568000ull /* same PT as GVA_4K */
#define GVA_2M	   0x0000123456789abcull
#define GVA_1G	   0x0000654321fedcbaull
#define GVA_MON	   0xffff800000001000ull /* PML4 index 256 */
#define GVA_WIN	   0xffffffffffe00000ull /* the call window: Linux's top 2 MiB hole */
#define GVA_FIXMAP 0xffffffffff5fe000ull /* a neighbour in the window's guest PD */

#define TABLE_FLAGS (PTE_P | PTE_RW | PTE_US)
#define USER_RW	    (PTE_P | PTE_RW | PTE_US)
#define SUPER_RW    (PTE_P | PTE_RW)

#define CR0_DEFAULT  (CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG)
#define CR4_DEFAULT  CR4_PAE
#define EFER_DEFAULT (EFER_LME | EFER_LMA | EFER_NXE)

struct env {
	u8 *ram;
	gpa_t next_table;
	u64 cr3;
	struct walk_ctl ctl; /* the oracle's view of the guest */
	void *pool;
	u64 pool_pages;
	unsigned prefetch; /* the config's prefetch group (0: off) */
	unsigned unsync;   /* the config's out-of-sync tables (0: off) */
	bool large;	   /* the config's 2 MiB sptes */
	bool exec_gate;	   /* the config's execution gate */
	bool pool_zeroed;  /* the config's pool.zeroed (the pool is 0xa5 garbage otherwise) */
	u64 hole_gpa;	   /* if not 0: a 4 KiB page there is not RAM either */
	struct shadow_mmu *mmu;
	/* writer */
	u64 stores, commits;
	/* flusher */
	u64 flush_all, flush_gva;
	gva_t last_flush_gva;
};

static void *test_gpa_to_hva(void *opaque, gpa_t where, size_t len)
{
	struct env *env = opaque;

	if (where.v >= RAM_SIZE || len > RAM_SIZE - where.v)
		return NULL;
	if (env->hole_gpa && where.v < env->hole_gpa + PAGE_SIZE && where.v + len > env->hole_gpa)
		return NULL;
	return env->ram + where.v;
}

static void test_store(void *opaque, mpa_t spte_mpa, u64 *sptep, u64 val)
{
	struct env *env = opaque;

	/* The writer is told the right mpa for the hva it stores to. */
	assert_int_equal(spte_mpa.v - POOL_MPA, (u8 *)sptep - (u8 *)env->pool);
	assert_true(spte_mpa.v - POOL_MPA < env->pool_pages * PAGE_SIZE);
	*sptep = val;
	env->stores++;
}

static void test_commit(void *opaque)
{
	struct env *env = opaque;

	env->commits++;
}

static void test_flush(void *opaque, enum shadow_flush_kind kind, gva_t where)
{
	struct env *env = opaque;

	if (kind == SHADOW_FLUSH_ALL) {
		env->flush_all++;
	} else {
		env->flush_gva++;
		env->last_flush_gva = where;
	}
}

/* ---- guest tables ------------------------------------------------------- */

static gpa_t alloc_table(struct env *env)
{
	gpa_t table = env->next_table;

	assert_true(table.v + PAGE_SIZE <= RAM_SIZE);
	env->next_table = gpa(table.v + PAGE_SIZE);
	memset(env->ram + table.v, 0, PAGE_SIZE);
	return table;
}

static unsigned index_at(u64 va, unsigned level)
{
	return (va >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

static u64 *gptep_at(struct env *env, gpa_t table, unsigned index)
{
	return (u64 *)(env->ram + table.v) + index;
}

/* The gpte for `va` at `level` in the tables at env->cr3, creating tables above it. */
static u64 *gptep_for(struct env *env, u64 va, unsigned level)
{
	gpa_t table = gpa(env->cr3 & PTE_ADDR_MASK(TEST_MAXPHYADDR));
	unsigned l;

	for (l = PG_LEVEL_PML4; l > level; l--) {
		u64 *gptep = gptep_at(env, table, index_at(va, l));

		if (!(*gptep & PTE_P))
			*gptep = alloc_table(env).v | TABLE_FLAGS;
		table = gpa(*gptep & PTE_ADDR_MASK(TEST_MAXPHYADDR));
	}
	return gptep_at(env, table, index_at(va, level));
}

static gpa_t gpa_of_gptep(struct env *env, const u64 *gptep)
{
	return gpa((u64)((const u8 *)gptep - env->ram));
}

static u64 *map_4k(struct env *env, u64 va, u64 pa, u64 flags)
{
	u64 *gptep = gptep_for(env, va, PG_LEVEL_4K);

	*gptep = pa | flags;
	return gptep;
}

/* The guest stores `val` in a gpte; the VMM emulates it and tells the MMU. */
static void guest_write_gpte(struct env *env, u64 *gptep, u64 val)
{
	u64 old = *gptep;

	*gptep = val;
	shadow_pt_write(env->mmu, gpa_of_gptep(env, gptep), sizeof(val), &old, &val);
}

static u64 new_address_space(struct env *env)
{
	env->cr3 = alloc_table(env).v;
	return env->cr3;
}

/* ---- MMU helpers -------------------------------------------------------- */

static const struct shadow_stats *stats(struct env *env)
{
	return shadow_get_stats(env->mmu);
}

static u32 view_access(enum shadow_view view, u32 access)
{
	return view == SHADOW_VIEW_USER ? access | ACC_USER : access;
}

static enum shadow_fault_result fault(struct env *env, u64 va, u32 access, enum shadow_view view,
				      struct shadow_fault_info *info)
{
	struct shadow_fault_info local;

	return shadow_fault(env->mmu, gva(va), view_access(view, access), view,
			    info ? info : &local);
}

static void set_cr3(struct env *env, u64 cr3, enum shadow_view view)
{
	env->cr3 = cr3;
	env->ctl.cr3 = cr3;
	(void)shadow_set_cr3(env->mmu, cr3, view);
}

static void set_mode(struct env *env, u64 cr0, u64 cr4, u64 efer)
{
	env->ctl.cr0 = cr0;
	env->ctl.cr4 = cr4;
	env->ctl.efer = efer;
	shadow_set_mode(env->mmu, cr0, cr4, efer);
}

/*
 * The oracle: whatever the shadow maps at `va` in `view`, the guest maps to
 * the same gpa and allows every access the spte allows (never wider).
 */
static void assert_agrees(struct env *env, u64 va, enum shadow_view view)
{
	struct guest_walk walk;
	mpa_t where;
	u64 rights;

	if (!shadow_translate(env->mmu, view, gva(va), &where, &rights))
		return;
	assert_true(rights & PTE_US); /* the guest runs at real CPL3 */
	assert_int_equal(walk_guest(paging_mode_select(&env->ctl),
				    &(struct walk_mem){ env, test_gpa_to_hva }, &env->ctl, gva(va),
				    view_access(view, 0), WALK_PEEK, &walk),
			 WALK_OK);
	assert_int_equal(walk.gpa.v, where.v);
	if (rights & PTE_RW) {
		assert_int_equal(walk_guest(paging_mode_select(&env->ctl),
					    &(struct walk_mem){ env, test_gpa_to_hva }, &env->ctl,
					    gva(va), view_access(view, ACC_WRITE), WALK_PEEK,
					    &walk),
				 WALK_OK);
		if (walk.level) /* paging on: the page is dirty before it is writable */
			assert_true(walk.gpte[walk.level] & PTE_D);
	}
	if (!(rights & PTE_NX))
		assert_int_equal(walk_guest(paging_mode_select(&env->ctl),
					    &(struct walk_mem){ env, test_gpa_to_hva }, &env->ctl,
					    gva(va), view_access(view, ACC_FETCH), WALK_PEEK,
					    &walk),
				 WALK_OK);
}

/* The shadow translates va so; the guest's tables may say otherwise (out of sync). */
static void expect_stale(struct env *env, u64 va, enum shadow_view view, u64 expect_gpa,
			 u64 expect_rights)
{
	mpa_t where;
	u64 rights;

	assert_true(shadow_translate(env->mmu, view, gva(va), &where, &rights));
	assert_int_equal(where.v, expect_gpa);
	assert_int_equal(rights, expect_rights);
}

/* ... and the guest's tables agree. */
static void expect_mapped(struct env *env, u64 va, enum shadow_view view, u64 expect_gpa,
			  u64 expect_rights)
{
	expect_stale(env, va, view, expect_gpa, expect_rights);
	assert_agrees(env, va, view);
}

static void expect_unmapped(struct env *env, u64 va, enum shadow_view view)
{
	mpa_t where;
	u64 rights;

	assert_false(shadow_translate(env->mmu, view, gva(va), &where, &rights));
}

static struct shadow_mmu *make_mmu(struct env *env, u64 pool_pages)
{
	struct shadow_config cfg = {
		.mem = { .opaque = env, .gpa_to_hva = test_gpa_to_hva },
		.pool = { .base = mpa(POOL_MPA),
			  .hva = env->pool,
			  .nr_pages = pool_pages,
			  .zeroed = env->pool_zeroed },
		.writer = { .opaque = env, .store = test_store, .commit = test_commit },
		.flusher = { .opaque = env, .flush = test_flush },
		.maxphyaddr = TEST_MAXPHYADDR,
		.prefetch = env->prefetch,
		.unsync = env->unsync,
		.large_pages = env->large,
		.exec_gate = env->exec_gate,
	};

	env->pool_pages = pool_pages;
	return shadow_create(&cfg);
}

static int setup_env(void **state, u64 pool_pages, unsigned prefetch, unsigned unsync)
{
	struct env *env = calloc(1, sizeof(*env));

	if (!env)
		return -1;
	env->prefetch = prefetch;
	env->unsync = unsync;
	env->ram = aligned_alloc(PAGE_SIZE, RAM_SIZE);
	env->pool = aligned_alloc(PAGE_SIZE, pool_pages * PAGE_SIZE);
	if (!env->ram || !env->pool)
		return -1;
	memset(env->ram, 0, RAM_SIZE);
	/* Garbage in the pool: allocation must zero what it hands out. */
	memset(env->pool, 0xa5, pool_pages * PAGE_SIZE);
	env->next_table = gpa(TABLE_POOL_GPA);
	env->mmu = make_mmu(env, pool_pages);
	if (!env->mmu)
		return -1;
	env->ctl = (struct walk_ctl){ .cr0 = CR0_DEFAULT,
				      .cr4 = CR4_DEFAULT,
				      .efer = EFER_DEFAULT,
				      .maxphyaddr = TEST_MAXPHYADDR };
	set_mode(env, CR0_DEFAULT, CR4_DEFAULT, EFER_DEFAULT);
	set_cr3(env, new_address_space(env), SHADOW_VIEW_KERNEL);
	*state = env;
	return 0;
}

static int setup_pool(void **state, u64 pool_pages, unsigned prefetch)
{
	return setup_env(state, pool_pages, prefetch, 0);
}

/* With one slot for an out-of-sync table, so that a second table recycles it. */
static int setup_unsync(void **state)
{
	return setup_env(state, POOL_PAGES, 0, 1);
}

static int setup(void **state)
{
	return setup_pool(state, POOL_PAGES, 0);
}

/* As setup, with the VMM's default prefetch group of 8. */
static int setup_prefetch(void **state)
{
	return setup_pool(state, POOL_PAGES, 8);
}

static int setup_tiny(void **state)
{
	return setup_pool(state, 16, 0);
}

static int teardown(void **state)
{
	struct env *env = *state;

	shadow_destroy(env->mmu);
	free(env->pool);
	free(env->ram);
	free(env);
	return 0;
}

/* ---- fills --------------------------------------------------------------- */

static void test_create_rejects_bad_config(void **state)
{
	struct env *env = *state;

	assert_null(make_mmu(env, 7));
	env->prefetch = 3; /* not a power of two */
	assert_null(make_mmu(env, POOL_PAGES));
	env->prefetch = 1024; /* more than a table */
	assert_null(make_mmu(env, POOL_PAGES));
	env->prefetch = 0;
	env->unsync = SHADOW_MAX_UNSYNC + 1;
	assert_null(make_mmu(env, POOL_PAGES));
	env->unsync = 0;
	env->pool_pages = POOL_PAGES;
}

static void test_fill_4k_both_views(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;

	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);

	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_USER, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_USER, DATA_GPA + 0xabc, PTE_RW | PTE_US);
	/* The kernel view kept its own. */
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);

	/* A second fault on a mapped page changes nothing. */
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_USER, &info), SHADOW_FIXED);
	assert_int_equal(stats(env)->faults_spurious, 1);
	assert_int_equal(stats(env)->faults, 3);
	assert_int_equal(stats(env)->faults_fixed, 3);
	/* Two roots, and a PDPT, PD and PT below each. */
	assert_int_equal(stats(env)->sp_live, 8);
	assert_int_equal(stats(env)->rmap_live, 2);
	assert_true(stats(env)->stores > 0);
	assert_int_equal(stats(env)->stores, env->stores);
	assert_true(env->commits >= 3);
}

static void test_a_bits_set(void **state)
{
	struct env *env = *state;
	unsigned level;

	u64 *pte = map_4k(env, GVA_4K, DATA_GPA, USER_RW);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	for (level = PG_LEVEL_PML4; level > PG_LEVEL_4K; level--)
		assert_true(*gptep_for(env, GVA_4K, level) & PTE_A);
	assert_true(*pte & PTE_A);
	assert_false(*pte & PTE_D); /* a read */
}

static gpa_t pt_of_gva_4k(struct env *env);

/* Every gpte above the leaf for va gets A, as an earlier walk would have left it. */
static void set_accessed_above(struct env *env, u64 va)
{
	for (unsigned level = PG_LEVEL_PML4; level > PG_LEVEL_4K; level--)
		*gptep_for(env, va, level) |= PTE_A;
}

/* The guest's tables at GVA_4K, to check that a prefault did not write them. */
static void snapshot_path(struct env *env, u64 va, u64 out[5])
{
	for (unsigned level = PG_LEVEL_4K; level <= PG_LEVEL_PML4; level++)
		out[level] = *gptep_for(env, va, level);
}

static void test_prefault(void **state)
{
	struct env *env = *state;
	u64 before[5] = { 0 }, after[5] = { 0 };
	u64 *pte;

	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	/* Not present: the access's own fault decides (a guest #PF). */
	assert_false(shadow_prefault(env->mmu, gva(GVA_4K), ACC_USER));
	/* Present, but the walk would set A in the tables above: not now. */
	pte = map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_A | PTE_D);
	snapshot_path(env, GVA_4K, before);
	assert_false(shadow_prefault(env->mmu, gva(GVA_4K), ACC_USER | ACC_WRITE));
	snapshot_path(env, GVA_4K, after);
	assert_memory_equal(before, after, sizeof(before));
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_USER);
	/* A write to a page that is not dirty yet: the CPU would set D. */
	set_accessed_above(env, GVA_4K);
	*pte &= ~PTE_D;
	snapshot_path(env, GVA_4K, before);
	assert_false(shadow_prefault(env->mmu, gva(GVA_4K), ACC_USER | ACC_WRITE));
	snapshot_path(env, GVA_4K, after);
	assert_memory_equal(before, after, sizeof(before));
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_USER);
	/* ... but a read may be mapped, read-only until D is set (dirty-bit emulation). */
	assert_true(shadow_prefault(env->mmu, gva(GVA_4K), ACC_USER));
	expect_mapped(env, GVA_4K, SHADOW_VIEW_USER, DATA_GPA + 0xabc, PTE_US);
	/* Dirty, as Linux's fault handler leaves a page it filled for a write. */
	*pte |= PTE_D;
	shadow_invlpg(env->mmu, gva(GVA_4K));
	snapshot_path(env, GVA_4K, before);
	assert_true(shadow_prefault(env->mmu, gva(GVA_4K), ACC_USER | ACC_WRITE));
	snapshot_path(env, GVA_4K, after);
	assert_memory_equal(before, after, sizeof(before));
	expect_mapped(env, GVA_4K, SHADOW_VIEW_USER, DATA_GPA + 0xabc, PTE_RW | PTE_US);
	/* A supervisor page is never mapped for a user access. */
	map_4k(env, GVA_B, DATA2_GPA, SUPER_RW | PTE_A | PTE_D);
	assert_false(shadow_prefault(env->mmu, gva(GVA_B), ACC_USER));
	expect_unmapped(env, GVA_B, SHADOW_VIEW_USER);
	/* Only prefaults were made: no fault was counted. */
	assert_int_equal(stats(env)->faults, 0);
	assert_int_equal(stats(env)->prefaults, 6);
	assert_int_equal(stats(env)->prefaults_fixed, 2);
}

/*
 * A write to a page that is one of the guest's tables must reach
 * pt_write.c: a prefault leaves it to the access (the spte stays
 * read-only), and writes nothing.
 */
static void test_prefault_guest_table(void **state)
{
	struct env *env = *state;
	gpa_t pt;

	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_A | PTE_D);
	set_accessed_above(env, GVA_4K);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	/* GVA_B maps the PT that maps GVA_4K, which the fault above shadowed. */
	pt = pt_of_gva_4k(env);
	map_4k(env, GVA_B, pt.v, USER_RW | PTE_A | PTE_D);
	assert_false(shadow_prefault(env->mmu, gva(GVA_B), ACC_USER | ACC_WRITE));
	expect_mapped(env, GVA_B, SHADOW_VIEW_USER, pt.v, PTE_US);
	assert_int_equal(stats(env)->prefaults_fixed, 0);
}

static void test_large_2m_and_1g(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);
	u64 *pdpte = gptep_for(env, GVA_1G, PG_LEVEL_1G);

	*pde = 0x200000 | USER_RW | PTE_PS | PTE_D;
	*pdpte = 0 | USER_RW | PTE_PS | PTE_D;
	assert_int_equal(fault(env, GVA_2M, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, 0x200000 + 0x189abc, PTE_RW | PTE_US);
	/* Another 4 KiB of the same 2 MiB page: same direct sp, one more leaf. */
	assert_int_equal(fault(env, GVA_2M + 0x1000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_2M + 0x1000, SHADOW_VIEW_KERNEL, 0x200000 + 0x18aabc,
		      PTE_RW | PTE_US);

	/* 1 GiB at gpa 0: offset 0x21fedcba is beyond our RAM, so use one inside it. */
	assert_int_equal(fault(env, GVA_1G, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_MMIO);
	assert_int_equal(fault(env, (GVA_1G & ~(GiB - 1)) + 0x345678, 0, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_FIXED);
	expect_mapped(env, (GVA_1G & ~(GiB - 1)) + 0x345678, SHADOW_VIEW_KERNEL, 0x345678,
		      PTE_RW | PTE_US);
	/* Each fixed fault was in a guest large page, mapped 4 KiB at a time (config). */
	assert_int_equal(stats(env)->faults_fixed_large, 3);
	assert_int_equal(stats(env)->large_maps, 0);
	map_4k(env, GVA_4K, DATA_GPA, USER_RW);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->faults_fixed_large, 3);
	assert_int_equal(stats(env)->faults_fixed, 4);
}

static void test_large_page_dirty_tracking(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);

	*pde = 0x200000 | USER_RW | PTE_PS;
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, 0x389abc, PTE_US);
	assert_false(*pde & PTE_D);
	assert_int_equal(fault(env, GVA_2M, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_true(*pde & PTE_D);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, 0x389abc, PTE_RW | PTE_US);
	/* The guest cleans the page: every writable spte of it goes. */
	guest_write_gpte(env, pde, *pde & ~PTE_D);
	expect_unmapped(env, GVA_2M, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, 0x389abc, PTE_US);
}

/*
 * The MMU made again with 2 MiB sptes (config large_pages, fault.c item 4b)
 * and the execution gate as asked; the guest's tables stay.
 */
static void remake_mmu(struct env *env, bool large, bool exec_gate)
{
	shadow_destroy(env->mmu);
	env->large = large;
	env->exec_gate = exec_gate;
	env->mmu = make_mmu(env, env->pool_pages);
	assert_non_null(env->mmu);
	set_mode(env, CR0_DEFAULT, CR4_DEFAULT, EFER_DEFAULT);
	set_cr3(env, env->cr3, SHADOW_VIEW_KERNEL);
}

/* The spte at level 2 that translates va in the kernel view's root (0: none there). */
static u64 spte_at_2m(struct env *env, u64 va)
{
	mpa_t root = shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	u64 table = root.v;

	for (unsigned level = PG_LEVEL_PML4; level > PG_LEVEL_2M; level--) {
		u64 spte = ((u64 *)env->pool)[(table - POOL_MPA) / 8 + index_at(va, level)];

		if (!(spte & PTE_P))
			return 0;
		table = spte & PTE_ADDR_MASK(X86_MAXPHYADDR_MAX);
	}
	return ((u64 *)env->pool)[(table - POOL_MPA) / 8 + index_at(va, PG_LEVEL_2M)];
}

/* One fault maps the whole 2 MiB frame; the next 511 pages need none. */
static void test_large_spte_maps_frame(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);
	u64 faults;

	remake_mmu(env, true, false);
	*pde = 0x200000 | USER_RW | PTE_PS | PTE_D | PTE_NX;
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->large_maps, 1);
	assert_int_equal(stats(env)->faults_fixed_large, 1);
	assert_true(spte_at_2m(env, GVA_2M) & PTE_PS);
	faults = stats(env)->faults;
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, 0x389abc, PTE_RW | PTE_US | PTE_NX);
	expect_mapped(env, GVA_2M & ~(2 * MiB - 1), SHADOW_VIEW_KERNEL, 0x200000,
		      PTE_RW | PTE_US | PTE_NX);
	expect_mapped(env, (GVA_2M | (2 * MiB - 1)), SHADOW_VIEW_KERNEL, 0x3fffff,
		      PTE_RW | PTE_US | PTE_NX);
	assert_int_equal(stats(env)->faults, faults);
	assert_int_equal(stats(env)->rmap_live, 1);
	/* The user view gets its own, with the guest's rights. */
	assert_int_equal(fault(env, GVA_2M, ACC_WRITE, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->large_maps, 2);
	/* The guest points the PDE elsewhere: the PT write zaps both. */
	guest_write_gpte(env, pde, 0x600000 | USER_RW | PTE_PS | PTE_D | PTE_NX);
	expect_unmapped(env, GVA_2M, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->rmap_live, 0);
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, 0x789abc, PTE_RW | PTE_US | PTE_NX);
}

/* A 1 GiB guest page gets 2 MiB sptes in a direct level-2 sp, frame by frame. */
static void test_large_spte_in_1g_page(void **state)
{
	struct env *env = *state;
	u64 *pdpte = gptep_for(env, GVA_1G, PG_LEVEL_1G);
	u64 base = GVA_1G & ~(GiB - 1);

	remake_mmu(env, true, false);
	*pdpte = 0 | SUPER_RW | PTE_PS | PTE_D | PTE_NX;
	assert_int_equal(fault(env, base + 0x345678, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_FIXED);
	assert_true(spte_at_2m(env, base + 0x345678) & PTE_PS);
	expect_mapped(env, base + 0x201000, SHADOW_VIEW_KERNEL, 0x201000, PTE_RW | PTE_US | PTE_NX);
	/* The frame at 0 is not all RAM here: one 4 KiB page is a hole. */
	env->hole_gpa = 0x1ff000;
	assert_int_equal(fault(env, base + 0x1000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_false(spte_at_2m(env, base + 0x1000) & PTE_PS);
	assert_int_equal(stats(env)->large_not_ram, 1);
	expect_unmapped(env, base + 0x2000, SHADOW_VIEW_KERNEL);
	/* Beyond RAM: MMIO, not mapped at all. */
	assert_int_equal(fault(env, base + 0x21fedcba, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_MMIO);
	assert_int_equal(stats(env)->large_maps, 1);
}

/* A clean large page is read-only until the write fault sets D, as in 4 KiB. */
static void test_large_spte_dirty_tracking(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);

	remake_mmu(env, true, false);
	*pde = 0x200000 | USER_RW | PTE_PS | PTE_NX;
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_2M + 0x5000, SHADOW_VIEW_KERNEL, 0x38eabc, PTE_US | PTE_NX);
	assert_false(*pde & PTE_D);
	assert_int_equal(fault(env, GVA_2M + 0x5000, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_FIXED);
	assert_true(*pde & PTE_D);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, 0x389abc, PTE_RW | PTE_US | PTE_NX);
	assert_int_equal(stats(env)->large_maps, 2);
	assert_int_equal(stats(env)->rmap_live, 1);
	guest_write_gpte(env, pde, *pde & ~PTE_D);
	expect_unmapped(env, GVA_2M, SHADOW_VIEW_KERNEL);
}

/*
 * A guest table in the frame: no 2 MiB spte while it is shadowed (writes to
 * it must trap), the one there is zapped when it becomes shadowed, and the
 * frame is mapped whole again once it is not.
 */
static void test_large_spte_and_guest_tables(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);
	struct shadow_fault_info info;
	u64 pt, table_va;

	remake_mmu(env, true, false);
	*pde = 0x200000 | SUPER_RW | PTE_PS | PTE_D | PTE_NX;
	assert_int_equal(fault(env, GVA_2M, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->large_maps, 1);

	/* The guest builds tables for GVA_4K at gpa 0x201000 and up, and uses them. */
	env->next_table = gpa(0x201000);
	map_4k(env, GVA_4K, DATA_GPA, SUPER_RW | PTE_D);
	pt = gpa_of_gptep(env, gptep_for(env, GVA_4K, PG_LEVEL_4K)).v & ~0xfffull;
	assert_true(pt > 0x201000 && pt < 0x210000); /* its PDPT and PD came first */
	table_va = (GVA_2M & ~(2 * MiB - 1)) + (pt - 0x200000);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->large_zaps, 1);
	expect_unmapped(env, GVA_2M, SHADOW_VIEW_KERNEL);

	/* Now the frame is mapped 4 KiB at a time, and a write to the PT traps. */
	assert_int_equal(fault(env, GVA_2M, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_false(spte_at_2m(env, GVA_2M) & PTE_PS);
	assert_int_equal(stats(env)->large_tracked, 1);
	assert_int_equal(fault(env, table_va, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_EMULATE_PT_WRITE);
	assert_int_equal(info.gpa.v, pt);
	expect_mapped(env, table_va, SHADOW_VIEW_KERNEL, pt, PTE_US | PTE_NX);
	assert_int_equal(stats(env)->large_maps, 1);

	/*
	 * The tables are given up (a new address space, outside the frame, and
	 * their top one unshadowed takes the rest with it): the next fault in
	 * the frame maps it whole again.
	 */
	env->next_table = gpa(5 * MiB);
	set_cr3(env, new_address_space(env), SHADOW_VIEW_KERNEL);
	*gptep_for(env, GVA_2M, PG_LEVEL_2M) = 0x200000 | SUPER_RW | PTE_PS | PTE_D | PTE_NX;
	assert_true(shadow_unshadow_gfn(env->mmu, gfn(0x201)));
	assert_int_equal(fault(env, GVA_2M + 0x3000, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_FIXED);
	assert_int_equal(stats(env)->large_maps, 2);
	expect_mapped(env, table_va, SHADOW_VIEW_KERNEL, pt, PTE_RW | PTE_US | PTE_NX);
}

/*
 * Executable kernel pages need the gate's per-4 KiB approval: a kernel
 * data access maps the 2 MiB NX (data only), and a kernel fetch there takes
 * the 4 KiB path and the gate. Guest-NX pages and the user view map 2 MiB
 * as they are.
 */
static void test_large_spte_exec_gate(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);
	struct shadow_fault_info info;

	remake_mmu(env, true, true);
	*pde = 0x200000 | USER_RW | PTE_PS | PTE_D;
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_true(spte_at_2m(env, GVA_2M) & PTE_PS);
	assert_int_equal(stats(env)->large_data_only, 1);
	expect_mapped(env, GVA_2M + 0x5000, SHADOW_VIEW_KERNEL, 0x38eabc, PTE_RW | PTE_US | PTE_NX);
	/* A fetch: the 2 MiB leaf gives way to 4 KiB sptes, and the frame is to scan. */
	assert_int_equal(fault(env, GVA_2M + 0x10, ACC_FETCH, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_EXEC_UNSCANNED);
	assert_false(spte_at_2m(env, GVA_2M) & PTE_PS);
	assert_int_equal(stats(env)->large_gated, 1);
	expect_unmapped(env, GVA_2M + 0x5000, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->large_maps, 2);
	expect_mapped(env, GVA_2M + 0x10000, SHADOW_VIEW_USER, 0x399abc, PTE_RW | PTE_US);
	/* An approved frame is write-tracked: the user view's 2 MiB spte goes. */
	shadow_exec_approve(env->mmu, gfn(0x389));
	assert_int_equal(stats(env)->large_zaps, 1);
	expect_unmapped(env, GVA_2M + 0x10000, SHADOW_VIEW_USER);
	guest_write_gpte(env, pde, *pde | PTE_NX);
	assert_int_equal(fault(env, GVA_2M + 0x10000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->large_maps, 2); /* still tracked: 4 KiB */
	assert_true(shadow_exec_revoke(env->mmu, gfn(0x389)));
	assert_int_equal(fault(env, GVA_2M + 0x20000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->large_maps, 3);
	assert_true(spte_at_2m(env, GVA_2M) & PTE_PS);
}

static void test_paging_off_identity(void **state)
{
	struct env *env = *state;

	set_mode(env, CR0_PE | CR0_ET, 0, 0);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, 0x345678, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, 0x345678, SHADOW_VIEW_KERNEL, 0x345678, PTE_RW | PTE_US);
	assert_int_equal(fault(env, MMIO_GPA, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_MMIO);
}

/* ---- guest faults and views --------------------------------------------- */

static void test_user_view_never_maps_supervisor(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;

	map_4k(env, GVA_4K, DATA_GPA, SUPER_RW | PTE_D);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_USER, &info), SHADOW_GUEST_FAULT);
	assert_int_equal(info.error_code, PFERR_USER | PFERR_PRESENT);
	assert_int_equal(info.cr2.v, GVA_4K);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_USER);
	/* The kernel view maps it, with real U=1. */
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_USER);
	assert_int_equal(stats(env)->faults_guest, 1);
}

static void test_guest_not_present(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;

	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_GUEST_FAULT);
	assert_int_equal(info.error_code, 0);
	assert_int_equal(info.cr2.v, GVA_4K);
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_GUEST_FAULT);
	assert_int_equal(info.error_code, PFERR_WRITE);
	/* A read-only page refuses the write (CR0.WP = 1). */
	map_4k(env, GVA_4K, DATA_GPA, PTE_P | PTE_US | PTE_D);
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_GUEST_FAULT);
	assert_int_equal(info.error_code, PFERR_WRITE | PFERR_PRESENT);
}

static void test_mmio(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;

	map_4k(env, GVA_4K, MMIO_GPA, SUPER_RW | PTE_D);
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_KERNEL, &info), SHADOW_MMIO);
	assert_int_equal(info.gpa.v, MMIO_GPA + 0xabc);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->faults_mmio, 1);
}

/* Recreate env->mmu over the same pool with direct-MMIO ranges (mmu.h). */
static void remake_with_mmio_direct(struct env *env, unsigned nr,
				    const struct shadow_mmio_range *ranges)
{
	struct shadow_config cfg = {
		.mem = { .opaque = env, .gpa_to_hva = test_gpa_to_hva },
		.pool = { .base = mpa(POOL_MPA), .hva = env->pool, .nr_pages = env->pool_pages },
		.writer = { .opaque = env, .store = test_store, .commit = test_commit },
		.flusher = { .opaque = env, .flush = test_flush },
		.maxphyaddr = TEST_MAXPHYADDR,
		.nr_mmio_direct = nr,
	};

	memcpy(cfg.mmio_direct, ranges, nr * sizeof(*ranges));
	shadow_destroy(env->mmu);
	env->mmu = shadow_create(&cfg);
	assert_non_null(env->mmu);
	set_mode(env, CR0_DEFAULT, CR4_DEFAULT, EFER_DEFAULT);
	set_cr3(env, env->cr3, SHADOW_VIEW_KERNEL);
}

/* The spte the current kernel-view root holds for `va` (a 4 KiB mapping). */
static u64 leaf_spte_of(struct env *env, u64 va)
{
	mpa_t where;
	u64 rights;
	u64 table = 0;

	assert_true(shadow_translate(env->mmu, SHADOW_VIEW_KERNEL, gva(va), &where, &rights));
	/* Walk the shadow from the root by hand: every table is in the pool. */
	table = shadow_set_cr3(env->mmu, env->cr3, SHADOW_VIEW_KERNEL).v;
	for (unsigned l = PG_LEVEL_PML4; l >= PG_LEVEL_4K; l--) {
		u64 e = ((u64 *)((u8 *)env->pool + (table - POOL_MPA)))[index_at(va, l)];

		if (l == PG_LEVEL_4K)
			return e;
		table = e & PTE_ADDR_MASK(52);
	}
	return 0;
}

/*
 * Direct MMIO (mmu.h): a configured non-RAM range is mapped at mpa == gpa
 * with the gpte's caching bits, never enters the rmap, survives PT writes
 * and zaps, while other non-RAM gpas stay SHADOW_MMIO; bad ranges are
 * refused.
 */
static void test_mmio_direct(void **state)
{
	struct env *env = *state;
	const struct shadow_mmio_range lapic = { .base = gpa(MMIO_GPA), .size = PAGE_SIZE };
	struct shadow_mmio_range bad[] = {
		{ .base = gpa(MMIO_GPA + 1), .size = PAGE_SIZE },	     /* unaligned */
		{ .base = gpa(DATA_GPA), .size = PAGE_SIZE },		     /* RAM */
		{ .base = gpa(MMIO_GPA), .size = 0 },			     /* empty */
		{ .base = gpa(1ull << TEST_MAXPHYADDR), .size = PAGE_SIZE }, /* beyond MAXPHYADDR */
	};
	struct shadow_config cfg = {
		.mem = { .opaque = env, .gpa_to_hva = test_gpa_to_hva },
		.pool = { .base = mpa(POOL_MPA), .hva = env->pool, .nr_pages = env->pool_pages },
		.writer = { .opaque = env, .store = test_store, .commit = test_commit },
		.flusher = { .opaque = env, .flush = test_flush },
		.maxphyaddr = TEST_MAXPHYADDR,
		.nr_mmio_direct = 1,
	};
	struct shadow_fault_info info;
	u64 *pte, spte, flushes, zapped;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.mmio_direct[0] = bad[i];
		assert_null(shadow_create(&cfg));
	}
	cfg.nr_mmio_direct = SHADOW_MAX_MMIO_DIRECT + 1;
	assert_null(shadow_create(&cfg));

	remake_with_mmio_direct(env, 1, &lapic);
	pte = map_4k(env, GVA_4K, MMIO_GPA, SUPER_RW | PTE_PCD | PTE_PWT | PTE_D);
	map_4k(env, GVA_B, MMIO_GPA + PAGE_SIZE, SUPER_RW | PTE_D); /* just past the range */

	/* Mapped like RAM, the vCPU reaches the device itself: no SHADOW_MMIO. */
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, MMIO_GPA + 0xabc, PTE_RW | PTE_US);
	spte = leaf_spte_of(env, GVA_4K);
	assert_int_equal(spte & (PTE_PCD | PTE_PWT | PTE_PAT), PTE_PCD | PTE_PWT);
	assert_true(spte & SPTE_MMIO_DIRECT);
	assert_int_equal(stats(env)->rmap_live, 0);
	assert_int_equal(stats(env)->faults_mmio_direct, 1);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_USER); /* a supervisor page */

	/* Outside the range: still the VMM's MMIO. */
	assert_int_equal(fault(env, GVA_B, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_MMIO);
	assert_int_equal(info.gpa.v, MMIO_GPA + PAGE_SIZE);

	/* A PT write that changes only the caching bits updates the spte and flushes. */
	flushes = env->flush_all;
	guest_write_gpte(env, pte, MMIO_GPA | SUPER_RW | PTE_PCD | PTE_D | PTE_A);
	spte = leaf_spte_of(env, GVA_4K);
	assert_int_equal(spte & (PTE_PCD | PTE_PWT | PTE_PAT), PTE_PCD);
	assert_true(env->flush_all > flushes);
	/* (A fault through the PT between writes, or the third would unshadow it as flooded.) */
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);

	/* Retargeted to RAM: the spte enters the rmap; back to MMIO: it leaves it. */
	guest_write_gpte(env, pte, DATA_GPA | SUPER_RW | PTE_D | PTE_A);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);
	assert_int_equal(stats(env)->rmap_live, 1);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	guest_write_gpte(env, pte, MMIO_GPA | SUPER_RW | PTE_D | PTE_A);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, MMIO_GPA + 0xabc, PTE_RW | PTE_US);
	assert_int_equal(stats(env)->rmap_live, 0);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);

	/* Unmapped, then the whole table zapped: nothing to take out of the rmap. */
	guest_write_gpte(env, pte, 0);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_GUEST_FAULT);
	*pte = MMIO_GPA | SUPER_RW | PTE_D | PTE_A;
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	zapped = stats(env)->sp_zapped;
	guest_write_gpte(env, gptep_for(env, GVA_4K, PG_LEVEL_2M), 0); /* the PDE: the PT goes */
	assert_true(stats(env)->sp_zapped > zapped);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->rmap_live, 0);
}

static void test_smep_smap_kernel_view(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;

	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	map_4k(env, GVA_B, DATA2_GPA, SUPER_RW | PTE_D);

	/* SMEP: a guest-user page is mapped NX in the kernel view. */
	set_mode(env, CR0_DEFAULT, CR4_DEFAULT | CR4_SMEP, EFER_DEFAULT);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US | PTE_NX);
	assert_int_equal(fault(env, GVA_4K, ACC_FETCH, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_GUEST_FAULT);
	assert_int_equal(info.error_code, PFERR_PRESENT | PFERR_FETCH);
	/* A supervisor page stays executable. */
	assert_int_equal(fault(env, GVA_B, ACC_FETCH, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_B, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);
	/* The user view ignores SMEP. */
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, GVA_4K, ACC_FETCH, SHADOW_VIEW_USER, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_USER, DATA_GPA + 0xabc, PTE_RW | PTE_US);

	/* SMAP: guest-user pages are not mapped in the kernel view at all. */
	set_mode(env, CR0_DEFAULT, CR4_DEFAULT | CR4_SMAP, EFER_DEFAULT);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_GUEST_FAULT);
	assert_int_equal(info.error_code, PFERR_PRESENT);
	assert_int_equal(fault(env, GVA_4K, ACC_AC_SET | ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_EMULATE_ACCESS);
	assert_int_equal(info.gpa.v, DATA_GPA + 0xabc);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_B, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	/* The user view's root did not change with SMEP/SMAP. */
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_USER, DATA_GPA + 0xabc, PTE_RW | PTE_US);
}

static void test_cr0_wp_off_kernel_writes_read_only(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_GPA, PTE_P | PTE_US);
	set_mode(env, CR0_DEFAULT & ~CR0_WP, CR4_DEFAULT, EFER_DEFAULT);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_US); /* clean */
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);
	/* The user view still refuses the write. */
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_USER, NULL), SHADOW_GUEST_FAULT);
}

/* ---- dirty bits, write-protection, PT writes ----------------------------- */

static void test_dirty_bit_emulation(void **state)
{
	struct env *env = *state;
	u64 *pte = map_4k(env, GVA_4K, DATA_GPA, USER_RW);

	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_US);
	assert_true(*pte & PTE_A);
	assert_false(*pte & PTE_D);
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_true(*pte & PTE_D);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);
	/* The guest cleans it (page writeback): read-only again at once. */
	guest_write_gpte(env, pte, *pte & ~PTE_D);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_US);
	assert_int_equal(stats(env)->pt_write_updates, 1);
}

/* The gpa of the PT that maps GVA_4K. */
static gpa_t pt_of_gva_4k(struct env *env)
{
	return gpa_of_gptep(env, gptep_for(env, GVA_4K, PG_LEVEL_4K) - index_at(GVA_4K, 1));
}

static void test_write_protect_direct_map(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;
	gpa_t pt;
	u64 alias = 0x0000400000000000ull; /* the guest's own data mapping of its PT */
	mpa_t where;
	u64 rights;

	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	pt = pt_of_gva_4k(env);
	map_4k(env, alias, pt.v, SUPER_RW | PTE_D | PTE_A);
	/* The alias is mapped writable first, while nothing is shadowed. */
	assert_int_equal(fault(env, alias, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_RW | PTE_US);
	u64 flushes = env->flush_all;

	/* Shadowing the PT write-protects every mapping of it, with a flush. */
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_US);
	assert_true(env->flush_all > flushes);
	assert_true(stats(env)->write_protects >= 1);

	/* A guest write through the alias is a PT write to emulate. */
	assert_int_equal(
		fault(env, alias + 8 * index_at(GVA_4K, 1), ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
		SHADOW_EMULATE_PT_WRITE);
	assert_int_equal(info.gpa.v, pt.v + 8 * index_at(GVA_4K, 1));
	assert_int_equal(stats(env)->faults_pt_write, 1);
	/* Reads through it still work. */
	assert_true(shadow_translate(env->mmu, SHADOW_VIEW_KERNEL, gva(alias), &where, &rights));

	/* A new mapping of the shadowed PT, made afterwards, is read-only too. */
	map_4k(env, alias + 0x1000, pt.v, SUPER_RW | PTE_D | PTE_A);
	assert_int_equal(fault(env, alias + 0x1000, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_EMULATE_PT_WRITE);
	expect_mapped(env, alias + 0x1000, SHADOW_VIEW_KERNEL, pt.v, PTE_US);
}

/*
 * Out of sync (shadow/unsync.c): a guest write to a shadowed leaf table is
 * let through instead of emulated; the spte stays as it was (a TLB may
 * too) until the guest flushes: invlpg of the gva, or a CR3 load.
 */
static void test_unsync_leaf_table(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;
	u64 va = GVA_4K & ~0xfffull, alias = 0x0000400000000000ull, *pte, *pte2;
	gpa_t pt;
	unsigned i = index_at(va, 1);

	pte = map_4k(env, va, DATA_GPA, USER_RW | PTE_D | PTE_A);
	pte2 = map_4k(env, va + 0x1000, DATA_GPA + 0x1000, USER_RW | PTE_D | PTE_A);
	pt = gpa(gpa_of_gptep(env, pte).v & ~0xfffull);
	map_4k(env, alias, pt.v, SUPER_RW | PTE_D | PTE_A);
	assert_int_equal(fault(env, va, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, va + 0x1000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, alias, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_US); /* write-protected */

	/* The write fault lets the table out of sync: fixed, and the alias is writable. */
	assert_int_equal(fault(env, alias + 8 * i, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_FIXED);
	assert_int_equal(stats(env)->unsyncs, 1);
	assert_int_equal(stats(env)->faults_pt_write, 0);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_RW | PTE_US);

	/* The guest's stores run natively: the sptes still say what the gptes said. */
	*pte = 0;
	*pte2 = (DATA_GPA + 0x5000) | USER_RW | PTE_A; /* another frame, clean */
	expect_stale(env, va, SHADOW_VIEW_KERNEL, DATA_GPA, PTE_RW | PTE_US);
	expect_stale(env, va + 0x1000, SHADOW_VIEW_KERNEL, DATA_GPA + 0x1000, PTE_RW | PTE_US);

	/* invlpg syncs the gva's entry, and only what the guest asked for may be left stale. */
	shadow_invlpg(env->mmu, gva(va));
	expect_unmapped(env, va, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->unsync_updates, 1);

	/* A CR3 load syncs everything; the table stays out of sync for the next store. */
	set_cr3(env, env->cr3, SHADOW_VIEW_KERNEL);
	expect_mapped(env, va + 0x1000, SHADOW_VIEW_KERNEL, DATA_GPA + 0x5000, PTE_US);
	assert_int_equal(stats(env)->unsync_updates, 2);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_RW | PTE_US);

	/*
	 * A fault fills an entry from the gpte in memory, which the snapshot
	 * does not hold: when the guest puts the old value back, the next
	 * flush must still catch it.
	 */
	*pte = (DATA_GPA + 0x7000) | USER_RW | PTE_A | PTE_D;
	assert_int_equal(fault(env, va, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, va, SHADOW_VIEW_KERNEL, DATA_GPA + 0x7000, PTE_RW | PTE_US);
	*pte = 0;
	shadow_invlpg(env->mmu, gva(va));
	expect_unmapped(env, va, SHADOW_VIEW_KERNEL);

	/*
	 * A second table needs the only slot: the first is synced and
	 * write-protected again (its alias read-only).
	 */
	map_4k(env, va + 0x200000, DATA_GPA, USER_RW | PTE_D | PTE_A);
	map_4k(env, alias + 0x1000,
	       gpa_of_gptep(env, gptep_for(env, va + 0x200000, PG_LEVEL_4K)).v & ~0xfffull,
	       SUPER_RW | PTE_D | PTE_A);
	assert_int_equal(fault(env, va + 0x200000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	*pte2 = 0; /* a store the recycling sync must see */
	assert_int_equal(fault(env, alias + 0x1000, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_FIXED);
	assert_int_equal(stats(env)->unsyncs, 2);
	assert_int_equal(stats(env)->unsync_ends, 1);
	expect_unmapped(env, va + 0x1000, SHADOW_VIEW_KERNEL);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_US);
	/* Its next write takes the slot back, and the second table is synced in turn. */
	assert_int_equal(fault(env, alias + 8 * i, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_FIXED);
	assert_int_equal(stats(env)->unsyncs, 3);
	assert_int_equal(stats(env)->unsync_ends, 2);
	expect_mapped(env, alias + 0x1000, SHADOW_VIEW_KERNEL,
		      gpa_of_gptep(env, gptep_for(env, va + 0x200000, PG_LEVEL_4K)).v & ~0xfffull,
		      PTE_US);
}

/* A table frame the VMM approves for execution is write-protected again (its code is tracked). */
static void test_unsync_ends_at_exec_approve(void **state)
{
	struct env *env = *state;
	u64 va = GVA_4K & ~0xfffull, alias = 0x0000400000000000ull;
	u64 *pte = map_4k(env, va, DATA_GPA, USER_RW | PTE_D | PTE_A);
	gpa_t pt = gpa(gpa_of_gptep(env, pte).v & ~0xfffull);

	map_4k(env, alias, pt.v, SUPER_RW | PTE_D | PTE_A);
	assert_int_equal(fault(env, va, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, alias, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->unsyncs, 1);
	*pte = 0;
	shadow_exec_approve(env->mmu, gpa_to_gfn(pt));
	assert_int_equal(stats(env)->unsync_ends, 1);
	expect_unmapped(env, va, SHADOW_VIEW_KERNEL); /* synced on the way */
	assert_int_equal(fault(env, alias, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_EMULATE_PT_WRITE);
	assert_int_equal(stats(env)->unsyncs, 1);
}

/* A frame the guest also uses as an upper-level table never goes out of sync. */
static void test_unsync_not_upper_levels(void **state)
{
	struct env *env = *state;
	u64 alias = 0x0000400000000000ull;
	gpa_t pd = gpa_of_gptep(env, gptep_for(env, GVA_4K, PG_LEVEL_2M) - index_at(GVA_4K, 2));

	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D | PTE_A);
	map_4k(env, alias, pd.v, SUPER_RW | PTE_D | PTE_A);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, alias, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_EMULATE_PT_WRITE);
	assert_int_equal(stats(env)->unsyncs, 0);
}

static void test_pt_write_unmap_and_retarget(void **state)
{
	struct env *env = *state;
	u64 *pte = map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	u64 flushes;

	map_4k(env, GVA_B, DATA2_GPA, USER_RW | PTE_D);
	assert_int_equal(fault(env, GVA_4K, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);

	/* Change the target: the spte follows (A = 1, so no new fault needed). */
	flushes = env->flush_all;
	guest_write_gpte(env, pte, DATA2_GPA | USER_RW | PTE_D | PTE_A);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA2_GPA + 0xabc, PTE_RW | PTE_US);
	assert_true(env->flush_all > flushes);

	/* Unmap: the spte goes, and the real TLB is flushed. */
	flushes = env->flush_all;
	guest_write_gpte(env, pte, 0);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_true(env->flush_all > flushes);
	assert_int_equal(stats(env)->pt_writes, 2);
	assert_int_equal(stats(env)->pt_write_updates, 1);
	assert_int_equal(stats(env)->pt_write_zaps, 1);
	assert_int_equal(stats(env)->rmap_live, 0);

	/*
	 * A new present gpte with A = 1 is prefaulted. (A fault through the PT
	 * first, or this third write in a row would unshadow it as flooded.)
	 */
	assert_int_equal(fault(env, GVA_B, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	guest_write_gpte(env, pte, DATA_GPA | USER_RW | PTE_A);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_US);
}

static void test_pt_write_upper_level(void **state)
{
	struct env *env = *state;
	u64 *pde;
	u64 saved;

	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	map_4k(env, GVA_B, DATA2_GPA, USER_RW | PTE_D);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, GVA_B, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	pde = gptep_for(env, GVA_4K, PG_LEVEL_2M);
	saved = *pde;
	/* Only A/D-type bits change: the link stays. */
	guest_write_gpte(env, pde, saved | PTE_D);
	expect_mapped(env, GVA_B, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);
	/* Unlinking the PT drops the subtree; its PT is no longer shadowed. */
	guest_write_gpte(env, pde, 0);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	expect_unmapped(env, GVA_B, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->rmap_live, 0);
	/* Relink: faults rebuild it. */
	guest_write_gpte(env, pde, saved);
	assert_int_equal(fault(env, GVA_B, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_B, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);
}

static void test_write_flood_unshadows(void **state)
{
	struct env *env = *state;
	u64 alias = 0x0000400000000000ull;
	u64 *pte;
	gpa_t pt;
	unsigned i;

	pte = map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	pt = pt_of_gva_4k(env);
	map_4k(env, alias, pt.v, SUPER_RW | PTE_D | PTE_A);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, alias, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_US); /* write-protected */

	/* The guest reuses the page as data: writes with no fault through it. */
	for (i = 0; i < 3; i++) {
		u64 junk = 0x1111111111111111ull * (i + 1) & ~PTE_P;

		guest_write_gpte(env, pte + 1 + i, junk);
	}
	assert_int_equal(stats(env)->unshadows, 1);
	/* Write-protection lifted: the alias is writable again, at once. */
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_RW | PTE_US);
	assert_int_equal(fault(env, alias, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	/* And GVA_4K lost its shadow, rebuilt (and re-protected) on demand. */
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_US);
}

/* shadow_unshadow_gfn: what write flooding does, at once, on the VMM's word. */
static void test_unshadow_gfn(void **state)
{
	struct env *env = *state;
	u64 alias = 0x0000400000000000ull;
	gpa_t pt;

	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	pt = pt_of_gva_4k(env);
	map_4k(env, alias, pt.v, SUPER_RW | PTE_D | PTE_A);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, alias, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_US); /* write-protected */
	assert_true(shadow_unshadow_gfn(env->mmu, gpa_to_gfn(pt)));
	assert_int_equal(stats(env)->unshadows, 1);
	expect_mapped(env, alias, SHADOW_VIEW_KERNEL, pt.v, PTE_RW | PTE_US);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	/* A gfn that is not a table: nothing to do, and true. */
	assert_true(shadow_unshadow_gfn(env->mmu, gpa_to_gfn(gpa(DATA2_GPA))));
	assert_int_equal(stats(env)->unshadows, 1);
}

static void test_flood_counter_reset_by_use(void **state)
{
	struct env *env = *state;
	u64 *pte = map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	unsigned i;

	for (i = 0; i < 10; i++) {
		assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
		guest_write_gpte(env, pte, (i & 1 ? DATA_GPA : DATA2_GPA) | USER_RW | PTE_D);
	}
	assert_int_equal(stats(env)->unshadows, 0);
}

/* ---- roots ----------------------------------------------------------------- */

/*
 * A new address space that shares the kernel half (Linux copies init_mm's
 * PML4 entries): its root links the shadow of each shared table at once,
 * so the kernel runs on after the CR3 load without a fault per slot. A
 * slot whose PML4E has A = 0 waits for its fault (whose walk sets A), and
 * a slot whose table has no shadow yet is left alone (nothing allocated).
 */
#define GVA_KTEXT 0xffffffff81000000ull /* PML4 index 511 */
#define GVA_KMAP  0xffff888000123000ull /* PML4 index 273 */
#define GVA_KVM	  0xffffc90000001000ull /* PML4 index 402 */

static void test_new_root_prefill(void **state)
{
	struct env *env = *state;
	unsigned text = index_at(GVA_KTEXT, PG_LEVEL_PML4), map = index_at(GVA_KMAP, PG_LEVEL_PML4),
		 vm = index_at(GVA_KVM, PG_LEVEL_PML4);
	gpa_t pml4_a = gpa(env->cr3), pml4_b;
	u64 faults, created;

	map_4k(env, GVA_KTEXT, DATA_GPA, SUPER_RW | PTE_A | PTE_D);
	map_4k(env, GVA_KMAP, DATA2_GPA, SUPER_RW | PTE_A | PTE_D);
	map_4k(env, GVA_KVM, DATA2_GPA, SUPER_RW | PTE_A | PTE_D);
	assert_int_equal(fault(env, GVA_KTEXT, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, GVA_KMAP, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	/* GVA_KVM's tables were never walked: no shadow of them, and A = 0 above. */
	assert_true(*gptep_at(env, pml4_a, text) & PTE_A);
	assert_false(*gptep_at(env, pml4_a, vm) & PTE_A);

	pml4_b = gpa(new_address_space(env));
	*gptep_at(env, pml4_b, text) = *gptep_at(env, pml4_a, text);
	*gptep_at(env, pml4_b, map) = *gptep_at(env, pml4_a, map) & ~PTE_A;
	*gptep_at(env, pml4_b, vm) = *gptep_at(env, pml4_a, vm) | PTE_A;
	faults = stats(env)->faults;
	created = stats(env)->sp_created;
	set_cr3(env, pml4_b.v, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->root_prefills, 1);
	assert_int_equal(stats(env)->sp_created, created + 1); /* the root alone */
	expect_mapped(env, GVA_KTEXT, SHADOW_VIEW_KERNEL, DATA_GPA, PTE_RW | PTE_US);
	expect_unmapped(env, GVA_KMAP, SHADOW_VIEW_KERNEL);
	expect_unmapped(env, GVA_KVM, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->faults, faults);

	/* The A = 0 slot: its fault sets A, as the CPU would, and links the shared shadow. */
	assert_int_equal(fault(env, GVA_KMAP, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_true(*gptep_at(env, pml4_b, map) & PTE_A);
	expect_mapped(env, GVA_KMAP, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);
	/* The user view has no shadow of supervisor tables to link. */
	set_cr3(env, pml4_b.v, SHADOW_VIEW_USER);
	assert_int_equal(stats(env)->root_prefills, 1);
	expect_unmapped(env, GVA_KTEXT, SHADOW_VIEW_USER);
	/* A write to the shared table reaches both roots' view of it. */
	guest_write_gpte(env, gptep_for(env, GVA_KTEXT, PG_LEVEL_4K),
			 DATA2_GPA | SUPER_RW | PTE_A | PTE_D);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_agrees(env, GVA_KTEXT, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_KTEXT, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_KTEXT, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);
	set_cr3(env, pml4_a.v, SHADOW_VIEW_KERNEL);
	expect_mapped(env, GVA_KTEXT, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);
}

/*
 * A write to a table that no root of the current CR3 reaches unshadows it
 * at once (exec's old address space torn down after the switch, a freed
 * table's page reused). The current address space's tables stay shadowed
 * and are updated in place: those it shares, and those only its user view
 * shadows, whose root is not instantiated right after a CR3 load.
 */
static void test_inactive_table_write_unshadows(void **state)
{
	struct env *env = *state;
	unsigned text = index_at(GVA_KTEXT, PG_LEVEL_PML4);
	u64 cr3_a = env->cr3, cr3_b, *pte_a, *pte_shared, *pte_user, faults, zapped;

	pte_a = map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_A | PTE_D);
	pte_shared = map_4k(env, GVA_KTEXT, DATA_GPA, SUPER_RW | PTE_A | PTE_D);
	pte_user = map_4k(env, GVA_2M, DATA_GPA, USER_RW | PTE_A | PTE_D);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(fault(env, GVA_KTEXT, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);

	/* B shares A's kernel half. */
	cr3_b = new_address_space(env);
	*gptep_at(env, gpa(cr3_b), text) = *gptep_at(env, gpa(cr3_a), text);
	set_cr3(env, cr3_b, SHADOW_VIEW_KERNEL);
	guest_write_gpte(env, pte_shared, DATA2_GPA | SUPER_RW | PTE_A | PTE_D);
	assert_int_equal(stats(env)->unshadows_inactive, 0);
	expect_mapped(env, GVA_KTEXT, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);

	/* A's own tables, written while B runs: unshadowed at the first write. */
	zapped = stats(env)->sp_zapped;
	guest_write_gpte(env, pte_a, DATA2_GPA | USER_RW | PTE_A | PTE_D);
	assert_int_equal(stats(env)->unshadows_inactive, 1);
	assert_int_equal(stats(env)->sp_zapped, zapped + 1);
	guest_write_gpte(env, pte_a + 1, DATA_GPA | USER_RW | PTE_A | PTE_D);
	assert_int_equal(stats(env)->unshadows_inactive, 1); /* nothing shadows it now */

	/* Back on A, the kernel view current: rebuilt from the tables as they are now. */
	set_cr3(env, cr3_a, SHADOW_VIEW_KERNEL);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA2_GPA + 0xabc, PTE_RW | PTE_US);
	/* A table only A's user view shadows is A's: updated in place, no fault after. */
	faults = stats(env)->faults;
	guest_write_gpte(env, pte_user, DATA2_GPA | USER_RW | PTE_A | PTE_D);
	assert_int_equal(stats(env)->unshadows_inactive, 1);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_USER, DATA2_GPA + (GVA_2M & 0xfff), PTE_RW | PTE_US);
	assert_int_equal(stats(env)->faults, faults);
}

/*
 * A freed sp keeps its entries (no store into a page being freed), and
 * zeroing them again costs a store each (a vCPU replay on PVM): the pool
 * hands out pages that are already zero first.
 */
static void test_pool_clean_pages_first(void **state)
{
	struct env *env = *state;
	u64 *pde;

	/* A pool given zeroed, as the VMM's is. */
	memset(env->pool, 0, env->pool_pages * PAGE_SIZE);
	env->pool_zeroed = true;
	remake_mmu(env, false, false);
	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_A | PTE_D);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	/* The guest unlinks the PT: its sp goes, its leaf left in the page. */
	pde = gptep_for(env, GVA_4K, PG_LEVEL_2M);
	guest_write_gpte(env, pde, 0);
	assert_int_equal(stats(env)->sp_zapped, 1);
	/* Three new sps come from pages never used: nothing to zero. */
	map_4k(env, GVA_2M, DATA_GPA, USER_RW | PTE_A | PTE_D);
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->sp_created, 7);
	assert_int_equal(stats(env)->pool_clears, 0);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, DATA_GPA + (GVA_2M & 0xfff),
		      PTE_RW | PTE_US);

	/* A pool of garbage (not zeroed): every page is zeroed at its first use. */
	memset(env->pool, 0xa5, env->pool_pages * PAGE_SIZE);
	env->pool_zeroed = false;
	remake_mmu(env, false, false);
	assert_int_equal(stats(env)->pool_clears, SPTE_PER_PAGE); /* the root */
	assert_int_equal(fault(env, GVA_2M, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_2M, SHADOW_VIEW_KERNEL, DATA_GPA + (GVA_2M & 0xfff),
		      PTE_RW | PTE_US);
}

static void test_cr3_switch_hits_and_reuse(void **state)
{
	struct env *env = *state;
	u64 cr3_a = env->cr3, cr3_b;
	mpa_t root_a, root_b, again;
	u64 hits, misses;

	map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	root_a = shadow_set_cr3(env->mmu, cr3_a, SHADOW_VIEW_KERNEL);
	hits = stats(env)->root_hits;
	misses = stats(env)->root_misses;

	cr3_b = new_address_space(env);
	map_4k(env, GVA_4K, DATA2_GPA, USER_RW | PTE_D);
	set_cr3(env, cr3_b, SHADOW_VIEW_KERNEL);
	root_b = shadow_set_cr3(env->mmu, cr3_b, SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->root_misses, misses + 1);
	assert_true(root_a.v != root_b.v);
	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA2_GPA + 0xabc, PTE_RW | PTE_US);

	/* Back to A, with a PCID and the no-flush bit: the same root, still filled. */
	set_mode(env, CR0_DEFAULT, CR4_DEFAULT | CR4_PCIDE, EFER_DEFAULT);
	env->cr3 = cr3_a;
	env->ctl.cr3 = cr3_a | 5 | CR3_NOFLUSH;
	again = shadow_set_cr3(env->mmu, cr3_a | 5 | CR3_NOFLUSH, SHADOW_VIEW_KERNEL);
	assert_int_equal(again.v, root_a.v);
	expect_mapped(env, GVA_4K, SHADOW_VIEW_KERNEL, DATA_GPA + 0xabc, PTE_RW | PTE_US);
	assert_true(stats(env)->root_hits > hits);
	assert_int_equal(stats(env)->roots_live, 2);

	/* The root of a view is shadow_switch_view's answer too. */
	assert_int_equal(shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL).v, root_a.v);
	assert_true(shadow_switch_view(env->mmu, SHADOW_VIEW_USER).v != root_a.v);
	assert_int_equal(stats(env)->roots_live, 3);
}

static void test_pt_write_in_non_current_root(void **state)
{
	struct env *env = *state;
	u64 cr3_a = env->cr3;
	u64 *pte = map_4k(env, GVA_4K, DATA_GPA, USER_RW | PTE_D);

	assert_int_equal(fault(env, GVA_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	set_cr3(env, new_address_space(env), SHADOW_VIEW_KERNEL);
	/* While B runs, A's process gets its page unmapped (e.g. by the kernel). */
	guest_write_gpte(env, pte, 0);
	set_cr3(env, cr3_a, SHADOW_VIEW_KERNEL);
	expect_unmapped(env, GVA_4K, SHADOW_VIEW_KERNEL);
}

static void test_reserved_pml4_slot(void **state)
{
	struct env *env = *state;
	const u64 monitor_pml4e = 0x7654321000ull | PTE_P | PTE_RW;
	struct shadow_fault_info info;
	mpa_t root;
	u64 *root_hva;

	root = shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_int_equal(shadow_reserve_pml4(env->mmu, 256, monitor_pml4e), 0);
	assert_int_equal(shadow_reserve_pml4(env->mmu, 256, monitor_pml4e), -EINVAL);
	assert_int_equal(shadow_reserve_pml4(env->mmu, 512, monitor_pml4e), -EINVAL);
	/* An existing root got the entry ... */
	root_hva = (u64 *)((u8 *)env->pool + (root.v - POOL_MPA));
	assert_int_equal(root_hva[256], monitor_pml4e);
	/* ... and so does a new one. */
	set_cr3(env, new_address_space(env), SHADOW_VIEW_USER);
	root = shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	root_hva = (u64 *)((u8 *)env->pool + (root.v - POOL_MPA));
	assert_int_equal(root_hva[256], monitor_pml4e);

	/* Nothing mapped there by the guest: its own #PF. */
	assert_int_equal(fault(env, GVA_MON, 0, SHADOW_VIEW_USER, &info), SHADOW_GUEST_FAULT);
	/* The guest maps the slot: refused. */
	map_4k(env, GVA_MON, DATA_GPA, USER_RW | PTE_D);
	assert_int_equal(fault(env, GVA_MON, 0, SHADOW_VIEW_USER, &info), SHADOW_MONITOR_CONFLICT);
	assert_int_equal(fault(env, GVA_MON, 0, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_MONITOR_CONFLICT);
	/* A PT write into that PML4 slot never touches the monitor's entry. */
	guest_write_gpte(env, gptep_for(env, GVA_MON, PG_LEVEL_PML4), 0);
	assert_int_equal(root_hva[256], monitor_pml4e);
	assert_int_equal(stats(env)->faults_monitor_conflict, 2);
}

/* The spte at `level` on the path to `va` in the live root of `view`, as the CPU reads it. */
static u64 shadow_entry(struct env *env, u64 va, enum shadow_view view, unsigned level)
{
	u64 table = shadow_switch_view(env->mmu, view).v;

	for (unsigned l = PG_LEVEL_PML4;; l--) {
		u64 spte = ((u64 *)((u8 *)env->pool + (table - POOL_MPA)))[index_at(va, l)];

		if (l == level)
			return spte;
		assert_true(spte & PTE_P);
		table = spte & PTE_ADDR_MASK(52); /* the pool is above the guest MAXPHYADDR */
	}
}

static void test_call_window(void **state)
{
	struct env *env = *state;
	const u64 win_pde = 0x7654322000ull | PTE_P | PTE_RW | PTE_US;
	const u64 win_pdpte = 0x7654323000ull | PTE_P | PTE_RW | PTE_US;
	struct shadow_fault_info info;
	u64 *pml4e, *pdpte, *pde;

	assert_int_equal(shadow_set_window(env->mmu, gva(GVA_WIN + PAGE_SIZE), win_pde, win_pdpte),
			 -EINVAL);
	assert_int_equal(shadow_set_window(env->mmu, gva(GVA_WIN), win_pde, win_pdpte), 0);
	assert_int_equal(shadow_set_window(env->mmu, gva(GVA_WIN), win_pde, win_pdpte), -EINVAL);

	/* The guest's tables reach the window's PD (a fixmap page), without A above it. */
	map_4k(env, GVA_FIXMAP, DATA_GPA, SUPER_RW | PTE_A | PTE_D);
	pml4e = gptep_for(env, GVA_WIN, PG_LEVEL_PML4);
	pdpte = gptep_for(env, GVA_WIN, PG_LEVEL_1G);
	pde = gptep_for(env, GVA_WIN, PG_LEVEL_2M);
	assert_false(*pml4e & PTE_A);
	assert_false(*pde & PTE_P);

	/* The user view never has the window: the guest's own #PF. */
	assert_int_equal(fault(env, GVA_WIN, ACC_FETCH, SHADOW_VIEW_USER, &info),
			 SHADOW_GUEST_FAULT);
	/* The kernel view links it, setting A as the CPU would. */
	assert_int_equal(fault(env, GVA_WIN + 0x10, ACC_FETCH, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_FIXED);
	assert_true(*pml4e & PTE_A);
	assert_true(*pdpte & PTE_A);
	assert_int_equal(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_2M), win_pde);
	assert_int_equal(stats(env)->window_links, 1);
	/* It is not the guest's: translate says nothing is mapped there for the guest. */
	expect_unmapped(env, GVA_WIN, SHADOW_VIEW_KERNEL);
	/* The guest's neighbour in the same PD is shadowed as usual. */
	assert_int_equal(fault(env, GVA_FIXMAP, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_FIXED);
	expect_mapped(env, GVA_FIXMAP, SHADOW_VIEW_KERNEL, DATA_GPA, PTE_RW | PTE_US);
	assert_int_equal(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_2M), win_pde);
	/* A fault with the window linked is an access its PT refuses: no retry loop. */
	assert_int_equal(fault(env, GVA_WIN, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_MONITOR_CONFLICT);

	/* The guest unlinks the PD: the shadow PD goes, the window with it ... */
	guest_write_gpte(env, pdpte, 0);
	assert_false(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_1G) & PTE_P);
	/* ... and comes back with the PD (a fresh sp: the mark was reset). */
	guest_write_gpte(env, pdpte,
			 (gpa_of_gptep(env, pde).v & ~(u64)(PAGE_SIZE - 1)) | TABLE_FLAGS | PTE_A);
	assert_int_equal(fault(env, GVA_WIN, ACC_FETCH, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	assert_int_equal(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_2M), win_pde);
	assert_int_equal(stats(env)->window_links, 2);

	/* The guest maps a table of its own in the window: the link goes, access refused. */
	guest_write_gpte(env, pde, alloc_table(env).v | TABLE_FLAGS);
	assert_false(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_2M) & PTE_P);
	assert_int_equal(fault(env, GVA_WIN, ACC_FETCH, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_MONITOR_CONFLICT);
	/* Its own page there: refused too. */
	map_4k(env, GVA_WIN, DATA2_GPA, SUPER_RW | PTE_A | PTE_D);
	assert_int_equal(fault(env, GVA_WIN, 0, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_MONITOR_CONFLICT);
	/* Eviction of everything never touches the VMM's entry (sp_zap skips it). */
	set_cr3(env, new_address_space(env), SHADOW_VIEW_KERNEL);
}

/* shadow_clear_window: every link goes, and the addresses are the guest's again. */
static void test_call_window_clear(void **state)
{
	struct env *env = *state;
	const u64 win_pde = 0x7654322000ull | PTE_P | PTE_RW | PTE_US;
	const u64 win_pdpte = 0x7654323000ull | PTE_P | PTE_RW | PTE_US;
	struct shadow_fault_info info;
	u64 flushes = env->flush_all;

	map_4k(env, GVA_FIXMAP, DATA_GPA, SUPER_RW | PTE_A | PTE_D);
	shadow_clear_window(env->mmu); /* none set: nothing happens */
	assert_int_equal(shadow_set_window(env->mmu, gva(GVA_WIN), win_pde, win_pdpte), 0);
	assert_int_equal(fault(env, GVA_WIN, ACC_FETCH, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	assert_int_equal(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_2M), win_pde);
	shadow_clear_window(env->mmu);
	assert_int_equal(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_2M), 0);
	assert_true(env->flush_all > flushes);
	/* The guest's own #PF now, and its own mapping there is simply shadowed. */
	assert_int_equal(fault(env, GVA_WIN, ACC_FETCH, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_GUEST_FAULT);
	map_4k(env, GVA_WIN, DATA2_GPA, SUPER_RW | PTE_A | PTE_D);
	assert_int_equal(fault(env, GVA_WIN, 0, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	expect_mapped(env, GVA_WIN, SHADOW_VIEW_KERNEL, DATA2_GPA, PTE_RW | PTE_US);
	/* It may be set again. */
	assert_int_equal(shadow_set_window(env->mmu, gva(GVA_WIN), win_pde, win_pdpte), 0);
}

static void test_call_window_no_tables(void **state)
{
	struct env *env = *state;
	const u64 win_pde = 0x7654322000ull | PTE_P | PTE_RW | PTE_US;
	const u64 win_pdpte = 0x7654323000ull | PTE_P | PTE_RW | PTE_US;
	struct shadow_fault_info info;
	u64 *pdpte;

	assert_int_equal(shadow_set_window(env->mmu, gva(GVA_WIN), win_pde, win_pdpte), 0);
	/* No PML4E over the window: nothing to hang it on. */
	assert_int_equal(fault(env, GVA_WIN, ACC_FETCH, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_MONITOR_CONFLICT);
	/* A PDPT without an entry over it (testos): the VMM's PD is linked into its shadow. */
	map_4k(env, 0xffffffff80000000ull, DATA_GPA, SUPER_RW | PTE_A | PTE_D);
	pdpte = gptep_for(env, GVA_WIN, PG_LEVEL_1G);
	assert_false(*pdpte & PTE_P);
	assert_int_equal(fault(env, GVA_WIN, ACC_FETCH, SHADOW_VIEW_KERNEL, &info), SHADOW_FIXED);
	assert_int_equal(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_1G), win_pdpte);
	expect_unmapped(env, GVA_WIN, SHADOW_VIEW_KERNEL);
	/* The kernel text beside it is the guest's as ever. */
	assert_int_equal(fault(env, 0xffffffff80000000ull, 0, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_FIXED);
	expect_mapped(env, 0xffffffff80000000ull, SHADOW_VIEW_KERNEL, DATA_GPA, PTE_RW | PTE_US);
	/* The guest puts a 1 GiB page there: the link goes, and the access is refused. */
	guest_write_gpte(env, pdpte, (DATA_GPA & ~(GiB - 1)) | SUPER_RW | PTE_PS | PTE_A);
	assert_false(shadow_entry(env, GVA_WIN, SHADOW_VIEW_KERNEL, PG_LEVEL_1G) & PTE_P);
	assert_int_equal(fault(env, GVA_WIN, 0, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_MONITOR_CONFLICT);
	assert_int_equal(stats(env)->window_links, 1);
}

static void test_invalidation_asks_flusher(void **state)
{
	struct env *env = *state;
	u64 all = env->flush_all;

	shadow_invlpg(env->mmu, gva(GVA_4K));
	assert_int_equal(env->flush_gva, 1);
	assert_int_equal(env->last_flush_gva.v, GVA_4K);
	shadow_invpcid(env->mmu, 0, 0, gva(GVA_B));
	assert_int_equal(env->flush_gva, 2);
	assert_int_equal(env->last_flush_gva.v, GVA_B);
	shadow_invpcid(env->mmu, 1, 7, gva(0));
	assert_int_equal(env->flush_all, all + 1);
	shadow_flush(env->mmu, SHADOW_FLUSH_NONGLOBAL);
	shadow_flush(env->mmu, SHADOW_FLUSH_EVERYTHING);
	assert_int_equal(env->flush_all, all + 3);
	assert_int_equal(stats(env)->flushes, 5);
}

/* ---- eviction -------------------------------------------------------------- */

#define EVICT_SPACES 12
#define EVICT_PAGES  6

static u64 evict_gva(unsigned page)
{
	/* Spread over different PDPTs, PDs and PTs so each needs its own tables. */
	return ((u64)(page + 1) << 39) | ((u64)page << 30) | ((u64)page << 21) | ((u64)page << 12);
}

static void test_eviction_tiny_pool(void **state)
{
	struct env *env = *state;
	u64 cr3s[EVICT_SPACES];
	unsigned s, p, round;

	for (s = 0; s < EVICT_SPACES; s++) {
		cr3s[s] = new_address_space(env);
		for (p = 0; p < EVICT_PAGES; p++)
			map_4k(env, evict_gva(p), DATA_GPA + ((s * EVICT_PAGES + p) << PAGE_SHIFT),
			       USER_RW | PTE_D);
	}
	for (round = 0; round < 3; round++) {
		for (s = 0; s < EVICT_SPACES; s++) {
			enum shadow_view view = (s + round) & 1;

			set_cr3(env, cr3s[s], view);
			for (p = 0; p < EVICT_PAGES; p++) {
				u64 va = evict_gva(p);
				u64 expect = DATA_GPA + ((s * EVICT_PAGES + p) << PAGE_SHIFT);
				unsigned q;

				assert_int_equal(fault(env, va, ACC_WRITE, view, NULL),
						 SHADOW_FIXED);
				expect_mapped(env, va, view, expect, PTE_RW | PTE_US);
				/* Whatever else is still mapped is still right. */
				for (q = 0; q < EVICT_PAGES; q++) {
					assert_agrees(env, evict_gva(q), SHADOW_VIEW_KERNEL);
					assert_agrees(env, evict_gva(q), SHADOW_VIEW_USER);
				}
			}
		}
	}
	assert_true(stats(env)->evictions > 0);
	assert_true(stats(env)->pool_clears > 0); /* no clean page left: dirty ones zeroed */
	assert_true(stats(env)->sp_live <= 16);
	assert_int_equal(stats(env)->sp_created - stats(env)->sp_zapped, stats(env)->sp_live);
}

/* ---- a random walk through all of the above ---------------------------- */

#define RND_SPACES 3
#define RND_GVAS   24
#define RND_OPS	   20000

static u64 rnd_state;

static u64 rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Gvas sharing and not sharing tables, in two PML4 slots. */
static u64 rnd_gva(unsigned i)
{
	return ((u64)(i % 2) << 39) | ((u64)(i / 12) << 30) | ((u64)((i / 4) % 3) << 21) |
	       ((u64)(i % 4) << 12) | 0x10;
}

static u64 rnd_flags(void)
{
	u64 f = PTE_P;

	f |= (rnd() & 1) ? PTE_RW : 0;
	f |= (rnd() & 3) ? PTE_US : 0;
	f |= (rnd() & 1) ? PTE_A : 0;
	f |= (rnd() & 1) ? PTE_D : 0;
	f |= (rnd() & 3) ? 0 : PTE_NX;
	return f;
}

static void check_all(struct env *env)
{
	unsigned i;

	for (i = 0; i < RND_GVAS; i++) {
		assert_agrees(env, rnd_gva(i), SHADOW_VIEW_KERNEL);
		assert_agrees(env, rnd_gva(i), SHADOW_VIEW_USER);
	}
}

/*
 * A prefault among random operations: the guest's tables (all of them live
 * in the table pool) are not written, and what it maps allows the access.
 */
static void random_prefault(struct env *env, u64 va, u32 access)
{
	size_t len = env->next_table.v - TABLE_POOL_GPA;
	u8 *before = malloc(len);
	mpa_t where;
	u64 rights;

	assert_non_null(before);
	memcpy(before, env->ram + TABLE_POOL_GPA, len);
	if (shadow_prefault(env->mmu, gva(va), access)) {
		assert_true(shadow_translate(env->mmu, SHADOW_VIEW_USER, gva(va), &where, &rights));
		if (access & ACC_WRITE)
			assert_true(rights & PTE_RW);
		if (access & ACC_FETCH)
			assert_false(rights & PTE_NX);
	}
	assert_memory_equal(before, env->ram + TABLE_POOL_GPA, len);
	free(before);
}

static void random_ops(struct env *env)
{
	u64 cr3s[RND_SPACES];
	gpa_t tables[64];
	u64 saved[RND_SPACES][RND_GVAS] = { { 0 } };
	unsigned nr_tables = 0, s, i, op;

	for (s = 0; s < RND_SPACES; s++) {
		env->cr3 = cr3s[s] = new_address_space(env);
		tables[nr_tables++] = gpa(cr3s[s]);
		for (i = 0; i < RND_GVAS; i++) {
			u64 *pte = gptep_for(env, rnd_gva(i), PG_LEVEL_4K);

			*pte = 0;
			if (i % 4 == 0 && nr_tables < ARRAY_SIZE(tables))
				tables[nr_tables++] =
					gpa_of_gptep(env, pte - index_at(rnd_gva(i), 1));
		}
	}
	set_cr3(env, cr3s[0], SHADOW_VIEW_KERNEL);
	for (op = 0; op < RND_OPS; op++) {
		unsigned kind = rnd() % 16;
		u64 va = rnd_gva(rnd() % RND_GVAS);
		enum shadow_view view = rnd() & 1;

		if (kind < 6) {
			u32 access = (u32[]){ 0, ACC_WRITE, ACC_FETCH,
					      ACC_WRITE | ACC_AC_SET }[rnd() % 4];
			struct shadow_fault_info info;

			enum shadow_fault_result r;
			mpa_t where;
			u64 rights;

			(void)shadow_switch_view(env->mmu, view);
			if (view == SHADOW_VIEW_USER && rnd() % 4 == 0) {
				random_prefault(env, va, access | ACC_USER);
				goto checks;
			}
			r = fault(env, va, access, view, &info);
			/* Progress: a fixed access does not fault again. */
			if (r == SHADOW_FIXED) {
				assert_true(
					shadow_translate(env->mmu, view, gva(va), &where, &rights));
				if (access & ACC_WRITE)
					assert_true(rights & PTE_RW);
				if (access & ACC_FETCH)
					assert_false(rights & PTE_NX);
			}
			if (r == SHADOW_EMULATE_PT_WRITE)
				assert_true(
					shadow_translate(env->mmu, view, gva(va), &where, &rights));
		} else if (kind < 9) {
			/* Map a data page, or a guest table as data. */
			u64 target = (rnd() % 4) ? DATA_GPA + (rnd() % 64) * PAGE_SIZE
						 : tables[rnd() % nr_tables].v;

			guest_write_gpte(env, gptep_for(env, va, PG_LEVEL_4K),
					 target | rnd_flags());
		} else if (kind < 10) {
			guest_write_gpte(env, gptep_for(env, va, PG_LEVEL_4K), 0);
		} else if (kind < 11) {
			/* Flip an upper gpte: cut, restore, or make it a 2 MiB page. */
			u64 *pde = gptep_for(env, va, PG_LEVEL_2M);
			unsigned slot = (unsigned)((va >> 21) % RND_GVAS);

			if ((*pde & PTE_P) && !(*pde & PTE_PS)) {
				saved[(env->cr3 - cr3s[0]) % RND_SPACES][slot] = *pde;
				u64 choice = rnd() % 3;

				/* Unlink, a 2 MiB page, or a table reused at another level. */
				guest_write_gpte(env, pde,
						 choice == 0   ? 0
						 : choice == 1 ? 0x200000 | PTE_PS | rnd_flags()
							       : tables[rnd() % nr_tables].v |
									 rnd_flags());
			} else if (saved[(env->cr3 - cr3s[0]) % RND_SPACES][slot]) {
				guest_write_gpte(env, pde,
						 saved[(env->cr3 - cr3s[0]) % RND_SPACES][slot]);
			}
		} else if (kind < 13) {
			set_cr3(env, cr3s[rnd() % RND_SPACES], view);
		} else if (kind < 14) {
			u64 cr0 = CR0_DEFAULT & ~((rnd() & 3) ? 0 : CR0_WP);
			u64 cr4 = CR4_DEFAULT | ((rnd() & 1) ? CR4_SMEP : 0) |
				  ((rnd() & 1) ? CR4_SMAP : 0);

			set_mode(env, cr0, cr4, EFER_DEFAULT);
			(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
			(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
		} else if (kind < 15) {
			shadow_invlpg(env->mmu, gva(va));
		} else {
			shadow_flush(env->mmu, SHADOW_FLUSH_NONGLOBAL);
		}
	checks:
		check_all(env);
		assert_int_equal(stats(env)->sp_created - stats(env)->sp_zapped,
				 stats(env)->sp_live);
	}
	print_message(
		"faults %lu fixed %lu guest %lu ptw %lu mmio %lu smap %lu | sp %lu/%lu "
		"rmap %lu wp %lu | pt_writes %lu upd %lu zaps %lu unshadow %lu | roots %lu/%lu "
		"live %lu evict %lu stores %lu\n",
		stats(env)->faults, stats(env)->faults_fixed, stats(env)->faults_guest,
		stats(env)->faults_pt_write, stats(env)->faults_mmio,
		stats(env)->faults_emulate_access, stats(env)->sp_live, stats(env)->sp_created,
		stats(env)->rmap_live, stats(env)->write_protects, stats(env)->pt_writes,
		stats(env)->pt_write_updates, stats(env)->pt_write_zaps, stats(env)->unshadows,
		stats(env)->root_hits, stats(env)->root_misses, stats(env)->roots_live,
		stats(env)->evictions, stats(env)->stores);
}

/* SHADOW_SEED=n in the environment replays another random walk. */
static u64 seed_or(u64 fallback)
{
	const char *env_seed = getenv("SHADOW_SEED");
	u64 seed = env_seed ? strtoull(env_seed, NULL, 0) : fallback;

	print_message("seed %#lx\n", seed);
	return seed ? seed : 1;
}

static void test_random_ops_agree_with_walker(void **state)
{
	rnd_state = seed_or(0x2545f4914f6cdd1dull);
	random_ops(*state);
}

static void test_random_ops_tiny_pool(void **state)
{
	rnd_state = seed_or(0x9e3779b97f4a7c15ull);
	random_ops(*state);
	assert_true(stats((struct env *)*state)->evictions > 0);
}

/*
 * The execution gate (mmu.h, exec_gate): kernel-view sptes of guest RAM
 * are NX until the frame is approved; a kernel fetch there is
 * SHADOW_EXEC_UNSCANNED; approval drops NX and write-tracks the frame
 * (writes are SHADOW_EMULATE_PT_WRITE); revocation undoes both. The user
 * view is never gated, and a guest-NX page stays NX.
 */
static void test_exec_gate(void **state)
{
	struct env *env = *state;
	struct shadow_fault_info info;
	mpa_t where;
	u64 rights, flushes;

	const u64 PG_4K = GVA_4K & ~0xfffull;

	remake_mmu(env, false, true);
	map_4k(env, PG_4K, DATA_GPA, USER_RW | PTE_D | PTE_A);
	map_4k(env, GVA_B, DATA_GPA + PAGE_SIZE, SUPER_RW | PTE_D | PTE_A | PTE_NX);

	/* A read maps the page, NX, writable: nothing is approved yet. */
	assert_int_equal(fault(env, PG_4K, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_true(shadow_translate(env->mmu, SHADOW_VIEW_KERNEL, gva(PG_4K), &where, &rights));
	assert_int_equal(rights & (PTE_NX | PTE_RW), PTE_NX | PTE_RW);
	/* A kernel fetch is for the VMM to scan. */
	assert_int_equal(fault(env, PG_4K + 0x10, ACC_FETCH, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_EXEC_UNSCANNED);
	assert_int_equal(info.gpa.v, DATA_GPA + 0x10);
	assert_int_equal(stats(env)->faults_exec_unscanned, 1);
	/* The user view is not gated. */
	assert_int_equal(fault(env, PG_4K, ACC_FETCH, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	assert_true(shadow_translate(env->mmu, SHADOW_VIEW_USER, gva(PG_4K), &where, &rights));
	assert_int_equal(rights & PTE_NX, 0);

	/* Approved: executable, and write-tracked in every view. */
	flushes = env->flush_all;
	shadow_exec_approve(env->mmu, gfn(DATA_GPA >> PAGE_SHIFT));
	shadow_exec_approve(env->mmu, gfn(DATA_GPA >> PAGE_SHIFT)); /* idempotent */
	assert_true(env->flush_all > flushes);
	assert_true(shadow_translate(env->mmu, SHADOW_VIEW_KERNEL, gva(PG_4K), &where, &rights));
	assert_int_equal(rights & (PTE_NX | PTE_RW), 0);
	assert_true(shadow_translate(env->mmu, SHADOW_VIEW_USER, gva(PG_4K), &where, &rights));
	assert_int_equal(rights & PTE_RW, 0);
	assert_int_equal(fault(env, PG_4K + 8, ACC_WRITE, SHADOW_VIEW_KERNEL, &info),
			 SHADOW_EMULATE_PT_WRITE);
	assert_int_equal(info.gpa.v, DATA_GPA + 8);
	assert_int_equal(fault(env, PG_4K, ACC_FETCH, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);

	/* A guest-NX page is a guest #PF on fetch, never a scan. */
	assert_int_equal(fault(env, GVA_B, ACC_FETCH, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_GUEST_FAULT);

	/* Revoked: NX again (with a flush), writable again. */
	flushes = env->flush_all;
	assert_true(shadow_exec_revoke(env->mmu, gfn(DATA_GPA >> PAGE_SHIFT)));
	assert_false(shadow_exec_revoke(env->mmu, gfn(DATA_GPA >> PAGE_SHIFT)));
	assert_true(env->flush_all > flushes);
	assert_true(shadow_translate(env->mmu, SHADOW_VIEW_KERNEL, gva(PG_4K), &where, &rights));
	assert_int_equal(rights & (PTE_NX | PTE_RW), PTE_NX | PTE_RW);
	assert_int_equal(fault(env, PG_4K, ACC_FETCH, SHADOW_VIEW_KERNEL, NULL),
			 SHADOW_EXEC_UNSCANNED);
	assert_int_equal(stats(env)->exec_approves, 1);
	assert_int_equal(stats(env)->exec_revokes, 1);
}

/* ---- prefetch ------------------------------------------------------------ */

#define GVA_GROUP 0x00007f1234560000ull /* PT index 352: a group of 8 starts there */
#define PG(i)	  (GVA_GROUP + (u64)(i)*PAGE_SIZE)

/*
 * A fault fills the empty sptes of its group of 8 exactly where a fault
 * would (present, A = 1, RAM, no reserved bits; writable only when dirty),
 * never beyond the group, and never touches a present spte.
 */
static void test_prefetch_group(void **state)
{
	struct env *env = *state;
	u64 *g[9];

	g[0] = map_4k(env, PG(0), DATA_GPA, USER_RW | PTE_A | PTE_D);
	g[1] = map_4k(env, PG(1), DATA_GPA + 0x1000, USER_RW | PTE_A); /* clean */
	g[2] = map_4k(env, PG(2), DATA_GPA + 0x2000, USER_RW);	       /* A = 0 */
	g[3] = map_4k(env, PG(3), DATA_GPA + 0x3000, USER_RW);	       /* the fault */
	g[4] = gptep_for(env, PG(4), PG_LEVEL_4K);		       /* not present */
	g[5] = map_4k(env, PG(5), MMIO_GPA, USER_RW | PTE_A | PTE_D);  /* not RAM */
	g[6] = map_4k(env, PG(6), DATA_GPA + 0x6000, SUPER_RW | PTE_A | PTE_D);
	g[7] = map_4k(env, PG(7), DATA_GPA + 0x7000, USER_RW | PTE_A | PTE_D | (1ull << 45));
	g[8] = map_4k(env, PG(8), DATA_GPA + 0x8000, USER_RW | PTE_A | PTE_D); /* next group */

	assert_int_equal(fault(env, PG(3), 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->faults, 1);
	assert_int_equal(stats(env)->prefetched, 3);
	expect_mapped(env, PG(0), SHADOW_VIEW_KERNEL, DATA_GPA, PTE_RW | PTE_US);
	expect_mapped(env, PG(1), SHADOW_VIEW_KERNEL, DATA_GPA + 0x1000, PTE_US);
	expect_unmapped(env, PG(2), SHADOW_VIEW_KERNEL);
	assert_false(*g[2] & PTE_A); /* prefetch never sets A for the guest */
	expect_mapped(env, PG(3), SHADOW_VIEW_KERNEL, DATA_GPA + 0x3000, PTE_US);
	expect_unmapped(env, PG(4), SHADOW_VIEW_KERNEL);
	expect_unmapped(env, PG(5), SHADOW_VIEW_KERNEL);
	expect_mapped(env, PG(6), SHADOW_VIEW_KERNEL, DATA_GPA + 0x6000, PTE_RW | PTE_US);
	expect_unmapped(env, PG(7), SHADOW_VIEW_KERNEL);
	expect_unmapped(env, PG(8), SHADOW_VIEW_KERNEL);

	/* A prefetched spte follows the guest's writes like any other. */
	guest_write_gpte(env, g[0], 0);
	expect_unmapped(env, PG(0), SHADOW_VIEW_KERNEL);
	guest_write_gpte(env, g[1], *g[1] | PTE_D);
	expect_mapped(env, PG(1), SHADOW_VIEW_KERNEL, DATA_GPA + 0x1000, PTE_RW | PTE_US);

	/* A fault again in the group: present sptes are kept, nothing new is there. */
	assert_int_equal(fault(env, PG(3), ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched, 3);
	expect_mapped(env, PG(3), SHADOW_VIEW_KERNEL, DATA_GPA + 0x3000, PTE_RW | PTE_US);

	/* The user view: the supervisor page is not its to map. */
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, PG(3), 0, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched, 4);
	expect_mapped(env, PG(1), SHADOW_VIEW_USER, DATA_GPA + 0x1000, PTE_RW | PTE_US);
	expect_unmapped(env, PG(0), SHADOW_VIEW_USER);
	expect_unmapped(env, PG(6), SHADOW_VIEW_USER);
}

/*
 * A kernel-view fault on a guest-user page also fills its entry in the
 * user view's sp of the same table, where that sp exists, with what a
 * fault there would give: the kernel writes a new stack's argv, the
 * process reads it without a fault of its own. Not the other way. A
 * supervisor page is not the user view's; a clean page is read-only there
 * too; a present entry is left alone.
 */
static void test_prefetch_other_view(void **state)
{
	struct env *env = *state;

	map_4k(env, PG(0), DATA_GPA, USER_RW | PTE_A | PTE_D);
	map_4k(env, PG(16), DATA_GPA + 0x1000, USER_RW | PTE_D); /* A = 0: set by the walk */
	map_4k(env, PG(24), DATA_GPA + 0x2000, USER_RW | PTE_A); /* clean */
	map_4k(env, PG(32), DATA_GPA + 0x3000, SUPER_RW | PTE_A | PTE_D);
	/* Both views shadow the table (a fault in each, in a group of its own). */
	assert_int_equal(fault(env, PG(0), 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, PG(0), 0, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched_other_view, 0); /* present in both already */

	/* Kernel view first: the user view has it with no fault of its own. */
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, PG(16), ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched_other_view, 1);
	expect_mapped(env, PG(16), SHADOW_VIEW_USER, DATA_GPA + 0x1000, PTE_RW | PTE_US);
	/* User view first: the kernel view is left to its own faults. */
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, PG(24), 0, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched_other_view, 1);
	expect_unmapped(env, PG(24), SHADOW_VIEW_KERNEL);
	/* A clean page, kernel first: read-only in the user view too. */
	map_4k(env, PG(40), DATA_GPA + 0x4000, USER_RW | PTE_A);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, PG(40), 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched_other_view, 2);
	expect_mapped(env, PG(40), SHADOW_VIEW_USER, DATA_GPA + 0x4000, PTE_US);
	/* A supervisor page: nothing for the user view. */
	assert_int_equal(fault(env, PG(32), 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched_other_view, 2);
	expect_unmapped(env, PG(32), SHADOW_VIEW_USER);
	/* The filled entry follows the guest's writes in both views. */
	guest_write_gpte(env, gptep_for(env, PG(16), PG_LEVEL_4K), 0);
	expect_unmapped(env, PG(16), SHADOW_VIEW_USER);
	expect_unmapped(env, PG(16), SHADOW_VIEW_KERNEL);
}

/* Without prefetch (setup), the same fault fills only its own spte. */
static void test_prefetch_off(void **state)
{
	struct env *env = *state;

	map_4k(env, PG(0), DATA_GPA, USER_RW | PTE_A | PTE_D);
	map_4k(env, PG(3), DATA_GPA + 0x3000, USER_RW);
	assert_int_equal(fault(env, PG(3), 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_unmapped(env, PG(0), SHADOW_VIEW_KERNEL);
	assert_int_equal(stats(env)->prefetched, 0);
	/* Nor the user view's entry (its sp of the table exists). */
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_USER);
	assert_int_equal(fault(env, PG(3), 0, SHADOW_VIEW_USER, NULL), SHADOW_FIXED);
	(void)shadow_switch_view(env->mmu, SHADOW_VIEW_KERNEL);
	assert_int_equal(fault(env, PG(0), 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	expect_unmapped(env, PG(0), SHADOW_VIEW_USER);
	assert_int_equal(stats(env)->prefetched_other_view, 0);
}

/*
 * Inside a guest large page every neighbour is the page's, with its rights:
 * read-only while the large gpte is clean, writable once a write fault has
 * made it dirty (the dirty direct sp is a new one, prefetched in turn).
 */
static void test_prefetch_large_page(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);
	u64 base = GVA_2M & ~(u64)(2 * MiB - 1), at = base + 0x18a000; /* group 0x188000.. */

	*pde = 0x200000 | USER_RW | PTE_PS;
	assert_int_equal(fault(env, at, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched, 7);
	for (unsigned i = 0; i < 8; i++)
		expect_mapped(env, base + 0x188000 + i * PAGE_SIZE, SHADOW_VIEW_KERNEL,
			      0x388000 + i * PAGE_SIZE, PTE_US);
	expect_unmapped(env, base + 0x187000, SHADOW_VIEW_KERNEL);
	expect_unmapped(env, base + 0x190000, SHADOW_VIEW_KERNEL);

	assert_int_equal(fault(env, at, ACC_WRITE, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_true(*pde & PTE_D);
	assert_int_equal(stats(env)->prefetched, 14);
	for (unsigned i = 0; i < 8; i++)
		expect_mapped(env, base + 0x188000 + i * PAGE_SIZE, SHADOW_VIEW_KERNEL,
			      0x388000 + i * PAGE_SIZE, PTE_RW | PTE_US);
}

/* A large page over a 4 KiB hole (as Linux's direct map over 640K-1M): RAM pages only. */
static void test_prefetch_large_page_hole(void **state)
{
	struct env *env = *state;
	u64 *pde = gptep_for(env, GVA_2M, PG_LEVEL_2M);
	u64 base = GVA_2M & ~(u64)(2 * MiB - 1);

	env->hole_gpa = 0x203000;
	*pde = 0x200000 | USER_RW | PTE_PS | PTE_A | PTE_D;
	assert_int_equal(fault(env, base + 0x1000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_FIXED);
	assert_int_equal(stats(env)->prefetched, 6);
	expect_mapped(env, base, SHADOW_VIEW_KERNEL, 0x200000, PTE_RW | PTE_US);
	expect_unmapped(env, base + 0x3000, SHADOW_VIEW_KERNEL);
	expect_mapped(env, base + 0x7000, SHADOW_VIEW_KERNEL, 0x207000, PTE_RW | PTE_US);
	assert_int_equal(fault(env, base + 0x3000, 0, SHADOW_VIEW_KERNEL, NULL), SHADOW_MMIO);
}

int main(void)
{
#define T(fn)  cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TT(fn) cmocka_unit_test_setup_teardown(fn, setup_tiny, teardown)
#define TP(fn) cmocka_unit_test_setup_teardown(fn, setup_prefetch, teardown)
#define TU(fn) cmocka_unit_test_setup_teardown(fn, setup_unsync, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_rejects_bad_config),
		T(test_fill_4k_both_views),
		T(test_a_bits_set),
		T(test_prefault),
		T(test_prefault_guest_table),
		T(test_large_2m_and_1g),
		T(test_large_page_dirty_tracking),
		T(test_large_spte_maps_frame),
		T(test_large_spte_in_1g_page),
		T(test_large_spte_dirty_tracking),
		T(test_large_spte_and_guest_tables),
		T(test_large_spte_exec_gate),
		T(test_paging_off_identity),
		T(test_user_view_never_maps_supervisor),
		T(test_guest_not_present),
		T(test_mmio),
		T(test_mmio_direct),
		T(test_smep_smap_kernel_view),
		T(test_cr0_wp_off_kernel_writes_read_only),
		T(test_dirty_bit_emulation),
		T(test_write_protect_direct_map),
		T(test_pt_write_unmap_and_retarget),
		T(test_pt_write_upper_level),
		T(test_write_flood_unshadows),
		T(test_unshadow_gfn),
		T(test_flood_counter_reset_by_use),
		T(test_cr3_switch_hits_and_reuse),
		T(test_new_root_prefill),
		T(test_pool_clean_pages_first),
		T(test_inactive_table_write_unshadows),
		T(test_pt_write_in_non_current_root),
		T(test_reserved_pml4_slot),
		T(test_call_window),
		T(test_call_window_no_tables),
		T(test_call_window_clear),
		T(test_invalidation_asks_flusher),
		T(test_exec_gate),
		TU(test_unsync_leaf_table),
		TU(test_unsync_not_upper_levels),
		TU(test_unsync_ends_at_exec_approve),
		TP(test_prefetch_group),
		TP(test_prefetch_other_view),
		T(test_prefetch_off),
		TP(test_prefetch_large_page),
		TP(test_prefetch_large_page_hole),
		TT(test_eviction_tiny_pool),
		T(test_random_ops_agree_with_walker),
		TT(test_random_ops_tiny_pool),
	};

	return cmocka_run_group_tests_name("shadow", tests, NULL, NULL);
}
