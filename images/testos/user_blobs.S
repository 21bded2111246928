/* SPDX-License-Identifier: MIT */
/*
 * User-mode code for the tests, copied to a user page and run at CPL3 by
 * user_run(). Each blob is position-independent and ends with the exit
 * syscall (RAX = SYS_EXIT = 0, RDI = value). A blob that runs an
 * instruction expected to fault exits with 0xdead (USER_NO_FAULT) if it
 * did not.
 */
	.section .rodata.user, "a"
	.code64

.macro BLOB name
	.globl \name\()_start, \name\()_end
	.balign 16
\name\()_start:
.endm
.macro END name
\name\()_end:
.endm
.macro EXIT_NO_FAULT
	mov	$0xdead, %edi
	xor	%eax, %eax
	syscall
.endm

/* syscall probe, then exit(rax) with RSI = RCX, RDX = R11, R8 = CS after sysret. */
BLOB ub_syscall
	mov	$0x1111, %edi
	mov	$1, %eax		/* SYS_PROBE */
	syscall
	.globl ub_syscall_ret
ub_syscall_ret:
	mov	%rax, %rdi
	mov	%rcx, %rsi
	mov	%r11, %rdx
	mov	%cs, %r8
	xor	%eax, %eax
	syscall
END ub_syscall

/* exit(*(u64 *)rdi) */
BLOB ub_read
	mov	(%rdi), %rdi
	xor	%eax, %eax
	syscall
END ub_read

/* exit(*(u64 *)(FS.base + rdi)) */
BLOB ub_fs_read
	mov	%fs:(%rdi), %rdi
	xor	%eax, %eax
	syscall
END ub_fs_read

/* *(u64 *)rdi = 1 */
BLOB ub_write
	movq	$1, (%rdi)
	EXIT_NO_FAULT
END ub_write

/* Privileged or IOPL-sensitive instructions: each must #GP(0) at CPL3 (IOPL 0). */
BLOB ub_cli
	cli
	EXIT_NO_FAULT
END ub_cli

BLOB ub_in
	inb	$0x80, %al
	EXIT_NO_FAULT
END ub_in

BLOB ub_out
	outb	%al, $0x80
	EXIT_NO_FAULT
END ub_out

BLOB ub_hlt
	hlt
	EXIT_NO_FAULT
END ub_hlt

BLOB ub_movcr3
	mov	%cr3, %rax
	EXIT_NO_FAULT
END ub_movcr3

/* Spin until the timer interrupts. */
BLOB ub_spin
1:	jmp	1b
END ub_spin

	.section .note.GNU-stack, "", @progbits
