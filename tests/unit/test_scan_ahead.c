/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the scan-ahead helper thread (vmm/scan_ahead.c): what it
 * decodes is what a scan then takes from the memo, scans through its memos
 * record exactly what scans from scratch do (a page rewritten after the
 * helper read it included), and it stops cleanly with work pending.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tests/unit/scan_same.h"
#include "vmm/scan_ahead.h"

#define PAGE_GVA 0xffffffff81234000ull

/* 48 8b 84 24 10 00 00 00   mov 0x10(%rsp),%rax */
static const u8 mov[] = { 0x48, 0x8b, 0x84, 0x24, 0x10, 0x00, 0x00, 0x00 };

static u8 pages[2][SCAN_PAGE_SIZE]; /* the page before, then the page */

/* 32 movs at 0x100, a ret, int3 padding; the page before ends in movs too. */
static void fill(void)
{
	memset(pages, 0xcc, sizeof(pages));
	for (unsigned o = 0x100; o < 0x200; o += sizeof(mov))
		memcpy(pages[1] + o, mov, sizeof(mov));
	pages[1][0x200] = 0xc3;
	for (unsigned o = SCAN_PAGE_SIZE - 64; o < SCAN_PAGE_SIZE; o += sizeof(mov))
		memcpy(pages[0] + o, mov, sizeof(mov));
}

static struct scan_ahead_req req_for(u64 gfn, const u8 *page, const u8 *prev)
{
	return (struct scan_ahead_req){ .gfn = { gfn },
					.page = gva(PAGE_GVA),
					.mode = DECODE_64,
					.hva = page,
					.prev_hva = prev };
}

/* Decode `req` ahead and return the memo (the only one collected). */
static struct scan_memo *ahead_one(struct scan_ahead *sa, const struct scan_ahead_req *req)
{
	struct scan_ahead_done done[4];

	assert_true(scan_ahead_request(sa, req));
	scan_ahead_drain(sa);
	assert_int_equal(scan_ahead_collect(sa, done, 4), 1);
	assert_int_equal(done[0].gfn.v, req->gfn.v);
	assert_non_null(done[0].memo);
	return done[0].memo;
}

static void scan(struct scan_result *res, const u8 *page, u16 entry, struct scan_memo *memo)
{
	scan_result_init(res, gva(PAGE_GVA), DECODE_64, SCAN_KINDS_SHADOW);
	assert_true(scan_code_page_add_entry_memo(res, page, NULL, 0, &entry, 1, memo) >= 0);
}

/* The scan after the helper's work decodes nothing; the sync offset is remembered too. */
static void test_decoded_ahead(void **state)
{
	struct scan_ahead *sa = scan_ahead_start();
	struct scan_ahead_req req;
	struct scan_memo *memo;
	struct scan_result res;

	(void)state;
	assert_non_null(sa);
	fill();
	req = req_for(7, pages[1], pages[0]);
	memo = ahead_one(sa, &req);
	/* The page starts with int3 padding: the sync offset is 0, the sweep reaches 0x100. */
	assert_int_equal(scan_sync_offset_memo(memo, pages[0] + SCAN_PAGE_SIZE - SCAN_SYNC_TAIL,
					       SCAN_SYNC_TAIL, pages[1], SCAN_SYNC_HEAD, DECODE_64),
			 scan_sync_offset(pages[0] + SCAN_PAGE_SIZE - SCAN_SYNC_TAIL,
					  SCAN_SYNC_TAIL, pages[1], SCAN_SYNC_HEAD, DECODE_64));
	scan(&res, pages[1], 0x180, memo);
	assert_int_equal(res.ndecodes, 0);
	assert_int_equal(res.nmemo, 17); /* from 0x180: 16 movs and the ret */
	scan_result_free(&res);
	scan_memo_free(memo);
	scan_ahead_stop(sa);
}

/* Random pages, some rewritten after the helper copied them: memo scans equal scratch scans. */
static void test_exact(void **state)
{
	static u8 page[SCAN_PAGE_SIZE];
	struct scan_ahead *sa = scan_ahead_start();
	u64 rng = 0xa4ead, from_memo = 0;

	(void)state;
	assert_non_null(sa);
	for (int iter = 0; iter < 60; iter++) {
		struct scan_ahead_req req;
		struct scan_memo *memo;
		struct scan_result a, b;
		u16 entry;

		for (unsigned i = 0; i < sizeof(page); i++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			page[i] = (rng >> 40) % 4 == 0 ? 0xcc : (u8)(rng >> 33);
		}
		req = req_for((u64)iter, page, NULL);
		memo = ahead_one(sa, &req);
		if (iter % 3 == 0) /* the guest wrote the page since */
			memset(page + (rng >> 20) % (SCAN_PAGE_SIZE - 8), 0x90, 8);
		entry = (u16)((rng >> 8) % 64);
		scan(&a, page, entry, NULL);
		scan(&b, page, entry, memo);
		assert_same_scan(&a, &b, iter);
		assert_int_equal(a.ndecodes, b.ndecodes + b.nmemo);
		from_memo += b.nmemo;
		scan_result_free(&a);
		scan_result_free(&b);
		scan_memo_free(memo);
	}
	assert_true(from_memo > 0);
	scan_ahead_stop(sa);
}

