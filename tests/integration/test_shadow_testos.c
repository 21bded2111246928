// SPDX-License-Identifier: MIT
/*
 * Integration test for shadow mode on the test OS (images/testos, issues 3
 * and 5): the whole conformance suite runs in hw mode and in shadow mode;
 * every TEST line and the stress checksum line must be identical in both,
 * shadow mode must pass every test, and both must exit 0. The shadow run
 * must really be shadowed: --stats=json shows mode "shadow", LAPIC/IOAPIC
 * accesses mapped as direct MMIO, the virtual MSRs read, kernel code
 * scanned and patched (pushf/popf, iretq, mov from CS/SS: decode/scan.h),
 * guest syscalls through the monitor's entry, and held timer interrupts.
 * Needs /dev/kvm (skips without it).
 *
 * Shadow mode's cli/sti strategy is the host's default (--sensitive=auto:
 * iopl3 on VMX/SVM, patch on PVM); a second test runs the suite with
 * --sensitive=patch, the only strategy PVM hosts have, wherever KVM is.
 *
 * hw mode cannot run one test on our hosts (PVM, shared/HOST.md): `int
 * $0x80` from CPL3 is #UD (proc_int80). hw mode skips it (HW_SKIPS);
 * shadow mode runs it, and it must pass there. (A `syscall` from CPL3,
 * which stays at CPL3 there, hw mode enters itself: vmm/hw_syscall.h.) So with
 * PVM_HW_TESTOS_SKIPS; PVM_TESTOS_SKIPS both modes leave out there
 * (run_umbra.h says why).
 */
#include "run_umbra.h"

#define HW_SKIPS "proc_int80"

/* Whether comma-separated `list` names the test of TEST line `p`. */
static bool listed(const char *list, const char *p)
{
	const char *name = p + 5;
	size_t n = strcspn(name, " ");

	for (const char *l = list; *l; l += strcspn(l, ",") + (l[strcspn(l, ",")] == ',')) {
		if (strcspn(l, ",") == n && !strncmp(l, name, n))
			return true;
	}
	return false;
}

/*
 * Whether TEST line `p` names a test hw mode skips here: HW_SKIPS, and on
 * PVM hosts PVM_HW_TESTOS_SKIPS (run_umbra.h).
 */
static bool hw_skipped(const char *p)
{
	return listed(HW_SKIPS, p) || (host_is_pvm() && listed(PVM_HW_TESTOS_SKIPS, p));
}

/* The TEST and STRESS lines of `out`, in order, into `buf`. */
static void test_lines(const char *out, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *eol = strchr(p, '\n');
		size_t l = eol ? (size_t)(eol - p) + 1 : strlen(p);

		if ((strncmp(p, "TEST ", 5) && strncmp(p, "STRESS ", 7)) ||
		    (!strncmp(p, "TEST ", 5) && hw_skipped(p)))
			continue;
		assert_true(n + l < len);
		memcpy(buf + n, p, l);
		n += l;
		buf[n] = '\0';
	}
}

static void run_testos(struct result *r, const char *mmu, bool tcg)
{
	char img[512], mmu_opt[32];
	bool hw = !strcmp(mmu, "hw");
	const char *cmdline = testos_skips(hw, hw ? HW_SKIPS : NULL, tcg, host_is_pvm());

	image_path(img, sizeof(img), "testos/testos.elf");
	snprintf(mmu_opt, sizeof(mmu_opt), "--mmu=%s", mmu);
	run_umbra(r, (char *[]){ "umbra", "run", mmu_opt, "--mem", "512M", "--stats=json",
				 "--cmdline", (char *)cmdline, img, NULL });
}

