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

#include "cpu32.h"

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

static struct checks c = { .who = "paging32" };

static volatile uint32_t *at(uint32_t va)
{
	return (volatile uint32_t *)(uintptr_t)va;
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
	cr4_write(cr4_read() | CR4_PSE);
	cr3_write(phys(pd0));
	cr0_write(cr0_read() | CR0_PG | CR0_WP);
	kprintf("paging32: on\n");

	/* Both halves of one PT, and its last entry. */
	check_eq(&c, "pt half 0", *at(HI), MAGIC_A);
	check_eq(&c, "pt half 1", *at(HI + 0x200000), MAGIC_B);
	check_eq(&c, "pt last", *at(HI + 0x3ff000), MAGIC_C);
	*at(HI + 0x200000 + 8) = 0x5151u;
	check_eq(&c, "write through pt half 1", frame_b[2], 0x5151u);

	/* A and D, set by the MMU in 4-byte entries. */
	check_eq(&c, "accessed, clean", pt_hi[0] & (PTE_A | PTE_D), PTE_A);
	check_eq(&c, "accessed, dirty", pt_hi[0x200] & (PTE_A | PTE_D), PTE_A | PTE_D);
	check_eq(&c, "neighbour untouched", pt_hi[1], 0);

	/* A 4 MiB page in quadrant 1 aliasing the identity-mapped 4 MiB page. */
	*at(BIG_PHYS + 0x101230) = 0x4444u;
	check_eq(&c, "4m alias read", *at(ALIAS4M + 0x101230), 0x4444u);
	check_eq(&c, "4m alias clean", pd0[0x100] & (PTE_A | PTE_D), PTE_A);
	*at(ALIAS4M + 0x3ffffc) = 0x4545u;
	check_eq(&c, "4m alias write", *at(BIG_PHYS + 0x3ffffc), 0x4545u);
	check_eq(&c, "4m alias dirty", pd0[0x100] & PTE_D, PTE_D);

	/* Remap a page, invlpg, read the new frame. */
	pt_hi[0] = phys(frame_b) | PTE_P | PTE_RW;
	invlpg(HI);
	check_eq(&c, "remap", *at(HI), MAGIC_B);

	/* The PD as a PT: read a PTE through it, then remap a page through it. */
	check_eq(&c, "recursive read", *at(SELF + (0x300 << 12) + 0x200 * 4), pt_hi[0x200]);
	*at(SELF + (0x300 << 12) + 0x3ff * 4) = phys(frame_a) | PTE_P | PTE_RW;
	invlpg(HI + 0x3ff000);
	check_eq(&c, "recursive remap", *at(HI + 0x3ff000), MAGIC_A);

	/* Clear A, flush, use the page: A comes back. */
	pt_hi[0x200] &= ~(PTE_A | PTE_D);
	invlpg(HI + 0x200000);
	(void)*at(HI + 0x200000);
	check_eq(&c, "accessed again", pt_hi[0x200] & (PTE_A | PTE_D), PTE_A);

	/* Another address space, and back. */
	cr3_write(phys(pd1));
	check_eq(&c, "cr3 switch", *at(HI), MAGIC_C);
	cr3_write(phys(pd0));
	check_eq(&c, "cr3 back", *at(HI), MAGIC_B);

	/* PSE off: the 4 MiB PDEs would point to tables; the 4 KiB ones still work. */
	cr4_write(cr4_read() & ~CR4_PSE);
	pt_hi[5] = phys(frame_c) | PTE_P | PTE_RW;
	check_eq(&c, "pse off", *at(HI + 0x5000), MAGIC_C);
	cr4_write(cr4_read() | CR4_PSE);
	check_eq(&c, "pse on", *at(ALIAS4M + 0x101230), 0x4444u);

	/* Paging off and on again: the identity map, then the same tables. */
	cr0_write(cr0_read() & ~CR0_PG);
	frame_c[1] = 0x6161u;
	cr0_write(cr0_read() | CR0_PG);
	check_eq(&c, "paging off and on", *at(HI + 0x5004), 0x6161u);

	cr0_write(cr0_read() & ~CR0_PG);
	return checks_done(&c);
}
