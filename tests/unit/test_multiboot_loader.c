/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the Multiboot v1 loader (vmm/load_multiboot.c), against the
 * Multiboot Specification 0.6.96: §3.1.1-3.1.3 (header, its position and the
 * a.out address fields), §3.2 (machine state) and §3.3 (boot information).
 *
 * Images are built in memory in the two forms the loader accepts: a 32-bit
 * i386 ELF with a Multiboot header inside its first segment, and a flat
 * "a.out kludge" image whose header gives the load addresses. Guest RAM is a
 * real 64 MiB struct guest_mem with its first 8 MiB pre-filled with 0xAA.
 */
#include <stdio.h>

#include "umbra/bootinfo.h"

#include "boot_env.h"

/* Multiboot constants, from the specification. */
#define MB_MAGIC	0x1badb002u
#define MB_EAX_MAGIC	0x2badb002u
#define MB_SEARCH	8192
#define MBF_PAGE_ALIGN	(1u << 0)
#define MBF_MEMINFO	(1u << 1)
#define MBF_VIDEO	(1u << 2)
#define MBF_AOUT	(1u << 16)
#define MBI_MEM		(1u << 0)
#define MBI_CMDLINE	(1u << 2)
#define MBI_MODS	(1u << 3)
#define MBI_MMAP	(1u << 6)
#define MBI_LOADER_NAME (1u << 9)

