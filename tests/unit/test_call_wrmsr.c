/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the wrmsr stand-in (vmm/monitor.h, MON_CALL_WRMSR) and its
 * site (vmm/call_literal.c): the site's form and the tail it keeps, the
 * stand-in's code with the stage of each instruction, and the stand-in run
 * natively from a copy of the window's pages. Taken (MSR_FS_BASE, a value
 * canonical with 48 bits, fs_defer 1): the value lands in the slot not
 * published and is published by fs_pending, EAX and ECX as the site's
 * movs leave them, RDX and the flags kept, the return past the site's 8
 * bytes (standin_run). Not taken: the ud2 with the data page, RAX and RCX untouched and
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
	u8 tracing[sizeof(site)];

	(void)state;
	/* The tail kept: the slow path goes on at its 2-byte nop. */
	standin_check_plan(site, sizeof(site), CALL_LIT_WRMSR, MON_CALL_WRMSR, MON_CALL_WRMSR_SITE);
	/* Other registers, rdmsr, or its tracepoint on (a jmp for the nop): not the site. */
	standin_check_not_site(site, sizeof(site), 1, 0xd0);
	standin_check_not_site(site, sizeof(site), 3, 0xf1);
	standin_check_not_site(site, sizeof(site), 5, 0x32);
	memcpy(tracing, site, sizeof(site));
	tracing[7] = 0x10;
	standin_check_not_site(tracing, sizeof(tracing), 6, 0xeb);
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
		for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++) {
			const u64 v = values[i], rdx = 0xabcd000000000000ull | (v >> 32);
			const u8 was = d->fs_pending;
			const u64 kept = was == 1 ? d->fs_base_new[0] : d->fs_base_new[1];
			/* The high bits of RDI and RSI are not the site's: only EDI and ESI count.
			 */
			struct standin_regs io = { .rax = ~0ull,
						   .rcx = ~0ull,
						   .rdx = rdx,
						   .rdi = 0x1234567800000000ull | FS_BASE_MSR,
						   .rsi = 0x8765432100000000ull | (u32)v,
						   .flags = standin_flag_sets[f] };

			assert_int_equal(standin_run((u64)(uintptr_t)win + MON_CALL_WRMSR,
						     MON_CALL_WRMSR_SITE - 5, &io),
					 0);
			/* The slot not published took the value; the published one is untouched. */
			assert_int_equal(d->fs_pending, was == 1 ? 2 : 1);
			assert_int_equal(d->fs_base_new[d->fs_pending - 1], v);
			assert_int_equal(was == 1 ? d->fs_base_new[0] : d->fs_base_new[1], kept);
			assert_int_equal(io.rax, (u32)v);
			assert_int_equal(io.rcx, FS_BASE_MSR);
			assert_int_equal(io.rdx, rdx);
			assert_int_equal(io.flags & STANDIN_KEPT,
					 standin_flag_sets[f] & STANDIN_KEPT);
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
	struct mon_call_data *d;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	standin_catch_ud2();
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		for (size_t f = 0; f < STANDIN_NR_FLAG_SETS; f++) {
			struct standin_regs io = { .rax = ~0ull,
						   .rcx = ~0ull,
						   .rdx = cases[k].value >> 32,
						   .rdi = cases[k].msr,
						   .rsi = (u32)cases[k].value,
						   .flags = standin_flag_sets[f] };

			d->fs_defer = cases[k].defer;
			d->fs_pending = 1;
			d->fs_base_new[0] = 0x5000;
			d->fs_base_new[1] = 0x6000;
			standin_ill_rip = 0;
			assert_int_equal(standin_run((u64)(uintptr_t)win + MON_CALL_WRMSR,
						     MON_CALL_WRMSR_SITE - 5, &io),
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
		cmocka_unit_test(test_wrmsr_plan),
		cmocka_unit_test(test_wrmsr_code),
		cmocka_unit_test(test_wrmsr_run),
		cmocka_unit_test(test_wrmsr_slow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
