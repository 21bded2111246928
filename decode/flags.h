/* SPDX-License-Identifier: MIT */
/*
 * decode/flags: the arithmetic flags of RFLAGS (CF, PF, AF, ZF, SF, OF) as
 * the integer instructions set them (SDM Vol. 1 §3.4.3.1 and Appendix A,
 * Vol. 2 "Flags Affected" of each instruction). One helper per family; each
 * takes operands already truncated to `size` bytes (1, 2, 4 or 8), returns
 * the result truncated likewise, and gives the new RFLAGS in *rflags with
 * every bit the family does not define left as it was.
 */
#ifndef UMBRA_DECODE_FLAGS_H
#define UMBRA_DECODE_FLAGS_H

#include "umbra/types.h"

/* The six status flags (SDM Vol. 1 Table 3-3 "S"). */
#define FLAGS_ARITH_MASK 0x8d5ull /* OF | SF | ZF | AF | PF | CF */

/* The low `size` bytes of v. */
u64 flags_trunc(u64 v, unsigned size);

/* add/adc (carry_in 0/1): CF = unsigned carry out, OF = signed overflow. */
u64 flags_add(u64 a, u64 b, unsigned carry_in, unsigned size, u64 *rflags);
/* sub/sbb/cmp/neg (a - b - borrow_in): CF = borrow, OF = signed overflow. */
u64 flags_sub(u64 a, u64 b, unsigned borrow_in, unsigned size, u64 *rflags);
/* inc/dec: as add/sub of 1, but CF is kept. */
u64 flags_inc(u64 a, unsigned size, u64 *rflags);
u64 flags_dec(u64 a, unsigned size, u64 *rflags);
/* neg: 0 - a; CF = (a != 0). */
u64 flags_neg(u64 a, unsigned size, u64 *rflags);
/* and/or/xor/test: CF = OF = 0, AF = 0 (undefined: cleared as hardware does), PF/ZF/SF. */
u64 flags_logic(u64 result, unsigned size, u64 *rflags);

/*
 * Whether condition `cc` (0-15, the low nibble of Jcc/SETcc/CMOVcc: o, no,
 * b, ae, e, ne, be, a, s, ns, p, np, l, ge, le, g; SDM Vol. 1 Table B-1)
 * holds for these flags.
 */
bool flags_cond(u64 rflags, unsigned cc);

#endif /* UMBRA_DECODE_FLAGS_H */
