// SPDX-License-Identifier: MIT
/*
 * decode/chain_ahead: the trap chain's lookahead (decode/chain.h,
 * chain_lookahead). Pure: the code comes through the caller's reader, the
 * registers and flags from the caller's copy of the vCPU.
 */
#include "decode/chain.h"
#include "decode/emulate.h"
#include "decode/flags.h"

#define CHAIN_INSN_MAX 15u /* SDM Vol. 2A §2.3.11 */

/*
 * The flags at the instruction looked at: the vCPU's for the first, then
 * what the compares on the way leave while the registers they read are
 * still the vCPU's. Unknown after any other bridge that sets flags.
 */
struct ahead_flags {
	u64 rflags;
	bool known;	  /* rflags holds the flags here */
	bool regs_as_now; /* no bridge so far wrote a register */
	u64 rcx;	  /* RCX here, if rcx_known: a rep movs's count */
	bool rcx_known;
};

/* Account for bridge `in` (its bytes at code[0..n)) on the way. */
static void pass_bridge(struct ahead_flags *f, const u64 *gpr, const u8 *code, unsigned n,
			const struct chain_insn *in)
{
	unsigned dst, src, size;

	if (in->compare) {
		f->known = f->regs_as_now && chain_compare(code, n, gpr, &f->rflags);
		return;
	}
	if (chain_mov_reg(code, n, &dst, &src, &size)) {
		if (dst == 1) { /* RCX: from a register still the vCPU's, or unknown */
			f->rcx_known = f->regs_as_now;
			f->rcx = flags_trunc(gpr[src], size);
		}
	} else {
		f->rcx_known = false; /* other bridges may write it (rep movs, pop) */
	}
	f->regs_as_now = false; /* every other bridge may write a register or RSP */
	if (in->sets_flags)
		f->known = false;
}

enum chain_class chain_lookahead(const struct chain_code *code, const struct chain_start *s,
				 struct chain_insn *first)
{
	struct ahead_flags fl = { .rflags = s->rflags,
				  .known = true,
				  .regs_as_now = true,
				  .rcx = s->gpr[1],
				  .rcx_known = true };
	enum chain_class first_cls = CHAIN_END;
	u64 la = s->la;

	for (unsigned k = 0; k < s->steps; k++) {
		u8 bytes[CHAIN_INSN_MAX];
		struct chain_insn in = { 0 }; /* a patch leaves it so */
		enum chain_class cls;
		bool patched = false;
		unsigned n = code->read(code->opaque, la, bytes, sizeof(bytes), &patched);

		if (n == 0)
			return CHAIN_END;
		cls = patched ? CHAIN_TRAP : chain_classify(bytes, n, s->flags, &in);
		if (cls == CHAIN_BRANCH) {
			if (!fl.known) /* the way on depends on flags not computed yet */
				return CHAIN_END;
			if (!flags_cond(fl.rflags, in.cc))
				in.rel = 0;
		} else if (cls == CHAIN_BRIDGE) {
			if (in.rep_size && fl.rcx_known && fl.rcx > s->copy_max / in.rep_size)
				return CHAIN_END; /* too long a copy to emulate: it runs natively */
			pass_bridge(&fl, s->gpr, bytes, n, &in);
		}
		if (k == 0) {
			first_cls = cls;
			*first = in;
		}
		if (cls == CHAIN_TRAP)
			return first_cls;
		if (cls == CHAIN_END)
			return CHAIN_END;
		/* A bridge, nop, jump or branch: only worth taking if a trap follows. */
		la = chain_next_ip(la, &in);
		if (!emu_is_canonical(la)) /* the jump itself faults; the walk would not see it */
			return CHAIN_END;
	}
	return CHAIN_END;
}
