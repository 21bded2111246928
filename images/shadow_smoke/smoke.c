/* SPDX-License-Identifier: MIT */
/*
 * shadow_smoke.elf: the first shadow-mode guest (issue 5). It uses no
 * privileged instruction at all, so it runs to the end in shadow mode
 * before the privileged-instruction emulator exists, and prints exactly the
 * same lines in hw mode (the project's first oracle). In order, it
 *   1. checks the boot magic and prints on COM1 (port I/O at virtual CPL0);
 *   2. touches 8 MiB page by page through the boot identity map (in shadow
 *      mode each first touch is a shadow fill) and prints a checksum;
 *   3. builds its own page tables for a new gva (NEW_GVA) and links them
 *      into the boot PML4, reads through the new mapping, then rewrites the
 *      present PTE to another frame and reads again, then makes a second PTE
 *      present and reads through it. In shadow mode the boot PML4 and then
 *      the new PT are write-protected guest tables: the first rewrite of
 *      each traps, and the VMM emulates the `mov` and updates the spte
 *      (shadow_pt_write) or, for the PT, lets it go out of sync and syncs
 *      it at the invlpg (shadow/unsync.c); the read-back proves that a PTE
 *      changed by the shadow MMU is seen by the guest (the vCPU replays the
 *      spte store so KVM sees it, HOST.md);
 *   4. with "fault=pf", reads an unmapped gva: with no IDT, hw mode triple
 *      faults and shadow mode stops with "guest fault before its IDT is
 *      set" (both status 8);
 *   5. exits through the debug-exit port with N from "exit=N".
 *
 * The PTE rewrite in step 3 changes a present entry, then flushes it with
 * invlpg, as the architecture asks (SDM Vol. 3A §4.10.4): before the flush
 * a CPU's TLB, or an out-of-sync shadow table, may still give the old frame.
 */
#include <stdint.h>

#include <umbra/bootinfo.h>

#include "lib.h"
#include "print.h"
#include "uart.h"

#define PAGE_SIZE   4096ull
#define TOUCH_BASE  0x1000000ull /* 16 MiB: above the image, below 512 MiB of RAM */
#define TOUCH_BYTES (8ull << 20)
#define NEW_GVA	    0x40000000000ull /* PML4 index 8 (4 TiB): unmapped at boot */
#define UNMAPPED_GVA 0x50000000000ull /* PML4 index 10: never mapped */
#define PML4_INDEX(va) (((va) >> 39) & 511)

/* x86-64 PTE bits (Intel SDM Vol. 3A §4.5). */
#define PTE_P  (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_A  (1ull << 5)

#define MARK_A 0xaaaa0000aaaa0001ull
#define MARK_B 0xbbbb0000bbbb0002ull
#define MARK_C 0xcccc0000cccc0003ull

/* Page-aligned and identity-mapped: virtual address == physical address. */
static uint64_t new_pdpt[512] __attribute__((aligned(4096)));
static uint64_t new_pd[512] __attribute__((aligned(4096)));
static uint64_t new_pt[512] __attribute__((aligned(4096)));
static uint64_t frame_a[512] __attribute__((aligned(4096)));
static uint64_t frame_b[512] __attribute__((aligned(4096)));
static uint64_t frame_c[512] __attribute__((aligned(4096)));

/*
 * Store a page-table entry with one plain `mov` from a register: the
 * instruction the shadow-mode VMM emulates for a write to a write-protected
 * guest table.
 */
static void set_pte(uint64_t *ptep, uint64_t val)
{
	__asm__ volatile("movq %1, (%0)" : : "r"(ptep), "r"(val) : "memory");
}

static uint64_t read64(uint64_t va)
{
	return *(volatile uint64_t *)(uintptr_t)va;
}

