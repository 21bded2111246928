// SPDX-License-Identifier: MIT
/*
 * Unit tests for the shadow-mode memory-write whitelist
 * (decode/emulate_mem.c) and the RFLAGS helpers (decode/flags.c): each
 * instruction against its memory, register and flag effects, each store
 * reported once through ops->write with gpa, old and new bytes, and the
 * faults (#PF with the walker's error code and CR2, #GP for non-canonical
 * addresses, a partly done rep stos). Fixture: emu_env.h with to_shadow().
 * Flags follow the SDM Vol. 1 Appendix A and the "Flags Affected" of each
 * instruction in Vol. 2.
 */
#include "decode/flags.h"
#include "emu_env.h"

#define ARITH FLAGS_ARITH_MASK

static int setup_shadow(void **state)
{
	int r = setup(state);

	to_shadow(*state);
	return r;
}

static void assert_ok(struct env *env, enum emu_result r, const struct emu_report *rep, u64 rip)
{
	assert_int_equal(r, EMU_DONE);
	assert_false(rep->faulted);
	assert_int_equal(env->cpu.rip, rip);
}

/* Store `v` at DATA_VA + off and point RDI there. */
static void data_at(struct env *env, unsigned off, u64 v)
{
	poke64(env, DATA_VA + off, v);
	env->cpu.gpr[EMU_RDI] = DATA_VA + off;
}

/* The one store the instruction made: at `la`, `len` bytes, old and new values. */
static void assert_one_write(struct env *env, u64 la, unsigned len, u64 old, u64 new)
{
	const struct emu_write *w = &env->writes[0];
	u64 o = 0, n = 0;

	assert_int_equal(env->nwrites, 1);
	assert_int_equal(w->la, la);
	assert_int_equal(w->len, len);
	assert_int_equal(w->npieces, 1);
	assert_int_equal(w->piece[0].gpa.v, DATA_GPA + (la - DATA_VA));
	assert_non_null(w->piece[0].hva);
	memcpy(&o, w->old_bytes, len);
	memcpy(&n, w->new_bytes, len);
	assert_int_equal(o, old);
	assert_int_equal(n, new);
}

/* The flags of `rflags` among FLAGS_ARITH_MASK. */
static u64 arith(u64 rflags)
{
	return rflags & ARITH;
}

/* ---- flags helpers ---------------------------------------------------------- */

static void test_flags_add(void **state)
{
	u64 f = RFLAGS_FIXED;

	(void)state;
	assert_int_equal(flags_add(0xff, 1, 0, 1, &f), 0);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_add(0x7f, 1, 0, 1, &f), 0x80);
	assert_int_equal(arith(f), RFLAGS_OF | RFLAGS_SF | RFLAGS_AF);
	assert_int_equal(flags_add(0x8000, 0x8000, 0, 2, &f), 0);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_OF | RFLAGS_ZF | RFLAGS_PF);
	assert_int_equal(flags_add(0xffffffff, 1, 0, 4, &f), 0);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_add(~0ull, 1, 0, 8, &f), 0);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_add(0x7fffffffffffffffull, 1, 0, 8, &f), 0x8000000000000000ull);
	assert_int_equal(arith(f), RFLAGS_OF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_add(1, 2, 0, 8, &f), 3);
	assert_int_equal(arith(f), RFLAGS_PF);	    /* 0b11: even parity */
	assert_int_equal(f & ~ARITH, RFLAGS_FIXED); /* other bits untouched */
}

static void test_flags_adc_sbb(void **state)
{
	u64 f = 0;

	(void)state;
	assert_int_equal(flags_add(0xff, 0, 1, 1, &f), 0);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF);
	/* ~0 + ~0 + 1 = ~0 with a carry: the 64-bit carry with carry-in. */
	assert_int_equal(flags_add(~0ull, ~0ull, 1, 8, &f), ~0ull);
	assert_true(f & RFLAGS_CF);
	assert_false(f & RFLAGS_OF);
	assert_int_equal(flags_add(~0ull, 0, 1, 8, &f), 0);
	assert_true(f & RFLAGS_CF);
	assert_true(f & RFLAGS_ZF);
	/* 0 - 0 - 1: a borrow. */
	assert_int_equal(flags_sub(0, 0, 1, 4, &f), 0xffffffff);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_sub(5, 5, 1, 8, &f), ~0ull);
	assert_true(f & RFLAGS_CF);
}

static void test_flags_sub(void **state)
{
	u64 f = 0;

	(void)state;
	assert_int_equal(flags_sub(0, 1, 0, 1, &f), 0xff);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_sub(0x80, 1, 0, 1, &f), 0x7f);
	assert_int_equal(arith(f), RFLAGS_OF | RFLAGS_AF);
	assert_int_equal(flags_sub(5, 5, 0, 4, &f), 0);
	assert_int_equal(arith(f), RFLAGS_ZF | RFLAGS_PF);
	assert_int_equal(flags_sub(0x8000000000000000ull, 1, 0, 8, &f), 0x7fffffffffffffffull);
	assert_int_equal(arith(f), RFLAGS_OF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_sub(1, 0x8000000000000000ull, 0, 8, &f), 0x8000000000000001ull);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_OF | RFLAGS_SF);
}

static void test_flags_inc_dec_neg(void **state)
{
	u64 f = RFLAGS_CF;

	(void)state;
	/* inc/dec keep CF. */
	assert_int_equal(flags_inc(0x7fffffff, 4, &f), 0x80000000);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_OF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_inc(0xff, 1, &f), 0);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF);
	f = 0;
	assert_int_equal(flags_dec(0, 2, &f), 0xffff);
	assert_int_equal(arith(f), RFLAGS_SF | RFLAGS_AF | RFLAGS_PF); /* no CF from dec */
	assert_int_equal(flags_dec(0x80000000, 4, &f), 0x7fffffff);
	assert_int_equal(arith(f), RFLAGS_OF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_dec(1, 8, &f), 0);
	assert_int_equal(arith(f), RFLAGS_ZF | RFLAGS_PF);
	/* neg: CF = (source != 0); neg of the most negative value overflows. */
	assert_int_equal(flags_neg(0, 8, &f), 0);
	assert_int_equal(arith(f), RFLAGS_ZF | RFLAGS_PF);
	assert_int_equal(flags_neg(1, 1, &f), 0xff);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
	assert_int_equal(flags_neg(0x80, 1, &f), 0x80);
	assert_int_equal(arith(f), RFLAGS_CF | RFLAGS_OF | RFLAGS_SF);
}

static void test_flags_logic(void **state)
{
	u64 f = ARITH;

	(void)state;
	assert_int_equal(flags_logic(0, 8, &f), 0);
	assert_int_equal(arith(f), RFLAGS_ZF | RFLAGS_PF);
	assert_int_equal(flags_logic(0x1ff, 1, &f), 0xff);
	assert_int_equal(arith(f), RFLAGS_SF | RFLAGS_PF);
	assert_int_equal(flags_logic(0x01, 4, &f), 1);
	assert_int_equal(arith(f), 0); /* odd parity */
}

/*
 * The helpers against the host CPU: the same operation run natively, its
 * RFLAGS read with pushf. AF is undefined after logic operations and is not
 * compared there.
 */
#define HOST_OP2(insn, suffix, reg, type)                                                      \
	static u64 host_##insn##suffix(u64 a, u64 b, u64 fin, u64 *fout)                       \
	{                                                                                      \
		type x = (type)a, y = (type)b;                                                 \
		u64 f;                                                                         \
		__asm__ volatile("push %[fin]\n\tpopf\n\t" #insn #suffix " %" reg "[y], %" reg \
				 "[x]\n\tpushf\n\tpop %[f]"                                    \
				 : [x] "+r"(x), [f] "=r"(f)                                    \
				 : [y] "r"(y), [fin] "r"(fin)                                  \
				 : "cc");                                                      \
		*fout = f;                                                                     \
		return (u64)x;                                                                 \
	}
