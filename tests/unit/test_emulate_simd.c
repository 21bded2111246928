// SPDX-License-Identifier: MIT
/*
 * Unit tests of hw mode's SIMD fallback (decode/emulate_simd.c): SSE, AVX
 * and MMX instructions run on the host CPU with the guest's registers and
 * vector state, on the fixture of tests/unit/emu_env.h (XCR0 = 7, AVX at
 * offset 576 of the fake vCPU's XSAVE area; XMMn at 160 + 16n).
 */
#include <cpuid.h>
#include <signal.h>

#include "emu_env.h"
#include "emu_host_xstate.h"

#include "decode/emulate_internal.h"

#define HANDLER_NM  0x401500ull
#define HANDLER_XM  0x401700ull
#define FLAGS_ARITH (RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF)

static u8 *xmm(struct env *env, unsigned n)
{
	return env->xstate_vcpu + 160 + 16 * n;
}

static u8 *ymm_high(struct env *env, unsigned n)
{
	return env->xstate_vcpu + XSTATE_AVX_OFF + 16 * n;
}

static u8 *data(struct env *env, unsigned off)
{
	return env->ram + DATA_GPA + off;
}

static u64 xstate_bv(struct env *env)
{
	u64 v;

	memcpy(&v, env->xstate_vcpu + 512, sizeof(v));
	return v;
}

static bool all_bytes_equal(const u8 *p, u8 v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* The leaf PTE that maps `va` (the fixture maps 4 KiB pages). */
static u64 *pte_of(struct env *env, u64 va)
{
	u64 table = env->cpu.cr3;

	for (unsigned level = 4; level > 1; level--) {
		u64 e = ((u64 *)(env->ram + table))[(va >> (12 + 9 * (level - 1))) & 511];

		table = e & PTE_ADDR_MASK(TEST_MAXPHYADDR);
	}
	return (u64 *)(env->ram + table) + ((va >> 12) & 511);
}

static void fill(u8 *p, unsigned n, u8 first)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (u8)(first + i);
}

static int setup_sse(void **state)
{
	struct env *env;
	int r = setup(state);

	env = *state;
	env->cpu.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
	return r;
}

/* ---- loads and stores -------------------------------------------------------- */

static void test_movdqu_load_unaligned(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 before[32];

	fill(data(env, 3), 16, 0xa0);
	memcpy(before, data(env, 0), sizeof(before));
	env->cpu.gpr[EMU_RDI] = DATA_VA + 3;
	/* movdqu xmm1, [rdi] */
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x6f, 0x0f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "movdqu");
	assert_memory_equal(xmm(env, 1), data(env, 3), 16);
	assert_memory_equal(data(env, 0), before, sizeof(before)); /* a load stores nothing */
	assert_int_equal(env->cpu.rip, CODE_VA + 4);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 3);
	assert_int_equal(env->xstate_puts, 1);
	assert_true(xstate_bv(env) & 2);

	/* A legacy SSE write keeps YMM1's upper half, and AVX in use, as they were. */
	memset(ymm_high(env, 1), 0x5a, 16);
	memcpy(env->xstate_vcpu + 512, &(u64){ 7 }, 8);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x6f, 0x0f), EMU_DONE);
	assert_true(all_bytes_equal(ymm_high(env, 1), 0x5a, 16));
	assert_int_equal(xstate_bv(env) & 7, 7);
}

static void test_movdqu_store_disp8(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	memset(data(env, 0), 0x55, 64);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 1;
	/* movdqu [rdi+8], xmm2 */
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x7f, 0x57, 0x08), EMU_DONE);
	assert_memory_equal(data(env, 9), xmm(env, 2), 16);
	assert_int_equal(data(env, 8)[0], 0x55);
	assert_int_equal(data(env, 25)[0], 0x55);
	assert_int_equal(env->cpu.rip, CODE_VA + 5);
}

/*
 * A store of the bytes already there is still a store: the page's D bit is
 * set (capstone 4.0.2 calls the operand a read; operand 0 says otherwise).
 */
