/* SPDX-License-Identifier: MIT */
/*
 * Interrupts and exceptions: the IDT, the register frame every entry stub
 * builds, dispatch to handlers, and "catches": the way a test expects an
 * exception (or a syscall, or an interrupt in user mode). A test arms a
 * catch; when the event happens the handler records vector, error code, CR2,
 * RIP and the whole frame, and resumes the test at the point where it armed
 * the catch (like longjmp, by editing the frame that iretq returns through).
 *
 *     struct catch c;
 *     if (CATCH(&c))
 *             *(volatile char *)va = 1;   // expected to fault
 *     catch_disarm();
 *     expect_fault(&c, VEC_PF, PF_P | PF_W, va, "write to read-only page");
 */
#ifndef TESTOS_TRAP_H
#define TESTOS_TRAP_H

#include <stdint.h>

/* What the entry stubs push (entry.S), lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error; /* error: 0 when the vector has none; CS for syscalls */
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU (SDM 3A 6.14.2) */
};

#define VEC_TIMER 0x40	  /* LAPIC timer */
#define VEC_SPURIOUS 0xff /* LAPIC spurious-interrupt vector */
#define VEC_SYSCALL 0x100 /* pseudo-vector of frames built by syscall_entry */

/* setjmp/longjmp for the kernel (entry.S). */
struct jmpbuf {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip, rflags;
};
__attribute__((returns_twice)) int tos_setjmp(struct jmpbuf *jb);
__attribute__((noreturn)) void tos_longjmp(struct jmpbuf *jb, int val);
/* Make the iretq through @f resume at @jb's setjmp returning @val, at CPL0. */
void frame_longjmp(struct trap_frame *f, const struct jmpbuf *jb, int val);

struct catch {
	struct jmpbuf jb;
	uint64_t irq_vector; /* also catch this interrupt when it arrives from CPL3 */
	volatile int caught;
	uint64_t vector, error, cr2, rip, cs;
	struct trap_frame frame;	/* copy of the frame at the event */
	uint64_t frame_addr;		/* where the frame was on the stack */
};

extern struct catch *volatile cur_catch;
void catch_arm(struct catch *c, uint64_t irq_vector);
void catch_disarm(void);
#define CATCH(c) (catch_arm((c), 0), tos_setjmp(&(c)->jb) == 0)
/* Also catch interrupt @v when it arrives from CPL3. */
#define CATCH_IRQ(c, v) (catch_arm((c), (v)), tos_setjmp(&(c)->jb) == 0)
/* Record @f in the armed catch and resume its owner; returns 0 if none is armed. */
int catch_event(struct trap_frame *f);

typedef void (*irq_handler_t)(struct trap_frame *f);
void idt_init(void);
void irq_set_handler(unsigned vector, irq_handler_t h);
/* A #PF hook (demand paging): returns 1 when it resolved the fault. */
extern int (*pf_hook)(struct trap_frame *f);
/* Exceptions from CPL3 after pf_hook (the process model): returns 1 when it handled @f. */
extern int (*user_fault_hook)(struct trap_frame *f);
void idt_set_gate_dpl(unsigned vec, uint64_t addr, unsigned dpl);

void trap_dispatch(struct trap_frame *f);
void trap_print(const char *what, const struct trap_frame *f);

#endif /* TESTOS_TRAP_H */
