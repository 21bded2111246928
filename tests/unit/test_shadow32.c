/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU on a guest in 32-bit paging (shadow/, union sp_role's
 * gpte32 and quadrant; SDM Vol. 3A §4.3).
 *
 * A 32-bit guest table has 1024 4-byte entries and a shadow table 512
 * 8-byte ones, so a guest PT is shadowed by two leaf sps, a guest PD by
 * four level-2 sps whose sptes come in pairs (a 4 MiB PDE is two 2 MiB
 * sptes), and the root and level 3 pass the PD through. The fixed tests
 * check those seams one by one (quadrant boundaries, a PT write reaching
 * only its half, both halves of a 4 MiB page, PSE switched off). The random
 * test drives the MMU through seeded guest edits, accesses, CR3 switches,
 * PSE and CR0.WP changes and flushes, and after every step checks each of
 * a set of gvas around the quadrant seams against the reference walker:
 * whatever the shadow maps, the guest's tables map to the same gpa with A
 * set at every level and at least the rights the spte gives (a writable
 * spte only for a dirty page that is not a shadowed table). Out-of-sync
 * tables are on (shadow/unsync.c): the model CPU stores into a page table
 * through a writable mapping as the CPU would, without a trap, and the
 * oracle then models a TLB as the differential harness does: a leaf
 * translation may follow any value its PTE had since the last flush that
 * covered it (a CR3 load, a full flush, an invlpg of its index, a PSE or
 * PG change), and must be exact after one.
 *
 * SHADOW32_SEED and SHADOW32_STEPS replay or lengthen the random test.
 */
#include "shadow_model32.h"

#define PD_GPA(n) (1 * MiB + (n)*PAGE_SIZE) /* NR_PDS page directories */
#define PT_GPA(n) (1 * MiB + (NR_PDS + (n)) * PAGE_SIZE)
#define NR_PDS	  3
#define NR_PTS	  8
#define DATA_GPA  (2 * MiB) /* 4 KiB data pages from here */
#define NR_DATA	  64
#define BIG_GPA	  (8 * MiB) /* two 4 MiB pages: 8 MiB and 12 MiB */
#define MMIO_GPA  0xfee00000u

#define CR0_32 (CR0_PE | CR0_ET | CR0_NE | CR0_PG)

static void set_mode(struct env *env, u64 cr0, u64 cr4)
{
	if ((env->ctl.cr0 ^ cr0) & CR0_PG || (env->ctl.cr4 ^ cr4) & CR4_PSE)
		forget_stale(env);
	env->ctl.cr0 = cr0;
	env->ctl.cr4 = cr4;
	env->ctl.efer = 0;
	shadow_set_mode(env->mmu, cr0, cr4, 0);
}

static void set_cr3(struct env *env, u32 cr3)
{
	forget_stale(env);
	env->ctl.cr3 = cr3;
	(void)shadow_set_cr3(env->mmu, cr3, env->view);
}

static u64 random_gpte(void);

static int setup_with(void **state, bool large, unsigned prefetch)
{
	/* Unsync on: a 32-bit PT goes out of sync as a 4-level one does. */
	struct env *env = model_create(large, prefetch, sizeof(u32));

	env->tables_lo = PD_GPA(0);
	env->tables_hi = PT_GPA(NR_PTS);
	env->random_gpte = random_gpte;
	set_mode(env, CR0_32 | CR0_WP, CR4_PSE);
	set_cr3(env, PD_GPA(0));
	*state = env;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, true, 8);
}

static int setup_small(void **state)
{
	return setup_with(state, false, 0);
}

/* ---- the guest ---------------------------------------------------------- */

static u32 *gpte_at(struct env *env, u64 where)
{
	return (u32 *)(env->ram + where);
}

static u64 pde_gpa(u32 pd, u32 va)
{
	return pd + (va >> 22) * 4;
}

static u64 pte_gpa(u32 pt, u32 va)
{
	return pt + ((va >> 12) & 1023) * 4;
}

/* ---- the oracle --------------------------------------------------------- */

/* The gvas checked: each side of every quadrant seam, of the PD and of a PT. */
static const u32 pd_indexes[] = { 0x000, 0x001, 0x0ff, 0x100, 0x1ff, 0x200, 0x2ff, 0x300, 0x3ff };
static const u32 pt_indexes[] = { 0x000, 0x001, 0x1fe, 0x1ff, 0x200, 0x201, 0x3ff };
#define NR_PD_INDEXES (sizeof(pd_indexes) / sizeof(pd_indexes[0]))
#define NR_PT_INDEXES (sizeof(pt_indexes) / sizeof(pt_indexes[0]))

