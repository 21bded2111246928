// SPDX-License-Identifier: MIT
/*
 * Integration test for shadow mode on the test OS (images/testos, issue 5):
 * the kernel-only test groups below run with the same command line in hw
 * mode and in shadow mode; every TEST line (and the stress checksum line)
 * must be identical in both, with no FAIL, and both must exit 0. The
 * shadow run must really be shadowed: --stats=json shows mode "shadow",
 * LAPIC/IOAPIC accesses mapped as direct MMIO, and the virtual MSRs read.
 * Needs /dev/kvm (skips without it).
 *
 * Groups compared (prefixes of testos's TEST names):
 *   boot, pages, ad_, prot_, smep, smap, tlb_, pcid, invpcid, selfmap, pt_,
 *   shared_, demand, stress, irqflag_pushf, irqflag_popf
 * irqflag_pushf and irqflag_popf pass in shadow mode because kernel code is
 * scanned and its pushf/popf patched to int3 and emulated (decode/scan.h,
 * decode/patch.h, vmm/shadow_mode.c item 6); the shadow run must show
 * patches and patched-instruction traps in --stats.
 *
 * Kernel-only groups NOT compared yet, with what shadow mode prints on our
 * hosts (PVM, shared/HOST.md) while hw mode passes:
 *   irqflag (the rest): the guest kernel runs at real CPL3, where PVM forces
 *   IF=1, so the VMM accepts the LAPIC timer interrupt (and holds it
 *   pending against the virtual IF) instead of leaving it in the IRR,
 *   which these tests read directly (pushf/popf themselves are exact now):
 *     TEST irqflag_nested FAIL inside level 3: expected the timer request
 *       pending in the IRR within 200 ms, saw IRR bit clear (ticks 3 -> 3)
 *     TEST irqflag_pending_delivery FAIL before sti: expected the timer request
 *       pending in the IRR within 200 ms, saw IRR bit clear (ticks 21 -> 21)
 *     TEST irqflag_sti_hlt FAIL before sti; hlt: expected the timer request
 *       pending in the IRR within 200 ms, saw IRR bit clear (ticks 21 -> 21)
 * The user and process groups (user_, swapgs, iretq_, timer_, proc_) are
 * not kernel-only and are not part of this test.
 */
#include "run_umbra.h"

#define GROUPS                                                                              \
	"test=boot,pages,ad_,prot_,smep,smap,tlb_,pcid,invpcid,selfmap,pt_,shared_,demand," \
	"stress,irqflag_pushf,irqflag_popf"

/* The TEST and STRESS lines of `out`, in order, into `buf`. */
static void test_lines(const char *out, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *eol = strchr(p, '\n');
		size_t l = eol ? (size_t)(eol - p) + 1 : strlen(p);

		if (strncmp(p, "TEST ", 5) && strncmp(p, "STRESS ", 7))
			continue;
		assert_true(n + l < len);
		memcpy(buf + n, p, l);
		n += l;
		buf[n] = '\0';
	}
}

static void run_testos(struct result *r, const char *mmu)
{
	char img[512], mmu_opt[32];

	image_path(img, sizeof(img), "testos/testos.elf");
	snprintf(mmu_opt, sizeof(mmu_opt), "--mmu=%s", mmu);
	run_umbra(r, (char *[]){ "umbra", "run", mmu_opt, "--mem", "512M", "--stats=json",
				 "--cmdline", GROUPS, img, NULL });
}

static void test_shadow_testos_kernel_groups(void **state)
{
	struct result *hw = new_result(), *sh = new_result();
	static char hw_lines[OUT_MAX], sh_lines[OUT_MAX];

	(void)state;
	NEED_KVM();
	run_testos(hw, "hw");
	run_testos(sh, "shadow");
	test_lines(hw->out, hw_lines, sizeof(hw_lines));
	test_lines(sh->out, sh_lines, sizeof(sh_lines));
	if (strcmp(hw_lines, sh_lines))
		fail_msg("TEST lines differ\n--- hw:\n%s\n--- shadow:\n%s\n--- shadow stderr:\n%s",
			 hw_lines, sh_lines, sh->err);
	if (strstr(sh_lines, " FAIL"))
		fail_msg("failures in both modes:\n%s", sh_lines);
	assert_non_null(strstr(sh_lines, "TEST stress PASS"));
	assert_non_null(strstr(sh_lines, "TEST demand_64m PASS"));
	assert_contains(sh->out, "SUMMARY ");
	assert_int_equal(hw->status, 0);
	assert_int_equal(sh->status, 0);
	/* Really shadowed: the LAPIC went through direct MMIO, APIC_BASE was read. */
	assert_contains(sh->err, "\"mode\": \"shadow\"");
	assert_contains(sh->err, "\"faults_mmio_direct\": ");
	assert_null(strstr(sh->err, "\"faults_mmio_direct\": 0,"));
	assert_contains(sh->err, "\"rdmsr\": ");
	/* pushf/popf were patched, and the patches trapped and were emulated. */
	assert_contains(sh->err, "\"patches_applied\": ");
	assert_null(strstr(sh->err, "\"patches_applied\": 0,"));
	assert_contains(sh->err, "\"patch_traps\": ");
	assert_null(strstr(sh->err, "\"patch_traps\": 0,"));
	assert_null(strstr(sh->err, "\"patch_traps\": 0}"));
	free(hw);
	free(sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shadow_testos_kernel_groups),
	};

	return cmocka_run_group_tests_name("shadow_testos", tests, NULL, NULL);
}
