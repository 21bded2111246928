/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the guest page-table walker (shadow/walk.c).
 *
 * Each test builds 4-level page tables by hand in a malloc'd "guest RAM"
 * (gpa 0 = byte 0 of the buffer) and checks exact values: the gpa, the #PF
 * error code and CR2, the level the walk stopped at, and the bytes of guest
 * memory the walk did (or did not) change. Expected values follow Intel SDM
 * Vol. 3A §4.5 to §4.8.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shadow/shadow.h"

#define RAM_SIZE	(4 * MiB)
#define TABLE_POOL_GPA	(1 * MiB) /* hand-built tables are allocated upwards from here */
#define TEST_MAXPHYADDR 40
#define OUTSIDE_RAM_GPA (2 * GiB) /* below MAXPHYADDR, beyond RAM_SIZE */

/* Data pages: their contents are never read, they only appear in gptes. */
#define DATA_4K_GPA 0x345000ull
#define DATA_2M_GPA (0x2ull * GiB + 0x600000ull)
#define DATA_1G_GPA (0x5ull * GiB)

/* Gvas chosen so that every level uses a different, nonzero index. */
#define GVA_4K 0x00007f1234567abcull /* indices 254, 72, 418, 359; offset 0xabc */
#define GVA_2M 0x0000123456789abcull /* 2 MiB offset 0x189abc */
#define GVA_1G 0x0000654321fedcbaull /* 1 GiB offset 0x21fedcba */

#define TABLE_FLAGS (PTE_P | PTE_RW | PTE_US)
#define LEAF_FLAGS  (PTE_P | PTE_RW | PTE_US)

struct env {
	u8 *ram;
	gpa_t next_table;
	unsigned hva_calls;
	struct walk_mem mem;
	struct walk_ctl ctl;
};

static void *test_gpa_to_hva(void *opaque, gpa_t where, size_t len)
{
	struct env *env = opaque;

	env->hva_calls++;
	if (where.v >= RAM_SIZE || len > RAM_SIZE - where.v)
		return NULL;
	return env->ram + where.v;
}

static u64 *gptep_at(struct env *env, gpa_t table, unsigned index)
{
	assert_true(table.v + (index + 1) * sizeof(u64) <= RAM_SIZE);
	return (u64 *)(env->ram + table.v) + index;
}

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

/* A canonical gva from the four table indices and an offset. */
static u64 gva_of(unsigned i4, unsigned i3, unsigned i2, unsigned i1, u64 offset)
{
	u64 va = (u64)i4 << 39 | (u64)i3 << 30 | (u64)i2 << 21 | (u64)i1 << 12 | offset;

	return (va & (1ull << 47)) ? va | 0xffff000000000000ull : va;
}

/*
 * The gpte for `va` at `level`, creating missing tables above it with
 * TABLE_FLAGS. Returns a pointer into guest RAM.
 */
static u64 *gptep_for(struct env *env, u64 va, unsigned level)
{
	gpa_t table = gpa(env->ctl.cr3 & PTE_ADDR_MASK(TEST_MAXPHYADDR));
	unsigned l;

	for (l = PG_LEVEL_PML4; l > level; l--) {
		u64 *gptep = gptep_at(env, table, index_at(va, l));

		if (!(*gptep & PTE_P))
			*gptep = alloc_table(env).v | TABLE_FLAGS;
		table = gpa(*gptep & PTE_ADDR_MASK(TEST_MAXPHYADDR));
	}
	return gptep_at(env, table, index_at(va, level));
}

static u64 *map_4k(struct env *env, u64 va, u64 pa, u64 flags)
{
	u64 *gptep = gptep_for(env, va, PG_LEVEL_4K);

	*gptep = pa | flags;
	return gptep;
}

static u64 *map_2m(struct env *env, u64 va, u64 pa, u64 flags)
{
	u64 *gptep = gptep_for(env, va, PG_LEVEL_2M);

	*gptep = pa | flags | PTE_PS;
	return gptep;
}

static u64 *map_1g(struct env *env, u64 va, u64 pa, u64 flags)
{
	u64 *gptep = gptep_for(env, va, PG_LEVEL_1G);

	*gptep = pa | flags | PTE_PS;
	return gptep;
}

static enum walk_result do_walk(struct env *env, struct guest_walk *walk, u64 va, u32 access,
				u32 flags)
{
	return walk_guest(paging_mode_select(&env->ctl), &env->mem, &env->ctl, gva(va), access,
			  flags, walk);
}

