// SPDX-License-Identifier: MIT
/*
 * Shadow mode's side of the monitor's call window (vmm/shadow_calls.h):
 * what the VMM does when a trap lands in a stand-in, or a stand-in gives up.
 *
 * 1. Finishing a stand-in (shadow_call_finish): a trap inside one (an
 *    interrupt, a fault on its stack, a #DB its access fired) must not be
 *    delivered with a RIP in the window, so the VMM does what the rest of
 *    the stand-in does, per stand-in (finish_sync ... finish_ss_load), or
 *    in a thunk undoes it back to the site.
 * 2. Slow paths (shadow_call_slow_path): a stand-in's ud2 (one of its
 *    checks failed) or a guest fault inside it before its checks passed:
 *    back to the site, and the original instructions run there, emulated
 *    from the guest's bytes, raising what they would.
 * 3. Withdrawal (shadow_call_withdraw): the guest maps the window's
 *    addresses, or the host does not run it; the window goes and every
 *    site traps again.
 */
#include <linux/kvm.h>

#include "decode/flags.h"
#include "shadow/x86.h"
#include "umbra/log.h"
#include "vmm/call_cx16.h"
#include "vmm/call_iret.h"
#include "vmm/exitcode.h"
#include "vmm/guest_access.h"
#include "vmm/shadow_calls.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_emu.h"
#include "vmm/shadow_mode.h"
#include "vmm/vm.h"

bool shadow_in_call_window(u64 gva)
{
	return (gva & ~(u64)(2 * MiB - 1)) == MON_CALL_GVA;
}

/* The `words` qwords at the guest's RSP (the stack a stand-in or thunk built), into top[]. */
static bool read_stack_top(struct vm *vm, u64 *top, unsigned words)
{
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&vm->shadow->cpu);
	size_t n = words * sizeof(u64);

	return guest_read_virt(&vm->mem, &ctl, vm->shadow->cpu.gpr[EMU_RSP], top, n, 0) == n;
}

/*
 * Put a vCPU back at a site's start from a thunk or stand-in that saved
 * what the site had: top[] the `words` qwords at RSP, the last the return
 * address, `back` bytes past the site's start; before it the site's flags
 * (words >= 2), and before those its RAX (words == 3).
 */
static void undo_to_site(struct vm *vm, const u64 *top, unsigned words, unsigned back)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	const u64 virt = shadow_virt_flags(sm->iopl3, 0);

	if (words == 3)
		c->gpr[EMU_RAX] = top[0];
	if (words >= 2)
		c->rflags = (top[words - 2] & ~virt) | (c->rflags & virt) | RFLAGS_FIXED;
	c->rip = top[words - 1] - back;
	c->gpr[EMU_RSP] += words * sizeof(u64);
}

/*
 * A vCPU inside a thunk (vmm/monitor.h, "Indirect sites") at `stage`: it
 * has done nothing that counts, so undo what it did to the stack, RAX and
 * the flags, and put it back at the site's call (an instruction boundary of
 * the original code too: its `call`), which it runs again.
 */
static bool undo_thunk(struct vm *vm, enum mon_call_stage stage, unsigned pad)
{
	u64 top[3];
	unsigned words = stage == MON_CALL_THUNK_RAX_SAVED ? 3
			 : stage == MON_CALL_THUNK_FLAGS_SAVED || stage == MON_CALL_THUNK_RETURN_SET
				 ? 2
				 : 1;
	/* How far the return address is past the site's start: the call, then its pad. */
	unsigned back = stage == MON_CALL_THUNK_AT_ENTRY || stage == MON_CALL_THUNK_FLAGS_SAVED
				? 5
				: 5 + pad;

	if (!read_stack_top(vm, top, words))
		return false;
	undo_to_site(vm, top, words, back);
	return true;
}

/*
 * A vCPU inside the sync stand-in (vmm/monitor.h, MON_CALL_SYNC) at
 * `stage`. Before its checks passed: undo, if `may_undo`, putting back the
 * site's RAX and flags and the vCPU at the site's call, which runs again
 * (or, on the slow path, the original: vmm/call_sync.c). After: complete
 * it, RAX the virtual CS and the flags those of the original's addq.
 */
