/* SPDX-License-Identifier: MIT */
/*
 * Kernel entry and exit paths:
 *   - exc_stub_<n>: the 32 exception vectors; they push a 0 error code where
 *     the CPU pushes none (SDM 3A 6.13) and the vector, then trap_common;
 *   - timer_stub, spurious_stub: the LAPIC interrupts, same frame;
 *   - trap_common: saves every general register (struct trap_frame in
 *     trap.h), calls trap_dispatch(frame), restores and iretq's at
 *     trap_iret (Linux's layout of that iretq): a handler changes where
 *     execution resumes by editing the frame;
 *   - syscall_entry (LSTAR): builds the same frame on the RSP0 stack (CS
 *     found at entry in the error slot) and returns with sysretq, or with
 *     iretq when syscall_dispatch asks for it (a catch resumed the kernel);
 *   - enter_user: iretq to CPL3;
 *   - tos_setjmp / tos_longjmp.
 */
#include "gdt.h"

	.text
	.code64

/* Vectors with a CPU-pushed error code: #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX */
.macro EXC_STUB vec
exc_stub_\vec:
	.if !((\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30))
	pushq	$0
	.endif
	pushq	$\vec
	jmp	trap_common
.endm

.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	EXC_STUB \v
.endr

	.globl timer_stub, spurious_stub
timer_stub:
	pushq	$0
	pushq	$0x40
	jmp	trap_common
spurious_stub:
	pushq	$0
	pushq	$0xff
	jmp	trap_common

#include "gprs.h"

/*
 * The CPU aligned RSP to 16 before pushing its 5 qwords (SDM 3A 6.14.2);
 * with vector, error code and 15 registers the frame is 176 bytes, so RSP
 * is 16-byte aligned at the call.
 */
trap_common:
	SAVE_GPRS
	mov	%rsp, %rdi
	cld
	call	trap_dispatch
	RESTORE_GPRS
	add	$16, %rsp		/* vector, error code */
	jmp	trap_iret

/*
 * Every return from a trap to the kernel or to user mode, laid out as
 * Linux's native_irq_return_iret: the iretq, then the 5-byte nopl that pads
 * it to a 16-byte boundary. Shadow mode rewrites that into a call to its
 * iret stand-in (vmm/call_iret.h), so the test suite runs through it.
 */
	.p2align 4
	.skip	9, 0xcc
	.globl	trap_iret
trap_iret:
	iretq
	.byte	0x0f, 0x1f, 0x44, 0x00, 0x00
	.p2align 4

/*
 * syscall (SDM 2B SYSCALL): RCX = user RIP, R11 = user RFLAGS, RFLAGS masked
 * by SFMASK, CS/SS from STAR; RSP is still the user's.
 */
	.globl syscall_entry
syscall_entry:
	mov	%rsp, syscall_user_rsp(%rip)
	mov	cpu_rsp0(%rip), %rsp
	pushq	$USER_DS		/* ss */
	pushq	syscall_user_rsp(%rip)	/* rsp */
	push	%r11			/* rflags */
	pushq	$USER_CS		/* cs */
	push	%rcx			/* rip */
	pushq	$0			/* error slot: CS at entry, below */
	pushq	$0x100			/* VEC_SYSCALL */
	SAVE_GPRS
	mov	%cs, %eax
	mov	%rax, 128(%rsp)		/* frame->error = the CS syscall_entry runs with */
	mov	%rsp, %rdi
	cld
	call	syscall_dispatch
	test	%eax, %eax
	jnz	1f
	RESTORE_GPRS
	add	$16, %rsp		/* vector, error slot */
	pop	%rcx			/* rip */
	add	$8, %rsp		/* cs */
	pop	%r11			/* rflags */
	pop	%rsp			/* user rsp */
	sysretq
1:	RESTORE_GPRS			/* frame edited for a return to the kernel */
	add	$16, %rsp
	jmp	trap_iret

/* enter_user(rip, rsp, rdi, rsi): iretq to CPL3 with IF = 1 (SDM 3A 6.14.3). */
	.globl enter_user
enter_user:
	pushq	$USER_DS
	push	%rsi
	pushq	$0x202			/* RFLAGS: IF | fixed bit 1 */
	pushq	$USER_CS
	push	%rdi
	mov	%rdx, %rdi
	mov	%rcx, %rsi
	xor	%eax, %eax
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%ebp, %ebp
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	xor	%r14d, %r14d
	xor	%r15d, %r15d
	iretq

/* struct jmpbuf: rbx rbp r12 r13 r14 r15 rsp rip rflags */
	.globl tos_setjmp, tos_longjmp
tos_setjmp:
	mov	%rbx, 0(%rdi)
	mov	%rbp, 8(%rdi)
	mov	%r12, 16(%rdi)
	mov	%r13, 24(%rdi)
	mov	%r14, 32(%rdi)
	mov	%r15, 40(%rdi)
	lea	8(%rsp), %rax
	mov	%rax, 48(%rdi)
	mov	(%rsp), %rax
	mov	%rax, 56(%rdi)
	pushfq
	pop	%rax
	mov	%rax, 64(%rdi)
	xor	%eax, %eax
	ret

tos_longjmp:
	mov	0(%rdi), %rbx
	mov	8(%rdi), %rbp
	mov	16(%rdi), %r12
	mov	24(%rdi), %r13
	mov	32(%rdi), %r14
	mov	40(%rdi), %r15
	mov	48(%rdi), %rsp
	pushq	64(%rdi)
	popfq
	mov	%esi, %eax
	jmp	*56(%rdi)

	.section .rodata
	.globl exc_stubs
	.balign 8
exc_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	exc_stub_\v
.endr

	.bss
	.balign 8
syscall_user_rsp:
	.quad	0

	.section .note.GNU-stack, "", @progbits