#define HOST_OP1(insn, suffix, reg, type)                                         \
	static u64 host_##insn##suffix(u64 a, u64 b, u64 fin, u64 *fout)          \
	{                                                                         \
		type x = (type)a;                                                 \
		u64 f;                                                            \
		(void)b;                                                          \
		__asm__ volatile("push %[fin]\n\tpopf\n\t" #insn #suffix " %" reg \
				 "[x]\n\tpushf\n\tpop %[f]"                       \
				 : [x] "+r"(x), [f] "=r"(f)                       \
				 : [fin] "r"(fin)                                 \
				 : "cc");                                         \
		*fout = f;                                                        \
		return (u64)x;                                                    \
	}
#define HOST_ALL(OP, insn)    \
	OP(insn, b, "b", u8)  \
	OP(insn, w, "w", u16) \
	OP(insn, l, "k", u32) \
	OP(insn, q, "q", u64)
HOST_ALL(HOST_OP2, add)
HOST_ALL(HOST_OP2, adc)
HOST_ALL(HOST_OP2, sub)
HOST_ALL(HOST_OP2, sbb)
HOST_ALL(HOST_OP2, and)
HOST_ALL(HOST_OP2, xor)
HOST_ALL(HOST_OP1, inc)
HOST_ALL(HOST_OP1, dec)
HOST_ALL(HOST_OP1, neg)

typedef u64 (*host_fn)(u64 a, u64 b, u64 fin, u64 *fout);

enum family { F_ADD, F_ADC, F_SUB, F_SBB, F_AND, F_XOR, F_INC, F_DEC, F_NEG, F_COUNT };

static const host_fn host_ops[F_COUNT][4] = {
	{ host_addb, host_addw, host_addl, host_addq },
	{ host_adcb, host_adcw, host_adcl, host_adcq },
	{ host_subb, host_subw, host_subl, host_subq },
	{ host_sbbb, host_sbbw, host_sbbl, host_sbbq },
	{ host_andb, host_andw, host_andl, host_andq },
	{ host_xorb, host_xorw, host_xorl, host_xorq },
	{ host_incb, host_incw, host_incl, host_incq },
	{ host_decb, host_decw, host_decl, host_decq },
	{ host_negb, host_negw, host_negl, host_negq },
};

static u64 helper(enum family fam, u64 a, u64 b, unsigned size, u64 *f)
{
	unsigned cf = (*f & RFLAGS_CF) ? 1 : 0;

	switch (fam) {
	case F_ADD: return flags_add(a, b, 0, size, f);
	case F_ADC: return flags_add(a, b, cf, size, f);
	case F_SUB: return flags_sub(a, b, 0, size, f);
	case F_SBB: return flags_sub(a, b, cf, size, f);
	case F_AND: return flags_logic(a & b, size, f);
	case F_XOR: return flags_logic(a ^ b, size, f);
	case F_INC: return flags_inc(a, size, f);
	case F_DEC: return flags_dec(a, size, f);
	default: return flags_neg(a, size, f);
	}
}

/* Operands that hit the edges: 0, 1, all ones, the sign bit and its neighbours. */
static u64 edge_or_random(u32 *seed)
{
	static const u64 edges[] = { 0,
				     1,
				     0x7f,
				     0x80,
				     0xff,
				     0x7fff,
				     0x8000,
				     0xffff,
				     0x7fffffff,
				     0x80000000,
				     0xffffffff,
				     0x7fffffffffffffffull,
				     0x8000000000000000ull,
				     ~0ull,
				     0xf,
				     0x10 };
	u32 r;

	*seed = *seed * 1103515245u + 12345u;
	r = *seed >> 8;
	if (r & 1)
		return edges[(r >> 1) % (sizeof(edges) / sizeof(edges[0]))];
	*seed = *seed * 1103515245u + 12345u;
	return ((u64)r << 40) ^ ((u64)*seed << 8) ^ (*seed >> 4);
}

static void test_flags_vs_host(void **state)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	u32 seed = 42;

	(void)state;
	for (unsigned it = 0; it < 200000; it++) {
		enum family fam = (enum family)(it % F_COUNT);
		unsigned si = (it / F_COUNT) % 4, size = sizes[si];
		u64 a = flags_trunc(edge_or_random(&seed), size);
		u64 b = flags_trunc(edge_or_random(&seed), size);
		u64 fin = RFLAGS_FIXED | ((seed >> 3) & 1 ? RFLAGS_CF : 0);
		u64 fhost, f = fin, mask = ARITH;
		u64 rhost = host_ops[fam][si](a, b, fin, &fhost);
		u64 r = helper(fam, a, b, size, &f);

		if (fam == F_AND || fam == F_XOR)
			mask &= ~RFLAGS_AF; /* undefined */
		if (flags_trunc(rhost, size) != r || (fhost & mask) != (f & mask))
			fail_msg("family %d size %u a %#llx b %#llx cf %d: host %#llx/%#llx ours "
				 "%#llx/%#llx",
				 fam, size, (unsigned long long)a, (unsigned long long)b,
				 (int)(fin & RFLAGS_CF), (unsigned long long)rhost,
				 (unsigned long long)(fhost & mask), (unsigned long long)r,
				 (unsigned long long)(f & mask));
	}
}

/* ---- mov -------------------------------------------------------------------- */

static void test_mov_store_reg(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0x18, 0x1111111111111111ull);
	env->cpu.gpr[EMU_RAX] = 0x8000000000000063ull; /* a gpte */
	assert_ok(env, RUN(env, &rep, 0x48, 0x89, 0x07), &rep, CODE_VA + 3);
	assert_string_equal(rep.mnemonic, "mov");
	assert_int_equal(peek64(env, DATA_VA + 0x18), 0x8000000000000063ull);
	assert_one_write(env, DATA_VA + 0x18, 8, 0x1111111111111111ull, 0x8000000000000063ull);
	/* 32-bit store with SIB and displacement: [rdi + rcx*8 + 8]. */
	env->nwrites = 0;
	env->cpu.gpr[EMU_RCX] = 1;
	env->cpu.gpr[EMU_RBX] = 0xaabbccdd;
	assert_ok(env, RUN(env, &rep, 0x89, 0x5c, 0xcf, 0x08), &rep, CODE_VA + 7);
	assert_one_write(env, DATA_VA + 0x28, 4, 0, 0xaabbccdd);
}

static void test_mov_store_imm(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0, 0);
	/* mov qword [rdi], -1: imm32 sign-extended to 64 bits. */
	assert_ok(env, RUN(env, &rep, 0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff), &rep, CODE_VA + 7);
	assert_one_write(env, DATA_VA, 8, 0, ~0ull);
	/* mov byte [rdi], 0x80. */
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0xc6, 0x07, 0x80), &rep, CODE_VA + 10);
	assert_one_write(env, DATA_VA, 1, 0xff, 0x80);
	assert_int_equal(peek64(env, DATA_VA), 0xffffffffffffff80ull);
	/* mov word [rdi], 0x1234. */
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0x66, 0xc7, 0x07, 0x34, 0x12), &rep, CODE_VA + 15);
	assert_one_write(env, DATA_VA, 2, 0xff80, 0x1234);
}

