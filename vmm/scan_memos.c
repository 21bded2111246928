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

struct scan_memo *scan_memos_get(struct scan_memos *t, gfn_t g, bool *own)
{
	struct scan_memo_slot *lru = &t->slot[0];

	*own = false;
	t->clock++;
	for (unsigned i = 0; i < SCAN_MEMOS_MAX; i++) {
		struct scan_memo_slot *s = &t->slot[i];

		if (s->used && s->gfn.v == g.v) {
			s->used = t->clock;
			*own = true;
			return s->memo;
		}
		if (s->used < lru->used)
			lru = s;
	}
	if (!lru->memo && !(lru->memo = scan_memo_new()))
		return NULL;
	lru->gfn = g;
	lru->used = t->clock;
	return lru->memo;
}
