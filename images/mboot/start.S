/* SPDX-License-Identifier: MIT */
/*
 * mboot.elf / mboot-aout.elf: Multiboot 1 header and 32-bit entry.
 *
 * Built twice. Without MB_AOUT_KLUDGE the header asks only for PAGE_ALIGN and
 * MEMORY_INFO, so the loader must load the ELF program headers (as QEMU's
 * -kernel does for Multiboot ELFs). With MB_AOUT_KLUDGE (flags bit 16) the
 * header also carries the load addresses, and the loader must copy the file
 * from them instead, ignoring the ELF headers.
 *
 * Entry state (Multiboot spec 3.2): 32-bit protected mode, paging off,
 * EAX = 0x2BADB002, EBX = physical address of the multiboot info, ESP
 * undefined, IF = 0.
 */

#define MB_HEADER_MAGIC 0x1BADB002
#define MB_FLAG_PAGE_ALIGN (1 << 0)  /* modules on 4 KiB boundaries */
#define MB_FLAG_MEMORY_INFO (1 << 1) /* mem_lower/mem_upper and mmap */
#define MB_FLAG_AOUT_KLUDGE (1 << 16) /* load addresses in the header */

#ifdef MB_AOUT_KLUDGE
#define MB_FLAGS (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO | MB_FLAG_AOUT_KLUDGE)
#else
#define MB_FLAGS (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO)
#endif

	/* mboot.ld puts this section first: well inside the first 8 KiB. */
	.section .multiboot, "a"
	.balign 4
mb_header:
	.long	MB_HEADER_MAGIC
	.long	MB_FLAGS
	.long	-(MB_HEADER_MAGIC + MB_FLAGS)	/* checksum: the three sum to 0 */
#ifdef MB_AOUT_KLUDGE
	.long	mb_header	/* header_addr: where this header is loaded */
	.long	image_load_start /* load_addr: file contents go here ... */
	.long	image_load_end	/* load_end_addr: ... up to here */
	.long	image_bss_end	/* bss_end_addr: zeroed up to here */
	.long	_start		/* entry_addr */
#endif

	.text
	.code32
	.globl _start
_start:
	mov	$stack_top, %esp
	pushl	$0		/* known EFLAGS: IF = 0, DF = 0 */
	popfl
	sub	$8, %esp	/* keep 16-byte alignment at the call */
	push	%ebx		/* mboot_main(magic, info) */
	push	%eax
	call	mboot_main
1:	cli
	hlt
	jmp	1b

/*
 * long_mode_exit(code): the guest's own move to long mode, as a 64-bit
 * Multiboot kernel makes it (SDM Vol. 3A §10.8.5): identity tables for the
 * first 1 GiB (2 MiB pages), CR4.PAE, CR3, EFER.LME with wrmsr, CR0.PG, and
 * a far jump to a 64-bit code segment, which prints "long mode ok" on the
 * UART and leaves through isa-debug-exit with `code`. Never returns.
 */
	.globl long_mode_exit
long_mode_exit:
	mov	4(%esp), %ebp		/* the exit code, kept across the switch */
	mov	$lm_pdpt + 3, %eax	/* P | RW */
	mov	%eax, lm_pml4
	mov	$lm_pd + 3, %eax
	mov	%eax, lm_pdpt
	xor	%ecx, %ecx
1:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x83, %eax		/* P | RW | PS */
	mov	%eax, lm_pd(,%ecx,8)
	inc	%ecx
	cmp	$512, %ecx
	jb	1b
	lgdt	lm_gdtr
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$lm_pml4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx	/* EFER */
	rdmsr
	or	$0x100, %eax		/* LME */
	wrmsr
	mov	%cr0, %eax
	or	$0x80000000, %eax	/* PG: now LMA = 1 */
	mov	%eax, %cr0
	ljmp	$0x08, $lm64

	.code64
lm64:
	mov	$0x10, %eax
	mov	%eax, %ds
	mov	%eax, %ss
	lea	lm_msg(%rip), %rsi
	mov	$0x3f8, %edx
2:	lodsb
	test	%al, %al
	jz	3f
	out	%al, %dx
	jmp	2b
3:	mov	%ebp, %eax
	out	%al, $0xf4		/* isa-debug-exit: status (code << 1) | 1 */
4:	cli
	hlt
	jmp	4b

	.section .rodata
lm_msg:
	.asciz	"long mode ok\n"
	.balign 8
lm_gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08: 64-bit code, DPL0 */
	.quad	0x00cf92000000ffff	/* 0x10: data, DPL0 */
lm_gdtr:
	.word	3 * 8 - 1
	.long	lm_gdt

	.section .bss
	.balign 4096
lm_pml4: .space	4096
lm_pdpt: .space	4096
lm_pd:	.space	4096
	.balign 16
	.space	16384
stack_top:

	.section .note.GNU-stack, "", @progbits