static void test_mov_load(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 8, 0x1122334455667788ull);
	env->cpu.gpr[EMU_RAX] = ~0ull;
	assert_ok(env, RUN(env, &rep, 0x8a, 0x07), &rep, CODE_VA + 2); /* mov al, [rdi] */
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0xffffffffffffff88ull);
	assert_ok(env, RUN(env, &rep, 0x8b, 0x07), &rep, CODE_VA + 4); /* mov eax, [rdi] */
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x55667788);
	assert_ok(env, RUN(env, &rep, 0x48, 0x8b, 0x07), &rep, CODE_VA + 7);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1122334455667788ull);
	assert_int_equal(env->nwrites, 0);
}

static void test_movabs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x40, 0);
	env->cpu.gpr[EMU_RAX] = 0xfeedfacecafebeefull;
	/* movabs [0x600040], rax */
	assert_ok(env, RUN(env, &rep, 0x48, 0xa3, 0x40, 0x00, 0x60, 0, 0, 0, 0, 0), &rep,
		  CODE_VA + 10);
	assert_string_equal(rep.mnemonic, "movabs");
	assert_one_write(env, DATA_VA + 0x40, 8, 0, 0xfeedfacecafebeefull);
	/* movabs eax, [0x600044] */
	env->cpu.gpr[EMU_RAX] = 0;
	assert_ok(env, RUN(env, &rep, 0xa1, 0x44, 0x00, 0x60, 0, 0, 0, 0, 0), &rep, CODE_VA + 19);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0xfeedface);
	/* movabs r64, imm64: a register form, no memory (it was unknown) */
	assert_ok(env, RUN(env, &rep, 0x49, 0xbb, 1, 2, 3, 4, 5, 6, 7, 0x88), &rep, CODE_VA + 29);
	assert_int_equal(env->cpu.gpr[EMU_R11], 0x8807060504030201ull);
	assert_int_equal(env->nwrites, 1);
}

/* MMIO: a load goes to ops->mmio_read, a store is reported with no hva. */
static void test_mov_mmio(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	const struct emu_write *w = &env->writes[0];

	env->cpu.gpr[EMU_RSI] = MMIO_VA;
	assert_ok(env, RUN(env, &rep, 0x8b, 0x46, 0x20), &rep,
		  CODE_VA + 3); /* mov eax, [rsi+0x20] */
	assert_int_equal(env->cpu.gpr[EMU_RAX], (u32)MMIO_VALUE);
	assert_int_equal(env->mmio_reads, 1);
	assert_int_equal(env->mmio_read_gpa.v, MMIO_GPA + 0x20);
	env->cpu.gpr[EMU_RBX] = 0x12345678;
	assert_ok(env, RUN(env, &rep, 0x89, 0x5e, 0x30), &rep,
		  CODE_VA + 6); /* mov [rsi+0x30], ebx */
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(w->piece[0].gpa.v, MMIO_GPA + 0x30);
	assert_null(w->piece[0].hva);
	assert_int_equal(w->len, 4);
	assert_memory_equal(w->new_bytes, &(u32){ 0x12345678 }, 4);
	assert_memory_equal(w->old_bytes, &(u32){ 0 }, 4); /* never read from MMIO */
	assert_int_equal(env->mmio_reads, 1);
}

/* A store across a page boundary: one report, two pieces. */
static void test_mov_split_page(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	const struct emu_write *w = &env->writes[0];

	env->cpu.gpr[EMU_RDI] = DATA_VA + PAGE_SIZE - 3;
	env->cpu.gpr[EMU_RAX] = 0x0807060504030201ull;
	assert_ok(env, RUN(env, &rep, 0x48, 0x89, 0x07), &rep, CODE_VA + 3);
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(w->len, 8);
	assert_int_equal(w->npieces, 2);
	assert_int_equal(w->piece[0].gpa.v, DATA_GPA + PAGE_SIZE - 3);
	assert_int_equal(w->piece[0].len, 3);
	assert_int_equal(w->piece[1].gpa.v, DATA_GPA + PAGE_SIZE);
	assert_int_equal(w->piece[1].off, 3);
	assert_int_equal(w->piece[1].len, 5);
	assert_int_equal(peek64(env, DATA_VA + PAGE_SIZE - 3), 0x0807060504030201ull);
}

/* ---- faults ----------------------------------------------------------------- */

/* #PF from the walker with its exact error code and CR2; nothing stored. */
static void test_mov_pf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	/* CPL3 store to a read-only user page: P | W | U. */
	to_user(env);
	env->cpu.gpr[EMU_RDI] = RO_VA + 0x10;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->last_event.error_code, PFERR_PRESENT | PFERR_WRITE | PFERR_USER);
	assert_int_equal(env->cpu.cr2, RO_VA + 0x10);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
	assert_true(rep.notes & EMU_NOTE_CPL);
	assert_frame(env, true, PFERR_PRESENT | PFERR_WRITE | PFERR_USER, CODE_VA, SEL_UCODE,
		     before.rflags | RFLAGS_RF, before.gpr[EMU_RSP], SEL_UDATA);
	assert_int_equal(env->nwrites, 1); /* only the exception frame */
	assert_int_equal(env->writes[0].len, 48);
}

/* A store whose second page does not translate stores nothing (not even its first part). */
static void test_mov_split_pf_writes_nothing(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = DATA_VA + 2 * PAGE_SIZE - 4;
	poke64(env, DATA_VA + 2 * PAGE_SIZE - 8, 0);
	env->cpu.gpr[EMU_RAX] = ~0ull;
	assert_int_equal(RUN(env, &rep, 0x48, 0x89, 0x07), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->last_event.error_code, PFERR_WRITE);
	assert_int_equal(env->cpu.cr2, DATA_VA + 2 * PAGE_SIZE);
	assert_int_equal(peek64(env, DATA_VA + 2 * PAGE_SIZE - 8), 0);
	assert_int_equal(env->writes[0].len, 48); /* the frame only */
}

static void test_mov_noncanonical_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = 0x0000800000000000ull;
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
	assert_int_equal(env->last_event.error_code, 0);
	/* Through RSP/RBP it is #SS(0). */
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.gpr[EMU_RBP] = 0x0000800000000000ull;
	set_gate(env, X86_EXC_SS, HANDLER_GP, 0xe, 0, 0);
	assert_int_equal(RUN(env, &rep, 0x89, 0x45, 0x00), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_SS);
}

/* A register-only add never traps nor bridges: not ours, reported with its bytes. */
static void test_unknown_reports_bytes(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	assert_int_equal(RUN(env, &rep, 0x48, 0x01, 0xd8), EMU_UNKNOWN); /* add rax, rbx */
	assert_string_equal(rep.mnemonic, "add");
	assert_true(rep.code_len >= 3);
	assert_memory_equal(rep.code, ((const u8[]){ 0x48, 0x01, 0xd8 }), 3);
	/* xrstors [rdi]: supervisor state, not emulated. */
	assert_int_equal(RUN(env, &rep, 0x0f, 0xc7, 0x1f), EMU_UNKNOWN);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
}