static u32 va_of(unsigned pdi, unsigned pti)
{
	return pd_indexes[pdi] << 22 | pt_indexes[pti] << 12;
}

static void check_all(struct env *env)
{
	for (unsigned i = 0; i < NR_PD_INDEXES; i++)
		for (unsigned j = 0; j < NR_PT_INDEXES; j++)
			for (unsigned v = 0; v < SHADOW_NR_VIEWS; v++) {
				agrees(env, va_of(i, j), v);
				agrees(env, va_of(i, j) | 0x200000, v); /* the other 2 MiB half */
			}
}

/* ---- the model CPU ------------------------------------------------------ */

/* ---- fixed tests -------------------------------------------------------- */

#define FLAGS (PTE_P | PTE_RW | PTE_US)

/* A 4 KiB page in each quadrant of the PD and each half of a PT. */
static void test_quadrants(void **state)
{
	struct env *env = *state;

	for (unsigned q = 0; q < 4; q++) {
		u32 va = q << 30 | 0x00c00000 | 0x123;

		*gpte_at(env, pde_gpa(PD_GPA(0), va)) = PT_GPA(q) | FLAGS;
		*gpte_at(env, pte_gpa(PT_GPA(q), va)) = (DATA_GPA + q * PAGE_SIZE) | FLAGS;
		*gpte_at(env, pte_gpa(PT_GPA(q), va + 0x200000)) =
			(DATA_GPA + (q + 4) * PAGE_SIZE) | FLAGS;
		expect_maps(env, va, 0, DATA_GPA + q * PAGE_SIZE + 0x123);
		expect_maps(env, va + 0x200000, ACC_WRITE, DATA_GPA + (q + 4) * PAGE_SIZE + 0x123);
	}
	/* A and D were set in 4 bytes each: the neighbours are still 0. */
	assert_int_equal(*gpte_at(env, pte_gpa(PT_GPA(0), 0x00c00000)), (DATA_GPA) | FLAGS | PTE_A);
	assert_int_equal(*gpte_at(env, pte_gpa(PT_GPA(0), 0x00e00000)),
			 (DATA_GPA + 4 * PAGE_SIZE) | FLAGS | PTE_A | PTE_D);
	assert_int_equal(*gpte_at(env, pte_gpa(PT_GPA(0), 0x00c00000) + 4), 0);
	check_all(env);
}

/* A PT write reaches the spte of its PTE only, in the right half. */
static void test_pte_write_hits_its_half(void **state)
{
	struct env *env = *state;
	u32 lo = 0x00400000, hi = 0x00600000; /* PT index 0 and 0x200 of the same PT */

	*gpte_at(env, pde_gpa(PD_GPA(0), lo)) = PT_GPA(0) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), lo)) = DATA_GPA | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), hi)) = (DATA_GPA + PAGE_SIZE) | FLAGS;
	expect_maps(env, lo, 0, DATA_GPA);
	expect_maps(env, hi, 0, DATA_GPA + PAGE_SIZE);
	/* PTE 0x200 moves: only the upper half's sp changes. */
	guest_write(env, pte_gpa(PT_GPA(0), hi), (DATA_GPA + 2 * PAGE_SIZE) | FLAGS | PTE_A);
	expect_maps(env, lo, 0, DATA_GPA);
	check_all(env);
	expect_maps(env, hi, 0, DATA_GPA + 2 * PAGE_SIZE);
	/* PTE 0 goes away. */
	guest_write(env, pte_gpa(PT_GPA(0), lo), 0);
	expect_unmapped(env, lo);
	expect_maps(env, hi, 0, DATA_GPA + 2 * PAGE_SIZE);
	/* A write spanning PTEs 0x1ff and 0x200 (8 bytes) reaches both halves. */
	{
		u64 where = pte_gpa(PT_GPA(0), hi) - 4, old, val;

		memcpy(&old, env->ram + where, 8);
		val = 0;
		memcpy(env->ram + where, &val, 8);
		shadow_pt_write(env->mmu, gpa(where), 8, &old, &val);
	}
	expect_unmapped(env, hi);
	check_all(env);
}

