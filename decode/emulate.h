/* SPDX-License-Identifier: MIT */
/*
 * decode/emulate: the VMM's own x86 instruction emulator.
 *
 * It works on an abstract CPU state (struct emu_cpu) and reaches guest
 * memory and the rest of the machine only through callbacks (struct
 * emu_ops), so it knows nothing of KVM and the unit tests drive it against
 * a fake CPU and a malloc'd guest RAM.
 *
 * Two users, told apart by emu_cpu.mode:
 *
 * EMU_MODE_HW: the hw-mode fallback for the instructions KVM's own emulator
 * rejects at guest CPL0 on PVM hosts (shared/HOST.md). The VMM fills emu_cpu
 * from kvm_run's sync regs (vmm/emulate_glue.c). Emulated (64-bit mode only):
 *   int n, int3           delivered through the guest IDT (emu_deliver_event)
 *   clac, stac            RFLAGS.AC, CPL0 only
 *   xgetbv                EDX:EAX = XCR[ECX]
 *   movbe                 load/store with byte swap, 16/32/64 bits
 *   cmpxchg8b/16b         atomic on host memory, with or without lock
 *   clflush/clflushopt/clwb  no architectural effect beyond the translation
 *   invpcid               types 0-3, through ops->flush_tlb
 *   popcnt                16/32/64 bits, register or memory source
 *   rdrand, rdseed        the host CPU's values (#UD on a host without them)
 *   prefetch*             nothing (never a fault)
 *   ud0, ud2              #UD
 *   verr, verw            ZF from the descriptor (no fault for the selector)
 *   monitor, mwait        their checks, then nothing: mwait wakes at once
 *   wait/fwait            #NM if CR0.MP and CR0.TS, #MF for a pending x87
 *                         exception (FSW.ES) with CR0.NE, else nothing
 *   xsave, xsaveopt, xsavec, xrstor (REX.W forms; the others too when
 *                         RFBM[0] = 0): through ops->get_xstate/put_xstate
 *                         (decode/emulate_xsave.c); xsaves/xrstors are not
 *                         (they stop the VM)
 *   ldmxcsr, stmxcsr      MXCSR through the same callbacks
 *   SSE*, AVX, AVX2, AVX-512, FMA, AES, SHA, MMX ...: run on the host CPU
 *                         with the guest's registers and vector state
 *                         (decode/emulate_simd.c, which says which are
 *                         refused)
 *
 * EMU_MODE_SHADOW: the guest kernel runs at real CPL3 and every field of
 * emu_cpu below "system state" is the *virtual* state the VMM keeps (the
 * real registers belong to the monitor). The emulator then also runs the
 * shadow-mode whitelist of shared/DESIGN.md, on the virtual state:
 *   privileged (decode/emulate_priv.c): mov to/from cr0/cr2/cr3/cr4/cr8,
 *     clts, lmsw, smsw, invlpg, wbinvd, invd, hlt, cli, sti, pushf, popf,
 *     rdmsr, wrmsr, xsetbv, swapgs
 *   system (decode/emulate_sys.c): lgdt, lidt, lldt, ltr, sgdt, sidt, sldt,
 *     str, mov to ds/es/fs/gs/ss, pop ds/es/fs/gs/ss, iretq, sysret(q),
 *     ret far (lret/lretq), jmp far, and emu_syscall_entry() for a guest
 *     syscall
 *   memory writes to write-protected page tables and MMIO
 *     (decode/emulate_mem.c): mov (every form, movabs), movs/stos with and
 *     without rep, xchg, cmpxchg, cmpxchg8b/16b, and add/adc/sub/sbb/and/or/
 *     xor/inc/dec/neg/not/xadd/bts/btr/btc on memory, locked or not
 * and every store is reported through ops->write, once per store with its
 * full width, with the gpa and the bytes before and after. Shadow mode also
 * runs 32-bit protected-mode code (legacy or compatibility mode: CS.L = 0,
 * CS.D = 1), where a Multiboot kernel starts and switches to long mode
 * (CR0.PG with EFER.LME sets EFER.LMA; a far jump enters 64-bit code).
 *
 * Everything else returns EMU_UNKNOWN, and the VMM stops the VM with
 * emu_report.code (the bytes) and decode_describe().
 *
 * LIMITATION: xsave/xsaveopt/xsavec/xrstor are hw mode only (shadow mode
 * runs them natively at CPL3); xsaves/xrstors (supervisor state, IA32_XSS)
 * are not emulated; xsaveopt uses the init optimization but never the
 * modified one (allowed: SDM Vol. 1 §13.9).
 * LIMITATION: hw mode emulates 64-bit code only; shadow mode also 32-bit
 * protected mode, but not real mode, 16-bit code or 16-bit stacks, segment
 * limits are not checked, and an exception raised outside IA-32e mode
 * cannot be delivered (legacy IDT format): the emulator returns EMU_UNKNOWN
 * with rep.faulted set and the VMM stops the VM.
 * LIMITATION: in hw mode, RFLAGS.TF single-step traps after an emulated
 * instruction are not raised (shadow mode raises them, emulate.c item 6).
 * LIMITATION: a locked read-modify-write in shadow mode is atomic only
 * because the guest's one vCPU is stopped while the VMM emulates.
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

enum emu_mode {
	EMU_MODE_HW = 0, /* hw mode: system state is the vCPU's own (the default) */
	EMU_MODE_SHADOW, /* shadow mode: system state is virtual; whitelist enabled */
};

