/* SPDX-License-Identifier: MIT */
/*
 * The guest's virtual CPU in shadow mode (shared/DESIGN.md, "Virtual CPU
 * state kept by the VMM"), kept as decode/'s struct emu_cpu in
 * struct shadow_mode: the emulator reads and changes it directly, so there
 * is one copy of the virtual state and no translation between two.
 *
 * Invariants (between traps):
 *  - cpu.mode == EMU_MODE_SHADOW; emu_cpl(&cpu) is 0 or 3 and the live
 *    shadow view is SHADOW_VIEW_KERNEL iff it is 0.
 *  - cpu.cs/ss are what the guest would see (ring-0 or ring-3 selectors);
 *    the real CS/SS are the monitor's DPL3 pair at virtual CPL0 and the
 *    guest's own user selectors at virtual CPL3 (monitor_set_user_segs).
 *  - cpu.rflags holds the virtual flags (shadow_virt_flags): IF and IOPL,
 *    and AC in the guest kernel; there the real RFLAGS at CPL3 has IF=1,
 *    IOPL=0 (PVM hosts can do nothing else, shared/HOST.md). Under the
 *    iopl3 strategy (vmm/host_probe.h) the guest kernel's IF and AC are not
 *    virtual but the real ones, and its real IOPL is 3 (shadow_real_rflags). Every
 *    other flag, the GPRs and RIP live in the real vCPU and are loaded at a
 *    trap.
 *  - cpu.fs_base/gs_base equal the real FS/GS bases: loaded from the real
 *    vCPU at each trap (the guest may change them natively: wrfsbase where
 *    the host enables FSGSBASE at CPL3, null selector loads), stored back
 *    when emulation changed them.
 */
#ifndef UMBRA_VMM_SHADOW_CPU_H
#define UMBRA_VMM_SHADOW_CPU_H

#include "decode/emulate.h"
#include "shadow/walk.h"

#define SHADOW_VIRT_FLAGS (RFLAGS_IF | RFLAGS_IOPL_MASK)

/*
 * The flags kept only in the virtual CPU for code at virtual CPL `cpl`: IF
 * and IOPL; AC too for the guest kernel, where it only lifts SMAP
 * (emulated by the shadow MMU's views), because at real CPL3 with the
 * host's CR0.AM a real AC=1 turns on alignment checking (#AC on the first
 * unaligned access, seen in Linux's strncpy_from_user). And NT for the
 * guest kernel: PVM hosts clear a real NT at CPL3 (an emulated popf's NT
 * was gone at the next trap, seen on 2026-12-07), and only the kernel's
 * patched popf and iretq change it. With `iopl3` the guest kernel's IF is
 * the real one, not virtual.
 */
static inline u64 shadow_virt_flags(bool iopl3, unsigned cpl)
{
	if (cpl != 0)
		return SHADOW_VIRT_FLAGS;
	/*
	 * iopl3 runs only where CPL3 runs on the VM's own state (VMX, SVM),
	 * whose real CR0 is ours and has no AM: a real AC is harmless there,
	 * so the kernel's IF and AC are both real, and a native pushf (the
	 * save_fl rewrites, shadow_mode.c) shows them.
	 */
	return iopl3 ? RFLAGS_IOPL_MASK : RFLAGS_IOPL_MASK | RFLAGS_AC | RFLAGS_IF | RFLAGS_NT;
}

/*
 * The real RFLAGS for the guest at virtual CPL `cpl` whose flags are
 * `rflags`. User code runs with IF=1 and IOPL 0, so that its cli/sti and
 * port I/O fault for the VMM to check against the virtual IOPL. The guest
 * kernel: IF=1, IOPL 0 likewise, or under `iopl3` its own IF and AC with
 * IOPL 3, so that its cli/sti run natively and a real IF=0 holds
 * interrupts back.
 */
static inline u64 shadow_real_rflags(bool iopl3, unsigned cpl, u64 rflags)
{
	u64 r = (rflags & ~shadow_virt_flags(iopl3, cpl)) | RFLAGS_FIXED;

	if (iopl3 && cpl == 0)
		return r | RFLAGS_IOPL_MASK;
	return r | RFLAGS_IF;
}

struct boot_state;
struct kvm_run;
struct shadow_mode;

/*
 * The virtual CPU at an ELF64 entry point (include/umbra/bootinfo.h), with
 * the MAXPHYADDR the guest's CPUID reports.
 */
void shadow_cpu_boot(struct emu_cpu *c, const struct boot_state *bs, unsigned maxphyaddr);

/*
 * At a trap: the guest's GPRs, RIP and flags from the real vCPU and the
 * frame, and what the guest kernel changed in the call window's data page.
 * True if that included an FS base the wrmsr stand-in deferred.
 */
bool shadow_cpu_load(struct shadow_mode *sm, const struct kvm_run *run);

/*
 * After emulation or delivery: the GPRs, RIP and flags back into the real
 * vCPU (sync regs, RBX as sm->guest_rbx) and the frame the tail returns
 * through; FS/GS bases and the real CR4 (shadow_real_cr4) into the sync
 * sregs when they changed, TR's type put back with them.
 */
void shadow_cpu_store(struct shadow_mode *sm, struct kvm_run *run);

/* Have KVM load the sync sregs as they stand at the next run, TR's type put back. */
void shadow_cpu_push_sregs(const struct shadow_mode *sm, struct kvm_run *run);

/* The guest's paging registers, for the walker. */
struct walk_ctl shadow_cpu_walk_ctl(const struct emu_cpu *c);

/*
 * The CR4 the real vCPU runs with: sm->real_cr4_fixed plus the guest's own
 * bits in sm->real_cr4_mirror, and in user mode (virtual CPL3) those in
 * sm->real_cr4_user_mirror. shadow_cpu_store syncs it when it changes.
 */
u64 shadow_real_cr4(const struct shadow_mode *sm);

#endif /* UMBRA_VMM_SHADOW_CPU_H */