static void expect_gpa(struct env *env, u64 va, u32 access, u64 expected_gpa,
		       unsigned expected_level)
{
	struct guest_walk walk;

	assert_int_equal(do_walk(env, &walk, va, access, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v, expected_gpa);
	assert_int_equal(walk.level, expected_level);
}

static void expect_pf(struct env *env, u64 va, u32 access, u32 error_code, unsigned level)
{
	struct guest_walk walk;

	assert_int_equal(do_walk(env, &walk, va, access, WALK_PEEK), WALK_FAULT);
	assert_int_equal(walk.fault.vector, X86_EXC_PF);
	assert_int_equal(walk.fault.error_code, error_code);
	assert_int_equal(walk.fault.cr2.v, va);
	assert_int_equal(walk.level, level);
}

static int setup(void **state)
{
	struct env *env = calloc(1, sizeof(*env));

	if (!env)
		return -1;
	env->ram = aligned_alloc(PAGE_SIZE, RAM_SIZE);
	if (!env->ram) {
		free(env);
		return -1;
	}
	memset(env->ram, 0, RAM_SIZE);
	env->next_table = gpa(TABLE_POOL_GPA);
	env->mem = (struct walk_mem){ .opaque = env, .gpa_to_hva = test_gpa_to_hva };
	env->ctl = (struct walk_ctl){
		.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
		.cr4 = CR4_PAE,
		.efer = EFER_LME | EFER_LMA | EFER_NXE,
		.maxphyaddr = TEST_MAXPHYADDR,
	};
	env->ctl.cr3 = alloc_table(env).v;
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	free(env->ram);
	free(env);
	return 0;
}

/* ---- translation -------------------------------------------------------- */

static void test_translate_4k(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v, DATA_4K_GPA + 0xabc);
	assert_int_equal(walk.level, PG_LEVEL_4K);
	assert_int_equal(walk.rights, PTE_RW | PTE_US);
	/* The last byte of the page still maps into the same page. */
	expect_gpa(env, GVA_4K | 0xfff, 0, DATA_4K_GPA + 0xfff, PG_LEVEL_4K);
}

static void test_translate_2m(void **state)
{
	struct env *env = *state;

	map_2m(env, GVA_2M, DATA_2M_GPA, LEAF_FLAGS);
	expect_gpa(env, GVA_2M, 0, DATA_2M_GPA + 0x189abc, PG_LEVEL_2M);
	expect_gpa(env, GVA_2M & ~(2 * MiB - 1), ACC_WRITE, DATA_2M_GPA, PG_LEVEL_2M);
}

static void test_translate_1g(void **state)
{
	struct env *env = *state;

	map_1g(env, GVA_1G, DATA_1G_GPA, LEAF_FLAGS);
	expect_gpa(env, GVA_1G, ACC_USER, DATA_1G_GPA + 0x21fedcba, PG_LEVEL_1G);
}

/* The large-page PAT bit (12) is not part of the page base. */
static void test_large_page_pat_bit_is_not_address(void **state)
{
	struct env *env = *state;

	map_2m(env, GVA_2M, DATA_2M_GPA, LEAF_FLAGS | PTE_PAT_LARGE);
	expect_gpa(env, GVA_2M, 0, DATA_2M_GPA + 0x189abc, PG_LEVEL_2M);
	map_1g(env, GVA_1G, DATA_1G_GPA, LEAF_FLAGS | PTE_PAT_LARGE);
	expect_gpa(env, GVA_1G, 0, DATA_1G_GPA + 0x21fedcba, PG_LEVEL_1G);
}

/* What the walk records per level: tables, gpte locations, gptes, rights. */
static void test_walk_records_every_level(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	gpa_t pml4 = gpa(env->ctl.cr3);
	u64 *pml4e, *pdpte, *pde, *pte;

	pte = map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS | PTE_NX);
	pml4e = gptep_for(env, GVA_4K, PG_LEVEL_PML4);
	pdpte = gptep_for(env, GVA_4K, PG_LEVEL_1G);
	pde = gptep_for(env, GVA_4K, PG_LEVEL_2M);
	*pdpte &= ~PTE_RW;

	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.table_gfn[4].v, gpa_to_gfn(pml4).v);
	assert_int_equal(walk.table_gfn[3].v, (*pml4e & PAGE_MASK) >> PAGE_SHIFT);
	assert_int_equal(walk.table_gfn[2].v, (*pdpte & PAGE_MASK) >> PAGE_SHIFT);
	assert_int_equal(walk.table_gfn[1].v, (*pde & PAGE_MASK) >> PAGE_SHIFT);
	assert_int_equal(walk.gpte_gpa[4].v, pml4.v + 254 * 8);
	assert_int_equal(walk.gpte_gpa[3].v, (*pml4e & PAGE_MASK) + 72 * 8);
	assert_int_equal(walk.gpte_gpa[2].v, (*pdpte & PAGE_MASK) + 418 * 8);
	assert_int_equal(walk.gpte_gpa[1].v, (*pde & PAGE_MASK) + 359 * 8);
	assert_int_equal(walk.gpte[4], *pml4e);
	assert_int_equal(walk.gpte[3], *pdpte);
	assert_int_equal(walk.gpte[2], *pde);
	assert_int_equal(walk.gpte[1], *pte);
	/* R/W and U/S are ANDed down the levels, NX is ORed. */
	assert_int_equal(walk.rights_at[4], PTE_RW | PTE_US);
	assert_int_equal(walk.rights_at[3], PTE_US);
	assert_int_equal(walk.rights_at[2], PTE_US);
	assert_int_equal(walk.rights_at[1], PTE_US | PTE_NX);
	assert_int_equal(walk.rights, PTE_US | PTE_NX);
	assert_int_equal(walk.gpa.v, DATA_4K_GPA + 0xabc);
}

