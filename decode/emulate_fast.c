// SPDX-License-Identifier: MIT
/*
 * decode/emulate_fast: emu_fast_insn (decode/emulate.h), a short list of
 * unprivileged instructions decoded from their raw bytes and run without
 * capstone, with the emulator's own memory path (decode/emulate.c), so a
 * store lands exactly as emu_insn's would: A/D bits, write-protected
 * guest tables and scanned code through ops->write.
 *
 * Why: emu_insn costs about a microsecond an instruction (capstone's
 * detailed decode and the operand walk), as much as the trap a run-ahead
 * saves when it takes forty of them (vmm/shadow_mode.c, the entry
 * run-ahead). The forms here are the ones Linux's exception and interrupt
 * entry runs before its swapgs; tests/unit/test_emulate_fast.c checks
 * every one against emu_insn on random state.
 *
 * Exactness: each form is decoded completely (any prefix but one REX, or a
 * ModRM other than the listed ones, is not ours) and completes or changes
 * nothing: every fault, a non-canonical address or target, and MMIO are
 * left to the CPU, which takes them natively when the guest runs it. So are
 * the guest's breakpoints: an instruction with an instruction breakpoint on
 * it, or whose access touches a data breakpoint (decode/debugreg.h), is not
 * ours; the CPU fires them when the guest runs it.
 */
#include <string.h>

#include "decode/debugreg.h"
#include "decode/emulate_internal.h"
#include "decode/flags.h"
#include "shadow/x86.h"
#include "umbra/le.h"

/*
 * The memory operand [rsp + disp8] or [rsp + disp32] (ModRM mod 1 or 2,
 * rm 100, SIB 0x24: no index, base RSP; REX.X and REX.B clear) at
 * code[at]; its displacement in *disp and the bytes after the ModRM in
 * *extra. False for any other ModRM.
 */
static bool rsp_operand(const u8 *code, unsigned n, unsigned at, u8 rex, s32 *disp, unsigned *extra)
{
	unsigned mod, dlen;

	if (at + 2 > n || (rex & (REX_X | REX_B)))
		return false;
	mod = code[at] >> 6;
	if ((mod != 1 && mod != 2) || (code[at] & 7) != 4 || code[at + 1] != 0x24)
		return false;
	dlen = mod == 1 ? 1 : 4;
	if (at + 2 + dlen > n)
		return false;
	*disp = mod == 1 ? (s32)(s8)code[at + 2] : (s32)le_get32(code, at + 2);
	*extra = 1 + 1 + dlen;
	return true;
}

/*
 * One 8-byte or 1-byte data access at la, a read or a store of buf; false,
 * nothing stored, if it would fault or a byte of it is not RAM (MMIO is
 * emu_insn's, or the CPU's).
 */
static bool data_access(struct insn_ctx *c, u64 la, void *buf, unsigned len, bool write)
{
	struct mem_ref m;

	if (!emu_is_canonical(la) || !emu_is_canonical(la + len - 1))
		return false;
	if (emu_data_watched(c, la, len, write)) /* before any store: one access per instruction */
		return false;
	if (emu_mem_map(c, la, len, emu_data_access(c->cpu, write ? EMU_ACC_WRITE : 0), &m) !=
	    STEP_DONE)
		return false;
	for (unsigned i = 0; i < m.npieces; i++)
		if (!m.piece[i].hva)
			return false;
	return (write ? emu_mem_store(c, &m, buf) : emu_mem_load(c, &m, buf)) == STEP_DONE;
}

static bool push64(struct insn_ctx *c, u64 v)
{
	u64 sp = c->cpu->gpr[EMU_RSP] - 8;

	if (!data_access(c, sp, &v, 8, true))
		return false;
	c->cpu->gpr[EMU_RSP] = sp;
	return true;
}

