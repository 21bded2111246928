/* SPDX-License-Identifier: MIT */
/*
 * A second real, unmodified guest: Debian's memtest86+ (6.10), booted
 * through umbra's Linux boot protocol in hw mode and in shadow mode
 * (images/memtest/fetch.sh fetches it into a cache; without it the test says
 * so and is skipped, not passed), as three guests:
 *   - the 64-bit image (x64), entered in long mode;
 *   - the 32-bit image (ia32), entered by the 32-bit boot protocol: where
 *     CPUID offers long mode it turns on IA-32e mode and runs its 32-bit
 *     code in compatibility mode on 4-level paging (its screen shows
 *     "[LM]");
 *   - the same with long mode hidden (--cpu=-lm): PAE paging outside long
 *     mode, the PDPTE registers and all ("[PAE]").
 *
 * memtest86+ runs everything at CPL0: its own page tables and IDT, the PIT
 * and TSC calibration, cache control (CR0.CD, wbinvd) in its first test, and
 * then it writes and checks patterns over all of guest RAM. Its console is
 * the serial port (console=ttyS0), drawn with VT100 sequences: every few
 * seconds it sends the screen rows that changed since (VGA memory reads
 * back what it drew, memory.h), so a test that begins and ends between two
 * updates is never named. It never ends by itself: the test stops umbra
 * with SIGTERM (status 16) once the console shows test #4 or a later one
 * (its row "#N  [name]"), or a finished pass, so that tests #0 to #3 (address
 * tests with and without caching, moving inversions of ones and zeros) ran
 * over the whole 64 MiB, and requires that memtest counted no error in
 * either mode.
 * Needs /dev/kvm (skips without it). On PVM hosts, where KVM emulates
 * every CPL0 instruction, the hw-mode runs take tens of minutes: they are
 * skipped there unless MEMTEST_HW is set (make check-slow sets it, and a
 * longer deadline).
 */
#define RUN_TIMEOUT_S 180
#include "run_umbra.h"

#define TARGET_TEST 4 /* stop once memtest shows this test (or a later one) */
#define LOG_MAX	    (8 * 1024 * 1024)
#define CMDLINE	    "console=ttyS0,115200 nosmp"
#define MEMTEST_MEM "64M"

/* One configuration: the image, and what memtest must show it ran in. */
struct memtest_case {
	const char *mmu;     /* --mmu=... */
	const char *flavour; /* fetch.sh's image: x64 or ia32 */
	const char *cpu;     /* a --cpu option, or NULL */
	const char *paging;  /* what its screen shows for its paging mode, or NULL */
};

/* The cached image, fetching it first if needed; false (with why) if unavailable. */
static bool memtest_image(const char *flavour, char *path, size_t len, char *why, size_t wlen)
{
	char script[512], cmd[1200], log[4096] = "";
	FILE *f;
	int st;

	image_path(script, sizeof(script), "memtest/fetch.sh");
	snprintf(cmd, sizeof(cmd), "sh '%s' %s 2>/tmp/umbra-memtest-fetch.log", script, flavour);
	f = popen(cmd, "r");
	if (!f || !fgets(path, (int)len, f)) {
		if (f)
			pclose(f);
		slurp("/tmp/umbra-memtest-fetch.log", log, sizeof(log));
		snprintf(why, wlen, "images/memtest/fetch.sh failed: %.300s", log);
		return false;
	}
	st = pclose(f);
	path[strcspn(path, "\n")] = '\0';
	if (st != 0 || access(path, R_OK)) {
		slurp("/tmp/umbra-memtest-fetch.log", log, sizeof(log));
		snprintf(why, wlen, "images/memtest/fetch.sh failed (status %d): %.300s", st, log);
		return false;
	}
	return true;
}

/* Whether memtest's console ever showed `label` with a nonzero count ("Errors: N"). */
static bool count_nonzero(const char *out, const char *label)
{
	for (const char *p = strstr(out, label); p; p = strstr(p + 1, label)) {
		const char *d = p + strlen(label);

		while (*d == ' ')
			d++;
		if (*d >= '1' && *d <= '9')
			return true;
	}
	return false;
}

