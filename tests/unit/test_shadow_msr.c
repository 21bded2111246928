/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for shadow mode's virtual-MSR policy (vmm/shadow_msr.c).
 *
 * Every row of the table at the top of shadow_msr.c, through
 * shadow_msr_policy on a hand-made snapshot (no KVM): reads return the
 * snapshot, and each kind of write is accepted, refused with #GP(0), or
 * stops the VM, as the table says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/shadow_msr.h"

#define MAXPA 39u /* a typical guest physical-address width */

#define SNAP_APIC_BASE     (0xfee00000ull | APIC_BASE_EN | APIC_BASE_BSP)
#define SNAP_MTRRCAP       0x508ull
#define SNAP_MISC_ENABLE   0x850089ull
#define SNAP_MTRR_DEF_TYPE 0xc06ull /* E, FE, WB */

/* A snapshot with all four MSRs present, as KVM gives them. */
static struct shadow_msrs snapshot(void)
{
	struct shadow_msrs m;

	memset(&m, 0, sizeof(m));
	m.apic_base = (struct shadow_msr_val){ true, SNAP_APIC_BASE };
	m.mtrrcap = (struct shadow_msr_val){ true, SNAP_MTRRCAP };
	m.misc_enable = (struct shadow_msr_val){ true, SNAP_MISC_ENABLE };
	m.mtrr_def_type = (struct shadow_msr_val){ true, SNAP_MTRR_DEF_TYPE };
	return m;
}

static enum shadow_msr_result rd(struct shadow_msrs *m, u32 index, u64 *v)
{
	*v = 0xdeadbeefdeadbeefull;
	return shadow_msr_policy(m, MAXPA, index, false, v);
}

static enum shadow_msr_result wr(struct shadow_msrs *m, u32 index, u64 v)
{
	return shadow_msr_policy(m, MAXPA, index, true, &v);
}

static void assert_val(const struct shadow_msr_val *r, u64 value)
{
	assert_true(r->present);
	assert_int_equal(r->value, value);
}

/* A write with result `want` that must leave the snapshot as it was. */
static void assert_write_leaves(u32 index, u64 v, enum shadow_msr_result want)
{
	struct shadow_msrs m = snapshot();

	assert_int_equal(wr(&m, index, v), want);
	assert_val(&m.apic_base, SNAP_APIC_BASE);
	assert_val(&m.mtrrcap, SNAP_MTRRCAP);
	assert_val(&m.misc_enable, SNAP_MISC_ENABLE);
	assert_val(&m.mtrr_def_type, SNAP_MTRR_DEF_TYPE);
}

/* ---- reads ---------------------------------------------------------------- */

static void test_reads_return_snapshot(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	assert_int_equal(rd(&m, MSR_IA32_APIC_BASE, &v), SHADOW_MSR_OK);
	assert_int_equal(v, SNAP_APIC_BASE);
	assert_int_equal(rd(&m, MSR_IA32_MTRRCAP, &v), SHADOW_MSR_OK);
	assert_int_equal(v, SNAP_MTRRCAP);
	assert_int_equal(rd(&m, MSR_IA32_MISC_ENABLE, &v), SHADOW_MSR_OK);
	assert_int_equal(v, SNAP_MISC_ENABLE);
	assert_int_equal(rd(&m, MSR_IA32_MTRR_DEF_TYPE, &v), SHADOW_MSR_OK);
	assert_int_equal(v, SNAP_MTRR_DEF_TYPE);
}

static void test_absent_msr_is_gp(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	m.misc_enable.present = false;
	assert_int_equal(rd(&m, MSR_IA32_MISC_ENABLE, &v), SHADOW_MSR_GP);
	assert_int_equal(wr(&m, MSR_IA32_MISC_ENABLE, SNAP_MISC_ENABLE), SHADOW_MSR_GP);
}

static void test_apic_gpa(void **state)
{
	struct shadow_msrs m = snapshot();

	(void)state;
	assert_int_equal(shadow_msr_apic_gpa(&m), 0xfee00000ull);
	m.apic_base.present = false;
	assert_int_equal(shadow_msr_apic_gpa(&m), 0xfee00000ull);
}

/* ---- IA32_APIC_BASE ------------------------------------------------------- */

static void test_apic_base_same_accepted(void **state)
{
	(void)state;
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE, SHADOW_MSR_OK);
	/* BSP is not compared: it is kept as snapshotted. */
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE & ~APIC_BASE_BSP, SHADOW_MSR_OK);
}

