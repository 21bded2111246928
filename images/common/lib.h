/* SPDX-License-Identifier: MIT */
/*
 * Freestanding helpers shared by the guest images: the few mem and str
 * functions (gcc may emit calls to memset/memcpy itself), command-line option
 * lookup, and the way out of the VM.
 */
#ifndef IMAGES_LIB_H
#define IMAGES_LIB_H

#include <stddef.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/*
 * Command lines are space-separated words. cmdline_find() returns the value of
 * the first word "key=value" (a pointer just past '='), or NULL. The value
 * runs to the next space or NUL.
 */
const char *cmdline_find(const char *cmdline, const char *key);
/* True if the command line has the bare word @word (not "word=..."). */
int cmdline_has_word(const char *cmdline, const char *word);
/* True if the value of "key=" is exactly @value. */
int cmdline_is(const char *cmdline, const char *key, const char *value);
/* The N of "exit=N" (decimal 0..127); 0 if absent or not a number in range. */
unsigned cmdline_exit_code(const char *cmdline);

/*
 * Leave the VM: outb(0xf4, code) to the debug-exit device (the VMM exits with
 * status (code << 1) | 1). Without that device, reset through the i8042
 * (outb(0x64, 0xfe)), and failing that, stop in cli; hlt.
 */
__attribute__((noreturn)) void debug_exit(unsigned code);

/* Exit codes used by the images themselves. */
#define EXIT_BAD_BOOT 0x7f  /* wrong boot magic or boot info */
#define EXIT_EXCEPTION 0x7e /* an unexpected CPU exception */
#define EXIT_CHECK_FAILED 0x7d /* a self-check printed FAILED (mboot paging32) */

#endif /* IMAGES_LIB_H */