static void test_unchanged_store_sets_dirty(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 *pte = pte_of(env, DATA_VA);

	*pte &= ~(PTE_D | PTE_A);
	memcpy(data(env, 0x10), xmm(env, 2), 8);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x8;
	/* movq [rdi+8], xmm2 */
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xd6, 0x57, 0x08), EMU_DONE);
	assert_string_equal(rep.mnemonic, "movq");
	assert_true(*pte & PTE_D);

	/* A load leaves D clear */
	*pte &= ~(PTE_D | PTE_A);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x6f, 0x0f), EMU_DONE);
	assert_true(*pte & PTE_A);
	assert_false(*pte & PTE_D);
}

/* The buffer keeps the guest address's alignment: movdqa faults exactly when the guest's would. */
static void test_movdqa_alignment(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	fill(data(env, 0x40), 16, 1);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x40;
	/* movdqa xmm0, [rdi] */
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x6f, 0x07), EMU_DONE);
	assert_memory_equal(xmm(env, 0), data(env, 0x40), 16);

	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x48;
	memset(xmm(env, 0), 0x77, 16);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x6f, 0x07), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
	assert_true(all_bytes_equal(xmm(env, 0), 0x77, 16));
}

static void test_vmovdqu_ymm_load(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	fill(data(env, 0x105), 32, 0x10);
	env->cpu.gpr[EMU_RSI] = DATA_VA + 0x105;
	/* vmovdqu ymm1, [rsi] */
	assert_int_equal(RUN(env, &rep, 0xc5, 0xfe, 0x6f, 0x0e), EMU_DONE);
	assert_string_equal(rep.mnemonic, "vmovdqu");
	assert_memory_equal(xmm(env, 1), data(env, 0x105), 16);
	assert_memory_equal(ymm_high(env, 1), data(env, 0x115), 16);
	assert_int_equal(xstate_bv(env) & 4, 4);
}

/* VEX.X and VEX.B extend index and base: r8 + r9*2 + 0x10. */
static void test_vmovdqu_ymm_store_extended_regs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	fill(xmm(env, 0), 16, 0x80);
	fill(ymm_high(env, 0), 16, 0x90);
	memcpy(env->xstate_vcpu + 512, &(u64){ 7 }, 8);
	env->cpu.gpr[EMU_R8] = DATA_VA + 0x200;
	env->cpu.gpr[EMU_R9] = 0x20;
	/* vmovdqu [r8+r9*2+0x10], ymm0 */
	assert_int_equal(RUN(env, &rep, 0xc4, 0x81, 0x7e, 0x7f, 0x44, 0x48, 0x10), EMU_DONE);
	assert_memory_equal(data(env, 0x250), xmm(env, 0), 16);
	assert_memory_equal(data(env, 0x260), ymm_high(env, 0), 16);
	assert_int_equal(env->cpu.gpr[EMU_R8], DATA_VA + 0x200);
	assert_int_equal(env->cpu.rip, CODE_VA + 7);
}

/* The rewritten operand must not use a register the instruction reads (rsi, rdi here). */
static void test_base_and_index_in_use(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	fill(data(env, 0x333), 16, 0x42);
	env->cpu.gpr[EMU_RSI] = DATA_VA + 0x300;
	env->cpu.gpr[EMU_RDI] = 0x33;
	env->cpu.gpr[EMU_RBX] = 0x1234;
	/* movdqu xmm0, [rsi+rdi] */
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x6f, 0x04, 0x3e), EMU_DONE);
	assert_memory_equal(xmm(env, 0), data(env, 0x333), 16);
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0x1234);
	assert_int_equal(env->cpu.gpr[EMU_RSI], DATA_VA + 0x300);
}

static void test_rip_relative_and_gs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* movdqu xmm6, [rip+0x10]: code bytes at CODE_VA + 8 + 0x10 */
	fill(env->ram + CODE_GPA + 0x18, 16, 0x61);
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x6f, 0x35, 0x10, 0x00, 0x00, 0x00), EMU_DONE);
	assert_memory_equal(xmm(env, 6), env->ram + CODE_GPA + 0x18, 16);

	/* movdqu xmm7, gs:[rax+0x20] */
	env->cpu.rip = CODE_VA;
	env->cpu.gs_base = DATA_VA + 0x400;
	env->cpu.gpr[EMU_RAX] = 0x10;
	fill(data(env, 0x430), 16, 0x71);
	assert_int_equal(RUN(env, &rep, 0x65, 0xf3, 0x0f, 0x6f, 0x78, 0x20), EMU_DONE);
	assert_memory_equal(xmm(env, 7), data(env, 0x430), 16);
	assert_int_equal(env->cpu.rip, CODE_VA + 6);
}

