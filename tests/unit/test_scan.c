/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for code-page scanning (decode/scan.c): hand-assembled pages
 * (each byte array is commented with its disassembly), placed in a page
 * whose every other byte is 0x9c (pushf), so that any byte the scan sweeps
 * by mistake shows up as a wrong site. Then a property test: random pages
 * and entries against an oracle that walks the same pages with capstone on
 * its own. Then the scan memo: rescans of rewritten pages through a memo
 * against scans from scratch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode/scan.h"
#include "tests/unit/scan_same.h"

#define PAGE_GVA 0xffffffff81234000ull
#define FILLER	 0x9c /* pushf: a wrongly swept filler byte becomes a site */

static u8 page[SCAN_PAGE_SIZE];

static void fill_page(const u8 *code, size_t len, unsigned at)
{
	memset(page, FILLER, sizeof(page));
	memcpy(page + at, code, len);
}

static struct scan_result *scan(enum decode_mode mode, u32 kinds, const u8 *next, unsigned next_len,
				u16 entry, int expect_new)
{
	struct scan_result *res = malloc(sizeof(*res));

	assert_non_null(res);
	assert_int_equal(
		scan_code_page(res, page, next, next_len, gva(PAGE_GVA), mode, kinds, entry),
		expect_new);
	return res;
}

static void done(struct scan_result *res)
{
	scan_result_free(res);
	free(res);
}

static void assert_site(const struct scan_result *res, unsigned i, unsigned off, unsigned len,
			enum scan_kind kind)
{
	assert_true(i < res->nsites);
	assert_int_equal(res->sites[i].off, off);
	assert_int_equal(res->sites[i].len, len);
	assert_int_equal(res->sites[i].kind, kind);
	assert_false(res->sites[i].conflict);
}

/* The Linux irq save/restore shape. */
static void test_irq_save_restore(void **state)
{
	static const u8 code[] = {
		0x9c,		  /* 0: pushf */
		0x58,		  /* 1: pop %rax */
		0xfa,		  /* 2: cli */
		0x48, 0x89, 0xc7, /* 3: mov %rax,%rdi */
		0x50,		  /* 6: push %rax */
		0x9d,		  /* 7: popf */
		0xc3,		  /* 8: ret */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 2);
	assert_int_equal(res->nsites, 2);
	assert_site(res, 0, 0, 1, SCAN_KIND_PUSHF);
	assert_site(res, 1, 7, 1, SCAN_KIND_POPF);
	assert_int_equal(res->sites[0].orig[0], 0x9c);
	assert_int_equal(res->sites[1].orig[0], 0x9d);
	assert_int_equal(res->ninsns, 7);
	assert_true(scan_is_insn_start(res, 3));
	assert_false(scan_is_insn_start(res, 4));
	assert_false(scan_is_insn_start(res, 9)); /* data after ret */
	assert_int_equal(res->nconflicts, 0);
	assert_int_equal(res->pending_straddle, SCAN_ENTRY_NONE);
	assert_ptr_equal(scan_find_site(res, 7), &res->sites[1]);
	assert_null(scan_find_site(res, 8));
	done(res);
}

/* 0x9c/0x9d inside an immediate and in data jumped over are not sites. */
static void test_branches_around_data(void **state)
{
	static const u8 code[] = {
		0xb8, 0x9c, 0x00, 0x00, 0x00, /* 0: mov $0x9c,%eax */
		0xeb, 0x03,		      /* 5: jmp 0xa */
		0x9c, 0x9d, 0x9c,	      /* 7: data */
		0x74, 0x02,		      /* a: je 0xe */
		0x9d,			      /* c: popf */
		0xc3,			      /* d: ret */
		0x9c,			      /* e: pushf */
		0xc3,			      /* f: ret */
		0x9d, 0x9d,		      /* 10: data after ret */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 2);
	assert_int_equal(res->nsites, 2);
	assert_site(res, 0, 0xc, 1, SCAN_KIND_POPF);
	assert_site(res, 1, 0xe, 1, SCAN_KIND_PUSHF);
	assert_false(scan_is_insn_start(res, 1));
	assert_false(scan_is_insn_start(res, 7));
	assert_int_equal(res->ninsns, 7);
	/* Targets: the jumps' destinations, not the entry nor what is only fallen into. */
	assert_false(scan_is_target(res, 0));
	assert_true(scan_is_target(res, 0xa));
	assert_true(scan_is_target(res, 0xe));
	assert_false(scan_is_target(res, 5));
	assert_false(scan_is_target(res, 0xc));
	assert_false(scan_is_target(res, 0xd));
	assert_false(scan_is_target(res, 0xfff));
	done(res);
}

/*
 * Exits: a direct jump or call that leaves the page and the fall-through
 * past its end are reported once each, as linear addresses.
 */
static void test_exits(void **state)
{
	static const u8 code[] = {
		0xe8, 0xfb, 0x0f, 0x00, 0x00, /* 0: call PAGE+0x1000 (next page) */
		0xe8, 0xf6, 0x0f, 0x00, 0x00, /* 5: call PAGE+0x1000 again */
		0x74, 0x02,		      /* a: je 0xe */
		0xeb, 0xf0,		      /* c: jmp -16 (previous page) */
		0xc3,			      /* e: ret */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
	assert_int_equal(res->nexits, 2);
	assert_true(res->exits[0] == PAGE_GVA + 0x1000);
	assert_true(res->exits[1] == PAGE_GVA - 2);
	done(res);
	/* Straight-line code at the page end falls into the next page. */
	memset(page, 0x90, sizeof(page));
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, SCAN_PAGE_SIZE - 4, 0);
	assert_int_equal(res->nexits, 1);
	assert_true(res->exits[0] == PAGE_GVA + SCAN_PAGE_SIZE);
	done(res);
}

/*
 * SCAN_OPT_LINEAR goes on past ret/jmp to the functions after it (reached
 * only through function pointers), but stops at a byte that does not
 * decode. In 64-bit code only iretq is an IRET site: a lone cf is taken for
 * a displacement byte (a real kernel's `mov 0x113cf1d(%rip)` was hit).
 */
static void test_linear(void **state)
{
	static const u8 code[] = {
		0xc3,	    /* 0: ret */
		0x90, 0x90, /* 1: padding */
		0x9c,	    /* 3: pushf, a function nobody branches to */
		0xcf,	    /* 4: iretd: not a site in 64-bit code */
		0x48, 0xcf, /* 5: iretq */
		0x8c, 0xc8, /* 7: mov %cs,%eax */
		0xc3,	    /* 9: ret */
		0x06,	    /* a: not an instruction in 64-bit mode */
		0x9d,	    /* b: popf, past it: not swept */
		0xc3,	    /* c: ret */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code, sizeof(code), 0);
	memset(page + sizeof(code), 0x90, sizeof(page) - sizeof(code));
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
	assert_int_equal(res->nsites, 0); /* recursive descent stops at the ret */
	done(res);
	res = scan(DECODE_64,
		   SCAN_KINDS_DEFAULT | SCAN_KIND_BIT(SCAN_KIND_IRET) |
			   SCAN_KIND_BIT(SCAN_KIND_SREG_READ) | SCAN_OPT_LINEAR,
		   NULL, 0, 0, 3);
	assert_site(res, 0, 3, 1, SCAN_KIND_PUSHF);
	assert_site(res, 1, 5, 2, SCAN_KIND_IRET);
	assert_site(res, 2, 7, 2, SCAN_KIND_SREG_READ);
	assert_int_equal(res->ninvalid, 1);
	assert_false(scan_is_insn_start(res, 0xb));
	done(res);
	/* In 32-bit code a lone cf is iret, a site (48 is `dec %eax` there). */
	res = scan(DECODE_32, SCAN_KIND_BIT(SCAN_KIND_IRET) | SCAN_OPT_LINEAR, NULL, 0, 4, 2);
	assert_site(res, 0, 4, 1, SCAN_KIND_IRET);
	assert_site(res, 1, 6, 1, SCAN_KIND_IRET);
	done(res);
}

/*
 * scan_kinds_shadow: the linear sweep in 64-bit code only. Linux's 32-bit
 * decompressor jumps into its relocated copy right after the end of its
 * compressed payload, in the same page; the bytes after its startup code's
 * `jmp *%eax` are payload too. Swept as code, payload bytes 9c/9d/cf/0e
 * became int3 patches and the payload failed its CRC (session 34).
 */
