/* SPDX-License-Identifier: MIT */
/*
 * pae_test(): the Multiboot guest turns on PAE paging outside long mode
 * (CR4.PAE = 1, EFER.LME = 0; SDM Vol. 3A §4.4) and checks what the MMU does
 * with it, one line per check ("pae: NAME ok", or what it read instead), so
 * that shadow mode and hw mode can be compared line by line
 * (tests/integration/test_shadow_hello.c).
 *
 * The tables (all in .bss, identity = physical; 8-byte entries):
 *   pdpts       one page holding two PDPTs of 4 entries: A at offset 0,
 *               B at offset 32 (Linux's PAE kernels pack them so)
 *   A[0]        -> pd_low: PDE 0 -> pt_low (0-2 MiB in 4 KiB pages, page 0
 *               unmapped), PDEs 1-3: 2 MiB pages, identity to 8 MiB
 *   A[1]        -> pd_alias: PDE 0 a 2 MiB page at 2 MiB (va 0x40000000)
 *   A[2]        not present
 *   A[3]        -> pd_hi: PDE 0 -> pt_hi, whose PTEs 0, 0x100 and 0x1ff map
 *               frames a, b and c (va 0xc0000000)
 *   B           as A but B[3] -> pd_hi_b: PDE 0 -> pt_alt, PTE 0 maps c
 * Nothing here depends on whether the CPU caches the PDPTEs between loads
 * (Intel does, in registers; AMD's nested paging reads them from memory):
 * the PDPT is rewritten only before a reload. No check faults.
 */
#include <stdint.h>

#include "cpu32.h"

#define HI	 0xc0000000u /* A[3] */
#define ALIAS2M	 0x40000000u /* A[1]: physical 2 MiB */
#define BIG_PHYS 0x00200000u

#define CR4_PAE	 0x00000020u
#define CR4_PGE	 0x00000080u
#define MSR_EFER 0xc0000080u
#define EFER_NXE 0x00000800u
#define PTE_NX	 (1ull << 63)

#define MAGIC_A 0xa1a1a1a1u
#define MAGIC_B 0xb2b2b2b2u
#define MAGIC_C 0xc3c3c3c3u

#define PAGE __attribute__((aligned(4096)))
static uint64_t pdpts[512] PAGE, pd_low[512] PAGE, pd_alias[512] PAGE, pd_hi[512] PAGE,
	pd_hi_b[512] PAGE, pt_low[512] PAGE, pt_hi[512] PAGE, pt_alt[512] PAGE;
static uint32_t frame_a[1024] PAGE, frame_b[1024] PAGE, frame_c[1024] PAGE;
static uint64_t *const pdpt_a = &pdpts[0], *const pdpt_b = &pdpts[4];

static struct checks c = { .who = "pae" };