struct mbh {
	u32 magic, flags, checksum;
	u32 header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

/* Boot information (§3.3), as the guest sees it. */
struct mbi {
	u32 flags;
	u32 mem_lower, mem_upper;
	u32 boot_device;
	u32 cmdline;
	u32 mods_count, mods_addr;
	u32 syms[4];
	u32 mmap_length, mmap_addr;
	u32 drives_length, drives_addr;
	u32 config_table;
	u32 boot_loader_name;
	u32 apm_table;
	u32 vbe[4];
};

struct mb_mod {
	u32 mod_start, mod_end, string, reserved;
};

struct mb_mmap {
	u32 size;
	u64 base, len;
	u32 type;
} __attribute__((packed));

/* ELF kernel: one segment at KERNEL_PADDR, the header at HDR_OFF of the file. */
#define KERNEL_PADDR 0x100000u
#define SEG_OFF	     0x1000u
#define SEG_FILESZ   0x1800u
#define SEG_MEMSZ    0x2345u
#define HDR_OFF	     SEG_OFF
#define KERNEL_ENTRY (KERNEL_PADDR + 0x20)

/* a.out kludge kernel: the whole file loaded at AOUT_LOAD. */
#define AOUT_LOAD    0x200000u
#define AOUT_HOFF    0x40u
#define AOUT_SIZE    0x3000u
#define AOUT_BSS_END (AOUT_LOAD + 0x5000u)
#define AOUT_ENTRY   (AOUT_LOAD + 0x100u)

static u8 file_byte(size_t off)
{
	return (u8)(off * 7 + 3);
}

static void put_header(u8 *img, size_t off, u32 flags)
{
	struct mbh h = { .magic = MB_MAGIC, .flags = flags, .checksum = -(MB_MAGIC + flags) };

	memcpy(img + off, &h, 12);
}

static struct mbh *header_at(struct env *e, size_t off)
{
	return (struct mbh *)(e->img + off);
}

/* Re-checksum the header at `off` after changing its flags. */
static void set_flags(struct env *e, size_t off, u32 flags)
{
	header_at(e, off)->flags = flags;
	header_at(e, off)->checksum = -(MB_MAGIC + flags);
}

/* A 32-bit i386 ELF executable with one PT_LOAD segment holding the header. */
static void make_elf32(struct env *e, u32 paddr, u32 vaddr, u32 entry)
{
	size_t size = SEG_OFF + SEG_FILESZ;
	u8 *img = calloc(1, size);
	Elf32_Ehdr *eh = (Elf32_Ehdr *)img;
	Elf32_Phdr *ph = (Elf32_Phdr *)(img + sizeof(*eh));

	assert_non_null(img);
	for (size_t i = SEG_OFF; i < size; i++)
		img[i] = file_byte(i);
	put_elf_ident(img, ELFCLASS32);
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_386;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	*ph = (Elf32_Phdr){
		.p_type = PT_LOAD,
		.p_offset = SEG_OFF,
		.p_vaddr = vaddr,
		.p_paddr = paddr,
		.p_filesz = SEG_FILESZ,
		.p_memsz = SEG_MEMSZ,
		.p_flags = PF_R | PF_X,
		.p_align = 0x1000,
	};
	put_header(img, HDR_OFF, MBF_PAGE_ALIGN | MBF_MEMINFO);
	env_set_image(e, img, size);
}

static Elf32_Ehdr *ehdr32(struct env *e)
{
	return (Elf32_Ehdr *)e->img;
}

static Elf32_Phdr *phdr32(struct env *e)
{
	return (Elf32_Phdr *)(e->img + sizeof(Elf32_Ehdr));
}

/* A flat image of AOUT_SIZE bytes with a kludge header at AOUT_HOFF. */
static void make_aout(struct env *e)
{
	u8 *img = malloc(AOUT_SIZE);
	u32 flags = MBF_PAGE_ALIGN | MBF_MEMINFO | MBF_AOUT;
	struct mbh h = {
		.magic = MB_MAGIC,
		.flags = flags,
		.checksum = -(MB_MAGIC + flags),
		.header_addr = AOUT_LOAD + AOUT_HOFF,
		.load_addr = AOUT_LOAD,
		.load_end_addr = AOUT_LOAD + AOUT_SIZE,
		.bss_end_addr = AOUT_BSS_END,
		.entry_addr = AOUT_ENTRY,
	};

	assert_non_null(img);
	for (size_t i = 0; i < AOUT_SIZE; i++)
		img[i] = file_byte(i);
	memcpy(img + AOUT_HOFF, &h, sizeof(h));
	env_set_image(e, img, AOUT_SIZE);
}

static struct mbh *aout_hdr(struct env *e)
{
	return header_at(e, AOUT_HOFF);
}

static int setup(void **state)
{
	struct env *e = env_new("mb.elf");

	if (!e)
		return -1;
	make_elf32(e, KERNEL_PADDR, KERNEL_PADDR, KERNEL_ENTRY);
	*state = e;
	return 0;
}

static const struct mbi *info(struct env *e)
{
	return ram(e, e->bs.rbx, sizeof(struct mbi));
}

/* The last load entered 32-bit protected mode the Multiboot way (§3.2) at `rip`. */
static void assert_mb_entry(struct env *e, const char *format, u64 rip)
{
	assert_string_equal(e->bs.format, format);
	assert_int_equal(e->bs.mode, BOOT_PROT32);
	assert_int_equal(e->bs.rax, MB_EAX_MAGIC);
	assert_int_equal(e->bs.rbx, 0x2000);
	assert_int_equal(e->bs.rip, rip);
	/* Flat 32-bit code at 0x08 and data at 0x10, as QEMU's loader gives. */
	assert_int_equal(e->bs.cs_sel, 0x08);
	assert_int_equal(e->bs.ds_sel, 0x10);
	assert_int_equal(*(u64 *)gpa_to_hva(&e->mem, gpa(UMBRA_BOOT_GDT + 0x08), 8),
			 0x00cf9a000000ffffull);
	assert_int_equal(*(u64 *)gpa_to_hva(&e->mem, gpa(UMBRA_BOOT_GDT + 0x10), 8),
			 0x00cf92000000ffffull);
}

static void assert_file_bytes_at(struct env *e, u64 a, size_t file_off, size_t len)
{
	const u8 *p = ram(e, a, len);

	for (size_t i = 0; i < len; i++)
		if (p[i] != e->img[file_off + i])
			fail_msg("gpa 0x%llx: 0x%02x, expected file byte 0x%zx = 0x%02x",
				 (unsigned long long)(a + i), p[i], file_off + i,
				 e->img[file_off + i]);
}

/* ---- header search (§3.1.2: 4-byte aligned, inside the first 8192 bytes) ---- */

/*
 * Whether multiboot_detect() finds a lone header put at `off` of the zeroed
 * 3 * MB_SEARCH bytes at `img`; the header is wiped again after.
 */
static bool detect_header_at(u8 *img, size_t off)
{
	bool found;

	put_header(img, off, 0);
	found = multiboot_detect(img, 3 * MB_SEARCH);
	memset(img + off, 0, 12);
	return found;
}

static void test_detect_positions(void **state)
{
	u8 *img = calloc(1, 3 * MB_SEARCH);

	(void)state;
	assert_non_null(img);
	put_header(img, 0, 0);
	assert_true(multiboot_detect(img, 12));
	assert_false(multiboot_detect(img, 11));
	memset(img, 0, 16);
	/* The last offset where all 12 bytes fit in the first 8 KiB. */
	assert_true(detect_header_at(img, MB_SEARCH - 12));
	/*
	 * The header must be "contained completely within the first 8192 bytes"
	 * (§3.1.2); at 8184 or 8188 its checksum lies beyond (GRUB agrees).
	 */
	assert_false(detect_header_at(img, MB_SEARCH - 8));
	assert_false(detect_header_at(img, MB_SEARCH - 4));
	assert_false(detect_header_at(img, MB_SEARCH));
	assert_false(detect_header_at(img, 2 * MB_SEARCH));
	/* Not 4-byte aligned. */
	assert_false(detect_header_at(img, 0x102));
	/* Bad checksum. */
	put_header(img, 0x100, 0);
	img[0x108] ^= 1;
	assert_false(multiboot_detect(img, 3 * MB_SEARCH));
	img[0x108] ^= 1;
	assert_true(multiboot_detect(img, 3 * MB_SEARCH));
	/* The header cut short by the end of the file. */
	assert_false(multiboot_detect(img, 0x100 + 11));
	assert_true(multiboot_detect(img, 0x100 + 12));
	assert_false(multiboot_detect(img, 0));
	free(img);
}

static void test_detect_built_images(void **state)
{
	struct env *e = *state;

	assert_true(multiboot_detect(e->img, e->size));
	make_aout(e);
	assert_true(multiboot_detect(e->img, e->size));
}

/* ---- ELF32 kernels ------------------------------------------------------------ */

static void test_elf_boot_state(void **state)
{
	struct env *e = *state;

	assert_int_equal(load(e), 0);
	assert_mb_entry(e, "multiboot-elf", KERNEL_ENTRY);
	assert_int_equal(e->bs.rflags, 0x2); /* IF = 0 (§3.2) */
	assert_int_equal(e->bs.load_start, KERNEL_PADDR);
	assert_int_equal(e->bs.load_end, KERNEL_PADDR + SEG_MEMSZ);
	assert_int_equal(e->bs.rsp, 0x80000);
	assert_int_equal(e->bs.cr3, 0);
}

static void test_elf_segment_loaded(void **state)
{
	struct env *e = *state;

	assert_int_equal(load(e), 0);
	assert_file_bytes_at(e, KERNEL_PADDR, SEG_OFF, SEG_FILESZ);
	assert_filled(e, KERNEL_PADDR + SEG_FILESZ, SEG_MEMSZ - SEG_FILESZ, 0);
	assert_filled(e, KERNEL_PADDR + SEG_MEMSZ, 0x100, FILL);
}

static void test_elf_high_linked_entry(void **state)
{
	struct env *e = *state;

	make_elf32(e, KERNEL_PADDR, 0xc0100000u, 0xc0100040u);
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.rip, KERNEL_PADDR + 0x40);
}

