/* SPDX-License-Identifier: MIT */
/*
 * The process model: up to PROC_MAX user processes, each with its own
 * address space (own PML4; the kernel half is the shared PML4 slots 256-511
 * copied by as_create()), preemptive round-robin on the LAPIC timer, fork
 * with copy-on-write, exit/wait, anonymous mmap/munmap with demand paging,
 * and a console write.
 *
 * Design (kept small on purpose):
 *   - The kernel never blocks in the middle of a system call. A process's
 *     whole context is its saved user trap frame (struct trap_frame), so all
 *     processes share one kernel stack (TSS.RSP0 = the trap stack of gdt.c);
 *     a switch copies the running frame out and the next one in, and loads
 *     CR3. Blocking calls (wait, recv) save the frame and switch; whoever
 *     wakes the process writes its return registers into its saved frame.
 *   - proc_run() is the scheduler loop on the calling kernel thread (a test
 *     or a workload): it enters the first runnable process by iretq through
 *     its frame and returns when every process has exited. When nothing is
 *     runnable the trap handler resumes the loop, which idles with sti; hlt
 *     until the timer (or reports a deadlock).
 *   - The timer interrupt (100 Hz) preempts a process at CPL3: the running
 *     process goes to the back of the round robin.
 *   - User programs are C functions in proc_user.c placed in the section
 *     "utext" (position independent: they only reference their own section,
 *     their stack and the memory the kernel gives them; checked when the
 *     image is built, see images/Makefile). The section's bytes are copied
 *     once into kernel-owned frames that every process maps read-only and
 *     executable at PROC_CODE_VA (never copied on fork, never freed).
 *   - Every process's user memory is in the first GiB (one PML4 and one PDPT
 *     entry), described by a few VMAs: the code, a demand-paged stack and
 *     the mmap areas. fork copies the page tables (never shares them) by
 *     walking the VMAs, and marks writable pages read-only + PTE_COW in both
 *     processes; the frames' reference counts live in a side table indexed
 *     by frame number. A write to a COW page copies it unless the writer
 *     holds the last reference.
 *   - A user fault the kernel does not resolve kills the process with status
 *     PROC_KILLED | vector.
 *
 * System calls: RAX = number, RDI/RSI = arguments; RAX = result (wait also
 * returns the status in RDX). The kernel takes the same numbers from three
 * entries: the `syscall` instruction (LSTAR, user.c), `int $0x80` (a DPL3
 * interrupt gate, the i386 Linux ABI) and `int3` (#BP, whose gate is made
 * DPL3 while proc_run() runs; a trap, so RIP is already past it). The user
 * stubs (proc_user.c) use `int3`, because on our hosts (KVM from kvm_pvm,
 * shared/HOST.md) in hw mode:
 *   - `syscall` from CPL3 arrives at LSTAR still at CPL3 and faults, which
 *     the VMM cannot repair in hw mode;
 *   - `int $0x80` (and `int $0x81`, any `int n` tried) from CPL3 raises #UD
 *     at the instruction instead of going through the DPL3 gate (test
 *     proc_int80, left out of the hw-mode run of make check);
 *   - exceptions from CPL3 are delivered exactly, and `int3` through a DPL3
 *     gate is an ordinary #BP trap, so it works as a system call gate.
 * On a host where `int $0x80` works, switching the stubs to it is a
 * one-line change (sc() and u_wait() in proc_user.c).
 */
#ifndef TESTOS_PROC_H
#define TESTOS_PROC_H

#include <stdint.h>

#include "trap.h"

#define PROC_MAX 64

/* System call numbers (0 and 1 are user.h's SYS_EXIT and SYS_PROBE). */
#define SYS_PEXIT  0  /* exit(status): status & 0xffffffff goes to the parent */
#define SYS_WRITE  2  /* write(buf, len) -> len, or -1 for a bad buffer */
#define SYS_GETPID 3  /* getpid() */
#define SYS_YIELD  4  /* yield() -> 0 */
#define SYS_FORK   5  /* fork() -> child's pid in the parent, 0 in the child; -1: table full */
#define SYS_WAIT   6  /* wait() -> pid (RAX) and status (RDX) of an exited child; -1 if none */
#define SYS_MMAP   7  /* mmap(len) -> address of len bytes of zero-filled memory, or -1 */
#define SYS_MUNMAP 8  /* munmap(addr, len) -> 0, or -1 */
#define SYS_SEND   9  /* send(pid): give pid a token (wakes it in recv) -> 0, or -1 */
#define SYS_RECV   10 /* recv(): take a token, blocking until there is one -> 0 */
#define SYS_KHOOK  11 /* khook(arg): calls proc_test_hook (tests only) -> its result */

