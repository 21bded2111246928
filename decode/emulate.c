// SPDX-License-Identifier: MIT
/*
 * The VMM's instruction emulator (decode/emulate.h): the core.
 *
 * 1. Fetch the instruction bytes at CS:RIP through ops->map and decode them
 *    with capstone in detail mode.
 * 2. Compute the linear address of a memory operand and check that it is
 *    canonical (SDM Vol. 1 §3.3.7.1): #GP(0), or #SS(0) for stack references.
 * 3. Read and write guest memory, page by page; a store is made only after
 *    every page it touches has translated. hw mode goes through ops->map
 *    and host pointers; shadow mode through ops->map_phys, ops->mmio_read
 *    and ops->write, which sees each store once with its gpa and bytes.
 * 4. Dispatch: the instructions of both modes (emulate_common.c), then in
 *    shadow mode the privileged ones (emulate_priv.c), the system ones
 *    (emulate_sys.c, emulate_xfer.c), the memory-write whitelist
 *    (emulate_mem.c) and the port instructions (emulate_io.c); each
 *    handler checks its own CPL and prefix rules (SDM Vol. 2 entry of each
 *    instruction).
 * 5. Raise the exceptions an instruction causes through ops->deliver (the
 *    exact path is emu_deliver_event in emulate_event.c), and tell the VMM
 *    what changed (emu_report.notes).
 * 6. Shadow mode: the single-step trap (SDM Vol. 3A §17.3.1.4). An
 *    instruction that completes with RFLAGS.TF set at its start is
 *    followed by a #DB with DR6.BS set, at the next instruction (a rep
 *    string runs one iteration first, and RIP stays on it while any are
 *    left). Not after a mov or pop to SS (the trap waits one instruction,
 *    which runs natively with TF still set), nor after hlt; syscall traps
 *    by its resulting TF, which SFMASK may clear (Xen's XSA-204); int n,
 *    int3 and faults clear TF as they are delivered.
 * 7. Shadow mode: data breakpoints (decode/debugreg.h). An instruction
 *    whose own reads or writes touch an enabled data breakpoint of the
 *    virtual DR0-DR3 is followed by a #DB with DR6.Bn set, as the CPU's
 *    would be for the same access at real CPL3; every form of access
 *    counts (read-modify-write, cmpxchg16b, strings, ins/outs). A rep
 *    string stops after the iteration that hit (RIP on it, RF set).
 * 8. Shadow mode: instruction breakpoints, before the instruction, unless
 *    RFLAGS.RF is set. The VMM sets RF for an instruction that trapped
 *    (the CPU checked its breakpoints already), so only the instructions
 *    it runs ahead (chained) are checked here.
 * 9. Shadow mode: general detect. A mov to or from a debug register while
 *    DR7.GD is set is a #DB fault before it (emulate_priv.c); as it is
 *    delivered DR6.BD is set, B0-B3 cleared (as KVM's emulator does), GD
 *    cleared so that the handler may use the registers, and RF pushed set
 *    (a fault other than an instruction breakpoint, §17.3.1.1).
 *
 * Every handler works on a copy of the CPU state; the caller's copy is only
 * replaced when the whole instruction (or the delivery of its fault) is done.
 *
 * Uses the architectural constants of shadow/x86.h (header only: decode/
 * does not link against shadow/).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "decode/debugreg.h"
#include "decode/emulate_internal.h"
#include "shadow/x86.h"

/* ---- helpers ------------------------------------------------------------- */

unsigned emu_cpl_of(const struct emu_cpu *cpu)
{
	return cpu->cs.sel & SEL_RPL_MASK;
}

bool emu_is_canonical(u64 la)
{
	/* 48-bit linear addresses: bits 63:47 all equal (LA57 is not supported). */
	return (u64)((s64)(la << 16) >> 16) == la;
}

bool emu_long64(const struct emu_cpu *cpu)
{
	return (cpu->efer & EFER_LMA) && cpu->cs.l;
}

u64 emu_seg_base(const struct emu_cpu *cpu, x86_reg seg)
{
	switch (seg) {
	case X86_REG_CS: return cpu->cs.base;
	case X86_REG_SS: return cpu->ss.base;
	case X86_REG_ES: return cpu->virt.es_base;
	case X86_REG_FS: return cpu->fs_base;
	case X86_REG_GS: return cpu->gs_base;
	default: return cpu->virt.ds_base;
	}
}

/*
 * The stack: SS:RSP in 64-bit mode, SS:ESP (SS.B = 1) in protected mode
 * (SDM Vol. 3A §6.2.3). LIMITATION: 16-bit stacks (SS.B = 0) are refused.
 */
