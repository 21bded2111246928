// SPDX-License-Identifier: MIT
/*
 * Event delivery and descriptors (decode/emulate.h, emu_deliver_event).
 *
 * 1. Read a segment descriptor from the GDT or LDT; cache a code or data
 *    descriptor in a struct emu_seg.
 * 2. Deliver an exception or software interrupt through the guest IDT in
 *    IA-32e mode (SDM Vol. 3A §6.14): gate and target checks, the stack
 *    (TSS.RSPn or IST), the 64-bit frame. Legacy protected mode's is in
 *    emulate_event32.c.
 * 3. A fault while delivering is delivered in turn, with the double-fault
 *    rules of §6.15 Table 6-5; a fault while delivering #DF is a triple
 *    fault.
 */
#include "decode/emulate_internal.h"
#include "shadow/x86.h"

/* IDT gate fields (SDM Vol. 3A §6.14.1). */
#define IDT_ENTRY_SIZE	 16
#define GATE_TYPE_INTR64 0xe
#define GATE_TYPE_TRAP64 0xf
/* Error code of a fault that names an IDT vector (SDM Vol. 3A §6.13). */
#define ERR_EXT (1u << 0)
#define ERR_IDT (1u << 1)
/* 64-bit TSS (SDM Vol. 3A §7.7, Figure 7-11). */
#define TSS64_RSP0 0x04
#define TSS64_IST1 0x24

enum exc_class { EXC_BENIGN, EXC_CONTRIBUTORY, EXC_PAGE_FAULT, EXC_DOUBLE };

/* Item 3: SDM Vol. 3A §6.15, Table 6-4. */
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
bool emu_event_is_fault(const struct emu_event *ev)
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
 * Item 1. The 8-byte descriptor `sel` names, from the GDT or (TI = 1) the LDT, and
 * its linear address: #GP(selector) beyond the table's limit or for an LDT
 * selector with no LDT loaded (SDM Vol. 3A §3.5.1).
 */
bool emu_desc_la(const struct emu_cpu *cpu, u16 sel, u64 *desc_la)
{
	bool ldt = sel & SEL_TI;
	u64 base = ldt ? cpu->virt.ldtr_base : cpu->gdt_base;
	u32 limit = ldt ? cpu->virt.ldtr_limit : cpu->gdt_limit;

	if ((ldt && !(cpu->virt.ldtr_sel & SEL_INDEX_MASK)) || (u32)(sel | 7) > limit)
		return false;
	*desc_la = base + (sel & SEL_INDEX_MASK);
	return true;
}

enum step emu_read_desc(struct insn_ctx *c, u16 sel, u64 *desc, u64 *desc_la)
{
	if (!emu_desc_la(c->cpu, sel, desc_la))
		return emu_raise(c, EXC_GP(sel & SEL_ERR_MASK));
	return emu_sys_read(c, *desc_la, desc, sizeof(*desc));
}

enum step emu_set_desc_accessed(struct insn_ctx *c, u64 desc_la, u64 desc)
{
	u8 type = (u8)(desc >> DESC_TYPE_SHIFT) | DESC_TYPE_ACCESSED;

	if (desc & ((u64)DESC_TYPE_ACCESSED << DESC_TYPE_SHIFT))
		return STEP_DONE;
	return emu_mem_write(c, desc_la + 5, &type, 1, 0);
}

/* Item 1. The cached form of a code or data descriptor (SDM Vol. 3A §3.4.5). */
void emu_seg_from_desc(struct emu_seg *seg, u16 sel, u64 desc)
{
	u32 limit = (u32)((desc & 0xffff) | ((desc >> 32) & 0xf0000));
	bool g = desc & DESC_G;

	*seg = (struct emu_seg){
		.base = ((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000),
		.limit = g ? (limit << 12) | 0xfff : limit,
		.sel = sel,
		.type = (u8)((desc & DESC_TYPE_MASK) >> DESC_TYPE_SHIFT),
		.s = !!(desc & DESC_S),
		.dpl = (desc >> DESC_DPL_SHIFT) & 3,
		.present = !!(desc & DESC_P),
		.avl = !!(desc & DESC_AVL),
		.l = !!(desc & DESC_L),
		.db = !!(desc & DESC_DB),
		.g = g,
	};
}

/*
 * Item 2: the code segment an IDT gate names (SDM Vol. 3A §6.12.1.1), in
 * IA-32e and legacy protected mode: a GDT selector (LIMITATION: LDT
 * selectors are refused with #GP), a code segment of DPL <= CPL, in IA-32e
 * mode 64-bit code (L = 1, D = 0), present. Sets *desc and the handler's CPL
 * (a conforming segment keeps the CPL).
 */
enum step emu_gate_target(struct insn_ctx *c, u16 sel, u32 ext, u64 *desc, unsigned *new_cpl)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned cpl = emu_cpl_of(cpu), dpl;
	u32 err = (sel & SEL_ERR_MASK) + ext;
	bool lma = cpu->efer & EFER_LMA;
	enum step st;
	u64 la;

	if (!(sel & SEL_INDEX_MASK) || (sel & SEL_TI))
		return emu_raise(c, EXC_GP((sel & SEL_INDEX_MASK & SEL_ERR_MASK) + ext));
	if (!emu_desc_la(cpu, sel, &la))
		return emu_raise(c, EXC_GP(err));
	st = emu_sys_read(c, la, desc, sizeof(*desc));
	if (st != STEP_DONE)
		return st;
	dpl = (*desc >> DESC_DPL_SHIFT) & 3;
	if (!(*desc & DESC_S) || !((*desc >> DESC_TYPE_SHIFT) & DESC_TYPE_CODE) || dpl > cpl ||
	    (lma && (!(*desc & DESC_L) || (*desc & DESC_DB))))
		return emu_raise(c, EXC_GP(err));
	if (!(*desc & DESC_P))
		return emu_raise(c, EXC_NP(err));
	*new_cpl = ((*desc >> DESC_TYPE_SHIFT) & DESC_TYPE_CONFORMING) ? cpl : dpl;
	return STEP_DONE;
}

