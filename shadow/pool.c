/* SPDX-License-Identifier: MIT */
/*
 * The shadow pool: every shadow table page comes from here.
 *
 * This file:
 *  1. set up one struct shadow_page per pool page (its hva and mpa) and a
 *     free list holding them all;
 *  2. allocate a page: a clean one (all entries 0) if there is one, else a
 *     dirty one, zeroed through the shadow writer (evicting when none is
 *     free);
 *  3. free a page back to the free list, as clean or dirty;
 *  4. keep the roots in LRU order (most recently used first);
 *  5. evict when the pool is empty, never failing:
 *     a. zap the least recently used root that is not live (not the
 *        current root of a view) with its whole tree; sps that another
 *        root still links survive, since a child is freed only when its
 *        last parent goes (sp_cache.c);
 *     b. if every page belongs to live roots, zap all sptes of the live
 *        root not being filled, then those of the one being filled (the
 *        root pages themselves stay), and ask for SHADOW_FLUSH_ALL. The fault
 *        path notices (wipe_gen) and starts again from its root.
 *  6. map an mpa found in an spte back to its shadow page.
 *
 * Since an sp that loses its last parent is freed at once (sp_cache.c),
 * there are no unreferenced sps to reclaim between steps a and b: every sp
 * in use is reachable from some root.
 *
 * LIMITATION: eviction works on whole roots (a per-sp LRU could keep the
 * hot part of a big address space); a guest whose two live roots alone
 * outgrow the pool is refilled from scratch each time the pool runs dry.
 * Why clean pages first: a zapped sp's entries are left in its page (no
 * store into a page being freed, sp_cache.c), and where the vCPU replays
 * shadow stores (PVM, shared/HOST.md: ~6-8 us each) zeroing a reused page
 * costs one store per entry left; KVM shadows the page as a table, so the
 * VMM cannot clear it behind the vCPU's back. A page that was never used,
 * or was emptied before it was freed, costs none. A pool given zeroed
 * (shadow_pool.zeroed, the VMM's) starts clean, so a run that creates fewer
 * sps than the pool has pages never clears one (`pool_clears` in --stats
 * counts the stores it did take). Otherwise every page starts dirty. Which
 * list a page is on only decides the order: pool_alloc zeroes whatever is
 * not 0 in any page it hands out.
 * LIMITATION: once the clean pages are used up, every allocation reuses a
 * dirty page and pays for its entries; nothing cleans pages in the
 * background (an idle vCPU could).
 */
#include "shadow/internal.h"

#include <stdlib.h>

#include "umbra/log.h"

/* Item 1. */
int pool_init(struct shadow_mmu *mmu)
{
	const struct shadow_pool *pool = &mmu->cfg.pool;
	u64 i;

	mmu->sps = calloc(pool->nr_pages, sizeof(*mmu->sps));
	mmu->free_stack = calloc(pool->nr_pages, sizeof(*mmu->free_stack));
	if (!mmu->sps || !mmu->free_stack)
		return -1;
	for (i = 0; i < pool->nr_pages; i++) {
		struct shadow_page *sp = &mmu->sps[i];

		sp->spt = (u64 *)((u8 *)pool->hva + i * PAGE_SIZE);
		sp->mpa = mpa(pool->base.v + i * PAGE_SIZE);
		/* Pop order, either stack: page 0 first. */
		mmu->free_stack[pool->zeroed ? pool->nr_pages - 1 - i : i] = (u32)i;
	}
	mmu->nr_free_clean = pool->zeroed ? pool->nr_pages : 0;
	mmu->nr_free_dirty = pool->zeroed ? 0 : pool->nr_pages;
	return 0;
}

void pool_fini(struct shadow_mmu *mmu)
{
	u64 i;

	if (mmu->sps)
		for (i = 0; i < mmu->cfg.pool.nr_pages; i++)
			free(mmu->sps[i].parents);
	free(mmu->sps);
	free(mmu->free_stack);
}

/* Item 6: the sp whose page is at mpa `addr` (from an spte). */
struct shadow_page *sp_from_mpa(const struct shadow_mmu *mmu, u64 addr)
{
	u64 index = (addr - mmu->cfg.pool.base.v) >> PAGE_SHIFT;

	BUG_ON(addr < mmu->cfg.pool.base.v || index >= mmu->cfg.pool.nr_pages);
	return &mmu->sps[index];
}

/* Items 2 and 3: free pages, clean and dirty. */
static u64 nr_free(const struct shadow_mmu *mmu)
{
	return mmu->nr_free_clean + mmu->nr_free_dirty;
}

