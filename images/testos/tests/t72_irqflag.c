/* SPDX-License-Identifier: MIT */
/*
 * The interrupt flag at CPL0 (IOPL 0, so CPL <= IOPL): CLI/STI (SDM 2A CLI,
 * 2B STI), PUSHF/POPF (SDM 2B: at CPL0 POPF loads IF), nested
 * save/disable/restore sections, and maskable-interrupt delivery (SDM 3A
 * 6.8.1: IF=0 masks INTR; the LAPIC holds the request in the IRR, SDM 3A
 * 11.8.4). The tests wait for the LAPIC timer to expire while IF=0 (its IRR
 * bit set), so each takes at most ~10 ms of waiting. They count ticks
 * exactly, so the timer is stopped once a request is pending: on a slow
 * host (nested, under TCG) the periodic timer could tick again before the
 * test reads its counter; the runner restarts it after each test.
 */
#include "../arch.h"
#include "../lapic.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

/* LAPIC IRR: 8 32-bit registers at 0x200 + 0x10 * (vector / 32) (SDM 3A table 11-1). */
#define LAPIC_IRR 0x200
#define LAPIC_ISR 0x100

/* The timer vector's bit in the LAPIC's IRR or ISR (`reg`). */
static int timer_bit(unsigned reg)
{
	uint32_t w = *(volatile uint32_t *)(LAPIC_VA + reg + 0x10 * (VEC_TIMER / 32));

	return (w >> (VEC_TIMER % 32)) & 1;
}

static int timer_irr(void)
{
	return timer_bit(LAPIC_IRR);
}

static int timer_isr(void)
{
	return timer_bit(LAPIC_ISR);
}

static uint64_t if_now(void)
{
	return read_rflags() & RFLAGS_IF;
}

/*
 * With IF=0: make exactly one timer request pending in the IRR and no
 * later one due (stop the timer; if nothing is pending yet, arm one shot
 * and spin until it expires, at most 200 ms), checking that no tick is
 * delivered meanwhile.
 */
static void wait_timer_pending(const char *where)
{
	uint64_t t0 = timer_ticks, start = rdtsc(),
		 limit = (tsc_per_ms ? tsc_per_ms : 1000000) * 200;

	lapic_timer_stop();
	if (!timer_irr())
		lapic_timer_one_shot();
	while (!timer_irr()) {
		if (rdtsc() - start > limit)
			test_fail("%s: expected the timer request pending in the IRR within 200 "
				  "ms, saw "
				  "IRR bit clear (ticks %lu -> %lu)",
				  where, t0, timer_ticks);
	}
	CHECK_EQ("IF while waiting for the timer", 0, if_now());
	if (timer_ticks != t0)
		test_fail("%s: expected no timer interrupt with IF=0, saw %lu delivered", where,
			  timer_ticks - t0);
}

/* SDM 2A CLI: IF := 0 (CPL <= IOPL); PUSHF stores RFLAGS with IF = 0. */
TEST(irqflag_pushf_cli)
{
	uint64_t fl;

	sti();
	__asm__ volatile("cli\n\tpushfq\n\tpop %0" : "=r"(fl) : : "memory");
	CHECK_EQ("RFLAGS.IF pushed after cli", 0, fl & RFLAGS_IF);
	CHECK_EQ("RFLAGS reserved bit 1 pushed after cli", RFLAGS_FIXED, fl & RFLAGS_FIXED);
}

/* SDM 2B STI: IF := 1 (CPL <= IOPL); PUSHF stores RFLAGS with IF = 1. */
TEST(irqflag_pushf_sti)
{
	uint64_t fl;

	cli();
	__asm__ volatile("sti\n\tpushfq\n\tpop %0\n\tcli" : "=r"(fl) : : "memory");
	CHECK_EQ("RFLAGS.IF pushed after sti", RFLAGS_IF, fl & RFLAGS_IF);
}

