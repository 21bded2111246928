/* SPDX-License-Identifier: MIT */
/*
 * decode/chain: which instruction, right after one the VMM has just
 * emulated, would trap at once too, so that the VMM emulates it in the same
 * trap ("trap chaining", vmm/shadow_mode.c).
 *
 * Why: on our hosts a trap costs tens of microseconds and the emulation a
 * few, and Linux's kernel runs privileged instructions in pairs and runs:
 * `swapgs; rdgsbase %rax; swapgs` to read the inactive GS base at every
 * context switch, `swapgs` as the first instruction of the syscall entry
 * and `swapgs; sysretq` at its end. Emulating the rest of such a run at
 * the first trap removes the others.
 *
 * Exactness: the chained instruction is the one the guest executes next,
 * read through the guest's own tables as a fetch, and emulated exactly as
 * if it had trapped; the VMM stops a chain wherever a trap would have let
 * something else happen in between (an interrupt it holds, an sti shadow, a
 * change of CPL or paging mode, an exception). An external interrupt that
 * arrives meanwhile is taken after the chain, as if it had come a few
 * instructions later, which hardware allows.
 *
 * The classifier works on raw bytes of 64-bit code and knows a short,
 * exact list; anything else (other prefixes included) ends the chain.
 */
#ifndef UMBRA_DECODE_CHAIN_H
#define UMBRA_DECODE_CHAIN_H

#include "umbra/types.h"

enum chain_class {
	CHAIN_END,  /* runs natively, or not one we know: the chain ends before it */
	CHAIN_TRAP, /* traps at real CPL3 (privileged): worth emulating now */
	/*
	 * Runs natively at CPL3 and is simple to emulate: worth it only to
	 * reach a CHAIN_TRAP a few instructions on. rd/wr fs/gs base always;
	 * a mov to or from memory only inside a user-access window (below).
	 */
	CHAIN_BRIDGE,
	CHAIN_NOP,  /* a nop (90, 0f 1f /0, with 66) or lfence: no state to change */
	CHAIN_JUMP, /* jmp rel8/rel32: followed (Linux jumps over its alternatives' verw) */
	/*
	 * jcc rel8/rel32 inside a user-access window: followed to where the
	 * flags send it (flags_cond), or the chain ends where they are not
	 * known yet. Linux's copy_user_enhanced_fast_string tests the length
	 * (`cmp $64,%edx; jb`) between its stac and its rep movsb.
	 */
	CHAIN_BRANCH,
};

/* The instruction classified. */
struct chain_insn {
	unsigned len;	 /* bytes, for every class but CHAIN_END */
	s32 rel;	 /* CHAIN_JUMP, CHAIN_BRANCH (if taken): the target is the next RIP + rel */
	u8 cc;		 /* CHAIN_BRANCH: the condition, 0-15 (decode/flags.h flags_cond) */
	u8 rep_size;	 /* a rep movs bridge: its element size (1, 4, 8); 0 for the others */
	bool compare;	 /* a cmp/test bridge: only the flags change (chain_compare) */
	bool sets_flags; /* a bridge that writes the status flags (compares included) */
};

/* chain_classify's flags. */
#define CHAIN_NATIVE_IRQFLAGS (1u << 0) /* cli/sti run natively (the iopl3 strategy) */
/*
 * The guest kernel runs with RFLAGS.AC = 1, between stac and clac: its
 * plain movs to and from memory bridge to the clac. Linux's user accessors
 * are such windows (rseq's `stac; mov; mov; clac`), so one trap serves
 * both ends. Only mov with a memory operand (88, 89, 8a, 8b, c6 /0,
 * c7 /0; prefixes 66, REX, fs/gs): the forms decode/emulate_mem.c emulates.
 */
#define CHAIN_USER_ACCESS (1u << 1)

