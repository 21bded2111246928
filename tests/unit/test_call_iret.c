/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the iret stand-in (vmm/monitor.h, MON_CALL_IRET) and its
 * sites (vmm/call_iret.c): which iretqs are taken, the stand-in's code as
 * capstone reads it with the stage of each instruction, and the stand-in
 * run natively here. Its code reaches its data page RIP-relatively and the
 * frame through RSP only, so a copy of the window's two pages anywhere in
 * this process runs as it would in a guest: with a frame it must take, it
 * lands where the frame says, with RSP, RAX and the flags an iretq would
 * leave (but the ones a CPL3 popfq cannot change); with any other, it
 * reaches its ud2 (SIGILL here) having changed nothing the VMM cannot undo.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "decode/scan.h"
#include "shadow/x86.h"
#include "tests/unit/standin.h"
#include "vmm/call_iret.h"
#include "vmm/monitor.h"

/* ---- sites ---------------------------------------------------------------- */

static const u8 linux_site[MON_CALL_IRET_SITE] = { 0x48, 0xcf, 0x0f, 0x1f, 0x44, 0x00, 0x00 };

/* A page of int3 with `bytes` at `off`, scanned from `entry` (64-bit, iretq a site kind). */
static void scan_page(struct scan_result *res, u8 *page, u64 page_la, unsigned off, const u8 *bytes,
		      unsigned n, u16 entry)
{
	memset(page, 0xcc, PAGE_SIZE);
	memcpy(page + off, bytes, n);
	scan_result_init(res, gva(page_la), DECODE_64, SCAN_KIND_BIT(SCAN_KIND_IRET));
	assert_true(scan_code_page_add_entry(res, page, NULL, 0, &entry, 1) >= 0);
}

static void test_iret_plan(void **state)
{
	const u64 la = 0xffffffff81c01000ull; /* Linux's entry text */
	static u8 page[PAGE_SIZE];
	struct scan_result res;
	u8 repl[16];
	unsigned len = 0;
	s32 rel;

	(void)state;
	/* iretq at 0x199, its nopl ending at 0x1a0: Debian's native_irq_return_iret. */
	scan_page(&res, page, la, 0x199, linux_site, sizeof(linux_site), 0x199);
	assert_true(call_iret_plan(&res, page, la, 0x199, repl, &len));
	assert_int_equal(len, CALL_IRET_PATCH);
	assert_int_equal(repl[0], 0xe8);
	memcpy(&rel, repl + 1, 4);
	assert_true(la + 0x199 + 5 + (u64)(s64)rel == monitor_call_entry(MON_CALL_IRET, 0));
	assert_true(monitor_call_entry(MON_CALL_IRET, 0) == MON_CALL_GVA + MON_CALL_IRET);
	scan_result_free(&res);

	/* The nopl ends off a 16-byte boundary: it may be code someone jumps to. */
	scan_page(&res, page, la, 0x19a, linux_site, sizeof(linux_site), 0x19a);
	assert_false(call_iret_plan(&res, page, la, 0x19a, repl, &len));
	scan_result_free(&res);

	/* Another padding (4-byte nopl, then a nop): not the known site. */
	scan_page(&res, page, la, 0x199, (const u8[]){ 0x48, 0xcf, 0x0f, 0x1f, 0x40, 0x00, 0x90 },
		  7, 0x199);
	assert_false(call_iret_plan(&res, page, la, 0x199, repl, &len));
	scan_result_free(&res);

	/* The scan never reached the iretq (it starts inside the site): no site. */
	scan_page(&res, page, la, 0x199, linux_site, sizeof(linux_site), 0x19b);
	assert_false(call_iret_plan(&res, page, la, 0x199, repl, &len));
	scan_result_free(&res);

	/* At the end of the page, the nopl's end is the next page's start: taken. */
	scan_page(&res, page, la, PAGE_SIZE - 7, linux_site, sizeof(linux_site), PAGE_SIZE - 7);
	assert_true(call_iret_plan(&res, page, la, PAGE_SIZE - 7, repl, &len));
	scan_result_free(&res);

	/* Out of a rel32's reach of the window. */
	scan_page(&res, page, 0x00007f0000000000ull, 0x199, linux_site, sizeof(linux_site), 0x199);
	assert_false(call_iret_plan(&res, page, 0x00007f0000000000ull, 0x199, repl, &len));
	scan_result_free(&res);
}

