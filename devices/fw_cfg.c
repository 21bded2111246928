// SPDX-License-Identifier: MIT
/*
 * QEMU's fw_cfg firmware configuration interface, the traditional I/O-port
 * flavour (devices/fw_cfg.h). SeaBIOS and some test kernels read the machine
 * description (RAM size, CPU count) from here.
 *
 * Guest-visible contract. One range at port 0x510, two bytes:
 *   offset 0 (port 0x510)  selector: a 16-bit write selects item `key`
 *   offset 1 (port 0x511)  data: each 8-bit read returns the next byte
 * Any other access (an 8-bit selector write, a 16-bit data read, ...) is not
 * valid on QEMU either: writes are ignored and reads return all-ones.
 *
 * 1. Selecting. Writing the selector selects the item and resets the read
 *    offset to 0. FW_CFG_WRITE_CHANNEL (bit 14) in the key is ignored;
 *    FW_CFG_ARCH_LOCAL (bit 15) is part of the key. A reset selects
 *    FW_CFG_SIGNATURE, which is also what is selected at creation.
 *
 * 2. Reading. Each byte read from the data port returns the next byte of the
 *    selected item. Past its end, or for a key with no item, reads return 0.
 *
 * 3. Items present at creation:
 *      FW_CFG_SIGNATURE (0x0000)  the four bytes "QEMU"
 *      FW_CFG_ID (0x0001)         u32 1: traditional interface, no DMA
 *      FW_CFG_FILE_DIR (0x0019)   big-endian u32 0: no named files
 *    The VMM adds FW_CFG_RAM_SIZE (u64), FW_CFG_NB_CPUS and FW_CFG_MAX_CPUS
 *    (u16) with fw_cfg_add_*(); integers are little-endian, as in QEMU.
 *
 * 4. Writes to the data port are ignored.
 *
 * LIMITATION: no DMA interface (port 0x514), no write channel, no named
 *    files (the file directory is always empty).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "umbra/log.h"

/* Offsets within the registered range. */
#define FW_CFG_PORT_SELECTOR  0
#define FW_CFG_PORT_DATA      1
#define FW_CFG_SELECTOR_WIDTH 2
#define FW_CFG_DATA_WIDTH     1
#define FW_CFG_FLOATING	      0xff
#define FW_CFG_PAST_END	      0 /* what reads past an item's end return */

#define FW_CFG_SIGNATURE_BYTES "QEMU"
#define FW_CFG_SIGNATURE_LEN   4

struct fw_cfg_item {
	u16 key;
	u8 *data;
	size_t len;
};

struct fw_cfg {
	struct device dev; /* first: handlers cast back */
	struct fw_cfg_item *items;
	size_t nr_items;
	u16 selected;  /* key, without FW_CFG_WRITE_CHANNEL */
	size_t offset; /* next byte of the selected item */
};

static const struct dev_ops fw_cfg_ops;

static struct fw_cfg *to_fw_cfg(struct device *dev)
{
	BUG_ON(dev->ops != &fw_cfg_ops);
	return (struct fw_cfg *)dev;
}

static struct fw_cfg_item *find_item(struct fw_cfg *f, u16 key)
{
	for (size_t i = 0; i < f->nr_items; i++)
		if (f->items[i].key == key)
			return &f->items[i];
	return NULL;
}

/* Item 1. */
static void select_key(struct fw_cfg *f, u16 key)
{
	f->selected = key & ~FW_CFG_WRITE_CHANNEL;
	f->offset = 0;
}

/* Item 2. */
static u8 read_data(struct fw_cfg *f)
{
	const struct fw_cfg_item *item = find_item(f, f->selected);

	if (!item || f->offset >= item->len)
		return FW_CFG_PAST_END;
	return item->data[f->offset++];
}

static void fw_cfg_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct fw_cfg *f = to_fw_cfg(dev);

	if (off == FW_CFG_PORT_DATA && len == FW_CFG_DATA_WIDTH) {
		*(u8 *)data = read_data(f);
		return;
	}
	memset(data, FW_CFG_FLOATING, len);
}

static void fw_cfg_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct fw_cfg *f = to_fw_cfg(dev);

	if (off == FW_CFG_PORT_SELECTOR && len == FW_CFG_SELECTOR_WIDTH)
		select_key(f, (u16)dev_data_get(data, len));
	/* Item 4: anything else, data-port writes included, is ignored. */
}

static void fw_cfg_reset(struct device *dev)
{
	select_key(to_fw_cfg(dev), FW_CFG_SIGNATURE);
}

static void fw_cfg_destroy(struct device *dev)
{
	struct fw_cfg *f = to_fw_cfg(dev);

	for (size_t i = 0; i < f->nr_items; i++)
		free(f->items[i].data);
	free(f->items);
	free(f);
}

static const struct dev_ops fw_cfg_ops = {
	.name = "fw_cfg",
	.read = fw_cfg_read,
	.write = fw_cfg_write,
	.reset = fw_cfg_reset,
	.destroy = fw_cfg_destroy,
};

int fw_cfg_add_bytes(struct device *dev, u16 key, const void *data, size_t len)
{
	struct fw_cfg *f = to_fw_cfg(dev);
	struct fw_cfg_item *item;
	u8 *copy;

	if (key & FW_CFG_WRITE_CHANNEL)
		return -EINVAL;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);

	item = find_item(f, key);
	if (!item) {
		struct fw_cfg_item *n = realloc(f->items, (f->nr_items + 1) * sizeof(*n));

		if (!n) {
			free(copy);
			return -ENOMEM;
		}
		f->items = n;
		item = &f->items[f->nr_items++];
		item->key = key;
		item->data = NULL;
	}
	free(item->data);
	item->data = copy;
	item->len = len;
	/* A guest reading the replaced item continues at its offset in the new bytes. */
	return 0;
}

int fw_cfg_add_u16(struct device *dev, u16 key, u16 val)
{
	u8 le[sizeof(val)];

	dev_data_put(le, sizeof(le), val);
	return fw_cfg_add_bytes(dev, key, le, sizeof(le));
}

int fw_cfg_add_u32(struct device *dev, u16 key, u32 val)
{
	u8 le[sizeof(val)];

	dev_data_put(le, sizeof(le), val);
	return fw_cfg_add_bytes(dev, key, le, sizeof(le));
}

int fw_cfg_add_u64(struct device *dev, u16 key, u64 val)
{
	u8 le[sizeof(val)];

	dev_data_put(le, sizeof(le), val);
	return fw_cfg_add_bytes(dev, key, le, sizeof(le));
}

/* Item 3. */
static int add_defaults(struct device *dev)
{
	static const u8 empty_file_dir[] = { 0, 0, 0, 0 }; /* big-endian count 0 */
	int ret;

	ret = fw_cfg_add_bytes(dev, FW_CFG_SIGNATURE, FW_CFG_SIGNATURE_BYTES, FW_CFG_SIGNATURE_LEN);
	if (!ret)
		ret = fw_cfg_add_u32(dev, FW_CFG_ID, FW_CFG_VERSION);
	if (!ret)
		ret = fw_cfg_add_bytes(dev, FW_CFG_FILE_DIR, empty_file_dir,
				       sizeof(empty_file_dir));
	return ret;
}

struct device *fw_cfg_create(const struct dev_host *host)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->dev.ops = &fw_cfg_ops;
	if (host)
		f->dev.host = *host;
	if (add_defaults(&f->dev)) {
		fw_cfg_destroy(&f->dev);
		return NULL;
	}
	select_key(f, FW_CFG_SIGNATURE);
	return &f->dev;
}
