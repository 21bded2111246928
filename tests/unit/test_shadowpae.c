/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU on a guest in PAE paging outside long mode (shadow/, union
 * sp_role's pae and pdpt; SDM Vol. 3A §4.4).
 *
 * A PAE guest's PDs and PTs are 4-level paging's, so they are shadowed as
 * such; above them the CPU holds 4 PDPTE registers, loaded from the 32
 * bytes at CR3[31:5] by a CR3 load and by nothing else here. The shadow's
 * root passes through to a level-3 sp whose links follow those registers,
 * one root per PDPT (Linux packs 128 of them in a page), and the PDPT's page
 * is not write-protected: a store there changes nothing until the next load.
 * The fixed tests check those rules; the random test drives the MMU through
 * seeded guest edits (PDPT stores included), PDPTE loads, CR3 switches
 * between PDPTs of one page and of another, view, CR0.WP and EFER.NXE
 * changes, flushes and accesses, and after every step checks a set of gvas
 * in each GiB against the reference walker (shadow_model32.h, shared with
 * test_shadow32.c, says what the oracle allows an out-of-sync PT).
 *
 * SHADOWPAE_SEED and SHADOWPAE_STEPS replay or lengthen the random test.
 */
#include "shadow_model32.h"

/* Three PDPTs in one page (slots 0, 1 and 5) and one in another page. */
#define NR_PDPTS   4
#define PDPT_PAGE  (1 * MiB)
#define PD_GPA(n)  (1 * MiB + (2 + (n)) * PAGE_SIZE) /* NR_PDS page directories */
#define PT_GPA(n)  (1 * MiB + (2 + NR_PDS + (n)) * PAGE_SIZE)
#define NR_PDS	   4
#define NR_PTS	   8
#define DATA_GPA   (2 * MiB) /* 4 KiB data pages from here */
#define NR_DATA	   64
#define BIG_GPA	   (8 * MiB) /* 2 MiB pages at 8, 10, 12 and 14 MiB */
#define MMIO_GPA   0xfee00000u
#define RSVD_BIT62 (1ull << 62)

#define CR0_PAE_MODE (CR0_PE | CR0_ET | CR0_NE | CR0_PG)

static const u32 pdpt_gpas[NR_PDPTS] = { PDPT_PAGE, PDPT_PAGE + 0x20, PDPT_PAGE + 0xa0,
					 PDPT_PAGE + PAGE_SIZE + 0x40 };

static u64 *gpte_at(struct env *env, u64 where)
{
	return (u64 *)(env->ram + where);
}

/* A change of CR0.WP or EFER.NXE: no PDPTE load (§4.4.1), no flush of what is out of sync. */
static void set_mode(struct env *env, u64 cr0, u64 efer)
{
	env->ctl.cr0 = cr0;
	env->ctl.cr4 = CR4_PAE;
	env->ctl.efer = efer;
	shadow_set_mode(env->mmu, cr0, CR4_PAE, efer);
}

/*
 * mov to CR3 as the VMM emulates it: the PDPTE load, #GP if it fails (CR3
 * and the registers unchanged), else the registers and the new CR3 to the
 * MMU. True if it loaded.
 */
static bool load_cr3(struct env *env, u32 cr3)
{
	u64 regs[4];

	if (!walk_read_pdptes(walk_mem(env), cr3, env->ctl.maxphyaddr, regs)) {
		env->pdpte_load_gp++;
		return false;
	}
	forget_stale(env);
	memcpy(env->ctl.pdpte, regs, sizeof(regs));
	env->ctl.cr3 = cr3;
	shadow_set_pdptes(env->mmu, regs);
	(void)shadow_set_cr3(env->mmu, cr3, env->view);
	env->pdpte_loads++;
	return true;
}

static u64 random_gpte(void);

static int setup_with(void **state, bool large, unsigned prefetch)
{
	struct env *env = model_create(large, prefetch, sizeof(u64));

	/* The PDPTs' pages too: the model CPU may store there without a trap. */
	env->tables_lo = PDPT_PAGE;
	env->tables_hi = PT_GPA(NR_PTS);
	env->random_gpte = random_gpte;
	/* PDPT k's entry q names PD (k + q) % NR_PDS: every PD is under several PDPTs. */
	for (unsigned k = 0; k < NR_PDPTS; k++)
		for (unsigned q = 0; q < 4; q++)
			*gpte_at(env, pdpt_gpas[k] + 8 * q) = PD_GPA((k + q) % NR_PDS) | PTE_P;
	set_mode(env, CR0_PAE_MODE | CR0_WP, EFER_NXE);
	assert_true(load_cr3(env, pdpt_gpas[0]));
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

static u64 pde_gpa(u32 pd, u32 va)
{
	return pd + ((va >> 21) & 511) * 8;
}

static u64 pte_gpa(u32 pt, u32 va)
{
	return pt + ((va >> 12) & 511) * 8;
}

/* ---- the oracle --------------------------------------------------------- */

/* The gvas checked: both sides of the PD's and the PT's middle, and their ends, in each GiB. */
static const u32 pd_indexes[] = { 0x000, 0x001, 0x0ff, 0x100, 0x1ff };
static const u32 pt_indexes[] = { 0x000, 0x001, 0x0ff, 0x100, 0x1ff };
#define NR_PD_INDEXES (sizeof(pd_indexes) / sizeof(pd_indexes[0]))
#define NR_PT_INDEXES (sizeof(pt_indexes) / sizeof(pt_indexes[0]))

static u32 va_of(unsigned q, unsigned pdi, unsigned pti)
{
	return q << 30 | pd_indexes[pdi] << 21 | pt_indexes[pti] << 12;
}

static void check_all(struct env *env)
{
	for (unsigned q = 0; q < 4; q++)
		for (unsigned i = 0; i < NR_PD_INDEXES; i++)
			for (unsigned j = 0; j < NR_PT_INDEXES; j++)
				for (unsigned v = 0; v < SHADOW_NR_VIEWS; v++)
					agrees(env, va_of(q, i, j), v);
}

/* ---- fixed tests -------------------------------------------------------- */

#define FLAGS (PTE_P | PTE_RW | PTE_US)

/* A page in each GiB, through the PD its PDPTE names; A/D in the PDE and PTE only. */
static void test_each_gib(void **state)
{
	struct env *env = *state;

	for (unsigned q = 0; q < 4; q++) {
		u32 va = q << 30 | 0x00c00000 | 0x123;

		*gpte_at(env, pde_gpa(PD_GPA(q), va)) = PT_GPA(q) | FLAGS;
		*gpte_at(env, pte_gpa(PT_GPA(q), va)) = (DATA_GPA + q * PAGE_SIZE) | FLAGS;
		expect_maps(env, va, ACC_WRITE, DATA_GPA + q * PAGE_SIZE + 0x123);
		assert_int_equal(*gpte_at(env, pde_gpa(PD_GPA(q), va)), PT_GPA(q) | FLAGS | PTE_A);
	}
	assert_int_equal(*gpte_at(env, pdpt_gpas[0] + 8), PD_GPA(1) | PTE_P);
	/* The PDPT's page is no shadowed table: its stores do not trap. */
	assert_false(gfn_is_write_protected(env->mmu, gpa_to_gfn(gpa(PDPT_PAGE))));
	assert_true(gfn_is_write_protected(env->mmu, gpa_to_gfn(gpa(PD_GPA(2)))));
	check_all(env);
}

/*
 * The PDPTE registers, not the PDPT in memory: a store there changes no
 * translation until the next CR3 load, which follows it.
 */
static void test_pdpte_registers(void **state)
{
	struct env *env = *state;
	u32 va = 0x40000000; /* GiB 1: PDPTE 1 of PDPT 0 names PD 1 */

	*gpte_at(env, pde_gpa(PD_GPA(1), va)) = PT_GPA(0) | FLAGS;
	*gpte_at(env, pde_gpa(PD_GPA(2), va)) = PT_GPA(1) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), va)) = DATA_GPA | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(1), va)) = (DATA_GPA + PAGE_SIZE) | FLAGS;
	expect_maps(env, va, 0, DATA_GPA);
	*gpte_at(env, pdpt_gpas[0] + 8) = PD_GPA(2) | PTE_P; /* no trap */
	shadow_flush(env->mmu, SHADOW_FLUSH_NONGLOBAL);
	expect_maps(env, va, 0, DATA_GPA);
	check_all(env);
	assert_true(load_cr3(env, pdpt_gpas[0]));
	expect_unmapped(env, va); /* the cached root's stale link went */
	expect_maps(env, va, 0, DATA_GPA + PAGE_SIZE);
	/* Not present: the GiB is gone, without a fault's walk of memory. */
	*gpte_at(env, pdpt_gpas[0] + 8) = 0;
	assert_true(load_cr3(env, pdpt_gpas[0]));
	expect_unmapped(env, va);
	assert_int_equal(cpu_access(env, va, 0), SHADOW_GUEST_FAULT);
	/* Reserved bits: the load faults (#GP) and the registers stay. */
	*gpte_at(env, pdpt_gpas[0] + 8) = PD_GPA(1) | PTE_P | PTE_RW;
	assert_false(load_cr3(env, pdpt_gpas[0]));
	assert_int_equal(cpu_access(env, va, 0), SHADOW_GUEST_FAULT);
	check_all(env);
}

