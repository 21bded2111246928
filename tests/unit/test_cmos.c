// SPDX-License-Identifier: MIT
/* Unit tests for CMOS/RTC (devices/cmos.c), with a fake host clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "devices/cmos.h"

#define PORT_INDEX  0
#define PORT_DATA   1
#define NMI_DISABLE 0x80

#define REG_SEC	    0x00
#define REG_MIN	    0x02
#define REG_HOUR    0x04
#define REG_WDAY    0x06
#define REG_MDAY    0x07
#define REG_MONTH   0x08
#define REG_YEAR    0x09
#define REG_A	    0x0a
#define REG_B	    0x0b
#define REG_C	    0x0c
#define REG_D	    0x0d
#define REG_CENTURY 0x32

#define B_DM  0x04 /* binary */
#define B_24H 0x02 /* 24-hour */

/* 2026-11-22 13:45:09 UTC, a Sunday. */
#define T_2026_11_22_134509 1795355109
/* 1999-12-31 00:05:59 UTC, a Friday. */
#define T_1999_12_31_000559 946598759
/* 2000-02-29 12:00:00 UTC, a Tuesday. */
#define T_2000_02_29_120000 951825600

struct fake_clock {
	s64 now;
	int calls;
};

static s64 fake_wall_time(void *opaque)
{
	struct fake_clock *c = opaque;

	c->calls++;
	return c->now;
}

static struct fake_clock clock_;

static int setup(void **state)
{
	struct dev_host host = { .opaque = &clock_, .wall_time = fake_wall_time };

	memset(&clock_, 0, sizeof(clock_));
	clock_.now = T_2026_11_22_134509;
	*state = cmos_create(&host);
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state)
{
	struct device *dev = *state;

	dev->ops->destroy(dev);
	return 0;
}

static u8 cmos_get(struct device *dev, u8 index)
{
	u8 v = index, r = 0x5a;

	dev->ops->write(dev, PORT_INDEX, &v, 1);
	dev->ops->read(dev, PORT_DATA, &r, 1);
	return r;
}

static void cmos_put(struct device *dev, u8 index, u8 val)
{
	dev->ops->write(dev, PORT_INDEX, &index, 1);
	dev->ops->write(dev, PORT_DATA, &val, 1);
}

static void test_reset_registers(void **state)
{
	struct device *dev = *state;
	u8 v = 0;

	assert_int_equal(cmos_get(dev, REG_A), 0x26);
	assert_int_equal(cmos_get(dev, REG_B), 0x02);
	assert_int_equal(cmos_get(dev, REG_C), 0x00);
	assert_int_equal(cmos_get(dev, REG_D), 0x80);
	dev->ops->read(dev, PORT_INDEX, &v, 1);
	assert_int_equal(v, 0xff); /* the index port is write-only */

	/* UIP can't be set; C and D are read-only. */
	cmos_put(dev, REG_A, 0xa6);
	assert_int_equal(cmos_get(dev, REG_A), 0x26);
	cmos_put(dev, REG_A, 0x2f);
	assert_int_equal(cmos_get(dev, REG_A), 0x2f);
	cmos_put(dev, REG_C, 0xf0);
	assert_int_equal(cmos_get(dev, REG_C), 0x00);
	cmos_put(dev, REG_D, 0x00);
	assert_int_equal(cmos_get(dev, REG_D), 0x80);
}

static void test_bcd_24h(void **state)
{
	struct device *dev = *state;

	assert_int_equal(cmos_get(dev, REG_SEC), 0x09);
	assert_int_equal(cmos_get(dev, REG_MIN), 0x45);
	assert_int_equal(cmos_get(dev, REG_HOUR), 0x13);
	assert_int_equal(cmos_get(dev, REG_WDAY), 0x01); /* Sunday */
	assert_int_equal(cmos_get(dev, REG_MDAY), 0x22);
	assert_int_equal(cmos_get(dev, REG_MONTH), 0x11);
	assert_int_equal(cmos_get(dev, REG_YEAR), 0x26);
	assert_int_equal(cmos_get(dev, REG_CENTURY), 0x20);
	assert_int_equal(clock_.calls, 8); /* computed at every read */

	/* Time follows the host. */
	clock_.now += 51; /* 13:46:00 */
	assert_int_equal(cmos_get(dev, REG_SEC), 0x00);
	assert_int_equal(cmos_get(dev, REG_MIN), 0x46);
}

