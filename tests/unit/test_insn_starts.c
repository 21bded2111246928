/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/insn_starts.c: the instruction starts of approved code
 * frames, by which a later entry point that the last scan already covered
 * keeps its frame approved (no rescan), and the retired records of revoked
 * frames, whose lengths tell the next scan which int3s cover instructions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "decode/scan.h"
#include "vmm/insn_starts.h"

/* A scan result's insn_len for one frame: instructions at `offs` of length 3. */
static void lens_at(u8 *len, const unsigned *offs, size_t n)
{
	memset(len, 0, 4096);
	for (size_t i = 0; i < n; i++)
		len[offs[i]] = 3;
}

static void test_empty(void **state)
{
	struct insn_starts s;

	(void)state;
	insn_starts_init(&s);
	assert_false(insn_starts_has(&s, gfn(1), 0));
	insn_starts_drop(&s, gfn(1)); /* no record: a no-op */
	assert_int_equal(s.npages, 0);
	insn_starts_destroy(&s);
}

static void test_set_has_drop(void **state)
{
	static const unsigned offs[] = { 0, 3, 7, 4095 };
	struct insn_starts s;
	u8 len[4096];

	(void)state;
	insn_starts_init(&s);
	lens_at(len, offs, 4);
	assert_int_equal(insn_starts_set(&s, gfn(0x1234), len), 0);
	for (size_t i = 0; i < 4; i++)
		assert_true(insn_starts_has(&s, gfn(0x1234), offs[i]));
	/* Inside an instruction, past the frame, or another frame: no. */
	assert_false(insn_starts_has(&s, gfn(0x1234), 1));
	assert_false(insn_starts_has(&s, gfn(0x1234), 4096));
	assert_false(insn_starts_has(&s, gfn(0x1235), 0));
	assert_int_equal(s.npages, 1);
	insn_starts_drop(&s, gfn(0x1234));
	assert_false(insn_starts_has(&s, gfn(0x1234), 0));
	assert_int_equal(s.npages, 0);
	insn_starts_destroy(&s);
}

/* A rescan (the guest rewrote the frame) replaces the record entirely. */
static void test_replace(void **state)
{
	static const unsigned before[] = { 0, 10 }, after[] = { 1, 20 };
	struct insn_starts s;
	u8 len[4096];

	(void)state;
	insn_starts_init(&s);
	lens_at(len, before, 2);
	assert_int_equal(insn_starts_set(&s, gfn(7), len), 0);
	lens_at(len, after, 2);
	assert_int_equal(insn_starts_set(&s, gfn(7), len), 0);
	assert_false(insn_starts_has(&s, gfn(7), 0));
	assert_false(insn_starts_has(&s, gfn(7), 10));
	assert_true(insn_starts_has(&s, gfn(7), 1));
	assert_true(insn_starts_has(&s, gfn(7), 20));
	assert_int_equal(s.npages, 1);
	insn_starts_destroy(&s);
}

/* Many frames sharing hash chains: each keeps its own record. */
static void test_many_frames(void **state)
{
	struct insn_starts s;
	u8 len[4096];

	(void)state;
	insn_starts_init(&s);
	for (u64 g = 0; g < 20000; g++) {
		unsigned off = (unsigned)(g % 4096);

		lens_at(len, &off, 1);
		assert_int_equal(insn_starts_set(&s, gfn(g), len), 0);
	}
	assert_int_equal(s.npages, 20000);
	for (u64 g = 0; g < 20000; g += 7) {
		assert_true(insn_starts_has(&s, gfn(g), (unsigned)(g % 4096)));
		assert_false(insn_starts_has(&s, gfn(g), (unsigned)((g + 1) % 4096)));
	}
	for (u64 g = 0; g < 20000; g += 2)
		insn_starts_drop(&s, gfn(g));
	assert_int_equal(s.npages, 10000);
	assert_false(insn_starts_has(&s, gfn(2), 2));
	assert_true(insn_starts_has(&s, gfn(3), 3));
	insn_starts_destroy(&s);
}

/* `code` at the start of `page`, int3 padding after it, scanned from offset 0 into `res`. */
static void scan_code(const u8 *code, size_t n, u8 *page, struct scan_result *res)
{
	memset(page, 0xcc, 4096);
	memcpy(page, code, n);
	assert_true(scan_code_page(res, page, NULL, 0, gva(0xffffffff81000000ull), DECODE_64,
				   SCAN_KINDS_DEFAULT, 0) >= 0);
}

