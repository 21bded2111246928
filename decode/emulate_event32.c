// SPDX-License-Identifier: MIT
/*
 * Event delivery in legacy protected mode (CR0.PE = 1, EFER.LMA = 0), for
 * emu_deliver_event (emulate_event.c item 2 does IA-32e mode). SDM Vol. 3A
 * §6.10 to §6.12 and Vol. 2A INT n's "PROTECTED-MODE" operation:
 *
 *  1. the gate: IDT entries of 8 bytes; a 32-bit interrupt or trap gate;
 *     a software interrupt checks the gate's DPL against CPL; #NP if the
 *     gate is not present;
 *  2. the target code segment (GDT only, as in IA-32e mode), its DPL at
 *     most CPL, present, the entry point within its limit;
 *  3. the stack: a handler at an inner level runs on SSn:ESPn from the
 *     32-bit TSS, checked as the CPU checks it (#TS, #SS); at the same
 *     level it continues on SS:ESP;
 *  4. the 32-bit frame: [SS, ESP,] EFLAGS, CS, EIP[, error code], each 4
 *     bytes; then CS:EIP from the gate, TF/NT/RF/VM cleared, and IF for an
 *     interrupt gate.
 *
 * LIMITATION: task gates and 16-bit gates, 16-bit stacks (SS.B = 0) and
 * virtual-8086 mode stop the VM (EMU_UNKNOWN); segment limits other than
 * the entry point's are not checked (as in emulate_mem.c).
 */
#include "decode/emulate_internal.h"
#include "shadow/x86.h"

#define IDT32_ENTRY_SIZE 8
#define GATE_TYPE_INTR32 0xe
#define GATE_TYPE_TRAP32 0xf
#define GATE_TYPE_TASK	 0x5
#define GATE_TYPE_INTR16 0x6
#define GATE_TYPE_TRAP16 0x7
#define ERR_IDT		 (1u << 1)
/* 32-bit TSS (SDM Vol. 3A §7.2.1, Figure 7-2): ESPn at 4 + 8n, SSn at 8 + 8n. */
#define TSS32_ESP0 0x04
#define TSS32_SS0  0x08

/* Item 3: SSn:ESPn from the TSS, checked for the new level (INT n, "INTER-PRIVILEGE-LEVEL"). */
static enum step tss_stack(struct insn_ctx *c, unsigned new_cpl, u32 ext, struct emu_seg *ss,
			   u32 *esp)
{
	struct emu_cpu *cpu = c->cpu;
	u32 off = TSS32_ESP0 + new_cpl * 8u;
	u16 ss_sel;
	u64 desc, la;
	enum step st;

	if (off + 5 > cpu->tr_limit)
		return emu_raise(c, EXC_TS((cpu->tr_sel & SEL_ERR_MASK) + ext));
	st = emu_sys_read(c, cpu->tr_base + off, esp, sizeof(*esp));
	if (st == STEP_DONE)
		st = emu_sys_read(c, cpu->tr_base + off + (TSS32_SS0 - TSS32_ESP0), &ss_sel,
				  sizeof(ss_sel));
	if (st != STEP_DONE)
		return st;
	if (!(ss_sel & ~SEL_RPL_MASK))
		return emu_raise(c, EXC_TS(ext));
	if (!emu_desc_la(cpu, ss_sel, &la))
		return emu_raise(c, EXC_TS((ss_sel & SEL_ERR_MASK) + ext));
	st = emu_sys_read(c, la, &desc, sizeof(desc));
	if (st != STEP_DONE)
		return st;
	switch (emu_ss_seg_check(new_cpl, ss_sel, desc)) {
	case 0: break;
	case X86_EXC_SS: return emu_raise(c, EXC_SS((ss_sel & SEL_ERR_MASK) + ext));
	default: return emu_raise(c, EXC_TS((ss_sel & SEL_ERR_MASK) + ext));
	}
	emu_seg_from_desc(ss, ss_sel, desc);
	return STEP_DONE;
}

/*
 * One delivery attempt of `ev` on c->cpu in legacy protected mode, as
 * emulate_event.c's deliver_once does in IA-32e mode (STEP_FAULT: c->fault
 * stopped it; only CR2 may have changed).
 */
