/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the ELF64 loader (vmm/load_elf.c) and the format dispatch
 * (boot_load in vmm/boot.c), against Umbra's boot contract
 * (include/umbra/bootinfo.h).
 *
 * ELF images are built in memory with <elf.h>; guest RAM is a real struct
 * guest_mem of 64 MiB whose first 8 MiB are pre-filled with 0xAA, so that
 * "zeroed" and "left alone" can be told apart. Every malformed image must be
 * refused with -EINVAL and a message saying why.
 */
#include <stdio.h>

#include "umbra/bootinfo.h"

#include "boot_env.h"

#define KERNEL_PADDR  0x100000ull
#define KERNEL_FILESZ 0x1800ull
#define KERNEL_MEMSZ  0x2345ull
#define KERNEL_ENTRY  (KERNEL_PADDR + 0x10)
#define HIGH_VADDR    0xffffffff80100000ull

/* x86 paging bits, spelled out independently of shadow/x86.h. */
#define P_PRESENT 0x1ull
#define P_RW	  0x2ull
#define P_PS	  0x80ull

#define SEG_DATA_START 0x1000 /* file offset of the first segment's bytes */

struct seg {
	u32 type;
	u64 vaddr, paddr, filesz, memsz;
};

/* Byte j of segment i's file contents. */
static u8 seg_byte(unsigned i, u64 j)
{
	return (u8)(i * 31 + j * 7 + 1);
}

/*
 * An ELF64 x86-64 executable: the header, `n` program headers right after it,
 * then each segment's file bytes at page-aligned offsets from SEG_DATA_START.
 */
static u8 *build_elf64(const struct seg *s, unsigned n, u64 entry, size_t *size)
{
	size_t off = SEG_DATA_START, total;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	u8 *img;

	for (unsigned i = 0; i < n; i++)
		off += ALIGN_UP(s[i].filesz, 0x1000);
	total = off;
	img = calloc(1, total);
	assert_non_null(img);
	eh = (Elf64_Ehdr *)img;
	put_elf_ident(img, ELFCLASS64);
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = (u16)n;
	ph = (Elf64_Phdr *)(img + sizeof(*eh));
	off = SEG_DATA_START;
	for (unsigned i = 0; i < n; i++) {
		ph[i] = (Elf64_Phdr){
			.p_type = s[i].type,
			.p_flags = PF_R | PF_X,
			.p_offset = off,
			.p_vaddr = s[i].vaddr,
			.p_paddr = s[i].paddr,
			.p_filesz = s[i].filesz,
			.p_memsz = s[i].memsz,
			.p_align = 0x1000,
		};
		for (u64 j = 0; j < s[i].filesz; j++)
			img[off + j] = seg_byte(i, j);
		off += ALIGN_UP(s[i].filesz, 0x1000);
	}
	*size = total;
	return img;
}

static Elf64_Ehdr *ehdr(struct env *e)
{
	return (Elf64_Ehdr *)e->img;
}

static Elf64_Phdr *phdr(struct env *e, unsigned i)
{
	return (Elf64_Phdr *)(e->img + ehdr(e)->e_phoff) + i;
}

/* Replace the image with a new one. */
static void set_image(struct env *e, const struct seg *s, unsigned n, u64 entry)
{
	size_t size;
	u8 *img = build_elf64(s, n, entry, &size);

	env_set_image(e, img, size);
}

/* Move the (only) segment and the entry point to `a`. */
static void move_segment(struct env *e, u64 a)
{
	phdr(e, 0)->p_paddr = a;
	phdr(e, 0)->p_vaddr = a;
	ehdr(e)->e_entry = a;
}

static int setup(void **state)
{
	const struct seg k = { PT_LOAD, KERNEL_PADDR, KERNEL_PADDR, KERNEL_FILESZ, KERNEL_MEMSZ };
	struct env *e = env_new("test.elf");

	if (!e)
		return -1;
	set_image(e, &k, 1, KERNEL_ENTRY);
	*state = e;
	return 0;
}

/* ---- good images ----------------------------------------------------------- */

static void test_detect(void **state)
{
	struct env *e = *state;
	u8 elf32[EI_NIDENT] = { 0x7f, 'E', 'L', 'F', ELFCLASS32 };

	assert_true(elf64_detect(e->img, e->size));
	assert_true(elf64_detect(e->img, 5)); /* identity only: the loader checks the rest */
	assert_false(elf64_detect(e->img, 4));
	assert_false(elf64_detect(elf32, sizeof(elf32)));
	assert_false(elf64_detect((const u8 *)"#!/bin/sh\n", 10));
}

