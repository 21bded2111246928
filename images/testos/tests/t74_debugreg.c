/* SPDX-License-Identifier: MIT */
/*
 * The debug registers (SDM Vol. 3A §17.2-§17.3): a data breakpoint is a
 * #DB after the access, with DR6.Bn; an instruction breakpoint a #DB before
 * the instruction, with RF clear in its frame. Shadow mode arms the real
 * vCPU's for what runs natively and checks what it emulates itself
 * (vmm/shadow_debugreg.h, decode/debugreg.h): a store to a page table is
 * such an instruction there (a write-protected table), native in hw mode,
 * and must look the same. Each test leaves DR7 clear, whatever it saw.
 */
#include "../arch.h"
#include "../paging.h"
#include "../test.h"

#define DR7_L0	      (1ull << 0)
#define DR7_RW0_WRITE (1ull << 16)
#define DR7_LEN0_8    (2ull << 18)
#define DR6_CLEAR     0xffff0ff0ull
#define DR6_B0	      (1ull << 0)
#define DR6_BS	      (1ull << 14)
#define RFLAGS_RF_BIT (1ull << 16)

static void set_dr0_dr7(uint64_t dr0, uint64_t dr7)
{
	__asm__ volatile("mov %0, %%dr6\n\tmov %1, %%dr0\n\tmov %2, %%dr7" ::"r"(DR6_CLEAR),
			 "r"(dr0), "r"(dr7)
			 : "memory");
}

static uint64_t dr6_then_clear(void)
{
	uint64_t dr6;

	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	__asm__ volatile("mov %0, %%dr7\n\tmov %1, %%dr6" ::"r"(0ull), "r"(DR6_CLEAR) : "memory");
	return dr6;
}

static volatile uint64_t watched[4];

TEST(dr_data_write)
{
	struct catch c;
	uint64_t dr6;

	set_dr0_dr7((uint64_t)&watched[2], DR7_L0 | DR7_RW0_WRITE | DR7_LEN0_8);
	watched[1] = 1; /* the next word: nothing */
	watched[3] = 3;
	if (CATCH(&c))
		watched[2] = 2;
	catch_disarm();
	dr6 = dr6_then_clear();
	CHECK(c.caught, "no #DB for a store to the watched word");
	CHECK_EQ("the #DB's vector", VEC_DB, c.vector);
	CHECK_EQ("DR6 B0 (and no BS)", DR6_B0, dr6 & (DR6_B0 | DR6_BS));
	CHECK_EQ("the store, made before the #DB", 2, watched[2]);
}

/*
 * The PTE of a fresh page (pattern `tag`) mapped at the test window, read
 * through once first: shadow mode then shadows its table and write-protects
 * it.
 */
static uint64_t *window_pte(uint64_t tag)
{
	uint64_t *pte;

	map4k(TWIN, frame_new(tag), PTE_RW);
	(void)peek(TWIN);
	pte = kentry(TWIN, LVL_PT);
	CHECK(pte, "no PTE for the test window");
	return pte;
}

/* A store to a page-table entry: the VMM's own in shadow mode, the CPU's in hw mode. */
TEST(dr_data_write_pte)
{
	struct catch c;
	uint64_t *pte, dr6;

	pte = window_pte(0xd7);
	set_dr0_dr7((uint64_t)pte, DR7_L0 | DR7_RW0_WRITE | DR7_LEN0_8);
	if (CATCH(&c))
		*(volatile uint64_t *)pte = *pte | (1ull << 9); /* an ignored bit */
	catch_disarm();
	dr6 = dr6_then_clear();
	CHECK(c.caught, "no #DB for a store to the watched PTE");
	CHECK_EQ("the #DB's vector", VEC_DB, c.vector);
	CHECK_EQ("DR6 B0", DR6_B0, dr6 & DR6_B0);
	CHECK_EQ("the PTE's bit 9, stored", 1ull << 9, *pte & (1ull << 9));
}

uint64_t t74_target(void);
__asm__(".text\n"
	".globl t74_target\n"
	"t74_target:\n\t"
	"mov $0x74, %eax\n\t"
	"ret\n");

TEST(dr_exec)
{
	struct catch c;
	uint64_t dr6;
	volatile uint64_t v = 0;

	set_dr0_dr7((uint64_t)t74_target, DR7_L0); /* R/W0 00, LEN0 00: an instruction */
	if (CATCH(&c))
		v = t74_target();
	catch_disarm();
	dr6 = dr6_then_clear();
	CHECK(c.caught, "no #DB at the breakpointed instruction (it returned 0x%lx)", v);
	CHECK_EQ("the #DB's vector", VEC_DB, c.vector);
	CHECK_EQ("the #DB's RIP: the instruction, not after it", (uint64_t)t74_target, c.rip);
	CHECK_EQ("RF in the #DB's frame", 0, c.frame.rflags & RFLAGS_RF_BIT);
	CHECK_EQ("DR6 B0", DR6_B0, dr6 & DR6_B0);
}

/*
 * A locked read-modify-write and a rep movsq onto watched page-table
 * entries: under --shadow-unsync 0 shadow mode emulates both (a
 * write-protected table), and each must report its hit as a CPU may.
 * For the string that is a range (SDM Vol. 3A §17.3.1.2): after the
 * iteration that wrote the watched entry, or on P6 and later after the one
 * after it, RIP on the string and RCX counting the rest; QEMU's TCG (the
 * nested rig's CPU) reports it after the last. Whichever, RCX must agree
 * with the entries written. Entries 1-3 are not present (the values are
 * ignored bits), so nothing is mapped.
 */
