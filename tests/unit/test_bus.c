// SPDX-License-Identifier: MIT
/* Unit tests for the I/O bus (devices/bus.c): registration, lookup, dispatch. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "devices/bus.h"

/* A fake device that records its last access. */
struct rec_dev {
	struct device dev;
	u64 last_off;
	unsigned last_len;
	u64 last_val;
	int reads, writes, resets, destroys;
};

static void rec_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct rec_dev *r = (struct rec_dev *)dev;

	r->reads++;
	r->last_off = off;
	r->last_len = len;
	/* Answer with the offset plus a tag so the caller can check routing. */
	dev_data_put(data, len, 0xa500 + off);
}

static void rec_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct rec_dev *r = (struct rec_dev *)dev;

	r->writes++;
	r->last_off = off;
	r->last_len = len;
	r->last_val = dev_data_get(data, len);
}

static void rec_reset(struct device *dev)
{
	((struct rec_dev *)dev)->resets++;
}

static void rec_destroy(struct device *dev)
{
	((struct rec_dev *)dev)->destroys++;
}

static const struct dev_ops rec_ops = {
	.name = "rec",
	.read = rec_read,
	.write = rec_write,
	.reset = rec_reset,
	.destroy = rec_destroy,
};

/* No read or write handler at all. */
static const struct dev_ops mute_ops = { .name = "mute" };

static void test_register_and_lookup(void **state)
{
	struct bus bus = { 0 };
	struct rec_dev a = { .dev.ops = &rec_ops }, b = { .dev.ops = &rec_ops };
	const struct bus_range *r;

	(void)state;
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0x70, 2, &b.dev), 0);
	assert_int_equal(bus.nr, 2);
	/* Kept sorted by base whatever the registration order. */
	assert_int_equal(bus.ranges[0].base, 0x70);
	assert_int_equal(bus.ranges[1].base, 0x3f8);

	r = bus_find(&bus, 0x3f8);
	assert_non_null(r);
	assert_ptr_equal(r->dev, &a.dev);
	r = bus_find(&bus, 0x3ff);
	assert_non_null(r);
	assert_ptr_equal(r->dev, &a.dev);
	assert_null(bus_find(&bus, 0x400));
	assert_null(bus_find(&bus, 0x3f7));
	r = bus_find(&bus, 0x71);
	assert_non_null(r);
	assert_ptr_equal(r->dev, &b.dev);
	assert_null(bus_find(&bus, 0x72));
	assert_null(bus_find(&bus, 0x6f));
	assert_null(bus_find(&bus, 0));
	bus_destroy(&bus);
	assert_int_equal(a.destroys, 1);
	assert_int_equal(b.destroys, 1);
	assert_null(bus.ranges);
	assert_int_equal(bus.nr, 0);
}

static void test_overlap_and_invalid(void **state)
{
	struct bus bus = { 0 };
	struct rec_dev a = { .dev.ops = &rec_ops };

	(void)state;
	assert_int_equal(bus_register(&bus, 0x100, 0x10, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0x100, 0x10, &a.dev), -EEXIST);
	assert_int_equal(bus_register(&bus, 0xf8, 0x09, &a.dev), -EEXIST);  /* tail in */
	assert_int_equal(bus_register(&bus, 0x10f, 0x01, &a.dev), -EEXIST); /* last byte */
	assert_int_equal(bus_register(&bus, 0x104, 0x02, &a.dev), -EEXIST); /* inside */
	assert_int_equal(bus_register(&bus, 0xf0, 0x100, &a.dev), -EEXIST); /* covers */
	assert_int_equal(bus_register(&bus, 0x100, 0, &a.dev), -EINVAL);
	assert_int_equal(bus_register(&bus, ~0ull, 2, &a.dev), -EINVAL); /* wraps */
	/* Adjacent on both sides is fine. */
	assert_int_equal(bus_register(&bus, 0xf8, 0x08, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0x110, 0x01, &a.dev), 0);
	assert_int_equal(bus.nr, 3);
	bus_destroy(&bus);
	/* Registered three times, destroyed once. */
	assert_int_equal(a.destroys, 1);
}

