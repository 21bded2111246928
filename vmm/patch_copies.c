// SPDX-License-Identifier: MIT
/*
 * Copies of patched code (vmm/patch_copies.h): a hash table of the
 * 2 * PATCH_COPY_CONTEXT + 1 bytes around each patch applied (int3 in the
 * middle), open addressing, at most half full.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode/patch.h"
#include "vmm/patch_copies.h"

#define CTX_LEN (2 * PATCH_COPY_CONTEXT + 1)

struct patch_copy {
	u64 hash; /* 0: empty slot */
	u8 ctx[CTX_LEN];
	u8 orig0; /* the original first byte of the patched instruction */
};

void patch_copies_init(struct patch_copies *pc)
{
	memset(pc, 0, sizeof(*pc));
}

void patch_copies_destroy(struct patch_copies *pc)
{
	free(pc->slots);
	memset(pc, 0, sizeof(*pc));
}

/* FNV-1a, never 0 (0 marks an empty slot). */
static u64 hash_ctx(const u8 *ctx)
{
	u64 h = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < CTX_LEN; i++)
		h = (h ^ ctx[i]) * 0x100000001b3ull;
	return h ? h : 1;
}

static struct patch_copy *find(const struct patch_copies *pc, const u8 *ctx, u64 h)
{
	if (!pc->nslots)
		return NULL;
	for (unsigned i = (unsigned)h & (pc->nslots - 1);; i = (i + 1) & (pc->nslots - 1)) {
		struct patch_copy *c = &pc->slots[i];

		if (!c->hash)
			return NULL;
		if (c->hash == h && !memcmp(c->ctx, ctx, CTX_LEN))
			return c;
	}
}

static int grow(struct patch_copies *pc)
{
	unsigned n = pc->nslots ? 2 * pc->nslots : 256;
	struct patch_copy *s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (unsigned i = 0; i < pc->nslots; i++) {
		unsigned j;

		if (!pc->slots[i].hash)
			continue;
		for (j = (unsigned)pc->slots[i].hash & (n - 1); s[j].hash; j = (j + 1) & (n - 1))
			;
		s[j] = pc->slots[i];
	}
	free(pc->slots);
	pc->slots = s;
	pc->nslots = n;
	return 0;
}

/* struct patch_copies' `near` key of the int3 at `at`: the bytes either side of it. */
static unsigned near_key(const u8 *at)
{
	return (unsigned)at[-1] << 8 | at[1];
}

static void near_set(struct patch_copies *pc, const u8 *at)
{
	pc->near[near_key(at) / 64] |= 1ull << (near_key(at) % 64);
}

static bool near_has(const struct patch_copies *pc, const u8 *at)
{
	return pc->near[near_key(at) / 64] & (1ull << (near_key(at) % 64));
}

static bool has_context(unsigned off)
{
	return off >= PATCH_COPY_CONTEXT && off + PATCH_COPY_CONTEXT < SCAN_PAGE_SIZE;
}

int patch_copies_add(struct patch_copies *pc, const u8 *page, unsigned off, const u8 *orig,
		     unsigned len)
{
	const u8 *ctx = page + off - PATCH_COPY_CONTEXT;
	u64 h;
	unsigned i;

	if (!has_context(off) || !len || page[off] != PATCH_INT3)
		return 0;
	h = hash_ctx(ctx);
	if (find(pc, ctx, h))
		return 0;
	if (2 * (pc->n + 1) > pc->nslots && grow(pc))
		return -ENOMEM;
	for (i = (unsigned)h & (pc->nslots - 1); pc->slots[i].hash; i = (i + 1) & (pc->nslots - 1))
		;
	pc->slots[i].hash = h;
	memcpy(pc->slots[i].ctx, ctx, CTX_LEN);
	pc->slots[i].orig0 = orig[0];
	pc->n++;
	near_set(pc, page + off);
	return 0;
}

unsigned patch_copies_restore(const struct patch_copies *pc, u8 *page)
{
	u8 before[SCAN_PAGE_SIZE];
	unsigned n = 0;

	if (!pc->n || !memchr(page, PATCH_INT3, SCAN_PAGE_SIZE))
		return 0;
	memcpy(before, page, sizeof(before));
	for (unsigned off = PATCH_COPY_CONTEXT; has_context(off); off++) {
		const struct patch_copy *c;

		if (before[off] != PATCH_INT3 || !near_has(pc, before + off))
			continue;
		c = find(pc, before + off - PATCH_COPY_CONTEXT,
			 hash_ctx(before + off - PATCH_COPY_CONTEXT));
		if (c) {
			page[off] = c->orig0;
			n++;
		}
	}
	return n;
}
