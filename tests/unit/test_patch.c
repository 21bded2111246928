/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the patch table (decode/patch.c): apply a scan to a page
 * copy, look traps up, tell our int3 from the guest's, undo byte-exact,
 * rescan after a guest write, incremental apply without re-patching.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode/patch.h"

#define PAGE_GVA 0xffffffff81000000ull
#define PAGE_GFN 0x1234ull

static u8 orig[SCAN_PAGE_SIZE], copy[SCAN_PAGE_SIZE];
static struct scan_result res;
static struct patch_table table;

/* Irq save/restore, a guest int3, data after ret; filler 0x9c (data). */
static const u8 code[] = {
	0x9c,	    /* 0: pushf */
	0x58,	    /* 1: pop %rax */
	0xfa,	    /* 2: cli */
	0xcc,	    /* 3: int3 (the guest's own) */
	0x50,	    /* 4: push %rax */
	0x48, 0x9d, /* 5: popfq */
	0xc3,	    /* 7: ret */
	0x9d,	    /* 8: data */
};

static gpa_t at(unsigned off)
{
	return gpa((PAGE_GFN << PAGE_SHIFT) + off);
}

static int setup(void **state)
{
	(void)state;
	memset(orig, 0x9c, sizeof(orig));
	memcpy(orig, code, sizeof(code));
	memcpy(copy, orig, sizeof(copy));
	patch_table_init(&table);
	assert_int_equal(scan_code_page(&res, orig, NULL, 0, gva(PAGE_GVA), DECODE_64,
					SCAN_KINDS_DEFAULT, 0),
			 2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	scan_result_free(&res);
	patch_table_destroy(&table);
	return 0;
}

static void test_round_trip(void **state)
{
	const struct patch_site *s;

	(void)state;
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);
	/* Only the first byte of each site changed. */
	for (unsigned i = 0; i < SCAN_PAGE_SIZE; i++)
		assert_int_equal(copy[i], i == 0 || i == 5 ? PATCH_INT3 : orig[i]);
	assert_int_equal(table.nsites, 2);
	assert_int_equal(table.npages, 1);

	s = patch_lookup(&table, at(5));
	assert_non_null(s);
	assert_int_equal(s->len, 2);
	assert_memory_equal(s->orig, ((const u8[]){ 0x48, 0x9d }), 2);
	assert_int_equal(s->kind, SCAN_KIND_POPF);
	s = patch_lookup(&table, at(0));
	assert_non_null(s);
	assert_int_equal(s->len, 1);
	assert_int_equal(s->orig[0], 0x9c);
	assert_null(patch_lookup(&table, at(6)));
	assert_null(patch_lookup(&table, at(8)));
	assert_null(patch_lookup(&table, gpa(at(0).v + PAGE_SIZE)));

	assert_int_equal(patch_page_undo(&table, gfn(PAGE_GFN), copy), 2);
	assert_memory_equal(copy, orig, SCAN_PAGE_SIZE);
	assert_int_equal(table.nsites, 0);
	assert_int_equal(table.npages, 0);
	assert_false(patch_page_known(&table, gfn(PAGE_GFN)));
	assert_null(patch_lookup(&table, at(0)));
	assert_int_equal(patch_page_undo(&table, gfn(PAGE_GFN), copy), 0);
}

static void test_guest_int3(void **state)
{
	const struct patch_site *s = (const struct patch_site *)1;

	(void)state;
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);
	/* #BP with RIP = 4: the int3 at 3 was in the original code. */
	assert_int_equal(patch_classify_int3(&table, at(4 - 1), &s), PATCH_TRAP_GUEST);
	assert_null(s);
	/* #BP with RIP = 6: our patch at 5. */
	assert_int_equal(patch_classify_int3(&table, at(6 - 1), &s), PATCH_TRAP_OURS);
	assert_non_null(s);
	assert_int_equal(s->off, 5);
	assert_int_equal(patch_classify_int3(&table, at(1 - 1), NULL), PATCH_TRAP_OURS);
}

