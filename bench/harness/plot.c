/* SPDX-License-Identifier: MIT */
/*
 * The plot (driver.h): a gnuplot data file (one row per workload: median, min
 * and max time per iteration of every configuration, "-" where it did not
 * run), a gnuplot script drawing them as clustered bars with error bars on a
 * log axis, and gnuplot run on it to write an SVG. The unit (guest cycles or
 * ns) is the report's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/harness/driver.h"

static int write_data(const struct bench_report *r, const char *dat)
{
	FILE *f = fopen(dat, "w");

	if (!f)
		return -1;
	fputs("# workload", f);
	for (unsigned c = 0; c < r->nconf; c++)
		fprintf(f, " %s_median %s_min %s_max", r->conf[c], r->conf[c], r->conf[c]);
	fputc('\n', f);
	for (unsigned w = 0; w < r->nwork; w++) {
		fputs(r->work[w], f);
		for (unsigned c = 0; c < r->nconf; c++) {
			const struct bench_summary *s = &bench_cell(r, w, c)->per_iter;

			/* Under 1 (cycle or ns) cannot show on the log axis: drawn at 1. */
			if (bench_cell(r, w, c)->status || !s->n)
				fputs(" - - -", f);
			else
				fprintf(f, " %.1f %.1f %.1f", fmax(s->median, 1), fmax(s->min, 1),
					fmax(s->max, 1));
		}
		fputc('\n', f);
	}
	return fclose(f);
}

static int write_script(const struct bench_report *r, const char *dat, const char *script,
			const char *svg, const char *title)
{
	FILE *f = fopen(script, "w");

	if (!f)
		return -1;
	fprintf(f,
		"set terminal svg size 960,540 dynamic enhanced font 'sans,12' background rgb "
		"'white'\n"
		"set output '%s'\n"
		"set title \"%s\" noenhanced\n"
		"set style data histograms\n"
		"set style histogram errorbars gap 1 lw 1\n"
		"set style fill solid 0.85 border -1\n"
		"set datafile missing '-'\n"
		"set logscale y\n"
		"set yrange [1:*]\n"
		"set offsets 0, 0, graph 0.08, 0\n"
		"set format y '10^{%%L}'\n"
		"set ylabel '%s per iteration (log; lower is better)'\n"
		"set grid ytics\n"
		"set key outside right top vertical noenhanced\n"
		"set xtics noenhanced\n"
		"plot",
		svg, title, r->unit == BENCH_NS ? "ns" : "guest TSC cycles");
	/* Configurations with data get bars; the others a key entry saying why not. */
	for (unsigned c = 0, n = 0, xtics = 0; c < r->nconf; c++) {
		const char *why = NULL, *sep = n++ ? ", \\\n   " : "";

		for (unsigned w = 0; w < r->nwork && (!w || why); w++)
			why = bench_cell(r, w, c)->status;
		if (why) {
			fprintf(f, "%s keyentry with boxes fs empty lc rgb 'gray' title '%s (%s)'",
				sep, r->conf[c], strncmp(why, "failed", 6) ? "not run" : "failed");
			continue;
		}
		fprintf(f, "%s '%s' using %u:%u:%u%s title '%s'", sep, dat, 2 + 3 * c, 3 + 3 * c,
			4 + 3 * c, xtics++ ? "" : ":xtic(1)", r->conf[c]);
	}
	fputc('\n', f);
	return fclose(f);
}

int plot_svg(const struct bench_report *r, const char *dat, const char *script, const char *svg,
	     const char *title)
{
	char log[4200];
	pid_t pid;
	int status;

	if (!have_program("gnuplot")) {
		fprintf(stderr, "umbra-bench: gnuplot is not installed: no plot written "
				"(apt-get install gnuplot-nox, or ./configure --install-deps); "
				"the table and the CSV are written all the same\n");
		return -1;
	}
	int any = 0;

	for (unsigned i = 0; i < r->nwork * r->nconf; i++)
		any |= !r->cells[i].status;
	if (!any) {
		fprintf(stderr, "umbra-bench: no configuration ran: no plot %s\n", svg);
		return -1;
	}
	if (write_data(r, dat) || write_script(r, dat, script, svg, title)) {
		fprintf(stderr, "umbra-bench: cannot write %s or %s: no plot written\n", dat,
			script);
		return -1;
	}
	/* gnuplot's warnings go to a log file, shown only when it fails. */
	snprintf(log, sizeof(log), "%.4000s.log", script);
	pid = fork();
	if (!pid) {
		if (!freopen(log, "w", stderr))
			_exit(127);
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "umbra-bench: gnuplot failed on %s (see %s): no plot written\n",
			script, log);
		return -1;
	}
	return 0;
}
