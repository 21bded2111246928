// SPDX-License-Identifier: MIT
/*
 * Decoding a plain `mov` store for shadow mode (vmm/shadow_store.h).
 *
 * 1. Decode one instruction with capstone in detail mode.
 * 2. Accept only `mov`/`movabs` with a memory destination and a register or
 *    immediate source, no lock/rep prefix, operand size 1/2/4/8.
 * 3. Form the linear address as the CPU does in 64-bit mode (SDM Vol. 1
 *    §3.7.5): segment base (FS/GS only) + base + index * scale + disp,
 *    RIP-relative from the end of the instruction, truncated to 32 bits
 *    with an address-size prefix.
 * 4. Read the source register (including AH/CH/DH/BH) or sign-extend the
 *    immediate, and truncate to the operand size.
 */
#include <capstone/capstone.h>
#include <stdio.h>
#include <string.h>

#include "vmm/shadow_store.h"

#define PREFIX_ADDR_SIZE 0x67

/* Register names by encoding: 64, 32, 16, low-8 bit forms. */
static const char *const reg_names[EMU_NR_GPRS][4] = {
	{ "rax", "eax", "ax", "al" },	   { "rcx", "ecx", "cx", "cl" },
	{ "rdx", "edx", "dx", "dl" },	   { "rbx", "ebx", "bx", "bl" },
	{ "rsp", "esp", "sp", "spl" },	   { "rbp", "ebp", "bp", "bpl" },
	{ "rsi", "esi", "si", "sil" },	   { "rdi", "edi", "di", "dil" },
	{ "r8", "r8d", "r8w", "r8b" },	   { "r9", "r9d", "r9w", "r9b" },
	{ "r10", "r10d", "r10w", "r10b" }, { "r11", "r11d", "r11w", "r11b" },
	{ "r12", "r12d", "r12w", "r12b" }, { "r13", "r13d", "r13w", "r13b" },
	{ "r14", "r14d", "r14w", "r14b" }, { "r15", "r15d", "r15w", "r15b" },
};
static const unsigned form_bits[4] = { 64, 32, 16, 8 };

/* Item 4: the value of register `name` (any width), false if not a GPR. */
static bool reg_value(const char *name, const u64 gpr[EMU_NR_GPRS], u64 *val)
{
	static const char *const high8[4] = { "ah", "ch", "dh", "bh" };

	for (unsigned i = 0; i < 4; i++) {
		if (!strcmp(name, high8[i])) {
			*val = (gpr[i] >> 8) & 0xff;
			return true;
		}
	}
	for (unsigned r = 0; r < EMU_NR_GPRS; r++) {
		for (unsigned f = 0; f < 4; f++) {
			if (!strcmp(name, reg_names[r][f])) {
				*val = form_bits[f] == 64 ? gpr[r]
							  : gpr[r] & ((1ull << form_bits[f]) - 1);
				return true;
			}
		}
	}
	return false;
}

enum store_decode_result store_decode(const u8 *code, size_t n, u64 rip, const u64 gpr[EMU_NR_GPRS],
				      u64 fs_base, u64 gs_base, struct store_insn *out)
{
	enum store_decode_result res = STORE_NOT_A_STORE;
	csh handle;
	cs_insn *insn = NULL;
	const cs_x86 *x;
	const cs_x86_op *dst, *src;
	u64 addr = 0, v, idx;

	memset(out, 0, sizeof(*out));
	/* Item 1. */
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
		return STORE_BAD_BYTES;
	cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
	if (cs_disasm(handle, code, n, rip, 1, &insn) != 1) {
		cs_close(&handle);
		return STORE_BAD_BYTES;
	}
	snprintf(out->mnemonic, sizeof(out->mnemonic), "%s", insn->mnemonic);
	out->insn_len = insn->size;
	x = &insn->detail->x86;
	/* Item 2. */
	if ((insn->id != X86_INS_MOV && insn->id != X86_INS_MOVABS) || x->op_count != 2 ||
	    x->prefix[0] != 0)
		goto out;
	dst = &x->operands[0];
	src = &x->operands[1];
	if (dst->type != X86_OP_MEM || (src->type != X86_OP_REG && src->type != X86_OP_IMM))
		goto out;
	if (dst->size != 1 && dst->size != 2 && dst->size != 4 && dst->size != 8)
		goto out;
	/* Item 3. */
	if (dst->mem.segment == X86_REG_FS)
		addr = fs_base;
	else if (dst->mem.segment == X86_REG_GS)
		addr = gs_base;
	if (dst->mem.base == X86_REG_RIP) {
		addr += rip + insn->size;
	} else if (dst->mem.base != X86_REG_INVALID) {
		if (!reg_value(cs_reg_name(handle, dst->mem.base), gpr, &v))
			goto out;
		addr += v;
	}
	if (dst->mem.index != X86_REG_INVALID) {
		if (!reg_value(cs_reg_name(handle, dst->mem.index), gpr, &idx))
			goto out;
		addr += idx * (u64)dst->mem.scale;
	}
	addr += (u64)dst->mem.disp;
	if (x->prefix[3] == PREFIX_ADDR_SIZE)
		addr &= 0xffffffffull;
	/* Item 4. */
	if (src->type == X86_OP_REG) {
		if (!reg_value(cs_reg_name(handle, src->reg), gpr, &v))
			goto out;
	} else {
		v = (u64)src->imm; /* capstone sign-extends the immediate */
	}
	out->gva = addr;
	out->len = dst->size;
	memcpy(out->value, &v, out->len); /* little-endian host: the low bytes */
	res = STORE_OK;
out:
	cs_free(insn, 1);
	cs_close(&handle);
	return res;
}
