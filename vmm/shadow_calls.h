/* SPDX-License-Identifier: MIT */
/*
 * Shadow mode and the monitor's call window (vmm/monitor.h, "monitor
 * calls"): a stand-in is monitor code the guest kernel calls at a
 * paravirt site instead of trapping. When a trap lands inside one, or one
 * gives up, the VMM takes over here (vmm/shadow_calls.c); vmm/shadow_mode.c
 * decides when.
 */
#ifndef UMBRA_VMM_SHADOW_CALLS_H
#define UMBRA_VMM_SHADOW_CALLS_H

#include "vmm/shadow_mode.h"

/* Whether `gva` lies in the call window. */
bool shadow_in_call_window(u64 gva);

/* Whether `rip` is in the stand-in `fn` (a trap there may need its own handling). */
bool shadow_call_in_stand_in(const struct shadow_mode *sm, u64 rip, unsigned fn);

/*
 * A vCPU inside a stand-in, at any of its instruction boundaries: do what
 * the rest of it does, as if the instruction it stands for had completed,
 * and leave the vCPU where the stand-in returns; in a thunk, undo back to
 * the site instead if `may_undo`. False if RIP is no boundary of either, or
 * the stack cannot be read; then nothing changed.
 */
bool shadow_call_finish(struct vm *vm, bool may_undo);

/*
 * Whether stand-in `fn` has a slow path: its ud2 (a check failed), or a
 * fault inside it that the instruction it stands for would not take.
 */
bool shadow_call_has_slow_path(unsigned fn);

/*
 * That slow path: back to the site with what the site had, and the
 * original instructions run there (emulated), raising what they would.
 */
enum shadow_exit shadow_call_slow_path(struct vm *vm, unsigned fn);

/*
 * A fault in the call window that the shadow MMU refused (the guest maps
 * those addresses now, or the host does not run the window): withdraw the
 * window; every site traps again, as with --monitor-calls=off.
 */
enum shadow_exit shadow_call_withdraw(struct vm *vm, u64 cr2);

#endif /* UMBRA_VMM_SHADOW_CALLS_H */
