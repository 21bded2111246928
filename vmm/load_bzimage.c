// SPDX-License-Identifier: MIT
/*
 * Linux bzImage loader: the x86 boot protocol (Linux's
 * Documentation/arch/x86/boot.rst), its 64-bit entry, or its 32-bit one
 * for an image that has no 64-bit entry (a 32-bit kernel, memtest86+'s ia32
 * image).
 *
 * 1. Recognise the image: boot_flag 0xAA55 at 0x1FE and "HdrS" at 0x202.
 * 2. Check the setup header against the file (every field is untrusted):
 *    protocol 2.12 or later, LOADED_HIGH (a bzImage, not a zImage), setup
 *    sectors and the protected-mode kernel (syssize) inside the file.
 * 3. Load the protected-mode kernel (the file after (setup_sects + 1) * 512
 *    bytes) at its runtime start (pref_address, aligned up to
 *    kernel_alignment when relocatable); init_size bytes from there must be
 *    RAM, as the kernel decompresses itself in place.
 * 4. Place the initrd as high as possible below initrd_addr_max and the top
 *    of low RAM, page aligned, above the kernel's init_size; above 4 GiB when
 *    it does not fit below and the kernel allows it (XLF_CAN_BE_LOADED_ABOVE_4G).
 * 5. Build boot_params (the "zero page") in the boot area: the setup header
 *    as the file has it, then the loader's fields (type_of_loader, loadflags,
 *    cmd_line_ptr, ramdisk), and the e820 map from guest_mem_map(), the same
 *    map the other loaders give.
 * 6. Entry, with XLF_KERNEL_64 (boot.rst, "64-bit Boot Protocol"): long
 *    mode, paging on with the boot identity map (it covers the kernel's
 *    init_size, boot_params and the command line), flat 64-bit code and data
 *    from the boot GDT, interrupts off, RSI = boot_params, RIP = load
 *    address + 0x200. The protocol names selectors __BOOT_CS (0x10) and
 *    __BOOT_DS (0x18); the boot GDT has the same flat segments at 0x08 and
 *    0x10, and Linux's 64-bit entry loads its own GDT and segments before
 *    using either.
 *    Without it ("32-bit Boot Protocol"): protected mode, paging off, flat
 *    4 GiB code at __BOOT_CS (0x10) and data at __BOOT_DS (0x18) in CS and
 *    DS, ES, SS, interrupts off, ESI = boot_params, EBP = EDI = EBX = 0,
 *    EIP = the load address (the protected-mode kernel's first byte). The
 *    32-bit protocol cannot reach a kernel above 4 GiB; the load address
 *    never is (item 3).
 */
#include <errno.h>
#include <string.h>

#include "shadow/x86.h"
#include "umbra/bootinfo.h"
#include "umbra/le.h"
#include "vmm/boot.h"

/* Offsets into the image and into boot_params (the setup header sits at the same offset in both).
 */
#define BP_EXT_RAMDISK_IMAGE 0x0c0 /* u32: high half of ramdisk_image */
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES	     0x1e8 /* u8 */
#define BP_HDR		     0x1f1 /* start of struct setup_header */
#define BP_SETUP_SECTS	     0x1f1 /* u8; 0 means 4 */
#define BP_SYSSIZE	     0x1f4 /* u32: protected-mode code size in 16-byte units */
#define BP_BOOT_FLAG	     0x1fe /* u16: 0xAA55 */
#define BP_JUMP		     0x200 /* the byte at 0x201 is the header's length after 0x202 */
#define BP_HEADER	     0x202 /* "HdrS" */
#define BP_VERSION	     0x206 /* u16: protocol version, major.minor as 0xMMmm */
#define BP_TYPE_OF_LOADER    0x210
#define BP_LOADFLAGS	     0x211
#define BP_RAMDISK_IMAGE     0x218
#define BP_RAMDISK_SIZE	     0x21c
#define BP_HEAP_END_PTR	     0x224 /* u16 */
#define BP_CMD_LINE_PTR	     0x228
#define BP_INITRD_ADDR_MAX   0x22c /* u32: highest byte the initrd may occupy */
#define BP_KERNEL_ALIGNMENT  0x230
#define BP_RELOCATABLE	     0x234 /* u8 */
#define BP_XLOADFLAGS	     0x236 /* u16 */
#define BP_CMDLINE_SIZE	     0x238 /* u32: longest command line, without the NUL */
#define BP_PREF_ADDRESS	     0x258 /* u64 */
#define BP_INIT_SIZE	     0x260 /* u32: bytes the kernel needs from its load address */
#define BP_E820_TABLE	     0x2d0 /* struct boot_e820_entry[BP_E820_MAX] */
#define BP_E820_MAX	     128
#define BP_SIZE		     0x1000