static void test_binary_24h(void **state)
{
	struct device *dev = *state;

	cmos_put(dev, REG_B, B_DM | B_24H);
	assert_int_equal(cmos_get(dev, REG_B), 0x06);
	assert_int_equal(cmos_get(dev, REG_SEC), 9);
	assert_int_equal(cmos_get(dev, REG_MIN), 45);
	assert_int_equal(cmos_get(dev, REG_HOUR), 13);
	assert_int_equal(cmos_get(dev, REG_WDAY), 1);
	assert_int_equal(cmos_get(dev, REG_MDAY), 22);
	assert_int_equal(cmos_get(dev, REG_MONTH), 11);
	assert_int_equal(cmos_get(dev, REG_YEAR), 26);
	assert_int_equal(cmos_get(dev, REG_CENTURY), 20);
}

static void test_12h(void **state)
{
	struct device *dev = *state;

	cmos_put(dev, REG_B, 0);			 /* BCD, 12-hour */
	assert_int_equal(cmos_get(dev, REG_HOUR), 0x81); /* 1 PM */
	cmos_put(dev, REG_B, B_DM);			 /* binary, 12-hour */
	assert_int_equal(cmos_get(dev, REG_HOUR), 0x81);

	clock_.now = T_1999_12_31_000559; /* midnight hour: 12 AM */
	cmos_put(dev, REG_B, 0);
	assert_int_equal(cmos_get(dev, REG_HOUR), 0x12);
	cmos_put(dev, REG_B, B_DM);
	assert_int_equal(cmos_get(dev, REG_HOUR), 12);
	assert_int_equal(cmos_get(dev, REG_WDAY), 6); /* Friday */
	assert_int_equal(cmos_get(dev, REG_YEAR), 99);
	assert_int_equal(cmos_get(dev, REG_CENTURY), 19);
	assert_int_equal(cmos_get(dev, REG_SEC), 59);

	clock_.now = T_2000_02_29_120000; /* noon: 12 PM */
	cmos_put(dev, REG_B, 0);
	assert_int_equal(cmos_get(dev, REG_HOUR), 0x92);
	assert_int_equal(cmos_get(dev, REG_MDAY), 0x29);
	assert_int_equal(cmos_get(dev, REG_MONTH), 0x02);
	assert_int_equal(cmos_get(dev, REG_YEAR), 0x00);
	assert_int_equal(cmos_get(dev, REG_WDAY), 0x03); /* Tuesday */
	cmos_put(dev, REG_B, B_DM);
	assert_int_equal(cmos_get(dev, REG_HOUR), 0x8c);
	cmos_put(dev, REG_B, B_DM | B_24H);
	assert_int_equal(cmos_get(dev, REG_HOUR), 12);
}

static void test_time_writes_do_not_stick(void **state)
{
	struct device *dev = *state;

	cmos_put(dev, REG_MIN, 0x30);
	assert_int_equal(cmos_get(dev, REG_MIN), 0x45);
	/* The alarm registers are plain NVRAM. */
	cmos_put(dev, 0x01, 0x33);
	assert_int_equal(cmos_get(dev, 0x01), 0x33);
}

static void test_index_nmi_bit_and_wide_access(void **state)
{
	struct device *dev = *state;
	u8 idx = NMI_DISABLE | 0x40, v = 0;
	u8 pair[2] = { 0x41, 0x77 };

	cmos_put(dev, 0x40, 0xab);
	dev->ops->write(dev, PORT_INDEX, &idx, 1);
	dev->ops->read(dev, PORT_DATA, &v, 1);
	assert_int_equal(v, 0xab);
	/* outw 0x70: index in the low byte, data in the high byte. */
	dev->ops->write(dev, PORT_INDEX, pair, 2);
	assert_int_equal(cmos_get(dev, 0x41), 0x77);
	assert_int_equal(cmos_get(dev, 0x7f), 0x00);
	cmos_put(dev, 0xff, 0x99); /* index 0x7f with the NMI bit */
	assert_int_equal(cmos_get(dev, 0x7f), 0x99);
}