/* A PDE write unlinks both sptes of its 4 MiB, and no other. */
static void test_pde_write_unlinks_both_halves(void **state)
{
	struct env *env = *state;
	u32 va = 0x3fc00000;   /* PD index 0xff: the last of quadrant 0 */
	u32 next = 0x40000000; /* PD index 0x100: the first of quadrant 1 */

	*gpte_at(env, pde_gpa(PD_GPA(0), va)) = PT_GPA(0) | FLAGS;
	*gpte_at(env, pde_gpa(PD_GPA(0), next)) = PT_GPA(1) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), va)) = DATA_GPA | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), va + 0x200000)) = (DATA_GPA + PAGE_SIZE) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(1), next)) = (DATA_GPA + 2 * PAGE_SIZE) | FLAGS;
	expect_maps(env, va, 0, DATA_GPA);
	expect_maps(env, va + 0x200000, 0, DATA_GPA + PAGE_SIZE);
	expect_maps(env, next, 0, DATA_GPA + 2 * PAGE_SIZE);
	/* The PDE now points to another PT, whose entries are empty. */
	guest_write(env, pde_gpa(PD_GPA(0), va), PT_GPA(2) | FLAGS | PTE_A);
	expect_unmapped(env, va);
	expect_unmapped(env, va + 0x200000);
	expect_maps(env, next, 0, DATA_GPA + 2 * PAGE_SIZE);
	assert_int_equal(cpu_access(env, va, 0), SHADOW_GUEST_FAULT);
	check_all(env);
}

/* A 4 MiB page: both halves, with and without 2 MiB sptes, and its PSE-36 address. */
static void test_4m_page(void **state)
{
	struct env *env = *state;
	u32 va = 0x80000000;

	*gpte_at(env, pde_gpa(PD_GPA(0), va)) = BIG_GPA | FLAGS | PTE_PS;
	expect_maps(env, va + 0x1234, 0, BIG_GPA + 0x1234);
	expect_maps(env, va + 0x3ff000, ACC_WRITE, BIG_GPA + 0x3ff000);
	assert_int_equal(*gpte_at(env, pde_gpa(PD_GPA(0), va)),
			 BIG_GPA | FLAGS | PTE_PS | PTE_A | PTE_D);
	check_all(env);
	if (env->large)
		assert_true(shadow_get_stats(env->mmu)->large_maps >= 2);
	/* PSE-36: address bits above 4 GiB are not RAM here, so MMIO. */
	guest_write(env, pde_gpa(PD_GPA(0), va), BIG_GPA | FLAGS | PTE_PS | PTE_A | (1u << 13));
	expect_unmapped(env, va + 0x1234);
	assert_int_equal(cpu_access(env, va + 0x1234, 0), SHADOW_MMIO);
}

/* Without CR4.PSE the same PDE points to a page table; the roots differ by role. */
static void test_pse_off(void **state)
{
	struct env *env = *state;
	u32 va = 0x80000000;

	/* BIG_GPA is 4 MiB aligned: a 4 MiB page with PSE, a PT without. */
	*gpte_at(env, pde_gpa(PD_GPA(0), va)) = BIG_GPA | FLAGS | PTE_PS;
	*gpte_at(env, pte_gpa(BIG_GPA, va)) = DATA_GPA | FLAGS;
	expect_maps(env, va, 0, BIG_GPA);
	set_mode(env, CR0_32 | CR0_WP, 0);
	set_cr3(env, PD_GPA(0));
	expect_unmapped(env, va);
	expect_maps(env, va, 0, DATA_GPA);
	check_all(env);
	set_mode(env, CR0_32 | CR0_WP, CR4_PSE);
	set_cr3(env, PD_GPA(0));
	expect_maps(env, va, 0, BIG_GPA);
	check_all(env);
}

/* A PD that maps itself as a PT (recursive PDE): its PDEs are writable only by trapping. */
static void test_recursive_pde(void **state)
{
	struct env *env = *state;
	u32 self = 0x3ffu << 22, va = 0x00400000;

	*gpte_at(env, pde_gpa(PD_GPA(0), va)) = PT_GPA(0) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), va)) = DATA_GPA | FLAGS;
	*gpte_at(env, pde_gpa(PD_GPA(0), self)) = PD_GPA(0) | FLAGS;
	expect_maps(env, va, 0, DATA_GPA);
	/* The PD seen through itself: its page is PD_GPA(0). */
	expect_maps(env, self | (0x3ffu << 12), 0, PD_GPA(0));
	/* A write there is a write to a shadowed upper-level table: always emulated. */
	assert_int_equal(cpu_access(env, self | (0x3ffu << 12), ACC_WRITE),
			 SHADOW_EMULATE_PT_WRITE);
	check_all(env);
}

/*
 * A 32-bit PT goes out of sync at its first write fault (the second half's
 * leaf sp with it), then the guest's stores to it run without a trap; the
 * shadow catches up at the guest's invlpg, in the right half.
 */
