/* SPDX-License-Identifier: MIT */
/*
 * events32_test(): exceptions, software interrupts and user mode in 32-bit
 * protected mode with 32-bit paging, as a small 32-bit kernel (xv6's kind)
 * uses them, one line per check ("events32: NAME ok") so that shadow mode
 * and hw mode can be compared line by line (tests/integration/
 * test_shadow_hello.c).
 *
 * Its own GDT (flat kernel and user code and data, a 32-bit TSS whose
 * SS0:ESP0 is kstack), an IDT of 32-bit gates (events32.S's stubs), and
 * tables: 0-4 MiB identity (4 KiB pages; the user program's page and stack
 * page with U/S = 1) and at 8 MiB a page table that starts empty, which the
 * #PF handler fills on demand (its last entry is a read-only page).
 *
 * The checks: int $0x40 at CPL0 (a trap gate, iret to the same level), ud2
 * (#UD, the handler skips it), #PF on a page not present (error code 0,
 * CR2, mapped and retried), #PF on a write to a read-only page (error code
 * 3), then the user program at CPL3: int $0x40 through the TSS's stack, a
 * store that faults (error code 6) and is mapped, `cli` (#GP(0): a process
 * may not disable interrupts), and int $0x41 back to the kernel. Then the
 * timer (PIT at 100 Hz through the 8259, vector 0x20): three ticks while
 * the kernel waits in hlt, and three more while a user program spins at
 * CPL3 (an interrupt from user mode, on the TSS's stack).
 */
#include <stdint.h>

#include "cpu32.h"
#include "io.h"
#include "pic.h"

#define KCODE 0x08
#define KDATA 0x10
#define TSS   0x28

#define DEMAND_VA 0x00800000u /* PDE 2: pt_demand, filled by the #PF handler */
#define RO_VA	  0x00bff000u /* pt_demand's last entry: read-only */

struct trap_frame {
	uint32_t es, ds;
	uint32_t edi, esi, ebp, esp_pushal, ebx, edx, ecx, eax;
	uint32_t vector, err;
	uint32_t eip, cs, eflags;
	uint32_t user_esp, user_ss; /* only from CPL3 */
};

#define PAGE __attribute__((aligned(4096)))
static uint32_t pd[1024] PAGE, pt_low[1024] PAGE, pt_demand[1024] PAGE;
static uint8_t demand_frames[4][4096] PAGE, ro_frame[4096] PAGE;
static uint8_t kstack[4096] PAGE;
uint8_t ustack[4096] PAGE; /* its first word is the tick count, for user_spin */
static uint64_t gdt[6];
static uint32_t idt[256][2];
static uint32_t tss[26];
static unsigned next_frame;
static struct checks c = { .who = "events32" };

/* What the handlers saw, for the checks. */
static uint32_t last_vector, last_err, last_cr2, syscalls, user_eax, user_esi;
static uint32_t gp_err, gp_cs, user_pf_err, syscall_cs, user_ticks;
static volatile uint32_t *const ticks = (volatile uint32_t *)ustack;

void events32_trap(struct trap_frame *f);
extern char trap_stub_6[], trap_stub_13[], trap_stub_14[], trap_stub_32[], trap_stub_64[],
	trap_stub_65[];
extern char user_prog[], user_spin[], user_return[];
void enter_user(uint32_t eip, uint32_t esp);

/* A present #PF in the demand region: map the next frame there (user pages too). */
static void demand_map(uint32_t va)
{
	uint32_t i = (va >> 12) & 1023;

	if (va == RO_VA) { /* the write to the read-only page: make it writable */
		pt_demand[i] |= PTE_RW;
	} else {
		pt_demand[i] = phys(demand_frames[next_frame++ & 3]) | PTE_P | PTE_RW | PTE_US;
	}
	invlpg(va);
}

void events32_trap(struct trap_frame *f)
{
	last_vector = f->vector;
	last_err = f->err;
	switch (f->vector) {
	case 6: f->eip += 2; break; /* ud2 */
	case 13:
		gp_err = f->err;
		gp_cs = f->cs;
		f->eip += 1; /* the user's cli */
		break;
	case 14:
		last_cr2 = cr2_read();
		if (f->cs & 3)
			user_pf_err = f->err;
		if (last_cr2 >= DEMAND_VA && last_cr2 < DEMAND_VA + 0x400000)
			demand_map(last_cr2 & ~0xfffu);
		else
			f->eip = 0; /* not ours: let it fail loudly */
		break;
	case 32:
		++*ticks;
		if (f->cs & 3)
			user_ticks++;
		pic_eoi();
		break;
	case 64:
		syscalls++;
		syscall_cs = f->cs;
		f->eax *= 2;
		break;
	case 65: /* the user program is done: back to enter_user's caller */
		user_eax = f->eax;
		user_esi = f->esi;
		f->eip = phys(user_return);
		f->cs = KCODE;
		break;
	}
}

static void set_gate(unsigned vec, const void *handler, unsigned type, unsigned dpl)
{
	uint32_t h = phys(handler);

	idt[vec][0] = (h & 0xffff) | (uint32_t)KCODE << 16;
	idt[vec][1] = (h & 0xffff0000) | 0x8000 | dpl << 13 | type << 8;
}

