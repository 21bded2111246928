/* SPDX-License-Identifier: MIT */
/*
 * ubench, the Linux side of `make bench` (issue 7): one static program whose
 * workloads run unchanged in every configuration (inside a Linux guest under
 * Umbra or QEMU, and natively on the host), so that their times compare.
 *
 *   ubench [-q] [-m] [-w] [-k FIRST] [-n ITERS] WORKLOAD...
 *
 * Each workload prints exactly one line, "BENCH <name> <iters> ns=<ns/iter>"
 * (bench/harness/line.c), timed with clock_gettime(CLOCK_MONOTONIC) around
 * the measured loop only. -n sets the iterations of every workload named
 * after it, -q picks the (much smaller) quick counts; the defaults take about
 * 1-5 s each natively on the 2-CPU cloud VM they were tuned on. `ubench true`
 * exits at once: the program the exec workload runs.
 *
 * -m: stats marks, for per-workload event counts under umbra. The k-th
 * workload named (from 0, in argv order; -k FIRST starts at FIRST) writes
 * label 2k to umbra's stats-mark port (devices/stats_mark.c) just before its
 * timed loop and 2k+1 just after it, so umbra's --stats=json "marks" bracket
 * exactly what the BENCH line times. ubench first takes the port with
 * ioperm() and reads it: without umbra's magic there (QEMU, a host, no
 * permission) it marks nothing and carries on. It holds the port only while
 * it writes a mark (see marks_available). stdout is unchanged; stderr
 * gets "MARKS on" or "MARKS off". The harness gives -m only to runs in a VM:
 * a native run must never touch a host's ports.
 *
 * -w: a hardware watchpoint armed for the whole run (perf_event_open, a
 * write breakpoint on a word no workload touches, inherited by the
 * children), so that the same workloads measure what armed debug
 * registers cost a VMM (shadow mode checks what it emulates against them,
 * README "Hardware breakpoints"). stderr gets "WATCH on" or "WATCH off
 * (reason)"; the BENCH lines are unchanged. Not given by the harness.
 */
#include <errno.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static const char *self; /* argv[0], for exec */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "ubench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

/* ---- stats marks (-m) -------------------------------------------------------- */

#define MARK_PORT  0x520      /* umbra's STATS_MARK_PORT */
#define MARK_LEN   4	      /* ... STATS_MARK_LEN */
#define MARK_MAGIC 0x52424d55 /* ... STATS_MARK_MAGIC: "UMBR" */

static int marking;	/* -m, and umbra answered */
static uint64_t mark_k; /* the running workload's index */

/*
 * The port is ours only while a mark is written: a task with an I/O bitmap
 * makes Linux update the TSS and reload TR on every switch to it (an `ltr`,
 * a trap in shadow mode: measured 6.6 per pingpong round trip), which would
 * be counted in the workload. The ioperm() that drops it after a start mark
 * is counted once per workload, a few traps.
 */
static sigjmp_buf probe_jb;

static void probe_fault(int sig)
{
	(void)sig;
	siglongjmp(probe_jb, 1);
}

/*
 * The probe survives a port read that faults although ioperm() allowed it:
 * seen under QEMU with KVM in the nested rig (tools/nested-kvm.sh), where
 * the emulated CPU does not honour the TSS's I/O bitmap for the L2 guest.
 * Then there is no umbra to mark for.
 */
/* ---- an armed watchpoint (-w) ------------------------------------------------ */

static volatile uint64_t watch_word; /* never written: the watchpoint never fires */

/* Arm a write watchpoint on watch_word for this process and its children. */
static void arm_watchpoint(void)
{
	struct perf_event_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_BREAKPOINT;
	a.size = sizeof(a);
	a.bp_type = HW_BREAKPOINT_W;
	a.bp_addr = (uintptr_t)&watch_word;
	a.bp_len = HW_BREAKPOINT_LEN_8;
	a.inherit = 1;
	fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	if (fd < 0)
		fprintf(stderr, "WATCH off (%s)\n", strerror(errno));
	else
		fprintf(stderr, "WATCH on\n");
}

