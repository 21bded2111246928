/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for decode/chain.c: which instruction after an emulated one a
 * trap chain takes in. Each known pattern is checked against capstone's
 * length and mnemonic, and random byte strings must never be classified as
 * something capstone decodes differently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/chain.h"
#include "decode/decode.h"
#include "xorshift.h"

struct case_ {
	const char *bytes; /* hex, no spaces */
	enum chain_class cls;
	unsigned len;
	const char *mnemonic; /* capstone's, for CHAIN_TRAP/BRIDGE */
};

static unsigned unhex(const char *s, u8 *out)
{
	unsigned n = 0;

	for (; s[0] && s[1]; s += 2) {
		unsigned v;

		assert_int_equal(sscanf(s, "%2x", &v), 1);
		out[n++] = (u8)v;
	}
	return n;
}

static void check(const struct case_ *k, unsigned flags)
{
	u8 code[32];
	unsigned n = unhex(k->bytes, code), len;
	struct chain_insn in = { .len = 99, .rel = 77 }; /* both must be overwritten */
	enum chain_class cls = chain_classify(code, n, flags, &in);

	if (cls != k->cls)
		fail_msg("%s: class %d, want %d", k->bytes, cls, k->cls);
	if (cls == CHAIN_END)
		return;
	len = in.len;
	assert_int_equal(len, k->len);
	{
		struct decoded_insn d;

		assert_int_equal(decode_one(code, n, 0, DECODE_64, &d), 0);
		assert_int_equal(d.len, len);
		assert_string_equal(d.mnemonic, k->mnemonic);
		if (cls == CHAIN_JUMP || cls == CHAIN_BRANCH) /* capstone shows the target */
			assert_int_equal(strtoull(d.operands, NULL, 16), chain_next_ip(0, &in));
		else
			assert_int_equal(in.rel, 0);
	}
}

