/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the load_fs stand-in (vmm/monitor.h, MON_CALL_LOAD_FS) and
 * its site (vmm/call_literal.c): the site's form and the tail it keeps, the
 * stand-in's code with the stage of each instruction, and the stand-in run
 * natively from a copy of the window's pages. There its real load of
 * MON_SEL_UDATA becomes one of this process's user data selector (the
 * monitor's GDT is not the host's), and the runner puts the thread's FS
 * base back before any C code runs. Taken: FS holds the null selector from
 * %ax with base 0, %edx 0x2b, RAX and the flags kept, the return past the
 * site's 9 bytes. Not taken (another user_sel, %ax not null, the live
 * descriptor not the one checked): the ud2 reached with FS, RAX and the
 * site's flags untouched and the return address at the site's end.
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

/* Debian 6.1's load_seg_legacy (FS, next index <= 3, base 0, on AMD), then `jmp`. */
static const u8 site[] = { 0xba, 0x2b, 0x00, 0x00, 0x00, 0x8e, 0xe2, 0x8e, 0xe0, 0xeb, 0x7d };

static void test_load_fs_plan(void **state)
{
	const u16 to_mov[] = { 0x100, 0x180 };
	u8 repl[16];
	unsigned len = 0;

	(void)state;
	/* The tail is the original's: Linux's fixup retries `mov %edx,%fs` there. */
	standin_check_plan(site, sizeof(site), CALL_LIT_LOAD_FS, MON_CALL_LOAD_FS,
			   MON_CALL_LOAD_FS_SITE);
	/* So a branch to either mov is allowed. */
	for (unsigned at = 5; at <= 7; at += 2)
		assert_int_equal(standin_plan(site, sizeof(site), to_mov, 2, at, repl, &len),
				 CALL_LIT_LOAD_FS);
	/* Another selector, register or segment register: not the site. */
	standin_check_not_site(site, sizeof(site), 1, 0x23);
	standin_check_not_site(site, sizeof(site), 6, 0xea);
	standin_check_not_site(site, sizeof(site), 8, 0xe8);
	standin_check_not_site(site, sizeof(site), 8, 0xd0);
}

static void load_fs_text(const cs_insn *insn, char *text, size_t len)
{
#define D(i, field) standin_disp(&insn[i], offsetof(struct mon_call_data, field))
	snprintf(text, len,
		 "pushfq ;add qword ptr [rsp + 8], 4;cmp word ptr [rip + 0x%llx], 0x2b;jne 0x%llx;"
		 "test ax, 0xfffc;jne 0x%llx;mov rdx, qword ptr [rip + 0x%llx];"
		 "mov rdx, qword ptr [rdx];cmp rdx, qword ptr [rip + 0x%llx];jne 0x%llx;"
		 "mov edx, 0x%x;mov fs, edx;mov fs, eax;mov edx, 0x2b;popfq ;ret ;ud2 ;",
		 D(2, user_sel), (unsigned long long)insn[16].address,
		 (unsigned long long)insn[16].address, D(6, user_sel_desc_gva), D(8, user_sel_desc),
		 (unsigned long long)insn[16].address, MON_SEL_UDATA);
#undef D
}

static void test_load_fs_code(void **state)
{
	static const enum mon_call_stage want[] = {
		MON_CALL_LOAD_FS_AT_ENTRY,   MON_CALL_LOAD_FS_FLAGS_SAVED,
		MON_CALL_LOAD_FS_RETURN_SET, MON_CALL_LOAD_FS_RETURN_SET,
		MON_CALL_LOAD_FS_RETURN_SET, MON_CALL_LOAD_FS_RETURN_SET,
		MON_CALL_LOAD_FS_RETURN_SET, MON_CALL_LOAD_FS_RETURN_SET,
		MON_CALL_LOAD_FS_RETURN_SET, MON_CALL_LOAD_FS_RETURN_SET,
		MON_CALL_LOAD_FS_CHECKED,    MON_CALL_LOAD_FS_CHECKED,
		MON_CALL_LOAD_FS_BASE_ZERO,  MON_CALL_LOAD_FS_DONE,
		MON_CALL_LOAD_FS_DONE,	     MON_CALL_LOAD_FS_AT_RET,
		MON_CALL_LOAD_FS_RETURN_SET, /* the ud2 */
	};

	(void)state;
	standin_check_code(MON_CALL_LOAD_FS, MON_CALL_LOAD_FS_SITE - 5, want,
			   sizeof(want) / sizeof(want[0]), load_fs_text);
	assert_true(monitor_call_is_load_fs_trap(MON_CALL_GVA + MON_CALL_LOAD_FS +
						 MON_CALL_LOAD_FS_UD2));
}

