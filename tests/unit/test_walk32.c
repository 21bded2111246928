/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the guest page-table walker in 32-bit paging (shadow/walk.c,
 * paging_mode_32bit and paging_mode_32bit_pse; SDM Vol. 3A §4.3).
 *
 * Each test builds a page directory and page tables of 1024 4-byte entries
 * by hand in a malloc'd "guest RAM" and checks exact values: the gpa, the
 * level, where each gpte lives, the #PF error code, and which bytes of guest
 * memory the walk changed: an A/D update must write its own 4 bytes and
 * never the neighbouring entry.
 */
#include "walk_env32.h"

#define PD_GPA		(1 * MiB)
#define PT_GPA		(1 * MiB + 0x1000)
#define DATA_4K_GPA	0x345000u
#define DATA_4M_GPA	0x00c00000u /* 4 MiB aligned, below 4 GiB */
#define TEST_MAXPHYADDR 40

#define GVA_4K 0xc0123abcu /* PD index 0x300, PT index 0x123, offset 0xabc */
#define GVA_4M 0x8765432u  /* PD index 0x21, offset 0x365432 */

#define TABLE_FLAGS (PTE_P | PTE_RW | PTE_US)
#define LEAF_FLAGS  (PTE_P | PTE_RW | PTE_US)

static int setup(void **state)
{
	struct env *env = env_new();

	env->ctl = (struct walk_ctl){ .cr0 = CR0_PE | CR0_PG | CR0_WP,
				      .cr3 = PD_GPA,
				      .cr4 = CR4_PSE,
				      .maxphyaddr = TEST_MAXPHYADDR };
	*state = env;
	return 0;
}

static u32 *pde(struct env *env, u32 va)
{
	return (u32 *)(env->ram + PD_GPA) + (va >> 22);
}

static u32 *pte(struct env *env, u32 va)
{
	return (u32 *)(env->ram + PT_GPA) + ((va >> 12) & 1023);
}

/* Map va through the one PT at PT_GPA. */
static void map_4k(struct env *env, u32 va, u32 pa, u32 flags)
{
	*pde(env, va) = PT_GPA | TABLE_FLAGS;
	*pte(env, va) = pa | flags;
}

static void test_mode_select(void **state)
{
	struct env *env = *state;

	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_32bit_pse);
	env->ctl.cr4 &= ~CR4_PSE;
	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_32bit);
	env->ctl.cr4 |= CR4_PAE; /* PAE paging outside long mode (test_walkpae) */
	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_pae);
	env->ctl.cr0 &= ~CR0_PG;
	assert_null(paging_mode_select(&env->ctl));
}

static void test_translate_4k(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_USER, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v, DATA_4K_GPA + 0xabc);
	assert_int_equal(walk.level, PG_LEVEL_4K);
	assert_int_equal(walk.gpte_gpa[2].v, PD_GPA + 0x300 * 4);
	assert_int_equal(walk.gpte_gpa[1].v, PT_GPA + 0x123 * 4);
	assert_int_equal(walk.table_gfn[1].v, PT_GPA >> PAGE_SHIFT);
	assert_int_equal(walk.gpte[1], DATA_4K_GPA | LEAF_FLAGS);
	assert_int_equal(walk.rights, PTE_RW | PTE_US);
}

/* CR3's bits 11:0 (PWT, PCD) are not part of the PD address. */
static void test_cr3_low_bits_ignored(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	env->ctl.cr3 = PD_GPA | 0x18;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v, DATA_4K_GPA + 0xabc);
}

static void test_translate_4m(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	*pde(env, GVA_4M) = DATA_4M_GPA | LEAF_FLAGS | PTE_PS;
	assert_int_equal(do_walk(env, &walk, GVA_4M, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v, DATA_4M_GPA + 0x365432);
	assert_int_equal(walk.level, PG_LEVEL_2M);
	assert_int_equal(walk_level_page_size(&paging_mode_32bit_pse, 2), 4 * MiB);
}

/* PSE-36: PDE bits 20:13 are address bits 39:32; bit 12 is PAT, not address. */
static void test_pse36_high_address(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	*pde(env, GVA_4M) = DATA_4M_GPA | (0x5au << 13) | PTE_PAT_LARGE | LEAF_FLAGS | PTE_PS;
	assert_int_equal(do_walk(env, &walk, GVA_4M, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v, 0x5aull << 32 | (DATA_4M_GPA + 0x365432));
}

/* Reserved: bit 21, and bits 20:(M-19) with M = MIN(MAXPHYADDR, 40). */
static void test_pse36_reserved_bits(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u32 *e = pde(env, GVA_4M);

	*e = DATA_4M_GPA | LEAF_FLAGS | PTE_PS | (1u << 21);
	expect_pf(env, GVA_4M, 0, PFERR_PRESENT | PFERR_RSVD);

	env->ctl.maxphyaddr = 36; /* bits 16:13 hold address bits 35:32, 20:17 are reserved */
	*e = DATA_4M_GPA | LEAF_FLAGS | PTE_PS | (0xfu << 13);
	assert_int_equal(do_walk(env, &walk, GVA_4M, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v >> 32, 0xf);
	*e = DATA_4M_GPA | LEAF_FLAGS | PTE_PS | (1u << 17);
	expect_pf(env, GVA_4M, ACC_WRITE, PFERR_PRESENT | PFERR_RSVD | PFERR_WRITE);

	env->ctl.maxphyaddr = 52; /* capped at 40: all of 20:13 are address */
	*e = DATA_4M_GPA | LEAF_FLAGS | PTE_PS | (0xffu << 13);
	assert_int_equal(do_walk(env, &walk, GVA_4M, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v >> 32, 0xff);
}

/* Without CR4.PSE, PS in a PDE is ignored: the PDE points to a page table. */
static void test_ps_ignored_without_pse(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*pde(env, GVA_4K) |= PTE_PS; /* means nothing now */
	env->ctl.cr4 &= ~CR4_PSE;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.level, PG_LEVEL_4K);
	assert_int_equal(walk.gpa.v, DATA_4K_GPA + 0xabc);
	/* A PTE has no reserved bits: bit 7 is PAT. */
	*pte(env, GVA_4K) |= PTE_PAT;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
}

static void test_not_present(void **state)
{
	struct env *env = *state;

	expect_pf(env, GVA_4K, ACC_USER, PFERR_USER);
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS & ~PTE_P);
	expect_pf(env, GVA_4K, ACC_WRITE, PFERR_WRITE);
}

/* No NX in 32-bit paging: I/D is reported only under SMEP (§4.7), whatever EFER.NXE. */
static void test_fetch_error_code(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	env->ctl.efer = EFER_NXE;
	expect_pf(env, GVA_4K, ACC_FETCH, 0);
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_FETCH | ACC_USER, WALK_PEEK), WALK_OK);
	env->ctl.cr4 |= CR4_SMEP;
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_PRESENT | PFERR_FETCH);
}

