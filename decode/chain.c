/* SPDX-License-Identifier: MIT */
/*
 * decode/chain: the instructions a trap chain may take in (decode/chain.h).
 * Byte patterns, SDM Vol. 2 opcode map: 0f 01 /7 with mod=3 is the
 * swapgs/rdtscp group, 0f 01 ca/cb clac/stac, 8e /r the segment loads
 * (reg 0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS), 0f 20/22 mov cr (always a
 * register operand: mod is ignored and taken as 3), f3 0f ae /0-/3 with
 * mod=3 the fs/gs base group; 70-7f and 0f 80-8f the jcc, their low
 * nibble the condition; 83 /7, 81 /7, 3d, 39, 3b the cmp forms, 85 and
 * f7 /0 the test forms; a4/a5 movs (f3: rep).
 */
#include "decode/chain.h"
#include "decode/flags.h"

/* The ModRM reg of `mov r, Sreg` (8e): ES 0, DS 3, FS 4, GS 5 (not CS 1, SS 2; 6-7 invalid). */
static bool sreg_loadable(unsigned reg)
{
	return reg == 0 || (reg >= 3 && reg <= 5);
}

static bool is_rex(u8 b)
{
	return (b & 0xf0) == 0x40;
}

/*
 * Bytes taken by a ModRM (and SIB, displacement) in 64-bit mode with a
 * 64-bit address size, from the ModRM at m[0]; 0 if `avail` is too short.
 */
static unsigned modrm_len(const u8 *m, unsigned avail)
{
	unsigned mod, rm, n = 1;

	if (avail < 1)
		return 0;
	mod = m[0] >> 6;
	rm = m[0] & 7;
	if (mod == 3)
		return 1;
	if (rm == 4) { /* SIB */
		if (avail < 2)
			return 0;
		n++;
		if (mod == 0 && (m[1] & 7) == 5)
			n += 4; /* no base: disp32 */
	} else if (mod == 0 && rm == 5) {
		n += 4; /* RIP-relative disp32 */
	}
	if (mod == 1)
		n += 1;
	else if (mod == 2)
		n += 4;
	return n <= avail ? n : 0;
}

static enum chain_class found(enum chain_class k, unsigned n, unsigned avail,
			      struct chain_insn *out)
{
	if (n > avail)
		return CHAIN_END;
	out->len = n;
	return k;
}

/* The prefixes a chained instruction may carry, each at most once. */
struct prefixes {
	bool opsize, seg /* fs, gs */, cs /* 2e: only nops use it */, f3;
	u8 rex; /* 0: none */
};

/* Any legacy prefix (66, fs/gs, 2e, f3): most chained forms take none, only REX. */
static bool has_legacy(const struct prefixes *p)
{
	return p->opsize || p->seg || p->cs || p->f3;
}

/* Parse the prefixes at code[0..avail); returns the opcode's index. */
static unsigned parse_prefixes(const u8 *code, unsigned avail, struct prefixes *p)
{
	unsigned i = 0;

	for (; i < avail; i++) {
		u8 b = code[i];

		if (b == 0x66 && !p->opsize)
			p->opsize = true;
		else if ((b == 0x64 || b == 0x65) && !p->seg)
			p->seg = true;
		else if (b == 0x2e && !p->cs)
			p->cs = true;
		else if (b == 0xf3 && !p->f3)
			p->f3 = true;
		else
			break;
	}
	if (i < avail && is_rex(code[i]))
		p->rex = code[i++];
	return i;
}

/* 88/89/8a/8b /r and c6/c7 /0 with a memory operand: the bridge inside a stac window. */
static enum chain_class mem_mov(const u8 *code, unsigned avail, unsigned i,
				const struct prefixes *p, struct chain_insn *out)
{
	u8 op = code[i];
	unsigned m, imm = 0;

	if (p->f3 || p->cs || i + 1 >= avail || (code[i + 1] >> 6) == 3)
		return CHAIN_END;
	if (op == 0xc6 || op == 0xc7) {
		if (((code[i + 1] >> 3) & 7) != 0)
			return CHAIN_END;
		imm = op == 0xc6 ? 1 : p->opsize ? 2 : 4;
	}
	m = modrm_len(code + i + 1, avail - i - 1);
	return m ? found(CHAIN_BRIDGE, i + 1 + m + imm, avail, out) : CHAIN_END;
}

