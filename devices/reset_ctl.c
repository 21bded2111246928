// SPDX-License-Identifier: MIT
/*
 * The reset control register of PIIX/ICH chipsets (devices/reset_ctl.h).
 *
 * Guest-visible contract. One byte at port 0xcf9 (Intel ICH9 datasheet,
 * 13.7.5 "RST_CNT"):
 *   bit 1  SYS_RST  stored: chooses a hard (1) or soft (0) reset
 *   bit 2  RST_CPU  writing 1 resets the machine; reads 0
 *   bit 3  FULL_RST stored
 *   other bits read 0.
 *
 * 1. A write with RST_CPU set calls host->request_stop(opaque, VM_STOP_RESET,
 *    0), whatever SYS_RST says. Linux's `reboot=pci` writes 0x02 and then
 *    0x06: the first only stores SYS_RST, the second resets.
 *
 * 2. Reads return SYS_RST and FULL_RST as last written; Linux reads the
 *    register first and keeps those bits.
 *
 * LIMITATION: hard, soft and full resets are all the same VM_STOP_RESET.
 */
#include <stdlib.h>

#include "devices/reset_ctl.h"

#define RST_CNT_SYS_RST	 0x02
#define RST_CNT_RST_CPU	 0x04
#define RST_CNT_FULL_RST 0x08
#define RST_CNT_STORED	 (RST_CNT_SYS_RST | RST_CNT_FULL_RST)

#define RST_CNT_FLOATING 0xff /* outside the register, per byte */

struct reset_ctl {
	struct device dev; /* first: handlers cast back */
	u8 rst_cnt;
};

/* Item 2. */
static void reset_ctl_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct reset_ctl *r = (struct reset_ctl *)dev;
	u8 *p = data;

	for (unsigned i = 0; i < len; i++)
		p[i] = off + i == 0 ? r->rst_cnt : RST_CNT_FLOATING;
}

/* Item 1. */
static void reset_ctl_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct reset_ctl *r = (struct reset_ctl *)dev;
	u8 val;

	if (off != 0 || len == 0)
		return;
	val = *(const u8 *)data;
	r->rst_cnt = val & RST_CNT_STORED;
	if ((val & RST_CNT_RST_CPU) && dev->host.request_stop)
		dev->host.request_stop(dev->host.opaque, VM_STOP_RESET, 0);
}

static void reset_ctl_reset(struct device *dev)
{
	((struct reset_ctl *)dev)->rst_cnt = 0;
}

static void reset_ctl_destroy(struct device *dev)
{
	free((struct reset_ctl *)dev);
}

static const struct dev_ops reset_ctl_ops = {
	.name = "reset-ctl",
	.read = reset_ctl_read,
	.write = reset_ctl_write,
	.reset = reset_ctl_reset,
	.destroy = reset_ctl_destroy,
};

struct device *reset_ctl_create(const struct dev_host *host)
{
	struct reset_ctl *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->dev.ops = &reset_ctl_ops;
	if (host)
		r->dev.host = *host;
	return &r->dev;
}
