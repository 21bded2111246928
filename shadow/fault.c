/* SPDX-License-Identifier: MIT */
/*
 * The shadow fault path: a real #PF taken by the guest becomes sptes, or a
 * verdict for the VMM (shadow_fault, mmu.h).
 *
 * This file, in the order a fault goes through it:
 *  1. walk the guest tables with the guest's access, setting A (and D for a
 *     write) as the CPU would (walk.c, WALK_SET_AD). The walk decides every
 *     guest #PF: the shadow never maps more than the guest allows, so a
 *     fault the walk approves is ours to fix;
 *  2. a reserved PML4 slot (the monitor): a guest that maps anything there
 *     is refused (SHADOW_MONITOR_CONFLICT);
 *  2b. the call window (mmu.h, shadow_set_window): where the guest's PDPT
 *     or PD has no entry, the kernel view links the VMM's table instead of
 *     a guest #PF; a guest mapping there is refused likewise;
 *  3. a gpa that is not RAM: SHADOW_MMIO, nothing is mapped, unless it is
 *     in a direct-MMIO range of the config, which is mapped like RAM
 *     (spte.c item 6);
 *  4b. a guest large page whose 2 MiB frame may be mapped whole: one
 *     2 MiB spte (sp.h) in the level-2 sp, and nothing below;
 *  4. from the root down, at each level find or create the sp the guest
 *     entry leads to and link it (spte.c item 4 decides which: an indirect
 *     sp shadowing the next guest table, or a direct sp for a slice of a
 *     guest large page), replacing a link whose role went stale;
 *  5. install the leaf spte (spte.c item 5: view rules, SMEP/SMAP, dirty-bit
 *     emulation, write-protection);
 *  6. a write the guest may make but the spte refuses because the page is a
 *     shadowed guest table: the table goes out of sync (unsync.c) where it
 *     may, else SHADOW_EMULATE_PT_WRITE. A kernel-view access
 *     to a guest-user page under SMAP that the walk allowed (RFLAGS.AC = 1):
 *     SHADOW_EMULATE_ACCESS;
 *  7. a fault fixed: fill the neighbours a fault would fill now, and for
 *     a kernel-view fault the same entry in the user view (prefetch.c).
 */
#include "shadow/internal.h"

#include "umbra/log.h"

/*
 * Item 1: a guest table outside RAM. The CPU would read whatever the bus
 * returns for it; we take it as all ones, which has reserved bits set
 * (MAXPHYADDR < 52), so the guest gets #PF with P = 1 and RSVD = 1.
 * LIMITATION: no guest can rely on this; a real CPU may read other values.
 */
static u32 bad_table_pferr(const struct shadow_mmu *mmu, u32 access)
{
	u32 pferr = PFERR_PRESENT | PFERR_RSVD;

	if (access & ACC_WRITE)
		pferr |= PFERR_WRITE;
	if (access & ACC_USER)
		pferr |= PFERR_USER;
	if ((access & ACC_FETCH) && ((mmu->ctl.efer & EFER_NXE) || (mmu->ctl.cr4 & CR4_SMEP)))
		pferr |= PFERR_FETCH;
	return pferr;
}

/*
 * Item 4: from the root of `view` down to the sp at level `to` for gva
 * (1: the leaf table), linking what is missing. Returns that sp. Eviction
 * may clear the live root while we allocate (pool.c item 5b): then we start
 * again from the root, which terminates because a wiped pool has room for a
 * whole path.
 */
static struct shadow_page *fetch_path(struct shadow_mmu *mmu, const struct guest_walk *walk,
				      enum shadow_view view, unsigned to)
{
	struct shadow_page *sp;
	unsigned level;
	u32 gen;

retry:
	sp = root_get(mmu, view);
	mmu->busy_root = sp;
	gen = mmu->wipe_gen;
	for (level = PG_LEVEL_PML4; level > to; level--) {
		unsigned index = gva_index(walk->gva, level);
		struct shadow_page *child;
		union sp_role child_role;
		gfn_t child_gfn;
		bool created;
		u64 spte;

		/* A fault walked through this guest table: it is in use, not flooded. */
		if (!sp->role.direct)
			sp->write_flood_count = 0;
		if (!child_for_gpte(mmu, sp->role, sp->gfn, index, walk->gpte[level], &child_gfn,
				    &child_role))
			BUG_ON(1); /* the walk just went through it and set A */
		spte = sp->spt[index];
		if (spte_present(spte)) {
			child = spte_is_leaf(level, spte) ? NULL : spte_to_child(mmu, spte);
			if (child && child->gfn.v == child_gfn.v &&
			    child->role.word == child_role.word) {
				sp = child;
				continue;
			}
			/*
			 * The link is stale: the walk changed the gpte (it just set
			 * D in a large gpte, so the dirty direct sp replaces the
			 * clean one). Everything else is kept in sync by PT writes.
			 * Or a 2 MiB leaf is there and this fault needs the 4 KiB
			 * tables below it (item 4b said no this time).
			 */
			spte_zap(mmu, sp, index);
		}
		child = sp_get(mmu, child_gfn, child_role, &created);
		if (mmu->wipe_gen != gen)
			goto retry;
		sp_link(mmu, sp, index, child);
		sp = child;
	}
	return sp;
}