/* The highest test number the console showed ("#N  [name]"), or -1. */
static int highest_test(const char *out)
{
	int best = -1;

	for (const char *p = strstr(out, "  ["); p; p = strstr(p + 1, "  [")) {
		const char *d = p;

		while (d > out && d[-1] >= '0' && d[-1] <= '9')
			d--;
		if (d < p && d > out && d[-1] == '#')
			best = atoi(d) > best ? atoi(d) : best;
	}
	return best;
}

struct memtest_run {
	int status;
	bool reached; /* TARGET_TEST or a pass shown before the deadline */
	char *out;    /* the console, NUL-terminated */
	char err[OUT_MAX];
};

/* Boot memtest as `c` says; SIGTERM once TARGET_TEST shows, or at the deadline. */
static void run_memtest(struct memtest_run *r, const struct memtest_case *c, const char *image)
{
	char *argv[16];
	int n = 0;

	char outp[] = "/tmp/umbra-memtest-out-XXXXXX", errp[] = "/tmp/umbra-memtest-err-XXXXXX";
	int ofd = mkstemp(outp), efd = mkstemp(errp), nfd = open("/dev/null", O_RDONLY), wst = 0;
	time_t deadline = time(NULL) + run_timeout_s();
	bool stopped = false;
	pid_t pid;

	assert_true(ofd >= 0 && efd >= 0 && nfd >= 0);
	/* Reachable from a static, so a failing test's longjmp leaks nothing LSan sees. */
	static char *live_out;

	free(live_out);
	live_out = r->out = calloc(1, LOG_MAX);
	assert_non_null(r->out);
	pid = fork();
	argv[n++] = "umbra";
	argv[n++] = "run";
	argv[n++] = (char *)c->mmu;
	if (c->cpu)
		argv[n++] = (char *)c->cpu;
	argv[n++] = "--mem";
	argv[n++] = MEMTEST_MEM;
	argv[n++] = "--stats=json";
	argv[n++] = "--cmdline";
	argv[n++] = CMDLINE;
	argv[n++] = (char *)image;
	argv[n] = NULL;
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(nfd, 0);
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(umbra_bin(), argv);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &wst, WNOHANG);

		if (w == pid)
			break;
		slurp(outp, r->out, LOG_MAX);
		if (!stopped &&
		    (highest_test(r->out) >= TARGET_TEST || count_nonzero(r->out, "Pass:"))) {
			r->reached = true;
			stopped = true;
			kill(pid, SIGTERM);
		} else if (!stopped && time(NULL) > deadline) {
			stopped = true;
			kill(pid, SIGTERM);
		}
		usleep(200000);
	}
	r->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
	slurp(outp, r->out, LOG_MAX);
	slurp(errp, r->err, sizeof(r->err));
	close(ofd);
	close(efd);
	close(nfd);
	unlink(outp);
	unlink(errp);
}

