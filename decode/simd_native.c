// SPDX-License-Identifier: MIT
/*
 * The native step of hw mode's SIMD fallback (decode/emulate_simd.c): run
 * one rewritten SSE/AVX/MMX instruction on the host CPU with the guest's
 * general registers, arithmetic flags and x87/SSE/AVX state loaded, then
 * read them all back. KVM's own emulator does the same for the SSE moves it
 * knows (its "fastop" and get/put_fpu paths run them on host registers).
 *
 * The stub below is the only code that may run between loading the guest's
 * vector state and saving it again: the compiler uses SSE registers freely
 * (memcpy, struct copies), so no C may run in that window. The host's own
 * state of the same components (sn->rfbm) is saved and restored around it.
 *
 * A fault of the instruction (a misaligned movdqa, an unmasked SIMD
 * exception, an instruction the host lacks) arrives as a signal; the
 * handlers installed around the step turn it into a guest exception through
 * siglongjmp, and the host state is then restored by simd_host_restore().
 */
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "decode/simd_native.h"

/* The stub's view of struct simd_native: the offsets written in its code. */
#define SN_GPR	  0
#define SN_RFLAGS 128
#define SN_CODE	  136
#define SN_GUEST  144
#define SN_HOST	  152
#define SN_RFBM	  160
_Static_assert(offsetof(struct simd_native, gpr) == SN_GPR, "stub offsets");
_Static_assert(offsetof(struct simd_native, rflags) == SN_RFLAGS, "stub offsets");
_Static_assert(offsetof(struct simd_native, code) == SN_CODE, "stub offsets");
_Static_assert(offsetof(struct simd_native, guest_area) == SN_GUEST, "stub offsets");
_Static_assert(offsetof(struct simd_native, host_area) == SN_HOST, "stub offsets");
_Static_assert(offsetof(struct simd_native, rfbm) == SN_RFBM, "stub offsets");

void umbra_simd_native_run(struct simd_native *sn);
void umbra_simd_host_restore(void *host_area, u64 rfbm);

/*
 * RSP (gpr[4]) is never loaded: the instruction runs on the host's stack,
 * and its memory operand was rewritten to a register that holds the address
 * of the VMM's copy. The arithmetic flags (0x8d5) are the guest's; DF, IF
 * and the rest stay the host's. Nothing between popfq and the instruction,
 * or between the instruction and pushfq, changes the flags.
 */
/* clang-format off */
__asm__(
	".text\n"
	".globl umbra_simd_native_run\n"
	".type umbra_simd_native_run, @function\n"
	"umbra_simd_native_run:\n"
	"	push %rbp\n"
	"	push %rbx\n"
	"	push %r12\n"
	"	push %r13\n"
	"	push %r14\n"
	"	push %r15\n"
	"	push %rdi\n"			/* the context */
	"	mov 160(%rdi), %eax\n"		/* RFBM, EDX:EAX */
	"	mov 164(%rdi), %edx\n"
	"	mov 152(%rdi), %rcx\n"
	"	xsave64 (%rcx)\n"		/* the host's state out */
	"	mov 144(%rdi), %rcx\n"
	"	xrstor64 (%rcx)\n"		/* the guest's in */
	"	pushfq\n"
	"	pop %rax\n"
	"	and $~0x8d5, %rax\n"
	"	mov 128(%rdi), %rcx\n"
	"	and $0x8d5, %rcx\n"
	"	or %rcx, %rax\n"
	"	push 136(%rdi)\n"		/* the code address */
	"	push %rax\n"			/* the flags to run with */
	"	mov 8(%rdi), %rcx\n"
	"	mov 16(%rdi), %rdx\n"
	"	mov 24(%rdi), %rbx\n"
	"	mov 40(%rdi), %rbp\n"
	"	mov 48(%rdi), %rsi\n"
	"	mov 64(%rdi), %r8\n"
	"	mov 72(%rdi), %r9\n"
	"	mov 80(%rdi), %r10\n"
	"	mov 88(%rdi), %r11\n"
	"	mov 96(%rdi), %r12\n"
	"	mov 104(%rdi), %r13\n"
	"	mov 112(%rdi), %r14\n"
	"	mov 120(%rdi), %r15\n"
	"	mov 0(%rdi), %rax\n"
	"	mov 56(%rdi), %rdi\n"
	"	popfq\n"
	"	call *(%rsp)\n"			/* the instruction, then ret */
	"	pushfq\n"
	"	push %rdi\n"			/* RDI at 0, flags at 8, code at 16, context at 24 */
	"	mov 24(%rsp), %rdi\n"
	"	mov %rax, 0(%rdi)\n"
	"	mov %rcx, 8(%rdi)\n"
	"	mov %rdx, 16(%rdi)\n"
	"	mov %rbx, 24(%rdi)\n"
	"	mov %rbp, 40(%rdi)\n"
	"	mov %rsi, 48(%rdi)\n"
	"	mov %r8, 64(%rdi)\n"
	"	mov %r9, 72(%rdi)\n"
	"	mov %r10, 80(%rdi)\n"
	"	mov %r11, 88(%rdi)\n"
	"	mov %r12, 96(%rdi)\n"
	"	mov %r13, 104(%rdi)\n"
	"	mov %r14, 112(%rdi)\n"
	"	mov %r15, 120(%rdi)\n"
	"	pop %rax\n"
	"	mov %rax, 56(%rdi)\n"
	"	pop %rax\n"
	"	mov %rax, 128(%rdi)\n"
	"	mov 160(%rdi), %eax\n"
	"	mov 164(%rdi), %edx\n"
	"	mov 144(%rdi), %rcx\n"
	"	xsave64 (%rcx)\n"		/* the guest's state out */
	"	mov 152(%rdi), %rcx\n"
	"	xrstor64 (%rcx)\n"		/* the host's back */
	"	add $8, %rsp\n"
	"	pop %rdi\n"
	"	pop %r15\n"
	"	pop %r14\n"
	"	pop %r13\n"
	"	pop %r12\n"
	"	pop %rbx\n"
	"	pop %rbp\n"
	"	ret\n"
	".size umbra_simd_native_run, . - umbra_simd_native_run\n"
	"\n"
	".globl umbra_simd_host_restore\n"
	".type umbra_simd_host_restore, @function\n"
	"umbra_simd_host_restore:\n"		/* (area, rfbm) */
	"	mov %esi, %eax\n"
	"	shr $32, %rsi\n"
	"	mov %esi, %edx\n"
	"	xrstor64 (%rdi)\n"
	"	ret\n"
	".size umbra_simd_host_restore, . - umbra_simd_host_restore\n");