/* CR3's PCID, PWT/PCD and no-flush bits are not part of the root address. */
static void test_cr3_low_and_noflush_bits_ignored(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	env->ctl.cr4 |= CR4_PCIDE;
	env->ctl.cr3 |= 0xabc | CR3_NOFLUSH;
	expect_gpa(env, GVA_4K, 0, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* ---- not present -------------------------------------------------------- */

static void check_not_present_at(struct env *env, unsigned level)
{
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_4K, level) &= ~PTE_P;
	expect_pf(env, GVA_4K, 0, 0, level);
	expect_pf(env, GVA_4K, ACC_WRITE, PFERR_WRITE, level);
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE, PFERR_USER | PFERR_WRITE, level);
	expect_pf(env, GVA_4K, ACC_USER | ACC_FETCH, PFERR_USER | PFERR_FETCH, level);
}

static void test_not_present_pml4e(void **state)
{
	check_not_present_at(*state, PG_LEVEL_PML4);
}

static void test_not_present_pdpte(void **state)
{
	check_not_present_at(*state, PG_LEVEL_1G);
}

static void test_not_present_pde(void **state)
{
	check_not_present_at(*state, PG_LEVEL_2M);
}

static void test_not_present_pte(void **state)
{
	check_not_present_at(*state, PG_LEVEL_4K);
}

/* A not-present entry is not checked for reserved bits (§4.5.4: P = 0 ignores the rest). */
static void test_not_present_ignores_other_bits(void **state)
{
	struct env *env = *state;

	*map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS) = ~PTE_P;
	expect_pf(env, GVA_4K, 0, 0, PG_LEVEL_4K);
}

/* I/D is reported for a fetch only when EFER.NXE = 1 or CR4.SMEP = 1 (§4.7). */
static void test_fetch_error_code_needs_nxe_or_smep(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_4K, PG_LEVEL_4K) &= ~PTE_P;
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_FETCH, PG_LEVEL_4K);
	env->ctl.efer &= ~EFER_NXE;
	expect_pf(env, GVA_4K, ACC_FETCH, 0, PG_LEVEL_4K);
	env->ctl.cr4 |= CR4_SMEP;
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_FETCH, PG_LEVEL_4K);
}

/* ---- write protection --------------------------------------------------- */

