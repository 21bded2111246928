/* SPDX-License-Identifier: MIT */
/*
 * kprintf: a tiny printf to the UART. Conversions: %s %c %d %u %x, with the
 * length modifiers l and ll (%lu %lx %llu %llx ...), and %%. No width, no
 * padding: hex is printed without leading zeros ("%llx" of 0x1000 is "1000").
 */
#ifndef IMAGES_PRINT_H
#define IMAGES_PRINT_H

__attribute__((format(printf, 1, 2))) void kprintf(const char *fmt, ...);

#endif /* IMAGES_PRINT_H */
