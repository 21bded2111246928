// SPDX-License-Identifier: MIT
/*
 * Integration test for testos (images/testos): run the MMU conformance
 * suite in hw mode with the umbra binary ($UMBRA, default build/san/umbra) on
 * $IMAGES/testos/testos.elf and check that every TEST line is PASS (or SKIP
 * for a feature CPUID does not report), the SUMMARY line, the number of
 * tests, and exit status 0; that the stress checksum is the same for the
 * same seed; that a run with no test reports failure (status 3); and that
 * the benchmark workloads (bench=) print well-formed BENCH lines.
 * Needs /dev/kvm (skips without it).
 */
#include "run_umbra.h"

/* ---- testos ---------------------------------------------------------------- */

/* Tests registered in testos (the TEST() entries of images/testos/tests); update when adding one.
 */
#define TESTOS_NR_TESTS 94

/*
 * The test left out of the hw-mode run on our hosts (KVM provided by kvm_pvm,
 * shared/HOST.md), with what it reports there: proc_int80: `int $0x80` at
 * CPL3 raises #UD instead of going through the DPL3 gate: "saw the process
 * killed by vector 6 error 0x0 at rip <the int>" (the process model's own
 * calls use int3 there, images/testos/proc.h). user_syscall, user_read_ok
 * and user_fs_base_site, whose `syscall` at CPL3 stays at CPL3 there, run
 * since hw mode has its own syscall entry on such hosts (vmm/hw_syscall.h).
 */
#define TESTOS_SKIP_NAMES  "proc_int80"
#define TESTOS_NR_EXCLUDED 1

static unsigned count_lines(const char *out, const char *prefix, const char *contains)
{
	unsigned n = 0;
	size_t pl = strlen(prefix);

	for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[512];

		if (len >= sizeof(line) || strncmp(p, prefix, pl))
			continue;
		memcpy(line, p, len);
		line[len] = '\0';
		if (!contains || strstr(line, contains))
			n++;
	}
	return n;
}

static void run_testos(struct result *r, const char *cmdline)
{
	char img[512];

	image_path(img, sizeof(img), "testos/testos.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=hw", "--mem", "512M", "--cmdline",
				 (char *)cmdline, img, NULL });
}

static void test_testos_suite_hw(void **state)
{
	struct result *r = new_result();
	unsigned tests, passed, skipped, failed;
	char summary[128], skipline[64];

	(void)state;
	bool tcg, pvm;

	NEED_KVM();
	tcg = host_is_qemu_tcg();
	pvm = host_is_pvm();
	run_testos(r, testos_skips(true, TESTOS_SKIP_NAMES, tcg, pvm));
	tests = count_lines(r->out, "TEST ", NULL);
	passed = count_lines(r->out, "TEST ", " PASS");
	skipped = count_lines(r->out, "TEST ", " SKIP");
	failed = count_lines(r->out, "TEST ", " FAIL");
	if (failed || tests != passed + skipped)
		fail_msg("%u TEST lines, %u PASS, %u SKIP, %u FAIL:\n%s\nstderr:\n%s", tests,
			 passed, skipped, failed, r->out, r->err);
	assert_int_equal(tests, TESTOS_NR_TESTS);
	assert_true(passed >= 25);
	assert_true(skipped >= TESTOS_NR_EXCLUDED + (tcg ? TCG_TESTOS_NR_SKIPS : 0u) +
				       (pvm ? PVM_TESTOS_NR_SKIPS + PVM_HW_TESTOS_NR_SKIPS : 0u));
	snprintf(skipline, sizeof(skipline), "\nSKIPPED %u\n", skipped);
	assert_contains(r->out, skipline);
	snprintf(summary, sizeof(summary), "\nSUMMARY %u passed, 0 failed\n", passed);
	assert_contains(r->out, summary);
	assert_contains(r->out, "\nSTRESS seed=");
	if (r->status != 0)
		fail_msg("exit status %d, expected 0; stderr:\n%s", r->status, r->err);
	free(r);
}

