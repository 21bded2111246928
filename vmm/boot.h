/* SPDX-License-Identifier: MIT */
/*
 * Boot loaders: turn an image file into guest memory contents plus the CPU
 * state to start from. Loaders never touch KVM: they write into struct
 * guest_mem and describe the entry state in struct boot_state, which the
 * vCPU setup applies. That keeps them testable with no /dev/kvm.
 *
 * Formats, told apart by content (never by file name):
 *   - Multiboot v1 (a header in the first 8 KiB): loaded as QEMU's -kernel
 *     does, entered in 32-bit protected mode (vmm/load_multiboot.c);
 *   - Linux bzImage (boot protocol 2.12 or later): entered at its 64-bit
 *     entry point in long mode with boot_params, or in 32-bit protected
 *     mode when it has none (vmm/load_bzimage.c);
 *   - ELF64 x86-64: Umbra's boot contract, entered in long mode
 *     (vmm/load_elf.c, include/umbra/bootinfo.h).
 */
#ifndef UMBRA_VMM_BOOT_H
#define UMBRA_VMM_BOOT_H

#include "umbra/types.h"
#include "vmm/memory.h"

enum boot_cpu_mode {
	BOOT_LONG64, /* long mode, paging on, CR3 = boot_state.cr3 */
	BOOT_PROT32, /* 32-bit protected mode, paging off */
};

/*
 * The boot GDT (at UMBRA_BOOT_GDT, BOOT_GDT_ENTRIES entries): flat ring-0
 * segments in one of three layouts; the loader picks one and records the
 * selectors the CPU starts with (boot_state.cs_sel/ds_sel).
 */
#define BOOT_GDT_ENTRIES 4
enum boot_gdt {
	BOOT_GDT_LONG64,  /* 0x08 64-bit code, 0x10 data, 0x18 32-bit code */
	BOOT_GDT_PROT32,  /* 0x08 32-bit code, 0x10 data (Multiboot, as QEMU gives) */
	BOOT_GDT_LINUX32, /* 0x10 32-bit code, 0x18 data: boot.rst's __BOOT_CS/__BOOT_DS */
};

struct boot_state {
	const char
		*format; /* "elf64", "bzimage", "bzimage-32", "multiboot-elf", "multiboot-aout" */
	enum boot_cpu_mode mode;
	u64 rip, rsp, rflags;
	u64 rax, rbx, rdi, rsi;
	u16 cs_sel, ds_sel;	  /* in the boot GDT; DS, ES, FS, GS and SS get ds_sel */
	u64 cr3;		  /* BOOT_LONG64 only */
	bool nx;		  /* set EFER.NXE (BOOT_LONG64) */
	u64 load_start, load_end; /* gpa span of the kernel image */
};

struct boot_input {
	const char *image_name; /* for messages */
	const u8 *image;
	size_t image_size;
	const char *cmdline; /* never NULL ("" when none) */
	const char *initrd_name;
	const u8 *initrd; /* NULL when none */
	size_t initrd_size;
	bool cpu_has_nx; /* from the CPUID the guest will see */
};

/*
 * Load `in` into `mem` and fill `out`. Returns 0, or -EINVAL with a one-line
 * reason (without the file name) in `err` when the image is malformed or does
 * not fit the guest's memory.
 */
int boot_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *out, char *err,
	      size_t errlen) __must_check;

/* Per-format loaders, used by boot_load and by the unit tests. */
bool multiboot_detect(const u8 *image, size_t size);
int multiboot_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *out,
		   char *err, size_t errlen) __must_check;
bool bzimage_detect(const u8 *image, size_t size);
int bzimage_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *out,
		 char *err, size_t errlen) __must_check;
bool elf64_detect(const u8 *image, size_t size);
int elf64_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *out,
	       char *err, size_t errlen) __must_check;

/* Shared helpers (vmm/boot.c). */
void boot_err(char *err, size_t errlen, const char *fmt, ...) __printf(3, 4);
/* Copy one ELF segment (file bytes + zeroed tail) into RAM, checking bounds. */
int boot_place(struct guest_mem *mem, u64 paddr, const u8 *src, u64 filesz, u64 memsz, char *err,
	       size_t errlen) __must_check;
/* Write the boot GDT in `layout` and set bs->cs_sel and bs->ds_sel to match. */
void boot_write_gdt(struct guest_mem *mem, enum boot_gdt layout, struct boot_state *bs);
/*
 * Write the boot page tables (at UMBRA_BOOT_PGTABLE): an identity map of
 * [0, min(max(4 GiB, top of RAM), BOOT_IDMAP_MAX)) with 2 MiB pages, RWX,
 * supervisor. Returns the CR3 value.
 */
#define BOOT_IDMAP_MAX (64 * GiB) /* 64 page directories */
u64 boot_identity_map(struct guest_mem *mem);

#endif /* UMBRA_VMM_BOOT_H */