enum step emu_stack_la(struct insn_ctx *c, s64 delta, unsigned len, u64 *la)
{
	const struct emu_cpu *cpu = c->cpu;
	u64 sp = cpu->gpr[EMU_RSP] + (u64)delta;

	if (emu_long64(cpu)) {
		if (!emu_is_canonical(sp) || !emu_is_canonical(sp + len - 1))
			return emu_raise(c, EXC_SS(0));
		*la = sp;
		return STEP_DONE;
	}
	if (!cpu->ss.db)
		return STEP_UNKNOWN;
	*la = (u32)(cpu->ss.base + (u32)sp);
	return STEP_DONE;
}

enum step emu_push(struct insn_ctx *c, u64 v, unsigned size)
{
	u64 la;
	enum step st = emu_stack_la(c, -(s64)size, size, &la);

	if (st != STEP_DONE)
		return st;
	st = emu_mem_write(c, la, &v, size, emu_data_access(c->cpu, 0));
	if (st != STEP_DONE)
		return st;
	emu_set_sp(c->cpu, c->cpu->gpr[EMU_RSP] - size);
	return STEP_DONE;
}

void emu_set_sp(struct emu_cpu *cpu, u64 sp)
{
	cpu->gpr[EMU_RSP] = emu_long64(cpu) ? sp : (u32)sp;
}

struct emu_event emu_exception(u8 vector, bool has_err, u32 err)
{
	return (struct emu_event){ .kind = EMU_EV_EXCEPTION,
				   .vector = vector,
				   .has_error_code = has_err,
				   .error_code = err };
}

/* The access bits every explicit data access of the instruction carries. */
u32 emu_data_access(const struct emu_cpu *cpu, u32 acc)
{
	if (emu_cpl_of(cpu) == 3)
		return acc | EMU_ACC_USER;
	if (cpu->rflags & RFLAGS_AC)
		acc |= EMU_ACC_AC;
	return acc;
}

unsigned emu_rep_limit(const struct emu_cpu *cpu, unsigned dflt)
{
	if (cpu->rflags & RFLAGS_TF)
		return 1;
	return cpu->virt.rep_limit ? cpu->virt.rep_limit : dflt;
}

bool emu_rep_pause(struct insn_ctx *c, bool rep, unsigned done, unsigned limit)
{
	/*
	 * A data breakpoint hit by an iteration stops the string after it: the
	 * #DB comes between iterations (SDM Vol. 3A §17.2.4), RIP on the string.
	 */
	if (rep && (done == limit || (done && c->db_hits))) {
		c->keep_rip = true;
		c->notes |= EMU_NOTE_REP_PARTIAL;
		return true;
	}
	c->fault_after_progress = done > 0;
	return false;
}

unsigned emu_opsize(const struct insn_ctx *c)
{
	return (c->x86->rex & REX_W) ? 8 : c->x86->prefix[2] == OPSIZE_16 ? 2 : 4;
}

unsigned emu_stack_opsize(const struct insn_ctx *c)
{
	bool o16 = c->x86->prefix[2] == OPSIZE_16;

	/* cs_x86.rex is the REX that counts: none when a legacy prefix follows it. */
	if (emu_long64(c->cpu))
		return o16 && !(c->x86->rex & REX_W) ? 2 : 8;
	return o16 ? 2 : 4;
}

u64 emu_addr_mask(const struct insn_ctx *c)
{
	return c->x86->addr_size == 2 ? 0xffffull : c->x86->addr_size == 4 ? 0xffffffffull : ~0ull;
}

void emu_set_at_addr_size(struct insn_ctx *c, enum emu_gpr r, u64 v)
{
	u64 *g = &c->cpu->gpr[r];

	switch (c->x86->addr_size) {
	case 2: *g = (*g & ~0xffffull) | (v & 0xffff); break;
	case 4: *g = v & 0xffffffffull; break;
	default: *g = v; break;
	}
}

x86_reg emu_string_src_seg(const struct insn_ctx *c)
{
	switch (c->x86->prefix[1]) {
	case SEG_ES: return X86_REG_ES;
	case SEG_CS: return X86_REG_CS;
	case SEG_SS: return X86_REG_SS;
	case SEG_FS: return X86_REG_FS;
	case SEG_GS: return X86_REG_GS;
	default: return X86_REG_DS;
	}
}

enum step emu_string_la(struct insn_ctx *c, x86_reg seg, enum emu_gpr idx, unsigned size, u64 *la)
{
	const struct emu_cpu *cpu = c->cpu;
	u64 off = cpu->gpr[idx] & emu_addr_mask(c);

