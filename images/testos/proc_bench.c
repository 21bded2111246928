/* SPDX-License-Identifier: MIT */
/*
 * Process workloads (bench.h), on the process model (proc.h):
 *   fork      fork + child exit + wait, from CPL3 (u_forkloop). One
 *             iteration = one fork/exit/wait; each fork copies the page
 *             tables and shares the pages copy-on-write.
 *   pingpong  a parent and its child pass a token back and forth with the
 *             blocking send/recv calls (u_pingpong): every round trip is
 *             two address-space switches. One iteration = one round trip.
 * Both are timed at CPL3 (rdtsc around the loop, reported with khook).
 */
#include "bench.h"
#include "proc.h"
#include "proc_user.h"

static uint64_t bench_cycles;

static uint64_t record_cycles(struct proc *p, uint64_t cycles)
{
	(void)p;
	bench_cycles = cycles;
	return 0;
}

static uint64_t run_proc_bench(void (*fn)(uint64_t, uint64_t), uint64_t iters, const char *what)
{
	struct proc_result r;

	proc_init();
	proc_reset();
	bench_cycles = 0;
	proc_test_hook = record_cycles;
	if (proc_spawn(fn, iters, 0, &r) < 0)
		bench_fail("%s: cannot create a process", what);
	if (proc_run() || !r.done || r.status)
		bench_fail("%s: expected the process to exit with status 0, saw %s status 0x%lx",
			   what, r.done ? "" : "no exit (deadlock),", r.status);
	proc_reset();
	return bench_cycles;
}

BENCH(fork, 200)
{
	return run_proc_bench(u_forkloop, iters, "fork");
}

BENCH(pingpong, 2000)
{
	return run_proc_bench(u_pingpong, iters, "pingpong");
}
