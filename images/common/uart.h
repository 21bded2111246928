/* SPDX-License-Identifier: MIT */
/* Polled 16550 UART output on COM1 (port 0x3f8). */
#ifndef IMAGES_UART_H
#define IMAGES_UART_H

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);

#endif /* IMAGES_UART_H */
