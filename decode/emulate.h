/* SPDX-License-Identifier: MIT */
/*
 * decode/emulate: the VMM's own x86 instruction emulator.
 *
 * It works on an abstract CPU state (struct emu_cpu) and reaches guest
 * memory and the rest of the machine only through callbacks (struct
 * emu_ops), so it knows nothing of KVM and the unit tests drive it against
 * a fake CPU and a malloc'd guest RAM. The VMM fills emu_cpu from kvm_run's
 * sync regs and implements the callbacks with the guest walker
 * (vmm/emulate_glue.c).
 *
 * Used in hw mode for the instructions KVM's own emulator rejects at guest
 * CPL0 on PVM hosts (shared/HOST.md). Emulated (64-bit mode only):
 *   int n, int3           delivered through the guest IDT (emu_deliver_event)
 *   clac, stac            RFLAGS.AC, CPL0 only
 *   xgetbv                EDX:EAX = XCR[ECX]
 *   movbe                 load/store with byte swap, 16/32/64 bits
 *   cmpxchg8b/16b         atomic on host memory, with or without lock
 *   clflush/clflushopt/clwb  no architectural effect beyond the translation
 *   invpcid               types 0-3, through ops->flush_tlb
 * Everything else returns EMU_UNKNOWN, and the VMM stops the VM.
 *
 * LIMITATION: xsave/xrstor are not emulated (their standard/compacted
 * formats, XSTATE_BV/XCOMP_BV checks and init optimization need more than a
 * copy through KVM_GET_XSAVE/KVM_SET_XSAVE to be exact).
 * LIMITATION: legacy and compatibility mode (CS.L = 0) are not emulated.
 * LIMITATION: RFLAGS.TF single-step traps after an emulated instruction are
 * not raised.
 */
#ifndef UMBRA_DECODE_EMULATE_H
#define UMBRA_DECODE_EMULATE_H

#include "umbra/types.h"

/* General registers in x86 encoding order (SDM Vol. 2A Table 2-2). */
enum emu_gpr {
	EMU_RAX,
	EMU_RCX,
	EMU_RDX,
	EMU_RBX,
	EMU_RSP,
	EMU_RBP,
	EMU_RSI,
	EMU_RDI,
	EMU_R8,
	EMU_R9,
	EMU_R10,
	EMU_R11,
	EMU_R12,
	EMU_R13,
	EMU_R14,
	EMU_R15,
	EMU_NR_GPRS
};

/* A segment register as the CPU caches it (the fields of a descriptor). */
struct emu_seg {
	u64 base;
	u32 limit; /* in bytes (granularity applied) */
	u16 sel;
	u8 type; /* descriptor type field, 4 bits */
	u8 s, dpl, present, avl, l, db, g;
};

/* The guest CPU state the emulator reads and changes. */
struct emu_cpu {
	u64 gpr[EMU_NR_GPRS];
	u64 rip, rflags;
	u64 cr0, cr2, cr3, cr4, efer;
	struct emu_seg cs, ss;
	u64 fs_base, gs_base;
	u64 gdt_base, idt_base, tr_base; /* linear addresses */
	u32 gdt_limit, idt_limit, tr_limit;
	u16 tr_sel;
	/* Set by the emulator: what it changed (EMU_DIRTY_*), for write-back. */
	u32 dirty;
};

#define EMU_DIRTY_REGS	(1u << 0) /* gpr, rip, rflags */
#define EMU_DIRTY_SREGS (1u << 1) /* cr2, cs, ss */

/* A memory access, as the callbacks see it. */
#define EMU_ACC_WRITE (1u << 0) /* a write (read-modify-write included) */
#define EMU_ACC_FETCH (1u << 1) /* an instruction fetch */
#define EMU_ACC_USER  (1u << 2) /* made at CPL3 (a user-mode access) */
#define EMU_ACC_AC    (1u << 3) /* explicit access with RFLAGS.AC = 1 (SMAP override) */

/* An exception or interrupt to deliver to the guest. */
enum emu_event_kind {
	EMU_EV_EXCEPTION, /* a fault raised by the instruction: RIP of the instruction */
	EMU_EV_SOFT_INT,  /* int n, int3: gate DPL checked, RIP after the instruction */
};

