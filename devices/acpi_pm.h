/* SPDX-License-Identifier: MIT */
/*
 * ACPI PM1a control register, just enough to power off (devices/acpi_pm.c).
 *
 * Test kernels written for QEMU power off by writing SLP_EN to one of two
 * ports. The VMM creates one device for each and registers them with
 *   bus_register(&pio_bus, ACPI_PM1A_CNT_Q35, ACPI_PM1A_CNT_LEN, dev)
 *   bus_register(&pio_bus, ACPI_PM1A_CNT_BOCHS, ACPI_PM1A_CNT_LEN, dev2)
 * (one device registered at both ranges works too: they then share the
 * register value).
 */
#ifndef UMBRA_DEVICES_ACPI_PM_H
#define UMBRA_DEVICES_ACPI_PM_H

#include "devices/device.h"

#define ACPI_PM1A_CNT_Q35   0x604  /* QEMU q35 ICH9 PM base 0x600 + 4 */
#define ACPI_PM1A_CNT_BOCHS 0xb004 /* Bochs and old QEMU (PIIX4 PM base 0xb000 + 4) */
#define ACPI_PM1A_CNT_LEN   2	   /* one 16-bit register */

/* Create the register; power-off goes to host->request_stop. NULL on ENOMEM. */
struct device *acpi_pm_create(const struct dev_host *host);

#endif /* UMBRA_DEVICES_ACPI_PM_H */