	if (!emu_long64(cpu)) {
		*la = (u32)(emu_seg_base(cpu, seg) + off);
		return STEP_DONE;
	}
	*la = (seg == X86_REG_FS || seg == X86_REG_GS) ? emu_seg_base(cpu, seg) + off : off;
	if (!emu_is_canonical(*la) || !emu_is_canonical(*la + size - 1))
		return emu_raise(c, seg == X86_REG_SS ? EXC_SS(0) : EXC_GP(0));
	return STEP_DONE;
}

enum step emu_raise(struct insn_ctx *c, struct emu_event ev)
{
	c->fault = ev;
	return STEP_FAULT;
}

/* ---- item 3: memory ------------------------------------------------------ */

static enum step map_piece(struct insn_ctx *c, u64 la, unsigned len, u32 acc, struct emu_piece *p)
{
	const struct emu_ops *ops = c->ops;
	struct emu_event f;
	enum emu_map_result r;

	p->gpa = gpa(0);
	p->hva = NULL;
	p->len = len;
	if (ops->map_phys)
		r = ops->map_phys(ops->opaque, la, len, acc, &p->gpa, &p->hva, &f);
	else
		r = ops->map(ops->opaque, la, len, acc, &p->hva, &f);
	if (r == EMU_MAP_FAULT)
		return emu_raise(c, f);
	if (r != EMU_MAP_OK || (!ops->map_phys && !p->hva))
		return STEP_NOT_RAM;
	return STEP_DONE;
}

enum step emu_mem_map(struct insn_ctx *c, u64 la, unsigned len, u32 acc, struct mem_ref *m)
{
	unsigned first = (unsigned)MIN((u64)len, PAGE_SIZE - (la & ~PAGE_MASK));
	enum step st;

	m->la = la;
	m->len = len;
	m->npieces = first == len ? 1 : 2;
	st = map_piece(c, la, first, acc, &m->piece[0]);
	m->piece[0].off = 0;
	if (st != STEP_DONE || m->npieces == 1)
		return st;
	m->piece[1].off = first;
	return map_piece(c, la + first, len - first, acc, &m->piece[1]);
}

enum step emu_mem_load(struct insn_ctx *c, const struct mem_ref *m, void *buf)
{
	for (unsigned i = 0; i < m->npieces; i++) {
		const struct emu_piece *p = &m->piece[i];
		u8 *dst = (u8 *)buf + p->off;

		if (p->hva)
			memcpy(dst, p->hva, p->len);
		else if (!c->ops->mmio_read ||
			 !c->ops->mmio_read(c->ops->opaque, p->gpa, dst, p->len))
			return STEP_NOT_RAM;
	}
	return STEP_DONE;
}

enum step emu_mem_store(struct insn_ctx *c, const struct mem_ref *m, const void *buf)
{
	struct emu_write w;

	if (!c->ops->map_phys) {
		/* hw mode: every piece is RAM (emu_mem_map refused the rest). */
		for (unsigned i = 0; i < m->npieces; i++)
			memcpy(m->piece[i].hva, (const u8 *)buf + m->piece[i].off, m->piece[i].len);
		return STEP_DONE;
	}
	if (m->len > EMU_WRITE_MAX)
		return STEP_UNKNOWN;
	memset(&w, 0, sizeof(w));
	w.la = m->la;
	w.len = m->len;
	w.npieces = m->npieces;
	memcpy(w.piece, m->piece, sizeof(w.piece));
	for (unsigned i = 0; i < m->npieces; i++)
		if (m->piece[i].hva)
			memcpy(w.old_bytes + m->piece[i].off, m->piece[i].hva, m->piece[i].len);
	memcpy(w.new_bytes, buf, m->len);
	return c->ops->write(c->ops->opaque, &w) ? STEP_DONE : STEP_NOT_RAM;
}

unsigned emu_data_watched(const struct insn_ctx *c, u64 la, unsigned len, bool write)
{
	const struct emu_cpu *cpu = c->cpu;

	if (cpu->mode != EMU_MODE_SHADOW || !dr7_enabled(cpu->virt.dr7))
		return 0;
	return dr_data_hits(cpu->virt.dr, cpu->virt.dr7, la, len, write);
}

void emu_note_data_hits(struct insn_ctx *c, u64 la, unsigned len, bool write)
{
	c->db_hits |= emu_data_watched(c, la, len, write);
}

enum step emu_mem_read(struct insn_ctx *c, u64 la, void *buf, unsigned len, u32 acc)
{
	struct mem_ref m;
	enum step st = emu_mem_map(c, la, len, acc, &m);

