/* SPDX-License-Identifier: MIT */
/*
 * From gptes to sptes: the rules of the views, written once and used by both
 * the fault path (fault.c) and the PT-write path (pt_write.c), so that an
 * spte recomputed after a guest write is exactly the one a fault would have
 * installed.
 *
 * This file:
 *  1. rights: convert between PTE_RW/PTE_US/PTE_NX and SP_ACC_*, and fold a
 *     gpte into the rights accumulated above it (SDM Vol. 3A §4.6.1);
 *  2. the role of a root for the current mode and a view;
 *  3. gpte checks: reserved bits (§4.5.4), large pages, is a gfn RAM;
 *  4. the child an upper gpte leads to: an indirect sp for a guest table, or
 *     a direct sp for part of a guest large page;
 *  5. the leaf spte for a guest page in a view: the view rules, SMEP/SMAP,
 *     dirty-bit emulation and write-protection of shadowed gfns;
 *  6. direct MMIO (mmu.h, struct shadow_mmio_range): is a gfn in a
 *     configured range, and its leaf spte (item 5 plus caching bits);
 *  7. the leaf spte a fault would install for a gpte as it is now, without
 *     changing it (the PT-write path and prefetch), and reading that gpte.
 */
#include "shadow/internal.h"

#include "umbra/log.h"

/* Item 1. */
u32 rights_to_acc(u64 rights)
{
	return ((rights & PTE_RW) ? SP_ACC_W : 0) | ((rights & PTE_US) ? SP_ACC_U : 0) |
	       ((rights & PTE_NX) ? SP_ACC_NX : 0);
}

/* Item 1. */
u64 acc_to_rights(u32 acc)
{
	return ((acc & SP_ACC_W) ? PTE_RW : 0) | ((acc & SP_ACC_U) ? PTE_US : 0) |
	       ((acc & SP_ACC_NX) ? PTE_NX : 0);
}

/* Item 1: R/W and U/S are ANDed over the levels, NX is ORed (§4.6.1). */
u64 gpte_rights(u64 rights_above, u64 gpte)
{
	return (rights_above & gpte & (PTE_RW | PTE_US)) | ((rights_above | gpte) & PTE_NX);
}

/*
 * Item 2: the mode bits of a role. The user view ignores the bits that only
 * change supervisor accesses (CR0.WP, SMEP, SMAP): see union sp_role.
 */
union sp_role mode_role(const struct shadow_mmu *mmu, enum shadow_view view)
{
	const struct paging_mode *mode = paging_mode_select(&mmu->ctl);
	union sp_role role = { .word = 0 };

	role.view = view;
	if (mode && mode->entry_size == sizeof(u32)) {
		role.gpte32 = 1;
		role.pse = mode->pse36;
	} else {
		role.pae = mode == &paging_mode_pae;
		role.efer_nx = !!(mmu->ctl.efer & EFER_NXE);
	}
	if (view == SHADOW_VIEW_KERNEL) {
		role.cr0_wp = !!(mmu->ctl.cr0 & CR0_WP);
		role.cr4_smep = !!(mmu->ctl.cr4 & CR4_SMEP);
		role.cr4_smap = !!(mmu->ctl.cr4 & CR4_SMAP);
	}
	return role;
}

/* Item 2: the guest paging mode whose tables sps of this role shadow. */
const struct paging_mode *role_paging_mode(union sp_role role)
{
	if (role.pae)
		return &paging_mode_pae;
	if (!role.gpte32)
		return &paging_mode_4level;
	return role.pse ? &paging_mode_32bit_pse : &paging_mode_32bit;
}

/*
 * Item 3: the bits set in `gpte`, an entry at `level` of a table that sps of
 * `role` shadow, that must be 0 (the walker's rule, walk.c item 5).
 */
u64 gpte_rsvd_bits(const struct shadow_mmu *mmu, union sp_role role, unsigned level, u64 gpte)
{
	return walk_gpte_rsvd(role_paging_mode(role), mmu->ctl.maxphyaddr, role.efer_nx, level,
			      gpte);
}

/* Item 3: is the guest frame RAM (else it is MMIO or a hole)? */
bool gfn_is_ram(const struct shadow_mmu *mmu, gfn_t gfn)
{
	return mmu->cfg.mem.gpa_to_hva(mmu->cfg.mem.opaque, gfn_to_gpa(gfn), PAGE_SIZE) != NULL;
}

