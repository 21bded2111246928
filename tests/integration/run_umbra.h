/* SPDX-License-Identifier: MIT */
/*
 * What every integration test shares: run the umbra binary ($UMBRA, default
 * build/san/umbra) on an image under $IMAGES (default images/) with a
 * timeout, capture its stdout, stderr and exit status, and skip cleanly when
 * /dev/kvm is missing. Included by each tests/integration/test_*.c (one
 * cmocka program each), so every helper is static and may go unused.
 */
#ifndef UMBRA_TESTS_RUN_UMBRA_H
#define UMBRA_TESTS_RUN_UMBRA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RUN_TIMEOUT_S
#define RUN_TIMEOUT_S 120 /* a test file may define its own before including this */
#endif
#ifndef OUT_MAX
#define OUT_MAX (64 * 1024)
#endif

struct result {
	int status; /* exit status, or -1 if killed by a signal / timed out */
	char out[OUT_MAX];
	char err[OUT_MAX];
};

/*
 * RUN_TIMEOUT_S times $UMBRA_TIMEOUT_SCALE (a whole number, default 1):
 * `make check-nested` sets it, since everything there runs under TCG.
 */
static int run_timeout_s(void)
{
	const char *e = getenv("UMBRA_TIMEOUT_SCALE");
	int scale = e ? atoi(e) : 1;

	return RUN_TIMEOUT_S * (scale > 0 ? scale : 1);
}

static __attribute__((unused)) const char *umbra_bin(void)
{
	const char *b = getenv("UMBRA");

	return b ? b : "build/san/umbra";
}

static __attribute__((unused)) void image_path(char *buf, size_t len, const char *name)
{
	const char *dir = getenv("IMAGES");

	snprintf(buf, len, "%s/%s", dir ? dir : "images", name);
}

static __attribute__((unused)) void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

/*
 * Run umbra with NULL-terminated `argv` (argv[0] ignored). Its stdin is a
 * file holding `input`, or /dev/null when `input` is NULL.
 */
static __attribute__((unused)) void run_umbra_input(struct result *r, char *const argv[],
						    const char *input)
{
	char outp[] = "/tmp/umbra-test-out-XXXXXX", errp[] = "/tmp/umbra-test-err-XXXXXX";
	char inp[] = "/tmp/umbra-test-in-XXXXXX";
	int ofd = mkstemp(outp), efd = mkstemp(errp), ifd, wst = 0;
	time_t deadline = time(NULL) + run_timeout_s();
	pid_t pid;

	assert_true(ofd >= 0 && efd >= 0);
	if (input) {
		size_t len = strlen(input);

		ifd = mkstemp(inp);
		assert_true(ifd >= 0);
		assert_int_equal(write(ifd, input, len), (ssize_t)len);
		assert_int_equal(lseek(ifd, 0, SEEK_SET), 0);
	} else {
		ifd = open("/dev/null", O_RDONLY);
		assert_true(ifd >= 0);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ifd, 0);
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(umbra_bin(), argv);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &wst, WNOHANG);

		if (w == pid)
			break;
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &wst, 0);
			fail_msg("umbra did not finish within %d s", run_timeout_s());
		}
		usleep(10000);
	}
	r->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
	slurp(outp, r->out, sizeof(r->out));
	slurp(errp, r->err, sizeof(r->err));
	close(ofd);
	close(efd);
	close(ifd);
	unlink(outp);
	unlink(errp);
	if (input)
		unlink(inp);
	if (r->status == -1)
		fail_msg("umbra was killed by signal %d; stderr:\n%s", WTERMSIG(wst), r->err);
}

/* Run umbra with stdin from /dev/null. */
static __attribute__((unused)) void run_umbra(struct result *r, char *const argv[])
{
	run_umbra_input(r, argv, NULL);
}

/*
 * A test that skips (no /dev/kvm) or fails leaves through cmocka's longjmp
 * before its free(): the last results stay reachable from here, so that
 * LeakSanitizer does not count them as leaks in the san build.
 */
static struct result *live_results[64];

static __attribute__((unused)) struct result *new_result(void)
{
	static unsigned next;
	struct result *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	live_results[next++ % (sizeof(live_results) / sizeof(live_results[0]))] = r;
	return r;
}

#define assert_contains(hay, needle)                                                 \
	do {                                                                         \
		if (!strstr((hay), (needle)))                                        \
			fail_msg("expected \"%s\" in output:\n%s", (needle), (hay)); \
	} while (0)