static void test_traps(void **state)
{
	static const struct case_ cases[] = {
		{ "0f01f8", CHAIN_TRAP, 3, "swapgs" },
		{ "0f01ca", CHAIN_TRAP, 3, "clac" },
		{ "0f01cb", CHAIN_TRAP, 3, "stac" },
		{ "480f07", CHAIN_TRAP, 3, "sysret" }, /* capstone names both sysret */
		{ "0f07", CHAIN_TRAP, 2, "sysret" },
		{ "48cf", CHAIN_TRAP, 2, "iretq" },
		{ "0f22d8", CHAIN_TRAP, 3, "mov" },   /* mov %rax,%cr3 */
		{ "0f20e0", CHAIN_TRAP, 3, "mov" },   /* mov %cr4,%rax */
		{ "440f22c0", CHAIN_TRAP, 4, "mov" }, /* mov %rax,%cr8 */
		{ "0f30", CHAIN_TRAP, 2, "wrmsr" },
		{ "0f32", CHAIN_TRAP, 2, "rdmsr" },
		{ "f4", CHAIN_TRAP, 1, "hlt" },
		{ "0f013f", CHAIN_TRAP, 3, "invlpg" },		 /* (%rdi) */
		{ "0f017c2408", CHAIN_TRAP, 5, "invlpg" },	 /* 8(%rsp) */
		{ "0f013d78563412", CHAIN_TRAP, 7, "invlpg" },	 /* rip-relative */
		{ "0f01bf00100000", CHAIN_TRAP, 7, "invlpg" },	 /* 0x1000(%rdi) */
		{ "0f013c2500100000", CHAIN_TRAP, 8, "invlpg" }, /* absolute, SIB no base */
		{ "8eef", CHAIN_TRAP, 2, "mov" },		 /* mov %edi,%gs */
		{ "8ee2", CHAIN_TRAP, 2, "mov" },		 /* mov %edx,%fs */
		{ "8ed8", CHAIN_TRAP, 2, "mov" },		 /* mov %eax,%ds */
		{ "8ec0", CHAIN_TRAP, 2, "mov" },		 /* mov %eax,%es */
		{ "f3480faec8", CHAIN_BRIDGE, 5, "rdgsbase" },
		{ "f30faec0", CHAIN_BRIDGE, 4, "rdfsbase" },
		{ "f3480faedf", CHAIN_BRIDGE, 5, "wrgsbase" },
		{ "f3490faed0", CHAIN_BRIDGE, 5, "wrfsbase" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(&cases[i], 0);
}

static void test_irqflags(void **state)
{
	static const struct case_ trap[] = { { "fa", CHAIN_TRAP, 1, "cli" },
					     { "fb", CHAIN_TRAP, 1, "sti" } };
	static const struct case_ native[] = { { "fa", CHAIN_END, 0, NULL },
					       { "fb", CHAIN_END, 0, NULL } };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		check(&trap[i], 0);
		check(&native[i], CHAIN_NATIVE_IRQFLAGS);
	}
}

/* Native instructions, other forms of the same opcodes, and truncated bytes. */
static void test_ends(void **state)
{
	static const char *const ends[] = {
		"",		  /* nothing readable */
		"9b",		  /* fwait */
		"9c",		  /* pushf: only behind our int3 (the caller's) */
		"cf",		  /* iret without REX.W: 32-bit */
		"f348cf",	  /* prefixed iretq */
		"0f01",		  /* truncated */
		"0f01f9",	  /* rdtscp */
		"0f01d0",	  /* xgetbv */
		"0f0138",	  /* invlpg (%rax) truncated? no: complete, but see below */
		"f30fae",	  /* truncated */
		"f30faef0",	  /* /6 umonitor: not a base */
		"f30fae00",	  /* memory form */
		"660f01f8",	  /* prefixed swapgs */
		"480f30",	  /* REX wrmsr */
		"0f013c25001000", /* invlpg, disp32 truncated */
		"0f22",		  /* truncated mov cr */
		"48",		  /* lone REX */
		"8ed0",		  /* mov %eax,%ss: its shadow holds interrupts */
		"8ec8",		  /* mov %eax,%cs: #UD */
		"8ef0",		  /* reg 6: #UD */
		"8e28",		  /* mov (%rax),%gs: a memory operand */
		"668eef",	  /* prefixed */
		"418eef",	  /* REX */
		"8e",		  /* truncated */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		u8 code[32];
		unsigned n = unhex(ends[i], code);
		struct chain_insn in = { .len = 99 };
		enum chain_class cls = chain_classify(code, n, CHAIN_USER_ACCESS, &in);

		if (!strcmp(ends[i], "0f0138")) { /* the one complete invlpg here */
			assert_int_equal(cls, CHAIN_TRAP);
			assert_int_equal(in.len, 3);
			continue;
		}
		if (cls != CHAIN_END)
			fail_msg("%s: class %d, want CHAIN_END", ends[i], cls);
	}
}

/* Nops and lfence: skipped, whatever the flags. */
static void test_nops(void **state)
{
	static const struct case_ cases[] = {
		{ "90", CHAIN_NOP, 1, "nop" },
		{ "6690", CHAIN_NOP, 2, "nop" },
		{ "0f1f00", CHAIN_NOP, 3, "nop" },
		{ "0f1f4000", CHAIN_NOP, 4, "nop" },
		{ "0f1f440000", CHAIN_NOP, 5, "nop" },
		{ "660f1f440000", CHAIN_NOP, 6, "nop" },
		{ "0f1f8000000000", CHAIN_NOP, 7, "nop" },
		{ "0f1f840000000000", CHAIN_NOP, 8, "nop" },
		{ "662e0f1f840000000000", CHAIN_NOP, 10, "nop" },
		{ "0faee8", CHAIN_NOP, 3, "lfence" },
		{ "4190", CHAIN_END, 0, NULL },	    /* xchg %eax,%r8d */
		{ "f390", CHAIN_END, 0, NULL },	    /* pause */
		{ "0f1f48", CHAIN_END, 0, NULL },   /* 0f 1f /1: not the nop */
		{ "0faef0", CHAIN_END, 0, NULL },   /* mfence is not lfence */
		{ "480faee8", CHAIN_END, 0, NULL }, /* REX lfence: unusual, end */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check(&cases[i], 0);
		check(&cases[i], CHAIN_USER_ACCESS | CHAIN_NATIVE_IRQFLAGS);
	}
}

/* Memory movs bridge only inside a user-access window (CHAIN_USER_ACCESS). */
static void test_user_access_movs(void **state)
{
	static const struct case_ cases[] = {
		{ "890a", CHAIN_BRIDGE, 2, "mov" },		/* mov %ecx,(%rdx) */
		{ "894a04", CHAIN_BRIDGE, 3, "mov" },		/* mov %ecx,4(%rdx) */
		{ "488b07", CHAIN_BRIDGE, 3, "mov" },		/* mov (%rdi),%rax */
		{ "8a4701", CHAIN_BRIDGE, 3, "mov" },		/* mov 1(%rdi),%al */
		{ "66894702", CHAIN_BRIDGE, 4, "mov" },		/* mov %ax,2(%rdi) */
		{ "8804240000", CHAIN_BRIDGE, 3, "mov" },	/* mov %al,(%rsp) */
		{ "c60700", CHAIN_BRIDGE, 3, "mov" },		/* movb $0,(%rdi) */
		{ "c7470800000000", CHAIN_BRIDGE, 7, "mov" },	/* movl $0,8(%rdi) */
		{ "66c7070100", CHAIN_BRIDGE, 5, "mov" },	/* movw $1,(%rdi) */
		{ "48c70700000000", CHAIN_BRIDGE, 7, "mov" },	/* movq $0,(%rdi) */
		{ "658b0d7ca2da7e", CHAIN_BRIDGE, 7, "mov" },	/* mov %gs:rel(%rip),%ecx */
		{ "4c8b8424c8000000", CHAIN_BRIDGE, 8, "mov" }, /* mov 0xc8(%rsp),%r8 */
		{ "89c8", CHAIN_BRIDGE, 2, "mov" },		/* mov %ecx,%eax: a register */
		{ "c7c000000000", CHAIN_END, 0, NULL },		/* mov $0,%eax */
		{ "c74f0800000000", CHAIN_END, 0, NULL },	/* c7 /1 */
		{ "67890a", CHAIN_END, 0, NULL },		/* address-size prefix */
		{ "f3890a", CHAIN_END, 0, NULL },		/* f3 */
		{ "f0890a", CHAIN_END, 0, NULL },		/* lock */
		{ "48a10000000000000000", CHAIN_END, 0, NULL }, /* movabs: not in the list */
	};
	u8 code[16];
	struct chain_insn in;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(&cases[i], CHAIN_USER_ACCESS);
	/* Outside a window the same movs end the chain. */
	assert_int_equal(chain_classify(code, unhex("890a", code), 0, &in), CHAIN_END);
	assert_int_equal(chain_classify(code, unhex("c60700", code), 0, &in), CHAIN_END);
}

/* Direct jumps are followed; the zeroing idiom and pops bridge anywhere. */
static void test_jumps_zeroing_pops(void **state)
{
	static const struct case_ cases[] = {
		{ "eb07", CHAIN_JUMP, 2, "jmp" },
		{ "ebfe", CHAIN_JUMP, 2, "jmp" }, /* to itself: the lookahead's limit ends it */
		{ "e900000000", CHAIN_JUMP, 5, "jmp" },
		{ "e9f0ffffff", CHAIN_JUMP, 5, "jmp" },
		{ "e900010000", CHAIN_JUMP, 5, "jmp" },
		{ "31c0", CHAIN_BRIDGE, 2, "xor" },	    /* xor %eax,%eax */
		{ "31c9", CHAIN_BRIDGE, 2, "xor" },	    /* xor %ecx,%ecx */
		{ "33d2", CHAIN_BRIDGE, 2, "xor" },	    /* xor %edx,%edx */
		{ "4531c0", CHAIN_BRIDGE, 3, "xor" },	    /* xor %r8d,%r8d */
		{ "4829ff", CHAIN_BRIDGE, 3, "sub" },	    /* sub %rdi,%rdi */
		{ "2bf6", CHAIN_BRIDGE, 2, "sub" },	    /* sub %esi,%esi */
		{ "58", CHAIN_BRIDGE, 1, "pop" },	    /* pop %rax */
		{ "415c", CHAIN_BRIDGE, 2, "pop" },	    /* pop %r12 */
		{ "5c", CHAIN_END, 0, NULL },		    /* pop %rsp */
		{ "50", CHAIN_BRIDGE, 1, "push" },	    /* push %rax */
		{ "54", CHAIN_BRIDGE, 1, "push" },	    /* push %rsp */
		{ "4157", CHAIN_BRIDGE, 2, "push" },	    /* push %r15 */
		{ "6a01", CHAIN_BRIDGE, 2, "push" },	    /* push $1 */
		{ "6878563412", CHAIN_BRIDGE, 5, "push" },  /* push $0x12345678 */
		{ "4883042408", CHAIN_BRIDGE, 5, "add" },   /* addq $8,(%rsp) */
		{ "4883442410f8", CHAIN_BRIDGE, 6, "add" }, /* addq $-8,0x10(%rsp) */
		{ "48836c240808", CHAIN_BRIDGE, 6, "sub" }, /* subq $8,8(%rsp) */
		{ "4883042008", CHAIN_END, 0, NULL },	    /* addq $8,(%rax,%riz): not rsp */
		{ "48830c2408", CHAIN_END, 0, NULL },	    /* orq: not add/sub */
		{ "4883c008", CHAIN_END, 0, NULL },	    /* add $8,%rax: a register */
		{ "4983042408", CHAIN_END, 0, NULL },	    /* REX.B: r12 */
		{ "6650", CHAIN_END, 0, NULL },		    /* push %ax */
		{ "6658", CHAIN_END, 0, NULL },		    /* pop %ax */
		{ "31d8", CHAIN_END, 0, NULL },		    /* xor %ebx,%eax: two registers */
		{ "4431c0", CHAIN_END, 0, NULL },	    /* xor %r8d,%eax */
		{ "3107", CHAIN_END, 0, NULL },		    /* xor %eax,(%rdi): memory */
		{ "6631c0", CHAIN_END, 0, NULL },	    /* 16-bit: left out */
		{ "66eb00", CHAIN_END, 0, NULL },	    /* prefixed jmp */
		{ "ff25", CHAIN_END, 0, NULL },		    /* indirect jmp */
		{ "7405", CHAIN_END, 0, NULL },		    /* je: conditional */
		{ "e9000000", CHAIN_END, 0, NULL },	    /* truncated */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(&cases[i], 0);
}

/*
 * Inside a user-access window: what Linux's copy_user_enhanced_fast_string
 * runs between stac and clac (`cmp $64,%edx; jb; mov %edx,%ecx; rep movsb;
 * xor %eax,%eax`), and the neighbouring forms; outside one, none of them.
 */
static void test_user_copy_window(void **state)
{
	static const struct case_ cases[] = {
		{ "83fa40", CHAIN_BRIDGE, 3, "cmp" },	     /* cmp $64,%edx */
		{ "4883fa40", CHAIN_BRIDGE, 4, "cmp" },	     /* cmp $64,%rdx */
		{ "4983f840", CHAIN_BRIDGE, 4, "cmp" },	     /* cmp $64,%r8 */
		{ "81fa00100000", CHAIN_BRIDGE, 6, "cmp" },  /* cmp $4096,%edx */
		{ "3d00010000", CHAIN_BRIDGE, 5, "cmp" },    /* cmp $256,%eax */
		{ "39d1", CHAIN_BRIDGE, 2, "cmp" },	     /* cmp %edx,%ecx */
		{ "483bd1", CHAIN_BRIDGE, 3, "cmp" },	     /* cmp %rcx,%rdx */
		{ "85d2", CHAIN_BRIDGE, 2, "test" },	     /* test %edx,%edx */
		{ "f7c207000000", CHAIN_BRIDGE, 6, "test" }, /* test $7,%edx */
		{ "89d1", CHAIN_BRIDGE, 2, "mov" },	     /* mov %edx,%ecx */
		{ "4c8bc2", CHAIN_BRIDGE, 3, "mov" },	     /* mov %rdx,%r8 */
		{ "f3a4", CHAIN_BRIDGE, 2, "rep movsb" },    /* rep movsb */
		{ "f3a5", CHAIN_BRIDGE, 2, "rep movsd" },    /* rep movsd */
		{ "f348a5", CHAIN_BRIDGE, 3, "rep movsq" },  /* rep movsq */
		{ "7248", CHAIN_BRANCH, 2, "jb" },	     /* jb .+0x4a */
		{ "74fe", CHAIN_BRANCH, 2, "je" },	     /* je to itself */
		{ "7f10", CHAIN_BRANCH, 2, "jg" },
		{ "0f8210000000", CHAIN_BRANCH, 6, "jb" },  /* jb rel32 */
		{ "0f85f0ffffff", CHAIN_BRANCH, 6, "jne" }, /* backwards */
		{ "83e207", CHAIN_END, 0, NULL },	    /* and $7,%edx: not a compare */
		{ "83c201", CHAIN_END, 0, NULL },	    /* add $1,%edx */
		{ "6683fa40", CHAIN_END, 0, NULL },	    /* 16-bit */
		{ "803a00", CHAIN_END, 0, NULL },	    /* cmpb $0,(%rdx): memory */
		{ "3b0a", CHAIN_END, 0, NULL },		    /* cmp (%rdx),%ecx: memory */
		{ "f7d2", CHAIN_END, 0, NULL },		    /* not %edx: f7 /2 */
		{ "a4", CHAIN_END, 0, NULL },		    /* movsb without rep */
		{ "f2a4", CHAIN_END, 0, NULL },		    /* repne */
		{ "f3aa", CHAIN_END, 0, NULL },		    /* rep stosb: not a copy */
		{ "66f3a5", CHAIN_END, 0, NULL },	    /* rep movsw */
		{ "f3490fa5", CHAIN_END, 0, NULL },	    /* not movs at all */
		{ "6672fe", CHAIN_END, 0, NULL },	    /* prefixed jcc */
		{ "480f8210000000", CHAIN_END, 0, NULL },   /* REX jcc */
		{ "0f821000", CHAIN_END, 0, NULL },	    /* truncated */
		{ "e310", CHAIN_END, 0, NULL },		    /* jrcxz: not a flags branch */
	};
	static const char *const outside[] = { "83fa40", "89d1",	 "f3a4",
					       "7248",	 "0f8210000000", "85d2" };
	u8 code[16];
	struct chain_insn in;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(&cases[i], CHAIN_USER_ACCESS);
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
		assert_int_equal(chain_classify(code, unhex(outside[i], code), 0, &in), CHAIN_END);
	/* What the lookahead needs: the branch's condition, the copy's element, the flags. */
	assert_int_equal(chain_classify(code, unhex("7248", code), CHAIN_USER_ACCESS, &in),
			 CHAIN_BRANCH);
	assert_int_equal(in.cc, 2);
	assert_int_equal(in.rel, 0x48);
	assert_int_equal(chain_classify(code, unhex("f348a5", code), CHAIN_USER_ACCESS, &in),
			 CHAIN_BRIDGE);
	assert_int_equal(in.rep_size, 8);
	assert_false(in.sets_flags);
	assert_int_equal(chain_classify(code, unhex("31c0", code), CHAIN_USER_ACCESS, &in),
			 CHAIN_BRIDGE);
	assert_true(in.sets_flags);
	assert_false(in.compare);
	assert_int_equal(chain_classify(code, unhex("89d1", code), CHAIN_USER_ACCESS, &in),
			 CHAIN_BRIDGE);
	assert_false(in.sets_flags || in.compare || in.rep_size);
}

/* chain_mov_reg: which way each encoding moves, and its size. */
static void test_mov_reg(void **state)
{
	static const struct {
		const char *bytes;
		unsigned dst, src, size;
	} cases[] = {
		{ "89d1", 1, 2, 4 },   /* mov %edx,%ecx */
		{ "8bca", 1, 2, 4 },   /* mov %edx,%ecx, the other encoding */
		{ "4889d1", 1, 2, 8 }, /* mov %rdx,%rcx */
		{ "4c89c1", 1, 8, 8 }, /* mov %r8,%rcx */
		{ "4989c9", 9, 1, 8 }, /* mov %rcx,%r9 */
	};
	u8 code[16];
	unsigned dst, src, size;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(chain_mov_reg(code, unhex(cases[i].bytes, code), &dst, &src, &size));
		assert_int_equal(dst, cases[i].dst);
		assert_int_equal(src, cases[i].src);
		assert_int_equal(size, cases[i].size);
	}
	assert_false(chain_mov_reg(code, unhex("890a", code), &dst, &src, &size)); /* memory */
	assert_false(chain_mov_reg(code, unhex("83fa40", code), &dst, &src, &size));
	assert_false(chain_mov_reg(code, unhex("6689d1", code), &dst, &src, &size)); /* 16-bit */
}

/* The flags chain_compare computes for each form, from the registers given. */
static void test_compare_flags(void **state)
{
	static const struct {
		const char *bytes;
		u64 rax, rcx, rdx, r8;
		u64 want; /* FLAGS_ARITH_MASK bits */
	} cases[] = {
		/* cmp $64,%edx with 16, 64, 100 in edx: below, equal, above */
		{ "83fa40", 0, 0, 16, 0, 0x80 | 0x01 }, /* SF CF: 16 - 64 = 0xffffffd0 */
		{ "83fa40", 0, 0, 64, 0, 0x40 | 0x04 }, /* ZF PF */
		{ "83fa40", 0, 0, 100, 0, 0x04 },	/* 36 = 0b100100: PF */
		/* only the low 32 bits count without REX.W; with it, all 64 */
		{ "83fa40", 0, 0, 0x100000010ull, 0, 0x80 | 0x01 },
		{ "4883fa40", 0, 0, 0x100000010ull, 0, 0 },	   /* 0xffffffd0 */
		{ "4983f840", 0, 0, 0, 64, 0x40 | 0x04 },	   /* REX.B: r8 */
		{ "3d40000000", 64, 0, 0, 0, 0x40 | 0x04 },	   /* cmp $64,%eax */
		{ "39d1", 0, 1, 2, 0, 0x80 | 0x10 | 0x04 | 0x01 }, /* cmp %edx,%ecx: 1 - 2 */
		{ "3bd1", 0, 1, 2, 0, 0 },			   /* cmp %ecx,%edx: 2 - 1 */
		{ "85d2", 0, 0, 0, 0, 0x40 | 0x04 },		   /* test %edx,%edx: 0 */
		{ "f7c207000000", 0, 0, 8, 0, 0x40 | 0x04 },	   /* test $7,%edx: 8 & 7 */
		{ "f7c207000000", 0, 0, 0x81, 0, 0x00 },	   /* 1: odd parity */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		u8 code[16];
		unsigned n = unhex(cases[i].bytes, code);
		u64 gpr[16] = { 0 }, fl = 0x2;

		gpr[0] = cases[i].rax;
		gpr[1] = cases[i].rcx;
		gpr[2] = cases[i].rdx;
		gpr[8] = cases[i].r8;
		assert_true(chain_compare(code, n, gpr, &fl));
		if ((fl & 0x8d5) != cases[i].want)
			fail_msg("%s: flags %#llx, want %#llx", cases[i].bytes,
				 (unsigned long long)(fl & 0x8d5),
				 (unsigned long long)cases[i].want);
	}
	{
		u8 code[16];
		u64 gpr[16] = { 0 }, fl = 0x2;

		/* Not a compare: false, flags untouched. */
		assert_false(chain_compare(code, unhex("89d1", code), gpr, &fl));
		assert_false(chain_compare(code, unhex("31c0", code), gpr, &fl));
		assert_int_equal(fl, 0x2);
	}
}

/* ---- chain_lookahead ---------------------------------------------------- */

#define CODE_LA 0xffffffff81000000ull /* where the fake code lives */

/* Code for chain_lookahead: bytes at CODE_LA, one patched (trapping) address. */
struct fake_code {
	u8 bytes[256];
	unsigned len;
	u64 base;	     /* 0: CODE_LA */
	u64 patched_la;	     /* 0: none */
	bool clac_elsewhere; /* outside bytes[], a clac everywhere (as a wrapping walk would) */
	unsigned reads;
};

static unsigned fake_read(void *opaque, u64 la, u8 *buf, unsigned n, bool *patched)
{
	struct fake_code *f = opaque;
	u64 base = f->base ? f->base : CODE_LA;
	unsigned got = 0;

	f->reads++;
	*patched = f->patched_la && la == f->patched_la;
	if (la < base || la >= base + f->len) {
		if (!f->clac_elsewhere || n < 3)
			return 0;
		memcpy(buf, (const u8[]){ 0x0f, 0x01, 0xca }, 3);
		return 3;
	}
	got = (unsigned)MIN((u64)n, base + f->len - la);
	memcpy(buf, f->bytes + (la - base), got);
	return got;
}

/* Put hex bytes at offset `off`. */
static void code_at(struct fake_code *f, unsigned off, const char *hex)
{
	unsigned n = unhex(hex, f->bytes + off);

	if (off + n > f->len)
		f->len = off + n;
}

/*
 * Linux 6.1's copy_user_enhanced_fast_string after its stac (emulated: the
 * trap), with copy_user_short_string at +0x4a (its first two
 * instructions: mov %edx,%ecx; and $7,%edx, which is not a chain member).
 */
static void copy_user(struct fake_code *f)
{
	memset(f, 0, sizeof(*f));
	code_at(f, 0,
		"83fa40" /* +0  cmp $64,%edx */
		"7245"	 /* +3  jb +0x45 (to +0x4a) */
		"89d1"	 /* +5  mov %edx,%ecx */
		"f3a4"	 /* +7  rep movsb */
		"31c0"	 /* +9  xor %eax,%eax */
		"0f01ca" /* +11 clac */
		"c3");	 /* +14 ret */
	code_at(f, 0x4a, "89d183e207");
}

static enum chain_class ahead(struct fake_code *f, unsigned off, u64 rflags, const u64 *gpr,
			      struct chain_insn *first)
{
	struct chain_code code = { .read = fake_read, .opaque = f };
	struct chain_start s = { .la = CODE_LA + off,
				 .rflags = rflags,
				 .gpr = gpr,
				 .flags = CHAIN_USER_ACCESS,
				 .steps = 6,
				 .copy_max = 1024 };

	return chain_lookahead(&code, &s, first);
}

#define CF 0x1ull

/* From the cmp: a copy of 64 bytes or more runs on to the clac; a shorter one ends at once. */
static void test_lookahead_copy_window(void **state)
{
	struct fake_code f;
	struct chain_insn in;
	u64 gpr[16] = { 0 };

	(void)state;
	copy_user(&f);
	gpr[2] = 64; /* edx */
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_BRIDGE);
	assert_true(in.compare);
	assert_int_equal(in.len, 3);
	gpr[2] = 1024 + 0xffffffff00000000ull; /* only edx counts */
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_BRIDGE);
	/* 16 bytes: jb goes to the byte loop, which is not a chain: nothing worth emulating. */
	gpr[2] = 16;
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_END);
	/* At the jb, its own flags decide: CF = 0 falls through, resolved (rel 0). */
	assert_int_equal(ahead(&f, 3, 0x2, gpr, &in), CHAIN_BRANCH);
	assert_int_equal(in.rel, 0);
	assert_int_equal(in.cc, 2);
	assert_int_equal(ahead(&f, 3, 0x2 | CF, gpr, &in), CHAIN_END);
}

