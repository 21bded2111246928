// SPDX-License-Identifier: MIT
/*
 * Shadow mode: descriptor tables and segment loads, on the virtual state
 * (decode/emulate.h, EMU_MODE_SHADOW).
 *
 * 1. lgdt/lidt and sgdt/sidt (10-byte pseudo-descriptors in 64-bit mode),
 *    sldt/str (UMIP), lldt/ltr with the 16-byte system descriptors of
 *    IA-32e mode (SDM Vol. 3A §3.5.2, §7.2.3) and the TSS busy bit.
 * 2. mov to DS/ES/FS/GS/SS and pop FS/GS (DS/ES/SS too in 32-bit mode)
 *    with the descriptor checks of SDM Vol. 2B MOV/POP (64-bit mode: FS/GS
 *    take a 32-bit base, SS may be null at CPL < 3); mov ss blocks
 *    interrupts for one instruction.
 *
 * Privilege transfers (iretq, sysret, far ret/jmp, syscall entry) are in
 * decode/emulate_xfer.c.
 *
 * A load of DS/ES/FS/GS or of SS by mov/pop sets its descriptor's accessed
 * bit, as the CPU does. LIMITATION: far transfers (iretq, far ret/jmp,
 * sysret) set none (emu_iret_keeps_segs relies on it).
 */
#include <string.h>

#include "decode/emulate_internal.h"
#include "shadow/x86.h"

/* The pseudo-descriptor of lgdt/lidt/sgdt/sidt: limit, then a 64-bit (32-bit) base. */
#define PSEUDO_DESC_SIZE   10
#define PSEUDO_DESC_SIZE32 6
#define BASE24_MASK	   0xffffffull /* lgdt/lidt with a 16-bit operand size */
/* The high half of a 16-byte system descriptor: bits 12:8 of its dword 3 must be 0. */
#define SYS_DESC_HIGH_TYPE_MASK (0x1full << 40)

static bool is_cpl0(struct insn_ctx *c)
{
	return emu_cpl_of(c->cpu) == 0;
}

static unsigned desc_type(u64 desc)
{
	return (unsigned)((desc & DESC_TYPE_MASK) >> DESC_TYPE_SHIFT);
}

static unsigned desc_dpl(u64 desc)
{
	return (desc >> DESC_DPL_SHIFT) & 3;
}

/* ---- item 1 -------------------------------------------------------------- */

static enum step mem_operand(struct insn_ctx *c, u64 *la)
{
	const cs_x86_op *op = emu_op(c, 0);

	if (!op || op->type != X86_OP_MEM)
		return STEP_UNKNOWN;
	return emu_operand_la(c, op, la);
}

/* lgdt/lidt m: #GP(0) at CPL > 0 or for a non-canonical base (SDM Vol. 2A LGDT/LIDT). */
static enum step do_lgdt_lidt(struct insn_ctx *c, bool idt)
{
	bool l64 = emu_long64(c->cpu);
	u8 pd[PSEUDO_DESC_SIZE] = { 0 };
	enum step st;
	u16 limit;
	u64 la, base;

	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	st = mem_operand(c, &la);
	if (st != STEP_DONE)
		return st;
	st = emu_mem_read(c, la, pd, l64 ? PSEUDO_DESC_SIZE : PSEUDO_DESC_SIZE32,
			  emu_data_access(c->cpu, 0));
	if (st != STEP_DONE)
		return st;
	memcpy(&limit, pd, sizeof(limit));
	memcpy(&base, pd + 2, sizeof(base));
	if (!l64 && c->x86->prefix[2] == OPSIZE_16)
		base &= BASE24_MASK;
	if (l64 && !emu_is_canonical(base))
		return emu_raise(c, EXC_GP(0));
	if (idt) {
		c->cpu->idt_base = base;
		c->cpu->idt_limit = limit;
	} else {
		c->cpu->gdt_base = base;
		c->cpu->gdt_limit = limit;
	}
	c->notes |= EMU_NOTE_TABLES;
	return STEP_DONE;
}