static bool finish_sync(struct vm *vm, enum mon_call_stage stage, bool may_undo)
{
	struct emu_cpu *c = &vm->shadow->cpu;
	unsigned words = stage == MON_CALL_SYNC_FLAGS_SAVED ? 2
			 : stage == MON_CALL_SYNC_RAX_SAVED || stage == MON_CALL_SYNC_RAX_RETURN_SET
				 ? 3
				 : 1;
	u64 top[3];

	if (!read_stack_top(vm, top, words))
		return false;
	if (stage == MON_CALL_SYNC_RETURN_SET) {
		u64 rflags = c->rflags;

		flags_add(c->gpr[EMU_RSP], 8, 0, 8, &rflags); /* RSP: the site's less 8 */
		c->rflags = rflags;
		c->gpr[EMU_RAX] = c->cs.sel;
	}
	if (stage == MON_CALL_SYNC_RETURN_SET || stage == MON_CALL_SYNC_AT_RET) {
		c->rip = top[0];
		c->gpr[EMU_RSP] += 8;
		return true;
	}
	if (!may_undo)
		return false;
	undo_to_site(vm, top, words,
		     stage == MON_CALL_SYNC_RAX_RETURN_SET ? MON_CALL_SYNC_SITE : 5);
	return true;
}

/*
 * A vCPU inside the iret stand-in (vmm/monitor.h, MON_CALL_IRET) at
 * `stage`. Before it set vif: undo, if `may_undo`, putting back the site's
 * RAX and flags and the vCPU at the site's call (the frame is untouched:
 * the stand-in wrote only below it and to the data page). After: complete
 * the iretq from what the stand-in left, the flags, RAX, then RSP and RIP
 * from the data page (its virtual IF is vif, already loaded at the trap).
 */
static bool finish_iret(struct vm *vm, enum mon_call_stage stage, bool may_undo)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	const struct mon_call_data *d = monitor_call_data(&sm->mon);
	const u64 virt = shadow_virt_flags(sm->iopl3, 0);
	unsigned words = stage == MON_CALL_IRET_AT_POPFQ     ? 2
			 : stage == MON_CALL_IRET_AT_POP_RAX ? 1
			 : stage < MON_CALL_IRET_AT_POPFQ
				 ? (unsigned)(stage - MON_CALL_IRET_AT_ENTRY) + 1
				 : 0;
	u64 top[4];

	if (words && !read_stack_top(vm, top, words))
		return false;
	if (stage < MON_CALL_IRET_AT_POPFQ) {
		if (!may_undo)
			return false;
		/* NEW_FLAGS: the frame's flags above the site's RAX, dropped. */
		undo_to_site(vm, top + (words == 4), MIN(words, 3u), 5);
		c->gpr[EMU_RSP] += words == 4 ? 8 : 0;
		return true;
	}
	if (stage == MON_CALL_IRET_AT_POPFQ) {
		c->rflags = (top[0] & ~virt) | (c->rflags & virt) | RFLAGS_FIXED;
		c->gpr[EMU_RAX] = top[1];
	} else if (stage == MON_CALL_IRET_AT_POP_RAX) {
		c->gpr[EMU_RAX] = top[0];
	}
	if (stage != MON_CALL_IRET_AT_JMP)
		c->gpr[EMU_RSP] = d->iret_rsp;
	c->rip = d->iret_rip;
	return true;
}

/*
 * The cmpxchg16b stand-in at `stage` (vmm/monitor.h, MON_CALL_CX16).
 * Before its cmpxchg16b ran: undo it, if `may_undo`, the body's flags, RDX
 * and RAX back from its stack and the vCPU at the body's start. After:
 * complete it as the body ends, %al and the flags by the outcome (ZF while
 * the stand-in still holds it there, then the path it took).
 */
static bool finish_cx16(struct vm *vm, enum mon_call_stage stage, bool may_undo)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	const u64 virt = shadow_virt_flags(sm->iopl3, 0);
	unsigned k; /* words it pushed still on the stack; the return address above them */
	u64 top[4], flags, rdx, rax;

	switch (stage) {
	case MON_CALL_CX16_RAX_SAVED:
	case MON_CALL_CX16_DONE: k = 3; break;
	case MON_CALL_CX16_RDX_SAVED:
	case MON_CALL_CX16_RAX_BACK: k = 2; break;
	case MON_CALL_CX16_FLAGS_SAVED:
	case MON_CALL_CX16_AT_JNE:
	case MON_CALL_CX16_OK_POPFQ:
	case MON_CALL_CX16_FAIL_POPFQ: k = 1; break;
	default: k = 0; break; /* at entry, or its popfq done */
	}
	if (!read_stack_top(vm, top, k + 1))
		return false;
	flags = k ? top[k - 1] : c->rflags;
	rdx = k >= 2 ? top[k - 2] : c->gpr[EMU_RDX];
	rax = k == 3 ? top[0] : c->gpr[EMU_RAX];
	flags = (flags & ~virt) | (c->rflags & virt) | RFLAGS_FIXED;
	if (stage <= MON_CALL_CX16_RAX_SAVED) {
		if (!may_undo || !sm->cx16_body)
			return false;
		c->rip = sm->cx16_body;
	} else {
		if (stage != MON_CALL_CX16_AT_RET) {
			bool ok = stage == MON_CALL_CX16_OK_POPFQ ||
				  stage == MON_CALL_CX16_OK_SET ||
				  (stage <= MON_CALL_CX16_AT_JNE && (c->rflags & RFLAGS_ZF));

			rax = (rax & ~0xffull) | ok;
			if (!ok)
				flags_logic(0, 1, &flags); /* xor %al,%al */
		}
		c->rip = top[k];
		k++; /* the return */
	}
	c->rflags = flags;
	c->gpr[EMU_RDX] = rdx;
	c->gpr[EMU_RAX] = rax;
	c->gpr[EMU_RSP] += k * sizeof(u64);
	return true;
}

