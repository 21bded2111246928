/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU: the interface the VMM uses (shared/DESIGN.md, "The shadow
 * MMU"; glossary in shadow/shadow.h).
 *
 * The guest runs deprivileged at real CPL3 and the real CR3 always holds a
 * shadow root built here: a 4-level table that maps gva directly to mpa
 * (guest RAM sits at mpa == gpa, so a leaf spte holds the gpa of the guest
 * page). Shadow tables are kept *in sync* with the guest's tables: every
 * guest table page that is shadowed is write-protected in every root, and
 * the VMM reports each emulated write to one (shadow_pt_write), so no spte
 * is stale and a CR3 switch or invlpg needs only a real TLB flush (the
 * flush callback). The exception (shadow_config.unsync, shadow/unsync.c):
 * a guest leaf table (4 KiB PTEs) the guest writes may go *out of sync*:
 * it is no longer write-protected, the guest's stores to it run without a
 * trap, and its sptes are brought in line at the guest's next TLB flush
 * (CR3 load, invlpg, invpcid, flush, or a mode change that flushes), the
 * way a CPU's TLB may hold a translation until then (SDM Vol. 3A
 * §4.10.4.3). A leaf spte is then either what the gpte says now or what it
 * said at some point since the last flush that covered it.
 *
 * Two roots per guest CR3 ("views"):
 *   kernel  the guest is at virtual CPL0: guest-supervisor and guest-user
 *           pages are both mapped with real U=1 (the guest kernel runs at
 *           real CPL3), with the guest's SMEP/SMAP rules applied;
 *   user    the guest is at virtual CPL3: guest-supervisor pages are never
 *           mapped.
 *
 * Memory: every shadow table page comes from one pool given at creation
 * (a KVM memslot in the VMM: each page has an mpa and an hva). When the pool
 * is exhausted, roots and shadow pages are evicted, least recently used
 * first, and rebuilt on demand: the library never fails for lack of pool.
 *
 * Stores: every store into a shadow table goes through the shadow writer
 * (struct shadow_writer), batched per operation. On hosts where KVM shadows
 * the VM's own page tables (shared/HOST.md) the VMM must have the vCPU
 * replay them; the library only assumes the writer updates the hva copy
 * before returning, so its own reads see its stores.
 *
 * The monitor: the VMM may reserve PML4 slots for itself (the hypervisor
 * hole 0xffff800000000000-0xffff87ffffffffff is PML4 index 256). Every root
 * carries the VMM's fixed entries there; a guest that maps anything in a
 * reserved slot gets SHADOW_MONITOR_CONFLICT from the fault path.
 *
 * Threading: a struct shadow_mmu is used by one vCPU thread; no locking.
 */
#ifndef UMBRA_SHADOW_MMU_H
#define UMBRA_SHADOW_MMU_H

#include "shadow/walk.h"
#include "umbra/types.h"

struct shadow_mmu;

enum shadow_view { SHADOW_VIEW_KERNEL = 0, SHADOW_VIEW_USER = 1 };
#define SHADOW_NR_VIEWS 2

/* The pool: nr_pages contiguous 4 KiB pages, at mpa `base` and hva `hva`. */
struct shadow_pool {
	mpa_t base;
	void *hva;
	u64 nr_pages;
	/*
	 * Every byte of the pool is 0 at shadow_create (fresh anonymous
	 * memory), and the host has never seen it as page tables: its pages
	 * are handed out before any reused one (pool.c). False: each page is
	 * zeroed through the writer at its first use, like a reused one.
	 */
	bool zeroed;
};

/*
 * The shadow writer. `store` must write `val` at `sptep` (an hva inside the
 * pool, whose mpa is `spte_mpa`) before it returns; it may also queue the
 * store for the vCPU to replay. `commit` closes the batch of one operation
 * (one shadow_fault, shadow_pt_write, shadow_set_cr3, ...): the VMM applies
 * queued stores before the guest runs again. `commit` may be NULL.
 */
struct shadow_writer {
	void *opaque;
	void (*store)(void *opaque, mpa_t spte_mpa, u64 *sptep, u64 val);
	void (*commit)(void *opaque);
};

/*
 * Real-TLB flushes the VMM must perform before the guest runs again, because
 * sptes were removed or had permissions reduced. SHADOW_FLUSH_GVA names one
 * gva in the current root; SHADOW_FLUSH_ALL everything (including global).
 */
enum shadow_flush_kind { SHADOW_FLUSH_GVA, SHADOW_FLUSH_ALL };
struct shadow_flusher {
	void *opaque;
	void (*flush)(void *opaque, enum shadow_flush_kind kind, gva_t gva);
};