static void test_no_sweep_in_32bit(void **state)
{
	static const u8 startup[] = {
		0x6a, 0x00, /* 0: push $0 */
		0x9d,	    /* 2: popf: a site */
		0xff, 0xe0, /* 3: jmp *%eax */
		0x37, 0x9c, /* 5: payload: aaa; pushf, as a sweep would read it */
		0xcf,	    /* 7: iret */
		0x0e,	    /* 8: push %cs */
	};
	struct scan_result *res;

	(void)state;
	fill_page(startup, sizeof(startup), 0);
	memset(page + sizeof(startup), 0x90, sizeof(page) - sizeof(startup));
	assert_int_equal(scan_kinds_shadow(DECODE_32), SCAN_KINDS_SHADOW & ~SCAN_OPT_LINEAR);
	assert_int_equal(scan_kinds_shadow(DECODE_16), SCAN_KINDS_SHADOW & ~SCAN_OPT_LINEAR);
	assert_int_equal(scan_kinds_shadow(DECODE_64), SCAN_KINDS_SHADOW);
	res = scan(DECODE_32, scan_kinds_shadow(DECODE_32), NULL, 0, 0, 1);
	assert_site(res, 0, 2, 1, SCAN_KIND_POPF);
	assert_false(scan_is_insn_start(res, 5));
	done(res);
	/* With the sweep, as before: three sites in the payload. */
	res = scan(DECODE_32, SCAN_KINDS_SHADOW, NULL, 0, 0, 4);
	assert_site(res, 1, 6, 1, SCAN_KIND_PUSHF);
	assert_site(res, 2, 7, 1, SCAN_KIND_IRET);
	assert_site(res, 3, 8, 1, SCAN_KIND_SREG_READ);
	done(res);
}

/*
 * scan_sync_offset: 3-byte instructions (mov %rdi,%rax) run through the
 * page boundary; the last one starts 1 byte before it, so the page's first
 * instruction starts at offset 2, whatever byte the decoding starts from.
 */
static void test_sync_offset(void **state)
{
	u8 tail[64], head[30];

	(void)state;
	for (unsigned i = 0; i < sizeof(tail) + sizeof(head); i++) {
		u8 b = (u8[]){ 0x48, 0x89, 0xf8 }[i % 3];

		if (i < sizeof(tail))
			tail[i] = b;
		else
			head[i - sizeof(tail)] = b;
	}
	assert_int_equal(tail[63], 0x48);
	assert_int_equal(scan_sync_offset(tail, sizeof(tail), head, sizeof(head), DECODE_64), 2);
	/* Nothing to judge from: no answer. */
	assert_int_equal(scan_sync_offset(tail, 0, head, sizeof(head), DECODE_64), -1);
}

/* A direct call's in-page target is scanned; the bytes between are not. */
static void test_call_and_backward_branch(void **state)
{
	static const u8 code[] = {
		0xe8, 0x0b, 0x00, 0x00, 0x00, /* 0: call 0x10 */
		0xc3,			      /* 5: ret */
					      /* 6..f: filler (pushf bytes: data) */
	};
	static const u8 callee[] = {
		0x9d,			      /* 10: popf */
		0x75, 0xfd,		      /* 11: jne 0x10 (backward) */
		0xe9, 0x00, 0x10, 0x00, 0x00, /* 13: jmp +0x1000 (out of the page) */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code, sizeof(code), 0);
	memcpy(page + 0x10, callee, sizeof(callee));
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 1);
	assert_int_equal(res->nsites, 1);
	assert_site(res, 0, 0x10, 1, SCAN_KIND_POPF);
	assert_int_equal(res->ninsns, 5);
	assert_false(scan_is_insn_start(res, 6));
	assert_false(scan_is_insn_start(res, 0x18)); /* after the jmp */
	done(res);
}

/* Operand-size and REX forms, 64-bit and 32-bit code. */
static void test_operand_sizes(void **state)
{
	static const u8 code64[] = {
		0x66, 0x9c, /* 0: pushfw */
		0x48, 0x9d, /* 2: popfq (REX.W) */
		0x41, 0x9c, /* 4: pushfq (REX.B, ignored) */
		0x66, 0x9d, /* 6: popfw */
		0xc3,	    /* 8: ret */
	};
	static const u8 code32[] = {
		0x9c,	    /* 0: pushfl */
		0x66, 0x9d, /* 1: popfw */
		0x9d,	    /* 3: popfl */
		0xc3,	    /* 4: ret */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code64, sizeof(code64), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 4);
	assert_site(res, 0, 0, 2, SCAN_KIND_PUSHF);
	assert_site(res, 1, 2, 2, SCAN_KIND_POPF);
	assert_site(res, 2, 4, 2, SCAN_KIND_PUSHF);
	assert_site(res, 3, 6, 2, SCAN_KIND_POPF);
	assert_memory_equal(res->sites[1].orig, ((const u8[]){ 0x48, 0x9d }), 2);
	done(res);

	fill_page(code32, sizeof(code32), 0);
	res = scan(DECODE_32, SCAN_KINDS_DEFAULT, NULL, 0, 0, 3);
	assert_site(res, 0, 0, 1, SCAN_KIND_PUSHF);
	assert_site(res, 1, 1, 2, SCAN_KIND_POPF);
	assert_site(res, 2, 3, 1, SCAN_KIND_POPF);
	done(res);
}

