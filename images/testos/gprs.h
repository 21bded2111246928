/* SPDX-License-Identifier: MIT */
/*
 * Save and restore the 15 general registers in the order of the trap frame
 * (trap.h, struct trap_frame), for every entry path written in assembly.
 */
#ifndef TESTOS_GPRS_S_H
#define TESTOS_GPRS_S_H

.macro SAVE_GPRS
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
.endm

.macro RESTORE_GPRS
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
.endm

#endif /* TESTOS_GPRS_S_H */
