/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the cmpxchg16b stand-in (vmm/monitor.h, MON_CALL_CX16)
 * and its sites (vmm/call_cx16.c): which bodies are taken, the stand-in's
 * code as capstone reads it with the stage of each instruction, and the
 * stand-in run natively here, against what Linux's
 * this_cpu_cmpxchg16b_emu does (its cli keeps it from running here): on
 * equal and unequal words, through a %gs base of our own, and with an
 * unaligned operand, where it must fault at its cmpxchg16b with the stack
 * its undo expects.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <asm/prctl.h>
#include <capstone/capstone.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "decode/scan.h"
#include "shadow/x86.h"
#include "tests/unit/standin.h"
#include "tests/unit/xorshift.h"
#include "umbra/types.h"
#include "vmm/call_cx16.h"
#include "vmm/monitor.h"

/* ---- sites ---------------------------------------------------------------- */

/* Debian 12's (Linux 6.1) this_cpu_cmpxchg16b_emu, from its vmlinux. */
static const u8 linux_body[CALL_CX16_BODY] = {
	0x9c, 0xfa, 0x65, 0x48, 0x3b, 0x06, 0x75, 0x18, 0x65, 0x48, 0x3b, 0x56, 0x08, 0x75,
	0x11, 0x65, 0x48, 0x89, 0x1e, 0x65, 0x48, 0x89, 0x4e, 0x08, 0x9d, 0xb0, 0x01, 0xe9,
	0xe0, 0xf2, 0x43, 0x00, 0x9d, 0x30, 0xc0, 0xe9, 0xd8, 0xf2, 0x43, 0x00,
};

/*
 * A page of int3 with `body` at `off`, scanned from `entry` (and from
 * `entry2` if not 0), planned at `off`.
 */
static bool plan2(const u8 *body, unsigned off, u16 entry, u16 entry2, u64 la, u8 *repl)
{
	static u8 page[PAGE_SIZE];
	u16 entries[2] = { entry, entry2 };
	struct scan_result res;
	unsigned len = 0;
	bool ok;

	memset(page, 0xcc, PAGE_SIZE);
	memcpy(page + off, body, MIN(CALL_CX16_BODY, PAGE_SIZE - off));
	scan_result_init(&res, gva(la), DECODE_64, SCAN_KINDS_DEFAULT);
	assert_true(scan_code_page_add_entry(&res, page, NULL, 0, entries, entry2 ? 2 : 1) >= 0);
	ok = call_cx16_plan(&res, page, la, off, repl, &len);
	scan_result_free(&res);
	if (ok)
		assert_int_equal(len, CALL_CX16_PATCH);
	return ok;
}

static bool plan(const u8 *body, unsigned off, u16 entry, u64 la, u8 *repl)
{
	return plan2(body, off, entry, 0, la, repl);
}

