// SPDX-License-Identifier: MIT
/*
 * Unit tests of --cpu's masking (vmm/cpu_features.c): hidden features clear
 * exactly their bit, in exactly their leaf and sub-leaf, of a CPUID array
 * shaped like KVM_GET_SUPPORTED_CPUID's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/kvm.h>
#include <string.h>

#include "vmm/cpu_features.h"

#define ONES 0xffffffffu

static void fill(struct kvm_cpuid_entry2 *e, unsigned n)
{
	static const u32 leaves[][2] = { { 1, 0 },	    { 7, 0 },	{ 7, 1 },
					 { 0xd, 0 },	    { 0xd, 1 }, { 0x80000001u, 0 },
					 { 0x40000001u, 0 } };

	assert_int_equal(n, ARRAY_SIZE(leaves));
	for (unsigned i = 0; i < n; i++)
		e[i] = (struct kvm_cpuid_entry2){ .function = leaves[i][0],
						  .index = leaves[i][1],
						  .eax = ONES,
						  .ebx = ONES,
						  .ecx = ONES,
						  .edx = ONES };
}

static void test_apply(void **state)
{
	struct kvm_cpuid_entry2 e[7];
	struct cpu_hide h = { { 0 } };
	char err[128];

	(void)state;
	fill(e, ARRAY_SIZE(e));
	assert_true(cpu_features_parse("-xsave,-popcnt,-avx512f,-xsaves,-rdtscp,-pku,-lm,-pae", &h,
				       err, sizeof(err)));
	cpu_features_apply(&h, e, ARRAY_SIZE(e));
	/* CPUID.1:ECX[26] xsave, [23] popcnt */
	assert_int_equal(e[0].ecx, ONES & ~(1u << 26) & ~(1u << 23));
	/* CPUID.1:EDX[6] pae */
	assert_int_equal(e[0].edx, ONES & ~(1u << 6));
	assert_int_equal(e[0].eax & e[0].ebx, ONES);
	/* CPUID.(7,0):EBX[16] avx512f, ECX[3] pku; sub-leaf 1 untouched */
	assert_int_equal(e[1].ebx, ONES & ~(1u << 16));
	assert_int_equal(e[1].ecx, ONES & ~(1u << 3));
	assert_int_equal(e[2].ebx & e[2].ecx, ONES);
	/* CPUID.(0xd,1):EAX[3] xsaves; sub-leaf 0 untouched */
	assert_int_equal(e[4].eax, ONES & ~(1u << 3));
	assert_int_equal(e[3].eax, ONES);
	/* CPUID.0x80000001:EDX[27] rdtscp, [29] lm, which takes EFER.LME and LMA with it */
	assert_int_equal(e[5].edx, ONES & ~(1u << 27) & ~(1u << 29));
	assert_int_equal(cpu_features_efer_valid(e, ARRAY_SIZE(e)), (1u << 0) | (1u << 11));
	assert_int_equal(e[5].ecx, ONES);
	assert_int_equal(e[6].eax & e[6].ebx & e[6].ecx & e[6].edx, ONES);
}

static void test_apply_nothing(void **state)
{
	struct kvm_cpuid_entry2 e[7], orig[7];
	struct cpu_hide h = { { 0 } };

	(void)state;
	fill(e, ARRAY_SIZE(e));
	memcpy(orig, e, sizeof(e));
	cpu_features_apply(&h, e, ARRAY_SIZE(e));
	assert_memory_equal(e, orig, sizeof(e));
	cpu_features_apply(&h, NULL, 0);
}

static void test_parse_errors(void **state)
{
	struct cpu_hide h = { { 0 } };
	char err[160];

	(void)state;
	assert_false(cpu_features_parse("-nope", &h, err, sizeof(err)));
	assert_non_null(strstr(err, "--cpu"));
	assert_non_null(strstr(err, "'nope'"));
	assert_false(cpu_features_parse("popcnt", &h, err, sizeof(err)));
	assert_non_null(strstr(err, "'popcnt'"));
	assert_false(cpu_features_parse("-popcnt,,-avx", &h, err, sizeof(err)));
	/* a name that is a prefix of a real one is not that one */
	assert_false(cpu_features_parse("-xsav", &h, err, sizeof(err)));
	assert_true(cpu_features_parse("-xsaveopt", &h, err, sizeof(err)));
	assert_true(cpu_features_hidden(&h, "xsaveopt"));
	assert_false(cpu_features_hidden(&h, "xsave"));
}

/*
 * Shadow mode's own hiding: KVM's paravirtual features but kvmclock go;
 * MONITOR, x2APIC and the TSC deadline timer (1:ECX), VME and DE (1:EDX),
 * PKU and LA57 (7.0:ECX) and XSAVES (0xd.1:EAX) are cleared; nothing else
 * changes.
 */