static void test_gdt32(void **state)
{
	struct env *e = *state;
	const u64 *gdt;

	assert_int_equal(load(e), 0);
	gdt = ram(e, UMBRA_BOOT_GDT, 32);
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[1], 0x00cf9a000000ffffull); /* 32-bit code: D set, L clear */
	assert_int_equal(gdt[2], 0x00cf92000000ffffull);
	assert_int_equal(gdt[3], 0);
}

static void test_info(void **state)
{
	struct env *e = *state;
	const struct mbi *mbi;

	e->in.cmdline = "root=/dev/ram0 quiet";
	assert_int_equal(load(e), 0);
	mbi = info(e);
	assert_int_equal(mbi->flags, MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME);
	assert_int_equal(mbi->mem_lower, 639);
	assert_int_equal(mbi->mem_upper, (64 * MiB - 1 * MiB) / KiB);
	assert_int_equal(mbi->mods_count, 0);
	assert_string_equal((const char *)ram(e, mbi->cmdline, 64), "root=/dev/ram0 quiet");
	assert_true(mbi->boot_loader_name != 0);
	assert_memory_equal(ram(e, mbi->boot_loader_name, 6), "umbra ", 6);
	/* Everything the guest is told about lies below the kernel. */
	assert_true(mbi->cmdline < KERNEL_PADDR);
	assert_true(mbi->mmap_addr < KERNEL_PADDR);
}

