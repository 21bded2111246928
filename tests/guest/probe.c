// SPDX-License-Identifier: MIT
/*
 * A guest program for test_linux's probe test (tests/integration/test_linux.c):
 * what a Linux process may do that a VMM must get exactly right, each
 * printed as one line "probe-NAME: ok" (or what was seen instead).
 *
 *   step          PTRACE_SINGLESTEP through 8 instructions right after a
 *                 syscall takes 8 steps (a lost or extra #DB, or a DR6
 *                 without BS, shows here)
 *   step-io       one step over an `out` that the VMM emulates (shadow
 *                 mode: a #GP trap) stops right after it
 *   ioperm        in/out and rep outsb/insb on the UART's scratch register
 *                 (port 0x3ff) after ioperm(); a port it did not allow
 *                 raises SIGSEGV
 *   faults        a process's own faults on instructions no VMM emulates
 *                 reach it as signals, as on hardware: a misaligned movdqa
 *                 and a non-canonical movups (#GP: SIGSEGV), an undefined
 *                 opcode (#UD: SIGILL). Shadow mode stopped the whole VM
 *                 ("not emulated") before session 25.
 *   tsc           prctl(PR_SET_TSC, PR_TSC_SIGSEGV): rdtsc and rdtscp raise
 *                 SIGSEGV, while the kernel's own clock (a clock_gettime
 *                 syscall, whose kvmclock read is an rdtsc) still runs and
 *                 moves forward; PR_TSC_ENABLE: rdtsc works again. Linux sets
 *                 CR4.TSD for that task; shadow mode mirrors it into the
 *                 real CR4 on VMX/SVM hosts (a LIMITATION on PVM, where CPL3
 *                 runs on the host's CR4: "probe-tsc: rdtsc did not fault").
 *   hwbp          hardware breakpoints through perf_event_open: a write
 *                 watchpoint, an instruction breakpoint in user code, one
 *                 in the kernel's getppid, and a watchpoint the kernel's
 *                 put_user fires each count exactly the events made
 *                 (shadow mode arms the guest's DR0-DR7 in the real vCPU
 *                 since session 27; before, they never fired)
 *   cpunode       `lsl` of Linux's per-CPU segment (0x7b), the vDSO's getcpu
 *                 on CPUs without RDPID, gives the CPU the getcpu syscall
 *                 does (shadow mode copies that descriptor into the real
 *                 GDT; on PVM, CPL3 reads the host's own entry: LIMITATION)
 *
 * Static, built by the Makefile (build/probe/probe64) and packed into a copy
 * of the guest's initramfs by the test.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/io.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCR_PORT 0x3ff /* COM1's scratch register: reads back what was written */

extern const char step_start[], step_end[], io_start[], io_end[];

/*
 * The child's code: stop for the tracer with a kill(getpid(), SIGSTOP)
 * syscall right before the first measured block, so that the first step is
 * the one after a return from a syscall (where Linux's #DB handler needs
 * DR6.BS), then the block over an `out`.
 */
static void traced_child(void)
{
	ptrace(PTRACE_TRACEME, 0, 0, 0);
	__asm__ volatile("syscall\n"
			 ".globl step_start\n"
			 "step_start:\n\t"
			 "nop\n\t"
			 "mov %%eax, %%eax\n\t"
			 "inc %%ecx\n\t"
			 "dec %%ecx\n\t"
			 "xchg %%ax, %%ax\n\t"
			 "lea 1(%%rdx), %%rdx\n\t"
			 "nop\n\t"
			 "nop\n"
			 ".globl step_end\n"
			 "step_end:\n\t"
			 "nop\n"
			 :
			 : "a"(SYS_kill), "D"(getpid()), "S"(SIGSTOP)
			 : "rcx", "rdx", "r11", "cc", "memory");
	if (ioperm(0x80, 1, 1) == 0)
		__asm__ volatile(".globl io_start\n"
				 "io_start:\n\t"
				 "outb %%al, $0x80\n"
				 ".globl io_end\n"
				 "io_end:\n\t"
				 "nop\n" ::"a"(0));
	_exit(0);
}

/* Single-step the child from `from` until `to`: the number of steps, or -1. */
static long steps_between(pid_t pid, uintptr_t from, uintptr_t to)
{
	long n = -1;
	int st;

	for (long i = 0; i < 1000000; i++) {
		struct user_regs_struct r;

		if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
			return -1;
		if (r.rip == from)
			n = 0;
		else if (n >= 0)
			n++;
		if (r.rip == to)
			return n;
		if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) < 0 || waitpid(pid, &st, 0) < 0 ||
		    !WIFSTOPPED(st))
			return -1;
	}
	return -1;
}

