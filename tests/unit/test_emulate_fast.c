// SPDX-License-Identifier: MIT
/*
 * decode/emulate_fast.c against the emulator itself: every form the fast
 * path takes is run twice from the same random state, once by
 * emu_fast_insn and once by emu_insn (capstone), and the registers, RIP,
 * RFLAGS and all of guest RAM (the stack, the A/D bits of the tables) must
 * come out identical. Forms it must refuse, and accesses that would
 * fault, must leave everything as it was.
 */
#include "emu_env.h"
#include "decode/flags.h"

#define KSP    (KSTACK_VA + 0x800) /* room for disp32 0x100 either way */
#define TRIALS 64

static u64 rng_state = 0x9e3779b97f4a7c15ull;

static u64 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random registers (RSP = rsp), arithmetic flags and DF; a random stack page. */
static void randomize(struct env *env, u64 rsp)
{
	for (unsigned i = 0; i < 16; i++)
		env->cpu.gpr[i] = rnd();
	env->cpu.gpr[EMU_RSP] = rsp;
	env->cpu.rflags = RFLAGS_FIXED | (rnd() & (FLAGS_ARITH_MASK | RFLAGS_DF));
	env->cpu.rip = CODE_VA + 0x100;
	for (unsigned i = 0; i < PAGE_SIZE; i += 8)
		poke64(env, KSTACK_VA + i, rnd());
}

/* `code` at RIP, int3 after it: the fetch reads 15 bytes. */
static void put_code(struct env *env, const u8 *code, unsigned len)
{
	memset(env->ram + CODE_GPA + (env->cpu.rip - CODE_VA), 0xcc, EMU_MAX_INSN_LEN);
	memcpy(env->ram + CODE_GPA + (env->cpu.rip - CODE_VA), code, len);
}

static void assert_regs_equal(const struct emu_cpu *a, const struct emu_cpu *b)
{
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(a->gpr[i], b->gpr[i]);
	assert_int_equal(a->rip, b->rip);
	assert_int_equal(a->rflags, b->rflags);
	assert_int_equal(a->virt.int_shadow, b->virt.int_shadow);
}

/*
 * What an instruction here can change in RAM: the stack page (through
 * ops->write, which records each store) and the tables (A/D bits). A
 * snapshot holds both; every recorded store must be on the stack page.
 */
#define SNAP_SIZE (64 * KiB)

static void snap(const struct env *env, u8 *buf)
{
	size_t tables = env->next_table.v - TABLE_POOL_GPA;

	assert_true(tables + PAGE_SIZE <= SNAP_SIZE);
	memcpy(buf, env->ram + TABLE_POOL_GPA, tables);
	memcpy(buf + tables, env->ram + KSTACK_GPA, PAGE_SIZE);
}

static void restore(struct env *env, const u8 *buf)
{
	size_t tables = env->next_table.v - TABLE_POOL_GPA;

	memcpy(env->ram + TABLE_POOL_GPA, buf, tables);
	memcpy(env->ram + KSTACK_GPA, buf + tables, PAGE_SIZE);
}

static void assert_stores_on_stack(const struct env *env)
{
	for (unsigned i = 0; i < env->nwrites; i++)
		for (unsigned p = 0; p < env->writes[i].npieces; p++)
			assert_true(env->writes[i].piece[p].gpa.v >= KSTACK_GPA &&
				    env->writes[i].piece[p].gpa.v + env->writes[i].piece[p].len <=
					    KSTACK_GPA + PAGE_SIZE);
}

/* `code` from random state: the fast path and emu_insn agree on everything. */
static void same_as_emulator(struct env *env, const u8 *code, unsigned len, u64 rsp)
{
	u8 *ram0 = calloc(1, SNAP_SIZE), *ram_fast = calloc(1, SNAP_SIZE),
	   *ram_emu = calloc(1, SNAP_SIZE);

	assert_non_null(ram0);
	assert_non_null(ram_fast);
	assert_non_null(ram_emu);
	for (unsigned t = 0; t < TRIALS; t++) {
		struct emu_cpu cpu0, fast;
		struct emu_report rep;

		randomize(env, rsp);
		put_code(env, code, len);
		cpu0 = env->cpu;
		snap(env, ram0);
		env->nwrites = 0;

		fast = cpu0;
		assert_int_equal(emu_fast_insn(&fast, &env->ops), EMU_FAST_DONE);
		assert_stores_on_stack(env);
		snap(env, ram_fast);

		restore(env, ram0);
		env->cpu = cpu0;
		env->nwrites = 0;
		{
			enum emu_result r = emu_insn(&env->cpu, &env->ops, &rep);

			if (r != EMU_DONE)
				fail_msg("%02x..: emu_insn %d (%s)", code[0], r, rep.mnemonic);
		}
		assert_false(rep.faulted);
		assert_regs_equal(&fast, &env->cpu);
		assert_true(fast.dirty & EMU_DIRTY_REGS);
		assert_stores_on_stack(env);
		snap(env, ram_emu);
		assert_true(memcmp(ram_fast, ram_emu, SNAP_SIZE) == 0);
	}
	free(ram0);
	free(ram_fast);
	free(ram_emu);
}