/* SDM 2B POPF: at CPL0 (CPL <= IOPL) POPFQ loads IF from the stack, both ways; CF loads too. */
TEST(irqflag_popf)
{
	uint64_t off = RFLAGS_FIXED | RFLAGS_CF, on = RFLAGS_FIXED | RFLAGS_IF, fl;

	/* IF=1 -> popf of a word with IF=0 (and CF=1). */
	sti();
	__asm__ volatile("push %1\n\tpopfq\n\tpushfq\n\tpop %0"
			 : "=r"(fl)
			 : "r"(off)
			 : "memory", "cc");
	CHECK_EQ("RFLAGS.IF after popf of IF=0 (was 1)", 0, fl & RFLAGS_IF);
	CHECK_EQ("RFLAGS.CF after popf of CF=1", RFLAGS_CF, fl & RFLAGS_CF);
	/* IF=0 -> popf of a word with IF=1 (and CF=0). */
	__asm__ volatile("push %1\n\tpopfq\n\tpushfq\n\tpop %0\n\tcli"
			 : "=r"(fl)
			 : "r"(on)
			 : "memory", "cc");
	CHECK_EQ("RFLAGS.IF after popf of IF=1 (was 0)", RFLAGS_IF, fl & RFLAGS_IF);
	CHECK_EQ("RFLAGS.CF after popf of CF=0", 0, fl & RFLAGS_CF);
	/* A flags word saved with IF=0 restores IF=0 while IF=1, and IF=1 while IF=0. */
	cli();
	uint64_t saved_off = read_rflags();

	sti();
	uint64_t saved_on = read_rflags();

	write_rflags(saved_off);
	CHECK_EQ("IF after restoring a word saved with IF=0", 0, if_now());
	write_rflags(saved_on);
	fl = read_rflags();
	cli();
	CHECK_EQ("IF after restoring a word saved with IF=1", RFLAGS_IF, fl & RFLAGS_IF);
}

/* Linux's local_irq_save / local_irq_restore: pushf; pop; cli / push; popf. */
static inline uint64_t irq_save(void)
{
	uint64_t fl;

	__asm__ volatile("pushfq\n\tpop %0\n\tcli" : "=r"(fl) : : "memory");
	return fl;
}

static inline void irq_restore(uint64_t fl)
{
	__asm__ volatile("push %0\n\tpopfq" : : "r"(fl) : "memory", "cc");
}

/*
 * Three nested save/disable sections: the inner restores put back IF=0, so
 * an expired timer stays pending (IRR) and undelivered until the outermost
 * restore sets IF again; POPF has no interrupt shadow (only STI and MOV/POP
 * SS do, SDM 3A 6.8.3), so it is delivered right after it (checked with
 * a short bounded wait, the SDM giving no exact boundary).
 */
TEST(irqflag_nested)
{
	uint64_t f1, f2, f3, t0;

	sti();
	f1 = irq_save();
	CHECK_EQ("IF inside level 1", 0, if_now());
	f2 = irq_save();
	CHECK_EQ("IF inside level 2", 0, if_now());
	f3 = irq_save();
	CHECK_EQ("IF inside level 3", 0, if_now());
	CHECK_EQ("saved IF, level 1", RFLAGS_IF, f1 & RFLAGS_IF);
	CHECK_EQ("saved IF, level 2", 0, f2 & RFLAGS_IF);
	CHECK_EQ("saved IF, level 3", 0, f3 & RFLAGS_IF);
	t0 = timer_ticks;
	wait_timer_pending("inside level 3");
	irq_restore(f3);
	CHECK_EQ("IF after restoring level 3", 0, if_now());
	CHECK_EQ("ticks after restoring level 3", t0, timer_ticks);
	CHECK_EQ("timer still pending after restoring level 3", 1, timer_irr());
	irq_restore(f2);
	CHECK_EQ("IF after restoring level 2", 0, if_now());
	CHECK_EQ("ticks after restoring level 2", t0, timer_ticks);
	CHECK_EQ("timer still pending after restoring level 2", 1, timer_irr());
	irq_restore(f1);
	uint64_t fl = read_rflags(), t1;

	for (int spins = 1000; (t1 = timer_ticks) == t0 && spins; spins--)
		;
	cli();
	CHECK_EQ("IF after restoring level 1", RFLAGS_IF, fl & RFLAGS_IF);
	CHECK_EQ("ticks after the outermost restore (the pending one delivered)", t0 + 1, t1);
}