static int marks_available(void)
{
	struct sigaction sa = { .sa_handler = probe_fault }, old;
	volatile int ok = 0;

	if (ioperm(MARK_PORT, MARK_LEN, 1))
		return 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old))
		return 0;
	if (!sigsetjmp(probe_jb, 1))
		ok = inl(MARK_PORT) == MARK_MAGIC;
	sigaction(SIGSEGV, &old, NULL);
	ioperm(MARK_PORT, MARK_LEN, 0);
	return ok;
}

static void mark(uint64_t label)
{
	if (!marking || ioperm(MARK_PORT, MARK_LEN, 1))
		return;
	outl((uint32_t)label, MARK_PORT);
	ioperm(MARK_PORT, MARK_LEN, 0);
}

/* The start of a timed loop: mark 2k, then read the clock. */
static double loop_begin(void)
{
	mark(2 * mark_k);
	return now_ns();
}

/* Its end: read the clock, then mark 2k+1; the elapsed ns since @t0. */
static double loop_end(double t0)
{
	double t = now_ns() - t0;

	mark(2 * mark_k + 1);
	return t;
}

/* Keeps a result alive without a store the compiler could drop. */
static volatile uint64_t sink;

/* ---- the workloads: each runs @n iterations and returns the elapsed ns ---- */

/* One store per fresh 4 KiB page: n demand faults. */
static double w_pf(uint64_t n)
{
	volatile char *p = map_anon(n * PAGE);
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++)
		p[i * PAGE] = 1;
	double t = loop_end(t0);

	munmap((void *)p, n * PAGE);
	return t;
}

static void wait_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("child failed");
}

static double w_fork(uint64_t n)
{
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid)
			_exit(0);
		wait_child(pid);
	}
	return loop_end(t0);
}

/* fork + execve of ubench itself ("true": exits at once) + wait. */
static double w_exec(uint64_t n)
{
	char *const argv[] = { (char *)self, (char *)"true", NULL };
	char *const envp[] = { NULL };
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid) {
			execve(self, argv, envp);
			_exit(127);
		}
		wait_child(pid);
	}
	return loop_end(t0);
}

/* A byte to the child through one pipe, back through the other. */
static double w_pingpong(uint64_t n)
{
	int to[2], from[2];
	char c = 0;
	pid_t pid;

	if (pipe(to) || pipe(from))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		/* Only its own ends open: if the parent dies, read() sees the end. */
		close(to[1]), close(from[0]);
		while (read(to[0], &c, 1) == 1 && c)
			if (write(from[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(to[0]), close(from[1]);
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++) {
		c = 1;
		if (write(to[1], &c, 1) != 1 || read(from[0], &c, 1) != 1)
			die("pipe round trip");
	}
	double t = loop_end(t0);

	c = 0; /* tells the child to exit */
	if (write(to[1], &c, 1) != 1)
		die("write");
	wait_child(pid);
	close(to[1]), close(from[0]);
	return t;
}

static inline uint64_t xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/*
 * n random 8-byte reads over 1 GiB, every page touched first (not timed):
 * the reads miss the TLB nearly every time, which is what the guest MMU
 * configurations differ in.
 */
static double w_randread(uint64_t n)
{
	const size_t len = 1UL << 30, words = len / 8;
	uint64_t *buf = map_anon(len), x = 88172645463325252ULL, sum = 0;

	for (size_t i = 0; i < len / 8; i += PAGE / 8)
		buf[i] = i;
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++) {
		x = xorshift(x);
		sum += buf[x & (words - 1)];
	}
	double t = loop_end(t0);

	sink = sum;
	munmap(buf, len);
	return t;
}

/* Map 64 pages, store to each, unmap. */
static double w_mmap(uint64_t n)
{
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++) {
		volatile char *p = map_anon(64 * PAGE);

		for (unsigned k = 0; k < 64; k++)
			p[k * PAGE] = 1;
		if (munmap((void *)p, 64 * PAGE))
			die("munmap");
	}
	return loop_end(t0);
}

/* Registers only: one xorshift step and a multiply-add per iteration. */
static double w_compute(uint64_t n)
{
	uint64_t x = 2463534242ULL, acc = 1;
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++) {
		x = xorshift(x);
		acc = acc * 6364136223846793005ULL + x;
	}
	double t = loop_end(t0);

	sink = acc;
	return t;
}