static void test_apic_base_reserved_gp(void **state)
{
	(void)state;
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE | 0x1, SHADOW_MSR_GP);
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE | 0x80, SHADOW_MSR_GP);
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE | (1ull << 9), SHADOW_MSR_GP);
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE | (1ull << MAXPA), SHADOW_MSR_GP);
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE | (1ull << 63), SHADOW_MSR_GP);
}

static void test_apic_base_change_stops(void **state)
{
	(void)state;
	/* another base */
	assert_write_leaves(MSR_IA32_APIC_BASE, 0xfed00000ull | APIC_BASE_EN | APIC_BASE_BSP,
			    SHADOW_MSR_STOP);
	/* disabled */
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE & ~APIC_BASE_EN, SHADOW_MSR_STOP);
	/* x2APIC */
	assert_write_leaves(MSR_IA32_APIC_BASE, SNAP_APIC_BASE | APIC_BASE_EXTD, SHADOW_MSR_STOP);
}

/* ---- IA32_MTRRCAP --------------------------------------------------------- */

static void test_mtrrcap_write_gp(void **state)
{
	(void)state;
	assert_write_leaves(MSR_IA32_MTRRCAP, SNAP_MTRRCAP, SHADOW_MSR_GP);
	assert_write_leaves(MSR_IA32_MTRRCAP, 0, SHADOW_MSR_GP);
}

/* ---- IA32_MISC_ENABLE ----------------------------------------------------- */

static void test_misc_enable_same_accepted(void **state)
{
	(void)state;
	assert_write_leaves(MSR_IA32_MISC_ENABLE, SNAP_MISC_ENABLE, SHADOW_MSR_OK);
}

static void test_misc_enable_change_stops(void **state)
{
	(void)state;
	assert_write_leaves(MSR_IA32_MISC_ENABLE, SNAP_MISC_ENABLE ^ 1, SHADOW_MSR_STOP);
	assert_write_leaves(MSR_IA32_MISC_ENABLE, SNAP_MISC_ENABLE | (1ull << 22), SHADOW_MSR_STOP);
}

/* ---- IA32_MTRR_DEF_TYPE --------------------------------------------------- */

static void test_mtrr_def_type_kept(void **state)
{
	static const u64 good[] = { 0x0, 0x1, 0x4, 0x5, 0x6, 0x800, 0x400, 0xc00, 0xc01, 0x806 };
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		assert_int_equal(wr(&m, MSR_IA32_MTRR_DEF_TYPE, good[i]), SHADOW_MSR_OK);
		assert_int_equal(rd(&m, MSR_IA32_MTRR_DEF_TYPE, &v), SHADOW_MSR_OK);
		assert_int_equal(v, good[i]);
	}
	/* the other MSRs are untouched */
	assert_int_equal(m.apic_base.value, SNAP_APIC_BASE);
	assert_int_equal(m.misc_enable.value, SNAP_MISC_ENABLE);
}

static void test_mtrr_def_type_bad_gp(void **state)
{
	static const u64 bad[] = {
		0xc02, 0xc03, 0xc07, 0xcff, /* undefined types */
		0xc06 | 0x100, 0xc06 | 0x200, /* reserved bits 8, 9 */
		0xc06 | 0x1000, 0xc06 | (1ull << 63), /* reserved bits 12 and up */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_write_leaves(MSR_IA32_MTRR_DEF_TYPE, bad[i], SHADOW_MSR_GP);
}

/* ---- everything else ------------------------------------------------------ */

static void test_unknown_msr_gp(void **state)
{
	static const u32 unknown[] = { 0x10 /* TSC */, 0x0, 0x1a, 0x1c, 0x200 /* MTRR_PHYSBASE0 */,
				       0x277 /* PAT: not this table's */, 0xc0000080, 0xffffffff };
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
		assert_int_equal(rd(&m, unknown[i], &v), SHADOW_MSR_GP);
		assert_write_leaves(unknown[i], 0, SHADOW_MSR_GP);
	}
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reads_return_snapshot),
		T(test_absent_msr_is_gp),
		T(test_apic_gpa),
		T(test_apic_base_same_accepted),
		T(test_apic_base_reserved_gp),
		T(test_apic_base_change_stops),
		T(test_mtrrcap_write_gp),
		T(test_misc_enable_same_accepted),
		T(test_misc_enable_change_stops),
		T(test_mtrr_def_type_kept),
		T(test_mtrr_def_type_bad_gp),
		T(test_unknown_msr_gp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
