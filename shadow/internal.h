/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU's private state and the functions its files share
 * (internal to shadow/; the VMM includes shadow/mmu.h only).
 *
 * Files, one job each:
 *   mmu.c       create/destroy, mode changes
 *   pool.c      the page allocator over the pool, the root LRU, eviction
 *   sp_cache.c  the hash of sps by (gfn, role), parent links, zapping
 *   rmap.c      gfn -> leaf sptes, shadow counts, write-protection
 *   spte.c      gpte -> spte: the rules of the views, reserved bits, roles
 *   fault.c     shadow_fault
 *   pt_write.c  shadow_pt_write and write-flood detection
 *   prefetch.c  filling a fixed fault's neighbours
 *   unsync.c    leaf tables out of sync: their slots, snapshots and syncs
 *   root.c      roots, CR3, views, monitor slots, invalidation, translate
 *   stats.c     counters, and the end of every public operation
 *
 * Every store into a shadow table goes through spte_store() (the writer);
 * every public operation ends with op_end() (flush, then commit).
 */
#ifndef UMBRA_SHADOW_INTERNAL_H
#define UMBRA_SHADOW_INTERNAL_H

#include "shadow/mmu.h"
#include "shadow/sp.h"
#include "shadow/walk.h"

/* rmap.c: one leaf spte mapping a gfn. */
struct rmap_ref {
	struct shadow_page *sp;
	u32 index;
};

/* rmap.c: what we know about one gfn. Freed when its counts all reach 0. */
struct gfn_info {
	gfn_t gfn;
	struct gfn_info *next; /* hash chain */
	u32 shadow_count;      /* indirect sps shadowing this gfn (all roles) */
	bool exec_approved;    /* shadow_exec_approve (holds one shadow_count) */
	bool unsync;	       /* unsync.c: out of sync, so not write-protected */
	/*
	 * On the info of a 2 MiB frame's first gfn only: how many gfns of the
	 * frame have shadow_count > 0. While it is not 0 no large spte maps
	 * the frame (sp.h), so every write to a tracked gfn still traps.
	 */
	u32 frame_tracked;
	u32 nr_rmap, rmap_cap; /* leaf sptes mapping this gfn */
	struct rmap_ref *rmap;
};

struct shadow_mmu {
	struct shadow_config cfg;
	struct walk_ctl ctl; /* the guest's CR0/CR3/CR4/EFER as last told */

	/* pool.c */
	struct shadow_page *sps; /* one per pool page, by page index */
	/*
	 * Free pool pages, by index, in one array of nr_pages used from both
	 * ends: the clean ones (every entry 0) are a stack from index 0 up, the
	 * dirty ones (a zapped sp's entries left in place, pool.c item 3) a
	 * stack from the last index down. Together they never hold more than
	 * nr_pages, so the two never meet.
	 */
	u32 *free_stack;
	u64 nr_free_clean, nr_free_dirty;
	struct shadow_page *root_lru_head, *root_lru_tail;
	u32 wipe_gen;		       /* bumped when eviction had to clear a live root */
	struct shadow_page *busy_root; /* the live root being filled, wiped last */

	/* sp_cache.c */
	struct shadow_page **sp_hash;
	u64 sp_hash_mask;

	/* rmap.c */
	struct gfn_info **gfn_hash;
	u64 gfn_hash_mask;

	/* root.c */
	struct shadow_page *cur_root[SHADOW_NR_VIEWS]; /* NULL: resolve on next use */
	bool reserved[SPTE_PER_PAGE];
	u64 reserved_pml4e[SPTE_PER_PAGE];
	struct {
		bool on;
		gva_t gva; /* 2 MiB aligned */
		/* What a shadow table at level L holds there (2: the PT, 3: a PD leading to it). */
		u64 entry[PG_LEVEL_1G + 1];
	} window;

	/* pt_write.c */
	u32 pt_write_seq;

	/* unsync.c: cfg.unsync slots */
	struct unsync_slot *unsync;
	u64 unsync_clock;

	/* stats.c */
	bool need_flush_all; /* an spte lost rights or a table was unlinked */
	struct shadow_stats stats;
};

/*
 * unsync.c: one guest leaf table out of sync. `snap` holds the gptes its
 * sptes were last brought in line with, `force` the entries a fault or a
 * prefetch has filled since (from a gpte the snapshot may not hold).
 */
