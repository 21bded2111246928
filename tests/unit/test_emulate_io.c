// SPDX-License-Identifier: MIT
/*
 * Unit tests for the port instructions of shadow mode (decode/emulate_io.c):
 * in/out in their forms against RAX, the permission check (CPL, IOPL and
 * the TSS's I/O bitmap, SDM Vol. 1 §19.5) before any port access, and
 * ins/outs with rep: RCX/RSI/RDI after each iteration, DF, the address
 * size, a segment override, the rep limit, and a fault in the middle that
 * keeps the iterations done and never touches the port for the one that
 * faulted. Fixture: emu_env.h with to_shadow() and a fake port bus that
 * records every access and reads back a counting sequence.
 */
#include "emu_env.h"

#define IOMAP_OFF 0x68u /* the TSS's I/O map base in these tests */
#define MAX_PIO	  64

struct pio_log {
	unsigned n;
	struct {
		u16 port;
		unsigned size;
		bool out;
		u32 data;
	} a[MAX_PIO];
	u8 next_in; /* the next byte an in reads */
};

static struct pio_log pio_log;

static bool fake_pio(void *opaque, u16 port, void *data, unsigned size, bool is_out)
{
	(void)opaque;
	assert_true(pio_log.n < MAX_PIO);
	if (!is_out)
		for (unsigned i = 0; i < size; i++)
			((u8 *)data)[i] = pio_log.next_in++;
	pio_log.a[pio_log.n].port = port;
	pio_log.a[pio_log.n].size = size;
	pio_log.a[pio_log.n].out = is_out;
	pio_log.a[pio_log.n].data = 0;
	memcpy(&pio_log.a[pio_log.n].data, data, size);
	pio_log.n++;
	return true;
}

static int setup_io(void **state)
{
	int r = setup(state);
	struct env *env = *state;

	to_shadow(env);
	env->ops.pio = fake_pio;
	memset(&pio_log, 0, sizeof(pio_log));
	pio_log.next_in = 0xa0;
	return r;
}

/*
 * A TSS I/O bitmap that allows exactly the ports in [lo, hi] among
 * 0..nports-1 (the rest of the TSS limit ends right after the bitmap's
 * last byte, so ports past it are refused by the limit).
 */
static void give_bitmap(struct env *env, unsigned nports, unsigned lo, unsigned hi)
{
	u8 *tss = env->ram + TSS_GPA;
	u16 base = IOMAP_OFF;

	memcpy(tss + 102, &base, 2);
	memset(tss + IOMAP_OFF, 0xff, nports / 8 + 1);
	for (unsigned p = lo; p <= hi; p++)
		tss[IOMAP_OFF + p / 8] &= (u8) ~(1u << (p % 8));
	env->cpu.tr_limit = IOMAP_OFF + nports / 8;
}

static void assert_ok(struct env *env, enum emu_result r, const struct emu_report *rep, u64 rip)
{
	assert_int_equal(r, EMU_DONE);
	assert_false(rep->faulted);
	assert_int_equal(env->cpu.rip, rip);
}

static void assert_gp0(struct env *env, enum emu_result r, const struct emu_report *rep)
{
	assert_int_equal(r, EMU_DONE);
	assert_true(rep->faulted);
	assert_int_equal(rep->fault_vector, X86_EXC_GP);
	assert_int_equal(env->last_event.error_code, 0);
}

static void test_in_out_forms(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = 0x1122334455667788ull;
	assert_ok(env, RUN(env, &rep, 0xe6, 0x80), &rep, CODE_VA + 2); /* out %al,$0x80 */
	assert_string_equal(rep.mnemonic, "out");
	assert_int_equal(pio_log.n, 1);
	assert_int_equal(pio_log.a[0].port, 0x80);
	assert_int_equal(pio_log.a[0].size, 1);
	assert_true(pio_log.a[0].out);
	assert_int_equal(pio_log.a[0].data, 0x88);

	/* in $0x71,%al: only AL changes. */
	assert_ok(env, RUN(env, &rep, 0xe4, 0x71), &rep, CODE_VA + 4);
	assert_int_equal(pio_log.a[1].port, 0x71);
	assert_false(pio_log.a[1].out);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x11223344556677a0ull);

	/* in (%dx),%ax: the low 16 bits. */
	env->cpu.gpr[EMU_RDX] = 0xffff03f8; /* the port is DX's 16 bits */
	assert_ok(env, RUN(env, &rep, 0x66, 0xed), &rep, CODE_VA + 6);
	assert_int_equal(pio_log.a[2].port, 0x3f8);
	assert_int_equal(pio_log.a[2].size, 2);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x112233445566a2a1ull);

	/* in (%dx),%eax zero-extends into RAX; REX.W does not widen it. */
	assert_ok(env, RUN(env, &rep, 0x48, 0xed), &rep, CODE_VA + 8);
	assert_int_equal(pio_log.a[3].size, 4);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0xa6a5a4a3ull);

	/* out %eax,(%dx) */
	assert_ok(env, RUN(env, &rep, 0xef), &rep, CODE_VA + 9);
	assert_int_equal(pio_log.a[4].size, 4);
	assert_true(pio_log.a[4].out);
	assert_int_equal(pio_log.a[4].data, 0xa6a5a4a3u);
}