static void test_hide_for_shadow(void **state)
{
	struct kvm_cpuid_entry2 e[7];
	u32 n;

	(void)state;
	fill(e, ARRAY_SIZE(e));
	n = cpu_features_hide_for_shadow(e, ARRAY_SIZE(e));
	assert_int_equal(n, 7);
	assert_int_equal(e[6].function, 0x40000001u);
	/* NOP_IO_DELAY, CLOCKSOURCE2, STABLE_BIT */
	assert_int_equal(e[6].eax, (1u << 1) | (1u << 3) | (1u << 24));
	assert_int_equal(e[0].ecx, ONES & ~(1u << 3) & ~(1u << 21) & ~(1u << 24));
	assert_int_equal(e[0].edx, ONES & ~(1u << 1) & ~(1u << 2));
	assert_int_equal(e[0].eax & e[0].ebx, ONES);
	assert_int_equal(e[1].ecx, ONES & ~(1u << 3) & ~(1u << 16)); /* la57 */
	assert_int_equal(e[1].eax & e[1].ebx & e[1].edx, ONES);
	assert_int_equal(e[2].ecx, ONES); /* 7.1 untouched */
	assert_int_equal(e[3].eax, ONES);
	assert_int_equal(e[4].eax, ONES & ~(1u << 3));
	assert_int_equal(e[5].ecx & e[5].edx, ONES);
}

/*
 * The CR4 bits a CPUID offers: with every bit set, all of CR4's features;
 * then each feature's CPUID bit alone takes exactly its CR4 bits away,
 * and a CPUID without leaf 7 offers none of leaf 7's.
 */
static void test_cr4_valid(void **state)
{
	/* fill()'s entry (0: leaf 1, 1: leaf 7.0), register (1 EBX, 2 ECX, 3 EDX), bit. */
	static const struct {
		unsigned entry, reg, bit;
		u64 cr4;
	} pairs[] = {
		{ 0, 3, 1, (1u << 0) | (1u << 1) }, /* VME: CR4.VME and PVI */
		{ 0, 3, 2, 1u << 3 },		    /* DE */
		{ 0, 3, 4, 1u << 2 },		    /* TSC: CR4.TSD */
		{ 0, 3, 13, 1u << 7 },		    /* PGE */
		{ 0, 2, 17, 1u << 17 },		    /* PCID: CR4.PCIDE */
		{ 0, 2, 26, 1u << 18 },		    /* XSAVE: CR4.OSXSAVE */
		{ 1, 1, 0, 1u << 16 },		    /* FSGSBASE */
		{ 1, 1, 7, 1u << 20 },		    /* SMEP */
		{ 1, 1, 20, 1u << 21 },		    /* SMAP */
		{ 1, 2, 2, 1u << 11 },		    /* UMIP */
		{ 1, 2, 16, 1u << 12 },		    /* LA57 */
	};
	/* Bits 0-12 (VME to LA57), 16-18 (FSGSBASE, PCIDE, OSXSAVE), 20-22 (SMEP, SMAP, PKE). */
	const u64 all = 0x1fffull | (7ull << 16) | (7ull << 20);
	struct kvm_cpuid_entry2 e[7];

	(void)state;
	fill(e, ARRAY_SIZE(e));
	assert_int_equal(cpu_features_cr4_valid(e, ARRAY_SIZE(e)), all);
	for (unsigned i = 0; i < ARRAY_SIZE(pairs); i++) {
		u32 *r;

		fill(e, ARRAY_SIZE(e));
		r = pairs[i].reg == 1	? &e[pairs[i].entry].ebx
		    : pairs[i].reg == 2 ? &e[pairs[i].entry].ecx
					: &e[pairs[i].entry].edx;
		*r &= ~(1u << pairs[i].bit);
		assert_int_equal(cpu_features_cr4_valid(e, ARRAY_SIZE(e)), all & ~pairs[i].cr4);
	}
	fill(e, ARRAY_SIZE(e));
	e[1].function = e[2].function = 0x12345678u; /* no leaf 7 */
	assert_int_equal(cpu_features_cr4_valid(e, ARRAY_SIZE(e)),
			 all & ~(0x7ull << 20) & ~(1ull << 16) & ~(1ull << 11) & ~(1ull << 12));
}

/* EFER's bits from CPUID.80000001H:EDX: SYSCALL (SCE), NX (NXE), LM (LME, LMA). */
static void test_efer_valid(void **state)
{
	struct kvm_cpuid_entry2 e[7];

	(void)state;
	fill(e, ARRAY_SIZE(e));
	assert_int_equal(cpu_features_efer_valid(e, ARRAY_SIZE(e)),
			 (1u << 0) | (1u << 8) | (1u << 10) | (1u << 11));
	e[5].edx &= ~(1u << 20); /* no NX */
	assert_int_equal(cpu_features_efer_valid(e, ARRAY_SIZE(e)),
			 (1u << 0) | (1u << 8) | (1u << 10));
	e[5].edx &= ~(1u << 11); /* no SYSCALL */
	assert_int_equal(cpu_features_efer_valid(e, ARRAY_SIZE(e)), (1u << 8) | (1u << 10));
}

