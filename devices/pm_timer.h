/* SPDX-License-Identifier: MIT */
/*
 * ACPI power-management timer (devices/pm_timer.c has the guest contract).
 *
 * The VMM registers it at the PM base's timer offset, as QEMU's q35 does:
 *   bus_register(&pio_bus, ACPI_PM_TMR_Q35, ACPI_PM_TMR_LEN, dev)
 * and the FADT (vmm/acpi.c) names that port. It counts from the host's
 * monotonic clock, dev_host.monotonic_ns, which it needs.
 */
#ifndef UMBRA_DEVICES_PM_TIMER_H
#define UMBRA_DEVICES_PM_TIMER_H

#include "devices/device.h"

#define ACPI_PM_TMR_Q35	 0x608	   /* QEMU q35 ICH9 PM base 0x600 + 8 */
#define ACPI_PM_TMR_LEN	 4	   /* one 32-bit register */
#define ACPI_PM_TMR_HZ	 3579545   /* ACPI 6.5, 4.8.3.3: 3.579545 MHz */
#define ACPI_PM_TMR_MASK 0xffffffu /* 24 bits: the FADT leaves TMR_VAL_EXT clear */

/* Create the timer, counting from 0 now. NULL on ENOMEM or without monotonic_ns. */
struct device *pm_timer_create(const struct dev_host *host);

/* The count `ns` nanoseconds after the timer started (24 bits). */
u32 pm_timer_count(u64 ns);

#endif /* UMBRA_DEVICES_PM_TIMER_H */
