/* SPDX-License-Identifier: MIT */
/*
 * Little-endian fields in byte buffers (guest structures the VMM builds or
 * parses: boot_params, ACPI tables): get/put of 16, 32 and 64 bits at a
 * byte offset, independent of the host's alignment and byte order.
 */
#ifndef UMBRA_LE_H
#define UMBRA_LE_H

#include <stddef.h>

#include "umbra/types.h"

static inline u16 le_get16(const u8 *p, size_t off)
{
	return (u16)(p[off] | p[off + 1] << 8);
}

static inline u32 le_get32(const u8 *p, size_t off)
{
	return (u32)le_get16(p, off) | (u32)le_get16(p, off + 2) << 16;
}

static inline u64 le_get64(const u8 *p, size_t off)
{
	return (u64)le_get32(p, off) | (u64)le_get32(p, off + 4) << 32;
}

static inline void le_put16(u8 *p, size_t off, u16 v)
{
	p[off] = (u8)v;
	p[off + 1] = (u8)(v >> 8);
}

static inline void le_put32(u8 *p, size_t off, u32 v)
{
	le_put16(p, off, (u16)v);
	le_put16(p, off + 2, (u16)(v >> 16));
}

static inline void le_put64(u8 *p, size_t off, u64 v)
{
	le_put32(p, off, (u32)v);
	le_put32(p, off + 4, (u32)(v >> 32));
}

#endif /* UMBRA_LE_H */
