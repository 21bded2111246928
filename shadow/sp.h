/* SPDX-License-Identifier: MIT */
/*
 * Shadow pages, their roles, and the bits of an spte (internal to shadow/).
 *
 * This file:
 *  1. union sp_role: what, besides the gfn, decides the contents of an sp;
 *  2. the hardware bits we put in sptes, and the one software bit;
 *  3. struct shadow_page: the bookkeeping of one page of the pool;
 *  4. for_each_shadow_entry, the iterator over the sptes translating a gva.
 *
 * Shape (KVM's mmu_internal.h and spte.h): an sp is found by hash on
 * (gfn, role.word); two sps with the same gfn and different roles are
 * different pages with different contents.
 */
#ifndef UMBRA_SHADOW_SP_H
#define UMBRA_SHADOW_SP_H

#include "shadow/mmu.h"
#include "shadow/x86.h"
#include "umbra/types.h"

/* A table holds 512 entries at every level of 4-level paging. */
#define SPTE_PER_PAGE	512u
#define SPTE_INDEX_BITS 9

/*
 * 1. The role of an sp. Compared by .word only, so every unused bit is 0.
 *
 * The role holds everything besides the gfn that the sptes of the page are
 * computed from, so that two uses of the same guest table that would need
 * different sptes never share an sp.
 */
#define SP_ACC_W   (1u << 0) /* writes allowed (R/W at every level above) */
#define SP_ACC_U   (1u << 1) /* a user page so far (U/S at every level above) */
#define SP_ACC_NX  (1u << 2) /* execute-disable seen at some level above */
#define SP_ACC_ALL (SP_ACC_W | SP_ACC_U)

union sp_role {
	u32 word;
	struct {
		/* 1..4: the level of the entries of this page (1 = PT, 4 = the root). */
		u32 level : 3;
		/* enum shadow_view: the view whose rules the leaf sptes follow. */
		u32 view : 1;
		/*
		 * 0: shadows the guest table at gfn (indirect); the gfn is then
		 *    write-protected in every root.
		 * 1: maps guest frames directly, starting at gfn: part of a guest
		 *    2 MiB / 1 GiB page, or of the identity map while paging is
		 *    off. Nothing in guest memory is shadowed by it.
		 */
		u32 direct : 1;
		/*
		 * SP_ACC_*: for an indirect sp, the rights accumulated by the
		 * gptes above this table (R/W and U/S ANDed, NX ORed, SDM Vol. 3A
		 * §4.6.1), so that a leaf spte is computed from its gpte alone.
		 * For a direct sp, the rights of the whole guest large page.
		 * The root has SP_ACC_ALL.
		 */
		u32 access : 3;
		/*
		 * Direct sps only: the large gpte has D = 0, so no leaf is
		 * writable (dirty-bit emulation, spte.c item 4). A clean and a
		 * dirty large page are different sps, so no writable spte
		 * survives the guest clearing D (KVM folds this into access).
		 * A separate bit, because with CR0.WP = 0 the kernel view may
		 * write a page whose R/W is 0, and that write must set D too.
		 */
		u32 clean : 1;
		/*
		 * Mode bits that change what a gpte grants (SDM Vol. 3A §4.6).
		 * cr0_wp, cr4_smep and cr4_smap only matter to supervisor
		 * accesses, so they are 0 in every user-view role: a mode change
		 * that only flips them keeps the user-view roots.
		 */
		u32 cr0_wp : 1;
		u32 efer_nx : 1;
		u32 cr4_smep : 1;
		u32 cr4_smap : 1;
		/*
		 * 32-bit paging (walk.h): the guest's tables hold 1024 4-byte
		 * entries, a shadow table 512 8-byte ones, and the real CPU
		 * walks 4 levels. An indirect sp of such a role shadows
		 * (gfn.v is the guest table, `quadrant` which part of it):
		 *   level 4, 3  the guest PD at CR3, passed through: the root's
		 *               entry 0 links the level-3 sp, whose entries
		 *               0..3 link the level-2 sps of quadrants 0..3
		 *               (a 32-bit gva reaches nothing else). Their
		 *               entries come from no gpte (sp_role_is_passthrough);
		 *   level 2     PDEs quadrant*256 .. +255: spte i is half i % 2
		 *               of the 4 MiB that PDE quadrant*256 + i/2 maps;
		 *   level 1     PTEs quadrant*512 .. +511: spte i is PTE
		 *               quadrant*512 + i.
		 * Direct sps (halves of a 4 MiB page) keep gpte32 and have
		 * quadrant 0. `pse` is CR4.PSE, which decides whether PS in a
		 * PDE maps a page; NX does not exist there, so efer_nx is 0.
		 * (KVM's role.quadrant and has_4_byte_gpte are the same idea.)
		 */
		u32 gpte32 : 1;
		u32 pse : 1;
		u32 quadrant : 2;
		/*
		 * PAE paging outside long mode (walk.h): the guest's PDs and PTs
		 * are 4-level paging's, under 4 PDPTE registers. Every sp of such
		 * a guest has `pae`; the indirect ones above the PD are:
		 *   level 4  passed through: entry 0 links the level-3 sp;
		 *   level 3  the PDPTE registers: entries 0..3 link the PDs that
		 *            walk_ctl.pdpte[0..3] name (sp_role_is_pdpte).
		 * Their gfn is the PDPT's page, `pdpt` is CR3[11:5] (its slot:
		 * Linux packs 128 PDPTs of 32 bytes in a page), and they shadow no
		 * guest memory (sp_role_shadows_gfn): the registers change only at
		 * a load, when root.c refreshes the level-3 sp.
		 */
		u32 pae : 1;
		u32 pdpt : 7;
		u32 unused : 7;
	};
};
_Static_assert(sizeof(union sp_role) == sizeof(u32), "a role is one word");

