/* SPDX-License-Identifier: MIT */
/*
 * x86-64 architectural names and one-instruction helpers: control-register,
 * EFER, RFLAGS and MSR bits, CPUID access, port I/O, TLB invalidation.
 * Bit names follow the Intel SDM (Vol. 3A, 2.5 and 4.5).
 */
#ifndef TESTOS_ARCH_H
#define TESTOS_ARCH_H

#include <stdint.h>

/* CR0 (SDM 3A 2.5) */
#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
/* CR3 */
#define CR3_PCID_MASK 0xfffULL
#define CR3_NOFLUSH (1ULL << 63) /* with CR4.PCIDE: keep the PCID's TLB entries */
/* CR4 */
#define CR4_PAE (1ULL << 5)
#define CR4_PGE (1ULL << 7)
#define CR4_PCIDE (1ULL << 17)
#define CR4_SMEP (1ULL << 20)
#define CR4_SMAP (1ULL << 21)
/* EFER (MSR 0xc0000080) */
#define MSR_EFER 0xc0000080
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)
/* syscall MSRs (SDM 3A 5.8.8) and segment bases */
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_APIC_BASE 0x1b
/* RFLAGS */
#define RFLAGS_CF (1ULL << 0)
#define RFLAGS_FIXED (1ULL << 1)
#define RFLAGS_TF (1ULL << 8)
#define RFLAGS_IF (1ULL << 9)
#define RFLAGS_DF (1ULL << 10)
#define RFLAGS_IOPL (3ULL << 12)
#define RFLAGS_NT (1ULL << 14)
#define RFLAGS_AC (1ULL << 18)

/* Exception vectors (SDM 3A 6.3.1) */
#define VEC_DE 0
#define VEC_DB 1
#define VEC_NMI 2
#define VEC_BP 3
#define VEC_UD 6
#define VEC_DF 8
#define VEC_GP 13
#define VEC_PF 14
#define VEC_MC 18

/* #PF error code bits (SDM 3A 4.7) */
#define PF_P (1ULL << 0)    /* the fault was a protection violation (entry present) */
#define PF_W (1ULL << 1)    /* the access was a write */
#define PF_U (1ULL << 2)    /* the access was a user-mode access */
#define PF_RSVD (1ULL << 3) /* a reserved bit was set in a paging-structure entry */
#define PF_ID (1ULL << 4)   /* the access was an instruction fetch */

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}
static inline void write_cr0(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}
static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}
static inline void write_cr3(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}
static inline uint64_t read_cr4(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}
static inline void write_cr4(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline void invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}
static inline uint64_t read_rflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; pop %0" : "=r"(v));
	return v;
}
static inline void write_rflags(uint64_t v)
{
	__asm__ volatile("push %0; popfq" : : "r"(v) : "memory", "cc");
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
			 uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}
static inline void cli(void)
{
	__asm__ volatile("cli" : : : "memory");
}
static inline void sti(void)
{
	__asm__ volatile("sti" : : : "memory");
}
/* Full TLB flush including global entries: toggle CR4.PGE (SDM 3A 4.10.4.1). */
static inline void flush_tlb_all(void)
{
	uint64_t cr4 = read_cr4();

	if (cr4 & CR4_PGE) {
		write_cr4(cr4 & ~CR4_PGE);
		write_cr4(cr4);
	} else {
		write_cr3(read_cr3());
	}
}

#endif /* TESTOS_ARCH_H */