/* xor/sub r, r: zero and the operation's flags; any other register-only ALU is unknown. */
static void test_zero_idiom(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = 0xffffffff12345678ull;
	env->cpu.rflags = 0x2 | RFLAGS_CF | RFLAGS_OF | RFLAGS_SF | RFLAGS_AF;
	assert_ok(env, RUN(env, &rep, 0x31, 0xc0), &rep, CODE_VA + 2); /* xor eax, eax */
	assert_string_equal(rep.mnemonic, "xor");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0); /* the 32-bit write zero-extends */
	assert_int_equal(env->cpu.rflags, 0x2 | RFLAGS_ZF | RFLAGS_PF);
	env->cpu.gpr[EMU_R9] = 5;
	env->cpu.rflags = 0x2 | RFLAGS_CF;
	assert_ok(env, RUN(env, &rep, 0x4d, 0x29, 0xc9), &rep, CODE_VA + 5); /* sub r9, r9 */
	assert_int_equal(env->cpu.gpr[EMU_R9], 0);
	assert_int_equal(env->cpu.rflags, 0x2 | RFLAGS_ZF | RFLAGS_PF);
	env->cpu.gpr[EMU_RCX] = 0x1234;
	assert_ok(env, RUN(env, &rep, 0x66, 0x31, 0xc9), &rep, CODE_VA + 8); /* xor cx, cx */
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0); /* 16 bits: the rest kept (was 0) */
	env->cpu.gpr[EMU_RCX] = 0xaa55;
	assert_ok(env, RUN(env, &rep, 0x30, 0xc9), &rep, CODE_VA + 10); /* xor cl, cl */
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0xaa00);
	assert_int_equal(env->nwrites, 0);
	/* Two registers, or another operation: not the idiom. */
	assert_int_equal(RUN(env, &rep, 0x31, 0xd8), EMU_UNKNOWN); /* xor eax, ebx */
	assert_int_equal(RUN(env, &rep, 0x21, 0xc0), EMU_UNKNOWN); /* and eax, eax */
}

/*
 * Item 8: the register forms a chain bridges in a user copy. mov writes
 * the register (32 bits zero-extend, 8 and 16 keep the rest) and no flags;
 * cmp and test set the flags from the registers and leave them alone.
 */
static void test_register_forms(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rip = CODE_VA;

#define STEP(len, ...) (assert_ok(env, RUN(env, &rep, __VA_ARGS__), &rep, rip += (len)))
	env->cpu.gpr[EMU_RDX] = 0xffffffff00000040ull;
	env->cpu.gpr[EMU_RCX] = ~0ull;
	env->cpu.rflags = 0x2 | RFLAGS_CF;
	STEP(2, 0x89, 0xd1); /* mov %edx,%ecx */
	assert_string_equal(rep.mnemonic, "mov");
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x40);
	assert_int_equal(env->cpu.rflags, 0x2 | RFLAGS_CF);
	STEP(3, 0x83, 0xfa, 0x40); /* cmp $64,%edx: equal */
	assert_string_equal(rep.mnemonic, "cmp");
	assert_int_equal(env->cpu.rflags, 0x2 | RFLAGS_ZF | RFLAGS_PF);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0xffffffff00000040ull);
	STEP(4, 0x48, 0x83, 0xfa, 0x41); /* cmp $65,%rdx: 64-bit, no borrow */
	assert_false(env->cpu.rflags & RFLAGS_CF);
	STEP(3, 0x83, 0xfa, 0x41); /* cmp $65,%edx: 32-bit, a borrow */
	assert_true(env->cpu.rflags & RFLAGS_CF);
	STEP(2, 0x85, 0xd2); /* test %edx,%edx */
	assert_string_equal(rep.mnemonic, "test");
	assert_int_equal(env->cpu.rflags, 0x2);
	STEP(3, 0x49, 0x8b, 0xc2); /* mov %r10,%rax */
	assert_int_equal(env->cpu.gpr[EMU_RAX], env->cpu.gpr[EMU_R10]);
	env->cpu.gpr[EMU_RBX] = 0x1234;
	STEP(2, 0x88, 0xdf); /* mov %bl,%bh */
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0x3434);
	STEP(5, 0xb8, 0x78, 0x56, 0x34, 0x12); /* mov $0x12345678,%eax */
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x12345678);
	STEP(5, 0x3d, 0x79, 0x56, 0x34, 0x12); /* cmp $0x12345679,%eax */
	assert_true(env->cpu.rflags & RFLAGS_CF);
	assert_true(env->cpu.rflags & RFLAGS_SF);
	STEP(6, 0xf7, 0xc0, 0x00, 0x00, 0x00, 0x80); /* test $0x80000000,%eax */
	assert_true(env->cpu.rflags & RFLAGS_ZF);
#undef STEP
	assert_int_equal(env->nwrites, 0);
}

/* nop, nopw, nopl with a memory operand: RIP moves, nothing is read or written. */
static void test_nop(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rflags = 0x2 | RFLAGS_CF;

	env->cpu.rflags = rflags;
	env->cpu.gpr[EMU_RAX] = 0xdead0000beefull; /* nopl 0(%rax,%rax) would fault there */
	assert_ok(env, RUN(env, &rep, 0x90), &rep, CODE_VA + 1);
	assert_string_equal(rep.mnemonic, "nop");
	assert_ok(env, RUN(env, &rep, 0x66, 0x90), &rep, CODE_VA + 3);
	assert_ok(env, RUN(env, &rep, 0x0f, 0x1f, 0x44, 0x00, 0x00), &rep, CODE_VA + 8);
	assert_ok(env, RUN(env, &rep, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00), &rep, CODE_VA + 14);
	assert_int_equal(env->cpu.rflags, rflags);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0xdead0000beefull);
	assert_int_equal(env->nwrites, 0);
}

/* push r64 (%rsp: its value before), push imm8/imm32 sign-extended; push m is unknown. */
static void test_push(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 sp = STACK_VA + 0x100;

	env->cpu.gpr[EMU_RSP] = sp;
	env->cpu.gpr[EMU_RAX] = 0x1122334455667788ull;
	assert_ok(env, RUN(env, &rep, 0x50), &rep, CODE_VA + 1); /* push %rax */
	assert_string_equal(rep.mnemonic, "push");
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp - 8);
	assert_int_equal(peek64(env, sp - 8), 0x1122334455667788ull);
	assert_ok(env, RUN(env, &rep, 0x54), &rep, CODE_VA + 2); /* push %rsp */
	assert_int_equal(peek64(env, sp - 16), sp - 8);
	assert_ok(env, RUN(env, &rep, 0x6a, 0xf0), &rep, CODE_VA + 4); /* push $-16 */
	assert_int_equal(peek64(env, sp - 24), (u64)-16);
	assert_ok(env, RUN(env, &rep, 0x68, 0x78, 0x56, 0x34, 0x82), &rep, CODE_VA + 9);
	assert_int_equal(peek64(env, sp - 32), 0xffffffff82345678ull);	/* push $imm32 */
	assert_ok(env, RUN(env, &rep, 0x41, 0x57), &rep, CODE_VA + 11); /* push %r15 */
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp - 40);
	assert_int_equal(env->nwrites, 5);
	assert_int_equal(RUN(env, &rep, 0xff, 0x37), EMU_UNKNOWN); /* push (%rdi) */
}

/*
 * push imm with 66: two bytes (pushw), unless REX.W follows it (eight, the
 * imm32 sign-extended). Capstone 4 reports both as eight-byte operands and
 * the second unextended; test_emulate_native found both.
 */
static void test_push_imm_operand_size(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 sp = STACK_VA + 0x100;

	env->cpu.gpr[EMU_RSP] = sp;
	poke64(env, sp - 8, 0);
	assert_ok(env, RUN(env, &rep, 0x66, 0x6a, 0xa5), &rep, CODE_VA + 3); /* pushw $-0x5b */
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp - 2);
	assert_int_equal(peek64(env, sp - 8), 0xffa5ull << 48);
	assert_ok(env, RUN(env, &rep, 0x66, 0x68, 0x34, 0x12), &rep, CODE_VA + 7); /* pushw $imm16 */
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp - 4);
	assert_int_equal(peek64(env, sp - 8) >> 32, 0xffa51234ull);
	/* 66 REX.W: REX.W wins; a REX before the 66 would not count (pushw again). */
	assert_ok(env, RUN(env, &rep, 0x66, 0x48, 0x68, 0x16, 0x5a, 0x60, 0xa5), &rep,
		  CODE_VA + 14);
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp - 12);
	assert_int_equal(peek64(env, sp - 12), 0xffffffffa5605a16ull);
	assert_ok(env, RUN(env, &rep, 0x48, 0x66, 0x6a, 0x01), &rep, CODE_VA + 18);
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp - 14);
}

