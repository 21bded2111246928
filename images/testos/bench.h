/* SPDX-License-Identifier: MIT */
/*
 * Benchmark workloads. Command line: bench=<name>[,<name>...] runs the named
 * workloads instead of the test suite, in the order given, then powers off
 * (exit 0); iters=<n> overrides every workload's default iteration count.
 * Each prints exactly one line
 *     BENCH <name> <iterations> <guest-cycles-per-iteration, two decimals>
 * (guest TSC cycles, integer), and may print other lines that do not start
 * with "BENCH ". An unknown name, or a workload that cannot run, prints an
 * error and exits through debug-exit 1 (umbra status 3).
 *
 * A workload is registered from any file, like a test (the .benches section,
 * in link order):
 *
 *     BENCH(fork, 1000)
 *     {
 *             ... set up ...
 *             uint64_t t0 = rdtsc();
 *             ... @iters iterations ...
 *             uint64_t cycles = rdtsc() - t0;
 *             ... tear down ...
 *             return cycles;  // the TSC cycles the @iters iterations took
 *     }
 *
 * The body sees `uint64_t iters` (>= 1). It runs at CPL0 with IF=0 in the
 * kernel's address space; after it the runner clears the user half of that
 * address space, disarms catches and pf_hook and restores RFLAGS and CR3.
 */
#ifndef TESTOS_BENCH_H
#define TESTOS_BENCH_H

#include <stdint.h>

#include "trap.h"

/* 24 bytes, 8-aligned: the entries lie back to back in .benches, an array. */
struct bench {
	const char *name;
	uint64_t default_iters;
	uint64_t (*fn)(uint64_t iters); /* returns the TSC cycles of the iters iterations */
};

#define BENCH(bname, dflt)                                                                          \
	static uint64_t bname##_bench(uint64_t iters);                                              \
	static const struct bench bname##_bench_desc                                                \
		__attribute__((used, section(".benches"), aligned(8))) = { #bname, (dflt),         \
									    bname##_bench };        \
	static uint64_t bname##_bench(uint64_t iters)

/* Run the workloads named on @cmdline (bench=), then power off. */
__attribute__((noreturn)) void bench_run(const char *cmdline);
/* Report that the running workload cannot run or went wrong; exits through debug-exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) void bench_fail(const char *fmt, ...);

/*
 * CPL3 helpers for workloads (the user_run() mechanism of user.h, without
 * syscalls, which do not reach CPL0 in hw mode on hosts like ours): map a
 * blob of user_blobs.S-style code, then run it with RDI = a0, RSI = a1. The
 * blob ends with `ud2`; bench_user_call() returns the registers it ended
 * with (fails the workload on any other exit).
 */
void bench_user_map(const char *start, const char *end);
void bench_user_call(uint64_t a0, uint64_t a1, struct trap_frame *out);

#endif /* TESTOS_BENCH_H */
