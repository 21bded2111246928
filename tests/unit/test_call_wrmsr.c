/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the wrmsr stand-in (vmm/monitor.h, MON_CALL_WRMSR) and its
 * site (vmm/call_literal.c): the site's form and the tail it keeps, the
 * stand-in's code with the stage of each instruction, and the stand-in run
 * natively from a copy of the window's pages. Taken (MSR_FS_BASE, a value
 * canonical with 48 bits, fs_defer 1): the value lands in the slot not
 * published and is published by fs_pending, EAX and ECX as the site's
 * movs leave them, RDX and the flags kept, the return past the site's 8
 * bytes. Not taken: the ud2 with the data page, RAX and RCX untouched and
 * the site's flags and end on the stack. It loads no real register.
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

#define FS_BASE_MSR 0xc0000100u

/* Debian 6.1's native_write_msr, its tracepoint off, then `jmp` to the return thunk. */
static const u8 site[] = { 0x89, 0xf0, 0x89, 0xf9, 0x0f, 0x30, 0x66, 0x90, 0xe9, 0, 0, 0, 0 };

static void test_wrmsr_plan(void **state)
{
	const u16 entry = 0x100;
	u8 bytes[sizeof(site)], repl[16];
	unsigned len = 0;
	s32 rel;

	(void)state;
	assert_int_equal(standin_plan(site, sizeof(site), &entry, 1, 0, repl, &len),
			 CALL_LIT_WRMSR);
	assert_int_equal(len, MON_CALL_WRMSR_SITE);
	assert_int_equal(repl[0], 0xe8);
	memcpy(&rel, repl + 1, 4);
	assert_true(0xffffffff81c01100ull + 5 + (u64)(s64)rel == MON_CALL_GVA + MON_CALL_WRMSR);
	/* The tail is the original's: the slow path goes on at its 2-byte nop. */
	assert_memory_equal(repl + 5, site + 5, 3);
	/* Its tracepoint on (a jmp for the nop), other registers, rdmsr: not the site. */
	for (unsigned k = 0; k < 4; k++) {
		static const struct {
			unsigned at;
			u8 byte;
		} change[] = { { 6, 0xeb }, { 1, 0xd0 }, { 3, 0xf1 }, { 5, 0x32 } };

		memcpy(bytes, site, sizeof(site));
		bytes[change[k].at] = change[k].byte;
		if (change[k].at == 6)
			bytes[7] = 0x10;
		assert_int_equal(standin_plan(bytes, sizeof(bytes), &entry, 1, 0, repl, &len),
				 CALL_LIT_NONE);
	}
}

static void wrmsr_text(const cs_insn *insn, char *text, size_t len)
{
#define D(i, field, add) (standin_disp(&insn[i], offsetof(struct mon_call_data, field)) + (add))
	snprintf(text, len,
		 "pushfq ;add qword ptr [rsp + 8], 3;cmp edi, 0xc0000100;jne 0x%llx;"
		 "cmp byte ptr [rip + 0x%llx], 0;je 0x%llx;mov dword ptr [rip + 0x%llx], edx;"
		 "add dword ptr [rip + 0x%llx], 0x8000;test dword ptr [rip + 0x%llx], 0xffff0000;"
		 "jne 0x%llx;cmp byte ptr [rip + 0x%llx], 1;je 0x%llx;"
		 "mov dword ptr [rip + 0x%llx], esi;mov dword ptr [rip + 0x%llx], edx;"
		 "mov byte ptr [rip + 0x%llx], 1;jmp 0x%llx;"
		 "mov dword ptr [rip + 0x%llx], esi;mov dword ptr [rip + 0x%llx], edx;"
		 "mov byte ptr [rip + 0x%llx], 2;mov eax, esi;mov ecx, edi;popfq ;ret ;ud2 ;",
		 (unsigned long long)insn[23].address, D(4, fs_defer, 0),
		 (unsigned long long)insn[23].address, D(6, fs_scratch, 0), D(7, fs_scratch, 0),
		 D(8, fs_scratch, 0), (unsigned long long)insn[23].address, D(10, fs_pending, 0),
		 (unsigned long long)insn[16].address, D(12, fs_base_new, 0), D(13, fs_base_new, 4),
		 D(14, fs_pending, 0), (unsigned long long)insn[19].address, D(16, fs_base_new, 8),
		 D(17, fs_base_new, 12), D(18, fs_pending, 0));
#undef D
}

