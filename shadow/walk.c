/* SPDX-License-Identifier: MIT */
/*
 * The guest page-table walker (see walk.h for the interface).
 *
 * What the CPU does to translate a gva, and therefore what this file does,
 * in order (SDM Vol. 3A §4.5 for the walk, §4.6 for access rights, §4.7 for
 * the error code, §4.8 for the accessed and dirty flags):
 *
 *  1. Pick the translation: paging off means the gva is the gpa; otherwise
 *     the control registers must select the paging mode we were given.
 *  2. Find the gpte for this level: the root table comes from CR3, each
 *     lower table from the gpte above; the gva bits for the level index it.
 *  3. Read the gpte from guest memory. A table outside guest RAM ends the
 *     walk with WALK_BAD_GPA: no #PF models it, the caller decides.
 *  4. P = 0: a not-present #PF (error code P = 0).
 *  5. A reserved bit set: a #PF with P = 1 and RSVD = 1. Reserved are the
 *     address bits at and above MAXPHYADDR, NX while EFER.NXE = 0, PS in a
 *     PML4E, and the address bits below a large page's base but above PAT.
 *  6. Accumulate the access rights: R/W and U/S are ANDed over the levels,
 *     XD (NX) is ORed.
 *  7. Stop at the leaf: a PTE, or a PDE / PDPTE with PS = 1.
 *  8. Check the access against the accumulated rights: U/S, R/W with CR0.WP,
 *     NX, SMEP and SMAP. A violation is a #PF with P = 1.
 *  9. Compose the #PF error code: P and RSVD from above, W and U/S from the
 *     access, I/D for a fetch only when EFER.NXE = 1 or CR4.SMEP = 1.
 * 10. Form the gpa: the page base from the leaf plus the gva's offset bits.
 * 11. Set A in every gpte used and D in the leaf for a write, atomically,
 *     as the CPU's locked updates do.
 *
 * Choice for 11: the SDM lets a CPU set A bits on a walk that then faults;
 * we set A/D only when the whole walk succeeds (as KVM's walker does), so a
 * faulting walk never writes guest memory. A guest cannot tell the
 * difference through any architectural guarantee.
 *
 * LIMITATION: protection keys (CR4.PKE/PKS, PFERR_PK) and shadow-stack
 * accesses (CET, PFERR_SS) are not checked.
 * LIMITATION: implicit supervisor accesses (descriptor-table reads made at
 * CPL3, which SMAP checks whatever RFLAGS.AC says) are not modelled.
 * LIMITATION: 1 GiB pages are taken as supported (CPUID.80000001H:EDX[26]);
 * on a CPU without them PDPTE.PS = 1 would be a reserved-bit fault.
 * LIMITATION: 5-level paging is not walked (WALK_UNSUPPORTED_MODE).
 *
 * 32-bit paging (§4.3) is the same walk on 4-byte gptes: no NX, no reserved
 * bits but in a 4 MiB PDE, whose address is split (PSE-36), and a #PF
 * reports I/D only under SMEP. A gpte is returned zero-extended to 64 bits,
 * so the flag bits sit where 4-level paging has them.
 *
 * PAE paging (§4.4) is 4-level paging's PD and PT under 4 PDPTE registers
 * instead of a PML4 and a PDPT in memory: item 3 takes the level-3 entry
 * from walk_ctl.pdpte[], which holds no rights (item 6) and gets no A bit
 * (item 11). Bits 62:MAXPHYADDR are reserved in every PAE entry (SDM Tables
 * 4-8 to 4-11; KVM checks only 51:MAXPHYADDR there).
 */
#include "shadow/walk.h"

#include "umbra/log.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "gptes are read as host integers");
_Static_assert(WALK_OK == 0 && WALK_FAULT > 0 && WALK_BAD_GPA > 0 && WALK_UNSUPPORTED_MODE > 0,
	       "walk results are >= 0");

/* The rights a translation accumulates, in their PTE bit positions (item 6). */
#define RIGHTS_AND_MASK (PTE_RW | PTE_US) /* allowed only if set at every level */
#define RIGHTS_OR_MASK	PTE_NX		  /* denied if set at any level */

const struct paging_mode paging_mode_4level = {
	.name = "4-level",
	.levels = 4,
	.bits_per_level = 9,
	.entry_size = sizeof(u64),
	.va_bits = 48,
	.large_levels = (1u << PG_LEVEL_2M) | (1u << PG_LEVEL_1G),
	.addr_mask = PTE_ADDR_MASK(X86_MAXPHYADDR_MAX),
	/* PS (bit 7) must be 0 in a PML4E (SDM Table 4-15). */
	.rsvd = { [PG_LEVEL_PML4] = PTE_PS },
	/* Address bits between PAT (bit 12) and the page base (Tables 4-16, 4-18). */
	.rsvd_large = { [PG_LEVEL_2M] = PTE_RSVD_2M_MASK, [PG_LEVEL_1G] = PTE_RSVD_1G_MASK },
};

