/* SPDX-License-Identifier: MIT */
/*
 * `mov %ss,%ax; cmp $0x18,%ax`, byte for byte Linux's test in __switch_to
 * (AMD's SYSRET erratum). Shadow mode rewrites the pair into a call to a
 * stand-in that reads the virtual SS from its data page (vmm/call_ss.h);
 * elsewhere it runs as it is. Either way %ax must be SS's selector, the
 * rest of RAX kept, and the flags the cmp's: after SS changes, too (a null
 * SS, as after an interrupt from user mode), and with ticks landing inside.
 */
#include "../arch.h"
#include "../gdt.h"
#include "../test.h"

/* t75_ss(rax, &flags): RAX := rax, the site, then RAX returned and the flags in *flags. */
uint64_t t75_ss(uint64_t rax, uint64_t *flags);
__asm__(".text\n"
	".globl t75_ss\n"
	"t75_ss:\n\t"
	"mov %rdi, %rax\n\t"
	".byte 0x66, 0x8c, 0xd0\n\t"	   /* mov %ss,%ax */
	".byte 0x66, 0x83, 0xf8, 0x18\n\t" /* cmp $0x18,%ax */
	"pushfq\n\t"
	"pop (%rsi)\n\t"
	"ret\n");

#define ARITH 0x8d5ul /* CF PF AF ZF SF OF */

static uint64_t cmp18(uint16_t ax)
{
	uint64_t fl;

	__asm__ volatile("cmp $0x18, %1\n\tpushfq\n\tpop %0" : "=r"(fl) : "r"(ax) : "cc");
	return fl & ARITH;
}

static void set_ss(uint16_t sel)
{
	__asm__ volatile("mov %0, %%ss" ::"r"((uint64_t)sel) : "memory");
}

static void ss_check(const char *what, uint16_t ss, uint64_t rax)
{
	uint64_t fl, got = t75_ss(rax, &fl);

	if (got != ((rax & ~0xffffull) | ss) || (fl & ARITH) != cmp18(ss))
		test_fail("%s: SS 0x%x: RAX 0x%lx (before 0x%lx), flags 0x%lx (expected 0x%lx)",
			  what, ss, got, rax, fl & ARITH, cmp18(ss));
}

TEST(ss_read_compare)
{
	ss_check("the kernel's SS", KERNEL_DS, 0x1122334455667788ull);
	/* A null SS (CPL0, 64-bit mode: allowed), as Linux finds after an interrupt from user mode.
	 */
	cli();
	set_ss(0);
	ss_check("a null SS", 0, 0xffffffffffffffffull);
	set_ss(KERNEL_DS);
	sti();
	ss_check("the kernel's SS again", KERNEL_DS, 0);
	for (unsigned i = 0; i < 20000; i++)
		ss_check("in a loop with ticks", KERNEL_DS, (uint64_t)i << 16 | 0x18);
}

/*
 * Linux's reload that follows the compare when SS is not __KERNEL_DS (null
 * after an interrupt or exception from user mode): `mov $0x18,%eax; mov
 * %eax,%ss`, interrupts off. Shadow mode rewrites it into a call to the SS
 * load stand-in (vmm/monitor.h, MON_CALL_SS_LOAD), which, with the virtual
 * IF 0 and the descriptor at 0x18 as the VMM last read it, changes only the
 * virtual SS. testos leaves 0x18 empty, so the test puts a copy of
 * KERNEL_DS's descriptor there meanwhile. SS must read 0x18 after
 * it, with IF 0 and with IF 1 (the stand-in's slow path), ticks coming
 * between; a descriptor made not present in place must raise #SS(0x18) at
 * the mov. A page of its own, first run from this test.
 */
#define VEC_SS 12

void t75_ss_reload(void);
extern const char t75_ss_reload_mov[];
__asm__(".pushsection .text.t75_ss_reload, \"ax\"\n"
	".balign 4096\n"
	".globl t75_ss_reload, t75_ss_reload_mov\n"
	"t75_ss_reload:\n\t"
	"mov $0x18, %eax\n"
	"t75_ss_reload_mov:\n\t"
	"mov %eax, %ss\n\t"
	"ret\n"
	".balign 4096\n"
	".popsection\n");

static uint16_t ss_now(void)
{
	uint64_t fl;

	return (uint16_t)t75_ss(0, &fl);
}

TEST(ss_reload_site)
{
	volatile uint64_t *gdt;
	uint64_t saved;

	(void)gdt_free_slot(&gdt);
	saved = gdt[0x18 >> 3];
	gdt[0x18 >> 3] = gdt[KERNEL_DS >> 3];
	for (unsigned i = 0; i < 2000; i++) {
		cli();
		set_ss(0);
		t75_ss_reload();
		CHECK_EQ("SS after the reload, IF 0", 0x18, ss_now());
		sti();
		CHECK_EQ("SS after the reload, ticks since", 0x18, ss_now());
		cli();
		set_ss(0);
		sti();
		t75_ss_reload();
		CHECK_EQ("SS after the reload, IF 1", 0x18, ss_now());
		cli();
		set_ss(KERNEL_DS);
		sti();
	}
	{
		struct catch c;

		cli();
		set_ss(0);
		gdt[0x18 >> 3] = gdt[KERNEL_DS >> 3] & ~(1ull << 47); /* not present */
		if (CATCH(&c))
			t75_ss_reload();
		catch_disarm();
		set_ss(KERNEL_DS);
		gdt[0x18 >> 3] = saved;
		sti();
		expect_fault(&c, VEC_SS, 0x18, 0, "0x18 made not present in place");
		CHECK_EQ("the #SS's RIP: the mov to SS", (uint64_t)t75_ss_reload_mov, c.rip);
	}
	gdt[0x18 >> 3] = saved;
}