#define BZ_MIN_VERSION	   0x020c      /* 2.12: xloadflags, which announce the 64-bit entry */
#define BZ_HDR_MAGIC	   0x53726448u /* "HdrS" */
#define BZ_BOOT_FLAG	   0xaa55
#define BZ_ENTRY64_OFFSET  0x200
#define BZ_TYPE_UNDEFINED  0xff /* type_of_loader: a loader with no assigned ID */
#define BZ_LOADED_HIGH	   (1u << 0)
#define BZ_CAN_USE_HEAP	   (1u << 7)
#define BZ_HEAP_END_PTR	   0xde00 /* heap_end 0xe000 - 0x200, boot.rst's example */
#define XLF_KERNEL_64	   (1u << 0)
#define XLF_ABOVE_4G	   (1u << 1)   /* XLF_CAN_BE_LOADED_ABOVE_4G */
#define BZ_INITRD_MAX_DFLT 0x37ffffffu /* initrd_addr_max before protocol 2.03 */

/* Where the loader's data goes: the boot area slots the ELF64 contract uses. */
#define BZ_PARAMS_GPA  UMBRA_BOOT_INFO
#define BZ_CMDLINE_GPA UMBRA_BOOT_CMDLINE

struct boot_e820_entry {
	u64 addr, size;
	u32 type;
} __attribute__((packed));

_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry layout");
_Static_assert(BP_E820_TABLE + BP_E820_MAX * sizeof(struct boot_e820_entry) <= BP_SIZE,
	       "e820 table inside boot_params");
_Static_assert(BZ_PARAMS_GPA + BP_SIZE <= BZ_CMDLINE_GPA, "boot_params before the command line");

/* Item 1. */
bool bzimage_detect(const u8 *image, size_t size)
{
	return size >= BP_HEADER + 4 && le_get16(image, BP_BOOT_FLAG) == BZ_BOOT_FLAG &&
	       le_get32(image, BP_HEADER) == BZ_HDR_MAGIC;
}

struct bz_layout {
	size_t hdr_end;	   /* end of the setup header in the file */
	size_t setup_size; /* bytes before the protected-mode kernel */
	u64 kernel_size;   /* bytes of protected-mode kernel to copy */
	u64 init_size;	   /* bytes of RAM the kernel needs from its load address */
	u64 load;	   /* where it goes */
};

/* Item 2. */
static int check_header(const u8 *img, size_t size, struct bz_layout *l, char *err, size_t errlen)
{
	unsigned sects;
	u16 version;
	u64 syssize;

	l->hdr_end = BP_HEADER + img[BP_JUMP + 1];
	if (l->hdr_end > size || l->hdr_end < BP_VERSION + 2) {
		boot_err(err, errlen,
			 "truncated bzImage: the setup header ends at 0x%zx, the file at 0x%zx",
			 l->hdr_end, size);
		return -EINVAL;
	}
	version = le_get16(img, BP_VERSION);
	if (version < BZ_MIN_VERSION) {
		boot_err(err, errlen,
			 "bzImage uses boot protocol %u.%02u; umbra needs 2.12 or later (Linux "
			 "3.8+)",
			 version >> 8, version & 0xff);
		return -EINVAL;
	}
	if (l->hdr_end < BP_INIT_SIZE + 4) {
		boot_err(err, errlen,
			 "truncated bzImage: protocol %u.%02u setup header is only 0x%zx bytes",
			 version >> 8, version & 0xff, l->hdr_end - BP_HDR);
		return -EINVAL;
	}
	if (!(img[BP_LOADFLAGS] & BZ_LOADED_HIGH)) {
		boot_err(err, errlen, "bzImage is a zImage (LOADED_HIGH clear): not supported");
		return -EINVAL;
	}
	sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	l->setup_size = ((size_t)sects + 1) * 512;
	if (l->setup_size >= size) {
		boot_err(err, errlen,
			 "truncated bzImage: %u setup sectors (0x%zx bytes) leave no kernel in a "
			 "%zu-byte file",
			 sects, l->setup_size, size);
		return -EINVAL;
	}
	/*
	 * syssize counts 16-byte paragraphs, rounded up: the file may end
	 * inside the last one (memtest86+ 6.10's x64 image ends 8 bytes in),
	 * which other loaders accept.
	 */
	syssize = (u64)le_get32(img, BP_SYSSIZE) * 16;
	if (syssize > size - l->setup_size + 15) {
		boot_err(
			err, errlen,
			"truncated bzImage: the header says %llu bytes of kernel, the file has %zu",
			(unsigned long long)syssize, size - l->setup_size);
		return -EINVAL;
	}
	/* Trailing bytes past syssize (signatures, padding) are loaded too, as other loaders do. */
	l->kernel_size = size - l->setup_size;
	l->init_size = MAX((u64)le_get32(img, BP_INIT_SIZE), l->kernel_size);
	return 0;
}

