// SPDX-License-Identifier: MIT
/*
 * Unit tests for breakpoint matching (decode/debugreg.c) and for the real
 * DR7 shadow mode arms from the guest's (vmm/shadow_debugreg.c, item 1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "decode/debugreg.h"
#include "vmm/shadow_debugreg.h"

#define EN(n)	     (1ull << (2 * (n))) /* Ln */
#define GEN(n)	     (2ull << (2 * (n))) /* Gn */
#define RW(n, rw)    ((u64)(rw) << (16 + 4 * (n)))
#define LEN(n, code) ((u64)(code) << (18 + 4 * (n))) /* 0: 1, 1: 2, 3: 4, 2: 8 bytes */

static void test_fields(void **state)
{
	(void)state;
	assert_int_equal(dr7_enabled(0), 0);
	assert_int_equal(dr7_enabled(EN(0) | GEN(2) | EN(3) | GEN(3)), 0xd);
	assert_int_equal(dr7_enabled(0x700), 0); /* LE, GE, bit 10: no breakpoint */
	assert_int_equal(dr7_len(LEN(1, 0), 1), 1);
	assert_int_equal(dr7_len(LEN(1, 1), 1), 2);
	assert_int_equal(dr7_len(LEN(1, 3), 1), 4);
	assert_int_equal(dr7_len(LEN(1, 2), 1), 8);
	assert_int_equal(dr7_rw(RW(3, DR7_RW_RDWR), 3), DR7_RW_RDWR);
	assert_false(dr_exec_armed(EN(0) | RW(0, DR7_RW_WRITE)));
	assert_false(dr_exec_armed(RW(1, DR7_RW_EXEC))); /* not enabled: every R/W is 00 */
	assert_true(dr_exec_armed(EN(0) | RW(0, DR7_RW_WRITE) | GEN(1)));
}

static void test_exec_hits(void **state)
{
	u64 dr[4] = { 0x1000, 0x2000, 0x1000, 0x3000 };
	u64 dr7 = EN(0) | EN(1) | EN(2) | RW(2, DR7_RW_WRITE);

	(void)state;
	assert_int_equal(dr_exec_hits(dr, dr7, 0x1000), 1); /* DR2 at the same address is data */
	assert_int_equal(dr_exec_hits(dr, dr7, 0x2000), 2);
	assert_int_equal(dr_exec_hits(dr, dr7, 0x2001), 0); /* the first byte only */
	assert_int_equal(dr_exec_hits(dr, dr7, 0x3000), 0); /* DR3 not enabled */
}

static void test_data_hits(void **state)
{
	u64 dr[4] = { 0x1006, 0x2000, 0x3004, 0 };
	/* DR0: write, 4 bytes (0x1004..7); DR1: read/write, 8 bytes; DR2: read/write, 1 byte. */
	u64 dr7 = EN(0) | RW(0, DR7_RW_WRITE) | LEN(0, 3) | GEN(1) | RW(1, DR7_RW_RDWR) |
		  LEN(1, 2) | EN(2) | RW(2, DR7_RW_RDWR);

	(void)state;
	assert_int_equal(dr_data_hits(dr, dr7, 0x1004, 1, true),
			 1); /* aligned down: DRn's low bits */
	assert_int_equal(dr_data_hits(dr, dr7, 0x1000, 4, true), 0);  /* just below */
	assert_int_equal(dr_data_hits(dr, dr7, 0x1001, 4, true), 1);  /* its last byte */
	assert_int_equal(dr_data_hits(dr, dr7, 0x1008, 8, true), 0);  /* just above */
	assert_int_equal(dr_data_hits(dr, dr7, 0x1004, 4, false), 0); /* a read: write-only */
	assert_int_equal(dr_data_hits(dr, dr7, 0x2007, 1, false), 2);
	assert_int_equal(dr_data_hits(dr, dr7, 0x1ff8, 16, false), 2); /* spanning it */
	assert_int_equal(dr_data_hits(dr, dr7, 0x3003, 2, false), 4);
	assert_int_equal(dr_data_hits(dr, dr7, 0x3005, 2, false), 0);
	assert_int_equal(dr_data_hits(dr, dr7, 0x1000, 0x3000, true), 7);
	assert_int_equal(dr_data_hits(dr, dr7, 0x1004, 0, true), 0);
	/* At the top of the address space: no wrap-around match at 0. */
	dr[3] = 0xfffffffffffffffcull;
	dr7 = EN(3) | RW(3, DR7_RW_RDWR) | LEN(3, 3);
	assert_int_equal(dr_data_hits(dr, dr7, 0xfffffffffffffffeull, 2, false), 8);
	assert_int_equal(dr_data_hits(dr, dr7, 0, 4, false), 0);
}

/*
 * The real DR7: the guest's enabled breakpoints with their fields; not one
 * whose bytes touch the monitor's gva hole, nor an I/O breakpoint, nor GD.
 */
static void test_real_dr7(void **state)
{
	u64 dr[4] = { 0x401000, 0xffff800000000000ull, 0xffff7ffffffffffcull, 0x80 };
	u64 dr7 = EN(0) | RW(0, DR7_RW_WRITE) | LEN(0, 3) | EN(1) | GEN(2) | RW(2, DR7_RW_RDWR) |
		  LEN(2, 2) | EN(3) | RW(3, DR7_RW_IO) | (1ull << 13) /* GD */ | (1ull << 8);

	(void)state;
	/* DR2: 8 bytes from 0xffff7ffffffffff8, all below the hole. */
	assert_int_equal(shadow_dr_real_dr7(dr, dr7), 0x400 | EN(0) | RW(0, DR7_RW_WRITE) |
							      LEN(0, 3) | GEN(2) |
							      RW(2, DR7_RW_RDWR) | LEN(2, 2));
	dr[2] = 0xffff87fffffffff8ull; /* the hole's last bytes */
	assert_int_equal(shadow_dr_real_dr7(dr, dr7),
			 0x400 | EN(0) | RW(0, DR7_RW_WRITE) | LEN(0, 3));
	dr[2] = 0xffff880000000000ull; /* the first address past it */
	assert_int_equal(shadow_dr_real_dr7(dr, dr7) & GEN(2), GEN(2));
	assert_int_equal(shadow_dr_real_dr7(dr, 0), 0x400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_exec_hits),
		cmocka_unit_test(test_data_hits),
		cmocka_unit_test(test_real_dr7),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