static void test_pt_out_of_sync(void **state)
{
	struct env *env = *state;
	u32 lo = 0x00400000, hi = 0x00600000, alias = 0x00401000;
	u32 *pte_hi = gpte_at(env, pte_gpa(PT_GPA(0), hi));

	*gpte_at(env, pde_gpa(PD_GPA(0), lo)) = PT_GPA(0) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), lo)) = DATA_GPA | FLAGS;
	*pte_hi = (DATA_GPA + PAGE_SIZE) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), alias)) = PT_GPA(0) | FLAGS | PTE_D; /* the PT as data */
	expect_maps(env, lo, 0, DATA_GPA);
	expect_maps(env, hi, 0, DATA_GPA + PAGE_SIZE);
	/* The first store faults and the table goes out of sync; the next ones do not trap. */
	expect_maps(env, alias + 0x10, ACC_WRITE, PT_GPA(0) + 0x10); /* PTE 4: unused */
	assert_int_equal(shadow_get_stats(env->mmu)->unsyncs, 1);
	assert_true(translation_allows(env, alias, ACC_WRITE));
	/* A store to PTE 0x200 (the PT's second half) with no trap: stale until invlpg. */
	*pte_hi = (DATA_GPA + 2 * PAGE_SIZE) | FLAGS | PTE_A;
	{
		mpa_t where;
		u64 rights;

		assert_true(shadow_translate(env->mmu, env->view, gva(hi), &where, &rights));
		assert_int_equal(where.v, DATA_GPA + PAGE_SIZE);
	}
	shadow_invlpg(env->mmu, gva(hi));
	expect_maps(env, hi, 0, DATA_GPA + 2 * PAGE_SIZE);
	expect_maps(env, lo, 0, DATA_GPA);
	/* A CR3 load syncs the rest: PTE 0 cleared, and gone after it. */
	*gpte_at(env, pte_gpa(PT_GPA(0), lo)) = 0;
	set_cr3(env, PD_GPA(0));
	expect_unmapped(env, lo);
	check_all(env);
}

/*
 * An out-of-sync table's entry filled by a fault from a gpte the snapshot
 * does not hold, then put back to the snapshot's value: the sync must
 * still recompute it (unsync.c item 1, the force bits), here for a PTE in
 * the second half of a 32-bit PT, whose word is not its spte index.
 */
static void test_out_of_sync_refill(void **state)
{
	struct env *env = *state;
	u32 va = 0x00601000, alias = 0x00401000; /* PTE 0x201: spte 1 of the second half */
	u32 *pte = gpte_at(env, pte_gpa(PT_GPA(0), va));

	*gpte_at(env, pde_gpa(PD_GPA(0), va)) = PT_GPA(0) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), alias)) = PT_GPA(0) | FLAGS | PTE_D;
	expect_maps(env, alias + 0x10, ACC_WRITE,
		    PT_GPA(0) + 0x10); /* out of sync, snapshot taken */
	assert_int_equal(shadow_get_stats(env->mmu)->unsyncs, 1);
	*pte = DATA_GPA | FLAGS | PTE_A;   /* no trap: the snapshot has 0 */
	expect_maps(env, va, 0, DATA_GPA); /* a fault fills the spte from memory */
	*pte = 0;			   /* back to the snapshot's value, no trap */
	shadow_invlpg(env->mmu, gva(va));
	expect_unmapped(env, va);
	check_all(env);
}

/* ---- the random test ---------------------------------------------------- */

static u32 random_va(void)
{
	/* Half the offsets are those of a checked PTE, for stores into a table page. */
	u32 offset = pick(2) ? pt_indexes[pick(NR_PT_INDEXES)] * 4 + pick(2) * 0x800
			     : pick(PAGE_SIZE) & ~3u;

	return va_of(pick(NR_PD_INDEXES), pick(NR_PT_INDEXES)) | (pick(2) ? 0x200000 : 0) | offset;
}

static u32 random_page(void)
{
	switch (pick(10)) {
	case 0: return PT_GPA(pick(NR_PTS)); /* a table as data */
	case 1: return PD_GPA(pick(NR_PDS));
	case 2: return MMIO_GPA;
	default: return DATA_GPA + pick(NR_DATA) * PAGE_SIZE;
	}
}

