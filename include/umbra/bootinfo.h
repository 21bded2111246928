/* SPDX-License-Identifier: MIT */
/*
 * Umbra's ELF64 boot contract: what a 64-bit ELF kernel finds when umbra
 * enters it. This header is shared by the VMM and by guest images, so it uses
 * only <stdint.h> types.
 *
 * Loading: every PT_LOAD segment is copied to its physical address (p_paddr)
 * and its [p_filesz, p_memsz) tail is zeroed. Segments must lie in guest RAM
 * and above UMBRA_BOOT_AREA_END.
 *
 * CPU state at the entry point (e_entry, a physical = virtual address):
 *   - 64-bit long mode, CPL0. CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE,
 *     EFER = LME|LMA|SCE, plus EFER.NXE when CPUID reports NX.
 *   - CR3 = identity map of [0, min(max(4 GiB, top of RAM), 64 GiB)) with
 *     2 MiB pages, RWX, supervisor; the tables live in the boot area. A
 *     kernel given more RAM maps the rest itself.
 *   - GDT at UMBRA_BOOT_GDT: 0x08 = 64-bit code, 0x10 = flat data. CS = 0x08,
 *     DS = ES = SS = FS = GS = 0x10. IDT limit 0 (no handlers yet).
 *   - RFLAGS = 0x2 (IF = 0), RDI = physical address of struct umbra_boot_info,
 *     RSI = UMBRA_BOOT_MAGIC, RSP = UMBRA_BOOT_STACK_TOP (16-byte aligned),
 *     every other general register 0.
 *   - LAPIC in virtual-wire mode (LINT0 ExtINT, LINT1 NMI) as firmware leaves it;
 *     PIC and PIT at their reset state.
 * The boot area [UMBRA_BOOT_AREA_START, UMBRA_BOOT_AREA_END) holds the GDT,
 * page tables, boot info, memory map, command line and stack; the kernel may
 * reuse it once it has copied what it needs. The memory map reports it as
 * usable RAM.
 */
#ifndef UMBRA_BOOTINFO_H
#define UMBRA_BOOTINFO_H

#include <stdint.h>

#define UMBRA_BOOT_MAGIC	0x554d425241424f4fULL /* "UMBRABOO" */
#define UMBRA_BOOT_INFO_VERSION 1

#define UMBRA_BOOT_AREA_START  0x1000ULL
#define UMBRA_BOOT_GDT	       0x1000ULL /* 4 entries */
#define UMBRA_BOOT_INFO	       0x2000ULL /* struct umbra_boot_info + memory map */
#define UMBRA_BOOT_CMDLINE     0x3000ULL /* NUL-terminated, < 4 KiB */
#define UMBRA_BOOT_CMDLINE_MAX 4096
#define UMBRA_BOOT_PGTABLE     0x10000ULL /* PML4, PDPT, then the PDs */
#define UMBRA_BOOT_STACK_TOP   0x80000ULL
#define UMBRA_BOOT_AREA_END    0x80000ULL

/* Memory map entry types, numbered as in the e820 map. */
enum umbra_mem_type {
	UMBRA_MEM_RAM = 1,
	UMBRA_MEM_RESERVED = 2,
};

struct umbra_mem_entry {
	uint64_t addr;
	uint64_t len;
	uint32_t type; /* enum umbra_mem_type */
	uint32_t reserved;
};

#define UMBRA_BOOT_MAX_MEM_ENTRIES 16

struct umbra_boot_info {
	uint64_t magic;	      /* UMBRA_BOOT_MAGIC */
	uint32_t version;     /* UMBRA_BOOT_INFO_VERSION */
	uint32_t nr_mem;      /* entries used in mem[] */
	uint64_t ram_size;    /* bytes of RAM (sum of UMBRA_MEM_RAM entries) */
	uint64_t cmdline;     /* gpa of the NUL-terminated command line */
	uint64_t cmdline_len; /* bytes, without the NUL */
	uint64_t initrd;      /* gpa of the initrd, 0 if none */
	uint64_t initrd_size;
	struct umbra_mem_entry mem[UMBRA_BOOT_MAX_MEM_ENTRIES];
};

#endif /* UMBRA_BOOTINFO_H */
