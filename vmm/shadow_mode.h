/* SPDX-License-Identifier: MIT */
/*
 * Shadow mode (--mmu=shadow): the guest runs deprivileged at real CPL3 under
 * the monitor (vmm/monitor.h) with a shadow root from shadow/ in the real
 * CR3; every trap comes to the VMM through a stub's `out` and is dispatched
 * here (vmm/shadow_mode.c). shared/DESIGN.md, "Shadow mode, end to end".
 *
 * Trap dispatch (everything not listed stops the VM with a clear message
 * and a documented status, never a hang):
 *   #PF                 shadow_fault(): fill; a guest #PF reflected; a store
 *                       to a write-protected guest table, MMIO or an SMAP
 *                       view case emulated by decode/ (vmm/shadow_emu.c)
 *   #GP, #UD            decode/'s shadow whitelist on the virtual CPU
 *                       (vmm/shadow_emu.c); ud0/ud1/ud2 reflect #UD; any
 *                       other unknown instruction stops with status 10
 *   other exceptions    reflected into the guest IDT (vmm/shadow_event.c)
 *   interrupts (>= 32)  reflected when the virtual IF allows, else held
 *                       pending; an emulated hlt idles in the monitor
 *   #NP                 the emulator too: a guest iretq/segment load that
 *                       found no descriptor in the real GDT (vmm/monitor.h)
 *   #UD at the monitor's syscall entry: the guest's syscall (emulated entry)
 *   port I/O            the guest kernel's exits to the VMM; guest user
 *                       code's is a #GP (no real I/O bitmap then), checked
 *                       as the CPU would (virtual CPL, IOPL, the guest
 *                       TSS's I/O bitmap): done, or the guest's #GP(0)
 * The virtual CPU state is decode/'s struct emu_cpu (with its emu_virt):
 * one source of truth, handed to the emulator as is (vmm/shadow_cpu.c).
 */
#ifndef UMBRA_VMM_SHADOW_MODE_H
#define UMBRA_VMM_SHADOW_MODE_H

#include "shadow/mmu.h"
#include "vmm/shadow_debugreg.h"
#include "vmm/call_sync.h"
#include "vmm/monitor.h"
#include "decode/emulate.h"
#include "decode/patch.h"
#include "vmm/code_entries.h"
#include "vmm/insn_starts.h"
#include "vmm/scan_ahead.h"
#include "vmm/scan_memos.h"
#include "vmm/patch_copies.h"
#include "vmm/shadow_msr.h"

/*
 * Identical consecutive #PFs (same RIP, gva, error code) after which shadow
 * mode stops instead of looping: a correct fix is seen at once, so this is
 * a VMM or host bug (for example a shadow store KVM did not see).
 */
#define SHADOW_PF_REPEAT_MAX 64

struct vm;

#define SHADOW_RECENT 16 /* traps the flight recorder keeps */