/*
 * Item 2b: a kernel-view fault in the call window. The guest's tables must
 * stop above the window's PT: a present PML4E (and PDPTE) leading to
 * tables, then an entry that is not present, at level 3 or 2. The shadow
 * of the table holding that entry links the window there (mmu.h). A walk
 * that maps the address, or stops lower, is the guest's own mapping. A
 * fault with the window already linked is an access its PT does not allow
 * (a write to code, a fetch from data): refused too. A is set in the
 * entries above as the CPU would (SDM Vol. 3A §4.8).
 */
static enum shadow_fault_result window_fault(struct shadow_mmu *mmu, struct guest_walk *walk,
					     enum walk_result wr)
{
	unsigned at = walk->level; /* the level whose entry is not present */
	union sp_role role = mode_role(mmu, SHADOW_VIEW_KERNEL);
	const struct paging_mode *mode = role_paging_mode(role);
	struct shadow_page *sp;
	unsigned index;

	if (wr != WALK_FAULT || (walk->gpte[at] & PTE_P) || at > PG_LEVEL_1G || at < PG_LEVEL_2M)
		return SHADOW_MONITOR_CONFLICT;
	for (unsigned level = PG_LEVEL_PML4; level > at; level--) {
		u64 gpte = walk->gpte[level];

		if (!(gpte & PTE_P) || walk_gpte_is_leaf(mode, level, gpte) ||
		    gpte_rsvd_bits(mmu, role, level, gpte))
			return SHADOW_MONITOR_CONFLICT;
	}
	if (!walk_set_accessed_above(mode, &mmu->cfg.mem, walk, at))
		return SHADOW_MONITOR_CONFLICT; /* changed under us: not expected */
	sp = fetch_path(mmu, walk, SHADOW_VIEW_KERNEL, at);
	if (sp->window)
		return SHADOW_MONITOR_CONFLICT;
	index = gva_index(walk->gva, at);
	/* Nothing of the guest's is linked there: its entry is not present. */
	BUG_ON(spte_present(sp->spt[index]));
	spte_store(mmu, sp, index, mmu->window.entry[at]);
	sp->window = true;
	mmu->stats.window_links++;
	return SHADOW_FIXED;
}

/*
 * Item 4b: map the guest large page's 2 MiB frame holding walk->gpa with
 * one spte, where that is exact: the frame is RAM from end to end (one
 * region, so mpa == gpa is contiguous), none of its gfns is write-tracked
 * (a 2 MiB spte cannot trap writes to one 4 KiB page of it: rmap.c item
 * 8). The spte is what item 5 gives the frame's first gfn, with PS: the
 * rights and the dirty-bit emulation of the large gpte. A 4 KiB table
 * already linked there (the frame was tracked then) is replaced. False: map
 * 4 KiB (item 4).
 *
 * The execution gate is per 4 KiB frame, so a kernel-executable page gets a
 * 2 MiB spte for data only: NX, and not gated (sp.h: a large spte never is).
 * No frame of it is approved code (approved frames are tracked), and a
 * fetch there faults and comes here as a fetch, which takes the 4 KiB path:
 * fetch_path replaces the 2 MiB leaf with a table and the gate scans the
 * frame, which then tracks the frame, so no later data fault maps it whole
 * again. This pays where a guest maps all of its memory executable in large
 * pages (memtest86+); Linux maps its direct map NX.
 */
