// SPDX-License-Identifier: MIT
/*
 * The 32-bit guest program of test_linux's probe test: a static i386
 * process (its vDSO enters the kernel with `syscall` on AMD CPUs, `sysenter`
 * on Intel's) with thread-local storage through %gs, which must survive
 * context switches with another process; `int $0x80`; fork; threads.
 * Prints "probe32: ok" or what went wrong. Built with gcc -m32 where a
 * 32-bit toolchain is installed (build/probe/probe32).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static __thread int tls = 42;

static void *thread_main(void *arg)
{
	tls = 7; /* its own copy */
	return arg;
}

int main(void)
{
	unsigned short gs;
	long pid = -1;
	int st, bad = 0;
	pthread_t t;
	pid_t child;

	setvbuf(stdout, NULL, _IONBF, 0);
	__asm__ volatile("int $0x80" : "=a"(pid) : "a"(20)); /* getpid */
	if (pid != getpid())
		printf("probe32: int $0x80 getpid gave %ld\n"
		       "probe32: failed\n",
		       pid);
	/* Another process to switch to and from, trap-free in shadow mode. */
	child = fork();
	if (child == 0) {
		for (int i = 0; i < 2000; i++)
			sched_yield();
		_exit(tls == 42 ? 0 : 1);
	}
	for (int i = 0; i < 2000 && !bad; i++) {
		sched_yield();
		bad = tls != 42;
	}
	waitpid(child, &st, 0);
	pthread_create(&t, NULL, thread_main, NULL);
	pthread_join(t, NULL);
	__asm__ volatile("mov %%gs, %0" : "=r"(gs));
	if (!bad && tls == 42 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && pid == getpid() &&
	    (gs & ~3) != 0)
		printf("probe32: ok\n");
	else
		printf("probe32: tls %d (bad %d), child status 0x%x, gs 0x%x\n", tls, bad, st, gs);
	return 0;
}
