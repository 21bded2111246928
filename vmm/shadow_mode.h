/* SPDX-License-Identifier: MIT */
/*
 * Shadow mode (--mmu=shadow): the guest runs deprivileged at real CPL3 under
 * the monitor (vmm/monitor.h) with a shadow root from shadow/ in the real
 * CR3; every trap comes to the VMM through a stub's `out` and is dispatched
 * here (vmm/shadow_mode.c). shared/DESIGN.md, "Shadow mode, end to end".
 *
 * What this milestone handles (everything else stops the VM with a clear
 * message, never a hang):
 *   #PF                 shadow_fault(): fill; a guest #PF; emulate a plain
 *                       `mov` store to a write-protected guest table or to
 *                       MMIO (vmm/shadow_store.c)
 *   port I/O            allowed at virtual CPL0, else a guest #GP(0)
 *   #GP, #UD            stop with status 10 naming the instruction
 *   other exceptions    a guest exception
 *   interrupts (>= 32)  stop with status 14 (not delivered yet)
 * A guest exception stops with status 8 ("guest fault before its IDT is
 * set"): without `lidt` emulated no guest has an IDT yet. LIMITATION:
 * reflection into the guest IDT comes with the privileged instructions.
 */
#ifndef UMBRA_VMM_SHADOW_MODE_H
#define UMBRA_VMM_SHADOW_MODE_H

#include "shadow/mmu.h"
#include "vmm/monitor.h"
#include "vmm/vcpu_virt.h"

/*
 * Identical consecutive #PFs (same RIP, gva, error code) after which shadow
 * mode stops instead of looping: a correct fix is seen at once, so this is
 * a VMM or host bug (for example a shadow store KVM did not see).
 */
#define SHADOW_PF_REPEAT_MAX 64

struct vm;

struct shadow_mode {
	struct monitor mon;
	struct shadow_mmu *mmu;
	struct vcpu_virt virt;
	enum shadow_view view; /* SHADOW_VIEW_KERNEL iff virt.cpl == 0 */
	mpa_t root;	       /* the root the guest must run on after this trap */
	u64 guest_rbx;	       /* the guest's RBX at the trap (the tail clobbers RBX) */
	/* The last #PF, to catch a fault the vCPU keeps taking after a fix. */
	u64 last_pf_rip, last_pf_cr2, last_pf_err;
	unsigned pf_repeats;
};

/* Init step (after "vcpu"): a no-op in hw mode. Returns 0 or an UMBRA_EXIT_* code. */
int shadow_mode_setup(struct vm *vm);
void shadow_mode_teardown(struct vm *vm);

enum shadow_exit {
	SHADOW_EXIT_RESUME,   /* handled: run the guest */
	SHADOW_EXIT_GUEST_IO, /* a guest port access it may make: the caller does it */
	SHADOW_EXIT_STOP,     /* vm_kill was called or the VM stopped */
};

/* A KVM_EXIT_IO in shadow mode: a monitor trap, or the guest's own port I/O. */
enum shadow_exit shadow_mode_io_exit(struct vm *vm);

/* Copy the shadow MMU counters into vm->stats (at the end of the run). */
void shadow_mode_collect_stats(struct vm *vm);

#endif /* UMBRA_VMM_SHADOW_MODE_H */
