/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the split of RFLAGS between the virtual CPU and the real
 * vCPU in shadow mode (vmm/shadow_cpu.h): which flags are virtual at each
 * virtual CPL under each cli/sti strategy (vmm/host_probe.h), what the real
 * RFLAGS is made of, and shadow_cpu_load/shadow_cpu_store carrying them
 * through the monitor's trap frame (no KVM: a kvm_run and a monitor region
 * in plain memory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/x86.h"
#include "vmm/monitor.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_mode.h"

#define IOPL3 RFLAGS_IOPL_MASK

/* ---- which flags are virtual ------------------------------------------------ */

static void test_virt_flags(void **state)
{
	(void)state;
	/* Patching: IF and IOPL always; AC and NT in the guest kernel only. */
	assert_int_equal(shadow_virt_flags(false, 0), RFLAGS_IF | IOPL3 | RFLAGS_AC | RFLAGS_NT);
	assert_int_equal(shadow_virt_flags(false, 3), RFLAGS_IF | IOPL3);
	/* iopl3: the guest kernel's IF and AC are the real ones. */
	assert_int_equal(shadow_virt_flags(true, 0), IOPL3);
	assert_int_equal(shadow_virt_flags(true, 3), RFLAGS_IF | IOPL3);
}

static void test_real_rflags(void **state)
{
	const u64 kernel_cli = RFLAGS_FIXED | RFLAGS_CF | RFLAGS_AC; /* IF=0, IOPL 0 */
	const u64 user_iopl3 = RFLAGS_FIXED | RFLAGS_IF | IOPL3 | RFLAGS_ZF;

	(void)state;
	/* Patching: CPL3 runs with IF=1, IOPL 0, whatever the guest's flags say. */
	assert_int_equal(shadow_real_rflags(false, 0, kernel_cli),
			 RFLAGS_FIXED | RFLAGS_CF | RFLAGS_IF);
	assert_int_equal(shadow_real_rflags(false, 3, user_iopl3),
			 RFLAGS_FIXED | RFLAGS_ZF | RFLAGS_IF);
	/* The kernel's NT stays virtual (PVM would clear a real one); a process's is real. */
	assert_int_equal(shadow_real_rflags(false, 0, kernel_cli | RFLAGS_NT),
			 RFLAGS_FIXED | RFLAGS_CF | RFLAGS_IF);
	assert_int_equal(shadow_real_rflags(false, 3, user_iopl3 | RFLAGS_NT),
			 RFLAGS_FIXED | RFLAGS_ZF | RFLAGS_IF | RFLAGS_NT);
	/* iopl3: the kernel keeps IF=0 and its AC for real, at IOPL 3. */
	assert_int_equal(shadow_real_rflags(true, 0, kernel_cli),
			 RFLAGS_FIXED | RFLAGS_CF | RFLAGS_AC | IOPL3);
	assert_int_equal(shadow_real_rflags(true, 0, kernel_cli | RFLAGS_IF),
			 RFLAGS_FIXED | RFLAGS_CF | RFLAGS_AC | IOPL3 | RFLAGS_IF);
	/* ... but user code never gets IOPL 3, even when the guest gave it that. */
	assert_int_equal(shadow_real_rflags(true, 3, user_iopl3),
			 RFLAGS_FIXED | RFLAGS_ZF | RFLAGS_IF);
	assert_int_equal(shadow_real_rflags(true, 3, RFLAGS_FIXED), RFLAGS_FIXED | RFLAGS_IF);
}

/* ---- load and store through the trap frame ---------------------------------- */

struct env {
	struct shadow_mode sm;
	struct kvm_run run;
};

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->sm.mon.region = calloc(1, MON_REGION_SIZE);
	assert_non_null(e->sm.mon.region);
	e->sm.real_cr4_fixed = CR4_PAE;
	e->sm.tr_type = 0xb;
	e->sm.cpu.mode = EMU_MODE_SHADOW;
	e->sm.cpu.cs = (struct emu_seg){ .sel = 0x10, .type = 0xb, .s = 1, .present = 1, .l = 1 };
	e->sm.cpu.ss = (struct emu_seg){ .sel = 0x18, .type = 0x3, .s = 1, .present = 1 };
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	free(e->sm.mon.region);
	free(e);
	return 0;
}

/* The guest kernel ran `cli` natively (iopl3): the trap frame's IF=0 is its IF. */
static void test_load_iopl3_kernel_if_is_real(void **state)
{
	struct env *e = *state;
	struct mon_frame *f = monitor_frame(&e->sm.mon);

	e->sm.iopl3 = true;
	e->sm.cpu.rflags = RFLAGS_FIXED | RFLAGS_IF;		  /* virtual IOPL 0 */
	f->rflags = RFLAGS_FIXED | IOPL3 | RFLAGS_ZF | RFLAGS_AC; /* real: IF=0, IOPL 3, AC 1 */
	shadow_cpu_load(&e->sm, &e->run);
	assert_int_equal(e->sm.cpu.rflags, RFLAGS_FIXED | RFLAGS_ZF | RFLAGS_AC);
	/* And back: IF=0, AC and IOPL 3 for real. */
	e->sm.cpu.rflags &= ~RFLAGS_AC; /* an emulated clac */
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(f->rflags, RFLAGS_FIXED | RFLAGS_ZF | IOPL3);
	/* An emulated popf set IF again: the real IF follows. */
	e->sm.cpu.rflags |= RFLAGS_IF;
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(f->rflags, RFLAGS_FIXED | RFLAGS_ZF | IOPL3 | RFLAGS_IF);
}