static void stress_line(const char *out, char *buf, size_t len)
{
	const char *p = strstr(out, "STRESS seed=");
	size_t n;

	assert_non_null(p);
	n = strcspn(p, "\n");
	assert_true(n < len);
	memcpy(buf, p, n);
	buf[n] = '\0';
}

/* The stress checksum depends only on the seed. */
static void test_testos_stress_deterministic(void **state)
{
	struct result *r = new_result();
	char a[128], b[128];

	(void)state;
	NEED_KVM();
	run_testos(r, "test=stress seed=12345 ops=2000");
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "TEST stress PASS\n");
	stress_line(r->out, a, sizeof(a));
	assert_non_null(strstr(a, "seed=12345 ops=2000 checksum="));
	run_testos(r, "test=stress seed=12345 ops=2000");
	assert_int_equal(r->status, 0);
	stress_line(r->out, b, sizeof(b));
	assert_string_equal(a, b);
	run_testos(r, "test=stress seed=54321 ops=2000");
	assert_int_equal(r->status, 0);
	stress_line(r->out, b, sizeof(b));
	assert_string_not_equal(a + strlen("STRESS seed=12345"), b + strlen("STRESS seed=54321"));
	free(r);
}

/* No test selected: not a success (debug-exit 1 -> status 3). */
static void test_testos_no_test(void **state)
{
	struct result *r = new_result();

	(void)state;
	NEED_KVM();
	run_testos(r, "test=no_such_test");
	assert_contains(r->out, "SUMMARY 0 passed, 0 failed\n");
	assert_int_equal(r->status, 3);
	free(r);
}

/*
 * A guest that maps PML4 slot 509 before it writes LSTAR (testos's
 * claim_slot509=1). On a PVM host hw mode's syscall entry needs the slot
 * (vmm/hw_syscall.h): the VM stops with status 14 and says why. Elsewhere
 * hw mode leaves the slot to the guest, and the test runs.
 */
static void test_testos_slot509_claimed(void **state)
{
	struct result *r = new_result();

	(void)state;
	NEED_KVM();
	run_testos(r, "claim_slot509=1 test=user_syscall");
	if (host_is_pvm()) {
		assert_int_equal(r->status, 14);
		assert_contains(r->err, "the guest maps PML4 slot 509 (0xfffffe8000000000");
		assert_contains(r->err, "which the syscall entry needs");
		assert_null(strstr(r->out, "TEST user_syscall"));
	} else {
		assert_contains(r->out, "TEST user_syscall PASS");
		assert_int_equal(r->status, 0);
	}
	free(r);
}

/* ---- benchmark workloads (bench=, images/testos/bench.h) ------------------- */

static bool all_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * The line "BENCH <name> <iters> <cycles-per-iteration>\n" (a decimal
 * integer, then a positive number with exactly two decimals): checks its
 * format and returns the whole cycles.
 */
static unsigned long bench_line(const char *out, const char *name, unsigned long iters)
{
	char head[64], *end;
	const char *p = out, *l, *num;
	size_t n, hl;
	unsigned long seen_iters, cycles;

	hl = (size_t)snprintf(head, sizeof(head), "BENCH %s ", name);
	for (; (p = strstr(p, head)); p++)
		if (p == out || p[-1] == '\n')
			break;
	if (!p)
		fail_msg("expected a line \"%s<iters> <cycles>\" in output:\n%s", head, out);
	l = p + hl;
	n = strcspn(l, "\n");
	if (l[n] != '\n')
		fail_msg("BENCH line for %s not ended by a newline:\n%s", name, out);
	num = l;
	seen_iters = strtoul(num, &end, 10);
	if (!all_digits(num, (size_t)(end - num)) || *end != ' ')
		fail_msg("BENCH %s: iterations not a decimal integer: \"%.*s\"", name, (int)n, l);
	num = end + 1;
	cycles = strtoul(num, &end, 10);
	if (!all_digits(num, (size_t)(end - num)) || *end != '.' || end + 3 != l + n ||
	    !all_digits(end + 1, 2))
		fail_msg("BENCH %s: cycles per iteration not a number with two decimals: "
			 "\"%.*s\"",
			 name, (int)n, l);
	assert_int_equal(seen_iters, iters);
	if (cycles == 0 && !strncmp(end, ".00", 3))
		fail_msg("BENCH %s: expected a positive cycle count, saw \"%.*s\"", name, (int)n,
			 l);
	return cycles;
}

