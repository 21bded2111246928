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
 * 1. Accepted: capstone puts it in an SSE*, SSSE3, AVX, AVX2, AVX-512,
 *    FMA, F16C, AES, PCLMUL, SHA or MMX group; every operand is a GPR other
 *    than RSP, an XMM/YMM/ZMM, opmask or MM register, an immediate, or at
 *    most one memory operand addressed by GPRs (gathers and scatters, whose
 *    index is a vector, are not), and it is not one of the few with memory
 *    or side effects beyond its operands (maskmov*, fxsave/fxrstor,
 *    monitor/mwait). Anything else stays STEP_UNKNOWN and stops the VM.
 * 2. The checks the CPU makes before the instruction, on the guest's
 *    control registers rather than the host's (SDM Vol. 1 §13.2, Vol. 2
 *    §2.4-2.8 exception classes): legacy SSE/MMX is #UD if CR0.EM = 1 or
 *    CR4.OSFXSR = 0; VEX is #UD unless CR4.OSXSAVE = 1 and XCR0 enables SSE
 *    and AVX; EVEX also needs opmask, ZMM_Hi256 and Hi16_ZMM in XCR0; all
 *    are #NM if CR0.TS = 1. The native step loads and saves x87 and SSE,
 *    and for VEX and EVEX every vector component the guest's XCR0 enables.
 * 3. The memory operand is read from guest memory through the guest's
 *    page tables into a buffer placed at the same offset modulo 64, so that
 *    the alignment checks of movdqa/movaps/vmovdqa... fault natively
 *    exactly when they would in the guest. The instruction's ModRM is
 *    rewritten to address that buffer through a GPR the instruction does
 *    not use (mod = 00, no SIB, no displacement; the X and B extensions of
 *    REX, VEX and EVEX cleared; segment and address-size prefixes dropped;
 *    EVEX's compressed disp8*N goes too, capstone having scaled it).
 * 4. The instruction runs on the host (decode/simd_native.c) with the
 *    guest's GPRs, arithmetic flags and x87/SSE/AVX state loaded. A native
 *    fault becomes the guest's: #GP(0) for SIGSEGV/SIGBUS, #UD for SIGILL,
 *    #XM for SIGFPE (#UD if CR4.OSXMMEXCPT = 0).
 * 5. The buffer is stored back when the memory operand is the destination
 *    (operand 0 in capstone's Intel order: every SIMD store, movnti and
 *    pextr* included; capstone 4.0.2's access flags call them all reads) or
 *    when its bytes changed anyway (a write mapping is made then, which may
 *    raise the guest's #PF before anything is committed); then the GPRs, the
 *    arithmetic flags and the vector state (ops->put_xstate) are committed.
 * 6. Register-only VEX/EVEX instructions capstone 4.0.2 cannot decode run
 *    as they are, their length found from the encoding (emu_simd_raw_len,
 *    below); with a memory operand they stay unknown.
 *
 * x87 instructions (opcodes D8-DF, SDM Vol. 1 ch. 8) take the same path,
 * in 64-bit and in 32-bit protected mode (memtest86+ computes with them; KVM's
 * emulator rejects them all), with these differences:
 * 1. Accepted by opcode, not by capstone's group (fnstsw and fnstcw are in
 *    none); the memory operand's size and direction come from the opcode
 *    map (decode/x87.h: capstone calls fistp's a read and fnsave's 4
 *    bytes). fldenv, fnstenv, frstor and fnsave run in 64-bit code only and
 *    without an operand-size prefix: elsewhere their images hold FCS and
 *    FDS, or have the 16-bit layout, which the 64-bit step would not make.
 * 2. The checks: #NM if CR0.EM or CR0.TS (no #UD); a native SIGFPE is a
 *    pending unmasked x87 exception, #MF with CR0.NE = 1 (the FERR# path of
 *    CR0.NE = 0 is not emulated: the VM stops, as at wait); FOP, FIP and
 *    FDP are made the guest's afterwards (x87_pointers).
 *
 * LIMITATION: the memory operand is read in full even for an instruction
 * that only stores to it (a store-only operand on a page that is not
 * readable cannot exist on x86, so this changes nothing but the A bit,
 * which a store sets anyway). The read and the store are two accesses, not
 * one atomic one: fine for the SIMD instructions accepted, none of which is
 * locked. A masked EVEX access is made in full: an element the mask
 * excludes can raise a #PF the hardware would suppress. capstone 4.0.2
 * decodes no EVEX memory operand whose index is r8-r15 (EVEX.X = 1), nor
 * many AVX-512VL, VAES, VPCLMULQDQ and GFNI forms: with a memory operand
 * those stop the VM as unknown instructions (item 6 covers the rest).
 */
#include <cpuid.h>
#include <signal.h>
#include <string.h>

#include "decode/emulate_internal.h"
#include "decode/simd_native.h"
#include "decode/x87.h"
#include "shadow/x86.h"
#include "umbra/le.h"

_Static_assert(EMU_RAX == 0 && EMU_RCX == 1 && EMU_RDX == 2 && EMU_RBX == 3 && EMU_RSP == 4 &&
		       EMU_RBP == 5 && EMU_RSI == 6 && EMU_RDI == 7 && EMU_R15 == 15,
	       "simd_native takes the GPRs in encoding order");

#define XF_LEGACY   0x3ull  /* x87, SSE: the legacy region */
#define XF_AVX	    0x4ull  /* YMM upper halves */
#define XF_AVX512   0xe0ull /* opmask, ZMM_Hi256, Hi16_ZMM */
#define XF_SSE_AVX  0x6ull
#define FLAGS_ARITH (RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF)
#define LEGACY_LEN  512
#define AREA_LEN    4096 /* components 0-7 end at 2688 in the standard format */
#define MAX_OPERAND 112	 /* fnsave's 108 bytes; a ZMM register is 64 */

enum encoding { ENC_LEGACY, ENC_VEX, ENC_EVEX, ENC_X87 };

/*
 * Where the host's XSAVE puts components 2-7 (CPUID leaf 0xd): the native
 * step loads the guest's state with the host's xrstor, so the guest's area
 * (whose layout the VMM also took from the host's CPUID) must agree.
 */
static struct {
	bool done;
	u64 xcr0;
	u32 offset[8], len[8];
} host;

static void host_layout(void)
{
	unsigned a, b, c, d;

	if (host.done)
		return;
	host.done = true;
	host.xcr0 = simd_host_xcr0();
	for (unsigned i = 2; i < 8; i++)
		if ((host.xcr0 & (1ull << i)) && __get_cpuid_count(0xd, i, &a, &b, &c, &d)) {
			host.len[i] = a;
			host.offset[i] = b;
		}
}

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
		case X86_GRP_AVX512:
		case X86_GRP_MMX: simd = true; break;
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
	case X86_INS_STMXCSR:
	case X86_INS_PREFETCHNTA: /* decode/emulate_common.c: they never fault */
	case X86_INS_PREFETCHT0:
	case X86_INS_PREFETCHT1:
	case X86_INS_PREFETCHT2: return false;
	default: return simd;
	}
}

