/* SPDX-License-Identifier: MIT */
/*
 * Guest writes to shadowed guest tables (shadow_pt_write, mmu.h).
 *
 * A guest table that is shadowed is write-protected in every root, so each
 * guest write to it traps; the VMM emulates the write and tells us here.
 * This is what keeps the shadow in sync without any resync on CR3 loads.
 *
 * This file:
 *  1. split the write into the pages it touches (1..8 bytes, or 16 for
 *     cmpxchg16b, possibly unaligned or across a page), and each sp's part
 *     into the sptes whose gptes it touches (sp_sptes_of_bytes: 8-byte gptes, or
 *     a 32-bit table's 4-byte ones, where an sp holds one quadrant);
 *  2. find every sp that shadows the written gfn, in every role (one hash
 *     bucket, sp_cache.c item 1);
 *  3a. a table no root of the current address space reaches is unshadowed
 *     at its first write (unshadows_inactive): the guest is tearing down an
 *     address space it left (exec's old mm, freed after the switch to the
 *     new one), or reusing a freed table's page for something else (a new
 *     table, data). Linux hardly ever writes a sleeping process's tables
 *     (reclaim, ptrace), so a rebuild on demand when one runs again is the
 *     rare cost; the common one saved is a trap per write until item 3
 *     would see the flood. Every root of the current CR3 counts, in both
 *     views and any mode, instantiated or not: a table the process's user
 *     view alone shadows is its own, and the kernel writes it on its
 *     behalf (a new PT linked into its PD);
 *  3. write-flood detection: count writes per sp since a fault last walked
 *     through it (fault.c resets the count); at WRITE_FLOOD_THRESHOLD the sp
 *     is unshadowed (zapped): the guest is using the page as something else
 *     (a freed table reused as data, or a table it fills without using).
 *     Zapping its last sp lifts the write-protection of the gfn (rmap.c);
 *     the next access rebuilds whatever is still a table;
 *  4. for each written gpte, bring the spte in line with the new gpte:
 *     - leaf level: recompute the spte exactly as a fault would (spte.c),
 *       also when the gpte becomes present with A = 1 (a prefault, saving
 *       the demand fault); otherwise zap it;
 *     - upper levels: keep the link if the new gpte still leads to the
 *       same child (only A/D or ignored bits changed), else zap the link
 *       and its subtree (always correct; the next fault rebuilds). A 2 MiB
 *       leaf (sp.h) is zapped.
 *     The monitor's slots of a root are never touched.
 */
#include "shadow/internal.h"

#include <string.h>

#include "umbra/log.h"

/* Item 3: writes without an intervening fault after which an sp is unshadowed. */
#define WRITE_FLOOD_THRESHOLD 3

/* Item 4. */
static void update_spte(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index)
{
	u64 gpte = sp_read_gpte(mmu, sp, index);
	u64 spte = sp->spt[index];
	struct shadow_page *child;
	union sp_role child_role;
	gfn_t child_gfn;

	/*
	 * The guest maps something where the call window is linked: unlink it,
	 * so that the next access there faults and is refused (fault.c item 2b).
	 */
	if (sp->window && index == gva_index(mmu->window.gva, sp->role.level)) {
		if (gpte & PTE_P) {
			spte_store(mmu, sp, index, 0);
			sp->window = false;
			mmu->need_flush_all = true;
		}
		return;
	}
	if (is_monitor_slot(mmu, sp, index))
		return;
	if (sp->role.level == PG_LEVEL_4K) {
		switch (leaf_spte_resync(mmu, sp, index, gpte)) {
		case 1: mmu->stats.pt_write_updates++; break;
		case 2: mmu->stats.pt_write_zaps++; break;
		}
		return;
	}
	if (!spte_present(spte))
		return; /* nothing linked: the next fault builds it */
	if (spte & PTE_PS) {
		/* A 2 MiB leaf (sp.h): whatever changed, the next fault maps it again. */
		spte_zap(mmu, sp, index);
		mmu->stats.pt_write_zaps++;
		return;
	}
	child = spte_to_child(mmu, spte);
	if (child_for_gpte(mmu, sp->role, sp->gfn, index, gpte, &child_gfn, &child_role) &&
	    child_gfn.v == child->gfn.v && child_role.word == child->role.word)
		return;
	spte_zap(mmu, sp, index);
	mmu->stats.pt_write_zaps++;
}

/* Item 3a: is sp a root of the current CR3, or under one (at most `up` levels)? */
static bool sp_in_current_tree(const struct shadow_page *sp, gfn_t cr3_gfn, unsigned up)
{
	if (is_root_sp(sp))
		return sp->gfn.v == cr3_gfn.v;
	for (u32 i = 0; up && i < sp->nr_parents; i++)
		if (sp_in_current_tree(sp->parents[i].sp, cr3_gfn, up - 1))
			return true;
	return false;
}

