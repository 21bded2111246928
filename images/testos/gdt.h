/* SPDX-License-Identifier: MIT */
/*
 * GDT and 64-bit TSS. The selector order is the one syscall/sysret require
 * (SDM 3A 5.8.8, SDM 2B SYSCALL/SYSRET): syscall loads CS = STAR[47:32] and
 * SS = STAR[47:32] + 8; a 64-bit sysretq loads CS = STAR[63:48] + 16 and
 * SS = STAR[63:48] + 8, both with RPL 3.
 */
#ifndef TESTOS_GDT_H
#define TESTOS_GDT_H

/*
 * The selector values are Linux's (__KERNEL_CS 0x10 aside: ours is 0x08):
 * user code 0x33 and data 0x2b. Any values would do on bare hardware; these
 * are also what a host running user code on its own selectors (PVM) shows
 * to `mov %cs` in user mode, so the user tests read the same in every mode.
 */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_CS32 0x20 /* 32-bit user code: only the base of sysret's selectors */
#define USER_DS	  (0x28 | 3)
#define USER_CS	  (0x30 | 3)
#define TSS_SEL	  0x40
#ifndef __ASSEMBLER__
#include <stdint.h>

/* IST slots (1-based in the gate, SDM 3A 6.14.5). */
#define IST_DF 1 /* #DF, NMI, #MC: always on a known-good stack */

#define STAR_VALUE (((uint64_t)(USER_CS32 | 3) << 48) | ((uint64_t)KERNEL_CS << 32))

/*
 * The kernel stack the CPU loads on an interrupt or exception from CPL3
 * (TSS.RSP0), also used by the syscall entry. A later process model sets it
 * per process with gdt_set_rsp0().
 */
extern uint64_t cpu_rsp0;
void gdt_set_rsp0(uint64_t rsp0);
/* The bounds of the default RSP0 stack (for the tests that check frames on it). */
#define TRAP_STACK_SIZE 16384
extern char trap_stack[TRAP_STACK_SIZE];

void gdt_init(void);
/* A free (zero) slot of the live GDT, for a test's own descriptor, and the table in *gdt; 0 if
 * none. */
uint16_t gdt_free_slot(volatile uint64_t **gdt);
#endif /* !__ASSEMBLER__ */

#endif /* TESTOS_GDT_H */
