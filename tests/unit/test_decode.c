/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for instruction decoding (decode/decode.c, capstone behind it):
 * lengths and text of a few instructions in each CPU mode, invalid bytes, and
 * the "bytes  disassembly" description used in error messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "decode/decode.h"

#define RIP 0x1000

static struct decoded_insn decode_ok(const u8 *code, size_t len, enum decode_mode mode)
{
	struct decoded_insn d;
	int r;

	memset(&d, 0x5a, sizeof(d));
	r = decode_one(code, len, RIP, mode, &d);
	if (r)
		fail_msg("decode_one failed: %d", r);
	return d;
}

static void test_nop(void **state)
{
	const u8 code[] = { 0x90, 0x90, 0x90 };
	struct decoded_insn d = decode_ok(code, sizeof(code), DECODE_64);

	(void)state;
	assert_int_equal(d.len, 1);
	assert_string_equal(d.mnemonic, "nop");
	assert_string_equal(d.operands, "");
}

static void test_clac(void **state)
{
	const u8 code[] = { 0x0f, 0x01, 0xca };
	struct decoded_insn d = decode_ok(code, sizeof(code), DECODE_64);

	(void)state;
	assert_int_equal(d.len, 3);
	assert_string_equal(d.mnemonic, "clac");
	assert_string_equal(d.operands, "");
}

static void test_ud2(void **state)
{
	const u8 code[] = { 0x0f, 0x0b, 0xcc };
	struct decoded_insn d = decode_ok(code, sizeof(code), DECODE_64);

	(void)state;
	assert_int_equal(d.len, 2);
	assert_string_equal(d.mnemonic, "ud2");
}

static void test_mov_from_cr3(void **state)
{
	const u8 code[] = { 0x0f, 0x20, 0xd8 }; /* mov %cr3, %rax */
	struct decoded_insn d = decode_ok(code, sizeof(code), DECODE_64);

	(void)state;
	assert_int_equal(d.len, 3);
	assert_string_equal(d.mnemonic, "mov");
	assert_string_equal(d.operands, "rax, cr3");
}

/* b8 imm: the immediate is 4 bytes with a 32-bit operand size, 2 with 16-bit. */
static void test_mov_imm_depends_on_mode(void **state)
{
	const u8 code[] = { 0xb8, 0x78, 0x56, 0x34, 0x12 };
	struct decoded_insn d = decode_ok(code, sizeof(code), DECODE_32);

	(void)state;
	assert_int_equal(d.len, 5);
	assert_string_equal(d.mnemonic, "mov");
	assert_string_equal(d.operands, "eax, 0x12345678");
	d = decode_ok(code, sizeof(code), DECODE_16);
	assert_int_equal(d.len, 3);
	assert_string_equal(d.operands, "ax, 0x5678");
	d = decode_ok(code, sizeof(code), DECODE_64);
	assert_int_equal(d.len, 5);
	assert_string_equal(d.operands, "eax, 0x12345678");
}

static void test_lock_cmpxchg8b(void **state)
{
	const u8 code[] = { 0xf0, 0x0f, 0xc7, 0x0e };
	struct decoded_insn d = decode_ok(code, sizeof(code), DECODE_64);

	(void)state;
	assert_int_equal(d.len, 4);
	assert_string_equal(d.mnemonic, "lock cmpxchg8b");
	assert_string_equal(d.operands, "qword ptr [rsi]");
	d = decode_ok(code, sizeof(code), DECODE_32);
	assert_int_equal(d.len, 4);
	assert_string_equal(d.operands, "qword ptr [esi]");
}

/* A relative jump is shown with its target, so rip must be passed through. */
static void test_rip_is_used(void **state)
{
	const u8 code[] = { 0xeb, 0xfe }; /* jmp . */
	struct decoded_insn d = decode_ok(code, sizeof(code), DECODE_64);

	(void)state;
	assert_int_equal(d.len, 2);
	assert_string_equal(d.mnemonic, "jmp");
	assert_string_equal(d.operands, "0x1000");
}