const struct paging_mode paging_mode_32bit = {
	.name = "32-bit",
	.levels = 2,
	.bits_per_level = 10,
	.entry_size = sizeof(u32),
	.va_bits = 32,
	.addr_mask = GENMASK_ULL(31, 12),
};

const struct paging_mode paging_mode_32bit_pse = {
	.name = "32-bit (PSE)",
	.levels = 2,
	.bits_per_level = 10,
	.entry_size = sizeof(u32),
	.va_bits = 32,
	.large_levels = 1u << PG_LEVEL_2M,
	.addr_mask = GENMASK_ULL(31, 12),
	.pse36 = true,
};

/* Bits 62:52, reserved in every PAE entry; 63 too in a PDPTE, with 8:5 and 2:1 (§4.4.2). */
#define PAE_RSVD_HIGH  GENMASK_ULL(62, X86_MAXPHYADDR_MAX)
#define PAE_RSVD_PDPTE (PTE_NX | PAE_RSVD_HIGH | GENMASK_ULL(8, 5) | GENMASK_ULL(2, 1))

const struct paging_mode paging_mode_pae = {
	.name = "PAE",
	.levels = 3,
	.bits_per_level = 9,
	.entry_size = sizeof(u64),
	.va_bits = 32,
	.large_levels = 1u << PG_LEVEL_2M,
	.addr_mask = PTE_ADDR_MASK(X86_MAXPHYADDR_MAX),
	.rsvd = { [PG_LEVEL_4K] = PAE_RSVD_HIGH,
		  [PG_LEVEL_2M] = PAE_RSVD_HIGH,
		  [PG_LEVEL_1G] = PAE_RSVD_PDPTE },
	.rsvd_large = { [PG_LEVEL_2M] = PAE_RSVD_HIGH | PTE_RSVD_2M_MASK },
	.pdpte_regs = true,
};

/* Item 1: the mode CR0.PG, CR4.PAE, CR4.PSE, EFER.LMA and CR4.LA57 select (§4.1.1). */
const struct paging_mode *paging_mode_select(const struct walk_ctl *ctl)
{
	if (!(ctl->cr0 & CR0_PG))
		return NULL;
	if (!(ctl->cr4 & CR4_PAE)) /* EFER.LMA = 1 needs PAE: this is legacy 32-bit paging */
		return (ctl->cr4 & CR4_PSE) ? &paging_mode_32bit_pse : &paging_mode_32bit;
	if (!(ctl->efer & EFER_LMA))
		return &paging_mode_pae;
	if (!(ctl->cr4 & CR4_LA57))
		return &paging_mode_4level;
	return NULL; /* 5-level paging */
}

/* Items 3, 6 and 11: is `level` PAE's PDPTE level, whose entries are registers? */
static bool is_pdpte_reg(const struct paging_mode *mode, unsigned level)
{
	return mode->pdpte_regs && level == mode->levels;
}

/* Item 2: the gva bits below the part that `level` translates. */
static unsigned level_shift(const struct paging_mode *mode, unsigned level)
{
	return PAGE_SHIFT + mode->bits_per_level * (level - 1);
}

/* Item 2: the index of the gpte for `gva` in a table at `level`. */
static unsigned gpte_index(const struct paging_mode *mode, gva_t gva, unsigned level)
{
	u64 index = (gva.v >> level_shift(mode, level)) & ((1ull << mode->bits_per_level) - 1);

	/* PAE's PDPT has 4 entries, for gva bits 31:30. */
	return (unsigned)(is_pdpte_reg(mode, level) ? index & 3 : index);
}

/* Item 2: where the gpte for `gva` at `level` lives in the table at `table`. */
static gpa_t gpte_gpa_of(const struct paging_mode *mode, gpa_t table, gva_t gva, unsigned level)
{
	return gpa(table.v + gpte_index(mode, gva, level) * mode->entry_size);
}

/* Item 3: read one gpte (walk.h); false if it is not in guest RAM. */
bool walk_read_gpte(const struct paging_mode *mode, const struct walk_mem *mem, gpa_t where,
		    u64 *gpte)
{
	const void *gptep = mem->gpa_to_hva(mem->opaque, where, mode->entry_size);

	if (!gptep)
		return false;
	/* One aligned load of the entry's size, as the CPU reads a paging-structure entry. */
	if (mode->entry_size == sizeof(u32))
		*gpte = __atomic_load_n((const u32 *)gptep, __ATOMIC_ACQUIRE);
	else
		*gpte = __atomic_load_n((const u64 *)gptep, __ATOMIC_ACQUIRE);
	return true;
}