static bool map_large(struct shadow_mmu *mmu, const struct guest_walk *walk, enum shadow_view view,
		      u32 access)
{
	gfn_t frame = gfn_frame(gpa_to_gfn(walk->gpa));
	struct shadow_page *sp;
	unsigned index;
	u64 spte, old;

	if (!mmu->cfg.large_pages || walk->level < PG_LEVEL_2M)
		return false;
	if (!mmu->cfg.mem.gpa_to_hva(mmu->cfg.mem.opaque, gfn_to_gpa(frame), 2 * MiB)) {
		mmu->stats.large_not_ram++;
		return false;
	}
	sp = fetch_path(mmu, walk, view, PG_LEVEL_2M);
	/* After fetch_path, which may shadow a guest table in this frame. */
	if (frame_is_tracked(mmu, frame)) {
		mmu->stats.large_tracked++;
		return false;
	}
	spte = make_leaf_spte(mmu, sp->role, walk->rights, walk->gpte[walk->level] & PTE_D, frame);
	if (spte & SPTE_EXEC_GATED) {
		if (access & ACC_FETCH) {
			mmu->stats.large_gated++;
			return false;
		}
		spte = (spte & ~SPTE_EXEC_GATED) | PTE_NX;
		mmu->stats.large_data_only++;
	}
	if (!spte)
		return false;
	spte |= PTE_PS;
	/* The walk set D for a write, and no gfn of the frame is write-protected. */
	BUG_ON((access & ACC_WRITE) && !(spte & PTE_RW));
	index = gva_index(walk->gva, PG_LEVEL_2M);
	old = sp->spt[index];
	if (spte_present(old) && !(old & PTE_PS)) {
		spte_zap(mmu, sp, index);
		old = 0;
	}
	leaf_spte_set(mmu, sp, index, spte);
	if (old == spte)
		mmu->stats.faults_spurious++;
	mmu->stats.large_maps++;
	mmu->stats.faults_fixed_large++;
	return true;
}

/* Items 1 to 6. */
static enum shadow_fault_result do_fault(struct shadow_mmu *mmu, gva_t gva, u32 access,
					 enum shadow_view view, struct shadow_fault_info *info)
{
	const struct paging_mode *mode = paging_mode_select(&mmu->ctl);
	bool paging = mmu->ctl.cr0 & CR0_PG;
	struct guest_walk walk;
	enum walk_result wr;
	struct shadow_page *sp;
	unsigned index;
	u64 rights, spte, old;
	bool dirty, mmio_direct = false;
	gfn_t leaf_gfn;

	if (paging && !mode)
		return SHADOW_UNSUPPORTED;

	/* Item 1: the guest's verdict, with A/D set as the CPU sets them. */
	wr = walk_guest(mode, &mmu->cfg.mem, &mmu->ctl, gva, access, WALK_SET_AD, &walk);

	/*
	 * Item 2: the monitor's slots are never the guest's. With paging off
	 * the guest's identity map covers every slot, so any access there is
	 * a conflict (it cannot happen with 32-bit linear addresses and the
	 * hypervisor hole, PML4 index 256).
	 */
	if (mmu->reserved[gva_index(gva, PG_LEVEL_PML4)] &&
	    (!paging || (walk.gpte[PG_LEVEL_PML4] & PTE_P)))
		return SHADOW_MONITOR_CONFLICT;
	if (paging && view == SHADOW_VIEW_KERNEL && gva_in_window(mmu, gva))
		return window_fault(mmu, &walk, wr);

	switch (wr) {
	case WALK_OK: break;
	case WALK_FAULT:
		info->error_code = walk.fault.error_code;
		info->cr2 = walk.fault.cr2;
		return SHADOW_GUEST_FAULT;
	case WALK_BAD_GPA:
		info->error_code = bad_table_pferr(mmu, access);
		info->cr2 = gva;
		return SHADOW_GUEST_FAULT;
	default: return SHADOW_UNSUPPORTED;
	}

	/* Item 3. */
	if (!gfn_is_ram(mmu, gpa_to_gfn(walk.gpa))) {
		mmio_direct = gfn_is_mmio_direct(mmu, gpa_to_gfn(walk.gpa));
		if (!mmio_direct) {
			info->gpa = walk.gpa;
			return SHADOW_MMIO;
		}
	}

	/* Item 4b. */
	if (paging && !mmio_direct && map_large(mmu, &walk, view, access))
		return SHADOW_FIXED;

	/* Item 4. */
	sp = fetch_path(mmu, &walk, view, PG_LEVEL_4K);

	/*
	 * Item 5. Inside a guest large page the direct sp's role carries the
	 * page's rights and whether its gpte is dirty; otherwise the rights
	 * are those the gptes above gave (the role) folded with the leaf gpte,
	 * which is exactly what the walk accumulated.
	 */
	index = gva_index(gva, PG_LEVEL_4K);
	if (sp->role.direct) {
		rights = acc_to_rights(sp->role.access);
		dirty = !sp->role.clean;
		leaf_gfn = gfn(sp->gfn.v + index);
	} else {
		u64 gpte = walk.gpte[PG_LEVEL_4K];

		sp->write_flood_count = 0;
		rights = gpte_rights(acc_to_rights(sp->role.access), gpte);
		BUG_ON(rights != walk.rights);
		/* Dirty-bit emulation: writable only once the CPU would not set D. */
		dirty = gpte & PTE_D;
		leaf_gfn = gfn((gpte & PTE_ADDR_MASK(mmu->ctl.maxphyaddr)) >> PAGE_SHIFT);
	}
	BUG_ON(leaf_gfn.v != gpa_to_gfn(walk.gpa).v);
	if (mmio_direct)
		spte = make_mmio_leaf_spte(mmu, sp->role, rights, dirty, leaf_gfn,
					   sp->role.direct ? walk.level : PG_LEVEL_4K,
					   walk.gpte[walk.level]);
	else
		spte = make_leaf_spte(mmu, sp->role, rights, dirty, leaf_gfn);
	if (!spte) {
		/* Item 6: allowed, but this view may not map it (SMAP). */
		info->gpa = walk.gpa;
		return SHADOW_EMULATE_ACCESS;
	}
	old = sp->spt[index];
	leaf_spte_set(mmu, sp, index, spte);

