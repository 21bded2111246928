// SPDX-License-Identifier: MIT
/*
 * The VMM's instruction emulator (decode/emulate.h).
 *
 * 1. Fetch the instruction bytes at CS:RIP through ops->map and decode them
 *    with capstone in detail mode.
 * 2. Compute the linear address of a memory operand and check that it is
 *    canonical (SDM Vol. 1 §3.3.7.1): #GP(0), or #SS(0) for stack references.
 * 3. Read and write guest memory through ops->map, page by page; a write is
 *    made only after every page it touches has translated.
 * 4. Emulate the whitelist, one handler per instruction, each checking its
 *    own CPL and prefix rules (SDM Vol. 2 entry of each instruction).
 * 5. Raise the exceptions an instruction causes through ops->deliver.
 * 6. Deliver an event through the guest IDT in IA-32e mode
 *    (emu_deliver_event, SDM Vol. 3A §6.14), with the double-fault rules of
 *    §6.15 Table 6-5.
 *
 * Every handler works on a copy of the CPU state; the caller's copy is only
 * replaced when the whole instruction (or the delivery of its fault) is done.
 *
 * Uses the architectural constants of shadow/x86.h (header only: decode/
 * does not link against shadow/).
 */
#include <capstone/capstone.h>
#include <stdio.h>
#include <string.h>

#include "decode/emulate.h"
#include "shadow/x86.h"

#define X86_MAX_INSN_LEN 15
#define PREFIX_LOCK	 0xf0

/* IDT gate and segment descriptor fields (SDM Vol. 3A §3.4.5, §6.14.1). */
#define IDT_ENTRY_SIZE	     16
#define GATE_TYPE_INTR64     0xe
#define GATE_TYPE_TRAP64     0xf
#define DESC_TYPE_CODE	     (1u << 3) /* in the 4-bit type field, S = 1 */
#define DESC_TYPE_CONFORMING (1u << 2) /* code segments */
#define SEL_RPL_MASK	     3u
#define SEL_TI		     (1u << 2)
#define SEL_INDEX_MASK	     (~7u)
/* Error code of a fault that names an IDT vector (SDM Vol. 3A §6.13). */
#define ERR_EXT (1u << 0)
#define ERR_IDT (1u << 1)
/* 64-bit TSS (SDM Vol. 3A §7.7, Figure 7-11). */
#define TSS64_RSP0 0x04
#define TSS64_IST1 0x24

/* ---- helpers ------------------------------------------------------------- */

static unsigned cpl_of(const struct emu_cpu *cpu)
{
	return cpu->cs.sel & SEL_RPL_MASK;
}

static bool is_canonical(u64 la)
{
	/* 48-bit linear addresses: bits 63:47 all equal (LA57 is not supported). */
	return (u64)((s64)(la << 16) >> 16) == la;
}

static struct emu_event exception(u8 vector, bool has_err, u32 err)
{
	return (struct emu_event){ .kind = EMU_EV_EXCEPTION,
				   .vector = vector,
				   .has_error_code = has_err,
				   .error_code = err };
}

#define EXC_UD()  exception(X86_EXC_UD, false, 0)
#define EXC_GP(e) exception(X86_EXC_GP, true, (e))
#define EXC_SS(e) exception(X86_EXC_SS, true, (e))
#define EXC_NP(e) exception(X86_EXC_NP, true, (e))
#define EXC_TS(e) exception(X86_EXC_TS, true, (e))

/* The access bits every explicit data access of the instruction carries. */
static u32 data_access(const struct emu_cpu *cpu, u32 acc)
{
	if (cpl_of(cpu) == 3)
		return acc | EMU_ACC_USER;
	if (cpu->rflags & RFLAGS_AC)
		acc |= EMU_ACC_AC;
	return acc;
}

/*
 * Item 3. Map [la, la+len) for `acc`, page by page: up to two pieces.
 * Returns EMU_MAP_OK with the pieces in hva[], len0 bytes in the first.
 */
static enum emu_map_result map_range(const struct emu_ops *ops, u64 la, unsigned len, u32 acc,
				     void *hva[2], unsigned *len0, struct emu_event *fault)
{
	unsigned first = (unsigned)MIN((u64)len, PAGE_SIZE - (la & ~PAGE_MASK));
	enum emu_map_result r;

	hva[1] = NULL;
	*len0 = first;
	r = ops->map(ops->opaque, la, first, acc, &hva[0], fault);
	if (r != EMU_MAP_OK || first == len)
		return r;
	return ops->map(ops->opaque, la + first, len - first, acc, &hva[1], fault);
}

