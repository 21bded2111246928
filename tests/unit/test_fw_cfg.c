// SPDX-License-Identifier: MIT
/* Unit tests for fw_cfg, legacy port interface (devices/fw_cfg.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/fw_cfg.h"

#define PORT_SELECTOR 0x510
#define PORT_DATA     0x511

struct fixture {
	struct bus bus;
	struct device *dev;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.dev = fw_cfg_create(&(struct dev_host){ 0 });
	assert_non_null(f.dev);
	assert_int_equal(bus_register(&f.bus, FW_CFG_IO_BASE, FW_CFG_IO_LEN, f.dev), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	bus_destroy(&f->bus); /* destroys the device; ASan checks for leaks */
	return 0;
}

static void select_key(struct fixture *f, u16 key)
{
	u8 le[2] = { (u8)key, (u8)(key >> 8) };

	assert_true(bus_access(&f->bus, PORT_SELECTOR, le, 2, true));
}

static u8 read_byte(struct fixture *f)
{
	u8 v = 0x5a;

	assert_true(bus_access(&f->bus, PORT_DATA, &v, 1, false));
	return v;
}

static void read_bytes(struct fixture *f, u8 *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = read_byte(f);
}

static void test_signature(void **state)
{
	struct fixture *f = *state;
	u8 buf[6];

	select_key(f, FW_CFG_SIGNATURE);
	read_bytes(f, buf, sizeof(buf));
	assert_memory_equal(buf, "QEMU\0\0", 6); /* past the end: zeros */
}

static void test_signature_selected_at_start_and_reset(void **state)
{
	struct fixture *f = *state;
	u8 buf[4];

	read_bytes(f, buf, 4);
	assert_memory_equal(buf, "QEMU", 4);
	select_key(f, FW_CFG_ID);
	(void)read_byte(f);
	bus_reset(&f->bus);
	read_bytes(f, buf, 4);
	assert_memory_equal(buf, "QEMU", 4);
}

static void test_id_and_file_dir(void **state)
{
	struct fixture *f = *state;
	u8 buf[5];

	select_key(f, FW_CFG_ID);
	read_bytes(f, buf, 5);
	assert_memory_equal(buf, ((const u8[]){ 0x01, 0x00, 0x00, 0x00, 0x00 }), 5);
	select_key(f, FW_CFG_FILE_DIR);
	memset(buf, 0xee, sizeof(buf));
	read_bytes(f, buf, 4);
	assert_memory_equal(buf, ((const u8[]){ 0, 0, 0, 0 }), 4);
}

static void test_ram_size_and_cpus(void **state)
{
	struct fixture *f = *state;
	u8 buf[9];

	assert_int_equal(fw_cfg_add_u64(f->dev, FW_CFG_RAM_SIZE, 0x0000000123456789ull), 0);
	assert_int_equal(fw_cfg_add_u16(f->dev, FW_CFG_NB_CPUS, 2), 0);
	assert_int_equal(fw_cfg_add_u16(f->dev, FW_CFG_MAX_CPUS, 0x0104), 0);

	select_key(f, FW_CFG_RAM_SIZE);
	read_bytes(f, buf, 9);
	assert_memory_equal(
		buf, ((const u8[]){ 0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00, 0x00 }), 9);
	select_key(f, FW_CFG_NB_CPUS);
	read_bytes(f, buf, 3);
	assert_memory_equal(buf, ((const u8[]){ 0x02, 0x00, 0x00 }), 3);
	select_key(f, FW_CFG_MAX_CPUS);
	read_bytes(f, buf, 2);
	assert_memory_equal(buf, ((const u8[]){ 0x04, 0x01 }), 2);
}

static void test_reselect_resets_offset(void **state)
{
	struct fixture *f = *state;
	u8 buf[4];

	select_key(f, FW_CFG_SIGNATURE);
	read_bytes(f, buf, 2);
	assert_memory_equal(buf, "QE", 2);
	select_key(f, FW_CFG_SIGNATURE);
	read_bytes(f, buf, 4);
	assert_memory_equal(buf, "QEMU", 4);
	/* The write-channel bit selects the same item. */
	select_key(f, FW_CFG_SIGNATURE | FW_CFG_WRITE_CHANNEL);
	read_bytes(f, buf, 4);
	assert_memory_equal(buf, "QEMU", 4);
}

static void test_unknown_key_reads_zero(void **state)
{
	struct fixture *f = *state;

	select_key(f, 0x1234);
	for (int i = 0; i < 8; i++)
		assert_int_equal(read_byte(f), 0);
	select_key(f, FW_CFG_ARCH_LOCAL | FW_CFG_SIGNATURE); /* a different key */
	assert_int_equal(read_byte(f), 0);
}

static void test_add_bytes_copies_and_replaces(void **state)
{
	struct fixture *f = *state;
	char src[] = "abc";
	u8 buf[4];

	assert_int_equal(fw_cfg_add_bytes(f->dev, FW_CFG_ARCH_LOCAL | 3, src, 3), 0);
	src[0] = 'X'; /* the device keeps its own copy */
	select_key(f, FW_CFG_ARCH_LOCAL | 3);
	read_bytes(f, buf, 4);
	assert_memory_equal(buf, "abc\0", 4);

	assert_int_equal(fw_cfg_add_bytes(f->dev, FW_CFG_ARCH_LOCAL | 3, "de", 2), 0);
	select_key(f, FW_CFG_ARCH_LOCAL | 3);
	read_bytes(f, buf, 3);
	assert_memory_equal(buf, "de\0", 3);

	assert_int_equal(fw_cfg_add_bytes(f->dev, 0x20, NULL, 0), 0);
	select_key(f, 0x20);
	assert_int_equal(read_byte(f), 0);

	assert_int_equal(fw_cfg_add_u32(f->dev, FW_CFG_WRITE_CHANNEL | 5, 1), -EINVAL);
}

static void test_invalid_accesses(void **state)
{
	struct fixture *f = *state;
	u8 buf[2] = { 0, 0 };
	u8 key = FW_CFG_ID;

	select_key(f, FW_CFG_SIGNATURE);
	/* An 8-bit selector write is ignored. */
	assert_true(bus_access(&f->bus, PORT_SELECTOR, &key, 1, true));
	assert_int_equal(read_byte(f), 'Q');
	/* A data-port write is ignored and does not advance. */
	assert_true(bus_access(&f->bus, PORT_DATA, &key, 1, true));
	assert_int_equal(read_byte(f), 'E');
	/* The selector reads all-ones; a 16-bit data read too, consuming nothing. */
	assert_true(bus_access(&f->bus, PORT_SELECTOR, buf, 2, false));
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	buf[0] = buf[1] = 0;
	assert_true(bus_access(&f->bus, PORT_DATA, buf, 2, false));
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	assert_int_equal(read_byte(f), 'M');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signature_selected_at_start_and_reset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_id_and_file_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram_size_and_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reselect_resets_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_reads_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_bytes_copies_and_replaces, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_invalid_accesses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