static void test_write_read_only_wp1_supervisor_faults(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P | PTE_US);
	expect_pf(env, GVA_4K, ACC_WRITE, PFERR_WRITE | PFERR_PRESENT, PG_LEVEL_4K);
	/* Reading it is fine. */
	expect_gpa(env, GVA_4K, 0, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

static void test_write_read_only_wp0_supervisor_ok(void **state)
{
	struct env *env = *state;

	env->ctl.cr0 &= ~CR0_WP;
	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P);
	expect_gpa(env, GVA_4K, ACC_WRITE, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* CR0.WP does not matter to CPL3: a user write to a read-only page faults. */
static void test_write_read_only_user_faults_regardless_of_wp(void **state)
{
	struct env *env = *state;
	u32 ec = PFERR_WRITE | PFERR_USER | PFERR_PRESENT;

	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P | PTE_US);
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE, ec, PG_LEVEL_4K);
	env->ctl.cr0 &= ~CR0_WP;
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE, ec, PG_LEVEL_4K);
	expect_gpa(env, GVA_4K, ACC_USER, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* R/W = 0 in an upper level write-protects everything below it. */
static void test_read_only_upper_level_applies(void **state)
{
	struct env *env = *state;

	map_2m(env, GVA_2M, DATA_2M_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_2M, PG_LEVEL_1G) &= ~PTE_RW;
	expect_pf(env, GVA_2M, ACC_WRITE, PFERR_WRITE | PFERR_PRESENT, PG_LEVEL_2M);
	env->ctl.cr0 &= ~CR0_WP;
	expect_gpa(env, GVA_2M, ACC_WRITE, DATA_2M_GPA + 0x189abc, PG_LEVEL_2M);
}

/* ---- user / supervisor -------------------------------------------------- */

static void test_user_access_to_supervisor_page(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P | PTE_RW);
	expect_pf(env, GVA_4K, ACC_USER, PFERR_USER | PFERR_PRESENT, PG_LEVEL_4K);
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE, PFERR_USER | PFERR_WRITE | PFERR_PRESENT,
		  PG_LEVEL_4K);
	expect_pf(env, GVA_4K, ACC_USER | ACC_FETCH, PFERR_USER | PFERR_FETCH | PFERR_PRESENT,
		  PG_LEVEL_4K);
	expect_gpa(env, GVA_4K, ACC_WRITE, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* U/S = 0 in the PML4E alone makes the whole 1 GiB page a supervisor page. */
static void test_supervisor_upper_level_applies(void **state)
{
	struct env *env = *state;

	map_1g(env, GVA_1G, DATA_1G_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_1G, PG_LEVEL_PML4) &= ~PTE_US;
	expect_pf(env, GVA_1G, ACC_USER, PFERR_USER | PFERR_PRESENT, PG_LEVEL_1G);
}

/* ---- execute disable ---------------------------------------------------- */

static void test_nx_fetch_with_nxe(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_4K, PG_LEVEL_1G) |= PTE_NX; /* NX at any level counts */
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_FETCH | PFERR_PRESENT, PG_LEVEL_4K);
	expect_pf(env, GVA_4K, ACC_USER | ACC_FETCH, PFERR_USER | PFERR_FETCH | PFERR_PRESENT,
		  PG_LEVEL_4K);
	/* Data accesses are unaffected. */
	expect_gpa(env, GVA_4K, ACC_WRITE, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	expect_gpa(env, GVA_4K, ACC_USER, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* With EFER.NXE = 0 bit 63 is reserved: any access faults with RSVD. */
static void test_nx_bit_without_nxe_is_reserved(void **state)
{
	struct env *env = *state;

	env->ctl.efer &= ~EFER_NXE;
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_4K, PG_LEVEL_2M) |= PTE_NX;
	expect_pf(env, GVA_4K, 0, PFERR_RSVD | PFERR_PRESENT, PG_LEVEL_2M);
	/* No I/D: NXE = 0 and SMEP = 0. */
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_RSVD | PFERR_PRESENT, PG_LEVEL_2M);
	*gptep_for(env, GVA_4K, PG_LEVEL_2M) &= ~PTE_NX;
	expect_gpa(env, GVA_4K, ACC_FETCH, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* ---- reserved bits ------------------------------------------------------ */

static void test_rsvd_above_maxphyaddr(void **state)
{
	struct env *env = *state;
	u64 high = 1ull << TEST_MAXPHYADDR; /* the first reserved address bit */
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA | high, LEAF_FLAGS);
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE,
		  PFERR_RSVD | PFERR_PRESENT | PFERR_USER | PFERR_WRITE, PG_LEVEL_4K);
	/* With a larger MAXPHYADDR the same bit is address. */
	env->ctl.maxphyaddr = TEST_MAXPHYADDR + 1;
	expect_gpa(env, GVA_4K, 0, (DATA_4K_GPA | high) + 0xabc, PG_LEVEL_4K);
	/* Bit 51 is reserved up to MAXPHYADDR 51 and address at 52. */
	*gptep_for(env, GVA_4K, PG_LEVEL_4K) = DATA_4K_GPA | (1ull << 51) | LEAF_FLAGS;
	expect_pf(env, GVA_4K, 0, PFERR_RSVD | PFERR_PRESENT, PG_LEVEL_4K);
	env->ctl.maxphyaddr = 52;
	expect_gpa(env, GVA_4K, 0, (DATA_4K_GPA | (1ull << 51)) + 0xabc, PG_LEVEL_4K);

	/* In a PML4E too, where the walk stops before reading anything below. */
	env->ctl.maxphyaddr = TEST_MAXPHYADDR;
	*gptep_for(env, GVA_4K, PG_LEVEL_4K) = DATA_4K_GPA | LEAF_FLAGS;
	*gptep_for(env, GVA_4K, PG_LEVEL_PML4) |= 1ull << 47;
	env->hva_calls = 0;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_FAULT);
	assert_int_equal(walk.fault.error_code, PFERR_RSVD | PFERR_PRESENT);
	assert_int_equal(walk.level, PG_LEVEL_PML4);
	assert_int_equal(env->hva_calls, 1); /* only the PML4E was read */
}

/* Bits 20:13 of a PDE with PS = 1 are reserved. */
static void test_rsvd_low_bits_2m_pde(void **state)
{
	struct env *env = *state;
	unsigned bit;

	for (bit = 13; bit <= 20; bit++) {
		map_2m(env, GVA_2M, DATA_2M_GPA | (1ull << bit), LEAF_FLAGS);
		expect_pf(env, GVA_2M, ACC_WRITE, PFERR_RSVD | PFERR_PRESENT | PFERR_WRITE,
			  PG_LEVEL_2M);
	}
	/* Bit 21 is address. */
	map_2m(env, GVA_2M, 2 * GiB + (1ull << 21), LEAF_FLAGS);
	expect_gpa(env, GVA_2M, 0, 2 * GiB + (1ull << 21) + 0x189abc, PG_LEVEL_2M);
}