/*
 * xor/sub with the same register as both operands (mod = 3, reg = rm, and
 * REX.R = REX.B): the zeroing idiom decode/emulate_mem.c emulates.
 */
static enum chain_class zero_idiom(const u8 *code, unsigned avail, unsigned i,
				   const struct prefixes *p, struct chain_insn *out)
{
	u8 m;

	if (has_legacy(p) || i + 1 >= avail)
		return CHAIN_END;
	m = code[i + 1];
	if ((m >> 6) != 3 || ((m >> 3) & 7) != (m & 7) || !!(p->rex & 4) != !!(p->rex & 1))
		return CHAIN_END;
	return found(CHAIN_BRIDGE, i + 2, avail, out);
}

/*
 * 83 /0 and 83 /5 ib (add, sub $imm8) on [rsp], [rsp + disp8/32]: a
 * stack slot (SIB with base rsp and no index, REX.X and REX.B clear).
 * Linux's sync_core builds its iretq frame with `addq $8,(%rsp)`.
 */
static enum chain_class stack_alu(const u8 *code, unsigned avail, unsigned i,
				  const struct prefixes *p, struct chain_insn *out)
{
	u8 m, sib;
	unsigned mod, n;

	if (has_legacy(p) || (p->rex & 3) || i + 2 >= avail)
		return CHAIN_END;
	m = code[i + 1];
	sib = code[i + 2];
	mod = m >> 6;
	if (mod == 3 || (m & 7) != 4 || (((m >> 3) & 7) != 0 && ((m >> 3) & 7) != 5) ||
	    sib != 0x24) /* scale 0, index 100 (none), base 100 (rsp) */
		return CHAIN_END;
	n = modrm_len(code + i + 1, avail - i - 1);
	return n ? found(CHAIN_BRIDGE, i + 1 + n + 1, avail, out) : CHAIN_END;
}

/*
 * The register forms a user copy runs between stac and clac (chain.h):
 * mov r, r; cmp/test with registers and an immediate. 32- or 64-bit
 * operands (REX.W), no legacy prefix. Sets out->compare for cmp/test.
 */
static enum chain_class reg_form(const u8 *code, unsigned avail, unsigned i,
				 const struct prefixes *p, struct chain_insn *out)
{
	u8 op = code[i], m;
	unsigned imm = 0;

	if (has_legacy(p))
		return CHAIN_END;
	if (op == 0x3d) { /* cmp eax/rax, imm32: no ModRM */
		out->compare = out->sets_flags = true;
		return found(CHAIN_BRIDGE, i + 5, avail, out);
	}
	if (i + 1 >= avail)
		return CHAIN_END;
	m = code[i + 1];
	if ((m >> 6) != 3)
		return CHAIN_END;
	switch (op) {
	case 0x89:
	case 0x8b: return found(CHAIN_BRIDGE, i + 2, avail, out); /* mov r, r */
	case 0x39:
	case 0x3b:
	case 0x85: break; /* cmp r, r; test r, r */
	case 0x83:	  /* cmp r, imm8 */
	case 0x81:	  /* cmp r, imm32 */
		if (((m >> 3) & 7) != 7)
			return CHAIN_END;
		imm = op == 0x83 ? 1 : 4;
		break;
	case 0xf7: /* test r, imm32 */
		if (((m >> 3) & 7) != 0)
			return CHAIN_END;
		imm = 4;
		break;
	default: return CHAIN_END;
	}
	out->compare = out->sets_flags = true;
	return found(CHAIN_BRIDGE, i + 2 + imm, avail, out);
}

/* The little-endian signed immediate of `n` (1 or 4) bytes at b. */
static s64 imm_at(const u8 *b, unsigned n)
{
	if (n == 1)
		return (s8)b[0];
	return (s32)((u32)b[0] | (u32)b[1] << 8 | (u32)b[2] << 16 | (u32)b[3] << 24);
}

