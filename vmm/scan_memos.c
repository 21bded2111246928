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

/* `g`'s slot, or NULL; *lru gets the least recently used slot (an empty one first). */
static struct scan_memo_slot *find(struct scan_memos *t, gfn_t g, struct scan_memo_slot **lru)
{
	*lru = &t->slot[0];
	for (unsigned i = 0; i < SCAN_MEMOS_MAX; i++) {
		struct scan_memo_slot *s = &t->slot[i];

		if (s->used && s->gfn.v == g.v)
			return s;
		if (s->used < (*lru)->used)
			*lru = s;
	}
	return NULL;
}

struct scan_memo *scan_memos_get(struct scan_memos *t, gfn_t g, bool *own, bool *ahead)
{
	struct scan_memo_slot *lru, *s = find(t, g, &lru);

	t->clock++;
	*own = s != NULL;
	*ahead = s && s->ahead;
	if (s) {
		s->used = t->clock;
		t->nahead -= s->ahead;
		s->ahead = false;
		return s->memo;
	}
	if (!lru->memo && !(lru->memo = scan_memo_new()))
		return NULL;
	lru->gfn = g;
	lru->used = t->clock;
	t->nahead -= lru->ahead;
	lru->ahead = false;
	return lru->memo;
}

bool scan_memos_has(const struct scan_memos *t, gfn_t g)
{
	for (unsigned i = 0; i < SCAN_MEMOS_MAX; i++)
		if (t->slot[i].used && t->slot[i].gfn.v == g.v)
			return true;
	return false;
}

void scan_memos_put(struct scan_memos *t, gfn_t g, struct scan_memo *memo)
{
	struct scan_memo_slot *lru;

	if (find(t, g, &lru)) {
		scan_memo_free(memo);
		return;
	}
	/* Guesses up to their share: the oldest guess makes room. */
	if (t->nahead >= SCAN_MEMOS_AHEAD_MAX) {
		lru = NULL;
		for (unsigned i = 0; i < SCAN_MEMOS_MAX; i++)
			if (t->slot[i].ahead && (!lru || t->slot[i].used < lru->used))
				lru = &t->slot[i];
	}
	scan_memo_free(lru->memo);
	t->nahead -= lru->ahead;
	lru->memo = memo;
	lru->gfn = g;
	lru->used = ++t->clock;
	lru->ahead = true;
	t->nahead++;
}