/* An immediate after the ModRM survives the rewrite. */
static void test_pextrd_store_imm(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	memset(data(env, 0x500), 0xee, 8);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x502;
	/* pextrd [rdi], xmm1, 2 */
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x3a, 0x16, 0x0f, 0x02), EMU_DONE);
	assert_memory_equal(data(env, 0x502), xmm(env, 1) + 8, 4);
	assert_int_equal(data(env, 0x501)[0], 0xee);
	assert_int_equal(data(env, 0x506)[0], 0xee);
}

/* ---- registers and flags ---------------------------------------------------------- */

static void test_gpr_moves_and_pxor(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = 0xffffffff89abcdefull;
	/* movd xmm3, eax: zero-extended into the whole register */
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x6e, 0xd8), EMU_DONE);
	assert_int_equal(xmm(env, 3)[0], 0xef);
	assert_int_equal(xmm(env, 3)[3], 0x89);
	assert_true(all_bytes_equal(xmm(env, 3) + 4, 0, 12));

	/* movq rax, xmm4 */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x66, 0x48, 0x0f, 0x7e, 0xe0), EMU_DONE);
	assert_memory_equal(&env->cpu.gpr[EMU_RAX], xmm(env, 4), 8);

	/* pxor xmm5, xmm5 */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xef, 0xed), EMU_DONE);
	assert_true(all_bytes_equal(xmm(env, 5), 0, 16));
}

/* ptest sets ZF/CF from the operands and clears the other arithmetic flags; IF is untouched. */
static void test_ptest_flags(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	memset(xmm(env, 0), 0, 16);
	env->cpu.rflags |= RFLAGS_SF | RFLAGS_OF;
	/* ptest xmm0, xmm1: xmm0 AND xmm1 = 0 -> ZF = 1; xmm1 AND NOT xmm0 != 0 -> CF = 0 */
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0x17, 0xc1), EMU_DONE);
	assert_int_equal(env->cpu.rflags & FLAGS_ARITH, RFLAGS_ZF);
	assert_true(env->cpu.rflags & RFLAGS_IF);

	/* Flags an instruction does not write stay the guest's: movdqu leaves them. */
	env->cpu.rip = CODE_VA;
	env->cpu.rflags |= RFLAGS_CF | RFLAGS_SF;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x6f, 0x0f), EMU_DONE);
	assert_int_equal(env->cpu.rflags & FLAGS_ARITH, RFLAGS_ZF | RFLAGS_CF | RFLAGS_SF);
}

/* pcmpestri reads RAX/RDX and writes RCX: none of them may carry the rewritten operand. */
static void test_pcmpestri_implicit_regs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	memset(xmm(env, 0), 0, 16);
	memcpy(xmm(env, 0), "b", 1);
	memcpy(data(env, 0x600), "aaab............", 16);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x600;
	env->cpu.gpr[EMU_RAX] = 1;
	env->cpu.gpr[EMU_RDX] = 16;
	env->cpu.gpr[EMU_RCX] = 0xdead;
	/* pcmpestri xmm0, [rdi], 0x18... with 0x00: equal any, unsigned bytes, least index */
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x3a, 0x61, 0x07, 0x00), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 3);
	assert_true(env->cpu.rflags & RFLAGS_CF);
}

/* ---- faults ---------------------------------------------------------------------- */

