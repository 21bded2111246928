/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the guest page-table walker in PAE paging outside long
 * mode (shadow/walk.c, paging_mode_pae; SDM Vol. 3A §4.4).
 *
 * The tables are built by hand in a malloc'd "guest RAM": a PDPT of 4
 * entries at a 32-byte (not page) aligned address, as Linux's PAE kernels
 * allocate them, page directories and a page table of 512 8-byte entries.
 * The walk takes the level-3 entries from the PDPTE registers in walk_ctl,
 * loaded by walk_read_pdptes() as a CR3 load does, never from memory.
 */
#include "walk_env32.h"

#define PDPT_GPA	(1 * MiB + 0x60) /* 32-byte aligned, the 4th PDPT of its page */
#define PD_GPA(i)	(2 * MiB + (i)*0x1000u)
#define PT_GPA		(3 * MiB)
#define DATA_4K_GPA	0x345000u
#define DATA_2M_GPA	0x00600000u
#define TEST_MAXPHYADDR 40

#define GVA_4K 0xc0123abcu /* PDPTE 3, PD index 0x000, PT index 0x123, offset 0xabc */
#define GVA_2M 0x8765432u  /* PDPTE 0, PD index 0x43, offset 0x165432 */

#define TABLE_FLAGS (PTE_P | PTE_RW | PTE_US)
#define LEAF_FLAGS  (PTE_P | PTE_RW | PTE_US)

static u64 *pdpte_mem(struct env *env, unsigned i)
{
	return (u64 *)(env->ram + PDPT_GPA) + i;
}

static u64 *pde(struct env *env, u32 va)
{
	return (u64 *)(env->ram + PD_GPA(va >> 30)) + ((va >> 21) & 511);
}

static u64 *pte(struct env *env, u32 va)
{
	return (u64 *)(env->ram + PT_GPA) + ((va >> 12) & 511);
}

/* A CR3 load: the PDPTE registers from memory; they must be valid. */
static void load_cr3(struct env *env)
{
	assert_true(walk_read_pdptes(&env->mem, env->ctl.cr3, env->ctl.maxphyaddr, env->ctl.pdpte));
}

static int setup(void **state)
{
	struct env *env = env_new();

	env->ctl = (struct walk_ctl){ .cr0 = CR0_PE | CR0_PG | CR0_WP,
				      .cr3 = PDPT_GPA,
				      .cr4 = CR4_PAE,
				      .efer = EFER_NXE,
				      .maxphyaddr = TEST_MAXPHYADDR };
	for (unsigned i = 0; i < 4; i++)
		*pdpte_mem(env, i) = PD_GPA(i) | PTE_P;
	load_cr3(env);
	*state = env;
	return 0;
}

static void map_4k(struct env *env, u32 va, u32 pa, u64 flags)
{
	*pde(env, va) = PT_GPA | TABLE_FLAGS;
	*pte(env, va) = pa | flags;
}

/* CR4.PAE without EFER.LMA is PAE paging; with it, 4-level paging. */
static void test_mode_select(void **state)
{
	struct env *env = *state;

	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_pae);
	env->ctl.cr4 |= CR4_PSE; /* PSE is implied by PAE and changes nothing */
	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_pae);
	env->ctl.efer |= EFER_LME | EFER_LMA;
	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_4level);
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
	assert_int_equal(walk.gpte_gpa[3].v, PDPT_GPA + 3 * 8);
	assert_int_equal(walk.gpte[3], PD_GPA(3) | PTE_P);
	assert_int_equal(walk.table_gfn[2].v, PD_GPA(3) >> PAGE_SHIFT);
	assert_int_equal(walk.gpte_gpa[2].v, PD_GPA(3));
	assert_int_equal(walk.gpte_gpa[1].v, PT_GPA + 0x123 * 8);
	/* A PDPTE has no R/W or U/S bits: it denies nothing. */
	assert_int_equal(walk.rights, PTE_RW | PTE_US);
}

