/* SPDX-License-Identifier: MIT */
/*
 * Roots: the root cache, CR3 and view switches, monitor slots, guest TLB
 * invalidation, and translation through a root for the oracle.
 *
 * This file:
 *  1. the root cache: a root is the level-4 sp for (CR3 table gfn, role);
 *     the role holds the view and the mode bits, so the cache is keyed by
 *     (CR3 address bits, view, role) and is simply the sp hash (sp_cache.c)
 *     plus the root LRU (pool.c). With paging off the root is the direct
 *     sp of gfn 0 (the identity map). A root is created with the monitor's
 *     entries copied into its reserved slots;
 *  1b. prefill: a new root's entries whose child sp exists already;
 *  1c. PAE paging: the level-3 sp follows the PDPTE registers;
 *  2. "live" roots: the current root of each view. Eviction never frees a
 *     live root page (pool.c);
 *  3. shadow_set_cr3 / shadow_switch_view: look the root up (hit) or build
 *     it (miss), after syncing the out-of-sync tables. PCID: the shadow
 *     is otherwise in sync with every guest table, so a CR3 write never
 *     needs the shadow flushed or rebuilt, whatever the PCID or the
 *     no-flush bit say; the cache is keyed on the table address alone,
 *     and the VMM flushes the real TLB as mmu.h says;
 *  4. shadow_reserve_pml4: monitor slots in every root, present and future;
 *     shadow_set_window: the call window (linked by fault.c item 2b), and
 *     shadow_clear_window, which gives it back;
 *  5. invlpg / invpcid / flush: sync the out-of-sync tables (unsync.c;
 *     the others are never stale), then ask the flusher for the real TLB
 *     flush the guest asked for. Global pages: G is never set in an spte
 *     (sp.h): the VMM switches
 *     roots per view and per CR3, and a global real-TLB entry would survive
 *     those switches and leak one root's translation into another; so
 *     a "flush everything" and a "flush non-global" are the same flush;
 *  6. shadow_translate: walk a root as the CPU would at CPL3.
 */
#include "shadow/internal.h"

#include <errno.h>
#include <string.h>

#include "umbra/log.h"

/* Item 2. */
bool root_is_live(const struct shadow_mmu *mmu, const struct shadow_page *sp)
{
	return sp == mmu->cur_root[SHADOW_VIEW_KERNEL] || sp == mmu->cur_root[SHADOW_VIEW_USER];
}

/*
 * Item 1b. Every Linux process's PML4 holds the same kernel half (copied
 * from init_mm's), so a new address space's kernel-view root would fault
 * once per kernel slot it uses (text, stack, per-CPU data, the direct map,
 * vmemmap) right after its first CR3 load, each fault linking an sp that
 * already exists. Those links are made here instead, as fetch_path would
 * make them: the child is found from the gpte now (child_for_gpte, which
 * wants A = 1, so the guest sees no difference: a fault's walk would set
 * nothing), and only an sp in use is linked, which is in sync with its
 * table like any other (upper-level sps never go out of sync). Nothing is
 * allocated, so nothing is evicted. The monitor's slots and present entries
 * are left as they are; item 1c prefills a PAE level-3 sp's entries too.
 * Cost: one store per linked slot, against a trap per slot used.
 */
static void prefill_entry(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned i)
{
	struct shadow_page *child;
	union sp_role role;
	gfn_t g;

	if (is_monitor_slot(mmu, sp, i) || spte_present(sp->spt[i]) ||
	    !child_for_gpte(mmu, sp->role, sp->gfn, i, sp_read_gpte(mmu, sp, i), &g, &role))
		return;
	child = sp_lookup(mmu, g, role);
	if (!child)
		return;
	sp_link(mmu, sp, i, child);
	mmu->stats.root_prefills++;
}

/*
 * Item 1c. A PAE guest's level-3 sp (union sp_role) holds links to the PDs
 * its CR3's PDPTE registers named when it was last refreshed; the registers
 * of this load may name others (the guest rewrote its PDPT and reloaded
 * CR3). A link the registers no longer make goes; one they make whose PD
 * sp exists is made now (item 1b; sp_read_gpte reads the registers here).
 * Called for the current CR3's sp only: when a root of it is taken
 * (root_get) and when one links it (sp_link).
 */