/* LOCK with REP on a string instruction is #UD: capstone's prefix[0] shows only the REP. */
static void test_lock_rep_movs_ud(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RSI] = DATA_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x100;
	env->cpu.gpr[EMU_RCX] = 4;
	assert_int_equal(RUN(env, &rep, 0xf0, 0xf3, 0x48, 0xa5), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 4);
	assert_int_equal(env->nwrites, 1); /* the #UD frame only */
}

/* pop r64/r16 from the stack; pop %rsp is left to the CPU (unknown). */
static void test_pop_gpr(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 sp = STACK_VA + 0x100;

	env->cpu.gpr[EMU_RSP] = sp;
	poke64(env, sp, 0x1122334455667788ull);
	poke64(env, sp + 8, 0xa5a5);
	assert_ok(env, RUN(env, &rep, 0x58), &rep, CODE_VA + 1); /* pop %rax */
	assert_string_equal(rep.mnemonic, "pop");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1122334455667788ull);
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp + 8);
	env->cpu.gpr[EMU_R9] = ~0ull;
	assert_ok(env, RUN(env, &rep, 0x66, 0x41, 0x59), &rep, CODE_VA + 4); /* pop %r9w */
	assert_int_equal(env->cpu.gpr[EMU_R9], 0xffffffffffffa5a5ull);
	assert_int_equal(env->cpu.gpr[EMU_RSP], sp + 10);
	assert_int_equal(env->nwrites, 0);
	assert_int_equal(RUN(env, &rep, 0x5c), EMU_UNKNOWN); /* pop %rsp */
}

/* ---- movs, stos ------------------------------------------------------------- */

static void test_stos(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0, 0);
	env->cpu.gpr[EMU_RAX] = 0x41;
	assert_ok(env, RUN(env, &rep, 0xaa), &rep, CODE_VA + 1);
	assert_string_equal(rep.mnemonic, "stosb");
	assert_one_write(env, DATA_VA, 1, 0, 0x41);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 1);
	/* DF = 1: RDI goes down. */
	env->cpu.rflags |= RFLAGS_DF;
	env->cpu.gpr[EMU_RAX] = 0x1122334455667788ull;
	assert_ok(env, RUN(env, &rep, 0x48, 0xab), &rep, CODE_VA + 3);
	assert_string_equal(rep.mnemonic, "stosq");
	assert_int_equal(peek64(env, DATA_VA + 1), 0x1122334455667788ull);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 1 - 8);
}

static void test_rep_stos_complete(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 3;
	env->cpu.gpr[EMU_RAX] = 0x8000000000000001ull;
	assert_ok(env, RUN(env, &rep, 0xf3, 0x48, 0xab), &rep, CODE_VA + 3);
	assert_string_equal(rep.mnemonic, "stosq");
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 24);
	assert_int_equal(env->nwrites, 3); /* one report per iteration, each 8 bytes */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(env->writes[i].la, DATA_VA + 8 * i);
		assert_int_equal(env->writes[i].len, 8);
		assert_int_equal(peek64(env, DATA_VA + 8 * i), 0x8000000000000001ull);
	}
	assert_int_equal(rep.notes, 0);
	/* RCX = 0: nothing stored, RIP moves on. */
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0xf3, 0xaa), &rep, CODE_VA + 5);
	assert_int_equal(env->nwrites, 0);
}

/* At most rep_limit iterations per call: RIP stays, RCX/RDI exact, resumable. */
static void test_rep_stos_partial(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.rep_limit = 4;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 10;
	env->cpu.gpr[EMU_RAX] = 0x5a;
	assert_ok(env, RUN(env, &rep, 0xf3, 0xaa), &rep, CODE_VA);
	assert_int_equal(rep.notes, EMU_NOTE_REP_PARTIAL);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 6);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 4);
	assert_int_equal(env->nwrites, 4);
	/* Resuming finishes it. */
	assert_ok(env, RUN(env, &rep, 0xf3, 0xaa), &rep, CODE_VA);
	assert_ok(env, RUN(env, &rep, 0xf3, 0xaa), &rep, CODE_VA + 2);
	assert_int_equal(rep.notes, 0);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 10);
	assert_int_equal(peek64(env, DATA_VA), 0x5a5a5a5a5a5a5a5aull);
}

/*
 * rep stosq that runs into an unmapped page: the iterations before the
 * fault stay done, RCX and RDI say where it stopped, the #PF frame holds
 * the instruction's RIP (SDM Vol. 2B REP).
 */
static void test_rep_stos_fault_midway(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 end = DATA_VA + 2 * PAGE_SIZE;

	env->cpu.gpr[EMU_RDI] = end - 16;
	env->cpu.gpr[EMU_RCX] = 4;
	env->cpu.gpr[EMU_RAX] = 0x77;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0xab), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->last_event.error_code, PFERR_WRITE);
	assert_int_equal(env->cpu.cr2, end);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 2);
	assert_int_equal(env->cpu.gpr[EMU_RDI], end);
	assert_int_equal(peek64(env, end - 8), 0x77);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP] + 8), CODE_VA); /* frame RIP */
	assert_int_equal(env->nwrites, 3); /* two iterations and the frame */
}

static void test_rep_movs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x100, 0x0102030405060708ull);
	env->cpu.gpr[EMU_RSI] = DATA_VA + 0x100;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x200;
	env->cpu.gpr[EMU_RCX] = 8;
	assert_ok(env, RUN(env, &rep, 0xf3, 0xa4), &rep, CODE_VA + 2);
	assert_string_equal(rep.mnemonic, "movsb");
	assert_int_equal(peek64(env, DATA_VA + 0x200), 0x0102030405060708ull);
	assert_int_equal(env->cpu.gpr[EMU_RSI], DATA_VA + 0x108);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 0x208);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_one_write(env, DATA_VA + 0x200, 8, 0, 0x0102030405060708ull); /* one chunk */
	/* movsq, no rep: one qword. */
	env->nwrites = 0;
	env->cpu.gpr[EMU_RSI] = DATA_VA + 0x100;
	assert_ok(env, RUN(env, &rep, 0x48, 0xa5), &rep, CODE_VA + 4);
	assert_string_equal(rep.mnemonic, "movsq");
	assert_one_write(env, DATA_VA + 0x208, 8, 0, 0x0102030405060708ull);
	/* rep movsd (dword). */
	env->nwrites = 0;
	env->cpu.gpr[EMU_RSI] = DATA_VA + 0x100;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x300;
	env->cpu.gpr[EMU_RCX] = 2;
	assert_ok(env, RUN(env, &rep, 0xf3, 0xa5), &rep, CODE_VA + 6);
	assert_int_equal(peek64(env, DATA_VA + 0x300), 0x0102030405060708ull);
	assert_one_write(env, DATA_VA + 0x300, 8, 0, 0x0102030405060708ull);
}

/* Fill [la, la+len) with a pattern that tells each byte apart. */
static void pattern_at(struct env *env, u64 la, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		env->ram[DATA_GPA + (la - DATA_VA) + i] = (u8)(i * 7 + 3);
}

/*
 * A forward rep movs goes in chunks of at most EMU_WRITE_MAX bytes that
 * end where either side's page does: 200 bytes from 0x30 before the end of
 * the first page to the second go out as stores of 48 (to the source's
 * page end), 64, 64 and 24 bytes, each a whole number of elements.
 */