static void test_info_mmap(void **state)
{
	struct env *e = *state;
	const struct mbi *mbi;
	const struct mb_mmap *m;
	const struct {
		u64 base, len;
		u32 type;
	} want[] = {
		{ 0, 0x9fc00, 1 },
		{ 0x9fc00, 0x400, 2 },
		{ 0xe0000, 0x20000, 2 },
		{ 0x100000, 63 * MiB, 1 },
	};

	assert_int_equal(load(e), 0);
	mbi = info(e);
	assert_int_equal(mbi->mmap_length, 4 * 24);
	m = ram(e, mbi->mmap_addr, mbi->mmap_length);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(m[i].size, 20);
		assert_int_equal(m[i].base, want[i].base);
		assert_int_equal(m[i].len, want[i].len);
		assert_int_equal(m[i].type, want[i].type);
	}
}

static void test_info_5g(void **state)
{
	struct env *e = *state;
	struct big_guest big;
	const struct mbi *mbi;
	const struct mb_mmap *m;

	assert_int_equal(load_big(e, &big), 0);
	mbi = guest_ptr(&big.mem, big.bs.rbx, sizeof(*mbi));
	assert_int_equal(mbi->mem_upper, (3 * GiB - 1 * MiB) / KiB);
	assert_int_equal(mbi->mmap_length, 5 * 24);
	m = guest_ptr(&big.mem, mbi->mmap_addr, mbi->mmap_length);
	/* The RAM above 4 GiB, with its 64-bit base split across the two halves. */
	assert_int_equal(m[4].size, 20);
	assert_int_equal(m[4].base, 4 * GiB);
	assert_int_equal(m[4].len, 2 * GiB);
	assert_int_equal(m[4].type, 1);
	guest_mem_destroy(&big.mem);
}

static void test_initrd_module(void **state)
{
	struct env *e = *state;
	u8 rd[5000];
	const struct mbi *mbi;
	const struct mb_mod *mod;

	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (u8)(i * 11 + 1);
	env_set_initrd(e, rd, sizeof(rd), "initrd.cpio");
	assert_int_equal(load(e), 0);
	mbi = info(e);
	assert_int_equal(mbi->flags, MBI_MEM | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER_NAME);
	assert_int_equal(mbi->mods_count, 1);
	mod = ram(e, mbi->mods_addr, sizeof(*mod));
	/* The kernel ends at 0x102345: the module starts on the next page. */
	assert_int_equal(mod->mod_start, 0x103000);
	assert_int_equal(mod->mod_end - mod->mod_start, sizeof(rd));
	assert_int_equal(mod->reserved, 0);
	assert_memory_equal(ram(e, mod->mod_start, sizeof(rd)), rd, sizeof(rd));
	assert_string_equal((const char *)ram(e, mod->string, 16), "initrd.cpio");
	/* The loader name is still intact next to the module string. */
	assert_memory_equal(ram(e, mbi->boot_loader_name, 6), "umbra ", 6);
	env_clear_initrd(e);
}

static void test_initrd_too_large(void **state)
{
	struct env *e = *state;
	size_t n = RAM_SIZE - 0x103000 + 1;
	u8 *rd = calloc(1, n);

	assert_non_null(rd);
	env_set_initrd(e, rd, n, NULL);
	expect_einval(e, "does not fit in RAM after the kernel at 0x103000");
	/* One byte less fits exactly. */
	e->in.initrd_size = n - 1;
	assert_int_equal(load(e), 0);
	free(rd);
	env_clear_initrd(e);
}

