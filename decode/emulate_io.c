// SPDX-License-Identifier: MIT
/*
 * Shadow mode: the port instructions in, out, ins and outs (SDM Vol. 2A IN,
 * INS; Vol. 2B OUT, OUTS), as guest user code runs them. The real I/O
 * bitmap refuses every port while guest user code runs (vmm/monitor.h), so
 * each one is a #GP trap that the VMM hands to the emulator; the port
 * itself is ops->pio's.
 *
 * 1. The permission check (SDM Vol. 1 §19.5): allowed if CPL <= IOPL; else
 *    every bit for the accessed ports in the TSS's I/O permission bitmap
 *    must be 0. The CPU reads two bytes of the bitmap, and a bitmap that is
 *    absent or ends before them refuses: #GP(0). Checked before anything
 *    else, also for a rep string whose count is 0.
 * 2. in and out, with an imm8 port or DX: 1, 2 or 4 bytes (REX.W does not
 *    widen them); a 4-byte in zero-extends into RAX.
 * 3. ins and outs, with and without rep (f3 or f2), at most
 *    virt.rep_limit iterations per call, as emulate_mem.c's strings: RCX,
 *    RSI and RDI are exact after each iteration, a fault keeps the
 *    iterations done and the limit leaves RIP on the instruction. Each
 *    iteration translates its memory operand before it touches the port,
 *    so that a fault neither loses an input nor repeats an output. ins
 *    writes ES:RDI (ES's base counts outside 64-bit mode only); outs reads
 *    DS:RSI or the segment of an override.
 */
#include <string.h>

#include "decode/emulate_internal.h"
#include "shadow/x86.h"

/* The TSS's I/O map base field (SDM Vol. 3A §8.7, Figure 8-11). */
#define TSS64_IOMAP_BASE 102u
/* Iterations of one rep ins/outs per call when virt.rep_limit is 0. */
#define IO_REP_LIMIT_DEFAULT 64

/* Item 1's first rule: CPL <= IOPL allows every port. */
static bool iopl_allows(const struct emu_cpu *cpu)
{
	return emu_cpl_of(cpu) <= (unsigned)((cpu->rflags & RFLAGS_IOPL_MASK) >> RFLAGS_IOPL_SHIFT);
}

/* Item 1. STEP_DONE with *ok set; STEP_FAULT if reading the bitmap faulted. */
static enum step io_permitted(struct insn_ctx *c, u16 port, unsigned size, bool *ok)
{
	const struct emu_cpu *cpu = c->cpu;
	u8 bits[2];
	u16 base;
	u64 off;
	enum step st;

	*ok = iopl_allows(cpu);
	if (*ok)
		return STEP_DONE;
	if (cpu->tr_limit < TSS64_IOMAP_BASE + 1)
		return STEP_DONE;
	st = emu_sys_read(c, cpu->tr_base + TSS64_IOMAP_BASE, &base, sizeof(base));
	if (st != STEP_DONE)
		return st;
	off = (u64)base + port / 8;
	if (off + 1 > cpu->tr_limit)
		return STEP_DONE;
	st = emu_sys_read(c, cpu->tr_base + off, bits, sizeof(bits));
	if (st != STEP_DONE)
		return st;
	*ok = !(((unsigned)bits[0] | (unsigned)bits[1] << 8) & (((1u << size) - 1) << (port % 8)));
	return STEP_DONE;
}

/* Item 1 for an instruction: STEP_DONE if allowed, else its #GP(0) (or the bitmap read's #PF). */
static enum step io_check(struct insn_ctx *c, u16 port, unsigned size)
{
	bool ok;
	enum step st = io_permitted(c, port, size, &ok);

	if (st != STEP_DONE)
		return st;
	return ok ? STEP_DONE : emu_raise(c, EXC_GP(0));
}

bool emu_io_permitted(const struct emu_cpu *cpu, const struct emu_ops *ops, u16 port, unsigned size)
{
	struct emu_cpu work;
	struct insn_ctx c = { .cpu = &work, .ops = ops };
	bool ok = false;

	/*
	 * The guest kernel's own I/O exits ask this each time (vmm/shadow_mode.c):
	 * answer them without the copy a bitmap read needs.
	 */
	if (iopl_allows(cpu))
		return true;
	work = *cpu;
	return io_permitted(&c, port, size, &ok) == STEP_DONE && ok;
}

