/* SPDX-License-Identifier: MIT */
/*
 * x86 architectural definitions the shadow MMU needs: paging-structure entry
 * bits, page-fault error codes, control registers, EFER, RFLAGS and the
 * exception vectors. Every value here is fixed by the architecture and cited
 * to the Intel SDM (Vol. 3A unless noted); nothing here is software-defined.
 *
 * Convention: a single bit is a mask `NAME` with its bit number `NAME_BIT`;
 * a multi-bit field is a `NAME_SHIFT`/`NAME_MASK` pair (the mask in place).
 *
 * This file:
 *  1. paging-structure entry bits (gpte and, later, spte hardware bits);
 *  2. page-fault error code bits;
 *  3. CR0, CR3, CR4 and IA32_EFER bits;
 *  4. RFLAGS bits;
 *  5. exception vectors;
 *  6. compile-time proofs that the masks above are consistent.
 */
#ifndef UMBRA_SHADOW_X86_H
#define UMBRA_SHADOW_X86_H

#include "umbra/types.h"

/* A mask of bits hi..lo inclusive (hi >= lo, hi <= 63). */
#define GENMASK_ULL(hi, lo) ((~0ull >> (63 - (hi))) & (~0ull << (lo)))

/*
 * 1. Paging-structure entry bits, 4-level and PAE format
 *    (SDM Vol. 3A §4.5, Tables 4-14 to 4-20).
 */
#define PTE_P_BIT	  0  /* present */
#define PTE_RW_BIT	  1  /* 1 = writable */
#define PTE_US_BIT	  2  /* 1 = user-mode accesses allowed */
#define PTE_PWT_BIT	  3  /* page-level write-through */
#define PTE_PCD_BIT	  4  /* page-level cache disable */
#define PTE_A_BIT	  5  /* accessed */
#define PTE_D_BIT	  6  /* dirty: only in an entry that maps a page */
#define PTE_PS_BIT	  7  /* page size: PDPTE (1 GiB) and PDE (2 MiB) only */
#define PTE_G_BIT	  8  /* global: only in an entry that maps a page */
#define PTE_PAT_BIT	  7  /* PAT index bit in a 4 KiB PTE: same bit as PS */
#define PTE_PAT_LARGE_BIT 12 /* PAT index bit in a 2 MiB PDE / 1 GiB PDPTE */
#define PTE_NX_BIT	  63 /* execute-disable (XD); reserved unless EFER.NXE = 1 */

#define PTE_P	      (1ull << PTE_P_BIT)
#define PTE_RW	      (1ull << PTE_RW_BIT)
#define PTE_US	      (1ull << PTE_US_BIT)
#define PTE_PWT	      (1ull << PTE_PWT_BIT)
#define PTE_PCD	      (1ull << PTE_PCD_BIT)
#define PTE_A	      (1ull << PTE_A_BIT)
#define PTE_D	      (1ull << PTE_D_BIT)
#define PTE_PS	      (1ull << PTE_PS_BIT)
#define PTE_G	      (1ull << PTE_G_BIT)
#define PTE_PAT	      (1ull << PTE_PAT_BIT)
#define PTE_PAT_LARGE (1ull << PTE_PAT_LARGE_BIT)
#define PTE_NX	      (1ull << PTE_NX_BIT)

/* Protection key, bits 62:59 of an entry that maps a page when CR4.PKE = 1. */
#define PTE_PKEY_SHIFT 59
#define PTE_PKEY_MASK  GENMASK_ULL(62, 59)

/* The architectural limit of MAXPHYADDR (CPUID.80000008H:EAX[7:0]). */
#define X86_MAXPHYADDR_MAX 52

/*
 * Physical-address field of an entry: bits (maxphyaddr-1):12. Bits
 * 51:maxphyaddr are reserved and must be 0 in a present entry (§4.5.4).
 * Both take the MAXPHYADDR as an argument, 12 < maxphyaddr <= 52.
 */
#define PTE_ADDR_SHIFT		  PAGE_SHIFT
#define PTE_ADDR_MASK(maxphyaddr) GENMASK_ULL((maxphyaddr)-1, PTE_ADDR_SHIFT)
#define PTE_RSVD_HIGH_MASK(maxphyaddr) \
	(GENMASK_ULL(X86_MAXPHYADDR_MAX - 1, PTE_ADDR_SHIFT) & ~PTE_ADDR_MASK(maxphyaddr))

