// SPDX-License-Identifier: MIT
/*
 * hw mode: SSE, AVX and MMX instructions that KVM's emulator rejects
 * (decode/emulate.h). On PVM hosts every guest CPL0 instruction goes
 * through KVM's emulator, which knows a few SSE moves and no VEX encoding
 * at all, while Linux runs SIMD code in the kernel between
 * kernel_fpu_begin() and kernel_fpu_end() (crypto, checksums, memcpy
 * variants, self-tests). Writing the semantics of hundreds of instructions
 * would copy the SDM badly; instead the instruction runs on the host CPU,
 * which is exact by construction (hw mode's guest CPUID is the host's):
 *
 * 1. Accepted: capstone puts it in an SSE*, SSSE3, AVX, AVX2, FMA, F16C,
 *    AES, PCLMUL, SHA or MMX group (not AVX-512: no EVEX, k or zmm), every
 *    operand is a GPR other than RSP, an XMM/YMM/MM register, an immediate,
 *    or at most one memory operand addressed by GPRs (gathers, whose index
 *    is a vector, are not), and it is not one of the few with memory or
 *    side effects beyond its operands (maskmov*, fxsave/fxrstor,
 *    monitor/mwait). Anything else stays STEP_UNKNOWN and stops the VM.
 * 2. The checks the CPU makes before the instruction, on the guest's
 *    control registers rather than the host's (SDM Vol. 1 §13.2, Vol. 3A
 *    §2.5, Table 22-x of Vol. 2 exception classes): #UD if CR0.EM = 1 (not
 *    VEX) or CR4.OSFXSR = 0 (SSE); for VEX, #UD unless CR4.OSXSAVE = 1 and
 *    XCR0 enables SSE and AVX; #NM if CR0.TS = 1.
 * 3. The memory operand is read from guest memory through the guest's
 *    page tables into a buffer placed at the same offset modulo 64, so that
 *    the alignment checks of movdqa/movaps/vmovdqa... fault natively
 *    exactly when they would in the guest. The instruction's ModRM is
 *    rewritten to address that buffer through a GPR the instruction does
 *    not use (mod = 00, no SIB, no displacement; REX.X/B and VEX.X/B
 *    cleared; segment and address-size prefixes dropped).
 * 4. The instruction runs on the host (decode/simd_native.c) with the
 *    guest's GPRs, arithmetic flags and x87/SSE/AVX state loaded. A native
 *    fault becomes the guest's: #GP(0) for SIGSEGV/SIGBUS, #UD for SIGILL,
 *    #XM for SIGFPE (#UD if CR4.OSXMMEXCPT = 0).
 * 5. The buffer is stored back when capstone says the operand is written
 *    or its bytes changed (a write mapping is made then, which may raise the
 *    guest's #PF before anything is committed); then the GPRs, the
 *    arithmetic flags and the vector state (ops->put_xstate) are committed.
 *
 * LIMITATION: the memory operand is read in full even for an instruction
 * that only stores to it (a store-only operand on a page that is not
 * readable cannot exist on x86, so this changes nothing but the A bit,
 * which a store sets anyway). The read and the store are two accesses, not
 * one atomic one: fine for the SIMD instructions accepted, none of which is
 * locked.
 */
#include <signal.h>
#include <string.h>

#include "decode/emulate_internal.h"
#include "decode/simd_native.h"
#include "shadow/x86.h"

_Static_assert(EMU_RAX == 0 && EMU_RCX == 1 && EMU_RDX == 2 && EMU_RBX == 3 && EMU_RSP == 4 &&
		       EMU_RBP == 5 && EMU_RSI == 6 && EMU_RDI == 7 && EMU_R15 == 15,
	       "simd_native takes the GPRs in encoding order");

#define XFEATURE_SSE_AVX (3ull << 1)
#define FLAGS_ARITH	 (RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF)
#define LEGACY_LEN	 512
#define LEG_MXCSR	 24
#define MXCSR_INIT	 0x1f80
#define AVX_OFFSET	 576 /* CPUID.(0xd,2).EBX on every x86 CPU with AVX */
#define AVX_LEN		 256
#define AREA_LEN	 (AVX_OFFSET + AVX_LEN)
#define MAX_OPERAND	 32 /* a YMM register's worth */