/* Item 2. */
static enum step do_in_out(struct insn_ctx *c, u8 opc, unsigned size)
{
	struct emu_cpu *cpu = c->cpu;
	bool imm = !(opc & 0x08), out = opc & 0x02;
	/* The imm8 port is the instruction's last byte. */
	u16 port = imm ? c->insn->bytes[c->insn->size - 1] : (u16)cpu->gpr[EMU_RDX];
	u8 data[4] = { 0 };
	u32 v = 0;
	enum step st = io_check(c, port, size);

	if (st != STEP_DONE)
		return st;
	memcpy(data, &cpu->gpr[EMU_RAX], size);
	if (!c->ops->pio(c->ops->opaque, port, data, size, out))
		return STEP_HOST_ERROR;
	if (out)
		return STEP_DONE;
	memcpy(&v, data, size);
	cpu->gpr[EMU_RAX] = size == 4 ? v : (cpu->gpr[EMU_RAX] & ~((1ull << (8 * size)) - 1)) | v;
	cpu->dirty |= EMU_DIRTY_REGS;
	return STEP_DONE;
}

/* Item 3. */
static enum step do_io_string(struct insn_ctx *c, bool out, unsigned size)
{
	struct emu_cpu *cpu = c->cpu;
	bool rep = c->x86->prefix[0] == PREFIX_REP || c->x86->prefix[0] == PREFIX_REPNE;
	unsigned limit = emu_rep_limit(cpu, IO_REP_LIMIT_DEFAULT);
	u16 port = (u16)cpu->gpr[EMU_RDX];
	enum emu_gpr idx = out ? EMU_RSI : EMU_RDI;
	x86_reg seg = out ? emu_string_src_seg(c) : X86_REG_ES;
	s64 step = (cpu->rflags & RFLAGS_DF) ? -(s64)size : (s64)size;
	u64 mask = emu_addr_mask(c);
	unsigned done = 0;
	enum step st = io_check(c, port, size);

	if (st != STEP_DONE)
		return st;
	while (!rep || (cpu->gpr[EMU_RCX] & mask) != 0) {
		u8 data[4] = { 0 };
		struct mem_ref m;
		u64 la;

		if (emu_rep_pause(c, rep, done, limit))
			return STEP_DONE;
		st = emu_string_la(c, seg, idx, size, &la);
		if (st != STEP_DONE)
			return st;
		st = emu_mem_map(c, la, size, emu_data_access(cpu, out ? 0 : EMU_ACC_WRITE), &m);
		if (st != STEP_DONE)
			return st;
		emu_note_data_hits(c, la, size, !out);
		if (out) {
			st = emu_mem_load(c, &m, data);
			if (st != STEP_DONE)
				return st;
			if (!c->ops->pio(c->ops->opaque, port, data, size, true))
				return STEP_HOST_ERROR;
		} else {
			if (!c->ops->pio(c->ops->opaque, port, data, size, false))
				return STEP_HOST_ERROR;
			st = emu_mem_store(c, &m, data);
			if (st != STEP_DONE)
				return st;
		}
		emu_set_at_addr_size(c, idx, cpu->gpr[idx] + (u64)step);
		cpu->dirty |= EMU_DIRTY_REGS;
		if (!rep)
			break;
		emu_set_at_addr_size(c, EMU_RCX, cpu->gpr[EMU_RCX] - 1);
		done++;
	}
	return STEP_DONE;
}

enum step emu_dispatch_io(struct insn_ctx *c)
{
	u8 opc = c->x86->opcode[0];
	unsigned size = !(opc & 0x01) ? 1 : c->x86->prefix[2] == OPSIZE_16 ? 2 : 4;

	switch (c->insn->id) {
	case X86_INS_IN:
	case X86_INS_OUT:
		if ((opc & 0xf4) != 0xe4) /* e4-e7: imm8 port; ec-ef: DX */
			return STEP_UNKNOWN;
		break;
	case X86_INS_INSB:
	case X86_INS_INSW:
	case X86_INS_INSD:
	case X86_INS_OUTSB:
	case X86_INS_OUTSW:
	case X86_INS_OUTSD:
		if (opc < 0x6c || opc > 0x6f)
			return STEP_UNKNOWN;
		break;
	default: return STEP_UNKNOWN;
	}
	if (!c->ops->pio)
		return STEP_UNKNOWN;
	if (opc >= 0x6c && opc <= 0x6f)
		return do_io_string(c, opc & 0x02, size);
	return do_in_out(c, opc, size);
}
