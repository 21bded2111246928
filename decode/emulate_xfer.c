// SPDX-License-Identifier: MIT
/*
 * Shadow mode: privilege and mode transfers on the virtual state
 * (decode/emulate.h, EMU_MODE_SHADOW). The virtual CPL is the RPL of the
 * virtual CS; the core reports every change of it (EMU_NOTE_CPL) so the VMM
 * switches views, and every change of CS.L/CS.D (EMU_NOTE_CODE_MODE).
 *
 * 1. iretq to the same or an outer privilege level (SDM Vol. 2A IRET,
 *    IA-32e mode): pops RIP, CS, RFLAGS, RSP, SS; and a 32-bit iret in
 *    legacy protected mode (a 32-bit kernel's): EIP, CS, EFLAGS, and to an
 *    outer level ESP, SS.
 * 2. sysret (SDM Vol. 2B SYSRET) and syscall (SDM Vol. 2B SYSCALL), as
 *    emu_syscall_entry for the VMM's syscall entry page and as an
 *    instruction that trapped (#UD) at the guest's RIP. From compatibility
 *    mode where the CPU allows it (AMD's): RCX is the 32-bit next EIP and
 *    the entry is CSTAR.
 * 3. Far transfers to code segments: ret far (lret/lretq, same or outer
 *    level) and jmp far (direct and m16:32/m16:64), which is how a 32-bit
 *    kernel enters 64-bit code after enabling IA-32e mode (SDM Vol. 3A
 *    §9.8.5). Call gates and task switches are not emulated.
 *
 * LIMITATION: a return to an outer level does not null DS/ES/FS/GS that the
 * new CPL may not use (64-bit kernels keep them null).
 */
#include <string.h>

#include "decode/emulate_internal.h"
#include "shadow/x86.h"

/* What SYSRET puts in RFLAGS from R11 (SDM Vol. 2B SYSRET: R11 & 3C7FD7H | 2). */
#define SYSRET_RFLAGS_MASK 0x3c7fd7ull
/* STAR fields (SDM Vol. 3A §5.8.8). */
#define STAR_SYSCALL_CS_SHIFT 32
#define STAR_SYSRET_CS_SHIFT  48
/* RFLAGS bits IRET may load at CPL0 in IA-32e mode (SDM Vol. 2A IRET). */
#define IRET_MASK                                                                            \
	(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_TF | RFLAGS_IF | \
	 RFLAGS_DF | RFLAGS_OF | RFLAGS_IOPL_MASK | RFLAGS_NT | RFLAGS_RF | RFLAGS_AC |      \
	 RFLAGS_VIF | RFLAGS_VIP | RFLAGS_ID)

static bool is_cpl0(struct insn_ctx *c)
{
	return emu_cpl_of(c->cpu) == 0;
}

static unsigned iopl_of(const struct emu_cpu *cpu)
{
	return (unsigned)((cpu->rflags & RFLAGS_IOPL_MASK) >> RFLAGS_IOPL_SHIFT);
}

/* The vector of an iret whose new SS is not present (emu_virt.iret_ss_np_is_ss). */
static u8 iret_ss_np_vector(const struct emu_cpu *cpu)
{
	return cpu->virt.iret_ss_np_is_ss ? X86_EXC_SS : X86_EXC_NP;
}

static unsigned desc_type(u64 desc)
{
	return (unsigned)((desc & DESC_TYPE_MASK) >> DESC_TYPE_SHIFT);
}

static unsigned desc_dpl(u64 desc)
{
	return (desc >> DESC_DPL_SHIFT) & 3;
}

/* A flat 64-bit code segment or flat data segment, as SYSCALL/SYSRET load them. */
static struct emu_seg flat_seg(u16 sel, unsigned dpl, bool code, bool l)
{
	return (struct emu_seg){ .sel = sel,
				 .type = code ? 0xb : 0x3,
				 .s = 1,
				 .dpl = (u8)dpl,
				 .present = 1,
				 .l = l,
				 .db = !l,
				 .g = 1,
				 .limit = 0xffffffff };
}