/* ---- the stand-in's code --------------------------------------------------- */

/* What capstone reads at the stand-in, up to its ud2, RIP-relative data as [data+N]. */
static void disasm_iret(const struct monitor *m, char *out, size_t outlen, cs_insn **insn,
			size_t *n)
{
	const u64 entry = MON_CALL_GVA + MON_CALL_IRET;
	csh h;
	size_t used = 0;

	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	*n = cs_disasm(h, m->region + MON_OFF_CALL_CODE + MON_CALL_IRET, 4 * MON_CALL_SLOT, entry,
		       0, insn);
	cs_close(&h);
	assert_true(*n > 0);
	out[0] = 0;
	for (size_t i = 0; i < *n; i++) {
		const cs_insn *in = &(*insn)[i];
		const char *rip = strstr(in->op_str, "[rip + 0x");
		char ops[160];

		snprintf(ops, sizeof(ops), "%s", in->op_str);
		if (rip) {
			u64 target = in->address + in->size + strtoull(rip + 9, NULL, 16);

			snprintf(ops, sizeof(ops), "%.*s[data+%llu]%s", (int)(rip - in->op_str),
				 in->op_str, (unsigned long long)(target - MON_CALL_DATA_GVA),
				 strchr(rip, ']') + 1);
		}
		used += (size_t)snprintf(out + used, outlen - used, "%s %s;", in->mnemonic, ops);
		assert_true(used < outlen);
		if (!strcmp(in->mnemonic, "ud2")) {
			*n = i + 1;
			return;
		}
	}
	fail_msg("no ud2 in the iret stand-in");
}

#define DATA(field) ((unsigned)offsetof(struct mon_call_data, field))