#define SAME(env, rsp, ...)                                                                       \
	same_as_emulator((env), (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ }), \
			 (rsp))

/*
 * RAM as in ram0 but for the page tables, where the fetch's walk (and a
 * faulting access's) may have set A bits, as the CPU's own walk does when
 * it runs the instruction.
 */
static void assert_same_but_tables(const u8 *ram0, const struct env *env)
{
	assert_true(memcmp(ram0, env->ram, TABLE_POOL_GPA) == 0);
	assert_true(memcmp(ram0 + env->next_table.v, env->ram + env->next_table.v,
			   RAM_SIZE - env->next_table.v) == 0);
}

/* `code` is not the fast path's (or would fault): nothing changes. */
static void refused(struct env *env, const u8 *code, unsigned len, u64 rsp)
{
	u8 *ram0 = malloc(RAM_SIZE);
	struct emu_cpu cpu0;

	assert_non_null(ram0);
	randomize(env, rsp);
	put_code(env, code, len);
	cpu0 = env->cpu;
	memcpy(ram0, env->ram, RAM_SIZE);
	env->nwrites = 0;
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_NO);
	assert_regs_equal(&cpu0, &env->cpu);
	assert_int_equal(env->nwrites, 0);
	assert_same_but_tables(ram0, env);
	free(ram0);
}

#define REFUSED(env, rsp, ...) \
	refused((env), (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ }), (rsp))

static void test_push(void **state)
{
	struct env *env = *state;

	to_shadow(env);
	for (u8 r = 0; r < 8; r++) {
		SAME(env, KSP, (u8)(0x50 + r));
		SAME(env, KSP, 0x41, (u8)(0x50 + r));
		SAME(env, KSP, 0x48, (u8)(0x50 + r)); /* REX.W: still 64-bit */
	}
	SAME(env, KSP, 0x6a, 0xff); /* push $-1 */
	SAME(env, KSP, 0x6a, 0x7f);
	SAME(env, KSP, 0x6a, 0x80);		      /* an irq stub's vector, sign-extended */
	SAME(env, KSP, 0x68, 0x00, 0x00, 0x00, 0x80); /* push imm32 */
	SAME(env, KSP, 0x68, 0x78, 0x56, 0x34, 0x12);
	SAME(env, KSP + 3, 0x50); /* unaligned */
}

/*
 * The shadow emulator has no call, jcc, jmp, nop or cld (they never trap):
 * for those the test says what they do. `code` at RIP from random state;
 * the fast path must leave RIP at `rip`, the stack pointer moved by
 * `push` bytes with `pushed` on top, DF cleared if `cld`, and nothing else
 * changed.
 */
static void check_branch(struct env *env, const u8 *code, unsigned len, u64 rip, bool push,
			 u64 pushed, bool cld)
{
	struct emu_cpu before;

	env->cpu.rip = CODE_VA + 0x100;
	env->nwrites = 0;
	before = env->cpu;
	put_code(env, code, len);
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_DONE);
	assert_int_equal(env->cpu.rip, rip);
	assert_int_equal(env->cpu.gpr[EMU_RSP], before.gpr[EMU_RSP] - (push ? 8 : 0));
	if (push)
		assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), pushed);
	for (unsigned i = 0; i < 16; i++)
		if (i != EMU_RSP)
			assert_int_equal(env->cpu.gpr[i], before.gpr[i]);
	assert_int_equal(env->cpu.rflags, cld ? before.rflags & ~RFLAGS_DF : before.rflags);
}

#define CHECK_BRANCH(env, rip, push, pushed, cld, ...)                                        \
	check_branch((env), (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ }), \
		     (rip), (push), (pushed), (cld))

