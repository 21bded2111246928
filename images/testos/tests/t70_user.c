/* SPDX-License-Identifier: MIT */
/*
 * User mode without a process model: iretq to CPL3 and syscall/sysret back,
 * user accesses to supervisor pages, privileged instructions at CPL3,
 * swapgs, iretq at the same privilege level, and the timer interrupting
 * CPL3 and CPL0 code.
 */
#include "../arch.h"
#include "../gdt.h"
#include "../lapic.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"
#include "../user.h"

USER_BLOB(ub_syscall);
USER_BLOB(ub_read);
USER_BLOB(ub_fs_read);
USER_BLOB(ub_write);
USER_BLOB(ub_cli);
USER_BLOB(ub_in);
USER_BLOB(ub_out);
USER_BLOB(ub_hlt);
USER_BLOB(ub_movcr3);
USER_BLOB(ub_spin);
extern const char ub_syscall_ret[];
extern char kernel_stack[], kernel_stack_top[];

static void expect_exit(const struct catch *c, uint64_t value, const char *what)
{
	if (!c->caught || c->vector != VEC_SYSCALL)
		test_fail("%s: expected exit syscall, saw vector %lu error 0x%lx rip 0x%lx cs "
			  "0x%lx cr2 0x%lx",
			  what, c->caught ? c->vector : 0, c->error, c->rip, c->cs, c->cr2);
	CHECK_EQ(what, value, c->frame.rdi);
}

/*
 * SDM 2B SYSCALL/SYSRET, 3A 5.8.8: syscall enters at LSTAR at CPL0 (CS from
 * STAR[47:32]) with RCX = return RIP, R11 = RFLAGS, RFLAGS &= ~SFMASK;
 * sysretq returns to RCX at CPL3 (CS = STAR[63:48] + 16) with RFLAGS = R11.
 */
TEST(user_syscall)
{
	struct catch c;
	uint64_t ret = USER_CODE_VA + (ub_syscall_ret - ub_syscall_start);

	user_map(kernel_pml4, ub_syscall_start, ub_syscall_end);
	last_probe.hit = 0;
	user_run(&c, 0, 0);
	if (!last_probe.hit)
		test_fail("syscall: expected entry at LSTAR at CPL0, saw vector %lu error 0x%lx "
			  "rip 0x%lx "
			  "cs 0x%lx cr2 0x%lx",
			  c.vector, c.error, c.rip, c.cs, c.cr2);
	CHECK_EQ("CS in the syscall handler", KERNEL_CS, last_probe.frame.error);
	CHECK_EQ("RCX at syscall entry (return RIP)", ret, last_probe.frame.rcx);
	CHECK_EQ("R11 at syscall entry (user RFLAGS)", RFLAGS_IF | RFLAGS_FIXED,
		 last_probe.frame.r11);
	CHECK_EQ("RDI at syscall entry", 0x1111, last_probe.frame.rdi);
	CHECK_EQ("kernel RFLAGS & SFMASK", 0, last_probe.kernel_rflags & SFMASK_VALUE);
	expect_exit(&c, SYS_PROBE_RET, "RAX after sysretq");
	CHECK_EQ("RCX after sysretq", ret, c.frame.rsi);
	CHECK_EQ("RFLAGS after sysretq", RFLAGS_IF | RFLAGS_FIXED, c.frame.rdx);
	CHECK_EQ("CS after sysretq", USER_CS, c.frame.r8);
}

/* SDM 3A 4.6.1: a CPL3 read of a user page succeeds (the blob exits by syscall with the value). */
TEST(user_read_ok)
{
	struct catch c;

	user_map(kernel_pml4, ub_read_start, ub_read_end);
	map4k(TWIN, frame_new(0x80), PTE_RW | PTE_US);
	user_run(&c, TWIN + 8, 0);
	expect_exit(&c, pat(0x80, 1), "user read of a user page");
}