static void test_store_page_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;
	u8 ro[16];

	/* A store to a read-only page: #PF (present, write), memory and xmm unchanged */
	memcpy(ro, env->ram + RO_GPA + 0x10, sizeof(ro));
	env->cpu.gpr[EMU_RDI] = RO_VA + 0x10 - 8;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x7f, 0x57, 0x08), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true,
			     PFERR_PRESENT | PFERR_WRITE);
	assert_memory_equal(env->ram + RO_GPA + 0x10, ro, sizeof(ro));
	assert_int_equal(env->xstate_puts, 0);

	/* A load from it is fine */
	env->cpu = before;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x6f, 0x0f), EMU_DONE);
	assert_false(rep.faulted);

	/* A store running into an unmapped page: #PF, nothing stored on the first page */
	env->cpu = before;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 2 * PAGE_SIZE - 8 - 8;
	memset(data(env, 2 * PAGE_SIZE - 8), 0x33, 8);
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0x7f, 0x57, 0x08), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->cpu.cr2, DATA_VA + 2 * PAGE_SIZE);
	assert_true(all_bytes_equal(data(env, 2 * PAGE_SIZE - 8), 0x33, 8));
}

static void test_control_register_checks(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	set_gate(env, X86_EXC_NM, HANDLER_NM, 0xe, 0, 0);
	/* CR0.TS: #NM */
	env->cpu.cr0 |= CR0_TS;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xef, 0xed), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_NM, HANDLER_NM, false, 0);

	/* CR4.OSFXSR = 0: legacy SSE is #UD; VEX does not depend on it */
	env->cpu = before;
	env->cpu.cr0 &= ~CR0_TS;
	env->cpu.cr4 &= ~CR4_OSFXSR;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xef, 0xed), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);

	/* CR4.OSXSAVE = 0: VEX is #UD */
	env->cpu = before;
	env->cpu.cr4 |= CR4_OSFXSR;
	env->cpu.cr4 &= ~CR4_OSXSAVE;
	before = env->cpu;
	env->cpu.gpr[EMU_RSI] = DATA_VA;
	before.gpr[EMU_RSI] = DATA_VA;
	assert_int_equal(RUN(env, &rep, 0xc5, 0xfe, 0x6f, 0x0e), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
	assert_int_equal(env->xstate_puts, 0);
}

/* An unmasked SIMD exception: #XM for the guest; the host's MXCSR is its own again. */
static void test_simd_exception(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;
	u32 mxcsr = 0x1f80 & ~(1u << 9); /* divide-by-zero unmasked */
	u32 host = host_mxcsr();
	float one = 1.0f;

	set_gate(env, X86_EXC_XM, HANDLER_XM, 0xe, 0, 0);
	memcpy(env->xstate_vcpu + 24, &mxcsr, 4);
	memset(xmm(env, 0), 0, 16);
	memcpy(xmm(env, 0), &one, 4);
	memset(xmm(env, 1), 0, 16);
	before = env->cpu;
	/* divps xmm0, xmm1 */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x5e, 0xc1), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_XM);
	assert_fault_at_cpl0(env, &before, X86_EXC_XM, HANDLER_XM, false, 0);
	assert_int_equal(host_mxcsr(), host);
	assert_memory_equal(xmm(env, 0), &one, 4);

	/* Without CR4.OSXMMEXCPT the same is #UD */
	env->cpu = before;
	env->cpu.cr4 &= ~CR4_OSXMMEXCPT;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x5e, 0xc1), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
}

/* The guest's MXCSR rounds the guest's arithmetic, never the host's. */
static void test_guest_mxcsr_is_guests(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u32 mxcsr = 0x1f80 | (3u << 13); /* round toward zero */
	u32 host = host_mxcsr();
	float a = 1.0f, b = 3.0f, q;
	volatile float ha = 1.0f, hb = 3.0f;

	memcpy(env->xstate_vcpu + 24, &mxcsr, 4);
	memcpy(xmm(env, 0), &a, 4);
	memcpy(xmm(env, 1), &b, 4);
	/* divps xmm0, xmm1: 1/3 rounded toward zero is one ulp below the nearest */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x5e, 0xc1), EMU_DONE);
	memcpy(&q, xmm(env, 0), 4);
	assert_true(q < ha / hb);
	assert_int_equal(host_mxcsr(), host);
}

static void test_refused(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* vpgatherdd: a vector index */
	assert_int_equal(RUN(env, &rep, 0xc4, 0xe2, 0x69, 0x90, 0x04, 0x8f), EMU_UNKNOWN);
	/* maskmovdqu: an implicit store at RDI */
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xf7, 0xc1), EMU_UNKNOWN);
	assert_int_equal(env->xstate_puts, 0);
	assert_int_equal(env->cpu.rip, CODE_VA);
}

