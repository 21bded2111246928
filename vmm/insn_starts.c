// SPDX-License-Identifier: MIT
/*
 * Instruction starts of approved code frames (vmm/insn_starts.h): a chained
 * hash by gfn of one 512-byte bitmap per frame.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/insn_starts.h"

#define FRAME_BYTES 4096u

struct insn_starts_page {
	gfn_t gfn;
	struct insn_starts_page *next;
	u8 bits[FRAME_BYTES / 8];
};

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

	if (!p) {
		p = malloc(sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->gfn = g;
		p->next = s->chains[bucket(g)];
		s->chains[bucket(g)] = p;
		s->npages++;
	}
	memset(p->bits, 0, sizeof(p->bits));
	for (unsigned o = 0; o < FRAME_BYTES; o++)
		if (insn_len[o])
			p->bits[o / 8] |= (u8)(1u << (o % 8));
	return 0;
}

bool insn_starts_has(const struct insn_starts *s, gfn_t g, unsigned off)
{
	const struct insn_starts_page *p;

	if (off >= FRAME_BYTES)
		return false;
	p = find(s, g);
	return p && (p->bits[off / 8] >> (off % 8)) & 1;
}

void insn_starts_drop(struct insn_starts *s, gfn_t g)
{
	for (struct insn_starts_page **pp = &s->chains[bucket(g)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->gfn.v == g.v) {
			struct insn_starts_page *dead = *pp;

			*pp = dead->next;
			free(dead);
			s->npages--;
			return;
		}
	}
}