/*
 * SDM 2B STI: with IF=0 before it, STI inhibits maskable interrupts on the
 * boundary after it (until the next instruction completes). A timer request
 * pending in the IRR is not taken before the instruction after STI; it is
 * taken after it, with the return RIP at or past that instruction's end.
 */
TEST(irqflag_pending_delivery)
{
	uint64_t t0, in_shadow, after, spins = 1000;
	extern const char irqflag_shadow_end[], irqflag_wait_end[];

	cli();
	wait_timer_pending("before sti");
	t0 = timer_ticks;
	__asm__ volatile("sti\n\t"
			 "mov timer_ticks(%%rip), %[shadow]\n\t" /* in the STI shadow */
			 ".globl irqflag_shadow_end\n"
			 "irqflag_shadow_end:\n"
			 "1:\n\t"
			 "mov timer_ticks(%%rip), %[after]\n\t"
			 "cmp %[t0], %[after]\n\t"
			 "jne 2f\n\t"
			 "dec %[spins]\n\t"
			 "jnz 1b\n"
			 "2:\n\t"
			 ".globl irqflag_wait_end\n"
			 "irqflag_wait_end:\n\t"
			 "cli"
			 : [shadow] "=&r"(in_shadow), [after] "=&r"(after), [spins] "+r"(spins)
			 : [t0] "r"(t0)
			 : "memory", "cc");
	CHECK_EQ("ticks read by the instruction after sti (interrupt shadow)", t0, in_shadow);
	CHECK_EQ("ticks after the shadow (the pending interrupt delivered)", t0 + 1, after);
	CHECK(last_timer_frame.rip >= (uint64_t)irqflag_shadow_end &&
		      last_timer_frame.rip <= (uint64_t)irqflag_wait_end,
	      "interrupt return RIP: expected in [%p, %p] (after the shadowed instruction), saw "
	      "0x%lx",
	      irqflag_shadow_end, irqflag_wait_end, last_timer_frame.rip);
}

/*
 * sti; hlt with a request pending: the STI shadow keeps the interrupt off
 * the boundary before HLT, HLT halts, and the interrupt wakes it at once
 * with the return RIP after the HLT (SDM 2A HLT: resumes with the
 * instruction following HLT after the handler).
 */
TEST(irqflag_sti_hlt)
{
	uint64_t t0, t1;
	extern const char irqflag_after_hlt[];

	cli();
	wait_timer_pending("before sti; hlt");
	t0 = timer_ticks;
	__asm__ volatile("sti\n\t"
			 "hlt\n\t"
			 ".globl irqflag_after_hlt\n"
			 "irqflag_after_hlt:\n\t"
			 "cli\n\t"
			 "mov timer_ticks(%%rip), %0"
			 : "=r"(t1)
			 :
			 : "memory");
	CHECK_EQ("ticks after sti; hlt (woken by the pending interrupt, no later tick)", t0 + 1,
		 t1);
	CHECK_EQ("interrupt return RIP (the instruction after hlt)", (uint64_t)irqflag_after_hlt,
		 last_timer_frame.rip);
}

/*
 * sti with a request pending and an instruction breakpoint on the
 * instruction after it: the STI shadow holds the interrupt, the breakpoint
 * is a #DB before that instruction (its RIP, RF clear in the frame, DR6.B0),
 * and its interrupt gate leaves IF clear, so the tick is still pending
 * after it. In shadow mode under --sensitive=patch the sti traps, and the
 * VMM runs the instruction after it itself to end the shadow: that must
 * check the breakpoint as the CPU would (until session 28 it ran it as an
 * instruction that trapped, RF set, and the breakpoint never fired).
 */