static void test_wrmsr_code(void **state)
{
	static const enum mon_call_stage want[] = {
		MON_CALL_WRMSR_AT_ENTRY, MON_CALL_WRMSR_FLAGS_SAVED, MON_CALL_WRMSR_RETURN_SET,
		MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET,
		MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET,
		MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET,
		/* slot 0 */
		MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET,
		MON_CALL_WRMSR_PUBLISHED,
		/* slot 1 */
		MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_RETURN_SET,
		/* the site's movs */
		MON_CALL_WRMSR_PUBLISHED, MON_CALL_WRMSR_PUBLISHED, MON_CALL_WRMSR_DONE,
		MON_CALL_WRMSR_AT_RET, MON_CALL_WRMSR_RETURN_SET, /* the ud2 */
	};

	(void)state;
	standin_check_code(MON_CALL_WRMSR, MON_CALL_WRMSR_SITE - 5, want,
			   sizeof(want) / sizeof(want[0]), wrmsr_text);
	assert_true(monitor_call_is_wrmsr_trap(MON_CALL_GVA + MON_CALL_WRMSR + MON_CALL_WRMSR_UD2));
}

/*
 * wrmsr_try(entry, edi, esi, rdx, flags, out): RDI, RSI, RDX as given, RAX
 * and RCX ~0, the flags loaded, `call *entry` followed by the 3 bytes the
 * stand-in must skip (int3s), then out = { RAX, RCX, RDX, the flags, RDI,
 * RSI } and 0 returned. Where the stand-in reaches its ud2,
 * standin_on_sigill notes the state there and resumes at wrmsr_recover,
 * which returns 1.
 */
u64 wrmsr_saved_rsp, wrmsr_out;
u64 wrmsr_try(u64 entry, u64 edi, u64 esi, u64 rdx, u64 flags, u64 *out);
void wrmsr_recover(void);
extern const u8 wrmsr_site_end[];
__asm__(".text\n"
	".globl wrmsr_try, wrmsr_recover, wrmsr_site_end\n"
	"wrmsr_try:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, wrmsr_saved_rsp(%rip)\n\t"
	"mov %r9, wrmsr_out(%rip)\n\t"
	"mov %rdi, %r12\n\t"
	"mov %rsi, %rdi\n\t"
	"mov %rdx, %rsi\n\t"
	"mov %rcx, %rdx\n\t"
	"mov $-1, %rax\n\t"
	"mov $-1, %rcx\n\t"
	"push %r8\n\t"
	"popfq\n\t"
	"call *%r12\n\t"
	".byte 0xcc, 0xcc, 0xcc\n" /* the tail: never run */
	"wrmsr_site_end:\n\t"
	"pushfq\n\t"
	"pop %r14\n\t"
	"mov wrmsr_out(%rip), %r8\n\t"
	"mov %rax, (%r8)\n\t"
	"mov %rcx, 8(%r8)\n\t"
	"mov %rdx, 16(%r8)\n\t"
	"mov %r14, 24(%r8)\n\t"
	"mov %rdi, 32(%r8)\n\t"
	"mov %rsi, 40(%r8)\n\t"
	"xor %eax, %eax\n\t"
	"jmp 1f\n"
	"wrmsr_recover:\n\t"
	"mov wrmsr_saved_rsp(%rip), %rsp\n\t"
	"mov $1, %eax\n"
	"1:\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"cld\n\t"
	"ret\n");

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

static const u64 flag_sets[] = { 0x202, 0x202 | ARITH, 0x202 | RFLAGS_DF | RFLAGS_CF };

