/* SPDX-License-Identifier: MIT */
/*
 * Linux's sync_core on a CPU without SERIALIZE, its iret_to_self, byte for
 * byte (arch/x86/include/asm/sync_core.h, with %eax as the temporary, as
 * every copy in Debian's kernel has it). Under shadow mode with monitor
 * calls the VMM rewrites it into a call to a stand-in (vmm/call_sync.c);
 * elsewhere it runs as it is. Either way its effects must be the
 * original's: RAX = CS, the flags its addq leaves, every other register
 * and RSP kept; and the segment checks of its iretq, which reloads CS and
 * SS from the GDT and faults at the iretq when a descriptor no longer
 * allows it.
 */
#include "../arch.h"
#include "../gdt.h"
#include "../test.h"

/* iret_to_self; %rdx: the address of its iretq, for the fault tests. */
#define IRET_TO_SELF               \
	"lea 2f(%%rip), %%rdx\n\t" \
	"mov %%ss, %%eax\n\t"      \
	"pushq %%rax\n\t"          \
	"pushq %%rsp\n\t"          \
	"addq $8, (%%rsp)\n\t"     \
	"pushfq\n\t"               \
	"mov %%cs, %%eax\n\t"      \
	"pushq %%rax\n\t"          \
	"pushq $1f\n\t"            \
	"2: iretq\n\t"             \
	"1:"

struct sync_out {
	uint64_t rax, rsp_before, rsp_after, flags, rbx, iretq;
};

/* Run it once with CF set before (the addq must decide CF), RBX as a witness. */
static struct sync_out sync_once(void)
{
	struct sync_out o;

	__asm__ volatile("mov %%rsp, %1\n\t"
			 "stc\n\t" IRET_TO_SELF "\n\t"
			 "mov %%rsp, %2\n\t"
			 "pushfq\n\t"
			 "pop %3"
			 : "=&a"(o.rax), "=&r"(o.rsp_before), "=&r"(o.rsp_after), "=&r"(o.flags),
			   "=b"(o.rbx), "=&d"(o.iretq)
			 : "b"(0x0123456789abcdefull)
			 : "memory", "cc");
	return o;
}

/* The arithmetic flags of `add $8` on `a` (SDM Vol. 1 Appendix A). */
static uint64_t add8_flags(uint64_t a)
{
	uint64_t r = a + 8, f = 0;

	f |= r < a ? RFLAGS_CF : 0;
	f |= __builtin_parity((unsigned)(r & 0xff)) ? 0 : 1ull << 2; /* PF: even parity */
	f |= ((a ^ 8 ^ r) & 0x10) ? 1ull << 4 : 0;		     /* AF */
	f |= r == 0 ? 1ull << 6 : 0;				     /* ZF */
	f |= (r >> 63) ? 1ull << 7 : 0;				     /* SF */
	f |= (((a ^ r) & (8 ^ r)) >> 63) ? 1ull << 11 : 0;	     /* OF */
	return f;
}

#define ARITH_FLAGS 0x8d5ull

static void check_once(const char *what, uint64_t want_if)
{
	struct sync_out o = sync_once();

	CHECK_EQ(what, (uint64_t)KERNEL_CS, o.rax);
	CHECK_EQ("RSP kept", o.rsp_before, o.rsp_after);
	CHECK_EQ("RBX kept", 0x0123456789abcdefull, o.rbx);
	CHECK_EQ("the flags of its addq $8 on RSP - 8", add8_flags(o.rsp_before - 8),
		 o.flags & ARITH_FLAGS);
	CHECK_EQ("IF kept", want_if, o.flags & RFLAGS_IF);
}

TEST(sync_core_iret)
{
	sti();
	check_once("RAX after iret_to_self: the CS selector", RFLAGS_IF);
	/* Timer ticks land inside it too: the VMM finishes or undoes its stand-in. */
	for (unsigned i = 0; i < 20000; i++)
		check_once("RAX after iret_to_self, in a loop with ticks", RFLAGS_IF);
}

#define DESC_DPL3 (3ull << 45)

TEST(sync_core_iret_checks)
{
	volatile uint64_t *gdt;
	uint16_t alt = gdt_free_slot(&gdt);
	struct sync_out o = { 0 };
	struct catch c;

	CHECK(alt, "no free GDT slot for the test's SS");
	cli(); /* no interrupt may iretq through the changed descriptor */
	gdt[alt >> 3] = gdt[KERNEL_DS >> 3];
	__asm__ volatile("mov %0, %%ss" ::"r"((uint64_t)alt) : "memory");
	check_once("RAX after iret_to_self with SS from another slot", 0);

	/* The GDT no longer allows SS at CPL0: the iretq raises #GP(SS) (SDM Vol. 2A IRET). */
	gdt[alt >> 3] |= DESC_DPL3;
	if (CATCH(&c))
		o = sync_once();
	catch_disarm();
	gdt[alt >> 3] = 0; /* the catch came back on KERNEL_DS (frame_longjmp) */
	expect_fault(&c, VEC_GP, alt, 0, "iret_to_self with SS's descriptor now DPL3");
	(void)o;
	CHECK(c.rip == c.frame.rdx, "the #GP at the iretq (0x%lx), not at 0x%lx", c.frame.rdx,
	      c.rip);

	/* NT set: the iretq raises #GP(0) (a task return does not exist in IA-32e mode). */
	if (CATCH(&c)) {
		write_rflags(read_rflags() | (1ull << 14));
		o = sync_once();
	}
	catch_disarm();
	expect_fault(&c, VEC_GP, 0, 0, "iret_to_self with RFLAGS.NT set");
	CHECK(c.rip == c.frame.rdx, "the NT #GP at the iretq (0x%lx), not at 0x%lx", c.frame.rdx,
	      c.rip);
	CHECK_EQ("NT clear again after the catch", 0, read_rflags() & (1ull << 14));
	sti();
}