TEST(irqflag_sti_dr_exec)
{
	extern const char irqflag_sti_bp[];
	struct catch c;
	uint64_t dr6, t0;

	cli();
	wait_timer_pending("before sti with a breakpoint after it");
	t0 = timer_ticks;
	__asm__ volatile("mov %0, %%dr6\n\tmov %1, %%dr0\n\tmov %2, %%dr7" ::"r"(0xffff0ff0ull),
			 "r"((uint64_t)irqflag_sti_bp), "r"(1ull) /* L0, R/W0 00: execution */
			 : "memory");
	if (CATCH(&c))
		__asm__ volatile("sti\n\t"
				 ".globl irqflag_sti_bp\n"
				 "irqflag_sti_bp:\n\t"
				 "nop\n\t"
				 "cli" ::
					 : "memory");
	catch_disarm();
	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	__asm__ volatile("mov %0, %%dr7\n\tmov %1, %%dr6" ::"r"(0ull), "r"(0xffff0ff0ull)
			 : "memory");
	CHECK(c.caught, "no #DB at the breakpoint on the instruction after sti");
	CHECK_EQ("the #DB's vector", VEC_DB, c.vector);
	CHECK_EQ("the #DB's RIP: the instruction after sti", (uint64_t)irqflag_sti_bp, c.rip);
	CHECK_EQ("RF in the #DB's frame", 0, c.frame.rflags & (1ull << 16));
	CHECK_EQ("DR6 B0", 1, dr6 & 1);
	CHECK_EQ("IF after the #DB", 0, if_now());
	CHECK_EQ("ticks before the next sti (the request held)", t0, timer_ticks);
	sti();
	__asm__ volatile("nop" ::: "memory");
	cli();
	CHECK_EQ("ticks after sti (the request delivered)", t0 + 1, timer_ticks);
}

/*
 * Linux's paravirt irq-flag sites as its alternatives leave them on bare
 * metal: cli, sti, or pushf; pop %rax, padded with a nop to the 6 or 7
 * bytes of the indirect call they replaced. Shadow mode's patch strategy
 * rewrites them into calls to monitor code (vmm/monitor.h, the call window):
 * they must behave exactly as the instructions, in every mode. The bytes
 * are spelt out so that the assembler cannot choose other nops.
 */
#define PV_CLI6	    ".byte 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
#define PV_CLI7	    ".byte 0xfa, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
#define PV_STI6	    ".byte 0xfb, 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
#define PV_STI7	    ".byte 0xfb, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
#define PV_SAVE_FL6 ".byte 0x9c, 0x58, 0x0f, 0x1f, 0x40, 0x00\n\t" /* %rax = RFLAGS */
#define PV_SAVE_FL7 ".byte 0x9c, 0x58, 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"

/* One site, then save_fl: the flags it left (CF set before, to see it kept). */
#define PV_THEN_SAVE(site, save)                                                      \
	({                                                                            \
		uint64_t fl_;                                                         \
		__asm__ volatile("stc\n\t" site save : "=a"(fl_) : : "memory", "cc"); \
		fl_;                                                                  \
	})

TEST(irqflag_pv_sites)
{
	uint64_t fl, rbx = 0x1234567890abcdefull, rbx_after;
	uint8_t cf;

	sti();
	fl = PV_THEN_SAVE(PV_CLI6, PV_SAVE_FL6);
	CHECK_EQ("IF from save_fl (6) after cli (6)", 0, fl & RFLAGS_IF);
	CHECK_EQ("CF kept through cli and save_fl", RFLAGS_CF, fl & RFLAGS_CF);
	CHECK_EQ("IOPL from save_fl", 0, fl & RFLAGS_IOPL);
	CHECK_EQ("reserved bit 1 from save_fl", RFLAGS_FIXED, fl & RFLAGS_FIXED);
	fl = PV_THEN_SAVE(PV_STI7, PV_SAVE_FL7);
	CHECK_EQ("IF from save_fl (7) after sti (7)", RFLAGS_IF, fl & RFLAGS_IF);
	CHECK_EQ("CF kept through sti and save_fl", RFLAGS_CF, fl & RFLAGS_CF);
	fl = PV_THEN_SAVE(PV_CLI7, PV_SAVE_FL7);
	CHECK_EQ("IF from save_fl (7) after cli (7)", 0, fl & RFLAGS_IF);
	fl = PV_THEN_SAVE(PV_STI6, PV_SAVE_FL6);
	CHECK_EQ("IF from save_fl (6) after sti (6)", RFLAGS_IF, fl & RFLAGS_IF);
	CHECK_EQ("IF as pushf sees it after the sites", RFLAGS_IF, if_now());
	/* The sites keep CF clear too, and every register (here RBX, and RAX for cli/sti). */
	__asm__ volatile("clc\n\t" PV_CLI6 "setc %0"
			 : "=r"(cf), "=b"(rbx_after)
			 : "b"(rbx)
			 : "memory", "cc");
	CHECK_EQ("CF kept clear through cli", 0, cf);
	CHECK_EQ("RBX kept through cli", rbx, rbx_after);
	CHECK_EQ("IF after cli (6)", 0, if_now());
	{
		uint64_t rax = 0x5555aaaa5555aaaaull, rax_after;

		__asm__ volatile(PV_STI7 PV_CLI7 : "=a"(rax_after) : "a"(rax) : "memory");
		CHECK_EQ("RAX kept through sti and cli", rax, rax_after);
	}
}

