/* SPDX-License-Identifier: MIT */
/*
 * vmm/shadow_debugreg: the guest's hardware breakpoints in shadow mode.
 *
 * Guest-visible contract: DR0-DR3 and DR7, as the guest kernel writes them
 * (emulated mov to DRn, decode/emulate_priv.c), fire as on hardware for
 * the code that runs natively at real CPL3 (guest user mode and kernel
 * alike: the linear addresses are the guest's). An instruction breakpoint
 * is a #DB before the instruction unless RFLAGS.RF is set; a data
 * breakpoint a #DB after the access; DR6.B0-B3 say which. What the VMM
 * emulates is checked by the emulator (decode/emulate.c, items 7 to 9).
 *
 * 1. Arm: before each resume, when the virtual DR0-DR3/DR7 changed, give
 *    the real vCPU the breakpoints it can carry (KVM_SET_DEBUGREGS): not
 *    those whose bytes touch the monitor's gva hole (the guest cannot map
 *    it, so they never fire for it, and the monitor's own accesses there
 *    must not fire them), nor I/O breakpoints (LIMITATION: they need
 *    CR4.DE in the real CR4), nor DR7.GD: every guest mov to or from a
 *    debug register traps, and the emulator does general detect
 *    (decode/emulate.c item 9).
 * 2. Report: at a real #DB, which breakpoints matched: the real DR6 as KVM
 *    reports it. Should it report none (KVM's copy may be stale where it
 *    does not intercept a VM's own #DB, as SVM does not; the rig's nested
 *    SVM always reported them), the instruction breakpoints at the frame's
 *    RIP, else the enabled data breakpoints (LIMITATION: with several, all
 *    are reported).
 */
#ifndef UMBRA_VMM_SHADOW_DEBUGREG_H
#define UMBRA_VMM_SHADOW_DEBUGREG_H

#include <stdbool.h>

#include "umbra/types.h"

struct vm;

/* The real debug registers as last armed (struct shadow_mode). */
struct shadow_dr_state {
	bool set;	/* armed at least once */
	bool failed;	/* KVM refused: breakpoints do not reach the real vCPU */
	u64 dr[4], dr7; /* the virtual ones they were computed from */
};

/* Item 1. False (and a message once) if KVM refused. */
bool shadow_dr_arm(struct vm *vm);
/* Whether an enabled instruction breakpoint is on the guest's CS:RIP (RF aside). */
bool shadow_dr_exec_at(const struct vm *vm);
/* Item 2: the DR6 B0-B3 bits of a real #DB at `rip` with RFLAGS `rflags` (its frame's). */
unsigned shadow_dr_hits(struct vm *vm, u64 rip, u64 rflags);
/* The real DR7 for virtual `dr`/`dr7` (item 1), for tests. */
u64 shadow_dr_real_dr7(const u64 dr[4], u64 dr7);

#endif