/* The kind mask: descriptor-table reads and segment reads are opt-in. */
static void test_kinds(void **state)
{
	static const u8 code[] = {
		0x0f, 0x01, 0x04, 0x24, /* 0: sgdt (%rsp) */
		0x0f, 0x01, 0xe0,	/* 4: smsw %eax */
		0x8c, 0xc8,		/* 7: mov %cs,%eax */
		0x0f, 0x03, 0xc1,	/* 9: lsl %ecx,%eax */
		0x8c, 0xd8,		/* c: mov %ds,%eax (not sensitive) */
		0x0f, 0xa2,		/* e: cpuid */
		0xc3,			/* 10: ret */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
	assert_int_equal(res->ninsns, 7);
	done(res);

	/* Shadow mode's kinds take cpuid (PVM answers a CPL3 one from the host's CPUID). */
	res = scan(DECODE_64, SCAN_KINDS_SHADOW & ~SCAN_OPT_LINEAR, NULL, 0, 0, 2);
	assert_site(res, 0, 7, 2, SCAN_KIND_SREG_READ);
	assert_site(res, 1, 0xe, 2, SCAN_KIND_CPUID);
	done(res);

	res = scan(DECODE_64, SCAN_KINDS_NO_UMIP, NULL, 0, 0, 2);
	assert_site(res, 0, 0, 4, SCAN_KIND_SYSDESC);
	assert_site(res, 1, 4, 3, SCAN_KIND_SYSDESC);
	done(res);

	res = scan(DECODE_64,
		   SCAN_KIND_BIT(SCAN_KIND_SREG_READ) | SCAN_KIND_BIT(SCAN_KIND_SEGCHECK), NULL, 0,
		   0, 2);
	assert_site(res, 0, 7, 2, SCAN_KIND_SREG_READ);
	assert_site(res, 1, 9, 3, SCAN_KIND_SEGCHECK);
	done(res);
	assert_string_equal(scan_kind_name(SCAN_KIND_POPF), "popf");
}

/*
 * scan_fs_uses: an FS prefix on a recorded instruction, behind other
 * prefixes or a REX too; not a GS one, nor one in bytes the sweep never
 * reached; prefixes up to the page's end count as one.
 */
static void test_fs_prefix(void **state)
{
	static const u8 gs_only[] = {
		0x65, 0x48, 0x8b, 0x04, 0x25, 0x10, 0, 0, 0, /* 0: mov %gs:0x10,%rax */
		0xc3,					     /* 9: ret */
		0x64, 0x8b, 0x00, /* a: mov %fs:(%rax),%eax, never reached */
	};
	static const u8 fs_forms[][4] = {
		{ 0x64, 0x8b, 0x00, 0xc3 }, /* mov %fs:(%rax),%eax */
		{ 0x66, 0x64, 0x8b, 0x00 }, /* behind an operand-size prefix */
		{ 0x48, 0x64, 0x8b, 0x00 }, /* behind a REX (which it voids) */
		{ 0xf3, 0x48, 0x0f, 0xae }, /* rdfsbase %rax (ModRM c0 below) */
	};
	struct scan_result *res;
	u8 next[16];

	(void)state;
	fill_page(gs_only, sizeof(gs_only), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
	assert_int_equal(scan_fs_uses(res, page, NULL), 0);
	done(res);
	/* rdgsbase/wrgsbase (/1, /3) and a plain 0f ae (lfence) are not FS's. */
	fill_page((const u8[]){ 0xf3, 0x48, 0x0f, 0xae, 0xc8, 0xf3, 0x48, 0x0f, 0xae, 0xd8, 0x0f,
				0xae, 0xe8, 0xc3 },
		  14, 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
	assert_int_equal(res->ninsns, 4);
	assert_int_equal(scan_fs_uses(res, page, NULL), 0);
	done(res);
	for (unsigned i = 0; i < sizeof(fs_forms) / sizeof(fs_forms[0]); i++) {
		fill_page(fs_forms[i], sizeof(fs_forms[i]), 0);
		page[4] = 0xc3;
		if (fs_forms[i][3] == 0xae) { /* rdfsbase %rax; wrfsbase %rax */
			memcpy(page + 4, (const u8[]){ 0xc0, 0xf3, 0x48, 0x0f, 0xae, 0xd0, 0xc3 },
			       7);
		}
		res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
		assert_int_equal(scan_fs_uses(res, page, NULL),
				 fs_forms[i][3] == 0xae ? SCAN_FS_BASE_INSN : SCAN_FS_PREFIX);
		done(res);
	}
	/* An instruction whose prefixes fill the page's last bytes (the rest in the next page). */
	fill_page((const u8[]){ 0xeb, 0x7e }, 2, 0); /* jmp to 0x80 */
	memset(page + 0x80, 0x90, SCAN_PAGE_SIZE - 0x80 - 2);
	page[SCAN_PAGE_SIZE - 2] = 0x66;
	page[SCAN_PAGE_SIZE - 1] = 0x66;
	memcpy(next, (const u8[]){ 0x90, 0xc3 }, 2);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, next, 2, 0, 0);
	assert_true(scan_is_insn_start(res, SCAN_PAGE_SIZE - 2));
	assert_int_equal(scan_fs_uses(res, page, NULL), SCAN_FS_PREFIX); /* not known */
	assert_int_equal(scan_fs_uses(res, page, next), 0);		 /* a nop */
	memcpy(next, (const u8[]){ 0x64, 0x8b, 0x00 }, 3);		 /* mov %fs:(%rax),%ax */
	assert_int_equal(scan_fs_uses(res, page, next), SCAN_FS_PREFIX); /* after the 66s */
	next[1] = 0xc3; /* ... but a ret: nothing through FS */
	assert_int_equal(scan_fs_uses(res, page, next), 0);
	page[SCAN_PAGE_SIZE - 1] = 0x64; /* an FS prefix, the rest not known */
	assert_int_equal(scan_fs_uses(res, page, NULL), SCAN_FS_PREFIX);
	done(res);
}

/*
 * An FS prefix counts only where capstone finds a memory operand FS
 * addresses: a string instruction's source does, a nop or a ret with the
 * prefix (bytes a wrong sweep may have taken for code) does not.
 */
static void test_fs_prefix_operand(void **state)
{
	static const struct {
		u8 code[4];
		unsigned uses;
	} forms[] = {
		{ { 0x64, 0x90, 0xc3 }, 0 },			/* fs nop */
		{ { 0x64, 0xc3 }, 0 },				/* fs ret */
		{ { 0x64, 0x50, 0xc3 }, 0 },			/* fs push %rax: SS, not FS */
		{ { 0x64, 0xa4, 0xc3 }, SCAN_FS_PREFIX },	/* fs movsb: reads %fs:(%rsi) */
		{ { 0x64, 0x89, 0x18, 0xc3 }, SCAN_FS_PREFIX }, /* mov %ebx,%fs:(%rax) */
	};
	struct scan_result *res;

	(void)state;
	for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		fill_page(forms[i].code, sizeof(forms[i].code), 0);
		res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
		assert_true(scan_is_insn_start(res, 0));
		assert_int_equal(scan_fs_uses(res, page, NULL), forms[i].uses);
		done(res);
	}
}

/*
 * ud1 (0f b9 /r) and ud0 (0f ff /r) take a ModRM, its SIB and displacement
 * (capstone 4.0.2 makes them two bytes): the sweep goes on after all of
 * them, and finds no pushf in the ModRM (9c) nor a popf in the disp32 (9d).
 */
static void test_ud1_length(void **state)
{
	static const u8 code[] = {
		0x0f, 0xb9, 0x9c, 0x24, 0x9d, 0, 0, 0, /* 0: ud1 0x9d(%rsp),%ebx */
		0x0f, 0xff, 0x9d, 0x9c, 0x9c, 0, 0,    /* 8: ud0 0x9c9c(%rbp),%ebx */
		0x0f, 0xb9, 0xcc,		       /* f: ud1 %esp,%ecx (Linux's static calls) */
		0x9c,				       /* 12: pushf */
		0xc3,				       /* 13: ret */
	};
	struct scan_result *res;
	u64 to[2];

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 1);
	assert_int_equal(res->insn_len[0], 8);
	assert_int_equal(res->insn_len[8], 7);
	assert_int_equal(res->insn_len[0xf], 3);
	assert_int_equal(res->nsites, 1);
	assert_site(res, 0, 0x12, 1, SCAN_KIND_PUSHF);
	done(res);
	/* 16-bit addressing: mod 0, r/m 6 is a disp16. */
	fill_page((const u8[]){ 0x0f, 0xb9, 0x1e, 0x9c, 0x9d, 0xc3 }, 6, 0);
	res = scan(DECODE_16, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
	assert_int_equal(res->insn_len[0], 5);
	done(res);
	/* Cut short: not an instruction yet (the sweep's straddle rule takes it from there). */
	assert_int_equal(scan_flow_from(code, 5, PAGE_GVA, DECODE_64, to), 0);
	assert_int_equal(scan_flow_from(code, 8, PAGE_GVA, DECODE_64, to), 1);
	assert_int_equal(to[0], PAGE_GVA + 8);
	/* The sync step counts its length too: the page starts 5 bytes into a ud1. */
	{
		static const u8 tail[] = { 0xcc, 0xcc, 0xcc, 0xcc, 0x0f, 0xb9, 0x9c };

		assert_int_equal(scan_sync_offset(tail, sizeof(tail), code + 3, 15, DECODE_64), 5);
	}
}

/*
 * Instructions capstone 4.0.2 does not decode, which Linux has (AVX-512
 * ones among them): the sweep goes on after each (it stopped at the
 * first), and finds the pushf and popf between them.
 */
static void test_unknown_to_capstone(void **state)
{
	static const u8 code[] = {
		0x0f, 0x01, 0xe8,			  /* 0: serialize */
		0x9c,					  /* 3: pushf */
		0x0f, 0x01, 0xee,			  /* 4: rdpkru */
		0x0f, 0x01, 0xef,			  /* 7: wrpkru */
		0x66, 0x0f, 0xae, 0xf1,			  /* a: tpause %ecx */
		0xf2, 0x0f, 0x01, 0xff,			  /* e: pvalidate */
		0xc4, 0xe2, 0x78, 0x49, 0xc0,		  /* 12: tilerelease */
		0x62, 0xf1, 0x65, 0x08, 0x72, 0xc3, 0x10, /* 17: vprord $0x10,%xmm3,%xmm3 */
		0x62, 0x72, 0x4d, 0x28, 0x76, 0xc7,	  /* 1e: vpermi2d %ymm7,%ymm6,%ymm8 */
		0x9d,					  /* 24: popf */
		0xc3,					  /* 25: ret */
	};
	struct scan_result *res;
	u64 to[2];

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 2);
	assert_int_equal(res->insn_len[0xa], 4);
	assert_int_equal(res->insn_len[0x12], 5);
	assert_site(res, 0, 3, 1, SCAN_KIND_PUSHF);
	assert_int_equal(res->insn_len[0x17], 7);
	assert_int_equal(res->insn_len[0x1e], 6);
	assert_site(res, 1, 0x24, 1, SCAN_KIND_POPF);
	assert_int_equal(res->ninvalid, 0);
	done(res);
	assert_int_equal(scan_flow_from(code, sizeof(code), PAGE_GVA, DECODE_64, to), 1);
	assert_int_equal(to[0], PAGE_GVA + 3);
}

/*
 * scan_flow_from: a fall-through, a direct target, both, or neither. A
 * movabs from 0xffd straddles into the next page with 9c/9d/fa/fb bytes
 * (pushf, popf, cli, sti taken alone) in its immediate: the next page's
 * entry is its end, 7 bytes in, never its first byte.
 */
