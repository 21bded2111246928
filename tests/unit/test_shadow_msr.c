/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for shadow mode's virtual-MSR policy (vmm/shadow_msr.c).
 *
 * Every row of the table at the top of shadow_msr.c, through
 * shadow_msr_policy on a hand-made snapshot (no KVM): reads return the
 * snapshot, and each kind of write is accepted, refused with #GP(0), or
 * stops the VM, as the table says. The MTRRs are not snapshotted: they read
 * 0 until written, and exist only as the snapshot's MTRRCAP announces them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/shadow_msr.h"

#define MAXPA 39u /* a typical guest physical-address width */

#define SNAP_APIC_BASE	   (0xfee00000ull | APIC_BASE_EN | APIC_BASE_BSP)
#define SNAP_MTRRCAP	   0x508ull
#define SNAP_MISC_ENABLE   0x850089ull
#define SNAP_MTRR_DEF_TYPE 0xc06ull /* E, FE, WB */

/* SNAP_MTRRCAP's VCNT: PHYSBASE/PHYSMASK 0-7 exist (and FIX is set: the fixed ones too). */
#define SNAP_VCNT 8u

/* The fixed-range MTRRs, in mtrr_fix[] order. */
static const u32 fixed_mtrrs[] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a,
				   0x26b, 0x26c, 0x26d, 0x26e, 0x26f };

static u32 physbase(unsigned n)
{
	return MSR_IA32_MTRR_PHYSBASE0 + 2 * n;
}

static u32 physmask(unsigned n)
{
	return MSR_IA32_MTRR_PHYSBASE0 + 2 * n + 1;
}

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
	for (size_t n = 0; n < SHADOW_MTRR_NVAR; n++) {
		assert_int_equal(m.mtrr_var[n][0], 0);
		assert_int_equal(m.mtrr_var[n][1], 0);
	}
	for (size_t i = 0; i < SHADOW_MTRR_NFIX; i++)
		assert_int_equal(m.mtrr_fix[i], 0);
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
		0xc02,		0xc03,
		0xc07,		0xcff,		      /* undefined types */
		0xc06 | 0x100,	0xc06 | 0x200,	      /* reserved bits 8, 9 */
		0xc06 | 0x1000, 0xc06 | (1ull << 63), /* reserved bits 12 and up */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_write_leaves(MSR_IA32_MTRR_DEF_TYPE, bad[i], SHADOW_MSR_GP);
}

/* ---- the MTRRs: IA32_MTRR_PHYSBASEn/PHYSMASKn and the fixed ranges ------- */

static void test_mtrr_reads_start_zero(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	assert_int_equal(ARRAY_SIZE(fixed_mtrrs), SHADOW_MTRR_NFIX);
	for (unsigned n = 0; n < SNAP_VCNT; n++) {
		assert_int_equal(rd(&m, physbase(n), &v), SHADOW_MSR_OK);
		assert_int_equal(v, 0);
		assert_int_equal(rd(&m, physmask(n), &v), SHADOW_MSR_OK);
		assert_int_equal(v, 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(fixed_mtrrs); i++) {
		assert_int_equal(rd(&m, fixed_mtrrs[i], &v), SHADOW_MSR_OK);
		assert_int_equal(v, 0);
	}
}

static void test_mtrr_var_kept(void **state)
{
	static const u64 types[] = { 0, 1, 4, 5, 6 };
	const u64 pa_bits = (1ull << MAXPA) - 1;
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	for (unsigned n = 0; n < SNAP_VCNT; n++) {
		u64 base = ((u64)(n + 1) << 28) | types[n % ARRAY_SIZE(types)];
		u64 mask = (pa_bits & ~0xfffffffull) | (n % 2 ? 0x800 : 0); /* V on odd n */

		assert_int_equal(wr(&m, physbase(n), base), SHADOW_MSR_OK);
		assert_int_equal(wr(&m, physmask(n), mask), SHADOW_MSR_OK);
	}
	for (unsigned n = 0; n < SNAP_VCNT; n++) {
		assert_int_equal(rd(&m, physbase(n), &v), SHADOW_MSR_OK);
		assert_int_equal(v, ((u64)(n + 1) << 28) | types[n % ARRAY_SIZE(types)]);
		assert_int_equal(rd(&m, physmask(n), &v), SHADOW_MSR_OK);
		assert_int_equal(v, (pa_bits & ~0xfffffffull) | (n % 2 ? 0x800 : 0));
	}
	/* every address bit below MAXPHYADDR is allowed */
	assert_int_equal(wr(&m, physbase(0), (pa_bits & ~0xfffull) | 6), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, physbase(0), &v), SHADOW_MSR_OK);
	assert_int_equal(v, (pa_bits & ~0xfffull) | 6);
	assert_int_equal(wr(&m, physmask(0), (pa_bits & ~0xfffull) | 0x800), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, physmask(0), &v), SHADOW_MSR_OK);
	assert_int_equal(v, (pa_bits & ~0xfffull) | 0x800);
	/* and back to 0 */
	assert_int_equal(wr(&m, physmask(0), 0), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, physmask(0), &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0);
	/* the other MSRs are untouched */
	assert_int_equal(m.apic_base.value, SNAP_APIC_BASE);
	assert_int_equal(m.mtrrcap.value, SNAP_MTRRCAP);
	assert_int_equal(m.mtrr_def_type.value, SNAP_MTRR_DEF_TYPE);
	for (size_t i = 0; i < SHADOW_MTRR_NFIX; i++)
		assert_int_equal(m.mtrr_fix[i], 0);
}

