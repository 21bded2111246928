/* SPDX-License-Identifier: MIT */
/*
 * The x87 instruction forms (opcodes D8-DF, SDM Vol. 2A/2B and Vol. 1
 * §8.1.8) that hw mode's native fallback needs to know and capstone 4.0.2
 * gets wrong or leaves out: the size and direction of the memory operand
 * (capstone calls fistp's a read and fnsave's 4 bytes), and which are
 * control instructions. Internal to decode/.
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
 * A control instruction (fninit, fnclex, fldcw, fnstcw, fnstsw, fldenv,
 * fnstenv, frstor, fnsave): it leaves the last instruction and data
 * pointers and the last opcode alone, or sets them itself.
 */
bool x87_control(u8 opcode, u8 modrm);

#endif /* UMBRA_DECODE_X87_H */
