/* SPDX-License-Identifier: MIT */
/*
 * mboot.elf / mboot-aout.elf: a 32-bit Multiboot 1 guest. It demonstrates
 * both Multiboot loading paths (ELF program headers, and the a.out kludge
 * with load addresses in the header; see start.S) and prints what the
 * loader handed over in the multiboot info: memory sizes, command line,
 * modules and the memory map. Then it probes fw_cfg and exits through the
 * debug-exit port with N from "exit=N" on the command line. With the word
 * "paging32" it first checks 32-bit paging (paging32.c), with "pae" PAE
 * paging (pae.c), with "events32"
 * exceptions and user mode (events32.c); with "longmode" it
 * leaves through its own switch to long mode (start.S).
 */
#include <stdint.h>

#include "fwcfg.h"
#include "lib.h"
#include "print.h"
#include "uart.h"

#define MB_BOOTLOADER_MAGIC 0x2BADB002 /* in EAX at entry */

/* multiboot_info.flags: which fields are valid (Multiboot spec 3.3). */
#define MB_INFO_MEMORY (1u << 0)  /* mem_lower, mem_upper */
#define MB_INFO_CMDLINE (1u << 2) /* cmdline */
#define MB_INFO_MODS (1u << 3)    /* mods_count, mods_addr */
#define MB_INFO_MMAP (1u << 6)    /* mmap_length, mmap_addr */

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower; /* KiB below 1 MiB */
	uint32_t mem_upper; /* KiB from 1 MiB to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length; /* bytes */
	uint32_t mmap_addr;
} __attribute__((packed));

struct mb_module {
	uint32_t mod_start;
	uint32_t mod_end; /* exclusive */
	uint32_t string;  /* 0 or a NUL-terminated string */
	uint32_t reserved;
};

/*
 * Each mmap entry is preceded by its size, which does not count the size
 * field itself: the next entry is at (char *)e + e->size + 4.
 */
struct mb_mmap_entry {
	uint32_t size;
	uint64_t base_addr;
	uint64_t length;
	uint32_t type;
} __attribute__((packed));

#define MOD_LINE_MAX 60

static void *phys(uint32_t addr)
{
	return (void *)(uintptr_t)addr; /* paging is off */
}

/* The first line of a module (up to MOD_LINE_MAX chars, '.' for non-ASCII). */
static void print_first_line(const char *p, uint32_t size)
{
	uint32_t i;

	for (i = 0; i < size && i < MOD_LINE_MAX; i++) {
		char c = p[i];

		if (c == '\n' || c == '\r' || c == '\0')
			break;
		kprintf("%c", (c >= 0x20 && c <= 0x7e) ? c : '.');
	}
}

static void print_modules(const struct mb_info *mbi)
{
	const struct mb_module *mod = phys(mbi->mods_addr);
	uint32_t i;

	kprintf("mods: %u\n", (unsigned)mbi->mods_count);
	for (i = 0; i < mbi->mods_count; i++, mod++) {
		uint32_t size = mod->mod_end - mod->mod_start;

		kprintf("mod %u: %u bytes: ", (unsigned)i, (unsigned)size);
		print_first_line(phys(mod->mod_start), size);
		kprintf("\n");
		if (mod->string && *(const char *)phys(mod->string))
			kprintf("mod %u string: %s\n", (unsigned)i,
				(const char *)phys(mod->string));
	}
}

static void print_mmap(const struct mb_info *mbi)
{
	uintptr_t p, end = (uintptr_t)mbi->mmap_addr + mbi->mmap_length;
	const struct mb_mmap_entry *e;
	unsigned n = 0;

	for (p = mbi->mmap_addr; p < end; p += e->size + 4) {
		e = phys((uint32_t)p);
		n++;
	}
	kprintf("mmap: %u entries\n", n);
	for (p = mbi->mmap_addr; p < end; p += e->size + 4) {
		e = phys((uint32_t)p);
		kprintf("  0x%llx 0x%llx type %u\n",
			(unsigned long long)e->base_addr,
			(unsigned long long)e->length, (unsigned)e->type);
	}
}

void mboot_main(uint32_t magic, const struct mb_info *mbi);
/* start.S: switch to long mode, print a line from 64-bit code, debug-exit(code). */
__attribute__((noreturn)) void long_mode_exit(unsigned code);
/* paging32.c: the 32-bit paging checks; the number that failed. */
unsigned paging32_test(void);
/* pae.c: the PAE paging checks; the number that failed. */
unsigned pae_test(void);
/* events32.c: exceptions, int n and user mode in 32-bit protected mode; the number that failed. */
unsigned events32_test(void);
/* events32.c: int n through a task gate (shadow mode stops the VM). */
void events32_taskgate(void);
void mboot_main(uint32_t magic, const struct mb_info *mbi)
{
	const char *cmdline = "";

	uart_init();
	kprintf("hello from multiboot guest\n");
	if (magic != MB_BOOTLOADER_MAGIC) {
		kprintf("bad magic 0x%x\n", (unsigned)magic);
		debug_exit(EXIT_BAD_BOOT);
	}
	kprintf("magic ok\n");

	if (mbi->flags & MB_INFO_MEMORY)
		kprintf("mem_lower %u KiB mem_upper %u KiB\n",
			(unsigned)mbi->mem_lower, (unsigned)mbi->mem_upper);
	if ((mbi->flags & MB_INFO_CMDLINE) && mbi->cmdline) {
		cmdline = phys(mbi->cmdline);
		kprintf("cmdline: %s\n", cmdline);
	}
	if (mbi->flags & MB_INFO_MODS)
		print_modules(mbi);
	if (mbi->flags & MB_INFO_MMAP)
		print_mmap(mbi);
	fwcfg_report();
	if (cmdline_has_word(cmdline, "paging32") && paging32_test())
		debug_exit(EXIT_CHECK_FAILED);
	if (cmdline_has_word(cmdline, "pae") && pae_test())
		debug_exit(EXIT_CHECK_FAILED);
	if (cmdline_has_word(cmdline, "events32") && events32_test())
		debug_exit(EXIT_CHECK_FAILED);
	if (cmdline_has_word(cmdline, "taskgate"))
		events32_taskgate();

	kprintf("bye\n");
	if (cmdline_has_word(cmdline, "longmode"))
		long_mode_exit(cmdline_exit_code(cmdline));
	debug_exit(cmdline_exit_code(cmdline));
}
