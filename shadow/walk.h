/* SPDX-License-Identifier: MIT */
/*
 * The guest page-table walker: translate a gva to a gpa through the guest's
 * own page tables exactly as the CPU would (SDM Vol. 3A §4.5, §4.6, §4.8),
 * or produce the #PF the CPU would raise.
 *
 * It is a pure function of guest memory and the control registers (plus the
 * A/D updates when asked for), and serves twice: the shadow fault path walks
 * the guest tables before building sptes, and the tests use it as the
 * reference oracle the shadow tables are checked against.
 *
 * Usage:
 *	struct guest_walk walk;
 *	enum walk_result r = walk_guest(paging_mode_select(&ctl), &mem, &ctl,
 *					gva, ACC_WRITE, WALK_SET_AD, &walk);
 *	WALK_OK: walk.gpa; WALK_FAULT: inject walk.fault.
 */
#ifndef UMBRA_SHADOW_WALK_H
#define UMBRA_SHADOW_WALK_H

#include "umbra/types.h"
#include "shadow/x86.h"

/* Levels are numbered from the leaf: 1 = PTE (4 KiB) ... 4 = PML4E. */
#define PG_LEVEL_4K   1
#define PG_LEVEL_2M   2
#define PG_LEVEL_1G   3
#define PG_LEVEL_PML4 4
/* The deepest walk supported; becomes 5 with LA57. Arrays are indexed by level. */
#define WALK_MAX_LEVELS 4

/*
 * A paging mode: the shape of the guest's tables. The walker is written once
 * against this descriptor. Reserved-bit masks that depend on run-time state
 * (MAXPHYADDR, EFER.NXE) are added by the walker; the fixed ones live here.
 */
struct paging_mode {
	const char *name;
	unsigned levels;	 /* the root table is at level `levels` */
	unsigned bits_per_level; /* gva index bits consumed per level (512 entries: 9) */
	unsigned entry_size;	 /* bytes per gpte */
	unsigned va_bits;	 /* gva bits translated; the rest are the caller's (canonical) */
	u32 large_levels;	 /* bit L set: PS = 1 at level L maps a page */
	u64 addr_mask;		 /* physical-address field of an entry before the MAXPHYADDR cut */
	u64 rsvd[WALK_MAX_LEVELS + 1]; /* fixed reserved bits, PS = 0 form (level 1: the PTE) */
	u64 rsvd_large[WALK_MAX_LEVELS + 1]; /* fixed reserved bits, PS = 1 form */
	/*
	 * 32-bit paging's 4 MiB PDE (PSE-36, SDM Vol. 3A Table 4-4): bits
	 * 31:22 hold address bits 31:22 and bits 20:13 address bits 39:32;
	 * its reserved bits depend on MAXPHYADDR (the walker computes them).
	 */
	bool pse36;
	/*
	 * PAE paging outside long mode (§4.4): the root level's 4 entries are
	 * the PDPTE registers (struct walk_ctl), which a CR3 load filled from
	 * memory; they are never read from memory by the walk, have no R/W,
	 * U/S or A bits, and add no rights.
	 */
	bool pdpte_regs;
};

/* x86-64 4-level paging: CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 1, CR4.LA57 = 0 (§4.5). */
extern const struct paging_mode paging_mode_4level;
/*
 * 32-bit paging: CR0.PG = 1, CR4.PAE = 0 (§4.3): two levels of 1024 4-byte
 * entries, no NX, and with CR4.PSE = 1 a PDE with PS = 1 maps a 4 MiB page
 * (CR4.PSE = 0: PS is ignored and the PDE points to a page table).
 */
extern const struct paging_mode paging_mode_32bit;
extern const struct paging_mode paging_mode_32bit_pse;
/*
 * PAE paging: CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 0 (§4.4): 4 PDPTEs in
 * registers, then a PD and a PT of 512 8-byte entries; 2 MiB pages, NX with
 * EFER.NXE, and bits 62:MAXPHYADDR reserved in every entry.
 */