void t74_rep_movsq(void);
__asm__(".text\n"
	".globl t74_rep_movsq\n"
	"t74_rep_movsq:\n\t"
	"rep movsq\n\t"
	"ret\n");
#define T74_REP_MOVSQ_LEN 3 /* f3 48 a5 */

TEST(dr_data_pte_rmw_string)
{
	static const uint64_t none[3] = { 1ull << 9, 2ull << 9, 3ull << 9 };
	uint64_t src[4], *pte, dr6, left, rip_want;
	struct catch c;

	pte = window_pte(0xd8);
	set_dr0_dr7((uint64_t)pte, DR7_L0 | DR7_RW0_WRITE | DR7_LEN0_8);
	if (CATCH(&c))
		__asm__ volatile("lock btsq $9, %0" : "+m"(*pte));
	catch_disarm();
	dr6 = dr6_then_clear();
	CHECK(c.caught, "no #DB for lock bts on the watched PTE");
	CHECK_EQ("DR6 B0 after lock bts", DR6_B0, dr6 & DR6_B0);
	CHECK_EQ("the PTE's bit 9, set", 1ull << 9, *pte & (1ull << 9));

	src[0] = *pte;
	for (int i = 0; i < 3; i++)
		src[i + 1] = none[i];
	set_dr0_dr7((uint64_t)&pte[1], DR7_L0 | DR7_RW0_WRITE | DR7_LEN0_8);
	if (CATCH(&c)) {
		uint64_t *s = src, *d = pte, n = 4;

		__asm__ volatile("call t74_rep_movsq" : "+S"(s), "+D"(d), "+c"(n) : : "memory");
	}
	catch_disarm();
	dr6 = dr6_then_clear();
	CHECK(c.caught, "no #DB for rep movsq over the watched PTE");
	CHECK_EQ("DR6 B0 after rep movsq", DR6_B0, dr6 & DR6_B0);
	left = c.frame.rcx;
	CHECK(left <= 2, "RCX %lu at the #DB: before the watched entry was written", left);
	rip_want = (uint64_t)t74_rep_movsq + (left ? 0 : T74_REP_MOVSQ_LEN);
	CHECK_EQ("the #DB's RIP: the string while RCX is not 0, else after it", rip_want, c.rip);
	for (uint64_t i = 1; i < 4; i++)
		CHECK_EQ("an entry, written as far as RCX says", i < 4 - left ? none[i - 1] : 0,
			 pte[i]);
	pte[1] = 0;
	pte[2] = 0;
	pte[3] = 0;
}

/*
 * General detect (SDM Vol. 3A §17.2.4): with DR7.GD set, a mov from a debug
 * register is a #DB fault before it, with DR6.BD; the CPU clears GD as it
 * delivers it, so the handler (and this test after it) may use them.
 */
#define DR7_GD_BIT (1ull << 13)
#define DR6_BD	   (1ull << 13)

uint64_t t74_read_dr0(void);
__asm__(".text\n"
	".globl t74_read_dr0\n"
	"t74_read_dr0:\n\t"
	"mov %dr0, %rax\n\t"
	"ret\n");

TEST(dr_general_detect)
{
	struct catch c;
	uint64_t dr6, dr7;
	volatile uint64_t v = 0;

	set_dr0_dr7(0, DR7_GD_BIT);
	if (CATCH(&c))
		v = t74_read_dr0();
	catch_disarm();
	__asm__ volatile("mov %%dr7, %0" : "=r"(dr7));
	dr6 = dr6_then_clear();
	CHECK(c.caught, "no #DB for mov from DR0 with DR7.GD set (it read 0x%lx)", v);
	CHECK_EQ("the #DB's vector", VEC_DB, c.vector);
	CHECK_EQ("the #DB's RIP: the mov, not after it", (uint64_t)t74_read_dr0, c.rip);
	CHECK_EQ("DR6.BD", DR6_BD, dr6 & DR6_BD);
	CHECK_EQ("DR7.GD after the #DB", 0, dr7 & DR7_GD_BIT);
}

/*
 * Instruction breakpoints inside a trap chain (vmm/shadow_mode.c item 7):
 * in shadow mode the first `mov %cr0` traps and the VMM chains what
 * follows in the same trap, skipping a nop without the emulator and
 * emulating the next `mov %cr0`. A breakpoint on either must fire as on
 * the CPU: before the instruction, RF clear in its frame.
 */
void t74_chain(void);
extern const char t74_chain_nop[], t74_chain_mov[];
__asm__(".text\n"
	".globl t74_chain, t74_chain_nop, t74_chain_mov\n"
	"t74_chain:\n\t"
	"mov %cr0, %rax\n"
	"t74_chain_nop:\n\t"
	"nop\n"
	"t74_chain_mov:\n\t"
	"mov %cr0, %rax\n\t"
	"ret\n");

TEST(dr_exec_in_chain)
{
	const char *const at[2] = { t74_chain_nop, t74_chain_mov };

	for (int i = 0; i < 2; i++) {
		struct catch c;
		uint64_t dr6;

		set_dr0_dr7((uint64_t)at[i], DR7_L0);
		if (CATCH(&c))
			__asm__ volatile("call t74_chain" ::: "rax", "memory");
		catch_disarm();
		dr6 = dr6_then_clear();
		CHECK(c.caught, "no #DB at breakpoint %d of the chain", i);
		CHECK_EQ("the #DB's vector", VEC_DB, c.vector);
		CHECK_EQ("the #DB's RIP: the instruction", (uint64_t)at[i], c.rip);
		CHECK_EQ("RF in the #DB's frame", 0, c.frame.rflags & RFLAGS_RF_BIT);
		CHECK_EQ("DR6 B0", DR6_B0, dr6 & DR6_B0);
	}
}
