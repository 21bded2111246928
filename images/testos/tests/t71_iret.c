/* SPDX-License-Identifier: MIT */
/*
 * iretq back to the kernel, through trap_iret (entry.S): Linux's layout of
 * its one return from interrupts and exceptions, which shadow mode rewrites
 * into a call to a stand-in (vmm/call_iret.h) that returns without a trap
 * when it may. Elsewhere it is a plain iretq. Either way the results must
 * be an iretq's (SDM Vol. 2A IRET): RIP, RSP and RFLAGS from the frame,
 * every other register kept, IF as the frame says with a held interrupt
 * taken right after it, and its faults at the iretq itself.
 */
#include "../arch.h"
#include "../gdt.h"
#include "../lapic.h"
#include "../test.h"

void trap_iret(void);

/*
 * t73_iret(frame, out): RSP := frame, RAX := a witness, then Linux's
 * return path (jmp to trap_iret). A frame whose RIP is t73_land comes back
 * with out = { RAX, RSP, RFLAGS } as they were there.
 */
uint64_t t73_iret(uint64_t *frame, uint64_t *out);
void t73_land(void);
__asm__(".text\n"
	".globl t73_iret, t73_land\n"
	"t73_iret:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, t73_saved(%rip)\n\t"
	"mov %rsi, t73_out(%rip)\n\t"
	"mov %rdi, %rsp\n\t"
	"movabs $0x1122334455667788, %rax\n\t"
	"jmp trap_iret\n"
	"t73_land:\n\t"
	"pushfq\n\t"
	"pop %rdx\n\t"
	"cld\n\t"
	"mov t73_out(%rip), %rcx\n\t"
	"mov %rax, (%rcx)\n\t"
	"mov %rsp, 8(%rcx)\n\t"
	"mov %rdx, 16(%rcx)\n\t"
	"mov t73_saved(%rip), %rsp\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"ret\n"
	".data\n"
	"t73_saved: .quad 0\n"
	"t73_out: .quad 0\n"
	".text\n");

#define WITNESS 0x1122334455667788ull
#define ARITH	0x8d5ull

/*
 * The frame sits at the top of a stack of its own, with room below for
 * what runs on it before the iretq (an interrupt's frame and handler); its
 * RSP points into another.
 */
static uint64_t frame_stack[1024] __attribute__((aligned(16)));
static uint64_t land_stack[256] __attribute__((aligned(16)));

static uint64_t *make_frame(uint64_t rip, uint64_t cs, uint64_t rflags, uint64_t ss)
{
	uint64_t *f = &frame_stack[1024 - 8];

	f[0] = rip;
	f[1] = cs;
	f[2] = rflags;
	f[3] = (uint64_t)&land_stack[200];
	f[4] = ss;
	return f;
}

static uint16_t read_ss(void)
{
	uint16_t ss;

	__asm__ volatile("mov %%ss, %0" : "=r"(ss));
	return ss;
}

/* An iretq to t73_land with `rflags`, checked as an iretq's result. */
static void iret_check(const char *what, uint64_t rflags)
{
	uint64_t out[3] = { 0 };
	uint64_t *f = make_frame((uint64_t)t73_land, KERNEL_CS, rflags, read_ss());

	t73_iret(f, out);
	if (out[0] != WITNESS || out[1] != (uint64_t)&land_stack[200] ||
	    (out[2] & (ARITH | RFLAGS_DF | RFLAGS_IF)) !=
		    (rflags & (ARITH | RFLAGS_DF | RFLAGS_IF)))
		test_fail("%s: frame flags 0x%lx: RAX 0x%lx RSP 0x%lx RFLAGS 0x%lx after the "
			  "iretq",
			  what, rflags, out[0], out[1], out[2]);
}

TEST(iret_kernel_return)
{
	sti();
	iret_check("an iretq to the kernel", 0x202);
	iret_check("an iretq to the kernel, arithmetic flags and DF set",
		   0x202 | ARITH | RFLAGS_DF);
	iret_check("an iretq to the kernel clearing IF", 0x002 | ARITH);
	sti();
	/* Timer ticks land before, inside and after the stand-in: finished or undone. */
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t fl =
			0x002 | (i & ARITH) | ((i & 8) ? RFLAGS_DF : 0) | ((i & 1) ? RFLAGS_IF : 0);

		iret_check("an iretq to the kernel, in a loop with ticks", fl);
		sti();
	}
}

TEST(iret_held_interrupt)
{
	uint64_t out[3], t0;

	/* No tick held from before (one in service would not merge with the next). */
	sti();
	lapic_timer_stop();
	for (uint64_t start = rdtsc(); rdtsc() - start < (tsc_per_ms ? tsc_per_ms : 1000000) * 2;)
		;
	cli();
	one_tick_held("before an iretq keeping IF 0");
	t0 = timer_ticks;
	/* The frame keeps IF 0: the tick stays held. */
	t73_iret(make_frame((uint64_t)t73_land, KERNEL_CS, 0x002, read_ss()), out);
	CHECK_EQ("ticks after an iretq keeping IF 0", t0, timer_ticks);
	CHECK_EQ("IF after it", 0, out[2] & RFLAGS_IF);
	/* The frame sets IF: the tick is taken right after the iretq (no shadow). */
	t73_iret(make_frame((uint64_t)t73_land, KERNEL_CS, 0x202, read_ss()), out);
	CHECK_EQ("ticks after an iretq setting IF", t0 + 1, timer_ticks);
	/*
	 * Taken before the target's first instruction, on hardware and where
	 * shadow mode delivers it; where the CPU itself does under QEMU TCG's
	 * nested SVM (our rig, iopl3), one instruction later: its pushfq.
	 */
	CHECK(last_timer_frame.rip == (uint64_t)t73_land ||
		      last_timer_frame.rip == (uint64_t)t73_land + 1,
	      "interrupt return RIP: expected the iretq's target 0x%lx, saw 0x%lx",
	      (uint64_t)t73_land, last_timer_frame.rip);
	CHECK_EQ("IF after it", RFLAGS_IF, out[2] & RFLAGS_IF);
	CHECK_EQ("RAX kept", WITNESS, out[0]);
	sti();
}

