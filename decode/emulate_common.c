// SPDX-License-Identifier: MIT
/*
 * The instructions emulated in both modes (decode/emulate.h): the hw-mode
 * fallback's whitelist, which shadow mode needs as well.
 *
 * 1. clac/stac (RFLAGS.AC), xgetbv (ops->read_xcr).
 * 2. movbe loads and stores.
 * 3. cmpxchg8b/16b: atomic on host memory in hw mode, one load and one
 *    reported store in shadow mode.
 * 4. clflush/clflushopt/clwb: a translation only.
 * 5. invpcid (ops->flush_tlb).
 * 6. popcnt; wait/fwait (the x87 status word through ops->get_xstate).
 * 7. The xsave family: decode/emulate_xsave.c.
 * 8. rdrand/rdseed: the host's own random numbers.
 * 9. prefetch*: nothing; a prefetch never faults, whatever its address.
 * 10. ud0/ud1/ud2: #UD in hw mode (Linux's BUG() and WARN() are ud2).
 * 11. verr/verw: ZF from the descriptor's type and privilege.
 * 12. monitor/mwait in hw mode: the checks, then nothing (a wake-up at once).
 */
#include <cpuid.h>
#include <string.h>

#include "decode/emulate_internal.h"
#include "shadow/x86.h"

/* Item 1. clac/stac: RFLAGS.AC; #UD at CPL > 0 (SDM Vol. 2A CLAC, Vol. 2B STAC). */
static enum step do_clac_stac(struct insn_ctx *c, bool set)
{
	if (emu_cpl_of(c->cpu) != 0)
		return emu_raise(c, EXC_UD());
	c->cpu->rflags = set ? c->cpu->rflags | RFLAGS_AC : c->cpu->rflags & ~RFLAGS_AC;
	return STEP_DONE;
}

/* Item 1. xgetbv: #UD if CR4.OSXSAVE = 0, #GP(0) for an XCR that does not exist; any CPL. */
static enum step do_xgetbv(struct insn_ctx *c)
{
	u64 v;

	if (!(c->cpu->cr4 & CR4_OSXSAVE))
		return emu_raise(c, EXC_UD());
	if (!c->ops->read_xcr(c->ops->opaque, (u32)c->cpu->gpr[EMU_RCX], &v))
		return emu_raise(c, EXC_GP(0));
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

/* Item 2. movbe r, m / movbe m, r: a load or store with the bytes reversed; any CPL. */
static enum step do_movbe(struct insn_ctx *c)
{
	const cs_x86_op *dst = emu_op(c, 0), *src = emu_op(c, 1);
	bool load = dst && dst->type == X86_OP_REG;
	const cs_x86_op *mem = load ? src : dst, *reg = load ? dst : src;
	const struct reg_slot *s;
	enum step st;
	u64 la, v = 0;