static void test_iret_code(void **state)
{
	const u64 ud2 = MON_CALL_GVA + MON_CALL_IRET + MON_CALL_IRET_UD2;
	struct monitor m;
	char text[4096], want[4096];
	cs_insn *insn;
	size_t n;
	struct mon_call_point p;
	enum mon_call_stage stage = MON_CALL_IRET_AT_ENTRY;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	disasm_iret(&m, text, sizeof(text), &insn, &n);
	snprintf(want, sizeof(want),
		 "pushfq ;push rax;"
		 "mov eax, dword ptr [data+%u];cmp word ptr [rsp + 0x20], ax;jne 0x%llx;"
		 "mov eax, dword ptr [data+%u];cmp word ptr [rsp + 0x38], ax;jne 0x%llx;"
		 "mov rax, qword ptr [data+%u];mov rax, qword ptr [rax];"
		 "cmp rax, qword ptr [data+%u];jne 0x%llx;"
		 "mov rax, qword ptr [data+%u];mov rax, qword ptr [rax];"
		 "cmp rax, qword ptr [data+%u];jne 0x%llx;"
		 "test byte ptr [rsp + 9], 0x40;jne 0x%llx;"
		 "mov rax, qword ptr [rsp + 0x28];and rax, qword ptr [data+%u];"
		 "cmp rax, qword ptr [data+%u];jne 0x%llx;"
		 "test byte ptr [rsp + 0x29], 2;je 0x%llx;cmp byte ptr [data+%u], 0;jne 0x%llx;"
		 "mov rax, qword ptr [rsp + 0x18];sar rax, 0x2f;add rax, 1;cmp rax, 1;ja 0x%llx;"
		 "mov rax, qword ptr [rsp + 0x18];mov qword ptr [data+%u], rax;"
		 "mov rax, qword ptr [rsp + 0x30];mov qword ptr [data+%u], rax;"
		 "push qword ptr [rsp + 0x28];and dword ptr [rsp], 0xfffbffff;"
		 "test byte ptr [rsp + 1], 2;setne byte ptr [data+%u];"
		 "popfq ;pop rax;mov rsp, qword ptr [data+%u];jmp qword ptr [data+%u];ud2 ;",
		 DATA(kernel_cs), (unsigned long long)ud2, DATA(kernel_ss), (unsigned long long)ud2,
		 DATA(cs_desc_gva), DATA(cs_desc), (unsigned long long)ud2, DATA(ss_desc_gva),
		 DATA(ss_desc), (unsigned long long)ud2, (unsigned long long)ud2,
		 DATA(iret_flags_mask), DATA(virt_flags), (unsigned long long)ud2,
		 (unsigned long long)(insn[26].address), DATA(pending), (unsigned long long)ud2,
		 (unsigned long long)ud2, DATA(iret_rip), DATA(iret_rsp), DATA(vif), DATA(iret_rsp),
		 DATA(iret_rip));
	assert_string_equal(text, want);
	/* The flags checked: IOPL, AC, TF, NT, VM, VIF, VIP (RF only with a breakpoint). */
	assert_int_equal(MON_IRET_CHECKED_FLAGS, RFLAGS_IOPL_MASK | RFLAGS_AC | RFLAGS_TF |
							 (1u << 14) | RFLAGS_VM | (1u << 19) |
							 (1u << 20));
	/* Each instruction's stage: as each push, the vif store and each pop leave it. */
	for (size_t i = 0; i < n; i++) {
		const char *mn = insn[i].mnemonic;

		if (!strcmp(mn, "ud2"))
			stage = MON_CALL_IRET_RAX_SAVED; /* the slow path: as the checks left it */
		assert_true(monitor_call_point(&m, insn[i].address, &p));
		assert_int_equal(p.fn, MON_CALL_IRET);
		assert_int_equal(p.pad, 0);
		assert_int_equal(p.stage, stage);
		for (unsigned b = 1; b < insn[i].size; b++)
			assert_false(monitor_call_point(&m, insn[i].address + b, &p));
		if (!strcmp(mn, "pushfq"))
			stage = MON_CALL_IRET_FLAGS_SAVED;
		else if (!strcmp(mn, "push") && stage == MON_CALL_IRET_FLAGS_SAVED)
			stage = MON_CALL_IRET_RAX_SAVED;
		else if (!strcmp(mn, "push"))
			stage = MON_CALL_IRET_NEW_FLAGS;
		else if (!strcmp(mn, "setne"))
			stage = MON_CALL_IRET_AT_POPFQ;
		else if (!strcmp(mn, "popfq"))
			stage = MON_CALL_IRET_AT_POP_RAX;
		else if (!strcmp(mn, "pop"))
			stage = MON_CALL_IRET_AT_LOAD_RSP;
		else if (!strcmp(mn, "mov") && !strncmp(insn[i].op_str, "rsp,", 4))
			stage = MON_CALL_IRET_AT_JMP;
	}
	assert_int_equal(insn[n - 1].address, ud2);
	assert_true(monitor_call_is_iret_trap(ud2));
	assert_false(monitor_call_is_iret_trap(ud2 - 1));
	assert_false(monitor_call_is_sync_trap(ud2));
	assert_false(monitor_call_point(&m, ud2 + 2, &p));
	assert_true(MON_CALL_THUNKS >= MON_CALL_IRET + 4 * MON_CALL_SLOT);
	cs_free(insn, n);
	monitor_destroy(&m);
}

/* ---- the stand-in, run ----------------------------------------------------- */

/*
 * iret_run(entry, frame, rax, flags, out): RSP := frame, RAX := rax, the
 * flags := flags, `call entry`. The stand-in lands at iret_landing (the
 * frame's RIP), which stores RAX, RSP and the flags into out[0..2] and
 * returns 0; its ud2 raises SIGILL, whose handler resumes at iret_recover,
 * which returns 1.
 */
