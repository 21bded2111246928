/* SPDX-License-Identifier: MIT */
/*
 * The model guest and CPU that test_shadow32.c (32-bit paging) and
 * test_shadowpae.c (PAE paging) drive the shadow MMU with, and their oracle:
 * guest RAM, the trapped write path, a CPU that accesses memory through the
 * shadow's translation (faults handed to shadow_fault, stores into guest
 * tables made without a trap where the shadow allows them), and the check
 * of one translation against the reference walker.
 *
 * The oracle models a TLB, as the differential harness does: a leaf
 * translation may follow any value its PTE had since the last flush that
 * covered it (env.stale: a store into an out-of-sync table; a CR3 load, a
 * full flush, an invlpg of its index, or a mode change that flushes ends
 * that), and must be exact after one. Otherwise whatever the shadow maps,
 * the guest's tables map to the same gpa with A set at every level and at
 * least the rights the spte gives (a writable spte only for a dirty page
 * that is not a shadowed table).
 *
 * The including test defines the tables' layout and its random steps; the
 * gvas are 32-bit, the guest's entries `entry_size` bytes.
 */
#ifndef UMBRA_TESTS_SHADOW_MODEL32_H
#define UMBRA_TESTS_SHADOW_MODEL32_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/internal.h" /* gfn_is_write_protected, for the oracle */
#include "xorshift.h"

#define MODEL_RAM_SIZE	 (16 * MiB)
#define MODEL_MAXPHYADDR 40
#define MODEL_POOL_MPA	 (1 * TiB)
#define MODEL_POOL_PAGES 128
#define MODEL_MAX_STALE	 512

struct env {
	u8 *ram;
	void *pool;
	struct walk_ctl ctl;
	struct shadow_mmu *mmu;
	enum shadow_view view; /* the view the model CPU runs in */
	bool large;
	unsigned entry_size;	  /* of the guest's table entries: 4 or 8 */
	u64 tables_lo, tables_hi; /* [lo, hi): the guest's tables, for cpu_store */
	u64 (*random_gpte)(void); /* what the model CPU stores into a table */
	u64 accesses_ok, guest_faults, pt_writes_emulated, mmio, checks_mapped;
	u64 table_stores, stale_ok;
	u64 pdpt_stores, pdpte_loads, pdpte_load_gp; /* PAE only */
	/* Values a PTE had since the last flush that covered it (out of sync). */
	struct {
		u64 where;
		u64 val;
	} stale[MODEL_MAX_STALE];
	unsigned nstale;
};

static void *model_gpa_to_hva(void *opaque, gpa_t where, size_t len)
{
	struct env *env = opaque;

	if (where.v >= MODEL_RAM_SIZE || len > MODEL_RAM_SIZE - where.v)
		return NULL;
	return env->ram + where.v;
}

static void model_store(void *opaque, mpa_t spte_mpa, u64 *sptep, u64 val)
{
	(void)opaque;
	(void)spte_mpa;
	*sptep = val;
}

static const struct walk_mem *walk_mem(struct env *env)
{
	static struct walk_mem mem;

	mem = (struct walk_mem){ .opaque = env, .gpa_to_hva = model_gpa_to_hva };
	return &mem;
}

/* A fresh MMU on zeroed guest RAM, for a guest with `entry_size`-byte entries. */
static struct env *model_create(bool large, unsigned prefetch, unsigned entry_size)
{
	struct env *env = calloc(1, sizeof(*env));
	struct shadow_config cfg;

