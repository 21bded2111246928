/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the emulator's files (not for use outside decode/):
 *   decode/emulate.c       fetch, decode, dispatch, memory, operands
 *   decode/emulate_event.c event delivery through the IDT, descriptors
 *   decode/emulate_common.c the instructions of both modes (hw-mode list)
 *   decode/emulate_priv.c  control registers, MSRs, IF, hlt, swapgs, ...
 *   decode/emulate_sys.c   descriptor tables, segment loads
 *   decode/emulate_xfer.c  iretq, sysret, far ret/jmp, syscall entry
 *   decode/emulate_mem.c   the memory-write whitelist (mov, string ops, RMW)
 *   decode/emulate_io.c    in, out, ins, outs (guest user code's port access)
 *   decode/emulate_xsave.c xsave, xsaveopt, xsavec, xrstor (hw mode)
 *   decode/emulate_simd.c  SSE, AVX, MMX, run on the host CPU (hw mode)
 *   decode/flags.c         RFLAGS arithmetic flags
 */
#ifndef UMBRA_DECODE_EMULATE_INTERNAL_H
#define UMBRA_DECODE_EMULATE_INTERNAL_H

#include <capstone/capstone.h>

#include "decode/emulate.h"

#define PREFIX_LOCK  0xf0
#define PREFIX_REP   0xf3 /* rep / repe */
#define PREFIX_REPNE 0xf2
#define OPSIZE_16    0x66 /* the operand-size prefix, as cs_x86.prefix[2] holds it */
/* A REX prefix's bits (cs_x86.rex). */
#define REX_W 8u /* a 64-bit operand */
#define REX_R 4u
#define REX_X 2u
#define REX_B 1u
/*
 * The legacy region of an XSAVE area (SDM Vol. 1 §13.4.1, the FXSAVE64
 * layout, which KVM's area has): emulate_xsave.c and emulate_simd.c.
 */
#define LEG_FCW	      0
#define LEG_FSW	      2
#define LEG_FOP	      6
#define LEG_FIP	      8
#define LEG_FDP	      16
#define LEG_MXCSR     24
#define LEG_MXCSR_MSK 28
#define LEG_ST0	      32
#define LEG_XMM0      160
#define LEG_END	      416
#define FCW_INIT      0x037f
#define MXCSR_INIT    0x1f80
/* Segment-override prefixes (SDM Vol. 2A §2.1.1), as cs_x86.prefix[1] holds them. */
#define SEG_ES 0x26
#define SEG_CS 0x2e
#define SEG_SS 0x36
#define SEG_FS 0x64
#define SEG_GS 0x65

/* One of the legacy prefixes (SDM Vol. 2A §2.1.1): LOCK, REP/REPNE, segment, 66, 67. */
static inline bool emu_legacy_prefix(u8 b)
{
	switch (b) {
	case PREFIX_LOCK:
	case PREFIX_REP:
	case PREFIX_REPNE:
	case SEG_ES:
	case SEG_CS:
	case SEG_SS:
	case 0x3e: /* DS */
	case SEG_FS:
	case SEG_GS:
	case OPSIZE_16:
	case 0x67: /* address size */ return true;
	default: return false;
	}
}

/*
 * Whether `insn` has a LOCK prefix. Not cs_x86.prefix[0]: that holds only
 * the last of LOCK, REP and REPNE (`lock rep movs` shows as rep, and is #UD).
 */
static inline bool emu_locked(const cs_insn *insn)
{
	for (unsigned i = 0; i < insn->size && emu_legacy_prefix(insn->bytes[i]); i++)
		if (insn->bytes[i] == PREFIX_LOCK)
			return true;
	return false;
}

/* A REX prefix (64-bit mode); it counts only right before the opcode. */
static inline bool emu_rex_prefix(u8 b)
{
	return (b & 0xf0) == 0x40;
}

/* Segment selectors (SDM Vol. 3A §3.4.2, Figure 3-6). */
#define SEL_RPL_MASK   3u
#define SEL_TI	       (1u << 2) /* 1: the LDT */
#define SEL_INDEX_MASK (~7u)
#define SEL_ERR_MASK   0xfffcu /* the selector bits an error code carries */

/* Segment descriptor fields, as bits of the low 8 bytes (SDM Vol. 3A §3.4.5). */
#define DESC_TYPE_SHIFT 40
#define DESC_TYPE_MASK	(0xfull << DESC_TYPE_SHIFT)
#define DESC_S		(1ull << 44) /* 1: code or data, 0: system */
#define DESC_DPL_SHIFT	45
#define DESC_P		(1ull << 47)
#define DESC_AVL	(1ull << 52)
#define DESC_L		(1ull << 53)
#define DESC_DB		(1ull << 54)
#define DESC_G		(1ull << 55)
/* The 4-bit type field of a code or data descriptor (S = 1), Table 3-1. */
#define DESC_TYPE_ACCESSED   (1u << 0)
#define DESC_TYPE_WRITABLE   (1u << 1) /* data */
#define DESC_TYPE_READABLE   (1u << 1) /* code */
#define DESC_TYPE_CONFORMING (1u << 2) /* code */
#define DESC_TYPE_CODE	     (1u << 3)
/* System descriptor types in IA-32e mode (S = 0), Table 3-2. */
#define SYS_TYPE_LDT	     0x2
#define SYS_TYPE_TSS_AVAIL   0x9
#define SYS_TYPE_TSS_BUSY    0xb
#define SYS_TYPE_BUSY_BIT    (1u << 1) /* available -> busy */
#define SYS_TYPE_CALL_GATE64 0xc       /* a 64-bit call gate in IA-32e mode */

/* How an instruction step ended. */
enum step { STEP_DONE, STEP_FAULT, STEP_UNKNOWN, STEP_NOT_RAM, STEP_HOST_ERROR };

struct insn_ctx {
	struct emu_cpu *cpu; /* the working copy */
	const struct emu_ops *ops;
	const cs_insn *insn;
	unsigned insn_id; /* insn->id, kept after insn is freed (0: raw SIMD bytes) */
	const cs_x86 *x86;
	u64 next_rip;
	bool keep_rip;		   /* the handler set cpu->rip itself (iretq, sysret, rep) */
	bool fault_after_progress; /* a fault keeps the work done (rep iterations) */
	u32 notes;		   /* EMU_NOTE_* for the report */
	bool cr3_noflush;
	bool ss_loaded;		/* mov/pop to SS: debug exceptions wait one instruction */
	unsigned db_hits;	/* data breakpoints its accesses matched (DR6 B0-B3) */
	bool rflags_loaded;	/* iret: RF comes from the frame, not cleared at the end */
	struct emu_event fault; /* set when a handler returns STEP_FAULT */
};

/* A translated memory operand: one or two pieces. */
struct mem_ref {
	u64 la;
	unsigned len;
	unsigned npieces;
	struct emu_piece piece[2];
};

/* A capstone register: which GPR, its width in bytes, and whether it is AH..BH. */
struct reg_slot {
	u8 gpr, size, high8, valid;
};

/* decode/emulate.c: helpers for the handlers. */
/*
 * The bytes at RIP through ops, as an instruction fetch (A bits set), up to
 * EMU_MAX_INSN_LEN or the first page that does not translate (*faulted:
 * its #PF in *fault).
 */
unsigned emu_fetch(const struct emu_cpu *cpu, const struct emu_ops *ops, u8 *buf,
		   struct emu_event *fault, bool *faulted);
unsigned emu_cpl_of(const struct emu_cpu *cpu);
/* 64-bit mode (IA-32e with CS.L = 1); otherwise 32-bit protected mode (shadow mode only). */
bool emu_long64(const struct emu_cpu *cpu);
/* The base of segment register `seg` (DS for X86_REG_INVALID callers pass DS). */
u64 emu_seg_base(const struct emu_cpu *cpu, x86_reg seg);
/* The linear address of [RSP + delta, +len) on the stack: #SS(0) if non-canonical. */
enum step emu_stack_la(struct insn_ctx *c, s64 delta, unsigned len, u64 *la);
/* RSP = sp (ESP, zero-extended, outside 64-bit mode). */
void emu_set_sp(struct emu_cpu *cpu, u64 sp);
/* Push the low `size` bytes of v (a data write at the current CPL), then move RSP. */
enum step emu_push(struct insn_ctx *c, u64 v, unsigned size);
struct emu_event emu_exception(u8 vector, bool has_err, u32 err);
#define EXC_UD()  emu_exception(X86_EXC_UD, false, 0)
#define EXC_GP(e) emu_exception(X86_EXC_GP, true, (e))
#define EXC_SS(e) emu_exception(X86_EXC_SS, true, (e))
#define EXC_NP(e) emu_exception(X86_EXC_NP, true, (e))
#define EXC_TS(e) emu_exception(X86_EXC_TS, true, (e))
enum step emu_raise(struct insn_ctx *c, struct emu_event ev);
u32 emu_data_access(const struct emu_cpu *cpu, u32 acc);
const cs_x86_op *emu_op(struct insn_ctx *c, unsigned i);
const struct reg_slot *emu_slot_of(x86_reg reg);
u64 emu_reg_get(const struct emu_cpu *cpu, const struct reg_slot *s);
void emu_reg_set(struct emu_cpu *cpu, const struct reg_slot *s, u64 v);
enum step emu_operand_la(struct insn_ctx *c, const cs_x86_op *op, u64 *la);
/* Translate [la, la+len) for `acc` (EMU_ACC_*, data_access applied by the caller). */
enum step emu_mem_map(struct insn_ctx *c, u64 la, unsigned len, u32 acc, struct mem_ref *m);
enum step emu_mem_load(struct insn_ctx *c, const struct mem_ref *m, void *buf);
/* One store of m->len bytes, reported once (ops->write in shadow mode). */
enum step emu_mem_store(struct insn_ctx *c, const struct mem_ref *m, const void *buf);
/* Translate, then load/store: the common cases. */
enum step emu_mem_read(struct insn_ctx *c, u64 la, void *buf, unsigned len, u32 acc);
/* A 16-bit register or memory source operand (selectors, lmsw). */
enum step emu_read_rm16(struct insn_ctx *c, const cs_x86_op *op, u16 *v);
enum step emu_mem_write(struct insn_ctx *c, u64 la, const void *buf, unsigned len, u32 acc);
/* An implicit supervisor read of a system structure (IDT, GDT, LDT, TSS). */
enum step emu_sys_read(struct insn_ctx *c, u64 la, void *buf, unsigned len);
/*
 * Item 7 (shadow mode): the enabled data breakpoints an access of `len`
 * bytes at `la` touches (DR6 B0-B3; 0 in hw mode, where KVM has them), and
 * noting them in c->db_hits for the #DB after the instruction. Every
 * explicit data access of an instruction is noted: emu_mem_read and
 * emu_mem_write do it; a handler that maps and loads or stores itself
 * (read-modify-write, cmpxchg16b, string chunks, ins/outs) calls this.
 * Not the CPU's implicit reads of descriptor tables (emu_sys_read).
 */
unsigned emu_data_watched(const struct insn_ctx *c, u64 la, unsigned len, bool write);
void emu_note_data_hits(struct insn_ctx *c, u64 la, unsigned len, bool write);
/* decode/emulate_event.c. Read the 8-byte descriptor of `sel` from the GDT or LDT: #GP(sel) beyond
 * the limit. */
enum step emu_read_desc(struct insn_ctx *c, u16 sel, u64 *desc, u64 *desc_la);
/*
 * Set the accessed bit of descriptor `desc`, read at `desc_la`, where it is
 * clear: the CPU's write when a segment register is loaded from it (SDM
 * Vol. 3A §3.4.5.1), one byte, an implicit supervisor access that may fault.
 */
enum step emu_set_desc_accessed(struct insn_ctx *c, u64 desc_la, u64 desc);
/* Fault-class exceptions, which push RFLAGS with RF set (SDM Vol. 3A §17.3.1.1). */
bool emu_event_is_fault(const struct emu_event *ev);
/* decode/emulate_event.c: the code segment an IDT gate names, checked (item 2). */
enum step emu_gate_target(struct insn_ctx *c, u16 sel, u32 ext, u64 *desc, unsigned *new_cpl);
/* decode/emulate_event32.c: one delivery attempt in legacy protected mode. */
enum step emu_deliver_once_legacy(struct insn_ctx *c, const struct emu_event *ev);

/* EMU_NOTE_CPL and EMU_NOTE_CODE_MODE for a change of CS from `before` to `after`. */
u32 emu_transition_notes(const struct emu_cpu *before, const struct emu_cpu *after);

/* decode/emulate_common.c: both modes; one handler per instruction, STEP_UNKNOWN if not its. */
enum step emu_dispatch_common(struct insn_ctx *c);
/* decode/emulate_xsave.c: the xsave family, hw mode (ops->get_xstate set). */
enum step emu_dispatch_xsave(struct insn_ctx *c);
/* decode/emulate_simd.c: SSE/AVX/MMX run on the host, hw mode (ops->get_xstate set). */
enum step emu_dispatch_simd(struct insn_ctx *c);
/*
 * Bytes capstone cannot decode: the length of a register-only VEX/EVEX
 * instruction the SIMD fallback can run as it is (0: not one), and running it.
 */
unsigned emu_simd_raw_len(const u8 *code, unsigned n);
enum step emu_simd_raw(struct insn_ctx *c, const u8 *code, unsigned len);
/* The x87 status word of the vCPU, for wait (false: no xstate callback or a host error). */
enum step emu_x87_fsw(struct insn_ctx *c, u16 *fsw);
/* decode/emulate_priv.c */
enum step emu_dispatch_priv(struct insn_ctx *c);
/* decode/emulate_sys.c */
enum step emu_dispatch_sys(struct insn_ctx *c);
/*
 * Load `sel` into *ss as SS at privilege `cpl` (SDM Vol. 2B MOV): #GP(sel),
 * or `np_vector`(sel) for a segment not present: #SS for mov, pop and a far
 * ret, #NP for iret (SDM Vol. 2A IRET's exceptions; Bochs and QEMU agree);
 * the descriptor's accessed bit set if `mark_accessed` (mov/pop, not far
 * transfers).
 */
enum step emu_load_ss(struct insn_ctx *c, u16 sel, unsigned cpl, struct emu_seg *ss,
		      bool mark_accessed, u8 np_vector);
/* decode/emulate_xfer.c */
enum step emu_dispatch_xfer(struct insn_ctx *c);
/*
 * A rep string's iterations per call: one when single-stepped (TF, emulate.c
 * item 6), else virt.rep_limit, else `dflt`.
 */
unsigned emu_rep_limit(const struct emu_cpu *cpu, unsigned dflt);
/*
 * Before iteration `done` of a rep string: true (and the instruction left
 * for resuming: RIP kept, EMU_NOTE_REP_PARTIAL) once `limit` are done; else
 * false, with a fault from here on keeping the iterations done (SDM Vol. 2B
 * REP).
 */
bool emu_rep_pause(struct insn_ctx *c, bool rep, unsigned done, unsigned limit);
/* The string instructions' index and count registers (SDM Vol. 1 §3.3.7, Vol. 2B REP). */
/* The mask of the address size (16, 32 or 64 bits: a 67 prefix changes it). */
u64 emu_addr_mask(const struct insn_ctx *c);
/*
 * The operand size of an instruction whose default is 32 bits (SDM Vol. 1
 * §3.6.1): 8 with REX.W, 2 with 66, else 4 (movs/stos, far ret and jmp).
 */
unsigned emu_opsize(const struct insn_ctx *c);
/*
 * The operand size of a stack instruction without a register operand
 * (push imm, pushf, popf, pop fs/gs; SDM Vol. 2B PUSH): in 64-bit mode 8,
 * or 2 with 66 and no REX.W (capstone 4 gets this wrong for some: push
 * imm, pushf); in 32-bit code 4, or 2 with 66.
 */
unsigned emu_stack_opsize(const struct insn_ctx *c);
/* Write index or count register r at the address size: 16 bits merge, 32 zero-extend. */
void emu_set_at_addr_size(struct insn_ctx *c, enum emu_gpr r, u64 v);
/* The source segment of movs/outs (rSI): DS, or the override's; rDI's is always ES. */
x86_reg emu_string_src_seg(const struct insn_ctx *c);
/*
 * The linear address of the `size`-byte element at seg:idx: in 64-bit mode
 * only FS and GS have a base, and a non-canonical element is #GP(0) (#SS(0)
 * through SS); outside it the sum wraps at 4 GiB.
 */
enum step emu_string_la(struct insn_ctx *c, x86_reg seg, enum emu_gpr idx, unsigned size, u64 *la);
/* decode/emulate_mem.c */
enum step emu_dispatch_mem(struct insn_ctx *c);
/* decode/emulate_io.c: shadow mode. */
enum step emu_dispatch_io(struct insn_ctx *c);
/* The instructions that accept LOCK on a memory destination (SDM Vol. 2A LOCK). */
bool emu_lockable(unsigned insn_id);

#endif /* UMBRA_DECODE_EMULATE_INTERNAL_H */
