/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the emulated devices (devices/), as the guest sees
 * them: every device on one port bus as vmm/devices.c places it, driven by
 * any sequence of port reads and writes of 1, 2 or 4 bytes at any port
 * (KVM passes a guest's `in`/`out` through whatever its width and
 * alignment), with host console input, resets, and a host clock that
 * jumps anywhere (negative and far-future wall times included). The guest
 * controls all of it but the clock and the input, so none of it may crash
 * umbra, read or write outside a device's state (ASan, UBSan), or hang.
 *
 * Checked besides: a port no device holds reads as all-ones and reports
 * unhandled; IRQ lines are ISA lines (0-15) driven to 0 or 1; console
 * output comes in non-empty buffers.
 *
 * Input: records of 8 bytes, [op, port lo, port hi, len, value (4, LE)]:
 *   op % 8  0, 6 read; 1, 7 write; 2 host input of the value's first
 *           (len % 5) bytes;
 *           3 reset every device; 4 the monotonic clock advances by
 *           value us; 5 the wall clock is set to (s32)value * 4099 s
 *   port    hi bit 7 clear: the base of device (lo % NR_BASES), plus
 *           (hi % 8) - 1 (just before, inside and past each range);
 *           set: the 16-bit port lo | (hi & 0x7f) << 8, anywhere
 *   len     1, 2 or 4 by (len % 3)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/bus.h"
#include "devices/cmos.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/pm_timer.h"
#include "devices/reset_ctl.h"
#include "devices/serial.h"
#include "devices/stats_mark.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static u64 now_ns;
static s64 wall_s;

static void fake_set_irq(void *opaque, unsigned irq, int level)
{
	(void)opaque;
	if (irq > 15 || (level != 0 && level != 1))
		abort();
}

static void fake_console_write(void *opaque, const u8 *buf, size_t len)
{
	volatile u8 sink = 0;

	(void)opaque;
	if (!len)
		abort();
	for (size_t i = 0; i < len; i++) /* ASan checks the buffer is readable */
		sink ^= buf[i];
	(void)sink;
}

static void fake_request_stop(void *opaque, enum vm_stop_reason why, int status)
{
	(void)opaque;
	(void)status;
	if (why != VM_STOP_POWEROFF && why != VM_STOP_RESET && why != VM_STOP_GUEST_STATUS)
		abort();
}

static s64 fake_wall_time(void *opaque)
{
	(void)opaque;
	return wall_s;
}

static u64 fake_monotonic_ns(void *opaque)
{
	(void)opaque;
	return now_ns;
}

static void fake_stats_mark(void *opaque, u32 label)
{
	(void)opaque;
	(void)label;
}

/* Where vmm/devices.c puts each device, from the same headers' constants. */
enum { NR_BASES = 11 };
static const u16 bases[NR_BASES] = { SERIAL_COM1_BASE,	CMOS_IO_BASE,		FW_CFG_IO_BASE,
				     I8042_IO_BASE,	ACPI_PM1A_CNT_Q35,	ACPI_PM1A_CNT_BOCHS,
				     ACPI_PM1A_EVT_Q35, ACPI_PM_TMR_Q35,	RESET_CTL_PORT,
				     STATS_MARK_PORT,	DEBUG_EXIT_DEFAULT_PORT };

static void attach(struct bus *bus, struct device *dev, u64 base, u64 len)
{
	if (!dev || bus_register(bus, base, len, dev))
		abort();
}

static void build(struct bus *bus, struct device **serial)
{
	static const struct dev_host host = {
		.set_irq = fake_set_irq,
		.console_write = fake_console_write,
		.request_stop = fake_request_stop,
		.wall_time = fake_wall_time,
		.monotonic_ns = fake_monotonic_ns,
		.stats_mark = fake_stats_mark,
	};
	static const u8 file[] = "etc/umbra-fuzz";
	struct device *acpi, *cmos, *fw_cfg;

	*serial = serial_create(&host, SERIAL_COM1_IRQ);
	attach(bus, *serial, SERIAL_COM1_BASE, SERIAL_IO_LEN);
	attach(bus, cmos = cmos_create(&host), CMOS_IO_BASE, CMOS_IO_LEN);
	cmos_set_memory(cmos, 3 * GiB, 5 * GiB);
	attach(bus, fw_cfg = fw_cfg_create(&host), FW_CFG_IO_BASE, FW_CFG_IO_LEN);
	if (fw_cfg_add_u64(fw_cfg, 0x03, 8 * GiB) || fw_cfg_add_u16(fw_cfg, 0x05, 1) ||
	    fw_cfg_add_bytes(fw_cfg, 0x8000, file, sizeof(file)))
		abort();
	attach(bus, i8042_create(&host), I8042_IO_BASE, I8042_IO_LEN);
	attach(bus, acpi = acpi_pm_create(&host), ACPI_PM1A_CNT_Q35, ACPI_PM1A_CNT_LEN);
	attach(bus, acpi, ACPI_PM1A_CNT_BOCHS, ACPI_PM1A_CNT_LEN); /* one device, two places */
	attach(bus, acpi_pm_evt_create(&host), ACPI_PM1A_EVT_Q35, ACPI_PM1A_EVT_LEN);
	attach(bus, pm_timer_create(&host), ACPI_PM_TMR_Q35, ACPI_PM_TMR_LEN);
	attach(bus, reset_ctl_create(&host), RESET_CTL_PORT, RESET_CTL_LEN);
	attach(bus, stats_mark_create(&host), STATS_MARK_PORT, STATS_MARK_LEN);
	attach(bus, debug_exit_create(&host), DEBUG_EXIT_DEFAULT_PORT, DEBUG_EXIT_MAX_WIDTH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bus bus;
	static struct device *serial;
	static bool built;

	if (!built) { /* once: bus_destroy of a device placed twice is vmm/devices.c's business */
		build(&bus, &serial);
		built = true;
	}
	bus_reset(&bus); /* every input starts from power-on */
	now_ns = 0;
	wall_s = 1700000000;
	for (size_t i = 0; i + 8 <= size; i += 8) {
		const u8 *r = data + i;
		unsigned op = r[0] % 8, len = (unsigned[]){ 1, 2, 4 }[r[3] % 3];
		u32 value = (u32)r[4] | (u32)r[5] << 8 | (u32)r[6] << 16 | (u32)r[7] << 24;
		u16 port = r[2] & 0x80 ? (u16)(r[1] | (r[2] & 0x7f) << 8)
				       : (u16)(bases[r[1] % NR_BASES] + r[2] % 8 - 1);
		u8 buf[4];

		switch (op) {
		case 0:
		case 6:
			memset(buf, 0x5a, sizeof(buf));
			if (!bus_access(&bus, port, buf, len, false)) {
				for (unsigned b = 0; b < len; b++)
					if (buf[b] != 0xff)
						abort(); /* nothing there reads as all-ones */
			}
			break;
		case 1:
		case 7:
			memcpy(buf, &value, sizeof(buf));
			bus_access(&bus, port, buf, len, true);
			break;
		case 2: serial_receive(serial, r + 4, r[3] % 5u); break;
		case 3: bus_reset(&bus); break;
		case 4: now_ns += (u64)value * 1000; break;
		case 5: wall_s = (s64)(s32)value * 4099; break;
		}
	}
	return 0;
}
