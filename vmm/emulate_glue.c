// SPDX-License-Identifier: MIT
/*
 * The hw-mode instruction fallback (vmm/emulate_glue.h).
 *
 * 1. Fill a struct emu_cpu from kvm_run's sync regs (run->s.regs.regs and
 *    .sregs, valid after every exit: vcpu_run_loop asks for both).
 * 2. The emulator's callbacks: map a linear address through the guest's own
 *    page tables with the walker (A/D set as the CPU would) and gpa_to_hva();
 *    XCRs through KVM_GET_XCRS; TLB flushes; event delivery; the XSAVE
 *    state through KVM_GET_XSAVE(2)/KVM_SET_XSAVE (xstate_get/xstate_put).
 * 3. Write the new state back into the sync regs and mark them dirty, so the
 *    next KVM_RUN loads them with no extra ioctl (KVM_CAP_SYNC_REGS).
 *
 * Event delivery (int n, int3 and every fault an emulated instruction
 * raises) is done here, in the VMM, by emu_deliver_event(): it reads the
 * guest IDT, GDT and TSS and builds the 64-bit frame; see deliver() for why
 * not KVM_SET_VCPU_EVENTS.
 *
 * LIMITATION: stores of emulated instructions (movbe, cmpxchg16b, the xsave
 * family, stmxcsr, interrupt frames) are made from userspace. On hosts
 * where KVM shadows the guest's page tables (HOST.md) a store into a page
 * the guest uses as a page table would not be seen by KVM's shadow; none of
 * these instructions is used on page tables by the guests we run.
 */
#include <cpuid.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "shadow/walk.h"
#include "shadow/x86.h"
#include "umbra/log.h"
#include "vmm/emu_regs.h"
#include "vmm/emulate_glue.h"
#include "vmm/guest_access.h"
#include "vmm/vm.h"

/* ---- item 1 -------------------------------------------------------------- */

static void seg_from_kvm(struct emu_seg *e, const struct kvm_segment *k)
{
	*e = (struct emu_seg){ .base = k->base,
			       .limit = k->limit,
			       .sel = k->selector,
			       .type = k->type,
			       .s = k->s,
			       .dpl = k->dpl,
			       .present = k->present,
			       .avl = k->avl,
			       .l = k->l,
			       .db = k->db,
			       .g = k->g };
}

static void seg_to_kvm(struct kvm_segment *k, const struct emu_seg *e)
{
	k->base = e->base;
	k->limit = e->limit;
	k->selector = e->sel;
	k->type = e->type;
	k->s = e->s;
	k->dpl = e->dpl;
	k->present = e->present;
	k->avl = e->avl;
	k->l = e->l;
	k->db = e->db;
	k->g = e->g;
	k->unusable = !e->present;
}

static void cpu_from_kvm(struct vm *vm, struct emu_cpu *c)
{
	const struct kvm_regs *r = &vm->run->s.regs.regs;
	const struct kvm_sregs *s = &vm->run->s.regs.sregs;

	memset(c, 0, sizeof(*c));
	emu_gprs_from_kvm(c->gpr, r);
	c->rip = r->rip;
	c->rflags = r->rflags;
	c->cr0 = s->cr0;
	c->cr2 = s->cr2;
	c->cr3 = s->cr3;
	c->cr4 = s->cr4;
	c->efer = s->efer;
	seg_from_kvm(&c->cs, &s->cs);
	seg_from_kvm(&c->ss, &s->ss);
	c->fs_base = s->fs.base;
	c->gs_base = s->gs.base;
	c->gdt_base = s->gdt.base;
	c->gdt_limit = s->gdt.limit;
	c->idt_base = s->idt.base;
	c->idt_limit = s->idt.limit;
	c->tr_base = s->tr.base;
	c->tr_limit = s->tr.limit;
	c->tr_sel = s->tr.selector;
	c->virt.null_sel_keeps_base = vm->cpu_null_sel_keeps_base;
	/*
	 * The syscall MSRs, for sysret and the syscall entry: the guest's, where
	 * the VMM keeps them (vmm/hw_syscall.h). Elsewhere KVM runs both itself.
	 */
	if (vm->hw_sys.on) {
		c->virt.star = vm->hw_sys.star;
		c->virt.lstar = vm->hw_sys.lstar;
		c->virt.sfmask = vm->hw_sys.sfmask;
	}
}

/* ---- item 3 -------------------------------------------------------------- */