/* A PDPTE load (walk.h; §4.4.1). */
bool walk_read_pdptes(const struct walk_mem *mem, u64 cr3, unsigned maxphyaddr, u64 pdpte[4])
{
	for (unsigned i = 0; i < 4; i++) {
		gpa_t where = gpa((cr3 & CR3_PAE_PDPT_MASK) + i * sizeof(u64));

		if (!walk_read_gpte(&paging_mode_pae, mem, where, &pdpte[i]))
			return false;
		if ((pdpte[i] & PTE_P) &&
		    walk_gpte_rsvd(&paging_mode_pae, maxphyaddr, false, PG_LEVEL_1G, pdpte[i]))
			return false;
	}
	return true;
}

/* Item 7: does this gpte map a page larger than 4 KiB? */
static bool is_large(const struct paging_mode *mode, unsigned level, u64 gpte)
{
	return (mode->large_levels & (1u << level)) && (gpte & PTE_PS);
}

/* Item 7: does the walk end at this gpte? Level 1 always does. */
static bool is_leaf(const struct paging_mode *mode, unsigned level, u64 gpte)
{
	return level == PG_LEVEL_4K || is_large(mode, level, gpte);
}

bool walk_gpte_is_leaf(const struct paging_mode *mode, unsigned level, u64 gpte)
{
	return is_leaf(mode, level, gpte);
}

/*
 * Item 5, 32-bit paging (Table 4-4): only a 4 MiB PDE has reserved bits:
 * bit 21, and bits 20:(M-19) above the address bits PSE-36 holds there,
 * M = MIN(MAXPHYADDR, 40).
 */
static u64 pse36_rsvd(unsigned maxphyaddr)
{
	unsigned m = maxphyaddr < 32 ? 32 : maxphyaddr < 40 ? maxphyaddr : 40;

	return (1ull << 21) | (m < 40 ? GENMASK_ULL(20, m - 19) : 0);
}

/* Item 5: the bits that must be 0 in this present gpte (§4.5.4, Tables 4-15 to 4-20). */
u64 walk_gpte_rsvd(const struct paging_mode *mode, unsigned maxphyaddr, bool nxe, unsigned level,
		   u64 gpte)
{
	u64 rsvd;

	if (mode->entry_size == sizeof(u32))
		return is_large(mode, level, gpte) ? gpte & pse36_rsvd(maxphyaddr) : 0;
	rsvd = mode->addr_mask & ~PTE_ADDR_MASK(maxphyaddr);
	if (!nxe)
		rsvd |= PTE_NX;
	if (is_large(mode, level, gpte))
		rsvd |= mode->rsvd_large[level];
	else
		rsvd |= mode->rsvd[level];
	return gpte & rsvd;
}

/* Items 2 and 10: the next table's gpa, or the page base of a leaf. */
u64 walk_gpte_addr(const struct paging_mode *mode, unsigned maxphyaddr, unsigned level, u64 gpte)
{
	u64 addr = gpte & mode->addr_mask & PTE_ADDR_MASK(maxphyaddr);

	if (!is_large(mode, level, gpte))
		return addr;
	if (mode->pse36) /* bits 20:13 are address bits 39:32 (reserved ones are 0) */
		return (gpte & GENMASK_ULL(31, 22)) | ((gpte & GENMASK_ULL(20, 13)) << 19);
	return addr & ~(walk_level_page_size(mode, level) - 1); /* PAT and reserved bits dropped */
}

/* Item 6: fold one more level into the rights accumulated above it. */
static u64 accumulate_rights(u64 rights, u64 gpte)
{
	return (rights & gpte & RIGHTS_AND_MASK) | ((rights | gpte) & RIGHTS_OR_MASK);
}

/*
 * Item 8: would the CPU refuse `access` to a page with these rights?
 * SDM Vol. 3A §4.6.1. A "user-mode address" has U/S = 1 at every level.
 */