/*
 * Item 3. boot.rst ("init_size") defines the kernel's runtime start: for a
 * relocatable kernel align_up(max(load address, pref_address),
 * kernel_alignment), otherwise pref_address; the kernel needs init_size
 * bytes from there. Loading below pref_address would gain nothing (the
 * kernel moves itself up to it), so the load address is the runtime start.
 */
static int place_kernel(struct guest_mem *mem, const u8 *img, struct bz_layout *l, char *err,
			size_t errlen)
{
	u64 pref = le_get64(img, BP_PREF_ADDRESS), align = le_get32(img, BP_KERNEL_ALIGNMENT);
	bool relocatable = img[BP_RELOCATABLE] != 0;
	u64 end = mem->low_ram_end;

	if (relocatable) {
		if (align == 0 || (align & (align - 1)) || align > GiB) {
			boot_err(
				err, errlen,
				"bzImage kernel_alignment 0x%llx is not a power of two up to 1 GiB",
				(unsigned long long)align);
			return -EINVAL;
		}
		l->load = ALIGN_UP(MAX(MIN(pref, MEM_4G), MEM_HIGH_START), align);
	} else if (pref < MEM_HIGH_START) {
		boot_err(err, errlen,
			 "bzImage is not relocatable and wants to run at 0x%llx, below 1 MiB",
			 (unsigned long long)pref);
		return -EINVAL;
	} else {
		l->load = pref;
	}
	if (l->load > end || l->init_size > end - l->load) {
		boot_err(err, errlen,
			 "bzImage needs 0x%llx bytes (init_size) from 0x%llx; RAM below the PCI "
			 "hole ends at 0x%llx (%llu MiB; see --mem)",
			 (unsigned long long)l->init_size, (unsigned long long)l->load,
			 (unsigned long long)end, (unsigned long long)(mem->ram_bytes >> 20));
		return -EINVAL;
	}
	/* Only the file's bytes are copied: the rest of init_size is the kernel's scratch. */
	return boot_place(mem, l->load, img + l->setup_size, l->kernel_size, l->kernel_size, err,
			  errlen);
}

/*
 * Item 4. The highest page-aligned start for `size` bytes in [lo, hi), or 0
 * when they do not fit (0 is never a valid initrd address here).
 */
static u64 top_fit(u64 lo, u64 hi, u64 size)
{
	if (hi < lo || size > hi - lo)
		return 0;
	hi = (hi - size) & ~(u64)(PAGE_SIZE - 1);
	return hi >= lo ? hi : 0;
}

static int place_initrd(struct guest_mem *mem, const struct boot_input *in, const u8 *img,
			const struct bz_layout *l, u8 *bp, char *err, size_t errlen)
{
	u64 max = le_get32(img, BP_INITRD_ADDR_MAX), lo = l->load + l->init_size, at, hi;

	if (!in->initrd)
		return 0;
	if (!max)
		max = BZ_INITRD_MAX_DFLT;
	/* initrd_addr_max is the highest address the initrd may occupy, inclusive. */
	hi = MIN(max + 1, mem->low_ram_end);
	lo = ALIGN_UP(lo, PAGE_SIZE);
	at = top_fit(lo, hi, in->initrd_size);
	if (!at && (le_get16(img, BP_XLOADFLAGS) & XLF_ABOVE_4G) && mem->high_ram_end)
		at = top_fit(MEM_4G, mem->high_ram_end, in->initrd_size);
	if (!at) {
		boot_err(
			err, errlen,
			"initrd (%zu bytes) does not fit in RAM between the kernel's end at 0x%llx "
			"and 0x%llx (initrd_addr_max 0x%llx, %llu MiB of RAM); raise --mem",
			in->initrd_size, (unsigned long long)lo, (unsigned long long)hi,
			(unsigned long long)max, (unsigned long long)(mem->ram_bytes >> 20));
		return -EINVAL;
	}
	memcpy(gpa_to_hva(mem, gpa(at), in->initrd_size), in->initrd, in->initrd_size);
	le_put32(bp, BP_RAMDISK_IMAGE, (u32)at);
	le_put32(bp, BP_EXT_RAMDISK_IMAGE, (u32)(at >> 32));
	le_put32(bp, BP_RAMDISK_SIZE, (u32)in->initrd_size);
	le_put32(bp, BP_EXT_RAMDISK_SIZE, (u32)((u64)in->initrd_size >> 32));
	return 0;
}

