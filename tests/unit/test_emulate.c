// SPDX-License-Identifier: MIT
/*
 * Unit tests for the VMM's instruction emulator (decode/emulate.c).
 *
 * hw mode (EMU_MODE_HW): the fixture is tests/unit/emu_env.h; shadow mode
 * is tested in test_emulate_priv.c, test_emulate_sys.c, test_emulate_mem.c.
 *
 * Expected values follow the Intel SDM: Vol. 2 for each instruction, Vol. 3A
 * §6.12-§6.15 for delivery and §4.7 for page-fault error codes.
 */
#include "emu_env.h"

/* ---- clac / stac ----------------------------------------------------------- */

static void test_clac_stac(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags |= RFLAGS_AC | RFLAGS_RF;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xca), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clac");
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF); /* AC and RF cleared */
	assert_int_equal(env->cpu.rip, CODE_VA + 3);
	assert_true(env->cpu.dirty & EMU_DIRTY_REGS);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xcb), EMU_DONE);
	assert_string_equal(rep.mnemonic, "stac");
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_AC);
	assert_int_equal(env->cpu.rip, CODE_VA + 6);
	assert_int_equal(env->delivered, 0);
}

/* clac at CPL3: #UD, delivered with a stack switch to TSS.RSP0. */
static void test_clac_user_ud(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	to_user(env);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xca), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.cs.dpl, 0);
	assert_int_equal(env->cpu.ss.sel, 0); /* null SS with RPL = new CPL */
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSTACK_VA + PAGE_SIZE - 40);
	assert_frame(env, false, 0, CODE_VA, SEL_UCODE, before.rflags | RFLAGS_RF,
		     before.gpr[EMU_RSP], SEL_UDATA);
	assert_true(env->cpu.dirty & EMU_DIRTY_SREGS);
}

/*
 * LOCK on an instruction that does not take it is #UD (SDM Vol. 2A LOCK).
 * Capstone refuses those byte strings (lock movbe, lock clac); the emulator
 * tells them from bytes it does not know by decoding them without the LOCK.
 * Bytes that do not decode either way stay unknown.
 */
static void test_lock_prefix_refused(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0x38, 0xf0, 0x07), EMU_DONE);
	assert_string_equal(rep.mnemonic, "(bad)");
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
	env->cpu = before;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0x01, 0xca), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
	env->cpu = before;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0x0b), EMU_DONE); /* lock ud2 */
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
	env->cpu = before;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0x04), EMU_UNKNOWN); /* 0f 04: none */
	assert_memory_equal(&env->cpu, &before, sizeof(before));
}

/* ---- int3 / int n ---------------------------------------------------------- */

static void test_int3(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.rflags |= RFLAGS_TF;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcc), EMU_DONE);
	assert_string_equal(rep.mnemonic, "int3");
	assert_false(rep.faulted);
	assert_int_equal(env->last_event.kind, EMU_EV_SOFT_INT);
	assert_int_equal(env->cpu.rip, HANDLER_BP);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.gpr[EMU_RSP], (before.gpr[EMU_RSP] & ~15ull) - 40);
	/* Trap gate: IF kept; TF cleared. The frame holds the next RIP. */
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF);
	assert_frame(env, false, 0, CODE_VA + 1, SEL_KCODE, before.rflags, before.gpr[EMU_RSP],
		     SEL_KDATA);
}

/* int $0x80 through an interrupt gate with IST1: the IST stack, IF cleared. */
static void test_int_n_ist(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	assert_int_equal(RUN(env, &rep, 0xcd, 0x80), EMU_DONE);
	assert_string_equal(rep.mnemonic, "int");
	assert_int_equal(env->last_event.vector, 0x80);
	assert_int_equal(env->cpu.rip, HANDLER_80);
	assert_int_equal(env->cpu.gpr[EMU_RSP], IST_VA + PAGE_SIZE - 40);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA); /* no privilege change: SS kept */
	assert_frame(env, false, 0, CODE_VA + 2, SEL_KCODE, before.rflags, before.gpr[EMU_RSP],
		     SEL_KDATA);
}

/* int $0x80 from CPL3 (DPL3 gate): allowed, CPL0 handler, user SS:RSP saved. */
static void test_int_n_from_user(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	to_user(env);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcd, 0x80), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, HANDLER_80);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_frame(env, false, 0, CODE_VA + 2, SEL_UCODE, before.rflags, before.gpr[EMU_RSP],
		     SEL_UDATA);
}

