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
	const u16 entry = 0x100, to_mov[] = { 0x100, 0x180 };
	u8 bytes[sizeof(site)], repl[16];
	unsigned len = 0;
	s32 rel;

	(void)state;
	assert_int_equal(standin_plan(site, sizeof(site), &entry, 1, 0, repl, &len),
			 CALL_LIT_SS_LOAD);
	assert_int_equal(len, MON_CALL_SS_LOAD_SITE);
	assert_int_equal(repl[0], 0xe8);
	memcpy(&rel, repl + 1, 4);
	assert_true(0xffffffff81c01100ull + 5 + (u64)(s64)rel == MON_CALL_GVA + MON_CALL_SS_LOAD);
	assert_memory_equal(repl + 5, site + 5, 2); /* the mov, kept for the slow path */
	assert_int_equal(standin_plan(site, sizeof(site), to_mov, 2, 5, repl, &len),
			 CALL_LIT_SS_LOAD);
	/* Another selector, register, or segment register: not the site. */
	for (unsigned k = 0; k < 3; k++) {
		static const struct {
			unsigned at;
			u8 byte;
		} change[] = { { 1, 0x10 }, { 6, 0xd1 }, { 6, 0xe0 } };

		memcpy(bytes, site, sizeof(site));
		bytes[change[k].at] = change[k].byte;
		assert_int_equal(standin_plan(bytes, sizeof(bytes), &entry, 1, 0, repl, &len),
				 CALL_LIT_NONE);
	}
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

/*
 * ss_load_try(entry, rax, flags, out): RAX as given, the flags loaded,
 * `call *entry` followed by the 2 bytes the stand-in must skip (int3s),
 * then out = { RAX, the flags } and 0 returned. Where the stand-in reaches
 * its ud2, standin_on_sigill notes the state there and resumes at
 * ss_load_recover, which returns 1.
 */
u64 ss_load_saved_rsp, ss_load_out;
u64 ss_load_try(u64 entry, u64 rax, u64 flags, u64 *out);
void ss_load_recover(void);
extern const u8 ss_load_site_end[];
__asm__(".text\n"
	".globl ss_load_try, ss_load_recover, ss_load_site_end\n"
	"ss_load_try:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, ss_load_saved_rsp(%rip)\n\t"
	"mov %rcx, ss_load_out(%rip)\n\t"
	"mov %rdi, %r12\n\t"
	"mov %rsi, %rax\n\t"
	"push %rdx\n\t"
	"popfq\n\t"
	"call *%r12\n\t"
	".byte 0xcc, 0xcc\n" /* the tail: never run */
	"ss_load_site_end:\n\t"
	"pushfq\n\t"
	"pop %r14\n\t"
	"mov ss_load_out(%rip), %rcx\n\t"
	"mov %rax, (%rcx)\n\t"
	"mov %r14, 8(%rcx)\n\t"
	"xor %eax, %eax\n\t"
	"jmp 1f\n"
	"ss_load_recover:\n\t"
	"mov ss_load_saved_rsp(%rip), %rsp\n\t"
	"mov $1, %eax\n"
	"1:\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"cld\n\t"
	"ret\n");

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

static const u64 flag_sets[] = { 0x202, 0x202 | ARITH, 0x202 | RFLAGS_DF | RFLAGS_CF };
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
	for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
		u64 out[2];

		vmm_fill(d, &live);
		assert_int_equal(ss_load_try((u64)(uintptr_t)win + MON_CALL_SS_LOAD,
					     0xdead0000beef0000ull, flag_sets[f], out),
				 0);
		assert_int_equal(d->ss_loaded, 1);
		assert_int_equal(d->kernel_ss, 0x18);
		assert_int_equal(d->ss_desc_gva, (u64)(uintptr_t)&live);
		assert_int_equal(d->ss_desc, kernel_ds);
		assert_int_equal(out[0], 0x18); /* mov $0x18,%eax clears the upper half */
		assert_int_equal(out[1] & (ARITH | RFLAGS_DF), flag_sets[f] & (ARITH | RFLAGS_DF));
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
	struct sigaction sa = { .sa_sigaction = standin_on_sigill, .sa_flags = SA_SIGINFO };
	struct mon_call_data *d;
	u64 live;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	standin_recover = ss_load_recover;
	assert_int_equal(sigaction(SIGILL, &sa, NULL), 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
			u64 out[2];

			vmm_fill(d, &live);
			d->vif = cases[k].vif;
			live = kernel_ds ^ cases[k].flip;
			if (cases[k].never) {
				d->ss_key_gva = (u64)(uintptr_t)&d->zero;
				d->ss_key_desc = 1;
			}
			standin_ill_rip = 0;
			assert_int_equal(ss_load_try((u64)(uintptr_t)win + MON_CALL_SS_LOAD, 0x77,
						     flag_sets[f], out),
					 1);
			assert_int_equal(standin_ill_rip, (u64)(uintptr_t)win + MON_CALL_SS_LOAD +
								  MON_CALL_SS_LOAD_UD2);
			assert_int_equal(d->ss_loaded, 0);
			assert_int_equal(d->kernel_ss, 0);
			assert_int_equal(d->ss_desc_gva, 0x1111);
			assert_int_equal(d->ss_desc, 0x2222);
			assert_int_equal(standin_ill_stack[0] & (ARITH | RFLAGS_DF),
					 flag_sets[f] & (ARITH | RFLAGS_DF));
			assert_int_equal(standin_ill_stack[1], (u64)(uintptr_t)ss_load_site_end);
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
