/* SPDX-License-Identifier: MIT */
/*
 * `swapgs` and the 3 bytes after it, a nop or `lfence`, as Linux's
 * error_entry has them (SWAPGS, then FENCE_SWAPGS_USER_ENTRY) at every
 * interrupt and exception taken in user mode. Shadow mode rewrites each
 * into a call to a stand-in that exchanges the real GS base with the
 * KERNEL_GS_BASE kept in its data page (vmm/monitor.h, MON_CALL_SWAPGS),
 * if CR4.FSGSBASE is set when their page is first run; elsewhere they run
 * as they are. Either way GS base and KERNEL_GS_BASE must be exchanged as
 * swapgs exchanges them (SDM Vol. 2B SWAPGS): as rdmsr, rdgsbase and %gs:
 * accesses see them, with RAX and the flags kept, and with ticks landing
 * inside the stand-in (100000 pairs: a few land there on the rig).
 */
#include "../arch.h"
#include "../gdt.h"
#include "../test.h"

#define CR4_FSGSBASE (1ULL << 16)
#define ARITH	     0x8d5ul /* CF PF AF ZF SF OF */

/*
 * The three forms, alone in a page of their own, so that the page is
 * first run (and scanned) after the test has set CR4.FSGSBASE.
 */
void t77_swapgs_nopl(void), t77_swapgs_nop90(void), t77_swapgs_lfence(void);
__asm__(".pushsection .text.t77_swapgs, \"ax\"\n"
	".balign 4096\n"
	"t77_swapgs_nopl:\n\t"
	".byte 0x0f, 0x01, 0xf8\n\t" /* swapgs */
	".byte 0x0f, 0x1f, 0x00\n\t" /* nopl (%rax) */
	"ret\n"
	"t77_swapgs_nop90:\n\t"
	".byte 0x0f, 0x01, 0xf8\n\t" /* swapgs */
	".byte 0x90, 0x90, 0x90\n\t" /* nop; nop; nop */
	"ret\n"
	"t77_swapgs_lfence:\n\t"
	".byte 0x0f, 0x01, 0xf8\n\t" /* swapgs */
	".byte 0x0f, 0xae, 0xe8\n\t" /* lfence */
	"ret\n"
	".balign 4096\n"
	".popsection\n");

/* Call `site` with RAX and the flags set; return RAX after it, the flags in *flags. */
static uint64_t run_site(void (*site)(void), uint64_t rax, uint64_t in_flags, uint64_t *flags)
{
	uint64_t fl = in_flags;

	__asm__ volatile("push %[f]\n\tpopfq\n\tcall *%[s]\n\tpushfq\n\tpop %[f]\n\tcld"
			 : [f] "+r"(fl), "+a"(rax)
			 : [s] "r"(site)
			 : "memory", "cc");
	*flags = fl;
	return rax;
}

static uint64_t gs_word(void)
{
	uint64_t v;

	__asm__ volatile("mov %%gs:0, %0" : "=r"(v));
	return v;
}

static uint64_t rdgsbase(void)
{
	uint64_t v;

	__asm__ volatile("rdgsbase %0" : "=r"(v));
	return v;
}

/* After a swap: GS base `gs` (whose first word is `word`), KERNEL_GS_BASE `kgs`. */
static void gs_check(const char *what, uint64_t gs, uint64_t kgs, uint64_t word)
{
	CHECK_EQ(what, gs, rdmsr(MSR_GS_BASE));
	CHECK_EQ(what, kgs, rdmsr(MSR_KERNEL_GS_BASE));
	CHECK_EQ(what, gs, rdgsbase());
	CHECK_EQ(what, word, gs_word());
}

