/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU differential harness: a model guest kernel and a model CPU
 * that drive shadow/ (mmu.h) through random operations and check every step
 * against the reference walker (walk.h), the oracle of DESIGN.md "The shadow
 * MMU". Used by tests/unit/test_shadow_diff.c (PRNG-driven) and
 * tests/fuzz/fuzz_shadow.c (driven by the fuzzer's bytes).
 *
 * What it builds (all synthetic, no KVM):
 *  1. Guest RAM: HARNESS_RAM_SIZE bytes at gpa 0 with a hole
 *     [HARNESS_HOLE_GPA, +HARNESS_HOLE_SIZE) that is not RAM (MMIO cases).
 *  2. A shadow pool of a configurable number of pages at a fake mpa of
 *     1 TiB; a shadow writer that stores directly and counts stores and
 *     commits; a flusher that counts flushes.
 *  3. A model guest kernel that owns its page tables. Every address space
 *     it creates maps all of guest RAM at HARNESS_DIRECT_MAP (2 MiB pages,
 *     supervisor), and every page-table edit after boot is a guest store
 *     through that direct map, made by the model CPU.
 *  4. The model CPU: an access translates through the *live* shadow root
 *     (walked by the harness itself from the root mpa that shadow_set_cr3
 *     returned, as the hardware would); on a miss or too few rights it
 *     calls shadow_fault and acts on the result, at most HARNESS_MAX_FAULTS
 *     times, so a library bug is a failure and never a hang.
 *  5. The check after every step: for a sample of gvas (every page of the
 *     window on a full sweep) and both views, a shadow translation must
 *     match the oracle (walk_guest with WALK_PEEK): same gpa (mpa == gpa),
 *     RAM only, rights no wider than the guest's (W only with the guest's
 *     write permission for the view and D set in the leaf gpte; X only if
 *     the guest may fetch; the user view never maps a supervisor page),
 *     and the reserved monitor PML4 slot holds exactly its entry.
 *
 * A violation prints the seed, the step, the operation, the gva, both
 * translations and the oracle's answer, and makes the run fail.
 */
#ifndef UMBRA_TESTS_SHADOW_HARNESS_H
#define UMBRA_TESTS_SHADOW_HARNESS_H

#include <stdio.h>

#include "shadow/shadow.h"

#define HARNESS_RAM_SIZE     (32 * MiB)
#define HARNESS_HOLE_GPA     (20 * MiB) /* [20 MiB, 22 MiB) is not RAM */
#define HARNESS_HOLE_SIZE    (2 * MiB)
#define HARNESS_POOL_MPA     (1 * TiB)
#define HARNESS_DIRECT_MAP   0xffff888000000000ull /* PML4 slot 273, as Linux's */
#define HARNESS_MONITOR_SLOT 256u		   /* the hypervisor hole */
#define HARNESS_MAX_FAULTS   4			   /* shadow_fault calls per access */
#define HARNESS_MAX_AS	     8			   /* address spaces (PML4s) */
#define HARNESS_MAXPHYADDR   40

/* How the operations are chosen: a seeded PRNG or a fuzzer's bytes. */
struct harness_config {
	u64 seed;	 /* PRNG seed (ignored with bytes) */
	const u8 *bytes; /* if non-NULL, choices come from these bytes */
	size_t nr_bytes;
	u64 prng_tail_ops; /* with bytes: then this many PRNG-driven steps, seeded by them */
	u64 pool_pages;	   /* shadow pool size; >= 8 */
	unsigned prefetch; /* the MMU's prefetch group (shadow_config; 0: off) */
	/*
	 * The MMU's out-of-sync tables (shadow_config.unsync; 0: off). When on,
	 * the oracle models a TLB: a leaf translation may follow any value its
	 * gpte had since the last guest flush that covered it.
	 */
	unsigned unsync;
	bool large; /* the MMU's 2 MiB sptes (shadow_config.large_pages; the VMM's default: on) */
	unsigned full_check_every; /* full sweep every N steps (0: only at the end) */
	unsigned samples_per_step; /* random window gvas checked after each step */
	bool trace;		   /* print every operation to `log` */
	FILE *log;		   /* where reports go; NULL: stderr */
};

/* What a run did. */
struct harness_counts {
	u64 steps;
	u64 ops[32];			   /* per operation, indexed as harness_op_name() */
	u64 gva_checks, gva_checks_mapped; /* ... of which the shadow mapped */
	u64 accesses, accesses_ok, accesses_guest_fault, accesses_mmio, accesses_pt_write,
		accesses_monitor, accesses_emulate;
	u64 cpu_stores, cpu_store_faults, pt_writes;
	u64 writer_stores, writer_commits, flushes_gva, flushes_all;
	u64 stale_ok;	     /* checks that passed only with a stale leaf gpte (unsync) */
	u64 prefaults_fixed; /* shadow_prefault calls that mapped the access */
};

struct harness;

/* Build RAM, pool, MMU and the first address space. NULL on failure (printed). */
struct harness *harness_create(const struct harness_config *cfg);
void harness_destroy(struct harness *h);

/*
 * Run one operation and the check after it. Returns 1 if it ran and passed,
 * 0 if the byte stream is exhausted (nothing ran), -1 on a violation (the
 * report is printed; the harness must not be stepped again).
 */
int harness_step(struct harness *h);

/* Steps until `nr_ops` ran, the bytes ran out or a violation; then a full sweep. 0 or -1. */
int harness_run(struct harness *h, u64 nr_ops);

/* A full sweep of the check now: every window page, both views. 0 or -1. */
int harness_check_all(struct harness *h);

const struct harness_counts *harness_get_counts(const struct harness *h);
const char *harness_op_name(unsigned op);
unsigned harness_nr_ops(void);
/* Print the counters and the shadow statistics. */
void harness_print_summary(const struct harness *h, FILE *out);

#endif /* UMBRA_TESTS_SHADOW_HARNESS_H */