/*
 * load_fs_try(entry, rax, flags, out): the thread's FS base saved, RAX :=
 * rax, RDX := ~0, the flags loaded, `call *entry` followed by the 4 bytes
 * the stand-in must skip (int3s), then out = { RAX, RDX, the flags, the FS
 * selector, the FS base }, the FS base put back, and 0 returned. Where the
 * stand-in reaches its ud2, standin_on_sigill notes the state there and
 * resumes at load_fs_recover, which reads FS the same way and returns 1.
 */
u64 load_fs_saved_rsp, load_fs_out, load_fs_saved_base;
u64 load_fs_try(u64 entry, u64 rax, u64 flags, u64 *out);
void load_fs_recover(void);
extern const u8 load_fs_site_end[];
__asm__(".text\n"
	".globl load_fs_try, load_fs_recover, load_fs_site_end\n"
	"load_fs_try:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, load_fs_saved_rsp(%rip)\n\t"
	"mov %rcx, load_fs_out(%rip)\n\t"
	"mov %rdi, %r12\n\t"
	"mov %rsi, %r13\n\t"
	"mov %rdx, %r14\n\t"
	"mov $158, %eax\n\t" /* arch_prctl(ARCH_GET_FS, &load_fs_saved_base) */
	"mov $0x1003, %edi\n\t"
	"lea load_fs_saved_base(%rip), %rsi\n\t"
	"syscall\n\t"
	"mov %r13, %rax\n\t"
	"mov $-1, %rdx\n\t"
	"push %r14\n\t"
	"popfq\n\t"
	"call *%r12\n\t"
	".byte 0xcc, 0xcc, 0xcc, 0xcc\n" /* the tail: never run */
	"load_fs_site_end:\n\t"
	"pushfq\n\t"
	"pop %r14\n\t"
	"mov load_fs_out(%rip), %rcx\n\t"
	"mov %rax, (%rcx)\n\t"
	"mov %rdx, 8(%rcx)\n\t"
	"mov %r14, 16(%rcx)\n\t"
	"xor %r15d, %r15d\n\t"
	"jmp 2f\n"
	"load_fs_recover:\n\t"
	"mov load_fs_saved_rsp(%rip), %rsp\n\t"
	"mov $1, %r15d\n"
	"2:\n\t"
	"mov load_fs_out(%rip), %rcx\n\t"
	"xor %eax, %eax\n\t"
	"mov %fs, %ax\n\t"
	"mov %rax, 24(%rcx)\n\t"
	"lea 32(%rcx), %rsi\n\t" /* arch_prctl(ARCH_GET_FS, &out[4]) */
	"mov $158, %eax\n\t"
	"mov $0x1003, %edi\n\t"
	"syscall\n\t"
	"mov $158, %eax\n\t" /* arch_prctl(ARCH_SET_FS, load_fs_saved_base): TLS back */
	"mov $0x1002, %edi\n\t"
	"mov load_fs_saved_base(%rip), %rsi\n\t"
	"syscall\n\t"
	"mov %r15, %rax\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"cld\n\t"
	"ret\n");

/*
 * A copy of the window whose stand-in loads this process's user data
 * selector where the monitor's loads MON_SEL_UDATA (both: data, DPL 3,
 * base 0), with user_sel 0x2b checked against `good` at *live.
 */
static u8 *fs_window(struct mon_call_data **d, u64 *live, u64 good)
{
	const u8 mov_udata[] = { 0xba, MON_SEL_UDATA & 0xff, MON_SEL_UDATA >> 8, 0, 0 };
	u8 *win = standin_window(d), *at = NULL;
	u16 ss;

	for (unsigned i = MON_CALL_LOAD_FS; i < MON_CALL_LOAD_FS + MON_CALL_SLOT; i++)
		if (!memcmp(win + i, mov_udata, sizeof(mov_udata)))
			at = win + i;
	assert_non_null(at);
	__asm__ volatile("mov %%ss, %0" : "=r"(ss));
	at[1] = (u8)ss;
	at[2] = (u8)(ss >> 8);
	(*d)->user_sel = 0x2b;
	(*d)->user_sel_desc_gva = (u64)(uintptr_t)live;
	(*d)->user_sel_desc = good;
	return win;
}