/*
 * A level whose entries come from no gpte (union sp_role): 32-bit paging's
 * levels 4 and 3, PAE paging's level 4.
 */
static inline bool sp_role_is_passthrough(union sp_role role)
{
	return !role.direct && ((role.gpte32 && role.level > PG_LEVEL_2M) ||
				(role.pae && role.level == PG_LEVEL_PML4));
}

/* PAE paging's level 3: its entries come from the PDPTE registers (union sp_role). */
static inline bool sp_role_is_pdpte(union sp_role role)
{
	return role.pae && !role.direct && role.level == PG_LEVEL_1G;
}

/*
 * Does an sp of this role shadow the guest table at its gfn, which is then
 * write-protected? Indirect sps do, but PAE's levels above the PD: the CPU
 * reads no memory there after the PDPTE load.
 */
static inline bool sp_role_shadows_gfn(union sp_role role)
{
	return !role.direct && !(role.pae && role.level >= PG_LEVEL_1G);
}

/*
 * 2. spte bits. Hardware bits are the PTE_* of x86.h. Every present spte
 * has P and A (so the CPU never writes A into a shadow table), a non-leaf
 * spte has RW and US (its child's sptes carry the real rights, KVM does
 * the same), a leaf spte has D as well, US always (the guest runs at real
 * CPL3 in both views) and never G (root.c: the VMM switches roots per view
 * and per CR3 and flushes the real TLB itself, so a global translation would
 * leak one root's mapping into another).
 *
 * PS is set only in a 2 MiB leaf (a "large spte", fault.c item 4b): an
 * entry of a level-2 sp that maps a whole 2 MiB frame of a guest 2 MiB or
 * 1 GiB page, where mpa == gpa makes the backing contiguous. A guest 1 GiB
 * page gets 2 MiB leaves in direct level-2 sps (never a 1 GiB spte).
 * Invariants: a large spte's frame is RAM from end to end and holds no
 * write-tracked gfn (rmap.c, frame_tracked), and it never carries
 * SPTE_EXEC_GATED; it is in the rmap of its frame's first gfn.
 * Elsewhere guest large pages are mapped by direct sps of 4 KiB sptes.
 */
#define SPTE_ADDR_MASK	  PTE_ADDR_MASK(X86_MAXPHYADDR_MAX)
#define SPTE_NONLEAF_BITS (PTE_P | PTE_RW | PTE_US | PTE_A)
#define SPTE_LEAF_BITS	  (PTE_P | PTE_US | PTE_A | PTE_D)

/*
 * SPTE_GUEST_WRITABLE: the guest could write through this leaf without any
 * A/D update: the accumulated rights allow the write in this view and the
 * gpte (or large gpte) has D = 1.
 *
 * Invariants:
 *  - only in present leaf sptes;
 *  - PTE_RW set => SPTE_GUEST_WRITABLE set;
 *  - SPTE_GUEST_WRITABLE set and PTE_RW clear => the gfn was write-protected
 *    (shadowed as a guest table, and in sync) when the spte was last
 *    computed; while the gfn stays write-protected, PTE_RW stays clear;
 *  - when the last indirect sp of a gfn goes, or its tables go out of sync
 *    (unsync.c), rmap.c restores PTE_RW on exactly the sptes of that gfn
 *    with SPTE_GUEST_WRITABLE (unprotect), and takes it again when they
 *    come back in sync.
 */