static bool vector_reg(x86_reg r)
{
	return (r >= X86_REG_XMM0 && r <= X86_REG_XMM31) ||
	       (r >= X86_REG_YMM0 && r <= X86_REG_YMM31) ||
	       (r >= X86_REG_ZMM0 && r <= X86_REG_ZMM31) || (r >= X86_REG_K0 && r <= X86_REG_K7) ||
	       (r >= X86_REG_MM0 && r <= X86_REG_MM7) || (r >= X86_REG_ST0 && r <= X86_REG_ST7) ||
	       (r >= X86_REG_FP0 && r <= X86_REG_FP7) || r == X86_REG_FPSW;
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
static bool simd_operands(struct insn_ctx *c, bool x87, const cs_x86_op **mem, u32 *used)
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
			/* An x87 operand's size is x87_mem_form's (capstone's can be wrong). */
			if (*mem || (!x87 && (!op->size || op->size > MAX_OPERAND)))
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

/* The encoding, where AVX-512's VEX-encoded opmask instructions (kmov...) count as EVEX. */
static enum encoding encoding_of(const cs_insn *insn)
{
	const cs_detail *d = insn->detail;

	for (unsigned i = 0; i < d->groups_count; i++)
		if (d->groups[i] == X86_GRP_AVX512)
			return ENC_EVEX;
	for (unsigned i = 0; i < insn->size; i++) {
		if (emu_legacy_prefix(insn->bytes[i]))
			continue;
		switch (insn->bytes[i]) {
		case 0xc4:
		case 0xc5: return ENC_VEX;
		case 0x62: return ENC_EVEX; /* 64-bit mode: never BOUND */
		default: return ENC_LEGACY;
		}
	}
	return ENC_LEGACY;
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
	} else if (i + 1 < mo && (b[i] == 0xc4 || b[i] == 0x62)) {
		/* VEX byte 1 and EVEX P0 keep ~X and ~B in bits 6 and 5: set, no extension. */
		out[n++] = b[i++];
		out[n++] = b[i++] | 0x60;
	}
	while (i < mo)
		out[n++] = b[i++]; /* the rest of VEX, the opcode bytes */
	out[n++] = (u8)((modrm & 0x38) | base);
	for (i = after; i < insn->size; i++)
		out[n++] = b[i]; /* the immediate */
	return n;
}