/*
 * With IF=0: exactly one timer expiry and none due after it (the periodic
 * timer stopped, one one-shot armed), then a wait long enough for its
 * interrupt to have reached the CPU: held in the LAPIC's IRR, or by the
 * VMM in software where IF=0 is virtual and the TPR cannot mask (QEMU TCG,
 * or a paravirt cli that ran without a trap); the VMM took that one from
 * the LAPIC, so it is in service (ISR) until the guest's EOI. Unlike
 * wait_timer_pending, it accepts either, so it holds in every mode. After
 * the first 50 ms it waits up to 2 s more for one of the two: on a loaded
 * nested rig the host's timer has fired that late (a check after this one
 * then saw no tick where one was due).
 */
void one_tick_held(const char *where)
{
	uint64_t t0 = timer_ticks, start = rdtsc(), ms = tsc_per_ms ? tsc_per_ms : 1000000;

	lapic_timer_stop();
	lapic_timer_one_shot(); /* one period: 10 ms */
	while (rdtsc() - start < 50 * ms)
		;
	while (!timer_irr() && !timer_isr())
		if (rdtsc() - start > 2050 * ms)
			test_fail("%s: expected the timer interrupt held (IRR or ISR) within 2 s, "
				  "saw neither (ticks %lu -> %lu)",
				  where, t0, timer_ticks);
	if (timer_ticks != t0)
		test_fail("%s: expected no timer interrupt with IF=0, saw %lu delivered", where,
			  timer_ticks - t0);
}

/*
 * A timer interrupt held while IF=0 is taken right after an sti site: its
 * nop ends the sti's shadow, so the interrupt comes before the instruction
 * after the site, with the return RIP at the site's end. IF=0 comes from a
 * cli site, which under shadow mode's monitor calls does not trap, so the
 * TPR cannot mask and the interrupt is held by the VMM in software.
 */
TEST(irqflag_pv_pending)
{
	uint64_t t0, after;
	extern const char irqflag_pv_site_end[];

	/*
	 * No tick may be held from before: one taken early and held while
	 * IF=0 would not merge with the one-shot's (one held in software is
	 * in service, so the next waits in the IRR: one tick more).
	 */
	sti();
	lapic_timer_stop();
	for (uint64_t start = rdtsc(); rdtsc() - start < (tsc_per_ms ? tsc_per_ms : 1000000) * 2;)
		;
	__asm__ volatile(PV_CLI7 ::: "memory");
	one_tick_held("after a cli site");
	CHECK_EQ("IF after a cli site", 0, if_now());
	t0 = timer_ticks;
	__asm__ volatile(PV_STI6 ".globl irqflag_pv_site_end\n"
				 "irqflag_pv_site_end:\n\t"
				 "mov timer_ticks(%%rip), %0\n\t" PV_CLI6
			 : "=r"(after)
			 :
			 : "memory");
	CHECK_EQ("ticks right after the sti site (the held interrupt delivered)", t0 + 1, after);
	CHECK_EQ("interrupt return RIP (the end of the sti site)", (uint64_t)irqflag_pv_site_end,
		 last_timer_frame.rip);
}