/* prefetcht0 [UNMAPPED_VA]: no #PF, nothing at all (it never faults on hardware). */
static void test_prefetch_never_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x18, 0x0f), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);
	assert_int_equal(env->xstate_puts, 0);
}

/* kmovw k1, eax is VEX-encoded but AVX-512: #UD while the guest's XCR0 lacks the opmask. */
static void test_kmov_needs_opmask_state(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	assert_int_equal(RUN(env, &rep, 0xc5, 0xf8, 0x92, 0xc8), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
}

/* Without the VMM's xsave state (get_xstate) nothing SIMD is emulated. */
static void test_hw_mode_only(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->ops.get_xstate = NULL;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xef, 0xed), EMU_UNKNOWN);
}

/*
 * Shadow mode with the xsave state: a process's movdqa that trapped (on PVM
 * a misaligned one arrives as #UD, KVM's emulator having failed on it) runs
 * natively and raises what the CPU raises: #GP misaligned, nothing aligned.
 */
static void test_shadow_mode_movdqa(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_shadow(env);
	fill(data(env, 0x40), 16, 1);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x40;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x6f, 0x07), EMU_DONE);
	assert_false(rep.faulted);
	assert_memory_equal(xmm(env, 0), data(env, 0x40), 16);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x48;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x6f, 0x07), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
}

/* ---- AVX-512 (EVEX) ------------------------------------------------------------- */

static int setup_avx512(void **state)
{
	int r = setup_sse(state);

	use_host_xstate(*state, 0xe7);
	return r;
}

/* vmovdqu64 zmm0, [rdi+0x40]: disp8*N (N = 64), the register spread over three components. */
static void test_evex_zmm_load(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	NEED_AVX512();
	fill(data(env, 0x7c0), 64, 0x20);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x780;
	assert_int_equal(RUN(env, &rep, 0x62, 0xf1, 0xfe, 0x48, 0x6f, 0x47, 0x01), EMU_DONE);
	assert_string_equal(rep.mnemonic, "vmovdqu64");
	assert_memory_equal(host_xstate.vcpu + 160, data(env, 0x7c0), 16);
	assert_memory_equal(host_xstate.vcpu + host_xstate.off[2], data(env, 0x7d0), 16);
	assert_memory_equal(host_xstate.vcpu + host_xstate.off[6], data(env, 0x7e0),
			    32); /* ZMM_Hi256 of zmm0 */
}

/* vmovdqu32 [rdi+0x40]{k1}, ymm1 with k1 = 0x0f: four dwords stored, the rest untouched. */
static void test_evex_masked_store(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	NEED_AVX512();
	memset(data(env, 0x840), 0xcc, 32);
	fill(host_xstate.vcpu + 160 + 16, 16, 0x50);		    /* xmm1 */
	fill(host_xstate.vcpu + host_xstate.off[2] + 16, 16, 0x60); /* ymm1's upper half */
	host_xstate.vcpu[host_xstate.off[5] + 8] = 0x0f;	    /* k1 */
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x800;
	assert_int_equal(RUN(env, &rep, 0x62, 0xf1, 0x7e, 0x29, 0x7f, 0x4f, 0x02), EMU_DONE);
	assert_memory_equal(data(env, 0x840), host_xstate.vcpu + 176, 16);
	assert_true(all_bytes_equal(data(env, 0x850), 0xcc, 16));
}

/*
 * vmovdqu64 zmm17, [r8+0x40]: EVEX.B cleared in the copy; zmm17 is in
 * Hi16_ZMM. (An index in r8-r15, EVEX.X, is beyond capstone 4.0.2.)
 */
static void test_evex_extended_regs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	NEED_AVX512();
	fill(data(env, 0x940), 64, 0x30);
	env->cpu.gpr[EMU_R8] = DATA_VA + 0x900;
	assert_int_equal(RUN(env, &rep, 0x62, 0xc1, 0xfe, 0x48, 0x6f, 0x48, 0x01), EMU_DONE);
	assert_memory_equal(host_xstate.vcpu + host_xstate.off[7] + 64, data(env, 0x940), 64);
	assert_int_equal(env->cpu.gpr[EMU_R8], DATA_VA + 0x900);
}