/*
 * The SS stand-in at `stage` (vmm/monitor.h, MON_CALL_SS_CMP): complete it,
 * %ax the virtual SS and the flags its cmp with __KERNEL_DS leaves.
 */
static bool finish_ss(struct vm *vm, enum mon_call_stage stage)
{
	struct emu_cpu *c = &vm->shadow->cpu;
	u64 ret;

	if (!read_stack_top(vm, &ret, 1))
		return false;
	if (stage == MON_CALL_SS_AT_ENTRY)
		ret += MON_CALL_SS_PAD;
	if (stage < MON_CALL_SS_AX_SET)
		c->gpr[EMU_RAX] = (c->gpr[EMU_RAX] & ~0xffffull) | c->ss.sel;
	if (stage < MON_CALL_SS_AT_RET)
		flags_sub(c->gpr[EMU_RAX] & 0xffff, 0x18, 0, 2, &c->rflags);
	c->gpr[EMU_RSP] += sizeof(u64);
	c->rip = ret;
	return true;
}

/*
 * The swapgs stand-in at `stage` (vmm/monitor.h, MON_CALL_SWAPGS): complete
 * the exchange of GS base and KERNEL_GS_BASE where it stands, restore RAX
 * and the flags from its stack, and return to the site's end. The data
 * page's kernel_gs_base is in c->virt already (shadow_cpu_load).
 */
static bool finish_swapgs(struct vm *vm, enum mon_call_stage stage)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	const u64 virt = shadow_virt_flags(sm->iopl3, 0);
	u64 top[3], site_flags, ret, t;
	unsigned words = stage == MON_CALL_SWAPGS_AT_ENTRY || stage == MON_CALL_SWAPGS_AT_RET ? 1
			 : stage >= MON_CALL_SWAPGS_RAX_SAVED && stage <= MON_CALL_SWAPGS_GS_SET
				 ? 3
				 : 2;

	if (!read_stack_top(vm, top, words))
		return false;
	vm->stats.call_swapgs_slow++;
	site_flags = words == 1 ? c->rflags : top[words - 2];
	ret = top[words - 1];
	if (stage < MON_CALL_SWAPGS_RETURN_SET)
		ret += MON_CALL_SWAPGS_PAD;
	if (stage < MON_CALL_SWAPGS_EXCHANGED) {
		t = c->gs_base;
		c->gs_base = c->virt.kernel_gs_base;
		c->virt.kernel_gs_base = t;
	} else if (stage == MON_CALL_SWAPGS_EXCHANGED) {
		c->gs_base = c->gpr[EMU_RAX]; /* the xchg's: the old KERNEL_GS_BASE */
	}
	if (words == 3)
		c->gpr[EMU_RAX] = top[0];
	c->rflags = (site_flags & ~virt) | (c->rflags & virt) | RFLAGS_FIXED;
	c->gpr[EMU_RSP] += words * sizeof(u64);
	c->rip = ret;
	return true;
}

/*
 * The stack of a stand-in that begins `pushfq; addq $pad,8(%rsp)` (the
 * load_gs, load_fs, wrmsr and SS load ones) at one of its stages: the
 * return address alone at its first instruction and at its ret, else the
 * site's flags above it. `pad_added`: the return address is the site's end
 * already.
 */
struct stand_in_stack {
	unsigned words;
	u64 site_flags; /* the live flags where none are saved */
	u64 site_end;
};

static bool read_stand_in_stack(struct vm *vm, bool one_word, bool pad_added, unsigned site_len,
				struct stand_in_stack *st)
{
	u64 top[2];

	st->words = one_word ? 1 : 2;
	if (!read_stack_top(vm, top, st->words))
		return false;
	st->site_flags = one_word ? vm->shadow->cpu.rflags : top[0];
	st->site_end = top[st->words - 1] + (pad_added ? 0 : site_len - 5);
	return true;
}

