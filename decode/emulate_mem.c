// SPDX-License-Identifier: MIT
/*
 * Shadow mode: the instructions whose memory access lands on a
 * write-protected guest page table or on MMIO (decode/emulate.h,
 * EMU_MODE_SHADOW; shared/DESIGN.md "decode/"). Each store goes out once,
 * with its full width, through emu_mem_store (ops->write in shadow mode).
 *
 * 1. mov in every form with a memory operand: r/m <- r, m <- imm, r <- m
 *    (an MMIO read), movabs with a 64-bit offset.
 * 2. movs/stos, with and without rep, at most virt.rep_limit iterations per
 *    call (SDM Vol. 2B REP: RCX, RSI, RDI exact after each iteration; a
 *    fault, the limit or a data breakpoint's hit (its #DB comes after the
 *    iteration, SDM Vol. 3A §17.2.4) leaves RIP on the instruction, with
 *    RF set (§17.3.1.1: it has not completed). A forward rep movs
 *    in 64-bit mode copies RAM to RAM in chunks (movs_chunk), so that a
 *    chained user copy costs a few stores, not one per byte.
 * 3. xchg, cmpxchg.
 * 4. Read-modify-write arithmetic on memory, locked or not: add, adc, sub,
 *    sbb, and, or, xor, inc, dec, neg, not, xadd, bts, btr, btc, and the
 *    read-only cmp, test, bt; flags from decode/flags.c.
 * 5. The zeroing idiom xor/sub r, r (the same register, no memory): a trap
 *    chain bridges over it (decode/chain.h: Linux's __get_user_8 is
 *    `stac; mov (%rax),%rdx; xor %eax,%eax; clac`).
 * 6. push r, push imm, pop r: stack stores and loads; a trap chain's
 *    bridges too (Linux's local_irq_save is `pushf; pop %rax; cli`, and its
 *    sync_core without SERIALIZE builds an iretq frame with pushes).
 * 7. nop in its forms (90, 66 90, 0f 1f /0 with a memory operand that is
 *    never accessed): nothing. Linux pads its paravirt `sti` with one, and
 *    the instruction after an emulated sti is emulated to end its shadow
 *    exactly (vmm/shadow_event.c).
 * 8. The register forms of mov (r <- r, r <- imm), cmp and test (registers
 *    and an immediate, flags only): a trap chain's bridges inside a user
 *    copy (decode/chain.h: `stac; cmp $64,%edx; jb; mov %edx,%ecx;
 *    rep movsb; xor %eax,%eax; clac`).
 *
 * In 32-bit protected mode (shadow mode) the same instructions run with
 * segment bases and 4 GiB wrap-around. LIMITATION: segment limits are not
 * checked there.
 */
#include <string.h>

#include "decode/emulate_internal.h"
#include "decode/flags.h"
#include "shadow/x86.h"

/* String opcodes (SDM Vol. 2B MOVS, STOS): the byte form and the word/dword/qword form. */
#define OP_MOVSB 0xa4
#define OP_MOVS	 0xa5
#define OP_STOSB 0xaa
#define OP_STOS	 0xab
/* Iterations of one rep string per call when virt.rep_limit is 0. */
#define REP_LIMIT_DEFAULT 64

bool emu_lockable(unsigned id)
{
	switch (id) {
	case X86_INS_ADD:
	case X86_INS_ADC:
	case X86_INS_AND:
	case X86_INS_BTC:
	case X86_INS_BTR:
	case X86_INS_BTS:
	case X86_INS_CMPXCHG:
	case X86_INS_CMPXCHG8B:
	case X86_INS_CMPXCHG16B:
	case X86_INS_DEC:
	case X86_INS_INC:
	case X86_INS_NEG:
	case X86_INS_NOT:
	case X86_INS_OR:
	case X86_INS_SBB:
	case X86_INS_SUB:
	case X86_INS_XOR:
	case X86_INS_XADD:
	case X86_INS_XCHG: return true;
	default: return false;
	}
}