static void test_mtrr_fixed_kept(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(fixed_mtrrs); i++) {
		/* every valid type, in a different byte for each MSR */
		u64 val = 0x0606060605040100ull << (8 * (i % 4));

		assert_int_equal(wr(&m, fixed_mtrrs[i], val), SHADOW_MSR_OK);
	}
	for (size_t i = 0; i < ARRAY_SIZE(fixed_mtrrs); i++) {
		assert_int_equal(rd(&m, fixed_mtrrs[i], &v), SHADOW_MSR_OK);
		assert_int_equal(v, 0x0606060605040100ull << (8 * (i % 4)));
	}
	assert_int_equal(wr(&m, fixed_mtrrs[0], 0x0606060606060606ull), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, fixed_mtrrs[0], &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0x0606060606060606ull);
	/* the variable ranges are untouched */
	for (unsigned n = 0; n < SNAP_VCNT; n++) {
		assert_int_equal(rd(&m, physbase(n), &v), SHADOW_MSR_OK);
		assert_int_equal(v, 0);
	}
}

static void test_mtrr_physbase_bad_gp(void **state)
{
	/* undefined types (the low byte), then reserved bits 8-11 */
	static const u64 bad[] = { 2, 3, 7, 0x10, 0xff, 0x106, 0x206, 0x406, 0x806 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_write_leaves(physbase(0), bad[i], SHADOW_MSR_GP);
		assert_write_leaves(physbase(SNAP_VCNT - 1), bad[i], SHADOW_MSR_GP);
	}
	/* from MAXPHYADDR up */
	assert_write_leaves(physbase(0), (1ull << MAXPA) | 6, SHADOW_MSR_GP);
	assert_write_leaves(physbase(0), (1ull << 63) | 6, SHADOW_MSR_GP);
}

static void test_mtrr_physmask_bad_gp(void **state)
{
	(void)state;
	/* reserved bits 10:0 */
	for (unsigned bit = 0; bit < 11; bit++) {
		assert_write_leaves(physmask(0), 0x800 | (1ull << bit), SHADOW_MSR_GP);
		assert_write_leaves(physmask(SNAP_VCNT - 1), 1ull << bit, SHADOW_MSR_GP);
	}
	/* from MAXPHYADDR up */
	assert_write_leaves(physmask(0), 0x800 | (1ull << MAXPA), SHADOW_MSR_GP);
	assert_write_leaves(physmask(0), 0x800 | (1ull << 63), SHADOW_MSR_GP);
	assert_write_leaves(physmask(SNAP_VCNT - 1), ~0ull, SHADOW_MSR_GP);
}

static void test_mtrr_fixed_bad_gp(void **state)
{
	static const u64 bad_types[] = { 2, 3, 7, 0x80, 0xff };

	(void)state;
	/* one undefined type in any of the 8 bytes, the others WB */
	for (size_t i = 0; i < ARRAY_SIZE(fixed_mtrrs); i++)
		for (unsigned byte = 0; byte < 8; byte++)
			for (size_t t = 0; t < ARRAY_SIZE(bad_types); t++) {
				u64 v = 0x0606060606060606ull & ~(0xffull << (8 * byte));

				assert_write_leaves(fixed_mtrrs[i],
						    v | (bad_types[t] << (8 * byte)),
						    SHADOW_MSR_GP);
			}
}

