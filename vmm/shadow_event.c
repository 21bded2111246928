// SPDX-License-Identifier: MIT
/*
 * Exceptions, interrupts and hlt in shadow mode (vmm/shadow_event.h).
 *
 * 1. Exceptions: delivered through the guest IDT by emu_deliver_event on
 *    the virtual CPU, so the guest's frame carries its own ring-0 or
 *    ring-3 selectors, its error code and CR2. A guest with no IDT yet
 *    (limit 0) stops at once with status 8 and a message naming the fault.
 * 2. Interrupts: under the iopl3 strategy (VMX, SVM hosts) the guest
 *    kernel's IF is the real one, so the CPU holds interrupts back itself
 *    and one reaches the monitor only where the guest takes it; the rest
 *    of this item is for the patch strategy (every host, PVM's only one).
 *    The guest runs at real CPL3 with real IF=1. While the
 *    virtual IF is 0 the real TPR is 15 (vmm/shadow_mode.c, resume_guest),
 *    so fixed interrupts stay in the LAPIC's IRR as on hardware; those that
 *    still reach the monitor's stub (ExtINT from the PIC, or one taken just
 *    before the TPR rose) go into a pending set; one is delivered when the
 *    virtual IF is 1 and no sti shadow is in
 *    force (SDM Vol. 3A §6.8.3), at once or after the instruction that sets
 *    IF again (sti, popf, iretq: all trap and are emulated). The PIC or
 *    LAPIC has already been acknowledged; EOI stays the guest's job.
 * 3. hlt (emulated: RIP is past it): with an interrupt already pending and
 *    IF=1, deliver it instead (the CPU would leave hlt at once). Otherwise
 *    the tail iretqs into the monitor's idle loop (CPL0, IF=1: `hlt; jmp`),
 *    where KVM blocks the vCPU in the kernel until the in-kernel PIC or
 *    LAPIC raises an interrupt: no exit and no ioctl per wake-up. The
 *    interrupt's frame lands where the trap path reads frames, its stub
 *    exits, and the guest's own frame, parked meanwhile, is put back.
 *    A hlt with the virtual IF=0 would wait forever (no NMI source exists):
 *    the VM stops with status 14 instead of hanging.
 *
 * LIMITATION: after sti, delivery waits for the next instruction to
 * complete by emulating that instruction here; when decode/ cannot (an
 * ordinary instruction outside its whitelist), the interrupt is delivered
 * one instruction early.
 */
#include "decode/decode.h"
#include "shadow/x86.h"
#include "vmm/exitcode.h"
#include "vmm/guest_access.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_emu.h"
#include "vmm/shadow_event.h"
#include "vmm/vm.h"

#define FIRST_IRQ_VECTOR 32u

/* Item 1. */
enum shadow_exit shadow_reflect_exception(struct vm *vm, unsigned vector, bool has_error_code,
					  u32 error_code, bool has_cr2, u64 cr2)
{
	struct shadow_mode *sm = vm->shadow;
	const struct emu_event ev = { .kind = EMU_EV_EXCEPTION,
				      .vector = (u8)vector,
				      .has_error_code = has_error_code,
				      .error_code = error_code,
				      .has_cr2 = has_cr2,
				      .cr2 = cr2 };
	u64 rip = sm->cpu.rip;
	enum emu_result r;

	if (sm->cpu.idt_limit == 0) {
		struct walk_ctl ctl = shadow_cpu_walk_ctl(&sm->cpu);
		u8 code[16];
		size_t n = guest_read_virt(&vm->mem, &ctl, sm->cpu.cs.base + rip, code,
					   sizeof(code), ACC_FETCH);
		char text[160] = "(code not readable)";

		if (n)
			decode_describe(code, n, rip, decode_mode_of(sm->cpu.cs.l, sm->cpu.cs.db),
					text, sizeof(text));
		vm->stats.reflected++;
		vm_kill(vm, UMBRA_EXIT_TRIPLE_FAULT,
			"shadow mode: guest fault before its IDT is set: vector %u, error code "
			"%s0x%x, cr2 0x%llx, at rip 0x%llx: %s (a triple fault on hardware)",
			vector, has_error_code ? "" : "(none) ", error_code,
			(unsigned long long)cr2, (unsigned long long)rip, text);
		return SHADOW_EXIT_STOP;
	}
	if (has_cr2)
		sm->cpu.cr2 = cr2;
	r = shadow_emu_deliver(vm, &ev);
	if (r != EMU_DONE) {
		shadow_deliver_stop(vm, r, vector, rip);
		return SHADOW_EXIT_STOP;
	}
	return SHADOW_EXIT_RESUME;
}

/* Item 2. */
static bool any_pending(const struct shadow_mode *sm)
{
	return sm->pending[0] | sm->pending[1] | sm->pending[2] | sm->pending[3];
}

bool shadow_event_any_pending(const struct shadow_mode *sm)
{
	return any_pending(sm);
}

