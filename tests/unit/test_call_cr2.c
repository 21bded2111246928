/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the CR2 stand-in (vmm/monitor.h, MON_CALL_RD_CR2): its
 * code with the stage of each instruction, and the stand-in run natively
 * from a copy of the window's pages: RAX must be the data page's cr2, every
 * flag kept, and the return past the site's 1 byte of pad.
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
#include <sys/mman.h>

#include "shadow/x86.h"
#include "tests/unit/standin.h"
#include "vmm/monitor.h"

static void cr2_text(const cs_insn *insn, char *text, size_t len)
{
	snprintf(
		text, len,
		"pushfq ;add qword ptr [rsp + 8], 1;mov rax, qword ptr [rip + 0x%llx];popfq ;ret ;",
		standin_disp(&insn[2], offsetof(struct mon_call_data, cr2)));
}

static void test_cr2_code(void **state)
{
	/* The mov and the popfq at RETURN_SET: a trap there is finished with RAX from the VMM. */
	static const enum mon_call_stage want[] = { MON_CALL_AT_ENTRY, MON_CALL_FLAGS_SAVED,
						    MON_CALL_RETURN_SET, MON_CALL_RETURN_SET,
						    MON_CALL_AT_RET };

	(void)state;
	standin_check_code(MON_CALL_RD_CR2, MON_CALL_CR2_PAD, want, sizeof(want) / sizeof(want[0]),
			   cr2_text);
	assert_int_equal(monitor_call_entry(MON_CALL_RD_CR2, MON_CALL_CR2_PAD),
			 MON_CALL_GVA + MON_CALL_RD_CR2);
}

/*
 * cr2_run(entry, flags, out): the flags loaded, `call *entry` followed by 1
 * byte the stand-in must skip (an int3), then out = { RAX, the flags }.
 */
void cr2_run(u64 entry, u64 flags, u64 *out);
__asm__(".text\n"
	".globl cr2_run\n"
	"cr2_run:\n\t"
	"push %rsi\n\t"
	"popfq\n\t"
	"xor %eax, %eax\n\t" /* changes the flags: reload them */
	"push %rsi\n\t"
	"popfq\n\t"
	"call *%rdi\n\t"
	".byte 0xcc\n\t" /* the pad: never run */
	"pushfq\n\t"
	"pop %rsi\n\t"
	"mov %rax, (%rdx)\n\t"
	"mov %rsi, 8(%rdx)\n\t"
	"cld\n\t" /* the caller's C code wants DF 0 */
	"ret\n");

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

static void test_cr2_run(void **state)
{
	static const u64 cr2s[] = { 0, 0xffffffffffffffffull, 0x00007f1234567ff8ull,
				    0xffffc90000001000ull };
	static const u64 flags[] = { 0x202, 0x202 | ARITH, 0x202 | RFLAGS_DF | RFLAGS_CF };
	struct mon_call_data *d;
	u8 *win;

	(void)state;
	win = standin_window(&d);
	for (size_t i = 0; i < sizeof(cr2s) / sizeof(cr2s[0]); i++)
		for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
			u64 out[2];

			d->cr2 = cr2s[i];
			cr2_run((u64)(uintptr_t)win + MON_CALL_RD_CR2, flags[f], out);
			assert_int_equal(out[0], cr2s[i]);
			assert_int_equal(out[1] & (ARITH | RFLAGS_DF),
					 flags[f] & (ARITH | RFLAGS_DF));
		}
	munmap(win, 2 * PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cr2_code),
		cmocka_unit_test(test_cr2_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
