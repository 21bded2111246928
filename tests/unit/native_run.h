/* SPDX-License-Identifier: MIT */
/*
 * One instruction run natively, at CPL3 in this process, from given
 * registers and flags: the host CPU as the oracle of the emulator's
 * differential tests (test_emulate_native.c, test_emulate_segs_native.c).
 * Include after emu_env.h, in one file per test binary (it defines the
 * runner's symbols).
 *
 * nat_run saves DS, ES, GS and SS, loads nat_state.in (all 16 registers,
 * RSP last) and RFLAGS, and jumps to the instruction at nat_page, which
 * jumps back to nat_back: that stores every register, RFLAGS and the four
 * segment selectors into .out and restores the host's. A signal the
 * instruction raises goes to nat_on_signal, which notes it (the vector
 * and error code, the registers at the fault) and resumes at nat_fault,
 * which restores the same way. Only RIP-relative data is touched while
 * the test's registers are loaded.
 */
#ifndef UMBRA_TESTS_NATIVE_RUN_H
#define UMBRA_TESTS_NATIVE_RUN_H

#include <cpuid.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "decode/emulate.h"

/* The selectors nat_run saves and reports, in this order. */
enum nat_seg { NAT_DS, NAT_ES, NAT_GS, NAT_SS, NAT_NR_SEGS };

struct nat {
	u64 in[EMU_NR_GPRS];	   /* 0x000 */
	u64 in_flags;		   /* 0x080 */
	u64 out[EMU_NR_GPRS];	   /* 0x088 */
	u64 out_flags;		   /* 0x108 */
	u64 host_rsp;		   /* 0x110 */
	u64 code;		   /* 0x118 */
	u16 seg_host[NAT_NR_SEGS]; /* 0x120: the host's, restored after */
	u16 seg_out[NAT_NR_SEGS];  /* 0x128: after the instruction */
};
_Static_assert(offsetof(struct nat, in_flags) == 0x80 && offsetof(struct nat, out) == 0x88 &&
		       offsetof(struct nat, out_flags) == 0x108 &&
		       offsetof(struct nat, host_rsp) == 0x110 &&
		       offsetof(struct nat, code) == 0x118 &&
		       offsetof(struct nat, seg_host) == 0x120 &&
		       offsetof(struct nat, seg_out) == 0x128,
	       "nat_run's offsets");
extern struct nat nat_state;
struct nat nat_state;

void nat_run(void);
void nat_back(void);
void nat_fault(void);