#define SPTE_GUEST_WRITABLE_BIT 9
#define SPTE_GUEST_WRITABLE	(1ull << SPTE_GUEST_WRITABLE_BIT)
/*
 * SPTE_MMIO_DIRECT: a present leaf mapping a direct-MMIO gpa (mmu.h, struct
 * shadow_mmio_range), not RAM. Invariant: such an spte is never in the
 * reverse map (rmap.c) and so never write-protected; spte_in_rmap() is the
 * one test every rmap add/remove uses.
 */
#define SPTE_MMIO_DIRECT_BIT 10
#define SPTE_MMIO_DIRECT     (1ull << SPTE_MMIO_DIRECT_BIT)
/*
 * SPTE_EXEC_GATED: a kernel-view leaf of a RAM gfn the guest may execute
 * but that carries PTE_NX only because the VMM has not approved the gfn for
 * execution yet (mmu.h, shadow_config.exec_gate). shadow_exec_approve()
 * clears PTE_NX on exactly these sptes, shadow_exec_revoke() sets it back.
 * Invariant: set only in kernel-view leaf sptes computed with exec_gate on.
 */
#define SPTE_EXEC_GATED_BIT 11
#define SPTE_EXEC_GATED	    (1ull << SPTE_EXEC_GATED_BIT)
#define SPTE_SW_MASK	    (SPTE_GUEST_WRITABLE | SPTE_MMIO_DIRECT | SPTE_EXEC_GATED)

_Static_assert((SPTE_SW_MASK & ~PTE_AVL_LOW_MASK) == 0, "software spte bits are CPU-ignored bits");
_Static_assert((SPTE_SW_MASK & (PTE_FLAGS_LOW_MASK | SPTE_ADDR_MASK | PTE_NX | PTE_PKEY_MASK)) == 0,
	       "software spte bits overlap hardware bits");

static inline bool spte_present(u64 spte)
{
	return spte & PTE_P;
}

/* Is this leaf spte one the reverse map holds (present, guest RAM)? */
static inline bool spte_in_rmap(u64 spte)
{
	return spte_present(spte) && !(spte & SPTE_MMIO_DIRECT);
}

static inline u64 spte_to_addr(u64 spte)
{
	return spte & SPTE_ADDR_MASK;
}

static inline gfn_t spte_to_gfn(u64 spte)
{
	return gfn(spte_to_addr(spte) >> PAGE_SHIFT);
}

/* Does the present spte at `level` map a page (a 4 KiB or a 2 MiB leaf), not a table? */
static inline bool spte_is_leaf(unsigned level, u64 spte)
{
	return level == PG_LEVEL_4K || (spte & PTE_PS);
}

/* The index of the entry translating `gva` in a table at `level`. */
static inline unsigned gva_index(gva_t gva, unsigned level)
{
	return (gva.v >> (PAGE_SHIFT + SPTE_INDEX_BITS * (level - 1))) & (SPTE_PER_PAGE - 1);
}

/* 3. One page of the pool and its bookkeeping (struct shadow_mmu.sps[]). */
struct sp_parent {
	struct shadow_page *sp; /* the parent sp ... */
	u32 index;		/* ... and the index of the spte pointing at us */
};

struct shadow_page {
	gfn_t gfn;
	union sp_role role;
	u64 *spt;  /* hva of the 512 sptes */
	mpa_t mpa; /* where the CPU sees them */
	bool in_use;
	struct shadow_page *hash_next; /* sp_cache.c: chain of the bucket of gfn */
	/* pool.c: root LRU (level-4 sps only), most recently used first. */
	struct shadow_page *lru_prev, *lru_next;
	/* sp_cache.c: every spte that points at this sp (none for a root). */
	struct sp_parent *parents;
	u32 nr_parents, parents_cap;
	/* pt_write.c: writes since a fault last walked through this sp. */
	u32 write_flood_count;
	u32 pt_write_stamp; /* pt_write.c: visited in the current shadow_pt_write */
	/* fault.c item 2b: the call window is linked at this sp's entry for the window's gva. */
	bool window;
	/* unsync.c: the slot of this sp's gfn while it is out of sync (level 1 only), else NULL. */
	struct unsync_slot *unsync;
};

/*
 * 4. Read the sptes translating `gva` from `root` down, as the CPU walks
 * them: at each step `it.sptep` points at the spte at `it.level` of `it.sp`.
 * The body moves on by setting it.sp to the child (or NULL to stop).
 */
struct shadow_iter {
	const struct shadow_page *sp;
	unsigned level;
	const u64 *sptep;
};
#define for_each_shadow_entry(root, gva_, it)                                   \
	for ((it).sp = (root), (it).level = (root)->role.level;                 \
	     (it).sp && (it).level >= PG_LEVEL_4K &&                            \
	     ((it).sptep = &(it).sp->spt[gva_index((gva_), (it).level)], true); \
	     (it).level--)

#endif /* UMBRA_SHADOW_SP_H */