/* What the VMM records is exactly what a real scan found (decode/scan.h). */
static void test_from_scan(void **state)
{
	/* 0: push %rbp; 1: pushfq; 2: pop %rax; 3: ret, then int3 padding. */
	static const u8 code[] = { 0x55, 0x9c, 0x58, 0xc3 };
	u8 page[4096];
	struct scan_result res;
	struct insn_starts s;

	(void)state;
	scan_code(code, sizeof(code), page, &res);
	insn_starts_init(&s);
	assert_int_equal(insn_starts_set(&s, gfn(1), res.insn_len), 0);
	for (unsigned o = 0; o < 4; o++)
		assert_true(insn_starts_has(&s, gfn(1), o));
	assert_false(insn_starts_has(&s, gfn(1), 100)); /* never reached */
	scan_result_free(&res);
	insn_starts_destroy(&s);
}

/*
 * A revoked frame's record is retired: no longer a live instruction start
 * (a new entry there must rescan), but its lengths stay for the next scan,
 * which finds the int3s written over them (decode/scan.h item 9).
 */
static void test_retire_keeps_lengths(void **state)
{
	/* 0: nopl 0x0(%rax,%rax,1) (5 bytes, ftrace's); 5: push %rbp; 6: ret. */
	static const u8 code[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x55, 0xc3 };
	static u8 page[4096], len[4096], old[4096];
	struct scan_result res;
	struct insn_starts s;

	(void)state;
	scan_code(code, sizeof(code), page, &res);
	insn_starts_init(&s);
	assert_false(insn_starts_history(&s, gfn(1), len, old));
	assert_int_equal(insn_starts_set(&s, gfn(1), res.insn_len), 0);
	scan_result_free(&res);
	assert_false(insn_starts_history(&s, gfn(1), len, old)); /* live: no history */
	insn_starts_retire(&s, gfn(1), page, false);
	insn_starts_retire(&s, gfn(1), page, false); /* twice: one retirement */
	assert_false(insn_starts_has(&s, gfn(1), 0));
	assert_int_equal(s.nretired, 1);
	assert_true(insn_starts_history(&s, gfn(1), len, old));
	assert_memory_equal(old, page, sizeof(page));
	assert_int_equal(len[0], 5);
	assert_int_equal(len[1], 0);
	assert_int_equal(len[5], 1);
	assert_int_equal(len[6], 1);

	/* The guest's int3 on the nop, then its new tail: the rescan sweeps it as 5 bytes. */
	page[0] = 0xcc;
	memcpy(page + 1, (const u8[]){ 0x48, 0x9c, 0x11, 0x02 }, 4);
	scan_result_init(&res, gva(0xffffffff81000000ull), DECODE_64, SCAN_KINDS_DEFAULT);
	assert_int_equal(scan_cover_int3s(&res, page, len, old), 1);
	assert_int_equal(scan_code_page_add_entry(&res, page, NULL, 0, (const u16[]){ 0 }, 1), 0);
	assert_int_equal(res.insn_len[0], 5);
	/* Live again with that scan's record. */
	assert_int_equal(insn_starts_set(&s, gfn(1), res.insn_len), 0);
	scan_result_free(&res);
	assert_int_equal(s.nretired, 0);
	assert_true(insn_starts_has(&s, gfn(1), 5));
	assert_false(insn_starts_has(&s, gfn(1), 1));
	insn_starts_retire(&s, gfn(1), page, false);
	insn_starts_drop(&s, gfn(1));
	assert_int_equal(s.nretired, 0);
	assert_false(insn_starts_history(&s, gfn(1), len, old));
	/* Retired without the bytes: dropped, no history rather than half of one. */
	assert_int_equal(insn_starts_set(&s, gfn(2), len), 0);
	insn_starts_retire(&s, gfn(2), NULL, false);
	assert_int_equal(s.npages, 0);
	assert_int_equal(s.npages, 0);
	insn_starts_destroy(&s);
}

/*
 * At most INSN_STARTS_RETIRED_MAX retired records: the oldest retirement
 * goes first. A record made live again in between is not freed by its old
 * retirement, and one retired again counts from its new one.
 */