static void load_tables(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint32_t base;
	} gdtr = { sizeof(gdt) - 1, phys(gdt) }, idtr = { sizeof(idt) - 1, phys(idt) };
	uint32_t t = phys(tss);

	gdt[1] = 0x00cf9a000000ffffull; /* 0x08 kernel code */
	gdt[2] = 0x00cf92000000ffffull; /* 0x10 kernel data */
	gdt[3] = 0x00cffa000000ffffull; /* 0x1b user code */
	gdt[4] = 0x00cff2000000ffffull; /* 0x23 user data */
	/* 0x28: an available 32-bit TSS, limit 103. */
	gdt[5] = 103 | (uint64_t)(t & 0xffffff) << 16 | 0x89ull << 40 | (uint64_t)(t >> 24) << 56;
	tss[1] = phys(kstack) + sizeof(kstack); /* ESP0 */
	tss[2] = KDATA;				/* SS0 */
	set_gate(6, trap_stub_6, 0xe, 0);
	set_gate(13, trap_stub_13, 0xe, 0);
	set_gate(14, trap_stub_14, 0xe, 0);
	set_gate(32, trap_stub_32, 0xe, 0); /* IRQ 0 */
	set_gate(64, trap_stub_64, 0xf, 3); /* system call: trap gate, callable from CPL3 */
	set_gate(65, trap_stub_65, 0xe, 3);
	__asm__ volatile("lgdt %0\n\t"
			 "ljmp $0x08, $1f\n"
			 "1:\tmov $0x10, %%ax\n\t"
			 "mov %%ax, %%ds\n\t"
			 "mov %%ax, %%es\n\t"
			 "mov %%ax, %%ss\n\t"
			 "lidt %1\n\t"
			 "mov $0x28, %%ax\n\t"
			 "ltr %%ax" ::"m"(gdtr),
			 "m"(idtr)
			 : "eax", "memory");
}

static void paging_on(void)
{
	for (uint32_t i = 1; i < 1024; i++)
		pt_low[i] = i << 12 | PTE_P | PTE_RW;
	pt_low[phys(user_prog) >> 12] |= PTE_US;
	pt_low[phys(ustack) >> 12] |= PTE_US;
	pd[0] = phys(pt_low) | PTE_P | PTE_RW | PTE_US;
	pd[DEMAND_VA >> 22] = phys(pt_demand) | PTE_P | PTE_RW | PTE_US;
	pt_demand[(RO_VA >> 12) & 1023] = phys(ro_frame) | PTE_P;
	cr3_write(phys(pd));
	cr0_write(cr0_read() | CR0_PG | CR0_WP);
}

static void paging_off(void)
{
	cr0_write(cr0_read() & ~CR0_PG);
}

/* Returns the number of failed checks. */
unsigned events32_test(void);
unsigned events32_test(void)
{
	uint32_t eax = 5;
	volatile uint32_t *demand = (volatile uint32_t *)DEMAND_VA;

	load_tables();
	paging_on();
	kprintf("events32: on\n");

	__asm__ volatile("int $0x40" : "+a"(eax)::"memory");
	check_eq(&c, "int at cpl0", eax, 10);
	__asm__ volatile("ud2" ::: "memory");
	check_eq(&c, "ud2", last_vector, 6);

	check_eq(&c, "demand read", demand[1], 0);
	check_eq(&c, "demand read vector", last_vector, 14);
	check_eq(&c, "demand read error code", last_err, 0);
	check_eq(&c, "demand read cr2", last_cr2, DEMAND_VA + 4);
	*(volatile uint32_t *)(RO_VA + 8) = 0x1234;
	check_eq(&c, "read-only write error code", last_err, 3);
	check_eq(&c, "read-only write cr2", last_cr2, RO_VA + 8);
	check_eq(&c, "read-only write done", *(volatile uint32_t *)(RO_VA + 8), 0x1234);

	enter_user(phys(user_prog), phys(ustack) + sizeof(ustack));
	check_eq(&c, "user syscall", user_eax, 42);
	check_eq(&c, "user syscall from cpl3", syscall_cs, 0x1b);
	check_eq(&c, "syscalls", syscalls, 2);
	check_eq(&c, "user demand error code", user_pf_err, 6);
	check_eq(&c, "user demand store", user_esi, 0x5a5a);
	check_eq(&c, "user cli is #gp(0)", gp_err, 0);
	check_eq(&c, "user cli from cpl3", gp_cs, 0x1b);
	check_eq(&c, "user exit", last_vector, 65);

	pic_init(PIC1_MASK_ALL_BUT_IRQ0);
	pit_init(100);
	while (*ticks < 3) /* sti's shadow: no tick slips in before the hlt */
		__asm__ volatile("sti; hlt" ::: "memory");
	__asm__ volatile("cli");
	check_eq(&c, "timer in the kernel", *ticks >= 3, 1);
	__asm__ volatile("sti");
	enter_user(phys(user_spin), phys(ustack) + sizeof(ustack));
	__asm__ volatile("cli");
	outb(PIC1_DATA, 0xff); /* no more ticks */
	check_eq(&c, "timer in user mode", user_ticks >= 1, 1);

	paging_off();
	return checks_done(&c);
}

/*
 * events32_taskgate(): int $0x42 through a task gate, which shadow mode does
 * not emulate: the VM must stop with a message that says so (status 10).
 * Not for hw mode, where the CPU would switch tasks (to a busy TSS here).
 */
void events32_taskgate(void);
void events32_taskgate(void)
{
	load_tables();
	idt[0x42][0] = (uint32_t)TSS << 16;
	idt[0x42][1] = 0x8000 | 3u << 13 | 0x5u << 8; /* present, DPL3, task gate */
	kprintf("taskgate: int $0x42\n");
	__asm__ volatile("int $0x42" ::: "memory");
	kprintf("taskgate: returned\n");
}
