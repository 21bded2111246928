// SPDX-License-Identifier: MIT
/*
 * Integration test of the hw-mode instruction fallback: runs images/emul
 * (emul.elf executes clac, stac, int3, int $0x80, xgetbv, movbe, cmpxchg16b,
 * clwb, ... at CPL0 and checks their effects and interrupt frames itself)
 * with --stats=json, and checks its TEST lines, umbra's exit status and the
 * per-mnemonic counts of emulated instructions. The run helper and the
 * NEED_KVM skip follow tests/integration/test_boot.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

#define RUN_TIMEOUT_S 120
#define OUT_MAX	      (64 * 1024)

struct result {
	int status; /* exit status, or -1 if killed by a signal / timed out */
	char out[OUT_MAX];
	char err[OUT_MAX];
};

static const char *umbra_bin(void)
{
	const char *b = getenv("UMBRA");

	return b ? b : "build/san/umbra";
}

static void image_path(char *buf, size_t len, const char *name)
{
	const char *dir = getenv("IMAGES");

	snprintf(buf, len, "%s/%s", dir ? dir : "images", name);
}

static void slurp(const char *path, char *buf, size_t len)
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
static void run_umbra_input(struct result *r, char *const argv[], const char *input)
{
	char outp[] = "/tmp/umbra-test-out-XXXXXX", errp[] = "/tmp/umbra-test-err-XXXXXX";
	char inp[] = "/tmp/umbra-test-in-XXXXXX";
	int ofd = mkstemp(outp), efd = mkstemp(errp), ifd, wst = 0;
	time_t deadline = time(NULL) + RUN_TIMEOUT_S;
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
			fail_msg("umbra did not finish within %d s", RUN_TIMEOUT_S);
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
static void run_umbra(struct result *r, char *const argv[])
{
	run_umbra_input(r, argv, NULL);
}

static struct result *new_result(void)
{
	struct result *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	return r;
}

#define assert_contains(hay, needle)                                                 \
	do {                                                                         \
		if (!strstr((hay), (needle)))                                        \
			fail_msg("expected \"%s\" in output:\n%s", (needle), (hay)); \
	} while (0)

static bool kvm_usable(void)
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

/* ---- helpers ----------------------------------------------------------------- */

/* The count after "\"<mnemonic>\": " inside the "emulated" object, or -1. */
static long emulated_count(const char *err, const char *mnemonic)
{
	const char *obj = strstr(err, "\"emulated\": {");
	char key[64];
	const char *p;

	if (!obj)
		return -1;
	snprintf(key, sizeof(key), "\"%s\": ", mnemonic);
	p = strstr(obj, key);
	if (!p || strchr(obj, '}') < p)
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

/* A TEST line passed, or was skipped for the reason given. */
static bool test_line(const char *out, const char *name, const char *verdict)
{
	char line[128];

	snprintf(line, sizeof(line), "TEST %s %s", name, verdict);
	return strstr(out, line) != NULL;
}

/* ---- guest run (needs KVM) ----------------------------------------------------- */

static void test_emul_guest_hw(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "emul/emul.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=hw", "--stats=json", img, NULL });
	if (strstr(r->out, " FAIL "))
		fail_msg("a guest test failed:\n%s", r->out);
	assert_contains(r->out, "SUMMARY ");
	assert_contains(r->out, " 0 failed\n");
	/* Instructions that every host we run on reports in CPUID. */
	assert_true(test_line(r->out, "int3", "PASS"));
	assert_true(test_line(r->out, "int80", "PASS"));
	assert_true(test_line(r->out, "cmpxchg16b", "PASS"));
	assert_true(test_line(r->out, "clflush", "PASS"));
	assert_int_equal(r->status, 1); /* debug-exit 0: all passed */
	assert_contains(r->err, "{\"mode\": \"hw\"");
	assert_contains(r->err, "\"exit_status\": 1");

	/*
	 * What reached the VMM depends on which instructions KVM's emulator
	 * rejects: on hosts that emulate guest CPL0 (PVM, shared/HOST.md) int3,
	 * int n and cmpxchg16b always do. Where the host runs CPL0 natively
	 * (VMX/SVM) nothing is emulated and the counts are absent.
	 */
	if (strstr(r->err, "\"internal_error\"")) {
		assert_int_equal(emulated_count(r->err, "int3"), 1);
		assert_int_equal(emulated_count(r->err, "int"), 1);
		assert_int_equal(emulated_count(r->err, "cmpxchg16b"), 2);
		if (test_line(r->out, "clac_stac", "PASS") && emulated_count(r->err, "clac") >= 0) {
			assert_int_equal(emulated_count(r->err, "clac"), 1);
			assert_int_equal(emulated_count(r->err, "stac"), 1);
		}
		if (emulated_count(r->err, "xgetbv") >= 0)
			assert_int_equal(emulated_count(r->err, "xgetbv"), 1);
		if (emulated_count(r->err, "clwb") >= 0)
			assert_int_equal(emulated_count(r->err, "clwb"), 1);
		if (emulated_count(r->err, "movbe") >= 0)
			assert_true(test_line(r->out, "movbe", "PASS"));
	}
	free(r);
}

/* The same run in text form lists the mnemonics under "emulated insns". */
static void test_emul_guest_stats_text(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "emul/emul.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=hw", "--stats", img, NULL });
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "  emulated insns       ");
	if (strstr(r->err, "internal_error"))
		assert_contains(r->err, "    int3               1\n");
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emul_guest_hw),
		cmocka_unit_test(test_emul_guest_stats_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