/*
 * Direct MMIO: a guest-physical range that is not RAM but that the vCPU's
 * own accesses reach at mpa == gpa (in the VMM: KVM's in-kernel LAPIC and
 * IOAPIC, which only the vCPU's accesses can drive). A guest mapping of a
 * page in such a range is shadowed like RAM (mpa == gpa, the guest's rights)
 * instead of returning SHADOW_MMIO, with these differences:
 *   - the leaf spte carries the gpte's caching bits (PWT, PCD, and PAT for
 *     a 4 KiB gpte; inside a guest large page always PWT|PCD, i.e. UC,
 *     since the direct sp's role does not record the large gpte's bits);
 *   - it is never write-protected and never in the reverse map (no guest
 *     table can live there: a walk through a non-RAM table is a guest #PF
 *     with RSVD, fault.c item 1);
 *   - it is marked SPTE_MMIO_DIRECT (sp.h).
 * Ranges are page-aligned, at most SHADOW_MAX_MMIO_DIRECT, and must not
 * overlap guest RAM (shadow_create refuses the config otherwise).
 */
#define SHADOW_MAX_MMIO_DIRECT 4
struct shadow_mmio_range {
	gpa_t base;
	u64 size; /* bytes, a multiple of 4 KiB, > 0 */
};

struct shadow_config {
	struct walk_mem mem;	     /* guest RAM: gpa -> hva, NULL if not RAM */
	struct shadow_pool pool;     /* where shadow tables live */
	struct shadow_writer writer; /* how stores into them are made */
	struct shadow_flusher flusher;
	unsigned maxphyaddr; /* guest MAXPHYADDR, for reserved-bit checks */
	/* Added after the first version of this header (zero: none): */
	unsigned nr_mmio_direct;
	struct shadow_mmio_range mmio_direct[SHADOW_MAX_MMIO_DIRECT];
	/*
	 * Execution gate (DESIGN.md, "The instructions x86 does not trap"):
	 * when true, a kernel-view leaf spte of a RAM gfn the guest may execute
	 * carries NX until the VMM approves the gfn (shadow_exec_approve,
	 * after scanning and patching it); a kernel-view fetch there is
	 * SHADOW_EXEC_UNSCANNED. The user view is never gated.
	 */
	bool exec_gate;
	/*
	 * Prefetch (shadow/prefetch.c): after a fault fixes a 4 KiB leaf, also
	 * fill the empty sptes of its aligned group of this many entries that a
	 * fault would fill now, and a kernel-view fault's own entry in the
	 * user view's sp of the table. 0 or 1: off; else a power of two <= 512.
	 */
	unsigned prefetch;
	/*
	 * Out-of-sync leaf tables (shadow/unsync.c): at most this many guest
	 * 4 KiB tables at once (0: off, every table stays write-protected;
	 * at most SHADOW_MAX_UNSYNC). Each costs a 4 KiB snapshot, and every
	 * CR3 load compares them all with guest memory.
	 */
	unsigned unsync;
	/*
	 * Large sptes (sp.h, fault.c item 4b): map a whole 2 MiB frame of a
	 * guest 2 MiB or 1 GiB page with one spte where that is exact (RAM from
	 * end to end, no write-tracked gfn in it, no execution gate needed).
	 * false: every guest page is mapped 4 KiB at a time.
	 */
	bool large_pages;
};
#define SHADOW_MAX_UNSYNC 64

/*
 * Create an MMU over `cfg` (copied). Returns NULL on allocation failure, a
 * pool < 8 pages, an unaligned pool, a bad prefetch or unsync. The guest mode
 * starts as 4-level paging with CR0.WP = 1 and EFER.NXE = 1 (CR3 = 0) until
 * shadow_set_mode and shadow_set_cr3 say otherwise. With CR0.PG = 0 the
 * roots map gva == gpa (identity). Leaf sptes may carry NX: the host runs
 * with EFER.NXE = 1.
 */
struct shadow_mmu *shadow_create(const struct shadow_config *cfg);
void shadow_destroy(struct shadow_mmu *mmu);

/*
 * Reserve PML4 slot `index` for the VMM: every root, existing and future,
 * carries `pml4e` there (the VMM makes it supervisor-only). Returns 0 or
 * -EINVAL for a bad index or an index already reserved.
 */
int shadow_reserve_pml4(struct shadow_mmu *mmu, unsigned index, u64 pml4e) __must_check;