/*
 * Address bits below the page base of a large page that must be 0: bits
 * 29:13 in a PDPTE with PS = 1, bits 20:13 in a PDE with PS = 1 (bit 12 is
 * PTE_PAT_LARGE). SDM Vol. 3A Tables 4-16 and 4-18.
 */
#define PTE_RSVD_1G_MASK GENMASK_ULL(29, 13)
#define PTE_RSVD_2M_MASK GENMASK_ULL(20, 13)

/* Bits software may use in any entry (ignored by the CPU), §4.5.4. */
#define PTE_AVL_LOW_MASK  GENMASK_ULL(11, 9)
#define PTE_AVL_HIGH_MASK GENMASK_ULL(58, 52)

/*
 * 2. Page-fault error code pushed with #PF (SDM Vol. 3A §4.7, Figure 4-12).
 */
#define PFERR_PRESENT_BIT 0 /* 0: not-present page; 1: protection or rsvd violation */
#define PFERR_WRITE_BIT	  1 /* the access was a write */
#define PFERR_USER_BIT	  2 /* the access was a user-mode (CPL3) access */
#define PFERR_RSVD_BIT	  3 /* a reserved bit was set in some paging-structure entry */
#define PFERR_FETCH_BIT	  4 /* instruction fetch, reported only if NXE=1 or SMEP=1 */
#define PFERR_PK_BIT	  5 /* protection-key violation */
#define PFERR_SS_BIT	  6 /* shadow-stack access */

#define PFERR_PRESENT (1u << PFERR_PRESENT_BIT)
#define PFERR_WRITE   (1u << PFERR_WRITE_BIT)
#define PFERR_USER    (1u << PFERR_USER_BIT)
#define PFERR_RSVD    (1u << PFERR_RSVD_BIT)
#define PFERR_FETCH   (1u << PFERR_FETCH_BIT)
#define PFERR_PK      (1u << PFERR_PK_BIT)
#define PFERR_SS      (1u << PFERR_SS_BIT)

/*
 * 3. Control registers (SDM Vol. 3A §2.5) and IA32_EFER (§2.2.1).
 */
#define CR0_PE (1ull << 0)  /* protection enable */
#define CR0_MP (1ull << 1)  /* monitor coprocessor */
#define CR0_EM (1ull << 2)  /* x87 emulation */
#define CR0_TS (1ull << 3)  /* task switched */
#define CR0_ET (1ull << 4)  /* extension type, fixed 1 */
#define CR0_NE (1ull << 5)  /* native x87 error reporting */
#define CR0_WP (1ull << 16) /* supervisor writes honour R/W (§4.6) */
#define CR0_AM (1ull << 18) /* alignment mask */
#define CR0_NW (1ull << 29) /* not write-through */
#define CR0_CD (1ull << 30) /* cache disable */
#define CR0_PG (1ull << 31) /* paging */

/* CR3 with 4-level paging (§4.5.2): table base, PWT/PCD or the PCID. */
#define CR3_PWT	       (1ull << 3) /* when CR4.PCIDE = 0 */
#define CR3_PCD	       (1ull << 4) /* when CR4.PCIDE = 0 */
#define CR3_PCID_SHIFT 0	   /* when CR4.PCIDE = 1 */
#define CR3_PCID_MASK  GENMASK_ULL(11, 0)
#define CR3_NOFLUSH    (1ull << 63) /* MOV to CR3 only, CR4.PCIDE = 1 (§4.10.4.1) */

