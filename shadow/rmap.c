/* SPDX-License-Identifier: MIT */
/*
 * The reverse map and write-protection, per gfn.
 *
 * This file:
 *  1. a hash of struct gfn_info by gfn, created on first use and freed when
 *     the gfn is neither shadowed nor mapped;
 *  2. the rmap: gfn -> every leaf spte (sp, index) that maps it, in every
 *     root and view;
 *  3. shadow counts: how many indirect sps shadow a gfn as a guest table.
 *     When the count goes 0 -> 1 the gfn is write-protected: RW is cleared
 *     in every leaf spte of its rmap (and the real TLB flushed), so every
 *     guest write to one of its tables traps, also through the guest's own
 *     data mappings of it (e.g. the kernel's direct map) in any root;
 *  4. when the count goes back to 0 (the last sp shadowing it was zapped or
 *     unshadowed), restore RW where only write-protection had taken it
 *     (SPTE_GUEST_WRITABLE, sp.h): an upgrade, so no flush;
 *  5. install a leaf spte, keeping the rmap in step;
 *  6. the execution gate: approve/revoke a gfn (mmu.h);
 *  7. out of sync (unsync.c): a shadowed gfn whose write-protection is
 *     lifted while its tables are out of sync, and put back after;
 *  8. 2 MiB frames (large sptes, sp.h): a count per frame of its tracked
 *     gfns; the first one zaps every large spte mapping the frame, since
 *     a 2 MiB spte cannot be write-protected for one of its 4 KiB pages.
 *
 * A large spte is in the rmap of its frame's first gfn. The loops of items
 * 3, 4, 6 and 7 only run over the rmap of a tracked gfn, which item 8 has
 * emptied of large sptes: they meet 4 KiB leaves only.
 */
#include "shadow/internal.h"

#include <stdlib.h>

#include "umbra/log.h"

/* Item 1. */
int rmap_init(struct shadow_mmu *mmu)
{
	u64 buckets = 256;

	while (buckets < 4 * mmu->cfg.pool.nr_pages)
		buckets <<= 1;
	mmu->gfn_hash = calloc(buckets, sizeof(*mmu->gfn_hash));
	if (!mmu->gfn_hash)
		return -1;
	mmu->gfn_hash_mask = buckets - 1;
	return 0;
}

void rmap_fini(struct shadow_mmu *mmu)
{
	u64 b;

	if (!mmu->gfn_hash)
		return;
	for (b = 0; b <= mmu->gfn_hash_mask; b++) {
		struct gfn_info *info = mmu->gfn_hash[b];

		while (info) {
			struct gfn_info *next = info->next;

			free(info->rmap);
			free(info);
			info = next;
		}
	}
	free(mmu->gfn_hash);
}

static struct gfn_info **gfn_bucket(const struct shadow_mmu *mmu, gfn_t gfn)
{
	return &mmu->gfn_hash[((gfn.v * 0x9e3779b97f4a7c15ull) >> 28) & mmu->gfn_hash_mask];
}

/* Item 1. */
static struct gfn_info *gfn_info_find(const struct shadow_mmu *mmu, gfn_t gfn)
{
	struct gfn_info *info;

	for (info = *gfn_bucket(mmu, gfn); info; info = info->next)
		if (info->gfn.v == gfn.v)
			return info;
	return NULL;
}

/* Item 1. LIMITATION: host malloc failure here is fatal (BUG_ON). */
static struct gfn_info *gfn_info_get(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct gfn_info *info = gfn_info_find(mmu, gfn);
	struct gfn_info **bucket;

	if (info)
		return info;
	info = calloc(1, sizeof(*info));
	BUG_ON(!info);
	info->gfn = gfn;
	bucket = gfn_bucket(mmu, gfn);
	info->next = *bucket;
	*bucket = info;
	return info;
}

/* Item 1. */
static void gfn_info_put(struct shadow_mmu *mmu, struct gfn_info *info)
{
	struct gfn_info **pp;

	if (info->shadow_count || info->nr_rmap || info->frame_tracked)
		return;
	for (pp = gfn_bucket(mmu, info->gfn); *pp != info; pp = &(*pp)->next)
		BUG_ON(!*pp);
	*pp = info->next;
	free(info->rmap);
	free(info);
}