/* Out of such a stand-in to `rip`: its words popped, the site's flags back (the virtual kept). */
static void leave_stand_in(struct vm *vm, const struct stand_in_stack *st, u64 rip)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	const u64 virt = shadow_virt_flags(sm->iopl3, 0);

	c->rflags = (st->site_flags & ~virt) | (c->rflags & virt) | RFLAGS_FIXED;
	c->gpr[EMU_RSP] += st->words * sizeof(u64);
	c->rip = rip;
}

/*
 * The load_gs stand-in at `stage` (vmm/monitor.h, MON_CALL_LOAD_GS). With a
 * null selector in %di: complete it (the GS selector, and KERNEL_GS_BASE 0
 * where a null load clears the base) and return to the site's end; with
 * user_sel past its check (SEL_SET on), the same with KERNEL_GS_BASE 0, the
 * base of the descriptor it checked. Otherwise nothing was done: back to
 * the site's start with its flags and RDI (load_gs_slow_path runs the
 * original from there).
 */
static bool finish_load_gs(struct vm *vm, enum mon_call_stage stage)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	struct stand_in_stack st;
	u16 sel;

	if (!read_stand_in_stack(
		    vm, stage == MON_CALL_LOAD_GS_AT_ENTRY || stage == MON_CALL_LOAD_GS_AT_RET,
		    stage >= MON_CALL_LOAD_GS_RETURN_SET, MON_CALL_LOAD_GS_SITE, &st))
		return false;
	if (stage == MON_CALL_LOAD_GS_RDI_SAVED) /* %rdi may hold the table's address */
		c->gpr[EMU_RDI] = monitor_call_data(&sm->mon)->load_gs_rdi;
	sel = (u16)c->gpr[EMU_RDI];
	sm->load_gs_undone = (sel & 0xfffc) && stage < MON_CALL_LOAD_GS_SEL_SET;
	if (!sm->load_gs_undone) {
		c->virt.gs_sel = sel;
		if ((sel & 0xfffc) || !c->virt.null_sel_keeps_base)
			c->virt.kernel_gs_base = 0;
	}
	/* Not null, not (yet) past its check: the site's start. */
	leave_stand_in(vm, &st, st.site_end - (sm->load_gs_undone ? MON_CALL_LOAD_GS_SITE : 0));
	return true;
}

/*
 * The load_fs stand-in at `stage` (vmm/monitor.h, MON_CALL_LOAD_FS). Before
 * its checks passed it has done nothing that counts: the vCPU goes after
 * the site's first instruction (%edx 0x2b, the site's flags), where the
 * kept tail's `mov %edx,%fs` comes next. From CHECKED on the load is known
 * to pass: completed, FS null (%ax) with base 0, in the real register too,
 * which may still hold the guest's old FS or MON_SEL_UDATA.
 */
static bool finish_load_fs(struct vm *vm, enum mon_call_stage stage)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	struct stand_in_stack st;

	if (!read_stand_in_stack(
		    vm, stage == MON_CALL_LOAD_FS_AT_ENTRY || stage == MON_CALL_LOAD_FS_AT_RET,
		    stage >= MON_CALL_LOAD_FS_RETURN_SET, MON_CALL_LOAD_FS_SITE, &st))
		return false;
	sm->load_fs_undone = stage < MON_CALL_LOAD_FS_CHECKED;
	if (!sm->load_fs_undone) {
		c->virt.fs_sel = (u16)c->gpr[EMU_RAX];
		if (stage < MON_CALL_LOAD_FS_DONE) {
			struct kvm_segment *fs = &vm->run->s.regs.sregs.fs;

			c->fs_base = 0;
			fs->selector = c->virt.fs_sel;
			fs->base = 0;
			shadow_cpu_push_sregs(sm, vm->run);
			vm->stats.call_load_fs_finished++;
		}
	}
	c->gpr[EMU_RDX] = 0x2b;
	leave_stand_in(vm, &st, st.site_end - (sm->load_fs_undone ? MON_CALL_LOAD_FS_SITE - 5 : 0));
	return true;
}

/*
 * The wrmsr stand-in at `stage` (vmm/monitor.h, MON_CALL_WRMSR). Before it
 * published the new FS base it has changed no register: back to the site's
 * start with its flags (wrmsr_slow_path emulates the site from there). From
 * PUBLISHED on: completed, EAX and ECX as the site's movs leave them; the
 * base itself shadow_cpu_load took from the data page at this trap.
 */
static bool finish_wrmsr(struct vm *vm, enum mon_call_stage stage)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	struct stand_in_stack st;

	if (!read_stand_in_stack(vm,
				 stage == MON_CALL_WRMSR_AT_ENTRY || stage == MON_CALL_WRMSR_AT_RET,
				 stage >= MON_CALL_WRMSR_RETURN_SET, MON_CALL_WRMSR_SITE, &st))
		return false;
	sm->wrmsr_undone = stage < MON_CALL_WRMSR_PUBLISHED;
	if (!sm->wrmsr_undone) {
		c->gpr[EMU_RAX] = (u32)c->gpr[EMU_RSI];
		c->gpr[EMU_RCX] = (u32)c->gpr[EMU_RDI];
	}
	leave_stand_in(vm, &st, st.site_end - (sm->wrmsr_undone ? MON_CALL_WRMSR_SITE : 0));
	return true;
}