/* The value of a register or immediate operand, truncated to `size`. */
static bool value_of(struct insn_ctx *c, const cs_x86_op *op, unsigned size, u64 *v)
{
	const struct reg_slot *s;

	if (op->type == X86_OP_IMM) {
		*v = flags_trunc((u64)op->imm, size);
		return true;
	}
	if (op->type == X86_OP_REG && (s = emu_slot_of(op->reg))) {
		*v = flags_trunc(emu_reg_get(c->cpu, s), size);
		return true;
	}
	return false;
}

static bool valid_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

/* ---- item 1: mov --------------------------------------------------------- */

static enum step do_mov(struct insn_ctx *c)
{
	const cs_x86_op *dst = emu_op(c, 0), *src = emu_op(c, 1);
	const struct reg_slot *s;
	enum step st;
	u64 la, v = 0;

	if (!dst || !src)
		return STEP_UNKNOWN;
	if (dst->type == X86_OP_MEM) {
		unsigned size = dst->size;

		if (!valid_size(size) || !value_of(c, src, size, &v))
			return STEP_UNKNOWN;
		st = emu_operand_la(c, dst, &la);
		if (st != STEP_DONE)
			return st;
		return emu_mem_write(c, la, &v, size, emu_data_access(c->cpu, 0));
	}
	if (dst->type != X86_OP_REG || src->type != X86_OP_MEM || !(s = emu_slot_of(dst->reg)))
		return STEP_UNKNOWN;
	st = emu_operand_la(c, src, &la);
	if (st != STEP_DONE)
		return st;
	st = emu_mem_read(c, la, &v, s->size, emu_data_access(c->cpu, 0));
	if (st != STEP_DONE)
		return st;
	emu_reg_set(c->cpu, s, v);
	return STEP_DONE;
}

/* ---- item 2: movs, stos -------------------------------------------------- */

/* Do [a, a+len) and [b, b+len) share a byte? */
static bool overlaps(const void *a, const void *b, u64 len)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return x < y + len && y < x + len;
}

/*
 * Item 2's chunks: up to `max` elements of a forward rep movs at once, one
 * load and one store of at most EMU_WRITE_MAX bytes within one page of
 * the source and one of the destination; *n = the elements copied. *n = 0
 * where a chunk would not be exact, and the caller copies one element:
 * one element or less fits before a page ends; either side is not RAM
 * (each MMIO access has its own effect); or the two overlap in memory
 * (where a forward copy repeats a pattern that memcpy would not). A chunk
 * ends before an element that touches a data breakpoint (item 7). A fault
 * can only come at the chunk's first element, as it would one by one: each
 * side's translation is one page's, and the source is mapped first.
 */
static enum step movs_chunk(struct insn_ctx *c, u64 src, u64 dst, unsigned size, u64 max,
			    unsigned *n)
{
	u64 bytes = MIN(max * size, (u64)EMU_WRITE_MAX);
	u32 acc = emu_data_access(c->cpu, 0);
	struct mem_ref ms, md;
	u8 buf[EMU_WRITE_MAX];
	enum step st;

	*n = 0;
	bytes = MIN(bytes, PAGE_SIZE - (src & ~PAGE_MASK));
	bytes = MIN(bytes, PAGE_SIZE - (dst & ~PAGE_MASK));
	bytes -= bytes % size;
	/*
	 * A data breakpoint in it: only elements before the one that touches
	 * it, which goes alone, so the string stops after it (item 2).
	 */
	while (bytes > size && (emu_data_watched(c, src, (unsigned)bytes, false) ||
				emu_data_watched(c, dst, (unsigned)bytes, true)))
		bytes = bytes / 2 - (bytes / 2) % size;
	if (bytes <= size)
		return STEP_DONE;
	st = emu_mem_map(c, src, (unsigned)bytes, acc, &ms);
	if (st != STEP_DONE)
		return st;
	st = emu_mem_map(c, dst, (unsigned)bytes, acc | EMU_ACC_WRITE, &md);
	if (st != STEP_DONE)
		return st;
	if (!ms.piece[0].hva || !md.piece[0].hva ||
	    overlaps(ms.piece[0].hva, md.piece[0].hva, bytes))
		return STEP_DONE;
	memcpy(buf, ms.piece[0].hva, bytes);
	st = emu_mem_store(c, &md, buf);
	if (st == STEP_DONE)
		*n = (unsigned)(bytes / size);
	return st;
}

