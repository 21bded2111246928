// SPDX-License-Identifier: MIT
/*
 * Robustness of the shadow-mode emulator against arbitrary bytes: seeded
 * random instructions (random bytes, and random ModRM/SIB/immediates after
 * the opcodes of the whitelist) with random registers, at virtual CPL0 and
 * CPL3, in 64-bit and compatibility mode, under ASan/UBSan. Each must end
 * in a valid result, and on any result but EMU_DONE the state must be
 * unchanged. The port instructions (decode/emulate_io.c) are in it, with
 * a port bus that reads a fixed pattern.
 */
#include "emu_env.h"
#include "xorshift.h"

#define ITERATIONS 100000
#define SEED	   0x5eed1234u

static u64 rnd64(void)
{
	return ((u64)rnd() << 32) | rnd();
}

/* Opcode prefixes of the whitelist, so random bytes reach the handlers. */
static const u8 starts[][3] = {
	{ 0x0f, 0x22 }, { 0x0f, 0x20 },
	{ 0x0f, 0x01 }, { 0x0f, 0x00 },
	{ 0x8e },	{ 0x89 },
	{ 0x88 },	{ 0xc7 },
	{ 0xc6 },	{ 0xf3, 0xab },
	{ 0xf3, 0xa4 }, { 0xf0, 0x0f, 0xb1 },
	{ 0xf0, 0x01 }, { 0xf0, 0x0f, 0xc1 },
	{ 0x0f, 0xba }, { 0x0f, 0xab },
	{ 0x48, 0xcf }, { 0x48, 0xcb },
	{ 0xff },	{ 0x9d },
	{ 0x9c },	{ 0x0f, 0xc7 },
	{ 0x87 },	{ 0xf6 },
	{ 0xf7 },	{ 0x80 },
	{ 0x83 },	{ 0x0f, 0xa1 },
	{ 0xea },	{ 0xf3, 0x6c },
	{ 0xf3, 0x6f }, { 0xe4 },
	{ 0xef },
};

/* An address that is sometimes mapped, sometimes MMIO, sometimes garbage. */
static u64 rnd_addr(void)
{
	static const u64 bases[] = { DATA_VA, STACK_VA, RO_VA, MMIO_VA, UNMAPPED_VA, 0 };
	u32 r = rnd();

	if ((r & 7) == 7)
		return rnd64();
	return bases[r % (sizeof(bases) / sizeof(bases[0]))] + (rnd() & 0x1fff);
}

static void test_random_instructions(void **state)
{
	struct env *env = *state;
	struct emu_cpu base = env->cpu;
	unsigned counts[EMU_HOST_ERROR + 1] = { 0 };

	rng_state = SEED;
	for (unsigned it = 0; it < ITERATIONS; it++) {
		u8 code[EMU_MAX_INSN_LEN];
		struct emu_report rep;
		struct emu_cpu before;
		enum emu_result r;
		unsigned n = 0;

		env->cpu = base;
		env->nwrites = 0;
		for (unsigned i = 0; i < EMU_NR_GPRS; i++)
			env->cpu.gpr[i] = rnd() & 1 ? rnd_addr() : rnd64();
		env->cpu.gpr[EMU_RSP] = STACK_VA + 0x800 + (rnd() & 0x7f8);
		env->cpu.rflags = RFLAGS_FIXED | (rnd() & (RFLAGS_IF | RFLAGS_DF | RFLAGS_CF |
							   RFLAGS_IOPL_MASK | RFLAGS_AC));
		env->cpu.virt.rep_limit = 4;
		if (rnd() & 1)
			to_user(env);
		if (rnd() % 4 == 0) {
			env->cpu.cs.l = 0; /* compatibility mode: 32-bit decode */
			env->cpu.cs.db = 1;
		}
		if (rnd() % 2) {
			const u8 *s = starts[rnd() % (sizeof(starts) / sizeof(starts[0]))];

			for (; n < 3 && s[n]; n++)
				code[n] = s[n];
		}
		for (; n < sizeof(code); n++)
			code[n] = (u8)rnd();
		before = env->cpu;
		r = emu_insn_bytes(&env->cpu, &env->ops, code, sizeof(code), &rep);
		assert_true(r <= EMU_HOST_ERROR);
		counts[r]++;
		if (r != EMU_DONE)
			assert_memory_equal(&env->cpu, &before, sizeof(before));
		assert_true(rep.code_len <= EMU_MAX_INSN_LEN);
	}
	print_message("done %u unknown %u not-ram %u triple %u host %u\n", counts[EMU_DONE],
		      counts[EMU_UNKNOWN], counts[EMU_UNHANDLED_MEM], counts[EMU_TRIPLE_FAULT],
		      counts[EMU_HOST_ERROR]);
	assert_true(counts[EMU_DONE] > ITERATIONS / 10);
	assert_int_equal(counts[EMU_HOST_ERROR], 0);
}

static int setup_shadow(void **state)
{
	int r = setup(state);
	struct env *env = *state;

	to_shadow(env);
	env->ops.pio = fake_pio_pattern;
	return r;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_instructions, setup_shadow, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