static void test_one_segment(void **state)
{
	struct env *e = *state;
	const u8 *p;

	assert_int_equal(load(e), 0);
	assert_string_equal(e->bs.format, "elf64");
	p = ram(e, KERNEL_PADDR, KERNEL_MEMSZ);
	for (u64 j = 0; j < KERNEL_FILESZ; j++)
		if (p[j] != seg_byte(0, j))
			fail_msg("byte %llu of the segment not copied", (unsigned long long)j);
	/* [filesz, memsz) zeroed; nothing after it touched. */
	assert_filled(e, KERNEL_PADDR + KERNEL_FILESZ, KERNEL_MEMSZ - KERNEL_FILESZ, 0);
	assert_filled(e, KERNEL_PADDR + KERNEL_MEMSZ, 0x1000, FILL);
	assert_int_equal(e->bs.load_start, KERNEL_PADDR);
	assert_int_equal(e->bs.load_end, KERNEL_PADDR + KERNEL_MEMSZ);
	assert_int_equal(e->bs.rip, KERNEL_ENTRY);
}

static void test_entry_translated_to_physical(void **state)
{
	struct env *e = *state;
	const struct seg k[] = {
		{ PT_LOAD, HIGH_VADDR, KERNEL_PADDR, 0x1000, 0x4000 },
	};

	set_image(e, k, 1, HIGH_VADDR + 0x2040);
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.rip, KERNEL_PADDR + 0x2040);
	assert_int_equal(e->bs.load_start, KERNEL_PADDR);
	assert_int_equal(e->bs.load_end, KERNEL_PADDR + 0x4000);
	assert_int_equal(*(u8 *)ram(e, KERNEL_PADDR + 5, 1), seg_byte(0, 5));
}

static void test_several_segments(void **state)
{
	struct env *e = *state;
	const struct seg k[] = {
		{ PT_LOAD, 0x200000, 0x200000, 0x800, 0x1000 },
		{ PT_NOTE, 0, 0, 0x10, 0x10 },			   /* not loaded */
		{ PT_LOAD, 0x300000, 0x300000, 0, 0 },		   /* empty: skipped */
		{ PT_LOAD, HIGH_VADDR, 0x180000, 0x1000, 0x3000 }, /* lowest, entry here */
	};

	set_image(e, k, ARRAY_SIZE(k), HIGH_VADDR + 0x2ff0);
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.load_start, 0x180000);
	assert_int_equal(e->bs.load_end, 0x201000);
	assert_int_equal(e->bs.rip, 0x182ff0);
	assert_int_equal(*(u8 *)ram(e, 0x200000 + 0x7ff, 1), seg_byte(0, 0x7ff));
	assert_filled(e, 0x200800, 0x800, 0);
	assert_int_equal(*(u8 *)ram(e, 0x180000 + 0xfff, 1), seg_byte(3, 0xfff));
	assert_filled(e, 0x181000, 0x2000, 0);
	/* The PT_NOTE at paddr 0 and the empty PT_LOAD were left alone. */
	assert_filled(e, 0x300000, 0x10, FILL);
}

static void test_boot_state(void **state)
{
	struct env *e = *state;

	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.mode, BOOT_LONG64);
	assert_int_equal(e->bs.rdi, 0x2000);
	assert_int_equal(e->bs.rdi, UMBRA_BOOT_INFO);
	assert_int_equal(e->bs.rsi, 0x554d425241424f4full);
	assert_int_equal(e->bs.rsp, 0x80000);
	assert_int_equal(e->bs.rsp % 16, 0);
	assert_int_equal(e->bs.cr3, 0x10000);
	assert_int_equal(e->bs.rflags, 0x2);
	assert_int_equal(e->bs.rax, 0);
	assert_int_equal(e->bs.rbx, 0);
	assert_false(e->bs.nx);
	e->in.cpu_has_nx = true;
	assert_int_equal(load(e), 0);
	assert_true(e->bs.nx);
}

