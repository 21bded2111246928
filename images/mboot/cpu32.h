/* SPDX-License-Identifier: MIT */
/*
 * For the 32-bit Multiboot guest's self-checks (paging32.c, events32.c): the
 * control registers and the TLB, and the report line of one check
 * ("WHO: NAME ok", or what it read instead), which the integration tests
 * compare between hw mode and shadow mode.
 */
#ifndef IMAGES_MBOOT_CPU32_H
#define IMAGES_MBOOT_CPU32_H

#include <stdint.h>

#include "print.h"

#define PTE_P	0x001u
#define PTE_RW	0x002u
#define PTE_US	0x004u
#define PTE_A	0x020u
#define PTE_D	0x040u
#define PTE_PS	0x080u
#define CR0_WP	0x00010000u
#define CR0_PG	0x80000000u
#define CR4_PSE 0x00000010u

static inline uint32_t phys(const void *p)
{
	return (uint32_t)(uintptr_t)p; /* identity-mapped */
}

static inline uint32_t cr0_read(void)
{
	uint32_t v;

	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline void cr0_write(uint32_t v)
{
	__asm__ volatile("mov %0, %%cr0" ::"r"(v) : "memory");
}

static inline uint32_t cr2_read(void)
{
	uint32_t v;

	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline void cr3_write(uint32_t v)
{
	__asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory");
}

static inline uint32_t cr4_read(void)
{
	uint32_t v;

	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline void cr4_write(uint32_t v)
{
	__asm__ volatile("mov %0, %%cr4" ::"r"(v) : "memory");
}

static inline void invlpg(uint32_t va)
{
	__asm__ volatile("invlpg (%0)" ::"r"(va) : "memory");
}

/* A group of checks and its tally. */
struct checks {
	const char *who;
	unsigned run, failed;
};

static inline void check_eq(struct checks *c, const char *name, uint32_t got, uint32_t want)
{
	c->run++;
	if (got == want) {
		kprintf("%s: %s ok\n", c->who, name);
		return;
	}
	c->failed++;
	kprintf("%s: %s FAILED: 0x%x, expected 0x%x\n", c->who, name, (unsigned)got,
		(unsigned)want);
}

/* The last line of a group; returns how many failed. */
static inline unsigned checks_done(const struct checks *c)
{
	kprintf("%s: %u of %u checks passed\n", c->who, c->run - c->failed, c->run);
	return c->failed;
}

#endif
