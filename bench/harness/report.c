/* SPDX-License-Identifier: MIT */
/*
 * The harness's outputs (benchlib.h): the figures taken from one run's
 * --stats=json, the CSV file (one line per workload and configuration) and
 * the Markdown tables printed on stdout.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/benchlib.h"

const char *const bench_metric_names[BM_COUNT] = {
	[BM_EXITS] = "exits",
	[BM_TRAPS] = "shadow_traps",
	[BM_TRAP_PF] = "traps_pf",
	[BM_TRAP_GP] = "traps_gp",
	[BM_TRAP_BP] = "traps_bp",
	[BM_FAULTS] = "shadow_faults",
	[BM_PT_WRITES] = "pt_write_emulations",
	[BM_STORES] = "shadow_stores",
	[BM_ROOT_SWITCH] = "root_switches",
	[BM_ROOT_HIT] = "root_hit_pct",
	[BM_EMULATED] = "emulated_insns",
	[BM_SCAN] = "code_scan_s",
	[BM_WALL] = "wall_s",
};

/* The Markdown event table's column titles, in enum order. */
static const char *const metric_titles[BM_COUNT] = {
	[BM_EXITS] = "exits",
	[BM_TRAPS] = "shadow traps",
	[BM_TRAP_PF] = "#PF",
	[BM_TRAP_GP] = "#GP",
	[BM_TRAP_BP] = "#BP",
	[BM_FAULTS] = "shadow faults",
	[BM_PT_WRITES] = "PT-write emul.",
	[BM_STORES] = "shadow stores",
	[BM_ROOT_SWITCH] = "root switches",
	[BM_ROOT_HIT] = "root hit %",
	[BM_EMULATED] = "emulated insns",
	[BM_SCAN] = "code scan s",
	[BM_WALL] = "wall s",
};

static double json_or_nan(const char *json, const char *path)
{
	double v;

	return bench_json_number(json, path, &v) ? NAN : v;
}

void bench_metrics_from_json(const char *json, double m[BM_COUNT])
{
	double hits = json_or_nan(json, "shadow.root_hits");
	double misses = json_or_nan(json, "shadow.root_misses");
	static const struct {
		enum bench_metric m;
		const char *path;
	} kinds[] = { { BM_TRAP_PF, "shadow.traps.14" },
		      { BM_TRAP_GP, "shadow.traps.13" },
		      { BM_TRAP_BP, "shadow.traps.3" } };

	m[BM_EXITS] = json_or_nan(json, "exits_total");
	m[BM_TRAPS] = json_or_nan(json, "shadow.traps_total");
	/* umbra lists only the vectors that trapped: absent is 0 in shadow mode. */
	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		double v = json_or_nan(json, kinds[i].path);

		m[kinds[i].m] = isnan(v) && !isnan(m[BM_TRAPS]) ? 0 : v;
	}
	m[BM_FAULTS] = json_or_nan(json, "shadow.faults");
	m[BM_PT_WRITES] = json_or_nan(json, "shadow.emulated_pt_writes");
	m[BM_STORES] = json_or_nan(json, "shadow.stores_replayed");
	m[BM_ROOT_SWITCH] = hits + misses; /* NAN when either is absent */
	m[BM_ROOT_HIT] = bench_ratio(hits * 100.0, hits + misses);
	m[BM_EMULATED] = json_or_nan(json, "emulated_total");
	m[BM_SCAN] = json_or_nan(json, "shadow.code_scan_time_s");
	m[BM_WALL] = json_or_nan(json, "wall_time_s");
}

void bench_csv_field(FILE *f, const char *s)
{
	size_t n = strlen(s);

	if (!strpbrk(s, ",\"\r\n") && (!n || (s[0] != ' ' && s[n - 1] != ' '))) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

const char *bench_fmt(char *buf, unsigned len, double v, int decimals)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.*f", decimals, v);
	return buf;
}

/* A CSV number: empty when NAN. */
static void csv_num(FILE *f, double v, int decimals)
{
	fputc(',', f);
	if (!isnan(v))
		fprintf(f, "%.*f", decimals, v);
}

double bench_cell_ratio(const struct bench_report *r, unsigned w, int num, int den)
{
	const struct bench_cell *a, *b;

	if (num < 0 || den < 0)
		return NAN;
	a = bench_cell(r, w, (unsigned)num);
	b = bench_cell(r, w, (unsigned)den);
	if (a->status || b->status)
		return NAN;
	return bench_ratio(a->per_iter.median, b->per_iter.median);
}

static const int metric_decimals[BM_COUNT] = { [BM_ROOT_HIT] = 1, [BM_SCAN] = 3, [BM_WALL] = 3 };