static void test_retired_bound(void **state)
{
	static const unsigned off = 8;
	const unsigned max = INSN_STARTS_RETIRED_MAX;
	static u8 len[4096], hist[4096];
	struct insn_starts *s = malloc(sizeof(*s));

	(void)state;
	assert_non_null(s);
	insn_starts_init(s);
	lens_at(len, &off, 1);
	for (u64 g = 0; g < max + 100; g++)
		assert_int_equal(insn_starts_set(s, gfn(g), len), 0);
	/* Frame 0 is retired first, made live, then retired again after all the others. */
	insn_starts_retire(s, gfn(0), len, false);
	assert_int_equal(insn_starts_set(s, gfn(0), len), 0);
	for (u64 g = 1; g < max; g++)
		insn_starts_retire(s, gfn(g), len, false);
	/* The ring is full: frame 0's first retirement goes, freeing nothing (it is live). */
	insn_starts_retire(s, gfn(0), len, false);
	assert_int_equal(s->nretired, max);
	assert_int_equal(s->npages, max + 100);
	/* 50 more: frames 1..50, the oldest retired, are freed; frame 0 is now among the newest. */
	for (u64 g = max; g < max + 50; g++)
		insn_starts_retire(s, gfn(g), len, false);
	assert_int_equal(s->nretired, max);
	assert_int_equal(s->npages, max + 50);
	assert_true(insn_starts_history(s, gfn(0), len, hist));
	for (u64 g = 1; g <= 50; g++)
		assert_false(insn_starts_history(s, gfn(g), len, hist));
	assert_true(insn_starts_history(s, gfn(51), len, hist));
	assert_int_equal(len[off], 3);
	/* Live records are never freed by retirements. */
	for (u64 g = max + 50; g < max + 100; g++)
		assert_true(insn_starts_has(s, gfn(g), off));
	insn_starts_destroy(s);
	free(s);
}

/*
 * A scan right after the frame's own code wrote it (memcpy patching its own
 * page) may have seen a rewrite half done: its lengths do not become the
 * history; the history from before stays until a scan that did not follow
 * such a write.
 */
static void test_self_write_keeps_history(void **state)
{
	static u8 page[4096], len[4096], hist[4096], bytes[4096];
	struct insn_starts s;

	(void)state;
	insn_starts_init(&s);
	memset(page, 0x90, sizeof(page));
	memset(len, 0, sizeof(len));
	len[0] = 5; /* jmp __x86_return_thunk, as first scanned */
	assert_int_equal(insn_starts_set(&s, gfn(3), len), 0);
	/* memcpy's first store: the history is that scan's, with the bytes before the store. */
	page[0] = 0xe9;
	insn_starts_retire(&s, gfn(3), page, true);
	assert_true(insn_starts_history(&s, gfn(3), hist, bytes));
	assert_int_equal(hist[0], 5);
	assert_int_equal(bytes[0], 0xe9);
	/* The rescan between the stores sees a 6-byte "instruction" at 4 (out of step). */
	memset(len, 0, sizeof(len));
	len[4] = 6;
	assert_int_equal(insn_starts_set(&s, gfn(3), len), 0);
	page[0] = 0xc3;
	insn_starts_retire(&s, gfn(3), page, true); /* memcpy's second store */
	assert_true(insn_starts_history(&s, gfn(3), hist, bytes));
	assert_int_equal(hist[0], 5); /* still the history from before */
	assert_int_equal(hist[4], 0);
	assert_int_equal(bytes[0], 0xe9);
	/* Scans after it, until one that follows no such store. */
	assert_int_equal(insn_starts_set(&s, gfn(3), len), 0);
	insn_starts_retire(&s, gfn(3), page, false);
	assert_true(insn_starts_history(&s, gfn(3), hist, bytes));
	assert_int_equal(hist[0], 5);
	len[4] = 1;
	assert_int_equal(insn_starts_set(&s, gfn(3), len), 0);
	insn_starts_retire(&s, gfn(3), page, false);
	assert_true(insn_starts_history(&s, gfn(3), hist, bytes));
	assert_int_equal(hist[0], 0);
	assert_int_equal(hist[4], 1);
	assert_int_equal(bytes[0], 0xc3);
	/* A first scan is history, whoever revokes it; the scan after its own store is not. */
	assert_int_equal(insn_starts_set(&s, gfn(4), len), 0);
	insn_starts_retire(&s, gfn(4), page, true);
	assert_int_equal(insn_starts_set(&s, gfn(4), len), 0);
	insn_starts_retire(&s, gfn(4), page, true);
	assert_true(insn_starts_history(&s, gfn(4), hist, bytes)); /* the first scan's */
	insn_starts_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_set_has_drop),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_many_frames),
		cmocka_unit_test(test_from_scan),
		cmocka_unit_test(test_retire_keeps_lengths),
		cmocka_unit_test(test_retired_bound),
		cmocka_unit_test(test_self_write_keeps_history),
	};

	return cmocka_run_group_tests_name("insn_starts", tests, NULL, NULL);
}