static bool permission_fault(u64 rights, u32 access, const struct walk_ctl *ctl)
{
	bool user_page = rights & PTE_US;
	bool writable = rights & PTE_RW;
	bool nx = (rights & PTE_NX) && (ctl->efer & EFER_NXE);
	bool write = access & ACC_WRITE;
	bool fetch = access & ACC_FETCH;

	if (access & ACC_USER) {
		/* CPL3: user pages only; R/W counts whatever CR0.WP says. */
		return !user_page || (write && !writable) || (fetch && nx);
	}
	/* Supervisor write: R/W counts only with CR0.WP = 1. */
	if (write && !writable && (ctl->cr0 & CR0_WP))
		return true;
	if (fetch)
		return nx || (user_page && (ctl->cr4 & CR4_SMEP));
	/* Supervisor data access to a user page: SMAP unless RFLAGS.AC = 1. */
	return user_page && (ctl->cr4 & CR4_SMAP) && !(access & ACC_AC_SET);
}

/* Items 4, 5, 8 and 9: fill walk->fault as a #PF for the access being walked. */
static enum walk_result raise_pf(struct guest_walk *walk, const struct paging_mode *mode,
				 const struct walk_ctl *ctl, u32 pferr)
{
	bool pae = mode->entry_size == sizeof(u64);

	if (walk->access & ACC_WRITE)
		pferr |= PFERR_WRITE;
	if (walk->access & ACC_USER)
		pferr |= PFERR_USER;
	/* §4.7: I/D is reported only with CR4.SMEP = 1, or PAE/4-level paging and NXE = 1. */
	if ((walk->access & ACC_FETCH) &&
	    ((pae && (ctl->efer & EFER_NXE)) || (ctl->cr4 & CR4_SMEP)))
		pferr |= PFERR_FETCH;
	walk->fault =
		(struct walk_fault){ .vector = X86_EXC_PF, .error_code = pferr, .cr2 = walk->gva };
	return WALK_FAULT;
}

/*
 * Item 10: page base from the leaf gpte plus the gva's offset within the
 * page. Item 5 has already refused address bits at or above MAXPHYADDR.
 */
static gpa_t leaf_gpa(const struct paging_mode *mode, const struct walk_ctl *ctl,
		      const struct guest_walk *walk)
{
	u64 offset_mask = walk_level_page_size(mode, walk->level) - 1;
	u64 base = walk_gpte_addr(mode, ctl->maxphyaddr, walk->level, walk->gpte[walk->level]);

	return gpa(base | (walk->gva.v & offset_mask));
}

/*
 * Items 2 to 10: walk from the root to the leaf, stopping at the first
 * missing or malformed gpte, then check the access. Writes nothing.
 */
static enum walk_result walk_tables(struct guest_walk *walk, const struct paging_mode *mode,
				    const struct walk_mem *mem, const struct walk_ctl *ctl)
{
	u64 addr_mask = mode->addr_mask & PTE_ADDR_MASK(ctl->maxphyaddr);
	/* PCID, PWT/PCD, no-flush dropped; PAE's PDPT is 32-byte aligned. */
	gpa_t table = gpa(ctl->cr3 & (mode->pdpte_regs ? CR3_PAE_PDPT_MASK : addr_mask));
	u64 rights = RIGHTS_AND_MASK; /* nothing is denied above the root */
	unsigned level;

	for (level = mode->levels;; level--) {
		u64 gpte;

		walk->level = level;
		walk->table_gfn[level] = gpa_to_gfn(table);
		walk->gpte_gpa[level] = gpte_gpa_of(mode, table, walk->gva, level);
		if (is_pdpte_reg(mode, level)) /* item 3: loaded with CR3, not read now */
			gpte = ctl->pdpte[gpte_index(mode, walk->gva, level)];
		else if (!walk_read_gpte(mode, mem, walk->gpte_gpa[level], &gpte))
			return WALK_BAD_GPA;
		walk->gpte[level] = gpte;
		if (!(gpte & PTE_P))
			return raise_pf(walk, mode, ctl, 0);
		if (walk_gpte_rsvd(mode, ctl->maxphyaddr, ctl->efer & EFER_NXE, level, gpte))
			return raise_pf(walk, mode, ctl, PFERR_PRESENT | PFERR_RSVD);
		if (!is_pdpte_reg(mode, level)) /* item 6: a PDPTE has no R/W, U/S or NX */
			rights = accumulate_rights(rights, gpte);
		walk->rights_at[level] = rights;
		if (is_leaf(mode, level, gpte))
			break;
		table = gpa(gpte & addr_mask);
	}
	walk->rights = rights;
	if (permission_fault(rights, walk->access, ctl))
		return raise_pf(walk, mode, ctl, PFERR_PRESENT);
	walk->gpa = leaf_gpa(mode, ctl, walk);
	return WALK_OK;
}

/*
 * Item 11: record a gpte we just updated at every level that read the same
 * gpa (a table referenced twice in one walk, e.g. a recursive PML4E). Not a
 * PDPTE register: its value was loaded before, whatever memory holds now.
 */
