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
#include "../arch.h"
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

/*
 * The same straddle into a page already approved, whose start no scan
 * covered: t71_fall_b, at 0x100 in page B, runs first, and B's first
 * bytes are not a sync guess either (page A's last 64 bytes are b8s,
 * which decode in five phases: decode/scan.h, scan_sync_offset says
 * none). Then t71_fall runs the movabs at the end of page A and falls
 * into B's `pushfq; pop %rax; ret`. A's scan must decode the movabs with
 * B's bytes and learn where it falls: B is rescanned from there, and its
 * pushf shows the virtual IF. Run natively from an unscanned tail, it
 * shows the real IF, always 1.
 */
uint64_t t71_fall(void);
void t71_fall_b(void);
__asm__(".pushsection .text.t71_fall, \"ax\"\n"
	".balign 4096\n"
	".fill 4096 - 3, 1, 0xb8\n"
	".globl t71_fall, t71_fall_b\n"
	"t71_fall:\n\t"
	"movabs $0x9d9c9d9c9d9c9d11, %rax\n\t" /* ends 7 bytes into page B */
	"pushfq\n\t"
	"pop %rax\n\t"
	"ret\n\t"
	".fill 0x100 - 10, 1, 0xcc\n"
	"t71_fall_b:\n\t"
	"ret\n"
	".balign 4096\n"
	".popsection\n");

TEST(straddle_into_approved_page)
{
	uint64_t fl;

	t71_fall_b();
	cli();
	fl = t71_fall();
	sti();
	CHECK_EQ("IF seen by the pushf a straddling movabs falls into, IF 0", 0, fl & RFLAGS_IF);
	fl = t71_fall();
	CHECK_EQ("... with IF 1", RFLAGS_IF, fl & RFLAGS_IF);
}