static enum emu_map_result mem_read(const struct emu_ops *ops, u64 la, void *buf, unsigned len,
				    u32 acc, struct emu_event *fault)
{
	void *hva[2];
	unsigned len0;
	enum emu_map_result r = map_range(ops, la, len, acc, hva, &len0, fault);

	if (r == EMU_MAP_OK) {
		memcpy(buf, hva[0], len0);
		if (len0 < len)
			memcpy((u8 *)buf + len0, hva[1], len - len0);
	}
	return r;
}

static enum emu_map_result mem_write(const struct emu_ops *ops, u64 la, const void *buf,
				     unsigned len, u32 acc, struct emu_event *fault)
{
	void *hva[2];
	unsigned len0;
	enum emu_map_result r = map_range(ops, la, len, acc | EMU_ACC_WRITE, hva, &len0, fault);

	if (r == EMU_MAP_OK) {
		memcpy(hva[0], buf, len0);
		if (len0 < len)
			memcpy(hva[1], (const u8 *)buf + len0, len - len0);
	}
	return r;
}

/* ---- registers ----------------------------------------------------------- */

/* A capstone register: which GPR, its width in bytes, and whether it is AH..BH. */
struct reg_slot {
	u8 gpr, size, high8, valid;
};

#define R64(cs, g) [X86_REG_##cs] = { g, 8, 0, 1 }
#define R32(cs, g) [X86_REG_##cs] = { g, 4, 0, 1 }
#define R16(cs, g) [X86_REG_##cs] = { g, 2, 0, 1 }
#define R8(cs, g)  [X86_REG_##cs] = { g, 1, 0, 1 }
#define R8H(cs, g) [X86_REG_##cs] = { g, 1, 1, 1 }

static const struct reg_slot reg_slots[X86_REG_ENDING] = {
	R64(RAX, EMU_RAX),  R64(RCX, EMU_RCX),	R64(RDX, EMU_RDX),  R64(RBX, EMU_RBX),
	R64(RSP, EMU_RSP),  R64(RBP, EMU_RBP),	R64(RSI, EMU_RSI),  R64(RDI, EMU_RDI),
	R64(R8, EMU_R8),    R64(R9, EMU_R9),	R64(R10, EMU_R10),  R64(R11, EMU_R11),
	R64(R12, EMU_R12),  R64(R13, EMU_R13),	R64(R14, EMU_R14),  R64(R15, EMU_R15),
	R32(EAX, EMU_RAX),  R32(ECX, EMU_RCX),	R32(EDX, EMU_RDX),  R32(EBX, EMU_RBX),
	R32(ESP, EMU_RSP),  R32(EBP, EMU_RBP),	R32(ESI, EMU_RSI),  R32(EDI, EMU_RDI),
	R32(R8D, EMU_R8),   R32(R9D, EMU_R9),	R32(R10D, EMU_R10), R32(R11D, EMU_R11),
	R32(R12D, EMU_R12), R32(R13D, EMU_R13), R32(R14D, EMU_R14), R32(R15D, EMU_R15),
	R16(AX, EMU_RAX),   R16(CX, EMU_RCX),	R16(DX, EMU_RDX),   R16(BX, EMU_RBX),
	R16(SP, EMU_RSP),   R16(BP, EMU_RBP),	R16(SI, EMU_RSI),   R16(DI, EMU_RDI),
	R16(R8W, EMU_R8),   R16(R9W, EMU_R9),	R16(R10W, EMU_R10), R16(R11W, EMU_R11),
	R16(R12W, EMU_R12), R16(R13W, EMU_R13), R16(R14W, EMU_R14), R16(R15W, EMU_R15),
	R8(AL, EMU_RAX),    R8(CL, EMU_RCX),	R8(DL, EMU_RDX),    R8(BL, EMU_RBX),
	R8(SPL, EMU_RSP),   R8(BPL, EMU_RBP),	R8(SIL, EMU_RSI),   R8(DIL, EMU_RDI),
	R8(R8B, EMU_R8),    R8(R9B, EMU_R9),	R8(R10B, EMU_R10),  R8(R11B, EMU_R11),
	R8(R12B, EMU_R12),  R8(R13B, EMU_R13),	R8(R14B, EMU_R14),  R8(R15B, EMU_R15),
	R8H(AH, EMU_RAX),   R8H(CH, EMU_RCX),	R8H(DH, EMU_RDX),   R8H(BH, EMU_RBX),
};

static const struct reg_slot *slot_of(x86_reg reg)
{
	if (reg <= X86_REG_INVALID || reg >= X86_REG_ENDING || !reg_slots[reg].valid)
		return NULL;
	return &reg_slots[reg];
}