	if (st != STEP_DONE)
		return st;
	emu_note_data_hits(c, la, len, false);
	return emu_mem_load(c, &m, buf);
}

enum step emu_mem_write(struct insn_ctx *c, u64 la, const void *buf, unsigned len, u32 acc)
{
	struct mem_ref m;
	enum step st = emu_mem_map(c, la, len, acc | EMU_ACC_WRITE, &m);

	if (st != STEP_DONE)
		return st;
	emu_note_data_hits(c, la, len, true);
	return emu_mem_store(c, &m, buf);
}

enum step emu_sys_read(struct insn_ctx *c, u64 la, void *buf, unsigned len)
{
	struct mem_ref m;
	enum step st = emu_mem_map(c, la, len, 0, &m);

	return st == STEP_DONE ? emu_mem_load(c, &m, buf) : st;
}

bool emu_write_apply(const struct emu_write *w)
{
	bool all_ram = true;

	for (unsigned i = 0; i < w->npieces; i++) {
		if (w->piece[i].hva)
			memcpy(w->piece[i].hva, w->new_bytes + w->piece[i].off, w->piece[i].len);
		else
			all_ram = false;
	}
	return all_ram;
}

/* ---- registers ----------------------------------------------------------- */

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

const struct reg_slot *emu_slot_of(x86_reg reg)
{
	if (reg <= X86_REG_INVALID || reg >= X86_REG_ENDING || !reg_slots[reg].valid)
		return NULL;
	return &reg_slots[reg];
}

u64 emu_reg_get(const struct emu_cpu *cpu, const struct reg_slot *s)
{
	u64 v = cpu->gpr[s->gpr];

	if (s->high8)
		return (v >> 8) & 0xff;
	return s->size == 8 ? v : v & ((1ull << (8 * s->size)) - 1);
}

/* A register write as the CPU does it: 32-bit writes zero-extend, 8/16-bit ones merge. */
void emu_reg_set(struct emu_cpu *cpu, const struct reg_slot *s, u64 v)
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

/*
 * The linear address of memory operand `op`. Returns STEP_DONE, or a fault:
 * #GP(0) for a non-canonical address, #SS(0) if the segment is SS.
 */
enum step emu_operand_la(struct insn_ctx *c, const cs_x86_op *op, u64 *la)
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
		if (!(s = emu_slot_of(m->base)))
			return STEP_UNKNOWN;
		ea += emu_reg_get(c->cpu, s);
		if (seg == X86_REG_INVALID && (s->gpr == EMU_RSP || s->gpr == EMU_RBP))
			seg = X86_REG_SS;
	}
	if (m->index != X86_REG_INVALID) {
		if (!(s = emu_slot_of(m->index)))
			return STEP_UNKNOWN;
		ea += emu_reg_get(c->cpu, s) * (u64)m->scale;
	}
	if (c->x86->addr_size == 4)
		ea = (u32)ea;
	else if (c->x86->addr_size != 8)
		return STEP_UNKNOWN;
	if (!emu_long64(c->cpu)) {
		/* Protected mode: every segment has a base; addresses wrap at 4 GiB. */
		*la = (u32)(emu_seg_base(c->cpu, seg == X86_REG_INVALID ? X86_REG_DS : seg) + ea);
		return STEP_DONE;
	}
	/* In 64-bit mode only FS and GS have a base (SDM Vol. 1 §3.4.2.1). */
	if (seg == X86_REG_FS)
		ea += c->cpu->fs_base;
	else if (seg == X86_REG_GS)
		ea += c->cpu->gs_base;
	*la = ea;
	if (!emu_is_canonical(ea))
		return emu_raise(c, seg == X86_REG_SS ? EXC_SS(0) : EXC_GP(0));
	return STEP_DONE;
}

/* ---- item 4: the instructions -------------------------------------------- */

const cs_x86_op *emu_op(struct insn_ctx *c, unsigned i)
{
	return i < c->x86->op_count ? &c->x86->operands[i] : NULL;
}

/* ---- items 1, 4, 5: one instruction -------------------------------------- */

static csh cs_handle_64, cs_handle_32;

static bool open_handle(csh *h, cs_mode mode)
{
	if (*h)
		return true;
	if (cs_open(CS_ARCH_X86, mode, h) != CS_ERR_OK) {
		*h = 0;
		return false;
	}
	cs_option(*h, CS_OPT_DETAIL, CS_OPT_ON);
	return true;
}

static bool capstone_ready(void)
{
	return open_handle(&cs_handle_64, CS_MODE_64) && open_handle(&cs_handle_32, CS_MODE_32);
}