static void test_flow_from(void **state)
{
	static const u8 movabs[] = { 0x48, 0xb8, 0x11, 0x9c, 0x9d, 0xfa, 0xfb, 0x9c, 0x9d, 0x64 };
	static const u8 jmp[] = { 0xe9, 0x00, 0x01, 0x00, 0x00 };  /* jmp .+0x105 */
	static const u8 call[] = { 0xe8, 0x00, 0x01, 0x00, 0x00 }; /* call .+0x105 */
	static const u8 jcc[] = { 0x74, 0x10 };			   /* je .+0x12 */
	static const u8 ret[] = { 0xc3 };
	const u64 ip = PAGE_GVA + 0xffd;
	u64 to[2];

	(void)state;
	assert_int_equal(scan_flow_from(movabs, sizeof(movabs), ip, DECODE_64, to), 1);
	assert_int_equal(to[0], PAGE_GVA + 0x1007);
	assert_int_equal(scan_flow_from(jmp, sizeof(jmp), ip, DECODE_64, to), 1);
	assert_int_equal(to[0], ip + 0x105);
	assert_int_equal(scan_flow_from(call, sizeof(call), ip, DECODE_64, to), 2);
	assert_int_equal(to[0], ip + 5);
	assert_int_equal(to[1], ip + 0x105);
	assert_int_equal(scan_flow_from(jcc, sizeof(jcc), ip, DECODE_64, to), 2);
	assert_int_equal(to[0], ip + 2);
	assert_int_equal(to[1], ip + 0x12);
	assert_int_equal(scan_flow_from(ret, sizeof(ret), ip, DECODE_64, to), 0);
	/* Bytes cut short or not an instruction: nothing. */
	assert_int_equal(scan_flow_from(movabs, 5, ip, DECODE_64, to), 0);
	assert_int_equal(scan_flow_from((const u8[]){ 0x0f, 0xff, 0xff }, 1, ip, DECODE_64, to), 0);
}

/* A 10-byte instruction straddling the page end, with and without the next page. */
static void test_straddle(void **state)
{
	static const u8 tail[] = {
		0x90,				    /* ff8: nop */
		0x90,				    /* ff9: nop */
		0x48, 0xb8, 0x9c, 0x9d, 0x9c, 0x9d, /* ffa: movabs $0x9d9c..,%rax (6 bytes here) */
	};
	static const u8 next[] = { 0x9c, 0x9d, 0x9c, 0x9d, /* the movabs's last 4 bytes */
				   0x9c, 0xc3 };	   /* then code of the next page */
	struct scan_result *res;
	u16 e = 0xffa;

	(void)state;
	fill_page(tail, sizeof(tail), 0xff8);
	/* Next page not mapped: the movabs is pending, nothing is invented. */
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0xff8, 0);
	assert_int_equal(res->ninsns, 2);
	assert_int_equal(res->pending_straddle, 0xffa);
	assert_int_equal(res->next_used, 0);
	/* Later the next page is mapped: re-adding the pending offset decodes it. */
	assert_int_equal(scan_code_page_add_entry(res, page, next, sizeof(next), &e, 1), 0);
	assert_int_equal(res->insn_len[0xffa], 10);
	assert_int_equal(res->pending_straddle, SCAN_ENTRY_NONE);
	assert_int_equal(res->next_used, 4);
	assert_int_equal(res->nsites, 0); /* the next page's pushf is its own scan's */
	done(res);
}

/* A sensitive instruction straddling: 66 at 0xfff, 9c on the next page. */
static void test_straddle_site(void **state)
{
	static const u8 tail[] = { 0x90, 0x66 }; /* ffe: nop; fff: pushfw (66 | 9c) */
	static const u8 next[] = { 0x9c, 0xc3 };
	struct scan_result *res;

	(void)state;
	fill_page(tail, sizeof(tail), 0xffe);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, next, sizeof(next), 0xffe, 1);
	assert_site(res, 0, 0xfff, 2, SCAN_KIND_PUSHF);
	assert_memory_equal(res->sites[0].orig, ((const u8[]){ 0x66, 0x9c }), 2);
	assert_int_equal(res->next_used, 1);
	done(res);
}

/* A guest int3 is not a site, and the sweep goes on past it. */
static void test_guest_int3(void **state)
{
	static const u8 code[] = {
		0xcc,	    /* 0: int3 (the guest's) */
		0x9c,	    /* 1: pushf */
		0x0f, 0x0b, /* 2: ud2 (Linux WARN resumes after it) */
		0x9d,	    /* 4: popf */
		0xc3,	    /* 5: ret */
	};
	struct scan_result *res;

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 2);
	assert_site(res, 0, 1, 1, SCAN_KIND_PUSHF);
	assert_site(res, 1, 4, 1, SCAN_KIND_POPF);
	assert_null(scan_find_site(res, 0));
	done(res);
}

/* Later entries extend a result; known entries add nothing. */
static void test_incremental(void **state)
{
	static const u8 fn_a[] = { 0x9c, 0x58, 0xc3 }; /* 0: pushf; pop %rax; ret */
	static const u8 fn_b[] = { 0x50, 0x9d, 0xc3 }; /* 40: push %rax; popf; ret */
	struct scan_result *res;
	u16 e[] = { 0x40, 0x40, 1 };

	(void)state;
	fill_page(fn_a, sizeof(fn_a), 0);
	memcpy(page + 0x40, fn_b, sizeof(fn_b));
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 1);
	assert_int_equal(res->nsites, 1);
	assert_int_equal(scan_code_page_add_entry(res, page, NULL, 0, e, 2), 1);
	assert_int_equal(res->nsites, 2);
	assert_site(res, 0, 0, 1, SCAN_KIND_PUSHF);
	assert_site(res, 1, 0x41, 1, SCAN_KIND_POPF);
	/* Known starts: nothing new. Offset 1 is a known start too. */
	assert_int_equal(scan_code_page_add_entry(res, page, NULL, 0, e, 3), 0);
	assert_int_equal(res->ninsns, 6);
	/* Entries outside the page are refused. */
	e[0] = 4096;
	assert_int_equal(scan_code_page_add_entry(res, page, NULL, 0, e, 1), -EINVAL);
	done(res);
}

/* Overlapping code: a pushf inside an immediate that also runs as an insn. */
static void test_overlap_conflict(void **state)
{
	static const u8 code[] = {
		0xb8, 0x9c, 0xc3, 0x90, 0x90, /* 0: mov $0x9090c39c,%eax; from 1: pushf; ret */
		0xc3,			      /* 5: ret */
		0x66, 0x9c,		      /* 6: pushfw; from 7: pushfq */
		0xc3,			      /* 8: ret */
	};
	struct scan_result *res;
	u16 e[] = { 1, 6, 7 };

	(void)state;
	fill_page(code, sizeof(code), 0);
	res = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0, 0);
	assert_int_equal(scan_code_page_add_entry(res, page, NULL, 0, e, 3), 3);
	assert_int_equal(res->nsites, 3);
	assert_int_equal(res->sites[0].off, 1);
	assert_true(res->sites[0].conflict); /* int3 at 1 would change the mov */
	assert_site(res, 1, 6, 2, SCAN_KIND_PUSHF);
	assert_site(res, 2, 7, 1, SCAN_KIND_PUSHF); /* inside a site: harmless */
	assert_int_equal(res->nconflicts, 1);
	done(res);
}

/* ---- property test -------------------------------------------------------- */

static u64 rng_state;

static u32 rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (u32)(rng_state >> 33);
}

/*
 * The oracle: reachable starts by capstone text alone (mnemonics and the
 * printed target), independent of scan.c's use of ids and groups.
 */
/* "bnd jmp", "notrack jmp", "rep ret": the last word is the instruction. */
static const char *base_mnemonic(const char *m)
{
	const char *sp = strrchr(m, ' ');

	return sp ? sp + 1 : m;
}

static bool oracle_stops(const char *m)
{
	m = base_mnemonic(m);
	return !strncmp(m, "ret", 3) || !strncmp(m, "iret", 4) || !strcmp(m, "ljmp") ||
	       !strncmp(m, "sysret", 6) || !strcmp(m, "sysexit") || !strcmp(m, "jmp");
}

static bool oracle_target(const cs_insn *in, u64 *target)
{
	const char *m = base_mnemonic(in->mnemonic);
	char *end;

	if (m[0] != 'j' && strncmp(m, "loop", 4) && strcmp(m, "call") && strcmp(m, "xbegin"))
		return false;
	if (strncmp(in->op_str, "0x", 2))
		return false; /* indirect */
	*target = strtoull(in->op_str, &end, 16);
	return *end == '\0';
}

