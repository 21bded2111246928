/* SPDX-License-Identifier: MIT */
/* Unit tests for the known-code-entries set (vmm/code_entries.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "vmm/code_entries.h"

static void test_add_and_list(void **state)
{
	struct code_entries ce;
	u16 out[8];

	(void)state;
	code_entries_init(&ce);
	assert_int_equal(code_entries_in_page(&ce, 0xffffffff81000000ull, out, 8), 0);
	assert_int_equal(code_entries_add(&ce, 0xffffffff81000010ull), 1);
	assert_int_equal(code_entries_add(&ce, 0xffffffff81000010ull), 0); /* known */
	assert_int_equal(code_entries_add(&ce, 0xffffffff81000ff0ull), 1);
	assert_int_equal(code_entries_add(&ce, 0xffffffff81001000ull), 1); /* next page */
	assert_int_equal(code_entries_in_page(&ce, 0xffffffff81000000ull, out, 8), 2);
	assert_int_equal(out[0], 0x10);
	assert_int_equal(out[1], 0xff0);
	assert_int_equal(code_entries_in_page(&ce, 0xffffffff81001000ull, out, 8), 1);
	assert_int_equal(out[0], 0);
	/* `max` bounds the copy, not the count. */
	assert_int_equal(code_entries_in_page(&ce, 0xffffffff81000000ull, out, 1), 2);
	assert_true(ce.nentries == 3);
	code_entries_destroy(&ce);
}

/* Many pages: the table grows and every entry stays findable. */
static void test_growth(void **state)
{
	struct code_entries ce;
	u16 out[4];

	(void)state;
	code_entries_init(&ce);
	for (u64 i = 0; i < 5000; i++)
		assert_int_equal(
			code_entries_add(&ce, 0xffffffff80000000ull + i * 4096 + (i % 4000)), 1);
	for (u64 i = 0; i < 5000; i++) {
		assert_int_equal(
			code_entries_in_page(&ce, 0xffffffff80000000ull + i * 4096, out, 4), 1);
		assert_int_equal(out[0], i % 4000);
	}
	assert_int_equal(ce.npages, 5000);
	code_entries_destroy(&ce);
}

/* A 64-bit interrupt gate for `handler` (present or not) at vector v of idt. */
static void set_gate(unsigned char *idt, unsigned v, uint64_t handler, int present)
{
	unsigned char *e = idt + 16 * v;

	memset(e, 0, 16);
	e[0] = (unsigned char)handler;
	e[1] = (unsigned char)(handler >> 8);
	e[2] = 0x10;					    /* selector: __KERNEL_CS */
	e[5] = (unsigned char)((present ? 0x80 : 0) | 0xe); /* type 14: interrupt gate */
	for (unsigned b = 0; b < 6; b++)
		e[6 + b] = (unsigned char)(handler >> (16 + 8 * b));
}

/*
 * The IDT's handlers in one page (code_scan.c's starts that no fault
 * reports): the offset's three pieces put together, only present gates,
 * only the page asked for, in vector order, at most `max`, and a last gate
 * cut short by the IDT limit ignored.
 */
static void test_idt_in_page(void **state)
{
	unsigned char idt[16 * 8];
	uint64_t out[8];
	const uint64_t page = 0xffffffff81a00000ull;

	(void)state;
	set_gate(idt, 0, page + 0x10, 1);
	set_gate(idt, 1, page + 0xff8, 1);
	set_gate(idt, 2, page + 0x20, 0);	    /* not present */
	set_gate(idt, 3, page + 0x1000, 1);	    /* the next page */
	set_gate(idt, 4, 0x00007fff81a00030ull, 1); /* same low bits, other high ones */
	set_gate(idt, 5, page - 1, 1);		    /* the page before */
	set_gate(idt, 6, page + 0x123, 1);
	set_gate(idt, 7, page + 0x456, 1);

	assert_int_equal(code_entries_idt_in_page(idt, sizeof(idt), page, out, 8), 4);
	assert_true(out[0] == page + 0x10);
	assert_true(out[1] == page + 0xff8);
	assert_true(out[2] == page + 0x123);
	assert_true(out[3] == page + 0x456);
	/* The limit cuts the last gate: 15 bytes of it are not a gate. */
	assert_int_equal(code_entries_idt_in_page(idt, sizeof(idt) - 1, page, out, 8), 3);
	/* At most max. */
	assert_int_equal(code_entries_idt_in_page(idt, sizeof(idt), page, out, 2), 2);
	assert_true(out[1] == page + 0xff8);
	assert_int_equal(code_entries_idt_in_page(idt, 0, page, out, 8), 0);
	/* Another page: only the gate there. */
	assert_int_equal(code_entries_idt_in_page(idt, sizeof(idt), page + 0x1000, out, 8), 1);
	assert_true(out[0] == page + 0x1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_list),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_idt_in_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