	env->ram = aligned_alloc(PAGE_SIZE, MODEL_RAM_SIZE);
	env->pool = aligned_alloc(PAGE_SIZE, MODEL_POOL_PAGES * PAGE_SIZE);
	memset(env->ram, 0, MODEL_RAM_SIZE);
	env->large = large;
	env->entry_size = entry_size;
	cfg = (struct shadow_config){
		.mem = { .opaque = env, .gpa_to_hva = model_gpa_to_hva },
		.pool = { .base = mpa(MODEL_POOL_MPA),
			  .hva = env->pool,
			  .nr_pages = MODEL_POOL_PAGES },
		.writer = { .opaque = env, .store = model_store },
		.maxphyaddr = MODEL_MAXPHYADDR,
		.prefetch = prefetch,
		.unsync = 8,
		.large_pages = large,
	};
	env->mmu = shadow_create(&cfg);
	assert_non_null(env->mmu);
	env->ctl.maxphyaddr = MODEL_MAXPHYADDR;
	env->view = SHADOW_VIEW_KERNEL;
	return env;
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

/* A flush that syncs every out-of-sync table: nothing may be stale after it. */
static void forget_stale(struct env *env)
{
	env->nstale = 0;
}

/* The guest entry at `where`, zero-extended. */
static u64 gpte_get(struct env *env, u64 where)
{
	u64 v = 0;

	memcpy(&v, env->ram + where, env->entry_size);
	return v;
}

static void gpte_set(struct env *env, u64 where, u64 val)
{
	memcpy(env->ram + where, &val, env->entry_size);
}

/* The guest stores an entry; the VMM emulates the trapped write and tells the MMU. */
static void guest_write(struct env *env, u64 where, u64 val)
{
	u64 old = gpte_get(env, where);

	gpte_set(env, where, val);
	shadow_pt_write(env->mmu, gpa(where), env->entry_size, &old, &val);
}

/* Remember the value a PTE had before a store no trap caught, for the oracle. */
static void note_stale(struct env *env, u64 where)
{
	if (gfn_is_shadowed(env->mmu, gpa_to_gfn(gpa(where))) && env->nstale < MODEL_MAX_STALE) {
		env->stale[env->nstale].where = where;
		env->stale[env->nstale++].val = gpte_get(env, where);
	}
}

static u32 view_access(const struct env *env, u32 access)
{
	return env->view == SHADOW_VIEW_USER ? access | ACC_USER : access;
}

/* invlpg: the PTEs at va's index, in every PT, are exact again (unsync.c item 4). */
static void guest_invlpg(struct env *env, u32 va)
{
	u64 entries = PAGE_SIZE / env->entry_size;
	unsigned k = 0;

	shadow_invlpg(env->mmu, gva(va));
	for (unsigned i = 0; i < env->nstale; i++)
		if ((env->stale[i].where & (PAGE_SIZE - 1)) / env->entry_size !=
		    ((va >> 12) & (entries - 1)))
			env->stale[k++] = env->stale[i];
	env->nstale = k;
}

/* ---- the oracle --------------------------------------------------------- */

/* Why the shadow's translation of va (mpa `where`, `rights`) is wrong for the guest now, or NULL.
 */
static const char *mismatch(struct env *env, u32 va, enum shadow_view view, mpa_t where, u64 rights)
{
	const struct paging_mode *mode = paging_mode_select(&env->ctl);
	u32 acc = view == SHADOW_VIEW_USER ? ACC_USER : 0;
	struct guest_walk walk;

	if (walk_guest(mode, walk_mem(env), &env->ctl, gva(va), acc, WALK_PEEK, &walk) != WALK_OK)
		return "the guest does not map it";
	if (walk.gpa.v != where.v)
		return "the guest maps another gpa";
	if (!walk_ad_already_set(mode, &walk))
		return "A is clear in a gpte of the walk";
	if (!(rights & PTE_US))
		return "not a user page (the guest runs at real CPL3)";
	if (rights & PTE_RW) {
		if (walk_guest(mode, walk_mem(env), &env->ctl, gva(va), acc | ACC_WRITE, WALK_PEEK,
			       &walk) != WALK_OK ||
		    !(walk.gpte[walk.level] & PTE_D))
			return "writable in the shadow, not writable or clean in the guest";
		if (gfn_is_write_protected(env->mmu, gpa_to_gfn(gpa(where.v))))
			return "a writable spte to a write-protected table";
	}
	if (!(rights & PTE_NX) && walk_guest(mode, walk_mem(env), &env->ctl, gva(va),
					     acc | ACC_FETCH, WALK_PEEK, &walk) != WALK_OK)
		return "executable in the shadow, not in the guest";
	return NULL;
}

/* Where the PTE for va lives in the current tables (0: no PT reached). */
static u64 leaf_pte_gpa(struct env *env, u32 va)
{
	struct guest_walk walk;
	enum walk_result r = walk_guest(paging_mode_select(&env->ctl), walk_mem(env), &env->ctl,
					gva(va), 0, WALK_PEEK, &walk);

	/* A PTE that is not present (a fault at level 1) still has its place. */
	if (r != WALK_OK && r != WALK_FAULT)
		return 0;
	return walk.level == PG_LEVEL_4K ? walk.gpte_gpa[PG_LEVEL_4K].v : 0;
}

static void agrees(struct env *env, u32 va, enum shadow_view view)
{
	const char *why;
	mpa_t where;
	u64 rights, pte;

	if (!shadow_translate(env->mmu, view, gva(va), &where, &rights))
		return;
	env->checks_mapped++;
	why = mismatch(env, va, view, where, rights);
	if (!why)
		return;
	/* Out of sync: the PTE may still be one it was since the last flush that covered it. */
	pte = leaf_pte_gpa(env, va);
	for (unsigned i = 0; pte && i < env->nstale; i++) {
		u64 now = gpte_get(env, pte);

		if (env->stale[i].where != pte)
			continue;
		gpte_set(env, pte, env->stale[i].val);
		why = mismatch(env, va, view, where, rights);
		gpte_set(env, pte, now);
		if (!why) {
			env->stale_ok++;
			return;
		}
	}
	fail_msg("gva 0x%x (%s view, CR3 0x%llx): the shadow maps mpa 0x%llx with rights 0x%llx: "
		 "%s",
		 va, view == SHADOW_VIEW_USER ? "user" : "kernel", (unsigned long long)env->ctl.cr3,
		 (unsigned long long)where.v, (unsigned long long)rights, why);
}

/* ---- the model CPU ------------------------------------------------------ */

static bool translation_allows(struct env *env, u32 va, u32 access)
{
	mpa_t where;
	u64 rights;

	if (!shadow_translate(env->mmu, env->view, gva(va), &where, &rights))
		return false;
	if ((access & ACC_WRITE) && !(rights & PTE_RW))
		return false;
	return !((access & ACC_FETCH) && (rights & PTE_NX));
}

/*
 * A store the CPU makes without a trap: into a guest table it writes a new
 * entry (an out-of-sync table: the shadow catches up at the next flush that
 * covers it, and meanwhile the old value is one the oracle allows).
 */
static void cpu_store(struct env *env, u32 va)
{
	mpa_t where;
	u64 rights, at;

	assert_true(shadow_translate(env->mmu, env->view, gva(va), &where, &rights));
	at = where.v & ~(u64)(env->entry_size - 1);
	if (at < env->tables_lo || at >= env->tables_hi)
		return; /* data: its contents do not matter here */
	note_stale(env, at);
	gpte_set(env, at, env->random_gpte());
	env->table_stores++;
}

/*
 * One access as the CPU makes it on the shadow: through the translation,
 * else a real #PF the VMM hands to shadow_fault (at most 4 times). Returns
 * the fault result it ended with (SHADOW_FIXED: the access went through).
 */
static enum shadow_fault_result cpu_access(struct env *env, u32 va, u32 access)
{
	const struct paging_mode *mode = paging_mode_select(&env->ctl);
	struct shadow_fault_info info;
	struct guest_walk walk;
	enum shadow_fault_result r;