/* Item 3a: no sp of table_gfn is in the current address space's trees. */
static bool table_inactive(struct shadow_mmu *mmu, gfn_t table_gfn)
{
	gfn_t cr3_gfn = cr3_table_gfn(mmu);
	struct shadow_page *sp;
	bool any = false;

	if (!(mmu->ctl.cr0 & CR0_PG))
		return false;
	for_each_indirect_sp(mmu, table_gfn, sp)
	{
		if (sp_in_current_tree(sp, cr3_gfn, PG_LEVEL_PML4 - sp->role.level))
			return false;
		any = true;
	}
	return any;
}

/*
 * Items 3 and 3a, and shadow_unshadow_gfn: zap every sp shadowing `gfn`
 * but a live root (the guest runs on it). Returns how many went.
 */
static u64 unshadow_sps(struct shadow_mmu *mmu, gfn_t gfn)
{
	struct shadow_page *sp;
	u64 n = 0;

restart:
	for_each_indirect_sp(mmu, gfn, sp)
	{
		if (root_is_live(mmu, sp))
			continue;
		sp_zap(mmu, sp);
		n++;
		goto restart; /* zapping can free other sps of the bucket */
	}
	return n;
}

/*
 * Items 2 to 4 for the bytes lo..hi (offsets) of the guest table at
 * `table_gfn`. Zapping can free other sps of the same bucket, so after one
 * we rescan from the head; pt_write_stamp marks the sps already done. A
 * 32-bit PD's passed-through sps (sp.h) hold no gpte and are skipped.
 */
static void write_table(struct shadow_mmu *mmu, gfn_t table_gfn, unsigned lo, unsigned hi,
			bool changed)
{
	unsigned first, last;
	struct shadow_page *sp;
	unsigned i;

	/* Item 3a (no sp of it is a live root: those are in the current tree). */
	if (table_inactive(mmu, table_gfn)) {
		mmu->stats.unshadows_inactive += unshadow_sps(mmu, table_gfn);
		return;
	}
restart:
	for_each_indirect_sp(mmu, table_gfn, sp)
	{
		u64 zapped = mmu->stats.sp_zapped;

		if (sp->pt_write_stamp == mmu->pt_write_seq || sp_role_is_passthrough(sp->role))
			continue;
		sp->pt_write_stamp = mmu->pt_write_seq;
		/*
		 * Item 3. A live root is never unshadowed: the guest runs on it.
		 * A write to one half of a 32-bit PT counts for the other half's sp
		 * too, as KVM counts it: a page that is data now must lose all its
		 * sps, or its writes keep trapping (a synthetic cost: make bench-shadow).
		 */
		if (++sp->write_flood_count >= WRITE_FLOOD_THRESHOLD && !root_is_live(mmu, sp)) {
			sp_zap(mmu, sp);
			mmu->stats.unshadows++;
			goto restart;
		}
		if (changed && sp_sptes_of_bytes(sp, lo, hi, &first, &last))
			for (i = first; i <= last; i++)
				update_spte(mmu, sp, i);
		if (mmu->stats.sp_zapped != zapped)
			goto restart;
	}
}

/* Item 1 (the entry point, mmu.h). */
void shadow_pt_write(struct shadow_mmu *mmu, gpa_t where, unsigned len, const void *old,
		     const void *new_bytes)
{
	u64 first, last, page;
	bool changed;

	BUG_ON(len == 0 || len > 16);
	mmu->stats.pt_writes++;
	if (++mmu->pt_write_seq == 0)
		mmu->pt_write_seq = 1; /* 0 is the stamp of a fresh sp */
	changed = memcmp(old, new_bytes, len) != 0;
	first = where.v;
	last = where.v + len - 1;
	for (page = ALIGN_DOWN(first, PAGE_SIZE); page <= last; page += PAGE_SIZE) {
		u64 lo = MAX(first, page), hi = MIN(last, page + PAGE_SIZE - 1);

		write_table(mmu, gpa_to_gfn(gpa(page)), lo - page, hi - page, changed);
	}
	op_end(mmu);
}

/*
 * shadow_unshadow_gfn (mmu.h): what write-flood detection does, on demand.
 * A live root's sps stay (the guest runs on them), so the gfn may stay
 * shadowed; an exec-approved frame stays write-tracked (the VMM revokes it).
 */
bool shadow_unshadow_gfn(struct shadow_mmu *mmu, gfn_t gfn)
{
	bool done;

	mmu->stats.unshadows += unshadow_sps(mmu, gfn);
	done = !gfn_is_write_protected(mmu, gfn);
	op_end(mmu);
	return done;
}