static enum step do_string(struct insn_ctx *c, bool movs)
{
	struct emu_cpu *cpu = c->cpu;
	u8 opc = c->x86->opcode[0];
	bool rep = c->x86->prefix[0] == PREFIX_REP || c->x86->prefix[0] == PREFIX_REPNE;
	unsigned size = (opc == OP_MOVSB || opc == OP_STOSB) ? 1 : emu_opsize(c);
	unsigned limit = emu_rep_limit(cpu, REP_LIMIT_DEFAULT);
	bool l64 = emu_long64(cpu);
	x86_reg src_seg = emu_string_src_seg(c);
	s64 step = (cpu->rflags & RFLAGS_DF) ? -(s64)size : (s64)size;
	u64 mask = emu_addr_mask(c);
	unsigned done = 0;

	if (movs ? (opc != OP_MOVSB && opc != OP_MOVS) : (opc != OP_STOSB && opc != OP_STOS))
		return STEP_UNKNOWN; /* an SSE movsd, not the string instruction */
	while (!rep || (cpu->gpr[EMU_RCX] & mask) != 0) {
		u64 dst = cpu->gpr[EMU_RDI], v = cpu->gpr[EMU_RAX];
		enum step st;

		if (emu_rep_pause(c, rep, done, limit))
			return STEP_DONE;
		if (movs) {
			u64 src;

			st = emu_string_la(c, src_seg, EMU_RSI, size, &src);
			if (st != STEP_DONE)
				return st;
			/* 64-bit addressing: ES has no base, dst is RDI. */
			if (rep && l64 && step > 0 && mask == ~0ull && emu_is_canonical(dst) &&
			    emu_is_canonical(dst + size - 1)) {
				unsigned n;

				st = movs_chunk(c, src, dst, size,
						MIN(cpu->gpr[EMU_RCX], (u64)(limit - done)), &n);
				if (st != STEP_DONE)
					return st;
				if (n) {
					emu_set_at_addr_size(c, EMU_RDI,
							     cpu->gpr[EMU_RDI] + (u64)n * size);
					emu_set_at_addr_size(c, EMU_RSI,
							     cpu->gpr[EMU_RSI] + (u64)n * size);
					emu_set_at_addr_size(c, EMU_RCX, cpu->gpr[EMU_RCX] - n);
					cpu->dirty |= EMU_DIRTY_REGS;
					done += n;
					continue;
				}
			}
			st = emu_mem_read(c, src, &v, size, emu_data_access(cpu, 0));
			if (st != STEP_DONE)
				return st;
		}
		/* The destination's checks come after the source's read, as in the CPU. */
		st = emu_string_la(c, X86_REG_ES, EMU_RDI, size, &dst);
		if (st != STEP_DONE)
			return st;
		st = emu_mem_write(c, dst, &v, size, emu_data_access(cpu, 0));
		if (st != STEP_DONE)
			return st;
		emu_set_at_addr_size(c, EMU_RDI, cpu->gpr[EMU_RDI] + (u64)step);
		if (movs)
			emu_set_at_addr_size(c, EMU_RSI, cpu->gpr[EMU_RSI] + (u64)step);
		cpu->dirty |= EMU_DIRTY_REGS;
		if (!rep)
			break;
		emu_set_at_addr_size(c, EMU_RCX, cpu->gpr[EMU_RCX] - 1);
		done++;
	}
	return STEP_DONE;
}

/* ---- items 3, 4: read-modify-write --------------------------------------- */

/* The memory destination (operand 0) of a read-modify-write, mapped and read. */
struct rmw {
	struct mem_ref m;
	unsigned size;
	u64 old;
};