/* SDM 3A 4.6.1 + 4.7: a CPL3 read of a supervisor page: #PF U|P. */
TEST(user_pf_read)
{
	struct catch c;
	static uint64_t kernel_word = 0x600d;

	user_map(kernel_pml4, ub_read_start, ub_read_end);
	map4k(TWIN + PAGE_SIZE, frame_new(0x81), PTE_RW); /* supervisor leaf */
	user_run(&c, TWIN + PAGE_SIZE + 8, 0);
	expect_fault(&c, VEC_PF, PF_U | PF_P, TWIN + PAGE_SIZE + 8,
		     "user read of a supervisor page");
	CHECK_EQ("CS of the faulting code", USER_CS, c.cs);
	user_run(&c, (uint64_t)&kernel_word, 0);
	expect_fault(&c, VEC_PF, PF_U | PF_P, (uint64_t)&kernel_word, "user read of kernel data");
}

/* SDM 3A 4.6.1 + 4.7: a CPL3 write to a supervisor page: #PF U|W|P; to a read-only user page too.
 */
TEST(user_pf_write)
{
	struct catch c;

	user_map(kernel_pml4, ub_write_start, ub_write_end);
	map4k(TWIN, frame_new(0x82), PTE_RW);		  /* supervisor, writable */
	map4k(TWIN + PAGE_SIZE, frame_new(0x83), PTE_US); /* user, read-only */
	user_run(&c, TWIN + 16, 0);
	expect_fault(&c, VEC_PF, PF_U | PF_W | PF_P, TWIN + 16, "user write to a supervisor page");
	user_run(&c, TWIN + PAGE_SIZE + 16, 0);
	expect_fault(&c, VEC_PF, PF_U | PF_W | PF_P, TWIN + PAGE_SIZE + 16,
		     "user write to a read-only user page");
}

static void expect_user_gp(const char *s, const char *e, const char *what)
{
	struct catch c;

	user_map(kernel_pml4, s, e);
	user_run(&c, 0, 0);
	expect_fault(&c, VEC_GP, 0, 0, what);
	CHECK_EQ("RIP of the #GP", USER_CODE_VA, c.rip);
	CHECK_EQ("CS of the #GP", USER_CS, c.cs);
}

/* SDM 2A CLI: CPL > IOPL (IOPL 0, CR4.PVI 0) -> #GP(0). */
TEST(user_gp_cli)
{
	expect_user_gp(ub_cli_start, ub_cli_end, "cli at CPL3");
}

/* SDM 1 19.5.1-2: IN with CPL > IOPL and no I/O permission bitmap -> #GP(0). */
TEST(user_gp_in)
{
	expect_user_gp(ub_in_start, ub_in_end, "in at CPL3");
}

/* SDM 1 19.5.1-2: OUT with CPL > IOPL and no I/O permission bitmap -> #GP(0). */
TEST(user_gp_out)
{
	expect_user_gp(ub_out_start, ub_out_end, "out at CPL3");
}

/* SDM 3A 5.9: HLT is privileged -> #GP(0) at CPL3. */
TEST(user_gp_hlt)
{
	expect_user_gp(ub_hlt_start, ub_hlt_end, "hlt at CPL3");
}

/* SDM 3A 5.9: MOV from a control register is privileged -> #GP(0) at CPL3. */
TEST(user_gp_movcr3)
{
	expect_user_gp(ub_movcr3_start, ub_movcr3_end, "mov %cr3 at CPL3");
}

/* SDM 2B SWAPGS: exchanges IA32_GS_BASE and IA32_KERNEL_GS_BASE. */
TEST(swapgs)
{
	static uint64_t a_word = 0xaaaa, b_word = 0xbbbb;
	uint64_t a = (uint64_t)&a_word, b = (uint64_t)&b_word, seen;

	wrmsr(MSR_GS_BASE, a);
	wrmsr(MSR_KERNEL_GS_BASE, b);
	__asm__ volatile("mov %%gs:0, %0" : "=r"(seen));
	CHECK_EQ("%gs:0 before swapgs", 0xaaaa, seen);
	__asm__ volatile("swapgs" ::: "memory");
	CHECK_EQ("GS_BASE after swapgs", b, rdmsr(MSR_GS_BASE));
	CHECK_EQ("KERNEL_GS_BASE after swapgs", a, rdmsr(MSR_KERNEL_GS_BASE));
	__asm__ volatile("mov %%gs:0, %0" : "=r"(seen));
	CHECK_EQ("%gs:0 after swapgs", 0xbbbb, seen);
	__asm__ volatile("swapgs" ::: "memory");
	CHECK_EQ("GS_BASE after the second swapgs", a, rdmsr(MSR_GS_BASE));
}