/*
 * Linux's paravirt irq-flag sites before its alternatives run: `call
 * *slot(%rip)` through a pointer to a native body (cli, sti or pushf; pop
 * %rax, then `jmp` to a return thunk, or `ret` and int3s). Shadow mode's
 * monitor calls rewrite such a site into a call to a thunk that re-checks
 * the pointer, the body and the return thunk at every call (vmm/monitor.h,
 * "Indirect sites"): whatever the guest changes, the call must do what the
 * original does.
 */
__asm__(".pushsection .text\n"
	"pv_body_cli: .byte 0xfa, 0xe9\n\t.long pv_ret_thunk - (. + 4)\n"
	"pv_body_sti: .byte 0xfb, 0xe9\n\t.long pv_ret_thunk - (. + 4)\n"
	"pv_body_save_fl: .byte 0x9c, 0x58, 0xe9\n\t.long pv_ret_thunk - (. + 4)\n"
	"pv_body_cli_ret: .byte 0xfa, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc\n"
	".globl pv_ret_thunk\n"
	"pv_ret_thunk: ret\n\t"
	".fill 15, 1, 0xcc\n"
	"pv_other: incq pv_other_ran(%rip)\n\t"
	"ret\n"
	".popsection\n"
	".pushsection .data\n"
	".balign 8\n"
	".globl pv_slots, pv_other_ran\n"
	"pv_slots: .quad pv_body_cli, pv_body_sti, pv_body_save_fl, pv_body_cli_ret, pv_other\n"
	"pv_other_ran: .quad 0\n"
	".popsection\n");
extern uint64_t pv_slots[5];
extern volatile uint64_t pv_other_ran;
extern uint8_t pv_ret_thunk[];

#define PV_ICALL_CLI	 "call *pv_slots(%%rip)\n\t"
#define PV_ICALL_STI	 "call *pv_slots+8(%%rip)\n\t"
#define PV_ICALL_SAVE_FL "call *pv_slots+16(%%rip)\n\t" /* %rax = RFLAGS */
#define PV_ICALL_CLI_RET "call *pv_slots+24(%%rip)\n\t"
/* The same bodies called directly, as after Linux's apply_paravirt (e8 rel32). */
#define PV_DCALL_CLI	 "call pv_body_cli\n\t"
#define PV_DCALL_STI	 "call pv_body_sti\n\t"
#define PV_DCALL_SAVE_FL "call pv_body_save_fl\n\t"
#define PV_DCALL_CLI_RET "call pv_body_cli_ret\n\t"

/* Write `n` bytes of kernel text through the direct map, as Linux's text_poke does. */
static void poke_text(void *at, const void *bytes, unsigned n)
{
	uint8_t *alias = phys_to_virt(kimg_to_phys(at));

	for (unsigned i = 0; i < n; i++)
		alias[i] = ((const uint8_t *)bytes)[i];
	__asm__ volatile("" ::: "memory");
}

/*
 * A cli, an sti, a save_fl and a cli whose body ends in ret, through one
 * kind of call (`what`): IF as the bodies set it, CF and RBX/RCX kept.
 */
