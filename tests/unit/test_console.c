/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the console escape filter (console_filter in vmm/console.c):
 * which stdin bytes reach the guest and when Ctrl-A x stops the VM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/console.h"

#define CTRL_A 0x01

struct filt {
	u8 buf[65];
	size_t n;
	bool pending, quit;
};

/* Run the filter over `len` bytes of `in`, carrying over f->pending. */
static void run(struct filt *f, const void *in, size_t len)
{
	assert_true(len + 1 <= sizeof(f->buf));
	f->n = console_filter(in, len, f->buf, &f->pending, &f->quit);
}

/* The last run forwarded exactly want[0, n) and left this escape state. */
static void expect_out(const struct filt *f, const void *want, size_t n, bool pending, bool quit)
{
	assert_int_equal(f->n, n);
	assert_memory_equal(f->buf, want, n);
	assert_int_equal(f->pending, pending);
	assert_int_equal(f->quit, quit);
}

static void test_plain_bytes_pass(void **state)
{
	struct filt f = { 0 };
	const u8 in[] = { 'h', 'i', '\r', 0x00, 0x03, 0x1b, '[', 'A', 0xff, 0x02 };

	(void)state;
	run(&f, in, sizeof(in));
	expect_out(&f, in, sizeof(in), false, false);
}

static void test_empty(void **state)
{
	struct filt f = { 0 };

	(void)state;
	run(&f, "", 0);
	expect_out(&f, "", 0, false, false);
	/* A pending escape survives an empty read. */
	f.pending = true;
	run(&f, "", 0);
	assert_true(f.pending);
	assert_false(f.quit);
}

static void test_ctrl_a_x_quits(void **state)
{
	struct filt f = { 0 };
	const u8 in[] = { 'a', 'b', CTRL_A, 'x', 'c', 'd' };

	(void)state;
	run(&f, in, sizeof(in));
	/* Bytes before the escape are forwarded; nothing after it is. */
	expect_out(&f, "ab", 2, false, true);
}

static void test_ctrl_a_upper_x_quits(void **state)
{
	struct filt f = { 0 };
	const u8 in[] = { CTRL_A, 'X', 'z' };

	(void)state;
	run(&f, in, sizeof(in));
	assert_true(f.quit);
	assert_int_equal(f.n, 0);
}

static void test_ctrl_a_ctrl_a_sends_one(void **state)
{
	struct filt f = { 0 };
	const u8 in[] = { 'p', CTRL_A, CTRL_A, 'q' };
	const u8 want[] = { 'p', CTRL_A, 'q' };

	(void)state;
	run(&f, in, sizeof(in));
	expect_out(&f, want, sizeof(want), false, false);
}

static void test_ctrl_a_other_sends_both(void **state)
{
	struct filt f = { 0 };
	const u8 in[] = { CTRL_A, 'c', CTRL_A, 'y', CTRL_A, 0x00 };
	const u8 want[] = { CTRL_A, 'c', CTRL_A, 'y', CTRL_A, 0x00 };

	(void)state;
	run(&f, in, sizeof(in));
	expect_out(&f, want, sizeof(want), false, false);
}

static void test_ctrl_a_at_end_is_held(void **state)
{
	struct filt f = { 0 };
	const u8 in[] = { 'k', CTRL_A };

	(void)state;
	run(&f, in, sizeof(in));
	expect_out(&f, "k", 1, true, false);
}

static void test_split_escape_quits(void **state)
{
	struct filt f = { 0 };

	(void)state;
	run(&f, "\x01", 1);
	assert_int_equal(f.n, 0);
	assert_true(f.pending);
	run(&f, "xyz", 3);
	expect_out(&f, "", 0, false, true);
}

/*
 * A Ctrl-A at the end of one read and an ordinary byte at the start of the
 * next forward both bytes: the output is one longer than the input.
 */
static void test_split_escape_other_char(void **state)
{
	struct filt f = { 0 };
	const u8 want[] = { CTRL_A, 'c', 'd' };

	(void)state;
	run(&f, "ab\x01", 3);
	assert_int_equal(f.n, 2);
	assert_true(f.pending);
	run(&f, "cd", 2);
	expect_out(&f, want, 3, false, false);
}

static void test_split_escape_ctrl_a(void **state)
{
	struct filt f = { 0 };

	(void)state;
	run(&f, "\x01", 1);
	assert_true(f.pending);
	run(&f, "\x01\x01", 2);
	/* The first byte completes Ctrl-A Ctrl-A; the second starts a new escape. */
	expect_out(&f, (const u8[]){ CTRL_A }, 1, true, false);
	run(&f, "X", 1);
	assert_true(f.quit);
	assert_int_equal(f.n, 0);
}

static void test_x_alone_is_plain(void **state)
{
	struct filt f = { 0 };

	(void)state;
	run(&f, "xX", 2);
	assert_int_equal(f.n, 2);
	assert_memory_equal(f.buf, "xX", 2);
	assert_false(f.quit);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_bytes_pass),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_ctrl_a_x_quits),
		cmocka_unit_test(test_ctrl_a_upper_x_quits),
		cmocka_unit_test(test_ctrl_a_ctrl_a_sends_one),
		cmocka_unit_test(test_ctrl_a_other_sends_both),
		cmocka_unit_test(test_ctrl_a_at_end_is_held),
		cmocka_unit_test(test_split_escape_quits),
		cmocka_unit_test(test_split_escape_other_char),
		cmocka_unit_test(test_split_escape_ctrl_a),
		cmocka_unit_test(test_x_alone_is_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