/*
 * Shadow-mode virtual state that has no place in hw mode's emu_cpu (there
 * KVM keeps it). The VMM owns it between traps and passes it in each time.
 */
struct emu_virt {
	/* Data segment selectors (SDM Vol. 3A §3.4.2); in 64-bit mode their bases are 0. */
	u16 ds_sel, es_sel, fs_sel, gs_sel;
	/* DS and ES bases, used in 32-bit protected mode (FS/GS: emu_cpu.fs_base/gs_base). */
	u64 ds_base, es_base;
	/* LDTR (SDM Vol. 3A §2.4.2): selector and the cached base and limit. */
	u16 ldtr_sel;
	u64 ldtr_base;
	u32 ldtr_limit;
	/* CR8: the task-priority register, bits 3:0 (SDM Vol. 3A §10.8.6.1). */
	u64 cr8;
	/*
	 * Debug registers as the guest set them (SDM Vol. 3A §17.2). Shadow
	 * mode: the emulator applies DR0-DR3/DR7 to what it runs (emulate.c,
	 * items 7 and 8) and the VMM arms the real ones for what runs natively.
	 */
	u64 dr[4], dr6, dr7;
	/* MSRs (SDM Vol. 4 Table 2-2) kept by the VMM; see emu_msr_index. */
	u64 kernel_gs_base, star, lstar, cstar, sfmask, pat, tsc_aux;
	u64 sysenter_cs, sysenter_esp, sysenter_eip;
	/* Capabilities of the virtual CPU (its CPUID), set once by the VMM. */
	u64 cr4_valid;	/* CR4 bits a MOV to CR4 may set; others #GP(0) */
	u64 efer_valid; /* EFER bits a WRMSR may set (0: SCE, LME, LMA, NXE); others #GP(0) */
	u8 maxphyaddr;	/* physical-address width: CR3 bits 62:maxphyaddr are reserved */
	/*
	 * A null selector loaded into FS or GS leaves its base as it was: AMD
	 * CPUs without NullSelectorClearsBase (CPUID Fn8000_0021_EAX[6]; Linux's
	 * X86_BUG_NULL_SEG). Intel's, and the default: the base becomes 0.
	 */
	bool null_sel_keeps_base;
	/*
	 * SYSCALL works in compatibility mode, entering at CSTAR: AMD's and
	 * Hygon's CPUs (APM Vol. 3 SYSCALL; Linux's X86_FEATURE_SYSCALL32, its
	 * 32-bit vDSO's way in). Intel's raise #UD there.
	 */
	bool syscall_compat;
	/*
	 * A far jmp's m16:xx operand with REX.W is m16:32, REX.W ignored: AMD's
	 * and Hygon's CPUs. Intel's read m16:64, the default (SDM Vol. 2A JMP).
	 */
	bool far_ptr_m16_32;
	/*
	 * push of a segment register with a 32- or 64-bit operand size writes
	 * only the selector's 2 bytes, the rest of the slot kept: Intel's Core
	 * and Atom CPUs (SDM Vol. 2B PUSH). AMD's zero-extend it, the default.
	 */
	bool push_sreg_move16;
	/*
	 * iret/iretq to an outer level whose SS is not present raises
	 * #SS(SS), not #NP(SS): AMD's CPUs (an EPYC of family 1Ah, measured by
	 * test_emulate_segs_native; AMD APM Vol. 3 IRET lists #SS). Intel's
	 * SDM lists #NP there, as Bochs and QEMU do, the default.
	 */
	bool iret_ss_np_is_ss;
	/*
	 * STI blocking (SDM Vol. 3A §6.8.3): set by an sti that turned IF from 0
	 * to 1, cleared by the next emulated instruction. While set the VMM must
	 * not deliver an interrupt until the guest has run one more instruction.
	 */
	bool int_shadow;
	/*
	 * At most this many iterations of a rep movs/stos per emu_insn (0: 64).
	 * An unfinished one leaves RIP on the instruction with RCX, RSI, RDI
	 * exact (SDM Vol. 2B REP), so resuming the guest re-runs it.
	 */
	unsigned rep_limit;
};

