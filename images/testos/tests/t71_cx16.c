/* SPDX-License-Identifier: MIT */
/*
 * Linux's this_cpu_cmpxchg16b_emu, byte for byte as Debian's 6.1 kernel has
 * it: `pushfq; cli`, compare RDX:RAX with the 16 bytes at %gs:(%rsi), store
 * RCX:RBX there if equal, `popfq`, %al = 1 or 0, return. Shadow mode
 * rewrites its head into a jmp to a stand-in (vmm/call_cx16.h) built on
 * `lock cmpxchg16b`, which needs what the body does not: a 16-byte-aligned
 * operand, and a write even when the compare fails. Elsewhere it runs as
 * it is. Either way the results must be the body's: %al, RAX's other bytes,
 * RDX, the flags (kept on success, `xor %al,%al`'s on failure), the store,
 * the IF as it was, and its faults at its own instructions.
 */
#include "../arch.h"
#include "../test.h"

void t74_cx16_emu(void);
void t74_ret_thunk(void);
/* 64-aligned: the body must not cross a page (the stand-in's sites must not). */
__asm__(".text\n"
	".balign 64\n"
	".globl t74_cx16_emu, t74_ret_thunk\n"
	"t74_cx16_emu:\n\t"
	".byte 0x9c, 0xfa\n\t"				     /* pushfq; cli */
	".byte 0x65, 0x48, 0x3b, 0x06, 0x75, 0x18\n\t"	     /* cmp %gs:(%rsi),%rax; jne 1f */
	".byte 0x65, 0x48, 0x3b, 0x56, 0x08, 0x75, 0x11\n\t" /* cmp %gs:8(%rsi),%rdx; jne 1f */
	".byte 0x65, 0x48, 0x89, 0x1e\n\t"		     /* mov %rbx,%gs:(%rsi) */
	".byte 0x65, 0x48, 0x89, 0x4e, 0x08\n\t"	     /* mov %rcx,%gs:8(%rsi) */
	".byte 0x9d, 0xb0, 0x01\n\t"			     /* popfq; mov $1,%al */
	".byte 0xe9\n\t.long t74_ret_thunk - . - 4\n\t"	     /* jmp __x86_return_thunk */
	".byte 0x9d, 0x30, 0xc0\n\t"			     /* 1: popfq; xor %al,%al */
	".byte 0xe9\n\t.long t74_ret_thunk - . - 4\n"
	"t74_ret_thunk:\n\t"
	"ret\n\t"
	"int3\n");

#define ARITH 0x8d5ull /* CF PF AF ZF SF OF */

/* Per-CPU words, our %gs base at their start. */
static uint64_t percpu[8] __attribute__((aligned(64)));

struct cx16_out {
	uint64_t rax, rdx, rflags;
};

/* Call the body as Linux's percpu_cmpxchg16b_double does, with `rflags` loaded before it. */
static struct cx16_out cx16_call(uint64_t off, uint64_t o1, uint64_t o2, uint64_t n1, uint64_t n2,
				 uint64_t rflags)
{
	struct cx16_out o;
	uint64_t rsi = off;

	__asm__ volatile("push %[fl]\n\t"
			 "popfq\n\t"
			 "call t74_cx16_emu\n\t"
			 "pushfq\n\t"
			 "pop %[fl]"
			 : [fl] "+r"(rflags), "+a"(o1), "+d"(o2), "+S"(rsi)
			 : "b"(n1), "c"(n2)
			 : "memory", "cc");
	o.rax = o1;
	o.rdx = o2;
	o.rflags = rflags;
	return o;
}

/* One call on words `w0`, `w1` at percpu[off / 8], checked against the body's result. */
static void cx16_check(const char *what, uint64_t off, uint64_t w0, uint64_t w1, uint64_t o1,
		       uint64_t o2, uint64_t rflags)
{
	const uint64_t n1 = ~w0 ^ 0x5a5a, n2 = ~w1 ^ 0xa5a5;
	int eq = w0 == o1 && w1 == o2;
	uint64_t want_fl = eq ? rflags : (rflags & ~ARITH) | 0x44; /* ZF PF */
	volatile uint64_t *p = (volatile uint64_t *)((uint8_t *)percpu + off);
	struct cx16_out o;

	p[0] = w0;
	p[1] = w1;
	o = cx16_call(off, o1, o2, n1, n2, rflags);
	if (o.rax != ((o1 & ~0xffull) | (uint64_t)eq) || o.rdx != o2 ||
	    (o.rflags & (ARITH | RFLAGS_DF | RFLAGS_IF)) !=
		    (want_fl & (ARITH | RFLAGS_DF | RFLAGS_IF)) ||
	    p[0] != (eq ? n1 : w0) || p[1] != (eq ? n2 : w1))
		test_fail("%s: off %lu, %s: RAX 0x%lx RDX 0x%lx RFLAGS 0x%lx (before 0x%lx), words "
			  "0x%lx 0x%lx",
			  what, off, eq ? "equal" : "unequal", o.rax, o.rdx, o.rflags, rflags, p[0],
			  p[1]);
}

TEST(cx16_emu)
{
	wrmsr(MSR_GS_BASE, (uint64_t)percpu);
	cx16_check("equal", 16, 1, 2, 1, 2, 0x202 | 0x81);
	cx16_check("the first word differs", 16, 1, 2, 3, 2, 0x202 | 0x81);
	cx16_check("the second word differs", 16, 1, 2, 1, 3, 0x202);
	cx16_check("IF 0 kept", 16, 7, 8, 7, 8, 0x002 | RFLAGS_DF);
	cx16_check("IF 0 kept, unequal", 16, 7, 8, 7, 9, 0x002 | ARITH);
	/* Not 16-aligned: the body does not care (cmpxchg16b would #GP). */
	cx16_check("unaligned", 8, 5, 6, 5, 6, 0x202);
	cx16_check("unaligned, unequal", 24, 5, 6, 5, 7, 0x202 | RFLAGS_CF);
	/* Timer ticks land before, inside and after the stand-in: finished or undone. */
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t w0 = 0x1000 + i, w1 = ~(uint64_t)i, fl = 0x202 | (i & ARITH);

		cx16_check("in a loop with ticks", (i & 16) ? 8 : 32, w0, w1, w0 ^ (i & 1),
			   w1 ^ (i & 2), fl);
	}
}

TEST(cx16_emu_fault)
{
	struct catch c;

	/* Nothing mapped at the per-CPU words: #PF at the first cmp, its read. */
	wrmsr(MSR_GS_BASE, TWIN);
	if (CATCH(&c))
		cx16_call(0x10, 1, 2, 3, 4, 0x202);
	catch_disarm();
	expect_fault(&c, VEC_PF, 0, TWIN + 0x10, "this_cpu_cmpxchg16b_emu on an unmapped page");
	CHECK(c.rip == (uint64_t)t74_cx16_emu + 2, "the #PF at the cmp (0x%lx), not at 0x%lx",
	      (uint64_t)t74_cx16_emu + 2, c.rip);
	CHECK_EQ("IF in the fault's frame (after the body's cli)", 0, c.frame.rflags & RFLAGS_IF);
	sti();
}