/* int $0x81 from CPL3 through a DPL0 gate: #GP(0x81 * 8 + 2), RIP of the int. */
static void test_int_n_dpl_violation(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	to_user(env);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcd, 0x81), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_GP);
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSTACK_VA + PAGE_SIZE - 48);
	assert_frame(env, true, 0x81 * 8 + 2, CODE_VA, SEL_UCODE, before.rflags | RFLAGS_RF,
		     before.gpr[EMU_RSP], SEL_UDATA);
}

/* Point gate `vec`'s selector at `sel`. */
static void set_gate_sel(struct env *env, unsigned vec, u16 sel)
{
	u64 *g = (u64 *)(env->ram + IDT_GPA) + vec * 2;

	g[0] = (g[0] & ~(0xffffull << 16)) | (u64)sel << 16;
}

/*
 * The code segment a gate names (SDM Vol. 3A §6.12.1.1, decode/emulate_event.c
 * emu_gate_target): not a code segment, 32-bit code in IA-32e mode, or a DPL
 * above CPL is #GP(sel); not present #NP(sel); EXT is 0 for int n.
 */
static void test_int_n_gate_target_checks(void **state)
{
	static const struct {
		u64 desc;
		u8 vector;
	} cases[] = {
		{ GDT_DATA_DPL0, X86_EXC_GP },
		{ 0x00cf9a000000ffffull, X86_EXC_GP },		 /* 32-bit code */
		{ GDT_CODE64_DPL3, X86_EXC_GP },		 /* DPL 3 > CPL 0 */
		{ GDT_CODE64_DPL0 & ~(1ull << 47), X86_EXC_NP }, /* not present */
	};
	struct env *env = *state;
	u64 *gdt = (u64 *)(env->ram + GDT_GPA);
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	set_gate(env, X86_EXC_NP, HANDLER_GP + 0x80, 0xe, 0, 0);
	set_gate_sel(env, 0x81, 0x38);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		env->cpu = before;
		gdt[7] = cases[i].desc;
		assert_int_equal(RUN(env, &rep, 0xcd, 0x81), EMU_DONE);
		assert_int_equal(env->cpu.rip,
				 cases[i].vector == X86_EXC_GP ? HANDLER_GP : HANDLER_GP + 0x80);
		assert_fault_at_cpl0(env, &before, cases[i].vector, env->cpu.rip, true, 0x38);
	}
}

/* A conforming code segment keeps the CPL: from CPL3, no stack switch. */
static void test_int_n_conforming_target(void **state)
{
	struct env *env = *state;
	u64 *gdt = (u64 *)(env->ram + GDT_GPA);
	struct emu_report rep;

	gdt[7] = 0x00af9e000000ffffull; /* 64-bit code, conforming, DPL0 */
	set_gate(env, 0x81, HANDLER_81, 0xe, 3, 0);
	set_gate_sel(env, 0x81, 0x38);
	to_user(env);
	assert_int_equal(RUN(env, &rep, 0xcd, 0x81), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_81);
	assert_int_equal(env->cpu.cs.sel, 0x3b);
	assert_int_equal(env->cpu.ss.sel, SEL_UDATA);
	/* The frame is on the user's own stack. */
	assert_int_equal(env->cpu.gpr[EMU_RSP], ((STACK_VA + PAGE_SIZE - 8) & ~15ull) - 40);
}

/* A vector beyond the IDT limit: #GP(vector * 8 + 2). */
static void test_int_n_beyond_idt_limit(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.idt_limit = 0x80 * 16 - 1;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcd, 0x80), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0x80 * 8 + 2);
}

/* int3 on an unmapped stack: #PF, then #PF delivering it (#DF), then a triple fault. */
static void test_int3_triple_fault(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RSP] = UNMAPPED_VA + 0x100;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcc), EMU_TRIPLE_FAULT);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
}

/* ---- xgetbv ---------------------------------------------------------------- */

static void test_xgetbv(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RAX] = env->cpu.gpr[EMU_RDX] = ~0ull;
	env->cpu.gpr[EMU_RCX] = 0xffffffff00000000ull; /* ECX = 0 */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd0), EMU_DONE);
	assert_string_equal(rep.mnemonic, "xgetbv");
	assert_int_equal(env->cpu.gpr[EMU_RAX], XCR0_VALUE);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);

	/* XCR1 does not exist here: #GP(0). */
	env->cpu.gpr[EMU_RCX] = 1;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd0), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