TEST(swapgs_site)
{
	static uint64_t a_word = 0xaaaa, b_words[2] = { 0xbbbb, 0xcccc };
	static void (*const sites[])(void) = { t77_swapgs_nopl, t77_swapgs_nop90,
					       t77_swapgs_lfence };
	static const char *const names[] = { "swapgs; nopl", "swapgs; nop x3", "swapgs; lfence" };
	const uint64_t a = (uint64_t)&a_word, b = (uint64_t)&b_words[0];
	uint32_t ea, eb, ec, ed;

	cpuid(7, 0, &ea, &eb, &ec, &ed);
	if (!(eb & 1))
		test_skip("CPUID.07H:EBX.FSGSBASE[0] = 0");
	write_cr4(read_cr4() | CR4_FSGSBASE);
	wrmsr(MSR_GS_BASE, a);
	wrmsr(MSR_KERNEL_GS_BASE, b);
	for (unsigned s = 0; s < 3; s++) {
		static const uint64_t in_flags[] = { 0x2, 0x2 | ARITH, 0x2 | 0x400 /* DF */ | 0x1 };

		for (unsigned f = 0; f < 3; f++) {
			uint64_t fl, rax = 0x1122334455667788ull ^ (s << 8 | f);

			CHECK_EQ(names[s], rax, run_site(sites[s], rax, in_flags[f], &fl));
			CHECK_EQ(names[s], in_flags[f] & (ARITH | 0x400), fl & (ARITH | 0x400));
			gs_check(names[s], b, a, 0xbbbb);
			CHECK_EQ(names[s], ~rax, run_site(sites[s], ~rax, in_flags[f], &fl));
			gs_check(names[s], a, b, 0xaaaa);
		}
	}
	/* A wrmsr between two swaps: the stand-in's copy must follow it. */
	wrmsr(MSR_KERNEL_GS_BASE, b + 8);
	t77_swapgs_nopl();
	gs_check("after wrmsr KERNEL_GS_BASE", b + 8, a, 0xcccc);
	t77_swapgs_nopl();
	wrmsr(MSR_KERNEL_GS_BASE, b);
	sti();
	for (unsigned i = 0; i < 100000; i++) {
		t77_swapgs_nopl();
		if (gs_word() != 0xbbbb)
			test_fail("in a loop with ticks, iteration %u: %%gs:0 0x%lx after one swap",
				  i, gs_word());
		t77_swapgs_lfence();
		if (gs_word() != 0xaaaa)
			test_fail("in a loop with ticks, iteration %u: %%gs:0 0x%lx after two", i,
				  gs_word());
	}
	gs_check("after the loop", a, b, 0xaaaa);
}

/*
 * Linux's native_load_gs_index without FSGSBASE, at every context switch
 * on such CPUs: `swapgs; mov %edi,%gs; swapgs` (with Linux's 3-byte nop
 * after the mov), interrupts off. Shadow mode emulates the three in one
 * trap (trap chaining, decode/chain.h). The selector and base go to the
 * user's side, KERNEL_GS_BASE, and the kernel's GS base stays (the
 * selector is not read back: shadow mode leaves the real DS/ES/FS/GS
 * selectors alone, and `mov %gs,%ax` runs natively, LIMITATION). The null
 * selector comes after USER_DS, as Linux loads them on AMD CPUs, so its
 * base is 0 on both vendors' rules. The function has a page of its own:
 * only a direct call from load_gs_index_run reaches it, so that page is
 * first run (and scanned, and the site rewritten into the load_gs
 * stand-in's call) from this test. Sharing a page with the tests before
 * it, the page was scanned from their code, which does not reach it, and
 * the site was rewritten only by a later rescan of that page, which came
 * or not with the rest of the suite (with t73_ucopy's tests added, the
 * whole suite ran one exec revoke and one rescan fewer, and none of its
 * load_gs_index calls went through the stand-in).
 */
void t78_load_gs_index(uint64_t sel);
__asm__(".pushsection .text.t78_load_gs, \"ax\"\n"
	".balign 4096\n"
	".globl t78_load_gs_index\n"
	"t78_load_gs_index:\n\t"
	"pushfq\n\t"
	"cli\n\t"
	".byte 0x0f, 0x01, 0xf8\n\t" /* swapgs */
	"mov %edi, %gs\n\t"
	".byte 0x90, 0x90, 0x90\n\t"
	".byte 0x0f, 0x01, 0xf8\n\t" /* swapgs */
	"popfq\n\t"
	"ret\n"
	".balign 4096\n"
	".popsection\n");

