/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness's library (issue 7): the pure logic of `make bench`,
 * kept apart from the driver (main.c, run.c, plot.c) so that the unit tests
 * (tests/unit/test_bench.c) can check it without a VM:
 *   line.c     parse a guest's "BENCH <name> <iterations> <cycles/iteration>" line
 *   json.c     read named numbers out of umbra's --stats=json output
 *   summary.c  median and spread of N samples, ratios
 *   report.c   the Markdown table and the CSV file
 */
#ifndef UMBRA_BENCH_BENCHLIB_H
#define UMBRA_BENCH_BENCHLIB_H

#include <stdint.h>
#include <stdio.h>

/* ---- line.c -------------------------------------------------------------- */

#define BENCH_NAME_MAX 32

struct bench_line {
	char name[BENCH_NAME_MAX];
	uint64_t iters;
	double cycles_per_iter; /* guest TSC cycles, "D+" or "D+.D+" in the line */
};

/*
 * Parse one line of guest output. Returns 0 and fills @out when @line is
 * exactly "BENCH <name> <iters> <cycles>" (iters a decimal integer > 0,
 * cycles a decimal integer or fraction "123.45"; a trailing
 * "\n" or "\r\n" is allowed), -1 for anything else.
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

/* ---- report.c ------------------------------------------------------------ */

/* The figures taken from umbra's --stats=json for each run (medians are shown). */
enum bench_metric {
	BM_EXITS,	/* exits_total */
	BM_TRAPS,	/* shadow.traps_total */
	BM_FAULTS,	/* shadow.faults */
	BM_PT_WRITES,	/* shadow.emulated_pt_writes */
	BM_ROOT_SWITCH, /* shadow.root_hits + shadow.root_misses */
	BM_ROOT_HIT,	/* shadow.root_hits / BM_ROOT_SWITCH, percent */
	BM_EMULATED,	/* emulated_total */
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
	struct bench_summary cycles; /* guest cycles per iteration */
	double metric[BM_COUNT];     /* medians over the runs; NAN = not applicable */
};

struct bench_report {
	unsigned nwork, nconf;
	const char *const *work;      /* workload names */
	const char *const *work_unit; /* what one iteration is, per workload */
	const char *const *conf;      /* configuration names */
	int shadow, hw;		      /* indexes of the two configurations of the ratio */
	struct bench_cell *cells;     /* nwork * nconf, cells[w * nconf + c] */
};

static inline struct bench_cell *bench_cell(const struct bench_report *r, unsigned w, unsigned c)
{
	return &r->cells[w * r->nconf + c];
}

/* Write @s as one CSV field (RFC 4180: quoted when it holds , " CR LF or edge spaces). */
void bench_csv_field(FILE *f, const char *s);
/* Format @v into @buf: "n/a" for NAN, else with @decimals decimals. */
const char *bench_fmt(char *buf, unsigned len, double v, int decimals);
/* The CSV: a header line, then one line per workload and configuration. */
void bench_write_csv(FILE *f, const struct bench_report *r);
/* The two Markdown tables: cycles per iteration, then the event counts. */
void bench_write_markdown(FILE *f, const struct bench_report *r);

#endif
