/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the shadow-mode store decoder (vmm/shadow_store.c): the
 * address, size and value of each plain `mov` store form, and the refusal
 * of everything else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/shadow_store.h"

#define RIP 0x100000ull

static u64 gpr[EMU_NR_GPRS];

static int setup(void **state)
{
	(void)state;
	for (unsigned i = 0; i < EMU_NR_GPRS; i++)
		gpr[i] = 0x1111111111111111ull * (i + 1);
	gpr[EMU_RAX] = 0x8877665544332211ull;
	gpr[EMU_RBX] = 0x20000;
	gpr[EMU_RSP] = 0x7ff0;
	return 0;
}

static struct store_insn decode_store(const u8 *code, size_t n)
{
	struct store_insn st;

	assert_int_equal(store_decode(code, n, RIP, gpr, 0xf000, 0x9000, &st), STORE_OK);
	assert_int_equal(st.insn_len, n);
	return st;
}

static u64 value_of(const struct store_insn *st)
{
	u64 v = 0;

	memcpy(&v, st->value, st->len);
	return v;
}

static void test_mov_reg_sizes(void **state)
{
	static const u8 q[] = { 0x48, 0x89, 0x03 };	   /* mov [rbx], rax */
	static const u8 d[] = { 0x89, 0x43, 0x08 };	   /* mov [rbx+8], eax */
	static const u8 w[] = { 0x66, 0x89, 0x03 };	   /* mov [rbx], ax */
	static const u8 b[] = { 0x88, 0x23 };		   /* mov [rbx], ah */
	static const u8 r8[] = { 0x4c, 0x89, 0x04, 0x24 }; /* mov [rsp], r8 */
	struct store_insn st;

	(void)state;
	st = decode_store(q, sizeof(q));
	assert_int_equal(st.gva, 0x20000);
	assert_int_equal(st.len, 8);
	assert_true(value_of(&st) == 0x8877665544332211ull);
	assert_string_equal(st.mnemonic, "mov");
	st = decode_store(d, sizeof(d));
	assert_int_equal(st.gva, 0x20008);
	assert_int_equal(st.len, 4);
	assert_true(value_of(&st) == 0x44332211ull);
	st = decode_store(w, sizeof(w));
	assert_int_equal(st.len, 2);
	assert_true(value_of(&st) == 0x2211);
	st = decode_store(b, sizeof(b));
	assert_int_equal(st.len, 1);
	assert_true(value_of(&st) == 0x22);
	st = decode_store(r8, sizeof(r8));
	assert_int_equal(st.gva, 0x7ff0);
	assert_true(value_of(&st) == gpr[EMU_R8]);
}

static void test_mov_imm_index_rip_seg(void **state)
{
	/* mov qword [rbx + rcx*8 + 0x10], -1 */
	static const u8 imm[] = { 0x48, 0xc7, 0x44, 0xcb, 0x10, 0xff, 0xff, 0xff, 0xff };
	static const u8 rip[] = {
		0x48, 0x89, 0x05, 0x00, 0x01, 0x00, 0x00
	};						   /* mov [rip+0x100], rax */
	static const u8 gs[] = { 0x65, 0x48, 0x89, 0x03 }; /* mov gs:[rbx], rax */
	static const u8 a32[] = { 0x67, 0x89, 0x03 };	   /* mov [ebx], eax */
	struct store_insn st;

	(void)state;
	st = decode_store(imm, sizeof(imm));
	assert_true(st.gva == 0x20000 + gpr[EMU_RCX] * 8 + 0x10);
	assert_int_equal(st.len, 8);
	assert_true(value_of(&st) == ~0ull);
	st = decode_store(rip, sizeof(rip));
	assert_int_equal(st.gva, RIP + sizeof(rip) + 0x100);
	st = decode_store(gs, sizeof(gs));
	assert_int_equal(st.gva, 0x9000 + 0x20000);
	gpr[EMU_RBX] = 0xffffffff00020000ull;
	st = decode_store(a32, sizeof(a32));
	assert_int_equal(st.gva, 0x20000);
	gpr[EMU_RBX] = 0x20000;
}

static void test_not_a_store(void **state)
{
	static const u8 load[] = { 0x48, 0x8b, 0x03 };	/* mov rax, [rbx] */
	static const u8 xchg[] = { 0x48, 0x87, 0x03 };	/* xchg [rbx], rax */
	static const u8 lidt[] = { 0x0f, 0x01, 0x1b };	/* lidt [rbx] */
	static const u8 movcr[] = { 0x0f, 0x22, 0xd8 }; /* mov cr3, rax */
	static const u8 bad[] = { 0xff, 0xff };
	struct store_insn st;

	(void)state;
	assert_int_equal(store_decode(load, sizeof(load), RIP, gpr, 0, 0, &st), STORE_NOT_A_STORE);
	assert_string_equal(st.mnemonic, "mov");
	assert_int_equal(store_decode(xchg, sizeof(xchg), RIP, gpr, 0, 0, &st), STORE_NOT_A_STORE);
	assert_string_equal(st.mnemonic, "xchg");
	assert_int_equal(store_decode(lidt, sizeof(lidt), RIP, gpr, 0, 0, &st), STORE_NOT_A_STORE);
	assert_int_equal(store_decode(movcr, sizeof(movcr), RIP, gpr, 0, 0, &st),
			 STORE_NOT_A_STORE);
	assert_int_equal(store_decode(bad, sizeof(bad), RIP, gpr, 0, 0, &st), STORE_BAD_BYTES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_mov_reg_sizes, setup),
		cmocka_unit_test_setup(test_mov_imm_index_rip_seg, setup),
		cmocka_unit_test_setup(test_not_a_store, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