static void test_rep_movs_chunks(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 src = DATA_VA + PAGE_SIZE - 0x30, dst = DATA_VA + 0x100;

	pattern_at(env, src, 200);
	env->cpu.virt.rep_limit = 200;
	env->cpu.gpr[EMU_RSI] = src;
	env->cpu.gpr[EMU_RDI] = dst;
	env->cpu.gpr[EMU_RCX] = 200;
	assert_ok(env, RUN(env, &rep, 0xf3, 0xa4), &rep, CODE_VA + 2);
	assert_int_equal(
		memcmp(env->ram + DATA_GPA + 0x100, env->ram + DATA_GPA + PAGE_SIZE - 0x30, 200),
		0);
	assert_int_equal(env->nwrites, 4);
	assert_int_equal(env->writes[0].len, 48);
	assert_int_equal(env->writes[1].len, 64);
	assert_int_equal(env->writes[3].len, 24);
	assert_int_equal(env->writes[3].la, dst + 176);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_int_equal(env->cpu.gpr[EMU_RSI], src + 200);
	assert_int_equal(env->cpu.gpr[EMU_RDI], dst + 200);
	/*
	 * rep movsq whose source page ends 4 bytes into its second element:
	 * the first (alone before the page end) and the straddler go one by
	 * one, the last three as one chunk.
	 */
	env->nwrites = 0;
	pattern_at(env, DATA_VA + PAGE_SIZE - 12, 40);
	env->cpu.gpr[EMU_RSI] = DATA_VA + PAGE_SIZE - 12;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x400;
	env->cpu.gpr[EMU_RCX] = 5;
	assert_ok(env, RUN(env, &rep, 0xf3, 0x48, 0xa5), &rep, CODE_VA + 5);
	assert_int_equal(env->nwrites, 3);
	assert_int_equal(env->writes[1].len, 8);
	assert_int_equal(env->writes[2].len, 24);
	assert_int_equal(
		memcmp(env->ram + DATA_GPA + 0x400, env->ram + DATA_GPA + PAGE_SIZE - 12, 40), 0);
	/* rep_limit counts elements, chunks or not. */
	env->nwrites = 0;
	env->cpu.virt.rep_limit = 10;
	env->cpu.gpr[EMU_RSI] = DATA_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x800;
	env->cpu.gpr[EMU_RCX] = 100;
	assert_ok(env, RUN(env, &rep, 0xf3, 0xa4), &rep, CODE_VA + 5); /* RIP stays */
	assert_int_equal(rep.notes, EMU_NOTE_REP_PARTIAL);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 90);
	assert_int_equal(env->cpu.gpr[EMU_RSI], DATA_VA + 10);
}

/* Overlapping, the destination just above the source: byte by byte, as the CPU repeats it. */
static void test_rep_movs_overlap(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0x100, 0xab);
	env->cpu.gpr[EMU_RSI] = DATA_VA + 0x100;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x101;
	env->cpu.gpr[EMU_RCX] = 16;
	assert_ok(env, RUN(env, &rep, 0xf3, 0xa4), &rep, CODE_VA + 2);
	for (unsigned i = 0; i <= 16; i++)
		assert_int_equal(env->ram[DATA_GPA + 0x100 + i], 0xab);
	assert_int_equal(env->nwrites, 16);
}

/*
 * A chunked copy that runs into an unmapped page: the bytes before it are
 * copied, RCX/RSI/RDI stop exactly at the page, and the #PF names its first
 * byte, as the element-by-element copy would.
 */
static void test_rep_movs_fault_midway(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 end = DATA_VA + 2 * PAGE_SIZE;

	pattern_at(env, DATA_VA, 100);
	env->cpu.gpr[EMU_RSI] = DATA_VA;
	env->cpu.gpr[EMU_RDI] = end - 40;
	env->cpu.gpr[EMU_RCX] = 100;
	assert_int_equal(RUN(env, &rep, 0xf3, 0xa4), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->last_event.error_code, PFERR_WRITE);
	assert_int_equal(env->cpu.cr2, end);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 60);
	assert_int_equal(env->cpu.gpr[EMU_RSI], DATA_VA + 40);
	assert_int_equal(env->cpu.gpr[EMU_RDI], end);
	assert_int_equal(memcmp(env->ram + DATA_GPA + 2 * PAGE_SIZE - 40, env->ram + DATA_GPA, 40),
			 0);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP] + 8), CODE_VA); /* frame RIP */
}

/* ---- xchg, cmpxchg ---------------------------------------------------------- */

/* 32-bit code (compatibility mode) whose DS and ES start at DATA_VA and DATA_VA + es_off. */
static void to_compat_segments(struct env *env, u64 es_off)
{
	env->cpu.cs.l = 0;
	env->cpu.cs.db = 1;
	env->cpu.virt.ds_base = DATA_VA;
	env->cpu.virt.es_base = DATA_VA + es_off;
}

/*
 * A 67 prefix in 32-bit code: SI, DI and CX count in 16 bits, their upper
 * bits stay, and an index wraps at 64 KiB (SDM Vol. 1 §3.3.7).
 */
static void test_string_addr16(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_compat_segments(env, 0);
	poke64(env, DATA_VA + 0x100, 0x0807060504030201ull);
	env->cpu.gpr[EMU_RSI] = 0x12340100;
	env->cpu.gpr[EMU_RDI] = 0x56780200;
	env->cpu.gpr[EMU_RCX] = 0x9abc0003; /* CX = 3 */
	assert_ok(env, RUN(env, &rep, 0x67, 0xf3, 0xa4), &rep, CODE_VA + 3);
	assert_int_equal(peek64(env, DATA_VA + 0x200) & 0xffffff, 0x030201);
	assert_int_equal(peek64(env, DATA_VA + 0x200) >> 24, 0);
	assert_int_equal(env->cpu.gpr[EMU_RSI], 0x12340103);
	assert_int_equal(env->cpu.gpr[EMU_RDI], 0x56780203);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x9abc0000);
	/* DI = 0xffff: the store lands at ES:0xffff (ES based so that is DATA_VA + 0x1000), DI
	 * wraps. */
	env->cpu.virt.es_base = DATA_VA + 0x1000 - 0xffff;
	env->cpu.gpr[EMU_RDI] = 0x1111ffff;
	env->cpu.gpr[EMU_RAX] = 0x5a;
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0x67, 0xaa), &rep, CODE_VA + 5);
	assert_one_write(env, DATA_VA + 0x1000, 1, 0, 0x5a);
	assert_int_equal(env->cpu.gpr[EMU_RDI], 0x11110000);
}

/*
 * movs's source takes any segment override, and its base, outside 64-bit
 * mode; the destination is always ES. In 64-bit mode an SS override's
 * non-canonical source is #SS(0), not #GP(0).
 */
static void test_movs_segment_override(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_compat_segments(env, 0x800);
	poke64(env, DATA_VA + 0x100, 0x1111111111111111ull); /* DS:0x100 */
	poke64(env, DATA_VA + 0x900, 0x2222222222222222ull); /* ES:0x100 */
	env->cpu.gpr[EMU_RSI] = 0x100;
	env->cpu.gpr[EMU_RDI] = 0x200;
	assert_ok(env, RUN(env, &rep, 0xa5), &rep, CODE_VA + 1); /* movsd ds:[esi] */
	assert_one_write(env, DATA_VA + 0xa00, 4, 0, 0x11111111);
	env->cpu.gpr[EMU_RSI] = 0x100;
	env->cpu.gpr[EMU_RDI] = 0x200;
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0x26, 0xa5), &rep, CODE_VA + 3); /* movsd es:[esi] */
	assert_one_write(env, DATA_VA + 0xa00, 4, 0x11111111, 0x22222222);
	/* 64-bit mode: an SS override, a non-canonical RSI. */
	env->cpu.cs.l = 1;
	env->cpu.cs.db = 0;
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSI] = 0x0000800000000000ull;
	set_gate(env, X86_EXC_SS, HANDLER_GP, 0xe, 0, 0);
	assert_int_equal(RUN(env, &rep, 0x36, 0xa4), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_SS);
	assert_int_equal(env->last_event.error_code, 0);
}