/* EVEX with AVX-512 state disabled in the guest's XCR0: #UD. */
static void test_evex_needs_xcr0(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	NEED_AVX512();
	host_xstate.xcr0 = 0x7;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x62, 0xf1, 0xfe, 0x48, 0x6f, 0x47, 0x01), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
}

/* ---- bytes capstone 4.0.2 cannot decode (register-only VEX/EVEX) -------------- */

static u32 ror32(u32 v, unsigned n)
{
	return (v >> n) | (v << (32 - n));
}

/* vprord xmm3, xmm3, 0x10 (EVEX.128, an imm8 in map 0F): every dword rotated by 16. */
static void test_raw_vprord(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u32 in[4] = { 0x11223344, 0x55667788, 0x99aabbcc, 0xddeeff00 }, out[4];

	NEED_AVX512();
	memcpy(host_xstate.vcpu + 160 + 16 * 3, in, 16);
	assert_int_equal(RUN(env, &rep, 0x62, 0xf1, 0x65, 0x08, 0x72, 0xc3, 0x10), EMU_DONE);
	assert_string_equal(rep.mnemonic, "evex.map1.72");
	memcpy(out, host_xstate.vcpu + 160 + 16 * 3, 16);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(out[i], ror32(in[i], 16));
	assert_int_equal(env->cpu.rip, CODE_VA + 7);
}

/* vpternlogd zmm3, zmm2, zmm1, 0x96 (map 0F3A): zmm3 ^= zmm2 ^ zmm1, all 64 bytes. */
static void test_raw_vpternlogd(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 want[16];

	NEED_AVX512();
	fill(host_xstate.vcpu + 160 + 16, 16, 0x01);			  /* xmm1 */
	fill(host_xstate.vcpu + 160 + 32, 16, 0x40);			  /* xmm2 */
	fill(host_xstate.vcpu + 160 + 48, 16, 0x90);			  /* xmm3 */
	memset(host_xstate.vcpu + host_xstate.off[6] + 32 * 3, 0x77, 32); /* zmm3's bits 511:256 */
	memset(host_xstate.vcpu + host_xstate.off[6] + 32 * 1, 0x0f, 32); /* zmm1's */
	for (unsigned i = 0; i < 16; i++)
		want[i] = (u8)((0x01 + i) ^ (0x40 + i) ^ (0x90 + i));
	assert_int_equal(RUN(env, &rep, 0x62, 0xf3, 0x6d, 0x48, 0x25, 0xd9, 0x96), EMU_DONE);
	assert_memory_equal(host_xstate.vcpu + 160 + 48, want, 16);
	assert_true(
		all_bytes_equal(host_xstate.vcpu + host_xstate.off[6] + 32 * 3, 0x77 ^ 0x0f, 32));
	assert_int_equal(env->cpu.rip, CODE_VA + 7);
}

/* Undecodable with a memory operand (vbroadcasti128 ymm1, [rdi]): not run. */
static void test_raw_memory_refused(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_int_equal(emu_simd_raw_len((const u8[]){ 0xc4, 0xe2, 0x7d, 0x5a, 0x0f }, 5), 0);
	assert_int_equal(RUN(env, &rep, 0xc4, 0xe2, 0x7d, 0x5a, 0x0f), EMU_UNKNOWN);
	assert_int_equal(env->cpu.rip, CODE_VA);
}