/* Two PDPTs of one page are two roots; switching between them keeps each exact. */
static void test_pdpts_share_a_page(void **state)
{
	struct env *env = *state;
	u32 va = 0x00200000; /* GiB 0: PDPT 0 names PD 0, PDPT 1 names PD 1 */
	const struct shadow_stats *st = shadow_get_stats(env->mmu);

	*gpte_at(env, pde_gpa(PD_GPA(0), va)) = PT_GPA(0) | FLAGS;
	*gpte_at(env, pde_gpa(PD_GPA(1), va)) = PT_GPA(1) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(0), va)) = DATA_GPA | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(1), va)) = (DATA_GPA + PAGE_SIZE) | FLAGS;
	expect_maps(env, va, 0, DATA_GPA);
	assert_true(load_cr3(env, pdpt_gpas[1]));
	expect_maps(env, va, 0, DATA_GPA + PAGE_SIZE);
	check_all(env);
	assert_true(load_cr3(env, pdpt_gpas[0]));
	assert_true(st->root_hits > 0);
	expect_maps(env, va, 0, DATA_GPA); /* no fault: the cached root still links it */
	assert_true(load_cr3(env, pdpt_gpas[2]));
	expect_unmapped(env, va + 0x1000);
	check_all(env);
}

/* 2 MiB pages, NX with EFER.NXE, and bit 62 reserved in a PAE PDE. */
static void test_2m_nx_reserved(void **state)
{
	struct env *env = *state;
	u32 va = 0x80000000; /* GiB 2: PD 2 */
	mpa_t where;
	u64 rights;

	*gpte_at(env, pde_gpa(PD_GPA(2), va)) = BIG_GPA | FLAGS | PTE_PS | PTE_NX;
	expect_maps(env, va + 0x1234, ACC_WRITE, BIG_GPA + 0x1234);
	assert_true(shadow_translate(env->mmu, env->view, gva(va + 0x1234), &where, &rights));
	assert_true(rights & PTE_NX);
	assert_int_equal(cpu_access(env, va, ACC_FETCH), SHADOW_GUEST_FAULT);
	if (env->large)
		assert_true(shadow_get_stats(env->mmu)->large_maps >= 1);
	check_all(env);
	/* Without NXE bit 63 is reserved; roots of the other mode are other sps. */
	set_mode(env, CR0_PAE_MODE | CR0_WP, 0);
	(void)shadow_switch_view(env->mmu, env->view);
	assert_int_equal(cpu_access(env, va, 0), SHADOW_GUEST_FAULT);
	check_all(env);
	set_mode(env, CR0_PAE_MODE | CR0_WP, EFER_NXE);
	(void)shadow_switch_view(env->mmu, env->view);
	guest_write(env, pde_gpa(PD_GPA(2), va), BIG_GPA | FLAGS | PTE_PS | PTE_A | RSVD_BIT62);
	expect_unmapped(env, va);
	assert_int_equal(cpu_access(env, va, 0), SHADOW_GUEST_FAULT);
	check_all(env);
}

