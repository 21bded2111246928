/* SPDX-License-Identifier: MIT */
/*
 * events32.c's assembly: the IDT entry stubs, the way into user mode and
 * back, and the user program.
 *
 * Every stub pushes a dummy error code where the CPU pushes none, then the
 * vector, and jumps to trap_common, which saves the registers and DS/ES as
 * a struct trap_frame (events32.c), loads the kernel's data segment, calls
 * events32_trap(frame) and returns with iret through whatever the handler
 * left in the frame.
 */
#define KDATA 0x10
#define UCODE 0x1b
#define UDATA 0x23

	.text
	.code32

#define STUB(vec)          \
	.globl	trap_stub_##vec; \
trap_stub_##vec:           \
	pushl	$0;            \
	pushl	$vec;          \
	jmp	trap_common

#define STUB_ERR(vec)      \
	.globl	trap_stub_##vec; \
trap_stub_##vec:           \
	pushl	$vec;          \
	jmp	trap_common

STUB(6)
STUB_ERR(13)
STUB_ERR(14)
STUB(32)
STUB(64)
STUB(65)

trap_common:
	pushal
	push	%ds
	push	%es
	mov	$KDATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	push	%esp		/* events32_trap(struct trap_frame *) */
	call	events32_trap
	add	$4, %esp
	pop	%es
	pop	%ds
	popal
	add	$8, %esp	/* vector and error code */
	iret

/*
 * enter_user(eip, esp): run the user program at CPL3 (iret to UCODE:eip,
 * UDATA:esp, DS = ES = UDATA) until its int $0x41, whose handler sends the
 * kernel to user_return. Returns there, on the stack it was called on.
 */
	.globl	enter_user
enter_user:
	mov	4(%esp), %ecx		/* eip */
	mov	8(%esp), %edx		/* esp */
	push	%ebp
	push	%ebx
	push	%esi
	push	%edi
	mov	%esp, saved_kernel_esp
	mov	$UDATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	pushl	$UDATA
	pushl	%edx
	pushfl
	pushl	$UCODE
	pushl	%ecx
	iret

	.globl	user_return
user_return:
	mov	$KDATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	saved_kernel_esp, %esp
	pop	%edi
	pop	%esi
	pop	%ebx
	pop	%ebp
	ret

/*
 * The user program, alone in its page (mapped with U/S = 1): a system call,
 * a store to a page the kernel maps on demand, a privileged instruction,
 * and the exit call with what it saw.
 */
	.section .text.user, "ax"
	.balign	4096
	.globl	user_prog
user_prog:
	mov	$21, %eax
	int	$0x40			/* the system call doubles EAX */
	mov	%eax, %ebx
	movl	$0x5a5a, 0x00801008	/* not mapped yet: #PF (U, W), mapped, again */
	mov	0x00801008, %esi
	cli				/* CPL3, IOPL0: #GP(0), skipped by the kernel */
	mov	%ebx, %eax
	int	$0x41			/* exit: EAX and ESI are the results */
1:	jmp	1b

/*
 * The second user program: spin until the timer has ticked three more
 * times than when it started (those ticks interrupt it at CPL3), then exit.
 */
	.globl	user_spin
user_spin:
	mov	$ustack, %ebx		/* ustack[0..3]: the tick count, user-readable */
	mov	(%ebx), %ecx
	add	$3, %ecx
2:	cmp	%ecx, (%ebx)
	jb	2b
	int	$0x41
3:	jmp	3b
	.balign	4096

	.section .bss
	.balign	4
saved_kernel_esp:
	.space	4

	.section .note.GNU-stack, "", @progbits