/* sgdt/sidt m: store limit and base; #GP(0) at CPL > 0 with CR4.UMIP = 1. */
static enum step do_sgdt_sidt(struct insn_ctx *c, bool idt)
{
	u16 limit = (u16)(idt ? c->cpu->idt_limit : c->cpu->gdt_limit);
	u64 base = idt ? c->cpu->idt_base : c->cpu->gdt_base, la;
	u8 pd[PSEUDO_DESC_SIZE];
	enum step st;

	if (!is_cpl0(c) && (c->cpu->cr4 & CR4_UMIP))
		return emu_raise(c, EXC_GP(0));
	st = mem_operand(c, &la);
	if (st != STEP_DONE)
		return st;
	memcpy(pd, &limit, sizeof(limit));
	memcpy(pd + 2, &base, sizeof(base));
	return emu_mem_write(c, la, pd, emu_long64(c->cpu) ? PSEUDO_DESC_SIZE : PSEUDO_DESC_SIZE32,
			     emu_data_access(c->cpu, 0));
}

/* sldt/str r/m16: a register gets the selector zero-extended, memory 16 bits; UMIP. */
/* Store selector `sel` to operand 0: a register zero-extended, memory 16 bits. */
static enum step store_selector(struct insn_ctx *c, u16 sel)
{
	const cs_x86_op *op = emu_op(c, 0);
	const struct reg_slot *s;
	enum step st;
	u64 la;

	if (!op)
		return STEP_UNKNOWN;
	if (op->type == X86_OP_REG) {
		if (!(s = emu_slot_of(op->reg)))
			return STEP_UNKNOWN;
		emu_reg_set(c->cpu, s, sel);
		return STEP_DONE;
	}
	st = emu_operand_la(c, op, &la);
	if (st != STEP_DONE)
		return st;
	return emu_mem_write(c, la, &sel, sizeof(sel), emu_data_access(c->cpu, 0));
}

static enum step do_sldt_str(struct insn_ctx *c, u16 sel)
{
	if (!is_cpl0(c) && (c->cpu->cr4 & CR4_UMIP))
		return emu_raise(c, EXC_GP(0));
	return store_selector(c, sel);
}

/*
 * The GDT system descriptor `sel` names, for lldt/ltr: 16 bytes in IA-32e
 * mode, 8 in legacy protected mode (a 32-bit TSS; d[1] is then 0). #GP(sel)
 * for an LDT selector, beyond the GDT limit, the wrong type or a bad high
 * half; #NP(sel) if not present; #GP(0) for a non-canonical base.
 */
static enum step read_sys_desc(struct insn_ctx *c, u16 sel, unsigned type, u64 d[2], u64 *la,
			       u64 *base)
{
	unsigned size = (c->cpu->efer & EFER_LMA) ? 16 : 8;
	u32 err = sel & SEL_ERR_MASK;
	enum step st;

	if ((sel & SEL_TI) || (u32)(sel & SEL_INDEX_MASK) + size - 1 > c->cpu->gdt_limit)
		return emu_raise(c, EXC_GP(err));
	*la = c->cpu->gdt_base + (sel & SEL_INDEX_MASK);
	d[1] = 0;
	st = emu_sys_read(c, *la, d, size);
	if (st != STEP_DONE)
		return st;
	if ((d[0] & DESC_S) || desc_type(d[0]) != type || (d[1] & SYS_DESC_HIGH_TYPE_MASK))
		return emu_raise(c, EXC_GP(err));
	if (!(d[0] & DESC_P))
		return emu_raise(c, EXC_NP(err));
	*base = ((d[0] >> 16) & 0xffffff) | ((d[0] >> 32) & 0xff000000) | (d[1] << 32);
	if (!emu_is_canonical(*base))
		return emu_raise(c, EXC_GP(0));
	return STEP_DONE;
}

static u32 desc_limit(u64 desc)
{
	u32 limit = (u32)((desc & 0xffff) | ((desc >> 32) & 0xf0000));

	return (desc & DESC_G) ? (limit << 12) | 0xfff : limit;
}

