/* SPDX-License-Identifier: MIT */
/*
 * Minimal i8042 keyboard controller: reset line and self-test only
 * (devices/i8042.c has the contract).
 *
 * The VMM registers it ONCE with bus_register(&pio_bus, I8042_IO_BASE,
 * I8042_IO_LEN, dev): the data port 0x60 is offset 0, the status/command
 * port 0x64 is offset 4.
 */
#ifndef UMBRA_DEVICES_I8042_H
#define UMBRA_DEVICES_I8042_H

#include "devices/device.h"

#define I8042_IO_BASE 0x60 /* data port */
#define I8042_IO_LEN  5	   /* 0x60..0x64; status/command is at 0x64 */

/* Create the controller; resets go to host->request_stop. NULL on ENOMEM. */
struct device *i8042_create(const struct dev_host *host);

#endif /* UMBRA_DEVICES_I8042_H */