/*
 * The SS load stand-in at `stage` (vmm/monitor.h, MON_CALL_SS_LOAD). Before
 * it set ss_loaded: after the site's first instruction (%eax 0x18, the
 * site's flags), where the kept `mov %eax,%ss` comes next. From LOADED on:
 * completed (shadow_cpu_load made __KERNEL_DS the virtual SS at this trap;
 * call_sync_fill gives the other stand-ins their fields again).
 */
static bool finish_ss_load(struct vm *vm, enum mon_call_stage stage)
{
	struct shadow_mode *sm = vm->shadow;
	struct stand_in_stack st;

	if (!read_stand_in_stack(
		    vm, stage == MON_CALL_SS_LOAD_AT_ENTRY || stage == MON_CALL_SS_LOAD_AT_RET,
		    stage >= MON_CALL_SS_LOAD_RETURN_SET, MON_CALL_SS_LOAD_SITE, &st))
		return false;
	sm->ss_load_undone = stage < MON_CALL_SS_LOAD_LOADED;
	sm->cpu.gpr[EMU_RAX] = 0x18;
	leave_stand_in(vm, &st, st.site_end - (sm->ss_load_undone ? MON_CALL_SS_LOAD_SITE - 5 : 0));
	return true;
}

/*
 * A vCPU inside a stand-in (vmm/monitor.h), at any of its instruction
 * boundaries: do what the rest of it does, as if the instruction it stands
 * for had completed, and leave the vCPU where the stand-in returns. Used
 * when a trap lands there (an interrupt, a fault on its stack, the fetch of
 * a window being withdrawn), so that nothing is delivered to the guest with
 * a RIP in the window. In a thunk, it undoes instead, if `may_undo` (not
 * after a trap that made progress there: an emulated read would repeat
 * forever). False if RIP is no boundary of either, or the stack cannot be
 * read; then nothing changed.
 */
bool shadow_call_finish(struct vm *vm, bool may_undo)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	const u64 virt = shadow_virt_flags(sm->iopl3, 0);
	struct mon_call_point p;
	u64 top[2], site_flags, ret, flags;
	unsigned words;

	if (!monitor_call_point(&sm->mon, c->rip, &p))
		return false;
	if (p.fn == MON_CALL_SYNC)
		return finish_sync(vm, p.stage, may_undo);
	if (p.fn == MON_CALL_IRET)
		return finish_iret(vm, p.stage, may_undo);
	if (p.fn == MON_CALL_CX16)
		return finish_cx16(vm, p.stage, may_undo);
	if (p.fn == MON_CALL_SS_CMP)
		return finish_ss(vm, p.stage);
	if (p.fn == MON_CALL_SWAPGS)
		return finish_swapgs(vm, p.stage);
	if (p.fn == MON_CALL_LOAD_GS)
		return finish_load_gs(vm, p.stage);
	if (p.fn == MON_CALL_LOAD_FS)
		return finish_load_fs(vm, p.stage);
	if (p.fn == MON_CALL_WRMSR)
		return finish_wrmsr(vm, p.stage);
	if (p.fn == MON_CALL_SS_LOAD)
		return finish_ss_load(vm, p.stage);
	if (p.stage >= MON_CALL_THUNK_AT_ENTRY)
		return may_undo && undo_thunk(vm, p.stage, p.pad);
	words = p.stage == MON_CALL_FLAGS_SAVED || p.stage == MON_CALL_RETURN_SET ? 2 : 1;
	if (!read_stack_top(vm, top, words))
		return false;
	switch (p.stage) {
	case MON_CALL_AT_ENTRY:
		site_flags = c->rflags;
		ret = top[0] + p.pad;
		break;
	case MON_CALL_FLAGS_SAVED:
		site_flags = top[0];
		ret = top[1] + p.pad;
		break;
	case MON_CALL_RETURN_SET:
		site_flags = top[0];
		ret = top[1];
		break;
	default: /* MON_CALL_AT_RET: the flags are back, RAX is final */
		site_flags = c->rflags;
		ret = top[0];
		break;
	}
	/* The site's arithmetic flags (the stand-in's own and/cmp changed the live ones). */
	flags = (site_flags & ~virt) | (c->rflags & virt) | RFLAGS_FIXED;
	if (p.stage != MON_CALL_AT_RET) {
		if (p.fn == MON_CALL_IRQ_DISABLE)
			flags &= ~RFLAGS_IF;
		else if (p.fn == MON_CALL_IRQ_ENABLE)
			flags |= RFLAGS_IF;
		else if (p.fn == MON_CALL_SAVE_FL)
			c->gpr[EMU_RAX] = flags & ~(RFLAGS_VM | RFLAGS_RF); /* as pushf */
		else if (p.fn == MON_CALL_RD_KGS) /* its mov may have run: the same value */
			c->gpr[EMU_RAX] = c->virt.kernel_gs_base;
		else if (p.fn == MON_CALL_WR_KGS)
			c->virt.kernel_gs_base = c->gpr[EMU_RDI];
		else if (p.fn == MON_CALL_RD_CR2) /* its mov may have run: the same value */
			c->gpr[EMU_RAX] = c->cr2;
		else /* MON_CALL_SAVE_FL_IOPL3: the real flags, IOPL cleared */
			c->gpr[EMU_RAX] = (site_flags | RFLAGS_FIXED) &
					  ~(RFLAGS_VM | RFLAGS_RF | RFLAGS_IOPL_MASK);
	}
	c->rflags = flags;
	c->gpr[EMU_RSP] += words * sizeof(u64);
	c->rip = ret;
	return true;
}

