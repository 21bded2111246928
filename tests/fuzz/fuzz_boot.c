/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the boot loaders (vmm/boot.c and the three formats):
 * whatever the image, command line and initrd, boot_load() either refuses
 * with a one-line reason or returns an entry state inside guest RAM, and
 * never touches memory outside guest RAM (ASan) or hangs.
 *
 * Random bytes almost never pass a loader's first check, so the fuzzer
 * mutates valid images instead: the input's bytes after the 5-byte prefix
 * are XORed onto a template (all zero: the template as it is), which puts
 * every header field within one mutation of a valid value.
 *
 * Input:
 *   byte 0  template: 0 bzImage, 1 ELF64, 2 Multiboot a.out kludge,
 *           3 Multiboot ELF32, 4 none (the bytes after the prefix are the image)
 *   byte 1  bits 0-1 guest RAM (2, 16, 64 or 128 MiB; RAM above 4 GiB is
 *           left to test_load_bzimage: a mutated bss or init_size that
 *           fits there would touch gigabytes); bit 2 cpu_has_nx
 *   byte 2  initrd: 0 none, else 1 B, 64 KiB, 3 MiB, 20 MiB, or 2 GiB
 *           (never backed: it may only be refused)
 *   byte 3  command line length in 16-byte steps (0-4080)
 *   byte 4  image length: 0 the template's, else that many 256ths of it
 *   then    the XOR mask (template kinds) or the image (kind 4)
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "umbra/le.h"
#include "vmm/boot.h"
#include "vmm/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFIX	      5u
#define TEMPLATE_SIZE 0x4000u
#define KERNEL_GPA    0x200000u /* 2 MiB: the ELF templates' load address */
#define MB_GPA	      0x100000u /* 1 MiB: the a.out template's */

/* A protocol 2.15 bzImage as test_load_bzimage builds it: one setup sector, 8 KiB of kernel. */
static size_t template_bzimage(u8 *img)
{
	img[0x1f1] = 1;			   /* setup_sects */
	le_put32(img, 0x1f4, 0x2000 / 16); /* syssize */
	le_put16(img, 0x1fe, 0xaa55);	   /* boot_flag */
	img[0x200] = 0xeb;		   /* jump over the header */
	img[0x201] = 0x6a;		   /* to 0x26c */
	memcpy(img + 0x202, "HdrS", 4);	   /* header */
	le_put16(img, 0x206, 0x020f);	   /* version */
	img[0x211] = 0x01;		   /* loadflags: LOADED_HIGH */
	le_put32(img, 0x214, 0x100000);	   /* code32_start */
	le_put32(img, 0x22c, 0x7fffffff);  /* initrd_addr_max */
	le_put32(img, 0x230, 0x200000);	   /* kernel_alignment */
	img[0x234] = 1;			   /* relocatable_kernel */
	le_put16(img, 0x236, 3);	   /* xloadflags: 64-bit entry, above 4G */
	le_put32(img, 0x238, 2047);	   /* cmdline_size */
	le_put64(img, 0x258, 0x1000000);   /* pref_address */
	le_put32(img, 0x260, 0x800000);	   /* init_size */
	memset(img + 0x400, 0x90, 0x2000); /* the protected-mode kernel */
	return 0x400 + 0x2000;
}

/* An ELF64 executable with one PT_LOAD of 4 KiB file, 12 KiB memory, at 2 MiB. */
static size_t template_elf64(u8 *img)
{
	Elf64_Ehdr eh = { .e_type = ET_EXEC,
			  .e_machine = EM_X86_64,
			  .e_version = EV_CURRENT,
			  .e_entry = KERNEL_GPA + 0x10,
			  .e_phoff = sizeof(Elf64_Ehdr),
			  .e_ehsize = sizeof(Elf64_Ehdr),
			  .e_phentsize = sizeof(Elf64_Phdr),
			  .e_phnum = 1 };
	Elf64_Phdr ph = { .p_type = PT_LOAD,
			  .p_flags = PF_R | PF_X,
			  .p_offset = 0x1000,
			  .p_vaddr = KERNEL_GPA,
			  .p_paddr = KERNEL_GPA,
			  .p_filesz = 0x1000,
			  .p_memsz = 0x3000,
			  .p_align = 0x1000 };

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + eh.e_phoff, &ph, sizeof(ph));
	memset(img + 0x1000, 0xf4, 0x1000);
	return 0x2000;
}

/* The Multiboot header at `off`: magic, flags, checksum, then the a.out fields when given. */
static void put_mb_header(u8 *img, size_t off, u32 flags)
{
	le_put32(img, off, 0x1badb002u);
	le_put32(img, off + 4, flags);
	le_put32(img, off + 8, -(0x1badb002u + flags));
}