/*
 * The guest CPU state the emulator reads and changes, in two groups:
 *
 * 1. Registers the vCPU really has: gpr, rip and the arithmetic/control
 *    bits of rflags. In shadow mode too, these are the guest's own.
 * 2. System state. In hw mode the vCPU's real registers. In shadow mode the
 *    *virtual* state the VMM keeps (the real ones hold the monitor's): the
 *    virtual CPL is cs.sel's RPL (= cs.dpl), rflags.IF and rflags.IOPL are
 *    the virtual IF and IOPL (the VMM merges them into the guest's real
 *    RFLAGS image, where IF = 1 and IOPL = 0 always), and CR0/2/3/4, EFER,
 *    CS/SS, the bases, GDTR/IDTR/TR and `virt` are what the guest last set.
 */
struct emu_cpu {
	/* 1. */
	u64 gpr[EMU_NR_GPRS];
	u64 rip, rflags;
	/* 2. */
	enum emu_mode mode;
	u64 cr0, cr2, cr3, cr4, efer;
	struct emu_seg cs, ss;
	u64 fs_base, gs_base;
	u64 gdt_base, idt_base, tr_base; /* linear addresses */
	u32 gdt_limit, idt_limit, tr_limit;
	u16 tr_sel;
	/* PAE paging outside long mode: the PDPTE registers (ops->load_pdptes fills them). */
	u64 pdpte[4];
	struct emu_virt virt; /* EMU_MODE_SHADOW only */
	/* Set by the emulator: what it changed (EMU_DIRTY_*), for write-back. */
	u32 dirty;
};

#define EMU_DIRTY_REGS	(1u << 0) /* gpr, rip, rflags */
#define EMU_DIRTY_SREGS (1u << 1) /* cr2, cs, ss */
#define EMU_DIRTY_VIRT	(1u << 2) /* shadow mode: any other system state or virt */

/*
 * CR4 bits a shadow-mode virtual CPU can honour (the VMM narrows them to the
 * guest's CPUID in virt.cr4_valid; this set when that is 0). Not VME or PVI:
 * virtual-8086 extensions and a process's cli/sti on VIF are not emulated.
 * DE is: DR4/DR5 #UD (its I/O breakpoints are not; the VMM hides DE).
 */