static const char *unit_name(enum bench_unit u)
{
	return u == BENCH_NS ? "ns" : "cycles";
}

/* The event counts shown for workload @w in configuration @c (NULL: none). */
static const double *metrics_of(const struct bench_report *r, unsigned w, unsigned c)
{
	const struct bench_cell *cell = bench_cell(r, w, c);

	if (cell->status)
		return NULL;
	if (r->boot)
		return r->boot[c].status ? NULL : r->boot[c].metric;
	return cell->metric;
}

/* @cell's events per iteration @s (its traps_op or exits_op), or NAN when not measured. */
static double per_op(const struct bench_cell *cell, const struct bench_summary *s)
{
	return cell->status || !s->n ? NAN : s->median;
}

void bench_write_csv_header(FILE *f)
{
	fputs("guest,workload,iteration,config,status,runs,iters,unit,median,min,max,spread_pct,"
	      "ratio_shadow_hw,ratio_shadow_qemu_tcg,ratio_to_native,boot_s",
	      f);
	for (unsigned m = 0; m < BM_COUNT; m++)
		fprintf(f, ",%s", bench_metric_names[m]);
	fputs(",traps_per_op,exits_per_op\n", f);
}

void bench_write_csv_rows(FILE *f, const struct bench_report *r)
{
	for (unsigned w = 0; w < r->nwork; w++) {
		for (unsigned c = 0; c < r->nconf; c++) {
			const struct bench_cell *cell = bench_cell(r, w, c);
			const double *met = metrics_of(r, w, c);

			bench_csv_field(f, r->guest);
			fputc(',', f);
			bench_csv_field(f, r->work[w]);
			fputc(',', f);
			bench_csv_field(f, r->work_unit[w]);
			fputc(',', f);
			bench_csv_field(f, r->conf[c]);
			fputc(',', f);
			bench_csv_field(f, cell->status ? cell->status : "ok");
			fprintf(f, ",%u,", cell->per_iter.n);
			if (cell->iters)
				fprintf(f, "%llu", (unsigned long long)cell->iters);
			fprintf(f, ",%s", unit_name(r->unit));
			csv_num(f, cell->per_iter.median, 2);
			csv_num(f, cell->per_iter.min, 2);
			csv_num(f, cell->per_iter.max, 2);
			csv_num(f, bench_spread_pct(&cell->per_iter), 1);
			csv_num(f, bench_cell_ratio(r, w, r->shadow, r->hw), 3);
			csv_num(f, bench_cell_ratio(r, w, r->shadow, r->tcg), 3);
			csv_num(f,
				(int)c == r->native ? NAN
						    : bench_cell_ratio(r, w, (int)c, r->native),
				3);
			csv_num(f, r->boot && !cell->status ? r->boot[c].secs.median : NAN, 3);
			for (unsigned m = 0; m < BM_COUNT; m++)
				csv_num(f, met ? met[m] : NAN, metric_decimals[m]);
			csv_num(f, per_op(cell, &cell->traps_op), 4);
			csv_num(f, per_op(cell, &cell->exits_op), 4);
			fputc('\n', f);
		}
	}
}

void bench_write_csv(FILE *f, const struct bench_report *r)
{
	bench_write_csv_header(f);
	bench_write_csv_rows(f, r);
}

/* The footnotes of the Markdown tables: distinct statuses, numbered from 1. */
struct notes {
	const char **text;
	unsigned n, printed;
};

/* The note number of @status (1-based), adding it. */
static unsigned note_of(struct notes *ns, const char *status)
{
	for (unsigned i = 0; i < ns->n; i++)
		if (!strcmp(ns->text[i], status))
			return i + 1;
	ns->text[ns->n] = status;
	return ++ns->n;
}

/* The notes added since the last call. */
static void print_notes(FILE *f, struct notes *ns)
{
	for (; ns->printed < ns->n; ns->printed++)
		fprintf(f, "[%u] %s\n", ns->printed + 1, ns->text[ns->printed]);
}

/* A ratio: 2 decimals, or 2 significant digits below 0.1 (not "0.00"). */
static const char *fmt_ratio(char *buf, unsigned len, double v)
{
	if (!isnan(v) && v < 0.1) {
		snprintf(buf, len, "%.2g", v);
		return buf;
	}
	return bench_fmt(buf, len, v, 2);
}

/* " median ±spread% |" or " n/a [k] |" */
static void per_iter_cell(FILE *f, const struct bench_cell *cell, struct notes *ns)
{
	char b1[64], b2[64];

	if (cell->status) {
		fprintf(f, " n/a [%u] |", note_of(ns, cell->status));
		return;
	}
	bench_fmt(b1, sizeof(b1), cell->per_iter.median, cell->per_iter.median < 100 ? 2 : 0);
	if (cell->per_iter.n > 1) /* one run has no spread */
		fprintf(f, " %s ±%s%% |", b1,
			bench_fmt(b2, sizeof(b2), bench_spread_pct(&cell->per_iter), 1));
	else
		fprintf(f, " %s |", b1);
}