static void test_shadow_testos_whole_suite(void **state)
{
	struct result *hw = new_result(), *sh = new_result();
	static char hw_lines[OUT_MAX], sh_lines[OUT_MAX];

	bool tcg;

	(void)state;
	NEED_KVM();
	tcg = host_is_qemu_tcg();
	run_testos(hw, "hw", tcg);
	run_testos(sh, "shadow", tcg);
	test_lines(hw->out, hw_lines, sizeof(hw_lines));
	test_lines(sh->out, sh_lines, sizeof(sh_lines));
	if (strcmp(hw_lines, sh_lines)) {
		/* The first line that differs: whole dumps overflow cmocka's message. */
		size_t i = 0, line = 0;

		while (hw_lines[i] && hw_lines[i] == sh_lines[i])
			i++;
		while (i > 0 && hw_lines[i - 1] != '\n')
			i--;
		for (size_t k = 0; k < i; k++)
			line += hw_lines[k] == '\n';
		fail_msg(
			"TEST lines differ from line %zu on\n--- hw:\n%.300s\n--- shadow:\n%.300s\n"
			"--- shadow stderr:\n%.1500s",
			line + 1, hw_lines + i, sh_lines + i, sh->err);
	}
	if (strstr(sh_lines, " FAIL"))
		fail_msg("failures in both modes:\n%s", sh_lines);
	assert_non_null(strstr(sh_lines, "TEST stress PASS"));
	assert_non_null(strstr(sh_lines, "TEST demand_64m PASS"));
	assert_non_null(strstr(sh_lines, "TEST proc_64_switch PASS"));
	assert_non_null(strstr(sh_lines, "TEST irqflag_pending_delivery PASS"));
	/* What hw mode cannot run here passes in shadow mode. */
	assert_contains(sh->out, "TEST proc_int80 PASS");
	/* Processes' syscalls, in both modes (on PVM hosts through hw mode's own entry). */
	assert_contains(hw->out, "TEST user_syscall PASS");
	assert_contains(sh->out, "TEST user_syscall PASS");
	assert_contains(sh->out, "TEST user_read_ok PASS");
	if (host_is_pvm()) {
		assert_contains(hw->err, "\"hw_syscalls\": ");
		assert_null(strstr(hw->err, "\"hw_syscalls\": 0,"));
	}
	assert_contains(sh->out, "TEST user_fs_base_site PASS");
	assert_contains(sh->out, "SUMMARY ");
	assert_null(strstr(sh->out, " FAIL"));
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
	/* Guest syscalls came through the monitor's entry. */
	assert_contains(sh->err, "\"syscalls\": ");
	assert_null(strstr(sh->err, "\"syscalls\": 0,"));
	/* Trap chaining took instructions in (swapgs_chain's runs, syscall exits, ...). */
	assert_contains(sh->err, "\"chained\": ");
	assert_null(strstr(sh->err, "\"chained\": 0,"));
	/* proc_fault_ad's Linux-like handler: its user faults mapped on the return (prefault). */
	assert_contains(sh->out, "TEST proc_fault_ad PASS");
	assert_contains(sh->err, "\"prefaults_fixed\": ");
	assert_true(
		strtoull(strstr(sh->err, "\"prefaults_fixed\": ") + strlen("\"prefaults_fixed\": "),
			 NULL, 10) > 0);
	/*
	 * Timer ticks that came while the guest's IF was 0: held by the VMM
	 * (patch), or never taken at all, the real IF being the guest's (iopl3).
	 */
	if (strstr(sh->err, "\"sensitive\": \"patch"))
		assert_null(strstr(sh->err, "\"irq_deferred\": 0,"));
	else
		assert_contains(sh->err, "\"sensitive\": \"iopl3");
	free(hw);
	free(sh);
}

/*
 * testos with --sensitive=patch and --monitor-calls=`calls`: every test
 * passes (on QEMU TCG without the one run_umbra.h names).
 */