/* An iretq that must fault at trap_iret with #GP(`err`). */
static void iret_gp(const char *what, uint64_t *f, uint64_t extra_flags, uint64_t err)
{
	uint64_t out[3];
	struct catch c;

	if (CATCH(&c)) {
		if (extra_flags)
			write_rflags(read_rflags() | extra_flags);
		t73_iret(f, out);
	}
	catch_disarm();
	expect_fault(&c, VEC_GP, err, 0, what);
	CHECK(c.rip == (uint64_t)trap_iret, "%s: the #GP at the iretq (0x%lx), not at 0x%lx", what,
	      (uint64_t)trap_iret, c.rip);
	CHECK_EQ("NT clear after the catch", 0, read_rflags() & RFLAGS_NT);
}

TEST(iret_checks)
{
	volatile uint64_t *gdt;
	uint16_t alt = gdt_free_slot(&gdt);
	uint64_t out[3];

	CHECK(alt, "no free GDT slot for the test's CS");
	/* A null SS in the frame, where SS is not null: loaded (CPL0, 64-bit CS). */
	cli();
	t73_iret(make_frame((uint64_t)t73_land, KERNEL_CS, 0x002, 0), out);
	CHECK_EQ("SS after an iretq with a null SS", 0, read_ss());
	__asm__ volatile("mov %0, %%ss" ::"r"((uint64_t)KERNEL_DS) : "memory");
	CHECK_EQ("RAX kept", WITNESS, out[0]);
	/* AC set by the frame: the kernel's AC after it (SMAP's override). */
	t73_iret(make_frame((uint64_t)t73_land, KERNEL_CS, 0x002 | RFLAGS_AC, KERNEL_DS), out);
	CHECK_EQ("AC after an iretq setting it", RFLAGS_AC, out[2] & RFLAGS_AC);
	write_rflags(read_rflags() & ~RFLAGS_AC);
	/*
	 * Not here: a non-canonical RIP, #GP(0) at the iretq on hardware, but at
	 * the target under QEMU's TCG (our nested rig's hw mode). The stand-in's
	 * check is tested in tests/unit/test_call_iret.c, the emulator's in
	 * test_emulate.
	 */
	/* NT set: #GP(0) (no task return in IA-32e mode). */
	iret_gp("an iretq with RFLAGS.NT set",
		make_frame((uint64_t)t73_land, KERNEL_CS, 0x002, KERNEL_DS), RFLAGS_NT, 0);
	/* A CS whose descriptor is DPL3 with RPL 0: #GP(selector). */
	gdt[alt >> 3] = gdt[KERNEL_CS >> 3] | (3ull << 45);
	iret_gp("an iretq to a DPL3 code segment at RPL 0",
		make_frame((uint64_t)t73_land, alt, 0x002, KERNEL_DS), 0, alt);
	gdt[alt >> 3] = 0;
	sti();
}

/*
 * RF in the frame: an instruction breakpoint on the iretq's target does not
 * fire (the #DB handler's way on). Shadow mode's stand-in cannot load RF
 * with its popfq, so with a breakpoint armed such a frame takes the slow
 * path, whose emulated iretq keeps RF. Without RF, the #DB comes.
 */
TEST(iret_rf_past_breakpoint)
{
	struct catch c;
	uint64_t out[3] = { 0 }, dr6;

	__asm__ volatile("mov %0, %%dr0\n\tmov %1, %%dr7" ::"r"((uint64_t)t73_land), "r"(1ull)
			 : "memory");
	if (CATCH(&c))
		t73_iret(make_frame((uint64_t)t73_land, KERNEL_CS, 0x002 | (1ull << 16), read_ss()),
			 out);
	catch_disarm();
	if (!c.caught && CATCH(&c))
		t73_iret(make_frame((uint64_t)t73_land, KERNEL_CS, 0x002, read_ss()), out);
	catch_disarm();
	__asm__ volatile("mov %%dr6, %0\n\tmov %1, %%dr7\n\tmov %2, %%dr6"
			 : "=&r"(dr6)
			 : "r"(0ull), "r"(0xffff0ff0ull)
			 : "memory");
	CHECK_EQ("RAX where the frame with RF landed", WITNESS, out[0]);
	CHECK(c.caught && c.vector == VEC_DB && c.rip == (uint64_t)t73_land,
	      "a frame without RF: no #DB at the target (caught %d, vector %lu, rip 0x%lx)",
	      c.caught, c.vector, c.rip);
	CHECK_EQ("DR6 B0", 1, dr6 & 1);
}