/* Item 4: a native fault as the guest's exception. */
static enum step native_fault(struct insn_ctx *c, bool x87, int sig)
{
	switch (sig) {
	case SIGILL: return emu_raise(c, EXC_UD());
	case SIGFPE:
		/*
		 * A pending unmasked x87 exception: #MF; with CR0.NE = 0 the
		 * legacy FERR# path is not emulated (as at wait, emulate_common.c).
		 */
		if (x87)
			return (c->cpu->cr0 & CR0_NE)
				       ? emu_raise(c, emu_exception(X86_EXC_MF, false, 0))
				       : STEP_UNKNOWN;
		if (!(c->cpu->cr4 & CR4_OSXMMEXCPT))
			return emu_raise(c, EXC_UD());
		return emu_raise(c, emu_exception(X86_EXC_XM, false, 0));
	default: return emu_raise(c, EXC_GP(0));
	}
}

/*
 * Item 2: the CPU's checks on the guest's CR0, CR4 and XCR0, and the
 * components the native step must load and save (*rfbm).
 */
static enum step simd_checks(struct insn_ctx *c, enum encoding enc, u64 *rfbm)
{
	u64 xcr0 = XF_LEGACY;

	if (enc == ENC_X87) {
		/* x87: #NM if CR0.EM or CR0.TS (SDM Vol. 3A §2.5, Table 2-2); never #UD. */
		if (c->cpu->cr0 & (CR0_EM | CR0_TS))
			return emu_raise(c, emu_exception(X86_EXC_NM, false, 0));
		*rfbm = XF_LEGACY;
		return STEP_DONE;
	}
	if (enc == ENC_LEGACY) {
		if ((c->cpu->cr0 & CR0_EM) || !(c->cpu->cr4 & CR4_OSFXSR))
			return emu_raise(c, EXC_UD());
	} else {
		/* XCR0 only matters to VEX and EVEX: one ioctl (KVM_GET_XCRS) fewer for SSE. */
		if (!(c->cpu->cr4 & CR4_OSXSAVE))
			return emu_raise(c, EXC_UD());
		if (!c->ops->read_xcr || !c->ops->read_xcr(c->ops->opaque, 0, &xcr0))
			return STEP_UNKNOWN;
		if ((enc == ENC_VEX && (xcr0 & XF_SSE_AVX) != XF_SSE_AVX) ||
		    (enc == ENC_EVEX &&
		     (xcr0 & (XF_SSE_AVX | XF_AVX512)) != (XF_SSE_AVX | XF_AVX512)))
			return emu_raise(c, EXC_UD());
	}
	if (c->cpu->cr0 & CR0_TS)
		return emu_raise(c, emu_exception(X86_EXC_NM, false, 0));
	/*
	 * Legacy SSE and MMX touch only the x87/SSE state (the upper bits of the
	 * vector registers stay as they are, in the host's registers as in the
	 * guest's area); VEX and EVEX get every component XCR0 enables.
	 */
	*rfbm = XF_LEGACY | (xcr0 & (XF_AVX | XF_AVX512));
	if ((*rfbm & host.xcr0) != *rfbm)
		return STEP_UNKNOWN; /* the guest enabled a component the host lacks */
	return STEP_DONE;
}

