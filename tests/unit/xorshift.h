/* SPDX-License-Identifier: MIT */
/*
 * The seeded xorshift32 the emulator's fuzz tests draw from: deterministic
 * for a given seed, so a failure can be replayed.
 */
#ifndef UMBRA_TESTS_XORSHIFT_H
#define UMBRA_TESTS_XORSHIFT_H

#include "umbra/types.h"

static u32 rng_state;

static inline u32 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

#endif /* UMBRA_TESTS_XORSHIFT_H */
