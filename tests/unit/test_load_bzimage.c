/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the Linux bzImage loader (vmm/load_bzimage.c), against the
 * x86 boot protocol (Linux's Documentation/arch/x86/boot.rst): the setup
 * header and its checks, where the kernel, command line and initrd go, the
 * boot_params fields the loader writes at their documented offsets, the e820
 * map, and the 64-bit and 32-bit entry states.
 *
 * Images are synthetic: a boot sector and setup header as a 2.15 kernel has
 * them (one setup sector after the boot sector), then a patterned
 * "protected-mode kernel". Guest RAM is a real 64 MiB struct guest_mem with
 * its first 8 MiB pre-filled with 0xAA (tests/unit/boot_env.h).
 */
#include <stdio.h>

#include "umbra/bootinfo.h"

#include "boot_env.h"

/* Offsets in the image's first page and in boot_params (boot.rst, "The Real-Mode Kernel Header").
 */
#define O_EXT_RAMDISK_IMAGE 0x0c0
#define O_EXT_RAMDISK_SIZE  0x0c4
#define O_EXT_CMD_LINE_PTR  0x0c8
#define O_E820_ENTRIES	    0x1e8
#define O_SETUP_SECTS	    0x1f1
#define O_SYSSIZE	    0x1f4
#define O_VID_MODE	    0x1fa
#define O_BOOT_FLAG	    0x1fe
#define O_JUMP		    0x200
#define O_HEADER	    0x202
#define O_VERSION	    0x206
#define O_TYPE_OF_LOADER    0x210
#define O_LOADFLAGS	    0x211
#define O_CODE32_START	    0x214
#define O_RAMDISK_IMAGE	    0x218
#define O_RAMDISK_SIZE	    0x21c
#define O_HEAP_END_PTR	    0x224
#define O_CMD_LINE_PTR	    0x228
#define O_INITRD_ADDR_MAX   0x22c
#define O_KERNEL_ALIGNMENT  0x230
#define O_RELOCATABLE	    0x234
#define O_XLOADFLAGS	    0x236
#define O_CMDLINE_SIZE	    0x238
#define O_PREF_ADDRESS	    0x258
#define O_INIT_SIZE	    0x260
#define O_KERNEL_INFO	    0x268
#define O_E820_TABLE	    0x2d0

#define HDR_END	      0x26c /* 0x202 + the jump's offset byte 0x6a, as in Linux 5.5+ */
#define SETUP_SECTS   1
#define SETUP_SIZE    ((SETUP_SECTS + 1) * 512)
#define KERNEL_SIZE   0x3000
#define IMAGE_SIZE    (SETUP_SIZE + KERNEL_SIZE)
#define PREF_ADDRESS  0x1000000ull /* 16 MiB, Linux's LOAD_PHYSICAL_ADDR */
#define INIT_SIZE     0x800000u	   /* 8 MiB */
#define ALIGNMENT     0x200000u
#define PARAMS_GPA    0x2000ull
#define CMDLINE_GPA   0x3000ull
#define XLF_KERNEL_64 1
#define XLF_ABOVE_4G  2

static void put16(u8 *p, size_t off, u16 v)
{
	memcpy(p + off, &v, 2);
}

static void put32(u8 *p, size_t off, u32 v)
{
	memcpy(p + off, &v, 4);
}

static void put64(u8 *p, size_t off, u64 v)
{
	memcpy(p + off, &v, 8);
}

static u16 get16(const u8 *p, size_t off)
{
	u16 v;

	memcpy(&v, p + off, 2);
	return v;
}

static u32 get32(const u8 *p, size_t off)
{
	u32 v;

	memcpy(&v, p + off, 4);
	return v;
}

static u64 get64(const u8 *p, size_t off)
{
	u64 v;

	memcpy(&v, p + off, 8);
	return v;
}

/* A relocatable protocol 2.15 bzImage with a 64-bit entry and a patterned kernel. */
static u8 *build_image(void)
{
	u8 *img = calloc(1, IMAGE_SIZE);

	assert_non_null(img);
	img[O_SETUP_SECTS] = SETUP_SECTS;
	put32(img, O_SYSSIZE, KERNEL_SIZE / 16);
	put16(img, O_VID_MODE, 0xffff);
	put16(img, O_BOOT_FLAG, 0xaa55);
	img[O_JUMP] = 0xeb;
	img[O_JUMP + 1] = HDR_END - O_HEADER;
	memcpy(img + O_HEADER, "HdrS", 4);
	put16(img, O_VERSION, 0x020f);
	img[O_LOADFLAGS] = 0x01; /* LOADED_HIGH */
	put32(img, O_CODE32_START, 0x100000);
	put32(img, O_INITRD_ADDR_MAX, 0x7fffffff);
	put32(img, O_KERNEL_ALIGNMENT, ALIGNMENT);
	img[O_RELOCATABLE] = 1;
	put16(img, O_XLOADFLAGS, XLF_KERNEL_64 | XLF_ABOVE_4G);
	put32(img, O_CMDLINE_SIZE, 2047);
	put64(img, O_PREF_ADDRESS, PREF_ADDRESS);
	put32(img, O_INIT_SIZE, INIT_SIZE);
	put32(img, O_KERNEL_INFO, 0x1234);
	/* Past the header's end: setup code, which must not reach boot_params. */
	memset(img + HDR_END, 0xcc, SETUP_SIZE - HDR_END);
	for (unsigned i = 0; i < KERNEL_SIZE; i++)
		img[SETUP_SIZE + i] = (u8)(i * 7 + 1);
	return img;
}

static int setup(void **state)
{
	struct env *e = env_new("bz");

	if (!e)
		return -1;
	env_set_image(e, build_image(), IMAGE_SIZE);
	*state = e;
	return 0;
}

static u8 *params(struct env *e)
{
	return ram(e, PARAMS_GPA, 4096);
}

static void load_ok(struct env *e)
{
	if (load(e))
		fail_msg("load failed: %s", e->err);
}

static void test_detect(void **state)
{
	struct env *e = *state;

	assert_true(bzimage_detect(e->img, e->size));
	assert_false(bzimage_detect(e->img, O_HEADER + 3));
	e->img[O_HEADER] = 'h';
	assert_false(bzimage_detect(e->img, e->size));
	expect_einval(e, "no Linux bzImage setup header");
	e->img[O_HEADER] = 'H';
	put16(e->img, O_BOOT_FLAG, 0);
	assert_false(bzimage_detect(e->img, e->size));
	expect_einval(e, "not a kernel image");
}

static void test_entry_state(void **state)
{
	struct env *e = *state;

	e->in.cpu_has_nx = true;
	load_ok(e);
	assert_string_equal(e->bs.format, "bzimage");
	assert_int_equal(e->bs.mode, BOOT_LONG64);
	assert_int_equal(e->bs.rip, PREF_ADDRESS + 0x200);
	assert_int_equal(e->bs.rsi, PARAMS_GPA);
	assert_int_equal(e->bs.rflags, 0x2); /* IF = 0 */
	assert_int_equal(e->bs.cr3, UMBRA_BOOT_PGTABLE);
	assert_true(e->bs.nx);
	assert_int_equal(e->bs.load_start, PREF_ADDRESS);
	assert_int_equal(e->bs.load_end, PREF_ADDRESS + INIT_SIZE);
	/* The identity map covers 4 GiB: the last 2 MiB page of the 4th PD maps 4G - 2M. */
	assert_int_equal(ram64(e, UMBRA_BOOT_PGTABLE) & ~0xfffull, UMBRA_BOOT_PGTABLE + 0x1000);
	assert_int_equal(ram64(e, UMBRA_BOOT_PGTABLE + 0x2000 + 4 * 4096 - 8) & ~0xfffull,
			 4 * GiB - 2 * MiB);
	/* 64-bit flat code at the selector the vCPU loads into CS, flat data at DS's. */
	assert_int_equal(e->bs.cs_sel, 0x08);
	assert_int_equal(e->bs.ds_sel, 0x10);
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT + e->bs.cs_sel), 0x00af9a000000ffffull);
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT + e->bs.ds_sel), 0x00cf92000000ffffull);
}