static void test_boot_info(void **state)
{
	struct env *e = *state;
	const struct umbra_boot_info *bi;

	e->in.cmdline = "console=ttyS0 hello";
	assert_int_equal(load(e), 0);
	bi = ram(e, UMBRA_BOOT_INFO, sizeof(*bi));
	assert_int_equal(bi->magic, UMBRA_BOOT_MAGIC);
	assert_int_equal(bi->version, 1);
	assert_int_equal(bi->nr_mem, 4);
	assert_int_equal(bi->mem[0].addr, 0);
	assert_int_equal(bi->mem[0].len, 0x9fc00);
	assert_int_equal(bi->mem[0].type, UMBRA_MEM_RAM);
	assert_int_equal(bi->mem[1].addr, 0x9fc00);
	assert_int_equal(bi->mem[1].len, 0x400);
	assert_int_equal(bi->mem[1].type, UMBRA_MEM_RESERVED);
	assert_int_equal(bi->mem[2].addr, 0xe0000);
	assert_int_equal(bi->mem[2].len, 0x20000);
	assert_int_equal(bi->mem[2].type, UMBRA_MEM_RESERVED);
	assert_int_equal(bi->mem[3].addr, 0x100000);
	assert_int_equal(bi->mem[3].len, 63 * MiB);
	assert_int_equal(bi->mem[3].type, UMBRA_MEM_RAM);
	assert_int_equal(bi->mem[4].len, 0);
	assert_int_equal(bi->ram_size, 0x9fc00 + 63 * MiB);
	assert_int_equal(bi->cmdline, UMBRA_BOOT_CMDLINE);
	assert_int_equal(bi->cmdline_len, strlen("console=ttyS0 hello"));
	assert_string_equal((const char *)ram(e, bi->cmdline, 64), "console=ttyS0 hello");
	assert_int_equal(bi->initrd, 0);
	assert_int_equal(bi->initrd_size, 0);
}

static void test_empty_cmdline(void **state)
{
	struct env *e = *state;
	const struct umbra_boot_info *bi;

	assert_int_equal(load(e), 0);
	bi = ram(e, UMBRA_BOOT_INFO, sizeof(*bi));
	assert_int_equal(bi->cmdline_len, 0);
	assert_int_equal(*(const char *)ram(e, UMBRA_BOOT_CMDLINE, 1), '\0');
}

static void test_cmdline_limit(void **state)
{
	struct env *e = *state;
	char *cmd = malloc(4097);
	const struct umbra_boot_info *bi;

	assert_non_null(cmd);
	memset(cmd, 'c', 4096);
	cmd[4095] = '\0';
	e->in.cmdline = cmd;
	assert_int_equal(load(e), 0);
	bi = ram(e, UMBRA_BOOT_INFO, sizeof(*bi));
	assert_int_equal(bi->cmdline_len, 4095);
	assert_int_equal(strnlen(ram(e, UMBRA_BOOT_CMDLINE, 4096), 4096), 4095);
	cmd[4095] = 'c';
	cmd[4096] = '\0';
	expect_einval(e, "command line is 4096 bytes; the limit is 4095");
	free(cmd);
	e->in.cmdline = "";
}

static void test_identity_page_tables(void **state)
{
	struct env *e = *state;
	const u64 pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000;
	const u64 flags = P_PRESENT | P_RW | P_PS;

	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.cr3, pml4);
	assert_int_equal(ram64(e, pml4), pdpt | P_PRESENT | P_RW);
	assert_int_equal(ram64(e, pml4 + 8), 0);
	assert_int_equal(ram64(e, pml4 + 511 * 8), 0);
	/* 64 MiB of RAM: still [0, 4 GiB) mapped, four page directories. */
	for (u64 i = 0; i < 4; i++)
		assert_int_equal(ram64(e, pdpt + i * 8), (pd + i * 0x1000) | P_PRESENT | P_RW);
	assert_int_equal(ram64(e, pdpt + 4 * 8), 0);
	assert_int_equal(ram64(e, pdpt + 511 * 8), 0);
	assert_int_equal(ram64(e, pd), 0 | flags);
	assert_int_equal(ram64(e, pd + 8), 0x200000 | flags);
	assert_int_equal(ram64(e, pd + 511 * 8), 0x3fe00000 | flags);
	assert_int_equal(ram64(e, pd + 0x1000), 0x40000000 | flags);
	/* 3 GiB + 2 MiB: PDPT index 3, PD index 1. */
	assert_int_equal(ram64(e, pd + 3 * 0x1000 + 8), 0xc0200000 | flags);
	assert_int_equal(ram64(e, pd + 3 * 0x1000 + 511 * 8), 0xffe00000 | flags);
	/* The tables stay below the stack. */
	assert_true(pd + 4 * 0x1000 <= e->bs.rsp);
}

