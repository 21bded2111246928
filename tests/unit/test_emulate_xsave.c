// SPDX-License-Identifier: MIT
/*
 * Unit tests of hw mode's popcnt, wait/fwait and xsave family
 * (decode/emulate_common.c, decode/emulate_xsave.c), on the fixture of
 * tests/unit/emu_env.h and its fake vCPU XSAVE state (XCR0 = 7: x87, SSE,
 * AVX at offset 576).
 */
#include <cpuid.h>

#include "emu_env.h"

#define HANDLER_NM 0x401500ull
#define HANDLER_MF 0x401600ull

#define FLAGS_ARITH (RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF)

static u8 *data(struct env *env, unsigned off)
{
	return env->ram + DATA_GPA + off;
}

static u64 rd64(const u8 *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void wr64(u8 *p, u64 v)
{
	memcpy(p, &v, sizeof(v));
}

static bool all_bytes(const u8 *p, u8 v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- popcnt ---------------------------------------------------------------- */

static void test_popcnt_64(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = 0xf0f0f0f000000001ull;
	env->cpu.rflags |= FLAGS_ARITH;
	/* popcnt rax, rdi */
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xb8, 0xc7), EMU_DONE);
	assert_string_equal(rep.mnemonic, "popcnt");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 17);
	assert_int_equal(env->cpu.rflags & FLAGS_ARITH, 0);
	assert_int_equal(env->cpu.rip, CODE_VA + 5);
	assert_true(env->cpu.dirty & EMU_DIRTY_REGS);
}

static void test_popcnt_32_16_zero(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* popcnt eax, edi: the upper half of RAX is cleared */
	env->cpu.gpr[EMU_RAX] = 0xdeadbeef00000000ull;
	env->cpu.gpr[EMU_RDI] = 0xffffffff00000007ull;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x0f, 0xb8, 0xc7), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 3);

	/* popcnt ax, di: bits 63:16 of RAX are kept */
	env->cpu.gpr[EMU_RAX] = 0x1111111111110000ull;
	env->cpu.gpr[EMU_RDI] = 0xffffffffffff8001ull;
	assert_int_equal(RUN(env, &rep, 0x66, 0xf3, 0x0f, 0xb8, 0xc7), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1111111111110002ull);
	assert_int_equal(env->cpu.rflags & RFLAGS_ZF, 0);

	/* A zero source: count 0 and ZF = 1, the other flags cleared */
	env->cpu.gpr[EMU_RDI] = 0;
	env->cpu.rflags |= FLAGS_ARITH & ~RFLAGS_ZF;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xb8, 0xc7), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0);
	assert_int_equal(env->cpu.rflags & FLAGS_ARITH, RFLAGS_ZF);
}

static void test_popcnt_memory(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	wr64(data(env, 0x40), 0x8000000000000003ull);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x40;
	/* popcnt rcx, [rdi] */
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xb8, 0x0f), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 3);

	/* An unmapped source: #PF, RCX unchanged */
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xb8, 0x0f), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 3);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true, 0);
}

/* ---- wait ------------------------------------------------------------------ */

static void test_wait_noop(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	/* CR0.TS alone does not fault wait (CR0.MP = 0) */
	env->cpu.cr0 |= CR0_TS;
	assert_int_equal(RUN(env, &rep, 0x9b), EMU_DONE);
	assert_string_equal(rep.mnemonic, "wait");
	assert_false(rep.faulted);
	assert_int_equal(env->delivered, 0);
	assert_int_equal(env->cpu.rip, before.rip + 1);
	assert_memory_equal(env->cpu.gpr, before.gpr, sizeof(before.gpr));
	assert_int_equal(env->xstate_puts, 0);
}

static void test_wait_nm(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	set_gate(env, X86_EXC_NM, HANDLER_NM, 0xe, 0, 0);
	env->cpu.cr0 |= CR0_MP | CR0_TS;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x9b), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_NM);
	assert_fault_at_cpl0(env, &before, X86_EXC_NM, HANDLER_NM, false, 0);
}

