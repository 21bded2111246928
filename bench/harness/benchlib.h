/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness's library (issue 7): the pure logic of `make bench`,
 * kept apart from the driver (main.c, run.c, plot.c) so that the unit tests
 * (tests/unit/test_bench.c) can check it without a VM:
 *   line.c     parse a "BENCH <name> <iterations> <cycles | ns=ns>" line
 *   json.c     read named numbers and the stats marks out of umbra's
 *              --stats=json output, and a workload's events between its marks
 *   summary.c  median and spread of N samples, ratios
 *   script.c   the Linux guest's boot script, base64 for its command line
 *   report.c   the Markdown tables and the CSV file
 *   pvm.c      which Linux configurations a PVM host runs
 */
#ifndef UMBRA_BENCH_BENCHLIB_H
#define UMBRA_BENCH_BENCHLIB_H

#include <stdint.h>
#include <stdio.h>

/* ---- line.c -------------------------------------------------------------- */

#define BENCH_NAME_MAX 32

enum bench_unit {
	BENCH_CYCLES, /* guest TSC cycles per iteration (testos) */
	BENCH_NS,     /* nanoseconds per iteration, CLOCK_MONOTONIC (ubench) */
};

struct bench_line {
	char name[BENCH_NAME_MAX];
	uint64_t iters;
	double per_iter; /* "D+" or "D+.D+" in the line, in @unit */
	enum bench_unit unit;
};

/*
 * Parse one line of guest output. Returns 0 and fills @out when @line is
 * exactly "BENCH <name> <iters> <value>" (iters a decimal integer > 0, value
 * a decimal integer or fraction "123.45": cycles per iteration, or, written
 * "ns=123.45", nanoseconds per iteration; a trailing "\n" or "\r\n" is
 * allowed), -1 for anything else.
 */
int bench_parse_line(const char *line, struct bench_line *out);

/* ---- json.c -------------------------------------------------------------- */

/*
 * The number at @path in the JSON text @json: a key ("exits_total") or keys
 * joined by dots ("shadow.root_hits") through nested objects. Returns 0 and
 * sets *@out, or -1 when the path is absent, is not a number, or the text is
 * malformed before it is found. Arrays are skipped, not indexed.
 */
int bench_json_number(const char *json, const char *path, double *out);

/*
 * A stats mark (devices/stats_mark.c): ubench -m writes label 2k before the
 * timed loop of the k-th workload and 2k+1 after it; umbra's --stats=json
 * lists the counters at each mark in "marks", cumulative. Counters absent
 * from the JSON are NAN.
 */
struct bench_mark {
	uint32_t label;
	double t_s;   /* seconds since the VM started */
	double exits; /* VM exits, every reason */
	double traps; /* shadow-mode monitor traps (0 in hw mode) */
};

/*
 * The first @cap marks of the top-level "marks" array of @json into @out, in
 * order. Returns how many it stored, or -1 when there is no "marks" array (an
 * older umbra), an element is not an object with a "label" in 0..2^32-1, or
 * the text is malformed.
 */
int bench_json_marks(const char *json, struct bench_mark *out, unsigned cap);

/*
 * Workload @k's events: @out gets the differences between the mark labelled
 * 2k and the mark right after it, which must be labelled 2k+1 (label 2k,
 * t_s and the counts being end minus start). The first such pair counts.
 * Returns 0, or -1 when there is none (the workload died between them, or
 * its guest did not mark).
 */
int bench_mark_delta(const struct bench_mark *marks, unsigned n, unsigned k,
		     struct bench_mark *out);

/* ---- summary.c ----------------------------------------------------------- */

struct bench_summary {
	unsigned n; /* samples; 0 = none (the other fields are NAN) */
	double median, min, max;
};

/* Summarize @n samples (the array is not changed; NAN samples are skipped). */
struct bench_summary bench_summarize(const double *samples, unsigned n);
/* (max - min) / median in percent, or NAN when undefined. */
double bench_spread_pct(const struct bench_summary *s);
/* @num / @den, or NAN when @den is 0 or either is NAN. */
double bench_ratio(double num, double den);

/* ---- script.c ----------------------------------------------------------- */

/* The console line the Linux guest prints first from userspace. */
extern const char bench_userspace_marker[];

/*
 * @len bytes of @data in base64 (RFC 4648, padded, no line breaks) into
 * @out, NUL-terminated. Returns the length written, or 0 when @cap is too
 * small (including for the NUL).
 */
size_t bench_base64(const void *data, size_t len, char *out, size_t cap);

/*
 * The script a Linux boot runs: the marker line, then "/ubench -n N name"
 * for each of the @n workloads (iters[i] 0: ubench's default); with @marks,
 * "/ubench -m -k i -n N name", so that the i-th workload's stats marks are
 * labelled 2i and 2i+1 although each runs in its own ubench. Returns its
 * length, or -1 when it does not fit @cap or a name is not [a-z0-9_]+.
 */
int bench_linux_script(char *buf, size_t cap, const char *const *names, const uint64_t *iters,
		       unsigned n, int marks);

/* ---- report.c ------------------------------------------------------------ */