void pdpte_sp_refresh(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	BUG_ON(!sp_role_is_pdpte(sp->role) || sp->gfn.v != cr3_table_gfn(mmu).v ||
	       sp->role.pdpt != cr3_pdpt_slot(mmu));
	for (unsigned i = 0; i < 4; i++) {
		struct shadow_page *child;
		union sp_role role;
		gfn_t g;

		if (spte_present(sp->spt[i])) {
			child = spte_to_child(mmu, sp->spt[i]);
			if (!child_for_gpte(mmu, sp->role, sp->gfn, i, sp_read_gpte(mmu, sp, i), &g,
					    &role) ||
			    child->gfn.v != g.v || child->role.word != role.word)
				spte_zap(mmu, sp, i);
		}
		prefill_entry(mmu, sp, i);
	}
}

/* Item 1: the root for the current CR3 and mode in `view`; never NULL. */
struct shadow_page *root_get(struct shadow_mmu *mmu, enum shadow_view view)
{
	union sp_role role = mode_role(mmu, view);
	struct shadow_page *root = mmu->cur_root[view];
	gfn_t root_gfn = gfn(0);
	bool created;
	unsigned i;

	if (root)
		return root;
	role.level = PG_LEVEL_PML4;
	role.access = SP_ACC_ALL;
	if (mmu->ctl.cr0 & CR0_PG) {
		root_gfn = cr3_table_gfn(mmu);
		if (role.pae) /* one root per PDPT, and a page may hold several */
			role.pdpt = cr3_pdpt_slot(mmu);
	} else
		role.direct = 1; /* paging off: gva == gpa, mapped like one huge page */
	root = sp_get(mmu, root_gfn, role, &created);
	if (created) {
		mmu->stats.root_misses++;
		for (i = 0; i < SPTE_PER_PAGE; i++)
			if (mmu->reserved[i])
				spte_store(mmu, root, i, mmu->reserved_pml4e[i]);
		for (i = 0; i < SPTE_PER_PAGE && !role.direct; i++)
			prefill_entry(mmu, root, i);
	} else {
		mmu->stats.root_hits++;
	}
	if (role.pae && spte_present(root->spt[0]))
		pdpte_sp_refresh(mmu, spte_to_child(mmu, root->spt[0]));
	root_lru_touch(mmu, root);
	mmu->cur_root[view] = root;
	return root;
}

/* Item 3. */
mpa_t shadow_set_cr3(struct shadow_mmu *mmu, u64 cr3, enum shadow_view view)
{
	struct shadow_page *root;

	BUG_ON(view >= SHADOW_NR_VIEWS);
	unsync_sync_all(mmu);
	mmu->ctl.cr3 = cr3;
	mmu->cur_root[SHADOW_VIEW_KERNEL] = mmu->cur_root[SHADOW_VIEW_USER] = NULL;
	root = root_get(mmu, view);
	op_end(mmu);
	return root->mpa;
}

/* Item 3. */
void shadow_set_pdptes(struct shadow_mmu *mmu, const u64 pdpte[4])
{
	if (!memcmp(mmu->ctl.pdpte, pdpte, sizeof(mmu->ctl.pdpte)))
		return;
	memcpy(mmu->ctl.pdpte, pdpte, sizeof(mmu->ctl.pdpte));
	/* The next root_get refreshes the level-3 sp (item 1c). */
	mmu->cur_root[SHADOW_VIEW_KERNEL] = mmu->cur_root[SHADOW_VIEW_USER] = NULL;
}

/* Item 3. */
mpa_t shadow_switch_view(struct shadow_mmu *mmu, enum shadow_view view)
{
	struct shadow_page *root;

	BUG_ON(view >= SHADOW_NR_VIEWS);
	if (mmu->cur_root[view]) {
		mmu->stats.root_hits++;
		root_lru_touch(mmu, mmu->cur_root[view]);
	}
	root = root_get(mmu, view);
	op_end(mmu);
	return root->mpa;
}

/* Item 4. */
int shadow_reserve_pml4(struct shadow_mmu *mmu, unsigned index, u64 pml4e)
{
	struct shadow_page *root;

	if (index >= SPTE_PER_PAGE || mmu->reserved[index])
		return -EINVAL;
	/* A guest mapping already shadowed there goes first. */
	for (root = mmu->root_lru_head; root; root = root->lru_next)
		if (spte_present(root->spt[index]))
			spte_zap(mmu, root, index);
	mmu->reserved[index] = true;
	mmu->reserved_pml4e[index] = pml4e;
	for (root = mmu->root_lru_head; root; root = root->lru_next)
		spte_store(mmu, root, index, pml4e);
	op_end(mmu);
	return 0;
}

