/* SPDX-License-Identifier: MIT */
/*
 * Run statistics: exit counts by reason, unknown device accesses, wall time.
 * Printed at exit with --stats (text) or --stats=json.
 */
#ifndef UMBRA_VMM_STATS_H
#define UMBRA_VMM_STATS_H

#include <stdio.h>

#include "shadow/mmu.h"
#include "umbra/types.h"
#include "vmm/trap_sites.h"

struct host_probe;
struct shadow_strategy;

#define STATS_MAX_EXIT_REASON 64
#define STATS_NR_VECTORS      256
#define STATS_MAX_MNEMONICS   32 /* distinct emulated mnemonics; the rest count as "other" */

#define STATS_MAX_MARKS 512 /* marks kept; later ones are only counted as dropped */
#define STATS_MAX_KVM	64  /* KVM's own counters of the vCPU kept (vmm/kvm_stats.h) */

/*
 * The counters a stats mark snapshots, in output order: X(name, what).
 * Each is cumulative since the start of the run, so the events between two
 * marks are the difference; the shadow-mode ones are 0 in hw mode.
 */
/* clang-format off */
#define STATS_MARK_COUNTERS(X)                                                                 \
	X(exits, "VM exits, every reason")                                                     \
	X(traps, "monitor traps, every vector")                                                \
	X(traps_gp, "... #GP (vector 13)")                                                     \
	X(traps_pf, "... #PF (vector 14)")                                                     \
	X(traps_ud, "... #UD (vector 6)")                                                      \
	X(traps_bp, "... #BP (vector 3)")                                                      \
	X(traps_irq, "... interrupts (vectors 32 and up)")                                     \
	X(emulated, "instructions the VMM emulated")                                           \
	X(emulated_pt_writes, "stores emulated into write-protected tables")                   \
	X(patch_traps, "patched instructions that trapped")                                    \
	X(syscalls, "guest syscalls through the monitor")                                      \
	X(chained, "instructions emulated in a trap chain, no trap of their own")             \
	X(call_traps, "monitor calls: sti stand-in traps (an interrupt held)")                 \
	X(faults, "shadow MMU: shadow_fault calls")                                            \
	X(pt_writes, "shadow MMU: guest page-table writes seen")                               \
	X(root_switches, "shadow MMU: root_hits + root_misses")                                \
	X(sp_created, "shadow MMU: shadow pages created")                                      \
	X(faults_fixed, "shadow MMU: faults it fixed (hidden from the guest)")                 \
	X(stores, "shadow MMU: stores into shadow tables (the vCPU replays each on PVM)")
/* clang-format on */

/*
 * One guest-triggered snapshot (devices/stats_mark.c: the guest wrote `label`
 * to port 0x520), taken while handling that port write: its own exit (and,
 * in shadow mode, its own trap) is already counted.
 */
struct stats_mark {
	u32 label;
	double t; /* stats_now() */
#define X(name, what) u64 name;
	STATS_MARK_COUNTERS(X)
#undef X
};

/* One of KVM's own counters of the vCPU ("exits", "insn_emulation"), nonzero. */
struct stats_kvm {
	char name[40];
	u64 value;
};

/* Emulated instructions of one mnemonic (capstone's name: "clac", "int3"). */
struct stats_mnemonic {
	char name[24];
	u64 count;
};

struct stats {
	u64 exits[STATS_MAX_EXIT_REASON]; /* indexed by KVM_EXIT_* */
	u64 exits_other;		  /* reasons >= STATS_MAX_EXIT_REASON */
	u64 pio_unknown, mmio_unknown;	  /* accesses nothing claimed */
	u64 pio_bytes_out;		  /* console bytes etc., all ports */
	u64 emulated;			  /* instructions the VMM emulated */
	struct stats_mnemonic emulated_by[STATS_MAX_MNEMONICS]; /* in order of first use */
	unsigned nr_emulated_by;
	u64 emulated_other;    /* mnemonics beyond STATS_MAX_MNEMONICS */
	double t_start, t_end; /* CLOCK_MONOTONIC seconds */
	/*
	 * KVM's own nonzero counters of the vCPU at the end (kvm_stats_read):
	 * what KVM did in the kernel without an exit to the VMM. kvm_note: why
	 * there are none (no stats fd), or empty.
	 */
	struct stats_kvm kvm[STATS_MAX_KVM];
	unsigned nr_kvm;
	char kvm_note[80];