static u64 reg_get(const struct emu_cpu *cpu, const struct reg_slot *s)
{
	u64 v = cpu->gpr[s->gpr];

	if (s->high8)
		return (v >> 8) & 0xff;
	return s->size == 8 ? v : v & ((1ull << (8 * s->size)) - 1);
}

/* A register write as the CPU does it: 32-bit writes zero-extend, 8/16-bit ones merge. */
static void reg_set(struct emu_cpu *cpu, const struct reg_slot *s, u64 v)
{
	u64 *r = &cpu->gpr[s->gpr];

	if (s->high8)
		*r = (*r & ~0xff00ull) | ((v & 0xff) << 8);
	else if (s->size == 8)
		*r = v;
	else if (s->size == 4)
		*r = (u32)v;
	else
		*r = (*r & ~((1ull << (8 * s->size)) - 1)) | (v & ((1ull << (8 * s->size)) - 1));
	cpu->dirty |= EMU_DIRTY_REGS;
}

/* ---- item 2: memory operands --------------------------------------------- */

struct insn_ctx {
	struct emu_cpu *cpu;
	const struct emu_ops *ops;
	const cs_insn *insn;
	const cs_x86 *x86;
	u64 next_rip;
	struct emu_event fault; /* set when a handler returns STEP_FAULT */
};

enum step { STEP_DONE, STEP_FAULT, STEP_UNKNOWN, STEP_NOT_RAM, STEP_HOST_ERROR };

static enum step raise(struct insn_ctx *c, struct emu_event ev)
{
	c->fault = ev;
	return STEP_FAULT;
}

static enum step map_fail(struct insn_ctx *c, enum emu_map_result r, const struct emu_event *f)
{
	if (r == EMU_MAP_FAULT)
		return raise(c, *f);
	return STEP_NOT_RAM;
}

/*
 * The linear address of memory operand `op`. Returns STEP_DONE, or a fault:
 * #GP(0) for a non-canonical address, #SS(0) if the segment is SS.
 */
static enum step operand_la(struct insn_ctx *c, const cs_x86_op *op, u64 *la)
{
	const x86_op_mem *m = &op->mem;
	const struct reg_slot *s;
	x86_reg seg = m->segment;
	u64 ea = (u64)m->disp;

	if (op->type != X86_OP_MEM)
		return STEP_UNKNOWN;
	if (m->base == X86_REG_RIP || m->base == X86_REG_EIP) {
		ea += c->next_rip;
	} else if (m->base != X86_REG_INVALID) {
		if (!(s = slot_of(m->base)))
			return STEP_UNKNOWN;
		ea += reg_get(c->cpu, s);
		if (seg == X86_REG_INVALID && (s->gpr == EMU_RSP || s->gpr == EMU_RBP))
			seg = X86_REG_SS;
	}
	if (m->index != X86_REG_INVALID) {
		if (!(s = slot_of(m->index)))
			return STEP_UNKNOWN;
		ea += reg_get(c->cpu, s) * (u64)m->scale;
	}
	if (c->x86->addr_size == 4)
		ea = (u32)ea;
	else if (c->x86->addr_size != 8)
		return STEP_UNKNOWN;
	/* In 64-bit mode only FS and GS have a base (SDM Vol. 1 §3.4.2.1). */
	if (seg == X86_REG_FS)
		ea += c->cpu->fs_base;
	else if (seg == X86_REG_GS)
		ea += c->cpu->gs_base;
	*la = ea;
	if (!is_canonical(ea))
		return raise(c, seg == X86_REG_SS ? EXC_SS(0) : EXC_GP(0));
	return STEP_DONE;
}

/* ---- item 4: the instructions -------------------------------------------- */

static const cs_x86_op *op_at(struct insn_ctx *c, unsigned i)
{
	return i < c->x86->op_count ? &c->x86->operands[i] : NULL;
}

/* clac/stac: RFLAGS.AC; #UD at CPL > 0 (SDM Vol. 2A CLAC, Vol. 2B STAC). */
static enum step do_clac_stac(struct insn_ctx *c, bool set)
{
	if (cpl_of(c->cpu) != 0)
		return raise(c, EXC_UD());
	c->cpu->rflags = set ? c->cpu->rflags | RFLAGS_AC : c->cpu->rflags & ~RFLAGS_AC;
	return STEP_DONE;
}

/* xgetbv: #UD if CR4.OSXSAVE = 0, #GP(0) for an XCR that does not exist; any CPL. */
static enum step do_xgetbv(struct insn_ctx *c)
{
	u64 v;

