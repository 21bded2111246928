/* SPDX-License-Identifier: MIT */
/*
 * testos's workloads (images/testos/bench.c, proc_bench.c) under umbra
 * (driver.h): a VM per workload, configuration and run, started with
 * --cmdline "bench=NAME [iters=N]" and --stats=json; the guest prints guest
 * TSC cycles per iteration. testos boots only through Umbra's ELF contract,
 * so only umbra's two modes run it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/driver.h"

static const struct workload {
	const char *name, *unit;
	uint64_t quick_iters; /* QUICK=1 (0: the guest's default); the full run uses the defaults */
} workloads[] = {
	{ "compute", "one xorshift+mul-add step, CPL3", 1ULL << 26 },
	/* Fewer reads than the default would mostly time the first touch of the 262144 pages. */
	{ "randread", "one random 8-byte read over 1 GiB, CPL3", 0 },
	{ "mmap", "map 64 pages, touch them at CPL3, unmap", 32 },
	{ "fork", "fork + child exit + wait", 50 },
	{ "pingpong", "token round trip between 2 processes", 500 },
	{ "pf", "one demand page fault (first touch)", 16384 },
};
#define NWORK (sizeof(workloads) / sizeof(workloads[0]))

/*
 * umbra-shadow, its --variant configurations, umbra-hw (setup()); shadow
 * mode for all but the last. NCONF sizes the arrays; nconf are in use.
 */
#define NCONF (2 + MAX_VARIANTS)
static const char *conf_names[NCONF];
static const struct bench_variant *conf_variant[NCONF];
static unsigned nconf;
#define IS_HW(c) ((c) == nconf - 1)

static unsigned nwork, widx[NWORK];
static const char *wnames[NWORK], *wunits[NWORK];
static struct bench_cell cells[NWORK * NCONF]; /* cells[w * nconf + c] */
static double samples[NWORK][NCONF][MAX_RUNS], met[NWORK][NCONF][BM_COUNT][MAX_RUNS];
static char why[NWORK][NCONF][400];
static char stats_path[4096], err_path[4200];
static struct bench_report report;

static int setup(const struct bench_opts *o, struct progress *p)
{
	const char *off = NULL;

	if (!bench_selected(o->guests, "testos"))
		return 0;
	for (unsigned w = 0; w < NWORK; w++)
		if (bench_selected(o->only, workloads[w].name)) {
			widx[nwork] = w;
			wnames[nwork] = workloads[w].name;
			wunits[nwork++] = workloads[w].unit;
		}
	if (!nwork)
		return 0;
	if (access("/dev/kvm", R_OK | W_OK))
		off = "not runnable here: /dev/kvm is not available";
	else if (access(o->umbra, X_OK) || access(o->image, R_OK))
		off = "not runnable here: umbra or testos is not built (run make)";
	conf_names[nconf++] = "umbra-shadow";
	for (unsigned v = 0; v < o->nvariants; v++) {
		conf_variant[nconf] = &o->variants[v];
		conf_names[nconf++] = o->variants[v].name;
	}
	conf_names[nconf++] = "umbra-hw";
	for (unsigned c = 0; c < nconf; c++) {
		const char *st = off;

		if (!bench_selected(o->only_conf, conf_names[c]))
			st = "not selected (--configs)";
		for (unsigned w = 0; w < nwork; w++) {
			struct bench_cell *cell = &cells[w * nconf + c];

			cell->status = st;
			cell->per_iter = bench_summarize(NULL, 0); /* no samples: NAN */
			for (unsigned m = 0; m < BM_COUNT; m++)
				cell->metric[m] = NAN;
		}
		if (!st)
			p->total += nwork * o->runs;
		else
			fprintf(stderr, "umbra-bench: testos %s: %s\n", conf_names[c], st);
	}
	snprintf(stats_path, sizeof(stats_path), "%s/.testos-run.json", o->out_dir);
	snprintf(err_path, sizeof(err_path), "%s.stderr", stats_path);
	report = (struct bench_report){ .guest = "testos",
					.unit = BENCH_CYCLES,
					.nwork = nwork,
					.nconf = nconf,
					.work = wnames,
					.work_unit = wunits,
					.conf = conf_names,
					.shadow = 0,
					.hw = (int)nconf - 1,
					.tcg = -1,
					.native = -1,
					.cells = cells };
	return 0;
}