#define EMU_CR4_VALID_DEFAULT                                                              \
	(CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | CR4_PCE | CR4_OSFXSR | \
	 CR4_OSXMMEXCPT | CR4_UMIP | CR4_FSGSBASE | CR4_PCIDE | CR4_OSXSAVE | CR4_SMEP | CR4_SMAP)

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

/* Types of ops->flush_tlb: INVPCID's 0-3 (SDM Vol. 2A INVPCID), then INVLPG. */
enum emu_flush {
	EMU_FLUSH_ADDR = 0,	     /* one address in one PCID, globals kept */
	EMU_FLUSH_PCID = 1,	     /* one PCID, globals kept */
	EMU_FLUSH_ALL_GLOBAL = 2,    /* everything, globals included */
	EMU_FLUSH_ALL_NONGLOBAL = 3, /* everything but globals */
	EMU_FLUSH_INVLPG = 4,	     /* one address, current PCID, globals too (SDM INVLPG) */
};

/*
 * One store of an emulated instruction, reported once with its full width
 * (the VMM turns it into a shadow_pt_write or an MMIO write). It crosses a
 * page at most once, so it has one or two pieces, each in RAM or not.
 */
#define EMU_WRITE_MAX 64 /* the longest store: a 48-byte exception frame */

struct emu_piece {
	gpa_t gpa;    /* where the piece's first byte lives */
	void *hva;    /* its bytes in the VMM; NULL when the gpa is not RAM (MMIO) */
	unsigned off; /* offset of the piece within old/new */
	unsigned len; /* bytes */
};

struct emu_write {
	u64 la;	      /* linear address of the first byte */
	unsigned len; /* 1..EMU_WRITE_MAX */
	unsigned npieces;
	struct emu_piece piece[2];
	u8 old_bytes[EMU_WRITE_MAX]; /* memory before the store; 0 in pieces not in RAM */
	u8 new_bytes[EMU_WRITE_MAX]; /* what the instruction stores */
};

/*
 * hw mode: the vCPU's XSAVE-managed state (decode/emulate_xsave.c), in the
 * standard format of SDM Vol. 1 §13.4 as KVM_GET_XSAVE gives it: the legacy
 * region (x87 and SSE, the FXSAVE64 layout), the header at 512 (XSTATE_BV
 * there is the vCPU's XINUSE, with initial values stored for components
 * whose bit is clear) and component i >= 2 at offset[i]. Its layout is the
 * host CPU's CPUID leaf 0xd, which is what KVM uses.
 */
#define EMU_XSTATE_HEADER    512
#define EMU_XSTATE_EXTENDED  576 /* the first byte of the extended region */
#define EMU_XSTATE_MAX_COMPS 64

struct emu_xstate {
	u8 *area;
	u32 size;			  /* bytes at area */
	u32 offset[EMU_XSTATE_MAX_COMPS]; /* CPUID.(0xd,i).EBX: standard-format offset (i >= 2) */
	u32 len[EMU_XSTATE_MAX_COMPS];	  /* CPUID.(0xd,i).EAX: size in bytes; 0: unknown */
	u64 align64;			  /* bit i: CPUID.(0xd,i).ECX[1] (compacted alignment) */
};

/* What ops->msr says about an MSR that is not in struct emu_cpu. */
enum emu_msr_result {
	EMU_MSR_OK = 0,	    /* read or written (virtual in the VMM, or forwarded) */
	EMU_MSR_GP,	    /* unknown MSR or a value it refuses: #GP(0) */
	EMU_MSR_HOST_ERROR, /* forwarding failed */
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
	 * Invalidate guest translations at least as strongly as `type`
	 * (enum emu_flush). Returns false on a host error.
	 */
	bool (*flush_tlb)(void *opaque, unsigned type, u64 pcid, u64 la);
	/*
	 * Deliver `ev` to the guest with `cpu` as the state at the event. The
	 * exact path is emu_deliver_event(); a VMM may use its hypervisor's own
	 * injection instead where that is exact. Returns EMU_DONE or an error.
	 */
	enum emu_result (*deliver)(void *opaque, struct emu_cpu *cpu, const struct emu_event *ev);
	/*
	 * hw mode, the xsave family and wait (NULL: those are not emulated).
	 * get_xstate: the vCPU's current state in a buffer the VMM owns, read
	 * afresh on each call; NULL on a host error. The emulator may change
	 * the buffer and then, only when the instruction completes, calls
	 * put_xstate to load it into the vCPU (false: a host error).
	 */
	struct emu_xstate *(*get_xstate)(void *opaque);
	bool (*put_xstate)(void *opaque, const struct emu_xstate *xs);