	if (!(c->cpu->cr4 & CR4_OSXSAVE))
		return raise(c, EXC_UD());
	if (!c->ops->read_xcr(c->ops->opaque, (u32)c->cpu->gpr[EMU_RCX], &v))
		return raise(c, EXC_GP(0));
	c->cpu->gpr[EMU_RAX] = (u32)v;
	c->cpu->gpr[EMU_RDX] = v >> 32;
	return STEP_DONE;
}

static u64 bswap_n(u64 v, unsigned size)
{
	switch (size) {
	case 2: return __builtin_bswap16((u16)v);
	case 4: return __builtin_bswap32((u32)v);
	default: return __builtin_bswap64(v);
	}
}

/* movbe r, m / movbe m, r: a load or store with the bytes reversed; any CPL. */
static enum step do_movbe(struct insn_ctx *c)
{
	const cs_x86_op *dst = op_at(c, 0), *src = op_at(c, 1);
	bool load = dst && dst->type == X86_OP_REG;
	const cs_x86_op *mem = load ? src : dst, *reg = load ? dst : src;
	const struct reg_slot *s;
	struct emu_event f;
	enum emu_map_result mr;
	enum step st;
	u64 la, v = 0;

	if (!mem || !reg || reg->type != X86_OP_REG || !(s = slot_of(reg->reg)) || s->high8 ||
	    s->size < 2)
		return STEP_UNKNOWN;
	st = operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	if (load) {
		mr = mem_read(c->ops, la, &v, s->size, data_access(c->cpu, 0), &f);
		if (mr != EMU_MAP_OK)
			return map_fail(c, mr, &f);
		reg_set(c->cpu, s, bswap_n(v, s->size));
	} else {
		v = bswap_n(reg_get(c->cpu, s), s->size);
		mr = mem_write(c->ops, la, &v, s->size, data_access(c->cpu, 0), &f);
		if (mr != EMU_MAP_OK)
			return map_fail(c, mr, &f);
	}
	return STEP_DONE;
}

/* An atomic 16-byte compare-exchange on host memory (16-byte aligned). */
static bool cas16(void *p, u64 *lo, u64 *hi, u64 new_lo, u64 new_hi)
{
	bool ok;

	asm volatile("lock cmpxchg16b %1"
		     : "=@ccz"(ok), "+m"(*(volatile unsigned __int128 *)p), "+a"(*lo), "+d"(*hi)
		     : "b"(new_lo), "c"(new_hi)
		     : "memory");
	return ok;
}

/*
 * cmpxchg8b m64 / cmpxchg16b m128 (SDM Vol. 2A CMPXCHG8B/CMPXCHG16B): compare
 * EDX:EAX (RDX:RAX) with the operand; equal: ZF = 1 and store ECX:EBX
 * (RCX:RBX); else ZF = 0 and load the operand into EDX:EAX (RDX:RAX). The
 * operand gets a write cycle either way, so it is translated for writing.
 * cmpxchg16b needs a 16-byte aligned operand (#GP(0)). Any CPL. The host
 * operation is atomic when the operand lies in one page (always for 16b).
 */
static enum step do_cmpxchg_wide(struct insn_ctx *c, unsigned size)
{
	const cs_x86_op *mem = op_at(c, 0);
	u64 *g = c->cpu->gpr;
	struct emu_event f;
	enum emu_map_result mr;
	void *hva[2];
	unsigned len0;
	enum step st;
	bool eq;
	u64 la;

	if (!mem)
		return STEP_UNKNOWN;
	st = operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	if (size == 16 && (la & 15))
		return raise(c, EXC_GP(0));
	mr = map_range(c->ops, la, size, data_access(c->cpu, EMU_ACC_WRITE), hva, &len0, &f);
	if (mr != EMU_MAP_OK)
		return map_fail(c, mr, &f);
	if (size == 16) {
		u64 lo = g[EMU_RAX], hi = g[EMU_RDX];

		eq = cas16(hva[0], &lo, &hi, g[EMU_RBX], g[EMU_RCX]);
		if (!eq) {
			g[EMU_RAX] = lo;
			g[EMU_RDX] = hi;
		}
	} else {
		u64 expect = (g[EMU_RDX] << 32) | (u32)g[EMU_RAX];
		u64 want = (g[EMU_RCX] << 32) | (u32)g[EMU_RBX];
		u64 old;

		if (len0 == size) {
			old = expect;
			eq = __atomic_compare_exchange_n((u64 *)hva[0], &old, want, false,
							 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		} else {
			/* LIMITATION: a split-page cmpxchg8b is not atomic on the host. */
			memcpy(&old, hva[0], len0);
			memcpy((u8 *)&old + len0, hva[1], size - len0);
			eq = old == expect;
			if (eq) {
				memcpy(hva[0], &want, len0);
				memcpy(hva[1], (u8 *)&want + len0, size - len0);
			}
		}
		if (!eq) {
			g[EMU_RAX] = (u32)old;
			g[EMU_RDX] = old >> 32;
		}
	}
	c->cpu->rflags = eq ? c->cpu->rflags | RFLAGS_ZF : c->cpu->rflags & ~RFLAGS_ZF;
	return STEP_DONE;
}

/*
 * clflush/clflushopt/clwb m8: no architectural effect the guest can see on
 * our hosts, but the operand must translate like a read (a #PF otherwise);
 * an operand outside RAM (MMIO) is fine. Any CPL.
 */
static enum step do_cache_line(struct insn_ctx *c)
{
	const cs_x86_op *mem = op_at(c, 0);
	struct emu_event f;
	enum emu_map_result mr;
	enum step st;
	void *hva;
	u64 la;

