/* SPDX-License-Identifier: MIT */
/*
 * A tiny printf for the guest images. 64-bit values are divided by 10 with a
 * shift-and-subtract loop, because the 32-bit image has no libgcc to provide
 * __udivdi3.
 */
#include <stdarg.h>
#include <stdint.h>

#include "print.h"
#include "uart.h"

/* n / 10, with the remainder in *rem, using only shifts and 32-bit division. */
static uint64_t divmod10(uint64_t n, unsigned *rem)
{
	uint64_t q = 0, r = 0;
	int bit;

	if (!(n >> 32)) {
		*rem = (uint32_t)n % 10;
		return (uint32_t)n / 10;
	}
	for (bit = 63; bit >= 0; bit--) {
		r = (r << 1) | ((n >> bit) & 1);
		if (r >= 10) {
			r -= 10;
			q |= (uint64_t)1 << bit;
		}
	}
	*rem = (unsigned)r;
	return q;
}

static void print_dec(uint64_t n)
{
	char buf[21];
	int i = sizeof(buf);
	unsigned digit;

	buf[--i] = '\0';
	do {
		n = divmod10(n, &digit);
		buf[--i] = (char)('0' + digit);
	} while (n);
	uart_puts(&buf[i]);
}

static void print_hex(uint64_t n)
{
	static const char digits[] = "0123456789abcdef";
	char buf[17];
	int i = sizeof(buf);

	buf[--i] = '\0';
	do {
		buf[--i] = digits[n & 0xf];
		n >>= 4;
	} while (n);
	uart_puts(&buf[i]);
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		int longs = 0;
		uint64_t val;
		int64_t sval;
		const char *s;

		if (*fmt != '%') {
			uart_putc(*fmt);
			continue;
		}
		fmt++;
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			s = va_arg(ap, const char *);
			uart_puts(s ? s : "(null)");
			break;
		case 'c':
			uart_putc((char)va_arg(ap, int));
			break;
		case 'd':
			if (longs >= 2)
				sval = va_arg(ap, long long);
			else if (longs == 1)
				sval = va_arg(ap, long);
			else
				sval = va_arg(ap, int);
			if (sval < 0) {
				uart_putc('-');
				val = -(uint64_t)sval;
			} else {
				val = (uint64_t)sval;
			}
			print_dec(val);
			break;
		case 'u':
		case 'x':
			if (longs >= 2)
				val = va_arg(ap, unsigned long long);
			else if (longs == 1)
				val = va_arg(ap, unsigned long);
			else
				val = va_arg(ap, unsigned int);
			if (*fmt == 'u')
				print_dec(val);
			else
				print_hex(val);
			break;
		case '%':
			uart_putc('%');
			break;
		case '\0':
			fmt--; /* stray '%' at the end: stop cleanly */
			break;
		default: /* unknown conversion: print it as is */
			uart_putc('%');
			uart_putc(*fmt);
			break;
		}
	}
	va_end(ap);
}