static void test_xchg(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0, 0x1111);
	env->cpu.gpr[EMU_RAX] = 0x2222;
	env->cpu.rflags |= RFLAGS_CF;
	assert_ok(env, RUN(env, &rep, 0x48, 0x87, 0x07), &rep, CODE_VA + 3);
	assert_string_equal(rep.mnemonic, "xchg");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1111);
	assert_one_write(env, DATA_VA, 8, 0x1111, 0x2222);
	assert_true(env->cpu.rflags & RFLAGS_CF); /* no flags */
}

static void test_cmpxchg(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* Equal: store RBX, ZF = 1. */
	data_at(env, 0, 0x63);
	env->cpu.gpr[EMU_RAX] = 0x63;
	env->cpu.gpr[EMU_RBX] = 0x67;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xb1, 0x1f), &rep, CODE_VA + 5);
	assert_string_equal(rep.mnemonic, "cmpxchg");
	assert_one_write(env, DATA_VA, 8, 0x63, 0x67);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_ZF | RFLAGS_PF);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x63);
	/* Different: RAX = memory, memory written back unchanged, flags of RAX - m. */
	env->nwrites = 0;
	env->cpu.gpr[EMU_RAX] = 0x10;
	assert_ok(env, RUN(env, &rep, 0x48, 0x0f, 0xb1, 0x1f), &rep, CODE_VA + 9);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x67);
	assert_one_write(env, DATA_VA, 8, 0x67, 0x67);
	/* 0x10 - 0x67 = ...a9: borrow, negative, nibble borrow, even parity. */
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_CF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
	/* 32-bit: EAX written, upper half cleared. */
	env->cpu.gpr[EMU_RAX] = 0xffffffff00000000ull;
	assert_ok(env, RUN(env, &rep, 0x0f, 0xb1, 0x1f), &rep, CODE_VA + 12);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x67);
}

/* cmpxchg16b/8b in shadow mode: one reported store of the full width. */
static void test_cmpxchg16b_shadow(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	const struct emu_write *w = &env->writes[0];

	data_at(env, 0x10, 1);
	poke64(env, DATA_VA + 0x18, 2);
	env->cpu.gpr[EMU_RAX] = 1;
	env->cpu.gpr[EMU_RDX] = 2;
	env->cpu.gpr[EMU_RBX] = 3;
	env->cpu.gpr[EMU_RCX] = 4;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), &rep, CODE_VA + 5);
	assert_true(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(w->len, 16);
	assert_int_equal(peek64(env, DATA_VA + 0x10), 3);
	assert_int_equal(peek64(env, DATA_VA + 0x18), 4);
	/* cmpxchg8b mismatch: EDX:EAX loaded, ZF = 0, old value written back. */
	env->nwrites = 0;
	env->cpu.gpr[EMU_RAX] = 0;
	assert_ok(env, RUN(env, &rep, 0x0f, 0xc7, 0x0f), &rep, CODE_VA + 8);
	assert_false(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 3);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0);
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(w->len, 8);
}

/* ---- read-modify-write arithmetic ------------------------------------------- */

static void test_lock_add_flags(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* Carry and zero: ~0 + 1. */
	data_at(env, 0, ~0ull);
	env->cpu.gpr[EMU_RAX] = 1;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x48, 0x01, 0x07), &rep, CODE_VA + 4);
	assert_string_equal(rep.mnemonic, "add");
	assert_one_write(env, DATA_VA, 8, ~0ull, 0);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF);
	/* Signed overflow: add byte [rdi], 1 on 0x7f. */
	env->nwrites = 0;
	data_at(env, 8, 0x7f);
	assert_ok(env, RUN(env, &rep, 0x80, 0x07, 0x01), &rep, CODE_VA + 7);
	assert_one_write(env, DATA_VA + 8, 1, 0x7f, 0x80);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_OF | RFLAGS_SF | RFLAGS_AF);
	/* add dword [rdi], -1 (imm8 sign-extended): 0x80 - 1. */
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0x83, 0x07, 0xff), &rep, CODE_VA + 10);
	assert_one_write(env, DATA_VA + 8, 4, 0x80, 0x7f);
	/* Carry out; no nibble carry (0 + f); 0x7f has odd parity. */
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_CF);
}

static void test_sub_adc_sbb(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0, 5);
	env->cpu.gpr[EMU_RAX] = 5;
	assert_ok(env, RUN(env, &rep, 0x29, 0x07), &rep, CODE_VA + 2); /* sub [rdi], eax */
	assert_int_equal(peek64(env, DATA_VA), 0);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_ZF | RFLAGS_PF);
	assert_ok(env, RUN(env, &rep, 0x29, 0x07), &rep, CODE_VA + 4); /* 0 - 5: borrow */
	assert_int_equal(peek64(env, DATA_VA), 0xfffffffb);
	assert_true(env->cpu.rflags & RFLAGS_CF);
	assert_true(env->cpu.rflags & RFLAGS_SF);
	/* adc byte [rdi], al with CF = 1: 0xfb + 5 + 1 = 0x101. */
	assert_ok(env, RUN(env, &rep, 0x10, 0x07), &rep, CODE_VA + 6);
	assert_int_equal(peek64(env, DATA_VA) & 0xff, 0x01);
	assert_true(env->cpu.rflags & RFLAGS_CF);
	/* sbb byte [rdi], al with CF = 1: 1 - 5 - 1 = 0xfb. */
	assert_ok(env, RUN(env, &rep, 0x18, 0x07), &rep, CODE_VA + 8);
	assert_int_equal(peek64(env, DATA_VA) & 0xff, 0xfb);
	assert_true(env->cpu.rflags & RFLAGS_CF);
}

static void test_lock_logic(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0, 0x0f0f);
	env->cpu.rflags |= RFLAGS_CF | RFLAGS_OF;
	env->cpu.gpr[EMU_RAX] = 0xf000;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x09, 0x07), &rep, CODE_VA + 3); /* lock or */
	assert_string_equal(rep.mnemonic, "or");
	assert_one_write(env, DATA_VA, 4, 0x0f0f, 0xff0f);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_PF); /* CF, OF cleared; 0x0f: 4 bits */
	env->cpu.gpr[EMU_RAX] = 0xff0f;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x31, 0x07), &rep, CODE_VA + 6); /* lock xor */
	assert_int_equal(peek64(env, DATA_VA), 0);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_ZF | RFLAGS_PF);
	poke64(env, DATA_VA, 0x8000000f);
	env->cpu.gpr[EMU_RAX] = 0x80000001;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x21, 0x07), &rep, CODE_VA + 9); /* lock and */
	assert_int_equal(peek64(env, DATA_VA), 0x80000001);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_SF);
}

static void test_inc_dec_neg_not(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0, 0x7fffffffffffffffull);
	env->cpu.rflags |= RFLAGS_CF;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x48, 0xff, 0x07), &rep, CODE_VA + 4); /* lock inc */
	assert_string_equal(rep.mnemonic, "inc");
	assert_int_equal(peek64(env, DATA_VA), 0x8000000000000000ull);
	assert_int_equal(arith(env->cpu.rflags),
			 RFLAGS_CF | RFLAGS_OF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
	poke64(env, DATA_VA, 1);
	env->cpu.rflags &= ~RFLAGS_CF;
	assert_ok(env, RUN(env, &rep, 0xff, 0x0f), &rep, CODE_VA + 6); /* dec dword */
	assert_int_equal(peek64(env, DATA_VA), 0);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_ZF | RFLAGS_PF);
	poke64(env, DATA_VA, 0x80);
	assert_ok(env, RUN(env, &rep, 0xf6, 0x1f), &rep, CODE_VA + 8); /* neg byte */
	assert_int_equal(peek64(env, DATA_VA), 0x80);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_CF | RFLAGS_OF | RFLAGS_SF);
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0x48, 0xf7, 0x17), &rep, CODE_VA + 11); /* not qword */
	assert_one_write(env, DATA_VA, 8, 0x80, ~0x80ull);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_CF | RFLAGS_OF | RFLAGS_SF); /* kept */
}