/* Item 1: copy up to 15 bytes at CS:RIP; stops at the first page that does not translate. */
unsigned emu_fetch(const struct emu_cpu *cpu, const struct emu_ops *ops, u8 *buf,
		   struct emu_event *fault, bool *faulted)
{
	u64 la = emu_long64(cpu) ? cpu->cs.base + cpu->rip : (u32)(cpu->cs.base + cpu->rip);
	u32 acc = EMU_ACC_FETCH | (emu_cpl_of(cpu) == 3 ? EMU_ACC_USER : 0);
	unsigned done = 0;

	*faulted = false;
	while (done < EMU_MAX_INSN_LEN) {
		unsigned chunk = (unsigned)MIN((u64)(EMU_MAX_INSN_LEN - done),
					       PAGE_SIZE - ((la + done) & ~PAGE_MASK));
		enum emu_map_result r;
		void *hva = NULL;
		gpa_t g;

		if (!emu_is_canonical(la + done))
			break;
		if (ops->map_phys)
			r = ops->map_phys(ops->opaque, la + done, chunk, acc, &g, &hva, fault);
		else
			r = ops->map(ops->opaque, la + done, chunk, acc, &hva, fault);
		if (r != EMU_MAP_OK || !hva) {
			*faulted = r == EMU_MAP_FAULT;
			break;
		}
		memcpy(buf + done, hva, chunk);
		done += chunk;
	}
	return done;
}

/* LOCK is #UD unless the instruction takes it and its destination is memory. */
static bool lock_ok(struct insn_ctx *c)
{
	unsigned id = c->insn->id;

	if (id == X86_INS_CMPXCHG16B || id == X86_INS_CMPXCHG8B)
		return true;
	return c->cpu->mode == EMU_MODE_SHADOW && emu_lockable(id) && c->x86->op_count > 0 &&
	       c->x86->operands[0].type == X86_OP_MEM;
}

static enum step dispatch(struct insn_ctx *c)
{
	enum step st;

	if (emu_locked(c->insn) && !lock_ok(c))
		return emu_raise(c, EXC_UD());
	st = emu_dispatch_common(c);
	if (st != STEP_UNKNOWN)
		return st;
	/* The shadow-mode whitelist works on the virtual system state only. */
	if (c->cpu->mode != EMU_MODE_SHADOW)
		return STEP_UNKNOWN;
	st = emu_dispatch_priv(c);
	if (st == STEP_UNKNOWN)
		st = emu_dispatch_sys(c);
	if (st == STEP_UNKNOWN)
		st = emu_dispatch_xfer(c);
	if (st == STEP_UNKNOWN)
		st = emu_dispatch_mem(c);
	if (st == STEP_UNKNOWN)
		st = emu_dispatch_io(c);
	return st;
}

/* Deliver `ev`; a delivery the emulator does not know is noted in the report. */
static enum emu_result deliver(const struct emu_ops *ops, struct emu_cpu *cpu,
			       const struct emu_event *ev, struct emu_report *rep)
{
	enum emu_result r = ops->deliver(ops->opaque, cpu, ev);

	if (r == EMU_UNKNOWN)
		rep->delivery_refused = true;
	return r;
}

/* Deliver `ev` raised by the instruction on the state before it; note a CPL change. */
static enum emu_result deliver_fault(const struct emu_ops *ops, struct emu_cpu *cpu,
				     const struct emu_event *ev, struct emu_report *rep)
{
	struct emu_cpu before = *cpu;
	enum emu_result r;

	rep->faulted = true;
	rep->fault_vector = ev->vector;
	r = deliver(ops, cpu, ev, rep);
	if (r != EMU_DONE || cpu->mode != EMU_MODE_SHADOW)
		return r;
	cpu->virt.int_shadow = false; /* the faulting instruction ended any STI blocking */
	rep->notes |= emu_transition_notes(&before, cpu);
	return r;
}

u32 emu_transition_notes(const struct emu_cpu *before, const struct emu_cpu *after)
{
	u32 notes = 0;

	if (emu_cpl_of(before) != emu_cpl_of(after))
		notes |= EMU_NOTE_CPL;
	if (before->cs.l != after->cs.l || before->cs.db != after->cs.db)
		notes |= EMU_NOTE_CODE_MODE;
	return notes;
}

/* Did the instruction change the shadow-mode system state (emu_cpu group 2)? */
static bool system_state_changed(const struct emu_cpu *a, const struct emu_cpu *b)
{
	size_t from = offsetof(struct emu_cpu, mode), to = offsetof(struct emu_cpu, dirty);

	return memcmp((const u8 *)a + from, (const u8 *)b + from, to - from) != 0;
}