/* The instruction at code[0..n) run on c->cpu; false: not ours, nothing changed. */
static bool run(struct insn_ctx *c, const u8 *code, unsigned n)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned i = 0, reg, extra;
	u8 rex = 0, op;
	s32 disp;
	u64 v;

	if (n && (code[0] & 0xf0) == 0x40)
		rex = code[i++];
	if (i >= n)
		return false;
	op = code[i++];
	c->next_rip = cpu->rip + i;
	if (op >= 0x50 && op <= 0x57) { /* push r64 */
		reg = (op & 7) | (rex & REX_B ? 8 : 0);
		return push64(c, cpu->gpr[reg]);
	}
	switch (op) {
	case 0x90: /* nop (a REX.B one is xchg %r8,%rax) */ return !(rex & REX_B);
	case 0xeb: /* jmp rel8 */
		if (rex || i + 1 > n)
			return false;
		c->next_rip += 1 + (u64)(s64)(s8)code[i];
		return emu_is_canonical(c->next_rip);
	case 0xe9: /* jmp rel32 */
		if (rex || i + 4 > n)
			return false;
		c->next_rip += 4 + (u64)(s64)(s32)le_get32(code, i);
		return emu_is_canonical(c->next_rip);
	case 0x6a: /* push imm8, sign-extended */
		if (i + 1 > n)
			return false;
		c->next_rip += 1;
		return push64(c, (u64)(s64)(s8)code[i]);
	case 0x68: /* push imm32, sign-extended */
		if (i + 4 > n)
			return false;
		c->next_rip += 4;
		return push64(c, (u64)(s64)(s32)le_get32(code, i));
	case 0xe8: /* call rel32 */
		if (i + 4 > n)
			return false;
		c->next_rip += 4;
		v = c->next_rip;
		c->next_rip += (u64)(s64)(s32)le_get32(code, i);
		if (!emu_is_canonical(c->next_rip)) /* #GP at the call: the CPU's */
			return false;
		return push64(c, v);
	case 0xfc: /* cld */
		if (rex)
			return false;
		cpu->rflags &= ~RFLAGS_DF;
		return true;
	case 0x31:
	case 0x33: { /* xor r, r: the zeroing idiom only */
		unsigned size = rex & REX_W ? 8 : 4, rm;

		if (i >= n || code[i] >> 6 != 3)
			return false;
		reg = ((code[i] >> 3) & 7) | (rex & REX_R ? 8 : 0);
		rm = (code[i] & 7) | (rex & REX_B ? 8 : 0);
		if (reg != rm)
			return false;
		c->next_rip += 1;
		cpu->gpr[reg] =
			flags_logic(0, size, &cpu->rflags); /* a 32-bit write zero-extends */
		return true;
	}
	case 0x89:
	case 0x8b: /* mov [rsp + disp], r64 / mov r64, [rsp + disp] */
		if (!(rex & REX_W) || !rsp_operand(code, n, i, rex, &disp, &extra))
			return false;
		reg = ((code[i] >> 3) & 7) | (rex & REX_R ? 8 : 0);
		c->next_rip += extra;
		if (op == 0x89)
			return data_access(c, cpu->gpr[EMU_RSP] + (u64)(s64)disp, &cpu->gpr[reg], 8,
					   true);
		if (!data_access(c, cpu->gpr[EMU_RSP] + (u64)(s64)disp, &v, 8, false))
			return false;
		cpu->gpr[reg] = v;
		return true;
	case 0xf6: { /* test imm8, byte [rsp + disp] */
		u8 b;

		if (rex || i >= n || ((code[i] >> 3) & 7) != 0 ||
		    !rsp_operand(code, n, i, 0, &disp, &extra) || i + extra + 1 > n)
			return false;
		if (!data_access(c, cpu->gpr[EMU_RSP] + (u64)(s64)disp, &b, 1, false))
			return false;
		c->next_rip += extra + 1;
		flags_logic(b & code[i + extra], 1, &cpu->rflags);
		return true;
	}
	case 0x0f:
		if (rex || i >= n)
			return false;
		if (code[i] == 0x1f && i + 1 < n && ((code[i + 1] >> 3) & 7) == 0 &&
		    code[i + 1] >> 6 == 0 && (code[i + 1] & 7) == 0) {
			c->next_rip += 2; /* nopl (%rax): the one ModRM Linux's 3-byte nop uses */
			return true;
		}
		if (i + 5 > n || (code[i] & 0xf0) != 0x80) /* jcc rel32 */
			return false;
		c->next_rip += 5;
		if (flags_cond(cpu->rflags, code[i] & 15))
			c->next_rip += (u64)(s64)(s32)le_get32(code, i + 1);
		return emu_is_canonical(c->next_rip);
	default:
		if (op >= 0x70 && op <= 0x7f && !rex && i + 1 <= n) { /* jcc rel8 */
			c->next_rip += 1;
			if (flags_cond(cpu->rflags, op & 15))
				c->next_rip += (u64)(s64)(s8)code[i];
			return emu_is_canonical(c->next_rip);
		}
		return false;
	}
}

enum emu_fast emu_fast_insn(struct emu_cpu *cpu, const struct emu_ops *ops)
{
	struct emu_cpu work;
	struct insn_ctx c = { .cpu = &work, .ops = ops };
	u8 code[EMU_MAX_INSN_LEN];
	struct emu_event fault;
	bool faulted;
	unsigned n;

	/* CPL0: no alignment check (#AC) to mind, the only use of it (the entry run-ahead). */
	if (!emu_long64(cpu) || cpu->mode != EMU_MODE_SHADOW || !ops->map_phys ||
	    emu_cpl_of(cpu) != 0 ||
	    dr_exec_hits(cpu->virt.dr, cpu->virt.dr7, cpu->cs.base + cpu->rip))
		return EMU_FAST_NO;
	/* As emu_insn fetches (A bits); a fetch that faults is the CPU's to take. */
	n = emu_fetch(cpu, ops, code, &fault, &faulted);
	work = *cpu;
	if (!run(&c, code, n))
		return EMU_FAST_NO;
	work.rip = c.next_rip;
	work.rflags &= ~RFLAGS_RF; /* the instruction completed (SDM §17.3.1.1) */
	work.virt.int_shadow = false;
	work.dirty |= EMU_DIRTY_REGS;
	*cpu = work;
	return EMU_FAST_DONE;
}
