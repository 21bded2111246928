/* SPDX-License-Identifier: MIT */
/*
 * The x87 instruction forms (opcodes D8-DF, SDM Vol. 2A/2B and Vol. 1
 * §8.1.8) that hw mode's native fallback needs to know and capstone 4.0.2
 * gets wrong or leaves out: the size and direction of the memory operand
 * (capstone calls fistp's a read and fnsave's 4 bytes), and what each does
 * to the last opcode and pointers. Internal to decode/.
 */
#ifndef UMBRA_DECODE_X87_H
#define UMBRA_DECODE_X87_H

#include <stdbool.h>

#include "umbra/types.h"

/* The memory operand of an x87 instruction with ModRM.mod != 3. */
struct x87_mem {
	u8 size;    /* in bytes, with a 32- or 64-bit operand size */
	bool write; /* the instruction stores to it (and does not read it) */
	bool env; /* fldenv, fnstenv, frstor, fnsave: the layout depends on mode and operand size */
};

/* An x87 escape opcode: D8-DF. */
static inline bool x87_escape(u8 opcode)
{
	return opcode >= 0xd8 && opcode <= 0xdf;
}

/* The memory form of `opcode` /reg (ModRM.mod != 3); false for one that is #UD. */
bool x87_mem_form(u8 opcode, u8 modrm, struct x87_mem *m);

/*
 * What an instruction does to the last opcode, instruction pointer and data
 * pointer (FOP, FIP, FDP; SDM Vol. 1 §8.1.8-8.1.10).
 */
enum x87_ptrs {
	X87_PTRS_RECORD, /* a non-control instruction: records itself */
	X87_PTRS_KEEP,	 /* fnclex, fldcw, fnstcw, fnstsw, fnstenv: leaves them */
	X87_PTRS_SET,	 /* fninit, fnsave clear them; fldenv, frstor load them */
};
enum x87_ptrs x87_pointer_effect(u8 opcode, u8 modrm);

#endif /* UMBRA_DECODE_X87_H */