u64 iret_run(u64 entry, u64 *frame, u64 rax, u64 flags, u64 *out);
void iret_landing(void);
void iret_recover(void);
void iret_site_end(void);
__asm__(".text\n"
	".globl iret_run, iret_landing, iret_recover, iret_site_end\n"
	"iret_run:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, iret_saved_rsp(%rip)\n\t"
	"mov %r8, iret_out(%rip)\n\t"
	"mov %rdx, %rax\n\t"
	"mov %rsi, %rsp\n\t"
	"push %rcx\n\t"
	"popfq\n\t"
	"call *%rdi\n"
	"iret_site_end:\n\t"
	"ud2\n" /* never reached: the stand-in goes where the frame says */
	"iret_landing:\n\t"
	"pushfq\n\t"
	"pop %rdx\n\t"
	"cld\n\t"
	"mov %rsp, %rsi\n\t"
	"mov iret_out(%rip), %rcx\n\t"
	"mov %rax, (%rcx)\n\t"
	"mov %rsi, 8(%rcx)\n\t"
	"mov %rdx, 16(%rcx)\n\t"
	"xor %eax, %eax\n\t"
	"jmp 1f\n"
	"iret_recover:\n\t"
	"cld\n\t"
	"mov $1, %eax\n"
	"1:\n\t"
	"mov iret_saved_rsp(%rip), %rsp\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"ret\n"
	".data\n"
	"iret_saved_rsp: .quad 0\n"
	"iret_out: .quad 0\n"
	".text\n");

#define NT (1ull << 14)

/* The SIGILL (standin.h): the stack the stand-in left is RAX, the site's flags, the return. */
#define ill_rip	  standin_ill_rip
#define ill_stack standin_ill_stack

struct iret_env {
	u8 *win; /* the window's code page, then its data page */
	struct mon_call_data *d;
	u64 descs[2];
	u64 stack[256];	    /* the kernel stack the frame sits on */
	u64 new_stack[256]; /* where the frame's RSP points */
	stack_t alt;
};

static int iret_setup(void **state)
{
	struct iret_env *e = calloc(1, sizeof(*e));
	struct monitor m;

	assert_non_null(e);
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	e->win = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(e->win != MAP_FAILED);
	memcpy(e->win, m.region + MON_OFF_CALL_CODE, PAGE_SIZE);
	monitor_destroy(&m);
	e->d = (struct mon_call_data *)(e->win + PAGE_SIZE);
	e->alt.ss_size = 1 << 16;
	e->alt.ss_sp = malloc(e->alt.ss_size);
	assert_non_null(e->alt.ss_sp);
	assert_int_equal(sigaltstack(&e->alt, NULL), 0);
	*state = e;
	return 0;
}

static int iret_teardown(void **state)
{
	struct iret_env *e = *state;
	stack_t off = { .ss_flags = SS_DISABLE };

	signal(SIGILL, SIG_DFL);
	sigaltstack(&off, NULL);
	free(e->alt.ss_sp);
	munmap(e->win, 2 * PAGE_SIZE);
	free(e);
	return 0;
}

/*
 * A guest kernel as the VMM leaves it in the data page: CS 0x10, SS 0x18,
 * vIF 0. And our SIGILL handler: cmocka installs its own for each test.
 */
static void iret_reset(struct iret_env *e)
{
	struct sigaction sa = { .sa_sigaction = standin_on_sigill,
				.sa_flags = SA_SIGINFO | SA_ONSTACK };

	standin_recover = iret_recover;
	assert_int_equal(sigaction(SIGILL, &sa, NULL), 0);
	memset(e->d, 0, sizeof(*e->d));
	e->descs[0] = 0x00af9b000000ffffull; /* 64-bit code, DPL0, accessed */
	e->descs[1] = 0x00cf93000000ffffull; /* data, DPL0, accessed */
	e->d->kernel_cs = 0x10;
	e->d->kernel_ss = 0x18;
	e->d->iret_flags_mask = MON_IRET_CHECKED_FLAGS;
	e->d->cs_desc_gva = (u64)(uintptr_t)&e->descs[0];
	e->d->cs_desc = e->descs[0];
	e->d->ss_desc_gva = (u64)(uintptr_t)&e->descs[1];
	e->d->ss_desc = e->descs[1];
	e->d->vif = 7; /* neither 0 nor 1: a store to it shows */
}