extern const struct paging_mode paging_mode_pae;

/*
 * Guest memory as the walker sees it. gpa_to_hva returns where the `len`
 * bytes at `gpa` live in the VMM, or NULL when any of them is not guest RAM
 * (a hole, MMIO, beyond the end). The memory stays owned by the caller.
 */
struct walk_mem {
	void *opaque;
	void *(*gpa_to_hva)(void *opaque, gpa_t gpa, size_t len);
};

/*
 * The guest control state a walk depends on. maxphyaddr (CPUID.80000008H:
 * EAX[7:0], 13..52) decides which high address bits are reserved.
 */
struct walk_ctl {
	u64 cr0, cr3, cr4, efer;
	unsigned maxphyaddr;
	/*
	 * PAE paging only: the PDPTE registers, as the last load (a CR3 write,
	 * or a CR0/CR4 write entering PAE paging) read them from the 32 bytes
	 * at CR3[31:5] (§4.4.1). Later stores there change nothing until the
	 * next load. walk_read_pdptes() does such a load.
	 */
	u64 pdpte[4];
};

/* The access being translated: a bitmask. No bits: a supervisor data read. */
#define ACC_WRITE (1u << 0) /* a write (never together with ACC_FETCH) */
#define ACC_USER  (1u << 1) /* made at CPL3 (user-mode access, SDM §4.6) */
#define ACC_FETCH (1u << 2) /* an instruction fetch */
/* RFLAGS.AC = 1: under SMAP, explicit supervisor data accesses may touch user pages. */
#define ACC_AC_SET (1u << 3)

/* Walk flags. */
#define WALK_PEEK   0u	      /* no side effects: guest memory is only read */
#define WALK_SET_AD (1u << 0) /* set A/D bits as the CPU does, on success only */

/* An exception ready for injection. */
struct walk_fault {
	u8 vector;	/* X86_EXC_PF */
	u32 error_code; /* PFERR_* */
	gva_t cr2;	/* the faulting gva */
};

/*
 * Everything a walk saw. Per-level arrays are indexed by level
 * (1..mode->levels); entries for levels not reached are zero.
 *
 * rights accumulate from the root down in PTE bit positions: PTE_RW and
 * PTE_US are the AND over the levels walked, PTE_NX the OR (SDM §4.6.1).
 */
struct guest_walk {
	gva_t gva;
	u32 access; /* ACC_* as passed */
	/*
	 * WALK_OK: the level of the entry that maps the page (1, 2 or 3), or 0
	 * with paging off. WALK_FAULT / WALK_BAD_GPA: the level at which the
	 * walk stopped (for a permission fault, the leaf level).
	 */
	unsigned level;
	gfn_t table_gfn[WALK_MAX_LEVELS + 1]; /* the table read at this level */
	gpa_t gpte_gpa[WALK_MAX_LEVELS + 1];  /* where its gpte lives */
	u64 gpte[WALK_MAX_LEVELS + 1];	      /* the gpte, as in memory after the walk */
	u64 rights_at[WALK_MAX_LEVELS + 1];   /* rights accumulated down to this level */
	u64 rights;		 /* rights of the whole translation (rights_at[level]) */
	gpa_t gpa;		 /* WALK_OK: page base + offset */
	struct walk_fault fault; /* WALK_FAULT only */
};

/* Results, kept >= 0 so they never mix with -errno. */
enum walk_result {
	WALK_OK = 0,	       /* walk->gpa is the translation */
	WALK_FAULT,	       /* the guest gets walk->fault */
	WALK_BAD_GPA,	       /* a guest table (walk->table_gfn[walk->level]) is not guest RAM */
	WALK_UNSUPPORTED_MODE, /* paging is on in a mode other than the one passed */
};

/*
 * The paging mode the control registers select (SDM Vol. 3A §4.1.1), or
 * NULL when paging is off or the mode is not implemented (5-level paging).
 */
