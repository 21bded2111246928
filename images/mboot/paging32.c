/* SPDX-License-Identifier: MIT */
/*
 * paging32_test(): the Multiboot guest turns on 32-bit paging (CR4.PAE = 0,
 * CR4.PSE = 1) and checks what the MMU does with it, one line per check
 * ("paging32: NAME ok", or what it read instead), so that shadow mode and
 * hw mode can be compared line by line (tests/integration/test_shadow_hello.c).
 *
 * The tables (all in .bss, identity = physical):
 *   pd0[0]      -> pt_low: 0-4 MiB, 4 KiB pages (this image, its stack)
 *   pd0[1]      4 MiB page at 4 MiB (identity)
 *   pd0[0x100]  4 MiB page at 4 MiB again: va 0x40000000, PD quadrant 1
 *   pd0[0x300]  -> pt_hi: va 0xc0000000, quadrant 3; PTE 0, 0x200 (the
 *               PT's second half) and 0x3ff map frames a, b, c
 *   pd0[0x3ff]  -> pd0 itself: va 0xffc00000 + i * 4 KiB is the PT of PDE i
 *   pd1         as pd0 but pd1[0x300] -> pt_alt, whose PTE 0 maps frame c
 * No check faults: 32-bit protected-mode events are not delivered in
 * shadow mode yet (README, LIMITATION).
 */
#include <stdint.h>

#include "print.h"

#define PTE_P	0x001u
#define PTE_RW	0x002u
#define PTE_A	0x020u
#define PTE_D	0x040u
#define PTE_PS	0x080u
#define CR0_PG	0x80000000u
#define CR0_WP	0x00010000u
#define CR4_PSE 0x00000010u

#define HI	 0xc0000000u /* pd0[0x300] */
#define ALIAS4M	 0x40000000u /* pd0[0x100]: physical 4 MiB */
#define SELF	 0xffc00000u /* pd0[0x3ff] */
#define BIG_PHYS 0x00400000u

#define MAGIC_A 0xa1a1a1a1u
#define MAGIC_B 0xb2b2b2b2u
#define MAGIC_C 0xc3c3c3c3u

#define PAGE __attribute__((aligned(4096)))
static uint32_t pd0[1024] PAGE, pd1[1024] PAGE, pt_low[1024] PAGE, pt_hi[1024] PAGE,
	pt_alt[1024] PAGE;
static uint32_t frame_a[1024] PAGE, frame_b[1024] PAGE, frame_c[1024] PAGE;

static unsigned failures, checks;

static uint32_t phys(const void *p)
{
	return (uint32_t)(uintptr_t)p;
}

static volatile uint32_t *at(uint32_t va)
{
	return (volatile uint32_t *)(uintptr_t)va;
}

static void invlpg(uint32_t va)
{
	__asm__ volatile("invlpg (%0)" ::"r"(va) : "memory");
}

static void set_cr3(uint32_t v)
{
	__asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory");
}