static void test_identity_map_covers_high_ram(void **state)
{
	struct big_guest big;
	struct env *e = *state;
	const u64 pdpt = 0x11000, pd = 0x12000;
	const struct umbra_boot_info *bi;

	assert_int_equal(load_big(e, &big), 0);
	/* RAM ends at 6 GiB: six page directories. */
	for (u64 i = 0; i < 6; i++)
		assert_int_equal(guest_u64(&big.mem, pdpt + i * 8),
				 (pd + i * 0x1000) | P_PRESENT | P_RW);
	assert_int_equal(guest_u64(&big.mem, pdpt + 6 * 8), 0);
	assert_int_equal(guest_u64(&big.mem, pd + 5 * 0x1000 + 511 * 8),
			 (6 * GiB - 2 * MiB) | P_PRESENT | P_RW | P_PS);
	bi = guest_ptr(&big.mem, UMBRA_BOOT_INFO, sizeof(*bi));
	assert_int_equal(bi->nr_mem, 5);
	assert_int_equal(bi->mem[4].addr, 4 * GiB);
	assert_int_equal(bi->mem[4].len, 2 * GiB);
	assert_int_equal(bi->mem[4].type, UMBRA_MEM_RAM);
	assert_int_equal(bi->ram_size, 0x9fc00 + 3 * GiB - 1 * MiB + 2 * GiB);
	guest_mem_destroy(&big.mem);
}

static void test_gdt(void **state)
{
	struct env *e = *state;
	u64 code;

	assert_int_equal(load(e), 0);
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT), 0);
	code = ram64(e, UMBRA_BOOT_GDT + 8);
	assert_true(code & (1ull << 53));      /* L: 64-bit */
	assert_false(code & (1ull << 54));     /* D must be 0 with L */
	assert_true(code & (1ull << 47));      /* present */
	assert_true(code & (1ull << 43));      /* code */
	assert_int_equal((code >> 45) & 3, 0); /* DPL 0 */
	assert_int_equal(code, 0x00af9a000000ffffull);
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT + 0x10), 0x00cf92000000ffffull);
	/* Entry 3: a 32-bit code segment (D set, L clear). */
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT + 0x18), 0x00cf9a000000ffffull);
}

static void test_initrd(void **state)
{
	struct env *e = *state;
	u8 rd[3000];
	const struct umbra_boot_info *bi;

	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (u8)(i * 13 + 5);
	env_set_initrd(e, rd, sizeof(rd), "rd.img");
	assert_int_equal(load(e), 0);
	bi = ram(e, UMBRA_BOOT_INFO, sizeof(*bi));
	/* The kernel ends at 0x102345: the initrd goes on the next page. */
	assert_int_equal(bi->initrd, 0x103000);
	assert_int_equal(bi->initrd_size, sizeof(rd));
	assert_memory_equal(ram(e, 0x103000, sizeof(rd)), rd, sizeof(rd));
	assert_filled(e, 0x103000 + sizeof(rd), 0x100, FILL);
	env_clear_initrd(e);
}

static void test_initrd_fills_ram_exactly(void **state)
{
	struct env *e = *state;
	size_t n = RAM_SIZE - 0x103000;
	u8 *rd = malloc(n + 1);
	const struct umbra_boot_info *bi;

	assert_non_null(rd);
	memset(rd, 0x3c, n + 1);
	env_set_initrd(e, rd, n, NULL);
	assert_int_equal(load(e), 0);
	bi = ram(e, UMBRA_BOOT_INFO, sizeof(*bi));
	assert_int_equal(bi->initrd, 0x103000);
	assert_int_equal(*(u8 *)ram(e, RAM_SIZE - 1, 1), 0x3c);
	/* One byte more does not fit. */
	e->in.initrd_size = n + 1;
	expect_einval(e, "does not fit in RAM after the kernel at 0x103000");
	free(rd);
	env_clear_initrd(e);
}

/* ---- malformed headers ------------------------------------------------------ */

