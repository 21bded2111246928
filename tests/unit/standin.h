/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the stand-ins' unit tests (tests/unit/test_call_*.c): a
 * stand-in's code as capstone reads it, and the stage monitor_call_point
 * gives each of its instructions. Include after cmocka.h.
 */
#ifndef UMBRA_TESTS_STANDIN_H
#define UMBRA_TESTS_STANDIN_H

#include <capstone/capstone.h>
#include <signal.h>
#include <stdio.h>
#include <ucontext.h>
#include <string.h>
#include <sys/mman.h>

#include "decode/scan.h"
#include "shadow/x86.h"
#include "vmm/call_literal.h"
#include "vmm/monitor.h"

/*
 * Plan `bytes` (a call literal's site) at 0x100 of a page entered at
 * `entries`, with a `jmp` at 0x180 to 0x100 + `branch_to` (a branch into
 * the site, seen where 0x180 is an entry); the kind, or CALL_LIT_NONE.
 */
static inline enum call_literal_kind standin_plan(const u8 *bytes, unsigned n, const u16 *entries,
						  unsigned ne, unsigned branch_to, u8 *repl,
						  unsigned *len)
{
	static u8 page[PAGE_SIZE];
	const u64 la = 0xffffffff81c01000ull;
	struct scan_result res;
	enum call_literal_kind k;

	memset(page, 0xcc, PAGE_SIZE);
	memcpy(page + 0x100, bytes, n);
	page[0x180] = 0xeb;
	page[0x181] = (u8)(0x100 + branch_to - 0x182);
	scan_result_init(&res, gva(la), DECODE_64, SCAN_KINDS_DEFAULT);
	assert_true(scan_code_page_add_entry(&res, page, NULL, 0, entries, ne) >= 0);
	k = call_literal_plan(&res, page, la, 0x100, repl, len);
	scan_result_free(&res);
	return k;
}

/*
 * The `n` instructions of the stand-in at `fn` (pad 0's entry) in `m`'s
 * window, into *insn (cs_free it), and as "mnemonic ops;" text into `text`.
 */
static inline void standin_disasm(const struct monitor *m, unsigned fn, size_t n, cs_insn **insn,
				  char *text, size_t len)
{
	size_t used = 0;
	csh h;

	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	/* To the thunks: a stand-in may take more than one slot (load_gs: two). */
	assert_int_equal(cs_disasm(h, m->region + MON_OFF_CALL_CODE + fn, MON_CALL_THUNKS - fn,
				   MON_CALL_GVA + fn, n, insn),
			 n);
	cs_close(&h);
	text[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		used += (size_t)snprintf(text + used, len - used, "%s %s;", (*insn)[i].mnemonic,
					 (*insn)[i].op_str);
		assert_true(used < len);
	}
}

/* Each instruction starts stage want[i] of `fn` with `pad`; no byte inside one is a point. */
static inline void standin_stages(const struct monitor *m, const cs_insn *insn, size_t n,
				  unsigned fn, unsigned pad, const enum mon_call_stage *want)
{
	struct mon_call_point p;

	for (size_t i = 0; i < n; i++) {
		assert_true(monitor_call_point(m, insn[i].address, &p));
		assert_int_equal(p.fn, fn);
		assert_int_equal(p.pad, pad);
		assert_int_equal(p.stage, want[i]);
		for (unsigned b = 1; b < insn[i].size; b++)
			assert_false(monitor_call_point(m, insn[i].address + b, &p));
	}
	assert_false(monitor_call_point(m, insn[n - 1].address + insn[n - 1].size, &p) &&
		     p.fn == fn);
}

/*
 * `bytes` (n of them, from a site's start) plan as call literal `kind` of
 * `site_len` bytes: a call to the stand-in at `fn`, then the original's
 * bytes (the literals whose tail is kept); with bytes[at] = `other`, as none.
 */
static inline void standin_check_plan(const u8 *bytes, unsigned n, enum call_literal_kind kind,
				      unsigned fn, unsigned site_len)
{
	const u16 entry = 0x100;
	u8 repl[16];
	unsigned len = 0;
	s32 rel;

	assert_int_equal(standin_plan(bytes, n, &entry, 1, 0, repl, &len), kind);
	assert_int_equal(len, site_len);
	assert_int_equal(repl[0], 0xe8);
	memcpy(&rel, repl + 1, 4);
	assert_true(0xffffffff81c01100ull + 5 + (u64)(s64)rel == MON_CALL_GVA + fn);
	assert_memory_equal(repl + 5, bytes + 5, site_len - 5);
}

static inline void standin_check_not_site(const u8 *bytes, unsigned n, unsigned at, u8 other)
{
	const u16 entry = 0x100;
	u8 changed[32], repl[16];
	unsigned len = 0;

	assert_true(n <= sizeof(changed));
	memcpy(changed, bytes, n);
	changed[at] = other;
	assert_int_equal(standin_plan(changed, n, &entry, 1, 0, repl, &len), CALL_LIT_NONE);
}

/* Write into text[len] what the stand-in's instructions `insn` must read as. */
typedef void standin_text_fn(const cs_insn *insn, char *text, size_t len);

/* The disp32 of RIP-relative instruction `in` when it reaches data field `field`. */
static inline unsigned long long standin_disp(const cs_insn *in, size_t field)
{
	return (unsigned long long)(MON_CALL_DATA_GVA + field - (in->address + in->size));
}

/*
 * The one-slot stand-in at `fn` in a fresh monitor: its `n` instructions
 * read as `expect` says, each starts stage want[i] of `fn` with `pad`, and
 * the thunks start after its slot.
 */