static uint32_t get_cr0(void)
{
	uint32_t v;

	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static void set_cr0(uint32_t v)
{
	__asm__ volatile("mov %0, %%cr0" ::"r"(v) : "memory");
}

static uint32_t get_cr4(void)
{
	uint32_t v;

	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static void set_cr4(uint32_t v)
{
	__asm__ volatile("mov %0, %%cr4" ::"r"(v) : "memory");
}

static void check(const char *name, uint32_t got, uint32_t want)
{
	checks++;
	if (got == want) {
		kprintf("paging32: %s ok\n", name);
		return;
	}
	failures++;
	kprintf("paging32: %s FAILED: 0x%x, expected 0x%x\n", name, (unsigned)got, (unsigned)want);
}

static void build_tables(void)
{
	for (uint32_t i = 0; i < 1024; i++)
		pt_low[i] = i << 12 | PTE_P | PTE_RW;
	pt_low[0] = 0; /* page 0 unmapped, as a kernel leaves it */
	pd0[0] = phys(pt_low) | PTE_P | PTE_RW;
	pd0[1] = BIG_PHYS | PTE_P | PTE_RW | PTE_PS;
	pd0[0x100] = BIG_PHYS | PTE_P | PTE_RW | PTE_PS;
	pd0[0x300] = phys(pt_hi) | PTE_P | PTE_RW;
	pd0[0x3ff] = phys(pd0) | PTE_P | PTE_RW;
	pt_hi[0] = phys(frame_a) | PTE_P | PTE_RW;
	pt_hi[0x200] = phys(frame_b) | PTE_P | PTE_RW;
	pt_hi[0x3ff] = phys(frame_c) | PTE_P | PTE_RW;
	for (uint32_t i = 0; i < 1024; i++)
		pd1[i] = pd0[i];
	pd1[0x300] = phys(pt_alt) | PTE_P | PTE_RW;
	pd1[0x3ff] = phys(pd1) | PTE_P | PTE_RW;
	pt_alt[0] = phys(frame_c) | PTE_P | PTE_RW;
	frame_a[0] = MAGIC_A;
	frame_b[0] = MAGIC_B;
	frame_c[0] = MAGIC_C;
}

/* Returns the number of failed checks. */
unsigned paging32_test(void);
unsigned paging32_test(void)
{
	build_tables();
	set_cr4(get_cr4() | CR4_PSE);
	set_cr3(phys(pd0));
	set_cr0(get_cr0() | CR0_PG | CR0_WP);
	kprintf("paging32: on\n");

	/* Both halves of one PT, and its last entry. */
	check("pt half 0", *at(HI), MAGIC_A);
	check("pt half 1", *at(HI + 0x200000), MAGIC_B);
	check("pt last", *at(HI + 0x3ff000), MAGIC_C);
	*at(HI + 0x200000 + 8) = 0x5151u;
	check("write through pt half 1", frame_b[2], 0x5151u);

	/* A and D, set by the MMU in 4-byte entries. */
	check("accessed, clean", pt_hi[0] & (PTE_A | PTE_D), PTE_A);
	check("accessed, dirty", pt_hi[0x200] & (PTE_A | PTE_D), PTE_A | PTE_D);
	check("neighbour untouched", pt_hi[1], 0);

	/* A 4 MiB page in quadrant 1 aliasing the identity-mapped 4 MiB page. */
	*at(BIG_PHYS + 0x101230) = 0x4444u;
	check("4m alias read", *at(ALIAS4M + 0x101230), 0x4444u);
	check("4m alias clean", pd0[0x100] & (PTE_A | PTE_D), PTE_A);
	*at(ALIAS4M + 0x3ffffc) = 0x4545u;
	check("4m alias write", *at(BIG_PHYS + 0x3ffffc), 0x4545u);
	check("4m alias dirty", pd0[0x100] & PTE_D, PTE_D);

	/* Remap a page, invlpg, read the new frame. */
	pt_hi[0] = phys(frame_b) | PTE_P | PTE_RW;
	invlpg(HI);
	check("remap", *at(HI), MAGIC_B);

	/* The PD as a PT: read a PTE through it, then remap a page through it. */
	check("recursive read", *at(SELF + (0x300 << 12) + 0x200 * 4), pt_hi[0x200]);
	*at(SELF + (0x300 << 12) + 0x3ff * 4) = phys(frame_a) | PTE_P | PTE_RW;
	invlpg(HI + 0x3ff000);
	check("recursive remap", *at(HI + 0x3ff000), MAGIC_A);

	/* Clear A, flush, use the page: A comes back. */
	pt_hi[0x200] &= ~(PTE_A | PTE_D);
	invlpg(HI + 0x200000);
	(void)*at(HI + 0x200000);
	check("accessed again", pt_hi[0x200] & (PTE_A | PTE_D), PTE_A);

	/* Another address space, and back. */
	set_cr3(phys(pd1));
	check("cr3 switch", *at(HI), MAGIC_C);
	set_cr3(phys(pd0));
	check("cr3 back", *at(HI), MAGIC_B);

	/* PSE off: the 4 MiB PDEs would point to tables; the 4 KiB ones still work. */
	set_cr4(get_cr4() & ~CR4_PSE);
	pt_hi[5] = phys(frame_c) | PTE_P | PTE_RW;
	check("pse off", *at(HI + 0x5000), MAGIC_C);
	set_cr4(get_cr4() | CR4_PSE);
	check("pse on", *at(ALIAS4M + 0x101230), 0x4444u);

	/* Paging off and on again: the identity map, then the same tables. */
	set_cr0(get_cr0() & ~CR0_PG);
	frame_c[1] = 0x6161u;
	set_cr0(get_cr0() | CR0_PG);
	check("paging off and on", *at(HI + 0x5004), 0x6161u);

	set_cr0(get_cr0() & ~CR0_PG);
	kprintf("paging32: %u of %u checks passed\n", checks - failures, checks);
	return failures;
}