static void test_invalid(void **state)
{
	const u8 ffff[] = { 0xff, 0xff };
	const u8 lone_0f[] = { 0x0f };
	const u8 truncated[] = { 0xb8, 0x78, 0x56 }; /* mov eax, imm32 missing 2 bytes */
	u8 prefixes[16];
	struct decoded_insn d;

	(void)state;
	assert_int_equal(decode_one(ffff, sizeof(ffff), RIP, DECODE_64, &d), -EINVAL);
	assert_int_equal(decode_one(lone_0f, sizeof(lone_0f), RIP, DECODE_64, &d), -EINVAL);
	assert_int_equal(decode_one(truncated, sizeof(truncated), RIP, DECODE_32, &d), -EINVAL);
	assert_int_equal(decode_one(ffff, 0, RIP, DECODE_64, &d), -EINVAL);
	/* 15 operand-size prefixes then a nop: 16 bytes, above the architectural limit. */
	memset(prefixes, 0x66, sizeof(prefixes));
	prefixes[15] = 0x90;
	assert_int_equal(decode_one(prefixes, sizeof(prefixes), RIP, DECODE_64, &d), -EINVAL);
}

static void test_length_is_bounded_by_len(void **state)
{
	const u8 code[] = { 0x0f, 0x01, 0xca };
	struct decoded_insn d;

	(void)state;
	/* Only two of clac's three bytes are available. */
	assert_int_equal(decode_one(code, 2, RIP, DECODE_64, &d), -EINVAL);
}

static void test_describe(void **state)
{
	const u8 clac[] = { 0x0f, 0x01, 0xca, 0x90 };
	const u8 cr3[] = { 0x0f, 0x20, 0xd8 };
	const u8 mov[] = { 0xb8, 0x78, 0x56, 0x34, 0x12 };
	char buf[128];

	(void)state;
	decode_describe(clac, sizeof(clac), RIP, DECODE_64, buf, sizeof(buf));
	assert_string_equal(buf, "0f 01 ca  clac");
	decode_describe(cr3, sizeof(cr3), RIP, DECODE_64, buf, sizeof(buf));
	assert_string_equal(buf, "0f 20 d8  mov rax, cr3");
	decode_describe(mov, sizeof(mov), RIP, DECODE_16, buf, sizeof(buf));
	assert_string_equal(buf, "b8 78 56  mov ax, 0x5678");
}

static void test_describe_invalid(void **state)
{
	const u8 ffff[] = { 0xff, 0xff };
	u8 many[20];
	char buf[128];

	(void)state;
	decode_describe(ffff, sizeof(ffff), RIP, DECODE_64, buf, sizeof(buf));
	assert_string_equal(buf, "ff ff  (invalid instruction)");
	/* At most 15 bytes are shown. */
	memset(many, 0x66, sizeof(many));
	decode_describe(many, sizeof(many), RIP, DECODE_64, buf, sizeof(buf));
	assert_string_equal(buf,
			    "66 66 66 66 66 66 66 66 66 66 66 66 66 66 66  (invalid instruction)");
}

static void test_describe_small_buffer(void **state)
{
	const u8 clac[] = { 0x0f, 0x01, 0xca };
	char buf[16];

	(void)state;
	memset(buf, 'Z', sizeof(buf));
	decode_describe(clac, sizeof(clac), RIP, DECODE_64, buf, 8);
	/* Truncated and terminated within the 8 bytes; the rest untouched. */
	assert_string_equal(buf, "0f 01  ");
	assert_int_equal(buf[8], 'Z');
	decode_describe(clac, sizeof(clac), RIP, DECODE_64, buf, 1);
	assert_string_equal(buf, "");
	assert_int_equal(buf[1], 'f'); /* left from the first call: nothing past buf[0] written */
}

static void test_mode_of(void **state)
{
	(void)state;
	assert_int_equal(decode_mode_of(1, 0), DECODE_64);
	assert_int_equal(decode_mode_of(1, 1), DECODE_64); /* L wins; L=D=1 is reserved anyway */
	assert_int_equal(decode_mode_of(0, 1), DECODE_32);
	assert_int_equal(decode_mode_of(0, 0), DECODE_16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nop),
		cmocka_unit_test(test_clac),
		cmocka_unit_test(test_ud2),
		cmocka_unit_test(test_mov_from_cr3),
		cmocka_unit_test(test_mov_imm_depends_on_mode),
		cmocka_unit_test(test_lock_cmpxchg8b),
		cmocka_unit_test(test_rip_is_used),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_length_is_bounded_by_len),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_describe_invalid),
		cmocka_unit_test(test_describe_small_buffer),
		cmocka_unit_test(test_mode_of),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