/* Condition cc of Jcc, spelled out from SDM Vol. 1 Table B-1 (not decode/flags.c). */
static bool cond_ref(u64 f, unsigned cc)
{
	bool cf = f & 1, pf = f & 4, zf = f & 0x40, sf = f & 0x80, of = f & 0x800, r;

	switch (cc >> 1) {
	case 0: r = of; break;
	case 1: r = cf; break;
	case 2: r = zf; break;
	case 3: r = cf || zf; break;
	case 4: r = sf; break;
	case 5: r = pf; break;
	case 6: r = sf != of; break;
	default: r = zf || sf != of; break;
	}
	return cc & 1 ? !r : r;
}

static void test_call_jmp_nop_cld(void **state)
{
	struct env *env = *state;
	const u64 at = CODE_VA + 0x100;

	to_shadow(env);
	for (unsigned t = 0; t < TRIALS; t++) {
		randomize(env, KSP);
		CHECK_BRANCH(env, at + 5 + 0x10, true, at + 5, false, 0xe8, 0x10, 0x00, 0x00, 0x00);
		randomize(env, KSP + 3);
		CHECK_BRANCH(env, at + 5 - 0x100, true, at + 5, false, 0xe8, 0x00, 0xff, 0xff,
			     0xff);
		randomize(env, KSP);
		CHECK_BRANCH(env, at + 1, false, 0, true, 0xfc);
		CHECK_BRANCH(env, at + 1, false, 0, false, 0x90);
		CHECK_BRANCH(env, at + 2, false, 0, false, 0x48, 0x90);
		CHECK_BRANCH(env, at + 3, false, 0, false, 0x0f, 0x1f, 0x00);
		CHECK_BRANCH(env, at + 2 + 0x11, false, 0, false, 0xeb, 0x11);
		CHECK_BRANCH(env, at + 2 - 0x10, false, 0, false, 0xeb, 0xf0);
		CHECK_BRANCH(env, at + 5 + 0x1234, false, 0, false, 0xe9, 0x34, 0x12, 0x00, 0x00);
	}
}

static void test_xor(void **state)
{
	struct env *env = *state;

	to_shadow(env);
	SAME(env, KSP, 0x31, 0xc0);
	SAME(env, KSP, 0x31, 0xf6);
	SAME(env, KSP, 0x33, 0xd2);
	SAME(env, KSP, 0x45, 0x31, 0xc0);
	SAME(env, KSP, 0x45, 0x31, 0xff);
	SAME(env, KSP, 0x48, 0x31, 0xdb);
	SAME(env, KSP, 0x4d, 0x33, 0xe4);
}

static void test_mov_test_rsp(void **state)
{
	struct env *env = *state;

	to_shadow(env);
	SAME(env, KSP, 0x48, 0x8b, 0x74, 0x24, 0x08);			/* mov 0x8(%rsp),%rsi */
	SAME(env, KSP, 0x48, 0x89, 0x7c, 0x24, 0x08);			/* mov %rdi,0x8(%rsp) */
	SAME(env, KSP, 0x4c, 0x8b, 0x44, 0x24, 0xf0);			/* mov -0x10(%rsp),%r8 */
	SAME(env, KSP, 0x4c, 0x89, 0xbc, 0x24, 0x00, 0x01, 0x00, 0x00); /* mov %r15,0x100(%rsp) */
	SAME(env, KSP, 0x48, 0x8b, 0x84, 0x24, 0x00, 0xff, 0xff, 0xff); /* mov -0x100(%rsp),%rax */
	SAME(env, KSP + 3, 0x48, 0x89, 0x64, 0x24, 0x01);		/* unaligned, RSP itself */
	for (unsigned imm = 0; imm < 256; imm += 37) {
		SAME(env, KSP, 0xf6, 0x44, 0x24, 0x10, (u8)imm);
		SAME(env, KSP, 0xf6, 0x84, 0x24, 0x90, 0x00, 0x00, 0x00, (u8)imm);
	}
	SAME(env, KSP, 0xf6, 0x84, 0x24, 0x90, 0x00, 0x00, 0x00, 0x03); /* error_entry's */
}

static void test_jcc(void **state)
{
	struct env *env = *state;
	const u64 at = CODE_VA + 0x100;

	to_shadow(env);
	for (unsigned t = 0; t < TRIALS; t++) {
		for (u8 cc = 0; cc < 16; cc++) {
			bool taken;

			randomize(env, KSP);
			taken = cond_ref(env->cpu.rflags, cc);
			CHECK_BRANCH(env, at + 2 + (taken ? 0x4b : 0), false, 0, false,
				     (u8)(0x70 + cc), 0x4b);
			CHECK_BRANCH(env, at + 2 - (taken ? 0x10 : 0), false, 0, false,
				     (u8)(0x70 + cc), 0xf0);
			CHECK_BRANCH(env, at + 6 + (taken ? 0x200 : 0), false, 0, false, 0x0f,
				     (u8)(0x80 + cc), 0x00, 0x02, 0x00, 0x00);
			CHECK_BRANCH(env, at + 6 - (taken ? 0x200 : 0), false, 0, false, 0x0f,
				     (u8)(0x80 + cc), 0x00, 0xfe, 0xff, 0xff);
		}
	}
}

