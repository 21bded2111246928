/* SPDX-License-Identifier: MIT */
/*
 * hello.elf entry and interrupt stubs (64-bit).
 *
 * _start is entered per Umbra's ELF64 boot contract (include/umbra/bootinfo.h):
 * long mode, identity mapping, IF = 0, RDI = struct umbra_boot_info *,
 * RSI = UMBRA_BOOT_MAGIC. It moves to the image's own stack and calls
 * hello_main(info, magic) with those two registers untouched.
 *
 * The IDT stubs: exc_stub_<n> for the CPU exceptions 0-31 hand a frame to the
 * C exception_handler (which reports and exits, never returning), and
 * timer_stub (PIT, vector 32) and uart_stub (COM1, vector 0x24) save the
 * caller-saved registers, call their C handler and return with iretq.
 */

	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	lea	stack_top(%rip), %rsp	/* 16-byte aligned */
	xor	%ebp, %ebp
	cld
	call	hello_main		/* (RDI = info, RSI = magic) */
1:	cli
	hlt
	jmp	1b

	.text

/*
 * Exceptions that push an error code (SDM Vol. 3A, 6.13): #DF(8), #TS(10),
 * #NP(11), #SS(12), #GP(13), #PF(14), #AC(17), #CP(21), #VC(29), #SX(30).
 * For the others the stub pushes a 0, so every frame looks the same:
 *   [rsp] vector, error code, rip, cs, rflags, rsp, ss.
 */
.macro EXC_STUB vec
exc_stub_\vec:
	.if !((\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30))
	pushq	$0
	.endif
	pushq	$\vec
	jmp	exc_common
.endm

.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	EXC_STUB \v
.endr

exc_common:
	mov	%rsp, %rdi		/* struct exc_frame * */
	and	$-16, %rsp		/* ABI alignment for the call */
	cld
	call	exception_handler	/* does not return */
1:	cli
	hlt
	jmp	1b

/*
 * Hardware interrupt stubs: save the caller-saved registers, call a C
 * handler and return with iretq. On entry the CPU has aligned RSP to 16 and
 * pushed 5 qwords (no error code); the 9 pushes below bring it back to a
 * 16-byte boundary for the call. Callee-saved registers are preserved by the
 * C code. timer_stub: the PIT tick on vector 32; uart_stub: COM1 on vector
 * 0x24 (IRQ 4, used by the "echo" mode only).
 */
.macro IRQ_STUB name, handler
	.globl \name
\name:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	cld
	call	\handler
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq
.endm

	IRQ_STUB timer_stub, timer_handler
	IRQ_STUB uart_stub, uart_irq_handler

/* Addresses of the 32 exception stubs, for the C code that fills the IDT. */
	.section .rodata
	.globl exc_stubs
	.balign 8
exc_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	exc_stub_\v
.endr

/* The image's own stack (zeroed by the loader as part of .bss). */
	.section .bss
	.balign 16
	.space	16384
stack_top:

	.section .note.GNU-stack, "", @progbits
