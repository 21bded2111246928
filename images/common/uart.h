/* SPDX-License-Identifier: MIT */
/* 16550 UART on COM1 (port 0x3f8, IRQ 4): polled output, receive helpers. */
#ifndef IMAGES_UART_H
#define IMAGES_UART_H

#include <stdint.h>

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);

/* Whether the receiver holds a byte (LSR.DR). */
int uart_rx_ready(void);
/* Pop one received byte from RBR (0 if none). */
uint8_t uart_getc(void);
/* Enable the received-data interrupt (IER.ERBFI); IRQ 4 is raised while
 * data is waiting. */
void uart_enable_rx_irq(void);
/* Disable it again: received bytes wait in the UART (and the sender behind it). */
void uart_disable_rx_irq(void);

#endif /* IMAGES_UART_H */