/* A second scan adds entries: only the new site is applied. */
static void test_incremental_apply(void **state)
{
	static const u8 fn_b[] = { 0x66, 0x9c, 0xc3 }; /* 20: pushfw; ret */
	u8 before[SCAN_PAGE_SIZE];
	u16 e = 0x20;

	(void)state;
	memcpy(orig + 0x20, fn_b, sizeof(fn_b));
	memcpy(copy + 0x20, fn_b, sizeof(fn_b));
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);
	memcpy(before, copy, sizeof(before));
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 0);
	assert_memory_equal(copy, before, SCAN_PAGE_SIZE);

	assert_int_equal(scan_code_page_add_entry(&res, orig, NULL, 0, &e, 1), 1);
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 1);
	assert_int_equal(copy[0x20], PATCH_INT3);
	assert_int_equal(copy[0x21], 0x9c);
	assert_int_equal(table.nsites, 3);
	assert_int_equal(patch_lookup(&table, at(0x20))->len, 2);
	assert_non_null(patch_lookup(&table, at(5)));

	assert_int_equal(patch_page_undo(&table, gfn(PAGE_GFN), copy), 3);
	assert_memory_equal(copy, orig, SCAN_PAGE_SIZE);
}

/* The guest rewrites its code: undo, apply the store, scan afresh. */
static void test_rescan_after_guest_write(void **state)
{
	static const u8 new_code[] = {
		0x90,	    /* 0: nop (was pushf) */
		0xeb, 0x0d, /* 1: jmp 0x10 */
	};
	static const u8 new_target[] = { 0x9d, 0xc3 }; /* 10: popf; ret */

	(void)state;
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);
	/* The write-tracking trap: give the original bytes back first. */
	assert_int_equal(patch_page_undo(&table, gfn(PAGE_GFN), copy), 2);
	assert_memory_equal(copy, orig, SCAN_PAGE_SIZE);
	/* The guest's store, then a fresh scan from the same entry. */
	memcpy(copy, new_code, sizeof(new_code));
	memcpy(copy + 0x10, new_target, sizeof(new_target));
	memcpy(orig, copy, sizeof(orig));
	scan_result_free(&res);
	assert_int_equal(scan_code_page(&res, orig, NULL, 0, gva(PAGE_GVA), DECODE_64,
					SCAN_KINDS_DEFAULT, 0),
			 1);
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 1);
	assert_null(patch_lookup(&table, at(0)));
	assert_null(patch_lookup(&table, at(5))); /* old code is dead now */
	assert_int_equal(patch_lookup(&table, at(0x10))->orig[0], 0x9d);
	assert_int_equal(copy[0], 0x90);
	assert_int_equal(copy[0x10], PATCH_INT3);
}

/* A copy that does not hold the scanned bytes is refused, unchanged. */
static void test_stale_and_mode(void **state)
{
	struct scan_result r32;

	(void)state;
	copy[5] = 0x90;
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), -ESTALE);
	assert_int_equal(copy[0], 0x9c);
	assert_false(patch_page_known(&table, gfn(PAGE_GFN)));
	copy[5] = 0x48;
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);

	/* The same frame scanned as 32-bit code: refused. */
	assert_int_equal(scan_code_page(&r32, orig, NULL, 0, gva(PAGE_GVA), DECODE_32,
					SCAN_KINDS_DEFAULT, 0),
			 2); /* 48 is dec %eax in 32-bit code, then popfl */
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &r32, copy), -EINVAL);
	scan_result_free(&r32);
}

/* Conflicting sites are not patched. */
static void test_conflict_not_applied(void **state)
{
	static const u8 overlap[] = { 0xb8, 0x9c, 0xc3, 0x90, 0x90, 0xc3 }; /* see test_scan.c */
	u16 e;

	(void)state;
	memcpy(orig + 0x30, overlap, sizeof(overlap));
	memcpy(copy + 0x30, overlap, sizeof(overlap));
	e = 0x30;
	assert_int_equal(scan_code_page_add_entry(&res, orig, NULL, 0, &e, 1), 0);
	e = 0x31;
	assert_int_equal(scan_code_page_add_entry(&res, orig, NULL, 0, &e, 1), 1);
	assert_int_equal(res.nconflicts, 1);
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);
	assert_int_equal(copy[0x31], 0x9c);
	assert_null(patch_lookup(&table, at(0x31)));
}

/* A site straddling into the next frame: the patch byte is on this one. */
static void test_straddling_site(void **state)
{
	static const u8 next[] = { 0x9c, 0xc3 }; /* 66 | 9c: pushfw across the page end */
	struct scan_result r;
	const struct patch_site *s;

	(void)state;
	orig[0xfff] = 0x66;
	memcpy(copy, orig, sizeof(copy));
	assert_int_equal(scan_code_page(&r, orig, next, sizeof(next), gva(PAGE_GVA), DECODE_64,
					SCAN_KINDS_DEFAULT, 0xfff),
			 1);
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &r, copy), 1);
	assert_int_equal(copy[0xfff], PATCH_INT3);
	s = patch_lookup(&table, at(0xfff));
	assert_non_null(s);
	assert_int_equal(s->len, 2);
	assert_memory_equal(s->orig, ((const u8[]){ 0x66, 0x9c }), 2);
	scan_result_free(&r);
}