static void test_memtest(void **state)
{
	const struct memtest_case *c = *state;
	char image[600], why[512];
	struct memtest_run r = { 0 };

	NEED_KVM();
	if (!strcmp(c->mmu, "--mmu=hw") && host_is_pvm() && !getenv("MEMTEST_HW")) {
		print_message("SKIP: hw mode on this host (PVM) emulates each of memtest86+'s "
			      "instructions, all CPL0: its first tests take tens of minutes (make "
			      "check-slow runs them; tools/memtest-time.sh times them)\n");
		skip();
	}
	/*
	 * PVM hosts run no compatibility-mode code natively: KVM emulates each
	 * instruction (its insn_emulation counter: 20M in 20 s of Debian's
	 * 686-pae kernel, 2026-12-07), and each of memtest's x87 instructions
	 * comes to umbra's native fallback (since session 37; KVM's emulator
	 * rejects them). Tens of minutes: make check-slow runs them
	 * (MEMTEST_PVM32).
	 */
	if (!strcmp(c->mmu, "--mmu=shadow") && !strcmp(c->flavour, "ia32") && host_is_pvm() &&
	    !getenv("MEMTEST_PVM32")) {
		print_message("SKIP: on this host (PVM) KVM emulates every instruction of 32-bit "
			      "code at CPL3: tens of minutes (make check-slow runs it: "
			      "MEMTEST_PVM32=1; README \"32-bit guests\")\n");
		skip();
	}
	/*
	 * Long mode hidden on PVM: --cpu does not reach the guest's cpuid there
	 * (vmm/cpu_features.c). In shadow mode memtest then shows [LM] (the
	 * check below would skip after minutes of its tests: skip now). In hw
	 * mode it never draws its first screen (session 37: after its first
	 * wait, emulated, 20 minutes without an exit, with IF = 0, polling the
	 * keyboard controller; with long mode shown it runs). Not understood;
	 * perhaps KVM refuses its EFER.LME against the CPUID umbra gave it
	 * while its cpuid says long mode. Not umbra's emulation, which saw one
	 * instruction.
	 */
	if (c->cpu && host_is_pvm()) {
		print_message("SKIP: %s does not reach the guest's cpuid on this host (PVM)%s "
			      "(README \"32-bit guests\")\n",
			      c->cpu,
			      strcmp(c->mmu, "--mmu=hw") ? ""
							 : "; in hw mode memtest86+ never draws "
							   "its first screen with it");
		skip();
	}
	/*
	 * Nested KVM under QEMU's TCG (tools/nested-kvm.sh) stops memtest on PAE
	 * paging after its first screen, QEMU's own -accel kvm -cpu max,-lm as
	 * well as hw mode (session 34): TCG's, not umbra's.
	 */
	if (!strcmp(c->mmu, "--mmu=hw") && c->cpu && host_is_qemu_tcg()) {
		print_message("SKIP: KVM under QEMU's TCG does not run memtest86+ on PAE paging "
			      "(QEMU with KVM stops after its first screen there too)\n");
		skip();
	}
	if (!memtest_image(c->flavour, image, sizeof(image), why, sizeof(why))) {
		print_message("SKIP: memtest86+ is not available: %s\n", why);
		skip();
	}
	run_memtest(&r, c, image);
	if (!r.reached)
		fail_msg("%s %s %s: memtest86+ did not show test #%d within %d s (status %d, "
			 "test #%d last); stderr:\n%.3000s",
			 c->flavour, c->mmu, c->cpu ? c->cpu : "", TARGET_TEST, run_timeout_s(),
			 r.status, highest_test(r.out), r.err);
	/* Stopped by our SIGTERM: umbra's documented status, with its stats. */
	assert_int_equal(r.status, 16);
	assert_contains(r.err, "\"exit_status\": 16");
	assert_contains(r.out, "Memtest86+ v");
	/*
	 * --cpu reaches the guest only where KVM intercepts its cpuid, which
	 * PVM does not (vmm/cpu_features.c): there memtest still sees long mode.
	 */
	if (c->cpu && c->paging && !strstr(r.out, c->paging) && strstr(r.out, "[LM]")) {
		print_message("SKIP: %s did not reach the guest's cpuid (memtest86+ shows [LM]): "
			      "this host does not filter it\n",
			      c->cpu);
		skip();
	}
	if (c->paging)
		assert_contains(r.out, c->paging);
	if (count_nonzero(r.out, "Errors:"))
		fail_msg("%s %s: memtest86+ counted memory errors", c->flavour, c->mmu);
}

static const struct memtest_case cases[] = {
	{ "--mmu=hw", "x64", NULL, NULL },
	{ "--mmu=shadow", "x64", NULL, NULL },
	{ "--mmu=hw", "ia32", NULL, "[LM]" },
	{ "--mmu=shadow", "ia32", NULL, "[LM]" },
	{ "--mmu=hw", "ia32", "--cpu=-lm", "[PAE]" },
	{ "--mmu=shadow", "ia32", "--cpu=-lm", "[PAE]" },
};

#define CASE(name, i)                                             \
	{                                                         \
		name, test_memtest, NULL, NULL, (void *)&cases[i] \
	}

int main(void)
{
	/* MEMTEST_TESTS='*_hw' (a glob) runs only those: make check-slow's. */
	if (getenv("MEMTEST_TESTS"))
		cmocka_set_test_filter(getenv("MEMTEST_TESTS"));
	const struct CMUnitTest tests[] = {
		CASE("test_memtest_hw", 0),	  CASE("test_memtest_shadow", 1),
		CASE("test_memtest32_lm_hw", 2),  CASE("test_memtest32_lm_shadow", 3),
		CASE("test_memtest32_pae_hw", 4), CASE("test_memtest32_pae_shadow", 5),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