struct unsync_slot {
	bool used;
	gfn_t gfn;
	u64 age; /* when it went out of sync: the oldest slot is recycled first */
	u64 force[SPTE_PER_PAGE / 64];
	u64 snap[SPTE_PER_PAGE];
};

/* The one place a shadow table is written (HOST.md: the shadow writer). */
static inline void spte_store(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index,
			      u64 val)
{
	mmu->stats.stores++;
	mmu->cfg.writer.store(mmu->cfg.writer.opaque, mpa(sp->mpa.v + index * sizeof(u64)),
			      &sp->spt[index], val);
}

/* The guest table frame CR3 points at (4-level paging: the PML4's). */
static inline gfn_t cr3_table_gfn(const struct shadow_mmu *mmu)
{
	return gfn((mmu->ctl.cr3 & PTE_ADDR_MASK(mmu->ctl.maxphyaddr)) >> PAGE_SHIFT);
}

/* PAE paging: the 32-byte slot of CR3's PDPT in its page (union sp_role, pdpt). */
static inline unsigned cr3_pdpt_slot(const struct shadow_mmu *mmu)
{
	return (unsigned)(mmu->ctl.cr3 >> 5) & 0x7f;
}

static inline bool is_root_sp(const struct shadow_page *sp)
{
	return sp->role.level == PG_LEVEL_PML4;
}

/*
 * Is the entry at `index` of `sp` the VMM's, never the guest's: a reserved
 * PML4 slot of a root, or the call window linked into a shadow PD or PDPT?
 */
static inline bool is_monitor_slot(const struct shadow_mmu *mmu, const struct shadow_page *sp,
				   unsigned index)
{
	return (is_root_sp(sp) && mmu->reserved[index]) ||
	       (sp->window && index == gva_index(mmu->window.gva, sp->role.level));
}

/* The first gfn of the 2 MiB frame holding `g` (rmap.c item 8 keeps its counts there). */
static inline gfn_t gfn_frame(gfn_t g)
{
	return gfn(g.v & ~(u64)(SPTE_PER_PAGE - 1));
}

static inline bool gva_in_window(const struct shadow_mmu *mmu, gva_t gva)
{
	return mmu->window.on && (gva.v & ~(u64)(2 * MiB - 1)) == mmu->window.gva.v;
}

/*
 * sp_cache.c: every indirect sp shadowing guest table `gfn_` (one per role),
 * found in its hash bucket. The body may break, continue or goto.
 */
#define for_each_indirect_sp(mmu, gfn_, sp)                                        \
	for ((sp) = sp_bucket((mmu), (gfn_)); (sp); (sp) = (sp)->hash_next)        \
		if ((sp)->gfn.v != (gfn_).v || !sp_role_shadows_gfn((sp)->role)) { \
		} else

/* pool.c */
int pool_init(struct shadow_mmu *mmu) __must_check;
void pool_fini(struct shadow_mmu *mmu);
struct shadow_page *pool_alloc(struct shadow_mmu *mmu);
void pool_free(struct shadow_mmu *mmu, struct shadow_page *sp);
struct shadow_page *sp_from_mpa(const struct shadow_mmu *mmu, u64 addr);
void root_lru_add(struct shadow_mmu *mmu, struct shadow_page *sp);
void root_lru_del(struct shadow_mmu *mmu, struct shadow_page *sp);
void root_lru_touch(struct shadow_mmu *mmu, struct shadow_page *sp);

/* sp_cache.c */
int sp_cache_init(struct shadow_mmu *mmu) __must_check;
void sp_cache_fini(struct shadow_mmu *mmu);
struct shadow_page *sp_lookup(struct shadow_mmu *mmu, gfn_t gfn, union sp_role role);
struct shadow_page *sp_get(struct shadow_mmu *mmu, gfn_t gfn, union sp_role role, bool *created);
struct shadow_page *sp_bucket(struct shadow_mmu *mmu, gfn_t gfn);
void sp_link(struct shadow_mmu *mmu, struct shadow_page *parent, unsigned index,
	     struct shadow_page *child);
