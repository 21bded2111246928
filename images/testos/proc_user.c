/* SPDX-License-Identifier: MIT */
/*
 * User programs of the process model, run at CPL3 in their own address
 * spaces (proc.h). Everything here is in the section "utext", which the
 * kernel copies into frames that each process maps at PROC_CODE_VA, so this
 * code must be position independent and self-contained: it may call only
 * functions of this file (relative calls), use only its stack, its
 * arguments and memory from mmap, and must not refer to any kernel symbol,
 * string literal or other data (no switch jump tables, no memcpy/memset:
 * the loops below use volatile pointers so the compiler cannot turn them
 * into library calls). images/Makefile checks that utext has no
 * relocation against anything outside itself.
 * System calls go through `int3` (why: proc.h); u_int80 uses `int $0x80`.
 */
#include <stdint.h>

#include "proc.h"
#include "proc_user.h"

#define USER	__attribute__((section("utext"), noinline))
#define UINLINE static inline __attribute__((always_inline))

UINLINE uint64_t sc(uint64_t nr, uint64_t a0, uint64_t a1)
{
	uint64_t r;

	__asm__ volatile("int3"
			 : "=a"(r)
			 : "a"(nr), "D"(a0), "S"(a1)
			 : "rcx", "rdx", "r11", "memory");
	return r;
}

UINLINE __attribute__((noreturn)) void u_exit(uint64_t status)
{
	sc(SYS_PEXIT, status, 0);
	__builtin_unreachable();
}

UINLINE int64_t u_fork(void)
{
	return (int64_t)sc(SYS_FORK, 0, 0);
}

UINLINE int64_t u_wait(uint64_t *status)
{
	uint64_t r, st;

	__asm__ volatile("int3"
			 : "=a"(r), "=d"(st)
			 : "a"((uint64_t)SYS_WAIT)
			 : "rcx", "r11", "memory");
	*status = st;
	return (int64_t)r;
}

UINLINE uint64_t u_getpid(void)
{
	return sc(SYS_GETPID, 0, 0);
}

UINLINE volatile uint64_t *u_mmap(uint64_t len)
{
	return (volatile uint64_t *)sc(SYS_MMAP, len, 0);
}

UINLINE uint64_t rdtsc_u(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* A page of words tagged with @id (the tree test). */
UINLINE uint64_t tag(uint64_t id, uint64_t i)
{
	return 0x7e00000000000000ULL | (id << 16) | i;
}

USER static void fill(volatile uint64_t *p, uint64_t id)
{
	for (uint64_t i = 0; i < 512; i++)
		p[i] = tag(id, i);
}

USER static uint64_t mismatches(volatile uint64_t *p, uint64_t id)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < 512; i++)
		bad += p[i] != tag(id, i);
	return bad;
}

/* A child exits with 0x5a00 + its pid; the parent reports what wait returned. */
USER void u_fork_exit_wait(uint64_t a0, uint64_t a1)
{
	uint64_t st = 0, st2;
	int64_t pid, w;

	(void)a0;
	(void)a1;
	pid = u_fork();
	if (pid == 0) {
		sc(SYS_YIELD, 0, 0);
		u_exit(0x5a00 + u_getpid());
	}
	if (pid < 0)
		u_exit(0xe1);
	w = u_wait(&st);
	/* No child left: wait must say so at once. */
	if (u_wait(&st2) != -1)
		st |= 0x80000000;
	u_exit(((uint64_t)(w & 0x7fff) << 16) | (st & 0x8000ffff));
}

/*
 * COW: 4 pages written, fork; the parent writes word 0 of page 0, then lets
 * the child (send) write the same word; both check their own view. khook 0
 * (parent, after fork) and 1 (child, after both writes) let the kernel look
 * at the frames. Status: errors (0 = none) | child's status << 8.
 */
USER static uint64_t cow_check(volatile uint64_t *buf, uint64_t word0)
{
	uint64_t bad = buf[0] != word0;

	for (uint64_t i = 1; i < 512 * COW_PAGES; i++)
		bad += buf[i] != tag(0xc0, i);
	return bad;
}

USER void u_cow(uint64_t a0, uint64_t a1)
{
	volatile uint64_t *buf = u_mmap(COW_PAGES * 4096);
	uint64_t st = 0, bad;
	int64_t pid;

	(void)a0;
	(void)a1;
	for (uint64_t i = 0; i < 512 * COW_PAGES; i++)
		buf[i] = tag(0xc0, i);
	pid = u_fork();
	if (pid == 0) {
		sc(SYS_RECV, 0, 0); /* the parent has written */
		buf[0] = COW_CHILD;
		bad = cow_check(buf, COW_CHILD);
		sc(SYS_KHOOK, 1, (uint64_t)buf);
		u_exit(bad ? 0x80 | (bad & 0x7f) : 0x11);
	}
	if (pid < 0)
		u_exit(0xe1);
	sc(SYS_KHOOK, 0, (uint64_t)buf);
	buf[0] = COW_PARENT;
	bad = cow_check(buf, COW_PARENT);
	sc(SYS_SEND, (uint64_t)pid, 0);
	if (u_wait(&st) != pid)
		bad |= 0x40;
	bad |= cow_check(buf, COW_PARENT); /* still only its own write after the child's */
	u_exit((bad & 0xff) | (st & 0xff) << 8);
}

