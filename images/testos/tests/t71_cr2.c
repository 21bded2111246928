/* SPDX-License-Identifier: MIT */
/*
 * `mov %cr2,%rax` and the 3-byte nop after it, as Linux's alternatives
 * leave its paravirt read_cr2 (exc_page_fault's first act). Shadow mode
 * rewrites the pair into a call to a stand-in that reads the virtual CR2
 * from its data page (vmm/monitor.h, MON_CALL_RD_CR2). Either way it must
 * read what a plain `mov %cr2` reads: a value written to CR2, the address
 * of the last page fault, with ticks landing around it.
 */
#include "../arch.h"
#include "../test.h"

uint64_t t76_read_cr2(void);
__asm__(".text\n"
	".globl t76_read_cr2\n"
	"t76_read_cr2:\n\t"
	".byte 0x0f, 0x20, 0xd0\n\t" /* mov %cr2,%rax */
	".byte 0x0f, 0x1f, 0x00\n\t" /* nopl (%rax) */
	"ret\n");

static uint64_t plain_cr2(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr2, %0\n\tnop" : "=r"(v));
	return v;
}

static void set_cr2(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr2" ::"r"(v) : "memory");
}

static void cr2_check(const char *what, uint64_t want)
{
	uint64_t site = t76_read_cr2(), plain = plain_cr2();

	if (site != want || plain != want)
		test_fail("%s: the site read 0x%lx, a plain mov 0x%lx, expected 0x%lx", what, site,
			  plain, want);
}

TEST(cr2_read_site)
{
	struct catch c;

	set_cr2(0x123456789abcdef0ull);
	cr2_check("after a write to CR2", 0x123456789abcdef0ull);
	set_cr2(0);
	cr2_check("after writing 0", 0);
	/* A page fault sets it: the address in the test window, nothing mapped there. */
	if (CATCH(&c))
		(void)peek(TWIN + 0x1238);
	catch_disarm();
	expect_fault(&c, VEC_PF, 0, TWIN + 0x1238, "a read of an unmapped page");
	cr2_check("after a page fault", TWIN + 0x1238);
	sti();
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t v = 0xffff800000000000ull + ((uint64_t)i << 12) + i;

		set_cr2(v);
		cr2_check("in a loop with ticks", v);
	}
}
