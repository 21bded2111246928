/* SPDX-License-Identifier: MIT */
/*
 * QEMU fw_cfg, legacy I/O-port interface (devices/fw_cfg.c has the contract).
 *
 * The VMM registers it with bus_register(&pio_bus, FW_CFG_IO_BASE,
 * FW_CFG_IO_LEN, dev): selector at port 0x510, data at port 0x511.
 */
#ifndef UMBRA_DEVICES_FW_CFG_H
#define UMBRA_DEVICES_FW_CFG_H

#include "devices/device.h"

#define FW_CFG_IO_BASE 0x510 /* selector; data is FW_CFG_IO_BASE + 1 */
#define FW_CFG_IO_LEN  2

/* Item keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h). */
#define FW_CFG_SIGNATURE      0x00 /* "QEMU" */
#define FW_CFG_ID	      0x01 /* u32 feature bits, FW_CFG_VERSION_* */
#define FW_CFG_UUID	      0x02
#define FW_CFG_RAM_SIZE	      0x03 /* u64, bytes */
#define FW_CFG_NOGRAPHIC      0x04
#define FW_CFG_NB_CPUS	      0x05 /* u16, CPUs present at boot */
#define FW_CFG_MACHINE_ID     0x06
#define FW_CFG_KERNEL_ADDR    0x07
#define FW_CFG_KERNEL_SIZE    0x08
#define FW_CFG_KERNEL_CMDLINE 0x09
#define FW_CFG_INITRD_ADDR    0x0a
#define FW_CFG_INITRD_SIZE    0x0b
#define FW_CFG_BOOT_DEVICE    0x0c
#define FW_CFG_NUMA	      0x0d
#define FW_CFG_BOOT_MENU      0x0e
#define FW_CFG_MAX_CPUS	      0x0f /* u16, CPUs possible (hotplug limit) */
#define FW_CFG_KERNEL_ENTRY   0x10
#define FW_CFG_KERNEL_DATA    0x11
#define FW_CFG_INITRD_DATA    0x12
#define FW_CFG_CMDLINE_ADDR   0x13
#define FW_CFG_CMDLINE_SIZE   0x14
#define FW_CFG_CMDLINE_DATA   0x15
#define FW_CFG_SETUP_ADDR     0x16
#define FW_CFG_SETUP_SIZE     0x17
#define FW_CFG_SETUP_DATA     0x18
#define FW_CFG_FILE_DIR	      0x19 /* big-endian u32 count, then file entries */
#define FW_CFG_FILE_FIRST     0x20
#define FW_CFG_WRITE_CHANNEL  0x4000 /* selector bit: ignored, no writes */
#define FW_CFG_ARCH_LOCAL     0x8000 /* selector bit: architecture-specific key */

/* FW_CFG_ID bits. */
#define FW_CFG_VERSION	   0x01 /* traditional (port) interface */
#define FW_CFG_VERSION_DMA 0x02 /* DMA interface: not offered */

/* Create the device with the signature, ID and an empty file directory. */
struct device *fw_cfg_create(const struct dev_host *host);

/*
 * Set item `key` to a copy of `len` bytes at `data`, replacing any previous
 * contents (including the defaults). Returns 0, -ENOMEM, or -EINVAL for a
 * key with FW_CFG_WRITE_CHANNEL set.
 */
int fw_cfg_add_bytes(struct device *dev, u16 key, const void *data, size_t len) __must_check;

/* Set item `key` to an integer, stored little-endian as QEMU does. Same returns. */
int fw_cfg_add_u16(struct device *dev, u16 key, u16 val) __must_check;
int fw_cfg_add_u32(struct device *dev, u16 key, u32 val) __must_check;
int fw_cfg_add_u64(struct device *dev, u16 key, u64 val) __must_check;

#endif /* UMBRA_DEVICES_FW_CFG_H */
