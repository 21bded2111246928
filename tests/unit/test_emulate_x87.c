// SPDX-License-Identifier: MIT
/*
 * Unit tests of hw mode's x87 fallback (decode/emulate_simd.c, "x87
 * instructions", and decode/x87.c): x87 instructions run on the host CPU
 * with the guest's registers and x87 state, on the fixture of
 * tests/unit/emu_env.h (its XSAVE area: FCW 037FH, FSW 0, every x87
 * register empty).
 */
#include "emu_env.h"

#include "decode/emulate_internal.h"
#include "decode/x87.h"
#include "umbra/le.h"

#define HANDLER_NM 0x401500ull
#define HANDLER_MF 0x401600ull
#define FCW	   0
#define FSW	   2
#define FOP	   6
#define FIP	   8
#define FDP	   16

static u8 *data(struct env *env, unsigned off)
{
	return env->ram + DATA_GPA + off;
}

static u8 *ro(struct env *env, unsigned off)
{
	return env->ram + RO_GPA + off;
}

static u16 x87_get16(struct env *env, unsigned off)
{
	return le_get16(env->xstate_vcpu, off);
}

static double get_double(const u8 *p)
{
	double d;

	memcpy(&d, p, sizeof(d));
	return d;
}

/* fld from a read-only page, fadd, fstp to a writable one; fstp to the read-only page: #PF. */
static void test_fld_fadd_fstp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;
	unsigned puts;

	memcpy(ro(env, 0x10), &(double){ 1.5 }, 8);
	memcpy(ro(env, 0x18), &(double){ 2.25 }, 8);
	env->cpu.gpr[EMU_RSI] = RO_VA + 0x10;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x20;
	/* fld qword [rsi]: capstone's operand 0, but a load (no #PF on a read-only page) */
	assert_int_equal(RUN(env, &rep, 0xdd, 0x06), EMU_DONE);
	assert_false(rep.faulted);
	assert_string_equal(rep.mnemonic, "fld");
	/* fadd qword [rsi+8] */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xdc, 0x46, 0x08), EMU_DONE);
	/* fst qword [rdi] */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xdd, 0x17), EMU_DONE);
	assert_true(get_double(data(env, 0x20)) == 3.75);
	assert_int_equal(env->cpu.rip, CODE_VA + 2);

	/* fstp qword [rsi]: a store, #PF(present, write); nothing stored, the stack unchanged */
	env->cpu.rip = CODE_VA;
	before = env->cpu;
	puts = env->xstate_puts;
	assert_int_equal(RUN(env, &rep, 0xdd, 0x1e), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true,
			     PFERR_PRESENT | PFERR_WRITE);
	assert_true(get_double(ro(env, 0x10)) == 1.5);
	assert_int_equal(env->xstate_puts, puts);
}

/* fistp dword stores 4 bytes, not 8; fnstsw ax writes AX only. */
static void test_fistp_and_fnstsw(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	memset(data(env, 0), 0xee, 16);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	assert_int_equal(RUN(env, &rep, 0xd9, 0xe8), EMU_DONE); /* fld1 */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xd9, 0xc0), EMU_DONE); /* fld st(0) */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xde, 0xc1), EMU_DONE); /* faddp */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xdb, 0x1f), EMU_DONE); /* fistp dword [rdi] */
	assert_int_equal(le_get32(data(env, 0), 0), 2);
	assert_int_equal(le_get32(data(env, 4), 0), 0xeeeeeeee);
	/* TOP is back at 0 and nothing was raised: FSW = 0 */
	env->cpu.gpr[EMU_RAX] = 0x1122334455667788ull;
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xdf, 0xe0), EMU_DONE); /* fnstsw ax */
	assert_string_equal(rep.mnemonic, "fnstsw");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1122334455660000ull);
}