/* Item 2. */
void rmap_add(struct shadow_mmu *mmu, gfn_t gfn, struct shadow_page *sp, unsigned index)
{
	struct gfn_info *info = gfn_info_get(mmu, gfn);

	if (info->nr_rmap == info->rmap_cap) {
		u32 cap = info->rmap_cap ? 2 * info->rmap_cap : 4;
		struct rmap_ref *r = realloc(info->rmap, cap * sizeof(*r));

		BUG_ON(!r); /* LIMITATION: host malloc failure is fatal */
		info->rmap = r;
		info->rmap_cap = cap;
	}
	info->rmap[info->nr_rmap++] = (struct rmap_ref){ .sp = sp, .index = index };
	mmu->stats.rmap_live++;
}

/* Item 2. */
void rmap_remove(struct shadow_mmu *mmu, gfn_t gfn, struct shadow_page *sp, unsigned index)
{
	struct gfn_info *info = gfn_info_find(mmu, gfn);
	u32 i;

	BUG_ON(!info);
	for (i = 0; i < info->nr_rmap; i++) {
		if (info->rmap[i].sp == sp && info->rmap[i].index == index) {
			info->rmap[i] = info->rmap[--info->nr_rmap];
			mmu->stats.rmap_live--;
			gfn_info_put(mmu, info);
			return;
		}
	}
	BUG_ON(1); /* every present leaf spte is in the rmap of its gfn */
}

/* Item 3. */
bool gfn_is_shadowed(const struct shadow_mmu *mmu, gfn_t gfn)
{
	const struct gfn_info *info = gfn_info_find(mmu, gfn);

	return info && info->shadow_count;
}

bool gfn_is_exec_approved(const struct shadow_mmu *mmu, gfn_t gfn)
{
	const struct gfn_info *info = gfn_info_find(mmu, gfn);

	return info && info->exec_approved;
}

/* Item 3: take RW from every spte mapping the gfn (SPTE_GUEST_WRITABLE stays). */
static void write_protect(struct shadow_mmu *mmu, const struct gfn_info *info)
{
	for (u32 i = 0; i < info->nr_rmap; i++) {
		struct rmap_ref r = info->rmap[i];
		u64 spte = r.sp->spt[r.index];

		BUG_ON(r.sp->role.level != PG_LEVEL_4K); /* item 8 */
		if (spte & PTE_RW) {
			spte_store(mmu, r.sp, r.index, spte & ~PTE_RW);
			mmu->need_flush_all = true;
		}
	}
}

/* Item 4: give RW back where only write-protection took it (an upgrade: no flush). */
static void write_unprotect(struct shadow_mmu *mmu, const struct gfn_info *info)
{
	for (u32 i = 0; i < info->nr_rmap; i++) {
		struct rmap_ref r = info->rmap[i];
		u64 spte = r.sp->spt[r.index];

		BUG_ON(r.sp->role.level != PG_LEVEL_4K); /* item 8 */
		if ((spte & SPTE_GUEST_WRITABLE) && !(spte & PTE_RW))
			spte_store(mmu, r.sp, r.index, spte | PTE_RW);
	}
}

/* Item 8: does any gfn of the 2 MiB frame holding gfn have shadow_count > 0? */
bool frame_is_tracked(const struct shadow_mmu *mmu, gfn_t g)
{
	const struct gfn_info *info = gfn_info_find(mmu, gfn_frame(g));

	return info && info->frame_tracked;
}

/*
 * Item 8: a gfn of the frame becomes tracked. The first zaps the frame's
 * large sptes (the next faults map it 4 KiB at a time); the count is taken
 * first, so the frame's info outlives the rmap_removes of the zaps.
 */