static void test_cmdline_limit(void **state)
{
	struct env *e = *state;
	char *cmd = malloc(4097);

	assert_non_null(cmd);
	memset(cmd, 'm', 4096);
	cmd[4096] = '\0';
	e->in.cmdline = cmd;
	expect_einval(e, "command line is 4096 bytes; the limit is 4095");
	cmd[4095] = '\0';
	assert_int_equal(load(e), 0);
	assert_int_equal(strnlen(ram(e, info(e)->cmdline, 4096), 4096), 4095);
	free(cmd);
	e->in.cmdline = "";
}

static void test_video_mode_accepted(void **state)
{
	struct env *e = *state;

	set_flags(e, HDR_OFF, MBF_PAGE_ALIGN | MBF_MEMINFO | MBF_VIDEO);
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.rip, KERNEL_ENTRY);
}

static void test_unsupported_flag(void **state)
{
	struct env *e = *state;

	set_flags(e, HDR_OFF, MBF_PAGE_ALIGN | (1u << 3));
	expect_einval(e, "requires unsupported features (flags 0x8)");
	set_flags(e, HDR_OFF, 1u << 15);
	expect_einval(e, "unsupported features (flags 0x8000)");
	/* Bits 16-31 are optional: an unknown one is ignored. */
	set_flags(e, HDR_OFF, 1u << 20);
	assert_int_equal(load(e), 0);
}

static void test_elf64_without_kludge(void **state)
{
	struct env *e = *state;

	e->img[EI_CLASS] = ELFCLASS64;
	expect_einval(e, "64-bit ELF without the address kludge");
}

static void test_not_i386(void **state)
{
	struct env *e = *state;

	ehdr32(e)->e_machine = EM_X86_64;
	expect_einval(e, "must be a 32-bit i386 ELF");
	/* A raw binary with a header but no kludge: nothing says where to load it. */
	ehdr32(e)->e_machine = EM_386;
	e->img[0] = 'X';
	expect_einval(e, "must be a 32-bit i386 ELF");
}

static void test_elf_bad_phdrs(void **state)
{
	struct env *e = *state;

	ehdr32(e)->e_phnum = 0;
	expect_einval(e, "bad program header table");
	ehdr32(e)->e_phnum = 1;
	ehdr32(e)->e_phentsize = sizeof(Elf64_Phdr);
	expect_einval(e, "bad program header table");
	ehdr32(e)->e_phentsize = sizeof(Elf32_Phdr);
	ehdr32(e)->e_phoff = (u32)e->size - 4;
	expect_einval(e, "bad program header table");
	ehdr32(e)->e_phoff = 0xffffff00u;
	expect_einval(e, "bad program header table");
}

static void test_elf_segment_beyond_file(void **state)
{
	struct env *e = *state;

	phdr32(e)->p_filesz = SEG_FILESZ + 1;
	expect_einval(e, "truncated ELF file: segment 0 extends beyond the file");
	phdr32(e)->p_filesz = SEG_FILESZ;
	phdr32(e)->p_offset = 0xffffff00u;
	expect_einval(e, "segment 0 extends beyond the file");
}

static void test_elf_segment_outside_ram(void **state)
{
	struct env *e = *state;

	make_elf32(e, 0x10000000u, 0x10000000u, 0x10000020u);
	expect_einval(e, "lies outside guest RAM (64 MiB");
	make_elf32(e, 0x8000u, 0x8000u, 0x8020u);
	expect_einval(e, "overlaps the boot area");
}

/*
 * A kernel above 3 GiB is refused. With the PC layout it cannot be placed at
 * all (the PCI hole has no RAM, and 32-bit addresses cannot reach the RAM
 * above 4 GiB), so it fails as "outside guest RAM" even with 5 GiB.
 */
static void test_kernel_above_3g(void **state)
{
	struct env *e = *state;
	struct big_guest big;

	make_elf32(e, 0xc0000000u, 0xc0000000u, 0xc0000020u);
	expect_einval(e, "lies outside guest RAM");
	assert_int_equal(load_big(e, &big), -EINVAL);
	assert_non_null(strstr(big.err, "segment [0xc0000000, +0x2345) lies outside guest RAM"));
	guest_mem_destroy(&big.mem);
}

static void test_elf_entry_outside(void **state)
{
	struct env *e = *state;

	ehdr32(e)->e_entry = KERNEL_PADDR + SEG_MEMSZ;
	expect_einval(e, "ELF entry point 0x102345 is not inside any loaded segment");
	phdr32(e)->p_type = PT_NOTE;
	expect_einval(e, "ELF file has no PT_LOAD segment");
}