TEST(load_gs_index)
{
	static uint64_t k_word = 0x1234;
	const uint64_t k = (uint64_t)&k_word;

	wrmsr(MSR_GS_BASE, k);
	wrmsr(MSR_KERNEL_GS_BASE, 0x777000);
	sti();
	for (unsigned i = 0; i < 5000; i++) {
		t78_load_gs_index(USER_DS);
		CHECK_EQ("KERNEL_GS_BASE after loading USER_DS", 0, rdmsr(MSR_KERNEL_GS_BASE));
		CHECK_EQ("GS base after loading USER_DS", k, rdmsr(MSR_GS_BASE));
		CHECK_EQ("%gs:0 after loading USER_DS", 0x1234, gs_word());
		t78_load_gs_index(0);
		CHECK_EQ("KERNEL_GS_BASE after loading 0", 0, rdmsr(MSR_KERNEL_GS_BASE));
		CHECK_EQ("GS base after loading 0", k, rdmsr(MSR_GS_BASE));
		wrmsr(MSR_KERNEL_GS_BASE, 0x777000 + i);
	}
	/*
	 * The descriptor counts as it is at the load: with USER_DS's base set
	 * to 0x5000 in place (shadow mode: the load_gs stand-in, which by now
	 * loads USER_DS itself, sees the descriptor differ from the one it was
	 * given and takes its slow path), then put back.
	 */
	{
		volatile uint64_t *gdt;
		uint64_t saved;

		(void)gdt_free_slot(&gdt);
		saved = gdt[USER_DS >> 3];
		for (unsigned i = 0; i < 3; i++) {
			gdt[USER_DS >> 3] = saved | (0x5000ull << 16);
			t78_load_gs_index(USER_DS);
			CHECK_EQ("KERNEL_GS_BASE after loading USER_DS based at 0x5000", 0x5000,
				 rdmsr(MSR_KERNEL_GS_BASE));
			gdt[USER_DS >> 3] = saved;
			t78_load_gs_index(USER_DS);
			CHECK_EQ("KERNEL_GS_BASE after loading USER_DS put back", 0,
				 rdmsr(MSR_KERNEL_GS_BASE));
			CHECK_EQ("GS base after both", k, rdmsr(MSR_GS_BASE));
		}
	}
}

/*
 * Linux's load_seg_legacy on AMD CPUs, at a context switch to a task whose
 * FS base is 0 (a kernel thread, a fresh exec): `mov $__USER_DS,%edx; mov
 * %edx,%fs; mov %eax,%fs` with the task's null selector in %eax. Shadow
 * mode rewrites it into a call to the load_fs stand-in (vmm/monitor.h,
 * MON_CALL_LOAD_FS), which does it with real loads once the VMM has
 * checked USER_DS's descriptor, and takes its slow path (the original
 * emulated) when the descriptor in the table differs at the load. FS's
 * base must be 0 after it on both vendors' rules for a null load, RDX
 * 0x2b, and a descriptor changed in place must count: not present, the
 * mov raises #NP; its A bit cleared, the load sets it again. The function
 * has a page of its own, first run from this test (see t78_load_gs_index).
 */
#define VEC_NP 11

uint64_t t79_load_fs_null(uint64_t sel);
extern const char t79_load_fs_mov[];
__asm__(".pushsection .text.t79_load_fs, \"ax\"\n"
	".balign 4096\n"
	".globl t79_load_fs_null, t79_load_fs_mov\n"
	"t79_load_fs_null:\n\t"
	"pushfq\n\t"
	"cli\n\t"
	"mov %edi, %eax\n\t"
	"mov $0x2b, %edx\n"
	"t79_load_fs_mov:\n\t"
	"mov %edx, %fs\n\t"
	"mov %eax, %fs\n\t"
	"mov %rdx, %rax\n\t"
	"popfq\n\t"
	"ret\n"
	".balign 4096\n"
	".popsection\n");

TEST(load_fs_user_ds)
{
	volatile uint64_t *gdt;
	uint64_t saved;

	sti();
	for (unsigned i = 0; i < 5000; i++) {
		wrmsr(MSR_FS_BASE, 0x7f0000001000ull + i);
		CHECK_EQ("RDX after the site", 0x2b, t79_load_fs_null(i & 3));
		CHECK_EQ("FS base after USER_DS, then null", 0, rdmsr(MSR_FS_BASE));
	}
	(void)gdt_free_slot(&gdt);
	saved = gdt[USER_DS >> 3];
	for (unsigned i = 0; i < 3; i++) {
		struct catch c;

		gdt[USER_DS >> 3] = saved & ~(1ull << 47); /* not present */
		if (CATCH(&c))
			(void)t79_load_fs_null(0);
		catch_disarm();
		gdt[USER_DS >> 3] = saved;
		expect_fault(&c, VEC_NP, USER_DS & ~3u, 0, "USER_DS made not present in place");
		CHECK_EQ("the #NP's RIP: the mov to FS", (uint64_t)t79_load_fs_mov, c.rip);
		gdt[USER_DS >> 3] = saved & ~(1ull << 40); /* not accessed */
		wrmsr(MSR_FS_BASE, 0x1000);
		(void)t79_load_fs_null(0);
		CHECK_EQ("USER_DS's A bit after the load", saved | (1ull << 40), gdt[USER_DS >> 3]);
		CHECK_EQ("FS base after a load that set the A bit", 0, rdmsr(MSR_FS_BASE));
		wrmsr(MSR_FS_BASE, 0x2000);
		(void)t79_load_fs_null(3);
		CHECK_EQ("FS base after USER_DS put back", 0, rdmsr(MSR_FS_BASE));
	}
}
