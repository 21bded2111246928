/* SPDX-License-Identifier: MIT */
/*
 * Port I/O for the Umbra guest images. Header-only, freestanding; builds for
 * both -m64 (hello) and -m32 (mboot).
 */
#ifndef IMAGES_IO_H
#define IMAGES_IO_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t val)
{
	__asm__ volatile("outb %0, %1" : : "a"(val), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t val)
{
	__asm__ volatile("outw %0, %1" : : "a"(val), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t val;

	__asm__ volatile("inb %1, %0" : "=a"(val) : "Nd"(port) : "memory");
	return val;
}

static inline void cpu_cli(void)
{
	__asm__ volatile("cli" : : : "memory");
}

static inline void cpu_hlt(void)
{
	__asm__ volatile("hlt" : : : "memory");
}

#endif /* IMAGES_IO_H */
