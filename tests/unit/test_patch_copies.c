/* SPDX-License-Identifier: MIT */
/* Unit tests for recognising guest copies of patched code (vmm/patch_copies.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/patch_copies.h"

static u8 src[4096], dst[4096];

static void fill(u8 *p, unsigned seed)
{
	for (unsigned i = 0; i < 4096; i++)
		p[i] = (u8)((i * 37 + seed * 11) ^ (i >> 3));
}

/* A page copied at another offset keeps its patches; they are found and put back. */
static void test_copy_restored(void **state)
{
	struct patch_copies pc;
	const u8 pushf = 0x9c, iretq[2] = { 0x48, 0xcf };

	(void)state;
	patch_copies_init(&pc);
	fill(src, 1);
	/* Two adjacent patches (as for `48 cf` with a site on each byte) and one apart. */
	src[100] = 0xcc;
	src[101] = 0xcc;
	src[2000] = 0xcc;
	assert_int_equal(patch_copies_add(&pc, src, 100, iretq, 2), 0);
	assert_int_equal(patch_copies_add(&pc, src, 101, iretq + 1, 1), 0);
	assert_int_equal(patch_copies_add(&pc, src, 2000, &pushf, 1), 0);
	/* Too near the edge for context: skipped, not an error. */
	assert_int_equal(patch_copies_add(&pc, src, 3, &pushf, 1), 0);
	/* The guest copies 1500 bytes from offset 50 to offset 700 of another page. */
	fill(dst, 2);
	memcpy(dst + 700, src + 50, 1500);
	assert_int_equal(dst[750], 0xcc);
	assert_int_equal(patch_copies_restore(&pc, dst), 2);
	assert_int_equal(dst[750], 0x48);
	assert_int_equal(dst[751], 0xcf);
	/* A guest int3 with other surroundings stays. */
	dst[3000] = 0xcc;
	assert_int_equal(patch_copies_restore(&pc, dst), 0);
	assert_int_equal(dst[3000], 0xcc);
	patch_copies_destroy(&pc);
}

/*
 * Linux's shape: native_save_fl (`pushf; pop %rax; ret`, its pushf
 * patched) right after int3 padding, in a page that is mostly padding. The
 * copy is found among four thousand padding int3s (whose neighbours, 0xcc
 * and 0xcc, no remembered patch has, so they are passed over unhashed).
 */
static void test_copy_among_padding(void **state)
{
	struct patch_copies pc;
	const u8 pushf = 0x9c;

	(void)state;
	patch_copies_init(&pc);
	memset(src, 0xcc, sizeof(src));
	memcpy(src + 512, (const u8[]){ 0xcc, 0x58, 0xc3 }, 3);
	assert_int_equal(patch_copies_add(&pc, src, 512, &pushf, 1), 0);
	memcpy(dst, src, sizeof(dst));
	assert_int_equal(patch_copies_restore(&pc, dst), 1);
	assert_int_equal(dst[512], 0x9c);
	for (unsigned o = 0; o < sizeof(dst); o++)
		if (o < 512 || o > 514)
			assert_int_equal(dst[o], 0xcc);
	patch_copies_destroy(&pc);
}

/* Many patches: the table grows and keeps every one. */
static void test_growth(void **state)
{
	struct patch_copies pc;
	const u8 popf = 0x9d;

	(void)state;
	patch_copies_init(&pc);
	for (unsigned k = 0; k < 200; k++) { /* seeds repeat after 256 */
		fill(src, k + 10);
		src[500] = 0xcc;
		assert_int_equal(patch_copies_add(&pc, src, 500, &popf, 1), 0);
	}
	assert_int_equal(pc.n, 200);
	fill(src, 10 + 123);
	src[500] = 0xcc;
	assert_int_equal(patch_copies_restore(&pc, src), 1);
	assert_int_equal(src[500], 0x9d);
	patch_copies_destroy(&pc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_restored),
		cmocka_unit_test(test_copy_among_padding),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