/* The highest pending vector (the LAPIC's order), taken once from the set. */
static unsigned take_pending(struct shadow_mode *sm)
{
	for (unsigned w = 4; w-- > 0;) {
		if (sm->pending[w]) {
			unsigned bit = 63u - (unsigned)__builtin_clzll(sm->pending[w]);

			unsigned v = w * 64 + bit;

			if (sm->pending_n[v] <= 1) {
				sm->pending_n[v] = 0;
				sm->pending[w] &= ~(1ull << bit);
			} else {
				sm->pending_n[v]--;
			}
			return v;
		}
	}
	return 0;
}

/* An sti shadow ends once the guest has moved past the instruction after sti. */
static void expire_int_shadow(struct shadow_mode *sm)
{
	if (sm->cpu.virt.int_shadow && sm->cpu.rip != sm->int_shadow_rip)
		sm->cpu.virt.int_shadow = false;
}

static bool can_deliver(const struct shadow_mode *sm)
{
	return (sm->cpu.rflags & RFLAGS_IF) && !sm->cpu.virt.int_shadow;
}

void shadow_interrupt(struct vm *vm, unsigned vector)
{
	struct shadow_mode *sm = vm->shadow;

	expire_int_shadow(sm);
	if (!can_deliver(sm))
		vm->stats.irq_deferred++;
	sm->pending[vector / 64] |= 1ull << (vector % 64);
	if (sm->pending_n[vector] < UINT16_MAX)
		sm->pending_n[vector]++;
}

/* Item 3. */
void shadow_halt(struct vm *vm)
{
	vm->shadow->want_halt = true;
}

/*
 * Run the instruction after sti now, so that its interrupt shadow ends
 * exactly. It did not trap, so the CPU has not checked its instruction
 * breakpoints: run it as the chain runs an instruction ahead, and the
 * emulator checks them (decode/emulate.c item 8). It begins with RF clear,
 * as the completed sti left it, whatever the interrupt's frame said: QEMU's
 * TCG (since 9.1) pushes RF set for every hardware interrupt, which would
 * hide the breakpoint.
 */
static enum shadow_exit step_out_of_int_shadow(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_report rep;
	u64 rip = sm->cpu.rip;
	enum emu_result r;

	sm->cpu.rflags &= ~RFLAGS_RF;
	r = shadow_emu_insn(vm, &rep, true);

	switch (r) {
	case EMU_DONE:
		if (rep.notes & EMU_NOTE_HALT)
			shadow_halt(vm);
		sm->cpu.virt.int_shadow = false;
		return SHADOW_EXIT_RESUME;
	case EMU_UNKNOWN: /* LIMITATION (file comment): one instruction early */
		sm->cpu.virt.int_shadow = false;
		return SHADOW_EXIT_RESUME;
	default: shadow_emu_stop(vm, r, &rep, rip); return SHADOW_EXIT_STOP;
	}
}

enum shadow_exit shadow_event_finish(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;

	expire_int_shadow(sm);
	if (any_pending(sm) && (sm->cpu.rflags & RFLAGS_IF) && sm->cpu.virt.int_shadow &&
	    step_out_of_int_shadow(vm) != SHADOW_EXIT_RESUME)
		return SHADOW_EXIT_STOP;
	/* Bounded: each pass removes one vector from the set. */
	for (unsigned n = 0; n < 256 && any_pending(sm) && can_deliver(sm); n++) {
		const struct emu_event ev = { .kind = EMU_EV_EXCEPTION,
					      .vector = (u8)take_pending(sm) };
		u64 rip = sm->cpu.rip;
		enum emu_result r = shadow_emu_deliver(vm, &ev);

		if (r != EMU_DONE) {
			shadow_deliver_stop(vm, r, ev.vector, rip);
			return SHADOW_EXIT_STOP;
		}
		vm->stats.irq_delivered++;
		sm->want_halt = false; /* the interrupt ends the hlt; its RIP is past it */
	}
	if (!sm->want_halt)
		return SHADOW_EXIT_RESUME;
	sm->want_halt = false;
	if (!(sm->cpu.rflags & RFLAGS_IF)) {
		vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
			"shadow mode: the guest halted with interrupts disabled at rip 0x%llx: it "
			"would wait forever",
			(unsigned long long)sm->cpu.rip);
		return SHADOW_EXIT_STOP;
	}
	sm->halted = true;
	vm->stats.halts++;
	return SHADOW_EXIT_RESUME;
}

void shadow_event_leave(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct mon_frame *f = monitor_frame(&sm->mon);

	if (!sm->halted)
		return;
	sm->halt_frame = *f;
	*f = (struct mon_frame){ .rip = monitor_gva(MON_OFF_IDLE),
				 .cs = MON_SEL_CODE,
				 .rflags = RFLAGS_FIXED | RFLAGS_IF,
				 .rsp = monitor_gva(MON_OFF_STACK_TOP),
				 .ss = MON_SEL_DATA };
}

bool shadow_event_wake(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct mon_frame *f = monitor_frame(&sm->mon);

	if (!sm->halted || f->cs != MON_SEL_CODE || !monitor_is_idle_rip(f->rip))
		return false;
	*f = sm->halt_frame;
	sm->halted = false;
	return true;
}
