/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU context: creation, destruction, mode changes.
 *
 * This file:
 *  1. shadow_create: check the configuration, set up the pool (pool.c), the
 *     sp hash (sp_cache.c) and the gfn hash (rmap.c); the guest starts in
 *     4-level paging with CR0.WP and EFER.NXE (mmu.h);
 *  2. shadow_destroy: free the bookkeeping (the pool memory is the VMM's);
 *  3. shadow_set_mode: record CR0/CR4/EFER, syncing out-of-sync tables
 *     (unsync.c) at a change that flushes; when a bit that is part of a
 *     role changes (or paging goes on or off), the current roots stop being
 *     current: the next shadow_switch_view / shadow_set_cr3 / shadow_fault
 *     picks the roots of the new mode (cached ones are reused).
 */
#include "shadow/internal.h"

#include <stdlib.h>

#include "umbra/log.h"

/*
 * Item 1: direct-MMIO ranges (mmu.h) are page-aligned, non-empty, below
 * MAXPHYADDR, and not RAM. Only the first and last page are checked against
 * RAM (bounded work whatever the size): ranges are device windows, and
 * guest RAM in the VMM never has a hole only partly covered by one.
 */
static bool mmio_ranges_ok(const struct shadow_config *cfg)
{
	if (cfg->nr_mmio_direct > SHADOW_MAX_MMIO_DIRECT)
		return false;
	for (unsigned i = 0; i < cfg->nr_mmio_direct; i++) {
		const struct shadow_mmio_range *r = &cfg->mmio_direct[i];
		u64 last = r->base.v + r->size - PAGE_SIZE;

		if (!r->size || ((r->base.v | r->size) & (PAGE_SIZE - 1)) ||
		    r->base.v + r->size < r->base.v ||
		    (cfg->maxphyaddr < 64 && r->base.v + r->size > (1ull << cfg->maxphyaddr)) ||
		    cfg->mem.gpa_to_hva(cfg->mem.opaque, r->base, PAGE_SIZE) ||
		    cfg->mem.gpa_to_hva(cfg->mem.opaque, gpa(last), PAGE_SIZE))
			return false;
	}
	return true;
}

/* Item 1. */
struct shadow_mmu *shadow_create(const struct shadow_config *cfg)
{
	struct shadow_mmu *mmu;

	if (!cfg || !cfg->mem.gpa_to_hva || !cfg->writer.store || !cfg->pool.hva ||
	    cfg->pool.nr_pages < 8 || cfg->pool.nr_pages > UINT32_MAX ||
	    (cfg->pool.base.v & (PAGE_SIZE - 1)) || ((uintptr_t)cfg->pool.hva & (PAGE_SIZE - 1)) ||
	    cfg->maxphyaddr <= PAGE_SHIFT || cfg->maxphyaddr > X86_MAXPHYADDR_MAX ||
	    !mmio_ranges_ok(cfg) || cfg->prefetch > SPTE_PER_PAGE ||
	    (cfg->prefetch & (cfg->prefetch - 1)) || cfg->unsync > SHADOW_MAX_UNSYNC)
		return NULL;
	mmu = calloc(1, sizeof(*mmu));
	if (!mmu)
		return NULL;
	mmu->cfg = *cfg;
	mmu->ctl = (struct walk_ctl){
		.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
		.cr4 = CR4_PAE,
		.efer = EFER_LME | EFER_LMA | EFER_NXE,
		.maxphyaddr = cfg->maxphyaddr,
	};
	if (pool_init(mmu) || sp_cache_init(mmu) || rmap_init(mmu) || unsync_init(mmu)) {
		shadow_destroy(mmu);
		return NULL;
	}
	return mmu;
}

/* Item 2. */
void shadow_destroy(struct shadow_mmu *mmu)
{
	if (!mmu)
		return;
	unsync_fini(mmu);
	rmap_fini(mmu);
	sp_cache_fini(mmu);
	pool_fini(mmu);
	free(mmu);
}

/* Item 3: does `view` run on the same root under `old` as under the current mode? */
static bool same_root(const struct shadow_mmu *mmu, const struct walk_ctl *old,
		      enum shadow_view view)
{
	struct shadow_mmu before = { .ctl = *old };

	return paging_mode_select(old) == paging_mode_select(&mmu->ctl) &&
	       (old->cr0 & CR0_PG) == (mmu->ctl.cr0 & CR0_PG) &&
	       mode_role(&before, view).word == mode_role(mmu, view).word;
}

/* Item 3. */
void shadow_set_mode(struct shadow_mmu *mmu, u64 cr0, u64 cr4, u64 efer)
{
	struct walk_ctl old = mmu->ctl;
	unsigned v;

	mmu->ctl.cr0 = cr0;
	mmu->ctl.cr4 = cr4;
	mmu->ctl.efer = efer;
	/* Changes that flush the TLB (SDM Vol. 3A §4.10.4.1): not the VMM's SMAP switch. */
	if (((old.cr0 ^ cr0) & CR0_PG) ||
	    ((old.cr4 ^ cr4) & (CR4_PAE | CR4_PSE | CR4_PGE | CR4_PCIDE)))
		unsync_sync_all(mmu);
	for (v = 0; v < SHADOW_NR_VIEWS; v++)
		if (!same_root(mmu, &old, v))
			mmu->cur_root[v] = NULL;
	op_end(mmu);
}