/*
 * Item 2. One delivery attempt of `ev` on c->cpu (SDM Vol. 3A §6.14.1-§6.14.5).
 * STEP_FAULT: c->fault is the fault that stopped it; c->cpu may be partly
 * changed (only CR2), which is what the CPU does too.
 */
static enum step deliver_once(struct insn_ctx *c, const struct emu_event *ev)
{
	struct emu_cpu *cpu = c->cpu;
	u32 ext = ev->kind == EMU_EV_EXCEPTION ? ERR_EXT : 0;
	u32 idt_err = (u32)ev->vector * 8 + ERR_IDT + ext;
	unsigned cpl = emu_cpl_of(cpu), new_cpl, ist, gate_type, n = 0;
	u64 gate[2], desc, offset, rsp, frame[6], rflags;
	u16 sel;
	enum step st;

	if (ev->has_cr2) {
		cpu->cr2 = ev->cr2;
		cpu->dirty |= EMU_DIRTY_SREGS;
	}
	if ((u32)ev->vector * IDT_ENTRY_SIZE + IDT_ENTRY_SIZE - 1 > cpu->idt_limit)
		return emu_raise(c, EXC_GP(idt_err));
	st = emu_sys_read(c, cpu->idt_base + (u64)ev->vector * IDT_ENTRY_SIZE, gate, sizeof(gate));
	if (st != STEP_DONE)
		return st;
	offset = x86_gate64_offset(gate[0], gate[1]);
	sel = (u16)(gate[0] >> 16);
	ist = (gate[0] >> 32) & 7;
	gate_type = (gate[0] >> 40) & 0xf;
	if (gate_type != GATE_TYPE_INTR64 && gate_type != GATE_TYPE_TRAP64)
		return emu_raise(c, EXC_GP(idt_err));
	/* Software interrupts: the gate's DPL must allow the caller (§6.12.1.1). */
	if (ev->kind == EMU_EV_SOFT_INT && ((gate[0] >> 45) & 3) < cpl)
		return emu_raise(c, EXC_GP(idt_err));
	if (!(gate[0] & X86_GATE_P))
		return emu_raise(c, EXC_NP(idt_err));
	st = emu_gate_target(c, sel, ext, &desc, &new_cpl);
	if (st != STEP_DONE)
		return st;
	if (!emu_is_canonical(offset))
		return emu_raise(c, EXC_GP(ext));

	/* The stack: IST if the gate names one, else TSS.RSPn on a privilege change. */
	rsp = cpu->gpr[EMU_RSP];
	if (ist || new_cpl < cpl) {
		u64 off = ist ? TSS64_IST1 + (ist - 1) * 8ull : TSS64_RSP0 + new_cpl * 8ull;

		if (off + 7 > cpu->tr_limit)
			return emu_raise(c, EXC_TS((cpu->tr_sel & 0xfffc) + ext));
		st = emu_sys_read(c, cpu->tr_base + off, &rsp, sizeof(rsp));
		if (st != STEP_DONE)
			return st;
	}
	if (!emu_is_canonical(rsp))
		return emu_raise(c, EXC_SS(ext));
	rsp &= ~15ull; /* IA-32e aligns the new stack to 16 bytes (§6.14.2) */

	rflags = cpu->rflags;
	if (emu_event_is_fault(ev))
		rflags |= RFLAGS_RF;
	if (ev->has_error_code)
		frame[n++] = ev->error_code;
	frame[n++] = cpu->rip;
	frame[n++] = cpu->cs.sel;
	frame[n++] = rflags;
	frame[n++] = cpu->gpr[EMU_RSP];
	frame[n++] = cpu->ss.sel;
	st = emu_mem_write(c, rsp - 8 * n, frame, 8 * n, new_cpl == 3 ? EMU_ACC_USER : 0);
	if (st != STEP_DONE)
		return st;

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

/* Item 3. */
enum emu_result emu_deliver_event(struct emu_cpu *cpu, const struct emu_ops *ops,
				  const struct emu_event *ev)
{
	struct emu_cpu work = *cpu;
	struct insn_ctx c = { .cpu = &work, .ops = ops };
	struct emu_event cur = *ev;

	/* LIMITATION: real-mode delivery (the IVT) is not emulated. */
	if (!(cpu->cr0 & CR0_PE))
		return EMU_UNKNOWN;
	for (;;) {
		enum step st = (cpu->efer & EFER_LMA) ? deliver_once(&c, &cur)
						      : emu_deliver_once_legacy(&c, &cur);
		enum exc_class first = class_of(&cur), second;

		if (st == STEP_DONE)
			break;
		if (st == STEP_NOT_RAM)
			return EMU_UNHANDLED_MEM;
		if (st == STEP_UNKNOWN)
			return EMU_UNKNOWN;
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
			cur = emu_exception(X86_EXC_DF, true, 0);
		else
			cur = c.fault;
	}
	*cpu = work;
	return EMU_DONE;
}