static void write_main_table(FILE *f, const struct bench_report *r, struct notes *ns)
{
	char b[64];

	fputs("| workload | one iteration |", f);
	for (unsigned c = 0; c < r->nconf; c++)
		fprintf(f, " %s |", r->conf[c]);
	fputs(" shadow/hw |", f);
	if (r->tcg >= 0)
		fprintf(f, " shadow/%s |", r->conf[r->tcg]);
	fputs("\n| --- | --- |", f);
	for (unsigned c = 0; c < r->nconf + 1 + (r->tcg >= 0); c++)
		fputs(" ---: |", f);
	fputc('\n', f);
	for (unsigned w = 0; w < r->nwork; w++) {
		fprintf(f, "| %s | %s |", r->work[w], r->work_unit[w]);
		for (unsigned c = 0; c < r->nconf; c++)
			per_iter_cell(f, bench_cell(r, w, c), ns);
		fprintf(f, " %s |",
			fmt_ratio(b, sizeof(b), bench_cell_ratio(r, w, r->shadow, r->hw)));
		if (r->tcg >= 0)
			fprintf(f, " %s |",
				fmt_ratio(b, sizeof(b), bench_cell_ratio(r, w, r->shadow, r->tcg)));
		fputc('\n', f);
	}
	if (r->unit == BENCH_NS)
		fputs("\nMedian nanoseconds per iteration over the runs (CLOCK_MONOTONIC in the "
		      "guest; on the host for native), ±(max-min)/median when there were "
		      "several.\n",
		      f);
	else
		fputs("\nMedian guest TSC cycles per iteration over the runs, ±(max-min)/median "
		      "when there were several.\n",
		      f);
	print_notes(f, ns);
}

/* Each configuration's median over native's, per workload. */
static void write_native_table(FILE *f, const struct bench_report *r)
{
	char b[64];

	fputs("\n| workload |", f);
	for (unsigned c = 0; c < r->nconf; c++)
		if ((int)c != r->native)
			fprintf(f, " %s/%s |", r->conf[c], r->conf[r->native]);
	fputs("\n| --- |", f);
	for (unsigned c = 1; c < r->nconf; c++)
		fputs(" ---: |", f);
	fputc('\n', f);
	for (unsigned w = 0; w < r->nwork; w++) {
		fprintf(f, "| %s |", r->work[w]);
		for (unsigned c = 0; c < r->nconf; c++)
			if ((int)c != r->native)
				fprintf(f, " %s |",
					fmt_ratio(b, sizeof(b),
						  bench_cell_ratio(r, w, (int)c, r->native)));
		fputc('\n', f);
	}
	fputs("\nEach configuration's median over native's, the same program run directly on "
	      "the host: above 1, slower than native (n/a where either did not run).\n",
	      f);
}

/* @first's columns, then the counters'; the first @ntext are text, the rest numbers. */
static void metric_header(FILE *f, const char *first, unsigned ntext)
{
	unsigned col = 0;

	fputs(first, f);
	for (unsigned m = 0; m < BM_COUNT; m++)
		fprintf(f, " %s |", metric_titles[m]);
	fputs("\n|", f);
	for (const char *p = first + 1; *p; p++) /* a "---" per column of @first */
		if (*p == '|')
			fputs(col++ < ntext ? " --- |" : " ---: |", f);
	for (unsigned m = 0; m < BM_COUNT; m++)
		fputs(" ---: |", f);
	fputc('\n', f);
}

static void metric_cells(FILE *f, const double *met)
{
	char b[64];

	for (unsigned m = 0; m < BM_COUNT; m++)
		fprintf(f, " %s |",
			isnan(met[m]) ? "-" : bench_fmt(b, sizeof(b), met[m], metric_decimals[m]));
}

/* A VM per workload and run: the event counts per workload and configuration. */
static void write_event_table(FILE *f, const struct bench_report *r)
{
	unsigned rows = 0;

	for (unsigned i = 0; i < r->nwork * r->nconf; i++)
		rows += !r->cells[i].status;
	if (!rows) {
		fputs("\nNo configuration ran: no event counts.\n", f);
		return;
	}
	fputc('\n', f);
	metric_header(f, "| workload | config |", 2);
	for (unsigned w = 0; w < r->nwork; w++) {
		for (unsigned c = 0; c < r->nconf; c++) {
			const double *met = metrics_of(r, w, c);

			if (!met)
				continue;
			fprintf(f, "| %s | %s |", r->work[w], r->conf[c]);
			metric_cells(f, met);
			fputc('\n', f);
		}
	}
	fputs("\nMedians over the runs of the whole VM run (boot, workload, power-off) from "
	      "umbra's --stats=json; '-': not counted in that mode.\n",
	      f);
}