static void test_wait_pending_mf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	set_gate(env, X86_EXC_MF, HANDLER_MF, 0xe, 0, 0);
	env->xstate_vcpu[2] = 0x81; /* FSW: IE and ES */
	env->cpu.cr0 |= CR0_MP;	    /* MP without TS: no #NM */
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x9b), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_MF);
	assert_fault_at_cpl0(env, &before, X86_EXC_MF, HANDLER_MF, false, 0);

	/* CR0.NE = 0 (FERR# reporting) is not emulated: the VM stops */
	env->cpu = before;
	env->cpu.cr0 &= ~CR0_NE;
	assert_int_equal(RUN(env, &rep, 0x9b), EMU_UNKNOWN);
}

/* ---- xsave, xsaveopt, xsavec ----------------------------------------------- */

/* The guest's area at DATA_VA, 0xcc everywhere, with XSTATE_BV = `bv`. */
static void prepare_area(struct env *env, u64 bv)
{
	memset(data(env, 0), 0xcc, 2 * PAGE_SIZE);
	wr64(data(env, 512), bv);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
}

static void test_xsave_all(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	prepare_area(env, 0xf0f0f0f0f0f0f0f0ull);
	env->cpu.gpr[EMU_RAX] = 0xffffffff; /* & XCR0 = 7 */
	env->cpu.gpr[EMU_RDX] = 0xffffffff;
	/* xsave64 [rdi] */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_string_equal(rep.mnemonic, "xsave64");
	assert_int_equal(env->cpu.rip, CODE_VA + 4);
	/* x87, MXCSR/MXCSR_MASK and SSE as the vCPU has them */
	assert_memory_equal(data(env, 0), env->xstate_vcpu, 416);
	/* bytes 511:416 are not written */
	assert_true(all_bytes(data(env, 416), 0xcc, 96));
	/* XSTATE_BV: bits outside RFBM kept, RFBM bits = XINUSE (3) */
	assert_int_equal(rd64(data(env, 512)), 0xf0f0f0f0f0f0f0f3ull);
	/* the rest of the header is not written */
	assert_true(all_bytes(data(env, 520), 0xcc, 56));
	/* AVX (XINUSE[2] = 0): its initial values, all zero */
	assert_true(all_bytes(data(env, XSTATE_AVX_OFF), 0, XSTATE_AVX_LEN));
	assert_true(all_bytes(data(env, XSTATE_SIZE), 0xcc, 64));
	assert_int_equal(env->xstate_puts, 0);
}

static void test_xsave_partial_mask(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	prepare_area(env, 0);
	env->cpu.gpr[EMU_RAX] = 4; /* AVX only: MXCSR goes with it (RFBM[2]) */
	env->cpu.gpr[EMU_RDX] = 0;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_true(all_bytes(data(env, 0), 0xcc, 24));
	assert_memory_equal(data(env, 24), env->xstate_vcpu + 24, 8);
	assert_true(all_bytes(data(env, 32), 0xcc, 416 - 32));
	assert_int_equal(rd64(data(env, 512)), 0);
	assert_true(all_bytes(data(env, XSTATE_AVX_OFF), 0, XSTATE_AVX_LEN));

	/* Without REX.W and without x87 (RFBM[0] = 0) the form does not matter */
	prepare_area(env, 0);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = 2;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_string_equal(rep.mnemonic, "xsave");
	assert_memory_equal(data(env, 160), env->xstate_vcpu + 160, 256);
	assert_int_equal(rd64(data(env, 512)), 2);

	/* ... but with x87 it is the 32-bit layout: FIP, FDP as 32-bit offsets, FCS, FDS 0 */
	prepare_area(env, 0);
	wr64(env->xstate_vcpu + 16, 0x1122334455667788ull);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = 1;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_memory_equal(data(env, 0), env->xstate_vcpu, 8); /* FCW, FSW, FTW, FOP */
	assert_int_equal(rd64(data(env, 8)), 0x81000000);
	assert_int_equal(rd64(data(env, 16)), 0x55667788);
	assert_memory_equal(data(env, 32), env->xstate_vcpu + 32, 128); /* ST0-7 */
}