/* ---- item 1: iretq ------------------------------------------------------- */

/* The code segment iretq returns to: #GP(sel)/#NP(sel) as SDM Vol. 2A IRET. */
static enum step iret_code_seg(struct insn_ctx *c, u16 sel, struct emu_seg *cs)
{
	unsigned cpl = emu_cpl_of(c->cpu), rpl = sel & SEL_RPL_MASK, type;
	u32 err = sel & SEL_ERR_MASK;
	enum step st;
	u64 desc, la;

	if (!(sel & ~SEL_RPL_MASK))
		return emu_raise(c, EXC_GP(0));
	st = emu_read_desc(c, sel, &desc, &la);
	if (st != STEP_DONE)
		return st;
	type = desc_type(desc);
	if (!(desc & DESC_S) || !(type & DESC_TYPE_CODE) || rpl < cpl)
		return emu_raise(c, EXC_GP(err));
	if ((type & DESC_TYPE_CONFORMING) ? desc_dpl(desc) > rpl : desc_dpl(desc) != rpl)
		return emu_raise(c, EXC_GP(err));
	if ((desc & DESC_L) && (desc & DESC_DB))
		return emu_raise(c, EXC_GP(err)); /* L = D = 1 is reserved */
	if (!(desc & DESC_P))
		return emu_raise(c, EXC_NP(err));
	emu_seg_from_desc(cs, sel, desc);
	if (cs->l)
		cs->base = 0; /* 64-bit code: no base (SDM Vol. 3A §3.4.4) */
	return STEP_DONE;
}

/*
 * RFLAGS from the `popped` image under IRET's rules at `cpl` (SDM Vol. 2A
 * IRET): IOPL, VIF and VIP only at CPL0, IF only while CPL <= IOPL; RF as
 * the frame has it (a #DB handler's way on). Notes IF going from 0 to 1.
 */
static void iret_load_rflags(struct insn_ctx *c, unsigned cpl, u64 popped)
{
	struct emu_cpu *cpu = c->cpu;
	u64 mask = IRET_MASK, old = cpu->rflags;

	if (cpl > 0)
		mask &= ~(RFLAGS_IOPL_MASK | RFLAGS_VIF | RFLAGS_VIP);
	if (cpl > iopl_of(cpu))
		mask &= ~RFLAGS_IF;
	cpu->rflags = (old & ~mask) | (popped & mask) | RFLAGS_FIXED;
	c->rflags_loaded = true;
	if (!(old & RFLAGS_IF) && (cpu->rflags & RFLAGS_IF))
		c->notes |= EMU_NOTE_IF_SET;
}

/*
 * iretq (SDM Vol. 2A IRET, IA-32e mode): #GP(0) with RFLAGS.NT = 1; pop
 * RIP, CS, RFLAGS, RSP, SS; return to CS.RPL >= CPL; RFLAGS loaded under
 * the CPL/IOPL rules (IOPL, VIF, VIP at CPL0 only; IF if CPL <= IOPL).
 */