/* Item 1. */
static bool simd_group(const cs_insn *insn)
{
	const cs_detail *d = insn->detail;
	bool simd = false;

	for (unsigned i = 0; i < d->groups_count; i++) {
		switch (d->groups[i]) {
		case X86_GRP_SSE1:
		case X86_GRP_SSE2:
		case X86_GRP_SSE3:
		case X86_GRP_SSSE3:
		case X86_GRP_SSE41:
		case X86_GRP_SSE42:
		case X86_GRP_AVX:
		case X86_GRP_AVX2:
		case X86_GRP_FMA:
		case X86_GRP_F16C:
		case X86_GRP_AES:
		case X86_GRP_PCLMUL:
		case X86_GRP_SHA:
		case X86_GRP_MMX: simd = true; break;
		case X86_GRP_AVX512:
		case X86_GRP_3DNOW:
		case X86_GRP_FMA4:
		case X86_GRP_SSE4A: return false;
		default: break;
		}
	}
	switch (insn->id) {
	case X86_INS_MASKMOVDQU:
	case X86_INS_MASKMOVQ:
	case X86_INS_VMASKMOVDQU:
	case X86_INS_VMASKMOVPS:
	case X86_INS_VMASKMOVPD:
	case X86_INS_VPMASKMOVD:
	case X86_INS_VPMASKMOVQ:
	case X86_INS_FXSAVE:
	case X86_INS_FXSAVE64:
	case X86_INS_FXRSTOR:
	case X86_INS_FXRSTOR64:
	case X86_INS_MONITOR:
	case X86_INS_MWAIT:
	case X86_INS_LDMXCSR: /* decode/emulate_xsave.c */
	case X86_INS_STMXCSR: return false;
	default: return simd;
	}
}

static bool vector_reg(x86_reg r)
{
	return (r >= X86_REG_XMM0 && r <= X86_REG_XMM15) ||
	       (r >= X86_REG_YMM0 && r <= X86_REG_YMM15) || (r >= X86_REG_MM0 && r <= X86_REG_MM7);
}

/* Mark the GPR behind capstone register `r` in *used; false for one the native step cannot take. */
static bool note_reg(x86_reg r, u32 *used)
{
	const struct reg_slot *s;

	if (r == X86_REG_EFLAGS || vector_reg(r))
		return true;
	if (!(s = emu_slot_of(r)) || s->gpr == EMU_RSP)
		return false;
	*used |= 1u << s->gpr;
	return true;
}

/* Item 1: the operands; *mem is the memory operand or NULL, *used the GPRs referenced. */
static bool simd_operands(struct insn_ctx *c, const cs_x86_op **mem, u32 *used)
{
	const cs_detail *d = c->insn->detail;

	*mem = NULL;
	*used = 0;
	for (unsigned i = 0; i < c->x86->op_count; i++) {
		const cs_x86_op *op = &c->x86->operands[i];

		switch (op->type) {
		case X86_OP_IMM: break;
		case X86_OP_REG:
			if (!note_reg(op->reg, used))
				return false;
			break;
		case X86_OP_MEM:
			if (*mem || !op->size || op->size > MAX_OPERAND)
				return false;
			*mem = op;
			break;
		default: return false;
		}
	}
	for (unsigned i = 0; i < d->regs_read_count; i++)
		if (!note_reg((x86_reg)d->regs_read[i], used))
			return false;
	for (unsigned i = 0; i < d->regs_write_count; i++)
		if (!note_reg((x86_reg)d->regs_write[i], used))
			return false;
	return true;
}

static bool is_vex(const cs_insn *insn, unsigned *at)
{
	for (unsigned i = 0; i < insn->size; i++) {
		switch (insn->bytes[i]) {
		case 0xf0:
		case 0xf2:
		case 0xf3:
		case 0x2e:
		case 0x36:
		case 0x3e:
		case 0x26:
		case 0x64:
		case 0x65:
		case 0x66:
		case 0x67: continue;
		default: *at = i; return insn->bytes[i] == 0xc4 || insn->bytes[i] == 0xc5;
		}
	}
	*at = insn->size;
	return false;
}

/*
 * Item 3: copy the instruction into out[] with its memory operand replaced
 * by (base), `base` a GPR encoding 0-7 other than RSP and RBP. Returns the
 * new length, or 0 if the encoding is not one this understands.
 */