static void test_cx16_plan(void **state)
{
	const u64 la = 0xffffffff819c2000ull;
	u8 body[CALL_CX16_BODY], repl[16];
	s32 rel;

	(void)state;
	assert_true(plan(linux_body, 0xbf0, 0xbf0, la, repl));
	assert_int_equal(repl[0], 0xe9);
	memcpy(&rel, repl + 1, 4);
	assert_true(la + 0xbf0 + 5 + (u64)(s64)rel == MON_CALL_GVA + MON_CALL_CX16);

	/* Its returns as apply_returns leaves them: `ret` and int3s. */
	memcpy(body, linux_body, sizeof(body));
	memcpy(body + 27, (const u8[]){ 0xc3, 0xcc, 0xcc, 0xcc, 0xcc }, 5);
	memcpy(body + 35, (const u8[]){ 0xc3, 0xcc, 0xcc, 0xcc, 0xcc }, 5);
	assert_true(plan(body, 0xbf0, 0xbf0, la, repl));
	/* A return that is neither. */
	body[35] = 0xc2;
	assert_false(plan(body, 0xbf0, 0xbf0, la, repl));

	/* Another register, another displacement, a `lock`: not the body. */
	static const unsigned at[] = { 5, 12, 18, 26, 34 };
	for (unsigned i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		memcpy(body, linux_body, sizeof(body));
		body[at[i]] ^= 0x01;
		assert_false(plan(body, 0xbf0, 0xbf0, la, repl));
	}

	/* Not a start the scan found (it began inside the body), or a start inside the jmp. */
	assert_false(plan(linux_body, 0xbf0, 0xbf6, la, repl));
	assert_true(plan2(linux_body, 0xbf0, 0xbf0, 0xbf6, la, repl));
	assert_false(plan2(linux_body, 0xbf0, 0xbf0, 0xbf3, la, repl));
	assert_false(plan2(linux_body, 0xbf0, 0xbf0, 0xbf4, la, repl));

	/* Not wholly in the page. */
	assert_false(plan(linux_body, PAGE_SIZE - 39, PAGE_SIZE - 39, la, repl));
	assert_true(plan(linux_body, PAGE_SIZE - 40, PAGE_SIZE - 40, la, repl));

	/* Out of a rel32's reach of the window. */
	assert_false(plan(linux_body, 0xbf0, 0xbf0, 0x00007f0000000000ull, repl));
}

/* ---- the stand-in's code --------------------------------------------------- */

static void cx16_text(const cs_insn *insn, char *text, size_t len)
{
	snprintf(text, len,
		 "pushfq ;push rdx;push rax;lock cmpxchg16b xmmword ptr gs:[rsi];pop rax;pop rdx;"
		 "jne 0x%llx;popfq ;mov al, 1;ret ;popfq ;xor al, al;ret ;",
		 (unsigned long long)insn[10].address); /* the jne: to the second popfq */
}

static void test_cx16_code(void **state)
{
	static const enum mon_call_stage want[] = {
		MON_CALL_CX16_AT_ENTRY,	 MON_CALL_CX16_FLAGS_SAVED, MON_CALL_CX16_RDX_SAVED,
		MON_CALL_CX16_RAX_SAVED, MON_CALL_CX16_DONE,	    MON_CALL_CX16_RAX_BACK,
		MON_CALL_CX16_AT_JNE,	 MON_CALL_CX16_OK_POPFQ,    MON_CALL_CX16_OK_SET,
		MON_CALL_CX16_AT_RET,	 MON_CALL_CX16_FAIL_POPFQ,  MON_CALL_CX16_FAIL_SET,
		MON_CALL_CX16_AT_RET,
	};

	(void)state;
	standin_check_code(MON_CALL_CX16, 0, want, sizeof(want) / sizeof(want[0]), cx16_text);
}

/* ---- the stand-in, run ----------------------------------------------------- */

struct cx16_regs {
	u64 rax, rdx, rbx, rcx, rsi, flags, rsp;
};

/*
 * cx16_run(entry, regs): the registers and flags from *regs, `call entry`
 * (as the body's caller did; the body's jmp adds nothing), then everything
 * back into *regs (rsp: its value after the return, against the one
 * before the call) and 0. A fault (SIGSEGV) resumes at cx16_recover: 1.
 */
u64 cx16_run(u64 entry, struct cx16_regs *regs);
void cx16_recover(void);
void cx16_return(void);
__asm__(".text\n"
	".globl cx16_run, cx16_recover, cx16_return\n"
	"cx16_run:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, cx16_saved_rsp(%rip)\n\t"
	"mov %rsi, %r8\n\t"
	"mov 0(%r8), %rax\n\tmov 8(%r8), %rdx\n\tmov 16(%r8), %rbx\n\t"
	"mov 24(%r8), %rcx\n\tmov 32(%r8), %rsi\n\t"
	"mov %rsp, 48(%r8)\n\t"
	"push 40(%r8)\n\t"
	"popfq\n\t"
	"call *%rdi\n"
	"cx16_return:\n\t"
	"pushfq\n\t"
	"pop 40(%r8)\n\t"
	"mov %rax, 0(%r8)\n\tmov %rdx, 8(%r8)\n\tmov %rbx, 16(%r8)\n\t"
	"mov %rcx, 24(%r8)\n\tmov %rsi, 32(%r8)\n\t"
	"sub %rsp, 48(%r8)\n\t" /* 0 if balanced */
	"xor %eax, %eax\n\t"
	"jmp 1f\n"
	"cx16_recover:\n\t"
	"mov $1, %eax\n"
	"1:\n\t"
	"cld\n\t"
	"mov cx16_saved_rsp(%rip), %rsp\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"ret\n"
	".data\n"
	"cx16_saved_rsp: .quad 0\n"
	".text\n");