/* One random guest edit of a PDE or PTE, through the trapped-write path. */
static void random_edit(struct env *env)
{
	u32 va = random_va(), pd = PD_GPA(pick(NR_PDS));
	u64 where;
	u32 val;

	switch (pick(6)) {
	case 0: /* a PDE to a PT */
		where = pde_gpa(pd, va);
		val = PT_GPA(pick(NR_PTS)) | random_flags();
		break;
	case 1: /* a PDE to a 4 MiB page (a PT pointer while PSE is off) */
		where = pde_gpa(pd, va);
		val = (BIG_GPA + pick(2) * 4 * MiB) | random_flags() | PTE_PS;
		if (pick(8) == 0)
			val |= (pick(4) + 1) << 13; /* PSE-36: above RAM */
		if (pick(16) == 0)
			val |= 1u << 21; /* reserved */
		break;
	case 2: /* flip one flag of a PDE */
		where = pde_gpa(pd, va);
		val = *gpte_at(env, where) ^ (1u << pick(8));
		break;
	case 3: /* flip one flag of a PTE */
		where = pte_gpa(PT_GPA(pick(NR_PTS)), va);
		val = *gpte_at(env, where) ^ (1u << pick(8));
		break;
	default: /* a PTE */
		where = pte_gpa(PT_GPA(pick(NR_PTS)), va);
		val = random_page() | random_flags();
		break;
	}
	guest_write(env, where, val);
}

static u64 random_gpte(void)
{
	return random_page() | random_flags();
}

static void random_step(struct env *env)
{
	static const u32 accesses[] = { 0, ACC_WRITE, ACC_FETCH };

	switch (pick(16)) {
	case 0:
	case 1:
	case 2:
	case 3: random_edit(env); break;
	case 4: set_cr3(env, PD_GPA(pick(NR_PDS))); break;
	case 5:
		env->view = pick(2) ? SHADOW_VIEW_USER : SHADOW_VIEW_KERNEL;
		(void)shadow_switch_view(env->mmu, env->view);
		break;
	case 6:
		if (pick(4) == 0)
			set_mode(env, CR0_32 | (pick(2) ? CR0_WP : 0), pick(2) ? CR4_PSE : 0);
		else if (pick(2))
			guest_invlpg(env, random_va());
		else {
			shadow_flush(env->mmu, SHADOW_FLUSH_NONGLOBAL);
			forget_stale(env);
		}
		break;
	default: (void)cpu_access(env, random_va(), accesses[pick(3)]); break;
	}
}

static void test_random(void **state)
{
	struct env *env = *state;
	const char *s = getenv("SHADOW32_SEED"), *n = getenv("SHADOW32_STEPS");
	u32 seeds[] = { 0x32b17u, 0xc0ffee, 0x5eed };
	u64 steps = n ? strtoull(n, NULL, 0) : 60000;

	for (unsigned k = 0; k < (s ? 1 : 3); k++) {
		rng_state = s ? (u32)strtoul(s, NULL, 0) : seeds[k];
		for (u64 i = 0; i < steps; i++) {
			random_step(env);
			check_all(env);
		}
	}
	/* The run reached every kind of outcome, so the checks above had something to see. */
	print_message("32-bit random: %llu accesses, %llu guest #PF, %llu PT writes emulated, "
		      "%llu MMIO, %llu mapped gvas checked, %llu 2 MiB sptes, %llu sps made, "
		      "%llu stores into tables without a trap, %llu tables out of sync, %llu "
		      "checks passed only with a stale PTE\n",
		      (unsigned long long)env->accesses_ok, (unsigned long long)env->guest_faults,
		      (unsigned long long)env->pt_writes_emulated, (unsigned long long)env->mmio,
		      (unsigned long long)env->checks_mapped,
		      (unsigned long long)shadow_get_stats(env->mmu)->large_maps,
		      (unsigned long long)shadow_get_stats(env->mmu)->sp_created,
		      (unsigned long long)env->table_stores,
		      (unsigned long long)shadow_get_stats(env->mmu)->unsyncs,
		      (unsigned long long)env->stale_ok);
	assert_true(env->accesses_ok > 0 && env->guest_faults > 0 && env->pt_writes_emulated > 0 &&
		    env->mmio > 0 && env->checks_mapped > 0 && env->table_stores > 0 &&
		    shadow_get_stats(env->mmu)->unsyncs > 0 && (s || env->stale_ok > 0));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define S(fn) cmocka_unit_test_setup_teardown(fn, setup_small, teardown)
	const struct CMUnitTest tests[] = {
		T(test_quadrants),
		T(test_pte_write_hits_its_half),
		T(test_pde_write_unlinks_both_halves),
		T(test_4m_page),
		S(test_4m_page),
		T(test_pse_off),
		T(test_recursive_pde),
		T(test_pt_out_of_sync),
		T(test_out_of_sync_refill),
		T(test_random),
		S(test_random),
	};
#undef S
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
