/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the swapgs stand-in (vmm/monitor.h, MON_CALL_SWAPGS): its
 * code with the stage of each instruction, and the stand-in run natively
 * from a copy of the window's pages: the GS base and the data page's
 * kernel_gs_base exchanged, RAX and every flag kept, and the return past
 * the site's 1 byte of pad. The run needs rdgsbase/wrgsbase at CPL3
 * (HWCAP2_FSGSBASE) and skips, saying so, where the host does not allow them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "shadow/x86.h"
#include "tests/unit/standin.h"
#include "vmm/monitor.h"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1u << 1) /* Linux's asm/hwcap2.h */
#endif

static void swapgs_text(const cs_insn *insn, char *text, size_t len)
{
	snprintf(text, len,
		 "pushfq ;add qword ptr [rsp + 8], 1;push rax;rdgsbase rax;xchg qword ptr [rip + "
		 "0x%llx], rax;wrgsbase rax;pop rax;lfence ;popfq ;ret ;",
		 standin_disp(&insn[4], offsetof(struct mon_call_data, kernel_gs_base)));
}

static void test_swapgs_code(void **state)
{
	static const enum mon_call_stage want[] = {
		MON_CALL_SWAPGS_AT_ENTRY,  MON_CALL_SWAPGS_FLAGS_SAVED, MON_CALL_SWAPGS_RETURN_SET,
		MON_CALL_SWAPGS_RAX_SAVED, MON_CALL_SWAPGS_RAX_SAVED,	MON_CALL_SWAPGS_EXCHANGED,
		MON_CALL_SWAPGS_GS_SET,	   MON_CALL_SWAPGS_RAX_BACK,	MON_CALL_SWAPGS_RAX_BACK,
		MON_CALL_SWAPGS_AT_RET,
	};

	(void)state;
	standin_check_code(MON_CALL_SWAPGS, MON_CALL_SWAPGS_PAD, want,
			   sizeof(want) / sizeof(want[0]), swapgs_text);
	assert_int_equal(monitor_call_entry(MON_CALL_SWAPGS, MON_CALL_SWAPGS_PAD),
			 MON_CALL_GVA + MON_CALL_SWAPGS);
}

/*
 * swapgs_run(entry, gs, flags, out): GS base := gs, RAX := ~gs, the flags
 * loaded, `call *entry` followed by 1 byte the stand-in must skip (an
 * int3), then out = { GS base, RAX, the flags }, and the GS base back as
 * it was (glibc keeps nothing in GS on x86-64, but leave it as found).
 */
void swapgs_run(u64 entry, u64 gs, u64 flags, u64 *out);
__asm__(".text\n"
	".globl swapgs_run\n"
	"swapgs_run:\n\t"
	"push %rbx\n\t"
	"rdgsbase %rbx\n\t"
	"wrgsbase %rsi\n\t"
	"mov %rsi, %rax\n\t"
	"not %rax\n\t"
	"push %rdx\n\t"
	"popfq\n\t"
	"call *%rdi\n\t"
	".byte 0xcc\n\t" /* the pad: never run */
	"pushfq\n\t"
	"pop %rdx\n\t"
	"rdgsbase %rsi\n\t"
	"mov %rsi, (%rcx)\n\t"
	"mov %rax, 8(%rcx)\n\t"
	"mov %rdx, 16(%rcx)\n\t"
	"wrgsbase %rbx\n\t"
	"pop %rbx\n\t"
	"cld\n\t" /* the caller's C code wants DF 0 */
	"ret\n");

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

static void test_swapgs_run(void **state)
{
	static const u64 bases[][2] = {
		{ 0, 0xffff888007c00000ull },
		{ 0x00007f12345678c0ull, 0xffff88801fc00000ull },
		{ 0xffff88801fc00000ull, 0 },
		{ 0x0000555555554000ull, 0x00007fffffffe000ull },
	};
	static const u64 flags[] = { 0x202, 0x202 | ARITH, 0x202 | RFLAGS_DF | RFLAGS_CF };
	struct mon_call_data *d;
	u8 *win;

	(void)state;
	if (!(getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE)) {
		print_message("SKIP: this host does not allow rdgsbase/wrgsbase at CPL3 "
			      "(no HWCAP2_FSGSBASE): the stand-in cannot run here\n");
		skip();
	}
	win = standin_window(&d);
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++)
		for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
			u64 out[3];

			d->kernel_gs_base = bases[i][1];
			swapgs_run((u64)(uintptr_t)win + MON_CALL_SWAPGS, bases[i][0], flags[f],
				   out);
			assert_int_equal(out[0], bases[i][1]);
			assert_int_equal(d->kernel_gs_base, bases[i][0]);
			assert_int_equal(out[1], ~bases[i][0]);
			assert_int_equal(out[2] & (ARITH | RFLAGS_DF),
					 flags[f] & (ARITH | RFLAGS_DF));
		}
	munmap(win, 2 * PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swapgs_code),
		cmocka_unit_test(test_swapgs_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
