/* SPDX-License-Identifier: MIT */
/*
 * Prefetch (KVM's pte_prefetch): when a fault has installed a 4 KiB leaf
 * spte, fill the empty sptes of its aligned group of cfg.prefetch entries
 * with what a fault at each would install now, so that a walk through
 * neighbouring pages (a scan of the direct map, a memset of a new buffer,
 * a freshly exec'd binary) takes one fault per group instead of one per page.
 *
 * What a neighbour gets, and why that is exact:
 *  - in an indirect sp (a guest 4 KiB table): leaf_spte_for_gpte (spte.c
 *    item 7), so nothing unless the gpte is present with A = 1 (the CPU
 *    would set A on first use; we never do it for the guest), and writable
 *    only with D = 1. The guest table is write-protected while the sp
 *    shadows it, so a later change of the gpte reaches pt_write.c, which
 *    updates or zaps the prefetched spte like any other;
 *  - in a direct sp (a slice of a guest large page, or paging off): the
 *    slice's page with the role's rights, as fault.c item 5 would map it,
 *    when it is RAM (direct MMIO is left to the fault, which knows the
 *    large gpte's caching bits).
 * Present sptes are left alone, and nothing is allocated: no sp, so no
 * eviction can happen here.
 *
 * The same entry in the user view (prefetch_other_view): each view has its
 * own sp of a guest table, so a guest-user page that both the kernel and
 * the process touch (the new stack's argv that exec writes and the process
 * reads, a bss that clear_user zeroes, a read() buffer) would take a fault
 * in each. After a kernel-view fault on a user page, when the user view's
 * sp of the table exists, its empty entry gets what a fault there would
 * install now (leaf_spte_for_gpte, exact as for an indirect neighbour
 * above). Only that way: the kernel touches few of the pages a process
 * does, and on the rig filling the kernel view after user faults too cost
 * ~20 stores per fault it saved. Counted as `prefetched_other_view`; off
 * with the prefetch.
 *
 * Cost: each prefetched spte is one more store through the writer. Where
 * the vCPU replays shadow stores (shared/HOST.md: ~6-8 us each on PVM) that
 * is worth it when about one neighbour in six would otherwise fault (a trap
 * there is tens of us plus the VMM's work); `stores` and `prefetched`
 * against the fault counts in --stats show whether it was.
 */
#include "shadow/internal.h"

#include "umbra/log.h"

/* The spte a fault would install at `index` of sp now, or 0 (see above). */
static u64 neighbour_spte(struct shadow_mmu *mmu, const struct shadow_page *sp, unsigned index)
{
	gfn_t g;

	if (!sp->role.direct)
		return leaf_spte_for_gpte(mmu, sp->role, sp_read_gpte(mmu, sp, index));
	g = gfn(sp->gfn.v + index);
	if (!gfn_is_ram(mmu, g))
		return 0;
	return make_leaf_spte(mmu, sp->role, acc_to_rights(sp->role.access), !sp->role.clean, g);
}

void prefetch_around(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index)
{
	unsigned n = mmu->cfg.prefetch, first = index & ~(n - 1);

	BUG_ON(sp->role.level != PG_LEVEL_4K);
	if (n < 2)
		return;
	for (unsigned i = first; i < first + n; i++) {
		u64 spte;

		if (i == index || spte_present(sp->spt[i]))
			continue;
		spte = neighbour_spte(mmu, sp, i);
		if (!spte)
			continue;
		leaf_spte_set(mmu, sp, i, spte);
		mmu->stats.prefetched++;
	}
}

void prefetch_other_view(struct shadow_mmu *mmu, struct shadow_page *sp, unsigned index)
{
	union sp_role other = mode_role(mmu, SHADOW_VIEW_USER);
	struct shadow_page *o;
	u64 spte;

	BUG_ON(sp->role.level != PG_LEVEL_4K);
	if (mmu->cfg.prefetch < 2 || sp->role.view != SHADOW_VIEW_KERNEL || sp->role.direct ||
	    !(sp->role.access & SP_ACC_U))
		return;
	other.level = PG_LEVEL_4K;
	other.access = sp->role.access; /* from the gptes above alone, whatever the view */
	other.quadrant = sp->role.quadrant;
	o = sp_lookup(mmu, sp->gfn, other);
	if (!o || spte_present(o->spt[index]))
		return;
	spte = leaf_spte_for_gpte(mmu, o->role, sp_read_gpte(mmu, o, index));
	if (!spte)
		return;
	leaf_spte_set(mmu, o, index, spte);
	mmu->stats.prefetched_other_view++;
}
