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
	assert_true(cpu_features_parse("-xsave,-popcnt,-avx512f,-xsaves,-rdtscp,-pku", &h, err,
				       sizeof(err)));
	cpu_features_apply(&h, e, ARRAY_SIZE(e));
	/* CPUID.1:ECX[26] xsave, [23] popcnt */
	assert_int_equal(e[0].ecx, ONES & ~(1u << 26) & ~(1u << 23));
	assert_int_equal(e[0].eax & e[0].ebx & e[0].edx, ONES);
	/* CPUID.(7,0):EBX[16] avx512f, ECX[3] pku; sub-leaf 1 untouched */
	assert_int_equal(e[1].ebx, ONES & ~(1u << 16));
	assert_int_equal(e[1].ecx, ONES & ~(1u << 3));
	assert_int_equal(e[2].ebx & e[2].ecx, ONES);
	/* CPUID.(0xd,1):EAX[3] xsaves; sub-leaf 0 untouched */
	assert_int_equal(e[4].eax, ONES & ~(1u << 3));
	assert_int_equal(e[3].eax, ONES);
	/* CPUID.0x80000001:EDX[27] rdtscp */
	assert_int_equal(e[5].edx, ONES & ~(1u << 27));
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
 * Shadow mode's own hiding: KVM's paravirtual leaf goes; MONITOR, x2APIC and
 * the TSC deadline timer (1:ECX), PKU and LA57 (7.0:ECX) and XSAVES (0xd.1:EAX)
 * are cleared; nothing else changes.
 */
static void test_hide_for_shadow(void **state)
{
	struct kvm_cpuid_entry2 e[7];
	u32 n;

	(void)state;
	fill(e, ARRAY_SIZE(e));
	n = cpu_features_hide_for_shadow(e, ARRAY_SIZE(e));
	assert_int_equal(n, 6);
	for (u32 i = 0; i < n; i++)
		assert_true(e[i].function < 0x40000000u || e[i].function > 0x400000ffu);
	assert_int_equal(e[0].ecx, ONES & ~(1u << 3) & ~(1u << 21) & ~(1u << 24));
	assert_int_equal(e[0].eax & e[0].ebx & e[0].edx, ONES);
	assert_int_equal(e[1].ecx, ONES & ~(1u << 3) & ~(1u << 16)); /* la57 */
	assert_int_equal(e[1].eax & e[1].ebx & e[1].edx, ONES);
	assert_int_equal(e[2].ecx, ONES); /* 7.1 untouched */
	assert_int_equal(e[3].eax, ONES);
	assert_int_equal(e[4].eax, ONES & ~(1u << 3));
	assert_int_equal(e[5].ecx & e[5].edx, ONES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_hide_for_shadow),
		cmocka_unit_test(test_apply_nothing),
		cmocka_unit_test(test_parse_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