static void cpu_to_kvm(struct kvm_run *run, const struct emu_cpu *c)
{
	struct kvm_regs *r = &run->s.regs.regs;
	struct kvm_sregs *s = &run->s.regs.sregs;

	if (c->dirty & EMU_DIRTY_REGS) {
		emu_gprs_to_kvm(r, c->gpr);
		r->rip = c->rip;
		r->rflags = c->rflags;
		run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	}
	if (c->dirty & EMU_DIRTY_SREGS) {
		s->cr2 = c->cr2;
		seg_to_kvm(&s->cs, &c->cs);
		seg_to_kvm(&s->ss, &c->ss);
		run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
	}
}

/* ---- item 2: the callbacks ----------------------------------------------- */

static enum emu_map_result map(void *opaque, u64 la, unsigned len, u32 access, void **hva,
			       struct emu_event *fault)
{
	struct vm *vm = opaque;
	const struct kvm_sregs *s = &vm->run->s.regs.sregs;
	struct walk_ctl ctl =
		guest_hw_walk_ctl(&vm->mem, s->cr0, s->cr3, s->cr4, s->efer, vm->guest_maxphyaddr);
	enum emu_map_result r;
	gpa_t gpa;

	r = guest_translate_emu(&vm->mem, &ctl, la, len, access, &gpa, hva, fault);
	if (r == EMU_MAP_OK && !*hva)
		return EMU_MAP_NOT_RAM; /* hw mode: the VMM emulates RAM operands only */
	return r;
}

static bool read_xcr(void *opaque, u32 index, u64 *value)
{
	struct vm *vm = opaque;
	struct kvm_xcrs xcrs;

	if (ioctl(vm->vcpu_fd, KVM_GET_XCRS, &xcrs) < 0) {
		pr_err("KVM_GET_XCRS: %s", strerror(errno));
		return false;
	}
	for (u32 i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		if (xcrs.xcrs[i].xcr == index) {
			*value = xcrs.xcrs[i].value;
			return true;
		}
	}
	return false;
}

/*
 * INVPCID of any type, done as a CR4.PGE toggle through two KVM_SET_SREGS.
 *
 * Why this is at least as strong as the instruction: architecturally, a
 * change of CR4.PGE invalidates every TLB entry, global ones included, for
 * every PCID (SDM Vol. 3A §4.10.4.1), a superset of what INVPCID types 0-3
 * invalidate. In KVM, KVM_SET_SREGS with a different CR0/CR3/CR4/EFER
 * resets the vCPU's MMU context and requests a guest TLB flush, which on a
 * shadow-paging KVM (PVM here) also resynchronizes out-of-sync shadow pages.
 * Simply re-setting the same CR3 would not do: KVM only resets the MMU when
 * one of those registers actually changes. The second call restores CR4,
 * so the guest sees no change; the sync sregs in kvm_run still hold it.
 */
static bool flush_tlb(void *opaque, unsigned type, u64 pcid, u64 la)
{
	struct vm *vm = opaque;
	struct kvm_sregs s = vm->run->s.regs.sregs;

	(void)type;
	(void)pcid;
	(void)la;
	s.cr4 ^= CR4_PGE;
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s) < 0)
		goto fail;
	s.cr4 ^= CR4_PGE;
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s) < 0)
		goto fail;
	return true;
fail:
	pr_err("KVM_SET_SREGS (invpcid flush): %s", strerror(errno));
	return false;
}

/*
 * The vCPU's XSAVE state for the xsave family and wait, in the standard
 * format KVM_GET_XSAVE returns (struct kvm_xsave.region, 4 KiB), or
 * KVM_GET_XSAVE2 with the size KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) gives
 * when the enabled components need more. Its component layout is the host's
 * CPUID leaf 0xd, which is what KVM's uabi format uses. One buffer per
 * process: Umbra runs one vCPU.
 */
static struct {
	struct kvm_xsave *k;
	size_t size; /* bytes of k */
	bool xsave2;
	struct emu_xstate xs;
} xbuf;

static bool xstate_init(struct vm *vm)
{
	unsigned a, b, c, d;
	int r;

	if (xbuf.k)
		return true;
	r = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	xbuf.xsave2 = r > (int)sizeof(struct kvm_xsave);
	xbuf.size = xbuf.xsave2 ? (size_t)r : sizeof(struct kvm_xsave);
	xbuf.k = calloc(1, xbuf.size);
	if (!xbuf.k) {
		pr_err("xsave state: out of memory");
		return false;
	}
	xbuf.xs.area = (u8 *)xbuf.k->region;
	xbuf.xs.size = (u32)xbuf.size;
	for (unsigned i = 2; i < EMU_XSTATE_MAX_COMPS; i++) {
		if (!__get_cpuid_count(0xd, i, &a, &b, &c, &d) || !a || (c & 1))
			continue; /* absent, or a supervisor component (ECX[0]) */
		xbuf.xs.len[i] = a;
		xbuf.xs.offset[i] = b;
		if (c & 2)
			xbuf.xs.align64 |= 1ull << i;
	}
	return true;
}