static enum step rmw_begin(struct insn_ctx *c, const cs_x86_op *op, s64 bit_disp, bool write,
			   struct rmw *r)
{
	enum step st;
	u64 la;

	if (!op || op->type != X86_OP_MEM || !valid_size(op->size))
		return STEP_UNKNOWN;
	r->size = op->size;
	r->old = 0;
	st = emu_operand_la(c, op, &la);
	if (st != STEP_DONE)
		return st;
	if (bit_disp) {
		la += (u64)bit_disp;
		if (!emu_long64(c->cpu))
			la = (u32)la;
		else if (!emu_is_canonical(la))
			return emu_raise(c, EXC_GP(0));
	}
	st = emu_mem_map(c, la, r->size, emu_data_access(c->cpu, write ? EMU_ACC_WRITE : 0), &r->m);
	if (st != STEP_DONE)
		return st;
	emu_note_data_hits(c, la, r->size, write);
	return emu_mem_load(c, &r->m, &r->old);
}

static enum step rmw_end(struct insn_ctx *c, const struct rmw *r, u64 v)
{
	return emu_mem_store(c, &r->m, &v);
}

/* add/adc/sub/sbb/and/or/xor/cmp/test m, r/imm */
static enum step do_alu(struct insn_ctx *c, unsigned id)
{
	const cs_x86_op *src = emu_op(c, 1);
	u64 *fl = &c->cpu->rflags, cf = (*fl & RFLAGS_CF) ? 1 : 0, b, res;
	bool store = id != X86_INS_CMP && id != X86_INS_TEST;
	struct rmw r;
	enum step st;

	if (!src)
		return STEP_UNKNOWN;
	st = rmw_begin(c, emu_op(c, 0), 0, store, &r);
	if (st != STEP_DONE)
		return st;
	if (!value_of(c, src, r.size, &b))
		return STEP_UNKNOWN;
	switch (id) {
	case X86_INS_ADD: res = flags_add(r.old, b, 0, r.size, fl); break;
	case X86_INS_ADC: res = flags_add(r.old, b, (unsigned)cf, r.size, fl); break;
	case X86_INS_SUB:
	case X86_INS_CMP: res = flags_sub(r.old, b, 0, r.size, fl); break;
	case X86_INS_SBB: res = flags_sub(r.old, b, (unsigned)cf, r.size, fl); break;
	case X86_INS_AND:
	case X86_INS_TEST: res = flags_logic(r.old & b, r.size, fl); break;
	case X86_INS_OR: res = flags_logic(r.old | b, r.size, fl); break;
	default: res = flags_logic(r.old ^ b, r.size, fl); break;
	}
	return store ? rmw_end(c, &r, res) : STEP_DONE;
}

/*
 * cmp r, m: the register less the memory operand (Linux's
 * this_cpu_cmpxchg16b_emu reads its per-CPU words so, vmm/call_cx16.c).
 * A read only; test r, m is test m, r to capstone.
 */
static enum step do_cmp_reg_mem(struct insn_ctx *c)
{
	const cs_x86_op *dst = emu_op(c, 0);
	struct rmw r;
	enum step st;
	u64 a;

	if (!dst || dst->type != X86_OP_REG)
		return STEP_UNKNOWN;
	st = rmw_begin(c, emu_op(c, 1), 0, false, &r);
	if (st != STEP_DONE)
		return st;
	if (!value_of(c, dst, r.size, &a))
		return STEP_UNKNOWN;
	flags_sub(a, r.old, 0, r.size, &c->cpu->rflags);
	return STEP_DONE;
}

/* inc/dec/neg/not m */
static enum step do_unary(struct insn_ctx *c, unsigned id)
{
	u64 *fl = &c->cpu->rflags, res;
	struct rmw r;
	enum step st = rmw_begin(c, emu_op(c, 0), 0, true, &r);

	if (st != STEP_DONE)
		return st;
	switch (id) {
	case X86_INS_INC: res = flags_inc(r.old, r.size, fl); break;
	case X86_INS_DEC: res = flags_dec(r.old, r.size, fl); break;
	case X86_INS_NEG: res = flags_neg(r.old, r.size, fl); break;
	default: res = flags_trunc(~r.old, r.size); break; /* not: no flags */
	}
	return rmw_end(c, &r, res);
}