/* Step 2. */
static void touch_memory(void)
{
	uint64_t sum = 0, n = TOUCH_BYTES / PAGE_SIZE;

	for (uint64_t i = 0; i < n; i++)
		*(volatile uint64_t *)(uintptr_t)(TOUCH_BASE + i * PAGE_SIZE) =
			(i + 1) * 0x9e3779b97f4a7c15ull;
	for (uint64_t i = 0; i < n; i++)
		sum ^= read64(TOUCH_BASE + i * PAGE_SIZE) + i;
	kprintf("touched %llu pages (%llu MiB) at 0x%llx, checksum 0x%llx\n",
		(unsigned long long)n, (unsigned long long)(TOUCH_BYTES >> 20),
		(unsigned long long)TOUCH_BASE, (unsigned long long)sum);
}

static int check(const char *what, uint64_t got, uint64_t want)
{
	kprintf("%s: read 0x%llx, %s\n", what, (unsigned long long)got,
		got == want ? "ok" : "WRONG");
	return got == want;
}

/* Step 3. Returns the number of failed checks. */
static int own_page_tables(void)
{
	uint64_t *pml4 = (uint64_t *)(uintptr_t)UMBRA_BOOT_PGTABLE;
	int ok = 0;

	frame_a[0] = MARK_A;
	frame_b[0] = MARK_B;
	frame_c[0] = MARK_C;
	/* Fresh tables, not yet used by any walk: ordinary stores. */
	new_pt[0] = (uint64_t)(uintptr_t)frame_a | PTE_P | PTE_RW;
	new_pd[0] = (uint64_t)(uintptr_t)new_pt | PTE_P | PTE_RW;
	new_pdpt[0] = (uint64_t)(uintptr_t)new_pd | PTE_P | PTE_RW;
	/* The boot PML4 is a live table: in shadow mode this store traps. */
	set_pte(&pml4[PML4_INDEX(NEW_GVA)], (uint64_t)(uintptr_t)new_pdpt | PTE_P | PTE_RW);
	ok += check("new mapping 0x40000000000 -> frame A", read64(NEW_GVA), MARK_A);

	/*
	 * The PT is now a shadowed guest table: rewrite its present entry. A
	 * CPU may keep using frame A from its TLB until the flush (SDM Vol. 3A
	 * §4.10.4), and so may an out-of-sync shadow table (shadow/unsync.c).
	 */
	set_pte(&new_pt[0], (uint64_t)(uintptr_t)frame_b | PTE_P | PTE_RW | PTE_A);
	__asm__ volatile("invlpg (%0)" : : "r"(NEW_GVA) : "memory");
	ok += check("PTE rewritten -> frame B", read64(NEW_GVA), MARK_B);

	/* A not-present entry of the same table made present. */
	set_pte(&new_pt[1], (uint64_t)(uintptr_t)frame_c | PTE_P | PTE_RW);
	ok += check("second PTE made present -> frame C", read64(NEW_GVA + PAGE_SIZE), MARK_C);

	/* Writes through the new mapping land in the frame it now maps. */
	*(volatile uint64_t *)(uintptr_t)NEW_GVA = MARK_B + 1;
	ok += check("write through the new mapping -> frame B", frame_b[0], MARK_B + 1);
	return 4 - ok;
}

void smoke_main(const struct umbra_boot_info *info, uint64_t magic);
void smoke_main(const struct umbra_boot_info *info, uint64_t magic)
{
	const char *cmdline;
	int failed;

	uart_init();
	if (magic != UMBRA_BOOT_MAGIC || !info || info->magic != UMBRA_BOOT_MAGIC) {
		kprintf("bad boot magic\n");
		debug_exit(EXIT_BAD_BOOT);
	}
	cmdline = info->cmdline ? (const char *)(uintptr_t)info->cmdline : "";
	kprintf("shadow smoke: start\n");
	touch_memory();
	if (cmdline_is(cmdline, "fault", "pf")) {
		kprintf("reading unmapped 0x%llx\n", (unsigned long long)UNMAPPED_GVA);
		(void)read64(UNMAPPED_GVA);
		kprintf("no fault?\n");
	}
	failed = own_page_tables();
	kprintf("shadow smoke: %s\n", failed ? "FAILED" : "all checks passed");
	debug_exit(failed ? 0x70 + (unsigned)failed : cmdline_exit_code(cmdline));
}