#define CR4_VME	       (1ull << 0)  /* virtual-8086 mode extensions */
#define CR4_PVI	       (1ull << 1)  /* protected-mode virtual interrupts */
#define CR4_TSD	       (1ull << 2)  /* RDTSC at CPL0 only */
#define CR4_DE	       (1ull << 3)  /* debugging extensions */
#define CR4_PSE	       (1ull << 4)  /* 4 MiB pages in 32-bit paging */
#define CR4_PAE	       (1ull << 5)  /* physical address extension */
#define CR4_MCE	       (1ull << 6)  /* machine-check enable */
#define CR4_PGE	       (1ull << 7)  /* global pages */
#define CR4_PCE	       (1ull << 8)  /* RDPMC at any CPL */
#define CR4_OSFXSR     (1ull << 9)  /* FXSAVE/FXRSTOR and SSE */
#define CR4_OSXMMEXCPT (1ull << 10) /* unmasked SIMD FP exceptions */
#define CR4_UMIP       (1ull << 11) /* SGDT/SIDT/SLDT/SMSW/STR fault at CPL > 0 */
#define CR4_LA57       (1ull << 12) /* 5-level paging */
#define CR4_VMXE       (1ull << 13) /* VMX enable */
#define CR4_SMXE       (1ull << 14) /* SMX enable */
#define CR4_FSGSBASE   (1ull << 16) /* RD/WR{FS,GS}BASE */
#define CR4_PCIDE      (1ull << 17) /* process-context identifiers */
#define CR4_OSXSAVE    (1ull << 18) /* XSAVE and XGETBV/XSETBV */
#define CR4_SMEP       (1ull << 20) /* supervisor-mode execution prevention */
#define CR4_SMAP       (1ull << 21) /* supervisor-mode access prevention */
#define CR4_PKE	       (1ull << 22) /* protection keys for user-mode pages */
#define CR4_CET	       (1ull << 23) /* control-flow enforcement */
#define CR4_PKS	       (1ull << 24) /* protection keys for supervisor-mode pages */

#define EFER_SCE (1ull << 0)  /* SYSCALL/SYSRET */
#define EFER_LME (1ull << 8)  /* IA-32e mode enable */
#define EFER_LMA (1ull << 10) /* IA-32e mode active (read-only) */
#define EFER_NXE (1ull << 11) /* execute-disable bit enable */

/*
 * 4. RFLAGS (SDM Vol. 1 §3.4.3, Vol. 3A §2.3).
 */
#define RFLAGS_CF	  (1ull << 0) /* carry */
#define RFLAGS_FIXED	  (1ull << 1) /* reserved, always 1 */
#define RFLAGS_PF	  (1ull << 2) /* parity */
#define RFLAGS_AF	  (1ull << 4) /* auxiliary carry */
#define RFLAGS_ZF	  (1ull << 6) /* zero */
#define RFLAGS_SF	  (1ull << 7) /* sign */
#define RFLAGS_TF	  (1ull << 8) /* trap (single step) */
#define DR6_BS		  (1ull << 14) /* DR6: the #DB is a single-step trap (SDM Vol. 3A §17.2.3) */
#define DR6_BD		  (1ull << 13) /* DR6: the #DB is general detect (a mov to or from a DR) */
#define DR7_GD		  (1ull << 13) /* DR7: #DB before any mov to or from a DR (§17.2.4) */
#define RFLAGS_IF	  (1ull << 9)  /* interrupt enable */
#define RFLAGS_DF	  (1ull << 10) /* direction */
#define RFLAGS_OF	  (1ull << 11) /* overflow */
#define RFLAGS_IOPL_SHIFT 12	       /* I/O privilege level, 2 bits */
#define RFLAGS_IOPL_MASK  GENMASK_ULL(13, 12)
#define RFLAGS_NT	  (1ull << 14) /* nested task */
#define RFLAGS_RF	  (1ull << 16) /* resume */
#define RFLAGS_VM	  (1ull << 17) /* virtual-8086 mode */
#define RFLAGS_AC	  (1ull << 18) /* alignment check / SMAP override */
#define RFLAGS_VIF	  (1ull << 19) /* virtual interrupt flag */
#define RFLAGS_VIP	  (1ull << 20) /* virtual interrupt pending */
#define RFLAGS_ID	  (1ull << 21) /* CPUID available */

/*
 * 5. Exception vectors (SDM Vol. 3A §6.3.1, Table 6-1).
 */
#define X86_EXC_DE  0  /* divide error */
#define X86_EXC_DB  1  /* debug */
#define X86_EXC_NMI 2  /* non-maskable interrupt */
#define X86_EXC_BP  3  /* breakpoint (int3) */
#define X86_EXC_OF  4  /* overflow (into) */
#define X86_EXC_BR  5  /* BOUND range exceeded */
#define X86_EXC_UD  6  /* invalid opcode */
#define X86_EXC_NM  7  /* device not available */
#define X86_EXC_DF  8  /* double fault, error code 0 */
#define X86_EXC_TS  10 /* invalid TSS, error code */
#define X86_EXC_NP  11 /* segment not present, error code */
#define X86_EXC_SS  12 /* stack-segment fault, error code */
#define X86_EXC_GP  13 /* general protection, error code */
#define X86_EXC_PF  14 /* page fault, error code PFERR_*, address in CR2 */
#define X86_EXC_MF  16 /* x87 floating-point error */
#define X86_EXC_AC  17 /* alignment check, error code 0 */
#define X86_EXC_MC  18 /* machine check */
#define X86_EXC_XM  19 /* SIMD floating-point */
#define X86_EXC_VE  20 /* virtualization exception */
#define X86_EXC_CP  21 /* control protection, error code */

