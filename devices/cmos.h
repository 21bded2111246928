/* SPDX-License-Identifier: MIT */
/*
 * CMOS NVRAM and real-time clock (devices/cmos.c has the guest contract).
 *
 * The VMM registers it with bus_register(&pio_bus, CMOS_IO_BASE, CMOS_IO_LEN,
 * dev): port 0x70 is the index, port 0x71 the data.
 */
#ifndef UMBRA_DEVICES_CMOS_H
#define UMBRA_DEVICES_CMOS_H

#include "devices/device.h"

#define CMOS_IO_BASE	0x70 /* index port; data port is CMOS_IO_BASE + 1 */
#define CMOS_IO_LEN	2
#define CMOS_NVRAM_SIZE 128

/*
 * Memory-size bytes read by SeaBIOS and other PC firmware (QEMU's pc.c
 * layout). Each multi-byte value is little-endian over consecutive indexes.
 */
#define CMOS_BASE_MEM_LO 0x15 /* KiB of base memory, at most 640 */
#define CMOS_BASE_MEM_HI 0x16
#define CMOS_EXT_MEM_LO	 0x17 /* KiB above 1 MiB, capped at 0xffff */
#define CMOS_EXT_MEM_HI	 0x18
#define CMOS_EXT_MEM2_LO 0x30 /* same value again (POST copy) */
#define CMOS_EXT_MEM2_HI 0x31
#define CMOS_MEM_16M_LO	 0x34 /* 64 KiB units between 16 MiB and 4 GiB */
#define CMOS_MEM_16M_HI	 0x35
#define CMOS_MEM_4G_LO	 0x5b /* 64 KiB units above 4 GiB, 3 bytes */
#define CMOS_MEM_4G_MID	 0x5c
#define CMOS_MEM_4G_HI	 0x5d

/* Create the device; it reads the time through host->wall_time. NULL on ENOMEM. */
struct device *cmos_create(const struct dev_host *host);

/* Store `val` at NVRAM `index` (0..127; higher bits of index are ignored). */
void cmos_set_byte(struct device *dev, u8 index, u8 val);

/*
 * Fill the memory-size bytes above for a guest with `below_4g_bytes` of RAM
 * starting at gpa 0 and `above_4g_bytes` starting at 4 GiB, exactly as QEMU's
 * PC machine does for SeaBIOS.
 */
void cmos_set_memory(struct device *dev, u64 below_4g_bytes, u64 above_4g_bytes);

#endif /* UMBRA_DEVICES_CMOS_H */