/*
 * A stand-in's slow path (its ud2: a check failed), or a guest fault inside
 * it before its checks passed: back to the site, with what the site had
 * (undo, stages before `done`), so that the original runs there, raising
 * what it would. False (the VM stopped) if the vCPU is past its checks or
 * the stack cannot be read.
 */
static bool slow_path_undo(struct vm *vm, unsigned fn, enum mon_call_stage done)
{
	struct shadow_mode *sm = vm->shadow;
	struct mon_call_point p;

	if (monitor_call_point(&sm->mon, sm->cpu.rip, &p) && p.fn == fn && p.stage < done &&
	    (fn == MON_CALL_SYNC   ? finish_sync(vm, p.stage, true)
	     : fn == MON_CALL_IRET ? finish_iret(vm, p.stage, true)
				   : finish_cx16(vm, p.stage, true)))
		return true;
	vm_kill(vm, UMBRA_EXIT_INTERNAL,
		"shadow mode: the %s stand-in faulted after its checks, or its stack could not be "
		"read (rip 0x%llx, rsp 0x%llx)",
		fn == MON_CALL_SYNC   ? "sync_core"
		: fn == MON_CALL_IRET ? "iret"
				      : "cmpxchg16b",
		(unsigned long long)sm->cpu.rip, (unsigned long long)sm->cpu.gpr[EMU_RSP]);
	return false;
}

/* The sync stand-in's: the original instructions, one by one (vmm/call_sync.c). */
static enum shadow_exit sync_slow_path(struct vm *vm)
{
	vm->stats.call_sync_slow++;
	if (!slow_path_undo(vm, MON_CALL_SYNC, MON_CALL_SYNC_RETURN_SET))
		return SHADOW_EXIT_STOP;
	return call_sync_run_original(vm) ? SHADOW_EXIT_RESUME : SHADOW_EXIT_STOP;
}

/* The iret stand-in's: the iretq (shadow_emu_insn reads the site's original bytes). */
static enum shadow_exit iret_slow_path(struct vm *vm)
{
	vm->stats.call_iret_slow++;
	if (!slow_path_undo(vm, MON_CALL_IRET, MON_CALL_IRET_AT_POPFQ))
		return SHADOW_EXIT_STOP;
	return shadow_handle_insn_trap(vm, X86_EXC_GP);
}

/*
 * The cmpxchg16b stand-in's: a fault at its cmpxchg16b (an unaligned or
 * non-canonical operand, a guest fault, a page the shadow MMU must see
 * written) or at its pushes. Back to the body's start, whose head the VMM
 * then emulates from the guest's bytes (vmm/call_cx16.h).
 */
static enum shadow_exit cx16_slow_path(struct vm *vm)
{
	vm->stats.call_cx16_slow++;
	if (!slow_path_undo(vm, MON_CALL_CX16, MON_CALL_CX16_DONE))
		return SHADOW_EXIT_STOP;
	return call_cx16_run_original(vm, vm->shadow->cx16_body) ? SHADOW_EXIT_RESUME
								 : SHADOW_EXIT_STOP;
}

/*
 * shadow_call_finish for a trap that needs it, or the VM stopped with a
 * message naming the stand-in `name` (its stack could not be read).
 */
static bool finish_or_stop(struct vm *vm, const char *name, bool may_undo)
{
	const struct emu_cpu *c = &vm->shadow->cpu;

	if (shadow_call_finish(vm, may_undo))
		return true;
	vm_kill(vm, UMBRA_EXIT_INTERNAL,
		"shadow mode: the %s stand-in's stack could not be read (rip 0x%llx, rsp 0x%llx)",
		name, (unsigned long long)c->rip, (unsigned long long)c->gpr[EMU_RSP]);
	return false;
}

