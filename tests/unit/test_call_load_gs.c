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

/*
 * load_gs_try(entry, sel, flags, out): RDI := sel, RAX := ~sel, the flags
 * loaded, `call *entry` followed by the 6 bytes the stand-in must skip
 * (int3s), then out = { RAX, RDI, the flags }, and 0 returned. Where the
 * stand-in reaches its ud2, standin_on_sigill notes the state there and
 * resumes at load_gs_recover, which returns 1.
 */
u64 load_gs_saved_rsp, load_gs_out;
u64 load_gs_try(u64 entry, u64 sel, u64 flags, u64 *out);
void load_gs_recover(void);
__asm__(".text\n"
	".globl load_gs_try, load_gs_recover\n"
	"load_gs_try:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, load_gs_saved_rsp(%rip)\n\t"
	"mov %rcx, load_gs_out(%rip)\n\t"
	"mov %rsi, %rax\n\t"
	"not %rax\n\t"
	"mov %rdi, %r8\n\t"
	"mov %rsi, %rdi\n\t"
	"push %rdx\n\t"
	"popfq\n\t"
	"call *%r8\n\t"
	".byte 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc\n\t" /* the tail: never run */
	"pushfq\n\t"
	"pop %rdx\n\t"
	"mov load_gs_out(%rip), %rcx\n\t"
	"mov %rax, (%rcx)\n\t"
	"mov %rdi, 8(%rcx)\n\t"
	"mov %rdx, 16(%rcx)\n\t"
	"xor %eax, %eax\n\t"
	"jmp 1f\n"
	"load_gs_recover:\n\t"
	"mov load_gs_saved_rsp(%rip), %rsp\n\t"
	"mov $1, %eax\n"
	"1:\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"cld\n\t"
	"ret\n");

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

static void test_load_gs_run(void **state)
{
	static const u64 sels[] = { 0, 3, 0xffffffffffff0000ull, 0x1234567800000002ull };
	static const u64 flags[] = { 0x202, 0x202 | ARITH, 0x202 | RFLAGS_DF | RFLAGS_CF };
	struct mon_call_data *d;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
		for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
			for (unsigned clears = 0; clears < 2; clears++) {
				u64 out[3];

				d->gs_sel = 0x2b;
				d->kernel_gs_base = 0x7f0000001000ull;
				d->null_clears = (u8)clears;
				assert_int_equal(load_gs_try((u64)(uintptr_t)win + MON_CALL_LOAD_GS,
							     sels[i], flags[f], out),
						 0);
				assert_int_equal(d->gs_sel, (u16)sels[i]);
				assert_int_equal(d->kernel_gs_base, clears ? 0 : 0x7f0000001000ull);
				assert_int_equal(out[0], ~sels[i]);
				assert_int_equal(out[1], sels[i]);
				assert_int_equal(out[2] & (ARITH | RFLAGS_DF),
						 flags[f] & (ARITH | RFLAGS_DF));
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
	static const u64 flags[] = { 0x202, 0x202 | ARITH, 0x202 | RFLAGS_DF | RFLAGS_CF };
	const u64 good = 0x00cff3000000ffffull; /* Linux's __USER_DS: DPL 3 data, accessed */
	const u64 changed[] = { good, good & ~(1ull << 40), good | 0x1000000ull, 1 };
	struct sigaction sa = { .sa_sigaction = standin_on_sigill, .sa_flags = SA_SIGINFO };
	struct mon_call_data *d;
	u64 live_desc;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	standin_recover = load_gs_recover;
	assert_int_equal(sigaction(SIGILL, &sa, NULL), 0);
	for (size_t c = 0; c < sizeof(changed) / sizeof(changed[0]); c++)
		for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
			for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
				const bool take = c == 0 && (u16)sels[i] == 0x2b;
				u64 out[3] = { 0 }, r;

				d->gs_sel = 0x10;
				d->kernel_gs_base = 0x7f0000001000ull;
				d->user_sel = 0x2b;
				d->user_sel_desc_gva = (u64)(uintptr_t)&live_desc;
				d->user_sel_desc = good;
				live_desc = changed[c];
				standin_ill_rip = 0;
				r = load_gs_try((u64)(uintptr_t)win + MON_CALL_LOAD_GS, sels[i],
						flags[f], out);
				assert_int_equal(live_desc, changed[c]); /* only read */
				if (take) {
					assert_int_equal(r, 0);
					assert_int_equal(d->gs_sel, 0x2b);
					assert_int_equal(d->kernel_gs_base, 0);
					assert_int_equal(out[0], ~sels[i]);
					assert_int_equal(out[1], sels[i]);
					assert_int_equal(out[2] & (ARITH | RFLAGS_DF),
							 flags[f] & (ARITH | RFLAGS_DF));
					continue;
				}
				assert_int_equal(r, 1);
				assert_int_equal(standin_ill_rip, (u64)(uintptr_t)win +
									  MON_CALL_LOAD_GS +
									  MON_CALL_LOAD_GS_UD2);
				assert_int_equal(standin_ill_rdi, sels[i]);
				assert_int_equal(standin_ill_stack[0] & (ARITH | RFLAGS_DF),
						 flags[f] & (ARITH | RFLAGS_DF));
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