static void test_kernel_loaded(void **state)
{
	struct env *e = *state;
	u8 *k;

	load_ok(e);
	k = ram(e, PREF_ADDRESS, KERNEL_SIZE);
	assert_memory_equal(k, e->img + SETUP_SIZE, KERNEL_SIZE);
}

static void test_setup_sects_zero_means_four(void **state)
{
	struct env *e = *state;
	size_t size = 5 * 512 + KERNEL_SIZE;
	u8 *img = calloc(1, size);

	assert_non_null(img);
	memcpy(img, e->img, SETUP_SIZE);
	img[O_SETUP_SECTS] = 0;
	memcpy(img + 5 * 512, e->img + SETUP_SIZE, KERNEL_SIZE);
	env_set_image(e, img, size);
	load_ok(e);
	assert_memory_equal(ram(e, PREF_ADDRESS, KERNEL_SIZE), img + 5 * 512, KERNEL_SIZE);
}

static void test_params_header(void **state)
{
	struct env *e = *state;
	u8 *bp;

	load_ok(e);
	bp = params(e);
	/* The setup header as in the file... */
	assert_int_equal(bp[O_SETUP_SECTS], SETUP_SECTS);
	assert_int_equal(get16(bp, O_BOOT_FLAG), 0xaa55);
	assert_memory_equal(bp + O_HEADER, "HdrS", 4);
	assert_int_equal(get16(bp, O_VERSION), 0x020f);
	assert_int_equal(get16(bp, O_VID_MODE), 0xffff);
	assert_int_equal(get32(bp, O_KERNEL_ALIGNMENT), ALIGNMENT);
	assert_int_equal(get64(bp, O_PREF_ADDRESS), PREF_ADDRESS);
	assert_int_equal(get32(bp, O_INIT_SIZE), INIT_SIZE);
	assert_int_equal(get32(bp, O_KERNEL_INFO), 0x1234);
	/* ...nothing past its end, and the rest of the page zeroed. */
	assert_int_equal(bp[HDR_END], 0);
	assert_int_equal(bp[0x1ef], 0); /* sentinel */
	assert_int_equal(bp[0], 0);
	/* ...plus the loader's fields. */
	assert_int_equal(bp[O_TYPE_OF_LOADER], 0xff);
	assert_int_equal(bp[O_LOADFLAGS], 0x81); /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(get16(bp, O_HEAP_END_PTR), 0xde00);
	assert_int_equal(get32(bp, O_CMD_LINE_PTR), CMDLINE_GPA);
	assert_int_equal(get32(bp, O_EXT_CMD_LINE_PTR), 0);
	assert_int_equal(get32(bp, O_RAMDISK_IMAGE), 0);
	assert_int_equal(get32(bp, O_RAMDISK_SIZE), 0);
}