/* One VM: workload @w in configuration @c, run @rep. */
static void run_one(const struct bench_opts *o, unsigned w, unsigned c, unsigned rep,
		    struct progress *p)
{
	const struct workload *wl = &workloads[widx[w]];
	char cmdline[128];
	char *argv[16 + MAX_SHADOW_OPTS + BENCH_VARIANT_OPTS_MAX] = {
		(char *)o->umbra, (char *)"run", (char *)(IS_HW(c) ? "--mmu=hw" : "--mmu=shadow")
	};
	unsigned n = 3;
	struct run_spec spec = { .argv = argv,
				 .err_path = err_path,
				 .stats_path = stats_path,
				 .timeout_s = o->timeout_s };
	struct run_result res;
	const struct bench_line *line = NULL;
	uint64_t iters = o->quick ? wl->quick_iters : 0;

	for (unsigned k = 0; !IS_HW(c) && k < o->nshadow_opts; k++)
		argv[n++] = (char *)o->shadow_opts[k];
	for (unsigned k = 0; conf_variant[c] && k < conf_variant[c]->nopts; k++)
		argv[n++] = (char *)conf_variant[c]->opts[k];
	argv[n++] = (char *)"--mem", argv[n++] = (char *)o->mem;
	argv[n++] = (char *)"--stats=json", argv[n++] = (char *)"--stats-file";
	argv[n++] = stats_path, argv[n++] = (char *)"--cmdline", argv[n++] = cmdline;
	argv[n++] = (char *)o->image, argv[n] = NULL;
	if (iters)
		snprintf(cmdline, sizeof(cmdline), "bench=%s iters=%llu", wl->name,
			 (unsigned long long)iters);
	else
		snprintf(cmdline, sizeof(cmdline), "bench=%s", wl->name);
	p->done++;
	if (!run_program(&spec, &res) && !(line = run_line(&res, wl->name)))
		snprintf(res.why, sizeof(res.why), "the guest printed no 'BENCH %s' line",
			 wl->name);
	else if (!res.why[0] && !res.have_stats)
		snprintf(res.why, sizeof(res.why), "no statistics in %.280s", stats_path);
	if (res.why[0]) {
		p->failures++;
		samples[w][c][rep] = NAN;
		for (unsigned m = 0; m < BM_COUNT; m++)
			met[w][c][m][rep] = NAN;
		snprintf(why[w][c], sizeof(why[w][c]), "failed: %.390s", res.why);
		fprintf(stderr, "[%u/%u] testos %-8s %-12s run %u/%u: FAILED: %s\n", p->done,
			p->total, wl->name, conf_names[c], rep + 1, o->runs, res.why);
		return;
	}
	samples[w][c][rep] = line->per_iter;
	for (unsigned m = 0; m < BM_COUNT; m++)
		met[w][c][m][rep] = res.metric[m];
	cells[w * nconf + c].iters = line->iters;
	fprintf(stderr,
		"[%u/%u] testos %-8s %-12s run %u/%u: %.2f cycles/iter x %llu, %.0f exits, "
		"%.0f traps, %.1f s\n",
		p->done, p->total, wl->name, conf_names[c], rep + 1, o->runs, line->per_iter,
		(unsigned long long)line->iters, res.metric[BM_EXITS],
		isnan(res.metric[BM_TRAPS]) ? 0 : res.metric[BM_TRAPS], res.wall_s);
}

/* Run @rep: each workload in every configuration, in alternating order. */
static void run(const struct bench_opts *o, unsigned rep, struct progress *p)
{
	for (unsigned w = 0; w < nwork; w++)
		for (unsigned k = 0; k < nconf; k++) {
			unsigned c = rep % 2 ? nconf - 1 - k : k;

			if (!cells[w * nconf + c].status)
				run_one(o, w, c, rep, p);
		}
}

static struct bench_report *summarize(const struct bench_opts *o)
{
	if (!nwork)
		return NULL;
	unlink(stats_path);
	unlink(err_path);
	for (unsigned w = 0; w < nwork; w++) {
		for (unsigned c = 0; c < nconf; c++) {
			struct bench_cell *cell = &cells[w * nconf + c];

			if (cell->status)
				continue;
			cell->per_iter = bench_summarize(samples[w][c], o->runs);
			for (unsigned m = 0; m < BM_COUNT; m++)
				cell->metric[m] = bench_summarize(met[w][c][m], o->runs).median;
			if (!cell->per_iter.n)
				cell->status = why[w][c]; /* every run failed: say why */
		}
	}
	return &report;
}

static void list(FILE *f)
{
	for (unsigned w = 0; w < NWORK; w++)
		fprintf(f, " %s", workloads[w].name);
}

const struct guest_driver testos_driver = { "testos", list, setup, run, summarize };
