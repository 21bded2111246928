/* SPDX-License-Identifier: MIT */
/*
 * Port I/O through a test's bus for the device unit tests: each test file
 * defines `static struct bus bus;` before including this header.
 */
#ifndef UMBRA_TESTS_UNIT_BUS_IO_H
#define UMBRA_TESTS_UNIT_BUS_IO_H

#include "devices/bus.h"
#include "devices/device.h"

/* A guest `out` of the low `len` bytes of `val` to `port`; someone must claim it. */
static inline void out(u64 port, u32 val, unsigned len)
{
	u8 buf[4];

	dev_data_put(buf, len, val);
	assert_true(bus_access(&bus, port, buf, len, true));
}

/* A guest `in` of `len` bytes from `port` (bytes the device leaves read as 0x5a). */
static inline u32 in(u64 port, unsigned len)
{
	u8 buf[4] = { 0x5a, 0x5a, 0x5a, 0x5a };

	assert_true(bus_access(&bus, port, buf, len, false));
	return (u32)dev_data_get(buf, len);
}

#endif /* UMBRA_TESTS_UNIT_BUS_IO_H */