struct shadow_mode {
	struct monitor mon;
	struct shadow_mmu *mmu;
	/*
	 * The guest's virtual CPU (vmm/shadow_cpu.h). Between traps only the
	 * system state and the virtual IF/IOPL in rflags are meaningful; the
	 * GPRs, RIP and the other flags are loaded from the real vCPU at each
	 * trap and written back after it.
	 */
	struct emu_cpu cpu;
	u64 xcr0;		 /* the guest's XCR0 (virtual; the real one is the host's) */
	struct shadow_msrs msrs; /* the other virtual MSRs (vmm/shadow_msr.c) */
	enum shadow_view view;	 /* SHADOW_VIEW_KERNEL iff emu_cpl(&cpu) == 0 */
	u64 shadow_cr4;		 /* the CR4 the shadow MMU was given (shadow_emu.c) */
	mpa_t root;		 /* the root the guest must run on after this trap */
	u64 guest_rbx;		 /* the guest's RBX at the trap (the tail clobbers RBX) */
	u8 tr_type;		 /* TR's type for KVM_SET_SREGS: 11, or 9 on QEMU TCG (boot) */
	/* The DS, ES, FS and GS selectors last given to the real vCPU (shadow_cpu.c, item 4). */
	u16 real_ds_sel, real_es_sel, real_fs_sel, real_gs_sel;
	/* The guest GDT base whose CPUNODE entry the real GDT holds (0: none yet). */
	u64 cpunode_gdt;
	/* The real debug registers as last armed (vmm/shadow_debugreg.h). */
	struct shadow_dr_state dr_armed;
	/* The iopl3 strategy (vmm/host_probe.h): the guest kernel's IF is the real one. */
	bool iopl3;
	/*
	 * The real CR4: real_cr4_fixed, plus the guest's own CR4 bits in
	 * real_cr4_mirror, and in real_cr4_user_mirror while user mode runs
	 * (shadow_real_cr4; set at boot, see shadow_mode.c).
	 */
	u64 real_cr4_fixed, real_cr4_mirror, real_cr4_user_mirror;
	/* The last #PF, to catch a fault the vCPU keeps taking after a fix. */
	u64 last_pf_rip, last_pf_cr2, last_pf_err;
	unsigned pf_repeats;
	/*
	 * A guest #PF for a user access was delivered (vmm/shadow_mode.c,
	 * prefault_on_return): where and how, so that the trap that returns
	 * to that instruction can map the page the handler has just filled.
	 */
	struct shadow_prefault_arm {
		bool armed;
		u64 rip, cr3, cr2;
		u32 access; /* ACC_* (shadow/walk.h) */
	} prefault;
	/* Interrupts taken while the virtual IF was 0 (vmm/shadow_event.c). */
	u64 pending[4]; /* bitmap by vector (32-255) */
	/*
	 * How many times each pending vector was taken. The CPU acknowledged
	 * each one at the PIC or LAPIC, and each must reach the guest so that
	 * its EOIs balance those acknowledgements: the PIC's non-specific EOI
	 * clears the highest in-service bit, which need not be the guest's
	 * vector, and a coalesced one would leave an ISR bit set for good,
	 * blocking every lower-priority IRQ (seen: serial input stalled).
	 */
	u16 pending_n[256];
	u64 int_shadow_rip; /* cpu.virt.int_shadow: the RIP just after the sti */
	bool want_halt;	    /* this trap emulated a hlt (vmm/shadow_event.c) */
	/*
	 * This trap delivered an event taken in user mode to the guest kernel
	 * (shadow_emu_deliver): its chain may run the entry code ahead
	 * (vmm/shadow_mode.c, item 7).
	 */
	bool entered_kernel;
	/*
	 * The load_gs stand-in (vmm/monitor.h): the non-null selector its slow
	 * path loaded last (or the load_fs one's, 0x2b), which call_load_gs_fill
	 * lets both stand-ins take;
	 * and whether finish_load_gs last put the vCPU back at the site.
	 */
	u16 load_gs_user_sel;
	bool load_gs_undone;
	/* Whether finish_load_fs last put the vCPU back in the site (not completed). */
	bool load_fs_undone;
	/* Whether finish_wrmsr last put the vCPU back at the site's start. */
	bool wrmsr_undone;
	/*
	 * A guest kernel page was scanned that could see FS's base without a
	 * trap (vmm/code_scan.c: an FS prefix, or rdfsbase/wrfsbase where the
	 * host runs them): the wrmsr stand-in may no longer defer an FS base.
	 */
	bool fs_base_seen;
	/*
	 * A stand-in's key over a descriptor in the guest's GDT (vmm/call_sync.c,
	 * desc_key_holds): the selector and the GDT it was read for.
	 */
	struct desc_key {
		bool valid;
		u16 sel;
		u64 gdt_base;
		u32 gdt_limit;
	} load_gs_key;
	/*
	 * The SS load stand-in's key (vmm/call_sync.c, call_ss_load_fill): the
	 * GDT it was read from, and __KERNEL_DS as SS would hold it, which
	 * shadow_cpu_load makes the virtual SS when the stand-in loaded it.
	 * ss_load_undone: finish_ss_load last put the vCPU inside the site.
	 */
	struct ss_load_key {
		struct desc_key key;
		bool loadable;
		struct emu_seg seg;
	} ss_load_key;
	bool ss_load_undone;
	/* Handlers whose run-ahead found no trap (item 7's run_ahead), by RIP. */
#define SHADOW_AHEAD_MEMO 64u
	struct ahead_memo {
		u64 rip;
		u8 misses; /* run-aheads in a row from rip that reached no trap */
		u32 skips; /* entries since given up: one in AHEAD_RETRY tries again */
	} ahead_memo[SHADOW_AHEAD_MEMO];
	bool halted;		     /* the vCPU sits in the monitor's idle loop */
	struct mon_frame halt_frame; /* the guest's frame while halted */
	/*
	 * Kernel code entry points learnt so far (vmm/code_entries.h): a frame
	 * approved before one of them was known is rescanned from it
	 * (shadow_learn_entry, vmm/shadow_emu.c item 6).
	 */
	struct code_entries code_entries;
	/* Our patches with their surroundings, to recognise guest copies of them. */
	struct patch_copies copies;
	/* int3 patches over pushf/popf in guest kernel code (decode/patch.h). */
	struct patch_table patches;
	/* Instruction starts of each approved frame (vmm/insn_starts.h). */
	struct insn_starts starts;
	/* The decodes of recently scanned frames, for their rescans (vmm/scan_memos.h). */
	struct scan_memos memos;
	/* The helper that fills them ahead of first fetches (vmm/scan_ahead.h); NULL: off. */
	struct scan_ahead *ahead;
	/*
	 * Paravirt save_fl sites are rewritten to run without a trap (iopl3
	 * only; rewrite_save_fl_sites in code_scan.c) until the guest
	 * kernel's IOPL ever leaves 0 (shadow_emu_check_rewrites).
	 */
	bool rewrite_save_fl;
	/*
	 * Monitor calls (patch strategy, --monitor-calls=on): paravirt
	 * irq-flag sites call monitor code in the call window once it is
	 * claimed, and from then on, while the guest kernel runs, its virtual
	 * IF lives in the window's data page (vmm/monitor.h; loaded and stored
	 * by vmm/shadow_cpu.c).
	 */
	bool calls;
	bool window_on; /* claimed (claim_window in code_scan.c): the sites may call it */
	struct call_sync_key sync_key; /* the sync stand-in's data (vmm/call_sync.c) */
	/*
	 * The cmpxchg16b stand-in (vmm/call_cx16.h): whether the host runs it,
	 * and the gva of the one body rewritten to jump there (0: none yet),
	 * where an undo puts the vCPU back.
	 */
	bool cx16_ok;
	u64 cx16_body;
	/*
	 * The flight recorder: the last SHADOW_RECENT traps, always kept (a
	 * few stores per trap), printed when the VM dies of a fault nobody
	 * traced (shadow_mode_dump_recent). recent_n counts every trap.
	 */
	struct shadow_trap_record {
		u64 rip, next_rip; /* the guest's RIP at the trap, and where it went on */
		u64 cr3, cr2;	   /* the guest's CR3; CR2 as the trap left it */
		u16 vector;
		u8 cpl;	   /* the guest's virtual CPL at the trap */
		u8 result; /* enum shadow_exit */
	} recent[SHADOW_RECENT];
	u64 recent_n;
};

