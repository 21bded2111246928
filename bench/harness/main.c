/* SPDX-License-Identifier: MIT */
/*
 * umbra-bench, the driver of `make bench` (issue 7): runs every workload in
 * every configuration N times, alternating the configurations run by run so
 * that they share the machine's noise, shows a progress line per run on
 * stderr, then prints the Markdown tables on stdout and writes the CSV, the
 * Markdown and the SVG plot into the results directory (timestamped, and as
 * latest.*). Configurations that cannot run here are reported, never dropped.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/harness/driver.h"

/* testos's workloads (images/testos/bench.c, proc_bench.c). */
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

#define NOT_HERE "not runnable here: needs the Linux guest of issue 6"
static const struct config {
	const char *name, *mmu, *unrunnable;
} configs[] = {
	{ "umbra-shadow", "shadow", NULL },
	{ "umbra-hw", "hw", NULL },
	{ "qemu-tcg", NULL, NOT_HERE },
	{ "qemu-kvm", NULL, NOT_HERE },
};
#define NCONF (sizeof(configs) / sizeof(configs[0]))

struct opts {
	const char *umbra, *image, *mem, *out_dir, *only;
	unsigned runs, timeout_s;
	int quick;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umbra-bench [OPTIONS]\n"
		"  --umbra PATH      the umbra binary (default vmm/umbra)\n"
		"  --image PATH      the guest (default images/testos/testos.elf)\n"
		"  --runs N          runs per workload and configuration (default 3; --quick: 1)\n"
		"  --quick           fewer iterations per workload, 1 run (also QUICK=1)\n"
		"  --workloads LIST  comma-separated subset of:");
	for (unsigned w = 0; w < NWORK; w++)
		fprintf(f, " %s", workloads[w].name);
	fprintf(f, "\n"
		   "  --mem SIZE        guest RAM (default 1G)\n"
		   "  --timeout S       stop a VM after S seconds (default 600)\n"
		   "  --out-dir DIR     results directory (default bench/results)\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "umbra", 1, 0, 'u' },	  { "image", 1, 0, 'i' },     { "runs", 1, 0, 'n' },
		{ "quick", 0, 0, 'q' },	  { "workloads", 1, 0, 'w' }, { "mem", 1, 0, 'm' },
		{ "timeout", 1, 0, 't' }, { "out-dir", 1, 0, 'o' },   { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *q = getenv("QUICK");
	int c, runs = -1;
	char *end;

	*o = (struct opts){ "vmm/umbra", "images/testos/testos.elf", "1G", "bench/results", NULL, 3,
			    600,	 q && !strcmp(q, "1") };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'u': o->umbra = optarg; break;
		case 'i': o->image = optarg; break;
		case 'q': o->quick = 1; break;
		case 'w': o->only = optarg; break;
		case 'm': o->mem = optarg; break;
		case 'o': o->out_dir = optarg; break;
		case 'n':
		case 't': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !v || v > 1000000) {
				fprintf(stderr,
					"umbra-bench: --%s wants a positive number, not '%s'\n",
					c == 'n' ? "runs" : "timeout", optarg);
				return -1;
			}
			if (c == 'n')
				runs = (int)v;
			else
				o->timeout_s = (unsigned)v;
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	o->runs = runs > 0 ? (unsigned)runs : o->quick ? 1 : 3;
	return 0;
}

