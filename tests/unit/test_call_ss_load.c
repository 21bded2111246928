/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the SS load stand-in (vmm/monitor.h, MON_CALL_SS_LOAD) and
 * its site (vmm/call_literal.c): the site's form and the tail it keeps, the
 * stand-in's code with the stage of each instruction, and the stand-in run
 * natively from a copy of the window's pages. Taken (the virtual IF 0, the
 * live descriptor the key's): ss_loaded set, the SS, sync and iret
 * stand-ins' fields given __KERNEL_DS, RAX 0x18, the flags kept, the return
 * past the site's 7 bytes. Not taken: the ud2 with the data page untouched
 * and the site's flags and end on the stack. It loads no real register.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "decode/scan.h"
#include "shadow/x86.h"
#include "tests/unit/standin.h"
#include "vmm/call_literal.h"
#include "vmm/monitor.h"

/* Debian 6.1's __switch_to on AMD CPUs: the reload, then `jmp`. */
static const u8 site[] = { 0xb8, 0x18, 0x00, 0x00, 0x00, 0x8e, 0xd0, 0xeb, 0x4a };

static void test_ss_load_plan(void **state)
{
	const u16 to_mov[] = { 0x100, 0x180 };
	u8 repl[16];
	unsigned len = 0;

	(void)state;
	/* The mov kept for the slow path, where a branch may land too. */
	standin_check_plan(site, sizeof(site), CALL_LIT_SS_LOAD, MON_CALL_SS_LOAD,
			   MON_CALL_SS_LOAD_SITE);
	assert_int_equal(standin_plan(site, sizeof(site), to_mov, 2, 5, repl, &len),
			 CALL_LIT_SS_LOAD);
	/* Another selector, register, or segment register: not the site. */
	standin_check_not_site(site, sizeof(site), 1, 0x10);
	standin_check_not_site(site, sizeof(site), 6, 0xd1);
	standin_check_not_site(site, sizeof(site), 6, 0xe0);
}

static void ss_load_text(const cs_insn *insn, char *text, size_t len)
{
#define D(i, field) standin_disp(&insn[i], offsetof(struct mon_call_data, field))
	snprintf(text, len,
		 "pushfq ;add qword ptr [rsp + 8], 2;cmp byte ptr [rip + 0x%llx], 0;jne 0x%llx;"
		 "mov rax, qword ptr [rip + 0x%llx];mov rax, qword ptr [rax];"
		 "cmp rax, qword ptr [rip + 0x%llx];jne 0x%llx;mov byte ptr [rip + 0x%llx], 1;"
		 "mov dword ptr [rip + 0x%llx], 0x18;mov rax, qword ptr [rip + 0x%llx];"
		 "mov qword ptr [rip + 0x%llx], rax;mov rax, qword ptr [rip + 0x%llx];"
		 "mov qword ptr [rip + 0x%llx], rax;mov eax, 0x18;popfq ;ret ;ud2 ;",
		 D(2, vif), (unsigned long long)insn[17].address, D(4, ss_key_gva),
		 D(6, ss_key_desc), (unsigned long long)insn[17].address, D(8, ss_loaded),
		 D(9, kernel_ss), D(10, ss_key_gva), D(11, ss_desc_gva), D(12, ss_key_desc),
		 D(13, ss_desc));
#undef D
}

static void test_ss_load_code(void **state)
{
	static const enum mon_call_stage want[] = {
		MON_CALL_SS_LOAD_AT_ENTRY,   MON_CALL_SS_LOAD_FLAGS_SAVED,
		MON_CALL_SS_LOAD_RETURN_SET, MON_CALL_SS_LOAD_RETURN_SET,
		MON_CALL_SS_LOAD_RETURN_SET, MON_CALL_SS_LOAD_RETURN_SET,
		MON_CALL_SS_LOAD_RETURN_SET, MON_CALL_SS_LOAD_RETURN_SET,
		MON_CALL_SS_LOAD_RETURN_SET, MON_CALL_SS_LOAD_LOADED,
		MON_CALL_SS_LOAD_LOADED,     MON_CALL_SS_LOAD_LOADED,
		MON_CALL_SS_LOAD_LOADED,     MON_CALL_SS_LOAD_LOADED,
		MON_CALL_SS_LOAD_DONE,	     MON_CALL_SS_LOAD_DONE,
		MON_CALL_SS_LOAD_AT_RET,     MON_CALL_SS_LOAD_RETURN_SET,
	};

	(void)state;
	standin_check_code(MON_CALL_SS_LOAD, MON_CALL_SS_LOAD_SITE - 5, want,
			   sizeof(want) / sizeof(want[0]), ss_load_text);
	assert_true(monitor_call_is_ss_load_trap(MON_CALL_GVA + MON_CALL_SS_LOAD +
						 MON_CALL_SS_LOAD_UD2));
}