void sp_zap(struct shadow_mmu *mmu, struct shadow_page *sp);
void spte_zap(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index);
void sp_zap_children(struct shadow_mmu *mmu, struct shadow_page *sp);
struct shadow_page *spte_to_child(const struct shadow_mmu *mmu, u64 spte);

/* rmap.c */
int rmap_init(struct shadow_mmu *mmu) __must_check;
void rmap_fini(struct shadow_mmu *mmu);
void rmap_add(struct shadow_mmu *mmu, gfn_t gfn, struct shadow_page *sp, unsigned index);
void rmap_remove(struct shadow_mmu *mmu, gfn_t gfn, struct shadow_page *sp, unsigned index);
bool gfn_is_shadowed(const struct shadow_mmu *mmu, gfn_t gfn);
bool gfn_is_exec_approved(const struct shadow_mmu *mmu, gfn_t gfn);
bool gfn_is_write_protected(const struct shadow_mmu *mmu, gfn_t gfn);
bool frame_is_tracked(const struct shadow_mmu *mmu, gfn_t gfn);
bool gfn_may_unsync(const struct shadow_mmu *mmu, gfn_t gfn);
void gfn_set_unsync(struct shadow_mmu *mmu, gfn_t gfn, bool unsync);
void gfn_shadow_get(struct shadow_mmu *mmu, gfn_t gfn);
void gfn_shadow_put(struct shadow_mmu *mmu, gfn_t gfn);
void leaf_spte_set(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index, u64 spte);
int leaf_spte_resync(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index, u64 gpte);

/* spte.c */
u32 rights_to_acc(u64 rights);
u64 acc_to_rights(u32 acc);
u64 gpte_rights(u64 rights_above, u64 gpte);
union sp_role mode_role(const struct shadow_mmu *mmu, enum shadow_view view);
u64 gpte_rsvd_bits(const struct shadow_mmu *mmu, union sp_role role, unsigned level, u64 gpte);
const struct paging_mode *role_paging_mode(union sp_role role);
unsigned sp_gpte32_index(const struct shadow_page *sp, unsigned index);
bool sp_sptes_of_bytes(const struct shadow_page *sp, unsigned lo, unsigned hi, unsigned *first,
		       unsigned *last);
bool gfn_is_ram(const struct shadow_mmu *mmu, gfn_t gfn);
u64 make_leaf_spte(const struct shadow_mmu *mmu, union sp_role role, u64 rights, bool dirty,
		   gfn_t gfn);
bool gfn_is_mmio_direct(const struct shadow_mmu *mmu, gfn_t gfn);
u64 make_mmio_leaf_spte(const struct shadow_mmu *mmu, union sp_role role, u64 rights, bool dirty,
			gfn_t gfn, unsigned level, u64 gpte);
bool child_for_gpte(const struct shadow_mmu *mmu, union sp_role parent_role, gfn_t parent_gfn,
		    unsigned index, u64 gpte, gfn_t *child_gfn, union sp_role *child_role);
u64 sp_read_gpte(const struct shadow_mmu *mmu, const struct shadow_page *sp, unsigned index);
u64 leaf_spte_for_gpte(const struct shadow_mmu *mmu, union sp_role role, u64 gpte);

/* prefetch.c */
void prefetch_around(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index);
void prefetch_other_view(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index);

/* unsync.c */
int unsync_init(struct shadow_mmu *mmu) __must_check;
void unsync_fini(struct shadow_mmu *mmu);
bool unsync_try(struct shadow_mmu *mmu, gfn_t gfn);
void unsync_new_sp(struct shadow_mmu *mmu, struct shadow_page *sp);
void unsync_end(struct shadow_mmu *mmu, gfn_t gfn);
void unsync_forget(struct shadow_mmu *mmu, gfn_t gfn);
void unsync_sync_all(struct shadow_mmu *mmu);
void unsync_sync_gva(struct shadow_mmu *mmu, gva_t gva);
void unsync_force(struct shadow_page *sp, unsigned index);

/* root.c */
struct shadow_page *root_get(struct shadow_mmu *mmu, enum shadow_view view);
bool root_is_live(const struct shadow_mmu *mmu, const struct shadow_page *sp);
void pdpte_sp_refresh(struct shadow_mmu *mmu, struct shadow_page *sp);

/* stats.c */
void op_end(struct shadow_mmu *mmu);

#endif /* UMBRA_SHADOW_INTERNAL_H */