/*
 * xrstor without REX.W in shadow mode, from 32-bit code: a 32-bit guest
 * kernel's on a PVM host, whose KVM rejects it. FIP and FDP lose their
 * selectors; the rest loads as in 64-bit code.
 */
static void test_xrstor_32bit_shadow(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_shadow(env);
	env->cpu.cs = flat32(SEL_KCODE, true);
	prepare_area(env, 1);
	memset(data(env, 0), 0, 512);
	wr64(data(env, 0), 0x0000000000000040ull | 0x027f); /* FCW 027FH, FSW 0040H */
	wr64(data(env, 8), 0x00000010c0001234ull);	    /* FIP, FCS 10H */
	wr64(data(env, 16), 0x00000018c0005678ull);	    /* FDP, FDS 18H */
	memset(data(env, 32), 0x5a, 128);
	memset(data(env, 520), 0, 56);
	wr64(data(env, 512), 1);
	env->cpu.gpr[EMU_RAX] = 1;
	env->cpu.gpr[EMU_RDX] = 0;
	/* xrstor [edi] */
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(rd64(env->xstate_vcpu + 8), 0xc0001234);
	assert_int_equal(rd64(env->xstate_vcpu + 16), 0xc0005678);
	assert_memory_equal(env->xstate_vcpu, data(env, 0), 4);
	assert_true(all_bytes(env->xstate_vcpu + 32, 0x5a, 128));
	assert_int_equal(env->xstate_puts, 1);
	assert_int_equal(env->nwrites, 0);

	/* xsave [edi] back: through the shadow MMU's write path (ops->write), 32-bit layout */
	memset(data(env, 0), 0xcc, 1024);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_false(rep.faulted);
	assert_true(env->nwrites > 0);
	assert_int_equal(rd64(data(env, 8)), 0xc0001234);
	assert_int_equal(rd64(data(env, 16)), 0xc0005678);
	assert_true(all_bytes(data(env, 32), 0x5a, 128));
	assert_int_equal(rd64(data(env, 512)) & 1, 1);
	assert_true(all_bytes(data(env, 160), 0xcc, 256)); /* RFBM = 1: no SSE state */

	/* ldmxcsr [edi], stmxcsr [edi+4] (the 686-pae kernel's kernel_fpu_begin on PVM) */
	env->cpu.cr4 |= CR4_OSFXSR;
	wr64(data(env, 0), 0x1fa0);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x17), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(rd64(env->xstate_vcpu + 24) & 0xffffffff, 0x1fa0);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x5f, 0x04), EMU_DONE);
	assert_int_equal(rd64(data(env, 4)) & 0xffffffff, 0x1fa0);
}

static void test_xsave_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	set_gate(env, X86_EXC_NM, HANDLER_NM, 0xe, 0, 0);
	env->cpu.gpr[EMU_RAX] = 7;

	/* Not 64-byte aligned: #GP(0), nothing written */
	prepare_area(env, 0xccccccccccccccccull);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 32;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
	assert_true(all_bytes(data(env, 0), 0xcc, PAGE_SIZE));

	/* The area runs into an unmapped page: #PF, nothing written before it */
	env->cpu = before;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 2 * PAGE_SIZE - 512;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->cpu.cr2, DATA_VA + 2 * PAGE_SIZE);
	assert_true(all_bytes(data(env, PAGE_SIZE), 0xcc, PAGE_SIZE));

	/* A read-only area: #PF (write, present) */
	env->cpu = before;
	env->cpu.gpr[EMU_RDI] = RO_VA;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);

	/* CR0.TS: #NM */
	env->cpu = before;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.cr0 |= CR0_TS;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_NM);

	/* CR4.OSXSAVE = 0: #UD */
	env->cpu = before;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.cr4 &= ~CR4_OSXSAVE;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_true(all_bytes(data(env, 0), 0xcc, PAGE_SIZE));
}