/* Stopping with requests waiting and memos not collected: no hang, no leak (ASan). */
static void test_stop_with_work(void **state)
{
	struct scan_ahead *sa = scan_ahead_start();
	struct scan_ahead_done done[SCAN_AHEAD_QUEUE];
	unsigned got = 0;

	(void)state;
	assert_non_null(sa);
	fill();
	for (u64 g = 0; g < 3 * SCAN_AHEAD_QUEUE; g++) {
		struct scan_ahead_req req = req_for(g, pages[1], pages[0]);

		scan_ahead_request(sa, &req);
	}
	/* At most a queue of requests waits: the oldest were dropped. */
	scan_ahead_drain(sa);
	got = scan_ahead_collect(sa, done, SCAN_AHEAD_QUEUE);
	assert_true(got >= 1 && got <= SCAN_AHEAD_QUEUE);
	for (unsigned i = 0; i < got; i++)
		scan_memo_free(done[i].memo);
	for (u64 g = 0; g < 2 * SCAN_AHEAD_QUEUE; g++) {
		struct scan_ahead_req req = req_for(g, pages[1], pages[0]);

		scan_ahead_request(sa, &req);
	}
	scan_ahead_stop(sa);
	scan_ahead_stop(NULL);
}

/* A frame waiting already is not queued twice. */
static void test_no_duplicates(void **state)
{
	struct scan_ahead *sa = scan_ahead_start();
	struct scan_ahead_done done[SCAN_AHEAD_QUEUE];
	struct scan_ahead_req req;
	unsigned got, dups = 0;

	(void)state;
	assert_non_null(sa);
	fill();
	req = req_for(42, pages[1], pages[0]);
	/* The second request finds the first waiting or being decoded, unless it is done. */
	for (int i = 0; i < 100; i++)
		dups += !scan_ahead_request(sa, &req);
	scan_ahead_drain(sa);
	got = scan_ahead_collect(sa, done, SCAN_AHEAD_QUEUE);
	assert_int_equal(got + dups, 100);
	for (unsigned i = 0; i < got; i++) {
		assert_int_equal(done[i].gfn.v, 42);
		scan_memo_free(done[i].memo);
	}
	scan_ahead_stop(sa);
}

/*
 * scan_ahead_wait: once it returns, the helper has either finished the
 * frame (its memo is ready to collect, no drain needed) or will never
 * decode it (the request was dropped): nothing for it comes later.
 */
static void test_wait(void **state)
{
	struct scan_ahead *sa = scan_ahead_start();
	struct scan_ahead_done done[SCAN_AHEAD_QUEUE];
	unsigned got;

	(void)state;
	assert_non_null(sa);
	fill();
	for (u64 g = 100; g < 100 + SCAN_AHEAD_QUEUE; g++) {
		struct scan_ahead_req req = req_for(g, pages[1], pages[0]);

		assert_true(scan_ahead_request(sa, &req));
	}
	for (u64 g = 100; g < 100 + SCAN_AHEAD_QUEUE; g += 7) {
		scan_ahead_wait(sa, (gfn_t){ g });
		got = scan_ahead_collect(sa, done, SCAN_AHEAD_QUEUE);
		for (unsigned i = 0; i < got; i++)
			scan_memo_free(done[i].memo);
		/* The helper is not on `g` any more, and `g` waits no more. */
		assert_false(scan_ahead_wait(sa, (gfn_t){ g }));
		scan_ahead_drain(sa);
		got = scan_ahead_collect(sa, done, SCAN_AHEAD_QUEUE);
		for (unsigned i = 0; i < got; i++) {
			assert_int_not_equal(done[i].gfn.v, g);
			scan_memo_free(done[i].memo);
		}
	}
	scan_ahead_stop(sa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decoded_ahead),  cmocka_unit_test(test_exact),
		cmocka_unit_test(test_stop_with_work), cmocka_unit_test(test_no_duplicates),
		cmocka_unit_test(test_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
