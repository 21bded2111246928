/* SPDX-License-Identifier: MIT */
/*
 * umbra-bench, the driver of `make bench` (issue 7): runs every workload of
 * both guests (testos under umbra; ubench under Linux in umbra and QEMU, and
 * natively) in every configuration N times, alternating the configurations
 * run by run so that they share the machine's noise, shows a progress line
 * per run on stderr, then prints the Markdown tables on stdout and writes the
 * CSV, the Markdown and the SVG plots into the results directory
 * (timestamped, and as latest.*). Configurations that cannot run here are
 * reported with the reason, never dropped.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/harness/driver.h"

static const struct guest_driver *const guests[] = { &testos_driver, &linux_driver };
#define NGUEST (sizeof(guests) / sizeof(guests[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umbra-bench [OPTIONS]\n"
		"  --umbra PATH          the umbra binary (default vmm/umbra)\n"
		"  --image PATH          testos (default images/testos/testos.elf)\n"
		"  --linux-kernel PATH   the Linux guest's bzImage (none: Linux VMs not run)\n"
		"  --linux-initrd PATH   its initramfs, with /ubench (bench/mkinitrd.sh)\n"
		"  --ubench PATH         ubench for native (default build/rel/bench/ubench)\n"
		"  --qemu PATH           QEMU (default qemu-system-x86_64; installed with\n"
		"                        apt-get when missing and run as root)\n"
		"  --runs N              runs per workload and configuration (default 3;\n"
		"                        --quick: 1)\n"
		"  --quick               fewer iterations, 1 run, short timeouts (also QUICK=1)\n"
		"  --guests LIST         testos,linux (default both)\n"
		"  --workloads LIST      a subset of the workloads, by name (both guests)\n"
		"  --configs LIST        a subset of the configurations: umbra-shadow,\n"
		"                        umbra-hw, qemu-tcg, qemu-kvm, native, and the\n"
		"                        variants' shadow-NAME\n"
		"  --mem SIZE            testos's RAM (default 1G)\n"
		"  --linux-mem SIZE      the Linux guest's RAM (default 2G)\n"
		"  --timeout S           stop a testos VM after S seconds (default 600)\n"
		"  --linux-timeout S     stop a Linux boot after S seconds (default 1800;\n"
		"                        --quick: 400); a configuration that timed out is\n"
		"                        not run again\n"
		"  --hw-timeout S        the same for umbra-hw and qemu-kvm, whose guest kernel\n"
		"                        runs at CPL0 under KVM (on a host without VMX, KVM\n"
		"                        emulates it; default 900; --quick: 60)\n"
		"  --shadow-opt OPT      pass OPT to umbra in umbra-shadow runs only (e.g.\n"
		"                        --shadow-opt=--sensitive=patch: PVM's strategy on a\n"
		"                        host that would pick iopl3); repeatable\n"
		"  --variant NAME:OPTS   one more configuration, shadow-NAME: umbra-shadow with\n"
		"                        the umbra options OPTS added (space-separated), run\n"
		"                        beside the others, e.g. --variant\n"
		"                        'noprefault:--shadow-prefault=off' to measure what\n"
		"                        one mechanism is worth; repeatable, up to 4\n"
		"  --out-dir DIR         results directory (default bench/results)\n"
		"workloads:\n");
	for (unsigned g = 0; g < NGUEST; g++) {
		fprintf(f, "  %-8s", guests[g]->name);
		guests[g]->list(f);
		fputc('\n', f);
	}
}

/* A positive number of at most 1000000, or 0 after saying why. */
static unsigned positive(const char *opt, const char *arg)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (*end || !v || v > 1000000 || arg[0] == '-') {
		fprintf(stderr, "umbra-bench: --%s wants a positive number, not '%s'\n", opt, arg);
		return 0;
	}
	return (unsigned)v;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	enum {
		O_UMBRA = 256,
		O_IMAGE,
		O_RUNS,
		O_QUICK,
		O_WORK,
		O_MEM,
		O_TIMEOUT,
		O_OUT,
		O_KERNEL,
		O_INITRD,
		O_UBENCH,
		O_QEMU,
		O_GUESTS,
		O_CONFIGS,
		O_LMEM,
		O_LTIMEOUT,
		O_HWTIMEOUT,
		O_SHADOWOPT,
		O_VARIANT
	};
	static const struct option lo[] = {
		/* in the enum's order: --NAME of lo[c - O_UMBRA] */
		{ "umbra", 1, 0, O_UMBRA },
		{ "image", 1, 0, O_IMAGE },
		{ "runs", 1, 0, O_RUNS },
		{ "quick", 0, 0, O_QUICK },
		{ "workloads", 1, 0, O_WORK },
		{ "mem", 1, 0, O_MEM },
		{ "timeout", 1, 0, O_TIMEOUT },
		{ "out-dir", 1, 0, O_OUT },
		{ "linux-kernel", 1, 0, O_KERNEL },
		{ "linux-initrd", 1, 0, O_INITRD },
		{ "ubench", 1, 0, O_UBENCH },
		{ "qemu", 1, 0, O_QEMU },
		{ "guests", 1, 0, O_GUESTS },
		{ "configs", 1, 0, O_CONFIGS },
		{ "linux-mem", 1, 0, O_LMEM },
		{ "linux-timeout", 1, 0, O_LTIMEOUT },
		{ "hw-timeout", 1, 0, O_HWTIMEOUT },
		{ "shadow-opt", 1, 0, O_SHADOWOPT },
		{ "variant", 1, 0, O_VARIANT },
		{ "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *q = getenv("QUICK");
	unsigned runs = 0, ltimeout = 0, hwtimeout = 0;
	int c;

	*o = (struct bench_opts){ .umbra = "vmm/umbra",
				  .image = "images/testos/testos.elf",
				  .mem = "1G",
				  .out_dir = "bench/results",
				  .ubench = "build/rel/bench/ubench",
				  .qemu = "qemu-system-x86_64",
				  .linux_mem = "2G",
				  .timeout_s = 600,
				  .quick = q && !strcmp(q, "1") };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		unsigned *num = NULL;

		switch (c) {
		case O_UMBRA: o->umbra = optarg; break;
		case O_IMAGE: o->image = optarg; break;
		case O_QUICK: o->quick = 1; break;
		case O_WORK: o->only = optarg; break;
		case O_MEM: o->mem = optarg; break;
		case O_OUT: o->out_dir = optarg; break;
		case O_KERNEL: o->kernel = optarg; break;
		case O_INITRD: o->initrd = optarg; break;
		case O_UBENCH: o->ubench = optarg; break;
		case O_QEMU: o->qemu = optarg; break;
		case O_GUESTS: o->guests = optarg; break;
		case O_CONFIGS: o->only_conf = optarg; break;
		case O_LMEM: o->linux_mem = optarg; break;
		case O_RUNS: num = &runs; break;
		case O_TIMEOUT: num = &o->timeout_s; break;
		case O_LTIMEOUT: num = &ltimeout; break;
		case O_HWTIMEOUT: num = &hwtimeout; break;
		case O_SHADOWOPT:
			if (o->nshadow_opts == MAX_SHADOW_OPTS || optarg[0] != '-') {
				fprintf(stderr,
					"umbra-bench: --shadow-opt wants an umbra option "
					"(at most %d), not '%s'\n",
					MAX_SHADOW_OPTS, optarg);
				return -1;
			}
			o->shadow_opts[o->nshadow_opts++] = optarg;
			break;
		case O_VARIANT: {
			char err[400];

			if (o->nvariants == MAX_VARIANTS) {
				fprintf(stderr, "umbra-bench: at most %d --variant options\n",
					MAX_VARIANTS);
				return -1;
			}
			if (bench_parse_variant(optarg, &o->variants[o->nvariants], err,
						sizeof(err))) {
				fprintf(stderr, "umbra-bench: --variant %s\n", err);
				return -1;
			}
			for (unsigned k = 0; k < o->nvariants; k++)
				if (!strcmp(o->variants[k].name, o->variants[o->nvariants].name)) {
					fprintf(stderr, "umbra-bench: --variant: %s twice\n",
						o->variants[k].name);
					return -1;
				}
			o->nvariants++;
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
		if (num && !(*num = positive(lo[c - O_UMBRA].name, optarg)))
			return -1;
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	o->runs = runs ? runs : o->quick ? 1 : 3;
	o->linux_timeout_s = ltimeout ? ltimeout : o->quick ? 400 : 1800;
	o->hw_timeout_s = hwtimeout ? hwtimeout : o->quick ? 60 : 900;
	return 0;
}

int bench_selected(const char *list, const char *name)
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

/* The reports that ran; the Markdown and CSV writers take them all. */
static struct bench_report *reports[NGUEST];
static unsigned nreports;
static const char *md_header;
static const struct bench_opts *opts;

static void write_md(FILE *f)
{
	fputs(md_header, f);
	for (unsigned i = 0; i < nreports; i++) {
		if (strcmp(reports[i]->guest, "linux"))
			fprintf(f, "%s### testos (%s, --mem %s): a VM per workload and run\n\n",
				i ? "\n" : "", opts->image, opts->mem);
		else
			fprintf(f,
				"%s### Linux (%s, %s of RAM): ubench (bench/guest/ubench.c), one "
				"boot per configuration and run\n\n",
				i ? "\n" : "", opts->kernel ? opts->kernel : "no kernel given",
				opts->linux_mem);
		bench_write_markdown(f, reports[i]);
	}
}

static void write_csv(FILE *f)
{
	bench_write_csv_header(f);
	for (unsigned i = 0; i < nreports; i++)
		bench_write_csv_rows(f, reports[i]);
}

/* Write @dir/@stamp.@ext and @dir/latest.@ext with @fn. */
static int write_both(const char *dir, const char *stamp, const char *ext, void (*fn)(FILE *))
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
		fn(f);
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

/* The plot of report @r: @dir/@stamp@suffix.svg and latest@suffix.svg. */
static int plot(const struct bench_report *r, const char *dir, const char *stamp,
		const char *suffix, const char *title)
{
	char path[3][4096], latest[4096];

	snprintf(path[0], sizeof(path[0]), "%s/%s%s.dat", dir, stamp, suffix);
	snprintf(path[1], sizeof(path[1]), "%s/%s%s.gp", dir, stamp, suffix);
	snprintf(path[2], sizeof(path[2]), "%s/%s%s.svg", dir, stamp, suffix);
	if (plot_svg(r, path[0], path[1], path[2], title))
		return 0; /* said why; the tables stand without it */
	snprintf(latest, sizeof(latest), "%s/latest%s.svg", dir, suffix);
	if (copy_file(path[2], latest))
		return -1;
	fprintf(stderr, "umbra-bench: wrote %s and %s\n", path[2], latest);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct progress p = { 0, 0, 0 };
	char stamp[32], header[2048], cpu[128], title[256], sopts[1024] = "";
	time_t t = time(NULL);
	struct tm tm;
	struct utsname uts;
	int bad = 0;

	if (parse_opts(argc, argv, &o))
		return 2;
	if (o.runs > MAX_RUNS) {
		fprintf(stderr, "umbra-bench: at most %d runs\n", MAX_RUNS);
		return 2;
	}
	if (mkdir(o.out_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "umbra-bench: cannot create %s: %s\n", o.out_dir, strerror(errno));
		return 2;
	}
	for (unsigned g = 0; g < NGUEST; g++)
		if (guests[g]->setup(&o, &p))
			return 2;
	/* Run by run, so that a slow drift of the machine hits every configuration. */
	for (unsigned rep = 0; rep < o.runs; rep++)
		for (unsigned g = 0; g < NGUEST; g++)
			guests[g]->run(&o, rep, &p);
	for (unsigned g = 0; g < NGUEST; g++) {
		struct bench_report *r = guests[g]->report(&o);

		if (r)
			reports[nreports++] = r;
	}
	if (!nreports) {
		fprintf(stderr, "umbra-bench: --guests/--workloads select nothing\n");
		return 2;
	}

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	cpu_model(cpu, sizeof(cpu));
	if (uname(&uts))
		snprintf(uts.release, sizeof(uts.release), "?");
	for (unsigned i = 0; i < o.nshadow_opts; i++)
		snprintf(sopts + strlen(sopts), sizeof(sopts) - strlen(sopts), "%s%s",
			 i ? " " : "; umbra-shadow with ", o.shadow_opts[i]);
	for (unsigned i = 0; i < o.nvariants; i++) {
		snprintf(sopts + strlen(sopts), sizeof(sopts) - strlen(sopts),
			 "; %s: umbra-shadow with", o.variants[i].name);
		for (unsigned k = 0; k < o.variants[i].nopts; k++)
			snprintf(sopts + strlen(sopts), sizeof(sopts) - strlen(sopts), " %s",
				 o.variants[i].opts[k]);
	}

	snprintf(header, sizeof(header),
		 "Umbra benchmarks, %04d-%02d-%02d %02d:%02d UTC, %ld CPUs (%s), host Linux %s; %u "
		 "run%s per configuration%s%s.\n\n",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		 sysconf(_SC_NPROCESSORS_ONLN), cpu, uts.release, o.runs, o.runs > 1 ? "s" : "",
		 o.quick ? ", QUICK (fewer iterations, short timeouts)" : "", sopts);
	opts = &o;
	md_header = header;
	write_md(stdout);
	fflush(stdout);
	bad |= write_both(o.out_dir, stamp, "csv", write_csv) |
	       write_both(o.out_dir, stamp, "md", write_md);
	for (unsigned i = 0; i < nreports; i++) {
		int lx = !strcmp(reports[i]->guest, "linux");

		snprintf(title, sizeof(title), "Umbra: %s, %s per iteration, %04d-%02d-%02d%s",
			 lx ? "Linux guest (ubench)" : "testos", lx ? "ns" : "guest cycles",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, o.quick ? " (QUICK)" : "");
		bad |= plot(reports[i], o.out_dir, stamp, lx ? "-linux" : "", title);
	}
	if (p.failures)
		fprintf(stderr, "umbra-bench: %u of %u runs failed (see the tables' notes)\n",
			p.failures, p.total);
	return p.failures || bad ? 1 : 0;
}