/* A PT write reaches its spte under every PD that links the PT. */
static void test_pt_write_under_two_pds(void **state)
{
	struct env *env = *state;
	u32 lo = 0x00400000, hi = 0x40400000; /* PD 0 and PD 1, the same PT */

	*gpte_at(env, pde_gpa(PD_GPA(0), lo)) = PT_GPA(3) | FLAGS;
	*gpte_at(env, pde_gpa(PD_GPA(1), hi)) = PT_GPA(3) | FLAGS;
	*gpte_at(env, pte_gpa(PT_GPA(3), lo)) = DATA_GPA | FLAGS;
	expect_maps(env, lo, 0, DATA_GPA);
	expect_maps(env, hi, 0, DATA_GPA);
	guest_write(env, pte_gpa(PT_GPA(3), lo), (DATA_GPA + PAGE_SIZE) | FLAGS | PTE_A);
	expect_maps(env, lo, 0, DATA_GPA + PAGE_SIZE);
	expect_maps(env, hi, 0, DATA_GPA + PAGE_SIZE);
	check_all(env);
}

/* ---- the random test ---------------------------------------------------- */

static u32 random_va(void)
{
	/* Half the offsets are those of a checked entry, for stores into a table page. */
	u32 offset = pick(2) ? pt_indexes[pick(NR_PT_INDEXES)] * 8 : pick(PAGE_SIZE) & ~7u;

	return va_of(pick(4), pick(NR_PD_INDEXES), pick(NR_PT_INDEXES)) | offset;
}