static void run_testos_patch(struct result *r, const char *calls)
{
	char img[512], calls_opt[32];
	/*
	 * Without the stand-ins, a guest kernel's segment load runs natively,
	 * and on PVM hosts against the host's GDT, whose user selectors stay
	 * present whatever the guest's GDT says (README "Shadow mode").
	 */
	bool own_gdt_only = host_is_pvm() && !strcmp(calls, "off");
	const char *cmdline = testos_skips(false, own_gdt_only ? "load_fs_user_ds" : NULL,
					   host_is_qemu_tcg(), host_is_pvm());

	NEED_KVM();
	image_path(img, sizeof(img), "testos/testos.elf");
	snprintf(calls_opt, sizeof(calls_opt), "--monitor-calls=%s", calls);
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=shadow", "--sensitive=patch", calls_opt,
				 "--mem", "512M", "--stats=json", "--cmdline", (char *)cmdline, img,
				 NULL });
	if (strstr(r->out, " FAIL"))
		fail_msg("failures with --sensitive=patch %s:\n%s\nstderr:\n%.3000s", calls_opt,
			 r->out, r->err);
	assert_contains(r->out, "TEST irqflag_popf PASS");
	assert_contains(r->out, "TEST irqflag_pv_sites PASS");
	assert_contains(r->out, "TEST irqflag_pv_pending PASS");
	assert_contains(r->out, "TEST irqflag_pv_indirect PASS");
	assert_contains(r->out, "TEST irqflag_pv_ticks PASS");
	assert_contains(r->out, "TEST irqflag_pv_top_2m PASS");
	assert_contains(r->out, "TEST sync_core_iret PASS");
	assert_contains(r->out, "TEST sync_core_iret_checks PASS");
	assert_contains(r->out, "TEST iret_kernel_return PASS");
	assert_contains(r->out, "TEST iret_held_interrupt PASS");
	assert_contains(r->out, "TEST iret_checks PASS");
	assert_contains(r->out, "TEST cx16_emu PASS");
	assert_contains(r->out, "TEST cx16_emu_fault PASS");
	assert_contains(r->out, "TEST ss_read_compare PASS");
	assert_contains(r->out, "TEST ss_reload_site PASS");
	assert_contains(r->out, "TEST cr2_read_site PASS");
	assert_contains(r->out, "TEST swapgs_site PASS");
	assert_contains(r->out, "TEST load_gs_index PASS");
	assert_contains(r->out,
			own_gdt_only ? "TEST load_fs_user_ds SKIP" : "TEST load_fs_user_ds PASS");
	assert_contains(r->out, "TEST user_fs_base_site PASS");
	assert_contains(r->out, "TEST stress PASS");
	assert_contains(r->out, "SUMMARY ");
	assert_int_equal(r->status, 0);
	assert_contains(r->err, "\"sensitive\": \"patch pushf/popf\"");
	/* The straddle tests passed, and straddle_into_new_page's movabs began its page's scan. */
	assert_contains(r->out, "TEST straddle_into_new_page PASS");
	assert_contains(r->out, "TEST straddle_into_approved_page PASS");
	assert_null(strstr(r->err, "\"code_scan_straddles\": 0,"));
	/* cli and sti trapped, and timer ticks came while the virtual IF was 0. */
	assert_contains(r->err, "\"cli\": ");
	assert_contains(r->err, "\"sti\": ");
	assert_null(strstr(r->err, "\"irq_deferred\": 0,"));
	/* Those the LAPIC gave went back to its IRR, where the irqflag_* tests look. */
	assert_contains(r->err, "\"tpr_masking\": true");
	assert_null(strstr(r->err, "\"irq_requeued\": 0,"));
}

/*
 * --sensitive=patch wherever KVM is: cli and sti trap and are emulated
 * against the virtual IF, as on PVM hosts; every test passes. The paravirt
 * sites of irqflag_pv_* become monitor calls (the default), the sti
 * stand-in traps for the interrupt irqflag_pv_pending holds, and
 * irqflag_pv_top_2m takes the window's addresses back.
 */
static void test_shadow_testos_patch(void **state)
{
	struct result *r = new_result();

	(void)state;
	run_testos_patch(r, "on");
	assert_contains(r->err, "\"monitor_calls\": true");
	assert_contains(r->err, "\"call_window\": true");
	assert_contains(r->err, "\"call_sites\": {\"cli\": ");
	assert_null(strstr(r->err, "\"call_sites\": {\"cli\": 0,"));
	assert_null(strstr(r->err, "\"call_traps\": 0,"));
	/* irqflag_pv_indirect's `call *` sites went through thunks. */
	assert_null(strstr(r->err, "\"call_indirect\": 0,"));
	assert_null(strstr(r->err, "\"call_thunks\": 0,"));
	assert_null(strstr(r->err, "\"window_links\": 0,"));
	/* sync_core_iret's sites became calls; sync_core_iret_checks took the slow path. */
	assert_null(strstr(r->err, "\"call_sync\": 0,"));
	assert_null(strstr(r->err, "\"call_sync_slow\": 0,"));
	/*
	 * trap_iret became a call to the iret stand-in; returns to user mode,
	 * iret_held_interrupt's and iret_checks' went the slow way.
	 */
	assert_null(strstr(r->err, "\"call_iret\": 0,"));
	assert_null(strstr(r->err, "\"call_iret_slow\": 0,"));
	/*
	 * cx16_emu's body jumps to the cmpxchg16b stand-in; its unaligned
	 * calls and cx16_emu_fault's went the slow way.
	 */
	assert_null(strstr(r->err, "\"call_cx16\": 0,"));
	assert_null(strstr(r->err, "\"call_cx16_slow\": 0,"));
	/* cr2_read_site's `mov %cr2,%rax; nopl` became a call to the CR2 stand-in. */
	assert_null(strstr(r->err, "\"call_cr2\": 0,"));
	/* ss_read_compare's `mov %ss; cmp` became a call to the SS stand-in. */
	assert_null(strstr(r->err, "\"call_ss\": 0,"));
	/*
	 * ss_reload_site's `mov $0x18,%eax; mov %eax,%ss` became a call to the SS
	 * load stand-in; its reloads with IF 1 and its #SS went the slow way.
	 */
	assert_null(strstr(r->err, "\"call_ss_load\": 0,"));
	assert_null(strstr(r->err, "\"call_ss_load_slow\": 0,"));
	/* swapgs_site's three `swapgs; nop` forms became calls to the swapgs stand-in. */
	assert_null(strstr(r->err, "\"call_swapgs\": 0,"));
	/*
	 * load_gs_index's `swapgs; mov %edi,%gs; nop3; swapgs` became a call to
	 * the load_gs stand-in; its USER_DS loads took the slow path.
	 */
	assert_null(strstr(r->err, "\"call_load_gs\": 0,"));
	assert_null(strstr(r->err, "\"call_load_gs_slow\": 0,"));
	/*
	 * load_fs_user_ds's `mov $0x2b,%edx; mov %edx,%fs; mov %eax,%fs` became
	 * a call to the load_fs stand-in; its changed descriptors took the slow
	 * path.
	 */
	assert_null(strstr(r->err, "\"call_load_fs\": 0,"));
	assert_null(strstr(r->err, "\"call_load_fs_slow\": 0,"));
	/*
	 * user_fs_base_site's native_write_msr body became a call to the wrmsr
	 * stand-in: FS bases deferred to the next trap, its other MSR and its
	 * non-canonical value the slow way.
	 */
	assert_null(strstr(r->err, "\"call_wrmsr\": 0,"));
	assert_null(strstr(r->err, "\"call_wrmsr_slow\": 0,"));
	assert_null(strstr(r->err, "\"call_fs_base_loads\": 0,"));
	/* irqflag_pv_top_2m mapped the window's addresses: given back once. */
	assert_contains(r->err, "\"call_withdrawals\": 1");
	free(r);
}

