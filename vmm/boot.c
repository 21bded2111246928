// SPDX-License-Identifier: MIT
/*
 * Boot image dispatch and helpers shared by the loaders (vmm/boot.h).
 *
 * 1. Tell the image format by content: a Multiboot header wins, as with
 *    QEMU's -kernel; then a Linux bzImage (boot sector flag and "HdrS" setup
 *    header); then an ELF64 x86-64 file; anything else is refused.
 * 2. Place segments in guest RAM with bounds checks that cannot overflow.
 * 3. Write the boot GDT both entry modes use.
 * 4. Build the boot identity map the long-mode entries (ELF64, bzImage) use.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shadow/x86.h"
#include "umbra/bootinfo.h"
#include "vmm/boot.h"

#define BOOT_PDE_FLAGS	 (PTE_P | PTE_RW | PTE_PS)
#define BOOT_TABLE_FLAGS (PTE_P | PTE_RW)

void boot_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Item 1. */
int boot_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *out, char *err,
	      size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (multiboot_detect(in->image, in->image_size))
		return multiboot_load(mem, in, out, err, errlen);
	if (bzimage_detect(in->image, in->image_size))
		return bzimage_load(mem, in, out, err, errlen);
	if (elf64_detect(in->image, in->image_size))
		return elf64_load(mem, in, out, err, errlen);
	if (in->image_size >= 4 && !memcmp(in->image, "\177ELF", 4))
		boot_err(err, errlen,
			 "ELF file is not a 64-bit x86-64 kernel and has no Multiboot header");
	else
		boot_err(err, errlen,
			 "not a kernel image: no ELF magic, no Multiboot header and no Linux "
			 "bzImage setup header");
	return -EINVAL;
}

/* Item 2. */
int boot_place(struct guest_mem *mem, u64 paddr, const u8 *src, u64 filesz, u64 memsz, char *err,
	       size_t errlen)
{
	u8 *dst;

	if (filesz > memsz) {
		boot_err(err, errlen, "segment at 0x%llx has file size above its memory size",
			 (unsigned long long)paddr);
		return -EINVAL;
	}
	if (paddr < UMBRA_BOOT_AREA_END) {
		boot_err(err, errlen,
			 "segment at 0x%llx overlaps the boot area below 0x%llx (load kernels at 1 "
			 "MiB or above)",
			 (unsigned long long)paddr, (unsigned long long)UMBRA_BOOT_AREA_END);
		return -EINVAL;
	}
	if (paddr < MEM_LOW_RAM_END &&
	    (paddr >= MEM_EBDA_START || memsz > MEM_EBDA_START - paddr)) {
		boot_err(err, errlen, "segment at 0x%llx overlaps the reserved EBDA at 0x%llx",
			 (unsigned long long)paddr, (unsigned long long)MEM_EBDA_START);
		return -EINVAL;
	}
	dst = gpa_to_ram(mem, gpa(paddr), memsz);
	if (!dst) {
		boot_err(err, errlen,
			 "segment [0x%llx, +0x%llx) lies outside guest RAM (%llu MiB; see --mem)",
			 (unsigned long long)paddr, (unsigned long long)memsz,
			 (unsigned long long)(mem->ram_bytes >> 20));
		return -EINVAL;
	}
	memcpy(dst, src, filesz);
	memset(dst + filesz, 0, memsz - filesz);
	return 0;
}

/* Item 3. Descriptor encodings: Intel SDM Vol. 3A §3.4.5. */
#define GDT_CODE64 0x00af9a000000ffffull /* P, DPL0, code RX, L=1, G */
#define GDT_CODE32 0x00cf9a000000ffffull /* P, DPL0, code RX, D=1, G, 4 GiB */
#define GDT_DATA   0x00cf92000000ffffull /* P, DPL0, data RW, B=1, G, 4 GiB */

void boot_write_gdt(struct guest_mem *mem, enum boot_gdt layout, struct boot_state *bs)
{
	static const u64 layouts[][BOOT_GDT_ENTRIES] = {
		[BOOT_GDT_LONG64] = { 0, GDT_CODE64, GDT_DATA, GDT_CODE32 },
		[BOOT_GDT_PROT32] = { 0, GDT_CODE32, GDT_DATA, 0 },
		[BOOT_GDT_LINUX32] = { 0, 0, GDT_CODE32, GDT_DATA },
	};
	u64 *gdt = gpa_to_hva(mem, gpa(UMBRA_BOOT_GDT), BOOT_GDT_ENTRIES * 8);

	memcpy(gdt, layouts[layout], sizeof(layouts[layout]));
	bs->cs_sel = layout == BOOT_GDT_LINUX32 ? 0x10 : 0x08;
	bs->ds_sel = bs->cs_sel + 8;
}

/* Item 4: identity map [0, span) with 2 MiB pages; returns CR3. */
u64 boot_identity_map(struct guest_mem *mem)
{
	u64 top = mem->high_ram_end ? mem->high_ram_end : MEM_4G;
	u64 span = MIN(MAX(top, MEM_4G), BOOT_IDMAP_MAX);
	u64 nr_pd = ALIGN_UP(span, GiB) / GiB;
	u64 pml4_gpa = UMBRA_BOOT_PGTABLE, pdpt_gpa = pml4_gpa + PAGE_SIZE;
	u64 pd_gpa = pdpt_gpa + PAGE_SIZE;
	u64 *pml4 = gpa_to_hva(mem, gpa(pml4_gpa), PAGE_SIZE);
	u64 *pdpt = gpa_to_hva(mem, gpa(pdpt_gpa), PAGE_SIZE);
	u64 *pd = gpa_to_hva(mem, gpa(pd_gpa), nr_pd * PAGE_SIZE);

	_Static_assert(UMBRA_BOOT_PGTABLE + (2 + BOOT_IDMAP_MAX / GiB) * PAGE_SIZE <=
			       UMBRA_BOOT_STACK_TOP - 16 * KiB,
		       "boot page tables must leave room for the boot stack");
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = pdpt_gpa | BOOT_TABLE_FLAGS;
	for (u64 i = 0; i < nr_pd; i++)
		pdpt[i] = (pd_gpa + i * PAGE_SIZE) | BOOT_TABLE_FLAGS;
	for (u64 i = 0; i < nr_pd * 512; i++)
		pd[i] = (i * 2 * MiB) | BOOT_PDE_FLAGS;
	return pml4_gpa;
}