static void test_e820(void **state)
{
	struct env *e = *state;
	struct umbra_mem_entry map[UMBRA_BOOT_MAX_MEM_ENTRIES];
	unsigned n = guest_mem_map(&e->mem, map, UMBRA_BOOT_MAX_MEM_ENTRIES);
	static const u64 want[][3] = {
		{ 0, 0x9fc00, 1 },
		{ 0x9fc00, 0x400, 2 },
		{ 0xe0000, 0x20000, 2 },
		{ 0x100000, RAM_SIZE - 0x100000, 1 },
	};
	u8 *bp;

	load_ok(e);
	bp = params(e);
	assert_int_equal(n, 4);
	assert_int_equal(bp[O_E820_ENTRIES], 4);
	for (unsigned i = 0; i < 4; i++) {
		const u8 *ent = bp + O_E820_TABLE + i * 20;

		assert_int_equal(get64(ent, 0), want[i][0]);
		assert_int_equal(get64(ent, 8), want[i][1]);
		assert_int_equal(get32(ent, 16), want[i][2]);
		assert_int_equal(get64(ent, 0), map[i].addr);
		assert_int_equal(get64(ent, 8), map[i].len);
	}
	assert_int_equal(get64(bp, O_E820_TABLE + 4 * 20), 0);
}

