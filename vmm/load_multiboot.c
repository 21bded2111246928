// SPDX-License-Identifier: MIT
/*
 * Multiboot (version 1) loader, behaving as QEMU's -kernel does, so that test
 * kernels written for QEMU run unchanged. Reference: the Multiboot
 * Specification version 0.6.96, sections 3.1 (header), 3.2 (machine state)
 * and 3.3 (boot information).
 *
 * 1. Find the header: magic 0x1BADB002 at a 4-byte aligned offset in the
 *    first 8 KiB, with magic + flags + checksum == 0 (mod 2^32).
 * 2. Refuse required-feature bits we do not provide.
 * 3. Load the kernel: with the "a.out kludge" (flags bit 16) from the
 *    header's addresses, otherwise as a 32-bit ELF (QEMU refuses 64-bit ELFs
 *    without the kludge, and so do we).
 * 4. Load the initrd as module 1, page aligned after the kernel.
 * 5. Build the boot information: memory sizes, command line, modules,
 *    memory map, boot loader name; it lives in the boot area below 512 KiB.
 * 6. Machine state: 32-bit protected mode, paging off, flat segments,
 *    EAX = 0x2BADB002, EBX = info address, IF = 0.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "shadow/x86.h"
#include "umbra/log.h"
#include "umbra/bootinfo.h"
#include "vmm/boot.h"

#define MB_HEADER_MAGIC 0x1badb002u
#define MB_BOOT_MAGIC	0x2badb002u /* in EAX at entry */
#define MB_SEARCH_LIMIT 8192
/* Header flags (requests from the kernel). Bits 0-15 are requirements. */
#define MB_HF_PAGE_ALIGN    (1u << 0)
#define MB_HF_MEMORY_INFO   (1u << 1)
#define MB_HF_VIDEO_MODE    (1u << 2)
#define MB_HF_AOUT_KLUDGE   (1u << 16)
#define MB_HF_REQUIRED_MASK 0xffffu
#define MB_HF_SUPPORTED	    (MB_HF_PAGE_ALIGN | MB_HF_MEMORY_INFO)
/* Info flags (what the loader provides). */
#define MB_INFO_MEMORY	    (1u << 0)
#define MB_INFO_CMDLINE	    (1u << 2)
#define MB_INFO_MODS	    (1u << 3)
#define MB_INFO_MMAP	    (1u << 6)
#define MB_INFO_LOADER_NAME (1u << 9)

/* Where the boot information goes (all inside the boot area). */
#define MB_INFO_GPA    UMBRA_BOOT_INFO
#define MB_MMAP_GPA    (UMBRA_BOOT_INFO + 0x200)
#define MB_CMDLINE_GPA UMBRA_BOOT_CMDLINE
#define MB_MODS_GPA    0x4000ull
#define MB_STRINGS_GPA 0x5000ull /* loader name, module strings */
#define MB_STRINGS_MAX 0x1000ull

struct mb_header {
	u32 magic, flags, checksum;
	u32 header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

struct mb_info {
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
	u32 vbe[4]; /* vbe_control_info, vbe_mode_info, then four u16 */
};

struct mb_module {
	u32 mod_start, mod_end, string, reserved;
};

struct mb_mmap_entry {
	u32 size; /* of the rest of the entry: 20 */
	u32 addr_lo, addr_hi, len_lo, len_hi;
	u32 type;
} __attribute__((packed));

_Static_assert(sizeof(struct mb_info) == 88, "multiboot info layout");
_Static_assert(MB_MMAP_GPA >= MB_INFO_GPA + sizeof(struct mb_info), "mmap after info");

/* Item 1. Returns the header offset or -1. */
static long find_header(const u8 *image, size_t size)
{
	size_t limit = MIN(size, (size_t)MB_SEARCH_LIMIT);

	for (size_t off = 0; off + 12 <= limit; off += 4) {
		const struct mb_header *h = (const struct mb_header *)(image + off);

		if (h->magic == MB_HEADER_MAGIC && (u32)(h->magic + h->flags + h->checksum) == 0)
			return (long)off;
	}
	return -1;
}

bool multiboot_detect(const u8 *image, size_t size)
{
	return find_header(image, size) >= 0;
}

/* Item 3, a.out kludge: the header gives the load addresses. */
static int load_aout(struct guest_mem *mem, const u8 *image, size_t size, size_t hoff,
		     struct boot_state *bs, char *err, size_t errlen)
{
	const struct mb_header *h = (const struct mb_header *)(image + hoff);
	u64 file_off, load_size, mem_size;