static void test_truncated_header(void **state)
{
	struct env *e = *state;

	e->in.image_size = 10;
	expect_einval(e, "truncated ELF header (10 bytes)");
	e->in.image_size = 40;
	expect_einval(e, "truncated ELF header (40 bytes)");
	e->in.image_size = 63;
	expect_einval(e, "truncated ELF header (63 bytes)");
}

static void test_big_endian(void **state)
{
	struct env *e = *state;

	e->img[EI_DATA] = ELFDATA2MSB;
	expect_einval(e, "not little-endian");
}

static void test_wrong_machine(void **state)
{
	struct env *e = *state;

	ehdr(e)->e_machine = EM_AARCH64;
	expect_einval(e, "not for x86-64 (e_machine 183)");
}

static void test_not_executable(void **state)
{
	struct env *e = *state;

	ehdr(e)->e_type = ET_DYN;
	expect_einval(e, "not an executable (e_type 3)");
	ehdr(e)->e_type = ET_REL;
	expect_einval(e, "not an executable (e_type 1)");
}

static void test_wrong_phentsize(void **state)
{
	struct env *e = *state;

	ehdr(e)->e_phentsize = sizeof(Elf32_Phdr);
	expect_einval(e, "no usable program headers");
}

static void test_no_program_headers(void **state)
{
	struct env *e = *state;

	ehdr(e)->e_phnum = 0;
	expect_einval(e, "no usable program headers");
}

static void test_phdrs_beyond_file(void **state)
{
	struct env *e = *state;
	char want[80];

	snprintf(want, sizeof(want), "program headers end beyond %zu bytes", e->size);
	ehdr(e)->e_phoff = e->size - 8;
	expect_einval(e, want);
	ehdr(e)->e_phoff = e->size;
	expect_einval(e, want);
	ehdr(e)->e_phoff = 0xffffffffffffff00ull;
	expect_einval(e, want);
	ehdr(e)->e_phoff = 64;
	ehdr(e)->e_phnum = 0xffff;
	expect_einval(e, want);
}

/* The program header table is exactly at the end of the file: fine. */
static void test_phdrs_at_end_of_file(void **state)
{
	struct env *e = *state;
	u8 *img = malloc(e->size + sizeof(Elf64_Phdr));

	assert_non_null(img);
	memcpy(img, e->img, e->size);
	memcpy(img + e->size, e->img + 64, sizeof(Elf64_Phdr));
	((Elf64_Ehdr *)img)->e_phoff = e->size;
	env_use_image(e, img, e->size + sizeof(Elf64_Phdr));
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.rip, KERNEL_ENTRY);
	e->in.image_size--;
	expect_einval(e, "program headers end beyond");
	env_restore_image(e);
	free(img);
}

/* ---- malformed segments ----------------------------------------------------- */

static void test_segment_beyond_file(void **state)
{
	struct env *e = *state;

	phdr(e, 0)->p_filesz = e->size - SEG_DATA_START + 1;
	phdr(e, 0)->p_memsz = phdr(e, 0)->p_filesz;
	expect_einval(e, "truncated ELF file: segment 0 needs bytes [0x1000, +0x2001) of a 12288-byte file");
	/* Exactly to the end is fine. */
	phdr(e, 0)->p_filesz = e->size - SEG_DATA_START;
	assert_int_equal(load(e), 0);
}

static void test_segment_offset_overflow(void **state)
{
	struct env *e = *state;

	phdr(e, 0)->p_offset = 0xffffffffffffff00ull;
	phdr(e, 0)->p_filesz = 0x200;
	expect_einval(e, "truncated ELF file: segment 0");
	phdr(e, 0)->p_offset = e->size + 1;
	phdr(e, 0)->p_filesz = 0;
	expect_einval(e, "truncated ELF file: segment 0");
}

/* A wrapping p_offset + p_filesz is reported as the two fields, not their sum. */
static void test_segment_offset_overflow_message(void **state)
{
	struct env *e = *state;

	phdr(e, 0)->p_offset = 0xffffffffffffff00ull;
	phdr(e, 0)->p_filesz = 0x200;
	expect_einval(e, "truncated ELF file: segment 0");
	if (strstr(e->err, "up to 256 "))
		fail_msg("wrapped offset in message: '%s'", e->err);
}

static void test_filesz_above_memsz(void **state)
{
	struct env *e = *state;

	phdr(e, 0)->p_memsz = KERNEL_FILESZ - 1;
	expect_einval(e, "segment at 0x100000 has file size above its memory size");
}

