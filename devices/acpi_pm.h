/* SPDX-License-Identifier: MIT */
/*
 * ACPI PM1a control register, just enough to power off, and the PM1a event
 * block the FADT must name (devices/acpi_pm.c).
 *
 * Test kernels written for QEMU power off by writing SLP_EN to one of two
 * ports. The VMM creates one device for each and registers them with
 *   bus_register(&pio_bus, ACPI_PM1A_CNT_Q35, ACPI_PM1A_CNT_LEN, dev)
 *   bus_register(&pio_bus, ACPI_PM1A_CNT_BOCHS, ACPI_PM1A_CNT_LEN, dev2)
 * (one device registered at both ranges works too: they then share the
 * register value). The event block goes at ACPI_PM1A_EVT_Q35:
 *   bus_register(&pio_bus, ACPI_PM1A_EVT_Q35, ACPI_PM1A_EVT_LEN, evt)
 * The ACPI tables (vmm/acpi.c) name the q35 ports.
 */
#ifndef UMBRA_DEVICES_ACPI_PM_H
#define UMBRA_DEVICES_ACPI_PM_H

#include "devices/device.h"

#define ACPI_PM1A_CNT_Q35   0x604  /* QEMU q35 ICH9 PM base 0x600 + 4 */
#define ACPI_PM1A_CNT_BOCHS 0xb004 /* Bochs and old QEMU (PIIX4 PM base 0xb000 + 4) */
#define ACPI_PM1A_CNT_LEN   2	   /* one 16-bit register */
#define ACPI_PM1A_EVT_Q35   0x600  /* QEMU q35 ICH9 PM base: PM1_STS, PM1_EN */
#define ACPI_PM1A_EVT_LEN   4	   /* two 16-bit registers */

/* Create the register; power-off goes to host->request_stop. NULL on ENOMEM. */
struct device *acpi_pm_create(const struct dev_host *host);
/* Create the PM1a event block (status reads 0, enable stored). NULL on ENOMEM. */
struct device *acpi_pm_evt_create(const struct dev_host *host);

#endif /* UMBRA_DEVICES_ACPI_PM_H */
