// SPDX-License-Identifier: MIT
/*
 * The shadow-mode virtual CPU (vmm/shadow_cpu.h).
 *
 * 1. Boot: the state the ELF64 boot contract promises (long mode, paging on
 *    with the boot identity tables, the flat boot GDT, virtual CPL0), or
 *    Multiboot's (32-bit protected mode, paging off, the same GDT).
 * 2. Load at a trap: GPRs from the sync regs (RBX saved by the trap path),
 *    RIP/RSP/RFLAGS from the frame the CPU pushed on the monitor stack;
 *    the virtual flags replace the real ones (shadow_virt_flags).
 * 3. Store: the reverse; the real IF and IOPL as shadow_real_rflags says.
 *    With the call window (monitor.h), the guest kernel's virtual IF lives
 *    in its data page while the guest runs: loaded from there at a trap,
 *    stored back with the other virtual flags.
 * 4. The data segment registers DS, ES, FS and GS: the real ones carry
 *    the virtual selectors (load_data_sels, shadow_cpu_store). The load_fs
 *    stand-in loads FS for real (a null selector, base 0), which the next
 *    trap takes back as any native load.
 */
#include <linux/kvm.h>
#include <string.h>

#include "decode/debugreg.h"
#include "shadow/x86.h"
#include "vmm/emu_regs.h"
#include "vmm/boot.h"
#include "vmm/guest_access.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_mode.h"
#include "umbra/bootinfo.h"

/* Item 1. */
void shadow_cpu_boot(struct emu_cpu *c, const struct boot_state *bs, unsigned maxphyaddr)
{
	bool lm = bs->mode == BOOT_LONG64;

	memset(c, 0, sizeof(*c));
	c->mode = EMU_MODE_SHADOW;
	if (lm) {
		c->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
		c->cr3 = bs->cr3;
		c->cr4 = CR4_PAE;
		c->efer = EFER_LME | EFER_LMA | EFER_SCE | (bs->nx ? EFER_NXE : 0);
	} else {
		/* Multiboot (spec 3.2) and Linux's 32-bit boot protocol: protected mode, paging
		 * off. */
		c->cr0 = CR0_PE | CR0_ET;
	}
	c->rflags = RFLAGS_FIXED | (bs->rflags & SHADOW_VIRT_FLAGS);
	c->rip = bs->rip;
	/* The boot GDT's flat code (64-bit, or 32-bit outside long mode) and data, ring 0. */
	c->cs = (struct emu_seg){ .sel = bs->cs_sel,
				  .limit = 0xffffffff,
				  .type = 0xb,
				  .s = 1,
				  .present = 1,
				  .l = lm,
				  .db = !lm,
				  .g = 1 };
	c->ss = (struct emu_seg){ .sel = bs->ds_sel,
				  .limit = 0xffffffff,
				  .type = 0x3,
				  .s = 1,
				  .present = 1,
				  .db = 1,
				  .g = 1 };
	c->gdt_base = UMBRA_BOOT_GDT;
	c->gdt_limit = BOOT_GDT_ENTRIES * 8 - 1;
	c->virt.ds_sel = c->virt.es_sel = c->virt.fs_sel = c->virt.gs_sel = bs->ds_sel;
	c->virt.pat = 0x0007040600070406ull; /* the reset value (SDM Vol. 3A §11.12.4) */
	c->virt.maxphyaddr = maxphyaddr;
}

/*
 * Item 4: DS, ES, FS and GS. A native `mov` reads the real selector (Linux's
 * context switch saves them so), and 32-bit code addresses memory through
 * them, so the real ones carry the virtual selectors, each with a flat DPL3
 * descriptor cache (an iretq to CPL3 keeps it) and the virtual base. A
 * guest load completes natively only where the real GDT has the descriptor
 * (a null selector, as Linux's startup loads into all of them; the user's
 * own SS index while user code runs): the selector then differs from the
 * one given, and is taken back as the virtual one. (FS's and GS's bases are
 * the real ones already, shadow_cpu_load.)
 */
static void load_data_sels(struct shadow_mode *sm, const struct kvm_sregs *s)
{
	struct emu_cpu *c = &sm->cpu;

	if (s->ds.selector != sm->real_ds_sel) {
		c->virt.ds_sel = sm->real_ds_sel = s->ds.selector;
		c->virt.ds_base = s->ds.base;
	}
	if (s->es.selector != sm->real_es_sel) {
		c->virt.es_sel = sm->real_es_sel = s->es.selector;
		c->virt.es_base = s->es.base;
	}
	if (s->fs.selector != sm->real_fs_sel)
		c->virt.fs_sel = sm->real_fs_sel = s->fs.selector;
	if (s->gs.selector != sm->real_gs_sel)
		c->virt.gs_sel = sm->real_gs_sel = s->gs.selector;
}

