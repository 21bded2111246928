/* SPDX-License-Identifier: MIT */
/*
 * User mode without a process model: syscall/sysret set-up (STAR, LSTAR,
 * SFMASK), the syscall dispatcher, and running a blob of position-
 * independent user code (user_blobs.S) at CPL3 until it exits by syscall,
 * faults, or is interrupted (see struct catch in trap.h).
 * Syscall ABI: number in RAX, arguments in RDI, RSI; result in RAX.
 */
#ifndef TESTOS_USER_H
#define TESTOS_USER_H

#include <stdint.h>

#include "trap.h"

#define USER_CODE_VA 0x400000ULL
#define USER_STACK_TOP 0x800000ULL /* one page below it is mapped */
#define USER_NO_FAULT 0xdead	   /* what blobs exit with after an instruction that should fault */

#define SYS_EXIT 0  /* exit(value): ends user_run() */
#define SYS_PROBE 1 /* records the frame in last_probe, returns SYS_PROBE_RET */
#define SYS_PROBE_RET 0x5a5a

/* SFMASK: RFLAGS bits syscall clears (as Linux: TF, DF, IF, IOPL, AC, NT). */
#define SFMASK_VALUE 0x47700ULL

struct syscall_probe {
	int hit;
	struct trap_frame frame; /* frame->error holds the CS syscall_entry ran with */
	uint64_t kernel_rflags;	 /* RFLAGS inside the kernel */
};
extern struct syscall_probe last_probe;

void syscall_init(void);
/* The process model's calls (proc.c): returns 1 when it handled @f (then iretq). */
extern int (*syscall_hook)(struct trap_frame *f);
int syscall_dispatch(struct trap_frame *f);

#define USER_BLOB(name) extern const char name##_start[], name##_end[]
/* Map a copy of the blob at USER_CODE_VA (U, RX) and a user stack page (U, RW, NX) in @root. */
void user_map(uint64_t root, const char *start, const char *end);
/* Run at CPL3 from USER_CODE_VA with RDI = a0, RSI = a1; @c says how it came back. */
void user_run(struct catch *c, uint64_t a0, uint64_t a1);
/* The same, also returning when interrupt @irq_vector arrives at CPL3. */
void user_run_irq(struct catch *c, uint64_t irq_vector, uint64_t a0, uint64_t a1);
void enter_user(uint64_t rip, uint64_t rsp, uint64_t rdi, uint64_t rsi) __attribute__((noreturn));

#endif /* TESTOS_USER_H */