/* Whether workload @name is in the comma-separated @list (NULL: all). */
static int selected(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return 1;
	return !list;
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown CPU");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(buf, len, "%.*s", (int)strcspn(colon + 2, "\n"), colon + 2);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* Write the CSV or Markdown to @dir/@stamp.@ext and @dir/latest.@ext. */
static int write_both(const char *dir, const char *stamp, const char *ext,
		      void (*fn)(FILE *, const struct bench_report *), const char *header,
		      const struct bench_report *r)
{
	const char *names[2] = { stamp, "latest" };
	char path[4096];

	for (int i = 0; i < 2; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.%s", dir, names[i], ext);
		if (!(f = fopen(path, "w"))) {
			fprintf(stderr, "umbra-bench: cannot write %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		if (header)
			fputs(header, f);
		fn(f, r);
		if (fclose(f))
			return -1;
		if (!i)
			fprintf(stderr, "umbra-bench: wrote %s and %s/latest.%s\n", path, dir, ext);
	}
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
	char buf[8192];
	size_t n;
	int bad = !out;

	while (out && (n = fread(buf, 1, sizeof(buf), in)))
		bad |= fwrite(buf, 1, n, out) != n;
	if (out)
		bad |= fclose(out) != 0;
	if (in)
		fclose(in);
	return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct bench_cell cells[NWORK * NCONF];
	const char *wnames[NWORK], *wunits[NWORK], *cnames[NCONF];
	unsigned nwork = 0, widx[NWORK], nruns_total = 0, done = 0, failures = 0;
	static double cyc[NWORK][NCONF][64], met[NWORK][NCONF][BM_COUNT][64];
	static char why[NWORK][NCONF][300];
	char stamp[32], header[512], cpu[128], stats_path[4000], path[3][4096];
	const char *kvm_missing = access("/dev/kvm", R_OK | W_OK)
					  ? "not runnable here: /dev/kvm is "
					    "not available"
					  : NULL;
	time_t t = time(NULL);
	struct tm tm;

	if (parse_opts(argc, argv, &o))
		return 2;
	if (o.runs > 64) {
		fprintf(stderr, "umbra-bench: at most 64 runs\n");
		return 2;
	}
	for (unsigned w = 0; w < NWORK; w++)
		if (selected(o.only, workloads[w].name)) {
			widx[nwork] = w;
			wnames[nwork] = workloads[w].name;
			wunits[nwork++] = workloads[w].unit;
		}
	if (!nwork) {
		fprintf(stderr, "umbra-bench: --workloads '%s' names no workload\n", o.only);
		return 2;
	}
	if (access(o.umbra, X_OK) || access(o.image, R_OK)) {
		fprintf(stderr, "umbra-bench: need %s and %s (run make first)\n", o.umbra, o.image);
		return 2;
	}
	if (mkdir(o.out_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "umbra-bench: cannot create %s: %s\n", o.out_dir, strerror(errno));
		return 2;
	}
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	snprintf(stats_path, sizeof(stats_path), "%s/%s.run.json", o.out_dir, stamp);

	memset(cells, 0, sizeof(cells));
	for (unsigned c = 0; c < NCONF; c++) {
		cnames[c] = configs[c].name;
		for (unsigned w = 0; w < nwork; w++) {
			struct bench_cell *cell = &cells[w * NCONF + c];

			cell->status = configs[c].unrunnable ? configs[c].unrunnable : kvm_missing;
			cell->cycles = bench_summarize(NULL, 0); /* no samples: NAN */
			for (unsigned m = 0; m < BM_COUNT; m++)
				cell->metric[m] = NAN;
		}
		if (!configs[c].unrunnable && !kvm_missing)
			nruns_total += nwork * o.runs;
		else
			fprintf(stderr, "umbra-bench: %s: %s\n", configs[c].name,
				configs[c].unrunnable ? configs[c].unrunnable : kvm_missing);
	}

	/* Run by run: each workload in every configuration, in alternating order. */
	for (unsigned rep = 0; rep < o.runs; rep++) {
		for (unsigned w = 0; w < nwork; w++) {
			for (unsigned k = 0; k < NCONF; k++) {
				unsigned c = rep % 2 ? NCONF - 1 - k : k;
				const struct workload *wl = &workloads[widx[w]];
				struct run_spec spec = {
					.umbra = o.umbra,
					.image = o.image,
					.mmu = configs[c].mmu,
					.mem = o.mem,
					.workload = wl->name,
					.iters = o.quick ? wl->quick_iters : 0,
					.timeout_s = o.timeout_s,
					.stats_path = stats_path,
				};
				struct run_result res;

				if (cells[w * NCONF + c].status)
					continue;
				done++;
				if (run_umbra(&spec, &res)) {
					failures++;
					cyc[w][c][rep] = NAN;
					for (unsigned m = 0; m < BM_COUNT; m++)
						met[w][c][m][rep] = NAN;
					snprintf(why[w][c], sizeof(why[w][c]), "failed: %s",
						 res.why);
					fprintf(stderr,
						"[%u/%u] %-8s %-12s run %u/%u: FAILED: %s\n", done,
						nruns_total, wl->name, configs[c].name, rep + 1,
						o.runs, res.why);
					continue;
				}
				cyc[w][c][rep] = res.line.cycles_per_iter;
				for (unsigned m = 0; m < BM_COUNT; m++)
					met[w][c][m][rep] = res.metric[m];
				cells[w * NCONF + c].iters = res.line.iters;
				fprintf(stderr,
					"[%u/%u] %-8s %-12s run %u/%u: %.2f cycles/iter x %llu, "
					"%.0f exits, %.0f traps, %.1f s\n",
					done, nruns_total, wl->name, configs[c].name, rep + 1,
					o.runs, res.line.cycles_per_iter,
					(unsigned long long)res.line.iters, res.metric[BM_EXITS],
					isnan(res.metric[BM_TRAPS]) ? 0 : res.metric[BM_TRAPS],
					res.wall_s);
			}
		}
	}
	unlink(stats_path);
	snprintf(path[0], sizeof(path[0]), "%.4000s.stderr", stats_path);
	unlink(path[0]);

	for (unsigned w = 0; w < nwork; w++) {
		for (unsigned c = 0; c < NCONF; c++) {
			struct bench_cell *cell = &cells[w * NCONF + c];

			if (cell->status)
				continue;
			cell->cycles = bench_summarize(cyc[w][c], o.runs);
			for (unsigned m = 0; m < BM_COUNT; m++)
				cell->metric[m] = bench_summarize(met[w][c][m], o.runs).median;
			if (!cell->cycles.n)
				cell->status = why[w][c]; /* every run failed: say why */
		}
	}

	struct bench_report r = { .nwork = nwork,
				  .nconf = NCONF,
				  .work = wnames,
				  .work_unit = wunits,
				  .conf = cnames,
				  .shadow = 0,
				  .hw = 1,
				  .cells = cells };

	cpu_model(cpu, sizeof(cpu));
	snprintf(header, sizeof(header),
		 "Umbra benchmarks, %04d-%02d-%02d %02d:%02d UTC, %ld CPUs (%s); guest %s, "
		 "--mem %s; %u run%s per configuration%s.\n\n",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		 sysconf(_SC_NPROCESSORS_ONLN), cpu, o.image, o.mem, o.runs, o.runs > 1 ? "s" : "",
		 o.quick ? ", QUICK (fewer iterations)" : "");
	fputs(header, stdout);
	bench_write_markdown(stdout, &r);
	fflush(stdout);

	int bad = write_both(o.out_dir, stamp, "csv", bench_write_csv, NULL, &r) |
		  write_both(o.out_dir, stamp, "md", bench_write_markdown, header, &r);

	snprintf(path[0], sizeof(path[0]), "%s/%s.dat", o.out_dir, stamp);
	snprintf(path[1], sizeof(path[1]), "%s/%s.gp", o.out_dir, stamp);
	snprintf(path[2], sizeof(path[2]), "%s/%s.svg", o.out_dir, stamp);
	snprintf(header, sizeof(header), "Umbra: guest cycles per iteration, %04d-%02d-%02d%s",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, o.quick ? " (QUICK)" : "");
	if (!plot_svg(&r, path[0], path[1], path[2], header)) {
		char latest[4096];

		snprintf(latest, sizeof(latest), "%s/latest.svg", o.out_dir);
		bad |= copy_file(path[2], latest);
		fprintf(stderr, "umbra-bench: wrote %s and %s\n", path[2], latest);
	}
	if (failures)
		fprintf(stderr, "umbra-bench: %u of %u runs failed (see the table's notes)\n",
			failures, nruns_total);
	return failures || bad ? 1 : 0;
}