static void test_xsaveopt_init_optimization(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	prepare_area(env, 0x4);
	env->cpu.gpr[EMU_RAX] = 7;
	/* xsaveopt64 [rdi]: AVX (XINUSE[2] = 0) is not written */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x37), EMU_DONE);
	assert_string_equal(rep.mnemonic, "xsaveopt64");
	assert_memory_equal(data(env, 0), env->xstate_vcpu, 416);
	assert_int_equal(rd64(data(env, 512)), 3);
	assert_true(all_bytes(data(env, XSTATE_AVX_OFF), 0xcc, XSTATE_AVX_LEN));
}

static void test_xsavec(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* XINUSE = 5 (x87, AVX): SSE is skipped but MXCSR is initial, so not saved either */
	wr64(env->xstate_vcpu + 512, 5);
	memset(env->xstate_vcpu + XSTATE_AVX_OFF, 0x5a, XSTATE_AVX_LEN);
	prepare_area(env, 0);
	env->cpu.gpr[EMU_RAX] = 7;
	/* xsavec64 [rdi] */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0x27), EMU_DONE);
	assert_string_equal(rep.mnemonic, "xsavec64");
	assert_memory_equal(data(env, 0), env->xstate_vcpu, 24);
	assert_true(all_bytes(data(env, 24), 0xcc, 8));
	assert_memory_equal(data(env, 32), env->xstate_vcpu + 32, 128);
	assert_true(all_bytes(data(env, 160), 0xcc, 256));
	assert_int_equal(rd64(data(env, 512)), 5);
	assert_int_equal(rd64(data(env, 520)), (1ull << 63) | 7);
	assert_true(all_bytes(data(env, 528), 0xcc, 48));
	/* compacted: AVX first in the extended region */
	assert_true(all_bytes(data(env, 576), 0x5a, XSTATE_AVX_LEN));

	/* MXCSR not 1F80H: SSE state is saved even with XINUSE[1] = 0 */
	memcpy(env->xstate_vcpu + 24, &(u32){ 0x1fa0 }, 4);
	prepare_area(env, 0);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = 2;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0x27), EMU_DONE);
	assert_memory_equal(data(env, 24), env->xstate_vcpu + 24, 8);
	assert_memory_equal(data(env, 160), env->xstate_vcpu + 160, 256);
	assert_int_equal(rd64(data(env, 512)), 0);
	assert_int_equal(rd64(data(env, 520)), (1ull << 63) | 2);
}

/* ---- xrstor ---------------------------------------------------------------- */

/* A standard-format image at DATA_VA: x87 FCW 027FH, MXCSR 1FA0H, AVX 0x77. */
static void prepare_image(struct env *env, u64 xstate_bv, u64 xcomp_bv)
{
	u8 *a = data(env, 0);

	memset(a, 0, 2 * PAGE_SIZE);
	for (unsigned i = 32; i < 416; i++)
		a[i] = (u8)(0xff - i);
	memcpy(a, &(u16){ 0x027f }, 2);
	memcpy(a + 24, &(u32){ 0x1fa0 }, 4);
	wr64(a + 512, xstate_bv);
	wr64(a + 520, xcomp_bv);
	memset(a + XSTATE_AVX_OFF, 0x77, XSTATE_AVX_LEN);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RAX] = 7;
	env->cpu.gpr[EMU_RDX] = 0;
}