static inline void standin_check_code(unsigned fn, unsigned pad, const enum mon_call_stage *want,
				      size_t n, standin_text_fn *expect)
{
	struct monitor m;
	char text[1024], want_text[1024];
	cs_insn *insn;

	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	standin_disasm(&m, fn, n, &insn, text, sizeof(text));
	expect(insn, want_text, sizeof(want_text));
	assert_string_equal(text, want_text);
	standin_stages(&m, insn, n, fn, pad, want);
	assert_true(MON_CALL_THUNKS >= fn + MON_CALL_SLOT);
	cs_free(insn, n);
	monitor_destroy(&m);
}

/*
 * A copy of a fresh monitor's call window to run here: its code page, then
 * a zeroed data page (*data). The stand-ins reach their data RIP-relatively
 * and the caller's state through RSP, so they run anywhere. munmap 2 pages.
 */
static inline u8 *standin_window(struct mon_call_data **data)
{
	struct monitor m;
	u8 *win;

	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	win = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(win != MAP_FAILED);
	memcpy(win, m.region + MON_OFF_CALL_CODE, PAGE_SIZE);
	monitor_destroy(&m);
	*data = (struct mon_call_data *)(win + PAGE_SIZE);
	memset(*data, 0, sizeof(**data));
	return win;
}

/*
 * A stand-in's ud2 run natively raises SIGILL: standin_on_sigill (install
 * it with SA_SIGINFO) notes where, RDI, RAX, RCX, and the three words at the top of
 * the stack, clears NT (a site may have set it), and resumes at
 * standin_recover, which the test sets to code that unwinds its runner.
 */
static volatile u64 standin_ill_rip, standin_ill_rdi, standin_ill_rax, standin_ill_rcx,
	standin_ill_stack[3];
static void (*volatile standin_recover)(void);

static inline void standin_on_sigill(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	const u64 *sp = (const u64 *)uc->uc_mcontext.gregs[REG_RSP];

	(void)sig;
	(void)si;
	standin_ill_rip = (u64)uc->uc_mcontext.gregs[REG_RIP];
	standin_ill_rdi = (u64)uc->uc_mcontext.gregs[REG_RDI];
	standin_ill_rax = (u64)uc->uc_mcontext.gregs[REG_RAX];
	standin_ill_rcx = (u64)uc->uc_mcontext.gregs[REG_RCX];
	for (unsigned i = 0; i < 3; i++)
		standin_ill_stack[i] = sp[i];
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)standin_recover;
	uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)(1ull << 14); /* NT */
}

/*
 * A stand-in run natively as a site's call would run it: standin_run(entry,
 * pad, io) loads RAX, RCX, RDX, RDI, RSI and the flags from *io, enters the
 * stand-in at `entry` with a return address `pad` bytes before
 * standin_site_end (where the stand-in's own addq makes it return), and
 * stores the six back into *io there; 0 returned. Where the stand-in reaches
 * a ud2, standin_on_sigill (standin_recover = standin_run_recover) notes the
 * state there and standin_run returns 1, *io as it was.
 */
struct standin_regs {
	u64 rax, rcx, rdx, rdi, rsi, flags;
};
u64 standin_saved_rsp, standin_io;
u64 standin_run(u64 entry, u64 pad, struct standin_regs *io);
void standin_run_recover(void);
extern const u8 standin_site_end[];
__asm__(".text\n"
	".globl standin_run, standin_run_recover, standin_site_end\n"
	"standin_run:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, standin_saved_rsp(%rip)\n\t"
	"mov %rdx, standin_io(%rip)\n\t"
	"mov %rdi, %r12\n\t"
	"lea standin_site_end(%rip), %r13\n\t"
	"sub %rsi, %r13\n\t"
	"mov %rdx, %r14\n\t"
	"mov 0(%r14), %rax\n\t"
	"mov 8(%r14), %rcx\n\t"
	"mov 16(%r14), %rdx\n\t"
	"mov 24(%r14), %rdi\n\t"
	"mov 32(%r14), %rsi\n\t"
	"push 40(%r14)\n\t"
	"popfq\n\t"
	"push %r13\n\t" /* the return address, as the site's call pushes it */
	"jmp *%r12\n"
	"standin_site_end:\n\t"
	"pushfq\n\t"
	"pop %r13\n\t"
	"mov standin_io(%rip), %r14\n\t"
	"mov %rax, 0(%r14)\n\t"
	"mov %rcx, 8(%r14)\n\t"
	"mov %rdx, 16(%r14)\n\t"
	"mov %rdi, 24(%r14)\n\t"
	"mov %rsi, 32(%r14)\n\t"
	"mov %r13, 40(%r14)\n\t"
	"xor %eax, %eax\n\t"
	"jmp 1f\n"
	"standin_run_recover:\n\t"
	"mov standin_saved_rsp(%rip), %rsp\n\t"
	"mov $1, %eax\n"
	"1:\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"cld\n\t"
	"ret\n");

/* The arithmetic flags and DF, which a stand-in keeps; three ways to have them. */
#define STANDIN_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)
#define STANDIN_KEPT  (STANDIN_ARITH | RFLAGS_DF)
const u64 standin_flag_sets[] = { 0x202, 0x202 | STANDIN_ARITH, 0x202 | RFLAGS_DF | RFLAGS_CF };
#define STANDIN_NR_FLAG_SETS 3

/* Install standin_on_sigill, resuming at standin_run_recover. */
static inline void standin_catch_ud2(void)
{
	struct sigaction sa = { .sa_sigaction = standin_on_sigill, .sa_flags = SA_SIGINFO };

	standin_recover = standin_run_recover;
	assert_int_equal(sigaction(SIGILL, &sa, NULL), 0);
}

#endif /* UMBRA_TESTS_STANDIN_H */