/*
 * Item 6: does a completed instruction take the single-step trap? `before`
 * is the state at its start, `after` at its end.
 */
static bool single_step_trap(const struct insn_ctx *c, const struct emu_cpu *before,
			     const struct emu_cpu *after)
{
	if (before->mode != EMU_MODE_SHADOW || c->ss_loaded || (c->notes & EMU_NOTE_HALT))
		return false;
	if (c->insn_id == X86_INS_SYSCALL)
		return after->rflags & RFLAGS_TF;
	return before->rflags & RFLAGS_TF;
}

/*
 * Capstone refuses a LOCK prefix on an instruction that does not take it
 * (`lock mov`, `lock movbe`), where the CPU raises #UD (SDM Vol. 2A LOCK).
 * True if `code` has a LOCK prefix and decodes once it is dropped, into an
 * instruction that would not take it (else capstone is wrong, and the VM
 * stops on an unknown instruction rather than give the guest a false #UD).
 */
static bool misplaced_lock(csh handle, const u8 *code, unsigned n, u64 rip)
{
	u8 rest[EMU_MAX_INSN_LEN];
	unsigned m = 0, i = 0;
	bool lock = false, lockable;
	cs_insn *insn;

	for (; i < n && i < EMU_MAX_INSN_LEN && emu_legacy_prefix(code[i]); i++) {
		if (code[i] == PREFIX_LOCK)
			lock = true;
		else
			rest[m++] = code[i];
	}
	if (!lock)
		return false;
	for (; i < n && m < sizeof(rest); i++)
		rest[m++] = code[i];
	if (cs_disasm(handle, rest, m, rip, 1, &insn) != 1)
		return false;
	lockable = emu_lockable(insn->id) && insn->detail->x86.op_count > 0 &&
		   insn->detail->x86.operands[0].type == X86_OP_MEM;
	cs_free(insn, 1);
	return !lockable;
}

/*
 * The one-byte opcodes that 64-bit mode removed (SDM Vol. 2A Table A-2,
 * "i64"): push/pop of ES, CS, SS and DS, daa/das/aaa/aas, pusha/popa,
 * aam/aad, salc, the 82 alias of group 1, far call and jmp with an
 * immediate pointer, into. Capstone 4 refuses them in 64-bit mode, where
 * the CPU raises #UD. True if `code`, past its prefixes, begins with one.
 */
static bool invalid_in_64bit(const u8 *code, unsigned n)
{
	unsigned i = 0;

	while (i < n && i < EMU_MAX_INSN_LEN && emu_legacy_prefix(code[i]))
		i++;
	if (i < n && emu_rex_prefix(code[i]))
		i++;
	if (i >= n)
		return false;
	switch (code[i]) {
	case 0x06: /* push es */
	case 0x07: /* pop es */
	case 0x0e: /* push cs */
	case 0x16: /* push ss */
	case 0x17: /* pop ss */
	case 0x1e: /* push ds */
	case 0x1f: /* pop ds */
	case 0x27: /* daa */
	case 0x2f: /* das */
	case 0x37: /* aaa */
	case 0x3f: /* aas */
	case 0x60: /* pusha */
	case 0x61: /* popa */
	case 0x82: /* group 1, byte, the alias of 80 */
	case 0x9a: /* call far ptr16:32 */
	case 0xce: /* into */
	case 0xd4: /* aam */
	case 0xd5: /* aad */
	case 0xd6: /* salc */
	case 0xea: /* jmp far ptr16:32 */ return true;
	default: return false;
	}
}

/* Items 1 (decode), 4, 5 and 6 on `n` bytes of code at cpu->rip. */
static enum emu_result run_code(struct emu_cpu *cpu, const struct emu_ops *ops, const u8 *code,
				unsigned n, const struct emu_event *fetch_fault,
				struct emu_report *rep)
{
	struct emu_cpu work = *cpu;
	struct insn_ctx c = { .cpu = &work, .ops = ops };
	cs_insn *insn = NULL;
	enum emu_result r;
	enum step st;
	bool step;

	csh handle = emu_long64(cpu) ? cs_handle_64 : cs_handle_32;

