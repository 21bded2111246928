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
	[BM_FAULTS] = "shadow_faults",
	[BM_PT_WRITES] = "pt_write_emulations",
	[BM_ROOT_SWITCH] = "root_switches",
	[BM_ROOT_HIT] = "root_hit_pct",
	[BM_EMULATED] = "emulated_insns",
	[BM_WALL] = "wall_s",
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

	m[BM_EXITS] = json_or_nan(json, "exits_total");
	m[BM_TRAPS] = json_or_nan(json, "shadow.traps_total");
	m[BM_FAULTS] = json_or_nan(json, "shadow.faults");
	m[BM_PT_WRITES] = json_or_nan(json, "shadow.emulated_pt_writes");
	m[BM_ROOT_SWITCH] = hits + misses; /* NAN when either is absent */
	m[BM_ROOT_HIT] = bench_ratio(hits * 100.0, hits + misses);
	m[BM_EMULATED] = json_or_nan(json, "emulated_total");
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

static double shadow_hw_ratio(const struct bench_report *r, unsigned w)
{
	if (r->shadow < 0 || r->hw < 0)
		return NAN;
	return bench_ratio(bench_cell(r, w, (unsigned)r->shadow)->cycles.median,
			   bench_cell(r, w, (unsigned)r->hw)->cycles.median);
}

static const int metric_decimals[BM_COUNT] = { [BM_ROOT_HIT] = 1, [BM_WALL] = 3 };

void bench_write_csv(FILE *f, const struct bench_report *r)
{
	fputs("workload,iteration,config,status,runs,iters,cycles_median,cycles_min,cycles_max,"
	      "spread_pct,ratio_shadow_hw",
	      f);
	for (unsigned m = 0; m < BM_COUNT; m++)
		fprintf(f, ",%s", bench_metric_names[m]);
	fputc('\n', f);
	for (unsigned w = 0; w < r->nwork; w++) {
		for (unsigned c = 0; c < r->nconf; c++) {
			const struct bench_cell *cell = bench_cell(r, w, c);

			bench_csv_field(f, r->work[w]);
			fputc(',', f);
			bench_csv_field(f, r->work_unit[w]);
			fputc(',', f);
			bench_csv_field(f, r->conf[c]);
			fputc(',', f);
			bench_csv_field(f, cell->status ? cell->status : "ok");
			fprintf(f, ",%u,", cell->cycles.n);
			if (cell->iters)
				fprintf(f, "%llu", (unsigned long long)cell->iters);
			csv_num(f, cell->cycles.median, 2);
			csv_num(f, cell->cycles.min, 2);
			csv_num(f, cell->cycles.max, 2);
			csv_num(f, bench_spread_pct(&cell->cycles), 1);
			csv_num(f, shadow_hw_ratio(r, w), 3);
			for (unsigned m = 0; m < BM_COUNT; m++)
				csv_num(f, cell->status ? NAN : cell->metric[m],
					metric_decimals[m]);
			fputc('\n', f);
		}
	}
}

/* The note number of @status among the distinct ones so far (1-based), adding it. */
static unsigned note_of(const char **notes, unsigned *nnotes, const char *status)
{
	for (unsigned i = 0; i < *nnotes; i++)
		if (!strcmp(notes[i], status))
			return i + 1;
	notes[*nnotes] = status;
	return ++*nnotes;
}

void bench_write_markdown(FILE *f, const struct bench_report *r)
{
	const char **notes = calloc((size_t)r->nwork * r->nconf + 1, sizeof(*notes));
	unsigned nnotes = 0;
	char b1[64], b2[64];

	if (!notes)
		return;

	fputs("| workload | one iteration |", f);
	for (unsigned c = 0; c < r->nconf; c++)
		fprintf(f, " %s |", r->conf[c]);
	fputs(" shadow/hw |\n| --- | --- |", f);
	for (unsigned c = 0; c < r->nconf; c++)
		fputs(" ---: |", f);
	fputs(" ---: |\n", f);
	for (unsigned w = 0; w < r->nwork; w++) {
		fprintf(f, "| %s | %s |", r->work[w], r->work_unit[w]);
		for (unsigned c = 0; c < r->nconf; c++) {
			const struct bench_cell *cell = bench_cell(r, w, c);

			if (cell->status) {
				fprintf(f, " n/a [%u] |", note_of(notes, &nnotes, cell->status));
				continue;
			}
			bench_fmt(b1, sizeof(b1), cell->cycles.median,
				  cell->cycles.median < 100 ? 2 : 0);
			if (cell->cycles.n > 1) /* one run has no spread */
				fprintf(f, " %s ±%s%% |", b1,
					bench_fmt(b2, sizeof(b2), bench_spread_pct(&cell->cycles),
						  1));
			else
				fprintf(f, " %s |", b1);
		}
		fprintf(f, " %s |\n", bench_fmt(b1, sizeof(b1), shadow_hw_ratio(r, w), 2));
	}
	fputs("\nMedian guest TSC cycles per iteration over the runs, ±(max-min)/median "
	      "when there were several.\n",
	      f);
	for (unsigned i = 0; i < nnotes; i++)
		fprintf(f, "[%u] %s\n", i + 1, notes[i]);
	free(notes);

	fputs("\n| workload | config | exits | shadow traps | shadow faults | PT-write emul. | "
	      "root switches | root hit % | emulated insns | wall s |\n"
	      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
	      f);
	for (unsigned w = 0; w < r->nwork; w++) {
		for (unsigned c = 0; c < r->nconf; c++) {
			const struct bench_cell *cell = bench_cell(r, w, c);

			if (cell->status)
				continue;
			fprintf(f, "| %s | %s |", r->work[w], r->conf[c]);
			for (unsigned m = 0; m < BM_COUNT; m++)
				fprintf(f, " %s |",
					isnan(cell->metric[m])
						? "-"
						: bench_fmt(b1, sizeof(b1), cell->metric[m],
							    metric_decimals[m]));
			fputc('\n', f);
		}
	}
	fputs("\nMedians over the runs of the whole VM run (boot, workload, power-off) from "
	      "umbra's "
	      "--stats=json; '-': not counted in that mode.\n",
	      f);
}