/* Without ops->pio the port instructions are not emulated. */
static void test_no_pio_callback(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->ops.pio = NULL;
	assert_int_equal(RUN(env, &rep, 0xe6, 0x80), EMU_UNKNOWN);
	assert_int_equal(env->cpu.rip, CODE_VA);
}

/* CPL3, IOPL 0: the TSS's bitmap decides, before the port is touched. */
static void test_user_bitmap(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	/*
	 * No bitmap: the map base lies past the TSS limit (Linux's way).
	 * With base 0 the bitmap would be the TSS's own first bytes.
	 */
	memcpy(env->ram + TSS_GPA + 102, &(u16){ IOMAP_OFF }, 2);
	assert_false(emu_io_permitted(&env->cpu, &env->ops, 0x80, 1));
	assert_gp0(env, RUN(env, &rep, 0xe6, 0x80), &rep);
	assert_int_equal(pio_log.n, 0);

	/* Ports 0x80 and 0x3f8-0x3ff allowed, in a bitmap for 0x400 ports. */
	to_user(env);
	env->cpu.rip = CODE_VA;
	give_bitmap(env, 0x400, 0x80, 0x80);
	for (unsigned p = 0x3f8; p <= 0x3ff; p++)
		env->ram[TSS_GPA + IOMAP_OFF + p / 8] &= (u8) ~(1u << (p % 8));
	assert_true(emu_io_permitted(&env->cpu, &env->ops, 0x80, 1));
	assert_false(emu_io_permitted(&env->cpu, &env->ops, 0x80, 2)); /* 0x81 is not */
	assert_false(emu_io_permitted(&env->cpu, &env->ops, 0x7f, 1));
	assert_true(emu_io_permitted(&env->cpu, &env->ops, 0x3fc, 4));
	/* Port 0x400's byte lies past the limit. */
	assert_false(emu_io_permitted(&env->cpu, &env->ops, 0x400, 1));
	/*
	 * The CPU reads two bytes: 0x3ff's byte is the bitmap's last within
	 * the limit only with the byte after it, which tr_limit covers.
	 */
	env->cpu.tr_limit--;
	assert_false(emu_io_permitted(&env->cpu, &env->ops, 0x3ff, 1));
	env->cpu.tr_limit++;

	assert_ok(env, RUN(env, &rep, 0xe6, 0x80), &rep, CODE_VA + 2);
	assert_int_equal(pio_log.n, 1);
	env->cpu.gpr[EMU_RDX] = 0x81;
	assert_gp0(env, RUN(env, &rep, 0xec), &rep); /* in (%dx),%al at 0x81 */
	assert_int_equal(pio_log.n, 1);

	/* IOPL 3: every port, bitmap or not. */
	to_user(env);
	env->cpu.rip = CODE_VA;
	env->cpu.rflags |= RFLAGS_IOPL_MASK;
	assert_ok(env, RUN(env, &rep, 0xe6, 0x81), &rep, CODE_VA + 2);
	assert_int_equal(pio_log.n, 2);
}

static void test_rep_insb(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDX] = 0x3f8;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 5;
	assert_ok(env, RUN(env, &rep, 0xf3, 0x6c), &rep, CODE_VA + 2);
	assert_string_equal(rep.mnemonic, "insb");
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 5);
	assert_int_equal(pio_log.n, 5);
	assert_int_equal(peek64(env, DATA_VA), 0xa4a3a2a1a0ull);
	assert_int_equal(env->nwrites, 5); /* one store per iteration */
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(pio_log.a[i].port, 0x3f8);
		assert_false(pio_log.a[i].out);
		assert_int_equal(env->writes[i].la, DATA_VA + i);
	}
}

/* rep outsw with DF = 1: RSI goes down, the words go out from the top. */
static void test_rep_outsw_down(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA, 0x4444333322221111ull);
	env->cpu.rflags |= RFLAGS_DF;
	env->cpu.gpr[EMU_RDX] = 0x1f0;
	env->cpu.gpr[EMU_RSI] = DATA_VA + 6;
	env->cpu.gpr[EMU_RCX] = 3;
	/* capstone 4 names 66 f3 6f "outsd"; the size comes from the 66 prefix. */
	assert_ok(env, RUN(env, &rep, 0x66, 0xf3, 0x6f), &rep, CODE_VA + 3);
	assert_int_equal(env->cpu.gpr[EMU_RSI], DATA_VA);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_int_equal(pio_log.n, 3);
	assert_int_equal(pio_log.a[0].data, 0x4444);
	assert_int_equal(pio_log.a[1].data, 0x3333);
	assert_int_equal(pio_log.a[2].data, 0x2222);
	assert_int_equal(pio_log.a[2].size, 2);
	assert_int_equal(env->nwrites, 0);
}