	rep->code_len = MIN(n, (unsigned)EMU_MAX_INSN_LEN);
	memcpy(rep->code, code, rep->code_len);
	if (cs_disasm(handle, code, n, cpu->rip, 1, &insn) != 1) {
		unsigned raw = cpu->mode == EMU_MODE_HW ? emu_simd_raw_len(code, n) : 0;

		if (misplaced_lock(handle, code, n, cpu->rip) ||
		    (emu_long64(cpu) && invalid_in_64bit(code, n))) {
			struct emu_event ud = EXC_UD();

			snprintf(rep->mnemonic, sizeof(rep->mnemonic), "(bad)");
			return deliver_fault(ops, cpu, &ud, rep);
		}
		if (raw) {
			/* No mnemonic from capstone: name it by encoding, map and opcode. */
			unsigned at = code[0] == 0x62 ? 4 : code[0] == 0xc4 ? 3 : 2;

			snprintf(rep->mnemonic, sizeof(rep->mnemonic), "%s.map%u.%02x",
				 code[0] == 0x62 ? "evex" : "vex",
				 code[0] == 0xc5   ? 1u
				 : code[0] == 0x62 ? (unsigned)(code[1] & 0x07)
						   : (unsigned)(code[1] & 0x1f),
				 (unsigned)code[at]);
			c.next_rip = cpu->rip + raw;
			st = emu_simd_raw(&c, code, raw);
			goto finish;
		}
		if (!fetch_fault)
			return EMU_UNKNOWN;
		/* The instruction runs into a page that does not translate: its #PF. */
		snprintf(rep->mnemonic, sizeof(rep->mnemonic), "fetch");
		return deliver_fault(ops, cpu, fetch_fault, rep);
	}
	/* The instruction's name without prefixes ("cmpxchg16b", not "lock cmpxchg16b"). */
	snprintf(rep->mnemonic, sizeof(rep->mnemonic), "%s", cs_insn_name(handle, insn->id));
	c.insn = insn;
	c.insn_id = insn->id;
	c.x86 = &insn->detail->x86;
	c.next_rip = cpu->rip + insn->size;
	/* STI blocking lasts until the instruction after the sti completes. */
	work.virt.int_shadow = false;

	if (insn->id == X86_INS_INT || insn->id == X86_INS_INT3 ||
	    (insn->id == X86_INS_INTO && (cpu->rflags & RFLAGS_OF))) {
		/*
		 * int n / int3 / into with OF set (32-bit code only): the frame
		 * holds the next RIP; the gate DPL is checked (SDM Vol. 2A INT n).
		 */
		struct emu_event ev = { .kind = EMU_EV_SOFT_INT,
					.insn_len = insn->size,
					.vector = insn->id == X86_INS_INT3 ? X86_EXC_BP
						  : insn->id == X86_INS_INTO
							  ? X86_EXC_OF
							  : (u8)c.x86->operands[0].imm };
		bool lock = emu_locked(insn);

		cs_free(insn, 1);
		if (lock) {
			struct emu_event ud = EXC_UD();

			return deliver_fault(ops, cpu, &ud, rep);
		}
		work.rip = c.next_rip;
		work.rflags &= ~RFLAGS_RF;
		r = deliver(ops, &work, &ev, rep);
		if (r == EMU_DONE) {
			if (work.mode == EMU_MODE_SHADOW)
				rep->notes |= emu_transition_notes(cpu, &work);
			*cpu = work;
		}
		return r;
	}

	st = dispatch(&c);
	cs_free(insn, 1);
	c.insn = NULL;
finish:
	switch (st) {
	case STEP_DONE:
		if (!c.keep_rip)
			work.rip = emu_long64(cpu) ? c.next_rip : (u32)c.next_rip;
		/*
		 * RF: clear once the instruction completed (SDM Vol. 3A §17.3.1.1).
		 * A rep string stopped between iterations has not: RF set keeps
		 * its instruction breakpoint from firing again as it resumes, and
		 * a trap or interrupt delivered now pushes it set, as the CPU's.
		 */
		if (c.notes & EMU_NOTE_REP_PARTIAL)
			work.rflags |= RFLAGS_RF;
		else if (!c.rflags_loaded)
			work.rflags &= ~RFLAGS_RF;
		work.dirty |= EMU_DIRTY_REGS;
		/* LIMITATION: a data breakpoint's trap held past mov ss, or across hlt, is lost. */
		if (c.ss_loaded || (c.notes & EMU_NOTE_HALT))
			c.db_hits = 0;
		step = single_step_trap(&c, cpu, &work);
		if (c.db_hits || step) {
			struct emu_event db = emu_exception(X86_EXC_DB, false, 0);

			/* One #DB reports both causes (SDM Vol. 3A §17.2.3). */
			work.virt.dr6 |= c.db_hits | (step ? DR6_BS : 0);
			r = deliver(ops, &work, &db, rep);
			if (r != EMU_DONE)
				return r;
			rep->trapped = true;
			rep->db_hits = (u8)c.db_hits;
		}
		if (work.mode == EMU_MODE_SHADOW) {
			if (system_state_changed(cpu, &work))
				work.dirty |= EMU_DIRTY_VIRT;
			c.notes |= emu_transition_notes(cpu, &work);
		}
		rep->notes |= c.notes;
		rep->cr3_noflush = c.cr3_noflush;
		*cpu = work;
		return EMU_DONE;
	case STEP_FAULT:
		if (c.fault_after_progress) {
			/* A rep string keeps its finished iterations; RIP stays on it. */
			work.rip = cpu->rip;
			work.dirty |= EMU_DIRTY_REGS;
			r = deliver_fault(ops, &work, &c.fault, rep);
			if (r == EMU_DONE)
				*cpu = work;
			return r;
		}
		/* A fault leaves the state as before the instruction (CR2 aside). */
		if (c.fault.kind == EMU_EV_EXCEPTION && c.fault.vector == X86_EXC_DB) {
			/* Item 9: only general detect raises #DB as a fault here. */
			cpu->virt.dr6 = (cpu->virt.dr6 & ~DR6_HITS_MASK) | DR6_BD;
			cpu->virt.dr7 &= ~DR7_GD;
			cpu->rflags |= RFLAGS_RF;
		}
		return deliver_fault(ops, cpu, &c.fault, rep);
	case STEP_NOT_RAM: return EMU_UNHANDLED_MEM;
	case STEP_HOST_ERROR: return EMU_HOST_ERROR;
	case STEP_UNKNOWN:
	default: return EMU_UNKNOWN;
	}
}