struct emu_event {
	enum emu_event_kind kind;
	u8 vector;
	bool has_error_code;
	u32 error_code;
	bool has_cr2;
	u64 cr2;	   /* #PF: the faulting linear address */
	unsigned insn_len; /* EMU_EV_SOFT_INT: the instruction's length */
};

/* Results, kept >= 0. */
enum emu_result {
	EMU_DONE = 0,	   /* the instruction completed or its fault was delivered */
	EMU_UNKNOWN,	   /* not an instruction this emulator knows: stop the VM */
	EMU_UNHANDLED_MEM, /* an operand is not guest RAM (MMIO, a hole): stop the VM */
	EMU_TRIPLE_FAULT,  /* delivering a fault faulted twice: the guest shuts down */
	EMU_HOST_ERROR,	   /* a callback failed for a host reason (ioctl error) */
};

enum emu_map_result {
	EMU_MAP_OK = 0,
	EMU_MAP_FAULT,	 /* *fault is the #PF to deliver */
	EMU_MAP_NOT_RAM, /* the translation is fine but the gpa is not RAM */
};

struct emu_ops {
	void *opaque;
	/*
	 * Translate the `len` bytes at canonical linear address `la` (they never
	 * cross a page) for `access` (EMU_ACC_*), setting A/D bits as the CPU
	 * does, and return where they live in the VMM in *hva. On EMU_MAP_FAULT,
	 * fill *fault with the #PF (vector, error code, cr2).
	 */
	enum emu_map_result (*map)(void *opaque, u64 la, unsigned len, u32 access, void **hva,
				   struct emu_event *fault);
	/* XCR[index] into *value; false if the XCR does not exist (#GP). */
	bool (*read_xcr)(void *opaque, u32 index, u64 *value);
	/*
	 * Invalidate guest translations at least as strongly as INVPCID of
	 * `type` (0: one address in one PCID, 1: one PCID, 2: all incl. global,
	 * 3: all but global). Returns false on a host error.
	 */
	bool (*flush_tlb)(void *opaque, unsigned type, u64 pcid, u64 la);
	/*
	 * Deliver `ev` to the guest with `cpu` as the state at the event. The
	 * exact path is emu_deliver_event(); a VMM may use its hypervisor's own
	 * injection instead where that is exact. Returns EMU_DONE or an error.
	 */
	enum emu_result (*deliver)(void *opaque, struct emu_cpu *cpu, const struct emu_event *ev);
};

/* What emu_insn did, for statistics and error messages. */
struct emu_report {
	char mnemonic[32]; /* capstone's mnemonic, "" if the bytes did not decode */
	bool faulted;	   /* the instruction raised an exception instead of completing */
	u8 fault_vector;
};

/*
 * Emulate the instruction at cpu->rip (linear cpu->cs.base + rip), fetching
 * its bytes through ops->map. On EMU_DONE the state in *cpu is the guest's
 * next state (cpu->dirty says what changed); on any other result *cpu is
 * unchanged and the caller stops the VM.
 */
enum emu_result emu_insn(struct emu_cpu *cpu, const struct emu_ops *ops,
			 struct emu_report *rep) __must_check;

/*
 * Deliver an event through the guest's IDT exactly as the CPU does in IA-32e
 * mode (SDM Vol. 3A §6.12, §6.14): gate checks, stack switch to TSS.RSPn or
 * IST, the 64-bit frame (SS, RSP, RFLAGS, CS, RIP[, error code]), IF cleared
 * for interrupt gates, TF/NT/RF cleared. A fault while delivering is
 * delivered in turn (double fault rules, SDM Table 6-5); a fault while
 * delivering #DF returns EMU_TRIPLE_FAULT.
 */
enum emu_result emu_deliver_event(struct emu_cpu *cpu, const struct emu_ops *ops,
				  const struct emu_event *ev) __must_check;

/* The CPL: CS.DPL in protected mode (CS.RPL = CS.DPL outside conforming code). */
static inline unsigned emu_cpl(const struct emu_cpu *cpu)
{
	return cpu->cs.dpl;
}

#endif /* UMBRA_DECODE_EMULATE_H */