/* The figures taken from umbra's --stats=json for each run (medians are shown). */
enum bench_metric {
	BM_EXITS,	/* exits_total */
	BM_TRAPS,	/* shadow.traps_total */
	BM_TRAP_PF,	/* shadow.traps.14: #PF traps (0 when absent but shadow ran) */
	BM_TRAP_GP,	/* shadow.traps.13: #GP traps (sensitive instructions) */
	BM_TRAP_BP,	/* shadow.traps.3: #BP traps (patched instructions) */
	BM_FAULTS,	/* shadow.faults */
	BM_PT_WRITES,	/* shadow.emulated_pt_writes */
	BM_STORES,	/* shadow.stores_replayed: shadow-table stores the vCPU made */
	BM_ROOT_SWITCH, /* shadow.root_hits + shadow.root_misses */
	BM_ROOT_HIT,	/* shadow.root_hits / BM_ROOT_SWITCH, percent */
	BM_EMULATED,	/* emulated_total */
	BM_SCAN,	/* shadow.code_scan_time_s: seconds scanning guest kernel code */
	BM_WALL,	/* wall_time_s */
	BM_COUNT
};

extern const char *const bench_metric_names[BM_COUNT]; /* CSV column names */

/* Fill @m[BM_COUNT] from one run's stats JSON; absent figures are NAN. */
void bench_metrics_from_json(const char *json, double m[BM_COUNT]);

/* One workload in one configuration. */
struct bench_cell {
	const char *status; /* NULL: it ran; else why not ("not runnable here: ...") */
	uint64_t iters;
	struct bench_summary per_iter; /* per iteration, in the report's unit */
	double metric[BM_COUNT];       /* medians over the runs; NAN = not applicable */
	/*
	 * Events per iteration between the workload's stats marks (ubench -m
	 * under umbra, bench_mark_delta over the BENCH line's iterations), over
	 * the runs; n = 0: no marks (QEMU, native, testos, an older umbra).
	 */
	struct bench_summary traps_op, exits_op;
};

/*
 * One configuration's VM boots, when one boot runs all the workloads (the
 * Linux guest): the event counts are the whole boot's, not a workload's.
 */
struct bench_boot {
	const char *status;	   /* NULL: it booted; else why not */
	struct bench_summary secs; /* VM start to the first userspace console line */
	double metric[BM_COUNT];   /* medians over the boots */
};

struct bench_report {
	const char *guest; /* "testos", "linux": the CSV's first column */
	enum bench_unit unit;
	unsigned nwork, nconf;
	const char *const *work;      /* workload names */
	const char *const *work_unit; /* what one iteration is, per workload */
	const char *const *conf;      /* configuration names */
	/* Indexes of configurations in conf[] for the ratio columns; -1: none. */
	int shadow, hw, tcg, native;
	struct bench_cell *cells; /* nwork * nconf, cells[w * nconf + c] */
	struct bench_boot *boot;  /* nconf boots, or NULL: a VM per workload and run */
};

static inline struct bench_cell *bench_cell(const struct bench_report *r, unsigned w, unsigned c)
{
	return &r->cells[w * r->nconf + c];
}

/*
 * The ratio of the medians of workload @w in configurations @num and @den,
 * or NAN when either index is negative or either cell did not run.
 */
double bench_cell_ratio(const struct bench_report *r, unsigned w, int num, int den);

/* Write @s as one CSV field (RFC 4180: quoted when it holds , " CR LF or edge spaces). */
void bench_csv_field(FILE *f, const char *s);
/* Format @v into @buf: "n/a" for NAN, else with @decimals decimals. */
const char *bench_fmt(char *buf, unsigned len, double v, int decimals);
/*
 * The CSV: bench_write_csv_header() writes the header line, then
 * bench_write_csv_rows() one line per workload and configuration of a report
 * (so that several reports share one file); bench_write_csv() does both.
 */
void bench_write_csv_header(FILE *f);
void bench_write_csv_rows(FILE *f, const struct bench_report *r);
void bench_write_csv(FILE *f, const struct bench_report *r);
/*
 * The Markdown tables: time per iteration with the ratio columns, the ratios
 * to native (when there is a native configuration), then the event counts
 * per workload, or per configuration with the boot times when r->boot is set,
 * then, when any cell has them, the events per iteration from the stats marks.
 */
void bench_write_markdown(FILE *f, const struct bench_report *r);

/*
 * A shadow-mode variant (variant.c): configuration @name ("shadow-" NAME)
 * runs umbra-shadow with @opts added. bench_parse_variant() reads
 * "NAME:OPT[ OPT...]" (NAME: lower-case letters, digits, dashes; each OPT
 * "--name[=value]", separated by spaces, never --mmu) into @v; returns 0, or
 * -1 with the reason in @err.
 */
#define BENCH_VARIANT_NAME_MAX 20
#define BENCH_VARIANT_OPTS_MAX 8
struct bench_variant {
	char name[8 + BENCH_VARIANT_NAME_MAX];
	char buf[256]; /* the options, split in place */
	const char *opts[BENCH_VARIANT_OPTS_MAX + 1];
	unsigned nopts;
};
int bench_parse_variant(const char *arg, struct bench_variant *v, char *err, size_t errlen);

/*
 * Why a Linux configuration whose guest kernel runs at CPL0 under KVM
 * (umbra-hw, qemu-kvm) does not run on this host, or NULL (pvm.c).
 * @syscall_reaches_cpl0: the host probe's answer (0 on PVM, where KVM
 * emulates guest CPL0 code and a user-mode syscall stays at CPL3). There
 * QEMU cannot run Linux's user programs at all; umbra-hw can (its own
 * syscall entry) but takes most of an hour, so it runs only when
 * --configs names it (@named).
 */
const char *bench_cpl0_unrunnable(int is_umbra, int named, int syscall_reaches_cpl0);

#endif
