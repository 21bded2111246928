// SPDX-License-Identifier: MIT
/*
 * Unit tests for the small stop/reset devices: debug-exit, i8042, the ACPI
 * PM1a control register and event block, the ACPI PM timer, and the 0xcf9
 * reset control register.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/bus.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/pm_timer.h"
#include "devices/reset_ctl.h"

/* ---- fake host: records request_stop ---------------------------------------- */

struct stops {
	int calls;
	enum vm_stop_reason why;
	int status;
};

static struct stops stops;

static void fake_request_stop(void *opaque, enum vm_stop_reason why, int status)
{
	struct stops *s = opaque;

	s->calls++;
	s->why = why;
	s->status = status;
}

static const struct dev_host host = { .opaque = &stops, .request_stop = fake_request_stop };

static struct bus bus;

#include "bus_io.h" /* needs `bus` */

static int setup(void **state)
{
	(void)state;
	memset(&stops, 0, sizeof(stops));
	memset(&bus, 0, sizeof(bus));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bus_destroy(&bus);
	return 0;
}

static void expect_stop(enum vm_stop_reason why, int status)
{
	assert_int_equal(stops.calls, 1);
	assert_int_equal(stops.why, why);
	assert_int_equal(stops.status, status);
	memset(&stops, 0, sizeof(stops));
}

/* ---- debug-exit -------------------------------------------------------------- */

static void test_debug_exit_status(void **state)
{
	struct device *dev = debug_exit_create(&host);

	(void)state;
	assert_non_null(dev);
	assert_int_equal(bus_register(&bus, DEBUG_EXIT_DEFAULT_PORT, 1, dev), 0);
	out(0x501, 0x00, 1);
	expect_stop(VM_STOP_GUEST_STATUS, 1);
	out(0x501, 0x10, 1);
	expect_stop(VM_STOP_GUEST_STATUS, 0x21);
	out(0x501, 0x7f, 1);
	expect_stop(VM_STOP_GUEST_STATUS, 0xff);
	out(0x501, 0x80, 1); /* the VMM's 8-bit exit status will be 1 */
	expect_stop(VM_STOP_GUEST_STATUS, 0x101);
	assert_int_equal(in(0x501, 1), 0xff);
	assert_int_equal(stops.calls, 0); /* reads have no effect */
}

static void test_debug_exit_wide(void **state)
{
	struct device *dev = debug_exit_create(&host);

	(void)state;
	assert_non_null(dev);
	assert_int_equal(bus_register(&bus, 0xf4, 4, dev), 0);
	out(0xf4, 0x1234, 2);
	expect_stop(VM_STOP_GUEST_STATUS, 0x2469);
	out(0xf4, 0x00abcdef, 4);
	expect_stop(VM_STOP_GUEST_STATUS, 0x01579bdf);
	assert_int_equal(in(0xf4, 4), 0xffffffff);
	assert_int_equal(in(0xf4, 2), 0xffff);
}

static void test_debug_exit_no_callback(void **state)
{
	struct device *dev = debug_exit_create(&(struct dev_host){ 0 });
	u8 v = 1;

	(void)state;
	assert_non_null(dev);
	dev->ops->write(dev, 0, &v, 1); /* no request_stop: nothing happens */
	dev->ops->destroy(dev);
}

/* ---- i8042 -------------------------------------------------------------------- */

#define KBD_DATA   0x60
#define KBD_STATUS 0x64
#define KBD_CMD	   0x64

static void i8042_setup(void)
{
	struct device *dev = i8042_create(&host);

	assert_non_null(dev);
	assert_int_equal(bus_register(&bus, I8042_IO_BASE, I8042_IO_LEN, dev), 0);
}

static void test_i8042_status_and_unused(void **state)
{
	(void)state;
	i8042_setup();
	assert_int_equal(in(KBD_STATUS, 1), 0x1c); /* SYS | CMD | KEYLOCK, OBF clear */
	assert_int_equal(in(0x61, 1), 0xff);
	assert_int_equal(in(0x62, 1), 0xff);
	assert_int_equal(in(0x63, 1), 0xff);
	out(0x61, 0x00, 1); /* ignored */
	assert_false(bus_access(&bus, 0x65, &(u8){ 0 }, 1, false));
	assert_int_equal(stops.calls, 0);
}