static void test_e820_5g(void **state)
{
	struct env *e = *state;
	struct big_guest b;
	const u8 *bp;

	assert_int_equal(load_big(e, &b), 0);
	bp = guest_ptr(&b.mem, PARAMS_GPA, 4096);
	assert_int_equal(bp[O_E820_ENTRIES], 5);
	assert_int_equal(get64(bp, O_E820_TABLE + 3 * 20 + 8), 3 * GiB - 0x100000);
	assert_int_equal(get64(bp, O_E820_TABLE + 4 * 20), 4 * GiB);
	assert_int_equal(get64(bp, O_E820_TABLE + 4 * 20 + 8), 2 * GiB);
	assert_int_equal(get32(bp, O_E820_TABLE + 4 * 20 + 16), 1);
	/* The identity map covers all of RAM: 6 GiB, so 6 page directories. */
	assert_int_equal(guest_u64(&b.mem, UMBRA_BOOT_PGTABLE + 0x1000 + 5 * 8) & ~0xfffull,
			 UMBRA_BOOT_PGTABLE + 0x2000 + 5 * 0x1000);
	guest_mem_destroy(&b.mem);
}

static void test_cmdline(void **state)
{
	struct env *e = *state;

	e->in.cmdline = "console=ttyS0 reboot=k";
	load_ok(e);
	assert_string_equal((char *)ram(e, CMDLINE_GPA, 23), "console=ttyS0 reboot=k");
}

static void test_cmdline_limit(void **state)
{
	struct env *e = *state;
	char line[32];

	put32(e->img, O_CMDLINE_SIZE, 16);
	memset(line, 'x', sizeof(line));
	line[16] = '\0';
	e->in.cmdline = line;
	load_ok(e);
	assert_string_equal((char *)ram(e, CMDLINE_GPA, 17), line);
	line[16] = 'x';
	line[17] = '\0';
	expect_einval(e, "command line is 17 bytes; this kernel takes at most 16");
}

static void test_cmdline_limit_boot_area(void **state)
{
	struct env *e = *state;
	char *line = malloc(5000);

	assert_non_null(line);
	put32(e->img, O_CMDLINE_SIZE, 100000);
	memset(line, 'y', 4999);
	line[4999] = '\0';
	e->in.cmdline = line;
	expect_einval(e, "command line is 4999 bytes; this kernel takes at most 4095");
	free(line);
}

static void test_initrd_top_of_ram(void **state)
{
	struct env *e = *state;
	static u8 rd[10000];
	u64 at = (RAM_SIZE - sizeof(rd)) & ~0xfffull;
	u8 *bp;

	memset(rd, 0x5a, sizeof(rd));
	env_set_initrd(e, rd, sizeof(rd), "rd");
	load_ok(e);
	bp = params(e);
	assert_int_equal(get32(bp, O_RAMDISK_IMAGE), at);
	assert_int_equal(get32(bp, O_EXT_RAMDISK_IMAGE), 0);
	assert_int_equal(get32(bp, O_RAMDISK_SIZE), sizeof(rd));
	assert_memory_equal(ram(e, at, sizeof(rd)), rd, sizeof(rd));
}

static void test_initrd_below_addr_max(void **state)
{
	struct env *e = *state;
	static u8 rd[4096 + 1];

	/* initrd_addr_max is the last byte the initrd may use. */
	put32(e->img, O_INITRD_ADDR_MAX, 0x1ffffff);
	env_set_initrd(e, rd, sizeof(rd), "rd");
	load_ok(e);
	assert_int_equal(get32(params(e), O_RAMDISK_IMAGE), 0x2000000 - 0x2000);
	/* initrd_addr_max 0 (older headers): the protocol's default 0x37ffffff. */
	put32(e->img, O_INITRD_ADDR_MAX, 0);
	load_ok(e);
	assert_int_equal(get32(params(e), O_RAMDISK_IMAGE), RAM_SIZE - 0x2000);
}

static void test_initrd_too_big(void **state)
{
	struct env *e = *state;
	u8 *rd = calloc(1, 48 * MiB);

	assert_non_null(rd);
	/* The kernel takes [16M, 24M): 40 MiB remain above it, 48 do not fit. */
	env_set_initrd(e, rd, 48 * MiB, "rd");
	expect_einval(e, "initrd (50331648 bytes) does not fit in RAM");
	env_set_initrd(e, rd, 40 * MiB, "rd");
	load_ok(e);
	assert_int_equal(get32(params(e), O_RAMDISK_IMAGE), 24 * MiB);
	free(rd);
}

