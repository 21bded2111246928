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
	/* Too near the edge for both sides: remembered with the one after it. */
	src[3] = 0xcc;
	assert_int_equal(patch_copies_add(&pc, src, 3, &pushf, 1), 0);
	assert_int_equal(pc.npatches, 4);
	/* The guest copies 1500 bytes from offset 50 to offset 700 of another page. */
	fill(dst, 2);
	memcpy(dst + 700, src + 50, 1500);
	assert_int_equal(dst[750], 0xcc);
	assert_int_equal(patch_copies_restore(&pc, dst, NULL), 2);
	assert_int_equal(dst[750], 0x48);
	assert_int_equal(dst[751], 0xcf);
	/* A guest int3 with other surroundings stays. */
	dst[3000] = 0xcc;
	assert_int_equal(patch_copies_restore(&pc, dst, NULL), 0);
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
	assert_int_equal(patch_copies_restore(&pc, dst, NULL), 1);
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
	assert_int_equal(pc.npatches, 200);
	fill(src, 10 + 123);
	src[500] = 0xcc;
	assert_int_equal(patch_copies_restore(&pc, src, NULL), 1);
	assert_int_equal(src[500], 0x9d);
	patch_copies_destroy(&pc);
}

/*
 * Linux's ftrace trampoline: a copy of ftrace_regs_caller (pushfq first,
 * popfq last, both patched) at the start of a module-area page, with a
 * `ret` appended. Neither patch keeps both sides in the copy: the pushfq
 * is matched by the 12 bytes after it, the popfq by the 12 before it.
 */
static void test_one_sided_copy(void **state)
{
	static const u8 body[] = {
		0x48, 0x81, 0xec, 0xa8, 0x00, 0x00, 0x00, /* sub $0xa8,%rsp */
		0x48, 0x89, 0x44, 0x24, 0x50,		  /* mov %rax,0x50(%rsp) */
		0x48, 0x89, 0x4c, 0x24, 0x58,		  /* mov %rcx,0x58(%rsp) */
		0x48, 0x81, 0xc4, 0xa8, 0x00, 0x00, 0x00, /* add $0xa8,%rsp */
	};
	const unsigned start = 0x810, end = start + 1 + sizeof(body) + 1;
	const u8 pushf = 0x9c, popf = 0x9d;
	struct patch_copies pc;

	(void)state;
	patch_copies_init(&pc);
	/* The kernel text: nopw padding, the function (patched), then a jmp. */
	fill(src, 3);
	memcpy(src + start - 9, (const u8[]){ 0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 9);
	src[start] = 0xcc;
	memcpy(src + start + 1, body, sizeof(body));
	src[end - 1] = 0xcc;
	memcpy(src + end, (const u8[]){ 0xe9, 0xe9, 0x66, 0xd9, 0x00 }, 5);
	assert_int_equal(patch_copies_add(&pc, src, start, &pushf, 1), 0);
	assert_int_equal(patch_copies_add(&pc, src, end - 1, &popf, 1), 0);
	/* The trampoline: the copy at the page's start, then `ret`, then what was there. */
	fill(dst, 4);
	memcpy(dst, src + start, end - start);
	dst[end - start] = 0xc3;
	assert_int_equal(patch_copies_restore(&pc, dst, NULL), 2);
	assert_int_equal(dst[0], 0x9c);
	assert_int_equal(dst[end - start - 1], 0x9d);
	/* Nothing else moved. */
	assert_memory_equal(dst + 1, body, sizeof(body));
	assert_int_equal(dst[end - start], 0xc3);
	patch_copies_destroy(&pc);
}

/*
 * One side is weaker evidence: not where the caller says the guest's int3
 * covers an instruction (ftrace's, at a function's start), and never a side
 * with a 0xcc in it (Linux's function ends and padding are alike).
 */
static void test_one_side_limits(void **state)
{
	const u8 pushf = 0x9c;
	static u8 own[4096];
	struct patch_copies pc;

	(void)state;
	patch_copies_init(&pc);
	fill(src, 7);
	src[1000] = 0xcc;
	src[2000] = 0xcc;
	src[2010] = 0xcc; /* an int3 among the 24 bytes after 2000: that side is not kept */
	assert_int_equal(patch_copies_add(&pc, src, 1000, &pushf, 1), 0);
	assert_int_equal(patch_copies_add(&pc, src, 2000, &pushf, 1), 0);
	/* Offset 1000's int3 and the 24 bytes after it, at offset 300 of another page. */
	fill(dst, 8);
	memcpy(dst + 300, src + 1000, 25);
	memset(own, 0, sizeof(own));
	own[300] = 5; /* the frame's last scan had a 5-byte instruction there */
	assert_int_equal(patch_copies_restore(&pc, dst, own), 0);
	assert_int_equal(dst[300], 0xcc);
	own[300] = 1; /* a one-byte one: an int3 there replaced nothing it stands for */
	assert_int_equal(patch_copies_restore(&pc, dst, own), 1);
	assert_int_equal(dst[300], 0x9c);
	/* Offset 2000's, likewise: its after side holds a 0xcc, its before side is not there. */
	fill(dst, 8);
	memcpy(dst + 300, src + 2000, 25);
	assert_int_equal(patch_copies_restore(&pc, dst, NULL), 0);
	patch_copies_destroy(&pc);
}

/*
 * A side that two patches with different original bytes share restores
 * neither from that side alone; both sides still tell them apart.
 */
static void test_ambiguous_side(void **state)
{
	const u8 pushf = 0x9c, popf = 0x9d;
	struct patch_copies pc;

	(void)state;
	patch_copies_init(&pc);
	fill(src, 5);
	memcpy(src + 1000, src + 2000, 25); /* the same 24 bytes after offsets 1000 and 2000 */
	src[1000] = src[2000] = 0xcc;
	assert_int_equal(patch_copies_add(&pc, src, 1000, &pushf, 1), 0);
	assert_int_equal(patch_copies_add(&pc, src, 2000, &popf, 1), 0);
	/* Offset 2000's patch and what follows it, copied alone to a page's start. */
	fill(dst, 6);
	memcpy(dst, src + 2000, 25);
	assert_int_equal(patch_copies_restore(&pc, dst, NULL), 0);
	assert_int_equal(dst[0], 0xcc);
	/* With its bytes before too: restored. */
	memcpy(dst + 100, src + 2000 - 12, 25);
	assert_int_equal(patch_copies_restore(&pc, dst, NULL), 1);
	assert_int_equal(dst[112], 0x9d);
	patch_copies_destroy(&pc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_restored),  cmocka_unit_test(test_copy_among_padding),
		cmocka_unit_test(test_growth),	       cmocka_unit_test(test_one_sided_copy),
		cmocka_unit_test(test_ambiguous_side), cmocka_unit_test(test_one_side_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
