/* SPDX-License-Identifier: MIT */
/*
 * The start-up host probe (shared/DESIGN.md, "The instructions x86 does not
 * trap"; shared/HOST.md): in shadow mode, before the shadow set-up, a few
 * instructions run once in a scratch KVM VM of its own (one 64 KiB memslot,
 * one vCPU, destroyed afterwards) to learn how this host treats what shadow
 * mode depends on, and host_probe_strategy() turns the answers into the
 * strategy shadow mode uses; --stats reports both.
 *
 * The scratch VM's guest (built by host_probe_build, see host_probe.c):
 *   step iopl3    iretq from CPL0 to CPL3 with IF=0, IOPL=3; `pushf` there;
 *                 report RFLAGS by `out`
 *   step pt       read a byte through a 4 KiB page at CPL3 (so the vCPU has
 *                 used the translation); `ud2` traps to CPL0, whose handler
 *                 exits to the VMM, which rewrites the leaf PTE from
 *                 userspace; the handler reloads CR3 and iretqs; read the
 *                 byte again: the new page's means the host saw the store.
 *                 (The monitor's round trip in small. `int $n` at CPL3 is
 *                 #UD on PVM hosts, measured, so a trap it is.)
 *   step syscall  `syscall` from CPL3; the LSTAR code reports CS (CPL = RPL)
 * An exception in a step goes to a stub that reports its vector; that step
 * is "unknown" and the next one starts afresh from CPL0.
 */
#ifndef UMBRA_VMM_HOST_PROBE_H
#define UMBRA_VMM_HOST_PROBE_H

#include <stddef.h>

#include "umbra/types.h"
#include "vmm/options.h"

struct vm;

/* One probed behaviour: measured yes or no, or not decided (a step failed). */
enum host_answer {
	HOST_UNKNOWN = -1,
	HOST_NO = 0,
	HOST_YES = 1,
};

struct host_probe {
	/* CPL3 keeps RFLAGS.IF=0 and IOPL=3 as iretq set them (cli/sti/pushf/popf exact). */
	enum host_answer iopl3;
	/* A PTE store from userspace into live VM tables is seen by the vCPU after a CR3 reload. */
	enum host_answer pt_stores_seen;
	/* The CPL at which `syscall` from CPL3 arrives at LSTAR: 0, 3, or -1 (unknown). */
	int syscall_cpl;
	/*
	 * `rdgsbase` runs at CPL3 while the guest's CR4.FSGSBASE is 0: the
	 * CPU's real CR4 applies there, not the guest's (a PVM host's own CR4
	 * may have it; VMX/SVM give the guest its own CR4: no). Nothing uses
	 * it yet: it says whether the monitor's stand-ins could use
	 * rd/wrgsbase for a guest whose CPUID lacks FSGSBASE (README, swapgs).
	 */
	enum host_answer cpl3_fsgsbase;
	double probe_ms; /* wall time of the whole probe, scratch VM creation included */
	/* What the guest reported, for diagnostics (valid when the step got that far). */
	u64 rflags;		/* RFLAGS read by pushf at CPL3 */
	u8 pt_before, pt_after; /* the byte read before and after the PTE store */
	u16 syscall_cs;		/* CS read at LSTAR */
	/*
	 * This host is itself QEMU's TCG (CPUID 0x40000000 says "TCGTCGTCGTCG"):
	 * a nested KVM there (tools/nested-kvm.sh), whose emulated SVM aborts
	 * QEMU when a guest writes CR8 while a virtual interrupt is pending
	 * (QEMU 7.2 and 10.0: tcg_handle_interrupt asserts the BQL is held),
	 * and which #GPs port I/O at CPL3 unless TR's type is 9 (available;
	 * hardware and LTR make it 11, busy), ignoring the I/O bitmap.
	 */
	bool qemu_tcg;
	char note[160]; /* why a step is unknown ("" when all were decided) */
};

/*
 * What shadow mode does about each behaviour. Each enum lists what is
 * implemented; the notes say when the host would allow something better
 * that is not (NULL: nothing to say).
 */