/* A frame at the top of e->stack to iret_landing, on new_stack, with `rflags`. */
static u64 *iret_frame(struct iret_env *e, u64 rflags)
{
	u64 *f = &e->stack[200];

	f[0] = (u64)(uintptr_t)iret_landing;
	f[1] = 0x10;
	f[2] = rflags;
	f[3] = (u64)(uintptr_t)&e->new_stack[128];
	f[4] = 0x18;
	return f;
}

#define ARITH	(RFLAGS_CF | (1u << 2) | (1u << 4) | (1u << 6) | (1u << 7) | (1u << 11))
#define WITNESS 0x0123456789abcdefull

/* Through the stand-in: it must land with the frame's state. */
static void expect_fast(struct iret_env *e, u64 *f, u64 site_flags, u8 want_vif)
{
	u64 out[3] = { 0 };

	assert_int_equal(
		iret_run((u64)(uintptr_t)e->win + MON_CALL_IRET, f, WITNESS, site_flags, out), 0);
	assert_int_equal(out[0], WITNESS);	       /* RAX kept */
	assert_int_equal(out[1], f[3]);		       /* RSP: the frame's */
	assert_int_equal(out[2] & (ARITH | RFLAGS_DF), /* the frame's flags, those CPL3 can load */
			 f[2] & (ARITH | RFLAGS_DF));
	assert_int_equal(out[2] & RFLAGS_AC, 0); /* the guest kernel's real AC stays 0 */
	assert_int_equal(e->d->vif, want_vif);
	assert_int_equal(e->d->iret_rip, f[0]);
	assert_int_equal(e->d->iret_rsp, f[3]);
}

/* To its ud2, with the site's RAX and flags and the return address on the stack. */
static void expect_slow(struct iret_env *e, u64 *f, u64 site_flags, const char *why)
{
	u64 out[3] = { 0 };

	ill_rip = 0;
	if (iret_run((u64)(uintptr_t)e->win + MON_CALL_IRET, f, WITNESS, site_flags, out) != 1)
		fail_msg("the stand-in took a frame it must not: %s", why);
	assert_int_equal(ill_rip, (u64)(uintptr_t)e->win + MON_CALL_IRET + MON_CALL_IRET_UD2);
	assert_int_equal(ill_stack[0], WITNESS);
	assert_int_equal(ill_stack[1] & (ARITH | NT), site_flags & (ARITH | NT));
	assert_int_equal(ill_stack[2], (u64)(uintptr_t)iret_site_end);
	assert_int_equal(e->d->vif, 7); /* nothing that counts was done */
}

static void test_iret_run_fast(void **state)
{
	struct iret_env *e = *state;
	u64 *f;

	iret_reset(e);
	expect_fast(e, iret_frame(e, 0x202 | ARITH | RFLAGS_DF), 0x202, 1);
	iret_reset(e);
	expect_fast(e, iret_frame(e, 0x002), 0x202 | ARITH, 0); /* the frame clears IF */
	/* Something held: only a frame that sets IF must go slow. */
	iret_reset(e);
	e->d->pending = 1;
	expect_fast(e, iret_frame(e, 0x002 | RFLAGS_CF), 0x202, 0);
	/* The virtual IOPL and AC, as the frame has them: AC stays virtual. */
	iret_reset(e);
	e->d->virt_flags = RFLAGS_IOPL_MASK | RFLAGS_AC;
	expect_fast(e, iret_frame(e, 0x202 | RFLAGS_IOPL_MASK | RFLAGS_AC), 0x202, 1);
	/* RF, as in a fault's frame: dropped while no instruction breakpoint is armed. */
	iret_reset(e);
	expect_fast(e, iret_frame(e, 0x202 | RFLAGS_RF), 0x202, 1);
	/* A null SS, as Linux's after a return from user mode; CS and SS compared as 16 bits. */
	iret_reset(e);
	e->d->kernel_ss = 0;
	f = iret_frame(e, 0x202);
	f[4] = 0;
	f[1] = 0xdead000000000010ull;
	expect_fast(e, f, 0x202, 1);
}