/* Init step (after "vcpu"): a no-op in hw mode. Returns 0 or an UMBRA_EXIT_* code. */
int shadow_mode_setup(struct vm *vm);
void shadow_mode_teardown(struct vm *vm);

enum shadow_exit {
	SHADOW_EXIT_RESUME,   /* handled: run the guest */
	SHADOW_EXIT_GUEST_IO, /* a guest port access it may make: the caller does it */
	SHADOW_EXIT_STOP,     /* vm_kill was called or the VM stopped */
};

/* A KVM_EXIT_IO in shadow mode: a monitor trap, or the guest's own port I/O. */
enum shadow_exit shadow_mode_io_exit(struct vm *vm);

/*
 * After a fatal stop in shadow mode: the guest's virtual CPU as of its last
 * trap (the real vCPU may be in reset state after a shutdown) and the last
 * traps, oldest first, to stderr.
 */
void shadow_mode_dump_recent(struct vm *vm);

/*
 * A #GP, #UD or #NP at the vCPU's RIP: the instruction emulated on the
 * virtual CPU, or the process's own fault reflected (vmm/shadow_mode.c).
 * For vmm/shadow_calls.c, whose slow paths end in the original instruction.
 */
enum shadow_exit shadow_handle_insn_trap(struct vm *vm, unsigned vector);

/* Copy the shadow MMU counters into vm->stats (at the end of the run). */
void shadow_mode_collect_stats(struct vm *vm);

/* The shadow MMU's counters now into `out`; all zero when not in shadow mode. */
void shadow_mode_snapshot_mmu(struct vm *vm, struct shadow_stats *out);

#endif /* UMBRA_VMM_SHADOW_MODE_H */
