/* SPDX-License-Identifier: MIT */
/*
 * ubench's workloads (bench/guest/ubench.c) on Linux (driver.h). In a VM,
 * one boot per configuration and run does them all: Debian's kernel with the
 * initramfs plus /ubench (bench/mkinitrd.sh), a script on the kernel command
 * line (bench_linux_script) that prints the userspace marker first (the boot
 * time) and then runs ubench once per workload, with -m: under umbra, each
 * workload's stats marks (devices/stats_mark.c) give its own traps and exits
 * per iteration. "native" runs the same ubench with the same iteration counts
 * directly on the host, without -m: it never touches the host's ports.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/driver.h"

static const struct workload {
	const char *name, *unit;
	uint64_t iters, quick; /* the same in every configuration */
} workloads[] = {
	{ "pf", "one demand page fault (first store to a fresh page)", 65536, 16384 },
	{ "fork", "fork + child _exit + waitpid", 1000, 100 },
	{ "exec", "fork + execve of a static binary + waitpid", 300, 30 },
	{ "pingpong", "pipe round trip between 2 processes", 20000, 1000 },
	/* Every run first touches the whole 1 GiB, untimed: the cost of a boot, not of a read. */
	{ "randread", "one random 8-byte read over 1 GiB", 1ULL << 24, 1ULL << 22 },
	{ "mmap", "mmap 64 pages, touch them, munmap", 1000, 50 },
	{ "compute", "one xorshift+mul-add step", 1ULL << 28, 1ULL << 25 },
	{ "syscall", "getppid() through syscall()", 200000, 10000 },
};
#define NWORK (sizeof(workloads) / sizeof(workloads[0]))

enum kind { UMBRA, QEMU, NATIVE };
struct config {
	const char *name;
	enum kind kind;
	const char *opt;  /* umbra's --mmu=, QEMU's accelerator */
	int cpl0_via_kvm; /* the guest kernel runs at CPL0 under KVM: --hw-timeout */
	const struct bench_variant *variant; /* a --variant configuration's, else NULL */
};
static const struct config base_configs[] = {
	{ "umbra-shadow", UMBRA, "--mmu=shadow", 0, NULL },
	{ "umbra-hw", UMBRA, "--mmu=hw", 1, NULL },
	{ "qemu-tcg", QEMU, "tcg", 0, NULL },
	{ "qemu-kvm", QEMU, "kvm", 1, NULL },
	{ "native", NATIVE, NULL, 0, NULL },
};
#define NBASE (sizeof(base_configs) / sizeof(base_configs[0]))
#define NCONF (NBASE + MAX_VARIANTS) /* the arrays' size; nconf are in use */

/* umbra-shadow, its variants right after it, then the others (setup()). */
static struct config configs[NCONF];
static unsigned nconf;

#define CMDLINE_BASE "console=ttyS0 reboot=k panic=-1 nopti noreplace-smp pci=off quiet"

static unsigned nwork, widx[NWORK];
static const char *wnames[NWORK], *wunits[NWORK], *cnames[NCONF];
static uint64_t witers[NWORK];
static struct bench_cell cells[NWORK * NCONF]; /* cells[w * nconf + c] */
static struct bench_boot boots[NCONF];
static double samples[NWORK][NCONF][MAX_RUNS], boot_s[NCONF][MAX_RUNS];
static double met[NCONF][BM_COUNT][MAX_RUNS];
static double traps_op[NWORK][NCONF][MAX_RUNS], exits_op[NWORK][NCONF][MAX_RUNS];
static char why[NWORK][NCONF][400], boot_why[NCONF][400];
static int gave_up[NCONF]; /* timed out once: its later runs are skipped */
static char cmdline[2048], stats_path[4096], err_path[4200];
static struct bench_report report;

/*
 * Whether this host's KVM takes a guest's user-mode syscall to CPL0. On PVM
 * it stays at CPL3 (shared/HOST.md): a Linux guest whose kernel runs at
 * CPL0 under QEMU's KVM dies when /init makes its first system call, and
 * umbra-hw runs it only through its own syscall entry (vmm/hw_syscall.h),
 * on a KVM that emulates every guest CPL0 instruction. umbra's host probe
 * (in a shadow-mode run of images/hello) says which; asked once, and taken
 * as yes when it cannot tell.
 */
