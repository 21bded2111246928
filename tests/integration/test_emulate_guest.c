// SPDX-License-Identifier: MIT
/*
 * Integration test of the hw-mode instruction fallback: runs images/emul
 * (emul.elf executes clac, stac, int3, int $0x80, xgetbv, movbe, cmpxchg16b,
 * clwb, ... at CPL0 and checks their effects and interrupt frames itself)
 * with --stats=json, and checks its TEST lines, umbra's exit status and the
 * per-mnemonic counts of emulated instructions. The run helper and the
 * NEED_KVM skip follow tests/integration/test_boot.c.
 */
#include "run_umbra.h"

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
	/*
	 * KVM's own counters of the vCPU (vmm/kvm_stats.h), read before the
	 * teardown: it exited to us at least for the debug-exit port.
	 */
	if (!strstr(r->err, "  kvm stats          none"))
		assert_contains(r->err, "\n  kvm exits ");
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
