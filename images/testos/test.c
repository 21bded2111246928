/* SPDX-License-Identifier: MIT */
/* Test runner, failure reporting, expected-fault checks and test helpers. */
#include <stdarg.h>

#include "arch.h"
#include "console.h"
#include "gdt.h"
#include "lapic.h"
#include "lib.h"
#include "paging.h"
#include "pmm.h"
#include "proc.h"
#include "test.h"

extern const struct test __tests_start[], __tests_end[];

enum result { RUNNING, FAILED, SKIPPED };

const char *test_cmdline;
static const struct test *cur_test;
static enum result cur_result;
static struct jmpbuf runner_jb;
static uint64_t base_cr0, base_cr4, base_efer;

__attribute__((noreturn)) static void end_test(void)
{
	tos_longjmp(&runner_jb, 1);
}

void test_fail(const char *fmt, ...)
{
	va_list ap;

	kprintf("TEST %s FAIL ", cur_test ? cur_test->name : "?");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	cur_result = FAILED;
	if (!cur_test)
		debug_exit(EXIT_EXCEPTION);
	end_test();
}

void test_skip(const char *why)
{
	kprintf("TEST %s SKIP %s\n", cur_test->name, why);
	cur_result = SKIPPED;
	end_test();
}

int test_abort_from_trap(struct trap_frame *f)
{
	if (!cur_test || cur_result != RUNNING)
		return 0;
	kprintf("TEST %s FAIL no exception expected, saw vector %lu error 0x%lx at rip 0x%lx "
		"cs 0x%lx cr2 0x%lx\n",
		cur_test->name, f->vector, f->error, f->rip, f->cs, read_cr2());
	cur_result = FAILED;
	frame_longjmp(f, &runner_jb, 1);
	return 1;
}

static const char *vec_name(uint64_t v)
{
	static const char *names[] = { [VEC_DE] = "#DE", [VEC_DB] = "#DB", [VEC_NMI] = "NMI",
				       [VEC_BP] = "#BP", [VEC_UD] = "#UD", [VEC_DF] = "#DF",
				       [VEC_GP] = "#GP", [VEC_PF] = "#PF", [VEC_MC] = "#MC" };

	if (v == VEC_SYSCALL)
		return "syscall";
	if (v < sizeof(names) / sizeof(names[0]) && names[v])
		return names[v];
	return "vector";
}

void expect_fault(const struct catch *c, uint64_t vec, uint64_t err, uint64_t cr2, const char *what)
{
	if (!c->caught)
		test_fail("%s: expected %s error 0x%lx cr2 0x%lx, saw no fault", what, vec_name(vec), err,
			  cr2);
	if (c->vector != vec || c->error != err || (vec == VEC_PF && c->cr2 != cr2))
		test_fail("%s: expected %s error 0x%lx cr2 0x%lx, saw %s (%lu) error 0x%lx cr2 0x%lx "
			  "rip 0x%lx cs 0x%lx",
			  what, vec_name(vec), err, cr2, vec_name(c->vector), c->vector, c->error, c->cr2,
			  c->rip, c->cs);
}

void expect_no_fault(const struct catch *c, const char *what)
{
	if (c->caught)
		test_fail("%s: expected no fault, saw %s (%lu) error 0x%lx cr2 0x%lx rip 0x%lx", what,
			  vec_name(c->vector), c->vector, c->error, c->cr2, c->rip);
}

uint64_t read_checked(uint64_t va, const char *what)
{
	struct catch c;
	volatile uint64_t v = 0;

	if (CATCH(&c))
		v = peek(va);
	catch_disarm();
	expect_no_fault(&c, what);
	return v;
}

void map4k(uint64_t va, uint64_t pa, uint64_t flags)
{
	pt_map(kernel_pml4, va, pa, flags, LVL_PT);
}

uint64_t *kentry(uint64_t va, int level)
{
	return pt_entry(kernel_pml4, va, level, 0);
}

uint64_t frame_new(uint64_t tag)
{
	uint64_t pa = pmm_alloc();
	uint64_t *p = phys_to_virt(pa);

	for (uint64_t i = 0; i < PAGE_SIZE / 8; i++)
		p[i] = pat(tag, i);
	return pa;
}

/* Put back what a test may have changed. */
static void restore_baseline(void)
{
	catch_disarm();
	pf_hook = 0;
	write_rflags(RFLAGS_FIXED);
	write_cr3(kernel_pml4);
	write_cr4(base_cr4);
	write_cr0(base_cr0);
	wrmsr(MSR_EFER, base_efer);
	wrmsr(MSR_GS_BASE, 0);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
	gdt_set_rsp0((uint64_t)(trap_stack + TRAP_STACK_SIZE));
	proc_reset(); /* no process survives a test */
	lapic_timer_periodic();
	as_clear_user(kernel_pml4);
	((uint64_t *)phys_to_virt(kernel_pml4))[SELFMAP_SLOT] = 0;
	flush_tlb_all();
}

void tests_run(const char *cmdline)
{
	const char *only = cmdline_value(cmdline, "test");
	const char *skip = cmdline_value(cmdline, "skip");
	int times = 0;
	unsigned passed = 0, failed = 0, skipped = 0;
	uint64_t t_all = rdtsc();

	for (const char *p = cmdline; *p; p++)
		if (!strncmp(p, "times", 5) && (p == cmdline || p[-1] == ' ') &&
		    (p[5] == ' ' || !p[5]))
			times = 1;
	test_cmdline = cmdline;
	base_cr0 = read_cr0();
	base_cr4 = read_cr4();
	base_efer = rdmsr(MSR_EFER);
	for (const struct test *t = __tests_start; t < __tests_end; t++) {
		uint64_t t0;

		if (only && !list_has_prefix_of(only, t->name))
			continue;
		if (skip && list_has_prefix_of(skip, t->name)) {
			kprintf("TEST %s SKIP excluded by skip=\n", t->name);
			skipped++;
			continue;
		}
		cur_test = t;
		cur_result = RUNNING;
		t0 = rdtsc();
		if (tos_setjmp(&runner_jb) == 0)
			t->fn();
		if (cur_result == RUNNING)
			kprintf("TEST %s PASS\n", t->name);
		passed += cur_result == RUNNING;
		failed += cur_result == FAILED;
		skipped += cur_result == SKIPPED;
		cur_test = 0;
		restore_baseline();
		if (times && tsc_per_ms)
			kprintf("TIME %s %lu ms\n", t->name, (rdtsc() - t0) / tsc_per_ms);
	}
	if (times && tsc_per_ms)
		kprintf("TIME all %lu ms\n", (rdtsc() - t_all) / tsc_per_ms);
	kprintf("SKIPPED %u\n", skipped);
	kprintf("SUMMARY %u passed, %u failed\n", passed, failed);
	if (failed || !passed) {
		if (!passed && !failed)
			kprintf("no test was run\n");
		debug_exit(EXIT_TESTS_FAILED);
	}
	power_off();
}