static void test_xgetbv_no_osxsave(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.cr4 &= ~CR4_OSXSAVE;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd0), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
	assert_int_equal(env->cpu.gpr[EMU_RAX], before.gpr[EMU_RAX]);
}

/* ---- movbe ----------------------------------------------------------------- */

static void test_movbe_loads(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x10, 0x0102030405060708ull);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x10;
	/* movbe rax, [rdi] */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x38, 0xf0, 0x07), EMU_DONE);
	assert_string_equal(rep.mnemonic, "movbe");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x0807060504030201ull);
	assert_int_equal(env->cpu.rip, CODE_VA + 5);
	/* movbe ecx, [rdi]: a 32-bit write zero-extends */
	env->cpu.gpr[EMU_RCX] = ~0ull;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf0, 0x0f), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x08070605ull);
	/* movbe dx, [rdi]: a 16-bit write merges */
	env->cpu.gpr[EMU_RDX] = 0xaaaaaaaaaaaaaaaaull;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0xf0, 0x17), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0xaaaaaaaaaaaa0807ull);
	/* movbe r9, [rip + 0x20]: RIP-relative from the next instruction */
	poke64(env, DATA_VA, 0x1122334455667788ull);
	env->cpu.rip = CODE_VA + 0x100;
	{
		u64 disp = DATA_VA - (CODE_VA + 0x100 + 9);

		assert_int_equal(RUN(env, &rep, 0x4c, 0x0f, 0x38, 0xf0, 0x0d, (u8)disp,
				     (u8)(disp >> 8), (u8)(disp >> 16), (u8)(disp >> 24)),
				 EMU_DONE);
	}
	assert_int_equal(env->cpu.gpr[EMU_R9], 0x8877665544332211ull);
}

static void test_movbe_stores(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x20, 0);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x20;
	env->cpu.gpr[EMU_RAX] = 0xffffffff11223344ull;
	/* movbe [rdi], eax */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_int_equal(peek64(env, DATA_VA + 0x20), 0x44332211ull);
	/* movbe [rdi + 0xffc], rax: straddles the two data pages */
	env->cpu.gpr[EMU_RAX] = 0x0102030405060708ull;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x38, 0xf1, 0x87, 0xdc, 0x0f, 0x00, 0x00),
			 EMU_DONE);
	assert_int_equal(peek64(env, DATA_VA + 0xffc), 0x0807060504030201ull);
	/* The store set D in the data PTE, as the CPU would. */
	assert_int_equal(env->delivered, 0);
}

/* movbe store to an unmapped page: #PF, W=1 P=0 U=0, CR2 = the address. */
static void test_movbe_pf_unmapped(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA + 0x18;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(env->cpu.cr2, UNMAPPED_VA + 0x18);
	assert_true(env->cpu.dirty & EMU_DIRTY_SREGS);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true, PFERR_WRITE);
}

/* movbe store from CPL3 to a read-only user page: #PF, P=1 W=1 U=1. */
static void test_movbe_pf_user_readonly(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.gpr[EMU_RDI] = RO_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
	assert_int_equal(env->cpu.cr2, RO_VA);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]),
			 PFERR_PRESENT | PFERR_WRITE | PFERR_USER);
}

/* A split store whose second page faults writes nothing. */
static void test_movbe_split_fault_writes_nothing(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	map_4k(env, UNMAPPED_VA - PAGE_SIZE, DATA_GPA + 2 * PAGE_SIZE, PTE_P | PTE_RW | PTE_NX);
	poke64(env, UNMAPPED_VA - 8, 0x5555555555555555ull);
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA - 4;
	env->cpu.gpr[EMU_RAX] = 0;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
	assert_int_equal(env->cpu.cr2, UNMAPPED_VA);
	assert_int_equal(peek64(env, UNMAPPED_VA - 8), 0x5555555555555555ull);
}

static void test_movbe_noncanonical_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = 0x0000800000000000ull;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf0, 0x07), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

/* ---- cmpxchg16b / cmpxchg8b ------------------------------------------------ */