static void test_xrstor_standard(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 *v = env->xstate_vcpu;

	/* x87 and AVX loaded, SSE initialized; MXCSR loaded anyway (standard form) */
	prepare_image(env, 5, 0);
	/* xrstor64 [rdi] */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "xrstor64");
	assert_int_equal(env->xstate_puts, 1);
	assert_memory_equal(v, data(env, 0), 24);
	assert_memory_equal(v + 32, data(env, 32), 128);
	assert_true(all_bytes(v + 160, 0, 256));
	assert_int_equal(rd64(v + 24) & 0xffffffff, 0x1fa0);
	assert_true(all_bytes(v + XSTATE_AVX_OFF, 0x77, XSTATE_AVX_LEN));
	assert_int_equal(rd64(v + 512), 5);

	/* RFBM = 2 with XSTATE_BV[1] = 0: only SSE, initialized; x87 kept */
	init_xstate(env);
	prepare_image(env, 5, 0);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = 2;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_int_equal(rd64(v) & 0xffff, 0x037f);
	assert_int_equal(v[32], 32);
	assert_true(all_bytes(v + 160, 0, 256));
	/* MXCSR is not initial, so SSE stays marked in use for KVM_SET_XSAVE */
	assert_int_equal(rd64(v + 24) & 0xffffffff, 0x1fa0);
	assert_int_equal(rd64(v + 512), 3);

	/* x87 initialized: FCW 037FH, the rest 0 */
	init_xstate(env);
	prepare_image(env, 0, 0);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = 1;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_int_equal(rd64(v) & 0xffff, 0x037f);
	assert_true(all_bytes(v + 2, 0, 22));
	assert_true(all_bytes(v + 32, 0, 128));
	assert_int_equal(v[160], 160); /* SSE untouched */
	assert_int_equal(rd64(v + 512), 2);
}

static void test_xrstor_standard_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;
	u8 saved[XSTATE_SIZE];
	static const struct {
		u64 xstate_bv, xcomp_bv, hdr16;
		u32 mxcsr;
	} cases[] = {
		{ 0x8, 0, 0, 0x1f80 },		 /* XSTATE_BV bit outside XCR0 */
		{ 0x3, 0x3, 0, 0x1f80 },	 /* XCOMP_BV nonzero, bit 63 clear */
		{ 0x3, 0, 1, 0x1f80 },		 /* header bytes 23:16 not zero */
		{ 0x3, 0, 0, 0x1f80 | 0x40 },	 /* MXCSR bit 6 outside MXCSR_MASK */
		{ 0x3, 0, 0, 0x1f80 | 0x10000 }, /* a reserved MXCSR bit */
	};

	memcpy(env->xstate_vcpu + 28, &(u32){ 0xffbf }, 4);
	memcpy(saved, env->xstate_vcpu, sizeof(saved));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		env->cpu.rip = CODE_VA;
		env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
		prepare_image(env, cases[i].xstate_bv, cases[i].xcomp_bv);
		wr64(data(env, 528), cases[i].hdr16);
		memcpy(data(env, 24), &cases[i].mxcsr, 4);
		before = env->cpu;
		assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
		assert_true(rep.faulted);
		assert_int_equal(rep.fault_vector, X86_EXC_GP);
		assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
		assert_int_equal(env->xstate_puts, 0);
		assert_memory_equal(env->xstate_vcpu, saved, sizeof(saved));
	}

	/* Bytes 63:24 of the header are not checked by the standard form */
	env->cpu.rip = CODE_VA;
	prepare_image(env, 3, 0);
	wr64(data(env, 560), ~0ull);
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->xstate_puts, 1);

	/* Misaligned: #GP */
	env->cpu.rip = CODE_VA;
	prepare_image(env, 3, 0);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 8;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
	assert_int_equal(env->xstate_puts, 1);
}

static void test_xrstor_compacted(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 *v = env->xstate_vcpu;

	/* SSE loaded (MXCSR too); x87 and AVX (XCOMP_BV[2] = 1, XSTATE_BV[2] = 0) initialized */
	memset(v + XSTATE_AVX_OFF, 0x33, XSTATE_AVX_LEN);
	wr64(v + 512, 7);
	prepare_image(env, 2, (1ull << 63) | 7);
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(rd64(v) & 0xffff, 0x037f);
	assert_true(all_bytes(v + 32, 0, 128));
	assert_memory_equal(v + 160, data(env, 160), 256);
	assert_int_equal(rd64(v + 24) & 0xffffffff, 0x1fa0);
	assert_true(all_bytes(v + XSTATE_AVX_OFF, 0, XSTATE_AVX_LEN));
	assert_int_equal(rd64(v + 512), 2);

	/* XSTATE_BV[1] = 0: the compacted form sets MXCSR to 1F80H */
	env->cpu.rip = CODE_VA;
	prepare_image(env, 4, (1ull << 63) | 6);
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(rd64(v + 24) & 0xffffffff, 0x1f80);
	assert_true(all_bytes(v + 160, 0, 256));
	/* AVX is the first compacted component: at 576 */
	assert_true(all_bytes(v + XSTATE_AVX_OFF, 0x77, XSTATE_AVX_LEN));
	assert_int_equal(rd64(v + 512), 4);
}

