// SPDX-License-Identifier: MIT
/*
 * Guest-physical memory (vmm/memory.h).
 *
 * 1. Map the RAM and ROM backing in the VMM.
 * 2. Describe the PC layout as regions (each becomes a KVM memslot).
 * 3. Translate gpa ranges to host addresses with a bounds check.
 * 4. Produce the memory map the boot loaders hand to the guest.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/memory.h"

static void add_region(struct guest_mem *mem, u64 base, u64 size, u8 *hva, enum mem_kind kind)
{
	mem->regions[mem->nr_regions++] =
		(struct mem_region){ .base = gpa(base), .size = size, .hva = hva, .kind = kind };
}

/* Items 1 and 2. */
int guest_mem_init(struct guest_mem *mem, u64 ram_bytes)
{
	u64 rom_size = MEM_ROM_END - MEM_ROM_START;
	void *ram, *rom;

	memset(mem, 0, sizeof(*mem));
	if (ram_bytes < 2 * MiB)
		return -EINVAL;
	ram = mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		return -errno;
	rom = mmap(NULL, rom_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rom == MAP_FAILED) {
		int err = -errno;

		munmap(ram, ram_bytes);
		return err;
	}
	/* The option-ROM space reads as all-ones, as it did unbacked (memory.h). */
	memset(rom, 0xff, MEM_BIOS_START - MEM_ROM_START);
	mem->ram_bytes = ram_bytes;
	mem->ram = ram;
	mem->rom = rom;
	mem->low_ram_end = MIN(ram_bytes, MEM_PCI_HOLE_START);
	mem->high_ram_end =
		ram_bytes > MEM_PCI_HOLE_START ? MEM_4G + ram_bytes - MEM_PCI_HOLE_START : 0;

	add_region(mem, 0, MEM_LOW_RAM_END, mem->ram, MEM_RAM);
	add_region(mem, MEM_VGA_START, MEM_ROM_START - MEM_VGA_START, mem->ram + MEM_VGA_START,
		   MEM_VGA);
	add_region(mem, MEM_ROM_START, rom_size, mem->rom, MEM_ROM);
	add_region(mem, MEM_HIGH_START, mem->low_ram_end - MEM_HIGH_START,
		   mem->ram + MEM_HIGH_START, MEM_RAM);
	if (mem->high_ram_end)
		add_region(mem, MEM_4G, mem->high_ram_end - MEM_4G, mem->ram + MEM_PCI_HOLE_START,
			   MEM_RAM);
	return 0;
}

void guest_mem_destroy(struct guest_mem *mem)
{
	if (mem->ram)
		munmap(mem->ram, mem->ram_bytes);
	if (mem->rom)
		munmap(mem->rom, MEM_ROM_END - MEM_ROM_START);
	memset(mem, 0, sizeof(*mem));
}

/* Item 3: in one region of a kind in `kinds` (a mask of 1u << enum mem_kind). */
static void *find_hva(const struct guest_mem *mem, gpa_t a, u64 len, unsigned kinds)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];

		if (!(kinds & (1u << r->kind)))
			continue;
		/* Written so that no sum can overflow: a and len are guest-controlled. */
		if (a.v >= r->base.v && a.v - r->base.v <= r->size &&
		    len <= r->size - (a.v - r->base.v))
			return r->hva + (a.v - r->base.v);
	}
	return NULL;
}

/* Item 3. */
void *gpa_to_hva_kind(const struct guest_mem *mem, gpa_t a, u64 len, bool rom_ok)
{
	return find_hva(mem, a, len,
			(1u << MEM_RAM) | (1u << MEM_VGA) | (rom_ok ? 1u << MEM_ROM : 0));
}

/* Item 3. */
void *gpa_to_ram(const struct guest_mem *mem, gpa_t a, u64 len)
{
	return find_hva(mem, a, len, 1u << MEM_RAM);
}

u64 guest_mem_usable(const struct guest_mem *mem)
{
	u64 sum = 0;

	for (unsigned i = 0; i < mem->nr_regions; i++)
		if (mem->regions[i].kind == MEM_RAM)
			sum += mem->regions[i].size;
	return sum - (MEM_LOW_RAM_END - MEM_EBDA_START);
}

/* Item 4. */
unsigned guest_mem_map(const struct guest_mem *mem, struct umbra_mem_entry *out, unsigned max)
{
	struct umbra_mem_entry e[] = {
		{ 0, MEM_EBDA_START, UMBRA_MEM_RAM, 0 },
		{ MEM_EBDA_START, MEM_LOW_RAM_END - MEM_EBDA_START, UMBRA_MEM_RESERVED, 0 },
		{ MEM_BIOS_START, MEM_ROM_END - MEM_BIOS_START, UMBRA_MEM_RESERVED, 0 },
		{ MEM_HIGH_START, mem->low_ram_end - MEM_HIGH_START, UMBRA_MEM_RAM, 0 },
		{ MEM_4G, mem->high_ram_end - MEM_4G, UMBRA_MEM_RAM, 0 },
	};
	unsigned n = mem->high_ram_end ? 5 : 4;

	n = MIN(n, max);
	memcpy(out, e, n * sizeof(*out));
	return n;
}
