/* SPDX-License-Identifier: MIT */
/* Freestanding helpers: mem/str functions, command line, exits. */
#include <stdarg.h>

#include "arch.h"
#include "console.h"
#include "lib.h"

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

void fill_page64(void *page, uint64_t v)
{
	uint64_t n = 4096 / 8;

	__asm__ volatile("rep stosq" : "+D"(page), "+c"(n) : "a"(v) : "memory");
}

const char *cmdline_value(const char *cmdline, const char *key)
{
	size_t kl = strlen(key);
	const char *p = cmdline;

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return p + kl + 1;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

uint64_t cmdline_u64(const char *cmdline, const char *key, uint64_t dflt)
{
	const char *v = cmdline_value(cmdline, key);
	uint64_t n = 0;
	unsigned base = 10;

	if (!v || !*v || *v == ' ')
		return dflt;
	if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		base = 16;
		v += 2;
	}
	for (; *v && *v != ' '; v++) {
		unsigned d;

		if (*v >= '0' && *v <= '9')
			d = *v - '0';
		else if (base == 16 && (*v | 0x20) >= 'a' && (*v | 0x20) <= 'f')
			d = (*v | 0x20) - 'a' + 10;
		else
			return dflt;
		n = n * base + d;
	}
	return n;
}

int list_has_prefix_of(const char *list, const char *name)
{
	while (list && *list && *list != ' ') {
		size_t n = 0;

		while (list[n] && list[n] != ' ' && list[n] != ',')
			n++;
		if (n && !strncmp(list, name, n))
			return 1;
		list += n;
		if (*list == ',')
			list++;
	}
	return 0;
}

void debug_exit(unsigned code)
{
	outb(DEBUG_EXIT_PORT, (uint8_t)code);
	for (;;) {
		cli();
		__asm__ volatile("hlt");
	}
}

void power_off(void)
{
	outw(ACPI_PM1A_CNT, ACPI_SLP_EN);
	debug_exit(0); /* no ACPI PM device: exit status 1 */
}

void panic(const char *fmt, ...)
{
	va_list ap;

	cli();
	kprintf("PANIC: ");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	debug_exit(EXIT_EXCEPTION);
}
