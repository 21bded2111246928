// SPDX-License-Identifier: MIT
/*
 * Instruction starts of approved code frames (vmm/insn_starts.h): a chained
 * hash by gfn of one record per frame, each instruction's length in the
 * nibble of its first byte (2 KiB a frame), and a retired record's history:
 * such lengths and the frame's bytes (6 KiB more).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/insn_starts.h"

#define FRAME_BYTES 4096u

/* History: a scan's lengths (nibbles) and the frame's bytes at its revocation. */
struct insn_starts_history {
	u8 len4[FRAME_BYTES / 2];
	u8 bytes[FRAME_BYTES];
};

struct insn_starts_page {
	gfn_t gfn;
	struct insn_starts_page *next;
	bool retired;
	bool self_revoked; /* its last revocation was a store by the frame's own code */
	bool trusted;	   /* len4's scan did not follow such a revocation */
	u32 retire_seq;	   /* its entry in the ring, while retired */
	struct insn_starts_history *hist; /* NULL: none */
	u8 len4[FRAME_BYTES / 2];	  /* the last scan's lengths */
};

static unsigned nibble(const u8 *len4, unsigned off)
{
	return (len4[off / 2] >> (off % 2 * 4)) & 0xf;
}

static unsigned len_at(const struct insn_starts_page *p, unsigned off)
{
	return nibble(p->len4, off);
}

static unsigned bucket(gfn_t g)
{
	/* Fibonacci hashing: consecutive gfns (kernel text) spread evenly. */
	return (unsigned)((g.v * 0x9e3779b97f4a7c15ull) >> (64 - INSN_STARTS_HASH_BITS));
}

void insn_starts_init(struct insn_starts *s)
{
	memset(s, 0, sizeof(*s));
}

void insn_starts_destroy(struct insn_starts *s)
{
	for (unsigned b = 0; b < (1u << INSN_STARTS_HASH_BITS); b++) {
		struct insn_starts_page *p = s->chains[b];

		while (p) {
			struct insn_starts_page *next = p->next;

			free(p->hist);
			free(p);
			p = next;
		}
	}
	insn_starts_init(s);
}

static struct insn_starts_page *find(const struct insn_starts *s, gfn_t g)
{
	for (struct insn_starts_page *p = s->chains[bucket(g)]; p; p = p->next)
		if (p->gfn.v == g.v)
			return p;
	return NULL;
}

int insn_starts_set(struct insn_starts *s, gfn_t g, const u8 *insn_len)
{
	struct insn_starts_page *p = find(s, g);

	if (p && p->retired) {
		p->retired = false; /* its ring entry no longer matches */
		s->nretired--;
	}
	if (!p) {
		p = malloc(sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->gfn = g;
		p->retired = false;
		p->self_revoked = false;
		p->hist = NULL;
		p->next = s->chains[bucket(g)];
		s->chains[bucket(g)] = p;
		s->npages++;
	}
	/*
	 * A scan right after the frame's own code wrote it may have seen a
	 * rewrite half done: its lengths are not history. The history it
	 * would replace stays until a scan that is.
	 */
	p->trusted = !p->self_revoked;
	if (p->trusted) {
		free(p->hist);
		p->hist = NULL;
	}
	for (unsigned o = 0; o < FRAME_BYTES; o += 2)
		p->len4[o / 2] = (u8)(MIN(insn_len[o], 15u) | MIN(insn_len[o + 1], 15u) << 4);
	return 0;
}

bool insn_starts_has(const struct insn_starts *s, gfn_t g, unsigned off)
{
	const struct insn_starts_page *p;

	if (off >= FRAME_BYTES)
		return false;
	p = find(s, g);
	return p && !p->retired && len_at(p, off);
}

void insn_starts_retire(struct insn_starts *s, gfn_t g, const u8 *page, bool self_write)
{
	struct insn_starts_page *p = find(s, g);

	if (!p || p->retired)
		return;
	if (p->trusted) {
		if (!page || (!p->hist && !(p->hist = malloc(sizeof(*p->hist))))) {
			insn_starts_drop(s, g); /* no history rather than one without its bytes */
			return;
		}
		memcpy(p->hist->len4, p->len4, sizeof(p->len4));
		memcpy(p->hist->bytes, page, FRAME_BYTES);
	}
	p->self_revoked = self_write;
	/* The ring is full: its oldest entry goes, with its record if still that retirement. */
	if (s->ring_len == INSN_STARTS_RETIRED_MAX) {
		struct insn_starts_page *old = find(s, s->ring[s->ring_head].gfn);

		if (old && old->retired && old->retire_seq == s->ring[s->ring_head].seq)
			insn_starts_drop(s, old->gfn);
		s->ring_head = (s->ring_head + 1) % INSN_STARTS_RETIRED_MAX;
		s->ring_len--;
	}
	p->retired = true;
	p->retire_seq = ++s->seq;
	s->nretired++;
	s->ring[(s->ring_head + s->ring_len) % INSN_STARTS_RETIRED_MAX].gfn = g;
	s->ring[(s->ring_head + s->ring_len) % INSN_STARTS_RETIRED_MAX].seq = p->retire_seq;
	s->ring_len++;
}

bool insn_starts_history(const struct insn_starts *s, gfn_t g, u8 *len, u8 *bytes)
{
	const struct insn_starts_page *p = find(s, g);

	if (!p || !p->retired || !p->hist)
		return false;
	for (unsigned o = 0; o < FRAME_BYTES; o++)
		len[o] = (u8)nibble(p->hist->len4, o);
	memcpy(bytes, p->hist->bytes, FRAME_BYTES);
	return true;
}

void insn_starts_drop(struct insn_starts *s, gfn_t g)
{
	for (struct insn_starts_page **pp = &s->chains[bucket(g)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->gfn.v == g.v) {
			struct insn_starts_page *dead = *pp;

			*pp = dead->next;
			s->nretired -= dead->retired;
			free(dead->hist);
			free(dead);
			s->npages--;
			return;
		}
	}
}
