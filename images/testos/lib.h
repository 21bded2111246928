/* SPDX-License-Identifier: MIT */
/*
 * Freestanding helpers: mem and str functions (gcc may emit memset/memcpy
 * calls itself), command-line words, the xorshift PRNG and the ways out of
 * the VM.
 */
#ifndef TESTOS_LIB_H
#define TESTOS_LIB_H

#include <stddef.h>
#include <stdint.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* Fill/compare a 4 KiB page with 64-bit words (rep stosq: one instruction). */
void fill_page64(void *page, uint64_t v);

/*
 * Command line: space-separated words. cmdline_value() returns the value of
 * the first "key=value" word (pointer just past '=', running to the next
 * space or NUL), or NULL. cmdline_u64() parses it as decimal or 0x-hex.
 */
const char *cmdline_value(const char *cmdline, const char *key);
uint64_t cmdline_u64(const char *cmdline, const char *key, uint64_t dflt);
/*
 * Whether @name matches one of the comma-separated prefixes in the value
 * @list (which ends at a space or NUL).
 */
int list_has_prefix_of(const char *list, const char *name);

/* xorshift64* (Vigna): deterministic for a given non-zero seed. */
static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Leave the VM. */
#define DEBUG_EXIT_PORT 0xf4 /* isa-debug-exit: umbra exits with (v << 1) | 1 */
#define ACPI_PM1A_CNT 0x604  /* a write of SLP_EN (0x2000) powers off: exit 0 */
#define ACPI_SLP_EN 0x2000
#define EXIT_TESTS_FAILED 1
#define EXIT_EXCEPTION 0x7e
#define EXIT_BAD_BOOT 0x7f
__attribute__((noreturn)) void debug_exit(unsigned code);
__attribute__((noreturn)) void power_off(void);
__attribute__((noreturn)) void panic(const char *fmt, ...);

#endif /* TESTOS_LIB_H */
