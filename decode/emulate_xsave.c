// SPDX-License-Identifier: MIT
/*
 * The xsave family in hw mode (decode/emulate.h): xsave, xsaveopt, xsavec
 * and xrstor (and ldmxcsr/stmxcsr), on the vCPU's XSAVE-managed state that the VMM hands over in
 * the standard format (struct emu_xstate, ops->get_xstate/put_xstate).
 *
 * 1. Checks common to all four (SDM Vol. 1 §13.7-13.10, Vol. 2 XSAVE):
 *    #UD if CR4.OSXSAVE = 0, #NM if CR0.TS = 1, #GP(0) if the area is not
 *    64-byte aligned. RFBM = EDX:EAX & XCR0 (ops->read_xcr).
 * 2. The guest's XSAVE area is translated page by page (span_map) before
 *    anything is stored or loaded, so a #PF leaves memory and state as
 *    they were.
 * 3. xsave, xsaveopt (init optimization), xsavec (compacted format, init
 *    optimization): copy components from the vCPU's area to the guest's,
 *    then the header (SDM §13.7, §13.9, §13.10).
 * 4. xrstor, standard and compacted forms (SDM §13.8): the header checks
 *    (#GP(0)), MXCSR against MXCSR_MASK (#GP(0)), then each requested
 *    component is loaded or set to its initial configuration, and the
 *    new state goes to the vCPU through ops->put_xstate.
 *
 * 5. ldmxcsr/stmxcsr (SDM Vol. 2A LDMXCSR, Vol. 2B STMXCSR): MXCSR in the
 *    same area; #UD if CR0.EM = 1 or CR4.OSFXSR = 0, #NM if CR0.TS = 1,
 *    #GP(0) for a value with bits outside MXCSR_MASK.
 *
 * XINUSE (SDM §13.6) is the XSTATE_BV KVM reports for the vCPU: Linux's
 * KVM stores initial values for the components whose bit is clear, so
 * copying a component whose XINUSE bit is 0 stores its initial values.
 *
 * The forms without REX.W (32-bit code has no other) store FIP and FDP as
 * 32-bit offsets with the selectors FCS and FDS above them (SDM §13.5.1,
 * the FXSAVE layout); KVM's area has the 64-bit layout (xsave64), so
 * item 6 converts. LIMITATION: FCS and FDS are stored as 0 (as on CPUs
 * that deprecate them, CPUID.(EAX=7,ECX=0):EBX[13]), and xrstor drops
 * them: KVM's area has no room for them.
 *
 * Shadow mode runs these natively at CPL3 (the state is the guest's own);
 * one comes here only where it trapped: on PVM hosts, whose KVM emulates
 * 32-bit code at CPL3 and rejects the xsave family, so a 32-bit guest
 * kernel's xrstor arrives as #UD. There the vCPU's state is the guest's,
 * and XCR0 is the guest's virtual one (ops->read_xcr).
 */
#include <string.h>

#include "decode/emulate_internal.h"
#include "shadow/x86.h"

#define XFEATURE_X87	   (1ull << 0)
#define XFEATURE_SSE	   (1ull << 1)
#define XFEATURE_AVX	   (1ull << 2)
#define XCOMP_BV_COMPACTED (1ull << 63)

#define LEG_PTRS_LEN	   16	  /* FIP and FDP */
#define MXCSR_MASK_DEFAULT 0xffbf /* when the saved MXCSR_MASK is 0 (SDM Vol. 1 §11.6.6) */

/* The longest area handled: 16 pages (AMX tiles need 11 KiB). */
#define SPAN_MAX_PAGES 17

/*
 * [la, la + len) translated: hva[i] is where the i-th page-sized chunk lives
 * in the VMM. In shadow mode (ops->map_phys) that is a bounce copy, and
 * span_commit stores it through ref[i]: a store must go through the shadow
 * MMU's write path (the page may hold a shadowed page table).
 */
struct span {
	u64 la;
	u32 len;
	u8 *hva[SPAN_MAX_PAGES];
	struct mem_ref ref[SPAN_MAX_PAGES];
	unsigned npages;
	bool bounced;
};

static u8 bounce[SPAN_MAX_PAGES * PAGE_SIZE];

/* Item 2. Translate the whole area for `acc` before touching any of it. */
static enum step span_map(struct insn_ctx *c, u64 la, u32 len, u32 acc, struct span *s)
{
	u64 end = la + len;
	unsigned i = 0;

