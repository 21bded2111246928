/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU: the public face of shadow/.
 *
 * Glossary. Every identifier and comment in shadow/ uses exactly these words
 * (the same as DESIGN.md "Vocabulary" and KVM's mmu.rst):
 *
 *   gva    guest-virtual address: what guest code uses           gva_t
 *   gpa    guest-physical address: what guest page tables hold   gpa_t
 *   gfn    guest frame number, gpa >> 12                         gfn_t
 *   mpa    machine-physical address of the KVM VM ("hpa" in the
 *          literature); guest RAM sits at mpa == gpa             mpa_t
 *   hva    address in the VMM process where mpa space is mapped  void *
 *   gpte   a guest page-table entry (any level)
 *   spte   a shadow page-table entry (any level); `sptep` points at one
 *   sp     a shadow page: one page of shadow table, shadowing one guest
 *          table (or mapping part of a large guest page directly)
 *   level  position of a table or entry, counted from the leaf:
 *            1 = PT   (entry maps 4 KiB)
 *            2 = PD   (entry maps 2 MiB with PS = 1, else points to a PT)
 *            3 = PDPT (entry maps 1 GiB with PS = 1, else points to a PD)
 *            4 = PML4 (entry points to a PDPT; the root with 4-level paging)
 *   view   which shadow root is live: `kernel` (guest at virtual CPL0) or
 *          `user` (guest at virtual CPL3)
 *   walk   a translation of a gva through the guest tables (walk.h)
 *
 * Headers:
 *   shadow/x86.h   architectural bits: PTE_*, PFERR_*, CR0_*, CR4_*, EFER_*,
 *                  RFLAGS_*, X86_EXC_*
 *   shadow/walk.h  the guest page-table walker, also the reference oracle the
 *                  shadow tables are tested against
 *
 *   shadow/mmu.h   the shadow MMU proper: the interface the VMM uses
 *                  (create, fault, PT writes, CR3, invalidation, statistics)
 *
 * Internal to shadow/ (never included by the VMM):
 *   shadow/sp.h        union sp_role, spte bits, struct shadow_page,
 *                      for_each_shadow_entry
 *   shadow/internal.h  struct shadow_mmu and the map of the .c files:
 *                      mmu.c pool.c sp_cache.c rmap.c spte.c fault.c
 *                      pt_write.c root.c stats.c
 */
#ifndef UMBRA_SHADOW_SHADOW_H
#define UMBRA_SHADOW_SHADOW_H

#include "shadow/x86.h"
#include "shadow/walk.h"
#include "shadow/mmu.h"

#endif /* UMBRA_SHADOW_SHADOW_H */