/* The copy's length is checked where RCX is known: when the rep movs is next. */
static void test_lookahead_copy_cap(void **state)
{
	struct fake_code f;
	struct chain_insn in;
	u64 gpr[16] = { 0 };

	(void)state;
	copy_user(&f);
	gpr[1] = 1024; /* rcx */
	assert_int_equal(ahead(&f, 7, 0x2, gpr, &in), CHAIN_BRIDGE);
	assert_int_equal(in.rep_size, 1);
	gpr[1] = 1025;
	assert_int_equal(ahead(&f, 7, 0x2, gpr, &in), CHAIN_END);
	/* From the mov before it, RCX will be EDX: 2000 bytes end it there already ... */
	gpr[2] = 0xffffffff000007d0ull;
	assert_int_equal(ahead(&f, 5, 0x2, gpr, &in), CHAIN_END);
	/* ... and from the cmp, so that neither the cmp nor the jb is emulated in vain. */
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_END);
	gpr[2] = 1024;
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_BRIDGE);
	/* RCX written by another bridge (a pop) is not known: looked past, checked when next. */
	code_at(&f, 0x40, "59f3a40f01ca"); /* pop %rcx; rep movsb; clac */
	gpr[1] = 5000;
	assert_int_equal(ahead(&f, 0x40, 0x2, gpr, &in), CHAIN_BRIDGE);
	assert_int_equal(ahead(&f, 0x41, 0x2, gpr, &in), CHAIN_END);
	/* rep movsq: elements of 8 bytes, the cap in bytes. */
	code_at(&f, 0x80, "f348a50f01ca");
	gpr[1] = 128;
	assert_int_equal(ahead(&f, 0x80, 0x2, gpr, &in), CHAIN_BRIDGE);
	assert_int_equal(in.rep_size, 8);
	gpr[1] = 129;
	assert_int_equal(ahead(&f, 0x80, 0x2, gpr, &in), CHAIN_END);
}