/* A register-form bridge (reg_form) decoded: its opcode, operand size and ModRM registers. */
struct reg_insn {
	struct chain_insn in;
	unsigned i;	  /* the opcode's index */
	u8 op;		  /* the opcode */
	unsigned size;	  /* 4, or 8 with REX.W */
	unsigned reg, rm; /* ModRM reg and r/m with REX.R/B (0 for 3d, which has none) */
};

static bool reg_insn_at(const u8 *code, unsigned avail, struct reg_insn *r)
{
	struct prefixes p = { 0 };

	r->i = parse_prefixes(code, avail, &p);
	r->in = (struct chain_insn){ 0 };
	if (r->i >= avail || reg_form(code, avail, r->i, &p, &r->in) != CHAIN_BRIDGE)
		return false;
	r->op = code[r->i];
	r->size = (p.rex & 8) ? 8 : 4;
	r->reg = r->rm = 0;
	if (r->op != 0x3d) {
		r->reg = ((code[r->i + 1] >> 3) & 7) | ((p.rex & 4) ? 8 : 0);
		r->rm = (code[r->i + 1] & 7) | ((p.rex & 1) ? 8 : 0);
	}
	return true;
}

bool chain_compare(const u8 *code, unsigned avail, const u64 gpr[16], u64 *rflags)
{
	struct reg_insn r;
	const u8 *imm;
	u64 a, b;

	if (!reg_insn_at(code, avail, &r) || !r.in.compare)
		return false;
	imm = code + r.i + (r.op == 0x3d ? 1 : 2);
	switch (r.op) {
	case 0x3d:
		a = gpr[0];
		b = (u64)imm_at(imm, 4);
		break;
	case 0x83:
		a = gpr[r.rm];
		b = (u64)imm_at(imm, 1);
		break;
	case 0x81:
	case 0xf7:
		a = gpr[r.rm];
		b = (u64)imm_at(imm, 4);
		break;
	case 0x3b: /* cmp r, r/m: reg is the minuend */
		a = gpr[r.reg];
		b = gpr[r.rm];
		break;
	default: /* 39, 85: r/m, r */
		a = gpr[r.rm];
		b = gpr[r.reg];
		break;
	}
	a = flags_trunc(a, r.size);
	b = flags_trunc(b, r.size);
	if (r.op == 0x85 || r.op == 0xf7)
		flags_logic(a & b, r.size, rflags);
	else
		flags_sub(a, b, 0, r.size, rflags);
	return true;
}

bool chain_mov_reg(const u8 *code, unsigned avail, unsigned *dst, unsigned *src, unsigned *size)
{
	struct reg_insn r;

	if (!reg_insn_at(code, avail, &r) || (r.op != 0x89 && r.op != 0x8b))
		return false;
	*dst = r.op == 0x89 ? r.rm : r.reg; /* 89: r/m <- r; 8b: r <- r/m */
	*src = r.op == 0x89 ? r.reg : r.rm;
	*size = r.size;
	return true;
}

/* f3 [REX.W] a4/a5: rep movsb, rep movsd, rep movsq. */
static enum chain_class rep_movs(const u8 *code, unsigned avail, unsigned i,
				 const struct prefixes *p, struct chain_insn *out)
{
	if (!p->f3 || p->opsize || p->seg || p->cs || (p->rex & 7))
		return CHAIN_END;
	out->rep_size = code[i] == 0xa4 ? 1 : (p->rex & 8) ? 8 : 4;
	return found(CHAIN_BRIDGE, i + 1, avail, out);
}