/* FOP, FIP and FDP are the guest's instruction's; a control instruction keeps them. */
static void test_last_pointers(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	/* fld qword [rdi+8] */
	assert_int_equal(RUN(env, &rep, 0xdd, 0x47, 0x08), EMU_DONE);
	assert_int_equal(x87_get16(env, FOP), 0x547);
	assert_int_equal(le_get64(env->xstate_vcpu, FIP), CODE_VA);
	assert_int_equal(le_get64(env->xstate_vcpu, FDP), DATA_VA + 8);
	/* fnstcw [rdi+0x20] at the next RIP: stores FCW, leaves the pointers as they were */
	assert_int_equal(RUN(env, &rep, 0xd9, 0x7f, 0x20), EMU_DONE);
	assert_int_equal(le_get16(data(env, 0x20), 0), 0x037f);
	assert_int_equal(x87_get16(env, FOP), 0x547);
	assert_int_equal(le_get64(env->xstate_vcpu, FIP), CODE_VA);
	assert_int_equal(le_get64(env->xstate_vcpu, FDP), DATA_VA + 8);
	/* fnstsw [rdi+0x22], another control instruction, the same */
	assert_int_equal(RUN(env, &rep, 0xdd, 0x7f, 0x22), EMU_DONE);
	assert_int_equal(le_get16(data(env, 0x22), 0), 0x3800); /* TOP = 7 after the push */
	assert_int_equal(x87_get16(env, FOP), 0x547);
	assert_int_equal(le_get64(env->xstate_vcpu, FIP), CODE_VA);
	assert_int_equal(le_get64(env->xstate_vcpu, FDP), DATA_VA + 8);
	/* fninit clears them */
	assert_int_equal(RUN(env, &rep, 0xdb, 0xe3), EMU_DONE);
	assert_int_equal(le_get64(env->xstate_vcpu, FIP), 0);
}

/* fnsave stores the 108-byte image (not capstone's 4 bytes) and reinitializes the x87 state. */
static void test_fnsave(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	le_put16(env->xstate_vcpu, FCW, 0x027f);
	memset(data(env, 0), 0xcc, 128);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	assert_int_equal(RUN(env, &rep, 0xdd, 0x37), EMU_DONE); /* fnsave [rdi] */
	assert_int_equal(le_get16(data(env, 0), 0), 0x027f);
	assert_int_not_equal(le_get32(data(env, 104), 0), 0xcccccccc); /* ST7's last bytes */
	assert_int_equal(data(env, 108)[0], 0xcc);
	assert_int_equal(x87_get16(env, FCW), 0x037f);
	/* With an operand-size prefix it is the 16-bit image: not emulated */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x66, 0xdd, 0x37), EMU_UNKNOWN);
}

/* CR0.EM or CR0.TS: #NM, not the #UD of SSE. A pending unmasked exception: #MF. */
static void test_x87_exceptions(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	set_gate(env, X86_EXC_NM, HANDLER_NM, 0xe, 0, 0);
	set_gate(env, X86_EXC_MF, HANDLER_MF, 0xe, 0, 0);
	env->cpu.cr0 |= CR0_EM;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xd9, 0xee), EMU_DONE); /* fldz */
	assert_fault_at_cpl0(env, &before, X86_EXC_NM, HANDLER_NM, false, 0);

	env->cpu = before;
	env->cpu.cr0 = (env->cpu.cr0 & ~CR0_EM) | CR0_TS;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xd9, 0xee), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_NM, HANDLER_NM, false, 0);

	/* Divide-by-zero unmasked and pending (FSW.ES, ZE): fldz is #MF, nothing changes */
	env->cpu = before;
	env->cpu.cr0 &= ~CR0_TS;
	le_put16(env->xstate_vcpu, FCW, 0x037b);
	le_put16(env->xstate_vcpu, FSW, 0x8084);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xd9, 0xee), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_MF);
	assert_fault_at_cpl0(env, &before, X86_EXC_MF, HANDLER_MF, false, 0);
	assert_int_equal(x87_get16(env, FSW), 0x8084);
	assert_int_equal(env->xstate_puts, 0);

	/* fnclex is a control instruction: no #MF, and the exception is cleared */
	env->cpu = before;
	assert_int_equal(RUN(env, &rep, 0xdb, 0xe2), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(x87_get16(env, FSW) & 0x80ff, 0);

	/* With CR0.NE = 0 the exception would go out on FERR#: not emulated */
	env->cpu = before;
	env->cpu.cr0 &= ~CR0_NE;
	le_put16(env->xstate_vcpu, FSW, 0x8084);
	assert_int_equal(RUN(env, &rep, 0xd9, 0xee), EMU_UNKNOWN);
}