/* One outsd without rep; an FS override takes FS's base in 64-bit mode. */
static void test_outs_fs_override(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x10, 0xdeadbeefull);
	env->cpu.fs_base = DATA_VA;
	env->cpu.gpr[EMU_RSI] = 0x10;
	env->cpu.gpr[EMU_RCX] = 7; /* no rep: not used */
	assert_ok(env, RUN(env, &rep, 0x64, 0x6f), &rep, CODE_VA + 2);
	assert_int_equal(pio_log.n, 1);
	assert_int_equal(pio_log.a[0].data, 0xdeadbeefu);
	assert_int_equal(env->cpu.gpr[EMU_RSI], 0x14);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 7);
}

/* Address size 32 (67): ECX and EDI count, and their writes zero-extend. */
static void test_rep_ins_addr32(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RCX] = 0xffffffff00000002ull;
	env->cpu.gpr[EMU_RDI] = 0xabcd000000000000ull | DATA_VA;
	assert_ok(env, RUN(env, &rep, 0x67, 0xf3, 0x6c), &rep, CODE_VA + 3);
	assert_int_equal(pio_log.n, 2);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 2);
	assert_int_equal(peek64(env, DATA_VA) & 0xffff, 0xa1a0);
}

/* At most rep_limit iterations per call: RIP stays, the rest on resuming. */
static void test_rep_outs_partial(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.rep_limit = 4;
	env->cpu.gpr[EMU_RSI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 6;
	assert_ok(env, RUN(env, &rep, 0xf3, 0x6e), &rep, CODE_VA);
	assert_int_equal(rep.notes, EMU_NOTE_REP_PARTIAL);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 2);
	assert_int_equal(pio_log.n, 4);
	assert_ok(env, RUN(env, &rep, 0xf3, 0x6e), &rep, CODE_VA + 2);
	assert_int_equal(rep.notes, 0);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_int_equal(env->cpu.gpr[EMU_RSI], DATA_VA + 6);
	assert_int_equal(pio_log.n, 6);
}

/* RCX = 0 does nothing, but a refused port is #GP(0) all the same. */
static void test_rep_count_zero(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RCX] = 0;
	assert_ok(env, RUN(env, &rep, 0xf3, 0x6c), &rep, CODE_VA + 2);
	assert_int_equal(pio_log.n, 0);
	to_user(env);
	env->cpu.rip = CODE_VA;
	memcpy(env->ram + TSS_GPA + 102, &(u16){ IOMAP_OFF }, 2); /* no bitmap */
	assert_gp0(env, RUN(env, &rep, 0xf3, 0x6c), &rep);
	assert_int_equal(pio_log.n, 0);
}

/*
 * rep insb into a page that is not mapped: the iterations before it stay
 * done, the port is not read for the one that faulted (no input lost), and
 * the #PF frame holds the instruction's RIP.
 */
static void test_rep_ins_fault_midway(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 end = DATA_VA + 2 * PAGE_SIZE;

	env->cpu.gpr[EMU_RDI] = end - 2;
	env->cpu.gpr[EMU_RCX] = 4;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x6c), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->last_event.error_code, PFERR_WRITE);
	assert_int_equal(env->cpu.cr2, end);
	assert_int_equal(pio_log.n, 2);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 2);
	assert_int_equal(env->cpu.gpr[EMU_RDI], end);
	assert_int_equal(peek64(env, end - 8) >> 48, 0xa1a0);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP] + 8), CODE_VA); /* frame RIP */
}

/* outs from a user page the user may not read (supervisor-only): #PF, no output. */
static void test_outs_user_fault(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.rflags |= RFLAGS_IOPL_MASK;
	env->cpu.gpr[EMU_RSI] = TSS_VA; /* supervisor-only */
	assert_int_equal(RUN(env, &rep, 0x6e), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->last_event.error_code, PFERR_PRESENT | PFERR_USER);
	assert_int_equal(pio_log.n, 0);
	/* A non-canonical source: #GP(0). */
	to_user(env);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSI] = 0x8000000000000000ull;
	assert_gp0(env, RUN(env, &rep, 0x6e), &rep);
	assert_int_equal(pio_log.n, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_io, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_in_out_forms),	 T(test_no_pio_callback),
		T(test_user_bitmap),	 T(test_rep_insb),
		T(test_rep_outsw_down),	 T(test_outs_fs_override),
		T(test_rep_ins_addr32),	 T(test_rep_outs_partial),
		T(test_rep_count_zero),	 T(test_rep_ins_fault_midway),
		T(test_outs_user_fault),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