	if (!emu_is_canonical(end - 1))
		return emu_raise(c, EXC_GP(0));
	if (((end - 1) >> PAGE_SHIFT) - (la >> PAGE_SHIFT) >= SPAN_MAX_PAGES)
		return STEP_UNKNOWN;
	s->la = la;
	s->len = len;
	s->bounced = c->ops->map_phys != NULL;
	for (u64 a = la; a < end; i++) {
		u64 to = MIN((a & PAGE_MASK) + PAGE_SIZE, end);
		struct mem_ref *m = &s->ref[i];
		enum step st = emu_mem_map(c, a, (unsigned)(to - a), acc, m);

		if (st != STEP_DONE)
			return st;
		if (!s->bounced) {
			/* hw mode: every piece is RAM with a host pointer */
			s->hva[i] = m->piece[0].hva;
		} else {
			/* One piece per page; an area in MMIO is not emulated. */
			if (m->npieces != 1 || !m->piece[0].hva)
				return STEP_NOT_RAM;
			s->hva[i] = bounce + i * PAGE_SIZE;
			st = emu_mem_load(c, m, s->hva[i]);
			if (st != STEP_DONE)
				return st;
		}
		a = to;
	}
	s->npages = i;
	return STEP_DONE;
}

/*
 * Store a bounced span (shadow mode) back to the guest, in stores of at
 * most EMU_WRITE_MAX bytes and only where the bytes changed (a page holds
 * one piece: span_map maps page by page); nothing to do in hw mode.
 */
static enum step span_commit(struct insn_ctx *c, const struct span *s)
{
	for (unsigned i = 0; s->bounced && i < s->npages; i++) {
		const struct mem_ref *m = &s->ref[i];

		for (unsigned at = 0; at < m->len; at += EMU_WRITE_MAX) {
			struct mem_ref part = { .la = m->la + at, .npieces = 1 };
			enum step st;

			part.len = MIN(m->len - at, (unsigned)EMU_WRITE_MAX);
			part.piece[0] = (struct emu_piece){ .gpa = gpa(m->piece[0].gpa.v + at),
							    .hva = (u8 *)m->piece[0].hva + at,
							    .off = 0,
							    .len = part.len };
			if (!memcmp(part.piece[0].hva, s->hva[i] + at, part.len))
				continue;
			st = emu_mem_store(c, &part, s->hva[i] + at);
			if (st != STEP_DONE)
				return st;
		}
	}
	return STEP_DONE;
}