static int user_syscall_reaches_cpl0(const struct bench_opts *o)
{
	static int answer = -1;
	char path[4200], cmd[8800], buf[8192] = "";
	FILE *f;

	if (answer >= 0)
		return answer;
	answer = 1;
	snprintf(path, sizeof(path), "%s/.host-probe.json", o->out_dir);
	snprintf(cmd, sizeof(cmd),
		 "'%s' run --mmu=shadow --stats=json --stats-file '%s' images/hello/hello.elf "
		 ">/dev/null 2>&1",
		 o->umbra, path);
	if (system(cmd) == -1)
		return answer;
	f = fopen(path, "r");
	if (f) {
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
		if (strstr(buf, "\"syscall_cpl\": 3"))
			answer = 0;
	}
	unlink(path);
	return answer;
}

/* Why configuration @c cannot run here, or NULL. */
static const char *unrunnable(const struct bench_opts *o, const struct config *cf)
{
	int kvm = !access("/dev/kvm", R_OK | W_OK);

	if (!bench_selected(o->only_conf, cf->name))
		return "not selected (--configs)";
	if (cf->kind == NATIVE)
		return access(o->ubench, X_OK) ? "not runnable here: ubench is not built" : NULL;
	if (!o->kernel || !o->initrd || access(o->kernel, R_OK) || access(o->initrd, R_OK))
		return "not runnable here: no Linux guest (make linux-images, then make bench)";
	if (cf->kind == UMBRA || !strcmp(cf->opt, "kvm"))
		if (!kvm)
			return "not runnable here: /dev/kvm is not available";
	if (cf->kind == UMBRA && access(o->umbra, X_OK))
		return "not runnable here: umbra is not built";
	if (cf->cpl0_via_kvm) {
		const char *reason = bench_cpl0_unrunnable(
			cf->kind == UMBRA, o->only_conf && bench_selected(o->only_conf, cf->name),
			user_syscall_reaches_cpl0(o));

		if (reason)
			return reason;
	}
	return cf->kind == UMBRA ? NULL : qemu_available(o);
}

static int setup(const struct bench_opts *o, struct progress *p)
{
	char script[1024];
	int len;

	if (!bench_selected(o->guests, "linux"))
		return 0;
	for (unsigned w = 0; w < NWORK; w++)
		if (bench_selected(o->only, workloads[w].name)) {
			widx[nwork] = w;
			wnames[nwork] = workloads[w].name;
			wunits[nwork] = workloads[w].unit;
			witers[nwork++] = o->quick ? workloads[w].quick : workloads[w].iters;
		}
	if (!nwork)
		return 0;
	len = bench_linux_script(script, sizeof(script), wnames, witers, nwork, 1);
	if (len < 0 || snprintf(cmdline, sizeof(cmdline), "%s umbra.run=", CMDLINE_BASE) < 0 ||
	    !bench_base64(script, (size_t)len, cmdline + strlen(cmdline),
			  sizeof(cmdline) - strlen(cmdline))) {
		fprintf(stderr,
			"umbra-bench: the Linux boot script does not fit the command line\n");
		return -1;
	}
	configs[nconf++] = base_configs[0];
	for (unsigned v = 0; v < o->nvariants; v++)
		configs[nconf++] = (struct config){ o->variants[v].name, UMBRA, "--mmu=shadow", 0,
						    &o->variants[v] };
	for (unsigned c = 1; c < NBASE; c++)
		configs[nconf++] = base_configs[c];
	for (unsigned c = 0; c < nconf; c++) {
		const char *st = unrunnable(o, &configs[c]);

		cnames[c] = configs[c].name;
		boots[c] = (struct bench_boot){ .status = st, .secs = bench_summarize(NULL, 0) };
		for (unsigned m = 0; m < BM_COUNT; m++)
			boots[c].metric[m] = NAN;
		for (unsigned w = 0; w < nwork; w++) {
			struct bench_cell *cell = &cells[w * nconf + c];

			cell->status = st;
			cell->per_iter = bench_summarize(NULL, 0);
			cell->traps_op = cell->exits_op = bench_summarize(NULL, 0);
			for (unsigned m = 0; m < BM_COUNT; m++)
				cell->metric[m] = NAN;
		}
		if (!st)
			p->total += o->runs;
		else
			fprintf(stderr, "umbra-bench: linux %s: %s\n", configs[c].name, st);
	}
	snprintf(stats_path, sizeof(stats_path), "%s/.linux-run.json", o->out_dir);
	snprintf(err_path, sizeof(err_path), "%s.stderr", stats_path);
	report = (struct bench_report){ .guest = "linux",
					.unit = BENCH_NS,
					.nwork = nwork,
					.nconf = nconf,
					.work = wnames,
					.work_unit = wunits,
					.conf = cnames,
					.shadow = 0,
					.hw = (int)o->nvariants + 1,
					.tcg = (int)o->nvariants + 2,
					.native = (int)o->nvariants + 4,
					.cells = cells,
					.boot = boots };
	return 0;
}