/* ---- a.out kludge --------------------------------------------------------------- */

static void test_aout_load(void **state)
{
	struct env *e = *state;

	make_aout(e);
	memset(ram(e, AOUT_LOAD, AOUT_BSS_END - AOUT_LOAD + 0x100), FILL,
	       AOUT_BSS_END - AOUT_LOAD + 0x100);
	assert_int_equal(load(e), 0);
	assert_mb_entry(e, "multiboot-aout", AOUT_ENTRY);
	assert_int_equal(e->bs.load_start, AOUT_LOAD);
	assert_int_equal(e->bs.load_end, AOUT_BSS_END);
	assert_file_bytes_at(e, AOUT_LOAD, 0, AOUT_SIZE);
	/* bss zeroed up to bss_end_addr, nothing beyond. */
	assert_filled(e, AOUT_LOAD + AOUT_SIZE, AOUT_BSS_END - AOUT_LOAD - AOUT_SIZE, 0);
	assert_filled(e, AOUT_BSS_END, 0x100, FILL);
	assert_int_equal(info(e)->flags, MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME);
}

/* The file may start before load_addr: the header's file offset says where. */
static void test_aout_file_offset(void **state)
{
	struct env *e = *state;

	make_aout(e);
	/* The header sits 0x10 bytes into the loaded image, 0x40 into the file. */
	aout_hdr(e)->header_addr = AOUT_LOAD + 0x10;
	aout_hdr(e)->load_end_addr = AOUT_LOAD + 0x1000;
	assert_int_equal(load(e), 0);
	assert_file_bytes_at(e, AOUT_LOAD, 0x30, 0x1000);
	assert_filled(e, AOUT_LOAD + 0x1000, AOUT_BSS_END - AOUT_LOAD - 0x1000, 0);
}

static void test_aout_load_end_zero(void **state)
{
	struct env *e = *state;

	make_aout(e);
	aout_hdr(e)->load_end_addr = 0;
	aout_hdr(e)->bss_end_addr = 0;
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.load_end, AOUT_LOAD + AOUT_SIZE);
	assert_file_bytes_at(e, AOUT_LOAD, 0, AOUT_SIZE);
	/* No bss: the byte after the file is left alone. */
	assert_filled(e, AOUT_LOAD + AOUT_SIZE, 0x10, FILL);
}

static void test_aout_initrd_after_bss(void **state)
{
	struct env *e = *state;
	u8 rd[100];
	const struct mb_mod *mod;

	memset(rd, 0x42, sizeof(rd));
	make_aout(e);
	aout_hdr(e)->bss_end_addr = AOUT_BSS_END + 1;
	env_set_initrd(e, rd, sizeof(rd), NULL);
	assert_int_equal(load(e), 0);
	mod = ram(e, info(e)->mods_addr, sizeof(*mod));
	assert_int_equal(mod->mod_start, AOUT_BSS_END + 0x1000);
	assert_int_equal(mod->mod_end, AOUT_BSS_END + 0x1000 + sizeof(rd));
	assert_string_equal((const char *)ram(e, mod->string, 1), "");
	env_clear_initrd(e);
}

static void test_aout_header_before_load(void **state)
{
	struct env *e = *state;

	make_aout(e);
	aout_hdr(e)->header_addr = AOUT_LOAD - 4;
	expect_einval(e, "header_addr 0x1ffffc and load_addr 0x200000 disagree with the file");
	/* The header would have to be further into the file than it is. */
	aout_hdr(e)->header_addr = AOUT_LOAD + AOUT_HOFF + 4;
	expect_einval(e, "disagree with the file");
}

static void test_aout_load_end_below_load(void **state)
{
	struct env *e = *state;

	make_aout(e);
	aout_hdr(e)->load_end_addr = AOUT_LOAD - 1;
	expect_einval(e, "load_end_addr is below load_addr");
}

static void test_aout_bss_below_load_end(void **state)
{
	struct env *e = *state;

	make_aout(e);
	aout_hdr(e)->bss_end_addr = AOUT_LOAD + AOUT_SIZE - 1;
	expect_einval(e, "bss_end_addr is below the end of the load");
	/* Equal is fine: an empty bss. */
	aout_hdr(e)->bss_end_addr = AOUT_LOAD + AOUT_SIZE;
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.load_end, AOUT_LOAD + AOUT_SIZE);
}