static void test_refused_forms(void **state)
{
	struct env *env = *state;

	to_shadow(env);
	REFUSED(env, KSP, 0x66, 0x50);			    /* 16-bit push */
	REFUSED(env, KSP, 0xf3, 0x50);			    /* any other prefix */
	REFUSED(env, KSP, 0x41);			    /* a REX, then int3 */
	REFUSED(env, KSP, 0x41, 0x41, 0x50);		    /* two REX */
	REFUSED(env, KSP, 0x31, 0xc1);			    /* xor of two registers */
	REFUSED(env, KSP, 0x31, 0x00);			    /* xor to memory */
	REFUSED(env, KSP, 0x66, 0x31, 0xc0);		    /* 16-bit xor keeps the top */
	REFUSED(env, KSP, 0x8b, 0x44, 0x24, 0x08);	    /* 32-bit mov */
	REFUSED(env, KSP, 0x48, 0x8b, 0x04, 0x24);	    /* no displacement: not listed */
	REFUSED(env, KSP, 0x48, 0x8b, 0x44, 0x25, 0x08);    /* another SIB */
	REFUSED(env, KSP, 0x49, 0x8b, 0x44, 0x24, 0x08);    /* REX.B: base r12 */
	REFUSED(env, KSP, 0x4a, 0x8b, 0x44, 0x24, 0x08);    /* REX.X: index r12 */
	REFUSED(env, KSP, 0x48, 0x8b, 0x45, 0x08);	    /* [rbp + 8] */
	REFUSED(env, KSP, 0xf6, 0x4c, 0x24, 0x10, 0x03);    /* f6 /1 */
	REFUSED(env, KSP, 0x48, 0xf6, 0x44, 0x24, 0x10, 3); /* REX on test */
	REFUSED(env, KSP, 0x48, 0x74, 0x10);		    /* REX on jcc */
	REFUSED(env, KSP, 0x0f, 0x05);			    /* syscall */
	REFUSED(env, KSP, 0x0f, 0x01, 0xf8);		    /* swapgs */
	REFUSED(env, KSP, 0xfa);			    /* cli */
	REFUSED(env, KSP, 0x9c);			    /* pushf */
}

static void test_refused_faults(void **state)
{
	struct env *env = *state;

	to_shadow(env);
	REFUSED(env, UNMAPPED_VA + 0x800, 0x50);		   /* #PF: not present */
	REFUSED(env, RO_VA + 0x800, 0x50);			   /* #PF: read-only */
	REFUSED(env, RO_VA + 0x800, 0x48, 0x89, 0x7c, 0x24, 0x08); /* the same, mov */
	REFUSED(env, UNMAPPED_VA + 0x800, 0x48, 0x8b, 0x74, 0x24, 0x08);
	REFUSED(env, UNMAPPED_VA + 0x800, 0xf6, 0x44, 0x24, 0x10, 0x03);
	REFUSED(env, 0x0000800000000004ull, 0x50); /* #SS: not canonical */
	REFUSED(env, KSTACK_VA + 4, 0x50);	   /* across into the unmapped page below */
	/* MMIO is emu_insn's: a push onto the MMIO page */
	REFUSED(env, MMIO_VA + 0x800, 0x50);
}

/*
 * Random encodings around the fast path's opcodes (a prefix or none, then
 * random ModRM, SIB, displacement and immediate bytes): whatever it takes
 * must come out as emu_insn's, and whatever it refuses must change nothing.
 * This is what catches a decode that takes a form it should not.
 */