static void test_i8042_reset_pulse(void **state)
{
	(void)state;
	i8042_setup();
	out(KBD_CMD, 0xfe, 1);
	expect_stop(VM_STOP_RESET, 0);
	out(KBD_CMD, 0xfc, 1); /* another pulse that includes line 0 */
	expect_stop(VM_STOP_RESET, 0);
	out(KBD_CMD, 0xff, 1); /* pulses nothing */
	out(KBD_CMD, 0xfd, 1); /* line 1 only */
	assert_int_equal(stops.calls, 0);
}

static void test_i8042_self_test(void **state)
{
	(void)state;
	i8042_setup();
	out(KBD_CMD, 0xaa, 1);
	assert_int_equal(in(KBD_STATUS, 1), 0x1d); /* OBF */
	assert_int_equal(in(KBD_DATA, 1), 0x55);
	assert_int_equal(in(KBD_STATUS, 1), 0x1c);
	out(KBD_CMD, 0xab, 1); /* keyboard interface test */
	assert_int_equal(in(KBD_DATA, 1), 0x00);
	assert_int_equal(stops.calls, 0);
}

static void test_i8042_command_byte(void **state)
{
	(void)state;
	i8042_setup();
	out(KBD_CMD, 0x20, 1);
	assert_int_equal(in(KBD_DATA, 1), 0x45);
	out(KBD_CMD, 0x60, 1);
	out(KBD_DATA, 0x65, 1);
	assert_int_equal(in(KBD_STATUS, 1), 0x14); /* last write was data */
	out(KBD_CMD, 0x20, 1);
	assert_int_equal(in(KBD_STATUS, 1), 0x1d);
	assert_int_equal(in(KBD_DATA, 1), 0x65);
	out(KBD_CMD, 0xad, 1);
	out(KBD_CMD, 0x20, 1);
	assert_int_equal(in(KBD_DATA, 1), 0x75);
	out(KBD_CMD, 0xae, 1);
	out(KBD_CMD, 0x20, 1);
	assert_int_equal(in(KBD_DATA, 1), 0x65);
	/* A data write with no pending command goes to the (absent) keyboard. */
	out(KBD_DATA, 0xf2, 1);
	assert_int_equal(in(KBD_STATUS, 1) & 0x01, 0);
	out(KBD_CMD, 0x20, 1);
	assert_int_equal(in(KBD_DATA, 1), 0x65);
	/* Unknown commands are ignored and cancel a pending parameter. */
	out(KBD_CMD, 0x60, 1);
	out(KBD_CMD, 0xc0, 1);
	out(KBD_DATA, 0x00, 1);
	out(KBD_CMD, 0x20, 1);
	assert_int_equal(in(KBD_DATA, 1), 0x65);
	assert_int_equal(stops.calls, 0);
}

static void test_i8042_output_port(void **state)
{
	(void)state;
	i8042_setup();
	out(KBD_CMD, 0xd0, 1);
	assert_int_equal(in(KBD_DATA, 1), 0x03);
	out(KBD_CMD, 0xd1, 1);
	out(KBD_DATA, 0xdf, 1); /* reset line high: no reset */
	assert_int_equal(stops.calls, 0);
	out(KBD_CMD, 0xd0, 1);
	assert_int_equal(in(KBD_DATA, 1), 0xdf);
	out(KBD_CMD, 0xd1, 1);
	out(KBD_DATA, 0xde, 1); /* bit 0 clear: reset */
	expect_stop(VM_STOP_RESET, 0);
	/* The same byte without the 0xd1 prefix is just a keyboard byte. */
	out(KBD_DATA, 0xde, 1);
	assert_int_equal(stops.calls, 0);
}

static void test_i8042_reset_op(void **state)
{
	(void)state;
	i8042_setup();
	out(KBD_CMD, 0x60, 1);
	out(KBD_DATA, 0x00, 1);
	out(KBD_CMD, 0xaa, 1);
	bus_reset(&bus);
	assert_int_equal(in(KBD_STATUS, 1), 0x1c);
	out(KBD_CMD, 0x20, 1);
	assert_int_equal(in(KBD_DATA, 1), 0x45);
}