/* lldt r/m16 (SDM Vol. 2A LLDT): a null selector leaves LDTR unusable. */
static enum step do_lldt(struct insn_ctx *c)
{
	struct emu_virt *v = &c->cpu->virt;
	enum step st;
	u64 d[2], la, base;
	u16 sel;

	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	st = emu_read_rm16(c, emu_op(c, 0), &sel);
	if (st != STEP_DONE)
		return st;
	if (!(sel & ~SEL_RPL_MASK & ~SEL_TI)) {
		v->ldtr_sel = sel;
		v->ldtr_base = 0;
		v->ldtr_limit = 0;
	} else {
		st = read_sys_desc(c, sel, SYS_TYPE_LDT, d, &la, &base);
		if (st != STEP_DONE)
			return st;
		v->ldtr_sel = sel;
		v->ldtr_base = base;
		v->ldtr_limit = desc_limit(d[0]);
	}
	c->notes |= EMU_NOTE_TABLES;
	return STEP_DONE;
}

/* ltr r/m16 (SDM Vol. 2A LTR): an available 64-bit (32-bit) TSS, marked busy in the GDT. */
static enum step do_ltr(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	enum step st;
	u64 d[2], la, base;
	u16 sel;

	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	st = emu_read_rm16(c, emu_op(c, 0), &sel);
	if (st != STEP_DONE)
		return st;
	if (!(sel & SEL_INDEX_MASK))
		return emu_raise(c, EXC_GP(0));
	st = read_sys_desc(c, sel, SYS_TYPE_TSS_AVAIL, d, &la, &base);
	if (st != STEP_DONE)
		return st;
	d[0] |= (u64)SYS_TYPE_BUSY_BIT << DESC_TYPE_SHIFT;
	st = emu_mem_write(c, la, &d[0], sizeof(d[0]), 0);
	if (st != STEP_DONE)
		return st;
	cpu->tr_sel = sel;
	cpu->tr_base = base;
	cpu->tr_limit = desc_limit(d[0]);
	c->notes |= EMU_NOTE_TABLES;
	return STEP_DONE;
}

/* ---- item 2: segment loads ----------------------------------------------- */

unsigned emu_ss_seg_check(unsigned cpl, u16 sel, u64 desc)
{
	if ((sel & SEL_RPL_MASK) != cpl || !(desc & DESC_S) || (desc_type(desc) & DESC_TYPE_CODE) ||
	    !(desc_type(desc) & DESC_TYPE_WRITABLE) || desc_dpl(desc) != cpl)
		return X86_EXC_GP;
	return desc & DESC_P ? 0 : X86_EXC_SS;
}

/*
 * Load `sel` into SS (SDM Vol. 2B MOV): null only in 64-bit mode at CPL < 3
 * with RPL = CPL; else emu_ss_seg_check.
 */
enum step emu_load_ss(struct insn_ctx *c, u16 sel, unsigned cpl, struct emu_seg *ss,
		      bool mark_accessed, u8 np_vector)
{
	u32 err = sel & SEL_ERR_MASK;
	unsigned vector;
	enum step st;
	u64 desc, la;

	if (!(sel & ~SEL_RPL_MASK)) {
		if (!emu_long64(c->cpu) || cpl == 3 || (sel & SEL_RPL_MASK) != cpl)
			return emu_raise(c, EXC_GP(0));
		*ss = (struct emu_seg){ .sel = sel, .dpl = (u8)cpl };
		return STEP_DONE;
	}
	if ((sel & SEL_RPL_MASK) != cpl)
		return emu_raise(c, EXC_GP(err));
	st = emu_read_desc(c, sel, &desc, &la);
	if (st != STEP_DONE)
		return st;
	vector = emu_ss_seg_check(cpl, sel, desc);
	if (vector == X86_EXC_GP)
		return emu_raise(c, EXC_GP(err));
	if (vector == X86_EXC_SS)
		return emu_raise(c, emu_exception(np_vector, true, err));
	if (mark_accessed) {
		st = emu_set_desc_accessed(c, la, desc);
		if (st != STEP_DONE)
			return st;
		desc |= (u64)DESC_TYPE_ACCESSED << DESC_TYPE_SHIFT; /* as the table holds it now */
	}
	emu_seg_from_desc(ss, sel, desc);
	return STEP_DONE;
}

/*
 * Load `sel` into DS/ES/FS/GS (SDM Vol. 2B MOV): null is always allowed;
 * else a data or readable code segment, with DPL >= max(CPL, RPL) unless
 * conforming code; #NP(sel) if not present.
 */