static void test_rights(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P | PTE_RW); /* supervisor */
	expect_pf(env, GVA_4K, ACC_USER, PFERR_PRESENT | PFERR_USER);
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*pde(env, GVA_4K) &= ~PTE_RW; /* read-only above */
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE, PFERR_PRESENT | PFERR_USER | PFERR_WRITE);
	expect_pf(env, GVA_4K, ACC_WRITE, PFERR_PRESENT | PFERR_WRITE);
	env->ctl.cr0 &= ~CR0_WP; /* a supervisor write ignores R/W */
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.rights, PTE_US);
}

/* A and D are set in 4 bytes: the neighbouring entries stay as they were. */
static void test_ad_bits_are_4_bytes(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u32 *e = pte(env, GVA_4K);

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	e[1] = 0x11111000u; /* not present, any bits */
	pde(env, GVA_4K)[1] = 0x22222000u;
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(*pde(env, GVA_4K), PT_GPA | TABLE_FLAGS | PTE_A);
	assert_int_equal(*e, DATA_4K_GPA | LEAF_FLAGS | PTE_A | PTE_D);
	assert_int_equal(e[1], 0x11111000u);
	assert_int_equal(pde(env, GVA_4K)[1], 0x22222000u);
	assert_true(walk_ad_already_set(paging_mode_select(&env->ctl), &walk));

	/* A 4 MiB page: A and D in the PDE. */
	*pde(env, GVA_4M) = DATA_4M_GPA | LEAF_FLAGS | PTE_PS;
	assert_int_equal(do_walk(env, &walk, GVA_4M, 0, WALK_SET_AD), WALK_OK);
	assert_int_equal(*pde(env, GVA_4M), DATA_4M_GPA | LEAF_FLAGS | PTE_PS | PTE_A);
	assert_int_equal(do_walk(env, &walk, GVA_4M, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(*pde(env, GVA_4M), DATA_4M_GPA | LEAF_FLAGS | PTE_PS | PTE_A | PTE_D);
}

/* A faulting walk writes nothing; walk_set_accessed_above writes 4 bytes too. */
static void test_fault_sets_nothing(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P); /* read-only supervisor */
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_USER, WALK_SET_AD), WALK_FAULT);
	assert_int_equal(*pde(env, GVA_4K), PT_GPA | TABLE_FLAGS);
	assert_int_equal(*pte(env, GVA_4K), DATA_4K_GPA | PTE_P);
	assert_true(walk_set_accessed_above(paging_mode_select(&env->ctl), &env->mem, &walk,
					    PG_LEVEL_4K));
	assert_int_equal(*pde(env, GVA_4K), PT_GPA | TABLE_FLAGS | PTE_A);
	assert_int_equal(pde(env, GVA_4K)[1], 0);
}

/* Bits above 31 of the gva are not translated (the caller's); a PD outside RAM is BAD_GPA. */
static void test_bad_table(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	*pde(env, GVA_4K) = 0xfff00000u | TABLE_FLAGS; /* PT beyond RAM */
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_BAD_GPA);
	assert_int_equal(walk.level, PG_LEVEL_4K);
}

/* A PD used as its own PT (a recursive PDE) reaches the PTE that maps another gva. */
static void test_recursive_pde(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u32 self = 0x3ff, va = self << 22 | (GVA_4K >> 22) << 12;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*pde(env, va) = PD_GPA | TABLE_FLAGS;
	assert_int_equal(do_walk(env, &walk, va + 0x123 * 4, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(walk.gpa.v, PT_GPA + 0x123 * 4);
	/* A in the recursive PDE; the PDE of GVA_4K was the leaf: A and D. */
	assert_int_equal(*pde(env, va), PD_GPA | TABLE_FLAGS | PTE_A);
	assert_int_equal(*pde(env, GVA_4K), PT_GPA | TABLE_FLAGS | PTE_A | PTE_D);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_mode_select),
		T(test_translate_4k),
		T(test_cr3_low_bits_ignored),
		T(test_translate_4m),
		T(test_pse36_high_address),
		T(test_pse36_reserved_bits),
		T(test_ps_ignored_without_pse),
		T(test_not_present),
		T(test_fetch_error_code),
		T(test_rights),
		T(test_ad_bits_are_4_bytes),
		T(test_fault_sets_nothing),
		T(test_bad_table),
		T(test_recursive_pde),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