/* Bits 29:13 of a PDPTE with PS = 1 are reserved. */
static void test_rsvd_low_bits_1g_pdpte(void **state)
{
	struct env *env = *state;

	map_1g(env, GVA_1G, DATA_1G_GPA | (1ull << 13), LEAF_FLAGS);
	expect_pf(env, GVA_1G, 0, PFERR_RSVD | PFERR_PRESENT, PG_LEVEL_1G);
	map_1g(env, GVA_1G, DATA_1G_GPA | (1ull << 29), LEAF_FLAGS);
	expect_pf(env, GVA_1G, 0, PFERR_RSVD | PFERR_PRESENT, PG_LEVEL_1G);
	/* The same bits in a PDPTE that points to a PD are address bits of the PD. */
	*gptep_for(env, GVA_1G, PG_LEVEL_1G) = 0;
	map_2m(env, GVA_1G, DATA_2M_GPA, LEAF_FLAGS);
	assert_int_not_equal(*gptep_for(env, GVA_1G, PG_LEVEL_1G) & PTE_RSVD_1G_MASK, 0);
	expect_gpa(env, GVA_1G, 0, DATA_2M_GPA + (GVA_1G & (2 * MiB - 1)), PG_LEVEL_2M);
}

/* PS (bit 7) must be 0 in a PML4E. */
static void test_ps_in_pml4e_is_reserved(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_4K, PG_LEVEL_PML4) |= PTE_PS;
	expect_pf(env, GVA_4K, 0, PFERR_RSVD | PFERR_PRESENT, PG_LEVEL_PML4);
	expect_pf(env, GVA_4K, ACC_USER | ACC_WRITE,
		  PFERR_RSVD | PFERR_PRESENT | PFERR_USER | PFERR_WRITE, PG_LEVEL_PML4);
}

