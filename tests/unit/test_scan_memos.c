/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the table of scan memos by code frame (vmm/scan_memos.c):
 * a frame finds its own memo again, the least recently used one goes
 * first, and scan-ahead's guesses never take more than their share.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "vmm/scan_memos.h"

static struct scan_memos table;

static struct scan_memo *get(u64 g, bool *own, bool *ahead)
{
	struct scan_memo *m = scan_memos_get(&table, (gfn_t){ g }, own, ahead);

	assert_non_null(m);
	return m;
}

static void test_own_and_lru(void **state)
{
	struct scan_memo *first;
	bool own, ahead;

	(void)state;
	scan_memos_init(&table);
	first = get(1, &own, &ahead);
	assert_false(own);
	assert_ptr_equal(get(1, &own, &ahead), first);
	assert_true(own);
	assert_false(ahead);
	/* Fill the table; frame 1 stays the most recently used by touching it. */
	for (u64 g = 2; g <= SCAN_MEMOS_MAX; g++) {
		get(g, &own, &ahead);
		assert_false(own);
		get(1, &own, &ahead);
	}
	/* One more frame: the least recently used (2) makes room, and its memo is reused. */
	get(SCAN_MEMOS_MAX + 1, &own, &ahead);
	assert_false(scan_memos_has(&table, (gfn_t){ 2 }));
	assert_true(scan_memos_has(&table, (gfn_t){ 1 }));
	assert_true(scan_memos_has(&table, (gfn_t){ 3 }));
	get(1, &own, &ahead);
	assert_true(own);
	scan_memos_destroy(&table);
}

static void test_ahead(void **state)
{
	bool own, ahead;

	(void)state;
	scan_memos_init(&table);
	for (u64 g = 1; g <= 100; g++)
		get(g, &own, &ahead); /* memos that real scans left */
	/* Twice the guesses their share allows. */
	for (u64 g = 1000; g < 1000 + 2 * SCAN_MEMOS_AHEAD_MAX; g++) {
		struct scan_memo *m = scan_memo_new();

		assert_non_null(m);
		scan_memos_put(&table, (gfn_t){ g }, m);
	}
	assert_int_equal(table.nahead, SCAN_MEMOS_AHEAD_MAX);
	/* The real memos survived; the oldest guesses went. */
	for (u64 g = 1; g <= 100; g++)
		assert_true(scan_memos_has(&table, (gfn_t){ g }));
	assert_false(scan_memos_has(&table, (gfn_t){ 1000 }));
	assert_true(scan_memos_has(&table, (gfn_t){ 1000 + 2 * SCAN_MEMOS_AHEAD_MAX - 1 }));
	/* A guess the table holds already for a frame is dropped (ASan: freed). */
	scan_memos_put(&table, (gfn_t){ 5 }, scan_memo_new());
	get(5, &own, &ahead);
	assert_true(own);
	assert_false(ahead);
	/* The first scan of a guessed frame is told, once; the guess is no longer counted. */
	get(1000 + 2 * SCAN_MEMOS_AHEAD_MAX - 1, &own, &ahead);
	assert_true(own);
	assert_true(ahead);
	assert_int_equal(table.nahead, SCAN_MEMOS_AHEAD_MAX - 1);
	get(1000 + 2 * SCAN_MEMOS_AHEAD_MAX - 1, &own, &ahead);
	assert_false(ahead);
	scan_memos_destroy(&table);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_and_lru),
		cmocka_unit_test(test_ahead),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