static void record_gpte(struct guest_walk *walk, const struct paging_mode *mode, gpa_t where,
			u64 gpte)
{
	unsigned level;

	for (level = walk->level; level <= mode->levels; level++)
		if (walk->gpte_gpa[level].v == where.v && !is_pdpte_reg(mode, level))
			walk->gpte[level] = gpte;
}

/* Item 11: one gpte of the walk becomes `new`, by compare-and-swap against what the walk read. */
static bool cas_gpte(struct guest_walk *walk, const struct paging_mode *mode,
		     const struct walk_mem *mem, unsigned level, u64 new)
{
	u64 old = walk->gpte[level];
	void *gptep;
	bool swapped;

	/* A PDPTE register gets no A bit (it is reserved there) and is no memory. */
	if (new == old || is_pdpte_reg(mode, level))
		return true;
	gptep = mem->gpa_to_hva(mem->opaque, walk->gpte_gpa[level], mode->entry_size);
	if (!gptep)
		return false;
	if (mode->entry_size == sizeof(u32)) {
		u32 old32 = (u32)old;

		swapped = __atomic_compare_exchange_n((u32 *)gptep, &old32, (u32) new, false,
						      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	} else {
		swapped = __atomic_compare_exchange_n((u64 *)gptep, &old, new, false,
						      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	if (!swapped)
		return false;
	record_gpte(walk, mode, walk->gpte_gpa[level], new);
	return true;
}

/*
 * Item 11: the gpte at `level` of a successful walk as the CPU leaves it:
 * A set, and D too in the leaf for a write (§4.8).
 */
static u64 ad_target(const struct guest_walk *walk, unsigned level)
{
	u64 new = walk->gpte[level] | PTE_A;

	if (level == walk->level && (walk->access & ACC_WRITE))
		new |= PTE_D; /* only the entry that maps the page */
	return new;
}

/*
 * Item 11: set A in every gpte of a successful walk, root first, and D in
 * the leaf for a write. Each update is a compare-and-swap against the
 * value the walk read, so a gpte another vCPU rewrote meanwhile is not
 * clobbered: we return false and the caller walks again, as the CPU would
 * see the new entry. Bits already set are not written again.
 */
static bool set_ad_bits(struct guest_walk *walk, const struct paging_mode *mode,
			const struct walk_mem *mem)
{
	unsigned level;

	for (level = mode->levels; level >= walk->level; level--)
		if (!cas_gpte(walk, mode, mem, level, ad_target(walk, level)))
			return false;
	return true;
}

/* Item 11, for a successful walk (walk.h). */
bool walk_ad_already_set(const struct paging_mode *mode, const struct guest_walk *walk)
{
	for (unsigned level = mode->levels; level >= walk->level; level--)
		if (!is_pdpte_reg(mode, level) && ad_target(walk, level) != walk->gpte[level])
			return false;
	return true;
}

/* Item 11, for a walk that faulted (walk.h). */
bool walk_set_accessed_above(const struct paging_mode *mode, const struct walk_mem *mem,
			     struct guest_walk *walk, unsigned level)
{
	for (unsigned l = mode->levels; l > level; l--)
		if (!cas_gpte(walk, mode, mem, l, walk->gpte[l] | PTE_A))
			return false;
	return true;
}

/* Item 1 (and the driver of 2 to 11). */
enum walk_result walk_guest(const struct paging_mode *mode, const struct walk_mem *mem,
			    const struct walk_ctl *ctl, gva_t gva, u32 access, u32 flags,
			    struct guest_walk *walk)
{
	enum walk_result r;

	BUG_ON((access & ACC_WRITE) && (access & ACC_FETCH));
	BUG_ON(ctl->maxphyaddr <= PAGE_SHIFT || ctl->maxphyaddr > X86_MAXPHYADDR_MAX);

	*walk = (struct guest_walk){ .gva = gva, .access = access };
	if (!(ctl->cr0 & CR0_PG)) {
		/* Paging off: linear address = physical address, nothing denied. */
		walk->gpa = gpa(gva.v);
		walk->rights = RIGHTS_AND_MASK;
		return WALK_OK;
	}
	if (!mode || mode != paging_mode_select(ctl))
		return WALK_UNSUPPORTED_MODE;

	do {
		*walk = (struct guest_walk){ .gva = gva, .access = access };
		r = walk_tables(walk, mode, mem, ctl);
	} while (r == WALK_OK && (flags & WALK_SET_AD) && !set_ad_bits(walk, mode, mem));
	return r;
}