/*
 * Privileged instructions back to back, as Linux runs them: its
 * __rdgsbase_inactive is `swapgs; rdgsbase; swapgs`, and the end of its
 * syscall path `swapgs; sysretq`. Shadow mode emulates such a run in one
 * trap (vmm/shadow_mode.c, trap chaining); the results must be those of
 * one instruction at a time. SDM 2B RDFSBASE/RDGSBASE, WRFSBASE/WRGSBASE.
 */
#define CR4_FSGSBASE (1ULL << 16)

TEST(swapgs_chain)
{
	uint32_t a, b, c, d;
	uint64_t gs = 0x1111000, kgs = 0x2222000, v, cr4 = read_cr4(), cr3 = read_cr3(), r3;

	cpuid(7, 0, &a, &b, &c, &d);
	if (!(b & 1))
		test_skip("CPUID.07H:EBX.FSGSBASE[0] = 0");
	write_cr4(cr4 | CR4_FSGSBASE);
	wrmsr(MSR_GS_BASE, gs);
	wrmsr(MSR_KERNEL_GS_BASE, kgs);
	__asm__ volatile("swapgs; rdgsbase %0; swapgs" : "=r"(v)::"memory");
	CHECK_EQ("rdgsbase between two swapgs", kgs, v);
	CHECK_EQ("GS_BASE after the pair", gs, rdmsr(MSR_GS_BASE));
	__asm__ volatile("swapgs; wrgsbase %0; swapgs" ::"r"(0x3333000ULL) : "memory");
	CHECK_EQ("KERNEL_GS_BASE after wrgsbase between two swapgs", 0x3333000,
		 rdmsr(MSR_KERNEL_GS_BASE));
	CHECK_EQ("GS_BASE after that pair", gs, rdmsr(MSR_GS_BASE));
	/*
	 * Linux's own two, with its registers: shadow mode rewrites these
	 * into calls to monitor code that keeps KERNEL_GS_BASE in the call
	 * window (vmm/monitor.h, MON_CALL_RD_KGS/WR_KGS), which must agree
	 * with rdmsr/wrmsr both ways.
	 */
	wrmsr(MSR_KERNEL_GS_BASE, 0x5555000);
	__asm__ volatile("swapgs; rdgsbase %%rax; swapgs" : "=a"(v)::"memory");
	CHECK_EQ("Linux's __rdgsbase_inactive after wrmsr", 0x5555000, v);
	__asm__ volatile("swapgs; wrgsbase %%rdi; swapgs" ::"D"(0x6666000ULL) : "memory");
	CHECK_EQ("rdmsr KERNEL_GS_BASE after Linux's __wrgsbase_inactive", 0x6666000,
		 rdmsr(MSR_KERNEL_GS_BASE));
	__asm__ volatile("swapgs; rdgsbase %%rax; swapgs" : "=a"(v)::"memory");
	CHECK_EQ("and read back the same way", 0x6666000, v);
	CHECK_EQ("GS_BASE after them", gs, rdmsr(MSR_GS_BASE));
	wrmsr(MSR_KERNEL_GS_BASE, 0x3333000);
	/* A run of seven: swapgs, rdgsbase, swapgs, mov cr3 out and back in, rdmsr, swapgs. */
	__asm__ volatile("swapgs; rdgsbase %0; swapgs; mov %%cr3, %1; mov %1, %%cr3; rdmsr; swapgs"
			 : "=&r"(v), "=&r"(r3), "=a"(a), "=d"(d)
			 : "c"(MSR_KERNEL_GS_BASE)
			 : "memory");
	CHECK_EQ("rdgsbase in a run of seven", 0x3333000, v);
	CHECK_EQ("mov from cr3 in the run", cr3, r3);
	CHECK_EQ("rdmsr KERNEL_GS_BASE in the run", 0x3333000, ((uint64_t)d << 32) | a);
	CHECK_EQ("GS_BASE after the run's odd swapgs", 0x3333000, rdmsr(MSR_GS_BASE));
	__asm__ volatile("swapgs" ::: "memory");
	CHECK_EQ("GS_BASE back", gs, rdmsr(MSR_GS_BASE));
	write_cr4(cr4);
}