static void frame_track(struct shadow_mmu *mmu, gfn_t g)
{
	struct gfn_info *info = gfn_info_get(mmu, gfn_frame(g));

	if (info->frame_tracked++)
		return;
	for (u32 i = info->nr_rmap; i-- > 0;) {
		struct rmap_ref r = info->rmap[i];

		if (r.sp->role.level == PG_LEVEL_4K)
			continue;
		spte_zap(mmu, r.sp, r.index); /* removes rmap[i]: the loop runs down */
		mmu->stats.large_zaps++;
	}
}

/* Item 8: a gfn of the frame is no longer tracked (`held`: its own info, put by the caller). */
static void frame_untrack(struct shadow_mmu *mmu, gfn_t g, const struct gfn_info *held)
{
	struct gfn_info *info = gfn_info_find(mmu, gfn_frame(g));

	BUG_ON(!info || !info->frame_tracked);
	if (--info->frame_tracked == 0 && info != held)
		gfn_info_put(mmu, info);
}

/* Item 3: one more indirect sp shadows gfn; the first write-protects it. */
void gfn_shadow_get(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct gfn_info *info = gfn_info_get(mmu, gfn);

	if (info->shadow_count++)
		return;
	mmu->stats.write_protects++;
	frame_track(mmu, gfn);
	write_protect(mmu, info);
}

/* Items 3 and 4: one sp fewer shadows gfn; the last lifts the write-protection. */
void gfn_shadow_put(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct gfn_info *info = gfn_info_find(mmu, gfn);

	BUG_ON(!info || !info->shadow_count);
	if (--info->shadow_count) {
		return;
	}
	if (info->unsync) {
		/* Its last table went: nothing is out of sync any more (item 7). */
		info->unsync = false;
		unsync_forget(mmu, gfn);
	} else {
		write_unprotect(mmu, info);
	}
	frame_untrack(mmu, gfn, info);
	gfn_info_put(mmu, info);
}

/*
 * Item 7. Write-protected: shadowed as a table (or exec-approved), and not
 * out of sync. make_leaf_spte asks this for every writable leaf.
 */
bool gfn_is_write_protected(const struct shadow_mmu *mmu, gfn_t gfn)
{
	const struct gfn_info *info = gfn_info_find(mmu, gfn);

	return info && info->shadow_count && !info->unsync;
}

/*
 * Item 7: may the gfn's tables go out of sync? Only a write-protected
 * guest table: not an exec-approved frame, whose writes the VMM must see
 * (it rescans the code). unsync.c checks the levels of its sps.
 */
bool gfn_may_unsync(const struct shadow_mmu *mmu, gfn_t gfn)
{
	const struct gfn_info *info = gfn_info_find(mmu, gfn);

	return info && info->shadow_count && !info->unsync && !info->exec_approved;
}

/* Item 7: lift (unsync) or put back the write-protection of a shadowed gfn. */
void gfn_set_unsync(struct shadow_mmu *mmu, gfn_t gfn, bool unsync)
{
	struct gfn_info *info = gfn_info_find(mmu, gfn);

	BUG_ON(!info || !info->shadow_count || info->unsync == unsync);
	info->unsync = unsync;
	if (unsync)
		write_unprotect(mmu, info);
	else
		write_protect(mmu, info);
}

/*
 * Item 5: set the leaf spte sp->spt[index] (level 1, or a 2 MiB leaf at
 * level 2: sp.h) to `spte` (present or 0), moving it between rmaps as its
 * gfn changes. Flags a TLB flush when a
 * translation loses rights or changes target; installing or widening one
 * needs none (the CPU does not cache not-present entries, and a stale
 * read-only entry only causes a spurious fault, SDM Vol. 3A §4.10.4.3).
 * LIMITATION: the flush is always SHADOW_FLUSH_ALL: an sp can be linked
 * from several places (shared guest tables), so the gvas an spte
 * translates are not known without a reverse walk up the parent links.
 */
