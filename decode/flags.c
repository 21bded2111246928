// SPDX-License-Identifier: MIT
/*
 * RFLAGS arithmetic flags (decode/flags.h).
 *
 * 1. PF, ZF and SF from a result: the result-only flags every family sets.
 * 2. The add family (add, adc, inc, xadd): carry out of the top bit and of
 *    bit 3 (AF), signed overflow when both inputs have the same sign and the
 *    result the other.
 * 3. The sub family (sub, sbb, cmp, cmpxchg, dec, neg): borrow into the top
 *    bit and into bit 3, signed overflow when the inputs differ in sign and
 *    the result's sign differs from the minuend's.
 * 4. The logic family (and, or, xor): CF = OF = 0.
 * 5. The conditions of Jcc/SETcc/CMOVcc read from the flags: a trap chain
 *    follows a conditional jump with them (decode/chain.h).
 */
#include "decode/flags.h"
#include "shadow/x86.h"

_Static_assert(FLAGS_ARITH_MASK ==
		       (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF),
	       "the six status flags");

u64 flags_trunc(u64 v, unsigned size)
{
	return size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
}

static u64 sign_bit(unsigned size)
{
	return 1ull << (8 * size - 1);
}

/* Item 1: PF is the even parity of the low byte (SDM Vol. 1 §3.4.3.1). */
static u64 result_flags(u64 r, unsigned size)
{
	u64 f = 0;

	if (!(__builtin_popcount((unsigned)(r & 0xff)) & 1))
		f |= RFLAGS_PF;
	if (r == 0)
		f |= RFLAGS_ZF;
	if (r & sign_bit(size))
		f |= RFLAGS_SF;
	return f;
}

static void set_flags(u64 *rflags, u64 mask, u64 f)
{
	*rflags = (*rflags & ~mask) | (f & mask);
}

/* Item 2. */
u64 flags_add(u64 a, u64 b, unsigned carry_in, unsigned size, u64 *rflags)
{
	u64 r = flags_trunc(a + b + carry_in, size);
	u64 f = result_flags(r, size);
	bool carry;

	if (size >= 8)
		carry = r < a || (carry_in && r == a);
	else
		carry = (a + b + carry_in) >> (8 * size);
	if (carry)
		f |= RFLAGS_CF;
	if ((a ^ b ^ r) & 0x10)
		f |= RFLAGS_AF;
	if ((~(a ^ b) & (a ^ r)) & sign_bit(size))
		f |= RFLAGS_OF;
	set_flags(rflags, FLAGS_ARITH_MASK, f);
	return r;
}

/* Item 3. */
u64 flags_sub(u64 a, u64 b, unsigned borrow_in, unsigned size, u64 *rflags)
{
	u64 r = flags_trunc(a - b - borrow_in, size);
	u64 f = result_flags(r, size);

	if (a < b || (borrow_in && a == b))
		f |= RFLAGS_CF;
	if ((a ^ b ^ r) & 0x10)
		f |= RFLAGS_AF;
	if (((a ^ b) & (a ^ r)) & sign_bit(size))
		f |= RFLAGS_OF;
	set_flags(rflags, FLAGS_ARITH_MASK, f);
	return r;
}

u64 flags_inc(u64 a, unsigned size, u64 *rflags)
{
	u64 cf = *rflags & RFLAGS_CF;
	u64 r = flags_add(a, 1, 0, size, rflags);

	*rflags = (*rflags & ~RFLAGS_CF) | cf;
	return r;
}

u64 flags_dec(u64 a, unsigned size, u64 *rflags)
{
	u64 cf = *rflags & RFLAGS_CF;
	u64 r = flags_sub(a, 1, 0, size, rflags);

	*rflags = (*rflags & ~RFLAGS_CF) | cf;
	return r;
}

u64 flags_neg(u64 a, unsigned size, u64 *rflags)
{
	/* 0 - a: CF = borrow = (a != 0), exactly flags_sub's rule. */
	return flags_sub(0, a, 0, size, rflags);
}

/* Item 4. */
u64 flags_logic(u64 result, unsigned size, u64 *rflags)
{
	u64 r = flags_trunc(result, size);

	set_flags(rflags, FLAGS_ARITH_MASK, result_flags(r, size));
	return r;
}

/* Item 5. Even conditions are the flag test, odd ones its negation. */
bool flags_cond(u64 rflags, unsigned cc)
{
	bool cf = rflags & RFLAGS_CF, zf = rflags & RFLAGS_ZF, sf = rflags & RFLAGS_SF,
	     of = rflags & RFLAGS_OF, pf = rflags & RFLAGS_PF, t;

	switch ((cc & 15) >> 1) {
	case 0: t = of; break;
	case 1: t = cf; break;
	case 2: t = zf; break;
	case 3: t = cf || zf; break;
	case 4: t = sf; break;
	case 5: t = pf; break;
	case 6: t = sf != of; break;
	default: t = zf || sf != of; break;
	}
	return (cc & 1) ? !t : t;
}