/* Many frames (hash chains), lookups, reads across a page boundary. */
static void test_many_pages_and_read_fixup(void **state)
{
	u8 *copies = malloc(300 * SCAN_PAGE_SIZE);
	u8 buf[16];

	(void)state;
	assert_non_null(copies);
	for (unsigned i = 0; i < 300; i++) {
		memcpy(copies + i * SCAN_PAGE_SIZE, orig, SCAN_PAGE_SIZE);
		assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN + i * 1024), &res,
						  copies + i * SCAN_PAGE_SIZE),
				 2);
	}
	assert_int_equal(table.npages, 300);
	assert_int_equal(table.nsites, 600);
	for (unsigned i = 0; i < 300; i++)
		assert_non_null(
			patch_lookup(&table, gpa(((PAGE_GFN + i * 1024) << PAGE_SHIFT) + 5)));
	for (unsigned i = 0; i < 300; i += 2)
		assert_int_equal(patch_page_undo(&table, gfn(PAGE_GFN + i * 1024),
						 copies + i * SCAN_PAGE_SIZE),
				 2);
	assert_int_equal(table.npages, 150);
	for (unsigned i = 0; i < 300; i++)
		assert_int_equal(patch_page_known(&table, gfn(PAGE_GFN + i * 1024)), i % 2 == 1);

	/* A read of bytes 0..7 of the patched frame gives the original back. */
	memcpy(buf, copies + SCAN_PAGE_SIZE, 8);
	assert_int_equal(buf[0], PATCH_INT3);
	patch_read_fixup(&table, gpa((PAGE_GFN + 1024) << PAGE_SHIFT), buf, 8);
	assert_memory_equal(buf, orig, 8);
	free(copies);

	/* Across a page end: last 4 bytes of one frame, first 4 of a patched one. */
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);
	memcpy(buf, orig + SCAN_PAGE_SIZE - 4, 4);
	memcpy(buf + 4, copy, 4);
	patch_read_fixup(&table, gpa((PAGE_GFN << PAGE_SHIFT) - 4), buf, 8);
	assert_memory_equal(buf + 4, orig, 4);
}

/* Linux's paravirt save_fl sites after alternatives: pushf; pop %rax; nop4 or nop5. */
static const u8 save_fl[] = { 0x9c, 0x58, 0x0f, 0x1f, 0x44, 0x00, 0x00 };
static const u8 save_fl6[] = { 0x9c, 0x58, 0x0f, 0x1f, 0x40, 0x00 };

static void test_save_fl_site(void **state)
{
	static const u8 and_eax[] = { 0x25, 0xff, 0xcf, 0xff, 0xff };
	static const u8 and_ax[] = { 0x66, 0x25, 0xff, 0xcf };
	u8 page[SCAN_PAGE_SIZE];
	const u8 *repl = NULL;

	(void)state;
	memset(page, 0xcc, sizeof(page));
	memcpy(page + 0x100, save_fl, sizeof(save_fl));
	memcpy(page + 0x200, save_fl6, sizeof(save_fl6));
	memcpy(page + SCAN_PAGE_SIZE - 6, save_fl, 6); /* its nop would run past the page */
	assert_int_equal(patch_save_fl_site(page, 0x100, &repl), 5);
	assert_memory_equal(repl, and_eax, 5);
	assert_int_equal(patch_save_fl_site(page, 0x200, &repl), 4);
	assert_memory_equal(repl, and_ax, 4);
	assert_int_equal(patch_save_fl_site(page, 0x101, &repl), 0);
	assert_int_equal(patch_save_fl_site(page, SCAN_PAGE_SIZE - 6, &repl), 0);
	page[0x103] = 0x1e; /* not the kernel's nop */
	assert_int_equal(patch_save_fl_site(page, 0x100, &repl), 0);
	assert_int_equal(patch_save_fl_site(page, 0, &repl), 0); /* int3 filler */
}

