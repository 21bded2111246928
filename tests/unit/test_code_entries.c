/* SPDX-License-Identifier: MIT */
/* Unit tests for the known-code-entries set (vmm/code_entries.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_list),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