static volatile uint32_t *at(uint32_t va)
{
	return (volatile uint32_t *)(uintptr_t)va;
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void build_tables(void)
{
	for (uint32_t i = 0; i < 512; i++)
		pt_low[i] = i << 12 | PTE_P | PTE_RW;
	pt_low[0] = 0; /* page 0 unmapped, as a kernel leaves it */
	pd_low[0] = phys(pt_low) | PTE_P | PTE_RW;
	for (uint32_t i = 1; i < 4; i++)
		pd_low[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
	pd_alias[0] = BIG_PHYS | PTE_P | PTE_RW | PTE_PS;
	pd_hi[0] = phys(pt_hi) | PTE_P | PTE_RW;
	pt_hi[0] = phys(frame_a) | PTE_P | PTE_RW;
	pt_hi[0x100] = phys(frame_b) | PTE_P | PTE_RW;
	pt_hi[0x1ff] = phys(frame_c) | PTE_P | PTE_RW;
	pd_hi_b[0] = phys(pt_alt) | PTE_P | PTE_RW;
	pt_alt[0] = phys(frame_c) | PTE_P | PTE_RW;
	/* PDPTEs: P, an address and no R/W, U/S or A (reserved in PAE paging). */
	pdpt_a[0] = pdpt_b[0] = phys(pd_low) | PTE_P;
	pdpt_a[1] = pdpt_b[1] = phys(pd_alias) | PTE_P;
	pdpt_a[3] = phys(pd_hi) | PTE_P;
	pdpt_b[3] = phys(pd_hi_b) | PTE_P;
	frame_a[0] = MAGIC_A;
	frame_b[0] = MAGIC_B;
	frame_c[0] = MAGIC_C;
}

/*
 * Before each write that loads the PDPTEs: clear A in them. A CPU never
 * sets it (bit 5 is reserved in a PDPTE), but QEMU's TCG does, and the rig's
 * hw mode walks through TCG: KVM's PDPTE load at the next CR0/CR4 write
 * would then refuse the entry (#GP, a triple fault here). A no-op elsewhere.
 */
static void pdptes_clean(void)
{
	for (unsigned i = 0; i < 8; i++)
		pdpts[i] &= ~(uint64_t)PTE_A;
}

/* Returns the number of failed checks. */
unsigned pae_test(void);
unsigned pae_test(void)
{
	build_tables();
	cr4_write(cr4_read() | CR4_PAE);
	cr3_write(phys(pdpt_a));
	cr0_write(cr0_read() | CR0_PG | CR0_WP);
	kprintf("pae: on\n");

	/* The first, middle and last entry of a PT under PDPTE 3. */
	check_eq(&c, "pt first", *at(HI), MAGIC_A);
	check_eq(&c, "pt middle", *at(HI + 0x100000), MAGIC_B);
	check_eq(&c, "pt last", *at(HI + 0x1ff000), MAGIC_C);
	*at(HI + 0x100000 + 8) = 0x5151u;
	check_eq(&c, "write through", frame_b[2], 0x5151u);

	/*
	 * A and D in 8-byte entries. (Not checked: that a PDPTE gets no A. The
	 * SDM reserves bit 5 there and the CPU leaves it, but QEMU's TCG sets
	 * it, and the rig's hw mode walks through TCG.)
	 */
	check_eq(&c, "accessed, clean", (uint32_t)pt_hi[0] & (PTE_A | PTE_D), PTE_A);
	check_eq(&c, "accessed, dirty", (uint32_t)pt_hi[0x100] & (PTE_A | PTE_D), PTE_A | PTE_D);
	check_eq(&c, "neighbour untouched", (uint32_t)pt_hi[1], 0);
	check_eq(&c, "pde accessed", (uint32_t)pd_hi[0] & PTE_A, PTE_A);

	/* A 2 MiB page under PDPTE 1 aliasing the identity-mapped one. */
	*at(BIG_PHYS + 0x101230) = 0x4444u;
	check_eq(&c, "2m alias read", *at(ALIAS2M + 0x101230), 0x4444u);
	check_eq(&c, "2m alias clean", (uint32_t)pd_alias[0] & (PTE_A | PTE_D), PTE_A);
	*at(ALIAS2M + 0x1ffffc) = 0x4545u;
	check_eq(&c, "2m alias write", *at(BIG_PHYS + 0x1ffffc), 0x4545u);
	check_eq(&c, "2m alias dirty", (uint32_t)pd_alias[0] & PTE_D, PTE_D);

	/* Remap a page, invlpg, read the new frame. */
	pt_hi[0] = phys(frame_b) | PTE_P | PTE_RW;
	invlpg(HI);
	check_eq(&c, "remap", *at(HI), MAGIC_B);

	/* NX is an address-free bit with EFER.NXE = 1: the page still reads. */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	pt_hi[5] = phys(frame_c) | PTE_P | PTE_RW | PTE_NX;
	check_eq(&c, "nx page reads", *at(HI + 0x5000), MAGIC_C);

	/* The other PDPT of the same page, and back. */
	pdptes_clean();
	cr3_write(phys(pdpt_b));
	check_eq(&c, "cr3 to pdpt b", *at(HI), MAGIC_C);
	check_eq(&c, "pdpt b low", *at(BIG_PHYS + 0x101230), 0x4444u);
	pdptes_clean();
	cr3_write(phys(pdpt_a));
	check_eq(&c, "cr3 back to pdpt a", *at(HI), MAGIC_B);

	/* A PDPTE rewritten, then loaded: GiB 1 now shows pd_hi. */
	pdpt_a[1] = phys(pd_hi) | PTE_P;
	pdptes_clean();
	cr3_write(phys(pdpt_a));
	check_eq(&c, "pdpte reloaded", *at(ALIAS2M + 0x100000), MAGIC_B);
	pdpt_a[1] = phys(pd_alias) | PTE_P;
	pdptes_clean();
	cr3_write(phys(pdpt_a));
	check_eq(&c, "pdpte restored", *at(ALIAS2M + 0x101230), 0x4444u);

	/* CR4.PGE on and off (each reloads the PDPTEs). */
	pdptes_clean();
	cr4_write(cr4_read() | CR4_PGE);
	check_eq(&c, "pge on", *at(HI + 0x1ff000), MAGIC_C);
	pdptes_clean();
	cr4_write(cr4_read() & ~CR4_PGE);

	/* Paging off and on again: the identity map, then the same tables. */
	cr0_write(cr0_read() & ~CR0_PG);
	frame_c[1] = 0x6161u;
	pdptes_clean();
	cr0_write(cr0_read() | CR0_PG);
	check_eq(&c, "paging off and on", *at(HI + 0x5004), 0x6161u);

	cr0_write(cr0_read() & ~CR0_PG);
	cr4_write(cr4_read() & ~CR4_PAE);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_NXE);
	return checks_done(&c);
}