/* Item 6: is the (non-RAM) guest frame in a direct-MMIO range of the config? */
bool gfn_is_mmio_direct(const struct shadow_mmu *mmu, gfn_t gfn)
{
	u64 a = gfn_to_gpa(gfn).v;

	for (unsigned i = 0; i < mmu->cfg.nr_mmio_direct; i++) {
		const struct shadow_mmio_range *r = &mmu->cfg.mmio_direct[i];

		if (a >= r->base.v && a - r->base.v < r->size)
			return true;
	}
	return false;
}

/*
 * Item 4: the sp that the spte at `index` of a sp (role `parent_role`, gfn
 * `parent_gfn`, level >= 2) must point to, given the gpte there now (ignored
 * for a direct parent). False if the gpte gives no child: not present,
 * reserved bits, or A = 0 (the CPU would set A on the first use, so a child
 * linked without it would let the guest use the gpte behind the CPU's back).
 */
bool child_for_gpte(const struct shadow_mmu *mmu, union sp_role parent_role, gfn_t parent_gfn,
		    unsigned index, u64 gpte, gfn_t *child_gfn, union sp_role *child_role)
{
	const struct paging_mode *mode = role_paging_mode(parent_role);
	unsigned level = parent_role.level;
	u64 pages = 1ull << (SPTE_INDEX_BITS * (level - 1)); /* 4 KiB pages under one spte */
	union sp_role role = parent_role;
	u64 rights, addr;

	BUG_ON(level < PG_LEVEL_2M);
	role.level = level - 1;
	if (parent_role.direct) {
		/* Inside a guest large page (or paging off): same rights, next slice. */
		*child_gfn = gfn(parent_gfn.v + index * pages);
		*child_role = role;
		return true;
	}
	if (sp_role_is_passthrough(parent_role)) {
		/*
		 * 32-bit paging above the PD (union sp_role): 4 GiB, one quadrant
		 * per GiB; PAE paging's root: the PDPTE sp of the same PDPT.
		 */
		if (index >= (level == PG_LEVEL_PML4 ? 1u : 4u))
			return false;
		role.quadrant = level == PG_LEVEL_1G ? index : 0;
		*child_gfn = parent_gfn;
		*child_role = role;
		return true;
	}
	if (sp_role_is_pdpte(parent_role)) {
		/* A PDPTE register: no A bit and no rights (walk.c); its PD is any PDPT's. */
		if (index >= 4 || !(gpte & PTE_P) || gpte_rsvd_bits(mmu, parent_role, level, gpte))
			return false;
		role.pdpt = 0;
		*child_gfn =
			gfn(walk_gpte_addr(mode, mmu->ctl.maxphyaddr, level, gpte) >> PAGE_SHIFT);
		*child_role = role;
		return true;
	}
	if (!(gpte & PTE_P) || !(gpte & PTE_A) || gpte_rsvd_bits(mmu, parent_role, level, gpte))
		return false;
	rights = gpte_rights(acc_to_rights(parent_role.access), gpte);
	addr = walk_gpte_addr(mode, mmu->ctl.maxphyaddr, level, gpte);
	role.quadrant = 0;
	if (walk_gpte_is_leaf(mode, level, gpte)) {
		/*
		 * Dirty-bit emulation for a large page: its direct sps are
		 * read-only until the large gpte has D = 1 (role.clean).
		 */
		role.clean = !(gpte & PTE_D);
		role.direct = 1;
		*child_gfn = gfn(addr >> PAGE_SHIFT);
		/* A 32-bit PDE's 4 MiB page is two sptes: this one maps half index % 2. */
		if (parent_role.gpte32)
			child_gfn->v += (index % 2) * pages;
	} else {
		*child_gfn = gfn(addr >> PAGE_SHIFT);
		/* A 32-bit PT is two leaf sps: this spte's 2 MiB is half index % 2 (sp.h). */
		if (parent_role.gpte32)
			role.quadrant = index % 2;
	}
	role.access = rights_to_acc(rights);
	*child_role = role;
	return true;
}