	/*
	 * Shadow mode: the callbacks below; hw mode leaves them NULL. With
	 * map_phys set, every access (fetches too) goes through it and `map`
	 * is not called; mmio_read and write must be set with it; msr and
	 * write_xcr may be NULL (every such MSR or XCR is then #GP(0)).
	 *
	 * map_phys: like map, but for any gpa: *gpa always, *hva only when the
	 * gpa is RAM (else NULL: MMIO). EMU_MAP_NOT_RAM is not used.
	 */
	enum emu_map_result (*map_phys)(void *opaque, u64 la, unsigned len, u32 access, gpa_t *gpa,
					void **hva, struct emu_event *fault);
	/* Read `len` bytes at a gpa that is not RAM (MMIO). false: stop the VM. */
	bool (*mmio_read)(void *opaque, gpa_t gpa, void *buf, unsigned len);
	/*
	 * Make one store: every piece is translated and nothing has been
	 * written yet. The callback writes the bytes (emu_write_apply() does it
	 * for RAM pieces) and tells the shadow MMU and the devices. false: stop
	 * the VM (EMU_UNHANDLED_MEM).
	 */
	bool (*write)(void *opaque, const struct emu_write *w);
	/*
	 * rdmsr/wrmsr of an MSR that struct emu_cpu does not hold (the ones it
	 * holds are listed at emu_msr_index). The callback decides which are
	 * virtual, which are forwarded, and which do not exist (EMU_MSR_GP).
	 */
	enum emu_msr_result (*msr)(void *opaque, u32 index, bool write, u64 *value);
	/* xsetbv: set XCR[index]; false if the value or index is invalid (#GP(0)). */
	bool (*write_xcr)(void *opaque, u32 index, u64 value);
	/*
	 * in/out/ins/outs (decode/emulate_io.c): one access of `size` bytes at
	 * `port`, which the emulator found the guest may make. Write data[] out,
	 * or fill it in (a port nobody decodes reads as all ones). false: stop
	 * the VM (EMU_HOST_ERROR). NULL: port instructions are EMU_UNKNOWN.
	 */
	bool (*pio)(void *opaque, u16 port, void *data, unsigned size, bool is_out);
	/*
	 * PAE paging outside long mode: read the 4 PDPTEs at `cr3`[31:5] into
	 * pdpte[] (SDM Vol. 3A §4.4.1); false if one that is present has a
	 * reserved bit set, or they are not RAM: the instruction raises
	 * #GP(0). Called by a CR3 write in PAE paging, and by a CR0/CR4 write
	 * that leaves PAE paging on and changes a bit §4.4.1 names. NULL: such
	 * a write is EMU_UNKNOWN (hw mode never emulates it).
	 */
	bool (*load_pdptes)(void *opaque, u64 cr3, u64 pdpte[4]);
	/*
	 * cpuid: the guest's CPUID leaf `leaf`, subleaf `subleaf`, into
	 * out[] = { EAX, EBX, ECX, EDX }, as the hypervisor would answer it
	 * (the emulator then sets OSXSAVE and OSPKE from CR4); false on a host
	 * error. NULL: cpuid is EMU_UNKNOWN (hw mode: KVM answers it itself).
	 */
	bool (*cpuid)(void *opaque, u32 leaf, u32 subleaf, u32 out[4]);
};