	if (!mem)
		return STEP_UNKNOWN;
	st = operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	mr = c->ops->map(c->ops->opaque, la, 1, data_access(c->cpu, 0), &hva, &f);
	if (mr == EMU_MAP_FAULT)
		return raise(c, f);
	return STEP_DONE;
}

/*
 * invpcid r64, m128 (SDM Vol. 2A INVPCID): #GP(0) at CPL > 0, for a type
 * above 3, for descriptor bits 63:12 not 0, for a non-canonical address with
 * type 0, and for a nonzero PCID with type 0 or 1 when CR4.PCIDE = 0.
 */
static enum step do_invpcid(struct insn_ctx *c)
{
	const cs_x86_op *reg = op_at(c, 0), *mem = op_at(c, 1);
	const struct reg_slot *s;
	struct emu_event f;
	enum emu_map_result mr;
	enum step st;
	u64 desc[2], type, la;

	if (!reg || reg->type != X86_OP_REG || !(s = slot_of(reg->reg)) || !mem)
		return STEP_UNKNOWN;
	if (cpl_of(c->cpu) != 0)
		return raise(c, EXC_GP(0));
	st = operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	type = reg_get(c->cpu, s);
	mr = mem_read(c->ops, la, desc, sizeof(desc), data_access(c->cpu, 0), &f);
	if (mr != EMU_MAP_OK)
		return map_fail(c, mr, &f);
	if (type > 3 || (desc[0] & ~CR3_PCID_MASK))
		return raise(c, EXC_GP(0));
	if (type == 0 && !is_canonical(desc[1]))
		return raise(c, EXC_GP(0));
	if (type <= 1 && !(c->cpu->cr4 & CR4_PCIDE) && desc[0] != 0)
		return raise(c, EXC_GP(0));
	if (!c->ops->flush_tlb(c->ops->opaque, (unsigned)type, desc[0], desc[1]))
		return STEP_HOST_ERROR;
	return STEP_DONE;
}

/* ---- item 6: event delivery ---------------------------------------------- */

enum exc_class { EXC_BENIGN, EXC_CONTRIBUTORY, EXC_PAGE_FAULT, EXC_DOUBLE };

/* SDM Vol. 3A §6.15, Table 6-4. */
static enum exc_class class_of(const struct emu_event *ev)
{
	if (ev->kind != EMU_EV_EXCEPTION)
		return EXC_BENIGN;
	switch (ev->vector) {
	case X86_EXC_DE:
	case X86_EXC_TS:
	case X86_EXC_NP:
	case X86_EXC_SS:
	case X86_EXC_GP: return EXC_CONTRIBUTORY;
	case X86_EXC_PF: return EXC_PAGE_FAULT;
	case X86_EXC_DF: return EXC_DOUBLE;
	default: return EXC_BENIGN;
	}
}

/* Fault-class exceptions set RF in the pushed RFLAGS image (SDM Vol. 3A §17.3.1.1). */
static bool is_fault_class(const struct emu_event *ev)
{
	if (ev->kind != EMU_EV_EXCEPTION)
		return false;
	switch (ev->vector) {
	case X86_EXC_DB:
	case X86_EXC_NMI:
	case X86_EXC_BP:
	case X86_EXC_OF:
	case X86_EXC_DF:
	case X86_EXC_MC: return false;
	default: return true;
	}
}

/* An implicit supervisor read of a system structure (IDT, GDT, TSS). */
static enum step sys_read(struct insn_ctx *c, u64 la, void *buf, unsigned len)
{
	struct emu_event f;
	enum emu_map_result mr = mem_read(c->ops, la, buf, len, 0, &f);

