/* SPDX-License-Identifier: MIT */
/*
 * Out-of-sync leaf tables (KVM's unsync shadow pages): a guest 4 KiB table
 * the guest writes stops being write-protected, so its stores run without
 * a trap; its sptes catch up at the guest's next TLB flush (mmu.h).
 *
 * Why this is exact: between a store to a PTE and the flush that follows it
 * a CPU may still use the old translation from its TLB, or the new one, and
 * guests flush before they rely on a change that takes rights away (SDM
 * Vol. 3A §4.10.4). An out-of-sync spte is such a TLB entry: it says what
 * the gpte said at some point since the last flush. A change that *adds*
 * rights or a mapping needs no flush on a CPU, and needs none here: the
 * access faults on the old spte, and the fault path walks the guest's
 * current tables (fault.c) and installs what they say now.
 *
 * This file:
 *  1. slots: at most cfg.unsync tables at once, each with a snapshot of
 *     its gptes as its sptes were last brought in line with, and a bit per
 *     entry that a fault or prefetch has filled since (leaf_spte_set sets
 *     it: that spte came from the gpte in memory, which the snapshot may
 *     not hold, so the next sync recomputes it whatever the snapshot says);
 *  2. going out of sync (unsync_try, from fault.c item 6): a write fault on
 *     a write-protected gfn whose every indirect sp is a leaf table (level
 *     1), of 4-level or of 32-bit paging. An upper-level table stays in
 *     sync: its sptes link sps, and a stale link would keep a whole subtree
 *     stale past a flush of one gva. When every slot is taken, the oldest
 *     table is synced and write-protected again;
 *  3. back in sync for good (unsync_end): before an upper-level sp is made
 *     for the frame (sp_cache.c), or when its slot is recycled; forgotten
 *     when its last sp goes (rmap.c);
 *  4. syncs: compare each slot's snapshot with guest memory and bring the
 *     sptes of what changed (or was forced) in line, in every sp of the
 *     frame (one per view and role). A CR3 load, a full flush or a
 *     flushing mode change syncs every slot; invlpg the entries at the
 *     gva's PT index in every slot (whichever table maps the gva, its entry
 *     is among them). Slots stay out of sync after a sync: the next store
 *     costs no trap either.
 *
 * A slot works on the table's 8-byte words whatever its sps' format: a word
 * is a 4-level gpte, or two 32-bit ones, and a 32-bit PT's two leaf sps each
 * hold one half (sp.h, quadrant). sp_sptes_of_bytes() says which sptes of an
 * sp a word feeds, and the force bits are per word.
 */
#include "shadow/internal.h"

#include <stdlib.h>
#include <string.h>

#include "umbra/log.h"

/* Item 1. */
int unsync_init(struct shadow_mmu *mmu)
{
	if (!mmu->cfg.unsync)
		return 0;
	mmu->unsync = calloc(mmu->cfg.unsync, sizeof(*mmu->unsync));
	return mmu->unsync ? 0 : -1;
}

void unsync_fini(struct shadow_mmu *mmu)
{
	free(mmu->unsync);
}

static struct unsync_slot *slot_of(struct shadow_mmu *mmu, gfn_t gfn)
{
	for (unsigned i = 0; i < mmu->cfg.unsync; i++)
		if (mmu->unsync[i].used && mmu->unsync[i].gfn.v == gfn.v)
			return &mmu->unsync[i];
	return NULL;
}

static const u64 *guest_table(const struct shadow_mmu *mmu, gfn_t gfn)
{
	return mmu->cfg.mem.gpa_to_hva(mmu->cfg.mem.opaque, gfn_to_gpa(gfn), PAGE_SIZE);
}

/* Set every indirect sp of the slot's gfn to point at it (or at NULL). */
static void link_sps(struct shadow_mmu *mmu, gfn_t gfn, struct unsync_slot *slot)
{
	struct shadow_page *sp;

	for_each_indirect_sp(mmu, gfn, sp) sp->unsync = slot;
}

/* Item 1: the word of the table that spte `index` of sp comes from. */
static unsigned spte_word(const struct shadow_page *sp, unsigned index)
{
	return sp->role.gpte32 ? sp_gpte32_index(sp, index) / 2 : index;
}

/* Item 1 (rmap.c's leaf_spte_set): spte `index` of an out-of-sync sp was filled from memory. */
void unsync_force(struct shadow_page *sp, unsigned index)
{
	unsigned w = spte_word(sp, index);

	sp->unsync->force[w / 64] |= 1ull << (w % 64);
}