/* Compatibility mode (32-bit code): x87 runs, its environment images and SSE do not. */
static void test_x87_in_32bit_code(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.cs = flat32(SEL_KCODE, true);
	memcpy(data(env, 0), &(float){ -2.5f }, 4);
	env->cpu.gpr[EMU_RDI] = 0xffffffff00000000ull | DATA_VA; /* 32-bit addressing: EDI */
	assert_int_equal(RUN(env, &rep, 0xd9, 0x07), EMU_DONE);	 /* fld dword [edi] */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xd9, 0x5f, 0x04), EMU_DONE); /* fstp dword [edi+4] */
	assert_memory_equal(data(env, 4), data(env, 0), 4);
	assert_int_equal(le_get64(env->xstate_vcpu, FDP), DATA_VA + 4);
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0xd9, 0x37), EMU_UNKNOWN); /* fnstenv [edi] */
	env->cpu.cr4 |= CR4_OSFXSR;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xef, 0xed), EMU_UNKNOWN); /* pxor */
}

/* The opcode map where capstone 4.0.2 is wrong, and the #UD forms. */
static void test_x87_forms(void **state)
{
	struct x87_mem m;

	(void)state;
	assert_true(x87_mem_form(0xdd, 0x30, &m)); /* fnsave */
	assert_int_equal(m.size, 108);
	assert_true(m.write && m.env);
	assert_true(x87_mem_form(0xdd, 0x20, &m)); /* frstor */
	assert_true(m.size == 108 && !m.write && m.env);
	assert_true(x87_mem_form(0xdb, 0x18, &m)); /* fistp m32int */
	assert_true(m.size == 4 && m.write && !m.env);
	assert_true(x87_mem_form(0xdb, 0x38, &m)); /* fstp m80fp */
	assert_true(m.size == 10 && m.write);
	assert_true(x87_mem_form(0xdf, 0x28, &m)); /* fild m64int */
	assert_true(m.size == 8 && !m.write);
	assert_true(x87_mem_form(0xd9, 0x30, &m)); /* fnstenv */
	assert_true(m.size == 28 && m.write && m.env);
	assert_false(x87_mem_form(0xd9, 0x08, &m));			   /* D9 /1 */
	assert_false(x87_mem_form(0xdd, 0x28, &m));			   /* DD /5 */
	assert_false(x87_mem_form(0xdb, 0x20, &m));			   /* DB /4 */
	assert_false(x87_mem_form(0xd9, 0xc0, &m));			   /* a register form */
	assert_int_equal(x87_pointer_effect(0xdb, 0xe3), X87_PTRS_SET);	   /* fninit */
	assert_int_equal(x87_pointer_effect(0xdd, 0x30), X87_PTRS_SET);	   /* fnsave */
	assert_int_equal(x87_pointer_effect(0xd9, 0x20), X87_PTRS_SET);	   /* fldenv */
	assert_int_equal(x87_pointer_effect(0xdf, 0xe0), X87_PTRS_KEEP);   /* fnstsw ax */
	assert_int_equal(x87_pointer_effect(0xdd, 0x38), X87_PTRS_KEEP);   /* fnstsw m16 */
	assert_int_equal(x87_pointer_effect(0xd9, 0x38), X87_PTRS_KEEP);   /* fnstcw */
	assert_int_equal(x87_pointer_effect(0xd9, 0xee), X87_PTRS_RECORD); /* fldz */
	assert_int_equal(x87_pointer_effect(0xdd, 0x18), X87_PTRS_RECORD); /* fstp m64 */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fld_fadd_fstp),
		T(test_fistp_and_fnstsw),
		T(test_last_pointers),
		T(test_fnsave),
		T(test_x87_exceptions),
		T(test_x87_in_32bit_code),
		cmocka_unit_test(test_x87_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