/* The common flags, then what PAE adds: NX, and a reserved bit now and then. */
static u64 random_pae_flags(void)
{
	u64 f = random_flags();

	if (pick(6) == 0)
		f |= PTE_NX;
	if (pick(32) == 0)
		f |= RSVD_BIT62;
	return f;
}

static u64 random_page(void)
{
	switch (pick(12)) {
	case 0: return PT_GPA(pick(NR_PTS)); /* a table as data */
	case 1: return PD_GPA(pick(NR_PDS));
	case 2: return PDPT_PAGE + pick(2) * PAGE_SIZE;
	case 3: return MMIO_GPA;
	default: return DATA_GPA + pick(NR_DATA) * PAGE_SIZE;
	}
}

static u64 random_gpte(void)
{
	return random_page() | random_pae_flags();
}

/* A PDPTE as the guest may store one: mostly valid, sometimes not present or reserved. */
static u64 random_pdpte(void)
{
	u64 e = PD_GPA(pick(NR_PDS)) | PTE_P;

	switch (pick(10)) {
	case 0: return 0;
	case 1: return e | PTE_RW; /* reserved: the next load of this PDPT faults */
	case 2: return e | PTE_PWT | PTE_PCD;
	default: return e;
	}
}

/* A store into a PDPT page no trap catches (out of sync if it is a PT too: a stale value). */
static void pdpt_store(struct env *env, u64 where, u64 val)
{
	note_stale(env, where);
	*gpte_at(env, where) = val;
	env->pdpt_stores++;
}

/* One random guest edit: a PDE or PTE through the trapped-write path, or a PDPTE without a trap. */
static void random_edit(struct env *env)
{
	u32 va = random_va();
	u64 where, val;

	switch (pick(7)) {
	case 0: /* a PDE to a PT */
		where = pde_gpa(PD_GPA(pick(NR_PDS)), va);
		val = PT_GPA(pick(NR_PTS)) | random_pae_flags();
		break;
	case 1: /* a PDE to a 2 MiB page */
		where = pde_gpa(PD_GPA(pick(NR_PDS)), va);
		val = (BIG_GPA + pick(4) * 2 * MiB) | random_pae_flags() | PTE_PS;
		break;
	case 2: /* flip one flag of a PDE */
		where = pde_gpa(PD_GPA(pick(NR_PDS)), va);
		val = *gpte_at(env, where) ^ (1ull << pick(8));
		break;
	case 3: /* a PDPTE: the CPU reads it at the next load only */
		where = pdpt_gpas[pick(NR_PDPTS)] + 8 * pick(4);
		val = random_pdpte();
		/* The page may be a PD or PT too: then the store traps as any table write. */
		if (!gfn_is_write_protected(env->mmu, gpa_to_gfn(gpa(where)))) {
			pdpt_store(env, where, val);
			return;
		}
		break;
	default: /* a PTE */
		where = pte_gpa(PT_GPA(pick(NR_PTS)), va);
		val = random_page() | random_pae_flags();
		break;
	}
	guest_write(env, where, val);
}