	return mr == EMU_MAP_OK ? STEP_DONE : map_fail(c, mr, &f);
}

static void set_code_seg(struct emu_seg *cs, u16 sel, u64 desc, unsigned cpl)
{
	u32 limit = (u32)((desc & 0xffff) | ((desc >> 32) & 0xf0000));
	bool g = (desc >> 55) & 1;

	*cs = (struct emu_seg){
		.base = 0, /* ignored in 64-bit mode */
		.limit = g ? (limit << 12) | 0xfff : limit,
		.sel = (u16)((sel & ~SEL_RPL_MASK) | cpl),
		.type = (desc >> 40) & 0xf,
		.s = 1,
		.dpl = (desc >> 45) & 3,
		.present = 1,
		.avl = (desc >> 52) & 1,
		.l = 1,
		.db = 0,
		.g = g,
	};
}

/*
 * One delivery attempt of `ev` on c->cpu (SDM Vol. 3A §6.14.1-§6.14.5).
 * STEP_FAULT: c->fault is the fault that stopped it; c->cpu may be partly
 * changed (only CR2), which is what the CPU does too.
 */
static enum step deliver_once(struct insn_ctx *c, const struct emu_event *ev)
{
	struct emu_cpu *cpu = c->cpu;
	u32 ext = ev->kind == EMU_EV_EXCEPTION ? ERR_EXT : 0;
	u32 idt_err = (u32)ev->vector * 8 + ERR_IDT + ext;
	unsigned cpl = cpl_of(cpu), new_cpl, ist, gate_type, n = 0;
	u64 gate[2], desc, offset, rsp, frame[6], rflags;
	u16 sel;
	enum step st;

	if (ev->has_cr2) {
		cpu->cr2 = ev->cr2;
		cpu->dirty |= EMU_DIRTY_SREGS;
	}
	if ((u32)ev->vector * IDT_ENTRY_SIZE + IDT_ENTRY_SIZE - 1 > cpu->idt_limit)
		return raise(c, EXC_GP(idt_err));
	st = sys_read(c, cpu->idt_base + (u64)ev->vector * IDT_ENTRY_SIZE, gate, sizeof(gate));
	if (st != STEP_DONE)
		return st;
	offset = (gate[0] & 0xffff) | ((gate[0] >> 32) & 0xffff0000) | (gate[1] << 32);
	sel = (u16)(gate[0] >> 16);
	ist = (gate[0] >> 32) & 7;
	gate_type = (gate[0] >> 40) & 0xf;
	if (gate_type != GATE_TYPE_INTR64 && gate_type != GATE_TYPE_TRAP64)
		return raise(c, EXC_GP(idt_err));
	/* Software interrupts: the gate's DPL must allow the caller (§6.12.1.1). */
	if (ev->kind == EMU_EV_SOFT_INT && ((gate[0] >> 45) & 3) < cpl)
		return raise(c, EXC_GP(idt_err));
	if (!((gate[0] >> 47) & 1))
		return raise(c, EXC_NP(idt_err));
	/* The target code segment. LIMITATION: LDT selectors are refused with #GP. */
	if (!(sel & SEL_INDEX_MASK) || (sel & SEL_TI))
		return raise(c, EXC_GP((sel & SEL_INDEX_MASK & 0xffff) + ext));
	if ((u32)(sel | 7) > cpu->gdt_limit)
		return raise(c, EXC_GP((sel & 0xfffc) + ext));
	st = sys_read(c, cpu->gdt_base + (sel & 0xfff8), &desc, sizeof(desc));
	if (st != STEP_DONE)
		return st;
	if (!((desc >> 44) & 1) || !((desc >> 40) & DESC_TYPE_CODE) || !((desc >> 53) & 1) ||
	    ((desc >> 54) & 1) || ((desc >> 45) & 3) > cpl)
		return raise(c, EXC_GP((sel & 0xfffc) + ext));
	if (!((desc >> 47) & 1))
		return raise(c, EXC_NP((sel & 0xfffc) + ext));
	new_cpl = ((desc >> 40) & DESC_TYPE_CONFORMING) ? cpl : (desc >> 45) & 3;
	if (!is_canonical(offset))
		return raise(c, EXC_GP(ext));

	/* The stack: IST if the gate names one, else TSS.RSPn on a privilege change. */
	rsp = cpu->gpr[EMU_RSP];
	if (ist || new_cpl < cpl) {
		u64 off = ist ? TSS64_IST1 + (ist - 1) * 8ull : TSS64_RSP0 + new_cpl * 8ull;

		if (off + 7 > cpu->tr_limit)
			return raise(c, EXC_TS((cpu->tr_sel & 0xfffc) + ext));
		st = sys_read(c, cpu->tr_base + off, &rsp, sizeof(rsp));
		if (st != STEP_DONE)
			return st;
	}
	if (!is_canonical(rsp))
		return raise(c, EXC_SS(ext));
	rsp &= ~15ull; /* IA-32e aligns the new stack to 16 bytes (§6.14.2) */