/*
 * The monitor's call window (vmm/monitor.h): 2 MiB of the guest kernel's own
 * address space, in a hole its tables leave empty, where the VMM maps code
 * that the guest kernel's patched sites call (a `call rel32` reaches only
 * +-2 GiB, so a reserved PML4 slot is too far from kernel text). Unlike a
 * reserved slot it lives inside the guest's tables: its PML4E for `gva`
 * must be present, and below it the first entry that is not present (the
 * PDPTE, or the PDE) is where the kernel view's shadow of that table links
 * the VMM's own: `pdpte` (a PD whose entry for gva is `pde`) or `pde` (the
 * window's PT). That happens at the first kernel-view fault in the window,
 * instead of a guest #PF. A guest that maps anything in the window (at the
 * fault, or later by a PT write, which unlinks it) gets
 * SHADOW_MONITOR_CONFLICT. The user view never has the window. Returns 0,
 * or -EINVAL for an unaligned gva or a window already set.
 */
int shadow_set_window(struct shadow_mmu *mmu, gva_t gva, u64 pde, u64 pdpte) __must_check;

/* Unlink the call window everywhere and forget it (shadow_set_window may set it again). */
void shadow_clear_window(struct shadow_mmu *mmu);

/*
 * Mode bits that change what a gpte means: CR0.WP, CR0.PG, CR4.PAE/PSE/PGE/
 * PCIDE/SMEP/SMAP, EFER.NXE/LMA. A change of CR0.PG or CR4.PAE/PSE/PGE/
 * PCIDE flushes the TLB (SDM Vol. 3A §4.10.4.1) and syncs every
 * out-of-sync table; the others (e.g. the VMM's SMAP switch at stac/clac)
 * do not. Changing any of them that is part of the
 * role makes new roots; old ones stay cached and become reachable again if
 * the mode returns. 4-level, 32-bit and PAE paging are shadowed
 * (paging_mode_select; 32-bit and PAE: union sp_role in sp.h); the real CPU
 * always walks 4-level shadow tables.
 * After a change the VMM reloads the root with shadow_switch_view (or
 * shadow_set_cr3): the current roots may no longer be the mode's.
 */
void shadow_set_mode(struct shadow_mmu *mmu, u64 cr0, u64 cr4, u64 efer);

/*
 * The guest wrote CR3 (and the VMM emulated it). Returns the mpa of the
 * root to load in the real CR3 for `view`, building it if needed. A CR3
 * write with CR4.PCIDE=1 and bit 63 set does not flush; otherwise the VMM
 * flushes the real TLB for that PCID. Out-of-sync tables are synced at
 * every CR3 write, flushing or not (more than the CPU promises).
 */
mpa_t shadow_set_cr3(struct shadow_mmu *mmu, u64 cr3, enum shadow_view view);

/*
 * PAE paging: the guest loaded its PDPTE registers (walk_read_pdptes: a CR3
 * write, or a CR0/CR4 write in PAE paging). The VMM passes them before the
 * shadow_set_cr3 or shadow_set_mode of the same instruction, then reloads
 * the root (shadow_set_cr3 or shadow_switch_view), which follows them. As
 * on the CPU, a store into the PDPT changes nothing until the next load.
 */
void shadow_set_pdptes(struct shadow_mmu *mmu, const u64 pdpte[4]);

/* The root for the current CR3 in `view` (the guest changed virtual CPL). */
mpa_t shadow_switch_view(struct shadow_mmu *mmu, enum shadow_view view);

enum shadow_fault_result {
	SHADOW_FIXED = 0,	 /* sptes installed: retry the access */
	SHADOW_GUEST_FAULT,	 /* reflect #PF: info.error_code, info.cr2 */
	SHADOW_EMULATE_PT_WRITE, /* a write to a write-protected guest table at info.gpa:
				    emulate it, then call shadow_pt_write */
	SHADOW_MMIO,		 /* the gva maps a gpa that is not RAM nor direct MMIO
				    (info.gpa): emulate */
	SHADOW_MONITOR_CONFLICT, /* the guest mapped a reserved PML4 slot or the call
				    window: stop the VM */
	/* Added after the first version of this header: */
	SHADOW_EMULATE_ACCESS, /* the guest may make this access but the view cannot map
				  the page: a kernel-view data access to a guest-user page
				  with CR4.SMAP = 1 and RFLAGS.AC = 1, or a kernel-view fetch
				  from a guest-user page with SMAP = 1 and SMEP = 0 (SMAP
				  does not cover fetches): emulate the instruction against
				  info.gpa (guest RAM) */
	SHADOW_UNSUPPORTED,    /* paging is on in a mode other than 4-level or 32-bit
				  (PAE paging outside long mode, 5-level): not
				  shadowed, stop the VM */
	SHADOW_EXEC_UNSCANNED, /* (exec_gate only) a kernel-view fetch the guest may make
				  from RAM gfn info.gpa not yet approved for execution:
				  the spte is installed (NX); scan the frame, then
				  shadow_exec_approve and retry */
};