unsigned emu_data_seg_check(unsigned cpl, u16 sel, u64 desc, u64 *base)
{
	unsigned rpl = sel & SEL_RPL_MASK, type = desc_type(desc);

	if (!(desc & DESC_S) || ((type & DESC_TYPE_CODE) && !(type & DESC_TYPE_READABLE)))
		return X86_EXC_GP;
	if (!((type & DESC_TYPE_CODE) && (type & DESC_TYPE_CONFORMING)) &&
	    (desc_dpl(desc) < cpl || desc_dpl(desc) < rpl))
		return X86_EXC_GP;
	if (!(desc & DESC_P))
		return X86_EXC_NP;
	*base = ((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000);
	return 0;
}

static enum step load_data_seg(struct insn_ctx *c, x86_reg which, u16 sel)
{
	struct emu_cpu *cpu = c->cpu;
	u32 err = sel & SEL_ERR_MASK;
	u64 desc = 0, la, base = 0;
	enum step st;

	if (sel & ~SEL_RPL_MASK) {
		unsigned vector;

		st = emu_read_desc(c, sel, &desc, &la);
		if (st != STEP_DONE)
			return st;
		vector = emu_data_seg_check(emu_cpl_of(cpu), sel, desc, &base);
		if (vector == X86_EXC_GP)
			return emu_raise(c, EXC_GP(err));
		if (vector == X86_EXC_NP)
			return emu_raise(c, EXC_NP(err));
		st = emu_set_desc_accessed(c, la, desc);
		if (st != STEP_DONE)
			return st;
	}
	/*
	 * In 64-bit mode only FS and GS use a base. A null selector gives base
	 * 0 (Intel), or keeps it (null_sel_keeps_base: AMD).
	 */
	if (!(sel & ~SEL_RPL_MASK) && cpu->virt.null_sel_keeps_base)
		base = which == X86_REG_FS ? cpu->fs_base : which == X86_REG_GS ? cpu->gs_base : 0;
	switch (which) {
	case X86_REG_DS:
		cpu->virt.ds_sel = sel;
		cpu->virt.ds_base = base;
		break;
	case X86_REG_ES:
		cpu->virt.es_sel = sel;
		cpu->virt.es_base = base;
		break;
	case X86_REG_FS:
		cpu->virt.fs_sel = sel;
		cpu->fs_base = base;
		break;
	default:
		cpu->virt.gs_sel = sel;
		cpu->gs_base = base;
		break;
	}
	return STEP_DONE;
}

static enum step load_sreg(struct insn_ctx *c, x86_reg which, u16 sel)
{
	enum step st;

	c->notes |= EMU_NOTE_TABLES;
	if (which != X86_REG_SS)
		return load_data_seg(c, which, sel);
	st = emu_load_ss(c, sel, emu_cpl_of(c->cpu), &c->cpu->ss, true, X86_EXC_SS);
	if (st == STEP_DONE) {
		c->cpu->virt.int_shadow = true; /* MOV SS blocking (SDM Vol. 3A §6.8.3) */
		c->ss_loaded = true;
	}
	return st;
}

static bool is_data_sreg(x86_reg r)
{
	return r == X86_REG_DS || r == X86_REG_ES || r == X86_REG_FS || r == X86_REG_GS ||
	       r == X86_REG_SS;
}

/* mov sreg, r/m16 */
static enum step do_mov_sreg(struct insn_ctx *c)
{
	enum step st;
	u16 sel;

	st = emu_read_rm16(c, emu_op(c, 1), &sel);
	if (st != STEP_DONE)
		return st;
	return load_sreg(c, emu_op(c, 0)->reg, sel);
}

/*
 * pop fs/gs (and pop ds/es/ss outside 64-bit mode): 8 bytes in 64-bit mode,
 * 4 in protected mode, 2 with 66h; RSP moves only if the load succeeds.
 */
static enum step do_pop_sreg(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = emu_stack_opsize(c);
	u64 sp = cpu->gpr[EMU_RSP], v = 0, la;
	enum step st = emu_stack_la(c, 0, size, &la);

	if (st != STEP_DONE)
		return st;
	st = emu_mem_read(c, la, &v, size, emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	st = load_sreg(c, emu_op(c, 0)->reg, (u16)v);
	if (st == STEP_DONE)
		emu_set_sp(cpu, sp + size);
	return st;
}

/* The guest's selector in segment register `which`; false for another register. */
static bool guest_selector(const struct emu_cpu *cpu, x86_reg which, u16 *sel)
{
	switch (which) {
	case X86_REG_CS: *sel = cpu->cs.sel; return true;
	case X86_REG_SS: *sel = cpu->ss.sel; return true;
	case X86_REG_DS: *sel = cpu->virt.ds_sel; return true;
	case X86_REG_ES: *sel = cpu->virt.es_sel; return true;
	case X86_REG_FS: *sel = cpu->virt.fs_sel; return true;
	case X86_REG_GS: *sel = cpu->virt.gs_sel; return true;
	default: return false;
	}
}

/*
 * mov r/m, sreg (8C /r): the guest's own selector, which a deprivileged
 * guest cannot read natively (its real CS/SS are the monitor's or the
 * host's). A register destination gets it zero-extended, memory 16 bits
 * (SDM Vol. 2B MOV), as sldt/str do.
 */
static enum step do_mov_from_sreg(struct insn_ctx *c, x86_reg which)
{
	u16 sel;

	if (!guest_selector(c->cpu, which, &sel))
		return STEP_UNKNOWN;
	return store_selector(c, sel);
}

/*
 * push sreg (0e/16/1e/06 outside 64-bit mode, 0f a0/a8 push fs/gs): the
 * guest's own selector, as mov r/m, sreg reads it, in an operand-size slot;
 * zero-extended, or a 16-bit store into it (virt.push_sreg_move16). 32-bit
 * Linux's sync_core pushes %cs so for its iret to itself.
 */
static enum step do_push_sreg(struct insn_ctx *c, x86_reg which)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = emu_stack_opsize(c);
	u64 la, v = 0;
	enum step st;
	u16 sel;

	if (!guest_selector(cpu, which, &sel))
		return STEP_UNKNOWN;
	if (size == 2 || !cpu->virt.push_sreg_move16)
		return emu_push(c, sel, size);
	st = emu_stack_la(c, -(s64)size, size, &la);
	if (st == STEP_DONE) /* the slot as it was, for its upper bytes */
		st = emu_mem_read(c, la, &v, size, emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	return emu_push(c, (v & ~0xffffull) | sel, size);
}

enum step emu_dispatch_sys(struct insn_ctx *c)
{
	const cs_x86_op *op0 = emu_op(c, 0);

	switch (c->insn->id) {
	case X86_INS_LGDT: return do_lgdt_lidt(c, false);
	case X86_INS_LIDT: return do_lgdt_lidt(c, true);
	case X86_INS_SGDT: return do_sgdt_sidt(c, false);
	case X86_INS_SIDT: return do_sgdt_sidt(c, true);
	case X86_INS_SLDT: return do_sldt_str(c, c->cpu->virt.ldtr_sel);
	case X86_INS_STR: return do_sldt_str(c, c->cpu->tr_sel);
	case X86_INS_LLDT: return do_lldt(c);
	case X86_INS_LTR: return do_ltr(c);
	case X86_INS_MOV:
		if (op0 && op0->type == X86_OP_REG && op0->reg == X86_REG_CS)
			return emu_raise(c, EXC_UD()); /* mov to CS (SDM Vol. 2B MOV) */
		if (op0 && op0->type == X86_OP_REG && is_data_sreg(op0->reg))
			return do_mov_sreg(c);
		if (c->insn->detail->x86.op_count == 2 && emu_op(c, 1)->type == X86_OP_REG &&
		    (is_data_sreg(emu_op(c, 1)->reg) || emu_op(c, 1)->reg == X86_REG_CS))
			return do_mov_from_sreg(c, emu_op(c, 1)->reg);
		return STEP_UNKNOWN;
	case X86_INS_POP:
		if (op0 && op0->type == X86_OP_REG && is_data_sreg(op0->reg))
			return do_pop_sreg(c);
		return STEP_UNKNOWN;
	case X86_INS_PUSH:
		if (op0 && op0->type == X86_OP_REG &&
		    (is_data_sreg(op0->reg) || op0->reg == X86_REG_CS))
			return do_push_sreg(c, op0->reg);
		return STEP_UNKNOWN;
	default: return STEP_UNKNOWN;
	}
}
