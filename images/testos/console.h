/* SPDX-License-Identifier: MIT */
/*
 * Serial console on COM1 (16550 at 0x3f8, polled) and kprintf.
 * kprintf conversions: %s %c %d %u %x %p, length l/ll, zero padding with a
 * width ("%016lx"), and %%.
 */
#ifndef TESTOS_CONSOLE_H
#define TESTOS_CONSOLE_H

#include <stdarg.h>

void console_init(void);
void console_putc(char c);
__attribute__((format(printf, 1, 2))) void kprintf(const char *fmt, ...);
void kvprintf(const char *fmt, va_list ap);

#endif /* TESTOS_CONSOLE_H */