/* Item 5. */
static int write_params(struct guest_mem *mem, const struct boot_input *in, const u8 *img,
			const struct bz_layout *l, u8 *bp, char *err, size_t errlen)
{
	struct umbra_mem_entry map[UMBRA_BOOT_MAX_MEM_ENTRIES];
	size_t cmdlen = strlen(in->cmdline);
	u64 cmdmax = MIN((u64)le_get32(img, BP_CMDLINE_SIZE), (u64)UMBRA_BOOT_CMDLINE_MAX - 1);
	unsigned n;

	if (cmdlen > cmdmax) {
		boot_err(err, errlen, "command line is %zu bytes; this kernel takes at most %llu",
			 cmdlen, (unsigned long long)cmdmax);
		return -EINVAL;
	}
	memset(bp, 0, BP_SIZE);
	memcpy(bp + BP_HDR, img + BP_HDR, MIN(l->hdr_end, (size_t)BP_SIZE) - BP_HDR);
	bp[BP_TYPE_OF_LOADER] = BZ_TYPE_UNDEFINED;
	bp[BP_LOADFLAGS] |= BZ_CAN_USE_HEAP; /* LOADED_HIGH stays set (checked) */
	le_put16(bp, BP_HEAP_END_PTR, BZ_HEAP_END_PTR);
	memcpy(gpa_to_hva(mem, gpa(BZ_CMDLINE_GPA), cmdlen + 1), in->cmdline, cmdlen + 1);
	le_put32(bp, BP_CMD_LINE_PTR, BZ_CMDLINE_GPA);
	le_put32(bp, BP_EXT_CMD_LINE_PTR, 0);

	n = guest_mem_map(mem, map, UMBRA_BOOT_MAX_MEM_ENTRIES);
	_Static_assert(UMBRA_BOOT_MAX_MEM_ENTRIES <= BP_E820_MAX, "e820 table holds the map");
	bp[BP_E820_ENTRIES] = (u8)n;
	for (unsigned i = 0; i < n; i++) {
		struct boot_e820_entry e = { map[i].addr, map[i].len, map[i].type };

		memcpy(bp + BP_E820_TABLE + i * sizeof(e), &e, sizeof(e));
	}
	return place_initrd(mem, in, img, l, bp, err, errlen);
}

int bzimage_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *bs,
		 char *err, size_t errlen)
{
	u8 *bp = gpa_to_hva(mem, gpa(BZ_PARAMS_GPA), BP_SIZE);
	struct bz_layout l;

	if (check_header(in->image, in->image_size, &l, err, errlen) ||
	    place_kernel(mem, in->image, &l, err, errlen) ||
	    write_params(mem, in, in->image, &l, bp, err, errlen))
		return -EINVAL;
	/* Item 6. */
	if (le_get16(in->image, BP_XLOADFLAGS) & XLF_KERNEL_64) {
		boot_write_gdt(mem, BOOT_GDT_LONG64, bs);
		bs->format = "bzimage";
		bs->mode = BOOT_LONG64;
		bs->cr3 = boot_identity_map(mem);
		bs->nx = in->cpu_has_nx;
		bs->rip = l.load + BZ_ENTRY64_OFFSET;
	} else {
		boot_write_gdt(mem, BOOT_GDT_LINUX32, bs);
		bs->format = "bzimage-32";
		bs->mode = BOOT_PROT32;
		bs->rip = l.load;
	}
	bs->rsi = BZ_PARAMS_GPA;
	bs->rsp = UMBRA_BOOT_STACK_TOP; /* not required; the kernel sets its own */
	bs->rflags = RFLAGS_FIXED;
	bs->load_start = l.load;
	bs->load_end = l.load + l.init_size;
	return 0;
}