static void test_translate_2m(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	*pde(env, GVA_2M) = DATA_2M_GPA | LEAF_FLAGS | PTE_PS;
	assert_int_equal(do_walk(env, &walk, GVA_2M, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(walk.gpa.v, DATA_2M_GPA + 0x165432);
	assert_int_equal(walk.level, PG_LEVEL_2M);
	assert_int_equal(*pde(env, GVA_2M), DATA_2M_GPA | LEAF_FLAGS | PTE_PS | PTE_A | PTE_D);
	assert_int_equal(walk_level_page_size(&paging_mode_pae, PG_LEVEL_2M), 2 * MiB);
}

/*
 * The walk uses the PDPTE registers: a store into the PDPT changes nothing
 * until the next load (§4.4.1), and the load reads CR3 bits 31:5 only.
 */
static void test_pdpte_registers(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*pdpte_mem(env, 3) = 0;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	env->ctl.cr3 = PDPT_GPA | 0x18; /* PWT and PCD positions: ignored in PAE paging */
	load_cr3(env);
	assert_int_equal(env->ctl.pdpte[3], 0);
	assert_int_equal(env->ctl.pdpte[2], PD_GPA(2) | PTE_P);
	expect_pf(env, GVA_4K, ACC_WRITE, PFERR_WRITE);
	assert_int_equal(env->ctl.pdpte[3], 0); /* and the walk leaves the registers alone */
}

/* A set walk sets A/D in the PDE and PTE, never in the PDPT: bit 5 is reserved there. */
static void test_ad_bits_skip_pdpte(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(*pde(env, GVA_4K), PT_GPA | TABLE_FLAGS | PTE_A);
	assert_int_equal(*pte(env, GVA_4K), DATA_4K_GPA | LEAF_FLAGS | PTE_A | PTE_D);
	assert_int_equal(*pdpte_mem(env, 3), PD_GPA(3) | PTE_P);
	assert_int_equal(env->ctl.pdpte[3], PD_GPA(3) | PTE_P);
	assert_true(walk_ad_already_set(&paging_mode_pae, &walk));

	/* A fault at the PTE sets A above it: in the PDE only. */
	*pde(env, GVA_4K) &= ~PTE_A;
	*pte(env, GVA_4K) = 0;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_SET_AD), WALK_FAULT);
	assert_true(walk_set_accessed_above(&paging_mode_pae, &env->mem, &walk, PG_LEVEL_4K));
	assert_int_equal(*pde(env, GVA_4K), PT_GPA | TABLE_FLAGS | PTE_A);
	assert_int_equal(*pdpte_mem(env, 3), PD_GPA(3) | PTE_P);
}

/*
 * The PDPT's page used as a PT too: the walk sets A in a PTE that is the
 * very PDPTE it took from a register. The register, and the walk's record
 * of it, keep the loaded value.
 */
static void test_pdpt_page_as_pt(void **state)
{
	struct env *env = *state;
	u32 va = 0xc000f000u; /* PDPTE 3, PDE 0, PTE 15: the 8 bytes at PDPT_GPA + 24 */
	u64 pdpte3 = PD_GPA(3) | PTE_P;
	struct guest_walk walk;

	*pde(env, va) = (PDPT_GPA & ~0xfffu) | TABLE_FLAGS;
	assert_int_equal(do_walk(env, &walk, va, 0, WALK_SET_AD), WALK_OK);
	assert_int_equal(walk.gpte_gpa[1].v, PDPT_GPA + 24);
	assert_int_equal(walk.gpa.v, PD_GPA(3));
	assert_int_equal(walk.gpte[1], pdpte3 | PTE_A);
	assert_int_equal(*pdpte_mem(env, 3), pdpte3 | PTE_A);
	assert_int_equal(walk.gpte[3], pdpte3);
	assert_int_equal(env->ctl.pdpte[3], pdpte3);
}

static void test_not_present(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	env->ctl.pdpte[1] = 0;
	assert_int_equal(do_walk(env, &walk, 0x40000000u, ACC_USER, WALK_SET_AD), WALK_FAULT);
	assert_int_equal(walk.level, 3);
	assert_int_equal(walk.fault.error_code, PFERR_USER);
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE, PFERR_USER | PFERR_WRITE); /* PDE */
	*pde(env, GVA_4K) = PT_GPA | TABLE_FLAGS;
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_FETCH); /* PTE; I/D with EFER.NXE */
}

