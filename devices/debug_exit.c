// SPDX-License-Identifier: MIT
/*
 * isa-debug-exit: lets a test guest end the VM with a status (devices/debug_exit.h).
 *
 * Guest-visible contract, the same as QEMU's isa-debug-exit:
 *
 * 1. Any write of value v (1, 2 or 4 bytes, little-endian, at any offset of
 *    the registered range) stops the VM with
 *    host->request_stop(opaque, VM_STOP_GUEST_STATUS, (v << 1) | 1).
 *    The status is always odd, so a guest can never fake a clean exit 0.
 *    The shift is done in 32 bits: bit 31 of v is lost.
 *
 * 2. Reads return all-ones.
 *
 * A process exit status is 8 bits: the VMM exits with the status truncated to
 * its low byte, as QEMU does (v = 0x10 exits 33; v = 0x80 exits 1).
 */
#include <stdlib.h>

#include "devices/debug_exit.h"

#define DEBUG_EXIT_FLOATING   0xff /* what reads return, per byte */
#define DEBUG_EXIT_STATUS_ODD 1	   /* low bit of every status */

struct debug_exit {
	struct device dev; /* first: handlers cast back */
};

static void debug_exit_read(struct device *dev __unused, u64 off __unused, void *data, unsigned len)
{
	u8 *p = data;

	for (unsigned i = 0; i < len; i++)
		p[i] = DEBUG_EXIT_FLOATING;
}

/* Item 1. */
static void debug_exit_write(struct device *dev, u64 off __unused, const void *data, unsigned len)
{
	u32 v = (u32)dev_data_get(data, MIN(len, (unsigned)DEBUG_EXIT_MAX_WIDTH));
	u32 status = (v << 1) | DEBUG_EXIT_STATUS_ODD;

	if (dev->host.request_stop)
		dev->host.request_stop(dev->host.opaque, VM_STOP_GUEST_STATUS, (int)status);
}

static void debug_exit_destroy(struct device *dev)
{
	free((struct debug_exit *)dev);
}

static const struct dev_ops debug_exit_ops = {
	.name = "debug-exit",
	.read = debug_exit_read,
	.write = debug_exit_write,
	.destroy = debug_exit_destroy,
};

struct device *debug_exit_create(const struct dev_host *host)
{
	struct debug_exit *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->dev.ops = &debug_exit_ops;
	if (host)
		d->dev.host = *host;
	return &d->dev;
}