struct shadow_fault_info {
	u32 error_code; /* SHADOW_GUEST_FAULT: PFERR_* for the guest */
	gva_t cr2;	/* SHADOW_GUEST_FAULT: the guest's CR2 */
	gpa_t gpa;	/* SHADOW_EMULATE_PT_WRITE, SHADOW_MMIO */
};

/*
 * A real #PF at `gva` in `view`. `access` is ACC_* (walk.h) as the guest
 * would have made it: ACC_USER iff the view is user, ACC_WRITE/ACC_FETCH
 * from the real error code, ACC_AC_SET if the guest's virtual RFLAGS.AC is
 * set. Walks the guest tables (setting A/D as the CPU would) and either
 * installs sptes or says what the VMM must do.
 */
enum shadow_fault_result shadow_fault(struct shadow_mmu *mmu, gva_t gva, u32 access,
				      enum shadow_view view, struct shadow_fault_info *info);

/*
 * A prefault: what shadow_fault(gva, access, SHADOW_VIEW_USER) would do
 * now, done only where the guest cannot tell it apart from that fault made
 * later by its own access: the guest tables allow the access and already
 * have every A bit, and D for a write, that the access would set. Nothing
 * is written to guest memory and nothing is reported; any other outcome
 * (a guest fault, MMIO, a guest table the write would have to go through)
 * leaves it to the access's own fault. `access` must have ACC_USER.
 * Returns whether sptes now map the access (counted in prefaults_fixed).
 *
 * For the VMM that has just delivered a guest #PF for a user access and
 * sees the guest's handler return to the instruction: the fault that
 * instruction takes at once on the empty spte is one trap it need not take.
 */
bool shadow_prefault(struct shadow_mmu *mmu, gva_t gva, u32 access);

/*
 * The VMM emulated a guest write of `len` bytes (1..8, or 16 for
 * cmpxchg16b) at `gpa`, which lies in a write-protected guest table; `old`
 * and `new` are the bytes before and after. Updates (or zaps) every spte
 * that shadows the written gptes, and counts the write for flood detection:
 * a table written repeatedly without being walked is unshadowed.
 * Contract: the VMM calls this for *every* write it makes into guest memory
 * that lands on a gfn the library shadows as a table, whatever produced the
 * write (an emulated instruction after SHADOW_EMULATE_PT_WRITE, an emulated
 * SHADOW_EMULATE_ACCESS or MMIO-adjacent instruction, the VMM's own writes,
 * device DMA); otherwise sptes go stale.
 */
void shadow_pt_write(struct shadow_mmu *mmu, gpa_t gpa, unsigned len, const void *old,
		     const void *new_bytes);

/*
 * Stop shadowing guest table `gfn` now (the VMM saw the guest write it with
 * an instruction it cannot emulate: the page is data now), as write-flood
 * detection would after a few writes. Returns whether the gfn is no longer
 * write-protected, so that the guest's write can simply be retried: false
 * while it is a table of a live root or an exec-approved frame.
 */
bool shadow_unshadow_gfn(struct shadow_mmu *mmu, gfn_t gfn);

/*
 * Execution gate (shadow_config.exec_gate). shadow_exec_approve: the VMM has
 * scanned (and patched) RAM frame `gfn`: drop the gate's NX from every
 * kernel-view spte of it, and write-track it from now on exactly like a
 * guest page table (every guest write to it is SHADOW_EMULATE_PT_WRITE, and
 * the VMM's emulated writes go through shadow_pt_write as usual). Idempotent.
 * shadow_exec_revoke: the guest is about to write the frame (its code may
 * change): put the gate's NX back and stop tracking it. Returns whether the
 * gfn was approved (false: nothing done).
 */
void shadow_exec_approve(struct shadow_mmu *mmu, gfn_t gfn);
bool shadow_exec_revoke(struct shadow_mmu *mmu, gfn_t gfn);
/* Is `gfn` approved for execution now? */
bool shadow_exec_approved(const struct shadow_mmu *mmu, gfn_t gfn);

/*
 * invlpg gva (all views, all roots of the current PCID). Out-of-sync
 * tables: the gptes at gva's PT index are synced in every one of them (the
 * one that translates gva among them).
 */