/* Copy `n` bytes between offset `off` of the guest area and `buf`. */
static void span_copy(const struct span *s, u32 off, void *buf, u32 n, bool to_guest)
{
	u8 *b = buf;

	while (n) {
		u64 a = s->la + off;
		unsigned i = (unsigned)((a >> PAGE_SHIFT) - (s->la >> PAGE_SHIFT));
		u64 chunk_start = i ? a & PAGE_MASK : s->la;
		u32 k = (u32)MIN((u64)n, (a & PAGE_MASK) + PAGE_SIZE - a);
		u8 *h = s->hva[i] + (a - chunk_start);

		if (to_guest)
			memcpy(h, b, k);
		else
			memcpy(b, h, k);
		b += k;
		off += k;
		n -= k;
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

/*
 * Item 6: FIP and FDP between the 64-bit layout of KVM's area (two 64-bit
 * offsets at LEG_FIP and LEG_FDP) and the 32-bit one of the forms without
 * REX.W (each a 32-bit offset, its 16-bit selector, 2 reserved bytes).
 */
static void pointers_to32(const u8 *area, u8 out[LEG_PTRS_LEN])
{
	u32 fip = (u32)get64(area + LEG_FIP), fdp = (u32)get64(area + LEG_FDP);

	memset(out, 0, LEG_PTRS_LEN); /* FCS, FDS: 0 (the file-top LIMITATION) */
	memcpy(out, &fip, sizeof(fip));
	memcpy(out + (LEG_FDP - LEG_FIP), &fdp, sizeof(fdp));
}

static void pointers_from32(u8 *area)
{
	u32 fip, fdp;

	memcpy(&fip, area + LEG_FIP, sizeof(fip));
	memcpy(&fdp, area + LEG_FDP, sizeof(fdp));
	put64(area + LEG_FIP, fip);
	put64(area + LEG_FDP, fdp);
}

/* The byte ranges of the legacy region that make up component i < 2 (SDM §13.4.1). */
struct range {
	u32 off, len;
};

static unsigned legacy_ranges(unsigned i, struct range r[2])
{
	if (i == 0) {
		r[0] = (struct range){ 0, LEG_MXCSR };
		r[1] = (struct range){ LEG_ST0, LEG_XMM0 - LEG_ST0 };
		return 2;
	}
	r[0] = (struct range){ LEG_XMM0, LEG_END - LEG_XMM0 };
	return 1;
}

/*
 * Where component i >= 2 lives in the guest's area: its CPUID offset in the
 * standard format; in the compacted format (SDM §13.4.3) after every
 * component j < i of `comp`, from 576, aligned to 64 where CPUID says.
 * Returns false for a component whose layout is unknown.
 */
static bool comp_offset(const struct emu_xstate *xs, unsigned i, bool compacted, u64 comp, u32 *off)
{
	u32 o = EMU_XSTATE_EXTENDED;

	if (!xs->len[i] || xs->offset[i] + xs->len[i] > xs->size)
		return false;
	if (!compacted) {
		*off = xs->offset[i];
		return true;
	}
	if (!(comp & (1ull << i)))
		return false;
	for (unsigned j = 2; j <= i; j++) {
		if (!(comp & (1ull << j)))
			continue;
		if (!xs->len[j])
			return false;
		if (xs->align64 & (1ull << j))
			o = (o + 63) & ~63u;
		if (j == i)
			break;
		o += xs->len[j];
	}
	*off = o;
	return true;
}

/* The bytes the area needs for the components in `mask` (at least legacy + header). */
static bool area_size(const struct emu_xstate *xs, u64 mask, bool compacted, u32 *size)
{
	u32 end = EMU_XSTATE_EXTENDED, off;

	for (unsigned i = 2; i < EMU_XSTATE_MAX_COMPS - 1; i++) {
		if (!(mask & (1ull << i)))
			continue;
		if (!comp_offset(xs, i, compacted, mask, &off))
			return false;
		end = MAX(end, off + xs->len[i]);
	}
	*size = end;
	return true;
}

/* Item 1, and RFBM. */
static enum step common_checks(struct insn_ctx *c, u64 *la, u64 *rfbm)
{
	const cs_x86_op *mem = emu_op(c, 0);
	u64 xcr0;
	enum step st;

	if (!mem || mem->type != X86_OP_MEM || !c->ops->get_xstate || !c->ops->put_xstate)
		return STEP_UNKNOWN;
	if (!(c->cpu->cr4 & CR4_OSXSAVE))
		return emu_raise(c, EXC_UD());
	if (c->cpu->cr0 & CR0_TS)
		return emu_raise(c, emu_exception(X86_EXC_NM, false, 0));
	st = emu_operand_la(c, mem, la);
	if (st != STEP_DONE)
		return st;
	if (*la & 63)
		return emu_raise(c, EXC_GP(0));
	if (!c->ops->read_xcr(c->ops->opaque, 0, &xcr0))
		return STEP_HOST_ERROR;
	*rfbm = ((c->cpu->gpr[EMU_RDX] << 32) | (u32)c->cpu->gpr[EMU_RAX]) & xcr0;
	return STEP_DONE;
}

enum xsave_kind { XS_PLAIN, XS_OPT, XS_COMPACT };

/* Item 3. */
static enum step do_xsave(struct insn_ctx *c, enum xsave_kind kind, bool rex_w)
{
	bool compacted = kind == XS_COMPACT;
	struct emu_xstate *xs;
	struct span s;
	struct range r[2];
	u64 la, rfbm, xinuse, saved, bv;
	u32 size, off;
	enum step st = common_checks(c, &la, &rfbm);

	if (st != STEP_DONE)
		return st;
	xs = c->ops->get_xstate(c->ops->opaque);
	if (!xs)
		return STEP_HOST_ERROR;
	if (xs->size < EMU_XSTATE_EXTENDED || !area_size(xs, rfbm, compacted, &size))
		return STEP_UNKNOWN;
	st = span_map(c, la, size, emu_data_access(c->cpu, EMU_ACC_WRITE), &s);
	if (st != STEP_DONE)
		return st;
	xinuse = get64(xs->area + EMU_XSTATE_HEADER);
	/* xsave saves every requested component; xsaveopt and xsavec skip the unused ones. */
	saved = kind == XS_PLAIN ? rfbm : rfbm & xinuse;
	/*
	 * MXCSR (with MXCSR_MASK) goes with SSE state: xsave and xsaveopt save
	 * it when RFBM[1] or RFBM[2] is set, the init optimization aside
	 * (SDM §13.7, §13.9); xsavec saves SSE state, MXCSR included, when
	 * RFBM[1] = 1 and XINUSE[1] = 1 or MXCSR is not 1F80H (SDM §13.10).
	 */
	if (compacted && (rfbm & XFEATURE_SSE) && (u32)get64(xs->area + LEG_MXCSR) != MXCSR_INIT)
		saved |= XFEATURE_SSE;
	if (compacted ? (saved & XFEATURE_SSE) : (rfbm & (XFEATURE_SSE | XFEATURE_AVX)))
		span_copy(&s, LEG_MXCSR, xs->area + LEG_MXCSR, 8, true);
	for (unsigned i = 0; i < EMU_XSTATE_MAX_COMPS - 1; i++) {
		if (!(saved & (1ull << i)))
			continue;
		if (i < 2) {
			for (unsigned k = 0, n = legacy_ranges(i, r); k < n; k++)
				span_copy(&s, r[k].off, xs->area + r[k].off, r[k].len, true);
			if (i == 0 && !rex_w) {
				u8 ptrs[LEG_PTRS_LEN];

				pointers_to32(xs->area, ptrs);
				span_copy(&s, LEG_FIP, ptrs, sizeof(ptrs), true);
			}
			continue;
		}
		if (!comp_offset(xs, i, compacted, rfbm, &off))
			return STEP_UNKNOWN; /* not reached: area_size checked every component */
		span_copy(&s, off, xs->area + xs->offset[i], xs->len[i], true);
	}
	if (compacted) {
		/* XSTATE_BV = XINUSE & RFBM, XCOMP_BV = RFBM with bit 63 (SDM §13.10). */
		u8 hdr[16];

		put64(hdr, xinuse & rfbm);
		put64(hdr + 8, rfbm | XCOMP_BV_COMPACTED);
		span_copy(&s, EMU_XSTATE_HEADER, hdr, sizeof(hdr), true);
		return span_commit(c, &s);
	}
	/* Only XSTATE_BV of the header is written; its bits outside RFBM are kept (SDM §13.7). */
	span_copy(&s, EMU_XSTATE_HEADER, &bv, sizeof(bv), false);
	bv = (bv & ~rfbm) | (xinuse & rfbm);
	span_copy(&s, EMU_XSTATE_HEADER, &bv, sizeof(bv), true);
	return span_commit(c, &s);
}

/* Component i's initial configuration (SDM §13.6): all zero but x87's FCW (and MXCSR). */
static void init_component(struct emu_xstate *xs, unsigned i)
{
	struct range r[2];

	if (i >= 2) {
		memset(xs->area + xs->offset[i], 0, xs->len[i]);
		return;
	}
	for (unsigned k = 0, n = legacy_ranges(i, r); k < n; k++)
		memset(xs->area + r[k].off, 0, r[k].len);
	if (i == 0) {
		u16 fcw = FCW_INIT;

		memcpy(xs->area + LEG_FCW, &fcw, sizeof(fcw));
	}
}

/* Item 4. */
static enum step do_xrstor(struct insn_ctx *c, bool rex_w)
{
	struct emu_xstate *xs;
	struct span s;
	struct range r[2];
	u8 hdr[64];
	u64 la, rfbm, xcr0, xstate_bv, xcomp_bv, kvm_bv;
	u32 size, off, mxcsr = MXCSR_INIT, mxcsr_mask;
	bool compacted, load_mxcsr, init_mxcsr = false;
	enum step st = common_checks(c, &la, &rfbm);

	if (st != STEP_DONE)
		return st;
	if (!c->ops->read_xcr(c->ops->opaque, 0, &xcr0))
		return STEP_HOST_ERROR;
	/* The header first: its checks come before any other access to the area. */
	if (!emu_is_canonical(la + EMU_XSTATE_EXTENDED - 1))
		return emu_raise(c, EXC_GP(0));
	st = emu_mem_read(c, la + EMU_XSTATE_HEADER, hdr, sizeof(hdr), emu_data_access(c->cpu, 0));
	if (st != STEP_DONE)
		return st;
	xstate_bv = get64(hdr);
	xcomp_bv = get64(hdr + 8);
	compacted = xcomp_bv & XCOMP_BV_COMPACTED;
	if (!compacted) {
		/* Standard form (SDM §13.8.1): XSTATE_BV within XCR0, bytes 23:8 zero. */
		if ((xstate_bv & ~xcr0) || xcomp_bv || get64(hdr + 16))
			return emu_raise(c, EXC_GP(0));
	} else {
		/*
		 * Compacted form (SDM §13.8.2): XCOMP_BV[62:0] within XCR0,
		 * XSTATE_BV within XCOMP_BV, bytes 63:16 zero.
		 * LIMITATION: not #GP when the guest's CPUID hides XSAVEC (the
		 * emulator does not see the guest's CPUID).
		 */
		if ((xcomp_bv & ~XCOMP_BV_COMPACTED & ~xcr0) ||
		    (xstate_bv & ~(xcomp_bv & ~XCOMP_BV_COMPACTED)))
			return emu_raise(c, EXC_GP(0));
		for (unsigned k = 16; k < sizeof(hdr); k += 8)
			if (get64(hdr + k))
				return emu_raise(c, EXC_GP(0));
	}
	xs = c->ops->get_xstate(c->ops->opaque);
	if (!xs)
		return STEP_HOST_ERROR;
	/*
	 * Every requested component needs a known layout (those with
	 * XSTATE_BV[i] = 0 are initialized in xs). Only the ones with RFBM[i] =
	 * XSTATE_BV[i] = 1 are read, so the area is translated up to the last
	 * of them (the compacted layout is the one XCOMP_BV describes).
	 */
	if (xs->size < EMU_XSTATE_EXTENDED || !area_size(xs, rfbm, false, &size) ||
	    !area_size(xs, compacted ? xcomp_bv & ~XCOMP_BV_COMPACTED : rfbm & xstate_bv, compacted,
		       &size))
		return STEP_UNKNOWN;
	st = span_map(c, la, size, emu_data_access(c->cpu, 0), &s);
	if (st != STEP_DONE)
		return st;
	/*
	 * MXCSR: the standard form loads it when RFBM[1] or RFBM[2] is set;
	 * the compacted form only with RFBM[1] = XSTATE_BV[1] = 1, and sets
	 * 1F80H when RFBM[1] = 1 and XSTATE_BV[1] = 0 (SDM §13.8.2). A value
	 * with bits outside MXCSR_MASK is #GP(0).
	 */
	if (compacted) {
		load_mxcsr = (rfbm & xstate_bv & XFEATURE_SSE) != 0;
		init_mxcsr = (rfbm & XFEATURE_SSE) && !(xstate_bv & XFEATURE_SSE);
	} else {
		load_mxcsr = (rfbm & (XFEATURE_SSE | XFEATURE_AVX)) != 0;
	}
	memcpy(&mxcsr_mask, xs->area + LEG_MXCSR_MSK, sizeof(mxcsr_mask));
	if (!mxcsr_mask)
		mxcsr_mask = MXCSR_MASK_DEFAULT;
	if (load_mxcsr) {
		span_copy(&s, LEG_MXCSR, &mxcsr, sizeof(mxcsr), false);
		if (mxcsr & ~mxcsr_mask)
			return emu_raise(c, EXC_GP(0));
	}
	/* Nothing can fault any more: build the new state. */
	kvm_bv = get64(xs->area + EMU_XSTATE_HEADER);
	for (unsigned i = 0; i < EMU_XSTATE_MAX_COMPS - 1; i++) {
		u64 bit = 1ull << i;

		if (!(rfbm & bit))
			continue;
		if (!(xstate_bv & bit)) {
			init_component(xs, i);
			kvm_bv &= ~bit;
			continue;
		}
		kvm_bv |= bit;
		if (i < 2) {
			for (unsigned k = 0, n = legacy_ranges(i, r); k < n; k++)
				span_copy(&s, r[k].off, xs->area + r[k].off, r[k].len, false);
			if (i == 0 && !rex_w)
				pointers_from32(xs->area);
			continue;
		}
		if (!comp_offset(xs, i, compacted, xcomp_bv & ~XCOMP_BV_COMPACTED, &off))
			return STEP_UNKNOWN;
		span_copy(&s, off, xs->area + xs->offset[i], xs->len[i], false);
	}
	if (load_mxcsr || init_mxcsr) {
		memcpy(xs->area + LEG_MXCSR, &mxcsr, sizeof(mxcsr));
		/*
		 * Linux's KVM_SET_XSAVE takes MXCSR only when XSTATE_BV has SSE
		 * or AVX: mark SSE in use (XINUSE may be 1 for a component in
		 * its initial configuration, SDM §13.6) so a non-initial MXCSR
		 * is not lost.
		 */
		if (mxcsr != MXCSR_INIT && !(kvm_bv & (XFEATURE_SSE | XFEATURE_AVX)))
			kvm_bv |= XFEATURE_SSE;
	}
	put64(xs->area + EMU_XSTATE_HEADER, kvm_bv);
	if (!c->ops->put_xstate(c->ops->opaque, xs))
		return STEP_HOST_ERROR;
	return STEP_DONE;
}

/* Item 5. */
static enum step do_mxcsr(struct insn_ctx *c, bool load)
{
	const cs_x86_op *mem = emu_op(c, 0);
	struct emu_xstate *xs;
	u32 v, mask;
	u64 la, bv;
	enum step st;

	/* Shadow mode too, where it traps: as the xsave family (file-top comment). */
	if (!mem || mem->type != X86_OP_MEM || !c->ops->get_xstate || !c->ops->put_xstate)
		return STEP_UNKNOWN;
	if ((c->cpu->cr0 & CR0_EM) || !(c->cpu->cr4 & CR4_OSFXSR))
		return emu_raise(c, EXC_UD());
	if (c->cpu->cr0 & CR0_TS)
		return emu_raise(c, emu_exception(X86_EXC_NM, false, 0));
	st = emu_operand_la(c, mem, &la);
	if (st != STEP_DONE)
		return st;
	xs = c->ops->get_xstate(c->ops->opaque);
	if (!xs)
		return STEP_HOST_ERROR;
	if (xs->size < EMU_XSTATE_EXTENDED)
		return STEP_UNKNOWN;
	if (!load) {
		memcpy(&v, xs->area + LEG_MXCSR, sizeof(v));
		return emu_mem_write(c, la, &v, sizeof(v), emu_data_access(c->cpu, 0));
	}
	st = emu_mem_read(c, la, &v, sizeof(v), emu_data_access(c->cpu, 0));
	if (st != STEP_DONE)
		return st;
	memcpy(&mask, xs->area + LEG_MXCSR_MSK, sizeof(mask));
	if (v & ~(mask ? mask : MXCSR_MASK_DEFAULT))
		return emu_raise(c, EXC_GP(0));
	memcpy(xs->area + LEG_MXCSR, &v, sizeof(v));
	/* KVM_SET_XSAVE takes MXCSR only with SSE or AVX in XSTATE_BV (see do_xrstor). */
	bv = get64(xs->area + EMU_XSTATE_HEADER);
	if (v != MXCSR_INIT && !(bv & (XFEATURE_SSE | XFEATURE_AVX)))
		put64(xs->area + EMU_XSTATE_HEADER, bv | XFEATURE_SSE);
	if (!c->ops->put_xstate(c->ops->opaque, xs))
		return STEP_HOST_ERROR;
	return STEP_DONE;
}

enum step emu_x87_fsw(struct insn_ctx *c, u16 *fsw)
{
	struct emu_xstate *xs;

	if (!c->ops->get_xstate)
		return STEP_UNKNOWN;
	xs = c->ops->get_xstate(c->ops->opaque);
	if (!xs)
		return STEP_HOST_ERROR;
	if (xs->size < LEG_FSW + 2)
		return STEP_UNKNOWN;
	memcpy(fsw, xs->area + LEG_FSW, sizeof(*fsw));
	return STEP_DONE;
}

enum step emu_dispatch_xsave(struct insn_ctx *c)
{
	switch (c->insn->id) {
	case X86_INS_XSAVE: return do_xsave(c, XS_PLAIN, false);
	case X86_INS_XSAVE64: return do_xsave(c, XS_PLAIN, true);
	case X86_INS_XSAVEOPT: return do_xsave(c, XS_OPT, false);
	case X86_INS_XSAVEOPT64: return do_xsave(c, XS_OPT, true);
	case X86_INS_XSAVEC: return do_xsave(c, XS_COMPACT, false);
	case X86_INS_XSAVEC64: return do_xsave(c, XS_COMPACT, true);
	case X86_INS_XRSTOR: return do_xrstor(c, false);
	case X86_INS_XRSTOR64: return do_xrstor(c, true);
	case X86_INS_LDMXCSR: return do_mxcsr(c, true);
	case X86_INS_STMXCSR: return do_mxcsr(c, false);
	default: return emu_dispatch_simd(c);
	}
}
