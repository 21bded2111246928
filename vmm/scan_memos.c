// SPDX-License-Identifier: MIT
/*
 * A table of scan memos by code frame, least recently used out first
 * (vmm/scan_memos.h). A linear search: 512 slots, searched once per scan,
 * a few thousand times per boot.
 */
#include <string.h>

#include "vmm/scan_memos.h"

void scan_memos_init(struct scan_memos *t)
{
	memset(t, 0, sizeof(*t));
}

void scan_memos_destroy(struct scan_memos *t)
{
	for (unsigned i = 0; i < SCAN_MEMOS_MAX; i++)
		scan_memo_free(t->slot[i].memo);
	scan_memos_init(t);
}

/* `g`'s slot, or -1. */
static int slot_of(const struct scan_memos *t, gfn_t g)
{
	for (unsigned i = 0; i < SCAN_MEMOS_MAX; i++)
		if (t->slot[i].used && t->slot[i].gfn.v == g.v)
			return (int)i;
	return -1;
}

/* The least recently used slot (an empty one first), among the guesses only if `guesses`. */
static struct scan_memo_slot *oldest(struct scan_memos *t, bool guesses)
{
	struct scan_memo_slot *lru = NULL;

	for (unsigned i = 0; i < SCAN_MEMOS_MAX; i++)
		if ((!guesses || t->slot[i].ahead) && (!lru || t->slot[i].used < lru->used))
			lru = &t->slot[i];
	return lru;
}

/* Slot `s` is now `g`'s, just used; `ahead`: a guess (scan_memos_put). */
static void claim(struct scan_memos *t, struct scan_memo_slot *s, gfn_t g, bool ahead)
{
	t->nahead = t->nahead - s->ahead + ahead;
	s->gfn = g;
	s->used = ++t->clock;
	s->ahead = ahead;
}

struct scan_memo *scan_memos_get(struct scan_memos *t, gfn_t g, bool *own, bool *ahead)
{
	int i = slot_of(t, g);
	struct scan_memo_slot *s = i >= 0 ? &t->slot[i] : oldest(t, false);

	*own = i >= 0;
	*ahead = *own && s->ahead;
	if (!*own && !s->memo && !(s->memo = scan_memo_new()))
		return NULL;
	claim(t, s, g, false);
	return s->memo;
}

bool scan_memos_has(const struct scan_memos *t, gfn_t g)
{
	return slot_of(t, g) >= 0;
}

void scan_memos_put(struct scan_memos *t, gfn_t g, struct scan_memo *memo)
{
	struct scan_memo_slot *s;

	if (slot_of(t, g) >= 0) {
		scan_memo_free(memo);
		return;
	}
	/* Guesses up to their share: past it, the oldest guess makes room. */
	s = oldest(t, t->nahead >= SCAN_MEMOS_AHEAD_MAX);
	scan_memo_free(s->memo);
	s->memo = memo;
	claim(t, s, g, true);
}