/* syscall() rather than getppid(): a libc may cache the answer. */
static double w_syscall(uint64_t n)
{
	uint64_t sum = 0;
	double t0 = loop_begin();

	for (uint64_t i = 0; i < n; i++)
		sum += (uint64_t)syscall(SYS_getppid);
	double t = loop_end(t0);

	sink = sum;
	return t;
}

static const struct workload {
	const char *name;
	double (*fn)(uint64_t);
	uint64_t iters, quick, max; /* default, -q, and the most -n may ask */
} workloads[] = {
	{ "pf", w_pf, 65536, 16384, 65536 }, /* 256 MiB at most: the figure */
	{ "fork", w_fork, 5000, 200, 1ULL << 32 },
	{ "exec", w_exec, 2000, 100, 1ULL << 32 },
	{ "pingpong", w_pingpong, 200000, 2000, 1ULL << 40 },
	{ "randread", w_randread, 1ULL << 26, 1ULL << 22, 1ULL << 40 },
	{ "mmap", w_mmap, 5000, 200, 1ULL << 32 },
	{ "compute", w_compute, 1ULL << 30, 1ULL << 26, 1ULL << 40 },
	{ "syscall", w_syscall, 3000000, 20000, 1ULL << 40 },
};
#define NWORK (sizeof(workloads) / sizeof(workloads[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: ubench [-q] [-m] [-w] [-k FIRST] [-n ITERS] WORKLOAD...\n"
		   "  -q        quick: far fewer iterations\n"
		   "  -m        stats marks around each timed loop, under umbra only\n"
		   "  -w        a hardware watchpoint armed (on an unused word) all along\n"
		   "  -k FIRST  the first workload's index in the mark labels (default 0)\n"
		   "  -n ITERS  iterations of the workloads named after it\n"
		   "workloads (default iterations, quick):\n");
	for (unsigned w = 0; w < NWORK; w++)
		fprintf(f, "  %-9s %llu, %llu\n", workloads[w].name,
			(unsigned long long)workloads[w].iters,
			(unsigned long long)workloads[w].quick);
}

int main(int argc, char **argv)
{
	uint64_t n = 0; /* 0: the workload's default */
	int quick = 0, ran = 0, want_marks = 0;

	self = argv[0];
	if (argc == 2 && !strcmp(argv[1], "true"))
		return 0;
	for (int i = 1; i < argc; i++) {
		const struct workload *wl = NULL;

		if (!strcmp(argv[i], "-q")) {
			quick = 1;
			continue;
		}
		if (!strcmp(argv[i], "-m")) {
			want_marks = 1;
			continue;
		}
		if (!strcmp(argv[i], "-w")) {
			arm_watchpoint();
			continue;
		}
		if (!strcmp(argv[i], "-k") && i + 1 < argc) {
			char *end;

			errno = 0;
			mark_k = strtoull(argv[++i], &end, 10);
			if (errno || *end || argv[i][0] == '-' || mark_k > UINT32_MAX / 2 - 1) {
				fprintf(stderr, "ubench: -k wants a number\n");
				return 2;
			}
			continue;
		}
		if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			char *end;

			errno = 0;
			n = strtoull(argv[++i], &end, 10);
			if (errno || *end || !n || argv[i][0] == '-') {
				fprintf(stderr, "ubench: -n wants a positive number\n");
				return 2;
			}
			continue;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		for (unsigned w = 0; w < NWORK; w++)
			if (!strcmp(argv[i], workloads[w].name))
				wl = &workloads[w];
		if (!wl) {
			fprintf(stderr, "ubench: no workload '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
		uint64_t iters = n ? n : quick ? wl->quick : wl->iters;

		if (iters > wl->max) {
			fprintf(stderr, "ubench: %s: at most %llu iterations\n", wl->name,
				(unsigned long long)wl->max);
			return 2;
		}
		if (want_marks == 1) { /* once, before the first workload */
			marking = marks_available();
			fprintf(stderr, "MARKS %s\n", marking ? "on" : "off");
			want_marks = 2;
		}
		double ns = wl->fn(iters);

		printf("BENCH %s %llu ns=%.2f\n", wl->name, (unsigned long long)iters,
		       ns / (double)iters);
		fflush(stdout); /* one line as soon as it is known, even on a pipe */
		mark_k++;
		ran++;
	}
	if (!ran) {
		usage(stderr);
		return 2;
	}
	return 0;
}