	rflags = cpu->rflags;
	if (is_fault_class(ev))
		rflags |= RFLAGS_RF;
	if (ev->has_error_code)
		frame[n++] = ev->error_code;
	frame[n++] = cpu->rip;
	frame[n++] = cpu->cs.sel;
	frame[n++] = rflags;
	frame[n++] = cpu->gpr[EMU_RSP];
	frame[n++] = cpu->ss.sel;
	{
		struct emu_event f;
		enum emu_map_result mr = mem_write(c->ops, rsp - 8 * n, frame, 8 * n,
						   new_cpl == 3 ? EMU_ACC_USER : 0, &f);

		if (mr != EMU_MAP_OK)
			return map_fail(c, mr, &f);
	}

	/* Commit: the new CS:RIP, SS:RSP and RFLAGS. */
	if (new_cpl != cpl) {
		cpu->ss = (struct emu_seg){ .sel = (u16)new_cpl,
					    .dpl = (u8)new_cpl,
					    .type = 3,
					    .s = 1,
					    .present = 1,
					    .db = 1,
					    .g = 1,
					    .limit = 0xffffffff };
	}
	set_code_seg(&cpu->cs, sel, desc, new_cpl);
	cpu->gpr[EMU_RSP] = rsp - 8 * n;
	cpu->rip = offset;
	cpu->rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
	if (gate_type == GATE_TYPE_INTR64)
		cpu->rflags &= ~RFLAGS_IF;
	cpu->dirty |= EMU_DIRTY_REGS | EMU_DIRTY_SREGS;
	return STEP_DONE;
}

enum emu_result emu_deliver_event(struct emu_cpu *cpu, const struct emu_ops *ops,
				  const struct emu_event *ev)
{
	struct emu_cpu work = *cpu;
	struct insn_ctx c = { .cpu = &work, .ops = ops };
	struct emu_event cur = *ev;

	for (;;) {
		enum step st = deliver_once(&c, &cur);
		enum exc_class first = class_of(&cur), second;

		if (st == STEP_DONE)
			break;
		if (st == STEP_NOT_RAM)
			return EMU_UNHANDLED_MEM;
		if (st != STEP_FAULT)
			return EMU_HOST_ERROR;
		/*
		 * A fault while delivering int n / int3 (a gate DPL, a stack page)
		 * is a fault of that instruction: its frame holds the instruction's
		 * own RIP (SDM Vol. 3A §6.12.1.1).
		 */
		if (cur.kind == EMU_EV_SOFT_INT)
			work.rip -= cur.insn_len;
		second = class_of(&c.fault);
		if (first == EXC_DOUBLE && second != EXC_BENIGN)
			return EMU_TRIPLE_FAULT;
		if ((first == EXC_CONTRIBUTORY && second == EXC_CONTRIBUTORY) ||
		    (first == EXC_PAGE_FAULT && second != EXC_BENIGN))
			cur = exception(X86_EXC_DF, true, 0);
		else
			cur = c.fault;
	}
	*cpu = work;
	return EMU_DONE;
}

/* ---- items 1, 4, 5: one instruction -------------------------------------- */

static csh cs_handle_64;

static bool capstone_ready(void)
{
	if (cs_handle_64)
		return true;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs_handle_64) != CS_ERR_OK) {
		cs_handle_64 = 0;
		return false;
	}
	cs_option(cs_handle_64, CS_OPT_DETAIL, CS_OPT_ON);
	return true;
}

/* Item 1: copy up to 15 bytes at CS:RIP; stops at the first page that does not translate. */
static unsigned fetch(const struct emu_cpu *cpu, const struct emu_ops *ops, u8 *buf,
		      struct emu_event *fault, bool *faulted)
{
	u64 la = cpu->cs.base + cpu->rip;
	u32 acc = EMU_ACC_FETCH | (cpl_of(cpu) == 3 ? EMU_ACC_USER : 0);
	unsigned done = 0;

	*faulted = false;
	while (done < X86_MAX_INSN_LEN) {
		unsigned chunk = (unsigned)MIN((u64)(X86_MAX_INSN_LEN - done),
					       PAGE_SIZE - ((la + done) & ~PAGE_MASK));
		enum emu_map_result r;
		void *hva;

		if (!is_canonical(la + done))
			break;
		r = ops->map(ops->opaque, la + done, chunk, acc, &hva, fault);
		if (r != EMU_MAP_OK) {
			*faulted = r == EMU_MAP_FAULT;
			break;
		}
		memcpy(buf + done, hva, chunk);
		done += chunk;
	}
	return done;
}

