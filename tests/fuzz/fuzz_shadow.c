/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the shadow MMU: the operation stream of the
 * differential harness (tests/shadow_harness/), chosen by the fuzzer's bytes
 * instead of a PRNG. A violation of the oracle invariant (or a sanitizer
 * report inside shadow/) aborts, so libFuzzer keeps the input as a crash.
 *
 * Input: byte 0 picks the pool size (tiny pools exercise eviction), the
 * prefetch group (bits 4-5) and the out-of-sync slots (bits 6-7); the
 * rest drives the operations; each operation reads 1 to 4 bytes per choice.
 * When the bytes run out, PRNG_TAIL_OPS more operations follow from a PRNG
 * seeded with a hash of the input, so that even the short inputs libFuzzer
 * starts with reach deep states (many tables, roots, evictions); the bytes
 * steer the start, where the fuzzer's mutations matter most.
 *
 * Build and run: `make fuzz` (FUZZ_SECONDS, default 60); a short run is part
 * of `make check` when clang with libFuzzer is available. To replay a crash:
 * build/fuzz/fuzz_shadow crash-<sha1>; FUZZ_SHADOW_TRACE=1 prints every
 * operation.
 */
#include <stdlib.h>

#include "tests/shadow_harness/harness.h"

#define MAX_OPS_PER_INPUT 4096
#define PRNG_TAIL_OPS	  300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const u64 pool_sizes[] = { 8, 12, 24, 48, 128, 512 };
static const unsigned prefetch_groups[] = { 8, 0, 2, 512 }; /* 8: the VMM's default */
static const unsigned unsync_slots[] = { 16, 0, 1, 64 };    /* 16: the VMM's default */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness_config cfg = { 0 };
	struct harness *h;
	int r;

	if (size < 2)
		return 0;
	cfg.pool_pages = pool_sizes[data[0] % ARRAY_SIZE(pool_sizes)];
	cfg.prefetch = prefetch_groups[(data[0] >> 4) % ARRAY_SIZE(prefetch_groups)];
	cfg.unsync = unsync_slots[(data[0] >> 6) % ARRAY_SIZE(unsync_slots)];
	cfg.large = !(data[0] & 0x08); /* on (the VMM's default) unless bit 3 */
	cfg.bytes = data + 1;
	cfg.nr_bytes = size - 1;
	cfg.prng_tail_ops = PRNG_TAIL_OPS;
	cfg.samples_per_step = 4;
	cfg.full_check_every = 0; /* a full sweep at the end of the input only */
	cfg.trace = getenv("FUZZ_SHADOW_TRACE") != NULL;
	h = harness_create(&cfg);
	if (!h)
		abort();
	r = harness_run(h, MAX_OPS_PER_INPUT);
	if (r) {
		harness_print_summary(h, stderr);
		abort();
	}
	harness_destroy(h);
	return 0;
}