/* The guest's area in the host's layout: false if the VMM's layout differs. */
static bool area_in(const struct emu_xstate *xs, u64 rfbm, u8 *area)
{
	u64 bv;

	memset(area, 0, AREA_LEN);
	memcpy(area, xs->area, LEGACY_LEN);
	for (unsigned i = 2; i < 8; i++) {
		if (!(rfbm & (1ull << i)))
			continue;
		if (xs->offset[i] != host.offset[i] || xs->len[i] != host.len[i] ||
		    (u64)host.offset[i] + host.len[i] > MIN((u64)xs->size, (u64)AREA_LEN))
			return false;
		memcpy(area + host.offset[i], xs->area + host.offset[i], host.len[i]);
	}
	bv = le_get64(xs->area, EMU_XSTATE_HEADER);
	le_put64(area, EMU_XSTATE_HEADER, bv & rfbm); /* XCOMP_BV = 0: the standard format */
	return true;
}

static void area_out(struct emu_xstate *xs, u64 rfbm, const u8 *area)
{
	u64 bv = le_get64(xs->area, EMU_XSTATE_HEADER),
	    gbv = le_get64(area, EMU_XSTATE_HEADER) & rfbm;
	u32 mxcsr;

	memcpy(xs->area, area, LEGACY_LEN);
	for (unsigned i = 2; i < 8; i++)
		if (rfbm & (1ull << i))
			memcpy(xs->area + host.offset[i], area + host.offset[i], host.len[i]);
	/* KVM_SET_XSAVE takes MXCSR only with SSE or AVX in XSTATE_BV (as in emulate_xsave.c). */
	memcpy(&mxcsr, area + LEG_MXCSR, sizeof(mxcsr));
	if (mxcsr != MXCSR_INIT && !(gbv & XF_SSE_AVX))
		gbv |= 1ull << 1;
	le_put64(xs->area, EMU_XSTATE_HEADER, (bv & ~rfbm) | gbv);
}

/* The memory operand of one instruction, copied through the guest's page tables. */
struct simd_mem {
	u64 la;
	unsigned base, off, size;
	u32 acc;
	bool mapped_write;
	struct mem_ref m;
	u8 before[MAX_OPERAND];
};

static u8 membuf[192] __attribute__((aligned(64)));

/*
 * x87 item 2: the last opcode, instruction pointer and data pointer (FOP,
 * FIP, FDP; decode/x87.h) in `area` as the guest's CPU leaves them, not as
 * the native step did: a non-control instruction records itself (its
 * original ModRM, not the rewritten one; its RIP, not the VMM's stub; its
 * operand's linear address, not the buffer's: the offset wherever the
 * segment base is 0). Those that set them do so natively alike; the others
 * keep the guest's, from `before` (the area before the step: an AMD CPU's
 * xsave stores zeros there while no x87 exception is pending).
 */
