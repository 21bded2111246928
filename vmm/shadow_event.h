/* SPDX-License-Identifier: MIT */
/*
 * Events the shadow-mode guest must see (vmm/shadow_event.c): exceptions
 * reflected into its IDT, external interrupts delivered or held pending
 * according to its virtual IF, and an emulated `hlt` that idles the vCPU
 * in the monitor until an interrupt arrives.
 *
 * All of them work on sm->cpu as loaded for the current trap; the caller
 * stores it back (shadow_cpu_store) and then calls shadow_event_leave().
 */
#ifndef UMBRA_VMM_SHADOW_EVENT_H
#define UMBRA_VMM_SHADOW_EVENT_H

#include "vmm/shadow_mode.h"

struct vm;

/*
 * Reflect exception `vector` into the guest IDT with its error code and,
 * for #PF, CR2. A fault while delivering becomes #DF, a fault on that a
 * triple fault: stop with status 8, as hw mode does.
 */
enum shadow_exit shadow_reflect_exception(struct vm *vm, unsigned vector, bool has_error_code,
					  u32 error_code, bool has_cr2, u64 cr2);

/* External interrupt `vector` (>= 32) arrived on the real IDT: deliver or hold. */
void shadow_interrupt(struct vm *vm, unsigned vector);

/* The emulator said EMU_NOTE_HALT (hlt completed, RIP past it). */
void shadow_halt(struct vm *vm);

/*
 * Before returning to the guest: deliver what is pending if the virtual IF
 * allows (stepping out of an sti interrupt shadow first), and if a hlt is
 * still waiting, stop (virtual IF = 0: it would wait forever) or halt.
 */
enum shadow_exit shadow_event_finish(struct vm *vm);

/* After shadow_cpu_store: if halting, park the guest's frame and go idle. */
void shadow_event_leave(struct vm *vm);

/* At a trap whose frame is the idle loop's: put the guest's frame back. */
bool shadow_event_wake(struct vm *vm);

/* Is any interrupt held for the guest (taken, not yet delivered)? */
bool shadow_event_any_pending(const struct shadow_mode *sm);

#endif /* UMBRA_VMM_SHADOW_EVENT_H */