static enum emu_result precheck(const struct emu_cpu *cpu, struct emu_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	/*
	 * 64-bit mode, and 32-bit protected mode (legacy or compatibility):
	 * where a Multiboot kernel starts and switches to long mode (shadow
	 * mode), and where memtest86+'s ia32 image runs its x87 code (hw mode on
	 * PVM hosts, whose KVM emulates it and rejects x87). No 16-bit code.
	 */
	if (!emu_long64(cpu) && (!(cpu->cr0 & CR0_PE) || cpu->cs.l || !cpu->cs.db))
		return EMU_UNKNOWN;
	if (!capstone_ready())
		return EMU_HOST_ERROR;
	return EMU_DONE;
}

/*
 * Item 8: an instruction breakpoint at RIP, unless RF suppresses it, is a
 * #DB fault before the instruction, even before its fetch (SDM Vol. 3A
 * §17.3.1.1; the pushed RF stays 0: the guest's handler sets it to go on).
 * True if it was taken; the result is in *r.
 */
static bool exec_breakpoint(struct emu_cpu *cpu, const struct emu_ops *ops, struct emu_report *rep,
			    enum emu_result *r)
{
	struct emu_event db;
	unsigned hits;

	if (cpu->mode != EMU_MODE_SHADOW || (cpu->rflags & RFLAGS_RF) ||
	    !dr7_enabled(cpu->virt.dr7))
		return false;
	hits = dr_exec_hits(cpu->virt.dr, cpu->virt.dr7, cpu->cs.base + cpu->rip);
	if (!hits)
		return false;
	snprintf(rep->mnemonic, sizeof(rep->mnemonic), "breakpoint");
	rep->db_hits = (u8)hits;
	cpu->virt.dr6 |= hits;
	db = emu_exception(X86_EXC_DB, false, 0);
	/* A fault before the instruction: rep->faulted tells callers the guest is in its handler.
	 */
	*r = deliver_fault(ops, cpu, &db, rep);
	return true;
}

enum emu_result emu_insn(struct emu_cpu *cpu, const struct emu_ops *ops, struct emu_report *rep)
{
	struct emu_event fetch_fault;
	u8 code[EMU_MAX_INSN_LEN];
	bool fetch_faulted;
	enum emu_result r = precheck(cpu, rep);
	unsigned n;

	if (r != EMU_DONE || exec_breakpoint(cpu, ops, rep, &r))
		return r;
	n = emu_fetch(cpu, ops, code, &fetch_fault, &fetch_faulted);
	return run_code(cpu, ops, code, n, fetch_faulted ? &fetch_fault : NULL, rep);
}

enum emu_result emu_insn_bytes(struct emu_cpu *cpu, const struct emu_ops *ops, const u8 *code,
			       unsigned len, struct emu_report *rep)
{
	enum emu_result r = precheck(cpu, rep);

	if (r != EMU_DONE || exec_breakpoint(cpu, ops, rep, &r))
		return r;
	return run_code(cpu, ops, code, MIN(len, (unsigned)EMU_MAX_INSN_LEN), NULL, rep);
}