static const u64 user_ds = 0x00cff3000000ffffull; /* Linux's __USER_DS: DPL 3 data, accessed */

static void test_load_fs_run(void **state)
{
	static const u64 raxes[] = { 0, 3, 0xdead000000000001ull, 0x1234567800000002ull };
	struct mon_call_data *d;
	u64 live = user_ds;
	u8 *win;

	(void)state;
	win = fs_window(&d, &live, user_ds);
	for (size_t i = 0; i < sizeof(raxes) / sizeof(raxes[0]); i++)
		for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++) {
			u64 out[5] = { 0 };

			assert_int_equal(load_fs_try((u64)(uintptr_t)win + MON_CALL_LOAD_FS,
						     raxes[i], standin_flag_sets[f], out),
					 0);
			assert_int_equal(out[0], raxes[i]);
			assert_int_equal(out[1], 0x2b);
			assert_int_equal(out[2] & STANDIN_KEPT,
					 standin_flag_sets[f] & STANDIN_KEPT);
			assert_int_equal(out[3], (u16)raxes[i]); /* the null selector, RPL kept */
			assert_int_equal(out[4], 0);		 /* base 0 */
			assert_int_equal(live, user_ds);	 /* only read */
		}
	munmap(win, 2 * PAGE_SIZE);
}

static void test_load_fs_slow(void **state)
{
	static const struct {
		const char *why; /* for the reader */
		u16 user_sel;
		u64 rax, live;
	} cases[] = {
		{ "another user_sel", 0x33, 0, 0 },
		{ "a second selector not null", 0x2b, 0x2b, 0 },
		{ "a second selector not null (index 1)", 0x2b, 0x8, 0 },
		{ "the base changed in place", 0x2b, 0, 0x5000ull << 16 },
		{ "the A bit cleared", 0x2b, 0, 1ull << 40 },
		{ "the descriptor never checked", 0x2b, 0, 0 },
	};
	struct mon_call_data *d;
	u64 live;
	u8 *win;

	(void)state;
	win = fs_window(&d, &live, user_ds);
	standin_catch_ud2();
	standin_recover = load_fs_recover; /* its own runner: FS back first */
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++) {
			const bool never = k == sizeof(cases) / sizeof(cases[0]) - 1;
			u64 out[5] = { 0 }, base_before = 0;

			d->user_sel = cases[k].user_sel;
			d->user_sel_desc_gva =
				never ? (u64)(uintptr_t)&d->zero : (u64)(uintptr_t)&live;
			d->user_sel_desc = never ? 1 : user_ds;
			d->zero = 0;
			live = user_ds ^ cases[k].live;
			standin_ill_rip = 0;
			__asm__ volatile("mov %%fs:0, %0"
					 : "=r"(base_before)); /* glibc's TCB self */
			assert_int_equal(load_fs_try((u64)(uintptr_t)win + MON_CALL_LOAD_FS,
						     cases[k].rax, standin_flag_sets[f], out),
					 1);
			assert_int_equal(standin_ill_rip, (u64)(uintptr_t)win + MON_CALL_LOAD_FS +
								  MON_CALL_LOAD_FS_UD2);
			/* The site's flags, then its end: what the VMM puts back. */
			assert_int_equal(standin_ill_stack[0] & STANDIN_KEPT,
					 standin_flag_sets[f] & STANDIN_KEPT);
			assert_int_equal(standin_ill_stack[1], (u64)(uintptr_t)load_fs_site_end);
			assert_int_equal(out[3], 0);	       /* FS as it was: null */
			assert_int_equal(out[4], base_before); /* and the thread's base */
		}
	signal(SIGILL, SIG_DFL);
	munmap(win, 2 * PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_fs_plan),
		cmocka_unit_test(test_load_fs_code),
		cmocka_unit_test(test_load_fs_run),
		cmocka_unit_test(test_load_fs_slow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