enum shadow_sensitive_strategy {
	SHADOW_SENSITIVE_PATCH, /* virtual IF; cli/sti trap, pushf/popf patched to int3 */
	/*
	 * Where CPL3 honours IOPL (iopl3 yes: VMX, SVM), the guest kernel runs
	 * at real IOPL 3 with its own IF in the real RFLAGS: cli and sti run
	 * natively and the real IF masks interrupts as on hardware. pushf and
	 * popf stay patched and emulated, so the guest kernel never sees the
	 * real IOPL 3 and its popf sets its virtual IOPL exactly.
	 */
	SHADOW_SENSITIVE_IOPL3,
};
enum shadow_store_strategy {
	SHADOW_STORES_REPLAY, /* the vCPU's CPL0 tail replays every shadow-table store */
};
enum shadow_syscall_entry {
	SHADOW_SYSCALL_CPL3,	/* arrives at LSTAR still at CPL3 (PVM): supported, tested */
	SHADOW_SYSCALL_CPL0,	/* arrives at CPL0 (VMX/SVM): the #UD gate's IST, untested */
	SHADOW_SYSCALL_UNKNOWN, /* not measured: the entry is built for both */
};

struct shadow_strategy {
	enum shadow_sensitive_strategy sensitive;
	const char *sensitive_note;
	enum shadow_store_strategy stores;
	const char *stores_note;
	enum shadow_syscall_entry syscall_entry;
	const char *syscall_note;
	/*
	 * Under patch, the LAPIC timer's interrupts that come while the
	 * virtual IF is 0 wait in the IRR as on hardware: the first one the
	 * vCPU takes is put back there and the real TPR raised, until the
	 * virtual IF is 1 (vmm/shadow_mode.c, resume_guest). Off under iopl3,
	 * where the real IF holds them. tpr_by_ioctl: the TPR is lowered
	 * through KVM's register state instead of a CR8 write in the
	 * monitor's tail (qemu_tcg).
	 */
	bool tpr_masking, tpr_by_ioctl;
	const char *tpr_note;
};

/*
 * Run the probe in a scratch VM made on `kvm_fd` (an open /dev/kvm) and fill
 * *out. A step that cannot be decided is HOST_UNKNOWN (syscall_cpl -1) with
 * out->note saying why, and is not a failure. Returns 0, or an UMBRA_EXIT_*
 * code after one pr_err line when the scratch VM cannot be made or run.
 */
int host_probe_run(int kvm_fd, struct host_probe *out) __must_check;

/*
 * Pure: the strategy shadow mode uses on a host that answered *p, with the
 * user's --sensitive choice. Returns 0, or -1 when `want` is
 * SENSITIVE_IOPL3 and the host did not answer iopl3 yes (*s is then the
 * strategy AUTO would pick).
 */
int host_probe_strategy(const struct host_probe *p, enum sensitive_choice want,
			struct shadow_strategy *s) __must_check;

/* Names for --stats and the log line. */
const char *host_answer_name(enum host_answer a); /* "yes", "no", "unknown" */
const char *shadow_sensitive_name(enum shadow_sensitive_strategy s);
const char *shadow_stores_name(enum shadow_store_strategy s);
const char *shadow_syscall_entry_name(enum shadow_syscall_entry e);

/* Pure: does a CPUID 0x40000000 signature (EBX, ECX, EDX) name QEMU's TCG? */
bool host_signature_is_tcg(u32 ebx, u32 ecx, u32 edx);

/*
 * Init step (vmm/init.c, after "kvm"): in shadow mode, run the probe on
 * vm->kvm_fd, keep the results and the strategy in struct vm, log them
 * (pr_info) and hand them to --stats; a no-op in hw mode.
 */
int host_probe_setup(struct vm *vm);

/* ---- the scratch VM's memory, exposed for the unit tests ---------------- */

/* Its single memslot, at gpa 0; gva == gpa through identity-mapped 4 KiB pages. */
#define HP_MEM_SIZE   0x10000u
#define HP_GDT	      0x0000u
#define HP_IDT	      0x1000u
#define HP_TSS	      0x2000u
#define HP_PML4	      0x3000u
#define HP_PDPT	      0x4000u
#define HP_PD	      0x5000u
#define HP_PT	      0x6000u
#define HP_CODE	      0x7000u
#define HP_PAGE_A     0x8000u /* what HP_PROBE_VA maps first: bytes HP_BYTE_A */
#define HP_PAGE_B     0x9000u /* what the userspace PTE store maps: bytes HP_BYTE_B */
#define HP_KSTACK_TOP 0xc000u /* TSS.RSP0 and the CPL0 entry's RSP */
#define HP_USTACK_TOP 0xe000u
#define HP_PROBE_VA   0x10000u /* PT index 16, just past the identity map */
#define HP_PROBE_PTE  (HP_PT + 16u * 8u)
#define HP_BYTE_A     0xaau
#define HP_BYTE_B     0xbbu
#define HP_PTE_FLAGS  0x7ull /* P, W, U */