/*
 * A PDPTE load refuses reserved bits (#GP on the loading instruction): bits
 * 2:1, 8:5, 63:MAXPHYADDR. Not-present entries may hold anything.
 */
static void test_pdpte_reserved_bits(void **state)
{
	static const u64 bad[] = { PTE_RW, PTE_US,     PTE_A,
				   PTE_D,  PTE_PS,     1ull << 8,
				   PTE_NX, 1ull << 52, 1ull << TEST_MAXPHYADDR };
	struct env *env = *state;
	u64 regs[4];

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		*pdpte_mem(env, 2) = PD_GPA(2) | PTE_P | bad[i];
		assert_false(walk_read_pdptes(&env->mem, env->ctl.cr3, TEST_MAXPHYADDR, regs));
		*pdpte_mem(env, 2) = (PD_GPA(2) | bad[i]) & ~PTE_P;
		assert_true(walk_read_pdptes(&env->mem, env->ctl.cr3, TEST_MAXPHYADDR, regs));
	}
	/* PWT, PCD and the ignored bits 11:9 are allowed. */
	*pdpte_mem(env, 2) = PD_GPA(2) | PTE_P | PTE_PWT | PTE_PCD | (7ull << 9);
	assert_true(walk_read_pdptes(&env->mem, env->ctl.cr3, TEST_MAXPHYADDR, regs));
	assert_int_equal(regs[2], *pdpte_mem(env, 2));
	/* A PDPT outside guest RAM reads as all ones: reserved bits. */
	assert_false(walk_read_pdptes(&env->mem, WALK_ENV_RAM_SIZE, TEST_MAXPHYADDR, regs));
}

/* Bits 62:MAXPHYADDR are reserved in a PAE PDE and PTE; 63 is NX with EFER.NXE only. */
static void test_reserved_bits(void **state)
{
	struct env *env = *state;
	u32 rsvd = PFERR_PRESENT | PFERR_RSVD;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS | (1ull << 62));
	expect_pf(env, GVA_4K, 0, rsvd);
	*pte(env, GVA_4K) = DATA_4K_GPA | LEAF_FLAGS | (1ull << 52);
	expect_pf(env, GVA_4K, 0, rsvd);
	*pte(env, GVA_4K) = DATA_4K_GPA | LEAF_FLAGS | (1ull << TEST_MAXPHYADDR);
	expect_pf(env, GVA_4K, ACC_USER, rsvd | PFERR_USER);
	*pte(env, GVA_4K) = DATA_4K_GPA | LEAF_FLAGS | PTE_NX;
	env->ctl.efer = 0;
	expect_pf(env, GVA_4K, 0, rsvd);
	env->ctl.efer = EFER_NXE;
	*pde(env, GVA_4K) = PT_GPA | TABLE_FLAGS | (1ull << 60);
	expect_pf(env, GVA_4K, 0, rsvd);
	/* A 2 MiB PDE: bits 20:13 too. */
	*pde(env, GVA_2M) = DATA_2M_GPA | LEAF_FLAGS | PTE_PS | (1ull << 13);
	expect_pf(env, GVA_2M, 0, rsvd);
}

static void test_rights(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*pde(env, GVA_4K) = PT_GPA | PTE_P | PTE_US; /* read-only from the PDE */
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE, PFERR_PRESENT | PFERR_USER | PFERR_WRITE);
	expect_pf(env, GVA_4K, ACC_WRITE, PFERR_PRESENT | PFERR_WRITE); /* CR0.WP = 1 */
	env->ctl.cr0 &= ~CR0_WP;
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_PEEK), WALK_OK);
	*pte(env, GVA_4K) = DATA_4K_GPA | PTE_P | PTE_RW; /* supervisor page */
	expect_pf(env, GVA_4K, ACC_USER, PFERR_PRESENT | PFERR_USER);
	*pte(env, GVA_4K) = DATA_4K_GPA | LEAF_FLAGS | PTE_NX;
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_PRESENT | PFERR_FETCH);
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_USER, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.rights, PTE_US | PTE_NX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mode_select, setup, teardown),
		cmocka_unit_test_setup_teardown(test_translate_4k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_translate_2m, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pdpte_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ad_bits_skip_pdpte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pdpt_page_as_pt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_present, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pdpte_reserved_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserved_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rights, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