/* ---- ACPI PM1a control -------------------------------------------------------- */

static void test_acpi_poweroff_ports(void **state)
{
	struct device *q35 = acpi_pm_create(&host), *bochs = acpi_pm_create(&host);

	(void)state;
	assert_non_null(q35);
	assert_non_null(bochs);
	assert_int_equal(bus_register(&bus, ACPI_PM1A_CNT_Q35, ACPI_PM1A_CNT_LEN, q35), 0);
	assert_int_equal(bus_register(&bus, ACPI_PM1A_CNT_BOCHS, ACPI_PM1A_CNT_LEN, bochs), 0);

	out(0x604, 0x2000, 2);
	expect_stop(VM_STOP_POWEROFF, 0);
	out(0xb004, 0x2000, 2);
	expect_stop(VM_STOP_POWEROFF, 0);
	out(0x604, 0x3400, 2); /* SLP_TYP 5 | SLP_EN: still off */
	expect_stop(VM_STOP_POWEROFF, 0);

	/* Without SLP_EN: stored, no stop; SLP_EN reads 0. */
	out(0x604, 0x1401, 2);
	assert_int_equal(stops.calls, 0);
	assert_int_equal(in(0x604, 2), 0x1401);
	assert_int_equal(in(0xb004, 2), 0x0000);
	assert_int_equal(in(0x605, 1), 0x14);

	/* A byte write to the high half can set SLP_EN. */
	out(0x605, 0x20, 1);
	expect_stop(VM_STOP_POWEROFF, 0);
	assert_int_equal(in(0x604, 2), 0x0001);
	bus_reset(&bus);
	assert_int_equal(in(0x604, 2), 0x0000);
}

/* The PM1a event block: status reads 0 whatever is written, enable is stored. */
static void test_acpi_pm1_event_block(void **state)
{
	struct device *evt = acpi_pm_evt_create(&host);

	(void)state;
	assert_non_null(evt);
	assert_int_equal(bus_register(&bus, ACPI_PM1A_EVT_Q35, ACPI_PM1A_EVT_LEN, evt), 0);
	assert_int_equal(in(0x600, 4), 0x00000000);
	out(0x600, 0xffff, 2); /* write-1-to-clear every status bit */
	assert_int_equal(in(0x600, 2), 0x0000);
	out(0x602, 0x0121, 2); /* PWRBTN_EN | GBL_EN | TMR_EN */
	assert_int_equal(in(0x602, 2), 0x0121);
	assert_int_equal(in(0x600, 4), 0x01210000);
	out(0x603, 0x04, 1); /* RTC_EN in the high byte */
	assert_int_equal(in(0x602, 2), 0x0421);
	out(0x600, 0x00200000, 4); /* one dword: status ignored, enable stored */
	assert_int_equal(in(0x600, 4), 0x00200000);
	assert_int_equal(in(0x601, 1), 0x00);
	assert_int_equal(stops.calls, 0);
	bus_reset(&bus);
	assert_int_equal(in(0x600, 4), 0x00000000);
	assert_null(bus_find(&bus, 0x5ff));
}

/* ---- ACPI PM timer -------------------------------------------------------------- */

static u64 fake_now_ns;

static u64 fake_monotonic_ns(void *opaque)
{
	(void)opaque;
	return fake_now_ns;
}

