/* SPDX-License-Identifier: MIT */
/*
 * Command-line parsing for `umbra`. Pure: no I/O besides formatting an error
 * message into the caller's buffer, so cmocka tests it directly.
 */
#ifndef UMBRA_VMM_OPTIONS_H
#define UMBRA_VMM_OPTIONS_H

#include "umbra/types.h"
#include "vmm/cpu_features.h"

enum mmu_mode { MMU_HW, MMU_SHADOW };
enum stats_format { STATS_NONE, STATS_TEXT, STATS_JSON };
/*
 * --sensitive: how shadow mode handles cli/sti (vmm/host_probe.h). AUTO takes
 * IOPL3 where the host probe says CPL3 honours IOPL=3 (VMX, SVM), else PATCH.
 */
enum sensitive_choice { SENSITIVE_AUTO, SENSITIVE_PATCH, SENSITIVE_IOPL3 };

#define UMBRA_DEFAULT_MEM	      (512 * MiB)
#define UMBRA_MIN_MEM		      (2 * MiB)
#define UMBRA_MAX_MEM		      (1 * TiB)
#define UMBRA_DEFAULT_DEBUG_EXIT_PORT 0xf4
/* Shadow pool: mapped with 2 MiB pages in one monitor PD (vmm/monitor.h). */
#define UMBRA_DEFAULT_SHADOW_POOL (16 * MiB)
#define UMBRA_MIN_SHADOW_POOL	  (2 * MiB)
#define UMBRA_MAX_SHADOW_POOL	  (1020 * MiB)
/* Shadow prefetch group, in sptes (shadow/prefetch.c); KVM uses 8 too. */
#define UMBRA_DEFAULT_SHADOW_PREFETCH 8
#define UMBRA_MAX_SHADOW_PREFETCH     512
/* Out-of-sync guest leaf tables at once (shadow/unsync.c); SHADOW_MAX_UNSYNC. */
#define UMBRA_DEFAULT_SHADOW_UNSYNC 16
#define UMBRA_MAX_SHADOW_UNSYNC	    64

struct umbra_options {
	enum mmu_mode mmu;
	u64 mem_bytes;
	u64 shadow_pool_bytes;	  /* --shadow-pool */
	unsigned shadow_prefetch; /* --shadow-prefetch: 0 or a power of two <= 512 */
	unsigned shadow_unsync;	  /* --shadow-unsync: 0..64 */
	bool shadow_large;	  /* --shadow-large on|off: 2 MiB sptes (default on) */
	bool shadow_clean_first;  /* --shadow-clean-first on|off: zero pool pages first (on) */
	const char *cmdline;	  /* NULL: empty */
	const char *initrd;	  /* NULL: none */
	const char *image;
	enum stats_format stats;
	const char *stats_file; /* NULL: stderr */
	bool trace;
	const char *trace_file;		 /* NULL: stderr */
	int debug_exit_port;		 /* -1: no debug-exit device */
	int verbose;			 /* -v count */
	struct cpu_hide cpu_hide;	 /* --cpu: CPUID features hidden from the guest */
	enum sensitive_choice sensitive; /* --sensitive */
	bool no_scan_ahead;		 /* --scan-ahead=off: no helper thread decodes code ahead */
	bool no_chain;			 /* --chain=off: one trap per trapping instruction */
	bool no_chain_entry; /* --chain-entry=off: no run-ahead after an entry from user mode */
	bool no_prefault;    /* --shadow-prefault=off: a user #PF's retry faults again */
	bool no_calls; /* --monitor-calls=off: no paravirt site becomes a call (patch strategy) */
};

enum options_result {
	OPTIONS_RUN,	 /* run the VM described by the options */
	OPTIONS_HELP,	 /* print umbra_usage() and exit 0 */
	OPTIONS_VERSION, /* print the version and exit 0 */
	OPTIONS_ERROR,	 /* err holds a one-line message; exit UMBRA_EXIT_USAGE */
};

/* Parse argv into *o (defaults first). On OPTIONS_ERROR `err` says why. */
enum options_result options_parse(int argc, char **argv, struct umbra_options *o, char *err,
				  size_t errlen);

/*
 * Parse a size like "512M", "4G", "65536", "1.5G" is refused. Suffixes K, M,
 * G, T (powers of 1024, optional trailing "iB" or "B"). Returns 0 or -EINVAL
 * (syntax) / -ERANGE (overflow).
 */
int options_parse_size(const char *s, u64 *out);

/* The --help text. */
const char *options_usage(void);

#endif /* UMBRA_VMM_OPTIONS_H */
