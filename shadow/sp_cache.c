/* SPDX-License-Identifier: MIT */
/*
 * The shadow page cache: sps by (gfn, role), their parent links, zapping.
 *
 * This file:
 *  1. a hash of the sps in use, bucketed by gfn alone, so that every role
 *     of one gfn is found in one bucket (pt_write.c needs all of them);
 *  2. find an sp by (gfn, role.word), or create it: a zeroed pool page,
 *     hashed, its gfn write-protected if it shadows a guest table, added to
 *     the root LRU if it is a root;
 *  3. link a child into a parent spte, recording the parent link;
 *  4. zap one spte: a leaf (4 KiB or 2 MiB) leaves the rmap, a non-leaf drops the child's
 *     parent link and frees the child when that was its last parent;
 *  5. zap an sp: clear every spte that points at it (its parent links),
 *     zap its own sptes (item 4, without storing into a page being freed),
 *     unhash it, release the write-protection of its gfn, free the page.
 *
 * Choice: an sp whose last parent link goes is freed at once (KVM keeps
 * such pages hashed for reuse). It keeps the pool small and the guest's
 * freed tables unprotected at once; the cost is a rebuild when the guest
 * relinks the same table (e.g. a PDPT moved between PML4 slots).
 *
 * Invariants: an sp in use is a root or has at least one parent; every
 * present non-leaf spte points at an sp in use and is one of its parent
 * links; monitor slots of a root are never zapped here.
 */
#include "shadow/internal.h"

#include <stdlib.h>

#include "umbra/log.h"

/* Item 1. */
int sp_cache_init(struct shadow_mmu *mmu)
{
	u64 buckets = 64;

	while (buckets < mmu->cfg.pool.nr_pages)
		buckets <<= 1;
	mmu->sp_hash = calloc(buckets, sizeof(*mmu->sp_hash));
	if (!mmu->sp_hash)
		return -1;
	mmu->sp_hash_mask = buckets - 1;
	return 0;
}

void sp_cache_fini(struct shadow_mmu *mmu)
{
	free(mmu->sp_hash);
}

/* Item 1: the first sp of the bucket that holds every sp of `gfn`. */
static struct shadow_page **bucket_of(struct shadow_mmu *mmu, gfn_t gfn)
{
	return &mmu->sp_hash[((gfn.v * 0x9e3779b97f4a7c15ull) >> 32) & mmu->sp_hash_mask];
}

/* Item 1: walk the chain with sp->hash_next and check sp->gfn yourself. */
struct shadow_page *sp_bucket(struct shadow_mmu *mmu, gfn_t gfn)
{
	return *bucket_of(mmu, gfn);
}

/* Item 2. */
struct shadow_page *sp_lookup(struct shadow_mmu *mmu, gfn_t gfn, union sp_role role)
{
	struct shadow_page *sp;

	for (sp = *bucket_of(mmu, gfn); sp; sp = sp->hash_next)
		if (sp->gfn.v == gfn.v && sp->role.word == role.word)
			return sp;
	return NULL;
}

/*
 * Item 2: the sp for (gfn, role), created if missing; never NULL. Creating
 * one may evict (pool.c), so the caller re-checks mmu->wipe_gen.
 */
struct shadow_page *sp_get(struct shadow_mmu *mmu, gfn_t gfn, union sp_role role, bool *created)
{
	struct shadow_page **bucket;
	struct shadow_page *sp = sp_lookup(mmu, gfn, role);

	*created = false;
	if (sp)
		return sp;
	/* An upper-level table of a frame out of sync: back in sync first (unsync.c item 3). */
	if (sp_role_shadows_gfn(role) && role.level != PG_LEVEL_4K)
		unsync_end(mmu, gfn);
	sp = pool_alloc(mmu);
	sp->gfn = gfn;
	sp->role = role;
	bucket = bucket_of(mmu, gfn);
	sp->hash_next = *bucket;
	*bucket = sp;
	if (sp_role_shadows_gfn(role)) {
		gfn_shadow_get(mmu, gfn); /* write-protects gfn in every root */
		unsync_new_sp(mmu, sp);	  /* ... unless it is out of sync: join it */
	}
	if (is_root_sp(sp)) {
		root_lru_add(mmu, sp);
		mmu->stats.roots_live++;
	}
	mmu->stats.sp_created++;
	mmu->stats.sp_live++;
	*created = true;
	return sp;
}