/*
 * ud1/ud0 as the CPU reads them: capstone's two bytes, then a ModRM with
 * the SIB and displacement it asks for (32/64-bit addressing: the random
 * pages are 32- or 64-bit code, and a 0x67 in 32-bit code makes it 16-bit).
 * 0 when that runs past `avail`.
 */
static unsigned oracle_ud_len(const u8 *p, size_t avail, unsigned size, enum decode_mode mode)
{
	static const u8 disp32[4] = { 0, 1, 4, 0 }, disp16[4] = { 0, 1, 2, 0 };
	bool a16 = mode == DECODE_32 && memchr(p, 0x67, size - 2);
	unsigned n = size + 1;
	u8 modrm;

	if (n > avail)
		return 0;
	modrm = p[size];
	if (modrm >> 6 == 3)
		return n;
	if (a16)
		n += (modrm & 0xc7) == 0x06 ? 2 : disp16[modrm >> 6];
	else {
		n += (modrm & 0xc7) == 0x05 ? 4 : disp32[modrm >> 6];
		if ((modrm & 7) == 4) {
			if (size + 2 > avail)
				return 0;
			n += 1 + ((modrm >> 6) == 0 && (p[size + 1] & 7) == 5 ? 4 : 0);
		}
	}
	return n <= avail && n <= SCAN_INSN_MAX ? n : 0;
}

/*
 * An EVEX instruction capstone refuses, as the CPU reads it: 62 and three
 * payload bytes (map 1-3 in the low bits of the first, bit 2 of the second
 * set), the opcode, the ModRM's bytes, and an imm8 in map 3 and for map 1's
 * shift-by-immediate and compare/shuffle opcodes. 0 if not one.
 */
static unsigned oracle_evex_len(const u8 *p, size_t avail)
{
	static const u8 map1_imm[] = { 0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6 };
	unsigned map, n;

	if (avail < 6 || p[0] != 0x62 || !(p[2] & 4) || (map = p[1] & 7) < 1 || map > 3)
		return 0;
	n = oracle_ud_len(p, avail, 5, DECODE_64);
	if (n && (map == 3 || (map == 1 && memchr(map1_imm, p[4], sizeof(map1_imm)))))
		n++;
	return n <= avail && n <= SCAN_INSN_MAX ? n : 0;
}

static void oracle(csh cs, const u8 *buf, size_t buf_len, enum decode_mode mode, const u16 *entries,
		   unsigned n, u8 *reach_len)
{
	static u16 work[SCAN_PAGE_SIZE * 2];
	unsigned nwork = 0;
	u64 wrap = mode == DECODE_64 ? ~0ull : 0xffffffffull;

	memset(reach_len, 0, SCAN_PAGE_SIZE);
	for (unsigned i = 0; i < n; i++)
		work[nwork++] = entries[i];
	while (nwork) {
		unsigned off = work[--nwork];

		while (off < SCAN_PAGE_SIZE && !reach_len[off]) {
			cs_insn *in;
			u64 t;

			unsigned len;

			if (cs_disasm(cs, buf + off, buf_len - off, PAGE_GVA + off, 1, &in) != 1) {
				len = mode == DECODE_64 ? oracle_evex_len(buf + off, buf_len - off)
							: 0;
				if (!len)
					break;
				reach_len[off] = (u8)len;
				off += len;
				continue;
			}
			len = in->size;
			if (!strcmp(in->mnemonic, "ud2b") || !strcmp(in->mnemonic, "ud0"))
				len = oracle_ud_len(buf + off, buf_len - off, in->size, mode);
			if (!len) {
				cs_free(in, 1);
				break;
			}
			reach_len[off] = (u8)len;
			if (oracle_target(in, &t) && ((t - PAGE_GVA) & wrap) < SCAN_PAGE_SIZE &&
			    nwork < ARRAY_SIZE(work))
				work[nwork++] = (u16)((t - PAGE_GVA) & wrap);
			if (oracle_stops(in->mnemonic)) {
				cs_free(in, 1);
				break;
			}
			off += len;
			cs_free(in, 1);
		}
	}
}

/*
 * Random pages and entries against the oracle. `pad`: one byte in `pad` is
 * int3 or nop, the bytes scan.c takes without capstone (0: as random).
 */
static void property_random_pages(unsigned pad, u64 seed)
{
	static u8 buf[SCAN_PAGE_SIZE + SCAN_INSN_MAX];
	static u8 reach_len[SCAN_PAGE_SIZE];
	struct scan_result *res = malloc(sizeof(*res));
	unsigned total_sites = 0;

	assert_non_null(res);
	rng_state = seed;
	for (int iter = 0; iter < 200; iter++) {
		enum decode_mode mode = iter & 1 ? DECODE_32 : DECODE_64;
		csh cs;
		u16 entries[8];
		unsigned n = 1 + rnd() % 8, half = n / 2;

		assert_int_equal(
			cs_open(CS_ARCH_X86, mode == DECODE_64 ? CS_MODE_64 : CS_MODE_32, &cs),
			CS_ERR_OK);
		/* Random bytes, one in eight a pushf/popf, one in `pad` int3 or nop. */
		for (unsigned i = 0; i < sizeof(buf); i++)
			buf[i] = pad && rnd() % pad == 0 ? (rnd() % 2 ? 0xcc : 0x90)
				 : rnd() % 8 == 0	 ? (u8)(0x9c + rnd() % 2)
							 : (u8)rnd();
		for (unsigned i = 0; i < n; i++)
			entries[i] = (u16)(rnd() % SCAN_PAGE_SIZE);

		/* Scan in two steps (incremental) ... */
		scan_result_init(res, gva(PAGE_GVA), mode, SCAN_KINDS_DEFAULT);
		assert_true(scan_code_page_add_entry(res, buf, buf + SCAN_PAGE_SIZE, SCAN_INSN_MAX,
						     entries, half) >= 0);
		assert_true(scan_code_page_add_entry(res, buf, buf + SCAN_PAGE_SIZE, SCAN_INSN_MAX,
						     entries + half, n - half) >= 0);
		/* ... and compare with the oracle run from all entries at once. */
		oracle(cs, buf, sizeof(buf), mode, entries, n, reach_len);
		for (unsigned o = 0; o < SCAN_PAGE_SIZE; o++)
			if (res->insn_len[o] != reach_len[o])
				fail_msg("iter %d mode %d: offset %#x: scan len %u, oracle len %u",
					 iter, mode, o, res->insn_len[o], reach_len[o]);
		for (unsigned i = 0; i < res->nsites; i++) {
			const struct scan_site *s = &res->sites[i];
			cs_insn *in;

			assert_int_equal(res->insn_len[s->off], s->len);
			assert_memory_equal(s->orig, buf + s->off, s->len);
			assert_int_equal(cs_disasm(cs, s->orig, s->len, PAGE_GVA + s->off, 1, &in),
					 1);
			assert_int_equal(in->size, s->len);
			assert_true(!strncmp(in->mnemonic, "pushf", 5) ||
				    !strncmp(in->mnemonic, "popf", 4));
			cs_free(in, 1);
			if (i)
				assert_true(res->sites[i - 1].off < s->off);
		}
		/* Every reachable pushf/popf is a site. */
		for (unsigned o = 0; o < SCAN_PAGE_SIZE; o++) {
			cs_insn *in;

			if (!reach_len[o])
				continue;
			if (cs_disasm(cs, buf + o, sizeof(buf) - o, PAGE_GVA + o, 1, &in) != 1) {
				/* Only an EVEX form capstone lacks: never a site. */
				assert_int_equal(reach_len[o],
						 oracle_evex_len(buf + o, sizeof(buf) - o));
				assert_null(scan_find_site(res, o));
				continue;
			}
			if (!strncmp(in->mnemonic, "pushf", 5) || !strncmp(in->mnemonic, "popf", 4))
				assert_non_null(scan_find_site(res, o));
			cs_free(in, 1);
		}
		total_sites += res->nsites;
		scan_result_free(res);
		cs_close(&cs);
	}
	assert_true(total_sites > 50); /* the test did exercise sites */
	free(res);
}

static void test_property_random_pages(void **state)
{
	(void)state;
	property_random_pages(0, 0x5eed);
}

/* The same with Linux's padding density (28% of its text is int3): the fast path. */
static void test_property_padded_pages(void **state)
{
	(void)state;
	property_random_pages(4, 0xcc90);
}

/*
 * scan_sync_offset against the definition it replaced: decode from each
 * start of the tail, instruction by instruction, to where the stream first
 * reaches the page; the offset most streams reach wins with 60% of them.
 */