/*
 * A trap inside the swapgs stand-in that the swapgs it stands for would not
 * have taken: a fault on its stack, or the host refusing its rdgsbase or
 * wrgsbase (#UD). The VMM completes it instead (finish_swapgs).
 */
static enum shadow_exit swapgs_finish_trap(struct vm *vm)
{
	return finish_or_stop(vm, "swapgs", false) ? SHADOW_EXIT_RESUME : SHADOW_EXIT_STOP;
}

/*
 * Emulate, from the vCPU's RIP on, the `n` instructions whose bytes `code`
 * holds one after another (len[i] bytes each): a site's original
 * instructions, which the rewrite no longer holds. A fault delivered ends
 * them. False (the VM stopped) where one cannot be emulated.
 */
static bool emulate_site_bytes(struct vm *vm, const u8 *code, const u8 *len, unsigned n)
{
	struct shadow_mode *sm = vm->shadow;

	for (unsigned i = 0, at = 0; i < n; at += len[i++]) {
		const u64 rip = sm->cpu.rip;
		struct emu_report rep;
		enum emu_result r = shadow_emu_insn_bytes(vm, code + at, len[i], &rep);

		if (r != EMU_DONE) {
			shadow_emu_stop(vm, r, &rep, rip);
			return false;
		}
		if (emu_in_handler(&rep))
			break; /* delivered: the guest is in its handler */
	}
	return true;
}

/*
 * The load_gs stand-in's ud2 (a selector not null), or a guest fault on its
 * stack: back to the site (finish_load_gs), then its first two
 * instructions, `swapgs; mov %edi,%gs`, emulated from the literal's bytes.
 * The vCPU goes on at the third, whose bytes the rewrite kept: its nop
 * runs, its swapgs traps or is chained. A fault at the mov is delivered
 * there, as on hardware (Linux's fixup then jumps back into the kept tail).
 */
static enum shadow_exit load_gs_slow_path(struct vm *vm)
{
	static const u8 head[] = { 0x0f, 0x01, 0xf8, 0x8e, 0xef }, len[] = { 3, 2 };
	struct shadow_mode *sm = vm->shadow;

	if (!finish_or_stop(vm, "load_gs", true))
		return SHADOW_EXIT_STOP;
	if (!sm->load_gs_undone)
		return SHADOW_EXIT_RESUME;
	vm->stats.call_load_gs_slow++;
	/* The stand-in may take this one itself from now on (call_load_gs_fill). */
	sm->load_gs_user_sel = (u16)sm->cpu.gpr[EMU_RDI];
	return emulate_site_bytes(vm, head, len, 2) ? SHADOW_EXIT_RESUME : SHADOW_EXIT_STOP;
}

/*
 * The load_fs stand-in's ud2 (a check failed), a guest fault on its stack
 * or at its read of the guest's table, or a trap at its real FS load (the
 * host refusing MON_SEL_UDATA): finish_load_fs, which completes the last
 * and puts the others after the site's first instruction. There the kept
 * `mov %edx,%fs` is emulated at once, a fault delivered at it as on
 * hardware; the null load after it runs natively or is chained.
 */
static enum shadow_exit load_fs_slow_path(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;

	if (!finish_or_stop(vm, "load_fs", true))
		return SHADOW_EXIT_STOP;
	if (!sm->load_fs_undone)
		return SHADOW_EXIT_RESUME;
	vm->stats.call_load_fs_slow++;
	/* The stand-in may take it itself from now on (call_load_gs_fill, asked again). */
	sm->load_gs_user_sel = 0x2b;
	sm->load_gs_key.valid = false;
	return shadow_handle_insn_trap(vm, X86_EXC_GP);
}

/*
 * The wrmsr stand-in's ud2 (another MSR, a value it does not take, or no
 * deferring), or a guest fault on its stack: back to the site's start
 * (finish_wrmsr), then its three instructions emulated from the literal's
 * bytes, a fault delivered at the one that raised it. The vCPU goes on at
 * the kept 2-byte nop.
 */
static enum shadow_exit wrmsr_slow_path(struct vm *vm)
{
	static const u8 site[] = { 0x89, 0xf0, 0x89, 0xf9, 0x0f, 0x30 }, len[] = { 2, 2, 2 };
	struct shadow_mode *sm = vm->shadow;

	if (!finish_or_stop(vm, "wrmsr", true))
		return SHADOW_EXIT_STOP;
	if (!sm->wrmsr_undone)
		return SHADOW_EXIT_RESUME;
	vm->stats.call_wrmsr_slow++;
	return emulate_site_bytes(vm, site, len, 3) ? SHADOW_EXIT_RESUME : SHADOW_EXIT_STOP;
}