static void test_segment_outside_ram(void **state)
{
	struct env *e = *state;
	const struct seg k = { PT_LOAD, 1 * GiB, 1 * GiB, 0x1000, 0x1000 };

	set_image(e, &k, 1, 1 * GiB);
	expect_einval(e, "segment [0x40000000, +0x1000) lies outside guest RAM (64 MiB");
}

static void test_segment_straddles_end_of_ram(void **state)
{
	struct env *e = *state;
	const struct seg k = { PT_LOAD, RAM_SIZE - 0x1000, RAM_SIZE - 0x1000, 0x1000, 0x2000 };

	set_image(e, &k, 1, RAM_SIZE - 0x1000);
	expect_einval(e, "segment [0x3fff000, +0x2000) lies outside guest RAM");
	/* Ending exactly at the end of RAM is fine. */
	phdr(e, 0)->p_memsz = 0x1000;
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.load_end, RAM_SIZE);
}

static void test_segment_address_overflow(void **state)
{
	struct env *e = *state;
	const struct seg k = { PT_LOAD, 0xfffffffffffff000ull, 0xfffffffffffff000ull, 0x1000,
			       0x2000 };

	set_image(e, &k, 1, 0xfffffffffffff000ull);
	expect_einval(e, "lies outside guest RAM");
	/* A length that wraps the address back into RAM. */
	phdr(e, 0)->p_paddr = KERNEL_PADDR;
	phdr(e, 0)->p_memsz = 0xffffffffffffff00ull;
	expect_einval(e, "lies outside guest RAM");
}

static void test_segment_in_boot_area(void **state)
{
	struct env *e = *state;
	const struct seg k = { PT_LOAD, 0x8000, 0x8000, 0x100, 0x100 };

	set_image(e, &k, 1, 0x8000);
	expect_einval(e, "segment at 0x8000 overlaps the boot area below 0x80000");
	/* Ending inside the boot area is refused too, and so is a segment at 0. */
	move_segment(e, 0x7ff00);
	expect_einval(e, "segment at 0x7ff00 overlaps the boot area");
	phdr(e, 0)->p_paddr = 0;
	expect_einval(e, "overlaps the boot area");
	/* The first byte above the boot area is allowed. */
	move_segment(e, 0x80000);
	assert_int_equal(load(e), 0);
}

static void test_segment_in_legacy_hole(void **state)
{
	struct env *e = *state;
	const struct seg k = { PT_LOAD, 0xa0000, 0xa0000, 0x100, 0x100 };

	set_image(e, &k, 1, 0xa0000);
	expect_einval(e, "segment [0xa0000, +0x100) lies outside guest RAM");
	/* The ROM window is not RAM either. */
	phdr(e, 0)->p_paddr = 0xf0000;
	expect_einval(e, "segment [0xf0000, +0x100) lies outside guest RAM");
	/* A segment running from low RAM into the hole crosses the EBDA first. */
	phdr(e, 0)->p_paddr = 0x9ff80;
	expect_einval(e, "segment at 0x9ff80 overlaps the reserved EBDA at 0x9fc00");
	/* So does one that merely ends inside it, or starts inside it. */
	phdr(e, 0)->p_paddr = 0x9fb80;
	expect_einval(e, "overlaps the reserved EBDA");
	phdr(e, 0)->p_paddr = 0x9fc10;
	phdr(e, 0)->p_memsz = phdr(e, 0)->p_filesz = 0x10;
	expect_einval(e, "overlaps the reserved EBDA");
	/* Low RAM just below the EBDA is fine. */
	const struct seg low = { PT_LOAD, 0x9fb00, 0x9fb00, 0x100, 0x100 };

	set_image(e, &low, 1, 0x9fb00);
	assert_int_equal(load(e), 0);
}

static void test_no_pt_load(void **state)
{
	struct env *e = *state;
	const struct seg k[] = {
		{ PT_NOTE, KERNEL_PADDR, KERNEL_PADDR, 0x10, 0x10 },
		{ PT_LOAD, KERNEL_PADDR, KERNEL_PADDR, 0, 0 },
	};

	set_image(e, k, ARRAY_SIZE(k), KERNEL_PADDR);
	expect_einval(e, "ELF file has no PT_LOAD segment");
}