static int sync_reference(const u8 *tail, unsigned tail_len, const u8 *head, unsigned head_len,
			  enum decode_mode mode)
{
	u8 buf[64 + 2 * SCAN_INSN_MAX];
	unsigned votes[SCAN_INSN_MAX] = { 0 }, total = 0, best = 0;
	csh cs;

	if (!tail_len || tail_len > 64 || head_len > 2 * SCAN_INSN_MAX)
		return -1;
	memcpy(buf, tail, tail_len);
	memcpy(buf + tail_len, head, head_len);
	assert_int_equal(cs_open(CS_ARCH_X86, mode == DECODE_64 ? CS_MODE_64 : CS_MODE_32, &cs),
			 CS_ERR_OK);
	for (unsigned start = 0; start < tail_len; start++) {
		unsigned at = start;
		cs_insn *in;

		while (at < tail_len &&
		       cs_disasm(cs, buf + at, tail_len + head_len - at, at, 1, &in) == 1) {
			at += in->size;
			cs_free(in, 1);
		}
		if (at >= tail_len && at - tail_len < SCAN_INSN_MAX) {
			votes[at - tail_len]++;
			total++;
		}
	}
	cs_close(&cs);
	for (unsigned i = 1; i < SCAN_INSN_MAX; i++)
		if (votes[i] > votes[best])
			best = i;
	return total && votes[best] * 100 >= 60 * tail_len ? (int)best : -1;
}

static void test_sync_offset_reference(void **state)
{
	u8 tail[64], head[2 * SCAN_INSN_MAX];
	unsigned found = 0;

	(void)state;
	rng_state = 0x5e11c;
	for (int iter = 0; iter < 3000; iter++) {
		enum decode_mode mode = iter & 1 ? DECODE_32 : DECODE_64;
		unsigned tail_len = 1 + rnd() % 64;

		/*
		 * Runs of one instruction (3-, 5- or 7-byte movs, int3 padding),
		 * sometimes broken by random bytes, so that both answers and
		 * refusals come up.
		 */
		static const u8 insns[][7] = {
			{ 0x48, 0x89, 0xf8 },			      /* mov %rdi,%rax */
			{ 0xb8, 0x01, 0x00, 0x00, 0x00 },	      /* mov $1,%eax */
			{ 0x48, 0x8b, 0x84, 0x24, 0x10, 0, 0 },	      /* mov 0x10(%rsp),%rax */
			{ 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc }, /* int3 padding */
		};
		static const unsigned lens[] = { 3, 5, 7, 7 };
		unsigned k = rnd() % 4, noise = rnd() % 3;

		for (unsigned i = 0; i < tail_len + sizeof(head); i++) {
			u8 b = insns[k][(i + k) % lens[k]];

			if (noise && rnd() % (noise * 16) == 0)
				b = (u8)rnd();
			if (i < tail_len)
				tail[i] = b;
			else
				head[i - tail_len] = b;
		}
		{
			int want = sync_reference(tail, tail_len, head, sizeof(head), mode);

			assert_int_equal(scan_sync_offset(tail, tail_len, head, sizeof(head), mode),
					 want);
			found += want >= 0;
		}
	}
	assert_true(found > 1000); /* answers, not only refusals */
	assert_true(found < 3000);
}

/* ---- the scan memo (item 7) ---------------------------------------------- */

/*
 * Rewrite a page as Linux's text patching does (a few bytes anywhere, the
 * next page's bytes included) or, now and then, change what the memo is
 * keyed on or how many next-page bytes there are, and rescan it: through
 * the memo of the earlier scans it must record exactly what a scan from
 * scratch records, while decoding less.
 */
static void test_memo_rescan_property(void **state)
{
	static u8 buf[SCAN_PAGE_SIZE + SCAN_INSN_MAX];
	struct scan_result *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	struct scan_memo *memo = scan_memo_new();
	u64 decodes = 0, from_memo = 0, scratch_decodes = 0;
	u64 page_gva = PAGE_GVA;
	enum decode_mode mode = DECODE_64;
	unsigned next_len = SCAN_INSN_MAX, n = 0, covered = 0;
	u16 entries[8];
	static u8 last_len[SCAN_PAGE_SIZE], last_buf[SCAN_PAGE_SIZE]; /* the last scan's */

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(memo);
	rng_state = 0x3e30;
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = rnd() % 4 == 0	  ? 0xcc
			 : rnd() % 8 == 0 ? (u8)(0x9c + rnd() % 2)
					  : (u8)rnd();
	for (int iter = 0; iter < 400; iter++) {
		unsigned what = rnd() % 16;

		if (what == 0)
			page_gva ^= (u64)SCAN_PAGE_SIZE << (rnd() % 8);
		else if (what == 1)
			mode = mode == DECODE_64 ? DECODE_32 : DECODE_64;
		else if (what == 2)
			next_len = rnd() % (SCAN_INSN_MAX + 1);
		else if (what == 3) /* a new page altogether */
			for (unsigned i = 0; i < sizeof(buf); i++)
				buf[i] = (u8)rnd();
		else if (what == 5 || what == 6) {
			/* int3 on an instruction's first byte (text_poke_bp, kprobes). */
			for (unsigned k = 0, o = rnd() % SCAN_PAGE_SIZE; k < SCAN_PAGE_SIZE; k++)
				if (last_len[(o + k) % SCAN_PAGE_SIZE] > 1) {
					buf[(o + k) % SCAN_PAGE_SIZE] = 0xcc;
					break;
				}
		} else {
			/* One to three writes of 1-8 bytes, often near the page end. */
			for (unsigned w = 1 + rnd() % 3; w > 0; w--) {
				unsigned len = 1 + rnd() % 8,
					 at = rnd() % 4 == 0 ? SCAN_PAGE_SIZE - 24 + rnd() % 32
							     : rnd() % SCAN_PAGE_SIZE;

				for (unsigned k = 0; k < len && at + k < sizeof(buf); k++)
					buf[at + k] = (u8)rnd();
			}
		}
		/* Entries mostly stay: a frame is rescanned from the entries it had. */
		if (what == 4 || n == 0) {
			n = 1 + rnd() % 8;
			for (unsigned i = 0; i < n; i++)
				entries[i] = (u16)(rnd() % SCAN_PAGE_SIZE);
		}
		scan_result_init(a, gva(page_gva), mode, SCAN_KINDS_SHADOW);
		scan_result_init(b, gva(page_gva), mode, SCAN_KINDS_SHADOW);
		/* Both with the int3 covers the last scan gives (item 9), as the VMM does. */
		assert_int_equal(scan_cover_int3s(a, buf, last_len, last_buf),
				 scan_cover_int3s(b, buf, last_len, last_buf));
		assert_true(scan_code_page_add_entry(a, buf, buf + SCAN_PAGE_SIZE, next_len,
						     entries, n) >= 0);
		assert_true(scan_code_page_add_entry_memo(b, buf, buf + SCAN_PAGE_SIZE, next_len,
							  entries, n, memo) >= 0);
		assert_same_scan(a, b, iter);
		for (unsigned o = 0; o < SCAN_PAGE_SIZE; o++)
			covered += a->int3_len[o] && a->insn_len[o] > 1;
		memcpy(last_len, a->insn_len, sizeof(last_len));
		memcpy(last_buf, buf, sizeof(last_buf));
		assert_int_equal(a->nmemo, 0);
		assert_int_equal(a->ndecodes, b->ndecodes + b->nmemo);
		scratch_decodes += a->ndecodes;
		decodes += b->ndecodes;
		from_memo += b->nmemo;
		scan_result_free(a);
		scan_result_free(b);
	}
	/* The memo did serve most decodes (the test would pass vacuously otherwise). */
	print_message("memo rescans: %llu decodes from the memo, %llu by capstone\n",
		      (unsigned long long)from_memo, (unsigned long long)decodes);
	assert_true(from_memo > 2 * decodes);
	assert_int_equal(decodes + from_memo, scratch_decodes);
	/* ... and swept int3s as the instructions they cover. */
	print_message("memo rescans: %u covering int3s swept\n", covered);
	assert_true(covered > 20);
	scan_memo_free(memo);
	free(a);
	free(b);
}

/* The last scan's bytes, for rescan(). */
static u8 old_page[SCAN_PAGE_SIZE];

/*
 * Rescan `page` at PAGE_GVA from `entry` through `memo` as the VMM does:
 * with the int3 covers that `old_len`, the last scan's insn_len, and
 * old_page give (item 9); then both become this scan's. The result stays
 * in `res`.
 */