/*
 * Flags the lookahead cannot know end the chain: a compare after a
 * register was written on the way, or a branch after another bridge that
 * sets flags.
 */
static void test_lookahead_unknown_flags(void **state)
{
	struct fake_code f;
	struct chain_insn in;
	u64 gpr[16] = { 0 };

	(void)state;
	memset(&f, 0, sizeof(f));
	code_at(&f, 0,
		"89d1"	 /* mov %edx,%ecx */
		"83f940" /* cmp $64,%ecx: ecx is not the vCPU's any more */
		"7302"	 /* jae +2 */
		"0f01ca");
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_END);
	/* The same from the cmp, where ecx is the vCPU's: 0 < 64, jae not taken, clac. */
	assert_int_equal(ahead(&f, 2, 0x2, gpr, &in), CHAIN_BRIDGE);
	memset(&f, 0, sizeof(f));
	code_at(&f, 0,
		"31c0" /* xor %eax,%eax: flags set, not computed */
		"7400" /* je +0 */
		"0f01ca");
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_END);
	/* Outside a user-access window a jcc is no member at all. */
	{
		struct chain_code code = { .read = fake_read, .opaque = &f };
		struct chain_start s = {
			.la = CODE_LA + 2, .rflags = 0x2, .gpr = gpr, .steps = 6, .copy_max = 1024
		};

		assert_int_equal(chain_lookahead(&code, &s, &in), CHAIN_END);
	}
}