/* Patching: the frame's IF (always 1 at real CPL3) says nothing; the virtual IF stays. */
static void test_load_patch_kernel_if_is_virtual(void **state)
{
	struct env *e = *state;
	struct mon_frame *f = monitor_frame(&e->sm.mon);

	e->sm.iopl3 = false;
	e->sm.cpu.rflags = RFLAGS_FIXED; /* the guest kernel ran an emulated cli */
	f->rflags = RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF;
	shadow_cpu_load(&e->sm, &e->run);
	assert_int_equal(e->sm.cpu.rflags, RFLAGS_FIXED | RFLAGS_CF);
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(f->rflags, RFLAGS_FIXED | RFLAGS_CF | RFLAGS_IF);
}

/* User code under iopl3: IF=1 and IOPL 0 for real; the virtual ones are kept. */
static void test_user_under_iopl3(void **state)
{
	struct env *e = *state;
	struct mon_frame *f = monitor_frame(&e->sm.mon);

	e->sm.iopl3 = true;
	e->sm.cpu.cs = (struct emu_seg){
		.sel = 0x33, .type = 0xb, .s = 1, .dpl = 3, .present = 1, .l = 1
	};
	e->sm.cpu.ss = (struct emu_seg){ .sel = 0x2b, .type = 0x3, .s = 1, .dpl = 3, .present = 1 };
	e->sm.cpu.rflags = RFLAGS_FIXED | RFLAGS_IF | IOPL3; /* a user process with iopl(3) */
	f->rflags = RFLAGS_FIXED | RFLAGS_IF | RFLAGS_SF;
	shadow_cpu_load(&e->sm, &e->run);
	assert_int_equal(e->sm.cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | IOPL3 | RFLAGS_SF);
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(f->rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_SF);
}

/* The real CR4: the fixed bits, plus the guest's own where they are mirrored. */
static void test_real_cr4(void **state)
{
	struct env *e = *state;

	e->sm.real_cr4_fixed = CR4_PAE | CR4_UMIP;
	e->sm.real_cr4_mirror = CR4_OSFXSR | CR4_OSXSAVE;
	e->sm.cpu.cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_SMEP;
	assert_int_equal(shadow_real_cr4(&e->sm), CR4_PAE | CR4_UMIP | CR4_OSFXSR);
	/* PVM: nothing mirrored, the guest's CR4 never reaches the real one. */
	e->sm.real_cr4_fixed = CR4_PAE;
	e->sm.real_cr4_mirror = 0;
	assert_int_equal(shadow_real_cr4(&e->sm), CR4_PAE);
	/* A changed CR4 reaches KVM through the sync sregs, with TR's type. */
	e->sm.real_cr4_mirror = CR4_OSFXSR;
	e->sm.tr_type = 0x9;
	e->run.s.regs.sregs.cr4 = CR4_PAE;
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(e->run.s.regs.sregs.cr4, CR4_PAE | CR4_OSFXSR);
	assert_int_equal(e->run.s.regs.sregs.tr.type, 0x9);
	assert_true(e->run.kvm_dirty_regs & KVM_SYNC_X86_SREGS);
	/*
	 * TSD (PR_SET_TSC) in user mode only: the guest kernel's own rdtsc at
	 * real CPL3 must not trap; a switch to user mode syncs it in.
	 */
	e->sm.real_cr4_user_mirror = CR4_TSD;
	e->sm.cpu.cr4 |= CR4_TSD;
	e->sm.cpu.cs.dpl = 0;
	assert_int_equal(shadow_real_cr4(&e->sm), CR4_PAE | CR4_OSFXSR);
	e->sm.cpu.cs.dpl = 3;
	assert_int_equal(shadow_real_cr4(&e->sm), CR4_PAE | CR4_OSFXSR | CR4_TSD);
	e->run.kvm_dirty_regs = 0;
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(e->run.s.regs.sregs.cr4, CR4_PAE | CR4_OSFXSR | CR4_TSD);
	assert_true(e->run.kvm_dirty_regs & KVM_SYNC_X86_SREGS);
}

/*
 * The real GS shows the virtual selector (Linux saves what `mov %gs` reads
 * at a context switch), with a flat DPL3 cache: a null one left by a native
 * null load would have the tail's iretq to CPL3 null GS again.
 */