#define CHECK_PV_CALLS(what, CLI, STI, SAVE_FL, CLI_RET)                                        \
	do {                                                                                    \
		uint64_t fl_, rbx_ = 0x0123456789abcdefull, rbx_after_,                         \
			      rcx_ = 0xfedcba9876543210ull, rcx_after_;                         \
		uint8_t cf_;                                                                    \
                                                                                                \
		sti();                                                                          \
		fl_ = PV_THEN_SAVE(CLI, SAVE_FL);                                               \
		CHECK_EQ("IF from save_fl after cli, " what, 0, (fl_ & RFLAGS_IF));             \
		CHECK_EQ("CF kept through them, " what, RFLAGS_CF, (fl_ & RFLAGS_CF));          \
		CHECK_EQ("IOPL from save_fl, " what, 0, (fl_ & RFLAGS_IOPL));                   \
		fl_ = PV_THEN_SAVE(STI, SAVE_FL);                                               \
		CHECK_EQ("IF from save_fl after sti, " what, RFLAGS_IF, (fl_ & RFLAGS_IF));     \
		fl_ = PV_THEN_SAVE(CLI_RET, PV_SAVE_FL6);                                       \
		CHECK_EQ("IF after a cli whose body ends in ret, " what, 0, (fl_ & RFLAGS_IF)); \
		__asm__ volatile("clc\n\t" STI "setc %0"                                        \
				 : "=r"(cf_), "=b"(rbx_after_), "=c"(rcx_after_)                \
				 : "b"(rbx_), "c"(rcx_)                                         \
				 : "memory", "cc");                                             \
		CHECK_EQ("CF kept clear through sti, " what, 0, cf_);                           \
		CHECK_EQ("RBX kept, " what, rbx_, rbx_after_);                                  \
		CHECK_EQ("RCX kept, " what, rcx_, rcx_after_);                                  \
		CHECK_EQ("IF after sti, " what, RFLAGS_IF, if_now());                           \
	} while (0)

TEST(irqflag_pv_indirect)
{
	uint64_t fl, slot0 = pv_slots[0];
	uint8_t byte;

	CHECK_PV_CALLS("indirect", PV_ICALL_CLI, PV_ICALL_STI, PV_ICALL_SAVE_FL, PV_ICALL_CLI_RET);
	CHECK_PV_CALLS("direct", PV_DCALL_CLI, PV_DCALL_STI, PV_DCALL_SAVE_FL, PV_DCALL_CLI_RET);

	/* The pointer changed: the call goes where it says now. */
	pv_slots[0] = pv_slots[4];
	pv_other_ran = 0;
	__asm__ volatile(PV_ICALL_CLI ::: "memory", "cc");
	CHECK_EQ("the function the changed pointer names ran", 1, pv_other_ran);
	CHECK_EQ("IF after it (no cli ran)", RFLAGS_IF, if_now());
	pv_slots[0] = slot0;

	/* The body changed: cli became sti. */
	cli();
	byte = 0xfb;
	poke_text((void *)slot0, &byte, 1);
	__asm__ volatile(PV_ICALL_CLI ::: "memory", "cc");
	CHECK_EQ("IF after the call, its body now sti", RFLAGS_IF, if_now());
	cli();
	__asm__ volatile(PV_DCALL_CLI ::: "memory", "cc");
	CHECK_EQ("IF after the direct call, its body now sti", RFLAGS_IF, if_now());
	byte = 0xfa;
	poke_text((void *)slot0, &byte, 1);
	__asm__ volatile(PV_ICALL_CLI ::: "memory", "cc");
	CHECK_EQ("IF after the call, its body cli again", 0, if_now());

	/* The return thunk changed: it now counts before returning. */
	{
		uint8_t code[8] = { 0x48, 0xff, 0x05 }; /* incq disp32(%rip); ret */
		int32_t disp = (int32_t)((uint64_t)&pv_other_ran - ((uint64_t)pv_ret_thunk + 7));
		static const uint8_t orig[2] = { 0xc3, 0xcc };

		__builtin_memcpy(code + 3, &disp, 4);
		code[7] = 0xc3;
		sti();
		pv_other_ran = 0;
		poke_text(pv_ret_thunk, code, sizeof(code));
		__asm__ volatile(PV_ICALL_CLI ::: "memory", "cc");
		CHECK_EQ("the changed return thunk ran", 1, pv_other_ran);
		CHECK_EQ("IF after the call (its body cli)", 0, if_now());
		sti();
		__asm__ volatile(PV_DCALL_CLI ::: "memory", "cc");
		CHECK_EQ("the changed return thunk ran (direct call)", 2, pv_other_ran);
		CHECK_EQ("IF after the direct call (its body cli)", 0, if_now());
		poke_text(pv_ret_thunk, orig, sizeof(orig));
		poke_text(pv_ret_thunk + 2,
			  (const uint8_t[6]){ 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc }, 6);
	}
	sti();
	fl = PV_THEN_SAVE(PV_ICALL_CLI, PV_ICALL_SAVE_FL);
	CHECK_EQ("IF from an indirect save_fl after an indirect cli, all restored", 0,
		 fl & RFLAGS_IF);
	cli();
}