/* clang-format off */
#define NAT_LOAD(off, reg)  "mov nat_state+" #off "(%rip), %" #reg "\n"
#define NAT_STORE(off, reg) "mov %" #reg ", nat_state+0x88+" #off "(%rip)\n"
__asm__(".text\n"
	".globl nat_run\n"
	".type nat_run, @function\n"
	"nat_run:\n"
	"push %rbx\n" "push %rbp\n" "push %r12\n" "push %r13\n" "push %r14\n" "push %r15\n"
	"mov %rsp, nat_state+0x110(%rip)\n"
	"mov %ds, nat_state+0x120(%rip)\n"
	"mov %es, nat_state+0x122(%rip)\n"
	"mov %gs, nat_state+0x124(%rip)\n"
	"mov %ss, nat_state+0x126(%rip)\n"
	"pushq nat_state+0x80(%rip)\n"
	"popfq\n"
	NAT_LOAD(0x00, rax) NAT_LOAD(0x08, rcx) NAT_LOAD(0x10, rdx) NAT_LOAD(0x18, rbx)
	NAT_LOAD(0x28, rbp) NAT_LOAD(0x30, rsi) NAT_LOAD(0x38, rdi) NAT_LOAD(0x40, r8)
	NAT_LOAD(0x48, r9) NAT_LOAD(0x50, r10) NAT_LOAD(0x58, r11) NAT_LOAD(0x60, r12)
	NAT_LOAD(0x68, r13) NAT_LOAD(0x70, r14) NAT_LOAD(0x78, r15) NAT_LOAD(0x20, rsp)
	"jmp *nat_state+0x118(%rip)\n"
	".globl nat_back\n"
	"nat_back:\n"
	NAT_STORE(0x00, rax) NAT_STORE(0x08, rcx) NAT_STORE(0x10, rdx) NAT_STORE(0x18, rbx)
	NAT_STORE(0x20, rsp) NAT_STORE(0x28, rbp) NAT_STORE(0x30, rsi) NAT_STORE(0x38, rdi)
	NAT_STORE(0x40, r8) NAT_STORE(0x48, r9) NAT_STORE(0x50, r10) NAT_STORE(0x58, r11)
	NAT_STORE(0x60, r12) NAT_STORE(0x68, r13) NAT_STORE(0x70, r14) NAT_STORE(0x78, r15)
	"mov nat_state+0x110(%rip), %rsp\n"
	"pushfq\n"
	"popq nat_state+0x108(%rip)\n"
	"mov %ds, nat_state+0x128(%rip)\n"
	"mov %es, nat_state+0x12a(%rip)\n"
	"mov %gs, nat_state+0x12c(%rip)\n"
	"mov %ss, nat_state+0x12e(%rip)\n"
	"nat_restore:\n"
	"mov nat_state+0x120(%rip), %ds\n"
	"mov nat_state+0x122(%rip), %es\n"
	"mov nat_state+0x126(%rip), %ss\n"
	/* GS only if it changed: loading it resets the GS base to its descriptor's. */
	"mov %gs, %eax\n"
	"cmpw nat_state+0x124(%rip), %ax\n"
	"je 1f\n"
	"mov nat_state+0x124(%rip), %gs\n"
	"1:\n"
	/* The host's flags (DF clear too): a popf under test may have left AC, NT or ID set. */
	"pushq $0x202\n"
	"popfq\n"
	"pop %r15\n" "pop %r14\n" "pop %r13\n" "pop %r12\n" "pop %rbp\n" "pop %rbx\n"
	"ret\n"
	".size nat_run, .-nat_run\n"
	".globl nat_fault\n"
	"nat_fault:\n"
	"mov nat_state+0x110(%rip), %rsp\n"
	"jmp nat_restore\n");
/* clang-format on */

static u8 *nat_page; /* RWX: the instruction, then `jmp *nat_back` */
static volatile sig_atomic_t nat_signo;
static volatile u64 nat_fault_addr;    /* si_addr of the last signal */
static u64 nat_fault_gpr[EMU_NR_GPRS]; /* the registers at it: a rep string's are part done */
static u64 nat_trapno, nat_err;	       /* its vector and error code */

static void nat_on_signal(int sig, siginfo_t *si, void *ctx)
{
	/* ucontext's order (sys/ucontext.h REG_*) to the encoding's. */
	static const int reg_of[EMU_NR_GPRS] = { REG_RAX, REG_RCX, REG_RDX, REG_RBX,
						 REG_RSP, REG_RBP, REG_RSI, REG_RDI,
						 REG_R8,  REG_R9,  REG_R10, REG_R11,
						 REG_R12, REG_R13, REG_R14, REG_R15 };
	ucontext_t *uc = ctx;
	u64 rip = (u64)uc->uc_mcontext.gregs[REG_RIP];

	if (rip < (u64)(uintptr_t)nat_page || rip >= (u64)(uintptr_t)nat_page + PAGE_SIZE)
		abort(); /* not the instruction under test: a real crash */
	nat_fault_addr = (u64)(uintptr_t)si->si_addr;
	nat_trapno = (u64)uc->uc_mcontext.gregs[REG_TRAPNO];
	nat_err = (u64)uc->uc_mcontext.gregs[REG_ERR];
	for (unsigned i = 0; i < EMU_NR_GPRS; i++)
		nat_fault_gpr[i] = (u64)uc->uc_mcontext.gregs[reg_of[i]];
	nat_signo = sig;
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)nat_fault;
}