void leaf_spte_set(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index, u64 spte)
{
	u64 old = sp->spt[index];
	const u64 kept = PTE_RW | PTE_US; /* rights that must not shrink without a flush */
	bool same_rmap;

	/* At level 2 only a 2 MiB leaf, replacing nothing or another one. */
	BUG_ON(sp->role.level != PG_LEVEL_4K &&
	       (sp->role.level != PG_LEVEL_2M || (spte_present(old) && !(old & PTE_PS)) ||
		(spte_present(spte) && !(spte & PTE_PS))));
	if (old == spte)
		return;
	/* A direct-MMIO spte is never in the rmap (sp.h, SPTE_MMIO_DIRECT). */
	same_rmap = spte_in_rmap(old) && spte_in_rmap(spte) &&
		    spte_to_gfn(old).v == spte_to_gfn(spte).v;
	if (spte_present(old)) {
		/* A change of caching bits (direct MMIO only) is flushed too. */
		if (!spte_present(spte) || spte_to_gfn(old).v != spte_to_gfn(spte).v ||
		    (old & kept & ~spte) || ((spte & PTE_NX) && !(old & PTE_NX)) ||
		    ((old ^ spte) & (PTE_PWT | PTE_PCD | PTE_PAT)))
			mmu->need_flush_all = true;
		if (spte_in_rmap(old) && !same_rmap)
			rmap_remove(mmu, spte_to_gfn(old), sp, index);
	}
	spte_store(mmu, sp, index, spte);
	if (spte_in_rmap(spte) && !same_rmap)
		rmap_add(mmu, spte_to_gfn(spte), sp, index);
	/* The gpte it came from may not be the snapshot's: the next sync recomputes it. */
	if (sp->unsync && spte)
		unsync_force(sp, index);
}

/*
 * Item 5: bring the leaf spte at `index` of indirect sp in line with its
 * gpte `gpte` (spte.c item 7: 0 where a fault is needed first). Returns 0
 * if it already was, 1 if it was updated, 2 if zapped.
 */
int leaf_spte_resync(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index, u64 gpte)
{
	u64 spte = leaf_spte_for_gpte(mmu, sp->role, gpte);

	if (spte == sp->spt[index])
		return 0;
	leaf_spte_set(mmu, sp, index, spte);
	return spte ? 1 : 2;
}

/*
 * Item 6 (mmu.h, execution gate): approve or revoke a gfn for kernel-view
 * execution. An approved gfn holds one shadow count, so it is write-tracked
 * by items 3 and 4 like a guest table; the gate's NX is exactly the sptes
 * with SPTE_EXEC_GATED (sp.h).
 */
void shadow_exec_approve(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct gfn_info *info;
	u32 i;

	if (gfn_is_exec_approved(mmu, gfn))
		return;
	/* Every write to approved code must trap: a table out of sync is synced and protected. */
	unsync_end(mmu, gfn);
	gfn_shadow_get(mmu, gfn);
	info = gfn_info_find(mmu, gfn);
	info->exec_approved = true;
	mmu->stats.exec_approves++;
	for (i = 0; i < info->nr_rmap; i++) {
		struct rmap_ref r = info->rmap[i];
		u64 spte = r.sp->spt[r.index];

		BUG_ON(r.sp->role.level != PG_LEVEL_4K); /* item 8 */
		if ((spte & SPTE_EXEC_GATED) && (spte & PTE_NX))
			spte_store(mmu, r.sp, r.index, spte & ~PTE_NX); /* an upgrade: no flush */
	}
	op_end(mmu);
}

bool shadow_exec_revoke(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct gfn_info *info = gfn_info_find(mmu, gfn);
	u32 i;

	if (!info || !info->exec_approved)
		return false;
	info->exec_approved = false;
	mmu->stats.exec_revokes++;
	for (i = 0; i < info->nr_rmap; i++) {
		struct rmap_ref r = info->rmap[i];
		u64 spte = r.sp->spt[r.index];

		if ((spte & SPTE_EXEC_GATED) && !(spte & PTE_NX)) {
			spte_store(mmu, r.sp, r.index, spte | PTE_NX);
			mmu->need_flush_all = true;
		}
	}
	gfn_shadow_put(mmu, gfn); /* may free info */
	op_end(mmu);
	return true;
}

bool shadow_exec_approved(const struct shadow_mmu *mmu, gfn_t gfn)
{
	return gfn_is_exec_approved(mmu, gfn);
}
