/* SPDX-License-Identifier: MIT */
/*
 * An instruction that straddles into a page no code has run from yet: a
 * movabs whose first three bytes end one page and whose last seven, an
 * immediate of pushf/popf bytes (9c, 9d), begin the next. Its fetch faults
 * on the second page with CR2 at that page's first byte, inside the
 * instruction. Shadow mode scans the page then; taken as an entry, that
 * byte would make the sweep read the immediate as pushf and popf and patch
 * them with int3 (decode/scan.h, scan_flow_from). RAX must come back as
 * the immediate, byte for byte, every time.
 */
#include "../test.h"

#define STRADDLE_IMM 0x9d9c9d9c9d9c9d11ull

uint64_t t71_straddle(void);
__asm__(".pushsection .text.t71_straddle, \"ax\"\n"
	".balign 4096\n"
	".skip 4096 - 3, 0xcc\n"
	".globl t71_straddle\n"
	"t71_straddle:\n\t"
	"movabs $0x9d9c9d9c9d9c9d11, %rax\n\t" /* 48 b8 11 | 9d 9c 9d 9c 9d 9c 9d */
	"ret\n"
	".balign 4096\n"
	".popsection\n");

TEST(straddle_into_new_page)
{
	CHECK_EQ("movabs straddling into a page run for the first time", STRADDLE_IMM,
		 t71_straddle());
	for (unsigned i = 0; i < 1000; i++)
		CHECK_EQ("the same movabs again", STRADDLE_IMM, t71_straddle());
}