/* Bit 7 of a 4 KiB PTE is PAT, not PS: it neither faults nor changes the size. */
static void test_pat_bit_in_pte_is_not_ps(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS | PTE_PAT);
	expect_gpa(env, GVA_4K, 0, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* Bits 11:9 and 62:52 are the guest's own (ignored): never address, never reserved. */
static void test_software_available_bits_ignored(void **state)
{
	struct env *env = *state;
	u64 avl = PTE_AVL_LOW_MASK | PTE_AVL_HIGH_MASK | PTE_PKEY_MASK;
	unsigned level;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS | avl);
	map_2m(env, GVA_2M, DATA_2M_GPA, LEAF_FLAGS | avl);
	map_1g(env, GVA_1G, DATA_1G_GPA, LEAF_FLAGS | avl);
	for (level = PG_LEVEL_2M; level <= PG_LEVEL_PML4; level++)
		*gptep_for(env, GVA_4K, level) |= avl;
	expect_gpa(env, GVA_4K, ACC_USER | ACC_WRITE, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	expect_gpa(env, GVA_2M, ACC_USER | ACC_WRITE, DATA_2M_GPA + 0x189abc, PG_LEVEL_2M);
	expect_gpa(env, GVA_1G, ACC_USER | ACC_WRITE, DATA_1G_GPA + 0x21fedcba, PG_LEVEL_1G);
}

/* ---- SMEP / SMAP -------------------------------------------------------- */

static void test_smep(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	expect_gpa(env, GVA_4K, ACC_FETCH, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	env->ctl.cr4 |= CR4_SMEP;
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_FETCH | PFERR_PRESENT, PG_LEVEL_4K);
	/* SMEP reports I/D even with NXE = 0. */
	env->ctl.efer &= ~EFER_NXE;
	expect_pf(env, GVA_4K, ACC_FETCH, PFERR_FETCH | PFERR_PRESENT, PG_LEVEL_4K);
	/* Data accesses and user fetches are not SMEP's business. */
	expect_gpa(env, GVA_4K, ACC_WRITE, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	expect_gpa(env, GVA_4K, ACC_USER | ACC_FETCH, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	/* U/S = 0 at any level makes it a supervisor page: fetch allowed. */
	*gptep_for(env, GVA_4K, PG_LEVEL_2M) &= ~PTE_US;
	expect_gpa(env, GVA_4K, ACC_FETCH, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

static void test_smap(void **state)
{
	struct env *env = *state;

	env->ctl.cr4 |= CR4_SMAP;
	env->ctl.cr0 &= ~CR0_WP;
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	expect_pf(env, GVA_4K, 0, PFERR_PRESENT, PG_LEVEL_4K);
	expect_pf(env, GVA_4K, ACC_WRITE, PFERR_WRITE | PFERR_PRESENT, PG_LEVEL_4K);
	/* RFLAGS.AC = 1 lifts SMAP for explicit supervisor accesses. */
	expect_gpa(env, GVA_4K, ACC_AC_SET, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	expect_gpa(env, GVA_4K, ACC_WRITE | ACC_AC_SET, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	/* Fetches (SMEP's business) and CPL3 accesses are not affected. */
	expect_gpa(env, GVA_4K, ACC_FETCH, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	expect_gpa(env, GVA_4K, ACC_USER | ACC_WRITE, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
	/* A supervisor page is not a SMAP target. */
	*gptep_for(env, GVA_4K, PG_LEVEL_PML4) &= ~PTE_US;
	expect_gpa(env, GVA_4K, ACC_WRITE, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* SMAP and CR0.WP combine: AC lifts SMAP but not write protection. */
static void test_smap_ac_does_not_lift_write_protect(void **state)
{
	struct env *env = *state;

	env->ctl.cr4 |= CR4_SMAP;
	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P | PTE_US);
	expect_pf(env, GVA_4K, ACC_WRITE | ACC_AC_SET, PFERR_WRITE | PFERR_PRESENT, PG_LEVEL_4K);
	expect_gpa(env, GVA_4K, ACC_AC_SET, DATA_4K_GPA + 0xabc, PG_LEVEL_4K);
}

/* ---- accessed / dirty --------------------------------------------------- */

static void test_accessed_set_on_every_level(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u64 *pte = map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	u64 *gpteps[5] = { NULL, pte, gptep_for(env, GVA_4K, 2), gptep_for(env, GVA_4K, 3),
			   gptep_for(env, GVA_4K, 4) };
	unsigned level;

	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_SET_AD), WALK_OK);
	for (level = 1; level <= 4; level++) {
		assert_int_equal(*gpteps[level] & (PTE_A | PTE_D), PTE_A);
		assert_int_equal(walk.gpte[level], *gpteps[level]);
	}
	assert_int_equal(*pte, DATA_4K_GPA | LEAF_FLAGS | PTE_A);
}

static void test_dirty_only_on_write_to_leaf(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u64 *pte = map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	u64 *pde = gptep_for(env, GVA_4K, PG_LEVEL_2M);
	u64 *pdpte = gptep_for(env, GVA_4K, PG_LEVEL_1G);
	u64 *pml4e = gptep_for(env, GVA_4K, PG_LEVEL_PML4);

	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(*pte, DATA_4K_GPA | LEAF_FLAGS | PTE_A | PTE_D);
	assert_int_equal(*pde & (PTE_A | PTE_D), PTE_A);
	assert_int_equal(*pdpte & (PTE_A | PTE_D), PTE_A);
	assert_int_equal(*pml4e & (PTE_A | PTE_D), PTE_A);
	assert_int_equal(walk.gpte[1], *pte);

	/* A 2 MiB leaf: D lands on the PDE. */
	pde = map_2m(env, GVA_2M, DATA_2M_GPA, LEAF_FLAGS);
	assert_int_equal(do_walk(env, &walk, GVA_2M, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(*pde, DATA_2M_GPA | LEAF_FLAGS | PTE_PS | PTE_A | PTE_D);
	assert_int_equal(*gptep_for(env, GVA_2M, PG_LEVEL_1G) & (PTE_A | PTE_D), PTE_A);
}

/* A/D are only set when asked, and a second walk writes nothing new. */
static void test_ad_only_with_set_ad_flag(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u8 *copy = malloc(RAM_SIZE);

	assert_non_null(copy);
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	memcpy(copy, env->ram, RAM_SIZE);
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_PEEK), WALK_OK);
	assert_memory_equal(copy, env->ram, RAM_SIZE);
	assert_int_equal(walk.gpte[1] & (PTE_A | PTE_D), 0);

	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_memory_not_equal(copy, env->ram, RAM_SIZE);
	memcpy(copy, env->ram, RAM_SIZE);
	env->hva_calls = 0;
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_memory_equal(copy, env->ram, RAM_SIZE);
	assert_int_equal(env->hva_calls, 4); /* four gpte reads, no write attempted */
	free(copy);
}

/* walk_ad_already_set: exactly when WALK_SET_AD would write nothing. */
static void test_ad_already_set(void **state)
{
	struct env *env = *state;
	const struct paging_mode *mode = paging_mode_select(&env->ctl);
	struct guest_walk walk;
	u64 *pte = map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);

	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	assert_false(walk_ad_already_set(mode, &walk));
	/* A read sets A everywhere; then a read would set nothing, a write D in the leaf. */
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_SET_AD), WALK_OK);
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	assert_true(walk_ad_already_set(mode, &walk));
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_PEEK), WALK_OK);
	assert_false(walk_ad_already_set(mode, &walk));
	*pte |= PTE_D;
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_WRITE, WALK_PEEK), WALK_OK);
	assert_true(walk_ad_already_set(mode, &walk));
	/* A above the leaf counts as much as the leaf's own. */
	*gptep_for(env, GVA_4K, PG_LEVEL_1G) &= ~PTE_A;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_OK);
	assert_false(walk_ad_already_set(mode, &walk));
}

/* A peek changes no byte of guest memory, whatever the access and outcome. */
static void test_peek_changes_nothing(void **state)
{
	static const u32 accesses[] = {
		0, ACC_WRITE, ACC_FETCH, ACC_USER, ACC_USER | ACC_WRITE, ACC_USER | ACC_FETCH
	};
	struct env *env = *state;
	struct guest_walk walk;
	u8 *copy = malloc(RAM_SIZE);
	size_t i;

	assert_non_null(copy);
	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	map_2m(env, GVA_2M, DATA_2M_GPA, PTE_P | PTE_US);
	map_1g(env, GVA_1G, DATA_1G_GPA, PTE_P | PTE_RW);
	memcpy(copy, env->ram, RAM_SIZE);
	for (i = 0; i < ARRAY_SIZE(accesses); i++) {
		(void)do_walk(env, &walk, GVA_4K, accesses[i], WALK_PEEK);
		(void)do_walk(env, &walk, GVA_2M, accesses[i], WALK_PEEK);
		(void)do_walk(env, &walk, GVA_1G, accesses[i], WALK_PEEK);
	}
	assert_memory_equal(copy, env->ram, RAM_SIZE);
	free(copy);
}