/* The SIGSEGV: where, and the stack the stand-in left (RAX, RDX, the flags, the return). */
static volatile u64 segv_rip, segv_stack[4];

static void on_sigsegv(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	const u64 *sp = (const u64 *)uc->uc_mcontext.gregs[REG_RSP];

	(void)sig;
	(void)si;
	segv_rip = (u64)uc->uc_mcontext.gregs[REG_RIP];
	for (unsigned i = 0; i < 4; i++)
		segv_stack[i] = sp[i];
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)cx16_recover;
}

struct cx16_env {
	u8 *win;     /* a copy of the window's code page */
	u64 *percpu; /* 64 bytes, 16-aligned: our %gs base */
	u64 old_gs;
	stack_t alt;
};

static int cx16_setup(void **state)
{
	struct cx16_env *e = calloc(1, sizeof(*e));
	struct monitor m;

	assert_non_null(e);
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	e->win = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(e->win != MAP_FAILED);
	memcpy(e->win, m.region + MON_OFF_CALL_CODE, PAGE_SIZE);
	monitor_destroy(&m);
	e->percpu = aligned_alloc(16, 64);
	assert_non_null(e->percpu);
	assert_int_equal(syscall(SYS_arch_prctl, ARCH_GET_GS, &e->old_gs), 0);
	assert_int_equal(syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)e->percpu - 0x100), 0);
	e->alt.ss_size = 1 << 16;
	e->alt.ss_sp = malloc(e->alt.ss_size);
	assert_non_null(e->alt.ss_sp);
	assert_int_equal(sigaltstack(&e->alt, NULL), 0);
	*state = e;
	return 0;
}

static int cx16_teardown(void **state)
{
	struct cx16_env *e = *state;
	stack_t off = { .ss_flags = SS_DISABLE };

	syscall(SYS_arch_prctl, ARCH_SET_GS, e->old_gs);
	signal(SIGSEGV, SIG_DFL);
	sigaltstack(&off, NULL);
	free(e->alt.ss_sp);
	free(e->percpu);
	munmap(e->win, PAGE_SIZE);
	free(e);
	return 0;
}

static u64 rnd64(void)
{
	return (u64)rnd() << 32 | rnd();
}

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

/*
 * Linux's body: with the interrupts off, compare RDX:RAX with the two
 * words at %gs:(%rsi) and store RCX:RBX there if equal; %al = 1 and the
 * flags as they came, else %al = 0 and the flags `xor %al,%al` leaves.
 */
static void model(u64 *words, struct cx16_regs *r)
{
	bool eq = words[0] == r->rax && words[1] == r->rdx;

	if (eq) {
		words[0] = r->rbx;
		words[1] = r->rcx;
	}
	r->rax = (r->rax & ~0xffull) | eq;
	if (!eq)
		r->flags = (r->flags & ~(u64)ARITH) | RFLAGS_ZF | RFLAGS_PF;
}

