/* SPDX-License-Identifier: MIT */
/*
 * shadow_smoke.elf entry (64-bit). Entered per Umbra's ELF64 boot contract
 * (include/umbra/bootinfo.h) with RDI = struct umbra_boot_info * and
 * RSI = UMBRA_BOOT_MAGIC; moves to the image's own stack and calls
 * smoke_main(info, magic). No privileged instruction anywhere: if
 * smoke_main ever returned, the loop below spins (it never does: it ends
 * through the debug-exit port).
 */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	lea	stack_top(%rip), %rsp	/* 16-byte aligned */
	xor	%ebp, %ebp
	cld
	call	smoke_main
1:	jmp	1b

	.section .bss
	.balign 16
	.space	16384
stack_top:

	.section .note.GNU-stack, "", @progbits