enum step emu_deliver_once_legacy(struct insn_ctx *c, const struct emu_event *ev)
{
	struct emu_cpu *cpu = c->cpu;
	u32 ext = ev->kind == EMU_EV_EXCEPTION ? 1u : 0;
	u32 idt_err = (u32)ev->vector * 8 + ERR_IDT + ext, gate[2], frame[6], esp, entry;
	unsigned cpl = emu_cpl_of(cpu), new_cpl, type, n = 0;
	struct emu_seg cs, ss = cpu->ss;
	u64 desc;
	u16 sel;
	enum step st;

	if (cpu->rflags & RFLAGS_VM)
		return STEP_UNKNOWN; /* virtual-8086 mode: LIMITATION */
	if (ev->has_cr2) {
		cpu->cr2 = ev->cr2;
		cpu->dirty |= EMU_DIRTY_SREGS;
	}
	/* Item 1. */
	if ((u32)ev->vector * IDT32_ENTRY_SIZE + IDT32_ENTRY_SIZE - 1 > cpu->idt_limit)
		return emu_raise(c, EXC_GP(idt_err));
	st = emu_sys_read(c, cpu->idt_base + (u64)ev->vector * IDT32_ENTRY_SIZE, gate,
			  sizeof(gate));
	if (st != STEP_DONE)
		return st;
	type = (gate[1] >> 8) & 0x1f; /* the S bit (12) must be 0: a system descriptor */
	if (type == GATE_TYPE_TASK || type == GATE_TYPE_INTR16 || type == GATE_TYPE_TRAP16)
		return STEP_UNKNOWN; /* LIMITATION (file comment) */
	if (type != GATE_TYPE_INTR32 && type != GATE_TYPE_TRAP32)
		return emu_raise(c, EXC_GP(idt_err));
	if (ev->kind == EMU_EV_SOFT_INT && ((gate[1] >> 13) & 3) < cpl)
		return emu_raise(c, EXC_GP(idt_err));
	if (!(gate[1] & (1u << 15)))
		return emu_raise(c, EXC_NP(idt_err));
	sel = (u16)(gate[0] >> 16);
	entry = (gate[0] & 0xffff) | (gate[1] & 0xffff0000);

	/* Item 2 (emu_gate_target; LIMITATION there: LDT selectors are refused with #GP). */
	st = emu_gate_target(c, sel, ext, &desc, &new_cpl);
	if (st != STEP_DONE)
		return st;
	emu_seg_from_desc(&cs, (u16)((sel & ~SEL_RPL_MASK) | new_cpl), desc);
	if (entry > cs.limit)
		return emu_raise(c, EXC_GP(ext));

	/* Item 3. */
	esp = (u32)cpu->gpr[EMU_RSP];
	if (new_cpl < cpl) {
		st = tss_stack(c, new_cpl, ext, &ss, &esp);
		if (st != STEP_DONE)
			return st;
	}
	if (!ss.db)
		return STEP_UNKNOWN; /* a 16-bit stack: LIMITATION */

	/* Item 4: the frame, from the lowest address up. */
	if (ev->has_error_code)
		frame[n++] = ev->error_code;
	frame[n++] = (u32)cpu->rip;
	frame[n++] = cpu->cs.sel;
	frame[n++] = (u32)(cpu->rflags | (emu_event_is_fault(ev) ? RFLAGS_RF : 0));
	if (new_cpl < cpl) {
		frame[n++] = (u32)cpu->gpr[EMU_RSP];
		frame[n++] = cpu->ss.sel;
	}
	esp -= 4 * n;
	st = emu_mem_write(c, (u32)(ss.base + esp), frame, 4 * n, new_cpl == 3 ? EMU_ACC_USER : 0);
	if (st != STEP_DONE)
		return st;

	cpu->cs = cs;
	cpu->ss = ss;
	cpu->gpr[EMU_RSP] = esp;
	cpu->rip = entry;
	cpu->rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
	if (type == GATE_TYPE_INTR32)
		cpu->rflags &= ~RFLAGS_IF;
	cpu->dirty |= EMU_DIRTY_REGS | EMU_DIRTY_SREGS;
	return STEP_DONE;
}