/* Item 4. */
void root_lru_add(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	sp->lru_prev = NULL;
	sp->lru_next = mmu->root_lru_head;
	if (mmu->root_lru_head)
		mmu->root_lru_head->lru_prev = sp;
	else
		mmu->root_lru_tail = sp;
	mmu->root_lru_head = sp;
}

/* Item 4. */
void root_lru_del(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	if (sp->lru_prev)
		sp->lru_prev->lru_next = sp->lru_next;
	else
		mmu->root_lru_head = sp->lru_next;
	if (sp->lru_next)
		sp->lru_next->lru_prev = sp->lru_prev;
	else
		mmu->root_lru_tail = sp->lru_prev;
	sp->lru_prev = sp->lru_next = NULL;
}

/* Item 4. */
void root_lru_touch(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	if (mmu->root_lru_head == sp)
		return;
	root_lru_del(mmu, sp);
	root_lru_add(mmu, sp);
}

/* Item 5b: clear every spte of a live root (its children go with them). */
static void wipe_live_root(struct shadow_mmu *mmu, struct shadow_page *root)
{
	sp_zap_children(mmu, root);
	mmu->wipe_gen++;
	mmu->need_flush_all = true;
}

/* Item 5. `busy` is the live root the caller is filling, or NULL. */
static void evict(struct shadow_mmu *mmu, struct shadow_page *busy)
{
	struct shadow_page *sp;
	unsigned v;

	/* a. The least recently used root nobody runs on. */
	for (sp = mmu->root_lru_tail; sp; sp = sp->lru_prev) {
		if (!root_is_live(mmu, sp)) {
			sp_zap(mmu, sp);
			return;
		}
	}
	/* b. Only live roots are left: their children go, the other one first. */
	for (v = 0; v < SHADOW_NR_VIEWS && !nr_free(mmu); v++)
		if (mmu->cur_root[v] && mmu->cur_root[v] != busy)
			wipe_live_root(mmu, mmu->cur_root[v]);
	if (!nr_free(mmu) && busy)
		wipe_live_root(mmu, busy);
}

/*
 * Item 2: a zeroed page, never NULL. May evict (item 5), which can clear
 * the live roots (mmu->busy_root, the one being filled, last): callers
 * holding pointers into a live root's tree compare mmu->wipe_gen before
 * and after.
 *
 * Only the entries that are not already 0 are stored, through the writer
 * like every store: the hva copy is what the writer last stored (mmu.h), so
 * the page ends up all zero in every copy the host keeps.
 */
struct shadow_page *pool_alloc(struct shadow_mmu *mmu)
{
	struct shadow_page *sp;
	unsigned i;

	if (!nr_free(mmu)) {
		u64 freed_before = mmu->stats.sp_zapped;

		evict(mmu, mmu->busy_root);
		mmu->stats.evictions += mmu->stats.sp_zapped - freed_before;
		BUG_ON(!nr_free(mmu)); /* a pool of >= 8 pages always has a non-root page */
	}
	if (mmu->nr_free_clean)
		sp = &mmu->sps[mmu->free_stack[--mmu->nr_free_clean]];
	else
		sp = &mmu->sps[mmu->free_stack[mmu->cfg.pool.nr_pages - mmu->nr_free_dirty--]];
	BUG_ON(sp->in_use);
	for (i = 0; i < SPTE_PER_PAGE; i++)
		if (sp->spt[i]) {
			spte_store(mmu, sp, i, 0);
			mmu->stats.pool_clears++;
		}
	sp->in_use = true;
	sp->nr_parents = 0;
	sp->write_flood_count = 0;
	sp->pt_write_stamp = 0;
	sp->window = false;
	sp->unsync = NULL;
	sp->hash_next = sp->lru_prev = sp->lru_next = NULL;
	return sp;
}

/* Item 3: the page is unreachable (no parent, not a root any more). */
void pool_free(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	u32 index = (u32)(sp - mmu->sps);
	bool dirty = false;

	BUG_ON(!sp->in_use || sp->nr_parents);
	sp->in_use = false;
	for (unsigned i = 0; i < SPTE_PER_PAGE && !dirty; i++)
		dirty = sp->spt[i] != 0;
	if (dirty)
		mmu->free_stack[mmu->cfg.pool.nr_pages - ++mmu->nr_free_dirty] = index;
	else
		mmu->free_stack[mmu->nr_free_clean++] = index;
}
