// SPDX-License-Identifier: MIT
/*
 * ACPI power-management timer (devices/pm_timer.h).
 *
 * Why a guest needs it: Linux checks the LAPIC timer's calibration against
 * a reference. Without a PM timer (or HPET) the reference is jiffies, which
 * the PIT's ticks advance; when ticks come late (a busy host, a tick held
 * while the guest's IF is 0) the check fails, Linux prints "APIC timer
 * disabled due to verification failure" and runs its ticks from the PIT,
 * each costing more exits. With a PM timer Linux measures the calibration
 * interval by it, corrects the LAPIC's rate and skips that check.
 *
 * Guest-visible contract (ACPI 6.5, 4.8.3.3 Power Management Timer):
 * 1. A 32-bit read-only register whose bits 23:0 count up at 3.579545 MHz
 *    and wrap to 0; bits 31:24 read 0 (the FADT's TMR_VAL_EXT is clear).
 *    The count is the host's monotonic time since the timer was created,
 *    so it runs while the vCPU does not (it is a wall-clock device).
 * 2. Any access width is accepted: a 1- or 2-byte read at offset k returns
 *    those bytes of the value; bytes past the register read 0xff.
 * 3. Writes are ignored; a reset does not restart the count.
 *
 * LIMITATION: PM1_STS.TMR_STS (devices/acpi_pm.c) is never set and TMR_EN
 *    raises no SCI: nothing here tracks bit 23's carries. Linux uses neither.
 */
#include <stdlib.h>

#include "devices/pm_timer.h"

#define NS_PER_S      1000000000ull
#define BYTE_FLOATING 0xff

struct pm_timer {
	struct device dev; /* first: handlers cast back */
	u64 start_ns;	   /* host monotonic time of count 0 */
};

/*
 * Item 1. Whole seconds and the remainder apart, so that nothing overflows
 * 64 bits (remainder * HZ < 3.6e15) and the count is exact: floor(ns * HZ / 1e9).
 */
u32 pm_timer_count(u64 ns)
{
	u64 s = ns / NS_PER_S, rem = ns % NS_PER_S;

	return (u32)((s * ACPI_PM_TMR_HZ + rem * ACPI_PM_TMR_HZ / NS_PER_S) & ACPI_PM_TMR_MASK);
}

/* Item 2. */
static void pm_timer_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct pm_timer *t = (struct pm_timer *)dev;
	u64 now = dev->host.monotonic_ns(dev->host.opaque);
	u32 v = pm_timer_count(now >= t->start_ns ? now - t->start_ns : 0);
	u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		u64 byte = off + i;

		p[i] = byte < ACPI_PM_TMR_LEN ? (u8)(v >> (8 * byte)) : BYTE_FLOATING;
	}
}

static void pm_timer_destroy(struct device *dev)
{
	free((struct pm_timer *)dev);
}

/* Item 3: no write or reset handler, so the bus drops writes and a reset leaves the count. */
static const struct dev_ops pm_timer_ops = {
	.name = "acpi-pm-timer",
	.read = pm_timer_read,
	.destroy = pm_timer_destroy,
};

struct device *pm_timer_create(const struct dev_host *host)
{
	struct pm_timer *t;

	if (!host || !host->monotonic_ns)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->dev.ops = &pm_timer_ops;
	t->dev.host = *host;
	t->start_ns = host->monotonic_ns(host->opaque);
	return &t->dev;
}