/* A patched site traps whatever its bytes; the steps and canonical addresses bound the walk. */
static void test_lookahead_bounds(void **state)
{
	struct fake_code f;
	struct chain_insn in;
	u64 gpr[16] = { 0 };

	(void)state;
	memset(&f, 0, sizeof(f));
	code_at(&f, 0,
		"90909090909090" /* seven nops */
		"0f01ca");
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_END); /* the clac is 8th */
	assert_int_equal(f.reads, 6);
	assert_int_equal(ahead(&f, 2, 0x2, gpr, &in), CHAIN_NOP); /* now 6th */
	f.patched_la = CODE_LA + 3;
	assert_int_equal(ahead(&f, 0, 0x2, gpr, &in), CHAIN_NOP);
	assert_int_equal(ahead(&f, 3, 0x2, gpr, &in), CHAIN_TRAP);
	assert_int_equal(in.len, 0); /* a patch leaves it so */
	/* A jump out of the canonical half ends the chain (the walk would wrap it). */
	memset(&f, 0, sizeof(f));
	f.base = 0x00007ffffffffff0ull;
	f.clac_elsewhere = true;
	code_at(&f, 0, "e910000000"); /* jmp to 0x0000800000000005 */
	{
		struct chain_code code = { .read = fake_read, .opaque = &f };
		struct chain_start s = { .la = f.base,
					 .rflags = 0x2,
					 .gpr = gpr,
					 .flags = CHAIN_USER_ACCESS,
					 .steps = 6,
					 .copy_max = 1024 };

		assert_int_equal(chain_lookahead(&code, &s, &in), CHAIN_END);
		code_at(&f, 0, "ebf0"); /* jmp back to base - 14: canonical, the clac there */
		assert_int_equal(chain_lookahead(&code, &s, &in), CHAIN_JUMP);
		f.clac_elsewhere = false;
	}
	/* Nothing readable: the end. */
	assert_int_equal(ahead(&f, 0x100, 0x2, gpr, &in), CHAIN_END);
}

