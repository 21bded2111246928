/* SPDX-License-Identifier: MIT */
/*
 * _start: entered per Umbra's boot contract (include/umbra/bootinfo.h) at
 * physical 1 MiB, identity-mapped, RDI = boot info, RSI = magic. The kernel
 * proper is linked in the higher half (KERNEL_VMA + physical), so this
 * stub, linked low, builds early tables of its own in .bss (2 MiB pages of
 * the first GiB, seen at three places: identity, DIRECT_MAP and
 * KERNEL_VMA), loads them, which also leaves the boot area unused, and jumps
 * to kmain on the kernel stack. paging_init() later replaces these tables.
 */
#include "layout.h"

#define EARLY_PDE 0x83	/* P | RW | PS */
#define EARLY_TBL 0x03	/* P | RW */
#define PHYS(x) ((x) - KERNEL_VMA)

	.section .boot.text, "ax"
	.code64
	.globl _start
_start:
	mov	%rdi, %r12
	mov	%rsi, %r13
	mov	$PHYS(early_pd), %edi
	mov	$EARLY_PDE, %eax
	xor	%ecx, %ecx
1:	mov	%rax, (%rdi,%rcx,8)
	add	$0x200000, %rax
	inc	%ecx
	cmp	$512, %ecx
	jne	1b
	mov	$PHYS(early_pd) + EARLY_TBL, %eax
	mov	%rax, PHYS(early_pdpt_low)		/* [0] -> first GiB */
	mov	%rax, PHYS(early_pdpt_high) + 510 * 8	/* 0xffffffff80000000 */
	mov	$PHYS(early_pdpt_low) + EARLY_TBL, %eax
	mov	%rax, PHYS(early_pml4)			/* identity */
	mov	%rax, PHYS(early_pml4) + PML4_DIRECT_SLOT * 8
	mov	$PHYS(early_pdpt_high) + EARLY_TBL, %eax
	mov	%rax, PHYS(early_pml4) + 511 * 8
	mov	$PHYS(early_pml4), %eax
	mov	%rax, %cr3
	movabs	$high, %rax
	jmp	*%rax

	.text
high:
	movabs	$kernel_stack_top, %rsp
	xor	%ebp, %ebp
	cld
	mov	%r12, %rdi
	mov	%r13, %rsi
	call	kmain
2:	cli
	hlt
	jmp	2b

	.bss
	.balign 4096
early_pml4:	.space 4096
early_pdpt_low:	.space 4096
early_pdpt_high: .space 4096
early_pd:	.space 4096
	.globl kernel_stack, kernel_stack_top
kernel_stack:	.space 65536
kernel_stack_top:

	.section .note.GNU-stack, "", @progbits