const struct paging_mode *paging_mode_select(const struct walk_ctl *ctl);

/*
 * Read the gpte at `where` as the CPU reads one: a single aligned load of
 * mode->entry_size bytes, zero-extended. False if it is not guest RAM.
 */
bool walk_read_gpte(const struct paging_mode *mode, const struct walk_mem *mem, gpa_t where,
		    u64 *gpte);

/* The PDPT address CR3 holds in PAE paging: bits 31:5 (§4.4.1). */
#define CR3_PAE_PDPT_MASK GENMASK_ULL(31, 5)

/*
 * A PDPTE load (§4.4.1): the 4 PDPTEs at CR3[31:5] into pdpte[]. False if
 * they are not all guest RAM, or a present one has a reserved bit set: the
 * instruction loading them raises #GP(0) and changes nothing.
 */
bool walk_read_pdptes(const struct walk_mem *mem, u64 cr3, unsigned maxphyaddr, u64 pdpte[4]);

/* Does the present `gpte` at `level` map a page rather than point to a table? */
bool walk_gpte_is_leaf(const struct paging_mode *mode, unsigned level, u64 gpte);

/*
 * The bits set in the present `gpte` at `level` that must be 0 (§4.3,
 * §4.5.4): 0 when the gpte is well-formed. `nxe`: EFER.NXE (4-level only).
 */
u64 walk_gpte_rsvd(const struct paging_mode *mode, unsigned maxphyaddr, bool nxe, unsigned level,
		   u64 gpte);

/*
 * The gpa a well-formed present `gpte` at `level` points to: the next table,
 * or the base of the page it maps (a 4 MiB page's base decoded from PSE-36).
 */
u64 walk_gpte_addr(const struct paging_mode *mode, unsigned maxphyaddr, unsigned level, u64 gpte);

/*
 * Translate `gva` for `access` (ACC_*) through the guest tables rooted at
 * ctl->cr3, filling *walk.
 *
 * - CR0.PG = 0: the gva is the gpa (identity); `mode` is not used and may
 *   be NULL. The caller passes the linear address as the CPU forms it.
 * - Otherwise `mode` must be what paging_mode_select(ctl) returns, else
 *   WALK_UNSUPPORTED_MODE.
 * - The gva must be canonical: a non-canonical gva is #GP/#SS, not #PF, and
 *   is the caller's to raise. Bits above mode->va_bits are ignored.
 * - flags: WALK_PEEK never writes guest memory; WALK_SET_AD sets A in every
 *   gpte walked and D in the leaf for a write, only if the walk succeeds.
 *
 * Returns a walk_result; never fails for lack of host resources. Guest
 * memory is touched only through mem->gpa_to_hva.
 */
enum walk_result walk_guest(const struct paging_mode *mode, const struct walk_mem *mem,
			    const struct walk_ctl *ctl, gva_t gva, u32 access, u32 flags,
			    struct guest_walk *walk) __must_check;

/*
 * Set A in the gptes `walk` read above `level` (root first), as the CPU does
 * in the entries it goes through, each by compare-and-swap against the value
 * the walk read (SDM Vol. 3A §4.8); for a walk that stopped at `level` with a
 * fault. False if one changed meanwhile or is not RAM.
 */
bool walk_set_accessed_above(const struct paging_mode *mode, const struct walk_mem *mem,
			     struct guest_walk *walk, unsigned level) __must_check;

/*
 * For a successful walk: would WALK_SET_AD write nothing? True when every
 * gpte walked already has A, and the leaf D for a write access.
 */
bool walk_ad_already_set(const struct paging_mode *mode, const struct guest_walk *walk);

/* The size in bytes of the page an entry at `level` maps (4 KiB << bits_per_level*(level-1)). */
static inline u64 walk_level_page_size(const struct paging_mode *mode, unsigned level)
{
	return PAGE_SIZE << (mode->bits_per_level * (level - 1));
}

#endif /* UMBRA_SHADOW_WALK_H */