/* A CPUID as KVM_GET_SUPPORTED_CPUID gives it: leaf 1, KVM's leaves 0x40000000-1 and 0x40000010. */
static u32 kvm_leaves(struct kvm_cpuid_entry2 *e, u32 kvm_features)
{
	e[0] = (struct kvm_cpuid_entry2){ .function = 1, .ecx = 0x7ffafbff };
	e[1] = (struct kvm_cpuid_entry2){ .function = 0x40000000u,
					  .eax = 0x40000001u,
					  .ebx = 0x4b4d564b, /* "KVMKVMKVM\0\0\0" */
					  .ecx = 0x564b4d56,
					  .edx = 0x4d };
	e[2] = (struct kvm_cpuid_entry2){ .function = 0x40000001u,
					  .eax = kvm_features,
					  .edx = 1 /* KVM_HINTS_REALTIME */ };
	e[3] = (struct kvm_cpuid_entry2){ .function = 0x40000010u, .eax = 123 };
	e[4] = (struct kvm_cpuid_entry2){ .function = 0x80000001u, .edx = ONES };
	return 5;
}

/*
 * kvmclock in both modes: the hypervisor bit set, leaf 0x40000001 cut to
 * NOP_IO_DELAY, CLOCKSOURCE2 and its stable bit (no hints), other paravirtual leaves gone,
 * the signature kept and naming 0x40000001 as the last leaf.
 */
static void test_kvm_clock(void **state)
{
	struct kvm_cpuid_entry2 e[5];
	bool clock;
	u32 n;

	(void)state;
	n = cpu_features_kvm_clock(e, kvm_leaves(e, 0x01ffffffu), &clock);
	assert_true(clock);
	assert_int_equal(n, 4);
	assert_int_equal(e[0].ecx, 0x7ffafbffu | (1u << 31));
	assert_int_equal(e[1].function, 0x40000000u);
	assert_int_equal(e[1].eax, 0x40000001u);
	assert_int_equal(e[1].ebx, 0x4b4d564b);
	assert_int_equal(e[2].eax, (1u << 1) | (1u << 3) | (1u << 24));
	assert_int_equal(e[2].ebx | e[2].ecx | e[2].edx, 0);
	assert_int_equal(e[3].function, 0x80000001u);
	assert_int_equal(e[3].edx, ONES);

	/* KVM without CLOCKSOURCE2 (only the old MSR pair): no clock, no hypervisor bit. */
	n = cpu_features_kvm_clock(e, kvm_leaves(e, 1u << 0), &clock);
	assert_false(clock);
	assert_int_equal(e[0].ecx, 0x7ffafbffu);
	assert_int_equal(e[2].eax, 0);

	/* No signature leaf at all (a CPUID from elsewhere): nothing offered. */
	n = kvm_leaves(e, 1u << 3);
	e[1].function = 0x0000000du;
	n = cpu_features_kvm_clock(e, n, &clock);
	assert_false(clock);
	assert_int_equal(e[0].ecx, 0x7ffafbffu);
}

/* A trapped cpuid's answer (cpu_features_lookup): KVM's lookup rules. */
static void test_lookup(void **state)
{
	const struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0xd, .ebx = 1, .ecx = 2, .edx = 3 },
		{ .function = 1, .index = 5, .eax = 0x10 }, /* index not significant */
		{ .function = 7,
		  .index = 0,
		  .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		  .ebx = 0x70 },
		{ .function = 7,
		  .index = 1,
		  .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		  .eax = 0x71 },
		{ .function = 0xd,
		  .index = 2,
		  .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		  .eax = 0xd2 },
		{ .function = 0x80000000u, .eax = 0x80000008u },
	};
	u32 r[4];

	(void)state;
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 1, 9, r);
	assert_int_equal(r[0], 0x10);
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 7, 1, r);
	assert_int_equal(r[0], 0x71);
	assert_int_equal(r[1], 0);
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 7, 3, r); /* a subleaf with no entry */
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	/* Beyond the basic range: Intel gives the highest basic leaf (0xd here), AMD zeros. */
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 0x20, 2, r);
	assert_int_equal(r[0], 0xd2);
	cpu_features_lookup(e, ARRAY_SIZE(e), true, 0x20, 2, r);
	assert_int_equal(r[0], 0);
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 0x80000009u, 2, r);
	assert_int_equal(r[0], 0xd2);
	/* A range without its top leaf (no 0xc0000000 entry): exceeded too. */
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 0xc0000001u, 2, r);
	assert_int_equal(r[0], 0xd2);
	/* Inside its range but absent (leaf 3): zeros, on Intel too. */
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 3, 0, r);
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	cpu_features_lookup(e, ARRAY_SIZE(e), false, 0, 0, r);
	assert_int_equal(r[1], 1);
	assert_int_equal(r[3], 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply),	     cmocka_unit_test(test_hide_for_shadow),
		cmocka_unit_test(test_cr4_valid),    cmocka_unit_test(test_efer_valid),
		cmocka_unit_test(test_kvm_clock),    cmocka_unit_test(test_apply_nothing),
		cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
