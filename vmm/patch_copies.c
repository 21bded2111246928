// SPDX-License-Identifier: MIT
/*
 * Copies of patched code (vmm/patch_copies.h): a hash table of the
 * 2 * PATCH_COPY_CONTEXT + 1 bytes around each patch applied (int3 in the
 * middle), and of the int3 with PATCH_COPY_SIDE bytes on each side alone;
 * open addressing, at most half full.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode/patch.h"
#include "vmm/patch_copies.h"

#define CTX_LEN	 (2 * PATCH_COPY_CONTEXT + 1)
#define SIDE_LEN (PATCH_COPY_SIDE + 1)

/* Which bytes a key holds, from the int3's offset. */
enum key_kind {
	KEY_BOTH,   /* [off - 12, off + 12] */
	KEY_BEFORE, /* [off - 24, off] */
	KEY_AFTER,  /* [off, off + 24] */
};

struct patch_copy {
	u64 hash;	/* 0: empty slot */
	u8 kind;	/* enum key_kind */
	bool ambiguous; /* a one-sided key two patches with different orig0 share */
	u8 ctx[SIDE_LEN > CTX_LEN ? SIDE_LEN : CTX_LEN];
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

static unsigned key_len(enum key_kind kind)
{
	return kind == KEY_BOTH ? CTX_LEN : SIDE_LEN;
}

/* The key's first byte, for the int3 at `at`. */
static const u8 *key_start(enum key_kind kind, const u8 *at)
{
	return kind == KEY_AFTER ? at
				 : at - (kind == KEY_BOTH ? PATCH_COPY_CONTEXT : PATCH_COPY_SIDE);
}

/* FNV-1a over the kind and the key's bytes, never 0 (0 marks an empty slot). */
static u64 hash_key(enum key_kind kind, const u8 *key)
{
	u64 h = (0xcbf29ce484222325ull ^ kind) * 0x100000001b3ull;

	for (unsigned i = 0; i < key_len(kind); i++)
		h = (h ^ key[i]) * 0x100000001b3ull;
	return h ? h : 1;
}

static struct patch_copy *find(const struct patch_copies *pc, enum key_kind kind, const u8 *key,
			       u64 h)
{
	if (!pc->nslots)
		return NULL;
	for (unsigned i = (unsigned)h & (pc->nslots - 1);; i = (i + 1) & (pc->nslots - 1)) {
		struct patch_copy *c = &pc->slots[i];

		if (!c->hash)
			return NULL;
		if (c->hash == h && c->kind == kind && !memcmp(c->ctx, key, key_len(kind)))
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

static void bit_set(u64 *bits, unsigned b)
{
	bits[b / 64] |= 1ull << (b % 64);
}

static bool bit_has(const u64 *bits, unsigned b)
{
	return bits[b / 64] & (1ull << (b % 64));
}

/* Does the page hold `kind`'s bytes around offset `off`? */
static bool has_key(enum key_kind kind, unsigned off)
{
	if (kind == KEY_BOTH)
		return off >= PATCH_COPY_CONTEXT && off + PATCH_COPY_CONTEXT < SCAN_PAGE_SIZE;
	return kind == KEY_BEFORE ? off >= PATCH_COPY_SIDE : off + PATCH_COPY_SIDE < SCAN_PAGE_SIZE;
}

/* A one-sided key is used only without a 0xcc in its side (patch_copies.h). */
static bool side_usable(enum key_kind kind, const u8 *at)
{
	const u8 *side = kind == KEY_AFTER ? at + 1 : at - PATCH_COPY_SIDE;

	return !memchr(side, PATCH_INT3, PATCH_COPY_SIDE);
}

/* Add the `kind` key of the int3 at `at`: 1, 0 if it was there, or -ENOMEM. */
static int add_key(struct patch_copies *pc, enum key_kind kind, const u8 *at, u8 orig0)
{
	const u8 *key = key_start(kind, at);
	u64 h = hash_key(kind, key);
	struct patch_copy *c = find(pc, kind, key, h);
	unsigned i;

	if (c) {
		c->ambiguous |= c->orig0 != orig0;
		return 0;
	}
	if (2 * (pc->n + 1) > pc->nslots && grow(pc))
		return -ENOMEM;
	for (i = (unsigned)h & (pc->nslots - 1); pc->slots[i].hash; i = (i + 1) & (pc->nslots - 1))
		;
	pc->slots[i].hash = h;
	pc->slots[i].kind = (u8)kind;
	pc->slots[i].ambiguous = false;
	memcpy(pc->slots[i].ctx, key, key_len(kind));
	pc->slots[i].orig0 = orig0;
	pc->n++;
	return 1;
}

int patch_copies_add(struct patch_copies *pc, const u8 *page, unsigned off, const u8 *orig,
		     unsigned len)
{
	const u8 *at = page + off;
	int r = 0, added = 0;

	if (off >= SCAN_PAGE_SIZE || !len || *at != PATCH_INT3)
		return 0;
	if (has_key(KEY_BOTH, off)) {
		if (find(pc, KEY_BOTH, key_start(KEY_BOTH, at),
			 hash_key(KEY_BOTH, key_start(KEY_BOTH, at))))
			return 0; /* this very patch, remembered before */
		added += r = add_key(pc, KEY_BOTH, at, orig[0]);
		bit_set(pc->near, near_key(at));
	}
	if (r >= 0 && has_key(KEY_BEFORE, off) && side_usable(KEY_BEFORE, at)) {
		added += r = add_key(pc, KEY_BEFORE, at, orig[0]);
		bit_set(pc->near_before, at[-1]);
	}
	if (r >= 0 && has_key(KEY_AFTER, off) && side_usable(KEY_AFTER, at)) {
		added += r = add_key(pc, KEY_AFTER, at, orig[0]);
		bit_set(pc->near_after, at[1]);
	}
	if (r < 0)
		return r;
	pc->npatches += added > 0;
	return 0;
}

/* The patch the 0xcc at `at` (offset `off`) is a copy of, with `kind`'s key, or NULL. */
static const struct patch_copy *match(const struct patch_copies *pc, enum key_kind kind,
				      const u8 *at, unsigned off)
{
	const struct patch_copy *c;

	if (!has_key(kind, off))
		return NULL;
	/* The cheap filters first: a page has a thousand padding int3s. */
	if (kind == KEY_BOTH && !bit_has(pc->near, near_key(at)))
		return NULL;
	if (kind == KEY_BEFORE &&
	    (at[-1] == PATCH_INT3 || !bit_has(pc->near_before, at[-1]) || !side_usable(kind, at)))
		return NULL;
	if (kind == KEY_AFTER &&
	    (at[1] == PATCH_INT3 || !bit_has(pc->near_after, at[1]) || !side_usable(kind, at)))
		return NULL;
	c = find(pc, kind, key_start(kind, at), hash_key(kind, key_start(kind, at)));
	return c && !c->ambiguous ? c : NULL;
}

unsigned patch_copies_restore(const struct patch_copies *pc, u8 *page, const u8 *own)
{
	u8 before[SCAN_PAGE_SIZE];
	unsigned n = 0;

	if (!pc->n || !memchr(page, PATCH_INT3, SCAN_PAGE_SIZE))
		return 0;
	memcpy(before, page, sizeof(before));
	for (unsigned off = 0; off < SCAN_PAGE_SIZE; off++) {
		const struct patch_copy *c;

		if (before[off] != PATCH_INT3)
			continue;
		c = match(pc, KEY_BOTH, before + off, off);
		if (!c && !(own && own[off] >= 2))
			c = match(pc, KEY_AFTER, before + off, off);
		if (!c && !(own && own[off] >= 2))
			c = match(pc, KEY_BEFORE, before + off, off);
		if (c) {
			page[off] = c->orig0;
			n++;
		}
	}
	return n;
}
