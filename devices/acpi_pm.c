// SPDX-License-Identifier: MIT
/*
 * ACPI PM1a control register, for power-off (devices/acpi_pm.h).
 *
 * Guest-visible contract. One 16-bit register (ACPI 6.5, section 4.8.3.2.1,
 * PM1 Control Registers):
 *   bit 0      SCI_EN    stored and read back
 *   bits 12:10 SLP_TYPx  stored and read back
 *   bit 13     SLP_EN    write-only, reads 0
 *   others               stored and read back
 * A 1-byte access at offset 0 or 1 reads or writes that half.
 *
 * 1. A write that sets SLP_EN powers the machine off:
 *    host->request_stop(opaque, VM_STOP_POWEROFF, 0). This is what QEMU test
 *    kernels do with `outw(0x2000, 0x604)` (q35) or `outw(0x2000, 0xb004)`
 *    (Bochs, old QEMU).
 *
 * LIMITATION: there are no ACPI tables advertising sleep states, and no
 *    suspend: every SLP_TYP value means S5 (soft off).
 * LIMITATION: no PM1 status/enable registers, no PM timer, no SCI.
 */
#include <stdlib.h>

#include "devices/acpi_pm.h"

#define PM1_CNT_SCI_EN	     0x0001
#define PM1_CNT_SLP_TYP_MASK 0x1c00
#define PM1_CNT_SLP_EN	     0x2000 /* write-only */

#define PM1_CNT_FLOATING 0xff /* outside the register, per byte */

struct acpi_pm {
	struct device dev; /* first: handlers cast back */
	u16 pm1_cnt;
};

static void acpi_pm_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct acpi_pm *pm = (struct acpi_pm *)dev;
	u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		u64 byte = off + i;

		p[i] = byte < ACPI_PM1A_CNT_LEN ? (u8)(pm->pm1_cnt >> (8 * byte))
						: PM1_CNT_FLOATING;
	}
}

/* Item 1. */
static void acpi_pm_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct acpi_pm *pm = (struct acpi_pm *)dev;
	const u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		u64 byte = off + i;

		if (byte >= ACPI_PM1A_CNT_LEN)
			continue;
		pm->pm1_cnt &= (u16) ~(0xffu << (8 * byte));
		pm->pm1_cnt |= (u16)(p[i] << (8 * byte));
	}
	if (!(pm->pm1_cnt & PM1_CNT_SLP_EN))
		return;
	pm->pm1_cnt &= (u16)~PM1_CNT_SLP_EN;
	if (dev->host.request_stop)
		dev->host.request_stop(dev->host.opaque, VM_STOP_POWEROFF, 0);
}

static void acpi_pm_reset(struct device *dev)
{
	((struct acpi_pm *)dev)->pm1_cnt = 0;
}

static void acpi_pm_destroy(struct device *dev)
{
	free((struct acpi_pm *)dev);
}

static const struct dev_ops acpi_pm_ops = {
	.name = "acpi-pm",
	.read = acpi_pm_read,
	.write = acpi_pm_write,
	.reset = acpi_pm_reset,
	.destroy = acpi_pm_destroy,
};

struct device *acpi_pm_create(const struct dev_host *host)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pm->dev.ops = &acpi_pm_ops;
	if (host)
		pm->dev.host = *host;
	return &pm->dev;
}