void shadow_invlpg(struct shadow_mmu *mmu, gva_t gva);
/* invpcid types 0-3 (SDM Vol. 2A INVPCID); all but a type 0 sync every out-of-sync table. */
void shadow_invpcid(struct shadow_mmu *mmu, unsigned type, u16 pcid, gva_t gva);
enum shadow_flush_scope { SHADOW_FLUSH_NONGLOBAL, SHADOW_FLUSH_EVERYTHING };
void shadow_flush(struct shadow_mmu *mmu, enum shadow_flush_scope scope);

/* Counters (DESIGN.md "Statistics"). All monotonic except the *_live ones. */
struct shadow_stats {
	u64 faults;	     /* shadow_fault calls */
	u64 faults_fixed;    /* ... that installed sptes */
	u64 faults_guest;    /* ... reflected to the guest */
	u64 faults_pt_write; /* ... writes to write-protected tables */
	u64 faults_mmio;
	u64 faults_spurious; /* ... already fixed (another view or a racing fill) */
	u64 sp_live, sp_created, sp_zapped;
	u64 rmap_live;	      /* leaf sptes in the reverse map */
	u64 write_protects;   /* gfns write-protected when first shadowed */
	u64 pt_writes;	      /* shadow_pt_write calls */
	u64 pt_write_updates; /* sptes updated in place by a PT write */
	u64 pt_write_zaps;    /* sptes zapped by a PT write */
	u64 unshadows;	      /* tables unshadowed by write-flood detection */
	u64 root_hits, root_misses;
	u64 roots_live;
	u64 evictions; /* shadow pages freed to refill the pool */
	u64 flushes;   /* invlpg/invpcid/flush calls */
	u64 stores;    /* stores through the shadow writer */
	/* Added after the first version of this header: */
	u64 faults_emulate_access; /* SHADOW_EMULATE_ACCESS results (SMAP) */
	u64 faults_monitor_conflict;
	u64 faults_unsupported;
	u64 faults_mmio_direct;	   /* ... fixed by mapping a direct-MMIO page (config) */
	u64 faults_exec_unscanned; /* SHADOW_EXEC_UNSCANNED results (exec_gate) */
	u64 exec_approves, exec_revokes;
	u64 window_links;   /* the call window linked into a shadow table (shadow_set_window) */
	u64 prefetched;	    /* leaf sptes filled beside a fixed fault (config prefetch) */
	u64 unsyncs;	    /* guest leaf tables let out of sync (config unsync) */
	u64 unsync_ends;    /* ... write-protected again (their slot was needed, or an
			       upper-level use of the frame) */
	u64 unsync_syncs;   /* TLB flushes that brought out-of-sync tables in line */
	u64 unsync_updates; /* sptes those syncs changed */
	/*
	 * Fixed faults inside a guest large page (paging on), by a 2 MiB spte
	 * or in a direct sp of 4 KiB sptes.
	 */
	u64 faults_fixed_large;
	u64 large_maps; /* 2 MiB sptes installed (config large_pages) */
	u64 large_zaps; /* ... zapped because a gfn of their frame became tracked */
	/*
	 * Faults in guest large pages (paging on, config large_pages) that got
	 * no 2 MiB spte, by why; writes to guest tables through the kernel's
	 * direct map count as large_tracked too.
	 */
	u64 large_not_ram; /* the frame is not RAM from end to end */
	u64 large_tracked; /* a gfn of the frame is write-tracked (a guest table, approved code) */
	u64 large_gated;   /* a kernel fetch in an executable page: the gate is per 4 KiB */
	u64 large_data_only; /* 2 MiB sptes made NX for data: the page is kernel-executable */
	u64 prefaults;	     /* shadow_prefault calls */
	u64 prefaults_fixed; /* ... that mapped the access */
	u64 root_prefills;   /* a new root's entries linked to existing sps (root.c item 1b) */
	u64 prefetched_other_view; /* a kernel-view fault's entry filled in the user view */
	u64 unshadows_inactive; /* sps unshadowed at a write: no root of the current CR3 has them */
	u64 pool_clears;	/* stores zeroing a reused pool page's entries (pool.c) */
};

const struct shadow_stats *shadow_get_stats(const struct shadow_mmu *mmu);

/*
 * For tests and the oracle: translate `gva` through the live shadow root of
 * `view` exactly as the MMU would (real CPL3 for both views, since the guest
 * runs there). Returns true and the mapped mpa and the effective rights
 * (PTE_RW, PTE_US, PTE_NX accumulated as the hardware does) if mapped.
 * False for a view with no current root and for a reserved (monitor) slot.
 */
bool shadow_translate(const struct shadow_mmu *mmu, enum shadow_view view, gva_t gva, mpa_t *mpa,
		      u64 *rights);

#endif /* UMBRA_SHADOW_MMU_H */