/* bench=compute,mmap iters=32: both lines in order, the compute result line, no tests run, exit 0.
 */
static void test_testos_bench_compute_mmap(void **state)
{
	struct result *r = new_result();

	(void)state;
	NEED_KVM();
	run_testos(r, "bench=compute,mmap iters=32");
	if (r->status != 0)
		fail_msg("exit status %d, expected 0; output:\n%s\nstderr:\n%s", r->status, r->out,
			 r->err);
	bench_line(r->out, "compute", 32);
	bench_line(r->out, "mmap", 32);
	assert_true(strstr(r->out, "\nBENCH compute ") < strstr(r->out, "\nBENCH mmap "));
	assert_contains(r->out, "\nbench compute: result 0x");
	assert_int_equal(count_lines(r->out, "BENCH ", NULL), 2);
	assert_int_equal(count_lines(r->out, "TEST ", NULL), 0);
	free(r);
}

/* bench=pf iters=1024: a 4 MiB fault storm through the kernel's demand-paging handler. */
static void test_testos_bench_pf(void **state)
{
	struct result *r = new_result();

	(void)state;
	NEED_KVM();
	run_testos(r, "bench=pf iters=1024");
	if (r->status != 0)
		fail_msg("exit status %d, expected 0; output:\n%s\nstderr:\n%s", r->status, r->out,
			 r->err);
	bench_line(r->out, "pf", 1024);
	assert_int_equal(count_lines(r->out, "BENCH ", NULL), 1);
	free(r);
}

/* bench=fork,pingpong iters=16: the process workloads (images/testos/proc_bench.c). */
static void test_testos_bench_fork_pingpong(void **state)
{
	struct result *r = new_result();

	(void)state;
	NEED_KVM();
	run_testos(r, "bench=fork,pingpong iters=16");
	if (r->status != 0)
		fail_msg("exit status %d, expected 0; output:\n%s\nstderr:\n%s", r->status, r->out,
			 r->err);
	bench_line(r->out, "fork", 16);
	bench_line(r->out, "pingpong", 16);
	assert_int_equal(count_lines(r->out, "BENCH ", NULL), 2);
	free(r);
}

/* An unknown workload: an error naming it, nothing run, debug-exit 1 (status 3). */
static void test_testos_bench_unknown(void **state)
{
	struct result *r = new_result();

	(void)state;
	NEED_KVM();
	run_testos(r, "bench=compute,no_such_bench iters=8");
	assert_contains(r->out, "unknown workload 'no_such_bench'");
	assert_int_equal(count_lines(r->out, "BENCH ", NULL), 0);
	assert_int_equal(r->status, 3);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_testos_suite_hw),
		cmocka_unit_test(test_testos_stress_deterministic),
		cmocka_unit_test(test_testos_no_test),
		cmocka_unit_test(test_testos_slot509_claimed),
		cmocka_unit_test(test_testos_bench_compute_mmap),
		cmocka_unit_test(test_testos_bench_pf),
		cmocka_unit_test(test_testos_bench_fork_pingpong),
		cmocka_unit_test(test_testos_bench_unknown),
	};

	return cmocka_run_group_tests_name("integration: testos", tests, NULL, NULL);
}
