/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART (devices/serial.c has the full guest-visible contract).
 *
 * The VMM registers it with bus_register(&pio_bus, SERIAL_COM1_BASE,
 * SERIAL_IO_LEN, dev) and passes SERIAL_COM1_IRQ to serial_create().
 */
#ifndef UMBRA_DEVICES_SERIAL_H
#define UMBRA_DEVICES_SERIAL_H

#include "devices/device.h"

#define SERIAL_COM1_BASE 0x3f8 /* PC COM1 I/O base */
#define SERIAL_COM1_IRQ	 4     /* PC COM1 ISA IRQ line */
#define SERIAL_IO_LEN	 8     /* eight byte-wide registers */
#define SERIAL_FIFO_SIZE 16    /* 16550A receive and transmit FIFO depth */

/*
 * Create a UART that drives ISA line `irq` through host->set_irq and sends
 * what the guest transmits to host->console_write. Returns NULL when out of
 * memory. The device is freed by its destroy op (bus_destroy).
 */
struct device *serial_create(const struct dev_host *host, unsigned irq);

/*
 * Feed bytes typed on the host into the receive FIFO. Safe to call from a
 * thread other than the vCPU's (the stdin reader). Returns how many bytes of
 * `buf` were accepted: at most the free room in the FIFO, 0 while the UART is
 * in loopback mode. The caller keeps the rest and retries later; nothing is
 * ever dropped here. May call host->set_irq from the calling thread.
 */
size_t serial_receive(struct device *dev, const u8 *buf, size_t len);

/* Whether serial_receive() would accept at least one byte now. Thread-safe. */
bool serial_rx_ready(struct device *dev);

/*
 * The RTS output as seen on the line: MCR.RTS, and never in loopback (the
 * outputs are then wired back inside the chip). Thread-safe. A host that
 * honours hardware flow control sends only while it is asserted.
 */
bool serial_rts(struct device *dev);

#endif /* UMBRA_DEVICES_SERIAL_H */
