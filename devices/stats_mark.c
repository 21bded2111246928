// SPDX-License-Identifier: MIT
/*
 * Stats marks: a guest-triggered snapshot of the run statistics, so that a
 * benchmark can attribute traps and exits to one of its workloads
 * (devices/stats_mark.h; the snapshot itself is vmm/stats.h's struct
 * stats_mark).
 *
 * Guest-visible contract, at STATS_MARK_PORT (0x520), STATS_MARK_LEN (4)
 * ports wide:
 *
 * 1. A write of value v (1, 2 or 4 bytes, little-endian, at any offset of
 *    the range) records one mark with label v:
 *    host->stats_mark(opaque, v). The label means nothing to umbra; it is
 *    printed with the snapshot (--stats, --stats=json "marks"). A write has
 *    no other effect and the guest sees nothing: marks beyond the VMM's limit
 *    are only counted as dropped.
 *
 * 2. A read returns the bytes of STATS_MARK_MAGIC (0x52424d55, "UMBR" in
 *    memory order) as a 4-byte little-endian register: a 4-byte read at the
 *    base returns the magic, a narrower one its low bytes, a read at offset
 *    k starts at byte k; bytes past the register read 0xff. This is how a
 *    guest tells it runs under umbra: an unassigned port (QEMU, or a machine
 *    without the device) reads all-ones.
 *
 * The device has no state: reset does nothing.
 */
#include <stdlib.h>

#include "devices/stats_mark.h"

#define STATS_MARK_FLOATING 0xff /* a byte past the register */

struct stats_mark_port {
	struct device dev; /* first: handlers cast back */
};

/* Item 2. */
static void stats_mark_read(struct device *dev __unused, u64 off, void *data, unsigned len)
{
	u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		u64 byte = off + i;

		p[i] = byte < STATS_MARK_LEN ? (u8)(STATS_MARK_MAGIC >> (8 * byte))
					     : STATS_MARK_FLOATING;
	}
}

/* Item 1. */
static void stats_mark_write(struct device *dev, u64 off __unused, const void *data, unsigned len)
{
	u32 label = (u32)dev_data_get(data, MIN(len, (unsigned)STATS_MARK_LEN));

	if (dev->host.stats_mark)
		dev->host.stats_mark(dev->host.opaque, label);
}

static void stats_mark_destroy(struct device *dev)
{
	free((struct stats_mark_port *)dev);
}

static const struct dev_ops stats_mark_ops = {
	.name = "stats-mark",
	.read = stats_mark_read,
	.write = stats_mark_write,
	.destroy = stats_mark_destroy,
};

struct device *stats_mark_create(const struct dev_host *host)
{
	struct stats_mark_port *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->dev.ops = &stats_mark_ops;
	if (host)
		d->dev.host = *host;
	return &d->dev;
}