static void x87_pointers(const struct insn_ctx *c, const struct simd_mem *mem, u8 *area,
			 const u8 *before)
{
	u8 op = c->x86->opcode[0], modrm = c->x86->modrm;

	switch (x87_pointer_effect(op, modrm)) {
	case X87_PTRS_SET: return;
	case X87_PTRS_KEEP: memcpy(area + LEG_FOP, before + LEG_FOP, LEG_FDP + 8 - LEG_FOP); return;
	case X87_PTRS_RECORD:
		le_put16(area, LEG_FOP, (u16)(((op & 7u) << 8) | modrm));
		le_put64(area, LEG_FIP, c->cpu->rip);
		if (mem)
			le_put64(area, LEG_FDP, mem->la);
		return;
	}
}

/*
 * Items 4 and 5: run `code` natively with the guest's state, then commit.
 * `mem` (NULL: no memory operand) was loaded into membuf by the caller.
 */
static enum step simd_run(struct insn_ctx *c, enum encoding enc, u64 rfbm, const u8 *code,
			  unsigned len, struct simd_mem *mem)
{
	static u8 guest_area[AREA_LEN] __attribute__((aligned(64)));
	static u8 host_area[AREA_LEN] __attribute__((aligned(64)));
	struct simd_native sn;
	struct emu_xstate *xs;
	enum step st;
	int sig;

	xs = c->ops->get_xstate(c->ops->opaque);
	if (!xs)
		return STEP_HOST_ERROR;
	if (xs->size < EMU_XSTATE_EXTENDED || !area_in(xs, rfbm, guest_area))
		return STEP_UNKNOWN;

	/* Item 4. */
	memcpy(sn.gpr, c->cpu->gpr, sizeof(sn.gpr));
	if (mem)
		sn.gpr[mem->base] = (u64)(uintptr_t)(membuf + mem->off);
	sn.rflags = c->cpu->rflags;
	sn.guest_area = guest_area;
	sn.host_area = host_area;
	sn.rfbm = rfbm;
	sig = simd_native_step(&sn, code, len);
	if (sig < 0)
		return STEP_HOST_ERROR;
	if (sig)
		return native_fault(c, enc == ENC_X87, sig);

	/* Item 5. */
	if (mem) {
		bool store = mem->mapped_write || memcmp(mem->before, membuf + mem->off, mem->size);

		if (store && !mem->mapped_write) {
			st = emu_mem_map(c, mem->la, mem->size, mem->acc | EMU_ACC_WRITE, &mem->m);
			if (st != STEP_DONE)
				return st;
		}
		if (store) {
			st = emu_mem_store(c, &mem->m, membuf + mem->off);
			if (st != STEP_DONE)
				return st;
		}
		sn.gpr[mem->base] = c->cpu->gpr[mem->base];
	}
	sn.gpr[EMU_RSP] = c->cpu->gpr[EMU_RSP];
	memcpy(c->cpu->gpr, sn.gpr, sizeof(sn.gpr));
	c->cpu->rflags = (c->cpu->rflags & ~FLAGS_ARITH) | (sn.rflags & FLAGS_ARITH);
	if (enc == ENC_X87)
		x87_pointers(c, mem, guest_area, xs->area); /* xs: untouched until area_out */
	area_out(xs, rfbm, guest_area);
	if (!c->ops->put_xstate(c->ops->opaque, xs))
		return STEP_HOST_ERROR;
	return STEP_DONE;
}

/*
 * In hw mode; and in shadow mode where the VMM gives the xsave state: there
 * a process's SSE/AVX instruction comes here when it trapped, which on PVM
 * hosts can be a #GP (a misaligned movdqa) that KVM's own emulator turned
 * into #UD; run natively, it raises what the CPU raises.
 */
static bool simd_fallback_ready(const struct insn_ctx *c, bool x87)
{
	/* SIMD in 64-bit code only; x87 also in the 32-bit code emu_insn takes. */
	return c->ops->get_xstate && c->ops->put_xstate && (emu_long64(c->cpu) || x87);
}