static void test_many_ranges_stay_sorted(void **state)
{
	struct bus bus = { 0 };
	struct rec_dev devs[20];

	(void)state;
	memset(devs, 0, sizeof(devs));
	/* Insert 20 ranges in a scrambled order (7 is coprime with 20). */
	for (unsigned i = 0; i < 20; i++) {
		unsigned k = (i * 7) % 20;

		devs[k].dev.ops = &rec_ops;
		assert_int_equal(bus_register(&bus, 0x1000 + k * 0x10, 4, &devs[k].dev), 0);
	}
	for (unsigned k = 0; k < 20; k++) {
		const struct bus_range *r = bus_find(&bus, 0x1000 + k * 0x10 + 3);

		assert_non_null(r);
		assert_ptr_equal(r->dev, &devs[k].dev);
		assert_null(bus_find(&bus, 0x1000 + k * 0x10 + 4));
		assert_int_equal(bus.ranges[k].base, 0x1000 + k * 0x10);
	}
	bus_destroy(&bus);
	for (unsigned k = 0; k < 20; k++)
		assert_int_equal(devs[k].destroys, 1);
}

static void test_dispatch_offsets(void **state)
{
	struct bus bus = { 0 };
	struct rec_dev a = { .dev.ops = &rec_ops };
	u8 buf[4];
	u32 val;

	(void)state;
	assert_int_equal(bus_register(&bus, 0x510, 2, &a.dev), 0);

	val = 0x1234;
	assert_true(bus_access(&bus, 0x510, &val, 2, true));
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.last_off, 0);
	assert_int_equal(a.last_len, 2);
	assert_int_equal(a.last_val, 0x1234);

	memset(buf, 0, sizeof(buf));
	assert_true(bus_access(&bus, 0x511, buf, 1, false));
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.last_off, 1);
	assert_int_equal(a.last_len, 1);
	assert_int_equal(buf[0], 0x01); /* low byte of 0xa501 */
	assert_int_equal(buf[1], 0);	/* untouched past len */

	assert_true(bus_access(&bus, 0x510, buf, 4, false));
	assert_int_equal(dev_data_get(buf, 4), 0xa500);
	bus_destroy(&bus);
}

static void test_unclaimed(void **state)
{
	struct bus bus = { 0 };
	struct rec_dev a = { .dev.ops = &rec_ops };
	u8 buf[4] = { 1, 2, 3, 4 };
	u32 w = 0xdeadbeef;

	(void)state;
	assert_false(bus_access(&bus, 0x80, buf, 4, false)); /* empty bus */
	assert_int_equal(dev_data_get(buf, 4), 0xffffffff);

	assert_int_equal(bus_register(&bus, 0x60, 1, &a.dev), 0);
	memset(buf, 0, sizeof(buf));
	assert_false(bus_access(&bus, 0x61, buf, 2, false));
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	assert_int_equal(buf[2], 0); /* only len bytes are filled */
	assert_false(bus_access(&bus, 0x61, &w, 4, true));
	assert_int_equal(w, 0xdeadbeef); /* a write buffer is left alone */
	assert_int_equal(a.reads + a.writes, 0);
	bus_destroy(&bus);
}

static void test_missing_handlers(void **state)
{
	struct bus bus = { 0 };
	struct device mute = { .ops = &mute_ops };
	u8 buf[2] = { 0, 0 };
	u8 w = 7;

	(void)state;
	assert_int_equal(bus_register(&bus, 0x80, 1, &mute), 0);
	/* Claimed, so true, but with no read handler it reads all-ones. */
	assert_true(bus_access(&bus, 0x80, buf, 2, false));
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	assert_true(bus_access(&bus, 0x80, &w, 1, true));
	bus_reset(&bus);   /* no reset op: nothing happens */
	bus_destroy(&bus); /* no destroy op: nothing happens */
}

static void test_reset_all(void **state)
{
	struct bus bus = { 0 };
	struct rec_dev a = { .dev.ops = &rec_ops }, b = { .dev.ops = &rec_ops };

	(void)state;
	assert_int_equal(bus_register(&bus, 0x10, 1, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0x20, 1, &b.dev), 0);
	bus_reset(&bus);
	assert_int_equal(a.resets, 1);
	assert_int_equal(b.resets, 1);
	bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_and_lookup),
		cmocka_unit_test(test_overlap_and_invalid),
		cmocka_unit_test(test_many_ranges_stay_sorted),
		cmocka_unit_test(test_dispatch_offsets),
		cmocka_unit_test(test_unclaimed),
		cmocka_unit_test(test_missing_handlers),
		cmocka_unit_test(test_reset_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