	/* Shadow mode (vmm/shadow_mode.c); all zero in hw mode. */
	u64 traps[STATS_NR_VECTORS];	    /* monitor traps by vector */
	double trap_time[STATS_NR_VECTORS]; /* seconds in the VMM handling them */
	struct trap_sites sites;	    /* exceptions by (vector, guest RIP) */
	u64 reflected;			    /* events delivered through the guest IDT */
	u64 irq_delivered;		    /* external interrupts delivered to the guest */
	u64 irq_deferred;		    /* ... that arrived with the virtual IF = 0 */
	u64 irq_requeued;     /* taken with the virtual IF = 0, put back in the IRR (TPR raised) */
	u64 halts;	      /* emulated hlt that idled the vCPU */
	u64 guest_io;	      /* the guest's own port accesses */
	u64 guest_io_denied;  /* ... refused (#GP) by virtual CPL/IOPL/bitmap */
	u64 user_faults_own;  /* user-mode #GP/#UD/#NP the emulator does not know: the guest's */
	u64 dr_arms;	      /* the guest's breakpoints given to the real vCPU (shadow_debugreg) */
	u64 dr_hits;	      /* real #DB from those breakpoints */
	u64 dr_hits_inferred; /* ... whose DR6 KVM did not report: worked out from the frame */
	u64 dr_hits_emulated; /* #DB for them the emulator raised (what the VMM ran itself) */
	u64 syscalls;	      /* guest syscalls through the monitor's entry */
	u64 chained;	      /* instructions emulated in a trap chain, no trap of their own */
	u64 ahead_runs;	      /* entry run-aheads that reached a trapping instruction */
	u64 ahead_tries;      /* entry run-aheads started (--chain-entry) */
	u64 ahead_insns;      /* instructions they ran (decode's fast path), reached or not */
	u64 emulated_pt_writes;	    /* stores emulated into write-protected tables */
	u64 emulated_mmio;	    /* stores emulated to MMIO */
	u64 emulated_ram_stores;    /* other emulated stores (SMAP view cases) */
	u64 unshadowed_for_unknown; /* tables unshadowed for a store decode/ lacks */
	u64 shadow_stores_replayed; /* shadow-table stores applied by the vCPU */
	/* Code scanning and patching (decode/scan.h, decode/patch.h). */
	u64 code_pages_scanned;	    /* kernel code frames scanned before their first run */
	u64 code_page_writes;	    /* ... that the guest then wrote (patches undone) */
	u64 code_page_rescans;	    /* ... rescanned for an entry point found later */
	u64 code_scan_straddles;    /* scans begun by a fetch straddling in from the page before */
	u64 code_scan_int3_covers;  /* guest int3s swept as the instruction they replaced */
	u64 code_scan_conflicts;    /* sites left unpatched: inside another instruction found */
	double code_scan_time;	    /* seconds scanning code frames, entries gathered included */
	double code_entry_time;	    /* ... of which gathering their entries (IDT, LSTAR, ...) */
	u64 code_scan_decodes;	    /* instructions the scans decoded with capstone */
	u64 code_scan_memo_decodes; /* ... and took from the frame's scan memo instead */
	u64 code_scan_memo_own;	    /* scans that found their frame's memo (vmm/scan_memos.h) */
	bool scan_ahead_on;	    /* --scan-ahead (vmm/scan_ahead.h) */
	u64 scan_ahead_requests;    /* frames handed to the scan-ahead thread */
	u64 scan_ahead_done;	    /* ... decoded into a memo and put in the table */
	u64 scan_ahead_used;	    /* ... whose memo a scan then used */
	u64 scan_ahead_waits;	    /* scans that waited for the helper to finish their frame */
	u64 code_entries_known;	    /* entries found later that the last scan had covered */
	u64 save_fl_rewrites;	    /* paravirt save_fl sites rewritten to run without a trap */
	/*
	 * --monitor-calls: rewrites into calls or jmps applied, by enum
	 * patch_pv_site (a site whose page the guest wrote is rewritten again).
	 */
	u64 call_sites[4];
	u64 call_indirect;  /* of those, `call *` sites rewritten to call a thunk (vmm/monitor.h) */
	u64 call_direct;    /* and `call body` sites rewritten so */
	u64 call_gsbase;    /* `swapgs; rd/wrgsbase; swapgs` sites rewritten (vmm/monitor.h) */
	u64 call_sync;	    /* sync_core's `iret` to self sites rewritten (vmm/call_sync.c) */
	u64 call_sync_slow; /* ... calls that ran the original (the GDT or NT did not allow) */
	u64 call_iret;	    /* iretq sites rewritten (vmm/call_iret.c) */
	u64 call_iret_slow; /* ... calls the VMM emulated (a check failed, or a fault inside) */
	u64 call_cx16;	    /* this_cpu_cmpxchg16b_emu bodies rewritten (vmm/call_cx16.c) */
	u64 call_cx16_slow; /* ... calls whose cmpxchg16b faulted: the VMM ran the body's head */
	u64 call_ss;	    /* `mov %ss,%ax; cmp $0x18,%ax` sites rewritten (vmm/call_literal.c) */
	u64 call_cr2;	    /* `mov %cr2,%rax` sites rewritten (MON_CALL_RD_CR2) */
	u64 call_swapgs;    /* `swapgs; nop` sites rewritten (MON_CALL_SWAPGS) */
	u64 call_swapgs_slow;  /* swapgs stand-ins the VMM finished (a trap landed inside) */
	u64 call_load_gs;      /* asm_load_gs_index sites rewritten (MON_CALL_LOAD_GS) */
	u64 call_load_gs_slow; /* ... calls with a selector not null: the original emulated */
	u64 call_load_fs;      /* load_seg_legacy's __USER_DS sites rewritten (MON_CALL_LOAD_FS) */
	u64 call_load_fs_slow; /* ... calls its checks sent back: the site's mov emulated */
	u64 call_load_fs_finished; /* ... calls the VMM completed (a trap inside; the host refused)
				    */
	u64 call_wrmsr;		   /* native_write_msr bodies rewritten (MON_CALL_WRMSR) */
	u64 call_wrmsr_slow;	   /* ... calls it sent back: another MSR, or no deferring */
	u64 call_fs_base_loads;	   /* FS bases it deferred, loaded by the VMM at the next trap */
	/* The scan that stopped the deferring: its fetch address and scan_fs_uses() (0: none). */
	u64 fs_defer_stop_la;
	unsigned fs_defer_stop_uses;
	u64 call_ss_load;      /* __switch_to's SS reloads rewritten (MON_CALL_SS_LOAD) */
	u64 call_ss_load_slow; /* ... calls it sent back: the mov emulated */
	u64 call_thunks;       /* thunks made */
	u64 call_withdrawals;  /* the call window given back (vmm/shadow_mode.c, withdraw_calls) */
	u64 call_traps;	       /* the sti stand-in's ud2: an interrupt was held */
	bool calls_on;	       /* --monitor-calls (and the patch strategy) */
	bool calls_window;     /* the call window was claimed */
	u64 patches_applied;   /* int3 patches written over pushf/popf */
	u64 patches_live;      /* ... still in place at the end */
	u64 patch_traps;       /* patched instructions that trapped and were emulated */
	u64 patch_copies_restored; /* guest copies of our patches put back before a scan */
	/* The start-up host probe (vmm/host_probe.h), in struct vm; NULL in hw mode. */
	const struct host_probe *host;
	const struct shadow_strategy *strategy;
	bool have_shadow; /* `shadow` holds the MMU's final counters */
	/* hw mode's own syscall entry is on (PVM hosts, vmm/hw_syscall.h): `syscalls` counts it */
	bool hw_syscall_entry;
	struct shadow_stats shadow;
	/* Guest-triggered snapshots (stats_add_mark), in the order they came. */
	struct stats_mark marks[STATS_MAX_MARKS];
	unsigned nr_marks;
	u64 marks_dropped; /* marks that came after STATS_MAX_MARKS */
};

/* Print `st` to `f`. `mode` and `image` label the run; `exit_status` is umbra's. */
void stats_print_text(const struct stats *st, FILE *f, const char *mode, const char *image,
		      int exit_status);
void stats_print_json(const struct stats *st, FILE *f, const char *mode, const char *image,
		      int exit_status);
/*
 * Record a mark labelled `label`: the time and st's counters, plus the shadow
 * MMU's from `mmu` (NULL: none, as in hw mode). Beyond STATS_MAX_MARKS marks
 * it only counts st->marks_dropped.
 */
void stats_add_mark(struct stats *st, u32 label, const struct shadow_stats *mmu);
/* Count one emulated instruction (total and per mnemonic). */
void stats_count_emulated(struct stats *st, const char *mnemonic);
/* Name of a KVM exit reason ("io", "mmio", "shutdown", ...), "reason-N" otherwise. */
const char *stats_exit_name(unsigned reason, char *buf, size_t len);
double stats_now(void);

#endif /* UMBRA_VMM_STATS_H */
