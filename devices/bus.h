/* SPDX-License-Identifier: MIT */
/*
 * The I/O bus: one sorted interval table per address space (port I/O and
 * MMIO), one lookup, one handler signature. A device is registered at
 * [base, base+len) and its handlers receive `addr - base`.
 */
#ifndef UMBRA_DEVICES_BUS_H
#define UMBRA_DEVICES_BUS_H

#include "devices/device.h"

enum bus_space { BUS_PIO, BUS_MMIO };

struct bus_range {
	u64 base, len;
	struct device *dev;
};

struct bus {
	struct bus_range *ranges; /* sorted by base, never overlapping */
	size_t nr, cap;
};

/* Register `dev` at [base, base+len). Returns 0, -EEXIST on overlap, -ENOMEM. */
int bus_register(struct bus *bus, u64 base, u64 len, struct device *dev) __must_check;
/* The range containing `addr`, or NULL. */
const struct bus_range *bus_find(const struct bus *bus, u64 addr);
/*
 * Dispatch an access. Returns true if a device handled it; false if nothing
 * is registered there (reads are then filled with all-ones).
 */
bool bus_access(const struct bus *bus, u64 addr, void *data, unsigned len, bool is_write);
/* Call every device's reset handler. */
void bus_reset(struct bus *bus);
/* Destroy every device and free the table. */
void bus_destroy(struct bus *bus);

#endif /* UMBRA_DEVICES_BUS_H */
