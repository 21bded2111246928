/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the SS stand-in (vmm/monitor.h, MON_CALL_SS_CMP) and its
 * sites (vmm/call_literal.c, with the gsbase and CR2 sites it also knows): which sites are taken,
 * the stand-in's code with the stage of each instruction, and the stand-in run natively from a copy
 * of the window's pages: %ax must be the data page's kernel_ss, the rest
 * of RAX kept, the flags those of `cmp $0x18,%ax` run here, and the return
 * past the site's 2 bytes of pad.
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

#include "decode/scan.h"
#include "shadow/x86.h"
#include "tests/unit/standin.h"
#include "vmm/call_literal.h"
#include "vmm/monitor.h"

/* Debian's __switch_to: mov %ss,%ax; cmp $0x18,%ax; je; mov $0x18,%eax; mov %eax,%ss. */
static const u8 linux_site[] = { 0x66, 0x8c, 0xd0, 0x66, 0x83, 0xf8, 0x18, 0x74,
				 0x07, 0xb8, 0x18, 0x00, 0x00, 0x00, 0x8e, 0xd0 };

static bool plan(const u8 *bytes, unsigned n, unsigned off, u16 entry, u64 la, u8 *repl)
{
	static u8 page[PAGE_SIZE];
	struct scan_result res;
	unsigned len = 0;
	bool ok;

	memset(page, 0xcc, PAGE_SIZE);
	memcpy(page + off, bytes, MIN(n, PAGE_SIZE - off));
	scan_result_init(&res, gva(la), DECODE_64,
			 SCAN_KINDS_DEFAULT | SCAN_KIND_BIT(SCAN_KIND_SREG_READ));
	assert_true(scan_code_page_add_entry(&res, page, NULL, 0, &entry, 1) >= 0);
	ok = call_literal_plan(&res, page, la, off, repl, &len) == CALL_LIT_SS;
	scan_result_free(&res);
	if (ok)
		assert_int_equal(len, 7);
	return ok;
}

static void test_ss_plan(void **state)
{
	const u64 la = 0xffffffff8102f000ull;
	u8 site[sizeof(linux_site)], repl[16];
	s32 rel;

	(void)state;
	assert_true(plan(linux_site, sizeof(linux_site), 0x407, 0x407, la, repl));
	assert_int_equal(repl[0], 0xe8);
	memcpy(&rel, repl + 1, 4);
	assert_true(la + 0x407 + 5 + (u64)(s64)rel == MON_CALL_GVA + MON_CALL_SS_CMP);
	assert_int_equal(repl[5], 0x66);
	assert_int_equal(repl[6], 0x90);
	/* Another selector compared, another register: not the site. */
	memcpy(site, linux_site, sizeof(site));
	site[6] = 0x10;
	assert_false(plan(site, sizeof(site), 0x407, 0x407, la, repl));
	memcpy(site, linux_site, sizeof(site));
	site[2] = 0xd1; /* mov %ss,%cx */
	assert_false(plan(site, sizeof(site), 0x407, 0x407, la, repl));
	/* A jne into it (to the cmp): refused, though every start is as expected. */
	{
		static u8 page[PAGE_SIZE];
		struct scan_result res;
		unsigned len;
		u16 entry = 0x405;

		memset(page, 0xcc, PAGE_SIZE);
		memcpy(page + 0x405, (const u8[]){ 0x75, 0x03 }, 2); /* jne 0x40a */
		memcpy(page + 0x407, linux_site, sizeof(linux_site));
		scan_result_init(&res, gva(la), DECODE_64,
				 SCAN_KINDS_DEFAULT | SCAN_KIND_BIT(SCAN_KIND_SREG_READ));
		assert_true(scan_code_page_add_entry(&res, page, NULL, 0, &entry, 1) >= 0);
		assert_true(scan_is_insn_start(&res, 0x407) && scan_is_insn_start(&res, 0x40a));
		assert_int_equal(call_literal_plan(&res, page, la, 0x407, repl, &len),
				 CALL_LIT_NONE);
		scan_result_free(&res);
	}
	/* The scan reached it from inside: no start at the mov. */
	assert_false(plan(linux_site, sizeof(linux_site), 0x407, 0x40a, la, repl));
	/* At the page's end, whole; cut: no. */
	assert_true(plan(linux_site, 7, PAGE_SIZE - 7, PAGE_SIZE - 7, la, repl));
	assert_false(plan(linux_site, 6, PAGE_SIZE - 6, PAGE_SIZE - 6, la, repl));
	/* Out of reach. */
	assert_false(
		plan(linux_site, sizeof(linux_site), 0x407, 0x407, 0x00007f0000000000ull, repl));
}