/* 0f xx at code[i]: the privileged two-byte opcodes, nops and the fs/gs base group. */
static enum chain_class two_byte(const u8 *code, unsigned avail, unsigned i, unsigned flags,
				 const struct prefixes *p, struct chain_insn *out)
{
	bool legacy = has_legacy(p);
	u8 m;

	if (i >= avail)
		return CHAIN_END;
	if (code[i] == 0x1f) { /* nop m (0f 1f /0): 66 and 2e are padding there */
		unsigned n;

		if (p->f3 || p->seg || i + 1 >= avail || ((code[i + 1] >> 3) & 7) != 0 ||
		    (code[i + 1] >> 6) == 3) /* the register form: capstone rejects it, so do we */
			return CHAIN_END;
		n = modrm_len(code + i + 1, avail - i - 1);
		return n ? found(CHAIN_NOP, i + 1 + n, avail, out) : CHAIN_END;
	}
	if (p->f3) { /* f3 [REX] 0f ae /0-/3, mod = 3: rd/wr fs/gs base */
		if (p->opsize || p->seg || p->cs || code[i] != 0xae || i + 1 >= avail)
			return CHAIN_END;
		m = code[i + 1];
		if ((m >> 6) != 3 || ((m >> 3) & 7) > 3)
			return CHAIN_END;
		return found(CHAIN_BRIDGE, i + 2, avail, out);
	}
	if (legacy)
		return CHAIN_END;
	if ((code[i] & 0xf0) == 0x80) { /* jcc rel32 */
		if (!(flags & CHAIN_USER_ACCESS) || p->rex || i + 5 > avail)
			return CHAIN_END;
		out->cc = code[i] & 0xf;
		out->rel = (s32)imm_at(code + i + 1, 4);
		return found(CHAIN_BRANCH, i + 5, avail, out);
	}
	switch (code[i]) {
	case 0x07: /* sysret: REX.W returns to 64-bit code, without to 32-bit */
		return found(CHAIN_TRAP, i + 1, avail, out);
	case 0x30: /* wrmsr */
	case 0x32: /* rdmsr */ return !p->rex ? found(CHAIN_TRAP, i + 1, avail, out) : CHAIN_END;
	case 0x20: /* mov r64, crN (mod is ignored: always a register) */
	case 0x22: /* mov crN, r64 */ return found(CHAIN_TRAP, i + 2, avail, out);
	case 0xae: /* lfence */
		return !p->rex && i + 1 < avail && code[i + 1] == 0xe8
			       ? found(CHAIN_NOP, i + 2, avail, out)
			       : CHAIN_END;
	case 0x01:
		if (p->rex || i + 1 >= avail)
			return CHAIN_END;
		m = code[i + 1];
		if (m == 0xf8 || m == 0xca || m == 0xcb) /* swapgs, clac, stac */
			return found(CHAIN_TRAP, i + 2, avail, out);
		if ((m >> 6) != 3 && ((m >> 3) & 7) == 7) { /* invlpg m8 */
			unsigned n = modrm_len(code + i + 1, avail - i - 1);

			return n ? found(CHAIN_TRAP, i + 1 + n, avail, out) : CHAIN_END;
		}
		return CHAIN_END;
	default: return CHAIN_END;
	}
}

enum chain_class chain_classify(const u8 *code, unsigned avail, unsigned flags,
				struct chain_insn *out)
{
	struct prefixes p = { 0 };
	unsigned i = parse_prefixes(code, avail, &p);
	bool bare = i == 0; /* no prefix at all */
	u8 op;