/*
 * Classify the 64-bit instruction at code[0..avail) into *out.
 *
 * CHAIN_TRAP: swapgs, stac, clac, sysret(q), iretq, mov to/from cr0-cr8,
 *   rdmsr, wrmsr, hlt, invlpg, and cli/sti without CHAIN_NATIVE_IRQFLAGS;
 *   a segment load from a register into ES, DS, FS or GS (8e, no prefix):
 *   it traps unless the selector is null (the real GDT is the monitor's),
 *   and Linux on CPUs without FSGSBASE runs `swapgs; mov %edi,%gs; swapgs`
 *   (native_load_gs_index) at every context switch.
 * CHAIN_BRIDGE: rdfsbase, rdgsbase, wrfsbase, wrgsbase (register forms);
 *   the zeroing idiom xor/sub r, r (31, 33, 29, 2b with one register);
 *   pop r64 but %rsp (Linux's local_irq_save: pushf; pop %rax; cli);
 *   push r64, push imm8/imm32, add/sub $imm8 to [rsp + disp] (Linux's
 *   sync_core without SERIALIZE: mov %ss; push; push %rsp; addq $8,(%rsp);
 *   pushfq; mov %cs; push; push $1f; iretq);
 *   with CHAIN_USER_ACCESS the movs above, and what a user copy runs
 *   between its stac and its clac: mov r, r (89, 8b, mod = 3); cmp r, imm
 *   (83 /7, 81 /7, 3d), cmp r, r (39, 3b), test r, r (85) and test r, imm
 *   (f7 /0), register forms with REX only; rep movsb, rep movsd,
 *   rep movsq (f3 [REX.W] a4/a5). The caller caps how much a chained rep
 *   movs may copy: past that, it runs natively and only the clac traps.
 * CHAIN_BRANCH: with CHAIN_USER_ACCESS, jcc rel8 (70-7f) and rel32
 *   (0f 80-8f), no prefixes.
 * CHAIN_NOP, CHAIN_JUMP: as above, without prefixes but 66 for nops.
 * int3 patch sites are the caller's to recognise (decode/patch.h).
 */
enum chain_class chain_classify(const u8 *code, unsigned avail, unsigned flags,
				struct chain_insn *out);

/*
 * Where the guest goes after `in` at `ip` (RIP or linear): a jump's target,
 * or past it. A branch taken is a jump; one not taken has rel 0 (the
 * caller, who knows the flags, clears it).
 */
static inline u64 chain_next_ip(u64 ip, const struct chain_insn *in)
{
	return ip + in->len + (u64)(s64)in->rel;
}

/*
 * For a compare bridge (in->compare) at code[0..avail): the status flags it
 * leaves in *rflags when the registers hold gpr[] (in the encoding's order,
 * RAX = 0 ... R15 = 15). False, *rflags untouched, for anything else. A
 * trap chain looks ahead through `cmp; jcc` with it before either runs.
 */
bool chain_compare(const u8 *code, unsigned avail, const u64 gpr[16], u64 *rflags);

/*
 * For a `mov r, r` bridge at code[0..avail): true, with the destination
 * and source registers (encoding order) and the operand size (4 or 8).
 */
bool chain_mov_reg(const u8 *code, unsigned avail, unsigned *dst, unsigned *src, unsigned *size);

/*
 * The lookahead (decode/chain_ahead.c): is the instruction at s->la worth
 * emulating now, because it traps, or because a trap follows within
 * s->steps bridges, nops, jumps and branches? Returns the class of that
 * first instruction (described in *first), or CHAIN_END.
 *
 * A branch is followed to where the flags send it, and comes back in
 * *first resolved (rel 0 if not taken): for the first instruction they
 * are s->rflags; later, those a compare on the way leaves, computed from
 * s->gpr while no bridge before it wrote a register. Where they are not
 * known the chain ends: the lookahead never guesses a way. A rep movs ends
 * the chain where it would copy more than s->copy_max bytes, if RCX is
 * known there: the vCPU's, or set on the way by a `mov r, r` from a
 * register that is still the vCPU's (Linux's `mov %edx,%ecx` before its
 * rep movsb); where RCX is not known the copy is looked past and checked
 * when it is next.
 */
struct chain_code {
	/*
	 * Up to `n` bytes of code at linear address `la` into buf, as a fetch
	 * at CPL0 would read them; returns how many (0: none). *patched: they
	 * are one of the VMM's own patches that trap (an int3 site, a call to
	 * a stand-in that must trap here), whatever the bytes look like.
	 */
	unsigned (*read)(void *opaque, u64 la, u8 *buf, unsigned n, bool *patched);
	void *opaque;
};

struct chain_start {
	u64 la;		/* the next instruction's linear address */
	u64 rflags;	/* the vCPU's flags */
	const u64 *gpr; /* its 16 GPRs, in the encoding's order */
	unsigned flags; /* chain_classify's */
	unsigned steps; /* how many instructions to look at, at most */
	u64 copy_max;	/* bytes: a longer rep movs runs natively */
};

enum chain_class chain_lookahead(const struct chain_code *code, const struct chain_start *s,
				 struct chain_insn *first);

#endif /* UMBRA_DECODE_CHAIN_H */