static void test_xrstor_compacted_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	static const struct {
		u64 xstate_bv, xcomp_bv;
		unsigned reserved_off; /* 0: none */
	} cases[] = {
		{ 0x4, (1ull << 63) | 0x3, 0 },	  /* XSTATE_BV outside XCOMP_BV */
		{ 0x1, (1ull << 63) | 0x9, 0 },	  /* XCOMP_BV outside XCR0 */
		{ 0x1, (1ull << 63) | 0x1, 528 }, /* header bytes 63:16 */
		{ 0x1, (1ull << 63) | 0x1, 568 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		env->cpu.rip = CODE_VA;
		env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
		prepare_image(env, cases[i].xstate_bv, cases[i].xcomp_bv);
		if (cases[i].reserved_off)
			data(env, cases[i].reserved_off)[0] = 1;
		assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
		assert_true(rep.faulted);
		assert_int_equal(rep.fault_vector, X86_EXC_GP);
	}
	assert_int_equal(env->xstate_puts, 0);
}

static void test_xsavec_xrstor_round_trip(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 orig[XSTATE_SIZE];

	wr64(env->xstate_vcpu + 512, 7);
	memset(env->xstate_vcpu + XSTATE_AVX_OFF, 0x42, XSTATE_AVX_LEN);
	memcpy(orig, env->xstate_vcpu, sizeof(orig));
	/* xsavec writes XSTATE_BV and XCOMP_BV only: software zeroes the rest of the header */
	prepare_area(env, 0);
	memset(data(env, 520), 0, 56);
	env->cpu.gpr[EMU_RAX] = 7;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0x27), EMU_DONE);
	/* Clobber the vCPU state, then restore it from the compacted image */
	memset(env->xstate_vcpu, 0, 512);
	memset(env->xstate_vcpu + XSTATE_AVX_OFF, 0, XSTATE_AVX_LEN);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x2f), EMU_DONE);
	assert_false(rep.faulted);
	/* MXCSR_MASK (bytes 31:28) is not loaded: the processor's own */
	assert_memory_equal(env->xstate_vcpu, orig, 28);
	assert_memory_equal(env->xstate_vcpu + 32, orig + 32, 416 - 32);
	assert_memory_equal(env->xstate_vcpu + 512, orig + 512, 8);
	assert_memory_equal(env->xstate_vcpu + XSTATE_AVX_OFF, orig + XSTATE_AVX_OFF,
			    XSTATE_AVX_LEN);
}

/* ---- ldmxcsr, stmxcsr ------------------------------------------------------ */

static void test_ldmxcsr_stmxcsr(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 *v = env->xstate_vcpu;

	env->cpu.cr4 |= CR4_OSFXSR;
	wr64(v + 512, 0); /* nothing in use: ldmxcsr must mark SSE for KVM */
	memcpy(data(env, 0), &(u32){ 0x9fc0 }, 4);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	/* ldmxcsr [rdi] */
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x17), EMU_DONE);
	assert_string_equal(rep.mnemonic, "ldmxcsr");
	assert_false(rep.faulted);
	assert_int_equal(rd64(v + 24) & 0xffffffff, 0x9fc0);
	assert_int_equal(rd64(v + 512), 2);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);

	/* stmxcsr [rdi + 8] */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x5f, 0x08), EMU_DONE);
	assert_string_equal(rep.mnemonic, "stmxcsr");
	assert_int_equal(rd64(data(env, 8)) & 0xffffffff, 0x9fc0);
	assert_int_equal(env->xstate_puts, 1);

	/* A bit outside MXCSR_MASK: #GP(0), MXCSR unchanged */
	memcpy(v + 28, &(u32){ 0xffbf }, 4);
	memcpy(data(env, 0), &(u32){ 0x1fc0 }, 4);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x17), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
	assert_int_equal(rd64(v + 24) & 0xffffffff, 0x9fc0);

	/* CR4.OSFXSR = 0 or CR0.EM = 1: #UD; CR0.TS: #NM */
	set_gate(env, X86_EXC_NM, HANDLER_NM, 0xe, 0, 0);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.cr4 &= ~CR4_OSFXSR;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x1f), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.cr4 |= CR4_OSFXSR;
	env->cpu.cr0 |= CR0_EM;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x1f), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.cr0 &= ~CR0_EM;
	env->cpu.cr0 |= CR0_TS;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x17), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_NM);
	assert_int_equal(env->xstate_puts, 1);
}