static void test_aout_entry_outside(void **state)
{
	struct env *e = *state;

	make_aout(e);
	aout_hdr(e)->entry_addr = AOUT_BSS_END;
	expect_einval(e, "entry_addr 0x205000 is outside the loaded kernel");
	aout_hdr(e)->entry_addr = AOUT_LOAD - 1;
	expect_einval(e, "entry_addr 0x1fffff is outside");
	/* The last bss byte is inside. */
	aout_hdr(e)->entry_addr = AOUT_BSS_END - 1;
	assert_int_equal(load(e), 0);
	assert_int_equal(e->bs.rip, AOUT_BSS_END - 1);
}

static void test_aout_truncated(void **state)
{
	struct env *e = *state;

	make_aout(e);
	aout_hdr(e)->load_end_addr = AOUT_LOAD + AOUT_SIZE + 1;
	aout_hdr(e)->bss_end_addr = 0;
	expect_einval(e, "truncated kernel: Multiboot header asks for 12289 bytes, file has 12288");
	/* The address fields themselves cut off by the end of the file. */
	make_aout(e);
	e->in.image_size = AOUT_HOFF + 20;
	expect_einval(e, "truncated Multiboot header");
}

static void test_aout_outside_ram(void **state)
{
	struct env *e = *state;

	make_aout(e);
	aout_hdr(e)->bss_end_addr = RAM_SIZE + 1;
	expect_einval(e, "lies outside guest RAM");
	aout_hdr(e)->bss_end_addr = 0xffffffffu;
	expect_einval(e, "lies outside guest RAM");
}

/* With the kludge, even a 64-bit ELF loads: the header's addresses win. */
static void test_aout_kludge_wins_over_elf64(void **state)
{
	struct env *e = *state;
	u8 *img = calloc(1, AOUT_SIZE);
	u32 flags = MBF_AOUT;
	struct mbh h = {
		.magic = MB_MAGIC,
		.flags = flags,
		.checksum = -(MB_MAGIC + flags),
		.header_addr = AOUT_LOAD + 0x100,
		.load_addr = AOUT_LOAD,
		.entry_addr = AOUT_LOAD + 0x200,
	};

	assert_non_null(img);
	memcpy(img, ELFMAG, SELFMAG);
	img[EI_CLASS] = ELFCLASS64;
	memcpy(img + 0x100, &h, sizeof(h));
	env_set_image(e, img, AOUT_SIZE);
	assert_int_equal(load(e), 0);
	assert_string_equal(e->bs.format, "multiboot-aout");
	assert_int_equal(e->bs.mode, BOOT_PROT32);
	assert_int_equal(e->bs.rip, AOUT_LOAD + 0x200);
	assert_memory_equal(ram(e, AOUT_LOAD, 4), "\177ELF", 4);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, env_teardown)
	const struct CMUnitTest tests[] = {
		T(test_detect_positions),
		T(test_detect_built_images),
		T(test_elf_boot_state),
		T(test_elf_segment_loaded),
		T(test_elf_high_linked_entry),
		T(test_gdt32),
		T(test_info),
		T(test_info_mmap),
		T(test_info_5g),
		T(test_initrd_module),
		T(test_initrd_too_large),
		T(test_cmdline_limit),
		T(test_video_mode_accepted),
		T(test_unsupported_flag),
		T(test_elf64_without_kludge),
		T(test_not_i386),
		T(test_elf_bad_phdrs),
		T(test_elf_segment_beyond_file),
		T(test_elf_segment_outside_ram),
		T(test_kernel_above_3g),
		T(test_elf_entry_outside),
		T(test_aout_load),
		T(test_aout_file_offset),
		T(test_aout_load_end_zero),
		T(test_aout_initrd_after_bss),
		T(test_aout_header_before_load),
		T(test_aout_load_end_below_load),
		T(test_aout_bss_below_load_end),
		T(test_aout_entry_outside),
		T(test_aout_truncated),
		T(test_aout_outside_ram),
		T(test_aout_kludge_wins_over_elf64),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