/*
 * A 64-bit IDT gate (16 bytes, `lo` the first 8, `hi` the next, little
 * endian; SDM Vol. 3A §6.14.1): its handler's offset, split into bits
 * 15:0 of lo, 63:48 of lo and 31:0 of hi; and its P bit, bit 47 of lo.
 */
static inline u64 x86_gate64_offset(u64 lo, u64 hi)
{
	return (lo & 0xffff) | ((lo >> 32) & 0xffff0000) | (hi << 32);
}
#define X86_GATE_P (1ull << 47)

/*
 * 6. Proofs.
 */
/* The flag bits of an entry and its address field are disjoint... */
#define PTE_FLAGS_LOW_MASK \
	(PTE_P | PTE_RW | PTE_US | PTE_PWT | PTE_PCD | PTE_A | PTE_D | PTE_PS | PTE_G)
_Static_assert((PTE_FLAGS_LOW_MASK & PTE_ADDR_MASK(X86_MAXPHYADDR_MAX)) == 0,
	       "PTE flag bits overlap the address field");
_Static_assert(((PTE_FLAGS_LOW_MASK | PTE_AVL_LOW_MASK) & PTE_ADDR_MASK(X86_MAXPHYADDR_MAX)) == 0 &&
		       (PTE_FLAGS_LOW_MASK & PTE_AVL_LOW_MASK) == 0,
	       "software-available low bits overlap hardware bits");
_Static_assert(((PTE_AVL_HIGH_MASK | PTE_PKEY_MASK | PTE_NX) & PTE_ADDR_MASK(X86_MAXPHYADDR_MAX)) ==
			       0 &&
		       (PTE_AVL_HIGH_MASK & (PTE_PKEY_MASK | PTE_NX)) == 0 &&
		       (PTE_PKEY_MASK & PTE_NX) == 0,
	       "high entry fields overlap");
/* ...and the fields of an entry cover all 64 bits exactly once. */
_Static_assert((PTE_FLAGS_LOW_MASK | PTE_AVL_LOW_MASK | PTE_ADDR_MASK(X86_MAXPHYADDR_MAX) |
		PTE_AVL_HIGH_MASK | PTE_PKEY_MASK | PTE_NX) == ~0ull,
	       "an entry bit has no name");
/* A 4 KiB PTE reuses the PS position for PAT; large pages move PAT to bit 12. */
_Static_assert(PTE_PAT == PTE_PS, "PAT of a 4 KiB PTE is the PS position");
_Static_assert((PTE_PAT_LARGE << 1) == (PTE_RSVD_2M_MASK & -PTE_RSVD_2M_MASK) &&
		       (PTE_PAT_LARGE << 1) == (PTE_RSVD_1G_MASK & -PTE_RSVD_1G_MASK),
	       "large-page PAT sits just below the reserved low address bits");
_Static_assert((PTE_RSVD_2M_MASK & ~PTE_RSVD_1G_MASK) == 0,
	       "the 2 MiB reserved low bits are a subset of the 1 GiB ones");
_Static_assert(PTE_RSVD_HIGH_MASK(X86_MAXPHYADDR_MAX) == 0 &&
		       PTE_RSVD_HIGH_MASK(36) == GENMASK_ULL(51, 36),
	       "reserved high address bits follow MAXPHYADDR");
_Static_assert((PFERR_PRESENT | PFERR_WRITE | PFERR_USER | PFERR_RSVD | PFERR_FETCH | PFERR_PK |
		PFERR_SS) == GENMASK_ULL(6, 0),
	       "page-fault error code bits are distinct and contiguous");
_Static_assert((CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW |
		CR0_CD | CR0_PG) == 0xe005003full,
	       "CR0 bits (SDM Figure 2-7)");
_Static_assert((RFLAGS_IOPL_MASK >> RFLAGS_IOPL_SHIFT) == 3, "IOPL is two bits");
_Static_assert((RFLAGS_IOPL_MASK & (RFLAGS_OF | RFLAGS_NT)) == 0, "IOPL lies between OF and NT");

#endif /* UMBRA_SHADOW_X86_H */
