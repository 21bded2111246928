/* SPDX-License-Identifier: MIT */
/*
 * The benchmark driver's parts that touch the system (issue 7): running one
 * workload in one umbra process (run.c) and drawing the plot with gnuplot
 * (plot.c). main.c strings them together; the pure logic is in benchlib.h.
 */
#ifndef UMBRA_BENCH_DRIVER_H
#define UMBRA_BENCH_DRIVER_H

#include "bench/harness/benchlib.h"

struct run_spec {
	const char *umbra, *image, *mmu, *mem;
	const char *workload;
	uint64_t iters;		/* 0: the guest's default */
	unsigned timeout_s;	/* the VM is stopped (SIGTERM, then SIGKILL) after this */
	const char *stats_path; /* where umbra writes --stats=json */
};

struct run_result {
	char why[256]; /* empty when the run succeeded */
	struct bench_line line;
	double metric[BM_COUNT];
	double wall_s; /* measured by the driver, around the whole umbra process */
};

/* Run one VM; returns 0 on success, -1 with @out->why set. */
int run_umbra(const struct run_spec *spec, struct run_result *out);

/* Whether @prog is an executable file in $PATH. */
int have_program(const char *prog);

/*
 * Draw @r's cycles per iteration (median with min/max error bars, log axis)
 * into @svg with gnuplot, leaving its inputs in @dat and @script. Returns 0,
 * or -1 after printing why on stderr.
 */
int plot_svg(const struct bench_report *r, const char *dat, const char *script, const char *svg,
	     const char *title);

#endif