/* A flat DPL3 data segment with selector `sel` and base `base` (item 4). */
static struct kvm_segment flat_user_data(u16 sel, u64 base)
{
	return (struct kvm_segment){ .base = base,
				     .limit = 0xffffffff,
				     .selector = sel,
				     .type = 0x3, /* data, read/write, accessed */
				     .present = 1,
				     .dpl = 3,
				     .db = 1,
				     .s = 1,
				     .g = 1 };
}

static bool needs_sync(const struct kvm_segment *seg, u16 sel)
{
	return seg->selector != sel || seg->unusable || seg->dpl != 3 || !seg->present;
}

/* Item 2. */
bool shadow_cpu_load(struct shadow_mode *sm, const struct kvm_run *run)
{
	const struct kvm_regs *r = &run->s.regs.regs;
	const struct mon_frame *f = monitor_frame(&sm->mon);
	struct emu_cpu *c = &sm->cpu;
	bool fs_loaded = false;

	/* RBX was saved by the trap path (the tail uses it); RSP is in the frame. */
	emu_gprs_from_kvm(c->gpr, r);
	c->gpr[EMU_RBX] = sm->guest_rbx;
	c->gpr[EMU_RSP] = f->rsp;
	/*
	 * The FS/GS bases as the guest left them: where the host lets CPL3 code
	 * run wrfsbase/wrgsbase (PVM: the host's CR4.FSGSBASE), the guest kernel
	 * sets them natively, and a null selector load may clear them.
	 */
	c->fs_base = run->s.regs.sregs.fs.base;
	c->gs_base = run->s.regs.sregs.gs.base;
	c->rip = f->rip;
	{
		u64 virt = shadow_virt_flags(sm->iopl3, emu_cpl(c));

		c->rflags = (f->rflags & ~virt) | (c->rflags & virt);
	}
	/* Selectors the guest loaded natively; the window's GS selector, below, wins over them. */
	load_data_sels(sm, &run->s.regs.sregs);
	/*
	 * The guest kernel may have changed its IF, KERNEL_GS_BASE, GS selector and FS
	 * base in the call window (monitor.h). Only it can: the window is in the kernel
	 * view alone, and a trap from user mode comes before any return to the
	 * kernel, whose store below refreshes the page.
	 */
	if (sm->window_on && emu_cpl(c) == 0) {
		struct mon_call_data *d = monitor_call_data(&sm->mon);

		if (!sm->iopl3)
			c->rflags = (c->rflags & ~RFLAGS_IF) | (d->vif ? RFLAGS_IF : 0);
		c->virt.kernel_gs_base = d->kernel_gs_base;
		c->virt.gs_sel = d->gs_sel; /* the load_gs stand-in's */
		/* An FS base the wrmsr stand-in deferred: the real FS gets it at the store. */
		if (d->fs_pending) {
			c->fs_base = d->fs_base_new[(d->fs_pending - 1) & 1];
			d->fs_pending = 0;
			fs_loaded = true;
		}
		/* __KERNEL_DS, which the SS load stand-in checked against this key. */
		if (d->ss_loaded) {
			if (sm->ss_load_key.loadable)
				c->ss = sm->ss_load_key.seg;
			d->ss_loaded = 0;
		}
	}
	c->dirty = 0;
	return fs_loaded;
}