static unsigned rewrite(const cs_insn *insn, const cs_x86 *x86, unsigned base, u8 *out)
{
	const u8 *b = insn->bytes;
	unsigned mo = x86->encoding.modrm_offset, n = 0, i = 0, after;
	u8 modrm, mod, rm;

	if (!mo || mo >= insn->size)
		return 0;
	modrm = b[mo];
	mod = modrm >> 6;
	rm = modrm & 7;
	if (mod == 3)
		return 0;
	after = mo + 1;
	if (rm == 4) {
		if (after >= insn->size)
			return 0;
		if (mod == 0 && (b[after] & 7) == 5)
			after += 4; /* SIB with no base: disp32 */
		after += 1;
	} else if (mod == 0 && rm == 5) {
		after += 4; /* RIP-relative */
	}
	after += mod == 1 ? 1 : mod == 2 ? 4 : 0;
	if (after > insn->size)
		return 0;

	/* Legacy prefixes: keep the mandatory and lock/rep ones, drop segment and address size. */
	for (; i < mo; i++) {
		u8 p = b[i];

		if (p == 0x2e || p == 0x36 || p == 0x3e || p == 0x26 || p == 0x64 || p == 0x65 ||
		    p == 0x67)
			continue;
		if (p == 0xf0 || p == 0xf2 || p == 0xf3 || p == 0x66) {
			out[n++] = p;
			continue;
		}
		break;
	}
	if (i < mo && (b[i] & 0xf0) == 0x40) {
		out[n++] = b[i++] & ~0x03; /* REX.X = REX.B = 0 */
	} else if (i + 1 < mo && b[i] == 0xc4) {
		out[n++] = b[i++];
		out[n++] = b[i++] | 0x60; /* VEX.~X = VEX.~B = 1: no extension */
	}
	while (i < mo)
		out[n++] = b[i++]; /* the rest of VEX, the opcode bytes */
	out[n++] = (u8)((modrm & 0x38) | base);
	for (i = after; i < insn->size; i++)
		out[n++] = b[i]; /* the immediate */
	return n;
}

/* Item 4: a native fault as the guest's exception. */
static enum step native_fault(struct insn_ctx *c, int sig)
{
	switch (sig) {
	case SIGILL: return emu_raise(c, EXC_UD());
	case SIGFPE:
		if (!(c->cpu->cr4 & CR4_OSXMMEXCPT))
			return emu_raise(c, EXC_UD());
		return emu_raise(c, emu_exception(X86_EXC_XM, false, 0));
	default: return emu_raise(c, EXC_GP(0));
	}
}