/*
 * A fork tree of depth @maxdepth and fan-out @fan. Each node checks that
 * page 0 of the buffer still holds its parent's pattern (the data at fork
 * time), writes its own pattern and checks it, checks that page 1 (written
 * only by the root) is intact, then forks its children: at depths 0 and 1
 * all at once, deeper one at a time (fork, wait), so at most
 * 1 + 4 + 16 + 16 + 16 = 53 processes are live. After its children it
 * checks its own page 0 again. Exit status: nodes in the subtree |
 * errors << 20; a parent adds its children's.
 */
USER void u_tree(uint64_t maxdepth, uint64_t fan)
{
	volatile uint64_t *buf = u_mmap(2 * 4096), *shared = buf + 512;
	uint64_t depth = 0, id = 0, parent_id = 0, err = 0, nodes, st;
	int64_t pid;

	fill(shared, 0xffff);
node:
	if (depth > 0 && mismatches(buf, parent_id))
		err |= 1;
	fill(buf, id);
	if (mismatches(buf, id))
		err |= 2;
	if (mismatches(shared, 0xffff))
		err |= 4;
	nodes = 1;
	if (depth < maxdepth) {
		uint64_t pending = 0;

		for (uint64_t c = 0; c < fan; c++) {
			pid = u_fork();
			if (pid == 0) {
				parent_id = id;
				id = id * fan + c + 1;
				depth++;
				err = 0;
				goto node;
			}
			if (pid < 0) {
				err |= 8;
				continue;
			}
			pending++;
			if (depth < 2 && c < fan - 1)
				continue; /* fork the next sibling first */
			for (; pending; pending--) {
				if (u_wait(&st) < 0) {
					err |= 16;
					continue;
				}
				nodes += st & 0xfffff;
				err |= st >> 20;
			}
		}
		for (; pending; pending--) /* only after a failed last fork */
			if (u_wait(&st) >= 0)
				nodes += st & 0xfffff, err |= st >> 20;
		if (mismatches(buf, id))
			err |= 32;
	}
	u_exit(nodes | err << 20);
}

/*
 * One of the 64: fill 4 pages from a per-process seed, then until the TSC
 * passes @deadline, verify the checksum of all 4 pages, change one word and
 * update the expected checksum. Status: rounds, or 0x80000000 | failures.
 */
USER void u_checksum(uint64_t deadline, uint64_t a1)
{
	volatile uint64_t *buf = u_mmap(4 * 4096);
	uint64_t pid = u_getpid(), x = pid * 0x9e3779b97f4a7c15ULL | 1, sum = 0, rounds = 0,
		 bad = 0;

	(void)a1;
	for (uint64_t i = 0; i < 2048; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = x;
		sum += x * (i + 1);
	}
	do {
		uint64_t s = 0, i = (rounds * 97) % 2048, d = pid + rounds;

		for (uint64_t j = 0; j < 2048; j++)
			s += buf[j] * (j + 1);
		if (s != sum)
			bad++;
		buf[i] += d;
		sum += d * (i + 1);
		rounds++;
	} while (rdtsc_u() < deadline);
	u_exit(bad ? 0x80000000 | (bad & 0xffff) : rounds & 0x7fffffff);
}

/*
 * mmap @len bytes, write a word on every page, verify every page (the word,
 * and another that must still be zero), report the failures with khook,
 * munmap, then write to the first page again: the process must die there.
 */
USER void u_mmap_demand(uint64_t len, uint64_t a1)
{
	volatile uint64_t *buf = u_mmap(len);
	uint64_t pages = len / 4096, bad = 0;

	(void)a1;
	if ((int64_t)buf == -1)
		u_exit(0xe1);
	for (uint64_t p = 0; p < pages; p++)
		buf[p * 512 + p % 512] = tag(0xd0, p);
	for (uint64_t p = 0; p < pages; p++) {
		bad += buf[p * 512 + p % 512] != tag(0xd0, p);
		bad += buf[p * 512 + (p + 256) % 512] != 0;
	}
	sc(SYS_KHOOK, bad, (uint64_t)buf);
	if (sc(SYS_MUNMAP, (uint64_t)buf, len) != 0)
		u_exit(0xe2);
	buf[0] = 1; /* unmapped: #PF, killed */
	u_exit(0xe3);
}

/*
 * A/D bits through demand faults (proc_fault_ad): of @pages fresh pages
 * every third is written, the others only read (zero); khook(errors) lets
 * the kernel check each PTE's A and D and returns the bad ones. Then a child
 * writes word 7 of every page (each a copy-on-write fault) and checks its
 * view; the parent checks that its own did not change. Status: the
 * parent's errors | the child's status << 8 (0: all well).
 */
