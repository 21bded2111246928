// SPDX-License-Identifier: MIT
/*
 * ACPI PM1a control register, for power-off, and the PM1a event block
 * (devices/acpi_pm.h).
 *
 * Guest-visible contract of the control device. One 16-bit register (ACPI
 * 6.5, section 4.8.3.2.1, PM1 Control Registers):
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
 * Guest-visible contract of the event device (ACPI 6.5, 4.8.3.1, PM1 Event
 * Grouping). Four bytes: PM1_STS at offset 0, PM1_EN at offset 2, 16 bits
 * each, any byte accessible on its own:
 *   PM1_STS   reads 0: no fixed event source raises status (no power or
 *             sleep button, no RTC alarm, no global-lock release; the PM
 *             timer, devices/pm_timer.c, does not track TMR_STS);
 *             writes (write-1-to-clear) change nothing
 *   PM1_EN    stored and read back, so the enable bits the OS sets stick
 *
 * 2. Nothing ever raises the SCI; the event block exists because the FADT
 *    requires one outside HW-reduced ACPI (vmm/acpi.c describes both).
 *
 * LIMITATION: no suspend: the DSDT (vmm/acpi.c) offers only \_S5, and every
 *    SLP_TYP value means S5 (soft off).
 * LIMITATION: no GPE blocks; the PM timer sets no TMR_STS (devices/pm_timer.c).
 */
#include <stdlib.h>

#include "devices/acpi_pm.h"

#define PM1_CNT_SCI_EN	     0x0001
#define PM1_CNT_SLP_TYP_MASK 0x1c00
#define PM1_CNT_SLP_EN	     0x2000 /* write-only */

#define PM1_CNT_FLOATING 0xff /* outside the register, per byte */

struct acpi_pm {
	struct device dev; /* first: handlers cast back */
	u16 pm1_cnt;	   /* PM1_CNT, or PM1_EN for the event device */
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

static struct device *pm_create(const struct dev_host *host, const struct dev_ops *ops)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pm->dev.ops = ops;
	if (host)
		pm->dev.host = *host;
	return &pm->dev;
}

struct device *acpi_pm_create(const struct dev_host *host)
{
	return pm_create(host, &acpi_pm_ops);
}

/* ---- PM1a event block: the register value is PM1_EN (item 2) ----------------- */

#define PM1_EVT_EN_OFF 2 /* PM1_STS at 0, PM1_EN at 2 */

static void acpi_pm_evt_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct acpi_pm *pm = (struct acpi_pm *)dev;
	u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		u64 byte = off + i;

		if (byte >= ACPI_PM1A_EVT_LEN)
			p[i] = PM1_CNT_FLOATING;
		else if (byte < PM1_EVT_EN_OFF)
			p[i] = 0; /* PM1_STS: no event is ever pending */
		else
			p[i] = (u8)(pm->pm1_cnt >> (8 * (byte - PM1_EVT_EN_OFF)));
	}
}

static void acpi_pm_evt_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct acpi_pm *pm = (struct acpi_pm *)dev;
	const u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		u64 byte = off + i;

		if (byte < PM1_EVT_EN_OFF || byte >= ACPI_PM1A_EVT_LEN)
			continue; /* PM1_STS: nothing to clear */
		byte -= PM1_EVT_EN_OFF;
		pm->pm1_cnt &= (u16) ~(0xffu << (8 * byte));
		pm->pm1_cnt |= (u16)(p[i] << (8 * byte));
	}
}

static const struct dev_ops acpi_pm_evt_ops = {
	.name = "acpi-pm-evt",
	.read = acpi_pm_evt_read,
	.write = acpi_pm_evt_write,
	.reset = acpi_pm_reset,
	.destroy = acpi_pm_destroy,
};

struct device *acpi_pm_evt_create(const struct dev_host *host)
{
	return pm_create(host, &acpi_pm_evt_ops);
}