static void test_xsaves_not_emulated(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	prepare_area(env, 0);
	/* xsaves64 [rdi], xrstors64 [rdi]: supervisor state, not emulated */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0x2f), EMU_UNKNOWN);
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0x1f), EMU_UNKNOWN);
	/* no xstate callbacks (shadow mode): not emulated */
	env->ops.get_xstate = NULL;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xae, 0x27), EMU_UNKNOWN);
	assert_int_equal(RUN(env, &rep, 0x9b), EMU_UNKNOWN);
}

/* ---- rdrand / rdseed --------------------------------------------------------- */

static bool host_cpuid_bit(unsigned leaf, unsigned reg, unsigned bit)
{
	unsigned r[4];

	if (!__get_cpuid_count(leaf, 0, &r[0], &r[1], &r[2], &r[3]))
		return false;
	return (r[reg] >> bit) & 1;
}

/* Two draws differ, CF says success, the other arithmetic flags are cleared. */
static void test_rdrand_rdseed(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 first;

	if (!host_cpuid_bit(1, 2, 30)) {
		print_message("SKIP: the host has no RDRAND\n");
		skip();
	}
	env->cpu.rflags |= RFLAGS_ZF | RFLAGS_OF;
	/* rdrand rax, until it succeeds (the SDM's retry loop) */
	for (unsigned i = 0; i < 10; i++) {
		env->cpu.rip = CODE_VA;
		assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0xf0), EMU_DONE);
		if (env->cpu.rflags & RFLAGS_CF)
			break;
	}
	assert_string_equal(rep.mnemonic, "rdrand");
	assert_true(env->cpu.rflags & RFLAGS_CF);
	assert_int_equal(env->cpu.rflags & (RFLAGS_ZF | RFLAGS_OF), 0);
	assert_int_equal(env->cpu.rip, CODE_VA + 4);
	first = env->cpu.gpr[EMU_RAX];
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0xf0), EMU_DONE);
	assert_true(!(env->cpu.rflags & RFLAGS_CF) || env->cpu.gpr[EMU_RAX] != first);

	/* rdseed cx: a 16-bit destination keeps bits 63:16 */
	if (host_cpuid_bit(7, 1, 18)) {
		env->cpu.rip = CODE_VA;
		env->cpu.gpr[EMU_RCX] = 0x1111222233330000ull;
		assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xc7, 0xf9), EMU_DONE);
		assert_int_equal(env->cpu.gpr[EMU_RCX] >> 16, 0x111122223333ull);
	}
}

/* ---- ud0/ud1/ud2, verr/verw ------------------------------------------------- */

static void test_ud2_ud1(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	/* ud2: Linux's BUG()/WARN() */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x0b), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
	/* ud1 ecx, eax */
	env->cpu = before;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xb9, 0xc8), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_UD, HANDLER_UD, false, 0);
}

/* verw/verr ax, cx: ZF for the fixture's GDT (0x08 code, 0x10 data, DPL0; 0x23 data, DPL3). */
static bool verify(struct env *env, bool write, u16 sel)
{
	struct emu_report rep;

	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = 0xffff0000u | sel;
	if (write)
		assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xe8), EMU_DONE);
	else
		assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xe0), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);
	return env->cpu.rflags & RFLAGS_ZF;
}