/* The register operand `i` (not AH..BH mixed with wider sizes), or NULL. */
static const struct reg_slot *reg_op(struct insn_ctx *c, unsigned i)
{
	const cs_x86_op *op = emu_op(c, i);

	return op && op->type == X86_OP_REG ? emu_slot_of(op->reg) : NULL;
}

/* xchg m, r (or r, m): always locked; no flags (SDM Vol. 2B XCHG). */
static enum step do_xchg(struct insn_ctx *c)
{
	bool mem_first = emu_op(c, 0) && emu_op(c, 0)->type == X86_OP_MEM;
	const struct reg_slot *s = reg_op(c, mem_first ? 1 : 0);
	struct rmw r;
	enum step st;

	if (!s)
		return STEP_UNKNOWN;
	st = rmw_begin(c, emu_op(c, mem_first ? 0 : 1), 0, true, &r);
	if (st != STEP_DONE)
		return st;
	st = rmw_end(c, &r, emu_reg_get(c->cpu, s));
	if (st == STEP_DONE)
		emu_reg_set(c->cpu, s, r.old);
	return st;
}

/*
 * cmpxchg m, r (SDM Vol. 2A CMPXCHG): flags of cmp accumulator, m; equal:
 * m = r; else the accumulator = m and m is written back unchanged.
 */
static enum step do_cmpxchg(struct insn_ctx *c)
{
	const struct reg_slot *s = reg_op(c, 1), *acc;
	static const struct reg_slot accs[9] = {
		[1] = { EMU_RAX, 1, 0, 1 },
		[2] = { EMU_RAX, 2, 0, 1 },
		[4] = { EMU_RAX, 4, 0, 1 },
		[8] = { EMU_RAX, 8, 0, 1 },
	};
	struct rmw r;
	enum step st;
	u64 a;

	if (!s)
		return STEP_UNKNOWN;
	st = rmw_begin(c, emu_op(c, 0), 0, true, &r);
	if (st != STEP_DONE)
		return st;
	acc = &accs[r.size];
	a = emu_reg_get(c->cpu, acc);
	flags_sub(a, r.old, 0, r.size, &c->cpu->rflags);
	if (a == r.old)
		return rmw_end(c, &r, emu_reg_get(c->cpu, s));
	st = rmw_end(c, &r, r.old);
	if (st == STEP_DONE)
		emu_reg_set(c->cpu, acc, r.old);
	return st;
}

/* xadd m, r: m = m + r, r = old m; flags of the add (SDM Vol. 2B XADD). */
static enum step do_xadd(struct insn_ctx *c)
{
	const struct reg_slot *s = reg_op(c, 1);
	struct rmw r;
	enum step st;
	u64 sum;

	if (!s)
		return STEP_UNKNOWN;
	st = rmw_begin(c, emu_op(c, 0), 0, true, &r);
	if (st != STEP_DONE)
		return st;
	sum = flags_add(r.old, flags_trunc(emu_reg_get(c->cpu, s), r.size), 0, r.size,
			&c->cpu->rflags);
	st = rmw_end(c, &r, sum);
	if (st == STEP_DONE)
		emu_reg_set(c->cpu, s, r.old);
	return st;
}

/*
 * bt/bts/btr/btc m, r/imm (SDM Vol. 2A BT): CF = the selected bit; an
 * immediate offset is taken modulo the operand width, a register offset is
 * signed and may select a bit outside the operand (bit-string addressing,
 * Vol. 1 §3.5.1). ZF is kept; OF, SF, AF, PF are left as they were.
 */
static enum step do_bit(struct insn_ctx *c, unsigned id)
{
	const cs_x86_op *mem = emu_op(c, 0), *src = emu_op(c, 1);
	unsigned bits, bit;
	s64 disp = 0;
	struct rmw r;
	enum step st;
	u64 res;