static enum step do_iretq(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned cpl = emu_cpl_of(cpu), new_cpl;
	u64 rsp = cpu->gpr[EMU_RSP], frame[5];
	struct emu_seg cs, ss;
	enum step st;
	u16 cs_sel, ss_sel;

	if (!(c->x86->rex & REX_W) || !emu_long64(cpu))
		return STEP_UNKNOWN; /* iretd: not used by 64-bit kernels */
	if (cpu->rflags & RFLAGS_NT)
		return emu_raise(c, EXC_GP(0));
	if (!emu_is_canonical(rsp) || !emu_is_canonical(rsp + sizeof(frame) - 1))
		return emu_raise(c, EXC_SS(0));
	st = emu_mem_read(c, rsp, frame, sizeof(frame), emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	cs_sel = (u16)frame[1];
	ss_sel = (u16)frame[4];
	st = iret_code_seg(c, cs_sel, &cs);
	if (st != STEP_DONE)
		return st;
	new_cpl = cs_sel & SEL_RPL_MASK;
	if (cs.l && !emu_is_canonical(frame[0]))
		return emu_raise(c, EXC_GP(0));
	/* IA-32e mode always pops SS:RSP; a null SS only for 64-bit code below CPL3. */
	if (!(ss_sel & ~SEL_RPL_MASK) && (!cs.l || new_cpl == 3))
		return emu_raise(c, EXC_GP(0));
	if ((ss_sel & SEL_RPL_MASK) != new_cpl)
		return emu_raise(c, EXC_GP(ss_sel & SEL_ERR_MASK));
	st = emu_load_ss(c, ss_sel, new_cpl, &ss, false, iret_ss_np_vector(cpu));
	if (st != STEP_DONE)
		return st;

	iret_load_rflags(c, cpl, frame[2]);
	cpu->rip = cs.l ? frame[0] : (u32)frame[0];
	cpu->cs = cs;
	cpu->ss = ss;
	cpu->gpr[EMU_RSP] = frame[3];
	c->keep_rip = true;
	return STEP_DONE;
}

/*
 * iret with a 32-bit operand size in legacy protected mode (SDM Vol. 2A
 * IRET, "PROTECTED-MODE" and "RETURN-TO-SAME-PRIVILEGE-LEVEL" / "-OUTER-"):
 * pop EIP, CS, EFLAGS, and to an outer level ESP and SS; EFLAGS loaded
 * under do_iretq's rules. LIMITATION: a task return (NT = 1), a return to
 * virtual-8086 mode, 16-bit iret and 16-bit stacks stop the VM.
 */
static enum step do_iret_legacy(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned cpl = emu_cpl_of(cpu), new_cpl;
	u32 esp = (u32)cpu->gpr[EMU_RSP], frame[5];
	struct emu_seg cs, ss = cpu->ss;
	enum step st;
	bool outer;

	if ((cpu->efer & EFER_LMA) || !cpu->cs.db || !cpu->ss.db ||
	    (cpu->rflags & (RFLAGS_NT | RFLAGS_VM)))
		return STEP_UNKNOWN;
	st = emu_mem_read(c, (u32)(ss.base + esp), frame, 3 * 4, emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	if ((frame[2] & RFLAGS_VM) && cpl == 0)
		return STEP_UNKNOWN; /* to virtual-8086 mode */
	st = iret_code_seg(c, (u16)frame[1], &cs);
	if (st != STEP_DONE)
		return st;
	cs.l = 0; /* L is ignored outside IA-32e mode */
	new_cpl = frame[1] & SEL_RPL_MASK;
	outer = new_cpl > cpl;
	if (outer) {
		st = emu_mem_read(c, (u32)(ss.base + esp + 3 * 4), &frame[3], 2 * 4,
				  emu_data_access(cpu, 0));
		if (st != STEP_DONE)
			return st;
		st = emu_load_ss(c, (u16)frame[4], new_cpl, &ss, false, iret_ss_np_vector(cpu));
		if (st != STEP_DONE)
			return st;
		if (!ss.db)
			return STEP_UNKNOWN;
	}
	if (frame[0] > cs.limit)
		return emu_raise(c, EXC_GP(0));

	iret_load_rflags(c, cpl, frame[2]);
	cpu->rip = frame[0];
	cpu->cs = cs;
	if (outer) {
		cpu->ss = ss;
		cpu->gpr[EMU_RSP] = frame[3];
	} else {
		cpu->gpr[EMU_RSP] = (u32)(esp + 3 * 4);
	}
	c->keep_rip = true;
	return STEP_DONE;
}

bool emu_seg_equal(const struct emu_seg *a, const struct emu_seg *b)
{
	return a->base == b->base && a->limit == b->limit && a->sel == b->sel &&
	       a->type == b->type && a->s == b->s && a->dpl == b->dpl && a->present == b->present &&
	       a->avl == b->avl && a->l == b->l && a->db == b->db && a->g == b->g;
}

/*
 * do_iretq's segment checks (iret_code_seg, emu_load_ss) for a return to
 * CPL0 64-bit code, the case where they can leave everything as it is.
 */
bool emu_iret_keeps_segs(const struct emu_cpu *cpu, u64 cs_desc, u64 ss_desc)
{
	u16 cs_sel = cpu->cs.sel, ss_sel = cpu->ss.sel;
	struct emu_seg cs, ss;

	if (emu_cpl_of(cpu) != 0 || !emu_long64(cpu) || !(cs_sel & ~SEL_RPL_MASK) ||
	    (cs_sel & SEL_RPL_MASK) || (ss_sel & SEL_RPL_MASK))
		return false;
	if (!(cs_desc & DESC_S) || !(desc_type(cs_desc) & DESC_TYPE_CODE) || desc_dpl(cs_desc) ||
	    !(cs_desc & DESC_L) || (cs_desc & DESC_DB) || !(cs_desc & DESC_P))
		return false;
	emu_seg_from_desc(&cs, cs_sel, cs_desc);
	cs.base = 0;
	if (!(ss_sel & ~SEL_RPL_MASK)) {
		ss = (struct emu_seg){ .sel = ss_sel }; /* as emu_load_ss: null, DPL = CPL = 0 */
	} else {
		if (!(ss_desc & DESC_S) || (desc_type(ss_desc) & DESC_TYPE_CODE) ||
		    !(desc_type(ss_desc) & DESC_TYPE_WRITABLE) || desc_dpl(ss_desc) ||
		    !(ss_desc & DESC_P))
			return false;
		emu_seg_from_desc(&ss, ss_sel, ss_desc);
	}
	return emu_seg_equal(&cs, &cpu->cs) && emu_seg_equal(&ss, &cpu->ss);
}

/* ---- item 2: sysret, syscall --------------------------------------------- */

/*
 * sysret (SDM Vol. 2B SYSRET): #UD if EFER.SCE = 0, #GP(0) at CPL > 0 or,
 * for sysretq, a non-canonical RCX. To CPL3: CS = STAR[63:48] + 16 (sysretq)
 * or STAR[63:48] (32-bit), SS = STAR[63:48] + 8, RFLAGS from R11.
 */
static enum step do_sysret(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	bool q = c->x86->rex & REX_W;
	u16 base = (u16)(cpu->virt.star >> STAR_SYSRET_CS_SHIFT);
	u64 old = cpu->rflags;

	if (!(cpu->efer & EFER_SCE) || !emu_long64(cpu))
		return emu_raise(c, EXC_UD());
	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	if (q && !emu_is_canonical(cpu->gpr[EMU_RCX]))
		return emu_raise(c, EXC_GP(0));
	cpu->rip = q ? cpu->gpr[EMU_RCX] : (u32)cpu->gpr[EMU_RCX];
	cpu->rflags = (cpu->gpr[EMU_R11] & SYSRET_RFLAGS_MASK) | RFLAGS_FIXED;
	cpu->cs = flat_seg((u16)((q ? base + 16 : base) | 3), 3, true, q);
	cpu->ss = flat_seg((u16)((base + 8) | 3), 3, false, false);
	c->keep_rip = true;
	if (!(old & RFLAGS_IF) && (cpu->rflags & RFLAGS_IF))
		c->notes |= EMU_NOTE_IF_SET;
	return STEP_DONE;
}

/*
 * SYSCALL's availability (SDM Vol. 2B SYSCALL; AMD APM Vol. 3 SYSCALL):
 * EFER.SCE and IA-32e mode, in 64-bit code, or in compatibility mode on a
 * CPU that allows it there (virt.syscall_compat: AMD's), which enters at
 * CSTAR instead of LSTAR.
 */
static bool syscall_ok(const struct emu_cpu *cpu)
{
	return (cpu->efer & EFER_SCE) && (cpu->efer & EFER_LMA) &&
	       (cpu->cs.l || cpu->virt.syscall_compat);
}

/* SYSCALL's effect, from the instruction at cpu->rip, `insn_len` bytes. */
static void syscall_apply(struct emu_cpu *cpu, unsigned insn_len)
{
	u16 sel = (u16)(cpu->virt.star >> STAR_SYSCALL_CS_SHIFT) & SEL_ERR_MASK;
	bool compat = !cpu->cs.l;

	cpu->gpr[EMU_RCX] = compat ? (u32)(cpu->rip + insn_len) : cpu->rip + insn_len;
	cpu->gpr[EMU_R11] = cpu->rflags & ~RFLAGS_RF;
	cpu->rflags &= ~(cpu->virt.sfmask | RFLAGS_RF);
	cpu->rflags |= RFLAGS_FIXED;
	cpu->cs = flat_seg(sel, 0, true, true);
	cpu->ss = flat_seg((u16)(sel + 8), 0, false, false);
	cpu->rip = compat ? cpu->virt.cstar : cpu->virt.lstar;
	cpu->virt.int_shadow = false;
}

/* The syscall instruction itself, where it trapped at the guest's RIP (a #UD). */
static enum step do_syscall(struct insn_ctx *c)
{
	if (!syscall_ok(c->cpu))
		return emu_raise(c, EXC_UD());
	syscall_apply(c->cpu, c->insn->size);
	c->keep_rip = true;
	return STEP_DONE;
}

/*
 * sysenter (SDM Vol. 2B SYSENTER), the way into the kernel of a 32-bit
 * vDSO: #UD in IA-32e mode on AMD's CPUs (APM Vol. 3; virt.syscall_compat);
 * #GP(0) while IA32_SYSENTER_CS[15:2] is 0. Else IF, RF (and VM) cleared,
 * RSP = SYSENTER_ESP, RIP = SYSENTER_EIP, CS = SYSENTER_CS & ~3 (flat
 * code, DPL0: 64-bit in IA-32e mode, else 32-bit, with ESP and EIP the
 * MSRs' low halves), SS = CS + 8: virtual CPL 0. RCX and R11 keep their
 * values; the guest saved what it needs in user mode. A 32-bit kernel
 * (Debian's 686-pae) takes its processes' system calls so: at real CPL3 in
 * compatibility mode the instruction #UDs on AMD's CPUs, and on Intel's
 * would enter the VM's own 64-bit SYSENTER_EIP; either way the VMM gets it.
 */
static enum step do_sysenter(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	u16 sel = (u16)cpu->virt.sysenter_cs & SEL_ERR_MASK;
	bool lma = cpu->efer & EFER_LMA;

	if (lma && cpu->virt.syscall_compat)
		return emu_raise(c, EXC_UD());
	if (!sel)
		return emu_raise(c, EXC_GP(0));
	cpu->rflags &= ~(RFLAGS_IF | RFLAGS_RF | RFLAGS_VM);
	cpu->gpr[EMU_RSP] = lma ? cpu->virt.sysenter_esp : (u32)cpu->virt.sysenter_esp;
	cpu->rip = lma ? cpu->virt.sysenter_eip : (u32)cpu->virt.sysenter_eip;
	cpu->cs = flat_seg(sel, 0, true, lma);
	cpu->ss = flat_seg((u16)(sel + 8), 0, false, false);
	c->keep_rip = true;
	return STEP_DONE;
}

/*
 * sysexit (SDM Vol. 2B SYSEXIT), back to user mode from CPL 0: #GP(0) at
 * another CPL or while IA32_SYSENTER_CS[15:2] is 0. CS = (SYSENTER_CS +
 * 16) | 3, flat 32-bit code, SS = (SYSENTER_CS + 24) | 3, ESP = ECX, EIP =
 * EDX; with REX.W (64-bit mode) CS = + 32, 64-bit, SS = + 40, RSP = RCX,
 * RIP = RDX, #GP(0) if either is not canonical. RFLAGS as they are: the
 * kernel's sti before it is what enables interrupts.
 */
static enum step do_sysexit(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	u16 sel = (u16)cpu->virt.sysenter_cs & SEL_ERR_MASK;
	bool q = emu_opsize(c) == 8;
	u64 sp = cpu->gpr[EMU_RCX], ip = cpu->gpr[EMU_RDX];

	if (!sel || emu_cpl_of(cpu) != 0)
		return emu_raise(c, EXC_GP(0));
	if (q && (!emu_is_canonical(sp) || !emu_is_canonical(ip)))
		return emu_raise(c, EXC_GP(0));
	cpu->gpr[EMU_RSP] = q ? sp : (u32)sp;
	cpu->rip = q ? ip : (u32)ip;
	cpu->cs = flat_seg((u16)((sel + (q ? 32 : 16)) | 3), 3, true, q);
	cpu->ss = flat_seg((u16)((sel + (q ? 40 : 24)) | 3), 3, false, false);
	c->keep_rip = true;
	return STEP_DONE;
}

enum emu_result emu_syscall_entry(struct emu_cpu *cpu, const struct emu_ops *ops, unsigned insn_len,
				  struct emu_report *rep)
{
	unsigned cpl = emu_cpl_of(cpu);

	memset(rep, 0, sizeof(*rep));
	memcpy(rep->mnemonic, "syscall", sizeof("syscall"));
	if (!syscall_ok(cpu)) {
		struct emu_event ud = EXC_UD();
		enum emu_result r;

		rep->faulted = true;
		rep->fault_vector = X86_EXC_UD;
		r = ops->deliver(ops->opaque, cpu, &ud);
		rep->delivery_refused = r == EMU_UNKNOWN;
		if (r == EMU_DONE && emu_cpl_of(cpu) != cpl)
			rep->notes |= EMU_NOTE_CPL;
		return r;
	}
	syscall_apply(cpu, insn_len);
	cpu->dirty |= EMU_DIRTY_REGS | EMU_DIRTY_SREGS | EMU_DIRTY_VIRT;
	if (cpl != 0)
		rep->notes |= EMU_NOTE_CPL;
	return EMU_DONE;
}

/* ---- item 3: far transfers ---------------------------------------------- */

/* The new RIP of a far transfer into `cs`: #GP(0) if non-canonical for 64-bit code. */
static enum step far_target(struct insn_ctx *c, const struct emu_seg *cs, u64 ip, u64 *rip)
{
	if (cs->l && (c->cpu->efer & EFER_LMA)) {
		if (!emu_is_canonical(ip))
			return emu_raise(c, EXC_GP(0));
		*rip = ip;
	} else {
		*rip = (u32)ip; /* LIMITATION: the CS limit is not checked */
	}
	return STEP_DONE;
}

/*
 * ret far [imm16] (SDM Vol. 2B RET, protected mode): pop IP and CS; to the
 * same level, done; to an outer level (CS.RPL > CPL) also pop SP and SS.
 * imm16 bytes are released from each stack.
 */
static enum step do_retf(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	const cs_x86_op *imm = emu_op(c, 0);
	unsigned size = emu_opsize(c), cpl = emu_cpl_of(cpu), new_cpl;
	u64 release = imm && imm->type == X86_OP_IMM ? (u16)imm->imm : 0;
	u64 ip = 0, sel = 0, new_sp = 0, new_ss = 0, la, rip = 0;
	struct emu_seg cs, ss = cpu->ss;
	enum step st = emu_stack_la(c, 0, 2 * size, &la);

	if (st == STEP_DONE)
		st = emu_mem_read(c, la, &ip, size, emu_data_access(cpu, 0));
	if (st == STEP_DONE)
		st = emu_mem_read(c, la + size, &sel, size, emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	st = iret_code_seg(c, (u16)sel, &cs);
	if (st != STEP_DONE)
		return st;
	new_cpl = sel & SEL_RPL_MASK;
	new_sp = cpu->gpr[EMU_RSP] + 2 * size + release;
	if (new_cpl > cpl) {
		st = emu_stack_la(c, (s64)(2 * size + release), 2 * size, &la);
		if (st == STEP_DONE)
			st = emu_mem_read(c, la, &new_sp, size, emu_data_access(cpu, 0));
		if (st == STEP_DONE)
			st = emu_mem_read(c, la + size, &new_ss, size, emu_data_access(cpu, 0));
		if (st != STEP_DONE)
			return st;
		if (((u16)new_ss & SEL_RPL_MASK) != new_cpl)
			return emu_raise(c, EXC_GP((u16)new_ss & SEL_ERR_MASK));
		st = emu_load_ss(c, (u16)new_ss, new_cpl, &ss, false, X86_EXC_SS);
		if (st != STEP_DONE)
			return st;
		new_sp += release;
	}
	st = far_target(c, &cs, ip, &rip);
	if (st != STEP_DONE)
		return st;
	cpu->cs = cs;
	cpu->ss = ss;
	cpu->rip = rip;
	emu_set_sp(cpu, new_sp);
	c->keep_rip = true;
	return STEP_DONE;
}

/*
 * The operand of a far jmp or call: a direct ptr16:16/32 (outside 64-bit
 * mode) or m16:16/32/64, whose offset is operand-size bytes. REX.W makes
 * the operand m16:64 (Intel's CPUs), or leaves it m16:32 (AMD's:
 * virt.far_ptr_m16_32).
 */
static enum step far_pointer(struct insn_ctx *c, u16 *sel, u64 *ip)
{
	const struct emu_cpu *cpu = c->cpu;
	const cs_x86_op *op0 = emu_op(c, 0), *op1 = emu_op(c, 1);
	unsigned size = emu_opsize(c);
	enum step st;
	u64 la;

	if (op0 && op1 && op0->type == X86_OP_IMM && op1->type == X86_OP_IMM) {
		*sel = (u16)op0->imm;
		*ip = (u64)op1->imm;
		return STEP_DONE;
	}
	if (!op0 || op0->type != X86_OP_MEM)
		return STEP_UNKNOWN;
	if (size == 8 && cpu->virt.far_ptr_m16_32)
		size = 4;
	st = emu_operand_la(c, op0, &la);
	if (st == STEP_DONE)
		st = emu_mem_read(c, la, ip, size, emu_data_access(cpu, 0));
	if (st == STEP_DONE)
		st = emu_mem_read(c, la + size, sel, sizeof(*sel), emu_data_access(cpu, 0));
	return st;
}

/*
 * The code segment a far jmp or call to `sel` enters, without a gate (SDM
 * Vol. 2A JMP and CALL, protected mode): conforming code needs DPL <= CPL,
 * non-conforming RPL <= CPL and DPL = CPL; CS gets RPL = CPL. In IA-32e
 * mode a system descriptor other than a call gate is #GP(sel): there are no
 * task switches (SDM Vol. 2A JMP, 64-bit mode).
 * LIMITATION: call gates, and task gates and TSS selectors outside IA-32e
 * mode, stop the VM.
 */
static enum step far_code_seg(struct insn_ctx *c, u16 sel, struct emu_seg *cs)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned cpl = emu_cpl_of(cpu), type;
	u32 err = sel & SEL_ERR_MASK;
	u64 desc, la;
	enum step st;

	if (!(sel & ~SEL_RPL_MASK))
		return emu_raise(c, EXC_GP(0));
	st = emu_read_desc(c, sel, &desc, &la);
	if (st != STEP_DONE)
		return st;
	type = desc_type(desc);
	if (!(desc & DESC_S))
		return (cpu->efer & EFER_LMA) && type != SYS_TYPE_CALL_GATE64
			       ? emu_raise(c, EXC_GP(err))
			       : STEP_UNKNOWN;
	if (!(type & DESC_TYPE_CODE))
		return emu_raise(c, EXC_GP(err));
	if ((type & DESC_TYPE_CONFORMING) ? desc_dpl(desc) > cpl
					  : (sel & SEL_RPL_MASK) > cpl || desc_dpl(desc) != cpl)
		return emu_raise(c, EXC_GP(err));
	if ((cpu->efer & EFER_LMA) && (desc & DESC_L) && (desc & DESC_DB))
		return emu_raise(c, EXC_GP(err));
	if (!(desc & DESC_P))
		return emu_raise(c, EXC_NP(err));
	emu_seg_from_desc(cs, (u16)((sel & ~SEL_RPL_MASK) | cpl), desc);
	if (!(cpu->efer & EFER_LMA))
		cs->l = 0; /* L is ignored outside IA-32e mode */
	if (cs->l)
		cs->base = 0;
	return STEP_DONE;
}

/* Where a far jmp or call goes: its operand, the code segment's checks, the new RIP. */
static enum step far_destination(struct insn_ctx *c, struct emu_seg *cs, u64 *rip)
{
	u64 ip = 0;
	u16 sel = 0;
	enum step st = far_pointer(c, &sel, &ip);

	if (st == STEP_DONE)
		st = far_code_seg(c, sel, cs);
	if (st == STEP_DONE)
		st = far_target(c, cs, ip, rip);
	return st;
}

/* jmp far (SDM Vol. 2A JMP). */
static enum step do_ljmp(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	struct emu_seg cs;
	u64 rip = 0;
	enum step st = far_destination(c, &cs, &rip);

	if (st != STEP_DONE)
		return st;
	cpu->cs = cs;
	cpu->rip = rip;
	c->keep_rip = true;
	return STEP_DONE;
}

/*
 * call far to a code segment (SDM Vol. 2A CALL, protected mode and IA-32e
 * mode, same privilege): jmp far's checks, then CS and the return IP
 * pushed as operand-size slots (CS zero-extended), both or neither.
 * memtest86+'s ia32 image calls so from its 64-bit interrupt stubs into its
 * 32-bit handlers, which return with retf.
 */
static enum step do_lcall(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	struct emu_seg cs;
	unsigned push = emu_opsize(c); /* AMD: REX.W pushes 8-byte slots from an m16:32 */
	u64 rip = 0, la, ret = cpu->rip + c->insn->size, old_cs = cpu->cs.sel;
	u8 frame[16];
	enum step st = far_destination(c, &cs, &rip);

	if (st == STEP_DONE)
		st = emu_stack_la(c, -2 * (s64)push, 2 * push, &la);
	if (st != STEP_DONE)
		return st;
	/* The low `push` bytes of each (x86 is little-endian): IP below CS. */
	memcpy(frame, &ret, push);
	memcpy(frame + push, &old_cs, push);
	st = emu_mem_write(c, la, frame, 2 * push, emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	emu_set_sp(cpu, cpu->gpr[EMU_RSP] - 2 * push);
	cpu->cs = cs;
	cpu->rip = rip;
	c->keep_rip = true;
	return STEP_DONE;
}

enum step emu_dispatch_xfer(struct insn_ctx *c)
{
	switch (c->insn->id) {
	case X86_INS_IRETQ: return do_iretq(c);
	case X86_INS_IRETD: return do_iret_legacy(c);
	case X86_INS_SYSRET: return do_sysret(c);
	case X86_INS_SYSCALL: return do_syscall(c);
	case X86_INS_SYSENTER: return do_sysenter(c);
	case X86_INS_SYSEXIT: return do_sysexit(c);
	case X86_INS_RETF:
	case X86_INS_RETFQ: return do_retf(c);
	case X86_INS_LJMP: return do_ljmp(c);
	case X86_INS_LCALL: return do_lcall(c);
	default: return STEP_UNKNOWN;
	}
}