static void test_mtrr_between_fixed_gp(void **state)
{
	static const u32 gaps[] = { 0x24f, 0x251, 0x257, 0x25a, 0x267, 0x270 };
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(gaps); i++) {
		assert_int_equal(rd(&m, gaps[i], &v), SHADOW_MSR_GP);
		assert_write_leaves(gaps[i], 0, SHADOW_MSR_GP);
	}
}

static void test_mtrr_var_beyond_vcnt_gp(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	/* VCNT 8: pairs 8 and up do not exist */
	for (unsigned n = SNAP_VCNT; n < SHADOW_MTRR_NVAR + 2; n++) {
		assert_int_equal(rd(&m, physbase(n), &v), SHADOW_MSR_GP);
		assert_int_equal(rd(&m, physmask(n), &v), SHADOW_MSR_GP);
		assert_write_leaves(physbase(n), 6, SHADOW_MSR_GP);
		assert_write_leaves(physmask(n), 0, SHADOW_MSR_GP);
	}
	/* VCNT 2: pair 1 exists, pair 2 does not */
	m.mtrrcap.value = MTRRCAP_FIX | 2;
	assert_int_equal(rd(&m, physmask(1), &v), SHADOW_MSR_OK);
	assert_int_equal(wr(&m, physbase(1), 6), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, physbase(2), &v), SHADOW_MSR_GP);
	assert_int_equal(wr(&m, physbase(2), 6), SHADOW_MSR_GP);
	assert_int_equal(m.mtrr_var[2][0], 0);
	/* VCNT 0: none */
	m.mtrrcap.value = MTRRCAP_FIX;
	assert_int_equal(rd(&m, physbase(0), &v), SHADOW_MSR_GP);
	assert_int_equal(rd(&m, physmask(0), &v), SHADOW_MSR_GP);
	assert_int_equal(wr(&m, physbase(0), 6), SHADOW_MSR_GP);
	/* VCNT 255: only the SHADOW_MTRR_NVAR pairs kept */
	m.mtrrcap.value = MTRRCAP_FIX | 0xff;
	assert_int_equal(wr(&m, physmask(SHADOW_MTRR_NVAR - 1), 0x800), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, physmask(SHADOW_MTRR_NVAR - 1), &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0x800);
	assert_int_equal(rd(&m, physbase(SHADOW_MTRR_NVAR), &v), SHADOW_MSR_GP);
	assert_int_equal(wr(&m, physbase(SHADOW_MTRR_NVAR), 6), SHADOW_MSR_GP);
	assert_int_equal(rd(&m, physmask(SHADOW_MTRR_NVAR), &v), SHADOW_MSR_GP);
}

static void test_mtrr_fixed_without_fix_gp(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	m.mtrrcap.value = SNAP_MTRRCAP & ~MTRRCAP_FIX;
	for (size_t i = 0; i < ARRAY_SIZE(fixed_mtrrs); i++) {
		assert_int_equal(rd(&m, fixed_mtrrs[i], &v), SHADOW_MSR_GP);
		assert_int_equal(wr(&m, fixed_mtrrs[i], 0), SHADOW_MSR_GP);
		assert_int_equal(wr(&m, fixed_mtrrs[i], 0x0606060606060606ull), SHADOW_MSR_GP);
	}
	for (size_t i = 0; i < SHADOW_MTRR_NFIX; i++)
		assert_int_equal(m.mtrr_fix[i], 0);
	/* the variable ranges are still there */
	assert_int_equal(rd(&m, physbase(0), &v), SHADOW_MSR_OK);
	assert_int_equal(wr(&m, physbase(0), 6), SHADOW_MSR_OK);
}

static void test_mtrr_without_mtrrcap_gp(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	m.mtrrcap.present = false;
	for (unsigned n = 0; n < SHADOW_MTRR_NVAR; n++) {
		assert_int_equal(rd(&m, physbase(n), &v), SHADOW_MSR_GP);
		assert_int_equal(rd(&m, physmask(n), &v), SHADOW_MSR_GP);
		assert_int_equal(wr(&m, physbase(n), 6), SHADOW_MSR_GP);
		assert_int_equal(wr(&m, physmask(n), 0), SHADOW_MSR_GP);
	}
	for (size_t i = 0; i < ARRAY_SIZE(fixed_mtrrs); i++) {
		assert_int_equal(rd(&m, fixed_mtrrs[i], &v), SHADOW_MSR_GP);
		assert_int_equal(wr(&m, fixed_mtrrs[i], 0), SHADOW_MSR_GP);
	}
}