struct emu_xstate *vmm_xstate_get(void *opaque)
{
	struct vm *vm = opaque;

	if (!xstate_init(vm))
		return NULL;
	if (ioctl(vm->vcpu_fd, xbuf.xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xbuf.k) < 0) {
		pr_err("%s: %s", xbuf.xsave2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", strerror(errno));
		return NULL;
	}
	return &xbuf.xs;
}

bool vmm_xstate_put(void *opaque, const struct emu_xstate *xs)
{
	struct vm *vm = opaque;

	(void)xs; /* it is xbuf.xs, whose area is xbuf.k */
	if (ioctl(vm->vcpu_fd, KVM_SET_XSAVE, xbuf.k) < 0) {
		pr_err("KVM_SET_XSAVE: %s", strerror(errno));
		return false;
	}
	return true;
}

static const struct emu_ops *ops_for(struct vm *vm);

/*
 * Deliver an event raised by an emulated instruction: int n, int3, or a fault.
 *
 * Measured on our PVM hosts (kernel 6.18 kvm_pvm, images/emul.elf at CPL0):
 * advancing RIP through the sync regs and then injecting with
 * KVM_SET_VCPU_EVENTS (int3 as exception 3, int $0x80 as a soft interrupt)
 * also gave the guest handler exact frames (RIP after the instruction, IST
 * switch, IF cleared by the interrupt gate). We still build the frame here:
 *  - injection costs a KVM_GET/SET_VCPU_EVENTS pair (~5 us each here), and
 *    HOST.md asks for no ioctls on the trap path; this path needs none;
 *  - it is not exact on VMX hosts, where KVM injects a soft interrupt with
 *    the instruction length of the last VM exit, not of our instruction;
 *  - the gate-DPL check (#GP(n*8+2)), nested faults and #DF/triple-fault
 *    rules must be the VMM's anyway, and this way one unit-tested path
 *    (decode/emulate.c) delivers every event.
 */
static enum emu_result deliver(void *opaque, struct emu_cpu *cpu, const struct emu_event *ev)
{
	return emu_deliver_event(cpu, ops_for(opaque), ev);
}

static const struct emu_ops *ops_for(struct vm *vm)
{
	static struct emu_ops ops = {
		.map = map,
		.read_xcr = read_xcr,
		.flush_tlb = flush_tlb,
		.deliver = deliver,
		.get_xstate = vmm_xstate_get,
		.put_xstate = vmm_xstate_put,
	};

	ops.opaque = vm;
	return &ops;
}

enum emu_result vmm_emulate_insn(struct vm *vm, struct emu_report *rep)
{
	static bool handlers_kept;
	struct emu_cpu cpu;
	enum emu_result r;

	/* Nothing in the VMM installs fault handlers later: the SIMD fallback's may stay. */
	if (!handlers_kept) {
		emu_simd_keep_handlers();
		handlers_kept = true;
	}

	cpu_from_kvm(vm, &cpu);
	r = emu_insn(&cpu, ops_for(vm), rep);
	if (r != EMU_DONE)
		return r;
	cpu_to_kvm(vm->run, &cpu);
	stats_count_emulated(&vm->stats, rep->mnemonic);
	return EMU_DONE;
}

/* RFLAGS bits a CPL3 syscall cannot have saved on a PVM host (IF is always 1 there). */
#define PVM_CPL3_NEVER (RFLAGS_IOPL_MASK | RFLAGS_VM)

enum emu_result vmm_emulate_syscall_entry(struct vm *vm, struct emu_report *rep)
{
	struct emu_cpu cpu;
	enum emu_result r;

	cpu_from_kvm(vm, &cpu);
	cpu.rip = cpu.gpr[EMU_RCX] - EMU_SYSCALL_LEN;
	cpu.rflags = (cpu.gpr[EMU_R11] & ~PVM_CPL3_NEVER) | RFLAGS_IF | RFLAGS_FIXED;
	r = emu_syscall_entry(&cpu, ops_for(vm), EMU_SYSCALL_LEN, rep);
	if (r != EMU_DONE)
		return r;
	cpu_to_kvm(vm->run, &cpu);
	return EMU_DONE;
}