static u64 get64(const u8 *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void put64(u8 *p, u64 v)
{
	memcpy(p, &v, sizeof(v));
}

enum step emu_dispatch_simd(struct insn_ctx *c)
{
	static u8 guest_area[AREA_LEN] __attribute__((aligned(64)));
	static u8 host_area[4096] __attribute__((aligned(64)));
	static u8 buf[128] __attribute__((aligned(64)));
	static const u8 bases[] = { EMU_RSI, EMU_RDI, EMU_RBX, EMU_RDX, EMU_RCX, EMU_RAX };
	const cs_x86_op *mem;
	struct simd_native sn;
	struct emu_xstate *xs;
	struct mem_ref m;
	u8 code[32], before[MAX_OPERAND];
	unsigned len = c->insn->size, at, base = 0, off = 0, size = 0;
	bool vex, store = false, mapped_write = false;
	u64 la = 0, xcr0, bv, gbv;
	u32 used, acc = 0, mxcsr;
	enum step st;
	int sig;

	if (c->cpu->mode != EMU_MODE_HW || !c->ops->get_xstate || !c->ops->put_xstate ||
	    !emu_long64(c->cpu) || !simd_group(c->insn) || !simd_operands(c, &mem, &used))
		return STEP_UNKNOWN;

	/* Item 2. */
	vex = is_vex(c->insn, &at);
	if (vex) {
		if (!(c->cpu->cr4 & CR4_OSXSAVE) || !c->ops->read_xcr ||
		    !c->ops->read_xcr(c->ops->opaque, 0, &xcr0) ||
		    (xcr0 & XFEATURE_SSE_AVX) != XFEATURE_SSE_AVX)
			return emu_raise(c, EXC_UD());
	} else if ((c->cpu->cr0 & CR0_EM) || !(c->cpu->cr4 & CR4_OSFXSR)) {
		return emu_raise(c, EXC_UD());
	}
	if (c->cpu->cr0 & CR0_TS)
		return emu_raise(c, emu_exception(X86_EXC_NM, false, 0));

	/* Item 3. */
	memcpy(code, c->insn->bytes, len);
	if (mem) {
		unsigned i;

		for (i = 0; i < sizeof(bases) && (used & (1u << bases[i])); i++)
			;
		if (i == sizeof(bases))
			return STEP_UNKNOWN;
		base = bases[i];
		len = rewrite(c->insn, c->x86, base, code);
		if (!len)
			return STEP_UNKNOWN;
		st = emu_operand_la(c, mem, &la);
		if (st != STEP_DONE)
			return st;
		size = mem->size;
		off = (unsigned)(la & 63);
		acc = emu_data_access(c->cpu, 0);
		mapped_write = (mem->access & CS_AC_WRITE) != 0;
		st = emu_mem_map(c, la, size, acc | (mapped_write ? EMU_ACC_WRITE : 0), &m);
		if (st != STEP_DONE)
			return st;
		memset(buf, 0, sizeof(buf));
		st = emu_mem_load(c, &m, buf + off);
		if (st != STEP_DONE)
			return st;
		memcpy(before, buf + off, size);
	}

	xs = c->ops->get_xstate(c->ops->opaque);
	if (!xs)
		return STEP_HOST_ERROR;
	if (xs->size < EMU_XSTATE_EXTENDED ||
	    (xs->len[2] && (xs->offset[2] != AVX_OFFSET || xs->size < AREA_LEN)))
		return STEP_UNKNOWN;
	memset(guest_area, 0, sizeof(guest_area));
	memcpy(guest_area, xs->area, LEGACY_LEN);
	bv = get64(xs->area + EMU_XSTATE_HEADER);
	put64(guest_area + EMU_XSTATE_HEADER, bv & 7); /* XCOMP_BV = 0: the standard format */
	if (xs->len[2])
		memcpy(guest_area + AVX_OFFSET, xs->area + AVX_OFFSET, AVX_LEN);

	/* Item 4. */
	memcpy(sn.gpr, c->cpu->gpr, sizeof(sn.gpr));
	if (mem)
		sn.gpr[base] = (u64)(uintptr_t)(buf + off);
	sn.rflags = c->cpu->rflags;
	sn.guest_area = guest_area;
	sn.host_area = host_area;
	sig = simd_native_step(&sn, code, len);
	if (sig < 0)
		return STEP_HOST_ERROR;
	if (sig)
		return native_fault(c, sig);

	/* Item 5. */
	if (mem) {
		store = mapped_write || memcmp(before, buf + off, size);
		if (store && !mapped_write) {
			st = emu_mem_map(c, la, size, acc | EMU_ACC_WRITE, &m);
			if (st != STEP_DONE)
				return st;
		}
		if (store) {
			st = emu_mem_store(c, &m, buf + off);
			if (st != STEP_DONE)
				return st;
		}
		sn.gpr[base] = c->cpu->gpr[base];
	}
	sn.gpr[EMU_RSP] = c->cpu->gpr[EMU_RSP];
	memcpy(c->cpu->gpr, sn.gpr, sizeof(sn.gpr));
	c->cpu->rflags = (c->cpu->rflags & ~FLAGS_ARITH) | (sn.rflags & FLAGS_ARITH);

	memcpy(xs->area, guest_area, LEGACY_LEN);
	gbv = get64(guest_area + EMU_XSTATE_HEADER) & 7;
	/* KVM_SET_XSAVE takes MXCSR only with SSE or AVX in XSTATE_BV (as in emulate_xsave.c). */
	memcpy(&mxcsr, guest_area + LEG_MXCSR, sizeof(mxcsr));
	if (mxcsr != MXCSR_INIT && !(gbv & XFEATURE_SSE_AVX))
		gbv |= 1ull << 1;
	put64(xs->area + EMU_XSTATE_HEADER, (bv & ~7ull) | gbv);
	if (xs->len[2])
		memcpy(xs->area + AVX_OFFSET, guest_area + AVX_OFFSET, AVX_LEN);
	if (!c->ops->put_xstate(c->ops->opaque, xs))
		return STEP_HOST_ERROR;
	return STEP_DONE;
}