static void test_initrd_above_4g(void **state)
{
	struct env *e = *state;
	size_t size = 16 * MiB;
	u8 *rd = malloc(size);
	struct big_guest b;
	const u8 *bp;
	u64 at = 6 * GiB - size;

	assert_non_null(rd);
	memset(rd, 0x3c, size);
	/* Below initrd_addr_max only 8 MiB are free above the kernel: 16 go above 4 GiB. */
	put32(e->img, O_INITRD_ADDR_MAX, 0x1ffffff);
	env_set_initrd(e, rd, size, "rd");
	assert_int_equal(load_big(e, &b), 0);
	bp = guest_ptr(&b.mem, PARAMS_GPA, 4096);
	assert_int_equal(get32(bp, O_RAMDISK_IMAGE), (u32)at);
	assert_int_equal(get32(bp, O_EXT_RAMDISK_IMAGE), at >> 32);
	assert_int_equal(get32(bp, O_RAMDISK_SIZE), size);
	assert_memory_equal(guest_ptr(&b.mem, at, size), rd, size);
	guest_mem_destroy(&b.mem);
	/* Without XLF_CAN_BE_LOADED_ABOVE_4G it does not fit. */
	put16(e->img, O_XLOADFLAGS, XLF_KERNEL_64);
	assert_int_equal(load_big(e, &b), -EINVAL);
	assert_non_null(strstr(b.err, "does not fit in RAM"));
	guest_mem_destroy(&b.mem);
	free(rd);
}

static void test_runtime_start_aligned(void **state)
{
	struct env *e = *state;

	/* Relocatable: pref_address aligned up to kernel_alignment. */
	put64(e->img, O_PREF_ADDRESS, PREF_ADDRESS + 0x1000);
	load_ok(e);
	assert_int_equal(e->bs.rip, PREF_ADDRESS + ALIGNMENT + 0x200);
	assert_memory_equal(ram(e, PREF_ADDRESS + ALIGNMENT, KERNEL_SIZE), e->img + SETUP_SIZE,
			    KERNEL_SIZE);
	/* Not relocatable: exactly pref_address. */
	e->img[O_RELOCATABLE] = 0;
	load_ok(e);
	assert_int_equal(e->bs.rip, PREF_ADDRESS + 0x1000 + 0x200);
	/* A relocatable kernel preferring low memory still starts at 1 MiB or above. */
	e->img[O_RELOCATABLE] = 1;
	put64(e->img, O_PREF_ADDRESS, 0x10000);
	load_ok(e);
	assert_int_equal(e->bs.rip, ALIGNMENT + 0x200);
	e->img[O_RELOCATABLE] = 0;
	expect_einval(e, "bzImage is not relocatable and wants to run at 0x10000, below 1 MiB");
}

static void test_init_size_too_big(void **state)
{
	struct env *e = *state;

	/*
	 * init_size counts from the runtime start, pref_address: 16 MiB + 50 MiB
	 * is past 64 MiB of RAM, and loading lower would not help (the kernel
	 * moves itself up to pref_address).
	 */
	put32(e->img, O_INIT_SIZE, 50 * MiB);
	expect_einval(e, "bzImage needs 0x3200000 bytes (init_size) from 0x1000000; RAM below the "
			 "PCI hole ends at 0x4000000 (64 MiB; see --mem)");
	e->img[O_RELOCATABLE] = 0;
	expect_einval(e, "bzImage needs 0x3200000 bytes (init_size) from 0x1000000");
	put32(e->img, O_INIT_SIZE, 48 * MiB);
	load_ok(e);
}

static void test_bad_alignment(void **state)
{
	struct env *e = *state;

	put32(e->img, O_KERNEL_ALIGNMENT, 0x300000);
	expect_einval(e, "kernel_alignment 0x300000 is not a power of two");
	put32(e->img, O_KERNEL_ALIGNMENT, 0);
	expect_einval(e, "kernel_alignment 0x0 is not a power of two");
}