/* The command that runs configuration @cf; @args has room for 32 entries. */
static void build_argv(const struct bench_opts *o, const struct config *cf, char **args,
		       char nbuf[][24])
{
	int i = 0;

#define A(s) (args[i++] = (char *)(s))
	switch (cf->kind) {
	case UMBRA:
		A(o->umbra), A("run"), A(cf->opt), A("--mem"), A(o->linux_mem);
		/* --shadow-opt: umbra-shadow and its variants. */
		for (unsigned k = 0; !strcmp(cf->opt, "--mmu=shadow") && k < o->nshadow_opts; k++)
			A(o->shadow_opts[k]);
		for (unsigned k = 0; cf->variant && k < cf->variant->nopts; k++)
			A(cf->variant->opts[k]);
		A("--stats=json"), A("--stats-file"), A(stats_path);
		A("--cmdline"), A(cmdline), A("--initrd"), A(o->initrd), A(o->kernel);
		break;
	case QEMU:
		A(o->qemu), A("-accel"), A(cf->opt);
		if (!strcmp(cf->opt, "kvm"))
			A("-cpu"), A("host");
		A("-m"), A(o->linux_mem), A("-nographic"), A("-no-reboot");
		A("-kernel"), A(o->kernel), A("-initrd"), A(o->initrd), A("-append"), A(cmdline);
		break;
	case NATIVE: /* one process, "-n N name" per workload: ubench's own syntax */
		A(o->ubench);
		for (unsigned w = 0; w < nwork; w++) {
			snprintf(nbuf[w], 24, "%llu", (unsigned long long)witers[w]);
			A("-n"), A(nbuf[w]), A(wnames[w]);
		}
		break;
	}
	args[i] = NULL;
#undef A
}

/* A VM boot is long: each workload's result is shown as it comes (@ctx: the config). */
static void on_line(const struct bench_line *b, void *ctx)
{
	fprintf(stderr, "      linux %-12s %-8s %.2f ns/iter x %llu\n", (const char *)ctx, b->name,
		b->per_iter, (unsigned long long)b->iters);
}

