/* SPDX-License-Identifier: MIT */
/*
 * PCI reset control register at port 0xcf9 (devices/reset_ctl.c).
 *
 * The VMM registers it with bus_register(&pio_bus, RESET_CTL_PORT,
 * RESET_CTL_LEN, dev). If a PCI host bridge is added later, it must not claim
 * 0xcf9 (register CONFIG_ADDRESS at 0xcf8 with length 1, CONFIG_DATA at 0xcfc).
 */
#ifndef UMBRA_DEVICES_RESET_CTL_H
#define UMBRA_DEVICES_RESET_CTL_H

#include "devices/device.h"

#define RESET_CTL_PORT 0xcf9
#define RESET_CTL_LEN  1

/* Create the register; resets go to host->request_stop. NULL on ENOMEM. */
struct device *reset_ctl_create(const struct dev_host *host);

#endif /* UMBRA_DEVICES_RESET_CTL_H */
