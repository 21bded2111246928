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

	.section .bss
	.balign 16
	.space	16384
stack_top:

	.section .note.GNU-stack, "", @progbits