static __attribute__((unused)) bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

#define NEED_KVM()                                                                                \
	do {                                                                                      \
		if (!kvm_usable()) {                                                              \
			print_message("SKIP: /dev/kvm is not available (%s)\n", strerror(errno)); \
			skip();                                                                   \
		}                                                                                 \
	} while (0)

/*
 * Whether this host is QEMU's TCG (CPUID 0x40000000 reads "TCGTCGTCGTCG"):
 * a nested KVM from tools/nested-kvm.sh. Its emulated CPU makes testos see
 * things no hardware does, so the testos tests leave out prot_rsvd there
 * (hw mode): TCG's reserved-bit #PF error code lacks P (0x8, not 0x9), and
 * its wrmsr takes a non-canonical FS base; left out in every mode, so that
 * the TEST lines compare. (The irqflag_* tests
 * that look at the IRR run there too: shadow mode's TPR masking sets the
 * TPR through KVM there, vmm/host_probe.h.)
 */
#define TCG_TESTOS_SKIPS    "prot_rsvd,user_fs_base_noncanonical"
#define TCG_TESTOS_NR_SKIPS 2

/*
 * What a PVM host (host_is_pvm) does not give testos, measured on
 * 2026-12-07 on an EPYC of family 1Ah. In both modes: the guest's debug
 * registers never reach the code the vCPU runs at real CPL3
 * (KVM_SET_DEBUGREGS is taken, but no breakpoint fires; hw mode misses
 * its data breakpoints the same way).
 */
#define PVM_TESTOS_SKIPS                                                                   \
	"dr_data_write,dr_data_write_pte,dr_data_pte_rmw_string,dr_exec,dr_exec_in_chain," \
	"iret_rf_past_breakpoint"
#define PVM_TESTOS_NR_SKIPS 6
/*
 * And in hw mode, where KVM runs the guest kernel: an interrupt held by
 * IF=0 comes one instruction late after the sti or iretq that opens it
 * (the tick count read right after is one short), and CR4.PKE is taken
 * though CPUID offers no PKU. Shadow mode passes these there.
 */
#define PVM_HW_TESTOS_SKIPS \
	"iret_held_interrupt,irqflag_sti_dr_exec,irqflag_pv_pending,cr4_absent_feature_gp"
#define PVM_HW_TESTOS_NR_SKIPS 4

/*
 * The skip= of a testos run on this host, in hw mode or not: `base` (NULL:
 * none), then what TCG or PVM cannot run (above). A static buffer.
 */
static __attribute__((unused)) const char *testos_skips(bool hw, const char *base, bool tcg,
							bool pvm)
{
	static char buf[512];

	if (pvm)
		print_message("NOTE: the host is PVM: testos runs without %s%s%s\n",
			      PVM_TESTOS_SKIPS, hw ? "," : "", hw ? PVM_HW_TESTOS_SKIPS : "");
	snprintf(buf, sizeof(buf), "skip=%s%s%s%s%s%s%s", base ? base : "",
		 base && (tcg || pvm) ? "," : "", tcg ? TCG_TESTOS_SKIPS : "",
		 tcg && pvm ? "," : "", pvm ? PVM_TESTOS_SKIPS : "", pvm && hw ? "," : "",
		 pvm && hw ? PVM_HW_TESTOS_SKIPS : "");
	return buf;
}

/*
 * Whether /dev/kvm here is PVM (the kvm_pvm module, shared/HOST.md), where
 * KVM emulates every guest CPL0 instruction (about 1 us each): hw mode runs
 * a guest kernel's own loops hundreds of times slower than shadow mode.
 * /sys/module names it whether it is loaded or built in (our hosts of
 * 2026-12-07 build it in: no /proc/modules at all).
 */
static __attribute__((unused)) bool host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static __attribute__((unused)) bool host_is_qemu_tcg(void)
{
	unsigned a, b, c, d;
	char sig[13] = { 0 };

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false;
	__cpuid(0x40000000, a, b, c, d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	if (strcmp(sig, "TCGTCGTCGTCG"))
		return false;
	print_message("NOTE: the host is QEMU TCG: testos runs without %s\n", TCG_TESTOS_SKIPS);
	return true;
}

#endif /* UMBRA_TESTS_RUN_UMBRA_H */