/* Item 4: words first..last of one slot. */
static void sync_slot(struct shadow_mmu *mmu, struct unsync_slot *slot, unsigned first,
		      unsigned last)
{
	const u64 *table = guest_table(mmu, slot->gfn);
	struct shadow_page *sp;
	bool forced = false;

	BUG_ON(!table); /* a shadowed table is RAM (fault.c item 1) */
	for (unsigned w = first / 64; w <= last / 64; w++)
		forced |= slot->force[w] != 0;
	/* The common case at a CR3 load: nothing written since the last sync. */
	if (!forced && !memcmp(&slot->snap[first], &table[first], (last - first + 1) * sizeof(u64)))
		return;
	for (unsigned i = first; i <= last; i++) {
		u64 gpte = __atomic_load_n(&table[i], __ATOMIC_ACQUIRE);
		u64 bit = 1ull << (i % 64);

		if (gpte == slot->snap[i] && !(slot->force[i / 64] & bit))
			continue;
		slot->snap[i] = gpte;
		for_each_indirect_sp(mmu, slot->gfn, sp)
		{
			unsigned lo, hi;

			if (!sp_sptes_of_bytes(sp, i * 8, i * 8 + 7, &lo, &hi))
				continue;
			/* A 32-bit sp's spte k is the word's half k % 2 (its quadrant starts even).
			 */
			for (unsigned k = lo; k <= hi; k++)
				if (leaf_spte_resync(mmu, sp, k,
						     sp->role.gpte32 ? (u32)(gpte >> (32 * (k % 2)))
								     : gpte))
					mmu->stats.unsync_updates++;
		}
		slot->force[i / 64] &= ~bit; /* after: the resync itself sets it */
	}
}

/* Item 3. */
static void end_slot(struct shadow_mmu *mmu, struct unsync_slot *slot)
{
	sync_slot(mmu, slot, 0, SPTE_PER_PAGE - 1);
	link_sps(mmu, slot->gfn, NULL);
	gfn_set_unsync(mmu, slot->gfn, false);
	slot->used = false;
	mmu->stats.unsync_ends++;
}

/* Item 2. */
bool unsync_try(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct unsync_slot *slot = NULL;
	struct shadow_page *sp;
	const u64 *table;

	if (!mmu->cfg.unsync || !gfn_may_unsync(mmu, gfn))
		return false;
	for_each_indirect_sp(mmu, gfn, sp) if (sp->role.level != PG_LEVEL_4K) return false;
	table = guest_table(mmu, gfn);
	if (!table)
		return false;
	for (unsigned i = 0; i < mmu->cfg.unsync; i++) {
		struct unsync_slot *s = &mmu->unsync[i];

		if (!s->used) {
			slot = s;
			break;
		}
		if (!slot || s->age < slot->age)
			slot = s;
	}
	if (slot->used)
		end_slot(mmu, slot);
	/*
	 * Write-protected until now, so every spte of the frame's sps is what
	 * these gptes give (or empty): the snapshot they are in line with.
	 */
	memcpy(slot->snap, table, sizeof(slot->snap));
	memset(slot->force, 0, sizeof(slot->force));
	slot->gfn = gfn;
	slot->age = ++mmu->unsync_clock;
	slot->used = true;
	link_sps(mmu, gfn, slot);
	gfn_set_unsync(mmu, gfn, true);
	mmu->stats.unsyncs++;
	return true;
}

/*
 * Item 3, from sp_get: a new leaf table of a frame out of sync joins its
 * slot (faults build it from memory as it is now). An upper-level one
 * never finds a slot: sp_get ended it (unsync_end) before making the sp,
 * since a sync must only ever meet leaf tables.
 */
void unsync_new_sp(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	if (!sp->role.direct && sp->role.level == PG_LEVEL_4K)
		sp->unsync = slot_of(mmu, sp->gfn);
}

void unsync_end(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct unsync_slot *slot = slot_of(mmu, gfn);

	if (slot)
		end_slot(mmu, slot);
}

/* Item 3: the frame's last sp went (rmap.c already cleared gfn_info.unsync). */
void unsync_forget(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct unsync_slot *slot = slot_of(mmu, gfn);

	BUG_ON(!slot);
	slot->used = false;
}

/* Item 4: entries first..last of every slot in use. */
static void sync_slots(struct shadow_mmu *mmu, unsigned first, unsigned last)
{
	bool any = false;

	for (unsigned i = 0; i < mmu->cfg.unsync; i++) {
		if (!mmu->unsync[i].used)
			continue;
		sync_slot(mmu, &mmu->unsync[i], first, last);
		any = true;
	}
	mmu->stats.unsync_syncs += any;
}

void unsync_sync_all(struct shadow_mmu *mmu)
{
	sync_slots(mmu, 0, SPTE_PER_PAGE - 1);
}

/*
 * A slot does not know which format its table has: the word of a 4-level PT
 * and the word of a 32-bit PT that hold the gva's entry are both synced.
 */
void unsync_sync_gva(struct shadow_mmu *mmu, gva_t gva)
{
	unsigned index = gva_index(gva, PG_LEVEL_4K), w32 = ((gva.v >> PAGE_SHIFT) & 1023) / 2;

	sync_slots(mmu, index, index);
	if (w32 != index)
		sync_slots(mmu, w32, w32);
}
