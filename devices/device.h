/* SPDX-License-Identifier: MIT */
/*
 * The device model: every emulated device is one file in devices/ with a state
 * struct and a `static const struct dev_ops`. Handlers see an offset relative
 * to the device's base, never an absolute port or address, so the same device
 * could sit on port I/O or MMIO.
 *
 * Devices never call ioctl, touch the terminal or global VM state: what they
 * need from the outside (raise an IRQ line, write console output, read the
 * host clock, ask the VM to stop) is injected at creation as callbacks in
 * struct dev_host. That is what lets cmocka test them with no /dev/kvm.
 */
#ifndef UMBRA_DEVICES_DEVICE_H
#define UMBRA_DEVICES_DEVICE_H

#include "umbra/types.h"

struct device;

/* Why a device asks the VM to stop. */
enum vm_stop_reason {
	VM_STOP_POWEROFF,     /* clean power-off: umbra exits 0 */
	VM_STOP_RESET,	      /* reset request (i8042 0xFE, port 0xCF9): exits 0 */
	VM_STOP_GUEST_STATUS, /* debug-exit: exits with the given status */
};

/*
 * Services the VMM lends to devices. Any member may be NULL in a test that
 * does not exercise it; devices check before calling.
 */
struct dev_host {
	void *opaque;
	/* Drive IRQ line `irq` (ISA numbering) to `level` (1 high, 0 low). */
	void (*set_irq)(void *opaque, unsigned irq, int level);
	/* Bytes the guest wrote to a console device. */
	void (*console_write)(void *opaque, const u8 *buf, size_t len);
	/* Stop the VM; `status` is meaningful for VM_STOP_GUEST_STATUS. */
	void (*request_stop)(void *opaque, enum vm_stop_reason why, int status);
	/* Host wall-clock time in seconds since the epoch (UTC). */
	s64 (*wall_time)(void *opaque);
	/* Host monotonic time in nanoseconds (CLOCK_MONOTONIC). */
	u64 (*monotonic_ns)(void *opaque);
	/* Snapshot the run statistics with guest-chosen `label` (devices/stats_mark.c). */
	void (*stats_mark)(void *opaque, u32 label);
};

struct dev_ops {
	const char *name;
	/* Read `len` (1, 2 or 4; 8 for MMIO) bytes at `off` into `data`. */
	void (*read)(struct device *dev, u64 off, void *data, unsigned len);
	/* Write `len` bytes from `data` at `off`. */
	void (*write)(struct device *dev, u64 off, const void *data, unsigned len);
	void (*reset)(struct device *dev);
	void (*destroy)(struct device *dev);
};

/*
 * Every device state struct embeds a struct device as its first member, so a
 * handler casts its `dev` argument back to its own type.
 */
struct device {
	const struct dev_ops *ops;
	struct dev_host host;
};

/* Little-endian load/store of a 1/2/4/8-byte access buffer. */
static inline u64 dev_data_get(const void *data, unsigned len)
{
	const u8 *p = data;
	u64 v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (u64)p[i] << (8 * i);
	return v;
}

static inline void dev_data_put(void *data, unsigned len, u64 v)
{
	u8 *p = data;

	for (unsigned i = 0; i < len; i++)
		p[i] = (u8)(v >> (8 * i));
}

#endif /* UMBRA_DEVICES_DEVICE_H */