/* Our choice (walk.c item 11): a faulting walk sets no A bit, even with WALK_SET_AD. */
static void test_faulting_walk_sets_nothing(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u8 *copy = malloc(RAM_SIZE);

	assert_non_null(copy);
	map_4k(env, GVA_4K, DATA_4K_GPA, PTE_P | PTE_US);
	memcpy(copy, env->ram, RAM_SIZE);
	assert_int_equal(do_walk(env, &walk, GVA_4K, ACC_USER | ACC_WRITE, WALK_SET_AD),
			 WALK_FAULT);
	assert_memory_equal(copy, env->ram, RAM_SIZE);
	*gptep_for(env, GVA_4K, PG_LEVEL_2M) &= ~PTE_P;
	memcpy(copy, env->ram, RAM_SIZE);
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_SET_AD), WALK_FAULT);
	assert_memory_equal(copy, env->ram, RAM_SIZE);
	free(copy);
}

/* ---- outside RAM, paging modes ------------------------------------------ */

static void test_table_outside_ram_is_bad_gpa(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	*gptep_for(env, GVA_4K, PG_LEVEL_2M) = OUTSIDE_RAM_GPA | TABLE_FLAGS;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_SET_AD), WALK_BAD_GPA);
	assert_int_equal(walk.level, PG_LEVEL_4K);
	assert_int_equal(walk.table_gfn[PG_LEVEL_4K].v, OUTSIDE_RAM_GPA >> PAGE_SHIFT);
	assert_int_equal(walk.gpte_gpa[PG_LEVEL_4K].v, OUTSIDE_RAM_GPA + 359 * 8);

	/* The root itself outside RAM. */
	env->ctl.cr3 = OUTSIDE_RAM_GPA;
	assert_int_equal(do_walk(env, &walk, GVA_4K, 0, WALK_PEEK), WALK_BAD_GPA);
	assert_int_equal(walk.level, PG_LEVEL_PML4);
	assert_int_equal(walk.table_gfn[PG_LEVEL_PML4].v, OUTSIDE_RAM_GPA >> PAGE_SHIFT);
}

/* The final gpa need not be RAM (it may be MMIO): only tables are read. */
static void test_data_page_outside_ram_is_ok(void **state)
{
	struct env *env = *state;

	map_4k(env, GVA_4K, OUTSIDE_RAM_GPA, LEAF_FLAGS);
	expect_gpa(env, GVA_4K, ACC_WRITE, OUTSIDE_RAM_GPA + 0xabc, PG_LEVEL_4K);
}

static void test_paging_off_is_identity(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;

	env->ctl.cr0 &= ~CR0_PG;
	env->ctl.efer &= ~EFER_LMA;
	assert_int_equal(walk_guest(NULL, &env->mem, &env->ctl, gva(0x12345678),
				    ACC_USER | ACC_WRITE, WALK_SET_AD, &walk),
			 WALK_OK);
	assert_int_equal(walk.gpa.v, 0x12345678);
	assert_int_equal(walk.level, 0);
	assert_int_equal(env->hva_calls, 0);
	/* The mode argument is ignored with paging off. */
	assert_int_equal(walk_guest(&paging_mode_4level, &env->mem, &env->ctl, gva(0xfee00000),
				    ACC_FETCH, WALK_PEEK, &walk),
			 WALK_OK);
	assert_int_equal(walk.gpa.v, 0xfee00000);
}

static void test_unsupported_modes(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	const struct walk_ctl saved = env->ctl;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_4level);

	env->ctl.cr4 &= ~CR4_PAE; /* 32-bit paging (test_walk32.c): not the mode passed */
	env->ctl.efer &= ~EFER_LMA;
	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_32bit);
	assert_int_equal(walk_guest(&paging_mode_4level, &env->mem, &env->ctl, gva(GVA_4K), 0,
				    WALK_PEEK, &walk),
			 WALK_UNSUPPORTED_MODE);

	env->ctl = saved;
	env->ctl.efer &= ~EFER_LMA; /* PAE paging (test_walkpae.c): not the mode passed */
	assert_ptr_equal(paging_mode_select(&env->ctl), &paging_mode_pae);
	assert_int_equal(walk_guest(&paging_mode_4level, &env->mem, &env->ctl, gva(GVA_4K), 0,
				    WALK_PEEK, &walk),
			 WALK_UNSUPPORTED_MODE);

	env->ctl = saved;
	env->ctl.cr4 |= CR4_LA57; /* 5-level paging */
	assert_int_equal(walk_guest(&paging_mode_4level, &env->mem, &env->ctl, gva(GVA_4K), 0,
				    WALK_PEEK, &walk),
			 WALK_UNSUPPORTED_MODE);

	/* A mode that does not match the registers. */
	env->ctl = saved;
	assert_int_equal(walk_guest(NULL, &env->mem, &env->ctl, gva(GVA_4K), 0, WALK_PEEK, &walk),
			 WALK_UNSUPPORTED_MODE);
	assert_int_equal(env->hva_calls, 0);
}

