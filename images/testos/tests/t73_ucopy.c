/* SPDX-License-Identifier: MIT */
/*
 * A user copy as Linux 6.1's copy_user_enhanced_fast_string runs it, under
 * CR4.SMAP: `stac; cmp $64,%edx; jb short; mov %edx,%ecx; rep movsb;
 * xor %eax,%eax; clac`, with a byte loop for short copies. In shadow mode
 * the stac traps and a trap chain may emulate the rest of the window up to
 * the clac (decode/chain.h, CHAIN_BRANCH and the rep movs bridge; the VMM
 * caps an emulated copy at 1 KiB). Whichever way each length goes, the
 * bytes, RAX/RCX/RSI/RDI, the flags and AC after it must be the CPU's; a
 * copy into a page that is not present must fault at its first byte there
 * with the bytes before it copied and RCX/RSI/RDI at the fault (SDM Vol. 2B
 * REP), and AC must still be 1 in the frame (the handler's clac is Linux's).
 */
#include "../arch.h"
#include "../cpu.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

#define ARITH 0x8d5ul /* CF PF AF ZF SF OF */

/* ucopy(dst, src, len): RAX = 0; RCX, RSI, RDI as the copy leaves them. */
void t73_ucopy(void);
__asm__(".pushsection .text.t73_ucopy, \"ax\"\n"
	".balign 64\n"
	"t73_ucopy:\n\t"
	"stac\n\t"
	"cmpl $64, %edx\n\t"
	"jb 2f\n\t"
	"movl %edx, %ecx\n\t"
	"rep movsb\n\t"
	"xorl %eax, %eax\n\t"
	"clac\n\t"
	"ret\n"
	"2:\n\t"
	"movl %edx, %ecx\n\t"
	"testl %ecx, %ecx\n\t"
	"jz 4f\n"
	"3:\n\t"
	"movb (%rsi), %al\n\t"
	"movb %al, (%rdi)\n\t"
	"incq %rsi\n\t"
	"incq %rdi\n\t"
	"decl %ecx\n\t"
	"jnz 3b\n"
	"4:\n\t"
	"xorl %eax, %eax\n\t"
	"clac\n\t"
	"ret\n"
	".popsection\n");

struct ucopy_out {
	uint64_t rax, rcx, rsi, rdi, rflags;
};

static void run_ucopy(uint64_t dst, uint64_t src, uint32_t len, struct ucopy_out *o)
{
	uint64_t rax = 0x1111, rcx = 0x2222, rsi = src, rdi = dst, rdx = len, fl;

	__asm__ volatile("call t73_ucopy\n\tpushfq\n\tpop %[fl]"
			 : "+a"(rax), "+c"(rcx), "+S"(rsi), "+D"(rdi), "+d"(rdx), [fl] "=r"(fl)
			 :
			 : "memory", "cc");
	o->rax = rax;
	o->rcx = rcx;
	o->rsi = rsi;
	o->rdi = rdi;
	o->rflags = fl;
}

static uint8_t kbuf[3 * 4096] __attribute__((aligned(4096)));

/* Map @n user pages at TWIN (US, RW) over fresh frames. */
static void map_user(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		map4k(TWIN + i * 4096ul, frame_new(0x73 + i), PTE_US | PTE_RW);
}

static void smap_on(void)
{
	if (!cpu.smap)
		test_skip("CPUID.(EAX=7,ECX=0):EBX.SMAP[20] = 0");
	write_cr4(read_cr4() | CR4_SMAP);
}

/*
 * Lengths around the window's own branch (64), the VMM's 1 KiB cap and a
 * page, from a kernel buffer to user pages at offsets that cross a page,
 * and back; each checked byte for byte and register for register.
 */
