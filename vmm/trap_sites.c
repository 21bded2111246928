// SPDX-License-Identifier: MIT
/*
 * Trap sites (vmm/trap_sites.h): an open-addressing table of (vector, RIP)
 * counts, filled on the trap path, so a lookup is a hash and a short probe.
 *
 * Invariant: the table is never more than 3/4 full, so every probe ends at
 * the site's slot or a free one. A site that comes once it is that full is
 * counted in `other` only; a Linux boot has a few thousand sites, most of
 * them the first execution of a code page (#PF), and the busy ones come
 * early and stay.
 */
#include <string.h>

#include "vmm/trap_sites.h"

#define TRAP_SITES_MAX_USED (TRAP_SITES_CAP / 4 * 3)

static unsigned slot_of(unsigned vector, u64 rip)
{
	u64 h = (rip ^ ((u64)vector << 56)) * 0x9e3779b97f4a7c15ull;

	return (unsigned)(h >> 32) & (TRAP_SITES_CAP - 1);
}

void trap_sites_add(struct trap_sites *t, unsigned vector, u64 rip)
{
	unsigned i = slot_of(vector, rip);

	t->total++;
	for (;; i = (i + 1) & (TRAP_SITES_CAP - 1)) {
		struct trap_site *s = &t->slot[i];

		if (s->count && s->vector == vector && s->rip == rip) {
			s->count++;
			return;
		}
		if (!s->count)
			break;
	}
	if (t->used >= TRAP_SITES_MAX_USED) {
		t->other++;
		return;
	}
	t->slot[i] = (struct trap_site){ .rip = rip, .count = 1, .vector = (u8)vector };
	t->used++;
}

static bool busier(const struct trap_site *a, const struct trap_site *b)
{
	if (a->count != b->count)
		return a->count > b->count;
	if (a->vector != b->vector)
		return a->vector < b->vector;
	return a->rip < b->rip;
}

/* Insertion into a short sorted list: n is TRAP_SITES_TOP or so, the table 4096. */
unsigned trap_sites_top(const struct trap_sites *t, struct trap_site *out, unsigned n)
{
	unsigned k = 0;

	for (unsigned i = 0; i < TRAP_SITES_CAP && n; i++) {
		const struct trap_site *s = &t->slot[i];
		unsigned j;

		if (!s->count || (k == n && !busier(s, &out[k - 1])))
			continue;
		j = k < n ? k++ : n - 1;
		for (; j > 0 && busier(s, &out[j - 1]); j--)
			out[j] = out[j - 1];
		out[j] = *s;
	}
	return k;
}