/* Item 3: make parent->spt[index] point at child. The spte must be empty. */
void sp_link(struct shadow_mmu *mmu, struct shadow_page *parent, unsigned index,
	     struct shadow_page *child)
{
	BUG_ON(spte_present(parent->spt[index]) || is_root_sp(child));
	if (child->nr_parents == child->parents_cap) {
		u32 cap = child->parents_cap ? 2 * child->parents_cap : 2;
		struct sp_parent *p = realloc(child->parents, cap * sizeof(*p));

		/* LIMITATION: host malloc failure here is fatal (BUG_ON). */
		BUG_ON(!p);
		child->parents = p;
		child->parents_cap = cap;
	}
	child->parents[child->nr_parents++] = (struct sp_parent){ .sp = parent, .index = index };
	spte_store(mmu, parent, index, child->mpa.v | SPTE_NONLEAF_BITS);
	/* A cached PDPTE sp may hold the registers of an earlier load of its CR3. */
	if (sp_role_is_pdpte(child->role))
		pdpte_sp_refresh(mmu, child);
}

/* Item 4: the sp a present non-leaf spte points at. */
struct shadow_page *spte_to_child(const struct shadow_mmu *mmu, u64 spte)
{
	struct shadow_page *child;

	BUG_ON(spte & PTE_PS); /* a 2 MiB leaf points at guest RAM, not at an sp */
	child = sp_from_mpa(mmu, spte_to_addr(spte));
	BUG_ON(!child->in_use);
	return child;
}

/* Item 4: forget that parent->spt[index] points at child. */
static void drop_parent(struct shadow_page *child, struct shadow_page *parent, unsigned index)
{
	u32 i;

	for (i = 0; i < child->nr_parents; i++) {
		if (child->parents[i].sp == parent && child->parents[i].index == index) {
			child->parents[i] = child->parents[--child->nr_parents];
			return;
		}
	}
	BUG_ON(1); /* a present non-leaf spte is always a parent link */
}

/*
 * Item 4: the spte at sp->spt[index] no longer maps anything. `store`:
 * write the 0 (false only when sp itself is being freed).
 */
static void unlink_spte(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index, bool store)
{
	u64 spte = sp->spt[index];

	if (!spte_present(spte))
		return;
	if (store) {
		spte_store(mmu, sp, index, 0);
		mmu->need_flush_all = true;
	}
	if (spte_is_leaf(sp->role.level, spte)) {
		if (spte_in_rmap(spte)) /* not a direct-MMIO leaf */
			rmap_remove(mmu, spte_to_gfn(spte), sp, index);
	} else {
		struct shadow_page *child = spte_to_child(mmu, spte);

		drop_parent(child, sp, index);
		if (!child->nr_parents)
			sp_zap(mmu, child); /* unreachable now */
	}
}

/* Item 4. Monitor slots are the VMM's: never here. */
void spte_zap(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index)
{
	BUG_ON(is_monitor_slot(mmu, sp, index));
	unlink_spte(mmu, sp, index, true);
}

/* Item 4, for every guest entry of sp (used on live roots by eviction). */
void sp_zap_children(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	unsigned i;

	for (i = 0; i < SPTE_PER_PAGE; i++)
		if (!is_monitor_slot(mmu, sp, i))
			unlink_spte(mmu, sp, i, true);
}

/* Item 5. */
void sp_zap(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	struct shadow_page **pp;
	unsigned i;

	BUG_ON(!sp->in_use);
	/* Unlink from every parent: the CPU can no longer reach this page. */
	while (sp->nr_parents) {
		struct sp_parent p = sp->parents[--sp->nr_parents];

		spte_store(mmu, p.sp, p.index, 0);
		mmu->need_flush_all = true;
	}
	if (is_root_sp(sp)) {
		unsigned v;

		root_lru_del(mmu, sp);
		mmu->stats.roots_live--;
		for (v = 0; v < SHADOW_NR_VIEWS; v++)
			if (mmu->cur_root[v] == sp)
				mmu->cur_root[v] = NULL;
		mmu->need_flush_all = true;
	}
	/* Our own sptes: the page is freed, so nothing is stored into it. */
	for (i = 0; i < SPTE_PER_PAGE; i++)
		if (!is_monitor_slot(mmu, sp, i))
			unlink_spte(mmu, sp, i, false);
	for (pp = bucket_of(mmu, sp->gfn); *pp != sp; pp = &(*pp)->hash_next)
		BUG_ON(!*pp);
	*pp = sp->hash_next;
	sp->hash_next = NULL;
	if (sp_role_shadows_gfn(sp->role))
		gfn_shadow_put(mmu, sp->gfn); /* may lift the write-protection */
	pool_free(mmu, sp);
	mmu->stats.sp_zapped++;
	mmu->stats.sp_live--;
}