static enum step dispatch(struct insn_ctx *c)
{
	unsigned id = c->insn->id;

	if (c->x86->prefix[0] == PREFIX_LOCK && id != X86_INS_CMPXCHG16B && id != X86_INS_CMPXCHG8B)
		return raise(c, EXC_UD());
	switch (id) {
	case X86_INS_CLAC: return do_clac_stac(c, false);
	case X86_INS_STAC: return do_clac_stac(c, true);
	case X86_INS_XGETBV: return do_xgetbv(c);
	case X86_INS_MOVBE: return do_movbe(c);
	case X86_INS_CMPXCHG16B: return do_cmpxchg_wide(c, 16);
	case X86_INS_CMPXCHG8B: return do_cmpxchg_wide(c, 8);
	case X86_INS_CLFLUSH:
	case X86_INS_CLFLUSHOPT:
	case X86_INS_CLWB: return do_cache_line(c);
	case X86_INS_INVPCID: return do_invpcid(c);
	default: return STEP_UNKNOWN;
	}
}

static enum emu_result deliver(const struct emu_ops *ops, struct emu_cpu *cpu,
			       const struct emu_event *ev)
{
	return ops->deliver(ops->opaque, cpu, ev);
}

enum emu_result emu_insn(struct emu_cpu *cpu, const struct emu_ops *ops, struct emu_report *rep)
{
	struct emu_cpu work = *cpu;
	struct insn_ctx c = { .cpu = &work, .ops = ops };
	struct emu_event fetch_fault;
	u8 code[X86_MAX_INSN_LEN];
	bool fetch_faulted;
	unsigned n;
	cs_insn *insn = NULL;
	enum emu_result r;
	enum step st;

	memset(rep, 0, sizeof(*rep));
	if (!(cpu->efer & EFER_LMA) || !cpu->cs.l)
		return EMU_UNKNOWN;
	if (!capstone_ready())
		return EMU_HOST_ERROR;
	n = fetch(cpu, ops, code, &fetch_fault, &fetch_faulted);
	if (cs_disasm(cs_handle_64, code, n, cpu->rip, 1, &insn) != 1) {
		if (!fetch_faulted)
			return EMU_UNKNOWN;
		/* The instruction runs into a page that does not translate: its #PF. */
		rep->faulted = true;
		rep->fault_vector = fetch_fault.vector;
		snprintf(rep->mnemonic, sizeof(rep->mnemonic), "fetch");
		return deliver(ops, cpu, &fetch_fault);
	}
	/* The instruction's name without prefixes ("cmpxchg16b", not "lock cmpxchg16b"). */
	snprintf(rep->mnemonic, sizeof(rep->mnemonic), "%s", cs_insn_name(cs_handle_64, insn->id));
	c.insn = insn;
	c.x86 = &insn->detail->x86;
	c.next_rip = cpu->rip + insn->size;

	if (insn->id == X86_INS_INT || insn->id == X86_INS_INT3) {
		/* int n / int3: the frame holds the next RIP; the gate DPL is checked. */
		struct emu_event ev = { .kind = EMU_EV_SOFT_INT,
					.insn_len = insn->size,
					.vector = insn->id == X86_INS_INT3
							  ? X86_EXC_BP
							  : (u8)c.x86->operands[0].imm };
		bool lock = c.x86->prefix[0] == PREFIX_LOCK;

		cs_free(insn, 1);
		if (lock) {
			struct emu_event ud = EXC_UD();

			rep->faulted = true;
			rep->fault_vector = ud.vector;
			return deliver(ops, cpu, &ud);
		}
		work.rip = c.next_rip;
		work.rflags &= ~RFLAGS_RF;
		r = deliver(ops, &work, &ev);
		if (r == EMU_DONE)
			*cpu = work;
		return r;
	}

	st = dispatch(&c);
	cs_free(insn, 1);
	switch (st) {
	case STEP_DONE:
		work.rip = c.next_rip;
		work.rflags &= ~RFLAGS_RF; /* the instruction completed (SDM §17.3.1.1) */
		work.dirty |= EMU_DIRTY_REGS;
		*cpu = work;
		return EMU_DONE;
	case STEP_FAULT:
		rep->faulted = true;
		rep->fault_vector = c.fault.vector;
		/* A fault leaves the state as before the instruction (CR2 aside). */
		return deliver(ops, cpu, &c.fault);
	case STEP_NOT_RAM: return EMU_UNHANDLED_MEM;
	case STEP_HOST_ERROR: return EMU_HOST_ERROR;
	case STEP_UNKNOWN:
	default: return EMU_UNKNOWN;
	}
}
