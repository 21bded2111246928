/* SPDX-License-Identifier: MIT */
/*
 * The benchmark driver's parts that touch the system (issue 7):
 *   run.c     run one program (a VM, or ubench natively) with a time limit,
 *             collecting its BENCH lines from its stdout
 *   testos.c  testos's workloads: a VM per workload and run, under umbra
 *   linux.c   ubench's workloads: one Linux boot per configuration and run
 *             (umbra, QEMU), or ubench on the host (native)
 *   qemu.c    find QEMU, installing it when we may
 *   plot.c    the SVG plot, with gnuplot
 * main.c strings them together; the pure logic is in benchlib.h.
 */
#ifndef UMBRA_BENCH_DRIVER_H
#define UMBRA_BENCH_DRIVER_H

#include "bench/harness/benchlib.h"

#define RUN_MAX_LINES 16
#define RUN_MAX_MARKS 64 /* ubench -m: 2 per workload */
#define MAX_RUNS      64

struct run_spec {
	char *const *argv;	/* argv[0]: the program's path */
	const char *err_path;	/* its stderr goes to this file */
	const char *stats_path; /* umbra's --stats-file, read after the run; NULL: none */
	unsigned timeout_s;	/* stopped (SIGTERM, then SIGKILL) after this */
	/* Called for each BENCH line as it arrives (progress), or NULL. */
	void (*on_line)(const struct bench_line *line, void *ctx);
	void *ctx;
};

struct run_result {
	char why[320]; /* empty when the program exited with status 0 in time */
	unsigned nlines;
	struct bench_line lines[RUN_MAX_LINES];
	double metric[BM_COUNT]; /* from stats_path; all NAN without */
	int have_stats;
	int nmarks; /* the stats marks in stats_path; 0 without, or from an older umbra */
	struct bench_mark marks[RUN_MAX_MARKS];
	int timed_out;
	double wall_s;	 /* measured around the whole process */
	double marker_s; /* when bench_userspace_marker came; NAN if it did not */
	char last[160];	 /* the last non-empty console line, for the reasons */
};

/* Run one program; returns 0 when it exited with status 0, else -1 with @out->why. */
int run_program(const struct run_spec *spec, struct run_result *out);

/* The BENCH line for workload @name in @res, or NULL. */
const struct bench_line *run_line(const struct run_result *res, const char *name);

/* Whether @prog is an executable file (a path, or a name in $PATH). */
int have_program(const char *prog);

/* The command-line options, shared by the guests' drivers. */
/* At most this many --shadow-opt options. */
#define MAX_SHADOW_OPTS 8
/* At most this many --variant configurations. */
#define MAX_VARIANTS 4

struct bench_opts {
	const char *umbra, *image, *mem, *out_dir;
	const char *only, *only_conf, *guests; /* comma-separated lists; NULL: all */
	const char *kernel, *initrd, *ubench, *qemu, *linux_mem;
	unsigned runs, timeout_s, linux_timeout_s, hw_timeout_s;
	int quick;
	/* --shadow-opt: extra umbra options for umbra-shadow only, NULL-terminated. */
	const char *shadow_opts[MAX_SHADOW_OPTS + 1];
	unsigned nshadow_opts;
	/* --variant: more shadow-mode configurations, after umbra-shadow in each table. */
	struct bench_variant variants[MAX_VARIANTS];
	unsigned nvariants;
};

/* Whether @name is in the comma-separated @list (NULL: everything is). */
int bench_selected(const char *list, const char *name);

/* Run counts, for the progress lines on stderr. */
struct progress {
	unsigned done, total, failures;
};

/*
 * A guest's part of the benchmark. setup() decides what can run and counts
 * the runs into @p->total (returns -1 on a usage error), run() does run
 * number @rep of everything, report() summarizes after the last run.
 * A NULL report means the guest was not selected.
 */
struct guest_driver {
	const char *name;      /* for --guests */
	void (*list)(FILE *f); /* " name" per workload, for --help */
	int (*setup)(const struct bench_opts *o, struct progress *p);
	void (*run)(const struct bench_opts *o, unsigned rep, struct progress *p);
	struct bench_report *(*report)(const struct bench_opts *o);
};
extern const struct guest_driver testos_driver, linux_driver;

/*
 * Find QEMU (@o->qemu). When it is missing and we are root, install Debian's
 * qemu-system-x86 with apt-get. Returns NULL when it can run, else why not
 * ("not runnable here: ...", a static string).
 */
const char *qemu_available(const struct bench_opts *o);

/*
 * Draw @r's time per iteration (median with min/max error bars, log axis)
 * into @svg with gnuplot, leaving its inputs in @dat and @script. Returns 0,
 * or -1 after printing why on stderr.
 */
int plot_svg(const struct bench_report *r, const char *dat, const char *script, const char *svg,
	     const char *title);

#endif
