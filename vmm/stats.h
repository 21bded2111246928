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

struct host_probe;
struct shadow_strategy;

#define STATS_MAX_EXIT_REASON 64
#define STATS_NR_VECTORS      256
#define STATS_MAX_MNEMONICS   32 /* distinct emulated mnemonics; the rest count as "other" */

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

	/* Shadow mode (vmm/shadow_mode.c); all zero in hw mode. */
	u64 traps[STATS_NR_VECTORS];	    /* monitor traps by vector */
	double trap_time[STATS_NR_VECTORS]; /* seconds in the VMM handling them */
	u64 reflected;			    /* events delivered through the guest IDT */
	u64 irq_delivered;		    /* external interrupts delivered to the guest */
	u64 irq_deferred;		    /* ... that arrived with the virtual IF = 0 */
	u64 halts;			    /* emulated hlt that idled the vCPU */
	u64 guest_io;			    /* the guest's own port accesses */
	u64 guest_io_denied;		    /* ... refused (#GP) by virtual CPL/IOPL/bitmap */
	u64 syscalls;			    /* guest syscalls through the monitor's entry */
	u64 emulated_pt_writes;		    /* stores emulated into write-protected tables */
	u64 emulated_mmio;		    /* stores emulated to MMIO */
	u64 emulated_ram_stores;	    /* other emulated stores (SMAP view cases) */
	u64 unshadowed_for_unknown;	    /* tables unshadowed for a store decode/ lacks */
	u64 shadow_stores_replayed;	    /* shadow-table stores applied by the vCPU */
	/* Code scanning and patching (decode/scan.h, decode/patch.h). */
	u64 code_pages_scanned; /* kernel code frames scanned before their first run */
	u64 code_page_writes;	/* ... that the guest then wrote (patches undone) */
	u64 code_page_rescans;	/* ... rescanned for an entry point found later */
	u64 patches_applied;	/* int3 patches written over pushf/popf */
	u64 patches_live;	/* ... still in place at the end */
	u64 patch_traps;	/* patched instructions that trapped and were emulated */
	u64 patch_copies_restored; /* guest copies of our patches put back before a scan */
	/* The start-up host probe (vmm/host_probe.h), in struct vm; NULL in hw mode. */
	const struct host_probe *host;
	const struct shadow_strategy *strategy;
	bool have_shadow; /* `shadow` holds the MMU's final counters */
	struct shadow_stats shadow;
};

/* Print `st` to `f`. `mode` and `image` label the run; `exit_status` is umbra's. */
void stats_print_text(const struct stats *st, FILE *f, const char *mode, const char *image,
		      int exit_status);
void stats_print_json(const struct stats *st, FILE *f, const char *mode, const char *image,
		      int exit_status);
/* Count one emulated instruction (total and per mnemonic). */
void stats_count_emulated(struct stats *st, const char *mnemonic);
/* Name of a KVM exit reason ("io", "mmio", "shutdown", ...), "reason-N" otherwise. */
const char *stats_exit_name(unsigned reason, char *buf, size_t len);
double stats_now(void);

#endif /* UMBRA_VMM_STATS_H */