/* Run the stand-in on `w0`, `w1` at percpu[2..3] with `in`; compare with the model. */
static void run_one(struct cx16_env *e, u64 w0, u64 w1, const struct cx16_regs *in)
{
	struct cx16_regs got = *in, want = *in;
	u64 words[2] = { w0, w1 };

	e->percpu[2] = w0;
	e->percpu[3] = w1;
	got.rsi = want.rsi = 0x110; /* %gs base + 0x110: percpu[2] */
	model(words, &want);
	assert_int_equal(cx16_run((u64)(uintptr_t)e->win + MON_CALL_CX16, &got), 0);
	assert_int_equal(e->percpu[2], words[0]);
	assert_int_equal(e->percpu[3], words[1]);
	assert_int_equal(got.rax, want.rax);
	assert_int_equal(got.rdx, want.rdx); /* not loaded with memory on failure */
	assert_int_equal(got.rbx, want.rbx);
	assert_int_equal(got.rcx, want.rcx);
	assert_int_equal(got.rsi, want.rsi);
	assert_int_equal(got.flags & (ARITH | RFLAGS_DF), want.flags & (ARITH | RFLAGS_DF));
	assert_int_equal(got.rsp, 0);
}

static void test_cx16_run(void **state)
{
	struct cx16_env *e = *state;
	struct cx16_regs r = { .rax = 0x1111111111111111ull,
			       .rdx = 0x2222222222222222ull,
			       .rbx = 0x3333333333333333ull,
			       .rcx = 0x4444444444444444ull,
			       .flags = 0x202 | RFLAGS_CF | RFLAGS_SF | RFLAGS_OF };

	run_one(e, r.rax, r.rdx, &r);		     /* equal: stored, %al 1, flags kept */
	run_one(e, r.rax ^ 1, r.rdx, &r);	     /* the first word differs */
	run_one(e, r.rax, r.rdx ^ (1ull << 63), &r); /* the second */
	r.flags = 0x202 | RFLAGS_DF;
	run_one(e, r.rax, r.rdx, &r);
	run_one(e, 0, 0, &r);
	r.flags = 0x202;
	rng_state = 0x9e3779b9u;
	for (unsigned i = 0; i < 2000; i++) {
		u64 w0 = rnd64(), w1 = rnd64();

		r.rax = (i & 1) ? w0 : rnd64();
		r.rdx = (i & 2) ? w1 : rnd64();
		r.rbx = rnd64();
		r.rcx = rnd64();
		r.flags = 0x202 | (rnd() & (ARITH | RFLAGS_DF));
		run_one(e, w0, w1, &r);
	}
}

/* An unaligned operand: #GP at the cmpxchg16b, with the undo's stack; memory untouched. */
static void test_cx16_unaligned(void **state)
{
	struct cx16_env *e = *state;
	struct sigaction sa = { .sa_sigaction = on_sigsegv, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	struct cx16_regs r = {
		.rax = 5, .rdx = 6, .rbx = 7, .rcx = 8, .rsi = 0x108, .flags = 0x202 | RFLAGS_CF
	};
	struct monitor m;
	struct mon_call_point p;

	assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);
	e->percpu[1] = 5;
	e->percpu[2] = 6;
	assert_int_equal(cx16_run((u64)(uintptr_t)e->win + MON_CALL_CX16, &r), 1);
	assert_int_equal(segv_rip, (u64)(uintptr_t)e->win + MON_CALL_CX16 + 3);
	assert_int_equal(segv_stack[0], 5);
	assert_int_equal(segv_stack[1], 6);
	assert_int_equal(segv_stack[2] & ARITH, RFLAGS_CF);
	assert_int_equal(segv_stack[3], (u64)(uintptr_t)cx16_return);
	assert_int_equal(e->percpu[1], 5); /* nothing stored */
	assert_int_equal(e->percpu[2], 6);
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	assert_true(monitor_call_point(&m, MON_CALL_GVA + MON_CALL_CX16 + 3, &p));
	assert_int_equal(p.stage, MON_CALL_CX16_RAX_SAVED); /* the slow path's undo */
	monitor_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cx16_plan),
		cmocka_unit_test(test_cx16_code),
		cmocka_unit_test(test_cx16_run),
		cmocka_unit_test(test_cx16_unaligned),
	};
	return cmocka_run_group_tests(tests, cx16_setup, cx16_teardown);
}