/*
 * SDM 2A IRET: in 64-bit mode iretq to the same privilege level pops RIP,
 * CS, RFLAGS, RSP and SS (the new RSP need not be the old one).
 */
TEST(iretq_kernel)
{
	uint64_t rsp_before, rsp_after, flags_after, target_rsp;

	__asm__ volatile("mov %%rsp, %[before]\n\t"
			 "lea -64(%%rsp), %[target]\n\t"
			 "mov %[target], %%rax\n\t"
			 "pushq %[ss]\n\t"
			 "pushq %%rax\n\t" /* RSP after iretq: 64 bytes below */
			 "pushfq\n\t"
			 "orq %[cf], (%%rsp)\n\t" /* RFLAGS.CF = 1 after iretq */
			 "pushq %[cs]\n\t"
			 "lea 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "iretq\n"
			 "1:\n\t"
			 "mov %%rsp, %[after]\n\t"
			 "pushfq\n\t"
			 "pop %[flags]\n\t"
			 "mov %[before], %%rsp"
			 : [before] "=&r"(rsp_before), [after] "=&r"(rsp_after),
			   [flags] "=&r"(flags_after), [target] "=&r"(target_rsp)
			 : [ss] "i"(KERNEL_DS), [cs] "i"(KERNEL_CS), [cf] "i"(RFLAGS_CF)
			 : "rax", "memory", "cc");
	CHECK_EQ("RSP after iretq", target_rsp, rsp_after);
	CHECK_EQ("RFLAGS.CF after iretq", RFLAGS_CF, flags_after & RFLAGS_CF);
}

/*
 * SDM 3A 6.14.2-3 (64-bit interrupt stack frame; TSS.RSP0 on a privilege
 * change): the timer interrupting CPL3 code is delivered to the kernel with
 * the user's SS:RSP, RFLAGS, CS:RIP on the RSP0 stack.
 */
TEST(timer_user)
{
	struct catch c;
	uint64_t rsp0 = (uint64_t)(trap_stack + TRAP_STACK_SIZE);

	user_map(kernel_pml4, ub_spin_start, ub_spin_end);
	user_run_irq(&c, VEC_TIMER, 0, 0);
	if (!c.caught || c.vector != VEC_TIMER)
		test_fail("expected the timer (vector 0x%x) at CPL3, saw vector %lu error 0x%lx "
			  "rip 0x%lx "
			  "cs 0x%lx",
			  VEC_TIMER, c.vector, c.error, c.rip, c.cs);
	CHECK_EQ("CS in the frame", USER_CS, c.frame.cs);
	CHECK_EQ("SS in the frame", USER_DS, c.frame.ss);
	CHECK_EQ("RIP in the frame (the spin loop)", USER_CODE_VA, c.frame.rip);
	CHECK_EQ("RSP in the frame", USER_STACK_TOP, c.frame.rsp);
	CHECK_EQ("RFLAGS.IF in the frame", RFLAGS_IF, c.frame.rflags & RFLAGS_IF);
	/* The CPU's 5 qwords end exactly at RSP0 (16-byte aligned). */
	CHECK_EQ("frame position on the RSP0 stack", rsp0 - 5 * 8,
		 c.frame_addr + __builtin_offsetof(struct trap_frame, rip));
}

/* SDM 3A 6.14.2: an interrupt at CPL0 (no IST) is taken on the current stack, CS unchanged. */
TEST(timer_kernel)
{
	uint64_t t0 = timer_ticks, start = rdtsc();

	sti();
	while (timer_ticks < t0 + 2) {
		__asm__ volatile("hlt");
		if (tsc_per_ms && rdtsc() - start > 1000 * tsc_per_ms)
			break;
	}
	cli();
	CHECK(timer_ticks >= t0 + 2, "timer in kernel mode: expected 2 ticks within 1 s, saw %lu",
	      timer_ticks - t0);
	CHECK_EQ("CS in the frame", KERNEL_CS, last_timer_frame.cs);
	CHECK(last_timer_frame_addr > (uint64_t)kernel_stack &&
		      last_timer_frame_addr < (uint64_t)kernel_stack_top,
	      "frame on the kernel stack: expected in [%p, %p) saw 0x%lx", kernel_stack,
	      kernel_stack_top, last_timer_frame_addr);
}