/* One boot runs every workload: boot time and event counts per configuration. */
static void write_boot_table(FILE *f, const struct bench_report *r, struct notes *ns)
{
	char b[64];

	fputc('\n', f);
	metric_header(f, "| config | boot s |", 1);
	for (unsigned c = 0; c < r->nconf; c++) {
		const struct bench_boot *bt = &r->boot[c];

		if ((int)c == r->native)
			continue;
		fprintf(f, "| %s |", r->conf[c]);
		if (bt->status) {
			fprintf(f, " n/a [%u] |", note_of(ns, bt->status));
			for (unsigned m = 0; m < BM_COUNT; m++)
				fputs(" - |", f);
		} else {
			fprintf(f, " %s |", bench_fmt(b, sizeof(b), bt->secs.median, 1));
			metric_cells(f, bt->metric);
		}
		fputc('\n', f);
	}
	fputs("\nboot s: median time from starting the VM to the guest's first userspace line "
	      "on the console. The counts: medians over the boots of the whole VM run (boot, "
	      "every workload, power-off), from umbra's --stats=json ('-': not counted in that "
	      "mode or configuration; wall s is measured around the process when there are "
	      "no stats).\n",
	      f);
	print_notes(f, ns);
}

/* Whether configuration @c has per-iteration counts from stats marks for any workload. */
static int conf_has_marks(const struct bench_report *r, unsigned c)
{
	for (unsigned w = 0; w < r->nwork; w++) {
		const struct bench_cell *cell = bench_cell(r, w, c);

		if (!cell->status && (cell->traps_op.n || cell->exits_op.n))
			return 1;
	}
	return 0;
}

/* An events-per-iteration figure: 3 significant digits below 100, else whole. */
static const char *fmt_per_op(char *buf, unsigned len, const struct bench_summary *s)
{
	if (!s->n || isnan(s->median))
		snprintf(buf, len, "-");
	else if (s->median >= 100)
		snprintf(buf, len, "%.0f", s->median);
	else
		snprintf(buf, len, "%.3g", s->median);
	return buf;
}

/*
 * The events between each workload's stats marks, per iteration: a traps/op
 * and an exits/op column for each configuration that has them.
 */
static void write_marks_table(FILE *f, const struct bench_report *r)
{
	char b[64];
	unsigned ncols = 0;

	for (unsigned c = 0; c < r->nconf; c++)
		ncols += conf_has_marks(r, c);
	if (!ncols)
		return;
	fputs("\n| workload |", f);
	for (unsigned c = 0; c < r->nconf; c++)
		if (conf_has_marks(r, c))
			fprintf(f, " %s traps/op | %s exits/op |", r->conf[c], r->conf[c]);
	fputs("\n| --- |", f);
	for (unsigned i = 0; i < 2 * ncols; i++)
		fputs(" ---: |", f);
	fputc('\n', f);
	for (unsigned w = 0; w < r->nwork; w++) {
		fprintf(f, "| %s |", r->work[w]);
		for (unsigned c = 0; c < r->nconf; c++) {
			const struct bench_cell *cell = bench_cell(r, w, c);
			const struct bench_summary none = { 0, NAN, NAN, NAN };

			if (!conf_has_marks(r, c))
				continue;
			fprintf(f, " %s |",
				fmt_per_op(b, sizeof(b), cell->status ? &none : &cell->traps_op));
			fprintf(f, " %s |",
				fmt_per_op(b, sizeof(b), cell->status ? &none : &cell->exits_op));
		}
		fputc('\n', f);
	}
	fputs("\nEvents per iteration of each workload alone: umbra's counters at the stats "
	      "marks ubench -m writes around its timed loop (port 0x520), the difference "
	      "over the BENCH line's iterations, medians over the runs. traps: shadow-mode "
	      "monitor traps (0 in hw mode); exits: VM exits ('-': no marks).\n",
	      f);
}

void bench_write_markdown(FILE *f, const struct bench_report *r)
{
	struct notes ns = { calloc((size_t)(r->nwork + 1) * r->nconf + 1, sizeof(char *)), 0, 0 };

	if (!ns.text)
		return;
	write_main_table(f, r, &ns);
	if (r->native >= 0)
		write_native_table(f, r);
	if (r->boot)
		write_boot_table(f, r, &ns);
	else
		write_event_table(f, r);
	write_marks_table(f, r);
	free(ns.text);
}