/* Run code[0..n) natively at nat_page; 0, or the signal it raised. */
static inline int nat_exec(const u8 *code, unsigned n)
{
	/* jmp *disp32(%rip) to an aligned pointer: with AC set (a popf) a misaligned one is #AC */
	unsigned at = (n + 6 + 7) & ~7u;
	u32 disp = at - (n + 6);
	u64 back = (u64)(uintptr_t)nat_back;

	memcpy(nat_page, code, n);
	nat_page[n] = 0xff;
	nat_page[n + 1] = 0x25;
	memcpy(nat_page + n + 2, &disp, 4);
	memcpy(nat_page + at, &back, 8);
	nat_state.code = (u64)(uintptr_t)nat_page;
	nat_signo = 0;
	nat_run();
	return nat_signo;
}

/* The handlers nat_catch installed, for nat_release. */
struct nat_catch {
	struct sigaction old[3];
	stack_t old_alt;
	void *alt;
};

static const int nat_sigs[3] = { SIGILL, SIGSEGV, SIGBUS };

/*
 * Catch what an instruction raises, on an alternate stack (its RSP may be
 * anything): SIGILL, SIGSEGV, SIGBUS. ASan's handlers come back with
 * nat_release.
 */
static inline void nat_catch(struct nat_catch *c)
{
	struct sigaction sa = { .sa_sigaction = nat_on_signal,
				.sa_flags = SA_SIGINFO | SA_ONSTACK };
	stack_t alt = { .ss_size = 1 << 16 };

	c->alt = alt.ss_sp = malloc(alt.ss_size);
	assert_non_null(alt.ss_sp);
	assert_int_equal(sigaltstack(&alt, &c->old_alt), 0);
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(sigaction(nat_sigs[i], &sa, &c->old[i]), 0);
}

static inline void nat_release(struct nat_catch *c)
{
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(sigaction(nat_sigs[i], &c->old[i], NULL), 0);
	assert_int_equal(sigaltstack(&c->old_alt, NULL), 0);
	free(c->alt);
}

/*
 * Whether "the host CPU" is QEMU's TCG (a nested rig, README "Without
 * /dev/kvm"): an emulator itself, which is no oracle for every corner (it
 * checks a mov to CS as a load of CS, refuses 66 before cmpxchg8b, where
 * hardware raises #UD and runs it, and reads a far jmp's REX.W operand as
 * m16:64 also as an AMD CPU).
 */
static inline bool nat_cpu_is_tcg(void)
{
	unsigned a, b, c, d;
	char sig[12];

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false; /* no hypervisor */
	__cpuid(0x40000000, a, b, c, d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	return !memcmp(sig, "TCGTCGTCGTCG", 12);
}

/* Whether the host CPU is AMD's or Hygon's (CPUID 0's vendor, as vmm/vcpu.c reads it). */
static inline bool nat_cpu_is_amd(void)
{
	unsigned a, b, c, d;
	char vendor[12];

	__cpuid(0, a, b, c, d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	return !memcmp(vendor, "AuthenticAMD", 12) || !memcmp(vendor, "HygonGenuine", 12);
}

/*
 * `code` as hex bytes ("f0 48 01 07") at out, for a failure message; the
 * characters written (at most len - 1).
 */
static inline int nat_bytes(char *out, size_t len, const u8 *code, unsigned n)
{
	int used = 0;

	for (unsigned i = 0; i < n && used < (int)len - 3; i++)
		used += snprintf(out + used, len - (size_t)used, "%s%02x", i ? " " : "", code[i]);
	return used;
}

/* The vectors a signal can come from (Linux, arch/x86/kernel/traps.c). */
static inline bool nat_signal_matches(int sig, unsigned vector)
{
	switch (sig) {
	case SIGILL: return vector == X86_EXC_UD;
	case SIGSEGV: return vector == X86_EXC_GP || vector == X86_EXC_PF;
	case SIGBUS: return vector == X86_EXC_NP || vector == X86_EXC_SS || vector == X86_EXC_AC;
	default: return false;
	}
}

#endif /* UMBRA_TESTS_NATIVE_RUN_H */