static void test_nvram_survives_reset(void **state)
{
	struct device *dev = *state;

	cmos_set_byte(dev, 0x50, 0x12);
	cmos_put(dev, 0x51, 0x34);
	dev->ops->reset(dev);
	assert_int_equal(cmos_get(dev, 0x50), 0x12);
	assert_int_equal(cmos_get(dev, 0x51), 0x34);
}

static void test_memory_sizes_large(void **state)
{
	struct device *dev = *state;

	cmos_set_memory(dev, 3 * GiB, 5 * GiB);
	assert_int_equal(cmos_get(dev, 0x15), 0x80); /* 640 KiB */
	assert_int_equal(cmos_get(dev, 0x16), 0x02);
	assert_int_equal(cmos_get(dev, 0x17), 0xff); /* capped */
	assert_int_equal(cmos_get(dev, 0x18), 0xff);
	assert_int_equal(cmos_get(dev, 0x30), 0xff);
	assert_int_equal(cmos_get(dev, 0x31), 0xff);
	assert_int_equal(cmos_get(dev, 0x34), 0x00); /* (3 GiB - 16 MiB) / 64 KiB */
	assert_int_equal(cmos_get(dev, 0x35), 0xbf); /* = 0xbf00 */
	assert_int_equal(cmos_get(dev, 0x5b), 0x00); /* 5 GiB / 64 KiB = 0x14000 */
	assert_int_equal(cmos_get(dev, 0x5c), 0x40);
	assert_int_equal(cmos_get(dev, 0x5d), 0x01);
}

static void test_memory_sizes_small(void **state)
{
	struct device *dev = *state;

	cmos_set_memory(dev, 32 * MiB, 0);
	assert_int_equal(cmos_get(dev, 0x15), 0x80);
	assert_int_equal(cmos_get(dev, 0x16), 0x02);
	assert_int_equal(cmos_get(dev, 0x17), 0x00); /* 31 MiB = 0x7c00 KiB */
	assert_int_equal(cmos_get(dev, 0x18), 0x7c);
	assert_int_equal(cmos_get(dev, 0x30), 0x00);
	assert_int_equal(cmos_get(dev, 0x31), 0x7c);
	assert_int_equal(cmos_get(dev, 0x34), 0x00); /* 16 MiB = 0x100 units */
	assert_int_equal(cmos_get(dev, 0x35), 0x01);
	assert_int_equal(cmos_get(dev, 0x5b), 0x00);
	assert_int_equal(cmos_get(dev, 0x5c), 0x00);
	assert_int_equal(cmos_get(dev, 0x5d), 0x00);

	/* Not a multiple of the units: round down. */
	cmos_set_memory(dev, 0x7fe0000, 3 * 64 * KiB + 32 * KiB);
	assert_int_equal(cmos_get(dev, 0x17), 0xff);
	assert_int_equal(cmos_get(dev, 0x18), 0xff);
	assert_int_equal(cmos_get(dev, 0x34), 0xfe); /* 0x6fe */
	assert_int_equal(cmos_get(dev, 0x35), 0x06);
	assert_int_equal(cmos_get(dev, 0x5b), 0x03);

	/* Under 1 MiB: base memory only. */
	cmos_set_memory(dev, 512 * KiB, 0);
	assert_int_equal(cmos_get(dev, 0x15), 0x00); /* 512 = 0x200 */
	assert_int_equal(cmos_get(dev, 0x16), 0x02);
	assert_int_equal(cmos_get(dev, 0x17), 0x00);
	assert_int_equal(cmos_get(dev, 0x18), 0x00);
	assert_int_equal(cmos_get(dev, 0x34), 0x00);
	assert_int_equal(cmos_get(dev, 0x35), 0x00);
	assert_int_equal(cmos_get(dev, 0x5b), 0x00);
}

static void test_no_clock_callback(void **state)
{
	struct device *dev = cmos_create(&(struct dev_host){ 0 });

	(void)state;
	assert_non_null(dev);
	/* Without wall_time the time registers are plain NVRAM. */
	assert_int_equal(cmos_get(dev, REG_SEC), 0x00);
	cmos_put(dev, REG_SEC, 0x42);
	assert_int_equal(cmos_get(dev, REG_SEC), 0x42);
	dev->ops->destroy(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bcd_24h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_24h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_12h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_writes_do_not_stick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_nmi_bit_and_wide_access, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nvram_survives_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_sizes_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_sizes_small, setup, teardown),
		cmocka_unit_test(test_no_clock_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