	access = view_access(env, access);
	for (int tries = 0; tries < 4; tries++) {
		if (translation_allows(env, va, access)) {
			env->accesses_ok++;
			if (access & ACC_WRITE)
				cpu_store(env, va);
			return SHADOW_FIXED;
		}
		r = shadow_fault(env->mmu, gva(va), access, env->view, &info);
		switch (r) {
		case SHADOW_FIXED: continue;
		case SHADOW_GUEST_FAULT:
			/* The guest's own verdict, error code included. */
			switch (walk_guest(mode, walk_mem(env), &env->ctl, gva(va), access,
					   WALK_PEEK, &walk)) {
			case WALK_FAULT:
				assert_int_equal(info.error_code, walk.fault.error_code);
				break;
			case WALK_BAD_GPA: /* a table outside RAM reads as reserved bits (fault.c)
					    */
				assert_true(info.error_code & PFERR_RSVD);
				break;
			default: fail_msg("gva 0x%x: a #PF the guest's tables do not give", va);
			}
			assert_int_equal(info.cr2.v, va);
			env->guest_faults++;
			return r;
		case SHADOW_EMULATE_PT_WRITE:
			/* The VMM emulates the store: one entry at the gpa, a new value. */
			assert_true(access & ACC_WRITE);
			guest_write(env, info.gpa.v & ~(u64)(env->entry_size - 1),
				    env->random_gpte());
			env->pt_writes_emulated++;
			return r;
		case SHADOW_MMIO:
			assert_true(info.gpa.v >= MODEL_RAM_SIZE);
			env->mmio++;
			return r;
		default: fail_msg("gva 0x%x access %u: shadow_fault returned %d", va, access, r);
		}
	}
	fail_msg("gva 0x%x access %u: still not mapped after 4 fixed faults", va, access);
	return SHADOW_UNSUPPORTED;
}

static void expect_maps(struct env *env, u32 va, u32 access, u64 expect_gpa)
{
	mpa_t where;
	u64 rights;

	assert_int_equal(cpu_access(env, va, access), SHADOW_FIXED);
	assert_true(shadow_translate(env->mmu, env->view, gva(va), &where, &rights));
	assert_int_equal(where.v, expect_gpa);
	agrees(env, va, env->view);
}

static void expect_unmapped(struct env *env, u32 va)
{
	mpa_t where;
	u64 rights;

	assert_false(shadow_translate(env->mmu, env->view, gva(va), &where, &rights));
}

/* ---- the random tests' draws -------------------------------------------- */

static u32 pick(u32 n)
{
	return rnd() % n;
}

/* Flags of a guest entry both paging modes have: mostly present, R/W, U/S, A, D. */
static u64 random_flags(void)
{
	u64 f = PTE_P;

	if (pick(8) == 0)
		f = 0;
	if (pick(4))
		f |= PTE_RW;
	if (pick(4))
		f |= PTE_US;
	if (pick(2))
		f |= PTE_A;
	if (pick(3) == 0)
		f |= PTE_D;
	return f;
}

#endif /* UMBRA_TESTS_SHADOW_MODEL32_H */