static void test_wrmsr_run(void **state)
{
	static const u64 values[] = { 0, 0x7f0000001000ull, 0x00007fffffffffffull,
				      0xffff800000000000ull, 0xfffffffffffff000ull };
	struct mon_call_data *d;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	d->fs_defer = 1;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
			const u64 v = values[i], rdx = 0xabcd000000000000ull | (v >> 32);
			const u8 was = d->fs_pending;
			const u64 kept = was == 1 ? d->fs_base_new[0] : d->fs_base_new[1];
			u64 out[6];

			/* The high bits of RDI and RSI are not the site's: only EDI and ESI count.
			 */
			assert_int_equal(wrmsr_try((u64)(uintptr_t)win + MON_CALL_WRMSR,
						   0x1234567800000000ull | FS_BASE_MSR,
						   0x8765432100000000ull | (u32)v, rdx,
						   flag_sets[f], out),
					 0);
			/* The slot not published took the value; the published one is untouched. */
			assert_int_equal(d->fs_pending, was == 1 ? 2 : 1);
			assert_int_equal(d->fs_base_new[d->fs_pending - 1], v);
			assert_int_equal(was == 1 ? d->fs_base_new[0] : d->fs_base_new[1], kept);
			assert_int_equal(out[0], (u32)v);
			assert_int_equal(out[1], FS_BASE_MSR);
			assert_int_equal(out[2], rdx);
			assert_int_equal(out[3] & (ARITH | RFLAGS_DF),
					 flag_sets[f] & (ARITH | RFLAGS_DF));
		}
	munmap(win, 2 * PAGE_SIZE);
}

static void test_wrmsr_slow(void **state)
{
	static const struct {
		const char *why; /* for the reader */
		u32 msr;
		u64 value;
		u8 defer;
	} cases[] = {
		{ "another MSR", 0xc0000101u, 0x1000, 1 },
		{ "KERNEL_GS_BASE", 0xc0000102u, 0x1000, 1 },
		{ "not deferring", FS_BASE_MSR, 0x1000, 0 },
		{ "bit 47 alone", FS_BASE_MSR, 0x0000800000000000ull, 1 },
		{ "bit 63 alone", FS_BASE_MSR, 0x8000000000000000ull, 1 },
		{ "canonical with 57 bits only", FS_BASE_MSR, 0x00ff800000000000ull, 1 },
	};
	struct sigaction sa = { .sa_sigaction = standin_on_sigill, .sa_flags = SA_SIGINFO };
	struct mon_call_data *d;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	standin_recover = wrmsr_recover;
	assert_int_equal(sigaction(SIGILL, &sa, NULL), 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
			u64 out[6];

			d->fs_defer = cases[k].defer;
			d->fs_pending = 1;
			d->fs_base_new[0] = 0x5000;
			d->fs_base_new[1] = 0x6000;
			standin_ill_rip = 0;
			assert_int_equal(wrmsr_try((u64)(uintptr_t)win + MON_CALL_WRMSR,
						   cases[k].msr, (u32)cases[k].value,
						   cases[k].value >> 32, flag_sets[f], out),
					 1);
			assert_int_equal(standin_ill_rip,
					 (u64)(uintptr_t)win + MON_CALL_WRMSR + MON_CALL_WRMSR_UD2);
			/* Nothing that counts: no register, the published base as it was. */
			assert_int_equal(standin_ill_rax, ~0ull);
			assert_int_equal(standin_ill_rcx, ~0ull);
			assert_int_equal(standin_ill_rdi, cases[k].msr);
			assert_int_equal(d->fs_pending, 1);
			assert_int_equal(d->fs_base_new[0], 0x5000);
			/* The site's flags, then its end: what the VMM puts back. */
			assert_int_equal(standin_ill_stack[0] & (ARITH | RFLAGS_DF),
					 flag_sets[f] & (ARITH | RFLAGS_DF));
			assert_int_equal(standin_ill_stack[1], (u64)(uintptr_t)wrmsr_site_end);
		}
	signal(SIGILL, SIG_DFL);
	munmap(win, 2 * PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrmsr_plan),
		cmocka_unit_test(test_wrmsr_code),
		cmocka_unit_test(test_wrmsr_run),
		cmocka_unit_test(test_wrmsr_slow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