/* The MSRs emu_cpu holds in shadow mode (SDM Vol. 4 Table 2-2). */
enum emu_msr_index {
	EMU_MSR_SYSENTER_CS = 0x174,
	EMU_MSR_SYSENTER_ESP = 0x175,
	EMU_MSR_SYSENTER_EIP = 0x176,
	EMU_MSR_PAT = 0x277,
	EMU_MSR_EFER = 0xc0000080,
	EMU_MSR_STAR = 0xc0000081,
	EMU_MSR_LSTAR = 0xc0000082,
	EMU_MSR_CSTAR = 0xc0000083,
	EMU_MSR_SFMASK = 0xc0000084,
	EMU_MSR_FS_BASE = 0xc0000100,
	EMU_MSR_GS_BASE = 0xc0000101,
	EMU_MSR_KERNEL_GS_BASE = 0xc0000102,
	EMU_MSR_TSC_AUX = 0xc0000103,
};
/*
 * IA32_TSC: not held; an emulated rdtsc/rdtscp reads the vCPU's TSC through
 * ops->msr (shadow mode traps them only in user mode under the guest's
 * CR4.TSD, where they fault).
 */
#define EMU_MSR_TSC 0x10u

/*
 * What an instruction asks of the VMM after EMU_DONE (emu_report.notes).
 * Shadow mode only.
 */
#define EMU_NOTE_CR3	     (1u << 0) /* CR3 loaded: shadow_set_cr3 (see cr3_noflush) */
#define EMU_NOTE_PAGING_MODE (1u << 1) /* CR0/CR4/EFER paging bits changed: shadow_set_mode */
#define EMU_NOTE_CPL	     (1u << 2) /* the virtual CPL changed: switch the view */
#define EMU_NOTE_HALT	     (1u << 3) /* hlt: wait for an interrupt (RIP is past the hlt) */
#define EMU_NOTE_IF_SET	     (1u << 4) /* virtual IF went 0 -> 1: deliver what is pending */
#define EMU_NOTE_TPR	     (1u << 5) /* CR8 written: update the LAPIC TPR */
#define EMU_NOTE_REP_PARTIAL (1u << 6) /* a rep string stopped at rep_limit: resume re-runs it */
#define EMU_NOTE_TABLES	     (1u << 7) /* GDTR/IDTR/LDTR/TR or a segment changed */
#define EMU_NOTE_CODE_MODE   (1u << 8) /* CS.L or CS.D changed: 64-bit, compat, 32-bit code */
#define EMU_NOTE_PDPTE	     (1u << 9) /* cpu->pdpte loaded: shadow_set_pdptes */

#define EMU_MAX_INSN_LEN 15 /* SDM Vol. 2A §2.3.11 */

/* What emu_insn did, for statistics, the VMM's follow-up and error messages. */
struct emu_report {
	/*
	 * capstone's mnemonic; "" if the bytes did not decode, or for a VEX/EVEX
	 * instruction capstone does not know, "evex.map2.76" (encoding, map, opcode).
	 */
	char mnemonic[32];
	bool faulted; /* the instruction raised an exception instead of completing */
	u8 fault_vector;
	/*
	 * Shadow mode: it completed, and then a #DB was delivered (a data
	 * breakpoint it hit, or TF's single step; emulate.c items 6 and 7).
	 */
	bool trapped;
	/*
	 * Shadow mode: the guest's breakpoints (DR6 B0-B3) whose #DB the
	 * emulator raised itself, an instruction breakpoint before the
	 * instruction or data breakpoints after it (emulate.c items 7, 8).
	 */
	u8 db_hits;
	/*
	 * EMU_UNKNOWN came from delivering the instruction's event (int n, a
	 * fault, a #DB): a kind of delivery emu_deliver_event does not emulate.
	 */
	bool delivery_refused;
	u32 notes;		   /* EMU_NOTE_* */
	bool cr3_noflush;	   /* EMU_NOTE_CR3 with bit 63 set (PCID kept, SDM §4.10.4.1) */
	u8 code[EMU_MAX_INSN_LEN]; /* the bytes fetched at RIP, for decode_describe() */
	unsigned code_len;
};