enum step emu_dispatch_simd(struct insn_ctx *c)
{
	static const u8 bases[] = { EMU_RSI, EMU_RDI, EMU_RBX, EMU_RDX, EMU_RCX, EMU_RAX };
	bool x87 = x87_escape(c->x86->opcode[0]);
	enum encoding enc = x87 ? ENC_X87 : encoding_of(c->insn);
	struct x87_mem form = { 0, false, false };
	const cs_x86_op *op;
	struct simd_mem mem;
	u8 code[32];
	unsigned len = c->insn->size, i;
	u64 rfbm = 0;
	u32 used;
	enum step st;

	if (!simd_fallback_ready(c, x87) || (!x87 && !simd_group(c->insn)) ||
	    !simd_operands(c, x87, &op, &used) || len > sizeof(code))
		return STEP_UNKNOWN;
	/*
	 * x87 item 1: the memory form from the opcode map. The environment and
	 * state images (fldenv, fnstenv, frstor, fnsave) have a 16-bit layout
	 * with an operand-size prefix, and store FCS and FDS in 32-bit code,
	 * which the VMM's 64-bit step would not: only 64-bit code's run.
	 */
	if (x87 && op &&
	    (!x87_mem_form(c->x86->opcode[0], c->x86->modrm, &form) ||
	     (form.env && (!emu_long64(c->cpu) || c->x86->prefix[2] == OPSIZE_16))))
		return STEP_UNKNOWN;
	host_layout();
	st = simd_checks(c, enc, &rfbm);
	if (st != STEP_DONE)
		return st;
	memcpy(code, c->insn->bytes, len);
	if (!op) {
		/*
		 * The bytes run as they are: where capstone saw no memory operand,
		 * the CPU must not see one either (a ModRM with mod != 3 would
		 * address the VMM's memory with the guest's registers).
		 */
		unsigned mo = c->x86->encoding.modrm_offset;

		if (mo && (mo >= len || (code[mo] >> 6) != 3))
			return STEP_UNKNOWN;
		return simd_run(c, enc, rfbm, code, len, NULL);
	}

	/* Item 3. */
	for (i = 0; i < sizeof(bases) && (used & (1u << bases[i])); i++)
		;
	if (i == sizeof(bases))
		return STEP_UNKNOWN;
	mem.base = bases[i];
	len = rewrite(c->insn, c->x86, mem.base, code);
	if (!len)
		return STEP_UNKNOWN;
	st = emu_operand_la(c, op, &mem.la);
	if (st != STEP_DONE)
		return st;
	mem.size = x87 ? form.size : op->size;
	mem.off = (unsigned)(mem.la & 63);
	mem.acc = emu_data_access(c->cpu, 0);
	/* SIMD: operand 0 is the destination. x87: the table says (fld's operand 0 is read). */
	mem.mapped_write =
		x87 ? form.write : op == &c->x86->operands[0] || (op->access & CS_AC_WRITE);
	st = emu_mem_map(c, mem.la, mem.size, mem.acc | (mem.mapped_write ? EMU_ACC_WRITE : 0),
			 &mem.m);
	if (st != STEP_DONE)
		return st;
	memset(membuf, 0, sizeof(membuf));
	st = emu_mem_load(c, &mem.m, membuf + mem.off);
	if (st != STEP_DONE)
		return st;
	memcpy(mem.before, membuf + mem.off, mem.size);
	return simd_run(c, enc, rfbm, code, len, &mem);
}

/*
 * Item 6. Register-only VEX/EVEX instructions capstone 4.0.2 cannot decode
 * (many AVX-512VL forms such as vprord and vpermi2d, which Linux's
 * blake2s_compress_avx512 uses; VAES, VPCLMULQDQ and GFNI on YMM/ZMM;
 * vbroadcasti128 ...). Without a memory operand nothing needs rewriting:
 * the bytes run as they are, once their length is known from the
 * encoding (SDM Vol. 2A §2.3, §2.7: prefix, opcode, ModRM with mod = 11,
 * an imm8 for map 0F3A and for 0F 70-73, C2, C4-C6).
 *
 * A register field may name a GPR in the few opcodes that take one (moves
 * to and from GPRs, inserts, extracts, mask moves, kmov; listed below,
 * conservatively for all three maps); there a field that would name RSP is
 * refused, since the native step runs on the VMM's stack. Anything else
 * (legacy prefixes, maps 5-7, a memory operand) stays unknown.
 */
