/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for decode/flags.c against the host CPU: for random and edge
 * operands, `cmp` and `test` run natively and the flags they leave, and
 * every one of the 16 conditions `setcc` reads from them, must equal
 * flags_sub / flags_logic and flags_cond. A trap chain follows conditional
 * jumps with flags_cond (decode/chain.h), so a wrong condition there would
 * send the guest kernel down the wrong branch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "decode/flags.h"
#include "shadow/x86.h"
#include "xorshift.h"

/* The flags `cmp b, a` (a - b) leaves at 64 bits, and each condition as setcc sees it. */
static u64 native_cmp64(u64 a, u64 b, u8 cond[16])
{
	u64 fl;

	__asm__ volatile("cmp %[b], %[a]\n\t"
			 "pushfq\n\t"
			 "pop %[fl]\n\t"
			 "cmp %[b], %[a]\n\t"
			 "seto 0(%[c])\n\tsetno 1(%[c])\n\tsetb 2(%[c])\n\tsetae 3(%[c])\n\t"
			 "sete 4(%[c])\n\tsetne 5(%[c])\n\tsetbe 6(%[c])\n\tseta 7(%[c])\n\t"
			 "sets 8(%[c])\n\tsetns 9(%[c])\n\tsetp 10(%[c])\n\tsetnp 11(%[c])\n\t"
			 "setl 12(%[c])\n\tsetge 13(%[c])\n\tsetle 14(%[c])\n\tsetg 15(%[c])"
			 : [fl] "=&r"(fl)
			 : [a] "r"(a), [b] "r"(b), [c] "r"(cond)
			 : "cc", "memory");
	return fl;
}

/* The flags `insn b, a` leaves at 32 bits (cmp, test). */
#define NATIVE32(name, insn)                                               \
	static u64 name(u32 a, u32 b)                                      \
	{                                                                  \
		u64 fl;                                                    \
                                                                           \
		__asm__ volatile(insn " %[b], %[a]\n\tpushfq\n\tpop %[fl]" \
				 : [fl] "=r"(fl)                           \
				 : [a] "r"(a), [b] "r"(b)                  \
				 : "cc");                                  \
		return fl;                                                 \
	}
NATIVE32(native_cmp32, "cmp")
NATIVE32(native_test32, "test")

static const u64 edges[] = { 0,
			     1,
			     0x3f,
			     0x40,
			     0x41,
			     0x7fffffff,
			     0x80000000,
			     0xffffffff,
			     0x100000000ull,
			     0x7fffffffffffffffull,
			     0x8000000000000000ull,
			     0xffffffffffffffffull };

static void check_pair(u64 a, u64 b)
{
	u8 cond[16];
	u64 native = native_cmp64(a, b, cond) & FLAGS_ARITH_MASK;
	u64 ours = 0;

	flags_sub(a, b, 0, 8, &ours);
	if ((ours & FLAGS_ARITH_MASK) != native)
		fail_msg("cmp %#llx, %#llx (64): flags %#llx, native %#llx", (unsigned long long)b,
			 (unsigned long long)a, (unsigned long long)ours,
			 (unsigned long long)native);
	for (unsigned cc = 0; cc < 16; cc++)
		if (flags_cond(native, cc) != (cond[cc] != 0))
			fail_msg("condition %u on flags %#llx: %d, setcc %d", cc,
				 (unsigned long long)native, flags_cond(native, cc), cond[cc]);
	native = native_cmp32((u32)a, (u32)b) & FLAGS_ARITH_MASK;
	ours = 0;
	flags_sub((u32)a, (u32)b, 0, 4, &ours);
	assert_int_equal(ours & FLAGS_ARITH_MASK, native);
	native = native_test32((u32)a, (u32)b) & (FLAGS_ARITH_MASK & ~RFLAGS_AF);
	ours = 0;
	flags_logic((u32)a & (u32)b, 4, &ours);
	assert_int_equal(ours & (FLAGS_ARITH_MASK & ~RFLAGS_AF), native);
}

static void test_cmp_and_conditions_match_the_cpu(void **state)
{
	(void)state;
	rng_state = 0x5eedf1a6u;
	for (unsigned i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		for (unsigned j = 0; j < sizeof(edges) / sizeof(edges[0]); j++)
			check_pair(edges[i], edges[j]);
	for (unsigned n = 0; n < 20000; n++) {
		u64 a = (u64)rnd() << 32 | rnd(), b = (u64)rnd() << 32 | rnd();

		if (n % 3 == 0) /* 32-bit values, where the 32-bit forms' edges lie */
			a = (u32)a, b = (u32)b;

		if (n & 1) /* near each other, where the borrow and sign flags turn */
			b = a + (u64)(s64)(s8)(b & 0xff);
		check_pair(a, b);
	}
}

/* Every condition, and its odd negation, on every combination of the five flags it reads. */
static void test_conditions_are_negated_pairs(void **state)
{
	(void)state;
	for (u64 bits = 0; bits < 32; bits++) {
		u64 fl = ((bits & 1) ? RFLAGS_CF : 0) | ((bits & 2) ? RFLAGS_ZF : 0) |
			 ((bits & 4) ? RFLAGS_SF : 0) | ((bits & 8) ? RFLAGS_OF : 0) |
			 ((bits & 16) ? RFLAGS_PF : 0);

		for (unsigned cc = 0; cc < 16; cc += 2)
			assert_true(flags_cond(fl, cc) != flags_cond(fl, cc + 1));
		assert_int_equal(flags_cond(fl, 2), !!(bits & 1));		    /* b */
		assert_int_equal(flags_cond(fl, 7), !(bits & 1) && !(bits & 2));    /* a */
		assert_int_equal(flags_cond(fl, 12), !!(bits & 4) != !!(bits & 8)); /* l */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmp_and_conditions_match_the_cpu),
		cmocka_unit_test(test_conditions_are_negated_pairs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