/*
 * The body of Linux's native_write_msr (its tracepoint off), where Linux
 * writes the next task's FS base at a context switch on CPUs without
 * FSGSBASE: `mov %esi,%eax; mov %edi,%ecx; wrmsr; xchg %ax,%ax`. Shadow
 * mode rewrites it into a call to the wrmsr stand-in (vmm/monitor.h,
 * MON_CALL_WRMSR), which keeps an FS base in its data page until the next
 * trap, when the VMM loads it. Every way to see the base must see the new
 * one: rdmsr, two writes with no trap between (the second wins), another
 * MSR through the same site, and user mode reading through FS after the
 * return (user_fs_base_noncanonical: a fault that leaves it). A page of its
 * own, first run from this test.
 */
void t70_write_msr(uint32_t msr, uint32_t lo, uint32_t hi);
extern const char t70_write_msr_wrmsr[];
__asm__(".pushsection .text.t70_wrmsr, \"ax\"\n"
	".balign 4096\n"
	".globl t70_write_msr, t70_write_msr_wrmsr\n"
	"t70_write_msr:\n\t"
	"mov %esi, %eax\n\t"
	"mov %edi, %ecx\n"
	"t70_write_msr_wrmsr:\n\t"
	"wrmsr\n\t"
	"xchg %ax, %ax\n\t"
	"ret\n"
	".balign 4096\n"
	".popsection\n");

static void write_fs_base(uint64_t v)
{
	t70_write_msr(MSR_FS_BASE, (uint32_t)v, (uint32_t)(v >> 32));
}

TEST(user_fs_base_site)
{
	const uint64_t kgs = rdmsr(MSR_KERNEL_GS_BASE);
	struct catch c;

	sti();
	for (unsigned i = 0; i < 5000; i++) {
		uint64_t v = 0x7f0000000000ull + ((uint64_t)i << 12);

		write_fs_base(v);
		if (i & 1) {
			v = 0xffff800000001000ull + i;
			write_fs_base(v);
		}
		CHECK_EQ("FS base after the site", v, rdmsr(MSR_FS_BASE));
	}
	t70_write_msr(MSR_KERNEL_GS_BASE, 0x1234000, 0);
	CHECK_EQ("KERNEL_GS_BASE through the site", 0x1234000, rdmsr(MSR_KERNEL_GS_BASE));
	wrmsr(MSR_KERNEL_GS_BASE, kgs);
	user_map(kernel_pml4, ub_fs_read_start, ub_fs_read_end);
	map4k(TWIN, frame_new(0x84), PTE_RW | PTE_US);
	write_fs_base(TWIN);
	user_run(&c, 8, 0);
	expect_exit(&c, pat(0x84, 1), "a user read through FS after the site");
	wrmsr(MSR_FS_BASE, 0);
}

/*
 * A non-canonical FS base through the same site: #GP(0) at its wrmsr, the
 * base as it was. Apart from user_fs_base_site because QEMU's TCG takes the
 * value without a fault (hw mode on tools/nested-kvm.sh: TCG_TESTOS_SKIPS).
 */
TEST(user_fs_base_noncanonical)
{
	struct catch c;

	write_fs_base(0x5000);
	if (CATCH(&c))
		write_fs_base(0x0000800000000000ull);
	catch_disarm();
	expect_fault(&c, VEC_GP, 0, 0, "a non-canonical FS base through the site");
	CHECK_EQ("the #GP's RIP: the wrmsr", (uint64_t)t70_write_msr_wrmsr, c.rip);
	CHECK_EQ("FS base after the #GP", 0x5000, rdmsr(MSR_FS_BASE));
	wrmsr(MSR_FS_BASE, 0);
}