/*
 * Item 5: the leaf spte mapping `gfn` with the guest's accumulated `rights`
 * (PTE_RW/US/NX) in the view and mode of `role`, or 0 if the view may not map
 * it at all. `dirty`: the gpte that maps the page has D = 1.
 *
 *   user view    only guest-user pages (U/S = 1 at every level); R/W and NX
 *                as the guest says (user accesses ignore CR0.WP).
 *   kernel view  every page, with real U/S = 1 (the guest kernel runs at
 *                real CPL3). Supervisor writes ignore R/W when CR0.WP = 0.
 *                SMEP: a guest-user page gets NX (the guest kernel may not
 *                execute it). SMAP: a guest-user page is not mapped at all,
 *                since whether the kernel may touch it depends on RFLAGS.AC
 *                at the time of each access; fault.c sends such accesses to
 *                the walker.
 * LIMITATION: with SMAP on, every guest-kernel access to a user page (e.g.
 * copy_to_user) traps to the VMM and is emulated (SHADOW_EMULATE_ACCESS):
 * one trap per access, not per page. A role bit for RFLAGS.AC, switched by
 * the VMM on stac/clac, would remove that cost. With SMAP on and SMEP off a
 * guest-kernel instruction fetch from a user page is SHADOW_EMULATE_ACCESS
 * as well (Linux enables both, or neither).
 *
 * Then, for a writable result:
 *   dirty-bit emulation  not writable until the gpte has D = 1: the first
 *                write faults, the walker sets D (as the CPU would) and the
 *                spte is upgraded;
 *   write-protection     not writable while the gfn is shadowed as a guest
 *                table (and in sync, unsync.c), so every write to a guest
 *                table traps.
 * SPTE_GUEST_WRITABLE records that only write-protection took RW away.
 */
u64 make_leaf_spte(const struct shadow_mmu *mmu, union sp_role role, u64 rights, bool dirty,
		   gfn_t gfn)
{
	bool user_page = rights & PTE_US;
	bool writable, nx;
	u64 spte;

	if (role.view == SHADOW_VIEW_USER) {
		if (!user_page)
			return 0;
		writable = rights & PTE_RW;
		nx = role.efer_nx && (rights & PTE_NX);
	} else {
		if (user_page && role.cr4_smap)
			return 0;
		writable = (rights & PTE_RW) || !role.cr0_wp;
		nx = (role.efer_nx && (rights & PTE_NX)) || (user_page && role.cr4_smep);
	}
	spte = gfn_to_gpa(gfn).v | SPTE_LEAF_BITS; /* mpa == gpa for guest RAM */
	if (nx)
		spte |= PTE_NX;
	/* The execution gate (mmu.h): NX until the VMM approves the frame. */
	else if (mmu->cfg.exec_gate && role.view == SHADOW_VIEW_KERNEL && gfn_is_ram(mmu, gfn)) {
		spte |= SPTE_EXEC_GATED;
		if (!gfn_is_exec_approved(mmu, gfn))
			spte |= PTE_NX;
	}
	if (writable && dirty) {
		spte |= SPTE_GUEST_WRITABLE;
		if (!gfn_is_write_protected(mmu, gfn))
			spte |= PTE_RW;
	}
	return spte;
}

/*
 * Item 6: the leaf spte for a direct-MMIO gfn: item 5's rights (never
 * write-protected: a non-RAM gfn is never a shadowed table), marked
 * SPTE_MMIO_DIRECT, with the caching bits of `gpte`, the guest entry at
 * `level` that maps the page. Inside a guest large page (`level` > 1, or a
 * direct sp) the spte is UC (PWT|PCD): see mmu.h. 0 if the view may not map
 * it (as item 5).
 */
u64 make_mmio_leaf_spte(const struct shadow_mmu *mmu, union sp_role role, u64 rights, bool dirty,
			gfn_t gfn, unsigned level, u64 gpte)
{
	u64 spte = make_leaf_spte(mmu, role, rights, dirty, gfn);
	u64 cache = level == PG_LEVEL_4K ? gpte & (PTE_PWT | PTE_PCD | PTE_PAT) : PTE_PWT | PTE_PCD;

	BUG_ON(gfn_is_shadowed(mmu, gfn));
	return spte ? spte | SPTE_MMIO_DIRECT | cache : 0;
}

/*
 * Item 7: the index in the guest table of the gpte that spte `index` of an
 * indirect sp of a 32-bit role comes from (union sp_role).
 */
