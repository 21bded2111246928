/* SPDX-License-Identifier: MIT */
/*
 * The guest's *virtual* CPU state in shadow mode (shared/DESIGN.md, "Virtual
 * CPU state kept by the VMM").
 *
 * In shadow mode the real vCPU always runs the guest at real CPL3 with the
 * monitor's GDT, IDT and TSS and a shadow root in the real CR3. What the
 * guest believes it set (its CR0/CR3/CR4, EFER, privilege level, interrupt
 * flag, descriptor tables, ring-0 selectors, MSRs) lives here and only
 * here; the emulated privileged instructions read and write this struct,
 * and reflected exceptions are built from it.
 *
 * Invariants:
 *  - cpl is 0 or 3; the live shadow view is SHADOW_VIEW_KERNEL iff cpl == 0
 *    (shadow_mode.c switches the view on every change of cpl).
 *  - cs/ss hold the selectors the guest would see (RPL = cpl); the real
 *    CS/SS are always the monitor's DPL3 descriptors.
 *  - rflags_if is the guest's IF; the real IF at CPL3 is always 1 on PVM
 *    hosts (shared/HOST.md) and carries no meaning.
 *  - idtr.limit == 0 means the guest has no IDT yet: an exception that must
 *    be reflected stops the VM instead (UMBRA_EXIT_TRIPLE_FAULT).
 */
#ifndef UMBRA_VMM_VCPU_VIRT_H
#define UMBRA_VMM_VCPU_VIRT_H

#include "umbra/types.h"

struct vdtr {
	u64 base; /* gva */
	u16 limit;
};

struct vcpu_virt {
	u64 cr0, cr2, cr3, cr4, efer;
	unsigned cpl;	/* virtual CPL: 0 (guest kernel) or 3 (guest user) */
	bool rflags_if; /* virtual RFLAGS.IF */
	struct vdtr gdtr, idtr;
	u16 ldtr, tr;
	u16 cs, ss, ds, es, fs, gs; /* selectors as the guest loaded them */
	/* MSRs the guest sets and reads back (wrmsr is not emulated yet). */
	u64 star, lstar, cstar, sfmask;
	u64 fs_base, gs_base, kernel_gs_base;
	u64 pat, tsc_aux;
};

#endif /* UMBRA_VMM_VCPU_VIRT_H */