	if (!mem || !src || mem->type != X86_OP_MEM || !valid_size(mem->size) || mem->size == 1)
		return STEP_UNKNOWN;
	bits = 8 * mem->size;
	if (src->type == X86_OP_IMM) {
		bit = (unsigned)src->imm & (bits - 1);
	} else {
		const struct reg_slot *s = reg_op(c, 1);
		s64 off;

		if (!s)
			return STEP_UNKNOWN;
		off = s->size == 8   ? (s64)emu_reg_get(c->cpu, s)
		      : s->size == 4 ? (s32)emu_reg_get(c->cpu, s)
				     : (s16)emu_reg_get(c->cpu, s);
		/* Arithmetic shift: floor division by the width, for negative offsets too. */
		disp = (off >> __builtin_ctz(bits)) * (s64)mem->size;
		bit = (unsigned)(off & (bits - 1));
	}
	st = rmw_begin(c, mem, disp, id != X86_INS_BT, &r);
	if (st != STEP_DONE)
		return st;
	c->cpu->rflags =
		(r.old >> bit) & 1 ? c->cpu->rflags | RFLAGS_CF : c->cpu->rflags & ~RFLAGS_CF;
	switch (id) {
	case X86_INS_BTS: res = r.old | (1ull << bit); break;
	case X86_INS_BTR: res = r.old & ~(1ull << bit); break;
	case X86_INS_BTC: res = r.old ^ (1ull << bit); break;
	default: return STEP_DONE; /* bt */
	}
	return rmw_end(c, &r, res);
}

/* Item 5: xor/sub r, r: r = 0 (32-bit forms zero-extend), flags of the operation. */
static enum step do_zero_idiom(struct insn_ctx *c, unsigned id)
{
	const cs_x86_op *a = emu_op(c, 0), *b = emu_op(c, 1);
	const struct reg_slot *s;

	if (!a || !b || a->type != X86_OP_REG || b->type != X86_OP_REG || a->reg != b->reg ||
	    !(s = emu_slot_of(a->reg)))
		return STEP_UNKNOWN;
	if (id == X86_INS_XOR)
		flags_logic(0, s->size, &c->cpu->rflags);
	else
		flags_sub(emu_reg_get(c->cpu, s), emu_reg_get(c->cpu, s), 0, s->size,
			  &c->cpu->rflags);
	emu_reg_set(c->cpu, s, 0);
	return STEP_DONE;
}

/*
 * Item 6: push r16/r32/r64 and push imm8/imm16/imm32 (sign-extended to the
 * operand size) (SDM Vol. 2B PUSH). push %rsp stores RSP as it was before
 * the push; push m is left out (unknown).
 */
static enum step do_push(struct insn_ctx *c)
{
	const cs_x86_op *op = emu_op(c, 0);
	struct emu_cpu *cpu = c->cpu;
	const struct reg_slot *s;
	unsigned size;
	u64 v;

	if (!op)
		return STEP_UNKNOWN;
	if (op->type == X86_OP_REG) {
		if (!(s = emu_slot_of(op->reg)) || s->high8 || s->size < 2)
			return STEP_UNKNOWN;
		size = s->size;
		v = emu_reg_get(cpu, s);
	} else if (op->type == X86_OP_IMM && (op->size == 2 || op->size == 4 || op->size == 8)) {
		size = emu_stack_opsize(c);
		/* At most an imm32, sign-extended (capstone 4 does not, after 66 REX.W). */
		v = (u64)(s64)(s32)op->imm;
	} else {
		return STEP_UNKNOWN;
	}
	return emu_push(c, v, size);
}

/* Item 6: pop r16/r32/r64 (SDM Vol. 2B POP). pop %rsp/%esp/%sp is left out (unknown). */
static enum step do_pop_gpr(struct insn_ctx *c)
{
	const cs_x86_op *op = emu_op(c, 0);
	const struct reg_slot *s;
	struct emu_cpu *cpu = c->cpu;
	u64 sp = cpu->gpr[EMU_RSP], v = 0, la;
	enum step st;