static void random_step(struct env *env)
{
	static const u32 accesses[] = { 0, ACC_WRITE, ACC_FETCH };

	switch (pick(16)) {
	case 0:
	case 1:
	case 2:
	case 3: random_edit(env); break;
	case 4: (void)load_cr3(env, pdpt_gpas[pick(NR_PDPTS)]); break;
	case 5:
		env->view = pick(2) ? SHADOW_VIEW_USER : SHADOW_VIEW_KERNEL;
		(void)shadow_switch_view(env->mmu, env->view);
		break;
	case 6:
		if (pick(4) == 0) {
			set_mode(env, CR0_PAE_MODE | (pick(2) ? CR0_WP : 0),
				 pick(2) ? EFER_NXE : 0);
			(void)shadow_switch_view(env->mmu, env->view);
		} else if (pick(2)) {
			guest_invlpg(env, random_va());
		} else {
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
	const char *s = getenv("SHADOWPAE_SEED"), *n = getenv("SHADOWPAE_STEPS");
	u32 seeds[] = { 0x9ae1u, 0xbeef5, 0x1234567 };
	u64 steps = n ? strtoull(n, NULL, 0) : 40000;
	const struct shadow_stats *st = shadow_get_stats(env->mmu);

	for (unsigned k = 0; k < (s ? 1 : 3); k++) {
		rng_state = s ? (u32)strtoul(s, NULL, 0) : seeds[k];
		for (u64 i = 0; i < steps; i++) {
			random_step(env);
			check_all(env);
		}
	}
	print_message("PAE random: %llu accesses, %llu guest #PF, %llu PT writes emulated, "
		      "%llu MMIO, %llu mapped gvas checked, %llu 2 MiB sptes, %llu sps made, "
		      "%llu stores into tables without a trap (%llu into PDPTs), %llu PDPTE "
		      "loads (%llu refused), %llu tables out of sync, %llu checks passed only "
		      "with a stale PTE\n",
		      (unsigned long long)env->accesses_ok, (unsigned long long)env->guest_faults,
		      (unsigned long long)env->pt_writes_emulated, (unsigned long long)env->mmio,
		      (unsigned long long)env->checks_mapped, (unsigned long long)st->large_maps,
		      (unsigned long long)st->sp_created, (unsigned long long)env->table_stores,
		      (unsigned long long)env->pdpt_stores, (unsigned long long)env->pdpte_loads,
		      (unsigned long long)env->pdpte_load_gp, (unsigned long long)st->unsyncs,
		      (unsigned long long)env->stale_ok);
	assert_true(env->accesses_ok > 0 && env->guest_faults > 0 && env->pt_writes_emulated > 0 &&
		    env->mmio > 0 && env->checks_mapped > 0 && env->table_stores > 0 &&
		    env->pdpt_stores > 0 && env->pdpte_load_gp > 0 && st->unsyncs > 0 &&
		    (s || env->stale_ok > 0));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define S(fn) cmocka_unit_test_setup_teardown(fn, setup_small, teardown)
	const struct CMUnitTest tests[] = {
		T(test_each_gib),	T(test_pdpte_registers), T(test_pdpts_share_a_page),
		T(test_2m_nx_reserved), S(test_2m_nx_reserved),	 T(test_pt_write_under_two_pds),
		T(test_random),		S(test_random),
	};
#undef S
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
