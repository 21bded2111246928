/* SPDX-License-Identifier: MIT */
/*
 * User-mode (CPL3) code of the benchmark workloads (bench.c), run by
 * bench_user_call(). Position-independent; each reads the TSC before and
 * after its loop (R8 = start, R9 = end) and ends with ud2 (#UD), the way
 * back to the kernel that works on every host (syscall from CPL3 does not
 * reach CPL0 in hw mode on ours, shared/HOST.md).
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
.macro TSC reg
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, \reg
.endm
/* One xorshift64 step (shifts 12/25/27, as xorshift64() in lib.h) on \s; scratch %rax. */
.macro XORSHIFT s
	mov	\s, %rax
	shr	$12, %rax
	xor	%rax, \s
	mov	\s, %rax
	shl	$25, %rax
	xor	%rax, \s
	mov	\s, %rax
	shr	$27, %rax
	xor	%rax, \s
.endm

/*
 * compute(iters = RDI): acc = acc * K + xorshift(x), no memory access at all.
 * Returns acc in RAX.
 */
BLOB ub_b_compute
	TSC	%r8
	movabs	$0x9e3779b97f4a7c15, %rsi
	movabs	$0x5851f42d4c957f2d, %r10
	xor	%r11d, %r11d
	test	%rdi, %rdi
	jz	2f
1:	XORSHIFT %rsi
	imul	%r10, %r11
	add	%rsi, %r11
	dec	%rdi
	jnz	1b
2:	TSC	%r9
	mov	%r11, %rax
	ud2
END ub_b_compute

/* touch(base = RDI, pages = RSI): write one word to each 4 KiB page in turn. */
BLOB ub_b_touch
	TSC	%r8
	test	%rsi, %rsi
	jz	2f
1:	mov	%rsi, (%rdi)
	add	$4096, %rdi
	dec	%rsi
	jnz	1b
2:	TSC	%r9
	ud2
END ub_b_touch

/*
 * randread(base = RDI, iters = RSI): iters 8-byte reads at xorshift-random
 * offsets in [base, base + 1 GiB). Returns the sum of the words in RAX.
 */
BLOB ub_b_randread
	TSC	%r8
	movabs	$0x2545f4914f6cdd1d, %rcx
	xor	%r11d, %r11d
	test	%rsi, %rsi
	jz	2f
1:	XORSHIFT %rcx
	mov	%rcx, %rax
	shr	$17, %rax
	and	$0x3ffffff8, %eax
	add	(%rdi, %rax), %r11
	dec	%rsi
	jnz	1b
2:	TSC	%r9
	mov	%r11, %rax
	ud2
END ub_b_randread

	.section .note.GNU-stack, "", @progbits