USER void u_ad_touch(uint64_t pages, uint64_t a1)
{
	volatile uint64_t *buf = u_mmap(pages * 4096);
	uint64_t bad = 0, st = 0;
	int64_t pid;

	(void)a1;
	if ((int64_t)buf == -1)
		u_exit(0xe1);
	for (uint64_t p = 0; p < pages; p++) {
		if (p % 3 == 0)
			buf[p * 512 + p % 512] = tag(0xad, p);
		else
			bad += buf[p * 512 + p % 512] != 0;
	}
	bad += sc(SYS_KHOOK, bad, (uint64_t)buf);
	pid = u_fork();
	if (pid == 0) {
		uint64_t cb = 0;

		for (uint64_t p = 0; p < pages; p++)
			buf[p * 512 + 7] = tag(0xc1, p);
		for (uint64_t p = 0; p < pages; p++) {
			cb += buf[p * 512 + 7] != tag(0xc1, p);
			if (p % 3 == 0 && p % 512 != 7)
				cb += buf[p * 512 + p % 512] != tag(0xad, p);
		}
		u_exit(cb > 0x7f ? 0x7f : cb);
	}
	if (pid < 0)
		u_exit(0xe2);
	u_wait(&st);
	for (uint64_t p = 0; p < pages; p++) {
		bad += buf[p * 512 + p % 512] != (p % 3 == 0 ? tag(0xad, p) : 0);
		bad += p % 512 != 7 && buf[p * 512 + 7] != 0;
	}
	u_exit((bad > 0xff ? 0xff : bad) | (st & 0xffff) << 8);
}

/* "hello from pid N\n" built on the stack (no string constants in utext), written. */
USER void u_write(uint64_t a0, uint64_t a1)
{
	volatile char m[40];
	char digits[20];
	uint64_t n = 0, pid = u_getpid(), nd = 0, r, bad;

	(void)a0;
	(void)a1;
	m[n++] = 'h', m[n++] = 'e', m[n++] = 'l', m[n++] = 'l', m[n++] = 'o', m[n++] = ' ';
	m[n++] = 'f', m[n++] = 'r', m[n++] = 'o', m[n++] = 'm', m[n++] = ' ';
	m[n++] = 'p', m[n++] = 'i', m[n++] = 'd', m[n++] = ' ';
	do {
		digits[nd++] = '0' + pid % 10;
		pid /= 10;
	} while (pid);
	while (nd)
		m[n++] = digits[--nd];
	m[n++] = '\n';
	r = sc(SYS_WRITE, (uint64_t)m, n);
	/* A kernel address is refused. */
	bad = sc(SYS_WRITE, 0xffffffff80100000ULL, 4) != (uint64_t)-1;
	u_exit(r | bad << 31);
}

/* Workload fork: @iters times fork + child exit + wait; khook(cycles). */
USER void u_forkloop(uint64_t iters, uint64_t a1)
{
	uint64_t t0, st, bad = 0;

	(void)a1;
	t0 = rdtsc_u();
	for (uint64_t i = 0; i < iters; i++) {
		int64_t pid = u_fork();

		if (pid == 0)
			u_exit(i & 0xff);
		if (pid < 0 || u_wait(&st) != pid || st != (i & 0xff))
			bad++;
	}
	sc(SYS_KHOOK, rdtsc_u() - t0, 0);
	u_exit(bad);
}

/*
 * Workload pingpong: the parent and a forked child pass a token @iters
 * times each way (send + blocking recv): every round trip switches address
 * spaces twice. khook(cycles) from the parent.
 */
USER void u_pingpong(uint64_t iters, uint64_t a1)
{
	uint64_t me = u_getpid(), t0, st;
	int64_t pid;

	(void)a1;
	pid = u_fork();
	if (pid == 0) {
		for (uint64_t i = 0; i < iters; i++) {
			sc(SYS_RECV, 0, 0);
			sc(SYS_SEND, me, 0);
		}
		u_exit(0);
	}
	if (pid < 0)
		u_exit(0xe1);
	t0 = rdtsc_u();
	for (uint64_t i = 0; i < iters; i++) {
		sc(SYS_SEND, (uint64_t)pid, 0);
		sc(SYS_RECV, 0, 0);
	}
	sc(SYS_KHOOK, rdtsc_u() - t0, 0);
	u_exit(u_wait(&st) == pid ? st : 0xe2);
}

/* getpid and exit through `int $0x80` (the i386 Linux gate): exits with 0x8000 | pid. */
USER void u_int80(uint64_t a0, uint64_t a1)
{
	uint64_t pid;

	(void)a0;
	(void)a1;
	__asm__ volatile("int $0x80"
			 : "=a"(pid)
			 : "a"((uint64_t)SYS_GETPID)
			 : "rcx", "rdx", "r11", "memory");
	__asm__ volatile("int $0x80" : : "a"((uint64_t)SYS_PEXIT), "D"(0x8000 | pid) : "memory");
	__builtin_unreachable();
}
