/* SPDX-License-Identifier: MIT */
/*
 * 16550 UART on COM1. Transmit is polled: the image waits for THRE (transmit
 * holding register empty) before writing each byte. Lines end in a bare '\n'
 * so the VMM's console output can be compared line by line. Receive is read
 * by the caller (uart_rx_ready/uart_getc), typically from the IRQ 4 handler
 * after uart_enable_rx_irq().
 */
#include "io.h"
#include "uart.h"

#define COM1_BASE 0x3f8

/* Register offsets from the base (DLAB = 0 unless noted). */
#define UART_RBR 0 /* receive buffer register (read) */
#define UART_THR 0 /* transmit holding register (write) */
#define UART_DLL 0 /* divisor latch low (DLAB = 1) */
#define UART_IER 1 /* interrupt enable */
#define UART_DLM 1 /* divisor latch high (DLAB = 1) */
#define UART_FCR 2 /* FIFO control (write) */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */

#define UART_LCR_DLAB 0x80  /* divisor latch access */
#define UART_LCR_8N1 0x03   /* 8 data bits, no parity, 1 stop bit */
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT2 0x08
#define UART_IER_ERBFI 0x01 /* received data available interrupt */
#define UART_LSR_DR 0x01   /* data ready: RBR holds a byte */
#define UART_LSR_THRE 0x20 /* transmit holding register empty */

#define UART_DIVISOR_115200 1

void uart_init(void)
{
	outb(COM1_BASE + UART_IER, 0);
	outb(COM1_BASE + UART_LCR, UART_LCR_DLAB);
	outb(COM1_BASE + UART_DLL, UART_DIVISOR_115200 & 0xff);
	outb(COM1_BASE + UART_DLM, UART_DIVISOR_115200 >> 8);
	outb(COM1_BASE + UART_LCR, UART_LCR_8N1);
	outb(COM1_BASE + UART_FCR,
	     UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX);
	outb(COM1_BASE + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
}

void uart_putc(char c)
{
	while (!(inb(COM1_BASE + UART_LSR) & UART_LSR_THRE))
		;
	outb(COM1_BASE + UART_THR, (uint8_t)c);
}

void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

int uart_rx_ready(void)
{
	return inb(COM1_BASE + UART_LSR) & UART_LSR_DR;
}

uint8_t uart_getc(void)
{
	return inb(COM1_BASE + UART_RBR);
}

void uart_enable_rx_irq(void)
{
	/* uart_init() already set MCR.OUT2, the gate from the UART to the PIC. */
	outb(COM1_BASE + UART_IER, UART_IER_ERBFI);
}

void uart_disable_rx_irq(void)
{
	outb(COM1_BASE + UART_IER, 0);
}