static void rescan(struct scan_result *res, struct scan_memo *memo, u8 *old_len, u16 entry,
		   int expect_new)
{
	scan_result_init(res, gva(PAGE_GVA), DECODE_64, SCAN_KINDS_DEFAULT);
	scan_cover_int3s(res, page, old_len, old_page);
	assert_int_equal(scan_code_page_add_entry_memo(res, page, NULL, 0, &entry, 1, memo),
			 expect_new);
	memcpy(old_len, res->insn_len, SCAN_PAGE_SIZE);
	memcpy(old_page, page, SCAN_PAGE_SIZE);
}

/*
 * Item 9: text_poke_bp's three steps on a function's 5-byte nop, as ftrace
 * does them, each followed by a rescan. The new call's displacement holds
 * 48 9c (pushfq): swept one byte past the int3, it would be a site, and its
 * patch the 0xcc that text_poke's check reads back.
 */
static void test_int3_covers_text_poke_bp(void **state)
{
	static const u8 code[] = {
		0x0f, 0x1f, 0x44, 0x00, 0x00, /* 100: nopl 0x0(%rax,%rax,1) (__fentry__) */
		0x55,			      /* 105: push %rbp */
		0x48, 0x89, 0xe5,	      /* 106: mov %rsp,%rbp */
		0x5d,			      /* 109: pop %rbp */
		0xc3,			      /* 10a: ret */
	};
	static const u8 tail[] = { 0x48, 0x9c, 0x11, 0x02 }; /* call 0x2119d4d: rel32 0x02119c48 */
	struct scan_memo *memo = scan_memo_new();
	static u8 old_len[SCAN_PAGE_SIZE];
	struct scan_result res, *plain;

	(void)state;
	assert_non_null(memo);
	memset(old_len, 0, sizeof(old_len));
	fill_page(code, sizeof(code), 0x100);
	rescan(&res, memo, old_len, 0x100, 0);
	assert_int_equal(res.insn_len[0x100], 5);
	scan_result_free(&res);

	/* Step 1: int3 on the nop's first byte. It stands for the nop. */
	page[0x100] = 0xcc;
	rescan(&res, memo, old_len, 0x100, 0);
	assert_int_equal(res.int3_len[0x100], 5);
	assert_int_equal(res.insn_len[0x100], 5);
	for (unsigned o = 0x101; o < 0x105; o++)
		assert_false(scan_is_insn_start(&res, o));
	assert_true(scan_is_insn_start(&res, 0x105));
	assert_int_equal(res.ninsns, 5);
	scan_result_free(&res);

	/* Step 2: the call's tail. Still the int3 and what follows it, rescan after rescan. */
	memcpy(page + 0x101, tail, sizeof(tail));
	for (int i = 0; i < 2; i++) {
		rescan(&res, memo, old_len, 0x100, 0);
		assert_int_equal(res.insn_len[0x100], 5);
		assert_int_equal(res.nsites, 0);
		assert_true(scan_is_insn_start(&res, 0x106));
		scan_result_free(&res);
	}
	/* What a scan without the history finds: the pushfq inside the call. */
	plain = scan(DECODE_64, SCAN_KINDS_DEFAULT, NULL, 0, 0x100, 1);
	assert_site(plain, 0, 0x101, 2, SCAN_KIND_PUSHF);
	done(plain);

	/* Step 3: the call's first byte. A call, the int3 covers nothing. */
	page[0x100] = 0xe8;
	rescan(&res, memo, old_len, 0x100, 0);
	assert_int_equal(res.int3_len[0x100], 0);
	assert_int_equal(res.insn_len[0x100], 5);
	assert_int_equal(res.nsites, 0);
	assert_int_equal(res.nexits, 1);
	assert_int_equal(res.exits[0], PAGE_GVA + 0x105 + 0x02119c48);
	scan_result_free(&res);

	/* And back to the nop the same way (ftrace off): one 5-byte instruction each time. */
	for (int step = 1; step <= 3; step++) {
		if (step == 1)
			page[0x100] = 0xcc;
		else if (step == 2)
			memcpy(page + 0x101, code + 1, 4);
		else
			page[0x100] = 0x0f;
		rescan(&res, memo, old_len, 0x100, 0);
		assert_int_equal(res.insn_len[0x100], 5);
		assert_int_equal(res.int3_len[0x100], step < 3 ? 5 : 0);
		assert_int_equal(res.nsites, 0);
		scan_result_free(&res);
	}
	scan_memo_free(memo);
}

/*
 * Item 9: a kprobe's int3 stays covered through any number of rescans, and
 * goes with the byte it replaced. An int3 over a one-byte instruction, or
 * over bytes no scan reached, covers nothing.
 */
static void test_int3_covers_kprobe(void **state)
{
	static const u8 code[] = {
		0x55,		  /* 100: push %rbp */
		0x48, 0x89, 0xe5, /* 101: mov %rsp,%rbp */
		0x5d,		  /* 104: pop %rbp */
		0xc3,		  /* 105: ret */
	};
	static u8 old_len[SCAN_PAGE_SIZE];
	struct scan_result res;

	(void)state;
	memset(old_len, 0, sizeof(old_len));
	fill_page(code, sizeof(code), 0x100);
	rescan(&res, NULL, old_len, 0x100, 0);
	scan_result_free(&res);

	page[0x101] = 0xcc; /* the probe on the mov */
	page[0x100] = 0xcc; /* and one on the push: one byte, nothing to cover */
	page[0x200] = 0xcc; /* never reached */
	for (int i = 0; i < 3; i++) {
		rescan(&res, NULL, old_len, 0x100, 0);
		assert_int_equal(res.insn_len[0x100], 1);
		assert_int_equal(res.insn_len[0x101], 3);
		assert_false(scan_is_insn_start(&res, 0x102)); /* 89 e5 swept one byte on */
		assert_int_equal(res.int3_len[0x200], 0);
		assert_true(scan_is_insn_start(&res, 0x104));
		scan_result_free(&res);
	}
	/* Disarmed: the mov again. */
	page[0x101] = 0x48;
	rescan(&res, NULL, old_len, 0x100, 0);
	assert_int_equal(res.insn_len[0x101], 3);
	assert_int_equal(res.int3_len[0x101], 0);
	scan_result_free(&res);
	/* Without the history (no earlier scan): one byte, and the bytes after it swept. */
	page[0x101] = 0xcc;
	memset(old_len, 0, sizeof(old_len));
	rescan(&res, NULL, old_len, 0x100, 0);
	assert_int_equal(res.insn_len[0x101], 1);
	assert_true(scan_is_insn_start(&res, 0x102));
	scan_result_free(&res);
	/*
	 * The frame freed and filled with other code: an int3 (its padding) where
	 * the mov started, other bytes after where the mov ended. One byte.
	 */
	page[0x101] = 0x48;
	rescan(&res, NULL, old_len, 0x100, 0); /* history: the mov at 0x101 */
	assert_int_equal(res.insn_len[0x101], 3);
	scan_result_free(&res);
	page[0x101] = 0xcc;
	page[0x104] = 0x31; /* xor %eax,%eax: 31 c0 */
	page[0x105] = 0xc0;
	page[0x106] = 0xc3;
	rescan(&res, NULL, old_len, 0x100, 0);
	assert_int_equal(res.int3_len[0x101], 0);
	assert_int_equal(res.insn_len[0x101], 1);
	scan_result_free(&res);
}

/*
 * Item 9, what the rig showed: Linux rewrites `jmp __x86_return_thunk` to
 * `ret; int3 x 4` at boot. A previous scan that met the jmp's displacement
 * out of step (here: entered at its last byte) had a 6-byte "instruction"
 * there; the int3 now on that byte is padding, not a cover (the bytes
 * before it changed too), and the sweep stays in step for the `test` after
 * it.
 */