static void test_entry_outside_segments(void **state)
{
	struct env *e = *state;

	ehdr(e)->e_entry = 0x200000;
	expect_einval(e, "entry point 0x200000 is not inside any loaded segment");
	/* One past the end of the segment. */
	ehdr(e)->e_entry = KERNEL_PADDR + KERNEL_MEMSZ;
	expect_einval(e, "entry point 0x102345 is not inside");
	/* Just below it. */
	ehdr(e)->e_entry = KERNEL_PADDR - 1;
	expect_einval(e, "entry point 0xfffff is not inside");
	/* The last byte is inside (in the zeroed tail). */
	ehdr(e)->e_entry = KERNEL_PADDR + KERNEL_MEMSZ - 1;
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.rip, KERNEL_PADDR + KERNEL_MEMSZ - 1);
}

/* Program headers at an odd offset are read without misaligned access (UBSan checks). */
static void test_misaligned_phoff(void **state)
{
	struct env *e = *state;
	u8 *img = calloc(1, e->size + 8);
	int r;

	assert_non_null(img);
	memcpy(img, e->img, e->size);
	/* Move the program header table to an odd offset. */
	memmove(img + 65, img + 64, sizeof(Elf64_Phdr));
	((Elf64_Ehdr *)img)->e_phoff = 65;
	env_use_image(e, img, e->size);
	r = load(e);
	/* Either answer is acceptable; reaching here without UB is the test. */
	assert_true(r == 0 || (r == -EINVAL && strstr(e->err, "align")));
	env_restore_image(e);
	free(img);
}

/* ---- boot_load dispatch ----------------------------------------------------- */

static void test_not_a_kernel(void **state)
{
	struct env *e = *state;
	u8 junk[4096];
	const char script[] = "#!/bin/sh\necho hello\n";

	srand(1234);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (u8)rand();
	env_use_image(e, junk, sizeof(junk));
	expect_einval(e, "not a kernel image: no ELF magic, no Multiboot header and no Linux "
			 "bzImage setup header");
	env_use_image(e, (const u8 *)script, sizeof(script) - 1);
	expect_einval(e, "not a kernel image");
	env_use_image(e, junk, 0);
	expect_einval(e, "not a kernel image");
	env_restore_image(e);
}

static void test_elf32_without_multiboot(void **state)
{
	struct env *e = *state;
	u8 img[256] = { 0 };
	Elf32_Ehdr *eh = (Elf32_Ehdr *)img;

	put_elf_ident(img, ELFCLASS32);
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_386;
	env_use_image(e, img, sizeof(img));
	expect_einval(e, "ELF file is not a 64-bit x86-64 kernel and has no Multiboot header");
	env_restore_image(e);
}

/* A failed load leaves the boot state cleared, not half filled. */
static void test_failure_clears_state(void **state)
{
	struct env *e = *state;

	memset(&e->bs, 0x5a, sizeof(e->bs));
	e->in.image_size = 10;
	assert_int_equal(load(e), -EINVAL);
	assert_null(e->bs.format);
	assert_int_equal(e->bs.rip, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, env_teardown)
	const struct CMUnitTest tests[] = {
		T(test_detect),
		T(test_one_segment),
		T(test_entry_translated_to_physical),
		T(test_several_segments),
		T(test_boot_state),
		T(test_boot_info),
		T(test_empty_cmdline),
		T(test_cmdline_limit),
		T(test_identity_page_tables),
		T(test_identity_map_covers_high_ram),
		T(test_gdt),
		T(test_initrd),
		T(test_initrd_fills_ram_exactly),
		T(test_truncated_header),
		T(test_big_endian),
		T(test_wrong_machine),
		T(test_not_executable),
		T(test_wrong_phentsize),
		T(test_no_program_headers),
		T(test_phdrs_beyond_file),
		T(test_phdrs_at_end_of_file),
		T(test_segment_beyond_file),
		T(test_segment_offset_overflow),
		T(test_segment_offset_overflow_message),
		T(test_filesz_above_memsz),
		T(test_segment_outside_ram),
		T(test_segment_straddles_end_of_ram),
		T(test_segment_address_overflow),
		T(test_segment_in_boot_area),
		T(test_segment_in_legacy_hole),
		T(test_no_pt_load),
		T(test_entry_outside_segments),
		T(test_misaligned_phoff),
		T(test_not_a_kernel),
		T(test_elf32_without_multiboot),
		T(test_failure_clears_state),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
