/* SPDX-License-Identifier: MIT */
/* Serial console (COM1, polled 16550) and a small kprintf. */
#include <stdint.h>

#include "arch.h"
#include "console.h"

#define COM1 0x3f8
#define UART_THR 0 /* transmit holding register */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LSR_THRE 0x20 /* transmitter holding register empty */
#define UART_LCR_8N1 0x03
#define UART_LCR_DLAB 0x80
#define UART_MCR_DTR_RTS 0x03

void console_init(void)
{
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, UART_LCR_DLAB);
	outb(COM1 + 0, 1); /* divisor 1: 115200 baud */
	outb(COM1 + 1, 0);
	outb(COM1 + UART_LCR, UART_LCR_8N1);
	outb(COM1 + UART_FCR, 0x07); /* enable and clear the FIFOs */
	outb(COM1 + UART_MCR, UART_MCR_DTR_RTS);
}

void console_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE))
		;
	outb(COM1 + UART_THR, (uint8_t)c);
}

static void put_num(uint64_t v, unsigned base, int neg, int width, char pad)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	while (width-- > n)
		console_putc(pad);
	while (n)
		console_putc(buf[--n]);
}

void kvprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int lng = 0, width = 0;
		char pad = ' ';

		if (*fmt != '%') {
			console_putc(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			for (s = s ? s : "(null)"; *s; s++)
				console_putc(*s);
			break;
		}
		case 'c':
			console_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
			put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, width, pad);
			break;
		case 'x':
			put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0, width, pad);
			break;
		case 'p':
			console_putc('0');
			console_putc('x');
			put_num((uint64_t)va_arg(ap, void *), 16, 0, width, pad);
			break;
		case '%':
			console_putc('%');
			break;
		default:
			console_putc('%');
			console_putc(*fmt);
			break;
		}
	}
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}