/* clang-format on */

/*
 * The instruction copy: one page of a memfd mapped twice, writable at
 * code_rw and executable at code_rx, so that no mapping is ever writable
 * and executable and a step makes no system call to fill it.
 */
static u8 *code_rw, *code_rx;

static bool code_init(void)
{
	void *rw, *rx;
	int fd;

	if (code_rx)
		return true;
	fd = memfd_create("umbra-simd", MFD_CLOEXEC);
	if (fd < 0)
		return false;
	if (ftruncate(fd, 4096)) {
		close(fd);
		return false;
	}
	rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	rx = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	close(fd);
	if (rw == MAP_FAILED || rx == MAP_FAILED) {
		if (rw != MAP_FAILED)
			munmap(rw, 4096);
		if (rx != MAP_FAILED)
			munmap(rx, 4096);
		return false;
	}
	code_rw = rw;
	code_rx = rx;
	return true;
}

/*
 * A fault of the instruction arrives as one of these signals, and the
 * handler jumps out of it (SA_NODEFER leaves the signal unblocked, so no
 * signal mask needs saving). Outside a step the handler passes the signal
 * on to the action it replaced, so others' handlers (the sanitizers') and
 * the default actions still work.
 *
 * By default the handlers are installed around each step and the previous
 * actions put back after it: 8 system calls, most of a step's cost. A
 * process that knows nobody will replace them later (the VMM) calls
 * simd_native_keep_handlers() and they stay.
 */
static const int fault_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
#define NSIG_FAULT (sizeof(fault_signals) / sizeof(fault_signals[0]))

static struct sigaction chained[NSIG_FAULT];
static bool kept;
static volatile sig_atomic_t in_step;
/* One vCPU per process; the step is not reentrant. */
static sigjmp_buf fault_jmp;

static void on_fault(int sig, siginfo_t *info, void *uc)
{
	if (in_step) {
		in_step = 0;
		siglongjmp(fault_jmp, sig);
	}
	for (unsigned i = 0; i < NSIG_FAULT; i++) {
		const struct sigaction *p = &chained[i];

		if (fault_signals[i] != sig)
			continue;
		if (p->sa_flags & SA_RESETHAND) {
			/* What the kernel would have done before calling it (vmm/console.c relies
			 * on it). */
			struct sigaction dfl;

			memset(&dfl, 0, sizeof(dfl));
			dfl.sa_handler = SIG_DFL;
			sigaction(sig, &dfl, NULL);
		}
		if (p->sa_flags & SA_SIGINFO) {
			p->sa_sigaction(sig, info, uc);
		} else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
			p->sa_handler(sig);
		} else {
			/* The default action: put it back; the fault happens again, without us. */
			struct sigaction dfl = *p;

			dfl.sa_handler = SIG_DFL;
			sigaction(sig, &dfl, NULL);
		}
		return;
	}
}

static void handlers_install(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < NSIG_FAULT; i++) {
		struct sigaction prev;

		if (sigaction(fault_signals[i], &sa, &prev))
			continue;
		if (old)
			old[i] = prev;
		/* Installing twice must not chain us to ourselves. */
		if (!((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction == on_fault))
			chained[i] = prev;
	}
}

void simd_native_keep_handlers(void)
{
	handlers_install(NULL);
	kept = true;
}

u64 simd_host_xcr0(void)
{
	u32 lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((u64)hi << 32) | lo;
}

int simd_native_step(struct simd_native *sn, const u8 *insn, unsigned len)
{
	struct sigaction old[NSIG_FAULT];
	volatile int sig;

	if (len + 1 > 64 || !code_init())
		return -1;
	memcpy(code_rw, insn, len);
	code_rw[len] = 0xc3; /* ret */
	sn->code = (u64)(uintptr_t)code_rx;

	if (!kept)
		handlers_install(old);
	sig = sigsetjmp(fault_jmp, 0);
	if (!sig) {
		in_step = 1;
		umbra_simd_native_run(sn);
		in_step = 0;
	} else {
		umbra_simd_host_restore(sn->host_area, sn->rfbm);
	}
	if (!kept)
		for (unsigned i = 0; i < NSIG_FAULT; i++)
			sigaction(fault_signals[i], &old[i], NULL);
	return sig;
}