static void test_cmpxchg16b_match(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x40, 0x1111);
	poke64(env, DATA_VA + 0x48, 0x2222);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x40;
	env->cpu.gpr[EMU_RAX] = 0x1111;
	env->cpu.gpr[EMU_RDX] = 0x2222;
	env->cpu.gpr[EMU_RBX] = 0x3333;
	env->cpu.gpr[EMU_RCX] = 0x4444;
	/* lock cmpxchg16b [rdi] */
	assert_int_equal(RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "cmpxchg16b");
	assert_true(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(peek64(env, DATA_VA + 0x40), 0x3333);
	assert_int_equal(peek64(env, DATA_VA + 0x48), 0x4444);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1111);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0x2222);
	assert_int_equal(env->cpu.rip, CODE_VA + 5);
}

static void test_cmpxchg16b_mismatch(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x40, 0x1111);
	poke64(env, DATA_VA + 0x48, 0x2222);
	env->cpu.rflags |= RFLAGS_ZF | RFLAGS_CF;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x40;
	env->cpu.gpr[EMU_RAX] = 0x1111;
	env->cpu.gpr[EMU_RDX] = 0x9999; /* high half differs */
	env->cpu.gpr[EMU_RBX] = 0x3333;
	env->cpu.gpr[EMU_RCX] = 0x4444;
	/* cmpxchg16b [rdi], no lock */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_false(env->cpu.rflags & RFLAGS_ZF);
	assert_true(env->cpu.rflags & RFLAGS_CF); /* only ZF changes */
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1111);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0x2222);
	assert_int_equal(peek64(env, DATA_VA + 0x40), 0x1111);
	assert_int_equal(peek64(env, DATA_VA + 0x48), 0x2222);
}

static void test_cmpxchg16b_misaligned_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x48;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

/* The operand always gets a write cycle: a read-only page faults even on mismatch. */
static void test_cmpxchg16b_readonly_pf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = RO_VA;
	env->cpu.gpr[EMU_RAX] = 1; /* memory holds 0: a mismatch */
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_int_equal(env->cpu.cr2, RO_VA);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true,
			     PFERR_PRESENT | PFERR_WRITE);
}

static void test_cmpxchg8b(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x60, 0x0000000200000001ull);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x60;
	env->cpu.gpr[EMU_RAX] = 0xffffffff00000001ull;
	env->cpu.gpr[EMU_RDX] = 0xffffffff00000002ull;
	env->cpu.gpr[EMU_RBX] = 3;
	env->cpu.gpr[EMU_RCX] = 4;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_true(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(peek64(env, DATA_VA + 0x60), 0x0000000400000003ull);
	/* Mismatch: EDX:EAX loaded, upper halves zeroed (32-bit register writes). */
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_false(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 3);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 4);
}

/* ---- cache-line flushes ---------------------------------------------------- */

static void test_cache_line_flushes(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xae, 0x37), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clwb");
	assert_int_equal(env->cpu.rip, CODE_VA + 4);
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xae, 0x3f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clflushopt");
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x3f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clflush");
	assert_int_equal(env->cpu.rip, CODE_VA + 11);
	assert_int_equal(env->delivered, 0);

	/* An unmapped line faults like a read: P=0, W=0. */
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xae, 0x37), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true, 0);
}

/* ---- invpcid --------------------------------------------------------------- */

static void put_desc(struct env *env, u64 pcid, u64 la)
{
	poke64(env, DATA_VA + 0x80, pcid);
	poke64(env, DATA_VA + 0x88, la);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x80;
}

static void test_invpcid(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	for (u64 type = 0; type <= 3; type++) {
		put_desc(env, 0, DATA_VA);
		env->cpu.gpr[EMU_RAX] = type;
		/* invpcid rax, [rdi] */
		assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0x82, 0x07), EMU_DONE);
		assert_string_equal(rep.mnemonic, "invpcid");
		assert_false(rep.faulted);
		assert_int_equal(env->flushes, type + 1);
		assert_int_equal(env->flush_type, type);
		assert_int_equal(env->flush_la, DATA_VA);
	}
	assert_int_equal(env->cpu.rip, CODE_VA + 4 * 5);
	/* With CR4.PCIDE a nonzero PCID is fine for type 1. */
	env->cpu.cr4 |= CR4_PCIDE;
	put_desc(env, 5, 0);
	env->cpu.gpr[EMU_RAX] = 1;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0x82, 0x07), EMU_DONE);
	assert_int_equal(env->flush_pcid, 5);
}