static void test_random_encodings(void **state)
{
	static const u8 prefixes[] = { 0x40, 0x41, 0x44, 0x48, 0x49, 0x4c, 0x4d, 0x4a, 0x66, 0xf3 };
	static const u8 ops[] = { 0x50, 0x53, 0x57, 0x6a, 0x68, 0x31, 0x33, 0x89, 0x8b, 0xf6 };
	struct env *env = *state;
	u8 *ram0 = calloc(1, SNAP_SIZE), *ram_fast = calloc(1, SNAP_SIZE),
	   *ram_emu = calloc(1, SNAP_SIZE);
	unsigned taken = 0;

	assert_non_null(ram0);
	assert_non_null(ram_fast);
	assert_non_null(ram_emu);
	to_shadow(env);
	for (unsigned t = 0; t < 3000; t++) {
		u8 code[EMU_MAX_INSN_LEN];
		unsigned i = 0;
		struct emu_cpu cpu0, fast;
		struct emu_report rep;

		for (unsigned k = 0; k < sizeof(code); k++)
			code[k] = (u8)rnd();
		if (rnd() & 1)
			code[i++] = prefixes[rnd() % sizeof(prefixes)];
		code[i++] = ops[rnd() % sizeof(ops)];
		if (rnd() & 1) { /* often an [rsp + disp] operand, else fully random */
			code[i] = (u8)((code[i] & 0x38) | (rnd() & 1 ? 0x44 : 0x84));
			code[i + 1] = 0x24;
			code[i + 2] = (u8)(rnd() % 0x40) - 0x20;
			if (code[i] & 0x80) {
				code[i + 3] = 0;
				code[i + 4] = 0;
				code[i + 5] = 0;
			}
		}
		randomize(env, KSP);
		put_code(env, code, sizeof(code));
		cpu0 = env->cpu;
		snap(env, ram0);
		env->nwrites = 0;
		fast = cpu0;
		if (emu_fast_insn(&fast, &env->ops) == EMU_FAST_NO) {
			assert_regs_equal(&cpu0, &fast);
			assert_int_equal(env->nwrites, 0);
			continue;
		}
		taken++;
		assert_stores_on_stack(env);
		snap(env, ram_fast);
		restore(env, ram0);
		env->cpu = cpu0;
		env->nwrites = 0;
		if (emu_insn(&env->cpu, &env->ops, &rep) != EMU_DONE || rep.faulted)
			fail_msg("%02x %02x %02x %02x: taken by the fast path, not by emu_insn",
				 code[0], code[1], code[2], code[3]);
		assert_regs_equal(&fast, &env->cpu);
		assert_stores_on_stack(env);
		snap(env, ram_emu);
		assert_true(memcmp(ram_fast, ram_emu, SNAP_SIZE) == 0);
	}
	assert_true(taken > 300); /* the generator reaches the forms */
	free(ram0);
	free(ram_fast);
	free(ram_emu);
}

/* User mode is not the fast path's (no #AC checks): even a push to a user page. */
static void test_refused_user_mode(void **state)
{
	struct env *env = *state;

	to_shadow(env);
	to_user(env);
	REFUSED(env, STACK_VA + 0x800, 0x50);
}

/*
 * Breakpoints armed: the fast path still runs what they do not touch, and
 * leaves to the CPU an instruction with an instruction breakpoint on it or
 * one whose access touches a data breakpoint, changing nothing.
 */
static void test_breakpoints(void **state)
{
	struct env *env = *state;
	const u64 rip = CODE_VA + 0x100;
	const u64 write8 = 1 | (1ull << 16) | (2ull << 18); /* L0, R/W0 01, LEN0 8 bytes */

	to_shadow(env);
	env->cpu.rip = rip;
	env->cpu.gpr[EMU_RSP] = KSP;
	put_code(env, (const u8[]){ 0x50 }, 1); /* push %rax */
	env->cpu.virt.dr[0] = KSP + 0x100;
	env->cpu.virt.dr7 = write8;
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSP - 8);
	env->cpu.rip = rip;
	env->cpu.gpr[EMU_RSP] = KSP;
	env->nwrites = 0;
	env->cpu.virt.dr[0] = KSP - 8; /* the slot the push writes */
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_NO);
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSP);
	assert_int_equal(env->nwrites, 0);
	/* A read-or-write breakpoint sees the store too; one on the instruction stops it. */
	env->cpu.virt.dr7 = 1 | (3ull << 16) | (2ull << 18);
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_NO);
	env->cpu.virt.dr[0] = rip;
	env->cpu.virt.dr7 = 1; /* R/W0 00: execution */
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_NO);
	assert_int_equal(env->cpu.rip, rip);
	env->cpu.virt.dr[0] = rip + 1;
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_DONE);
}

/* hw mode has no fast path: every form is emu_insn's there. */
static void test_hw_mode_refused(void **state)
{
	struct env *env = *state;

	env->cpu.gpr[EMU_RSP] = KSP;
	put_code(env, (const u8[]){ 0x50 }, 1);
	assert_int_equal(emu_fast_insn(&env->cpu, &env->ops), EMU_FAST_NO);
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_push, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_jmp_nop_cld, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mov_test_rsp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jcc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_encodings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_user_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hw_mode_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_breakpoints, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