/* ---- a table referenced twice in one walk ------------------------------- */

#define SELF 510u /* the recursive PML4 slot */

/* Through a recursive PML4E, a gva reaches the PTE that maps another gva. */
static void test_recursive_pml4e_reaches_pte(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u64 *pml4 = (u64 *)(env->ram + env->ctl.cr3);
	u64 *pde, va;

	map_4k(env, GVA_4K, DATA_4K_GPA, LEAF_FLAGS);
	pml4[SELF] = env->ctl.cr3 | TABLE_FLAGS;
	pde = gptep_for(env, GVA_4K, PG_LEVEL_2M);
	va = gva_of(SELF, index_at(GVA_4K, 4), index_at(GVA_4K, 3), index_at(GVA_4K, 2),
		    index_at(GVA_4K, 1) * 8);
	assert_int_equal(do_walk(env, &walk, va, ACC_WRITE, WALK_SET_AD), WALK_OK);
	/* The gpa of GVA_4K's PTE. */
	assert_int_equal(walk.gpa.v, (*pde & PAGE_MASK) + index_at(GVA_4K, 1) * 8);
	assert_int_equal(walk.table_gfn[4].v, walk.table_gfn[3].v);
	/* Level 1 here is GVA_4K's PDE: it got A and D. */
	assert_int_equal(*pde & (PTE_A | PTE_D), PTE_A | PTE_D);
	assert_int_equal(walk.gpte[1], *pde);
}

/* All four levels read the same gpte: A/D land once, the record stays true. */
static void test_fully_recursive_walk(void **state)
{
	struct env *env = *state;
	struct guest_walk walk;
	u64 *pml4 = (u64 *)(env->ram + env->ctl.cr3);
	u64 va = gva_of(SELF, SELF, SELF, SELF, 0x18);
	unsigned level;

	pml4[SELF] = env->ctl.cr3 | TABLE_FLAGS;
	assert_int_equal(do_walk(env, &walk, va, 0, WALK_PEEK), WALK_OK);
	assert_int_equal(walk.gpa.v, env->ctl.cr3 + 0x18);
	assert_int_equal(pml4[SELF], env->ctl.cr3 | TABLE_FLAGS);

	assert_int_equal(do_walk(env, &walk, va, ACC_WRITE, WALK_SET_AD), WALK_OK);
	assert_int_equal(pml4[SELF], env->ctl.cr3 | TABLE_FLAGS | PTE_A | PTE_D);
	for (level = 1; level <= 4; level++) {
		assert_int_equal(walk.gpte_gpa[level].v, env->ctl.cr3 + SELF * 8);
		assert_int_equal(walk.gpte[level], pml4[SELF]);
	}
	/* The PML4 page is a user page too: a user read of it works. */
	expect_gpa(env, va, ACC_USER, env->ctl.cr3 + 0x18, PG_LEVEL_4K);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_translate_4k),
		T(test_translate_2m),
		T(test_translate_1g),
		T(test_large_page_pat_bit_is_not_address),
		T(test_walk_records_every_level),
		T(test_cr3_low_and_noflush_bits_ignored),
		T(test_not_present_pml4e),
		T(test_not_present_pdpte),
		T(test_not_present_pde),
		T(test_not_present_pte),
		T(test_not_present_ignores_other_bits),
		T(test_fetch_error_code_needs_nxe_or_smep),
		T(test_write_read_only_wp1_supervisor_faults),
		T(test_write_read_only_wp0_supervisor_ok),
		T(test_write_read_only_user_faults_regardless_of_wp),
		T(test_read_only_upper_level_applies),
		T(test_user_access_to_supervisor_page),
		T(test_supervisor_upper_level_applies),
		T(test_nx_fetch_with_nxe),
		T(test_nx_bit_without_nxe_is_reserved),
		T(test_rsvd_above_maxphyaddr),
		T(test_rsvd_low_bits_2m_pde),
		T(test_rsvd_low_bits_1g_pdpte),
		T(test_ps_in_pml4e_is_reserved),
		T(test_pat_bit_in_pte_is_not_ps),
		T(test_software_available_bits_ignored),
		T(test_smep),
		T(test_smap),
		T(test_smap_ac_does_not_lift_write_protect),
		T(test_accessed_set_on_every_level),
		T(test_dirty_only_on_write_to_leaf),
		T(test_ad_only_with_set_ad_flag),
		T(test_ad_already_set),
		T(test_peek_changes_nothing),
		T(test_faulting_walk_sets_nothing),
		T(test_table_outside_ram_is_bad_gpa),
		T(test_data_page_outside_ram_is_ok),
		T(test_paging_off_is_identity),
		T(test_unsupported_modes),
		T(test_recursive_pml4e_reaches_pte),
		T(test_fully_recursive_walk),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
