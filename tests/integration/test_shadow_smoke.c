// SPDX-License-Identifier: MIT
/*
 * Integration test for shadow mode's first milestone (issue 5): run
 * images/shadow_smoke in hw mode and in shadow mode with the umbra binary
 * ($UMBRA, default build/san/umbra) and check
 *  - the guest's checks all pass in both modes and the console output is
 *    identical (the project's first oracle), with the same exit status;
 *  - in shadow mode, --stats=json shows shadow fills (#PF traps, shadow
 *    faults fixed, prefetched neighbours; without prefetch one fill per
 *    touched page, and the same output) and the emulated writes to write-protected guest tables,
 *    one of which updated an spte in place that the guest then read through
 *    (a PTE changed by the shadow MMU is seen by the guest);
 *  - a guest #PF before the guest has an IDT stops with status 8 in both
 *    modes, and shadow mode names it;
 * Needs /dev/kvm (skips without it). The run helpers are test_boot.c's.
 */
#include "run_umbra.h"

/* ---- shadow-mode runs ------------------------------------------------------- */

/* The value of `"key": N` in a JSON text (first occurrence), or -1. */
static long long json_number(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(json, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/*
 * `opt`: one more option (e.g. --shadow-prefetch=0), or NULL for umbra's
 * defaults. Shadow mode always with --shadow-large=off: the touch loop
 * counts 4 KiB fills, and the boot identity map's 2 MiB pages, executable,
 * get one 2 MiB spte for data each since efafdc1 ("The shadow MMU
 * library"), 4 fills for the 8 MiB (seen on 2026-12-07, the first run of
 * these tests on a KVM host since).
 */
static void run_smoke_opt(struct result *r, const char *mmu, const char *cmdline, const char *opt)
{
	char img[512], mmu_opt[32];
	char *argv[10] = { "umbra", "run", mmu_opt, "--stats=json", "--cmdline", (char *)cmdline };
	unsigned n = 6;

	image_path(img, sizeof(img), "shadow_smoke/shadow_smoke.elf");
	snprintf(mmu_opt, sizeof(mmu_opt), "--mmu=%s", mmu);
	if (!strcmp(mmu, "shadow"))
		argv[n++] = "--shadow-large=off";
	if (opt)
		argv[n++] = (char *)opt;
	argv[n++] = img;
	argv[n] = NULL;
	run_umbra(r, argv);
}

static void run_smoke(struct result *r, const char *mmu, const char *cmdline)
{
	run_smoke_opt(r, mmu, cmdline, NULL);
}

static const char *shadow_stats(const struct result *r)
{
	const char *stats = strstr(r->err, "\"shadow\": {");

	if (!stats)
		fail_msg("no shadow statistics in:\n%s", r->err);
	return stats;
}

static void test_smoke_both_modes(void **state)
{
	struct result *hw = new_result(), *sh = new_result();
	const char *stats;

	(void)state;
	NEED_KVM();
	run_smoke(hw, "hw", "exit=0");
	run_smoke(sh, "shadow", "exit=0");
	/* The guest's own checks, then the oracle: identical output and status. */
	assert_contains(hw->out, "shadow smoke: all checks passed\n");
	assert_contains(sh->out, "touched 2048 pages (8 MiB) at 0x1000000, checksum 0x");
	assert_contains(sh->out, "PTE rewritten -> frame B: read 0xbbbb0000bbbb0002, ok\n");
	assert_contains(sh->out,
			"second PTE made present -> frame C: read 0xcccc0000cccc0003, ok\n");
	assert_contains(sh->out, "shadow smoke: all checks passed\n");
	assert_string_equal(sh->out, hw->out);
	assert_int_equal(hw->status, 1); /* debug-exit 0: (0 << 1) | 1 */
	assert_int_equal(sh->status, hw->status);

	/*
	 * The shadow path was really taken. The touch loop goes page by page,
	 * so prefetch (a group of 8, the default) fills 7 of every 8 pages
	 * beside the fault of the first: at least 256 fills, 1792 prefetched.
	 */
	stats = shadow_stats(sh);
	assert_true(json_number(stats, "14") >= 256); /* #PF traps */
	assert_true(json_number(stats, "faults_fixed") >= 256);
	assert_true(json_number(stats, "prefetched") >= 1792);
	assert_true(json_number(stats, "faults_fixed") + json_number(stats, "prefetched") >= 2048);
	/*
	 * The PML4 store is emulated; the PT's first store lets it out of sync
	 * (umbra's default), so the second runs without a trap, and the invlpg
	 * brings the rewritten spte in line.
	 */
	assert_int_equal(json_number(stats, "faults_pt_write"), 1);
	assert_int_equal(json_number(stats, "emulated_pt_writes"), 1);
	assert_int_equal(json_number(stats, "pt_writes"), 1);
	assert_int_equal(json_number(stats, "unsyncs"), 1);
	assert_true(json_number(stats, "unsync_updates") >= 1);
	assert_true(json_number(stats, "stores_replayed") > 0);
	assert_int_equal(json_number(stats, "faults_guest"), 0);
	assert_contains(sh->err, "\"mov\": 1");
	assert_contains(sh->err, "\"invlpg\": 1");
	assert_contains(sh->err, "\"mode\": \"shadow\"");
	free(hw);
	free(sh);
}

/* Without prefetch: the same output, and one fill per touched page. */
static void test_smoke_no_prefetch(void **state)
{
	struct result *sh = new_result(), *pf = new_result();
	const char *stats;

	(void)state;
	NEED_KVM();
	run_smoke_opt(sh, "shadow", "exit=0", "--shadow-prefetch=0");
	run_smoke(pf, "shadow", "exit=0");
	assert_contains(sh->out, "shadow smoke: all checks passed\n");
	assert_string_equal(sh->out, pf->out);
	assert_int_equal(sh->status, pf->status);
	stats = shadow_stats(sh);
	assert_true(json_number(stats, "14") >= 2048); /* one fill per touched page */
	assert_true(json_number(stats, "faults_fixed") >= 2048);
	assert_int_equal(json_number(stats, "prefetched"), 0);
	/* Prefetch saved most of those traps. */
	assert_true(json_number(shadow_stats(pf), "14") + 1792 <= json_number(stats, "14"));
	free(sh);
	free(pf);
}

/* Every table in sync: each PT store traps and is emulated, with the same output. */
static void test_smoke_unsync_off(void **state)
{
	struct result *sh = new_result(), *def = new_result();
	const char *stats;

	(void)state;
	NEED_KVM();
	run_smoke_opt(sh, "shadow", "exit=0", "--shadow-unsync=0");
	run_smoke(def, "shadow", "exit=0");
	assert_contains(sh->out, "shadow smoke: all checks passed\n");
	assert_string_equal(sh->out, def->out);
	assert_int_equal(sh->status, def->status);
	stats = shadow_stats(sh);
	assert_int_equal(json_number(stats, "faults_pt_write"), 3);
	assert_int_equal(json_number(stats, "emulated_pt_writes"), 3);
	assert_int_equal(json_number(stats, "pt_writes"), 3);
	assert_true(json_number(stats, "pt_write_updates") >= 1);
	assert_int_equal(json_number(stats, "unsyncs"), 0);
	assert_contains(sh->err, "\"mov\": 3");
	free(sh);
	free(def);
}

static void test_smoke_guest_fault_without_idt(void **state)
{
	struct result *hw = new_result(), *sh = new_result();

	(void)state;
	NEED_KVM();
	run_smoke(hw, "hw", "fault=pf");
	run_smoke(sh, "shadow", "fault=pf");
	assert_int_equal(hw->status, 8);
	assert_int_equal(sh->status, 8);
	assert_string_equal(sh->out, hw->out);
	assert_contains(sh->out, "reading unmapped 0x50000000000\n");
	assert_contains(sh->err, "guest fault before its IDT is set: vector 14, error code 0x0, "
				 "cr2 0x50000000000, at rip 0x");
	free(hw);
	free(sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smoke_both_modes),
		cmocka_unit_test(test_smoke_no_prefetch),
		cmocka_unit_test(test_smoke_unsync_off),
		cmocka_unit_test(test_smoke_guest_fault_without_idt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