/*
 * Timer interrupts while the paravirt sites run with IF=1: each one is
 * taken at an instruction boundary of the guest's code, never inside the
 * monitor code a site may call (shadow mode finishes a stand-in, or puts a
 * thunk back at its site, before delivering: vmm/shadow_mode.c,
 * finish_stand_in), with IF=1 in its frame,
 * and the sites' results stay exact around them.
 */
TEST(irqflag_pv_ticks)
{
	const uint64_t window = 0xffffffffffe00000ULL, want = 20;
	uint64_t seen = 0, in_window = 0, if_clear = 0, bad_fl = 0, last_bad = 0;
	uint64_t start = rdtsc(), limit = (tsc_per_ms ? tsc_per_ms : 1000000) * 3000;

	lapic_timer_periodic();
	sti();
	while (seen < want && rdtsc() - start < limit) {
		uint64_t t = timer_ticks, fl1, fl2;

		__asm__ volatile(PV_SAVE_FL6
				 "mov %%rax, %[fl1]\n\t" PV_ICALL_SAVE_FL
				 "and %%rax, %[fl1]\n\t" PV_DCALL_SAVE_FL
				 "and %%rax, %[fl1]\n\t" PV_CLI6 PV_STI7 PV_ICALL_CLI PV_ICALL_STI
					 PV_DCALL_CLI PV_DCALL_STI PV_SAVE_FL7 PV_CLI7 PV_STI6
				 : [fl1] "=&r"(fl1), "=a"(fl2)
				 :
				 : "memory", "cc");
		if ((fl1 & fl2 & RFLAGS_IF) == 0)
			bad_fl++;
		if (timer_ticks == t)
			continue;
		seen++;
		if (last_timer_frame.rip >= window) {
			in_window++;
			last_bad = last_timer_frame.rip;
		}
		if (!(last_timer_frame.rflags & RFLAGS_IF))
			if_clear++;
	}
	cli();
	CHECK(seen >= want, "expected %lu timer interrupts within 3 s, saw %lu", want, seen);
	CHECK(in_window == 0,
	      "%lu of %lu interrupts returned into the monitor's call window (last 0x%lx)",
	      in_window, seen, last_bad);
	CHECK_EQ("interrupt frames with IF=0", 0, if_clear);
	CHECK_EQ("save_fl sites that saw IF=0 with IF=1", 0, bad_fl);
}

/*
 * The top 2 MiB of the address space, where shadow mode's monitor calls
 * lend themselves the call window while the guest's tables leave it empty,
 * is the guest's as soon as it maps it: a page there holds what is written
 * to it, and the paravirt sites behave as before (shadow mode gives the
 * window back and lets them trap again: --stats, "withdrawn").
 */
TEST(irqflag_pv_top_2m)
{
	const uint64_t va = 0xffffffffffe00000ULL, word = 0x1122334455667788ULL;
	uint64_t pa = pmm_alloc_zeroed(), fl;
	volatile uint64_t *p = (volatile uint64_t *)va;

	pt_map(kernel_pml4, va, pa, PTE_RW | PTE_NX, LVL_PT);
	invlpg(va);
	*p = word;
	CHECK_EQ("a word written at the top 2 MiB, read back", word, *p);
	CHECK_EQ("the same word through the direct map", word,
		 *(volatile uint64_t *)phys_to_virt(pa));
	sti();
	fl = PV_THEN_SAVE(PV_CLI6, PV_SAVE_FL6);
	CHECK_EQ("IF from save_fl after cli, with the top 2 MiB mapped", 0, fl & RFLAGS_IF);
	fl = PV_THEN_SAVE(PV_STI7, PV_SAVE_FL7);
	CHECK_EQ("IF from save_fl after sti, with the top 2 MiB mapped", RFLAGS_IF, fl & RFLAGS_IF);
	cli();
	*pt_entry(kernel_pml4, va, LVL_PT, 0) = 0;
	invlpg(va);
	pmm_free(pa);
}
