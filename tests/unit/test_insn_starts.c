/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/insn_starts.c: the instruction starts of approved code
 * frames, by which a later entry point that the last scan already covered
 * keeps its frame approved (no rescan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

/* What the VMM records is exactly what a real scan found (decode/scan.h). */
static void test_from_scan(void **state)
{
	/* 0: push %rbp; 1: pushfq; 2: pop %rax; 3: ret, then int3 padding. */
	static const u8 code[] = { 0x55, 0x9c, 0x58, 0xc3 };
	u8 page[4096];
	struct scan_result res;
	struct insn_starts s;

	(void)state;
	memset(page, 0xcc, sizeof(page));
	memcpy(page, code, sizeof(code));
	assert_true(scan_code_page(&res, page, NULL, 0, gva(0xffffffff81000000ull), DECODE_64,
				   SCAN_KINDS_DEFAULT, 0) >= 0);
	insn_starts_init(&s);
	assert_int_equal(insn_starts_set(&s, gfn(1), res.insn_len), 0);
	for (unsigned o = 0; o < 4; o++)
		assert_true(insn_starts_has(&s, gfn(1), o));
	assert_false(insn_starts_has(&s, gfn(1), 100)); /* never reached */
	scan_result_free(&res);
	insn_starts_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),	  cmocka_unit_test(test_set_has_drop),
		cmocka_unit_test(test_replace),	  cmocka_unit_test(test_many_frames),
		cmocka_unit_test(test_from_scan),
	};

	return cmocka_run_group_tests_name("insn_starts", tests, NULL, NULL);
}