unsigned sp_gpte32_index(const struct shadow_page *sp, unsigned index)
{
	BUG_ON(!sp->role.gpte32 || sp->role.direct || sp->role.level > PG_LEVEL_2M);
	if (sp->role.level == PG_LEVEL_2M)
		return sp->role.quadrant * (SPTE_PER_PAGE / 2) + index / 2;
	return sp->role.quadrant * SPTE_PER_PAGE + index;
}

/*
 * Item 7: the gpte now behind spte `index` of the indirect sp (0 if
 * unreadable, and for a passed-through 32-bit level: no gpte), zero-extended.
 */
u64 sp_read_gpte(const struct shadow_mmu *mmu, const struct shadow_page *sp, unsigned index)
{
	const struct paging_mode *mode = role_paging_mode(sp->role);
	unsigned gindex;
	u64 gpte;

	if (sp_role_is_passthrough(sp->role))
		return 0;
	if (sp_role_is_pdpte(sp->role))
		return index < 4 ? mmu->ctl.pdpte[index] : 0;
	gindex = sp->role.gpte32 ? sp_gpte32_index(sp, index) : index;
	if (!walk_read_gpte(mode, &mmu->cfg.mem,
			    gpa(gfn_to_gpa(sp->gfn).v + gindex * mode->entry_size), &gpte))
		return 0;
	return gpte;
}

/*
 * Item 7: the sptes first..last of the indirect sp whose gptes hold some of
 * the bytes lo..hi (offsets in its guest table); false if none does (a
 * 32-bit table's other quadrant). The inverse of sp_gpte32_index.
 */
bool sp_sptes_of_bytes(const struct shadow_page *sp, unsigned lo, unsigned hi, unsigned *first,
		       unsigned *last)
{
	unsigned per_sp, base, g_first, g_last;

	if (!sp->role.gpte32) {
		*first = lo / sizeof(u64);
		*last = hi / sizeof(u64);
		return true;
	}
	/* A quadrant's PDEs (two sptes each) or PTEs (one each): union sp_role. */
	per_sp = sp->role.level == PG_LEVEL_2M ? SPTE_PER_PAGE / 2 : SPTE_PER_PAGE;
	base = sp->role.quadrant * per_sp;
	g_first = MAX(lo / (unsigned)sizeof(u32), base);
	g_last = MIN(hi / (unsigned)sizeof(u32), base + per_sp - 1);
	if (g_first > g_last)
		return false;
	if (sp->role.level == PG_LEVEL_2M) {
		*first = (g_first - base) * 2;
		*last = (g_last - base) * 2 + 1;
	} else {
		*first = g_first - base;
		*last = g_last - base;
	}
	return true;
}

/*
 * Item 7: the spte a fault would install for leaf gpte `gpte` in a 4 KiB
 * table of role `role` now, or 0 when a fault is needed first: not present,
 * reserved bits, A = 0 (the fault's walk would set it, and the guest may
 * read A = 0 as "not used since I cleared it"), not RAM nor direct MMIO, or
 * not mappable in this view. A fault would give the same spte, since its
 * walk changes nothing else for a read (a write sets D, which this spte
 * then lacks: dirty-bit emulation makes it read-only until then).
 */
u64 leaf_spte_for_gpte(const struct shadow_mmu *mmu, union sp_role role, u64 gpte)
{
	u64 rights = gpte_rights(acc_to_rights(role.access), gpte);
	gfn_t leaf_gfn;

	if (!(gpte & PTE_P) || !(gpte & PTE_A) || gpte_rsvd_bits(mmu, role, PG_LEVEL_4K, gpte))
		return 0;
	leaf_gfn = gfn(
		walk_gpte_addr(role_paging_mode(role), mmu->ctl.maxphyaddr, PG_LEVEL_4K, gpte) >>
		PAGE_SHIFT);
	if (!gfn_is_ram(mmu, leaf_gfn)) {
		if (!gfn_is_mmio_direct(mmu, leaf_gfn))
			return 0;
		return make_mmio_leaf_spte(mmu, role, rights, gpte & PTE_D, leaf_gfn, PG_LEVEL_4K,
					   gpte);
	}
	return make_leaf_spte(mmu, role, rights, gpte & PTE_D, leaf_gfn);
}