/* --monitor-calls=off: every paravirt site traps, the same results. */
static void test_shadow_testos_patch_no_calls(void **state)
{
	struct result *r = new_result();

	(void)state;
	run_testos_patch(r, "off");
	assert_contains(r->err, "\"monitor_calls\": false");
	assert_contains(r->err, "\"call_window\": false");
	assert_contains(r->err, "\"call_sites\": {\"cli\": 0, \"sti\": 0, \"save_fl\": 0}");
	free(r);
}

/*
 * The whole suite in shadow mode with one more option: it must pass as it
 * does without. The result, for the caller's own checks.
 */
static struct result *suite_with(const char *opt)
{
	struct result *r = new_result();
	char img[512];
	const char *cmdline = testos_skips(false, NULL, host_is_qemu_tcg(), host_is_pvm());

	image_path(img, sizeof(img), "testos/testos.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=shadow", (char *)opt, "--mem", "512M",
				 "--stats=json", "--cmdline", (char *)cmdline, img, NULL });
	if (strstr(r->out, " FAIL"))
		fail_msg("failures with %s:\n%s\nstderr:\n%.3000s", opt, r->out, r->err);
	assert_contains(r->out, "TEST stress PASS");
	assert_contains(r->out, "SUMMARY ");
	assert_int_equal(r->status, 0);
	return r;
}

/* --chain=off: one trap per trapping instruction, the same results (hw-vs-shadow above). */
static void test_shadow_testos_unchained(void **state)
{
	struct result *r;

	(void)state;
	NEED_KVM();
	r = suite_with("--chain=off");
	assert_contains(r->err, "\"chained\": 0,");
	free(r);
}

/*
 * --shadow-unsync 0: every guest page table stays write-protected, so every
 * store to one is the VMM's, and the same results. testos's
 * dr_data_write_pte then checks the emulator's data breakpoints (a #DB the
 * VMM raises after its own store), which by default the CPU raises instead
 * (the table out of sync).
 */
static void test_shadow_testos_write_protected(void **state)
{
	struct result *r;

	(void)state;
	NEED_KVM();
	r = suite_with("--shadow-unsync=0");
	/*
	 * On PVM hosts the suite leaves it out (the CPU's breakpoints never fire
	 * there), but this one is the emulator's: it must pass on its own.
	 */
	if (host_is_pvm()) {
		char img[512];

		image_path(img, sizeof(img), "testos/testos.elf");
		run_umbra(r,
			  (char *[]){ "umbra", "run", "--mmu=shadow", "--shadow-unsync=0", "--mem",
				      "512M", "--cmdline", "test=dr_data_write_pte", img, NULL });
		assert_int_equal(r->status, 0);
	}
	assert_contains(r->out, "TEST dr_data_write_pte PASS");
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shadow_testos_whole_suite),
		cmocka_unit_test(test_shadow_testos_patch),
		cmocka_unit_test(test_shadow_testos_patch_no_calls),
		cmocka_unit_test(test_shadow_testos_unchained),
		cmocka_unit_test(test_shadow_testos_write_protected),
	};

	return cmocka_run_group_tests_name("shadow_testos", tests, NULL, NULL);
}