static void test_lock_xadd(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 0, 0xfffffffffffffffeull);
	env->cpu.gpr[EMU_RAX] = 3;
	assert_ok(env, RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc1, 0x07), &rep, CODE_VA + 5);
	assert_string_equal(rep.mnemonic, "xadd");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0xfffffffffffffffeull);
	assert_one_write(env, DATA_VA, 8, 0xfffffffffffffffeull, 1);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_CF | RFLAGS_AF);
	/* 32-bit overflow. */
	env->nwrites = 0;
	poke64(env, DATA_VA, 0x7fffffff);
	env->cpu.gpr[EMU_RAX] = 1;
	assert_ok(env, RUN(env, &rep, 0x0f, 0xc1, 0x07), &rep, CODE_VA + 8);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x7fffffff);
	assert_int_equal(peek64(env, DATA_VA), 0x80000000);
	assert_true(env->cpu.rflags & RFLAGS_OF);
}

static void test_bit_ops(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	data_at(env, 8, 0x10);
	env->cpu.rflags |= RFLAGS_ZF;
	/* lock bts qword [rdi], 5: bit 5 was 0. */
	assert_ok(env, RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xba, 0x2f, 0x05), &rep, CODE_VA + 6);
	assert_string_equal(rep.mnemonic, "bts");
	assert_one_write(env, DATA_VA + 8, 8, 0x10, 0x30);
	assert_false(env->cpu.rflags & RFLAGS_CF);
	assert_true(env->cpu.rflags & RFLAGS_ZF); /* ZF unaffected */
	/* btr [rdi], 4 (imm 68 = 4 mod 64): bit was 1. */
	assert_ok(env, RUN(env, &rep, 0x48, 0x0f, 0xba, 0x37, 68), &rep, CODE_VA + 11);
	assert_int_equal(peek64(env, DATA_VA + 8), 0x20);
	assert_true(env->cpu.rflags & RFLAGS_CF);
	/* btc [rdi], rax with rax = -59: bit 5 of the qword at rdi - 8. */
	poke64(env, DATA_VA, 0);
	env->cpu.gpr[EMU_RAX] = (u64)-59;
	env->nwrites = 0;
	assert_ok(env, RUN(env, &rep, 0x48, 0x0f, 0xbb, 0x07), &rep, CODE_VA + 15);
	assert_one_write(env, DATA_VA, 8, 0, 0x20);
	assert_false(env->cpu.rflags & RFLAGS_CF);
	/* bts [rdi], eax with eax = 69: bit 5 of the dword at rdi + 8. */
	poke64(env, DATA_VA + 16, 0);
	env->cpu.gpr[EMU_RAX] = 69;
	assert_ok(env, RUN(env, &rep, 0x0f, 0xab, 0x07), &rep, CODE_VA + 18);
	assert_int_equal(peek64(env, DATA_VA + 16), 0x20);
}

/* cmp/test/bt with a memory operand read (an MMIO register) and store nothing. */
static void test_cmp_test_read_only(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = MMIO_VA;
	env->cpu.gpr[EMU_RAX] = (u32)MMIO_VALUE;
	assert_ok(env, RUN(env, &rep, 0x39, 0x07), &rep, CODE_VA + 2); /* cmp [rdi], eax */
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_ZF | RFLAGS_PF);
	assert_ok(env, RUN(env, &rep, 0xf7, 0x07, 0x00, 0x00, 0x00, 0x80), &rep, CODE_VA + 8);
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_ZF | RFLAGS_PF); /* test: bit 31 clear */
	assert_int_equal(env->nwrites, 0);
	assert_int_equal(env->mmio_reads, 2);
}

/*
 * cmp r, m (Linux's this_cpu_cmpxchg16b_emu, run by the VMM at its
 * stand-in's slow path): the register less memory, a read only, %gs-based;
 * a fault at the read is raised at the cmp.
 */
static void test_cmp_reg_mem(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gs_base = DATA_VA - 0x1000;
	env->cpu.gpr[EMU_RSI] = 0x1000;
	poke64(env, DATA_VA, 0x1122334455667788ull);
	env->cpu.gpr[EMU_RAX] = 0x1122334455667788ull;
	env->cpu.rflags |= RFLAGS_CF;
	assert_ok(env, RUN(env, &rep, 0x65, 0x48, 0x3b, 0x06), &rep,
		  CODE_VA + 4); /* cmp rax, gs:[rsi] */
	assert_int_equal(arith(env->cpu.rflags), RFLAGS_ZF | RFLAGS_PF);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1122334455667788ull);
	/* 1 - 2 (the second word, as the body's second cmp): borrow, sign, parity, AF. */
	poke64(env, DATA_VA + 8, 2);
	env->cpu.gpr[EMU_RDX] = 1;
	assert_ok(env, RUN(env, &rep, 0x65, 0x48, 0x3b, 0x56, 0x08), &rep, CODE_VA + 9);
	assert_int_equal(arith(env->cpu.rflags),
			 RFLAGS_CF | RFLAGS_SF | RFLAGS_PF | RFLAGS_AF); /* as the host's cmp */
	assert_int_equal(env->nwrites, 0);
	/* Unmapped: the #PF is a read's, at the cmp. */
	env->cpu.gs_base = UNMAPPED_VA;
	env->cpu.gpr[EMU_RSI] = 0x10;
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x65, 0x48, 0x3b, 0x06), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->last_event.error_code & (PFERR_WRITE | PFERR_PRESENT), 0);
	assert_int_equal(env->cpu.cr2, UNMAPPED_VA + 0x10);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_shadow, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_flags_add),
		T(test_flags_adc_sbb),
		T(test_flags_sub),
		T(test_flags_inc_dec_neg),
		T(test_flags_logic),
		T(test_flags_vs_host),
		T(test_mov_store_reg),
		T(test_mov_store_imm),
		T(test_mov_load),
		T(test_movabs),
		T(test_mov_mmio),
		T(test_mov_split_page),
		T(test_mov_pf),
		T(test_mov_split_pf_writes_nothing),
		T(test_mov_noncanonical_gp),
		T(test_unknown_reports_bytes),
		T(test_zero_idiom),
		T(test_nop),
		T(test_pop_gpr),
		T(test_push),
		T(test_push_imm_operand_size),
		T(test_lock_rep_movs_ud),
		T(test_stos),
		T(test_rep_stos_complete),
		T(test_rep_stos_partial),
		T(test_rep_stos_fault_midway),
		T(test_rep_movs),
		T(test_rep_movs_chunks),
		T(test_register_forms),
		T(test_rep_movs_overlap),
		T(test_rep_movs_fault_midway),
		T(test_string_addr16),
		T(test_movs_segment_override),
		T(test_xchg),
		T(test_cmpxchg),
		T(test_cmpxchg16b_shadow),
		T(test_lock_add_flags),
		T(test_sub_adc_sbb),
		T(test_lock_logic),
		T(test_inc_dec_neg_not),
		T(test_lock_xadd),
		T(test_bit_ops),
		T(test_cmp_test_read_only),
		T(test_cmp_reg_mem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