static void probe_steps(void)
{
	pid_t pid = fork();
	long a, b;
	int st;

	if (pid == 0)
		traced_child();
	waitpid(pid, &st, 0);
	a = steps_between(pid, (uintptr_t)step_start, (uintptr_t)step_end);
	/* The child's ioperm succeeds where ours does (the same kernel, root). */
	b = ioperm(0x80, 1, 1) ? -2 : steps_between(pid, (uintptr_t)io_start, (uintptr_t)io_end);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (a == 8)
		printf("probe-step: ok\n");
	else
		printf("probe-step: %ld steps for 8 instructions\n", a);
	if (b == 1)
		printf("probe-step-io: ok\n");
	else if (b == -2)
		printf("probe-step-io: ioperm: %s\n", strerror(errno));
	else
		printf("probe-step-io: %ld steps for 1 instruction\n", b);
}

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

static void probe_ioperm(void)
{
	static const char msg[] = "abc";
	unsigned char back[2] = { 0 }, v;
	const char *src = msg;
	unsigned char *dst = back;
	unsigned long n;
	volatile int segv = 0;

	if (ioperm(SCR_PORT, 1, 1)) {
		printf("probe-ioperm: ioperm: %s\n", strerror(errno));
		return;
	}
	outb(0x5a, SCR_PORT);
	v = inb(SCR_PORT);
	n = 3;
	__asm__ volatile("rep outsb" : "+S"(src), "+c"(n) : "d"(SCR_PORT) : "memory");
	n = 2;
	__asm__ volatile("rep insb" : "+D"(dst), "+c"(n) : "d"(SCR_PORT) : "memory");
	signal(SIGSEGV, on_segv);
	if (!sigsetjmp(segv_jmp, 1))
		outb(0, SCR_PORT - 1); /* the line status register: not allowed */
	else
		segv = 1;
	signal(SIGSEGV, SIG_DFL);
	if (v == 0x5a && src == msg + 3 && back[0] == 'c' && back[1] == 'c' && dst == back + 2 &&
	    segv)
		printf("probe-ioperm: ok\n");
	else
		printf("probe-ioperm: read 0x%02x, outs %td, ins %02x %02x, denied port %s\n", v,
		       src - msg, back[0], back[1], segv ? "faulted" : "did not fault");
}

static volatile int fault_sig, fault_code;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	fault_sig = sig;
	fault_code = si->si_code;
	siglongjmp(segv_jmp, 1);
}

/* Run one faulting instruction (by number); "SIGNO/CODE" of what it raised into buf. */
static void fault_of(int which, char *buf, size_t len)
{
	static char data[64] __attribute__((aligned(16)));
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	fault_sig = 0;
	if (!sigsetjmp(segv_jmp, 1)) {
		if (which == 0) /* movdqa from an address not 16-byte aligned: #GP(0) */
			__asm__ volatile("movdqa (%0),%%xmm0" ::"r"(data + 4) : "xmm0");
		else if (which == 1) /* movups from a non-canonical address: #GP(0) */
			__asm__ volatile("movups (%0),%%xmm0" ::"r"(0x8000000000000000ull)
					 : "xmm0");
		else /* 0f 04: no instruction in 64-bit mode, #UD */
			__asm__ volatile(".byte 0x0f, 0x04");
	}
	signal(SIGSEGV, SIG_DFL);
	signal(SIGILL, SIG_DFL);
	snprintf(buf, len, "%d/%d", fault_sig, fault_code);
}

static void probe_faults(void)
{
	char a[16], b[16], c[16], want_gp[16], want_ud[16];

	fault_of(0, a, sizeof(a));
	fault_of(1, b, sizeof(b));
	fault_of(2, c, sizeof(c));
	snprintf(want_gp, sizeof(want_gp), "%d/%d", SIGSEGV, SI_KERNEL);
	snprintf(want_ud, sizeof(want_ud), "%d/%d", SIGILL, ILL_ILLOPN);
	if (!strcmp(a, want_gp) && !strcmp(b, want_gp) && !strcmp(c, want_ud))
		printf("probe-faults: ok\n");
	else
		printf("probe-faults: movdqa %s, movups %s, 0f 04 %s (signal/si_code; want %s %s "
		       "%s)\n",
		       a, b, c, want_gp, want_gp, want_ud);
}

static unsigned long long rdtsc_now(int which)
{
	unsigned lo, hi, aux;

	if (which)
		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
	else
		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (unsigned long long)hi << 32 | lo;
}

static void probe_tsc(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };
	volatile int faults = 0;
	struct timespec t[4];
	unsigned long long before = rdtsc_now(0), after;
	volatile int mono = 1;

	if (prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0)) {
		printf("probe-tsc: PR_SET_TSC: %s\n", strerror(errno));
		return;
	}
	sigaction(SIGSEGV, &sa, NULL);
	for (int which = 0; which < 2; which++)
		if (sigsetjmp(segv_jmp, 1))
			faults++;
		else
			rdtsc_now(which);
	signal(SIGSEGV, SIG_DFL);
	for (int i = 0; i < 4; i++) {
		syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t[i]);
		if (i && (t[i].tv_sec < t[i - 1].tv_sec ||
			  (t[i].tv_sec == t[i - 1].tv_sec && t[i].tv_nsec < t[i - 1].tv_nsec)))
			mono = 0;
	}
	prctl(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0);
	after = rdtsc_now(0);
	if (faults == 2 && mono && after > before)
		printf("probe-tsc: ok\n");
	else if (faults == 0 && mono && after > before)
		printf("probe-tsc: rdtsc did not fault\n");
	else
		printf("probe-tsc: %d of 2 faulted, kernel clock %s, TSC %s\n", faults,
		       mono ? "monotonic" : "went back", after > before ? "moved" : "did not move");
}