/* Selectors of the scratch GDT; STAR as a Linux kernel would set it. */
#define HP_SEL_KCODE 0x08u
#define HP_SEL_KDATA 0x10u
#define HP_SEL_UDATA 0x23u
#define HP_SEL_UCODE 0x2bu
#define HP_SEL_TSS   0x30u
#define HP_GDT_LIMIT (8u * 8u - 1u)
#define HP_TSS_LIMIT 120u /* 104-byte TSS, I/O bitmap for ports 0-127, 0xff */

/* Ports the guest reports on (all < 128: allowed by the TSS I/O bitmap too). */
#define HP_PORT_RFLAGS	  0x10u /* 4 bytes: RFLAGS at CPL3 */
#define HP_PORT_PT_BEFORE 0x11u /* 1 byte: read through HP_PROBE_VA (from pt_trap) */
#define HP_PORT_PT_AFTER  0x12u /* 1 byte: the same after the store and CR3 reload */
#define HP_PORT_SYSCALL	  0x13u /* 4 bytes: CS at LSTAR */
#define HP_PORT_FSGSBASE  0x14u /* 4 bytes: rdgsbase ran at CPL3 (the value is not used) */
#define HP_PORT_EXC	  0x1fu /* 1 byte: the vector of an unexpected exception */

#define HP_PT_VECTOR   6u  /* #UD: its gate goes to pt_trap, not to a stub */
#define HP_NR_EXC      32u /* vectors 0-31 have reporting stubs */
#define HP_IDT_LIMIT   (HP_NR_EXC * 16u - 1u)
#define HP_IRET_RFLAGS 0x3002ull /* IOPL=3, IF=0 */

/* Offsets of the guest's entry points from HP_CODE (host_probe.c's code array). */
#define HP_OFF_TO_USER	0x00u  /* CPL0: iretq to CPL3 at RBX with HP_IRET_RFLAGS */
#define HP_OFF_IOPL3	0x11u  /* CPL3: step iopl3 */
#define HP_OFF_PT	0x15u  /* CPL3: step pt */
#define HP_OFF_PT_UD2	0x1du  /* ... its ud2, the RIP pt_trap's frame must show */
#define HP_OFF_FSGSBASE 0x29u  /* CPL3: step fsgsbase (its rdgsbase: a #UD's frame RIP) */
#define HP_OFF_SYSCALL	0x30u  /* CPL3: step syscall */
#define HP_OFF_LSTAR	0x34u  /* the syscall's arrival */
#define HP_OFF_PT_TRAP	0x3au  /* CPL0: the #UD handler of steps pt and fsgsbase */
#define HP_OFF_STUBS	0x100u /* exception stub v at HP_OFF_STUBS + v * HP_STUB_SIZE */
#define HP_STUB_SIZE	8u

/* The syscall MSRs the probe sets (KVM_SET_MSRS). */
#define HP_STAR	  ((0x18ull << 48) | ((u64)HP_SEL_KCODE << 32))
#define HP_LSTAR  ((u64)HP_CODE + HP_OFF_LSTAR)
#define HP_SFMASK 0x47700ull

/* Lay the whole guest out in `mem` (HP_MEM_SIZE bytes, zeroed by the caller). */
void host_probe_build(u8 *mem);
/* The userspace store step pt makes: HP_PROBE_VA now maps HP_PAGE_B. */
void host_probe_store_pte(u8 *mem);

/* Decide a step from what the guest reported (pure). */
enum host_answer host_probe_decide_iopl3(u64 rflags);
enum host_answer host_probe_decide_pt(u8 before, u8 after);
int host_probe_decide_cpl(u16 cs);

#endif /* UMBRA_VMM_HOST_PROBE_H */