	if (hoff + sizeof(*h) > size) {
		boot_err(err, errlen, "truncated Multiboot header (address fields missing)");
		return -EINVAL;
	}
	if (h->header_addr < h->load_addr || h->header_addr - h->load_addr > hoff) {
		boot_err(err, errlen,
			 "Multiboot header_addr 0x%x and load_addr 0x%x disagree with the file",
			 h->header_addr, h->load_addr);
		return -EINVAL;
	}
	file_off = hoff - (h->header_addr - h->load_addr);
	load_size = h->load_end_addr ? (u64)h->load_end_addr - h->load_addr : size - file_off;
	if (h->load_end_addr && h->load_end_addr < h->load_addr) {
		boot_err(err, errlen, "Multiboot load_end_addr is below load_addr");
		return -EINVAL;
	}
	if (load_size > size - file_off) {
		boot_err(err, errlen,
			 "truncated kernel: Multiboot header asks for %llu bytes, file has %llu",
			 (unsigned long long)load_size, (unsigned long long)(size - file_off));
		return -EINVAL;
	}
	mem_size = load_size;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < h->load_addr + load_size) {
			boot_err(err, errlen,
				 "Multiboot bss_end_addr is below the end of the load");
			return -EINVAL;
		}
		mem_size = (u64)h->bss_end_addr - h->load_addr;
	}
	if (boot_place(mem, h->load_addr, image + file_off, load_size, mem_size, err, errlen))
		return -EINVAL;
	if (h->entry_addr < h->load_addr || h->entry_addr - h->load_addr >= mem_size) {
		boot_err(err, errlen, "Multiboot entry_addr 0x%x is outside the loaded kernel",
			 h->entry_addr);
		return -EINVAL;
	}
	bs->format = "multiboot-aout";
	bs->rip = h->entry_addr;
	bs->load_start = h->load_addr;
	bs->load_end = h->load_addr + mem_size;
	return 0;
}

/* Item 3, ELF32. */
static int load_elf32(struct guest_mem *mem, const u8 *image, size_t size, struct boot_state *bs,
		      char *err, size_t errlen)
{
	const Elf32_Ehdr *eh = (const Elf32_Ehdr *)image;
	const u8 *ph;
	bool entry_found = false;
	unsigned loaded = 0;

	if (size >= EI_NIDENT && image[EI_CLASS] == ELFCLASS64) {
		boot_err(err, errlen,
			 "Multiboot kernel is a 64-bit ELF without the address kludge (flag bit "
			 "16); "
			 "QEMU refuses it too");
		return -EINVAL;
	}
	if (size < sizeof(*eh) || memcmp(image, ELFMAG, SELFMAG) || image[EI_CLASS] != ELFCLASS32 ||
	    eh->e_machine != EM_386) {
		boot_err(err, errlen,
			 "Multiboot kernel without the address kludge must be a 32-bit i386 ELF");
		return -EINVAL;
	}
	if (eh->e_phnum == 0 || eh->e_phentsize != sizeof(Elf32_Phdr) || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf32_Phdr) < eh->e_phnum) {
		boot_err(err, errlen, "truncated ELF file: bad program header table");
		return -EINVAL;
	}
	ph = image + eh->e_phoff; /* any offset: entries are copied out, never dereferenced */
	bs->load_start = ~0ull;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf32_Phdr seg, *p = &seg;

		memcpy(&seg, ph + (size_t)i * sizeof(seg), sizeof(seg));

		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (p->p_offset > size || p->p_filesz > size - p->p_offset) {
			boot_err(err, errlen,
				 "truncated ELF file: segment %u extends beyond the file", i);
			return -EINVAL;
		}
		if (boot_place(mem, p->p_paddr, image + p->p_offset, p->p_filesz, p->p_memsz, err,
			       errlen))
			return -EINVAL;
		loaded++;
		bs->load_start = MIN(bs->load_start, (u64)p->p_paddr);
		bs->load_end = MAX(bs->load_end, (u64)p->p_paddr + p->p_memsz);
		/* A kernel linked high enters through its physical alias, as QEMU does. */
		if ((u32)(eh->e_entry - p->p_vaddr) < p->p_memsz) {
			bs->rip = p->p_paddr + (eh->e_entry - p->p_vaddr);
			entry_found = true;
		}
	}
	if (!loaded || !entry_found) {
		boot_err(err, errlen,
			 loaded ? "ELF entry point 0x%x is not inside any loaded segment"
				: "ELF file has no PT_LOAD segment (entry 0x%x)",
			 eh->e_entry);
		return -EINVAL;
	}
	bs->format = "multiboot-elf";
	return 0;
}

/* Copy a NUL-terminated string into the strings area; returns its gpa or 0. */
static u32 put_string(struct guest_mem *mem, u64 *cursor, const char *s)
{
	size_t n = strlen(s) + 1;
	char *dst;

	if (*cursor + n > MB_STRINGS_GPA + MB_STRINGS_MAX)
		return 0;
	dst = gpa_to_hva(mem, gpa(*cursor), n);
	memcpy(dst, s, n);
	*cursor += n;
	return (u32)(*cursor - n);
}

