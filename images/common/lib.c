/* SPDX-License-Identifier: MIT */
/* Freestanding helpers shared by the guest images; see lib.h. */
#include <stdint.h>

#include "io.h"
#include "lib.h"

#define DEBUG_EXIT_PORT 0xf4
#define I8042_CMD_PORT 0x64
#define I8042_CMD_RESET 0xfe /* pulse the CPU reset line */

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
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

static int is_word_end(char c)
{
	return c == '\0' || c == ' ';
}

const char *cmdline_find(const char *cmdline, const char *key)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	if (!cmdline)
		return NULL;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!memcmp(p, key, klen) && p[klen] == '=')
			return p + klen + 1;
		while (!is_word_end(*p))
			p++;
	}
	return NULL;
}

int cmdline_has_word(const char *cmdline, const char *word)
{
	size_t wlen = strlen(word);
	const char *p = cmdline;

	if (!cmdline)
		return 0;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!memcmp(p, word, wlen) && is_word_end(p[wlen]))
			return 1;
		while (!is_word_end(*p))
			p++;
	}
	return 0;
}

int cmdline_is(const char *cmdline, const char *key, const char *value)
{
	const char *v = cmdline_find(cmdline, key);
	size_t vlen = strlen(value);

	return v && !memcmp(v, value, vlen) && is_word_end(v[vlen]);
}

unsigned cmdline_exit_code(const char *cmdline)
{
	const char *v = cmdline_find(cmdline, "exit");
	unsigned n = 0;

	if (!v || is_word_end(*v))
		return 0;
	for (; !is_word_end(*v); v++) {
		if (*v < '0' || *v > '9')
			return 0;
		n = n * 10 + (unsigned)(*v - '0');
		if (n > 127)
			return 0;
	}
	return n;
}

void debug_exit(unsigned code)
{
	outb(DEBUG_EXIT_PORT, (uint8_t)code);
	/* Still here: no debug-exit device. Try a reset through the i8042. */
	outb(I8042_CMD_PORT, I8042_CMD_RESET);
	for (;;) {
		cpu_cli();
		cpu_hlt();
	}
}