/* The paravirt irq-flag sites the patch strategy turns into monitor calls. */
static void test_pv_site(void **state)
{
	static const u8 cli6[] = { 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	static const u8 sti7[] = { 0xfb, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	static const u8 sti_hlt[] = { 0xfb, 0xf4, 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	u8 page[SCAN_PAGE_SIZE];
	unsigned len = 0, nop = 0;

	(void)state;
	memset(page, 0xcc, sizeof(page));
	memcpy(page + 0x100, save_fl, sizeof(save_fl));
	memcpy(page + 0x200, save_fl6, sizeof(save_fl6));
	memcpy(page + 0x300, cli6, sizeof(cli6));
	memcpy(page + 0x400, sti7, sizeof(sti7));
	memcpy(page + 0x500, sti_hlt, sizeof(sti_hlt));
	memcpy(page + SCAN_PAGE_SIZE - 5, cli6, 5); /* its nop would run past the page */
	assert_int_equal(patch_pv_site(page, 0x100, &len, &nop), PATCH_PV_SAVE_FL);
	assert_int_equal(len, 7);
	assert_int_equal(nop, 2);
	assert_int_equal(patch_pv_site(page, 0x200, &len, &nop), PATCH_PV_SAVE_FL);
	assert_int_equal(len, 6);
	assert_int_equal(patch_pv_site(page, 0x300, &len, &nop), PATCH_PV_IRQ_DISABLE);
	assert_int_equal(len, 6);
	assert_int_equal(nop, 1);
	assert_int_equal(patch_pv_site(page, 0x400, &len, &nop), PATCH_PV_IRQ_ENABLE);
	assert_int_equal(len, 7);
	assert_int_equal(nop, 1);
	/* sti; hlt (native_safe_halt) is no site: the hlt is not padding. */
	assert_int_equal(patch_pv_site(page, 0x500, &len, &nop), PATCH_PV_NONE);
	assert_int_equal(patch_pv_site(page, 0x301, &len, &nop), PATCH_PV_NONE);
	assert_int_equal(patch_pv_site(page, SCAN_PAGE_SIZE - 5, &len, &nop), PATCH_PV_NONE);
	assert_int_equal(patch_pv_site(page, 0, &len, &nop), PATCH_PV_NONE);
	page[0x303] = 0x1e; /* not the kernel's nop */
	assert_int_equal(patch_pv_site(page, 0x300, &len, &nop), PATCH_PV_NONE);
}

/* The native functions behind those sites: a head, then jmp rel32 or ret + int3 x4. */
static void test_pv_body(void **state)
{
	static const u8 save_fl_jmp[] = { 0x9c, 0x58, 0xe9, 0xb9, 0xbe, 0x3f, 0x00 };
	static const u8 cli_ret[] = { 0xfa, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc };
	static const u8 sti_jmp_back[] = { 0xfb, 0xe9, 0xf0, 0xff, 0xff, 0xff };
	static const u8 cli_ret_short[] = { 0xfa, 0xc3, 0xcc, 0xcc, 0x90, 0x90 };
	u8 page[SCAN_PAGE_SIZE];
	unsigned len = 0, head = 0;
	s32 rel = 1;

	(void)state;
	memset(page, 0xcc, sizeof(page));
	memcpy(page + 0x30, save_fl_jmp, sizeof(save_fl_jmp)); /* Debian 6.1's native_save_fl */
	memcpy(page + 0x80, cli_ret, sizeof(cli_ret));
	memcpy(page + 0xc0, sti_jmp_back, sizeof(sti_jmp_back));
	memcpy(page + 0x100, cli_ret_short, sizeof(cli_ret_short));
	memcpy(page + SCAN_PAGE_SIZE - 5, cli_ret, 5);
	assert_int_equal(patch_pv_body(page, 0x30, &len, &head, &rel), PATCH_PV_SAVE_FL);
	assert_int_equal(len, 7);
	assert_int_equal(head, 2);
	assert_int_equal(rel, 0x3fbeb9);
	assert_int_equal(patch_pv_body(page, 0x80, &len, &head, &rel), PATCH_PV_IRQ_DISABLE);
	assert_int_equal(len, 6);
	assert_int_equal(head, 1);
	assert_int_equal(rel, 0);
	assert_int_equal(patch_pv_body(page, 0xc0, &len, &head, &rel), PATCH_PV_IRQ_ENABLE);
	assert_int_equal(rel, -16);
	/* A ret without its four int3s is not the thunk's inlined form. */
	assert_int_equal(patch_pv_body(page, 0x100, &len, &head, &rel), PATCH_PV_NONE);
	assert_int_equal(patch_pv_body(page, SCAN_PAGE_SIZE - 5, &len, &head, &rel), PATCH_PV_NONE);
	assert_int_equal(patch_pv_body(page, 0x31, &len, &head, &rel), PATCH_PV_NONE); /* pop */
	assert_int_equal(patch_pv_body(page, 0, &len, &head, &rel), PATCH_PV_NONE);
}

/*
 * A rewrite: recorded, never a trap, undone and read back byte-exact, and
 * refused over another patch or over bytes that changed.
 */
static void test_rewrite(void **state)
{
	static const u8 repl[] = { 0x25, 0xff, 0xcf, 0xff, 0xff };
	u8 buf[16];

	(void)state;
	memcpy(orig + 0x40, save_fl, sizeof(save_fl));
	memcpy(copy, orig, sizeof(copy));
	assert_int_equal(patch_page_apply(&table, gfn(PAGE_GFN), &res, copy), 2);
	assert_int_equal(patch_page_rewrite(&table, gfn(PAGE_GFN), DECODE_64, 0x42, orig + 0x42,
					    repl, sizeof(repl), copy),
			 1);
	assert_memory_equal(copy + 0x42, repl, sizeof(repl));
	assert_memory_equal(copy + 0x40, save_fl, 2); /* pushf; pop stay native */
	assert_int_equal(table.nsites, 3);
	/* A rewrite is no trap, but found as a rewrite at its start (and only there). */
	assert_null(patch_lookup(&table, at(0x42)));
	assert_non_null(patch_lookup_rewrite(&table, at(0x42)));
	assert_memory_equal(patch_lookup_rewrite(&table, at(0x42))->orig, orig + 0x42,
			    sizeof(repl));
	assert_null(patch_lookup_rewrite(&table, at(0x43)));
	assert_null(patch_lookup_rewrite(&table, at(0x40)));
	{
		gfn_t frames[2] = { gfn(0), gfn(0) };

		assert_int_equal(patch_rewrite_frames(&table, frames, 2), 1);
		assert_int_equal(frames[0].v, PAGE_GFN);
		assert_int_equal(patch_rewrite_frames(&table, NULL, 0), 1);
	}
	/* Not an int3 of ours: no lookup, and an int3 there would be the guest's. */
	assert_null(patch_lookup(&table, at(0x42)));
	assert_int_equal(patch_classify_int3(&table, at(0x42), NULL), PATCH_TRAP_GUEST);
	/* Overlapping another patch, stale bytes, another mode, past the page: refused. */
	assert_int_equal(patch_page_rewrite(&table, gfn(PAGE_GFN), DECODE_64, 0x44, copy + 0x44,
					    repl, sizeof(repl), copy),
			 -EEXIST);
	assert_int_equal(
		patch_page_rewrite(&table, gfn(PAGE_GFN), DECODE_64, 0x0, orig, repl, 1, copy),
		-EEXIST);
	assert_int_equal(patch_page_rewrite(&table, gfn(PAGE_GFN), DECODE_64, 0x80, save_fl, repl,
					    sizeof(repl), copy),
			 -ESTALE);
	assert_int_equal(patch_page_rewrite(&table, gfn(PAGE_GFN), DECODE_32, 0x90, copy + 0x90,
					    repl, sizeof(repl), copy),
			 -EINVAL);
	assert_int_equal(patch_page_rewrite(&table, gfn(PAGE_GFN), DECODE_64, SCAN_PAGE_SIZE - 2,
					    copy + SCAN_PAGE_SIZE - 2, repl, sizeof(repl), copy),
			 -EINVAL);
	/* Reads see the original bytes, also a read that starts inside the rewrite. */
	memcpy(buf, copy + 0x40, sizeof(buf));
	patch_read_fixup(&table, at(0x40), buf, sizeof(buf));
	assert_memory_equal(buf, orig + 0x40, sizeof(buf));
	memcpy(buf, copy + 0x44, 4);
	patch_read_fixup(&table, at(0x44), buf, 4);
	assert_memory_equal(buf, orig + 0x44, 4);
	/* The pages's undo puts every byte back. */
	assert_int_equal(patch_page_undo(&table, gfn(PAGE_GFN), copy), 3);
	assert_memory_equal(copy, orig, sizeof(copy));
	assert_int_equal(patch_rewrite_frames(&table, NULL, 0), 0);
	/* A rewrite on a page no scan patched yet creates its record. */
	assert_int_equal(patch_page_rewrite(&table, gfn(PAGE_GFN + 1), DECODE_64, 0x42, orig + 0x42,
					    repl, sizeof(repl), copy),
			 1);
	assert_true(patch_page_known(&table, gfn(PAGE_GFN + 1)));
	assert_int_equal(patch_page_undo(&table, gfn(PAGE_GFN + 1), copy), 1);
	assert_memory_equal(copy, orig, sizeof(copy));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_int3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rescan_after_guest_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_and_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_not_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_straddling_site, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_pages_and_read_fixup, setup, teardown),
		cmocka_unit_test(test_save_fl_site),
		cmocka_unit_test(test_pv_site),
		cmocka_unit_test(test_pv_body),
		cmocka_unit_test_setup_teardown(test_rewrite, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