	out->rel = 0;
	out->cc = out->rep_size = 0;
	out->compare = out->sets_flags = false;
	if (i >= avail)
		return CHAIN_END;
	op = code[i];
	if ((op & 0xf0) == 0x70) { /* jcc rel8 */
		if (!(flags & CHAIN_USER_ACCESS) || !bare || avail < 2)
			return CHAIN_END;
		out->cc = op & 0xf;
		out->rel = (s8)code[1];
		return found(CHAIN_BRANCH, 2, avail, out);
	}
	switch (op) {
	case 0x0f: return two_byte(code, avail, i + 1, flags, &p, out);
	case 0xa4: /* rep movsb */
	case 0xa5: /* rep movsd/movsq */
		return flags & CHAIN_USER_ACCESS ? rep_movs(code, avail, i, &p, out) : CHAIN_END;
	case 0x39: /* cmp r/m, r */
	case 0x3b: /* cmp r, r/m */
	case 0x3d: /* cmp eax, imm32 */
	case 0x81: /* cmp r/m, imm32 */
	case 0x85: /* test r/m, r */
	case 0xf7: /* test r/m, imm32 */
		return flags & CHAIN_USER_ACCESS ? reg_form(code, avail, i, &p, out) : CHAIN_END;
	case 0x90: /* nop, 66 nop; with REX.B it is xchg, with f3 pause */
		return !p.rex && !p.f3 && !p.seg && !p.cs ? found(CHAIN_NOP, i + 1, avail, out)
							  : CHAIN_END;
	case 0xf4: /* hlt */ return bare ? found(CHAIN_TRAP, 1, avail, out) : CHAIN_END;
	case 0xfa: /* cli */
	case 0xfb: /* sti */
		return bare && !(flags & CHAIN_NATIVE_IRQFLAGS) ? found(CHAIN_TRAP, 1, avail, out)
								: CHAIN_END;
	case 0x8e: /* mov r16/r32, Sreg (mod = 3): ES, DS, FS, GS; not SS (its shadow), not CS */
		if (!bare || i + 1 >= avail || (code[i + 1] >> 6) != 3 ||
		    !sreg_loadable((code[i + 1] >> 3) & 7))
			return CHAIN_END;
		return found(CHAIN_TRAP, i + 2, avail, out);
	case 0xcf: /* iretq needs REX.W; plain iret is 32-bit */
		return i == 1 && (p.rex & 0x08) ? found(CHAIN_TRAP, 2, avail, out) : CHAIN_END;
	case 0x88:
	case 0x89:
	case 0x8a:
	case 0x8b:
	case 0xc6:
	case 0xc7:
		if (!(flags & CHAIN_USER_ACCESS))
			return CHAIN_END;
		if ((op == 0x89 || op == 0x8b) && i + 1 < avail && (code[i + 1] >> 6) == 3)
			return reg_form(code, avail, i, &p, out);
		return mem_mov(code, avail, i, &p, out);
	case 0x50: /* push r64 (50+r; REX.B: r8-r15) */
	case 0x51:
	case 0x52:
	case 0x53:
	case 0x54:
	case 0x55:
	case 0x56:
	case 0x57:
		if (has_legacy(&p))
			return CHAIN_END;
		return found(CHAIN_BRIDGE, i + 1, avail, out);
	case 0x6a: /* push imm8 */
	case 0x68: /* push imm32 */
		if (has_legacy(&p) || p.rex)
			return CHAIN_END;
		return found(CHAIN_BRIDGE, i + 1 + (op == 0x6a ? 1 : 4), avail, out);
	case 0x83: /* add/sub $imm8 to a stack slot: [rsp] or [rsp + disp]; cmp r, imm8 */
		if (i + 1 < avail && (code[i + 1] >> 6) == 3)
			return flags & CHAIN_USER_ACCESS ? reg_form(code, avail, i, &p, out)
							 : CHAIN_END;
		out->sets_flags = true;
		return stack_alu(code, avail, i, &p, out);
	case 0x58: /* pop r64 (58+r; REX.B: r8-r15), but not pop %rsp */
	case 0x59:
	case 0x5a:
	case 0x5b:
	case 0x5c:
	case 0x5d:
	case 0x5e:
	case 0x5f:
		if (has_legacy(&p) || (op == 0x5c && !(p.rex & 1)))
			return CHAIN_END;
		return found(CHAIN_BRIDGE, i + 1, avail, out);
	case 0x29: /* sub r/m, r */
	case 0x2b: /* sub r, r/m */
	case 0x31: /* xor r/m, r */
	case 0x33: /* xor r, r/m */
		out->sets_flags = true;
		return zero_idiom(code, avail, i, &p, out);
	case 0xeb: /* jmp rel8 */
		if (!bare || avail < 2)
			return CHAIN_END;
		out->rel = (s8)code[1];
		return found(CHAIN_JUMP, 2, avail, out);
	case 0xe9: /* jmp rel32 */
		if (!bare || avail < 5)
			return CHAIN_END;
		out->rel = (s32)imm_at(code + 1, 4);
		return found(CHAIN_JUMP, 5, avail, out);
	default: return CHAIN_END;
	}
}