/* The length decoder: imm8 or not, truncated bytes, and no RSP where a GPR is taken. */
static void test_raw_length(void **state)
{
	(void)state;
	/* vpermi2d ymm8, ymm6, ymm7: map 0F38, no imm8 */
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0x62, 0x72, 0x4d, 0x28, 0x76, 0xc7 }, 6),
			 6);
	/* vprord: map 0F opcode 72 has an imm8; one byte short is not enough */
	assert_int_equal(
		emu_simd_raw_len((const u8[]){ 0x62, 0xf1, 0x65, 0x08, 0x72, 0xc3, 0x10 }, 7), 7);
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0x62, 0xf1, 0x65, 0x08, 0x72, 0xc3 }, 6),
			 0);
	/* vpbroadcastd xmm1, eax takes a GPR: fine; from esp: refused */
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0x62, 0xf2, 0x7d, 0x08, 0x7c, 0xc8 }, 6),
			 6);
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0x62, 0xf2, 0x7d, 0x08, 0x7c, 0xcc }, 6),
			 0);
	/* ... also with EVEX.X set, which a GPR operand ignores */
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0x62, 0xb2, 0x7d, 0x08, 0x7c, 0xcc }, 6),
			 0);
	/* vmaskmovdqu stores at [RDI] although its ModRM names registers: never raw */
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0xc5, 0xf9, 0xf7, 0xc1 }, 4), 0);
	/* a legacy prefix before VEX, and EVEX map 5 (FP16): not handled */
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0x66, 0xc5, 0xf9, 0xef, 0xc0 }, 5), 0);
	assert_int_equal(emu_simd_raw_len((const u8[]){ 0x62, 0xf5, 0x7c, 0x48, 0x58, 0xc1 }, 6),
			 0);
}

/* ---- the fault handlers ------------------------------------------------------------- */

static sigjmp_buf theirs_jmp;
static volatile int theirs_sig;

static void their_handler(int sig)
{
	theirs_sig = sig;
	siglongjmp(theirs_jmp, 1);
}

/*
 * With the handlers kept, a fault outside a step goes on to the handler
 * that was there before; a fault inside a step is still the guest's.
 */
static void test_kept_handlers_chain(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = their_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	assert_int_equal(sigaction(SIGILL, &sa, &old), 0);
	emu_simd_keep_handlers();
	emu_simd_keep_handlers(); /* twice: still one link to theirs */

	/* divps with divide-by-zero unmasked: #XM inside a step */
	memcpy(env->xstate_vcpu + 24, &(u32){ 0x1f80 & ~(1u << 9) }, 4);
	memset(xmm(env, 1), 0, 16);
	set_gate(env, X86_EXC_XM, 0x401700ull, 0xe, 0, 0);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x5e, 0xc1), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_XM);

	/* a SIGILL of our own, outside: theirs gets it */
	theirs_sig = 0;
	if (!sigsetjmp(theirs_jmp, 1))
		raise(SIGILL);
	assert_int_equal(theirs_sig, SIGILL);

	/* theirs with SA_RESETHAND (vmm/console.c's): the default action is back when it runs */
	sa.sa_flags = SA_NODEFER | SA_RESETHAND;
	assert_int_equal(sigaction(SIGILL, &sa, NULL), 0);
	emu_simd_keep_handlers();
	theirs_sig = 0;
	if (!sigsetjmp(theirs_jmp, 1))
		raise(SIGILL);
	assert_int_equal(theirs_sig, SIGILL);
	assert_int_equal(sigaction(SIGILL, NULL, &sa), 0);
	assert_ptr_equal(sa.sa_handler, SIG_DFL);
	sigaction(SIGILL, &old, NULL);
}

#define S(f) cmocka_unit_test_setup_teardown(f, setup_sse, teardown)
#define Z(f) cmocka_unit_test_setup_teardown(f, setup_avx512, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		S(test_movdqu_load_unaligned),
		S(test_movdqu_store_disp8),
		S(test_unchanged_store_sets_dirty),
		S(test_movdqa_alignment),
		S(test_vmovdqu_ymm_load),
		S(test_vmovdqu_ymm_store_extended_regs),
		S(test_base_and_index_in_use),
		S(test_rip_relative_and_gs),
		S(test_pextrd_store_imm),
		S(test_gpr_moves_and_pxor),
		S(test_ptest_flags),
		S(test_pcmpestri_implicit_regs),
		S(test_store_page_faults),
		S(test_control_register_checks),
		S(test_simd_exception),
		S(test_guest_mxcsr_is_guests),
		S(test_refused),
		S(test_hw_mode_only),
		S(test_shadow_mode_movdqa),
		S(test_prefetch_never_faults),
		S(test_kmov_needs_opmask_state),
		Z(test_evex_zmm_load),
		Z(test_evex_masked_store),
		Z(test_evex_extended_regs),
		Z(test_evex_needs_xcr0),
		Z(test_raw_vprord),
		Z(test_raw_vpternlogd),
		S(test_raw_memory_refused),
		S(test_raw_length),
		S(test_kept_handlers_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
