/* SPDX-License-Identifier: MIT */
/* GDT with kernel/user segments in sysret order, and the 64-bit TSS (SDM 3A 7.7). */
#include "gdt.h"
#include "lib.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

/* Descriptor bits (SDM 3A 3.4.5) */
#define SEG_A	      (1ULL << 40) /* accessed */
#define SEG_RW	      (1ULL << 41) /* code: readable; data: writable */
#define SEG_CODE      (1ULL << 43)
#define SEG_S	      (1ULL << 44) /* code/data (not system) */
#define SEG_DPL3      (3ULL << 45)
#define SEG_P	      (1ULL << 47)
#define SEG_L	      (1ULL << 53) /* 64-bit code */
#define SEG_DB	      (1ULL << 54)
#define SEG_G	      (1ULL << 55)
#define SEG_LIMIT_4G  (0xffffULL | (0xfULL << 48))
#define SEG_TSS_AVAIL (0x9ULL << 40) /* 64-bit TSS, available */

#define KCODE (SEG_LIMIT_4G | SEG_A | SEG_RW | SEG_CODE | SEG_S | SEG_P | SEG_L | SEG_G)
#define KDATA (SEG_LIMIT_4G | SEG_A | SEG_RW | SEG_S | SEG_P | SEG_DB | SEG_G)

static uint64_t gdt[10] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
uint64_t cpu_rsp0;

__attribute__((aligned(16))) char trap_stack[TRAP_STACK_SIZE];
__attribute__((aligned(16))) char df_stack[8192];
#define trap_stack_end (trap_stack + sizeof(trap_stack))

void gdt_set_rsp0(uint64_t rsp0)
{
	tss.rsp[0] = rsp0;
	cpu_rsp0 = rsp0;
}

void gdt_init(void)
{
	uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr = { sizeof(gdt) - 1, (uint64_t)gdt };

	gdt[KERNEL_CS >> 3] = KCODE;
	gdt[KERNEL_DS >> 3] = KDATA;
	gdt[USER_CS32 >> 3] = (KDATA | SEG_CODE | SEG_DPL3); /* 32-bit code, DPL3 */
	gdt[USER_DS >> 3] = KDATA | SEG_DPL3;
	gdt[USER_CS >> 3] = KCODE | SEG_DPL3;
	gdt[TSS_SEL >> 3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | SEG_TSS_AVAIL | SEG_P |
			    ((base >> 24 & 0xff) << 56);
	gdt[(TSS_SEL >> 3) + 1] = base >> 32;

	tss.iomap_base = sizeof(tss); /* no I/O bitmap: CPL3 port I/O needs IOPL */
	tss.ist[IST_DF - 1] = (uint64_t)(df_stack + sizeof(df_stack));
	gdt_set_rsp0((uint64_t)trap_stack_end);

	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "mov %2, %%eax\n\t"
			 "mov %%eax, %%ds\n\t"
			 "mov %%eax, %%es\n\t"
			 "mov %%eax, %%ss\n\t"
			 "xor %%eax, %%eax\n\t"
			 "mov %%eax, %%fs\n\t"
			 "mov %%eax, %%gs\n\t"
			 "mov %3, %%eax\n\t"
			 "ltr %%ax"
			 :
			 : "m"(gdtr), "i"(KERNEL_CS), "i"(KERNEL_DS), "i"(TSS_SEL)
			 : "rax", "memory");
}

uint16_t gdt_free_slot(volatile uint64_t **gdt)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} gdtr;

	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	*gdt = (volatile uint64_t *)gdtr.base;
	for (uint16_t sel = 0x18; sel + 7u <= gdtr.limit; sel += 8)
		if (sel != TSS_SEL && sel != TSS_SEL + 8 && (*gdt)[sel >> 3] == 0)
			return sel;
	return 0;
}