/*
 * Whether the guest is in an exception handler after the instruction: it
 * faulted, or a trap followed it. A caller that emulates a fixed sequence
 * of instructions, or chains the next one, stops there.
 */
static inline bool emu_in_handler(const struct emu_report *rep)
{
	return rep->faulted || rep->trapped;
}

/*
 * hw mode's SIMD fallback runs instructions on the host and catches their
 * faults with signal handlers, installed around each one unless this was
 * called: then they stay, passing on signals that are not theirs. For a
 * process where nobody replaces SIGSEGV/SIGBUS/SIGILL/SIGFPE handlers
 * afterwards (the VMM calls it at its first emulated instruction, after its
 * console installed its own); it saves 8 system calls per instruction.
 */
void emu_simd_keep_handlers(void);

/*
 * May the guest, at its CPL, make an in/out of `size` bytes at `port` (SDM
 * Vol. 1 §19.5: CPL <= IOPL, else the TSS's I/O permission bitmap)? Shadow
 * mode; the bitmap is read through ops. A bitmap that does not translate
 * refuses.
 */
bool emu_io_permitted(const struct emu_cpu *cpu, const struct emu_ops *ops, u16 port,
		      unsigned size);

/*
 * Emulate the instruction at cpu->rip (linear cpu->cs.base + rip), fetching
 * its bytes through ops->map. On EMU_DONE the state in *cpu is the guest's
 * next state (cpu->dirty says what changed, rep->notes what the VMM must
 * do); on any other result *cpu is unchanged and the caller stops the VM.
 */
enum emu_result emu_insn(struct emu_cpu *cpu, const struct emu_ops *ops,
			 struct emu_report *rep) __must_check;

/*
 * As emu_insn, with the instruction's bytes given instead of fetched: for
 * an instruction the VMM patched out of guest code (pushf/popf replaced by
 * a trapping one, shared/DESIGN.md) and keeps the original bytes of.
 */
enum emu_result emu_insn_bytes(struct emu_cpu *cpu, const struct emu_ops *ops, const u8 *code,
			       unsigned len, struct emu_report *rep) __must_check;

/*
 * The fast path (decode/emulate_fast.c): a few unprivileged 64-bit
 * instructions run from their bytes without capstone, for a VMM that runs
 * the guest ahead to its next trapping instruction: nop, nopl (%rax), jmp
 * and jcc rel8/rel32, push r64, push imm8/imm32, call rel32, cld, the
 * zeroing xor r, r, mov r64 to and from [rsp + disp8/32], test imm8 with
 * the byte [rsp + disp8/32]; one REX prefix at most, no other. The bytes
 * are fetched at RIP as emu_insn fetches them. Shadow mode, 64-bit code at
 * CPL0 only.
 * EMU_FAST_DONE: *cpu is the state after it (as emu_insn leaves it).
 * EMU_FAST_NO: not one of them, or it would fault, or it touches MMIO:
 * nothing changed (the CPU runs it, and takes its fault, natively).
 */
enum emu_fast { EMU_FAST_NO, EMU_FAST_DONE };
enum emu_fast emu_fast_insn(struct emu_cpu *cpu, const struct emu_ops *ops) __must_check;

/*
 * Deliver an event through the guest's IDT exactly as the CPU does in IA-32e
 * mode (SDM Vol. 3A §6.12, §6.14): gate checks, stack switch to TSS.RSPn or
 * IST, the 64-bit frame (SS, RSP, RFLAGS, CS, RIP[, error code]), IF cleared
 * for interrupt gates, TF/NT/RF cleared; and in legacy protected mode
 * (emulate_event32.c): 8-byte 32-bit gates, SSn:ESPn from the 32-bit TSS,
 * the 32-bit frame (task gates, 16-bit gates and real mode: EMU_UNKNOWN). A fault while delivering
 * is delivered in turn (double fault rules, SDM Table 6-5); a fault while delivering #DF returns
 * EMU_TRIPLE_FAULT.
 */