/* ---- everything else ------------------------------------------------------ */

static void test_unknown_msr_gp(void **state)
{
	static const u32 unknown[] = { 0x10 /* TSC */,
				       0x0,
				       0x1a,
				       0x1c,
				       0x210 /* MTRR_PHYSBASE8 */,
				       0x277 /* PAT: not this table's */,
				       0xc0000080,
				       0xffffffff };
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
		assert_int_equal(rd(&m, unknown[i], &v), SHADOW_MSR_GP);
		assert_write_leaves(unknown[i], 0, SHADOW_MSR_GP);
	}
}

/*
 * kvmclock's MSRs: absent (#GP) unless the CPUID offers kvmclock; then a
 * write is kept and forwarded (the VMM's KVM_SET_MSRS), a read returns it.
 */
static void test_kvm_clock_msrs(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	assert_int_equal(rd(&m, MSR_KVM_SYSTEM_TIME_NEW, &v), SHADOW_MSR_GP);
	assert_write_leaves(MSR_KVM_SYSTEM_TIME_NEW, 0x1001, SHADOW_MSR_GP);
	assert_write_leaves(MSR_KVM_WALL_CLOCK_NEW, 0x2000, SHADOW_MSR_GP);
	m.kvm_wall_clock.present = m.kvm_system_time.present = true;
	assert_int_equal(rd(&m, MSR_KVM_SYSTEM_TIME_NEW, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0); /* as on a fresh vCPU */
	assert_int_equal(wr(&m, MSR_KVM_SYSTEM_TIME_NEW, 0x12345001), SHADOW_MSR_FORWARD);
	assert_int_equal(wr(&m, MSR_KVM_WALL_CLOCK_NEW, 0x12346000), SHADOW_MSR_FORWARD);
	assert_int_equal(rd(&m, MSR_KVM_SYSTEM_TIME_NEW, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0x12345001);
	assert_int_equal(rd(&m, MSR_KVM_WALL_CLOCK_NEW, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0x12346000);
	/* The old pair (KVM_FEATURE_CLOCKSOURCE, 0x11/0x12) is not offered. */
	assert_int_equal(rd(&m, 0x11, &v), SHADOW_MSR_GP);
	assert_int_equal(rd(&m, 0x12, &v), SHADOW_MSR_GP);
}

/*
 * IA32_TSC_ADJUST: absent unless KVM gave it; then the snapshot, and a write
 * is kept and forwarded (KVM moves the TSC). Debian's 686-pae kernel reads
 * it at boot (tsc_store_and_check_tsc_adjust).
 */
static void test_tsc_adjust(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	assert_int_equal(rd(&m, MSR_IA32_TSC_ADJUST, &v), SHADOW_MSR_GP);
	m.tsc_adjust = (struct shadow_msr_val){ true, 0 };
	assert_int_equal(rd(&m, MSR_IA32_TSC_ADJUST, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0);
	assert_int_equal(wr(&m, MSR_IA32_TSC_ADJUST, (u64)-1000), SHADOW_MSR_FORWARD);
	assert_int_equal(rd(&m, MSR_IA32_TSC_ADJUST, &v), SHADOW_MSR_OK);
	assert_int_equal(v, (u64)-1000);
}

/*
 * AMD's HWCR: absent unless KVM gave it (an Intel vCPU); then the snapshot
 * (TscFreqSel, which vcpu.c sets, so that Linux does not warn), and a write
 * is forwarded for KVM to judge.
 */
static void test_hwcr(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	assert_int_equal(rd(&m, MSR_K7_HWCR, &v), SHADOW_MSR_GP);
	m.hwcr = (struct shadow_msr_val){ true, 1ull << 24 };
	assert_int_equal(rd(&m, MSR_K7_HWCR, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 1ull << 24);
	assert_int_equal(wr(&m, MSR_K7_HWCR, (1ull << 24) | (1ull << 18)), SHADOW_MSR_FORWARD);
	assert_int_equal(rd(&m, MSR_K7_HWCR, &v), SHADOW_MSR_OK);
	assert_int_equal(v, (1ull << 24) | (1ull << 18));
}

#define T(f) cmocka_unit_test(f)

/*
 * Machine check, as KVM keeps it: MCG_CAP read-only, MCG_STATUS kept,
 * MCG_CTL only with CTL_P, and the banks below MCG_CAP's count with KVM's
 * write rules. Without MCG_CAP (a CPU without MCA) all of them are #GP(0).
 */
static void test_mce(void **state)
{
	struct shadow_msrs m = snapshot();
	u64 v;

	(void)state;
	assert_int_equal(rd(&m, MSR_IA32_MCG_CAP, &v), SHADOW_MSR_GP);
	assert_int_equal(rd(&m, MSR_IA32_MCG_STATUS, &v), SHADOW_MSR_GP);
	assert_int_equal(rd(&m, MSR_IA32_MC0_CTL, &v), SHADOW_MSR_GP);
	m.mcg_cap = (struct shadow_msr_val){ true, 2 }; /* two banks, no MCG_CTL */
	m.mcg_status = (struct shadow_msr_val){ true, 0 };
	m.mce_banks[0] = ~0ull;
	assert_int_equal(rd(&m, MSR_IA32_MCG_CAP, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 2);
	assert_int_equal(wr(&m, MSR_IA32_MCG_CAP, 2), SHADOW_MSR_GP);
	assert_int_equal(wr(&m, MSR_IA32_MCG_STATUS, 0), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, MSR_IA32_MCG_CTL, &v), SHADOW_MSR_GP);
	/* Bank 0's CTL as snapshotted; bank 1's MISC (0x407) the last bank MSR; 0x408 none. */
	assert_int_equal(rd(&m, MSR_IA32_MC0_CTL, &v), SHADOW_MSR_OK);
	assert_int_equal(v, ~0ull);
	assert_int_equal(rd(&m, MSR_IA32_MC0_CTL + 7, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0);
	assert_int_equal(rd(&m, MSR_IA32_MC0_CTL + 8, &v), SHADOW_MSR_GP);
	/* CTL: 0, all ones, all ones but bits 10 and 0; nothing else. */
	assert_int_equal(wr(&m, MSR_IA32_MC0_CTL + 4, 0), SHADOW_MSR_OK);
	assert_int_equal(wr(&m, MSR_IA32_MC0_CTL + 4, ~0ull & ~(1ull << 10) & ~1ull),
			 SHADOW_MSR_OK);
	assert_int_equal(rd(&m, MSR_IA32_MC0_CTL + 4, &v), SHADOW_MSR_OK);
	assert_int_equal(v, ~0ull & ~(1ull << 10) & ~1ull);
	assert_int_equal(wr(&m, MSR_IA32_MC0_CTL + 4, 0xff), SHADOW_MSR_GP);
	/* STATUS: 0 only; ADDR and MISC: anything. */
	assert_int_equal(wr(&m, MSR_IA32_MC0_CTL + 1, 0), SHADOW_MSR_OK);
	assert_int_equal(wr(&m, MSR_IA32_MC0_CTL + 1, 1ull << 63), SHADOW_MSR_GP);
	assert_int_equal(wr(&m, MSR_IA32_MC0_CTL + 2, 0x1234), SHADOW_MSR_OK);
	assert_int_equal(rd(&m, MSR_IA32_MC0_CTL + 2, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0x1234);
	/* With CTL_P, MCG_CTL: 0 or all ones. */
	m.mcg_cap.value |= MCG_CAP_CTL_P;
	m.mcg_ctl = (struct shadow_msr_val){ true, ~0ull };
	assert_int_equal(wr(&m, MSR_IA32_MCG_CTL, 0), SHADOW_MSR_OK);
	assert_int_equal(wr(&m, MSR_IA32_MCG_CTL, 5), SHADOW_MSR_GP);
	assert_int_equal(rd(&m, MSR_IA32_MCG_CTL, &v), SHADOW_MSR_OK);
	assert_int_equal(v, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_mce),
		T(test_reads_return_snapshot),
		T(test_kvm_clock_msrs),
		T(test_tsc_adjust),
		T(test_hwcr),
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
		T(test_mtrr_reads_start_zero),
		T(test_mtrr_var_kept),
		T(test_mtrr_fixed_kept),
		T(test_mtrr_physbase_bad_gp),
		T(test_mtrr_physmask_bad_gp),
		T(test_mtrr_fixed_bad_gp),
		T(test_mtrr_between_fixed_gp),
		T(test_mtrr_var_beyond_vcnt_gp),
		T(test_mtrr_fixed_without_fix_gp),
		T(test_mtrr_without_mtrrcap_gp),
		T(test_unknown_msr_gp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