static const u64 kernel_ds = 0x00cf93000000ffffull; /* Linux's __KERNEL_DS, accessed */

/* The data page as the VMM leaves it: SS null (after an event from user mode). */
static void vmm_fill(struct mon_call_data *d, u64 *live)
{
	d->kernel_ss = 0;
	d->ss_desc_gva = 0x1111;
	d->ss_desc = 0x2222;
	d->ss_loaded = 0;
	d->ss_key_gva = (u64)(uintptr_t)live;
	d->ss_key_desc = kernel_ds;
	d->zero = 0;
}

static void test_ss_load_run(void **state)
{
	struct mon_call_data *d;
	u64 live = kernel_ds;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++) {
		struct standin_regs io = { .rax = 0xdead0000beef0000ull,
					   .flags = standin_flag_sets[f] };

		vmm_fill(d, &live);
		assert_int_equal(standin_run((u64)(uintptr_t)win + MON_CALL_SS_LOAD,
					     MON_CALL_SS_LOAD_SITE - 5, &io),
				 0);
		assert_int_equal(d->ss_loaded, 1);
		assert_int_equal(d->kernel_ss, 0x18);
		assert_int_equal(d->ss_desc_gva, (u64)(uintptr_t)&live);
		assert_int_equal(d->ss_desc, kernel_ds);
		assert_int_equal(io.rax, 0x18); /* mov $0x18,%eax clears the upper half */
		assert_int_equal(io.flags & STANDIN_KEPT, standin_flag_sets[f] & STANDIN_KEPT);
		assert_int_equal(live, kernel_ds); /* only read */
	}
	munmap(win, 2 * PAGE_SIZE);
}

static void test_ss_load_slow(void **state)
{
	static const struct {
		const char *why; /* for the reader */
		u8 vif;
		u64 flip;
		bool never;
	} cases[] = {
		{ "the virtual IF 1", 1, 0, false },
		{ "the descriptor made not present", 0, 1ull << 47, false },
		{ "the descriptor made DPL 3", 0, 3ull << 45, false },
		{ "the A bit cleared", 0, 1ull << 40, false },
		{ "the key not loadable", 0, 0, true },
	};
	struct mon_call_data *d;
	u64 live;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	standin_catch_ud2();
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++) {
			struct standin_regs io = { .rax = 0x77, .flags = standin_flag_sets[f] };

			vmm_fill(d, &live);
			d->vif = cases[k].vif;
			live = kernel_ds ^ cases[k].flip;
			if (cases[k].never) {
				d->ss_key_gva = (u64)(uintptr_t)&d->zero;
				d->ss_key_desc = 1;
			}
			standin_ill_rip = 0;
			assert_int_equal(standin_run((u64)(uintptr_t)win + MON_CALL_SS_LOAD,
						     MON_CALL_SS_LOAD_SITE - 5, &io),
					 1);
			assert_int_equal(standin_ill_rip, (u64)(uintptr_t)win + MON_CALL_SS_LOAD +
								  MON_CALL_SS_LOAD_UD2);
			assert_int_equal(d->ss_loaded, 0);
			assert_int_equal(d->kernel_ss, 0);
			assert_int_equal(d->ss_desc_gva, 0x1111);
			assert_int_equal(d->ss_desc, 0x2222);
			assert_int_equal(standin_ill_stack[0] & STANDIN_KEPT,
					 standin_flag_sets[f] & STANDIN_KEPT);
			assert_int_equal(standin_ill_stack[1], (u64)(uintptr_t)standin_site_end);
		}
	signal(SIGILL, SIG_DFL);
	munmap(win, 2 * PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ss_load_plan),
		cmocka_unit_test(test_ss_load_code),
		cmocka_unit_test(test_ss_load_run),
		cmocka_unit_test(test_ss_load_slow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