static void probe_cpunode(void)
{
	unsigned limit = 0, cpu = ~0u;
	unsigned char ok;

	__asm__ volatile("lsl %2,%0; setz %1" : "=r"(limit), "=q"(ok) : "r"(0x7bu));
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	if (ok && (limit & 0xfff) == cpu)
		printf("probe-cpunode: ok\n");
	else if (!ok)
		printf("probe-cpunode: lsl failed (getcpu %u)\n", cpu);
	else
		printf("probe-cpunode: lsl says cpu %u, getcpu %u\n", limit & 0xfff, cpu);
}

/* ---- hwbp ---------------------------------------------------------------- */

static volatile int watched;

__attribute__((noinline)) static int bp_target(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

/* A counting hardware breakpoint on this process (perf_event_open), or -1. */
static int hw_breakpoint(unsigned type, unsigned long addr, unsigned len, int exclude_kernel)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_BREAKPOINT;
	a.size = sizeof(a);
	a.bp_type = type;
	a.bp_addr = addr;
	a.bp_len = len;
	a.exclude_kernel = exclude_kernel;
	a.exclude_hv = 1;
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static long long count_of(int fd)
{
	long long n = -1;

	if (fd < 0 || read(fd, &n, sizeof(n)) != sizeof(n))
		return -1;
	close(fd);
	return n;
}

/* The address of a kernel symbol from /proc/kallsyms (0: not found). */
static unsigned long kernel_symbol(const char *name)
{
	char line[256], sym[200];
	unsigned long addr = 0, a;
	char t;
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx %c %199s", &a, &t, sym) == 3 && !strcmp(sym, name)) {
			addr = a;
			break;
		}
	fclose(f);
	return addr;
}

/*
 * Hardware breakpoints through perf, as gdb's watchpoints and `perf record
 * -e mem:` use them: a write watchpoint on a variable, an instruction
 * breakpoint on a user function (its #DB is a fault: the kernel returns
 * with RF set to run the instruction once), and an instruction breakpoint
 * on the kernel's getppid (the guest kernel's own #DB, and its iretq with
 * RF), and a watchpoint on a user variable that the kernel writes
 * (getresuid's put_user: a #DB in the guest kernel). Each must count
 * exactly the events made.
 */
static void probe_hwbp(void)
{
	unsigned long sys_getppid = kernel_symbol("__x64_sys_getppid");
	int wfd, xfd, kfd, kwfd;
	long long w, x, k, kw;
	int sum = 0;
	static unsigned ruid, euid, suid;

	wfd = hw_breakpoint(HW_BREAKPOINT_W, (unsigned long)&watched, HW_BREAKPOINT_LEN_4, 1);
	if (wfd < 0) {
		printf("probe-hwbp: perf_event_open: %s\n", strerror(errno));
		return;
	}
	for (int i = 0; i < 100; i++)
		watched = i;
	w = count_of(wfd);
	xfd = hw_breakpoint(HW_BREAKPOINT_X, (unsigned long)bp_target, sizeof(long), 1);
	for (int i = 0; i < 50; i++)
		sum = bp_target(sum);
	x = count_of(xfd);
	kfd = sys_getppid ? hw_breakpoint(HW_BREAKPOINT_X, sys_getppid, sizeof(long), 0) : -1;
	for (int i = 0; i < 30; i++)
		syscall(SYS_getppid);
	k = count_of(kfd);
	/* The kernel's own store: getresuid's put_user of the effective uid, one a call. */
	kwfd = hw_breakpoint(HW_BREAKPOINT_W, (unsigned long)&euid, HW_BREAKPOINT_LEN_4, 0);
	for (int i = 0; i < 20; i++)
		syscall(SYS_getresuid, &ruid, &euid, &suid);
	kw = count_of(kwfd);
	if (w == 100 && x == 50 && sum == 50 && k == 30 && kw == 20)
		printf("probe-hwbp: ok\n");
	else
		printf("probe-hwbp: write watchpoint %lld of 100, user breakpoint %lld of 50, "
		       "kernel breakpoint %lld of 30%s, kernel store %lld of 20\n",
		       w, x, k, sys_getppid ? "" : " (no __x64_sys_getppid)", kw);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	probe_steps();
	probe_ioperm();
	probe_faults();
	probe_tsc();
	probe_cpunode();
	probe_hwbp();
	return 0;
}
