// SPDX-License-Identifier: MIT
/* x87 instruction forms (decode/x87.h), from the SDM's opcode map (Vol. 2D, A.4: D8-DF). */
#include "decode/x87.h"

/*
 * Per escape opcode D8-DF and ModRM.reg 0-7 (mod != 3): the operand's size
 * (0: the form is #UD), whether it is a store, whether it is one of the
 * environment and state images (28 and 108 bytes with a 32- or 64-bit
 * operand size).
 */
#define R(n)                    \
	{                       \
		n, false, false \
	}
#define S(n)                   \
	{                      \
		n, true, false \
	}
#define ENV(n)                 \
	{                      \
		n, false, true \
	}
#define ENVS(n)               \
	{                     \
		n, true, true \
	}
#define UD                      \
	{                       \
		0, false, false \
	}
static const struct x87_mem mem_forms[8][8] = {
	/* D8: fadd fmul fcom fcomp fsub fsubr fdiv fdivr, m32fp */
	{ R(4), R(4), R(4), R(4), R(4), R(4), R(4), R(4) },
	/* D9: fld m32fp, -, fst, fstp, fldenv, fldcw, fnstenv, fnstcw */
	{ R(4), UD, S(4), S(4), ENV(28), R(2), ENVS(28), S(2) },
	/* DA: fiadd ... fidivr, m32int */
	{ R(4), R(4), R(4), R(4), R(4), R(4), R(4), R(4) },
	/* DB: fild m32int, fisttp, fist, fistp, -, fld m80fp, -, fstp m80fp */
	{ R(4), S(4), S(4), S(4), UD, R(10), UD, S(10) },
	/* DC: fadd ... fdivr, m64fp */
	{ R(8), R(8), R(8), R(8), R(8), R(8), R(8), R(8) },
	/* DD: fld m64fp, fisttp, fst, fstp, frstor, -, fnsave, fnstsw */
	{ R(8), S(8), S(8), S(8), ENV(108), UD, ENVS(108), S(2) },
	/* DE: fiadd ... fidivr, m16int */
	{ R(2), R(2), R(2), R(2), R(2), R(2), R(2), R(2) },
	/* DF: fild m16int, fisttp, fist, fistp, fbld m80, fild m64int, fbstp m80, fistp m64int */
	{ R(2), S(2), S(2), S(2), R(10), R(8), S(10), S(8) },
};

bool x87_mem_form(u8 opcode, u8 modrm, struct x87_mem *m)
{
	if (!x87_escape(opcode) || (modrm >> 6) == 3)
		return false;
	*m = mem_forms[opcode - 0xd8][(modrm >> 3) & 7];
	return m->size != 0;
}

enum x87_ptrs x87_pointer_effect(u8 opcode, u8 modrm)
{
	unsigned reg = (modrm >> 3) & 7;

	if ((modrm >> 6) == 3) {
		if (opcode == 0xdb && modrm == 0xe3)
			return X87_PTRS_SET; /* fninit */
		if ((opcode == 0xdb && modrm == 0xe2) || (opcode == 0xdf && modrm == 0xe0))
			return X87_PTRS_KEEP; /* fnclex, fnstsw ax */
		return X87_PTRS_RECORD;
	}
	/* D9 /4 fldenv, DD /4 frstor, DD /6 fnsave; D9 /5-/7 and DD /7 keep them. */
	if ((opcode == 0xd9 && reg == 4) || (opcode == 0xdd && (reg == 4 || reg == 6)))
		return X87_PTRS_SET;
	if ((opcode == 0xd9 && reg >= 4) || (opcode == 0xdd && reg >= 4))
		return X87_PTRS_KEEP;
	return X87_PTRS_RECORD;
}