static void test_gs_selector_synced(void **state)
{
	struct env *e = *state;
	struct kvm_segment *gs = &e->run.s.regs.sregs.gs;

	/* A 32-bit task's TLS selector, after a native null load (unusable, DPL 0). */
	e->sm.cpu.cs = (struct emu_seg){ .sel = 0x23, .type = 0xb, .s = 1, .dpl = 3, .present = 1 };
	e->sm.cpu.ss = (struct emu_seg){ .sel = 0x2b, .type = 0x3, .s = 1, .dpl = 3, .present = 1 };
	e->sm.cpu.virt.gs_sel = 0x63;
	e->sm.cpu.gs_base = 0x9b69380;
	*gs = (struct kvm_segment){ .selector = 0, .unusable = 1, .dpl = 0, .base = 0x9b69380 };
	e->run.s.regs.sregs.cr4 = shadow_real_cr4(&e->sm);
	shadow_cpu_store(&e->sm, &e->run);
	assert_true(e->run.kvm_dirty_regs & KVM_SYNC_X86_SREGS);
	assert_int_equal(gs->selector, 0x63);
	assert_int_equal(gs->base, 0x9b69380);
	assert_int_equal(gs->dpl, 3);
	assert_true(gs->present);
	assert_false(gs->unusable);
	/* In step: nothing to push. */
	e->run.kvm_dirty_regs = 0;
	shadow_cpu_store(&e->sm, &e->run);
	assert_false(e->run.kvm_dirty_regs & KVM_SYNC_X86_SREGS);
	/* A null virtual selector (a 64-bit task) with its base. */
	e->sm.cpu.virt.gs_sel = 0;
	e->sm.cpu.gs_base = 0;
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(gs->selector, 0);
	assert_int_equal(gs->dpl, 3);
	assert_true(e->run.kvm_dirty_regs & KVM_SYNC_X86_SREGS);
}

/*
 * DS, ES and GS carry the virtual selectors; a selector the guest loaded
 * natively (a null one, in the kernel's context switch or startup) is taken
 * back.
 */
static void test_ds_es_synced(void **state)
{
	struct env *e = *state;
	struct kvm_sregs *s = &e->run.s.regs.sregs;

	e->sm.cpu.virt.ds_sel = e->sm.cpu.virt.es_sel = 0x2b; /* a 32-bit task's __USER_DS */
	s->cr4 = shadow_real_cr4(&e->sm);
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(s->ds.selector, 0x2b);
	assert_int_equal(s->es.selector, 0x2b);
	assert_int_equal(s->ds.dpl, 3);
	assert_true(s->ds.present);
	/* The kernel loads null into DS natively; ES is left. */
	s->ds = (struct kvm_segment){ .selector = 0, .unusable = 1 };
	shadow_cpu_load(&e->sm, &e->run);
	assert_int_equal(e->sm.cpu.virt.ds_sel, 0);
	assert_int_equal(e->sm.cpu.virt.es_sel, 0x2b);
	/* The store gives the null DS a usable cache again, its selector kept. */
	e->run.kvm_dirty_regs = 0;
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(s->ds.selector, 0);
	assert_false(s->ds.unusable);
	assert_true(e->run.kvm_dirty_regs & KVM_SYNC_X86_SREGS);
	/*
	 * GS the same: Linux's startup loads null into it natively, and the
	 * boot's selector must not come back.
	 */
	e->sm.cpu.virt.gs_sel = 0x10;
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(s->gs.selector, 0x10);
	s->gs = (struct kvm_segment){ .selector = 0, .unusable = 1 };
	shadow_cpu_load(&e->sm, &e->run);
	assert_int_equal(e->sm.cpu.virt.gs_sel, 0);
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(s->gs.selector, 0);
	/*
	 * FS too (session 25): a 32-bit process's LDT selector (Wine's TEB),
	 * loaded through the emulator, reads back as itself; the load_fs
	 * stand-in's native null load is taken back.
	 */
	e->sm.cpu.virt.fs_sel = 0x7;
	e->sm.cpu.fs_base = 0x8049000;
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(s->fs.selector, 0x7);
	assert_int_equal(s->fs.base, 0x8049000);
	assert_int_equal(s->fs.dpl, 3);
	s->fs = (struct kvm_segment){ .selector = 0, .unusable = 1 };
	shadow_cpu_load(&e->sm, &e->run);
	assert_int_equal(e->sm.cpu.virt.fs_sel, 0);
	assert_int_equal(e->sm.cpu.fs_base, 0);
	shadow_cpu_store(&e->sm, &e->run);
	assert_int_equal(s->fs.selector, 0);
	assert_false(s->fs.unusable);
	/* In step: nothing taken back, nothing pushed. */
	shadow_cpu_load(&e->sm, &e->run);
	assert_int_equal(e->sm.cpu.virt.ds_sel, 0);
	e->run.kvm_dirty_regs = 0;
	shadow_cpu_store(&e->sm, &e->run);
	assert_false(e->run.kvm_dirty_regs & KVM_SYNC_X86_SREGS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virt_flags),
		cmocka_unit_test(test_real_rflags),
		cmocka_unit_test_setup_teardown(test_load_iopl3_kernel_if_is_real, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_load_patch_kernel_if_is_virtual, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_user_under_iopl3, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_real_cr4, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_gs_selector_synced, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_ds_es_synced, env_setup, env_teardown),
	};

	return cmocka_run_group_tests_name("shadow_cpu", tests, NULL, NULL);
}