static void test_iret_run_slow(void **state)
{
	static const struct {
		u64 flags;
		const char *why;
	} bad_flags[] = {
		{ RFLAGS_TF, "TF" },	  { NT, "NT" },		 { RFLAGS_VM, "VM" },
		{ 1ull << 19, "VIF" },	  { 1ull << 20, "VIP" }, { RFLAGS_AC, "AC" },
		{ 1ull << 12, "IOPL 1" },
	};
	struct iret_env *e = *state;
	u64 *f;

	for (unsigned i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		iret_reset(e);
		expect_slow(e, iret_frame(e, 0x202 | bad_flags[i].flags), 0x202, bad_flags[i].why);
	}
	/*
	 * RF with an instruction breakpoint armed: only the real iretq keeps it
	 * (the stand-in's popfq clears it, and the breakpoint would fire again).
	 */
	iret_reset(e);
	e->d->iret_flags_mask = MON_IRET_CHECKED_FLAGS | RFLAGS_RF;
	expect_slow(e, iret_frame(e, 0x202 | RFLAGS_RF), 0x202, "RF, breakpoint armed");
	iret_reset(e);
	e->d->iret_flags_mask = MON_IRET_CHECKED_FLAGS | RFLAGS_RF;
	expect_fast(e, iret_frame(e, 0x202), 0x202, 1); /* armed, but no RF: fast */
	/* AC virtual 1, the frame's 0: a change of view. */
	iret_reset(e);
	e->d->virt_flags = RFLAGS_AC;
	expect_slow(e, iret_frame(e, 0x202), 0x202, "AC 1 -> 0");
	/* NT set where the iretq runs: #GP. */
	iret_reset(e);
	expect_slow(e, iret_frame(e, 0x202), 0x202 | NT | RFLAGS_CF, "NT at the site");
	/* Another CS or SS selector, or their descriptors changed in the GDT. */
	iret_reset(e);
	f = iret_frame(e, 0x202);
	f[1] = 0x33;
	expect_slow(e, f, 0x202, "CS 0x33 (user)");
	iret_reset(e);
	f = iret_frame(e, 0x202);
	f[4] = 0x2b;
	expect_slow(e, f, 0x202, "SS 0x2b");
	iret_reset(e);
	e->descs[0] &= ~(1ull << 40); /* no longer accessed: the iretq would write it */
	expect_slow(e, iret_frame(e, 0x202), 0x202, "CS descriptor changed");
	iret_reset(e);
	e->descs[1] |= 3ull << 45;
	expect_slow(e, iret_frame(e, 0x202), 0x202, "SS descriptor changed");
	/* IF set by the frame with an interrupt held: the VMM delivers it after the iretq. */
	iret_reset(e);
	e->d->pending = 1;
	expect_slow(e, iret_frame(e, 0x202), 0x202, "IF with an interrupt held");
	/* A non-canonical RIP: the iretq's #GP, at the site. */
	iret_reset(e);
	f = iret_frame(e, 0x202);
	f[0] = 0x0000800000000000ull;
	expect_slow(e, f, 0x202, "RIP 0x800000000000");
	iret_reset(e);
	f = iret_frame(e, 0x202);
	f[0] = 0xffff7fffffffffffull;
	expect_slow(e, f, 0x202, "RIP 0xffff7fffffffffff");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iret_plan),
		cmocka_unit_test(test_iret_code),
		cmocka_unit_test_setup_teardown(test_iret_run_fast, iret_setup, iret_teardown),
		cmocka_unit_test_setup_teardown(test_iret_run_slow, iret_setup, iret_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