static void test_old_protocol(void **state)
{
	struct env *e = *state;

	put16(e->img, O_VERSION, 0x020b);
	expect_einval(e, "boot protocol 2.11; umbra needs 2.12 or later");
}

/*
 * Without XLF_KERNEL_64, boot.rst's 32-bit protocol: protected mode, paging
 * off, __BOOT_CS = 0x10 flat 32-bit code and __BOOT_DS = 0x18 flat data,
 * ESI = boot_params, entry at the protected-mode kernel's first byte.
 */
static void test_32bit_entry(void **state)
{
	struct env *e = *state;

	put16(e->img, O_XLOADFLAGS, XLF_ABOVE_4G);
	load_ok(e);
	assert_string_equal(e->bs.format, "bzimage-32");
	assert_int_equal(e->bs.mode, BOOT_PROT32);
	assert_int_equal(e->bs.rip, PREF_ADDRESS);
	assert_int_equal(e->bs.rsi, PARAMS_GPA);
	assert_int_equal(e->bs.rflags, 0x2); /* IF = 0 */
	assert_int_equal(e->bs.rbx | e->bs.rdi, 0);
	assert_int_equal(e->bs.cs_sel, 0x10);
	assert_int_equal(e->bs.ds_sel, 0x18);
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT + 0x08), 0);
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT + 0x10), 0x00cf9a000000ffffull);
	assert_int_equal(ram64(e, UMBRA_BOOT_GDT + 0x18), 0x00cf92000000ffffull);
	/* The rest of the protocol is the 64-bit one's: boot_params as the header says. */
	assert_int_equal(get32(ram(e, PARAMS_GPA, 4096), O_CMD_LINE_PTR), CMDLINE_GPA);
}

static void test_zimage(void **state)
{
	struct env *e = *state;

	e->img[O_LOADFLAGS] = 0;
	expect_einval(e, "zImage");
}

static void test_truncated_header(void **state)
{
	struct env *e = *state;

	env_use_image(e, e->img, 0x220);
	expect_einval(e, "truncated bzImage: the setup header ends at 0x26c, the file at 0x220");
	env_restore_image(e);
	/* A 2.12+ header too short to hold init_size. */
	e->img[O_JUMP + 1] = 0x30;
	expect_einval(e, "setup header is only");
}

static void test_truncated_kernel(void **state)
{
	struct env *e = *state;
	u8 *k;

	/* A file ending inside its last 16-byte paragraph is whole (memtest86+ is one). */
	env_use_image(e, e->img, IMAGE_SIZE - 15);
	load_ok(e);
	k = ram(e, PREF_ADDRESS, KERNEL_SIZE);
	assert_memory_equal(k, e->img + SETUP_SIZE, KERNEL_SIZE - 15);
	env_restore_image(e);
	env_use_image(e, e->img, IMAGE_SIZE - 16);
	expect_einval(e, "truncated bzImage: the header says 12288 bytes of kernel, the file has "
			 "12272");
}

static void test_setup_sects_past_eof(void **state)
{
	struct env *e = *state;

	e->img[O_SETUP_SECTS] = 40;
	expect_einval(e, "truncated bzImage: 40 setup sectors (0x5200 bytes) leave no kernel");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, env_teardown)
	const struct CMUnitTest tests[] = {
		T(test_detect),
		T(test_entry_state),
		T(test_kernel_loaded),
		T(test_setup_sects_zero_means_four),
		T(test_params_header),
		T(test_e820),
		T(test_e820_5g),
		T(test_cmdline),
		T(test_cmdline_limit),
		T(test_cmdline_limit_boot_area),
		T(test_initrd_top_of_ram),
		T(test_initrd_below_addr_max),
		T(test_initrd_too_big),
		T(test_initrd_above_4g),
		T(test_runtime_start_aligned),
		T(test_init_size_too_big),
		T(test_bad_alignment),
		T(test_old_protocol),
		T(test_32bit_entry),
		T(test_zimage),
		T(test_truncated_header),
		T(test_truncated_kernel),
		T(test_setup_sects_past_eof),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