/*
 * Random bytes, biased towards the interesting opcodes: whatever is
 * classified must be what capstone decodes, with the same length.
 */
static void test_random_agrees_with_capstone(void **state)
{
	static const char *const ok[] = {
		"swapgs",    "clac",	  "stac",     "sysret", "sysretq", "iretq", "mov",
		"wrmsr",     "rdmsr",	  "hlt",      "invlpg", "cli",	   "sti",   "rdfsbase",
		"rdgsbase",  "wrfsbase",  "wrgsbase", "nop",	"lfence",  "jmp",   "xor",
		"sub",	     "pop",	  "push",     "add",	"cmp",	   "test",  "rep movsb",
		"rep movsd", "rep movsq", "jo",	      "jno",	"jb",	   "jae",   "je",
		"jne",	     "jbe",	  "ja",	      "js",	"jns",	   "jp",    "jnp",
		"jl",	     "jge",	  "jle",      "jg",
	};
	static const u8 first[] = { 0x0f, 0xf3, 0x48, 0x44, 0x41, 0xf4, 0xfa, 0xcf, 0x66,
				    0x65, 0x2e, 0x89, 0x8b, 0xc7, 0x90, 0xeb, 0xe9, 0x31,
				    0x29, 0x58, 0x5c, 0x50, 0x6a, 0x83, 0x72, 0x7f, 0x3d,
				    0x39, 0x3b, 0x85, 0x81, 0xf7, 0xa4, 0xa5 };
	unsigned classified = 0;

	(void)state;
	rng_state = 0x2545f491;
	for (unsigned it = 0; it < 200000; it++) {
		u8 code[16];
		unsigned n = 1 + rnd() % 12, len;
		struct chain_insn in = { 0 };
		enum chain_class cls;
		struct decoded_insn d;
		bool known = false;

		for (unsigned i = 0; i < sizeof(code); i++)
			code[i] = (u8)rnd();
		code[0] = first[rnd() % sizeof(first)];
		if (rnd() & 1)
			code[1] = 0x0f;
		if (rnd() % 4 == 0)
			code[2] =
				(u8[]){ 0x01, 0xae, 0x20, 0x22, 0x07, 0x30, 0x1f, 0x89 }[rnd() % 8];
		cls = chain_classify(code, n, rnd() % 3, &in);
		if (cls == CHAIN_END)
			continue;
		len = in.len;
		classified++;
		assert_true(len >= 1 && len <= n);
		if (decode_one(code, n, 0, DECODE_64, &d) != 0)
			fail_msg("classified %d (len %u of %u), capstone cannot decode %02x %02x "
				 "%02x %02x %02x",
				 cls, len, n, code[0], code[1], code[2], code[3], code[4]);
		if (d.len != len)
			fail_msg("%02x %02x %02x %02x: length %u, capstone %u (%s)", code[0],
				 code[1], code[2], code[3], len, d.len, d.mnemonic);
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			known |= !strcmp(d.mnemonic, ok[i]);
		if (!known)
			fail_msg("%02x %02x %02x %02x: classified %d, capstone says %s", code[0],
				 code[1], code[2], code[3], cls, d.mnemonic);
		if (in.compare) {
			static const u64 gpr[16];
			u64 fl = 0;

			assert_true(chain_compare(code, n, gpr, &fl));
			assert_true(!strcmp(d.mnemonic, "cmp") || !strcmp(d.mnemonic, "test"));
		}
		if (in.rep_size)
			assert_true(!strncmp(d.mnemonic, "rep movs", 8));
	}
	assert_true(classified > 1000); /* the bias reached the patterns */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traps),
		cmocka_unit_test(test_irqflags),
		cmocka_unit_test(test_ends),
		cmocka_unit_test(test_nops),
		cmocka_unit_test(test_user_access_movs),
		cmocka_unit_test(test_jumps_zeroing_pops),
		cmocka_unit_test(test_user_copy_window),
		cmocka_unit_test(test_lookahead_copy_window),
		cmocka_unit_test(test_lookahead_copy_cap),
		cmocka_unit_test(test_lookahead_unknown_flags),
		cmocka_unit_test(test_lookahead_bounds),
		cmocka_unit_test(test_compare_flags),
		cmocka_unit_test(test_mov_reg),
		cmocka_unit_test(test_random_agrees_with_capstone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
