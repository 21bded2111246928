/* SPDX-License-Identifier: MIT */
/*
 * Guest-physical memory: the PC layout and the host mapping behind it.
 *
 * Layout for --mem SIZE (all RAM comes from one host mapping of SIZE bytes,
 * where host offset == gpa below 4 GiB):
 *
 *   [0, 640K)            RAM            (the top 1 KiB is reported reserved: EBDA)
 *   [640K, 768K)         VGA memory     plain memory, no display behind it: what
 *                                       the guest writes reads back (MEM_VGA)
 *   [768K, 896K)         ROM            option-ROM space, empty: all-ones, read-only
 *   [896K, 1M)           ROM            read-only to the guest, VMM-filled (BIOS area):
 *                                       the ACPI tables, RSDP at 0xe0000 (vmm/acpi.c)
 *   [1M, min(SIZE, 3G))  RAM
 *   [3G, 4G)             PCI hole       LAPIC, IOAPIC, future MMIO devices
 *   [4G, 4G + SIZE - 3G) RAM            only when SIZE > 3 GiB
 *
 * The 256 KiB of host mapping under the ROM window is simply not used, as on
 * a real PC the RAM behind that window is hidden; the 128 KiB under the VGA
 * window back the VGA memory.
 *
 * Why VGA memory is backed (since session 33): guests that draw a text
 * screen write it at 0xb8000 whatever their console is (memtest86+, which
 * also prints on the serial port; hobby kernels). Unbacked, each store
 * there was an MMIO exit, and in shadow mode a trap and an emulated store:
 * most of a memtest86+ run's exits. It is reported reserved (e820, the
 * Multiboot map), as on a PC, and no loader puts anything there; Linux,
 * given no screen_info, does not take it for a VGA console.
 *
 * Why the option-ROM space is backed: Linux scans it in 16-byte steps for
 * an iBFT (reserve_ibft_region) and in 2 KiB steps for ROM signatures
 * (probe_roms). Unbacked, each of those ~16k reads was an MMIO exit; as a
 * read-only memslot of 0xff bytes the guest reads the same all-ones without
 * one, and a write still exits as MMIO and is dropped, as before.
 */
#ifndef UMBRA_VMM_MEMORY_H
#define UMBRA_VMM_MEMORY_H

#include "umbra/bootinfo.h"
#include "umbra/types.h"

#define MEM_LOW_RAM_END	   0xa0000ull /* 640 KiB */
#define MEM_VGA_START	   0xa0000ull /* VGA memory, to the ROM window */
#define MEM_EBDA_START	   0x9fc00ull /* top 1 KiB of low RAM, reserved */
#define MEM_ROM_START	   0xc0000ull /* the read-only window: option-ROM space, then BIOS */
#define MEM_BIOS_START	   0xe0000ull /* BIOS area Linux scans for tables */
#define MEM_ROM_END	   0x100000ull
#define MEM_HIGH_START	   0x100000ull /* 1 MiB */
#define MEM_PCI_HOLE_START (3 * GiB)
#define MEM_4G		   (4 * GiB)
#define MEM_IOAPIC_GPA                                                            \
	0xfec00000ull /* KVM's in-kernel IOAPIC (KVM_IOAPIC_DEFAULT_BASE_ADDRESS) \
		       */

/* RAM: the guest's, in its memory map; ROM: read-only; VGA: read-write, not in the map. */
enum mem_kind { MEM_RAM, MEM_ROM, MEM_VGA };

struct mem_region {
	gpa_t base;
	u64 size;
	u8 *hva;
	enum mem_kind kind;
};

#define MEM_MAX_REGIONS 5

struct guest_mem {
	u64 ram_bytes;	  /* --mem: bytes of RAM the guest was given */
	u8 *ram;	  /* host mapping of ram_bytes */
	u8 *rom;	  /* host mapping of the ROM window */
	u64 low_ram_end;  /* end of RAM below the PCI hole */
	u64 high_ram_end; /* end of RAM above 4 GiB, 0 if none */
	struct mem_region regions[MEM_MAX_REGIONS];
	unsigned nr_regions;
};

/*
 * Map `ram_bytes` of anonymous memory (MAP_NORESERVE: untouched RAM costs
 * nothing) and lay it out. Returns 0 or -errno; on error nothing is mapped.
 */
int guest_mem_init(struct guest_mem *mem, u64 ram_bytes) __must_check;
void guest_mem_destroy(struct guest_mem *mem);

/*
 * The host address of [gpa, gpa+len) if that whole range lies in one RAM
 * region (VGA memory too; ROM too when `rom_ok`), else NULL. This is the only bounds check
 * between a guest-supplied address and host memory: use it for every access.
 */
void *gpa_to_hva_kind(const struct guest_mem *mem, gpa_t gpa, u64 len, bool rom_ok);
static inline void *gpa_to_hva(const struct guest_mem *mem, gpa_t gpa, u64 len)
{
	return gpa_to_hva_kind(mem, gpa, len, false);
}

/* As gpa_to_hva, but RAM the guest's memory map offers only (no VGA memory): for loaders. */
void *gpa_to_ram(const struct guest_mem *mem, gpa_t gpa, u64 len);

/* Bytes of RAM the guest can address (the hole hides a little of --mem). */
u64 guest_mem_usable(const struct guest_mem *mem);

/*
 * Fill `out` with the memory map (e820 numbering), sorted by address.
 * Returns the number of entries (at most `max`).
 */
unsigned guest_mem_map(const struct guest_mem *mem, struct umbra_mem_entry *out, unsigned max);

#endif /* UMBRA_VMM_MEMORY_H */