static void test_int3_padding_not_cover(void **state)
{
	static const u8 code[] = {
		0x41, 0x5f,			    /* 100: pop %r15 */
		0xe9, 0xc3, 0xa0, 0x3f, 0x00,	    /* 102: jmp __x86_return_thunk */
		0x85, 0xdb,			    /* 107: test %ebx,%ebx */
		0x0f, 0x85, 0x03, 0x02, 0x00, 0x00, /* 109: jne */
		0xc3,				    /* 10f: ret */
	};
	static u8 old_len[SCAN_PAGE_SIZE];
	struct scan_result res;

	(void)state;
	memset(old_len, 0, sizeof(old_len));
	fill_page(code, sizeof(code), 0x100);
	/* The old scan: in step from 0x100, and out of step from 0x106 (00 85 db 0f 85 03). */
	scan_result_init(&res, gva(PAGE_GVA), DECODE_64, SCAN_KINDS_DEFAULT);
	assert_true(scan_code_page_add_entry(&res, page, NULL, 0, (const u16[]){ 0x100, 0x106 },
					     2) >= 0);
	assert_int_equal(res.insn_len[0x106], 6);
	memcpy(old_len, res.insn_len, sizeof(old_len));
	memcpy(old_page, page, sizeof(old_page));
	scan_result_free(&res);
	/* apply_returns: ret; int3 x 4. */
	memcpy(page + 0x102, (const u8[]){ 0xc3, 0xcc, 0xcc, 0xcc, 0xcc }, 5);
	scan_result_init(&res, gva(PAGE_GVA), DECODE_64, SCAN_KINDS_SHADOW); /* linear, past ret */
	assert_int_equal(scan_cover_int3s(&res, page, old_len, old_page), 0);
	assert_true(scan_code_page_add_entry(&res, page, NULL, 0, (const u16[]){ 0x100 }, 1) >= 0);
	assert_int_equal(res.insn_len[0x106], 1);
	assert_true(scan_is_insn_start(&res, 0x107));
	assert_true(scan_is_insn_start(&res, 0x109));
	scan_result_free(&res);
}

/* Item 9: the covers are inputs, range-checked. */
static void test_cover_input_checked(void **state)
{
	struct scan_result res;

	(void)state;
	scan_result_init(&res, gva(PAGE_GVA), DECODE_64, SCAN_KINDS_DEFAULT);
	assert_false(scan_result_cover_int3(&res, SCAN_PAGE_SIZE, 5));
	assert_false(scan_result_cover_int3(&res, 0, 1));
	assert_false(scan_result_cover_int3(&res, 0, SCAN_INSN_MAX + 1));
	assert_true(scan_result_cover_int3(&res, 0, 2));
}

/* A one-byte write forgets exactly the decodes whose window holds it. */
static void test_memo_window(void **state)
{
	/* 48 8b 84 24 10 00 00 00   mov 0x10(%rsp),%rax, then int3 padding */
	static const u8 mov[] = { 0x48, 0x8b, 0x84, 0x24, 0x10, 0x00, 0x00, 0x00 };
	struct scan_memo *memo = scan_memo_new();
	struct scan_result res;
	u8 next[SCAN_NEXT_MAX];
	u16 entry = 0x100;

	(void)state;
	assert_non_null(memo);
	memset(page, 0xcc, sizeof(page));
	for (unsigned o = 0x100; o < 0x200; o += sizeof(mov))
		memcpy(page + o, mov, sizeof(mov));
	page[0x200] = 0xc3; /* ret */
	scan_result_init(&res, gva(PAGE_GVA), DECODE_64, SCAN_KINDS_DEFAULT);
	assert_int_equal(scan_code_page_add_entry_memo(&res, page, NULL, 0, &entry, 1, memo), 0);
	assert_int_equal(res.ndecodes, 33); /* 32 movs and the ret; the int3s are free */
	scan_result_free(&res);

	/* The same bytes: every decode from the memo. */
	assert_int_equal(scan_code_page_add_entry_memo(&res, page, NULL, 0, &entry, 1, memo), 0);
	assert_int_equal(res.ndecodes, 0);
	assert_int_equal(res.nmemo, 33);
	scan_result_free(&res);

	/*
	 * The displacement byte of the mov at 0x180 changes. The windows
	 * (SCAN_MEMO_WINDOW = 16 bytes) that hold 0x184 are those of that mov
	 * and the one at 0x178; they are decoded again, nothing else.
	 */
	page[0x184] = 0x20;
	assert_int_equal(scan_code_page_add_entry_memo(&res, page, NULL, 0, &entry, 1, memo), 0);
	assert_int_equal(res.ndecodes, 2);
	assert_int_equal(res.nmemo, 31);
	scan_result_free(&res);

	/* Another address: the memo starts afresh. */
	scan_result_init(&res, gva(PAGE_GVA + SCAN_PAGE_SIZE), DECODE_64, SCAN_KINDS_DEFAULT);
	assert_int_equal(scan_code_page_add_entry_memo(&res, page, NULL, 0, &entry, 1, memo), 0);
	assert_int_equal(res.ndecodes, 33);
	scan_result_free(&res);
	/*
	 * A mov that straddles into the next page, decoded with its bytes,
	 * then scanned without them: the decode read past where the buffer
	 * now ends, so it is not reused (the scan leaves it pending).
	 */
	memset(page, 0xcc, sizeof(page));
	memcpy(page + SCAN_PAGE_SIZE - 4, mov, 4);
	memset(next, 0xcc, sizeof(next));
	memcpy(next, mov + 4, 4);
	entry = SCAN_PAGE_SIZE - 4;
	assert_int_equal(
		scan_code_page_add_entry_memo(&res, page, next, SCAN_NEXT_MAX, &entry, 1, memo), 0);
	assert_int_equal(res.insn_len[SCAN_PAGE_SIZE - 4], 8);
	assert_int_equal(res.pending_straddle, SCAN_ENTRY_NONE);
	scan_result_free(&res);
	assert_int_equal(scan_code_page_add_entry_memo(&res, page, NULL, 0, &entry, 1, memo), 0);
	assert_int_equal(res.insn_len[SCAN_PAGE_SIZE - 4], 0);
	assert_int_equal(res.pending_straddle, SCAN_PAGE_SIZE - 4);
	assert_int_equal(res.ndecodes, 1);
	scan_result_free(&res);
	scan_memo_free(memo);
}

/* scan_sync_offset_memo answers as scan_sync_offset, through changes of every input. */
static void test_memo_sync_offset(void **state)
{
	u8 tail[64], head[2 * SCAN_INSN_MAX];
	struct scan_memo *memo = scan_memo_new();
	enum decode_mode mode = DECODE_64;
	unsigned tail_len = 64, head_len = sizeof(head), answers = 0;

	(void)state;
	assert_non_null(memo);
	rng_state = 0x5f5f;
	for (unsigned i = 0; i < sizeof(tail); i++)
		tail[i] = (u8)(i % 3 ? 0x90 : 0x48);
	memcpy(head, tail, sizeof(head));
	for (int iter = 0; iter < 2000; iter++) {
		unsigned what = rnd() % 8;

		if (what == 0)
			mode = mode == DECODE_64 ? DECODE_32 : DECODE_64;
		else if (what == 1)
			tail_len = 1 + rnd() % 64;
		else if (what == 2)
			head_len = rnd() % (sizeof(head) + 1);
		else if (what == 3)
			tail[rnd() % sizeof(tail)] = (u8)rnd();
		else if (what == 4)
			head[rnd() % sizeof(head)] = (u8)rnd();
		/* else: the same call again */
		{
			int want = scan_sync_offset(tail, tail_len, head, head_len, mode);

			assert_int_equal(
				scan_sync_offset_memo(memo, tail, tail_len, head, head_len, mode),
				want);
			answers += want >= 0;
		}
	}
	assert_true(answers > 100);
	scan_memo_free(memo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_irq_save_restore),
		cmocka_unit_test(test_branches_around_data),
		cmocka_unit_test(test_exits),
		cmocka_unit_test(test_linear),
		cmocka_unit_test(test_no_sweep_in_32bit),
		cmocka_unit_test(test_sync_offset),
		cmocka_unit_test(test_call_and_backward_branch),
		cmocka_unit_test(test_operand_sizes),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_fs_prefix),
		cmocka_unit_test(test_straddle),
		cmocka_unit_test(test_straddle_site),
		cmocka_unit_test(test_guest_int3),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_overlap_conflict),
		cmocka_unit_test(test_property_random_pages),
		cmocka_unit_test(test_property_padded_pages),
		cmocka_unit_test(test_sync_offset_reference),
		cmocka_unit_test(test_memo_rescan_property),
		cmocka_unit_test(test_memo_window),
		cmocka_unit_test(test_int3_covers_text_poke_bp),
		cmocka_unit_test(test_int3_covers_kprobe),
		cmocka_unit_test(test_int3_padding_not_cover),
		cmocka_unit_test(test_cover_input_checked),
		cmocka_unit_test(test_memo_sync_offset),
		cmocka_unit_test(test_fs_prefix_operand),
		cmocka_unit_test(test_flow_from),
		cmocka_unit_test(test_ud1_length),
		cmocka_unit_test(test_unknown_to_capstone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