static void test_verr_verw(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_true(verify(env, true, SEL_KDATA));
	assert_false(verify(env, true, SEL_KCODE));	/* code is never writable */
	assert_true(verify(env, false, SEL_KCODE));	/* readable code */
	assert_false(verify(env, true, 0));		/* null */
	assert_false(verify(env, true, SEL_TSS));	/* a system segment */
	assert_false(verify(env, true, 0x80));		/* beyond the GDT's limit: no #GP */
	assert_false(verify(env, true, SEL_KDATA | 3)); /* RPL 3 > DPL 0 */
	assert_true(verify(env, true, SEL_UDATA));

	/* verw [rdi]: the selector from memory */
	memcpy(env->ram + DATA_GPA, &(u16){ SEL_KDATA }, 2);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.rflags &= ~RFLAGS_ZF;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0x2f), EMU_DONE);
	assert_true(env->cpu.rflags & RFLAGS_ZF);
}

/*
 * An LDT selector with index 0 (4-7) is not null: it names the LDT's first
 * entry (null is GDT index 0 only, SDM Vol. 3A §3.4.2). The rig's CPU found
 * the emulator calling it null (test_emulate_segs_native).
 */
static void test_verr_ldt_index0(void **state)
{
	struct env *env = *state;

	memcpy(env->ram + IDT_GPA + 0x800, &(u64){ GDT_DATA_DPL0 }, 8); /* the LDT: one entry */
	env->cpu.virt.ldtr_sel = 0x38;
	env->cpu.virt.ldtr_base = IDT_VA + 0x800;
	env->cpu.virt.ldtr_limit = 7;
	assert_true(verify(env, false, 0x4));
	assert_true(verify(env, true, 0x4));
	assert_false(verify(env, true, 0x7)); /* RPL 3 > DPL 0 */
	assert_false(verify(env, true, 0xc)); /* beyond the LDT's limit */
	env->cpu.virt.ldtr_sel = 0;	      /* no LDT */
	assert_false(verify(env, false, 0x4));
}

/* At CPL3 a DPL0 segment fails the check, a DPL3 one passes. */
static void test_verw_cpl3(void **state)
{
	struct env *env = *state;

	to_user(env);
	assert_false(verify(env, true, SEL_KDATA));
	assert_true(verify(env, true, SEL_UDATA));
}

/* ---- monitor / mwait (hw mode) ------------------------------------------------ */

static void test_monitor_mwait(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	/* monitor: DS:RAX translates, ECX = 0: nothing else happens */
	env->cpu.gpr[EMU_RAX] = DATA_VA + 0x40;
	env->cpu.gpr[EMU_RCX] = 0;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xc8), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);
	/* mwait with ECX = 1 (interrupts break even with IF = 0): returns at once */
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RCX] = 1;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xc9), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);

	/* monitor on an unmapped address: #PF; with ECX != 0: #GP(0) */
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = UNMAPPED_VA;
	env->cpu.gpr[EMU_RCX] = 0;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xc8), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 2;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xc8), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);

	/* At CPL3 both are #UD */
	env->cpu = before;
	to_user(env);
	env->cpu.gpr[EMU_RCX] = 0;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xc9), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_popcnt_64),
		T(test_rdrand_rdseed),
		T(test_ud2_ud1),
		T(test_verr_verw),
		T(test_verw_cpl3),
		T(test_verr_ldt_index0),
		T(test_monitor_mwait),
		T(test_popcnt_32_16_zero),
		T(test_popcnt_memory),
		T(test_wait_noop),
		T(test_wait_nm),
		T(test_wait_pending_mf),
		T(test_xsave_all),
		T(test_xsave_partial_mask),
		T(test_xrstor_32bit_shadow),
		T(test_xsave_faults),
		T(test_xsaveopt_init_optimization),
		T(test_xsavec),
		T(test_xrstor_standard),
		T(test_xrstor_standard_gp),
		T(test_xrstor_compacted),
		T(test_xrstor_compacted_gp),
		T(test_xsavec_xrstor_round_trip),
		T(test_ldmxcsr_stmxcsr),
		T(test_xsaves_not_emulated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