	if (!op || op->type != X86_OP_REG || !(s = emu_slot_of(op->reg)) || s->gpr == EMU_RSP ||
	    s->high8 || s->size < 2)
		return STEP_UNKNOWN;
	st = emu_stack_la(c, 0, s->size, &la);
	if (st != STEP_DONE)
		return st;
	st = emu_mem_read(c, la, &v, s->size, emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	emu_set_sp(cpu, sp + s->size);
	emu_reg_set(cpu, s, v);
	return STEP_DONE;
}

/* Item 8: mov r, r/imm; cmp and test of a register with a register or an immediate. */
static enum step do_reg_form(struct insn_ctx *c, unsigned id)
{
	const cs_x86_op *a = emu_op(c, 0), *b = emu_op(c, 1);
	const struct reg_slot *s;
	u64 va, vb;

	if (!a || !b || a->type != X86_OP_REG || !(s = emu_slot_of(a->reg)) ||
	    !value_of(c, b, s->size, &vb))
		return STEP_UNKNOWN;
	if (id == X86_INS_MOV || id == X86_INS_MOVABS) {
		emu_reg_set(c->cpu, s, vb);
		return STEP_DONE;
	}
	va = flags_trunc(emu_reg_get(c->cpu, s), s->size);
	if (id == X86_INS_CMP)
		flags_sub(va, vb, 0, s->size, &c->cpu->rflags);
	else
		flags_logic(va & vb, s->size, &c->cpu->rflags);
	return STEP_DONE;
}

static bool has_mem_operand(struct insn_ctx *c)
{
	for (unsigned i = 0; i < c->x86->op_count; i++)
		if (c->x86->operands[i].type == X86_OP_MEM)
			return true;
	return false;
}

enum step emu_dispatch_mem(struct insn_ctx *c)
{
	unsigned id = c->insn->id;

	switch (id) {
	case X86_INS_MOVSB:
	case X86_INS_MOVSW:
	case X86_INS_MOVSD:
	case X86_INS_MOVSQ: return do_string(c, true);
	case X86_INS_STOSB:
	case X86_INS_STOSW:
	case X86_INS_STOSD:
	case X86_INS_STOSQ: return do_string(c, false);
	case X86_INS_POP: return do_pop_gpr(c);
	case X86_INS_PUSH: return do_push(c);
	case X86_INS_NOP: return STEP_DONE; /* item 7 (lock: #UD, emulate.c) */
	default: break;
	}
	/* Everything below touches memory through an explicit operand. */
	if (!has_mem_operand(c)) {
		switch (id) {
		case X86_INS_XOR:
		case X86_INS_SUB: return do_zero_idiom(c, id);
		case X86_INS_MOV:
		case X86_INS_MOVABS: /* mov r64, imm64 */
		case X86_INS_CMP:
		case X86_INS_TEST: return do_reg_form(c, id);
		default: return STEP_UNKNOWN;
		}
	}
	switch (id) {
	case X86_INS_MOV:
	case X86_INS_MOVABS: return do_mov(c);
	case X86_INS_ADD:
	case X86_INS_ADC:
	case X86_INS_SUB:
	case X86_INS_SBB:
	case X86_INS_AND:
	case X86_INS_OR:
	case X86_INS_XOR:
	case X86_INS_TEST: return emu_op(c, 0)->type == X86_OP_MEM ? do_alu(c, id) : STEP_UNKNOWN;
	case X86_INS_CMP:
		return emu_op(c, 0)->type == X86_OP_MEM ? do_alu(c, id) : do_cmp_reg_mem(c);
	case X86_INS_INC:
	case X86_INS_DEC:
	case X86_INS_NEG:
	case X86_INS_NOT: return do_unary(c, id);
	case X86_INS_XCHG: return do_xchg(c);
	case X86_INS_CMPXCHG: return do_cmpxchg(c);
	case X86_INS_XADD: return do_xadd(c);
	case X86_INS_BT:
	case X86_INS_BTS:
	case X86_INS_BTR:
	case X86_INS_BTC: return do_bit(c, id);
	default: return STEP_UNKNOWN;
	}
}