/* The count is floor(ns * 3579545 / 1e9) in 24 bits, exactly, however long the run. */
static void test_pm_timer_count(void **state)
{
	static const u64 ns[] = { 0,
				  279,
				  280,
				  999999999,
				  1000000000,
				  4686999999ull,
				  5000000000ull,
				  86400000000000ull,
				  315576000000000000ull,
				  0xffffffffffffffffull };

	(void)state;
	assert_int_equal(pm_timer_count(0), 0);
	assert_int_equal(pm_timer_count(279), 0); /* one tick is 279.37 ns */
	assert_int_equal(pm_timer_count(280), 1);
	assert_int_equal(pm_timer_count(999999999), 3579544);
	assert_int_equal(pm_timer_count(1000000000), 3579545);
	/* 2^24 ticks are 4.687 s: 5 s is 17897725 ticks, which wraps. */
	assert_int_equal(pm_timer_count(5000000000ull), 17897725 - 16777216);
	for (unsigned i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		unsigned __int128 want = (unsigned __int128)ns[i] * ACPI_PM_TMR_HZ / 1000000000u;

		assert_int_equal(pm_timer_count(ns[i]), (u32)(want & ACPI_PM_TMR_MASK));
	}
}

/* The register counts from its creation by the host's clock; writes change nothing. */
static void test_pm_timer_register(void **state)
{
	const struct dev_host clock = { .monotonic_ns = fake_monotonic_ns };
	struct device *dev;

	(void)state;
	assert_null(pm_timer_create(&host)); /* no clock to count from */
	fake_now_ns = 7000000000ull;
	dev = pm_timer_create(&clock);
	assert_non_null(dev);
	assert_int_equal(bus_register(&bus, ACPI_PM_TMR_Q35, ACPI_PM_TMR_LEN, dev), 0);
	assert_int_equal(in(0x608, 4), 0);
	fake_now_ns += 1000000000ull;
	assert_int_equal(in(0x608, 4), 3579545); /* 0x369e99 */
	assert_int_equal(in(0x608, 1), 0x99);
	assert_int_equal(in(0x609, 2), 0x369e);
	assert_int_equal(in(0x60b, 1), 0x00); /* bits 31:24: no TMR_VAL_EXT */
	out(0x608, 0, 4);
	out(0x60a, 0xff, 1);
	assert_int_equal(in(0x608, 4), 3579545);
	bus_reset(&bus); /* the count runs on */
	assert_int_equal(in(0x608, 4), 3579545);
	fake_now_ns += 4000000000ull; /* 5 s in all: wrapped */
	assert_int_equal(in(0x608, 4), 17897725 - 16777216);
	fake_now_ns = 6000000000ull; /* a clock behind the start reads 0, not a huge count */
	assert_int_equal(in(0x608, 4), 0);
	assert_null(bus_find(&bus, 0x607));
	assert_null(bus_find(&bus, 0x60c));
}

/* ---- 0xcf9 reset control ------------------------------------------------------ */

static void test_reset_ctl(void **state)
{
	struct device *dev = reset_ctl_create(&host);

	(void)state;
	assert_non_null(dev);
	assert_int_equal(bus_register(&bus, RESET_CTL_PORT, RESET_CTL_LEN, dev), 0);
	assert_int_equal(in(0xcf9, 1), 0x00);
	/* Linux reboot=pci: 0x02 first (no reset), then 0x06. */
	out(0xcf9, 0x02, 1);
	assert_int_equal(stops.calls, 0);
	assert_int_equal(in(0xcf9, 1), 0x02);
	out(0xcf9, 0x06, 1);
	expect_stop(VM_STOP_RESET, 0);
	assert_int_equal(in(0xcf9, 1), 0x02); /* RST_CPU reads 0 */
	out(0xcf9, 0x04, 1);		      /* soft reset */
	expect_stop(VM_STOP_RESET, 0);
	out(0xcf9, 0x0a, 1); /* FULL_RST | SYS_RST without RST_CPU */
	assert_int_equal(stops.calls, 0);
	assert_int_equal(in(0xcf9, 1), 0x0a);
	out(0xcf9, 0xf1, 1); /* reserved bits are not stored */
	assert_int_equal(in(0xcf9, 1), 0x00);
	assert_int_equal(stops.calls, 0);
	/* PCI CONFIG_ADDRESS next door is not ours. */
	assert_null(bus_find(&bus, 0xcf8));
	assert_null(bus_find(&bus, 0xcfa));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_debug_exit_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_exit_wide, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_exit_no_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_status_and_unused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_reset_pulse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_self_test, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_command_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_output_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_reset_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acpi_poweroff_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acpi_pm1_event_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm_timer_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm_timer_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_ctl, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