TEST(ucopy)
{
	static const uint32_t lens[] = { 0, 1, 63, 64, 65, 200, 1024, 1025, 4096, 5000 };
	static const uint64_t offs[] = { 0, 0xff8, 0x7c1 };

	smap_on();
	map_user(3);
	for (unsigned i = 0; i < sizeof(kbuf); i++)
		kbuf[i] = (uint8_t)(i * 13 + 5);
	for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		for (unsigned o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			uint32_t len = lens[l];
			uint64_t u = TWIN + offs[o], k = (uint64_t)kbuf + o * 7;
			struct ucopy_out r;

			if (offs[o] + len > 3 * 4096ul || o * 7 + len > sizeof(kbuf))
				continue;
			run_ucopy(u, k, len, &r); /* copy_to_user */
			CHECK_EQ("RAX after copy_to_user", 0, r.rax);
			CHECK_EQ("RCX after copy_to_user", 0, r.rcx);
			CHECK_EQ("RSI after copy_to_user", k + len, r.rsi);
			CHECK_EQ("RDI after copy_to_user", u + len, r.rdi);
			CHECK_EQ("AC after copy_to_user", 0, r.rflags & RFLAGS_AC);
			/* xor %eax,%eax last: ZF PF, the others clear */
			CHECK_EQ("flags after copy_to_user", 0x44, r.rflags & ARITH);
			write_cr4(read_cr4() & ~CR4_SMAP);
			for (uint32_t b = 0; b < len; b++)
				if (*(volatile uint8_t *)(u + b) != kbuf[o * 7 + b])
					test_fail(
						"len %u off 0x%lx: user byte %u is 0x%x, want 0x%x",
						len, offs[o], b, *(volatile uint8_t *)(u + b),
						kbuf[o * 7 + b]);
			write_cr4(read_cr4() | CR4_SMAP);
			/* copy_from_user, into the kernel buffer's last page */
			run_ucopy((uint64_t)kbuf + 2 * 4096, u, len > 4096 ? 4096 : len, &r);
			CHECK_EQ("RCX after copy_from_user", 0, r.rcx);
			CHECK_EQ("AC after copy_from_user", 0, r.rflags & RFLAGS_AC);
			for (uint32_t b = 0; b < (len > 4096 ? 4096 : len); b++)
				if (kbuf[2 * 4096 + b] != kbuf[o * 7 + b])
					test_fail("len %u off 0x%lx: copied back byte %u is 0x%x",
						  len, offs[o], b, kbuf[2 * 4096 + b]);
			for (unsigned i = 2 * 4096; i < sizeof(kbuf); i++)
				kbuf[i] = (uint8_t)(i * 13 + 5);
		}
	}
}

/*
 * copy_to_user 40 bytes before a page that is not present: a #PF for a
 * supervisor write (error code W) at that page's first byte, after 40
 * bytes; RCX, RSI, RDI in the frame as the fault left them, and AC = 1
 * there (the window was open). Every length takes the rep movsb path.
 */
TEST(ucopy_fault)
{
	static const uint32_t lens[] = { 100, 64, 900 };
	struct catch c;

	smap_on();
	for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		uint64_t u = TWIN + 4096 - 40, k = (uint64_t)kbuf;
		struct ucopy_out r;

		map_user(1);
		if (CATCH(&c))
			run_ucopy(u, k, lens[l], &r);
		catch_disarm();
		__asm__ volatile("clac" ::: "memory", "cc");
		expect_fault(&c, VEC_PF, PF_W, TWIN + 4096, "copy_to_user into a missing page");
		CHECK_EQ("RCX at the fault", lens[l] - 40, c.frame.rcx);
		CHECK_EQ("RSI at the fault", k + 40, c.frame.rsi);
		CHECK_EQ("RDI at the fault", TWIN + 4096, c.frame.rdi);
		CHECK_EQ("AC in the fault's frame", RFLAGS_AC, c.frame.rflags & RFLAGS_AC);
		write_cr4(read_cr4() & ~CR4_SMAP);
		for (unsigned b = 0; b < 40; b++)
			CHECK_EQ("byte copied before the fault", kbuf[b],
				 *(volatile uint8_t *)(u + b));
		write_cr4(read_cr4() | CR4_SMAP);
	}
}
