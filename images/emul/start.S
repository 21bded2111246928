/* SPDX-License-Identifier: MIT */
/*
 * emul.elf entry and IDT stubs (64-bit). See emul.c for what is tested.
 *
 * _start is entered per Umbra's ELF64 boot contract (include/umbra/bootinfo.h)
 * and calls emul_main() on the image's own stack.
 *
 * Two kinds of stubs:
 *  - frame stubs (int3 on vector 3, int $0x80): copy the CPU's frame
 *    (RIP, CS, RFLAGS, RSP, SS), the handler's own RFLAGS and RSP into a
 *    struct frame_rec, count the entry, and iretq;
 *  - recovery stubs (#UD, #GP, #PF): record vector, error code, RIP and CR2
 *    in fault_rec, then resume at fault_recover_rip (set by the test
 *    before it provokes the fault); with no recovery address set, report an
 *    unexpected exception and exit.
 */

	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	lea	stack_top(%rip), %rsp
	xor	%ebp, %ebp
	cld
	call	emul_main
1:	cli
	hlt
	jmp	1b

	.text

/* struct frame_rec: rip, cs, rflags, rsp, ss, handler_rflags, handler_rsp, count */
.macro FRAME_STUB name, rec
	.globl \name
\name:
	push	%rax
	mov	8(%rsp), %rax
	mov	%rax, \rec+0(%rip)
	mov	16(%rsp), %rax
	mov	%rax, \rec+8(%rip)
	mov	24(%rsp), %rax
	mov	%rax, \rec+16(%rip)
	mov	32(%rsp), %rax
	mov	%rax, \rec+24(%rip)
	mov	40(%rsp), %rax
	mov	%rax, \rec+32(%rip)
	pushfq
	pop	%rax
	mov	%rax, \rec+40(%rip)
	lea	8(%rsp), %rax
	mov	%rax, \rec+48(%rip)
	incq	\rec+56(%rip)
	pop	%rax
	iretq
.endm

	FRAME_STUB bp_stub, bp_rec
	FRAME_STUB int80_stub, int80_rec

/* struct fault_rec: vector, error_code, rip, cr2, count */
.macro RECOVER_STUB name, vec, has_err
	.globl \name
\name:
	.if !\has_err
	pushq	$0
	.endif
	push	%rax
	movq	$\vec, fault_rec+0(%rip)
	jmp	recover_common
.endm

	RECOVER_STUB ud_stub, 6, 0
	RECOVER_STUB gp_stub, 13, 1
	RECOVER_STUB pf_stub, 14, 1

/* [rsp] saved rax, error code, rip, cs, rflags, rsp, ss */
recover_common:
	mov	8(%rsp), %rax
	mov	%rax, fault_rec+8(%rip)
	mov	16(%rsp), %rax
	mov	%rax, fault_rec+16(%rip)
	mov	%cr2, %rax
	mov	%rax, fault_rec+24(%rip)
	incq	fault_rec+32(%rip)
	mov	fault_recover_rip(%rip), %rax
	test	%rax, %rax
	jz	1f
	movq	$0, fault_recover_rip(%rip)
	mov	%rax, 16(%rsp)
	pop	%rax
	add	$8, %rsp		/* the error code */
	iretq
1:	lea	16(%rsp), %rdi
	and	$-16, %rsp
	call	unexpected_exception	/* does not return */
2:	cli
	hlt
	jmp	2b

	.section .bss
	.balign 16
	.space	16384
stack_top:
	.globl ist1_top
	.balign 16
	.space	4096
ist1_top:

	.section .note.GNU-stack, "", @progbits