/* Boot @c once (run @rep): every workload's sample, the boot time, the counts. */
static void run_one(const struct bench_opts *o, unsigned c, unsigned rep, struct progress *p)
{
	const struct config *cf = &configs[c];
	char *args[32 + MAX_SHADOW_OPTS + BENCH_VARIANT_OPTS_MAX + 3 * NWORK], nbuf[NWORK][24],
		reason[400];
	struct run_spec spec = {
		.argv = args,
		.err_path = err_path,
		.stats_path = cf->kind == UMBRA ? stats_path : NULL,
		.timeout_s = cf->cpl0_via_kvm ? o->hw_timeout_s : o->linux_timeout_s,
		.on_line = on_line,
		.ctx = (void *)cf->name,
	};
	struct run_result res;
	unsigned got = 0;

	build_argv(o, cf, args, nbuf);
	p->done++;
	fprintf(stderr, "[%u/%u] linux  %-12s run %u/%u: %s\n", p->done, p->total, cf->name,
		rep + 1, o->runs, cf->kind == NATIVE ? "running ubench" : "booting");
	run_program(&spec, &res);
	if (res.why[0] && cf->kind != NATIVE && res.last[0])
		snprintf(reason, sizeof(reason), "%.200s (last console line: %.159s)", res.why,
			 res.last);
	else
		snprintf(reason, sizeof(reason), "%s", res.why);
	for (unsigned w = 0; w < nwork; w++) {
		const struct bench_line *b = run_line(&res, wnames[w]);
		struct bench_mark d; /* the workload's events between its stats marks */

		samples[w][c][rep] = traps_op[w][c][rep] = exits_op[w][c][rep] = NAN;
		if (b && b->unit == BENCH_NS) {
			samples[w][c][rep] = b->per_iter;
			cells[w * nconf + c].iters = b->iters;
			if (!bench_mark_delta(res.marks, (unsigned)res.nmarks, w, &d)) {
				traps_op[w][c][rep] = d.traps / (double)b->iters;
				exits_op[w][c][rep] = d.exits / (double)b->iters;
			}
			got++;
		} else {
			snprintf(why[w][c], sizeof(why[w][c]), "failed: %.390s",
				 reason[0] ? reason : "no BENCH line for it");
		}
	}
	boot_s[c][rep] = res.marker_s;
	if (isnan(res.marker_s))
		snprintf(boot_why[c], sizeof(boot_why[c]), "failed: %.390s",
			 reason[0] ? reason : "the guest printed no userspace line");
	if (isnan(res.metric[BM_WALL]))
		res.metric[BM_WALL] = res.wall_s;
	for (unsigned m = 0; m < BM_COUNT; m++)
		met[c][m][rep] = res.metric[m];
	if (res.timed_out && rep + 1 < o->runs) {
		/* It would time out again: the remaining runs would only cost time. */
		gave_up[c] = 1;
		p->total -= o->runs - rep - 1;
	}
	if (reason[0] || got < nwork) {
		p->failures++;
		fprintf(stderr, "[%u/%u] linux  %-12s run %u/%u: FAILED (%u/%u workloads): %s%s\n",
			p->done, p->total, cf->name, rep + 1, o->runs, got, nwork,
			reason[0] ? reason : "missing BENCH lines",
			gave_up[c] ? "; its other runs are skipped" : "");
		return;
	}
	if (cf->kind == NATIVE)
		fprintf(stderr, "[%u/%u] linux  %-12s run %u/%u: %u workloads, %.1f s\n", p->done,
			p->total, cf->name, rep + 1, o->runs, got, res.wall_s);
	else if (!res.have_stats) /* QEMU: no counts */
		fprintf(stderr,
			"[%u/%u] linux  %-12s run %u/%u: boot %.1f s, %u workloads, %.1f s\n",
			p->done, p->total, cf->name, rep + 1, o->runs, res.marker_s, got,
			res.wall_s);
	else
		fprintf(stderr,
			"[%u/%u] linux  %-12s run %u/%u: boot %.1f s, %u workloads, %.0f exits, "
			"%.0f traps, %.1f s\n",
			p->done, p->total, cf->name, rep + 1, o->runs, res.marker_s, got,
			isnan(res.metric[BM_EXITS]) ? 0 : res.metric[BM_EXITS],
			isnan(res.metric[BM_TRAPS]) ? 0 : res.metric[BM_TRAPS], res.wall_s);
}

/* Run @rep: one boot per configuration, in alternating order. */
static void run(const struct bench_opts *o, unsigned rep, struct progress *p)
{
	for (unsigned k = 0; k < nconf; k++) {
		unsigned c = rep % 2 ? nconf - 1 - k : k;

		if (nwork && !boots[c].status && !gave_up[c])
			run_one(o, c, rep, p);
	}
}

static struct bench_report *summarize(const struct bench_opts *o)
{
	if (!nwork)
		return NULL;
	unlink(stats_path);
	unlink(err_path);
	for (unsigned c = 0; c < nconf; c++) {
		if (boots[c].status)
			continue;
		for (unsigned w = 0; w < nwork; w++) {
			struct bench_cell *cell = &cells[w * nconf + c];

			cell->per_iter = bench_summarize(samples[w][c], o->runs);
			cell->traps_op = bench_summarize(traps_op[w][c], o->runs);
			cell->exits_op = bench_summarize(exits_op[w][c], o->runs);
			if (!cell->per_iter.n)
				cell->status = why[w][c]; /* every run failed: say why */
		}
		if (configs[c].kind == NATIVE)
			continue; /* no boot, no VM counts */
		boots[c].secs = bench_summarize(boot_s[c], o->runs);
		for (unsigned m = 0; m < BM_COUNT; m++)
			boots[c].metric[m] = bench_summarize(met[c][m], o->runs).median;
		if (!boots[c].secs.n)
			boots[c].status = boot_why[c];
	}
	return &report;
}

static void list(FILE *f)
{
	for (unsigned w = 0; w < NWORK; w++)
		fprintf(f, " %s", workloads[w].name);
}

const struct guest_driver linux_driver = { "linux", list, setup, run, summarize };
