/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the load_gs stand-in (vmm/monitor.h, MON_CALL_LOAD_GS) and
 * its site (vmm/call_literal.c): the site's forms, the tail it keeps, the
 * stand-in's code with the stage of each instruction, and the stand-in run
 * natively from a copy of the window's pages with null selectors: the data
 * page's gs_sel set, kernel_gs_base zeroed only where null loads clear it,
 * RAX, RDI and the flags kept, and the return past the site's 11 bytes;
 * and with the selector it may load itself (user_sel), taken only while
 * its descriptor holds the value the VMM checked, the ud2 otherwise. It
 * touches no real segment register, so it runs on any host.
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

/* Debian 6.1's asm_load_gs_index, its runtime form, then `jmp` to the return thunk. */
static const u8 site_nopl[] = { 0x0f, 0x01, 0xf8, 0x8e, 0xef, 0x0f, 0x1f, 0x00,
				0x0f, 0x01, 0xf8, 0xe9, 0,    0,    0,	  0 };

static void test_load_gs_plan(void **state)
{
	static const u8 middles[][3] = { { 0x0f, 0x1f, 0x00 },
					 { 0x90, 0x90, 0x90 },
					 { 0x0f, 0xae, 0xf0 } };
	const u16 entry = 0x100, both[] = { 0x100, 0x180 };
	u8 site[sizeof(site_nopl)], repl[16];
	unsigned len = 0;
	s32 rel;

	(void)state;
	for (unsigned m = 0; m < 3; m++) {
		memcpy(site, site_nopl, sizeof(site));
		memcpy(site + 5, middles[m], 3);
		assert_int_equal(standin_plan(site, sizeof(site), &entry, 1, 5, repl, &len),
				 CALL_LIT_LOAD_GS);
		assert_int_equal(len, MON_CALL_LOAD_GS_SITE);
		assert_int_equal(repl[0], 0xe8);
		memcpy(&rel, repl + 1, 4);
		assert_true(0xffffffff81c01100ull + 5 + (u64)(s64)rel ==
			    MON_CALL_GVA + MON_CALL_LOAD_GS);
		/* The tail is the original's: a jump into it runs the nop and the swapgs. */
		assert_memory_equal(repl + 5, site + 5, 6);
		/* So a branch to the byte after the mov is allowed. */
		assert_int_equal(standin_plan(site, sizeof(site), both, 2, 5, repl, &len),
				 CALL_LIT_LOAD_GS);
	}
	/* Another register than %edi, or SS: not the site. */
	memcpy(site, site_nopl, sizeof(site));
	site[4] = 0xe8; /* mov %eax,%gs */
	assert_int_equal(standin_plan(site, sizeof(site), &entry, 1, 5, repl, &len), CALL_LIT_NONE);
	memcpy(site, site_nopl, sizeof(site));
	site[4] = 0xd7; /* mov %edi,%ss */
	assert_int_equal(standin_plan(site, sizeof(site), &entry, 1, 5, repl, &len), CALL_LIT_NONE);
}

static void load_gs_text(const cs_insn *insn, char *text, size_t len)
{
#define D(i, field) standin_disp(&insn[i], offsetof(struct mon_call_data, field))
	snprintf(text, len,
		 "pushfq ;add qword ptr [rsp + 8], 6;test di, 0xfffc;jne 0x%llx;"
		 "mov word ptr [rip + 0x%llx], di;cmp byte ptr [rip + 0x%llx], 0;je 0x%llx;"
		 "mov qword ptr [rip + 0x%llx], 0;mfence ;popfq ;ret ;"
		 "cmp di, word ptr [rip + 0x%llx];jne 0x%llx;mov qword ptr [rip + 0x%llx], rdi;"
		 "mov rdi, qword ptr [rip + 0x%llx];mov rdi, qword ptr [rdi];"
		 "cmp rdi, qword ptr [rip + 0x%llx];mov rdi, qword ptr [rip + 0x%llx];jne 0x%llx;"
		 "mov word ptr [rip + 0x%llx], di;mov qword ptr [rip + 0x%llx], 0;jmp 0x%llx;ud2 ;",
		 (unsigned long long)insn[11].address, D(4, gs_sel), D(5, null_clears),
		 (unsigned long long)insn[8].address, D(7, kernel_gs_base), D(11, user_sel),
		 (unsigned long long)insn[22].address, D(13, load_gs_rdi), D(14, user_sel_desc_gva),
		 D(16, user_sel_desc), D(17, load_gs_rdi), (unsigned long long)insn[22].address,
		 D(19, gs_sel), D(20, kernel_gs_base), (unsigned long long)insn[8].address);
#undef D
}