/* Item 3. */
void shadow_cpu_store(struct shadow_mode *sm, struct kvm_run *run)
{
	struct kvm_regs *r = &run->s.regs.regs;
	struct kvm_sregs *s = &run->s.regs.sregs;
	struct mon_frame *f = monitor_frame(&sm->mon);
	const struct emu_cpu *c = &sm->cpu;

	/*
	 * RBX and RSP as written here are the guest's; the return path
	 * (resume_guest) then gives the vCPU the tail's stack and RBX, and the
	 * tail restores the guest's from sm->guest_rbx and the frame.
	 */
	emu_gprs_to_kvm(r, c->gpr);
	sm->guest_rbx = c->gpr[EMU_RBX];
	run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	f->rip = c->rip;
	f->rsp = c->gpr[EMU_RSP];
	f->rflags = shadow_real_rflags(sm->iopl3, emu_cpl(c), c->rflags);
	if (sm->window_on) {
		struct mon_call_data *d = monitor_call_data(&sm->mon);

		d->kernel_gs_base = c->virt.kernel_gs_base;
		d->cr2 = c->cr2; /* read only by the CR2 stand-in */
		d->gs_sel = c->virt.gs_sel;
		d->null_clears = !c->virt.null_sel_keeps_base;
		d->iret_flags_mask =
			MON_IRET_CHECKED_FLAGS | (dr_exec_armed(c->virt.dr7) ? RFLAGS_RF : 0);
		/* Nothing at real CPL3 could see a deferred FS base (monitor.h, MON_CALL_WRMSR). */
		d->fs_defer = !sm->fs_base_seen && !(c->cr4 & CR4_FSGSBASE);
		if (!sm->iopl3) {
			d->vif = !!(c->rflags & RFLAGS_IF);
			d->virt_flags = c->rflags & (RFLAGS_IOPL_MASK | RFLAGS_AC | RFLAGS_NT);
			/* d->pending: resume_guest (vmm/shadow_mode.c), once the TPR is known. */
		}
	}
	{
		u16 cs, ss;

		monitor_set_user_segs(&sm->mon, emu_cpl(c) == 3, c->cs.sel, c->cs.l, c->ss.sel, &cs,
				      &ss);
		f->cs = cs;
		f->ss = ss;
	}
	/*
	 * Item 4: the real DS, ES, FS and GS show the virtual selectors. Linux's
	 * context switch saves what a native `mov %gs` reads (save_fsgs): a
	 * 32-bit task's TLS selector read back as anything else came back null
	 * with base 0; so would an LDT selector in FS (Wine's) before session
	 * 25. The cache is flat DPL3 whatever the selector: a null one
	 * left by a native null load would have the monitor's iretq to CPL3
	 * null the register again (DPL < CPL, SDM Vol. 3A §6.14.3).
	 */
	if (s->fs.base != c->fs_base || s->gs.base != c->gs_base ||
	    needs_sync(&s->fs, c->virt.fs_sel) || needs_sync(&s->gs, c->virt.gs_sel) ||
	    needs_sync(&s->ds, c->virt.ds_sel) || needs_sync(&s->es, c->virt.es_sel) ||
	    s->cr4 != shadow_real_cr4(sm)) {
		s->fs = flat_user_data(c->virt.fs_sel, c->fs_base);
		s->gs = flat_user_data(c->virt.gs_sel, c->gs_base);
		s->ds = flat_user_data(c->virt.ds_sel, c->virt.ds_base);
		s->es = flat_user_data(c->virt.es_sel, c->virt.es_base);
		sm->real_ds_sel = c->virt.ds_sel;
		sm->real_es_sel = c->virt.es_sel;
		sm->real_fs_sel = c->virt.fs_sel;
		sm->real_gs_sel = c->virt.gs_sel;
		s->cr4 = shadow_real_cr4(sm);
		shadow_cpu_push_sregs(sm, run);
	}
}

void shadow_cpu_push_sregs(const struct shadow_mode *sm, struct kvm_run *run)
{
	/* KVM on SVM reports TR busy whatever was set (real_boot_state, shadow_mode.c). */
	run->s.regs.sregs.tr.type = sm->tr_type;
	run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
}

u64 shadow_real_cr4(const struct shadow_mode *sm)
{
	u64 cr4 = sm->real_cr4_fixed | (sm->cpu.cr4 & sm->real_cr4_mirror);

	/*
	 * TSD only while user mode runs: the guest kernel, at real CPL3 too,
	 * must not trap on its own rdtsc. Linux reads kvmclock in a loop that
	 * retries while the pvclock page's version moves, and KVM may update
	 * that page at every re-entry after a trap (where the TSC is unstable,
	 * as under TCG): a trapping rdtsc there never got out (the rig, session
	 * 25). Every switch between user mode and the kernel passes through
	 * the VMM (the view switch), which syncs CR4 then.
	 */
	if (emu_cpl(&sm->cpu) == 3)
		cr4 |= sm->cpu.cr4 & sm->real_cr4_user_mirror;
	return cr4;
}

struct walk_ctl shadow_cpu_walk_ctl(const struct emu_cpu *c)
{
	return (struct walk_ctl){ .cr0 = c->cr0,
				  .cr3 = c->cr3,
				  .cr4 = c->cr4,
				  .efer = c->efer,
				  .maxphyaddr = c->virt.maxphyaddr,
				  .pdpte = { c->pdpte[0], c->pdpte[1], c->pdpte[2], c->pdpte[3] } };
}