enum emu_result emu_deliver_event(struct emu_cpu *cpu, const struct emu_ops *ops,
				  const struct emu_event *ev) __must_check;

/* The length of `syscall` (0f 05): the VMMs' entries re-run it at RCX - EMU_SYSCALL_LEN. */
#define EMU_SYSCALL_LEN 2u

/*
 * Shadow mode: the guest executed `syscall` (insn_len bytes at cpu->rip),
 * which trapped to the VMM. Apply its effect on the virtual state exactly
 * (SDM Vol. 2B SYSCALL): RCX = next RIP, R11 = RFLAGS, RFLAGS &= ~SFMASK
 * (RF cleared), CS = STAR[47:32], SS = STAR[47:32] + 8, RIP = LSTAR (CSTAR
 * from compatibility mode, virt.syscall_compat), virtual CPL 0. #UD
 * (delivered) when EFER.SCE = 0, outside IA-32e mode, or in compatibility
 * mode without virt.syscall_compat.
 * rep->notes gets EMU_NOTE_CPL when the CPL changed.
 */
enum emu_result emu_syscall_entry(struct emu_cpu *cpu, const struct emu_ops *ops, unsigned insn_len,
				  struct emu_report *rep) __must_check;

/*
 * The linear address of `sel`'s descriptor in the GDT or LDT; false where
 * a load of it would raise #GP (beyond the table's limit, no LDT).
 */
bool emu_desc_la(const struct emu_cpu *cpu, u16 sel, u64 *desc_la);

/*
 * Whether an iretq at virtual CPL0 in 64-bit mode, whose frame holds the
 * current CS and SS selectors, passes its segment checks and loads exactly
 * cpu->cs and cpu->ss again, when their descriptors are `cs_desc` and
 * `ss_desc` (not read for a null SS). Then such an iretq changes nothing in
 * the segment state (the emulator's far transfers set no accessed bit): what the
 * VMM's stand-in for Linux's sync_core relies on (vmm/call_sync.c).
 */
bool emu_iret_keeps_segs(const struct emu_cpu *cpu, u64 cs_desc, u64 ss_desc);

/*
 * The checks of a load of DS, ES, FS or GS with the non-null selector `sel`
 * through its descriptor `desc` at CPL `cpl` (SDM Vol. 2B MOV): 0 if it
 * loads, with the descriptor's base in *base; else the exception it raises
 * with the selector as error code (X86_EXC_GP or X86_EXC_NP). The table's
 * accessed bit is the caller's (the emulator's own loads set it).
 */
unsigned emu_data_seg_check(unsigned cpl, u16 sel, u64 desc, u64 *base);

/*
 * The same for SS with the non-null `sel` (SDM Vol. 2B MOV): 0 if it loads;
 * else X86_EXC_GP (RPL or DPL not CPL, not a writable data segment) or
 * X86_EXC_SS (not present).
 */
unsigned emu_ss_seg_check(unsigned cpl, u16 sel, u64 desc);

/* The cached form of a code or data descriptor (SDM Vol. 3A §3.4.5); sel's RPL as given. */
void emu_seg_from_desc(struct emu_seg *seg, u16 sel, u64 desc);

/* Whether two cached segments hold the same fields. */
bool emu_seg_equal(const struct emu_seg *a, const struct emu_seg *b);

/* Store w->new_bytes into the RAM pieces of `w`; false if a piece is not RAM. */
bool emu_write_apply(const struct emu_write *w);

/*
 * Is `la` a canonical 48-bit linear address (bits 63:47 all equal)? The
 * emulator's #GP checks, and the trap chain's lookahead (decode/chain_ahead.c)
 * for a jump's target.
 */
bool emu_is_canonical(u64 la);

/* The CPL: CS.DPL in protected mode (CS.RPL = CS.DPL outside conforming code). */
static inline unsigned emu_cpl(const struct emu_cpu *cpu)
{
	return cpu->cs.dpl;
}

#endif /* UMBRA_DECODE_EMULATE_H */
