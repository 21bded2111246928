/* SPDX-License-Identifier: MIT */
/*
 * Basic types shared by every Umbra module.
 *
 * Address kinds (see shared/DESIGN.md, "Vocabulary"):
 *   gva  guest-virtual address        gva_t
 *   gpa  guest-physical address       gpa_t
 *   gfn  guest frame number (gpa>>12) gfn_t
 *   mpa  machine-physical address of the KVM VM  mpa_t
 *   hva  address in the VMM process   plain `void *`
 *
 * Each kind is a one-field struct so that passing a gva where a gpa belongs
 * fails to compile. Convert only through the named helpers below.
 */
#ifndef UMBRA_TYPES_H
#define UMBRA_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;

typedef struct {
	u64 v;
} gva_t;
typedef struct {
	u64 v;
} gpa_t;
typedef struct {
	u64 v;
} gfn_t;
typedef struct {
	u64 v;
} mpa_t;

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1ull << PAGE_SHIFT)
#define PAGE_MASK  (~(PAGE_SIZE - 1))

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)

static inline gva_t gva(u64 v)
{
	return (gva_t){ v };
}
static inline gpa_t gpa(u64 v)
{
	return (gpa_t){ v };
}
static inline gfn_t gfn(u64 v)
{
	return (gfn_t){ v };
}
static inline mpa_t mpa(u64 v)
{
	return (mpa_t){ v };
}

static inline gfn_t gpa_to_gfn(gpa_t a)
{
	return gfn(a.v >> PAGE_SHIFT);
}
static inline gpa_t gfn_to_gpa(gfn_t f)
{
	return gpa(f.v << PAGE_SHIFT);
}

#define ALIGN_UP(x, a)	 (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define ARRAY_SIZE(a)	 (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define MAX(a, b)	 ((a) > (b) ? (a) : (b))

#define __must_check   __attribute__((warn_unused_result))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __unused       __attribute__((unused))

#endif /* UMBRA_TYPES_H */