	/*
	 * Item 6: a write to a guest table is emulated, then shadow_pt_write;
	 * unless the table may go out of sync (unsync.c), which gives RW back
	 * to this spte among others: the guest's write then runs as it is.
	 */
	if ((access & ACC_WRITE) && !(spte & PTE_RW)) {
		BUG_ON(!(spte & SPTE_GUEST_WRITABLE)); /* the walk allowed it and set D */
		if (!unsync_try(mmu, leaf_gfn)) {
			info->gpa = walk.gpa;
			return SHADOW_EMULATE_PT_WRITE;
		}
		BUG_ON(!(sp->spt[index] & PTE_RW));
	}
	/* The execution gate (mmu.h): the guest may fetch, the VMM must scan first. */
	if ((access & ACC_FETCH) && (spte & SPTE_EXEC_GATED) && (spte & PTE_NX)) {
		info->gpa = walk.gpa;
		return SHADOW_EXEC_UNSCANNED;
	}
	if (old == spte)
		mmu->stats.faults_spurious++;
	if (mmio_direct)
		mmu->stats.faults_mmio_direct++;
	if (sp->role.direct && paging)
		mmu->stats.faults_fixed_large++;
	/* Item 7. */
	prefetch_around(mmu, sp, index);
	prefetch_other_view(mmu, sp, index);
	return SHADOW_FIXED;
}

/*
 * The prefault (mmu.h). The peek decides whether the guest would see any
 * difference between a fault now and one later: none when the walk
 * succeeds and would set no A/D bit (walk.c's own rule, the one
 * WALK_SET_AD applies), since then do_fault's walk writes nothing
 * into guest memory and every spte it installs is what the access's own
 * fault would install. What else do_fault may do (shadow a table, let one
 * go out of sync, prefetch) is invisible to the guest, as for any fault.
 */
bool shadow_prefault(struct shadow_mmu *mmu, gva_t gva, u32 access)
{
	const struct paging_mode *mode = paging_mode_select(&mmu->ctl);
	struct shadow_fault_info info;
	struct guest_walk walk;
	bool fixed;

	BUG_ON(!(access & ACC_USER));
	mmu->stats.prefaults++;
	if (!mode ||
	    walk_guest(mode, &mmu->cfg.mem, &mmu->ctl, gva, access, WALK_PEEK, &walk) != WALK_OK ||
	    !walk_ad_already_set(mode, &walk))
		return false;
	fixed = do_fault(mmu, gva, access, SHADOW_VIEW_USER, &info) == SHADOW_FIXED;
	if (fixed)
		mmu->stats.prefaults_fixed++;
	op_end(mmu);
	return fixed;
}

/* The entry point (mmu.h). */
enum shadow_fault_result shadow_fault(struct shadow_mmu *mmu, gva_t gva, u32 access,
				      enum shadow_view view, struct shadow_fault_info *info)
{
	enum shadow_fault_result r;

	BUG_ON(view >= SHADOW_NR_VIEWS);
	*info = (struct shadow_fault_info){ .cr2 = gva };
	mmu->stats.faults++;
	r = do_fault(mmu, gva, access, view, info);
	switch (r) {
	case SHADOW_FIXED: mmu->stats.faults_fixed++; break;
	case SHADOW_GUEST_FAULT: mmu->stats.faults_guest++; break;
	case SHADOW_EMULATE_PT_WRITE: mmu->stats.faults_pt_write++; break;
	case SHADOW_MMIO: mmu->stats.faults_mmio++; break;
	case SHADOW_MONITOR_CONFLICT: mmu->stats.faults_monitor_conflict++; break;
	case SHADOW_EMULATE_ACCESS: mmu->stats.faults_emulate_access++; break;
	case SHADOW_UNSUPPORTED: mmu->stats.faults_unsupported++; break;
	case SHADOW_EXEC_UNSCANNED: mmu->stats.faults_exec_unscanned++; break;
	}
	op_end(mmu);
	return r;
}