/*
 * The SS load stand-in's ud2 (the virtual IF 1, or __KERNEL_DS's descriptor
 * not the key's), or a guest fault on its stack or at its read of the
 * table: after the site's first instruction (finish_ss_load), then the kept
 * `mov %eax,%ss` emulated there, a fault delivered at it as on hardware.
 * The key is read again at this trap's end, should the table have changed.
 */
static enum shadow_exit ss_load_slow_path(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;

	if (!finish_or_stop(vm, "SS load", true))
		return SHADOW_EXIT_STOP;
	if (!sm->ss_load_undone)
		return SHADOW_EXIT_RESUME;
	vm->stats.call_ss_load_slow++;
	sm->ss_load_key.key.valid = false;
	return shadow_handle_insn_trap(vm, X86_EXC_GP);
}

/* Is `rip` in the stand-in `fn` (a trap there may need its own handling)? */
bool shadow_call_in_stand_in(const struct shadow_mode *sm, u64 rip, unsigned fn)
{
	struct mon_call_point p;

	return sm->window_on && emu_cpl(&sm->cpu) == 0 && monitor_call_point(&sm->mon, rip, &p) &&
	       p.fn == fn;
}

/*
 * A fault in the call window that the shadow MMU refused: the guest maps
 * it now (it lent the window while its tables left it empty), or the host
 * does not run it (a stand-in's fetch faulted again). Give it back: the
 * window goes, every rewrite is undone (each frame rescans, its sites
 * trapping again), and the guest goes on as with --monitor-calls=off. A
 * vCPU inside a stand-in finishes it here first. No guest stack holds a
 * return address into the window (nothing is delivered inside a stand-in)
 * unless shadow_call_finish could not read the stack at a trap: LIMITATION,
 * such a task would fault when it resumes.
 */
enum shadow_exit shadow_call_withdraw(struct vm *vm, u64 cr2)
{
	struct shadow_mode *sm = vm->shadow;
	u64 rip = sm->cpu.rip;
	bool in_window = shadow_in_call_window(rip);

	if (in_window && !shadow_call_finish(vm, true)) {
		vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
			"shadow mode: a fault at gva 0x%llx inside the monitor's call window "
			"(0x%llx-0x%llx, vmm/monitor.h), at rip 0x%llx; run with "
			"--monitor-calls=off",
			(unsigned long long)cr2, (unsigned long long)MON_CALL_GVA,
			(unsigned long long)(MON_CALL_GVA + 2 * MiB - 1), (unsigned long long)rip);
		return SHADOW_EXIT_STOP;
	}
	shadow_clear_window(sm->mmu);
	sm->window_on = false;
	sm->calls = false;
	vm->stats.call_withdrawals++;
	pr_info("shadow mode: monitor calls withdrawn (%s, gva 0x%llx, rip 0x%llx): the paravirt "
		"sites trap again",
		in_window ? "the call window faulted"
			  : "the guest uses the call window's addresses",
		(unsigned long long)cr2, (unsigned long long)rip);
	return shadow_emu_undo_rewrites(vm) ? SHADOW_EXIT_RESUME : SHADOW_EXIT_STOP;
}

/* The stand-ins that have a slow path, and it: one list for both functions below. */
typedef enum shadow_exit slow_path_fn(struct vm *vm);
static const struct {
	unsigned fn;
	slow_path_fn *run;
} slow_paths[] = {
	{ MON_CALL_SYNC, sync_slow_path },
	{ MON_CALL_IRET, iret_slow_path },
	{ MON_CALL_CX16, cx16_slow_path },
	/* The swapgs it stands for pushes nothing: finish it. */
	{ MON_CALL_SWAPGS, swapgs_finish_trap },
	{ MON_CALL_LOAD_GS, load_gs_slow_path },
	{ MON_CALL_LOAD_FS, load_fs_slow_path },
	{ MON_CALL_WRMSR, wrmsr_slow_path },
	{ MON_CALL_SS_LOAD, ss_load_slow_path },
};

static slow_path_fn *slow_path_of(unsigned fn)
{
	for (size_t i = 0; i < sizeof(slow_paths) / sizeof(slow_paths[0]); i++)
		if (slow_paths[i].fn == fn)
			return slow_paths[i].run;
	return NULL;
}

bool shadow_call_has_slow_path(unsigned fn)
{
	return slow_path_of(fn) != NULL;
}

enum shadow_exit shadow_call_slow_path(struct vm *vm, unsigned fn)
{
	slow_path_fn *run = slow_path_of(fn);

	BUG_ON(!run);
	return run(vm);
}
