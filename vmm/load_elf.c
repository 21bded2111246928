// SPDX-License-Identifier: MIT
/*
 * ELF64 loader: Umbra's own boot contract (include/umbra/bootinfo.h).
 *
 * 1. Validate the ELF header and program headers against the file size, with
 *    checks that cannot overflow (every field is untrusted).
 * 2. Copy each PT_LOAD segment to its physical address (p_paddr).
 * 3. Translate the entry point to a physical address when the kernel is
 *    linked high (p_vaddr != p_paddr).
 * 4. Build the boot area: GDT, identity-mapping page tables (vmm/boot.c),
 *    command line, boot info with the memory map; place the initrd after the
 *    kernel.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "shadow/x86.h"
#include "umbra/bootinfo.h"
#include "vmm/boot.h"

bool elf64_detect(const u8 *image, size_t size)
{
	/* Only the identity: a truncated or foreign ELF64 gets a precise error from the loader. */
	return size > EI_CLASS && !memcmp(image, ELFMAG, SELFMAG) && image[EI_CLASS] == ELFCLASS64;
}

/*
 * Item 1. Returns the program header table or NULL with `err` set. The table
 * may sit at any offset a crafted file chooses, so callers copy each entry
 * out with get_phdr() instead of dereferencing a possibly misaligned pointer.
 */
static const u8 *check_headers(const u8 *image, size_t size, char *err, size_t errlen)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)image;

	if (size < sizeof(*eh)) {
		boot_err(err, errlen, "truncated ELF header (%zu bytes)", size);
		return NULL;
	}
	if (image[EI_DATA] != ELFDATA2LSB || image[EI_VERSION] != EV_CURRENT) {
		boot_err(err, errlen, "ELF file is not little-endian version 1");
		return NULL;
	}
	if (eh->e_machine != EM_X86_64) {
		boot_err(err, errlen, "ELF64 file is not for x86-64 (e_machine %u)", eh->e_machine);
		return NULL;
	}
	if (eh->e_type != ET_EXEC) {
		boot_err(err, errlen, "ELF file is not an executable (e_type %u)", eh->e_type);
		return NULL;
	}
	if (eh->e_phnum == 0 || eh->e_phentsize != sizeof(Elf64_Phdr)) {
		boot_err(err, errlen, "ELF file has no usable program headers");
		return NULL;
	}
	if (eh->e_phoff > size || (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum) {
		boot_err(err, errlen, "truncated ELF file: program headers end beyond %zu bytes",
			 size);
		return NULL;
	}
	return image + eh->e_phoff;
}

static Elf64_Phdr get_phdr(const u8 *table, unsigned i)
{
	Elf64_Phdr p;

	memcpy(&p, table + (size_t)i * sizeof(p), sizeof(p));
	return p;
}

/* Items 2 and 3. */
static int load_segments(struct guest_mem *mem, const u8 *image, size_t size, struct boot_state *bs,
			 char *err, size_t errlen)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)image;
	const u8 *ph = check_headers(image, size, err, errlen);
	bool entry_found = false;
	unsigned loaded = 0;

	if (!ph)
		return -EINVAL;
	bs->load_start = ~0ull;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr seg = get_phdr(ph, i), *p = &seg;

		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (p->p_offset > size || p->p_filesz > size - p->p_offset) {
			boot_err(err, errlen,
				 "truncated ELF file: segment %u needs bytes [0x%llx, +0x%llx) of "
				 "a %zu-byte file",
				 i, (unsigned long long)p->p_offset,
				 (unsigned long long)p->p_filesz, size);
			return -EINVAL;
		}
		if (boot_place(mem, p->p_paddr, image + p->p_offset, p->p_filesz, p->p_memsz, err,
			       errlen))
			return -EINVAL;
		loaded++;
		bs->load_start = MIN(bs->load_start, p->p_paddr);
		bs->load_end = MAX(bs->load_end, p->p_paddr + p->p_memsz);
		if (eh->e_entry - p->p_vaddr < p->p_memsz) {
			bs->rip = p->p_paddr + (eh->e_entry - p->p_vaddr);
			entry_found = true;
		}
	}
	if (!loaded) {
		boot_err(err, errlen, "ELF file has no PT_LOAD segment");
		return -EINVAL;
	}
	if (!entry_found) {
		boot_err(err, errlen, "entry point 0x%llx is not inside any loaded segment",
			 (unsigned long long)eh->e_entry);
		return -EINVAL;
	}
	return 0;
}

static int write_boot_info(struct guest_mem *mem, const struct boot_input *in,
			   struct boot_state *bs, char *err, size_t errlen)
{
	struct umbra_boot_info *bi = gpa_to_hva(mem, gpa(UMBRA_BOOT_INFO), sizeof(*bi));
	size_t cmdlen = strlen(in->cmdline);
	char *cmd = gpa_to_hva(mem, gpa(UMBRA_BOOT_CMDLINE), UMBRA_BOOT_CMDLINE_MAX);

	_Static_assert(UMBRA_BOOT_INFO + sizeof(struct umbra_boot_info) <= UMBRA_BOOT_CMDLINE,
		       "boot info must not overlap the command line");
	if (cmdlen >= UMBRA_BOOT_CMDLINE_MAX) {
		boot_err(err, errlen, "command line is %zu bytes; the limit is %d", cmdlen,
			 UMBRA_BOOT_CMDLINE_MAX - 1);
		return -EINVAL;
	}
	memcpy(cmd, in->cmdline, cmdlen + 1);
	memset(bi, 0, sizeof(*bi));
	bi->magic = UMBRA_BOOT_MAGIC;
	bi->version = UMBRA_BOOT_INFO_VERSION;
	bi->nr_mem = guest_mem_map(mem, bi->mem, UMBRA_BOOT_MAX_MEM_ENTRIES);
	bi->ram_size = guest_mem_usable(mem);
	bi->cmdline = UMBRA_BOOT_CMDLINE;
	bi->cmdline_len = cmdlen;
	if (in->initrd) {
		u64 at = ALIGN_UP(bs->load_end, PAGE_SIZE);
		void *dst = gpa_to_hva(mem, gpa(at), in->initrd_size);

		if (!dst) {
			boot_err(err, errlen,
				 "initrd (%zu bytes) does not fit in RAM after the kernel at "
				 "0x%llx; raise --mem",
				 in->initrd_size, (unsigned long long)at);
			return -EINVAL;
		}
		memcpy(dst, in->initrd, in->initrd_size);
		bi->initrd = at;
		bi->initrd_size = in->initrd_size;
	}
	return 0;
}

int elf64_load(struct guest_mem *mem, const struct boot_input *in, struct boot_state *bs, char *err,
	       size_t errlen)
{
	if (load_segments(mem, in->image, in->image_size, bs, err, errlen))
		return -EINVAL;
	if (write_boot_info(mem, in, bs, err, errlen))
		return -EINVAL;
	boot_write_gdt(mem, BOOT_GDT_LONG64, bs);
	bs->format = "elf64";
	bs->mode = BOOT_LONG64;
	bs->cr3 = boot_identity_map(mem);
	bs->nx = in->cpu_has_nx;
	bs->rsp = UMBRA_BOOT_STACK_TOP;
	bs->rflags = RFLAGS_FIXED;
	bs->rdi = UMBRA_BOOT_INFO;
	bs->rsi = UMBRA_BOOT_MAGIC;
	return 0;
}