/* The other literal sites: both gsbase forms, the CR2 read and swapgs, each to its stand-in. */
static void test_literal_others(void **state)
{
	static const struct {
		u8 bytes[11];
		unsigned len, fn, pad;
		enum call_literal_kind kind;
	} sites[] = {
		{ { 0x0f, 0x01, 0xf8, 0xf3, 0x48, 0x0f, 0xae, 0xc8, 0x0f, 0x01, 0xf8 },
		  11,
		  MON_CALL_RD_KGS,
		  MON_CALL_KGS_PAD,
		  CALL_LIT_RD_KGS },
		{ { 0x0f, 0x01, 0xf8, 0xf3, 0x48, 0x0f, 0xae, 0xdf, 0x0f, 0x01, 0xf8 },
		  11,
		  MON_CALL_WR_KGS,
		  MON_CALL_KGS_PAD,
		  CALL_LIT_WR_KGS },
		{ { 0x0f, 0x20, 0xd0, 0x0f, 0x1f, 0x00 },
		  6,
		  MON_CALL_RD_CR2,
		  MON_CALL_CR2_PAD,
		  CALL_LIT_CR2 },
		/* swapgs and the nop or lfence after it: error_entry's three forms. */
		{ { 0x0f, 0x01, 0xf8, 0x0f, 0x1f, 0x00 },
		  6,
		  MON_CALL_SWAPGS,
		  MON_CALL_SWAPGS_PAD,
		  CALL_LIT_SWAPGS },
		{ { 0x0f, 0x01, 0xf8, 0x90, 0x90, 0x90 },
		  6,
		  MON_CALL_SWAPGS,
		  MON_CALL_SWAPGS_PAD,
		  CALL_LIT_SWAPGS },
		{ { 0x0f, 0x01, 0xf8, 0x0f, 0xae, 0xe8 },
		  6,
		  MON_CALL_SWAPGS,
		  MON_CALL_SWAPGS_PAD,
		  CALL_LIT_SWAPGS },
	};
	const u64 la = 0xffffffff81000000ull;
	static u8 page[PAGE_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		struct scan_result res;
		u8 repl[16];
		unsigned len = 0;
		u16 entry = 0x100;
		s32 rel;

		memset(page, 0xcc, PAGE_SIZE);
		memcpy(page + 0x100, sites[i].bytes, sites[i].len);
		scan_result_init(&res, gva(la), DECODE_64, SCAN_KINDS_DEFAULT);
		assert_true(scan_code_page_add_entry(&res, page, NULL, 0, &entry, 1) >= 0);
		assert_int_equal(call_literal_plan(&res, page, la, 0x100, repl, &len),
				 sites[i].kind);
		assert_int_equal(len, sites[i].len);
		assert_int_equal(repl[0], 0xe8);
		memcpy(&rel, repl + 1, 4);
		assert_true(la + 0x100 + 5 + (u64)(s64)rel ==
			    monitor_call_entry(sites[i].fn, sites[i].pad));
		assert_int_equal(len - 5, sites[i].pad);
		/* One byte off: not the site. */
		page[0x100 + sites[i].len - 1] ^= 1;
		assert_int_equal(call_literal_plan(&res, page, la, 0x100, repl, &len),
				 CALL_LIT_NONE);
		scan_result_free(&res);
	}
}

static void ss_text(const cs_insn *insn, char *text, size_t len)
{
	snprintf(text, len,
		 "add qword ptr [rsp], 2;mov ax, word ptr [rip + 0x%llx];cmp ax, 0x18;ret ;",
		 standin_disp(&insn[1], offsetof(struct mon_call_data, kernel_ss)));
}

static void test_ss_code(void **state)
{
	static const enum mon_call_stage want[] = { MON_CALL_SS_AT_ENTRY, MON_CALL_SS_RETURN_SET,
						    MON_CALL_SS_AX_SET, MON_CALL_SS_AT_RET };

	(void)state;
	standin_check_code(MON_CALL_SS_CMP, MON_CALL_SS_PAD, want, sizeof(want) / sizeof(want[0]),
			   ss_text);
}

/*
 * ss_run(entry, rax, flags, out): RAX and the flags loaded, `call *entry`
 * followed by 2 bytes the stand-in must skip (a ud2), then out = { RAX,
 * the flags }.
 */
void ss_run(u64 entry, u64 rax, u64 flags, u64 *out);
__asm__(".text\n"
	".globl ss_run\n"
	"ss_run:\n\t"
	"mov %rsi, %rax\n\t"
	"push %rdx\n\t"
	"popfq\n\t"
	"call *%rdi\n\t"
	".byte 0x0f, 0x0b\n\t" /* the pad: never run */
	"pushfq\n\t"
	"pop %rdx\n\t"
	"mov %rax, (%rcx)\n\t"
	"mov %rdx, 8(%rcx)\n\t"
	"cld\n\t" /* the caller's C code wants DF 0 */
	"ret\n");

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

/* The flags `cmp $0x18,%ax` leaves here for `ax`, from `flags`. */
static u64 host_cmp(u16 ax, u64 flags)
{
	__asm__ volatile("push %[f]\n\tpopfq\n\tcmp $0x18, %[ax]\n\tpushfq\n\tpop %[f]"
			 : [f] "+r"(flags)
			 : [ax] "r"(ax)
			 : "cc");
	return flags;
}

static void test_ss_run(void **state)
{
	static const u16 sels[] = { 0x18, 0x0, 0x10, 0x2b, 0x19, 0xffff, 0x8018 };
	u8 *win;
	struct mon_call_data *d;

	(void)state;
	win = standin_window(&d);
	for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
		static const u64 flags[] = { 0x202, 0x202 | ARITH, 0x202 | RFLAGS_CF | RFLAGS_SF,
					     0x202 | RFLAGS_ZF | RFLAGS_DF };

		for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
			u64 out[2], rax = 0x1122334455660000ull | (u64)(0xff00 ^ sels[i]),
				    fl = flags[f];

			d->kernel_ss = sels[i];
			ss_run((u64)(uintptr_t)win + MON_CALL_SS_CMP, rax, fl, out);
			assert_int_equal(out[0], (rax & ~0xffffull) | sels[i]);
			assert_int_equal(out[1] & ARITH, host_cmp(sels[i], fl) & ARITH);
		}
	}
	munmap(win, 2 * PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ss_plan),
		cmocka_unit_test(test_literal_others),
		cmocka_unit_test(test_ss_code),
		cmocka_unit_test(test_ss_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