static void test_load_gs_code(void **state)
{
	static const enum mon_call_stage want[] = {
		MON_CALL_LOAD_GS_AT_ENTRY,
		MON_CALL_LOAD_GS_FLAGS_SAVED,
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_SEL_SET,
		MON_CALL_LOAD_GS_SEL_SET,
		MON_CALL_LOAD_GS_SEL_SET,
		MON_CALL_LOAD_GS_DONE,
		MON_CALL_LOAD_GS_DONE,
		MON_CALL_LOAD_GS_AT_RET,
		/* not null: user_sel's check, then the same two stores */
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_RDI_SAVED,
		MON_CALL_LOAD_GS_RDI_SAVED,
		MON_CALL_LOAD_GS_RDI_SAVED,
		MON_CALL_LOAD_GS_RDI_SAVED,
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_RETURN_SET,
		MON_CALL_LOAD_GS_SEL_SET,
		MON_CALL_LOAD_GS_DONE,
		MON_CALL_LOAD_GS_RETURN_SET,
	};

	(void)state;
	standin_check_code(MON_CALL_LOAD_GS, MON_CALL_LOAD_GS_SITE - 5, want,
			   sizeof(want) / sizeof(want[0]), load_gs_text);
	assert_true(monitor_call_is_load_gs_trap(MON_CALL_GVA + MON_CALL_LOAD_GS +
						 MON_CALL_LOAD_GS_UD2));
}

static void test_load_gs_run(void **state)
{
	static const u64 sels[] = { 0, 3, 0xffffffffffff0000ull, 0x1234567800000002ull };
	struct mon_call_data *d;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
		for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++)
			for (unsigned clears = 0; clears < 2; clears++) {
				struct standin_regs io = { .rax = ~sels[i],
							   .rdi = sels[i],
							   .flags = standin_flag_sets[f] };

				d->gs_sel = 0x2b;
				d->kernel_gs_base = 0x7f0000001000ull;
				d->null_clears = (u8)clears;
				assert_int_equal(standin_run((u64)(uintptr_t)win + MON_CALL_LOAD_GS,
							     MON_CALL_LOAD_GS_SITE - 5, &io),
						 0);
				assert_int_equal(d->gs_sel, (u16)sels[i]);
				assert_int_equal(d->kernel_gs_base, clears ? 0 : 0x7f0000001000ull);
				assert_int_equal(io.rax, ~sels[i]);
				assert_int_equal(io.rdi, sels[i]);
				assert_int_equal(io.flags & STANDIN_KEPT,
						 standin_flag_sets[f] & STANDIN_KEPT);
			}
	munmap(win, 2 * PAGE_SIZE);
}

/*
 * A selector not null: loaded by the stand-in itself when it is user_sel
 * and its descriptor still holds user_sel_desc (gs_sel set, KERNEL_GS_BASE
 * 0, RDI and RAX and the flags kept, the return past the site); any other
 * case reaches the ud2 with nothing changed but the stack the VMM undoes
 * (the site's flags, the return address at the site's end) and RDI whole.
 */
static void test_load_gs_user_sel(void **state)
{
	static const u64 sels[] = { 0x2b, 0xdead00000000002bull, 0x33, 0x28, 0x2f };
	const u64 good = 0x00cff3000000ffffull; /* Linux's __USER_DS: DPL 3 data, accessed */
	const u64 changed[] = { good, good & ~(1ull << 40), good | 0x1000000ull, 1 };
	struct mon_call_data *d;
	u64 live_desc;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	standin_catch_ud2();
	for (size_t c = 0; c < sizeof(changed) / sizeof(changed[0]); c++)
		for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
			for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++) {
				const bool take = c == 0 && (u16)sels[i] == 0x2b;
				struct standin_regs io = { .rax = ~sels[i],
							   .rdi = sels[i],
							   .flags = standin_flag_sets[f] };
				u64 r;

				d->gs_sel = 0x10;
				d->kernel_gs_base = 0x7f0000001000ull;
				d->user_sel = 0x2b;
				d->user_sel_desc_gva = (u64)(uintptr_t)&live_desc;
				d->user_sel_desc = good;
				live_desc = changed[c];
				standin_ill_rip = 0;
				r = standin_run((u64)(uintptr_t)win + MON_CALL_LOAD_GS,
						MON_CALL_LOAD_GS_SITE - 5, &io);
				assert_int_equal(live_desc, changed[c]); /* only read */
				if (take) {
					assert_int_equal(r, 0);
					assert_int_equal(d->gs_sel, 0x2b);
					assert_int_equal(d->kernel_gs_base, 0);
					assert_int_equal(io.rax, ~sels[i]);
					assert_int_equal(io.rdi, sels[i]);
					assert_int_equal(io.flags & STANDIN_KEPT,
							 standin_flag_sets[f] & STANDIN_KEPT);
					continue;
				}
				assert_int_equal(r, 1);
				assert_int_equal(standin_ill_rip, (u64)(uintptr_t)win +
									  MON_CALL_LOAD_GS +
									  MON_CALL_LOAD_GS_UD2);
				assert_int_equal(standin_ill_rdi, sels[i]);
				assert_int_equal(standin_ill_stack[0] & STANDIN_KEPT,
						 standin_flag_sets[f] & STANDIN_KEPT);
				assert_int_equal(standin_ill_stack[1],
						 (u64)(uintptr_t)standin_site_end);
				assert_int_equal(d->gs_sel, 0x10);
				assert_int_equal(d->kernel_gs_base, 0x7f0000001000ull);
			}
	signal(SIGILL, SIG_DFL);
	munmap(win, 2 * PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_gs_plan),
		cmocka_unit_test(test_load_gs_code),
		cmocka_unit_test(test_load_gs_run),
		cmocka_unit_test(test_load_gs_user_sel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