/* Item 4. */
int shadow_set_window(struct shadow_mmu *mmu, gva_t gva, u64 pde, u64 pdpte)
{
	if (mmu->window.on || (gva.v & (2 * MiB - 1)))
		return -EINVAL;
	mmu->window.gva = gva;
	mmu->window.entry[PG_LEVEL_2M] = pde;
	mmu->window.entry[PG_LEVEL_1G] = pdpte;
	mmu->window.on = true;
	return 0;
}

/* Item 4: every link of the window goes; the guest has the address space back. */
void shadow_clear_window(struct shadow_mmu *mmu)
{
	if (!mmu->window.on)
		return;
	for (u64 i = 0; i < mmu->cfg.pool.nr_pages; i++) {
		struct shadow_page *sp = &mmu->sps[i];

		if (!sp->in_use || !sp->window)
			continue;
		spte_store(mmu, sp, gva_index(mmu->window.gva, sp->role.level), 0);
		sp->window = false;
		mmu->need_flush_all = true;
	}
	mmu->window.on = false;
	op_end(mmu);
}

/* Item 5. */
void shadow_invlpg(struct shadow_mmu *mmu, gva_t gva)
{
	mmu->stats.flushes++;
	unsync_sync_gva(mmu, gva);
	if (mmu->cfg.flusher.flush)
		mmu->cfg.flusher.flush(mmu->cfg.flusher.opaque, SHADOW_FLUSH_GVA, gva);
	op_end(mmu);
}

/*
 * Item 5. INVPCID (SDM Vol. 2A): type 0 one address of one PCID, 1 one
 * PCID, 2 everything including globals, 3 everything but globals. Only a
 * type-0 flush of the current PCID can be narrowed to one gva: the flusher's
 * SHADOW_FLUSH_GVA acts in the current root.
 */
void shadow_invpcid(struct shadow_mmu *mmu, unsigned type, u16 pcid, gva_t gva)
{
	u16 cur_pcid = (mmu->ctl.cr4 & CR4_PCIDE) ? (mmu->ctl.cr3 & CR3_PCID_MASK) : 0;

	mmu->stats.flushes++;
	if (type == 0)
		unsync_sync_gva(mmu, gva);
	else
		unsync_sync_all(mmu);
	if (type == 0 && pcid == cur_pcid && mmu->cfg.flusher.flush)
		mmu->cfg.flusher.flush(mmu->cfg.flusher.opaque, SHADOW_FLUSH_GVA, gva);
	else
		mmu->need_flush_all = true;
	op_end(mmu);
}

/* Item 5: both scopes are one real flush, since no spte is global. */
void shadow_flush(struct shadow_mmu *mmu, enum shadow_flush_scope scope)
{
	(void)scope;
	mmu->stats.flushes++;
	unsync_sync_all(mmu);
	mmu->need_flush_all = true;
	op_end(mmu);
}

/*
 * Item 6. Monitor slots and the call window are not the guest's and are
 * not walked (their tables are the VMM's, outside the pool): false there.
 */
bool shadow_translate(const struct shadow_mmu *mmu, enum shadow_view view, gva_t gva, mpa_t *out,
		      u64 *rights)
{
	const struct shadow_page *root = view < SHADOW_NR_VIEWS ? mmu->cur_root[view] : NULL;
	u64 acc = PTE_RW | PTE_US;
	struct shadow_iter it;

	if (!root || mmu->reserved[gva_index(gva, PG_LEVEL_PML4)])
		return false;
	for_each_shadow_entry(root, gva, it)
	{
		u64 spte = *it.sptep;

		if (!spte_present(spte) || is_monitor_slot(mmu, it.sp, gva_index(gva, it.level)))
			return false;
		acc = gpte_rights(acc, spte); /* the CPU ANDs RW/US and ORs NX too */
		if (spte_is_leaf(it.level, spte)) {
			u64 size = it.level == PG_LEVEL_4K ? PAGE_SIZE : 2 * MiB;

			*out = mpa(spte_to_addr(spte) | (gva.v & (size - 1)));
			*rights = acc;
			return true;
		}
		it.sp = sp_from_mpa(mmu, spte_to_addr(spte));
	}
	return false;
}