/* The status of a process killed by an exception it did not handle. */
#define PROC_KILLED 0x100000000ULL
#define WRITE_MAX   256 /* longest single write */

/* User address space layout (all in the first GiB). */
#define PROC_CODE_VA	0x400000ULL
#define PROC_STACK_TOP	0x800000ULL
#define PROC_STACK_SIZE 0x10000ULL
#define PROC_MMAP_BASE	0x10000000ULL
#define PROC_MMAP_END	0x40000000ULL

/* Software-available PTE bit 9 (SDM 3A 4.5, "Ignored"): copy-on-write. */
#define PTE_COW (1ULL << 9)

enum proc_state { P_FREE, P_RUNNABLE, P_RUNNING, P_WAITING, P_RECV, P_ZOMBIE };

#define PROC_NVMA 8
struct vma {
	uint64_t start, end; /* [start, end), page-aligned; end == 0: unused */
	int code;	     /* the shared code image (not refcounted) */
};

/* How a process of the kernel ended (proc_spawn). */
struct proc_result {
	int done;
	uint64_t status;
	uint64_t preempts; /* times the timer switched away from it */
};

struct proc {
	enum proc_state state;
	int pid, ppid; /* ppid 0: a process of the kernel (proc_spawn) */
	uint64_t cr3;
	struct trap_frame frame; /* user context while not running */
	uint64_t status;
	struct proc_result *kres; /* where a kernel-spawned process's end is reported */
	struct vma vma[PROC_NVMA];
	uint64_t pd_used[8]; /* PD slots (2 MiB regions) that have a page table */
	uint64_t mmap_next;
	uint64_t tokens;
	uint64_t preempts; /* times the timer switched away from it */
};

/* Counters since the last proc_stats_reset() (or proc_reset()). */
struct proc_stats {
	uint64_t switches; /* address-space switches between processes */
	uint64_t preempts; /* of them, by the timer */
	uint64_t forks, exits, kills;
	uint64_t max_live;	/* most processes in the table at once */
	uint64_t cow_copies;	/* COW faults that copied the frame */
	uint64_t cow_reuses;	/* COW faults by the last holder (made writable, no copy) */
	uint64_t demand_faults; /* zero-filled pages mapped on first touch */
	uint64_t writes;
	uint64_t kill_pid, kill_vector, kill_error, kill_cr2, kill_rip; /* the last kill */
	char last_write[WRITE_MAX + 1]; /* what the last write() printed */
	uint64_t last_write_len;
};
extern struct proc_stats proc_stats;
extern struct proc proc_table[PROC_MAX];

/* Set up once (user code image, refcount table, the int $0x80 gate, hooks). */
void proc_init(void);
/* Kill every process, free their memory, clear the counters (test baseline). */
void proc_reset(void);
/*
 * A new process (of the kernel, ppid 0) running user function @fn (from
 * proc_user.c) with RDI = a0, RSI = a1; how it ends goes to *res (may be
 * NULL). Returns the pid, or -1 when the table is full.
 */
int proc_spawn(void (*fn)(uint64_t, uint64_t), uint64_t a0, uint64_t a1, struct proc_result *res);
/* Run the processes until all have exited. Returns 0, or -1 on deadlock. */
int proc_run(void);
struct proc *proc_find(int pid);
int proc_live(void); /* processes in the table (any state but free) */
/* Frame @va maps in @p's address space (PTE in *pte if not NULL), ~0 if none. */
uint64_t proc_frame_of(struct proc *p, uint64_t va, uint64_t *pte);
unsigned proc_refcount(uint64_t pa);
/* Called by SYS_KHOOK with the calling process; tests set it. */
extern uint64_t (*proc_test_hook)(struct proc *p, uint64_t arg);
/*
 * The A/D bits the #PF handler writes into the PTEs it fills (demand-zero
 * and copy-on-write): 0 (the default) leaves both to the CPU's walk;
 * PROC_AD_LINUX sets A, and D for a write fault, as Linux's handler does
 * (x86's protection maps hold _PAGE_ACCESSED; a write fault's PTE is made
 * dirty); any other value is ORed in as it is. proc_reset() sets it to 0.
 */
#define PROC_AD_LINUX (~0ULL)
extern uint64_t proc_fault_ad;

/* The system call handler of both entries; returns 0 when no process is running. */
int proc_syscall(struct trap_frame *f);

#endif /* TESTOS_PROC_H */