static bool takes_gpr(unsigned map, u8 op)
{
	switch (map) {
	case 1:
		return op == 0x2a || op == 0x2c || op == 0x2d || op == 0x50 || op == 0x6e ||
		       (op >= 0x78 && op <= 0x7b) || op == 0x7e || op == 0x90 || op == 0x91 ||
		       op == 0x92 || op == 0x93 || op == 0x98 || op == 0x99 || op == 0xc4 ||
		       op == 0xc5 || op == 0xd7;
	case 2: return op == 0x7a || op == 0x7b || op == 0x7c || op >= 0xf0;
	case 3:
		return (op >= 0x14 && op <= 0x17) || op == 0x20 || op == 0x22 || op == 0x30 ||
		       op == 0x31 || op == 0x32 || op == 0x33 || op == 0xf0;
	default: return true;
	}
}

unsigned emu_simd_raw_len(const u8 *b, unsigned n)
{
	unsigned map, at, reg, rm, vvvv, len;
	bool r, x, bb;
	u8 op, modrm;

	if (n < 4)
		return 0;
	switch (b[0]) {
	case 0xc5:
		map = 1;
		r = !(b[1] & 0x80);
		x = bb = false;
		vvvv = (~b[1] >> 3) & 15;
		at = 2;
		break;
	case 0xc4:
		map = b[1] & 0x1f;
		r = !(b[1] & 0x80);
		x = !(b[1] & 0x40);
		bb = !(b[1] & 0x20);
		vvvv = (~b[2] >> 3) & 15;
		at = 3;
		break;
	case 0x62:
		if (n < 6 || (b[1] & 0x08) || !(b[2] & 0x04))
			return 0;
		map = b[1] & 0x07;
		r = !(b[1] & 0x80);
		x = !(b[1] & 0x40);
		bb = !(b[1] & 0x20);
		vvvv = (~b[2] >> 3) & 15;
		at = 4;
		break;
	default: return 0;
	}
	if (map < 1 || map > 3 || at + 2 > n)
		return 0;
	op = b[at];
	modrm = b[at + 1];
	/* No memory operand, and none implied: (v)maskmovdqu stores at [RDI]. */
	if ((modrm >> 6) != 3 || (map == 1 && op == 0xf7))
		return 0;
	len = at + 2;
	if (map == 3 ||
	    (map == 1 && ((op >= 0x70 && op <= 0x73) || op == 0xc2 || (op >= 0xc4 && op <= 0xc6))))
		len++;
	if (len > n)
		return 0;
	reg = ((modrm >> 3) & 7) | (r ? 8 : 0);
	rm = (modrm & 7) | (bb ? 8 : 0) | (b[0] == 0x62 && x ? 16 : 0);
	/* A GPR operand ignores EVEX.X and EVEX.V': compare the four bits that count. */
	if (takes_gpr(map, op) && (reg == EMU_RSP || (rm & 15) == EMU_RSP || vvvv == EMU_RSP))
		return 0;
	return len;
}

enum step emu_simd_raw(struct insn_ctx *c, const u8 *code, unsigned len)
{
	u64 rfbm = 0;
	enum step st;

	enum encoding enc = code[0] == 0x62 ? ENC_EVEX : ENC_VEX;

	if (!simd_fallback_ready(c, false))
		return STEP_UNKNOWN;
	host_layout();
	st = simd_checks(c, enc, &rfbm);
	if (st != STEP_DONE)
		return st;
	return simd_run(c, enc, rfbm, code, len, NULL);
}

void emu_simd_keep_handlers(void)
{
	simd_native_keep_handlers();
}