/* A Multiboot kernel with the a.out kludge: the whole 8 KiB file at 1 MiB, 8 KiB of bss. */
static size_t template_mb_aout(u8 *img)
{
	put_mb_header(img, 0, 0x10003u);    /* page align, memory info, a.out kludge */
	le_put32(img, 12, MB_GPA);	    /* header_addr */
	le_put32(img, 16, MB_GPA);	    /* load_addr */
	le_put32(img, 20, 0);		    /* load_end_addr: the whole file */
	le_put32(img, 24, MB_GPA + 0x4000); /* bss_end_addr */
	le_put32(img, 28, MB_GPA + 0x40);   /* entry_addr */
	memset(img + 0x40, 0xf4, 0x2000 - 0x40);
	return 0x2000;
}

/* A Multiboot i386 ELF: the header at 0x100, one PT_LOAD at 2 MiB. */
static size_t template_mb_elf32(u8 *img)
{
	Elf32_Ehdr eh = { .e_type = ET_EXEC,
			  .e_machine = EM_386,
			  .e_version = EV_CURRENT,
			  .e_entry = KERNEL_GPA + 0x10,
			  .e_phoff = sizeof(Elf32_Ehdr),
			  .e_ehsize = sizeof(Elf32_Ehdr),
			  .e_phentsize = sizeof(Elf32_Phdr),
			  .e_phnum = 1 };
	Elf32_Phdr ph = { .p_type = PT_LOAD,
			  .p_flags = PF_R | PF_X,
			  .p_offset = 0x1000,
			  .p_vaddr = KERNEL_GPA,
			  .p_paddr = KERNEL_GPA,
			  .p_filesz = 0x1000,
			  .p_memsz = 0x2000,
			  .p_align = 0x1000 };

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + eh.e_phoff, &ph, sizeof(ph));
	put_mb_header(img, 0x100, 0x3u);
	memset(img + 0x1000, 0xf4, 0x1000);
	return 0x2000;
}

/* An initrd of `size` bytes, never written: read-only zero pages, reserved lazily. */
static const u8 *initrd_bytes(size_t size)
{
	static const u8 *area;

	if (!area) {
		void *p = mmap(NULL, 2 * GiB, PROT_READ,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED)
			abort();
		area = p;
	}
	return size <= 2 * GiB ? area : NULL;
}

/* What a successful load promises: the kernel, its entry and its boot GDT in guest RAM. */
static void check_loaded(const struct guest_mem *mem, const struct boot_state *bs)
{
	if (!bs->format || bs->load_start >= bs->load_end ||
	    !gpa_to_hva(mem, gpa(bs->load_start), bs->load_end - bs->load_start) ||
	    !gpa_to_hva(mem, gpa(bs->rip), 1))
		abort();
	if (bs->mode == BOOT_LONG64 && !gpa_to_hva(mem, gpa(bs->cr3 & ~0xfffull), 4096))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const u64 ram_sizes[4] = { 2 * MiB, 16 * MiB, 64 * MiB, 128 * MiB };
	static const size_t initrd_sizes[6] = { 0, 1, 64 * KiB, 3 * MiB, 20 * MiB, 2 * GiB };
	static u8 img[TEMPLATE_SIZE];
	static char cmdline[4096];
	struct guest_mem mem;
	struct boot_input in = { .image_name = "fuzz", .initrd_name = "fuzz-initrd" };
	struct boot_state bs;
	char err[256];
	size_t len, n;
	u8 *image;
	int rc;

	if (size < PREFIX)
		return 0;
	memset(img, 0, sizeof(img));
	switch (data[0] % 5) {
	case 0: len = template_bzimage(img); break;
	case 1: len = template_elf64(img); break;
	case 2: len = template_mb_aout(img); break;
	case 3: len = template_mb_elf32(img); break;
	default: len = 0; break;
	}
	n = MIN(size - PREFIX, sizeof(img));
	for (size_t i = 0; i < n; i++)
		img[i] ^= data[PREFIX + i];
	len = MAX(len, n);
	if (data[4])
		len = len * data[4] / 256;

	/* A copy of exactly `len` bytes, so that ASan sees a read past the image's end. */
	in.image = image = malloc(len ? len : 1);
	if (!image)
		abort();
	memcpy(image, img, len);
	in.image_size = len;
	in.cpu_has_nx = data[1] & 4;
	in.initrd_size = initrd_sizes[data[2] % 6];
	in.initrd = in.initrd_size ? initrd_bytes(in.initrd_size) : NULL;
	memset(cmdline, 'a', sizeof(cmdline));
	cmdline[data[3] * 16u] = 0;
	in.cmdline = cmdline;

	if (guest_mem_init(&mem, ram_sizes[data[1] & 3]))
		abort();
	memset(err, 0, sizeof(err));
	rc = boot_load(&mem, &in, &bs, err, sizeof(err));
	if (getenv("FUZZ_BOOT_VERBOSE")) /* replaying a finding: what the loader said */
		fprintf(stderr, "fuzz_boot: %zu-byte image: %s\n", len, rc ? err : bs.format);
	if (rc == 0)
		check_loaded(&mem, &bs);
	else if (rc != -EINVAL || !err[0] || memchr(err, '\n', sizeof(err)))
		abort(); /* a refusal always says why, on one line */
	guest_mem_destroy(&mem);
	free(image);
	return 0;
}
