/* SPDX-License-Identifier: MIT */
/*
 * Stats-mark port: a guest program snapshots umbra's event counters at a
 * point of its choosing (devices/stats_mark.c has the contract).
 *
 * The VMM registers it with bus_register(&pio_bus, STATS_MARK_PORT,
 * STATS_MARK_LEN, dev).
 */
#ifndef UMBRA_DEVICES_STATS_MARK_H
#define UMBRA_DEVICES_STATS_MARK_H

#include "devices/device.h"

#define STATS_MARK_PORT	 0x520	    /* unassigned on QEMU's pc and q35 machines */
#define STATS_MARK_LEN	 4	    /* one 32-bit register */
#define STATS_MARK_MAGIC 0x52424d55 /* what a 4-byte read returns: "UMBR" little-endian */

/* Create the device; it reports marks through host->stats_mark. NULL on ENOMEM. */
struct device *stats_mark_create(const struct dev_host *host);

#endif /* UMBRA_DEVICES_STATS_MARK_H */
