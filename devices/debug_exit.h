/* SPDX-License-Identifier: MIT */
/*
 * QEMU-compatible isa-debug-exit port (devices/debug_exit.c has the contract).
 *
 * The VMM registers it with bus_register(&pio_bus, port, width, dev), where
 * `port` is configurable (QEMU's default iobase is DEBUG_EXIT_DEFAULT_PORT)
 * and `width` is 1, 2 or 4 bytes (QEMU's iosize; default 1).
 */
#ifndef UMBRA_DEVICES_DEBUG_EXIT_H
#define UMBRA_DEVICES_DEBUG_EXIT_H

#include "devices/device.h"

#define DEBUG_EXIT_DEFAULT_PORT	 0x501 /* QEMU isa-debug-exit iobase default */
#define DEBUG_EXIT_DEFAULT_WIDTH 1     /* QEMU isa-debug-exit iosize default */
#define DEBUG_EXIT_MAX_WIDTH	 4

/* Create the device; it stops the VM through host->request_stop. NULL on ENOMEM. */
struct device *debug_exit_create(const struct dev_host *host);

#endif /* UMBRA_DEVICES_DEBUG_EXIT_H */