/* Item 5: the memory map in Multiboot's format, from the shared map. */
static u32 write_mmap(struct guest_mem *mem)
{
	struct umbra_mem_entry map[UMBRA_BOOT_MAX_MEM_ENTRIES];
	unsigned n = guest_mem_map(mem, map, UMBRA_BOOT_MAX_MEM_ENTRIES);
	struct mb_mmap_entry *e = gpa_to_hva(mem, gpa(MB_MMAP_GPA), n * sizeof(*e));

	for (unsigned i = 0; i < n; i++)
		e[i] = (struct mb_mmap_entry){
			.size = sizeof(*e) - sizeof(e->size),
			.addr_lo = (u32)map[i].addr,
			.addr_hi = (u32)(map[i].addr >> 32),
			.len_lo = (u32)map[i].len,
			.len_hi = (u32)(map[i].len >> 32),
			.type = map[i].type,
		};
	return n * sizeof(*e);
}

/* Items 4 and 5. */
static int write_info(struct guest_mem *mem, const struct boot_input *in, struct boot_state *bs,
		      char *err, size_t errlen)
{
	struct mb_info *mbi = gpa_to_hva(mem, gpa(MB_INFO_GPA), sizeof(*mbi));
	size_t cmdlen = strlen(in->cmdline);
	u64 strings = MB_STRINGS_GPA;

	if (cmdlen >= UMBRA_BOOT_CMDLINE_MAX) {
		boot_err(err, errlen, "command line is %zu bytes; the limit is %d", cmdlen,
			 UMBRA_BOOT_CMDLINE_MAX - 1);
		return -EINVAL;
	}
	memset(mbi, 0, sizeof(*mbi));
	memcpy(gpa_to_hva(mem, gpa(MB_CMDLINE_GPA), cmdlen + 1), in->cmdline, cmdlen + 1);
	mbi->flags = MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MMAP | MB_INFO_LOADER_NAME;
	mbi->mem_lower = MEM_EBDA_START / KiB;
	mbi->mem_upper = (u32)((mem->low_ram_end - MEM_HIGH_START) / KiB);
	mbi->cmdline = MB_CMDLINE_GPA;
	mbi->mmap_addr = MB_MMAP_GPA;
	mbi->mmap_length = write_mmap(mem);
	mbi->boot_loader_name = put_string(mem, &strings, "umbra " UMBRA_VERSION);
	if (in->initrd) {
		struct mb_module *mod = gpa_to_hva(mem, gpa(MB_MODS_GPA), sizeof(*mod));
		u64 at = ALIGN_UP(bs->load_end, PAGE_SIZE);
		void *dst = gpa_to_hva(mem, gpa(at), in->initrd_size);

		if (!dst || at + in->initrd_size > MEM_PCI_HOLE_START) {
			boot_err(err, errlen,
				 "initrd (%zu bytes) does not fit in RAM after the kernel at "
				 "0x%llx; raise --mem",
				 in->initrd_size, (unsigned long long)at);
			return -EINVAL;
		}
		memcpy(dst, in->initrd, in->initrd_size);
		*mod = (struct mb_module){
			.mod_start = (u32)at,
			.mod_end = (u32)(at + in->initrd_size),
			.string = put_string(mem, &strings, in->initrd_name ? in->initrd_name : ""),
		};
		mbi->flags |= MB_INFO_MODS;
		mbi->mods_count = 1;
		mbi->mods_addr = MB_MODS_GPA;
	}
	return 0;
}

int multiboot_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *bs,
		   char *err, size_t errlen)
{
	long hoff = find_header(in->image, in->image_size);
	const struct mb_header *h = (const struct mb_header *)(in->image + hoff);
	u32 unsupported;
	int r;

	BUG_ON(hoff < 0);
	/* Item 2. QEMU only warns about a video mode request; so do we. */
	unsupported = h->flags & MB_HF_REQUIRED_MASK & ~(MB_HF_SUPPORTED | MB_HF_VIDEO_MODE);
	if (unsupported) {
		boot_err(err, errlen, "Multiboot header requires unsupported features (flags 0x%x)",
			 unsupported);
		return -EINVAL;
	}
	if (h->flags & MB_HF_VIDEO_MODE)
		pr_warn("%s: Multiboot video mode request ignored (no framebuffer)",
			in->image_name);
	if (h->flags & MB_HF_AOUT_KLUDGE)
		r = load_aout(mem, in->image, in->image_size, (size_t)hoff, bs, err, errlen);
	else
		r = load_elf32(mem, in->image, in->image_size, bs, err, errlen);
	if (r)
		return r;
	/* 32-bit load addresses that pass boot_place() lie in RAM below 3 GiB. */
	r = write_info(mem, in, bs, err, errlen);
	if (r)
		return r;
	/* Item 6. */
	boot_write_gdt(mem, BOOT_GDT_PROT32, bs);
	bs->mode = BOOT_PROT32;
	bs->rax = MB_BOOT_MAGIC;
	bs->rbx = MB_INFO_GPA;
	bs->rsp = UMBRA_BOOT_STACK_TOP;
	bs->rflags = RFLAGS_FIXED;
	return 0;
}