static void expect_invpcid_gp(struct env *env)
{
	struct emu_report rep;
	struct emu_cpu before = env->cpu;
	unsigned flushes = env->flushes;

	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0x82, 0x07), EMU_DONE);
	assert_int_equal(env->flushes, flushes);
	assert_int_equal(env->cpu.rip, HANDLER_GP);
	if (before.cs.dpl == 0)
		assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

static void test_invpcid_gp_cases(void **state)
{
	struct env *env = *state;

	put_desc(env, 0, 0);
	env->cpu.gpr[EMU_RAX] = 4; /* no such type */
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	put_desc(env, 1, 0); /* nonzero PCID with CR4.PCIDE = 0, type 0 */
	env->cpu.gpr[EMU_RAX] = 0;
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	put_desc(env, 0x1000, 0); /* descriptor bits 63:12 reserved */
	env->cpu.gpr[EMU_RAX] = 2;
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	put_desc(env, 0, 0x0000800000000000ull); /* type 0, non-canonical address */
	env->cpu.gpr[EMU_RAX] = 0;
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	to_user(env); /* CPL3 */
	put_desc(env, 0, 0);
	env->cpu.gpr[EMU_RAX] = 2;
	expect_invpcid_gp(env);
}

/* ---- what is not emulated -------------------------------------------------- */

static void test_unknown_instruction(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	/* hlt: KVM's business, not ours */
	assert_int_equal(RUN(env, &rep, 0xf4), EMU_UNKNOWN);
	assert_string_equal(rep.mnemonic, "hlt");
	assert_false(rep.delivery_refused); /* the instruction, not a delivery */
	assert_memory_equal(&env->cpu, &before, sizeof(before));
	/* xrstors [rdi]: supervisor state, deliberately not emulated */
	assert_int_equal(RUN(env, &rep, 0x0f, 0xc7, 0x1f), EMU_UNKNOWN);
	/* bytes that are no instruction */
	assert_int_equal(RUN(env, &rep, 0xff, 0xff), EMU_UNKNOWN);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
	assert_int_equal(env->delivered, 0);
}

/*
 * Compatibility mode is emulated (32-bit code: memtest86+'s ia32 image in
 * hw mode); 16-bit code is not.
 */
static void test_compat_mode_unknown(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.cs.l = 0;
	env->cpu.cs.db = 0;
	env->cpu.rflags |= RFLAGS_AC;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xca), EMU_UNKNOWN);
	assert_string_equal(rep.mnemonic, "");
	env->cpu.cs.db = 1;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xca), EMU_DONE); /* clac */
	assert_false(env->cpu.rflags & RFLAGS_AC);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);
}

/* MMIO operands stop the VM rather than being guessed at. */
static void test_operand_not_ram(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	map_4k(env, UNMAPPED_VA, 2 * GiB, PTE_P | PTE_RW);
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_UNHANDLED_MEM);
	assert_int_equal(env->cpu.rip, CODE_VA);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_int_n_gate_target_checks),
		T(test_int_n_conforming_target),
		T(test_clac_stac),
		T(test_clac_user_ud),
		T(test_lock_prefix_refused),
		T(test_int3),
		T(test_int_n_ist),
		T(test_int_n_from_user),
		T(test_int_n_dpl_violation),
		T(test_int_n_beyond_idt_limit),
		T(test_int3_triple_fault),
		T(test_xgetbv),
		T(test_xgetbv_no_osxsave),
		T(test_movbe_loads),
		T(test_movbe_stores),
		T(test_movbe_pf_unmapped),
		T(test_movbe_pf_user_readonly),
		T(test_movbe_split_fault_writes_nothing),
		T(test_movbe_noncanonical_gp),
		T(test_cmpxchg16b_match),
		T(test_cmpxchg16b_mismatch),
		T(test_cmpxchg16b_misaligned_gp),
		T(test_cmpxchg16b_readonly_pf),
		T(test_cmpxchg8b),
		T(test_cache_line_flushes),
		T(test_invpcid),
		T(test_invpcid_gp_cases),
		T(test_unknown_instruction),
		T(test_compat_mode_unknown),
		T(test_operand_not_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