	if (!mem || !reg || reg->type != X86_OP_REG || !(s = emu_slot_of(reg->reg)) || s->high8 ||
	    s->size < 2)
		return STEP_UNKNOWN;
	st = emu_operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	if (load) {
		st = emu_mem_read(c, la, &v, s->size, emu_data_access(c->cpu, 0));
		if (st != STEP_DONE)
			return st;
		emu_reg_set(c->cpu, s, bswap_n(v, s->size));
	} else {
		v = bswap_n(emu_reg_get(c->cpu, s), s->size);
		st = emu_mem_write(c, la, &v, s->size, emu_data_access(c->cpu, 0));
		if (st != STEP_DONE)
			return st;
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
 * Item 3. cmpxchg8b m64 / cmpxchg16b m128 (SDM Vol. 2A CMPXCHG8B/CMPXCHG16B): compare
 * EDX:EAX (RDX:RAX) with the operand; equal: ZF = 1 and store ECX:EBX
 * (RCX:RBX); else ZF = 0 and load the operand into EDX:EAX (RDX:RAX). The
 * operand gets a write cycle either way, so it is translated for writing.
 * cmpxchg16b needs a 16-byte aligned operand (#GP(0)). Any CPL. In hw mode
 * the host operation is atomic when the operand lies in one page (always
 * for 16b); in shadow mode it is one load and one reported store (the
 * operand's old value when the comparison fails, as the CPU writes it).
 */
static enum step do_cmpxchg_wide(struct insn_ctx *c, unsigned size)
{
	const cs_x86_op *mem = emu_op(c, 0);
	u64 *g = c->cpu->gpr;
	struct mem_ref m;
	void *hva[2];
	unsigned len0;
	enum step st;
	bool eq;
	u64 la;

	if (!mem)
		return STEP_UNKNOWN;
	st = emu_operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	if (size == 16 && (la & 15))
		return emu_raise(c, EXC_GP(0));
	st = emu_mem_map(c, la, size, emu_data_access(c->cpu, EMU_ACC_WRITE), &m);
	if (st != STEP_DONE)
		return st;
	emu_note_data_hits(c, la, size, true);
	if (c->ops->map_phys) {
		u64 old[2] = { 0, 0 }, want[2];
		u64 expect[2] = { size == 16 ? g[EMU_RAX] : (g[EMU_RDX] << 32) | (u32)g[EMU_RAX],
				  g[EMU_RDX] };

		want[0] = size == 16 ? g[EMU_RBX] : (g[EMU_RCX] << 32) | (u32)g[EMU_RBX];
		want[1] = g[EMU_RCX];
		st = emu_mem_load(c, &m, old);
		if (st != STEP_DONE)
			return st;
		eq = old[0] == expect[0] && (size == 8 || old[1] == expect[1]);
		st = emu_mem_store(c, &m, eq ? want : old);
		if (st != STEP_DONE)
			return st;
		if (!eq && size == 16) {
			g[EMU_RAX] = old[0];
			g[EMU_RDX] = old[1];
		} else if (!eq) {
			g[EMU_RAX] = (u32)old[0];
			g[EMU_RDX] = old[0] >> 32;
		}
		c->cpu->rflags = eq ? c->cpu->rflags | RFLAGS_ZF : c->cpu->rflags & ~RFLAGS_ZF;
		return STEP_DONE;
	}
	hva[0] = m.piece[0].hva;
	hva[1] = m.npieces > 1 ? m.piece[1].hva : NULL;
	len0 = m.piece[0].len;
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
 * Item 4. clflush/clflushopt/clwb m8: no architectural effect the guest can see on
 * our hosts, but the operand must translate like a read (a #PF otherwise);
 * an operand outside RAM (MMIO) is fine. Any CPL.
 */
static enum step do_cache_line(struct insn_ctx *c)
{
	const cs_x86_op *mem = emu_op(c, 0);
	struct mem_ref m;
	enum step st;
	u64 la;

	if (!mem)
		return STEP_UNKNOWN;
	st = emu_operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	st = emu_mem_map(c, la, 1, emu_data_access(c->cpu, 0), &m);
	return st == STEP_NOT_RAM ? STEP_DONE : st;
}

/*
 * Item 5. invpcid r64, m128 (SDM Vol. 2A INVPCID): #GP(0) at CPL > 0, for a type
 * above 3, for descriptor bits 63:12 not 0, for a non-canonical address with
 * type 0, and for a nonzero PCID with type 0 or 1 when CR4.PCIDE = 0.
 */
static enum step do_invpcid(struct insn_ctx *c)
{
	const cs_x86_op *reg = emu_op(c, 0), *mem = emu_op(c, 1);
	const struct reg_slot *s;
	enum step st;
	u64 desc[2], type, la;

	if (!reg || reg->type != X86_OP_REG || !(s = emu_slot_of(reg->reg)) || !mem)
		return STEP_UNKNOWN;
	if (emu_cpl_of(c->cpu) != 0)
		return emu_raise(c, EXC_GP(0));
	st = emu_operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	type = emu_reg_get(c->cpu, s);
	st = emu_mem_read(c, la, desc, sizeof(desc), emu_data_access(c->cpu, 0));
	if (st != STEP_DONE)
		return st;
	if (type > 3 || (desc[0] & ~CR3_PCID_MASK))
		return emu_raise(c, EXC_GP(0));
	if (type == 0 && !emu_is_canonical(desc[1]))
		return emu_raise(c, EXC_GP(0));
	if (type <= 1 && !(c->cpu->cr4 & CR4_PCIDE) && desc[0] != 0)
		return emu_raise(c, EXC_GP(0));
	if (!c->ops->flush_tlb(c->ops->opaque, (unsigned)type, desc[0], desc[1]))
		return STEP_HOST_ERROR;
	return STEP_DONE;
}

/*
 * Item 6. popcnt r, r/m (SDM Vol. 2B POPCNT), 16/32/64 bits: the count of set
 * bits; ZF = (source = 0), OF, SF, AF, CF and PF cleared. A 32-bit
 * destination is zero-extended. Any CPL.
 */
static enum step do_popcnt(struct insn_ctx *c)
{
	const cs_x86_op *dst = emu_op(c, 0), *src = emu_op(c, 1);
	const struct reg_slot *d, *s;
	enum step st;
	u64 v = 0, la;

	if (!dst || !src || dst->type != X86_OP_REG || !(d = emu_slot_of(dst->reg)) || d->high8 ||
	    d->size < 2)
		return STEP_UNKNOWN;
	if (src->type == X86_OP_REG) {
		if (!(s = emu_slot_of(src->reg)) || s->size != d->size)
			return STEP_UNKNOWN;
		v = emu_reg_get(c->cpu, s);
	} else {
		st = emu_operand_la(c, src, &la);
		if (st != STEP_DONE)
			return st;
		st = emu_mem_read(c, la, &v, d->size, emu_data_access(c->cpu, 0));
		if (st != STEP_DONE)
			return st;
	}
	emu_reg_set(c->cpu, d, (u64)__builtin_popcountll(v));
	c->cpu->rflags &= ~(RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF);
	if (!v)
		c->cpu->rflags |= RFLAGS_ZF;
	return STEP_DONE;
}

#define FSW_ES (1u << 7) /* x87 error summary: an unmasked exception is pending */

/*
 * Item 6. wait/fwait (SDM Vol. 2B WAIT/FWAIT): #NM if CR0.MP and CR0.TS are
 * both 1; #MF if an unmasked x87 exception is pending (FSW.ES) and CR0.NE =
 * 1 (with CR0.NE = 0 the legacy FERR# path is not emulated: stop); else
 * nothing. Any CPL.
 */
static enum step do_wait(struct insn_ctx *c)
{
	enum step st;
	u16 fsw;

	if ((c->cpu->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
		return emu_raise(c, emu_exception(X86_EXC_NM, false, 0));
	st = emu_x87_fsw(c, &fsw);
	if (st != STEP_DONE)
		return st;
	if (!(fsw & FSW_ES))
		return STEP_DONE;
	if (!(c->cpu->cr0 & CR0_NE))
		return STEP_UNKNOWN;
	return emu_raise(c, emu_exception(X86_EXC_MF, false, 0));
}

/*
 * Item 8. rdrand/rdseed (SDM Vol. 2B RDRAND, RDSEED): a random value and
 * CF = 1, or 0 and CF = 0 when none is ready (the guest retries); OF, SF,
 * ZF, AF and PF cleared. The value comes from the host CPU's instruction,
 * so its quality is the hardware's; a host without it gives the guest #UD,
 * as a CPU without the feature would (in hw mode the guest's CPUID is the
 * host's). Any CPL; 16/32/64-bit register destinations.
 */
static enum step do_rdrand(struct insn_ctx *c, bool seed)
{
	const cs_x86_op *dst = emu_op(c, 0);
	const struct reg_slot *d;
	unsigned a, b, cx, dx;
	unsigned long long v = 0;
	unsigned char ok = 0;

	if (!dst || dst->type != X86_OP_REG || !(d = emu_slot_of(dst->reg)) || d->high8 ||
	    d->size < 2)
		return STEP_UNKNOWN;
	if (seed ? !__get_cpuid_count(7, 0, &a, &b, &cx, &dx) || !(b & (1u << 18))
		 : !__get_cpuid(1, &a, &b, &cx, &dx) || !(cx & (1u << 30)))
		return emu_raise(c, EXC_UD());
	if (seed)
		__asm__ volatile("rdseed %0; setc %1" : "=r"(v), "=qm"(ok) : : "cc");
	else
		__asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok) : : "cc");
	emu_reg_set(c->cpu, d, ok ? v : 0);
	c->cpu->rflags &= ~(RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF);
	if (ok)
		c->cpu->rflags |= RFLAGS_CF;
	return STEP_DONE;
}

/*
 * Item 11. verr/verw (SDM Vol. 2B VERR/VERW): ZF = 1 if the segment the
 * selector names can be read (verr) or written (verw) at the current CPL
 * and the selector's RPL, else ZF = 0; never a fault for the selector
 * itself (null, beyond the table's limit, a system segment: ZF = 0). A
 * conforming code segment is readable whatever its DPL; code is never
 * writable. The selector operand may be a register or memory. Linux
 * executes verw only for its side effect of clearing CPU buffers (MDS),
 * which an emulated verw does not have.
 */
static enum step do_verrw(struct insn_ctx *c, bool write)
{
	const struct emu_cpu *cpu = c->cpu;
	unsigned cpl = emu_cpl_of(cpu), rpl, dpl, type;
	bool ok = false;
	u64 la, desc;
	u16 sel;
	enum step st;

	if (!(cpu->cr0 & CR0_PE))
		return emu_raise(c, EXC_UD());
	st = emu_read_rm16(c, emu_op(c, 0), &sel);
	if (st != STEP_DONE)
		return st;
	/* Null is index 0 of the GDT only: 4-7 name the LDT's first entry. */
	if ((sel & ~SEL_RPL_MASK) && emu_desc_la(cpu, sel, &la)) {
		st = emu_sys_read(c, la, &desc, sizeof(desc));
		if (st != STEP_DONE)
			return st;
		type = (unsigned)((desc & DESC_TYPE_MASK) >> DESC_TYPE_SHIFT);
		dpl = (unsigned)(desc >> DESC_DPL_SHIFT) & 3;
		rpl = sel & SEL_RPL_MASK;
		if (desc & DESC_S) {
			bool code = type & DESC_TYPE_CODE, priv = dpl >= cpl && dpl >= rpl;

			if (write)
				ok = !code && (type & DESC_TYPE_WRITABLE) && priv;
			else if (code)
				ok = (type & DESC_TYPE_READABLE) &&
				     ((type & DESC_TYPE_CONFORMING) || priv);
			else
				ok = priv;
		}
	}
	c->cpu->rflags = ok ? c->cpu->rflags | RFLAGS_ZF : c->cpu->rflags & ~RFLAGS_ZF;
	return STEP_DONE;
}

/*
 * Item 12. monitor/mwait (SDM Vol. 2B MONITOR, MWAIT), hw mode only: Linux
 * idles with them on Intel CPUs that report MONITOR, which hw mode's guest
 * sees (PVM does not filter its CPUID). #UD at CPL > 0 (the enabling MSR bit
 * is not offered); monitor: #GP(0) for ECX != 0, a #PF if DS:RAX does not
 * translate; mwait: #GP(0) for ECX bits beyond bit 0. Then mwait returns at
 * once, the spurious wake-up the SDM allows: the guest's idle loop spins,
 * each turn a trip through the VMM, instead of sleeping.
 */
static enum step do_monitor_mwait(struct insn_ctx *c, bool mwait)
{
	const struct emu_cpu *cpu = c->cpu;
	struct mem_ref m;
	x86_reg seg;
	enum step st;
	u64 la;

	if (cpu->mode != EMU_MODE_HW)
		return STEP_UNKNOWN;
	if (emu_cpl_of(cpu) != 0)
		return emu_raise(c, EXC_UD());
	if (mwait)
		return (u32)cpu->gpr[EMU_RCX] > 1 ? emu_raise(c, EXC_GP(0)) : STEP_DONE;
	if ((u32)cpu->gpr[EMU_RCX])
		return emu_raise(c, EXC_GP(0));
	/* DS:RAX, or FS:/GS: with an override (the others have base 0 in 64-bit mode). */
	seg = c->x86->prefix[1] == 0x64	  ? X86_REG_FS
	      : c->x86->prefix[1] == 0x65 ? X86_REG_GS
					  : X86_REG_DS;
	la = emu_seg_base(cpu, seg) +
	     (c->x86->addr_size == 4 ? (u32)cpu->gpr[EMU_RAX] : cpu->gpr[EMU_RAX]);
	if (!emu_is_canonical(la))
		return emu_raise(c, EXC_GP(0));
	st = emu_mem_map(c, la, 1, emu_data_access(cpu, 0), &m);
	return st == STEP_NOT_RAM ? STEP_DONE : st;
}

enum step emu_dispatch_common(struct insn_ctx *c)
{
	switch (c->insn->id) {
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
	case X86_INS_POPCNT: return do_popcnt(c);
	case X86_INS_WAIT: return do_wait(c);
	case X86_INS_RDRAND: return do_rdrand(c, false);
	case X86_INS_RDSEED: return do_rdrand(c, true);
	case X86_INS_PREFETCH:
	case X86_INS_PREFETCHNTA:
	case X86_INS_PREFETCHT0:
	case X86_INS_PREFETCHT1:
	case X86_INS_PREFETCHT2:
	case X86_INS_PREFETCHW: return STEP_DONE; /* Item 9 */
	case X86_INS_INTO: return STEP_DONE;	  /* OF clear (emu_insn delivers #OF when set) */
	case X86_INS_UD0:
	case X86_INS_UD2B: /* ud1 */
	case X86_INS_UD2:
		/* Item 10. Shadow mode reflects the guest's own #UD itself (vmm/shadow_mode.c). */
		return c->cpu->mode == EMU_MODE_HW ? emu_raise(c, EXC_UD()) : STEP_UNKNOWN;
	case X86_INS_VERR: return do_verrw(c, false);
	case X86_INS_VERW: return do_verrw(c, true);
	case X86_INS_MONITOR: return do_monitor_mwait(c, false);
	case X86_INS_MWAIT: return do_monitor_mwait(c, true);
	default: return emu_dispatch_xsave(c);
	}
}

/* Read a 16-bit register-or-memory source operand (a selector, an msw). */
enum step emu_read_rm16(struct insn_ctx *c, const cs_x86_op *op, u16 *v)
{
	const struct reg_slot *s;
	enum step st;
	u64 la;

	if (!op)
		return STEP_UNKNOWN;
	if (op->type == X86_OP_REG) {
		if (!(s = emu_slot_of(op->reg)))
			return STEP_UNKNOWN;
		*v = (u16)emu_reg_get(c->cpu, s);
		return STEP_DONE;
	}
	st = emu_operand_la(c, op, &la);
	if (st != STEP_DONE)
		return st;
	return emu_mem_read(c, la, v, sizeof(*v), emu_data_access(c->cpu, 0));
}
