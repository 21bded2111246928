// SPDX-License-Identifier: MIT
/*
 * Shadow mode: set-up and trap dispatch (vmm/shadow_mode.h).
 *
 * 1. Set-up: the monitor region and pool (vmm/monitor.c) as two memslots
 *    above guest RAM; the virtual MSRs' snapshot (vmm/shadow_msr.c); the
 *    shadow MMU over the pool, with a writer that stores to the hva copy
 *    and queues the store for the vCPU, the monitor reserved in PML4 slot
 *    256 of every root, and the LAPIC and IOAPIC pages as direct MMIO.
 * 2. Boot: the virtual CPU starts as the ELF boot contract says (virtual
 *    CPL0, CR3 = the boot identity tables, IF = 0); the real vCPU starts in
 *    the monitor's tail, which applies the queued stores and iretqs to the
 *    entry point at real CPL3 on the kernel-view root.
 * 3. Trap dispatch: the stub's `out` exit names the vector; the virtual CPU
 *    is loaded (vmm/shadow_cpu.c); #PF goes to the shadow MMU, #GP/#UD and
 *    the accesses the shadow cannot let through to decode/'s emulator
 *    (vmm/shadow_emu.c), other exceptions and interrupts to the guest IDT
 *    (vmm/shadow_event.c); then pending interrupts are delivered, and a
 *    guest in hlt parks in the monitor's idle loop. A trap inside one of
 *    the monitor's stand-ins goes to vmm/shadow_calls.c.
 * 4. Return: monitor_prepare_return lays out the tail's stack; the VMM
 *    sets RSP, RIP and RBX through the sync regs (no other ioctl).
 * 5. Guest port I/O. The guest kernel's is an exit at real CPL3 (the
 *    real I/O bitmap lets it through at virtual CPL0 only); guest user
 *    code's in/out/ins/outs are #GP traps, emulated with the virtual
 *    CPL, IOPL and the guest TSS's bitmap (decode/emulate_io.c).
 * 6. Code scanning and patching: vmm/code_scan.c. A kernel fetch from a
 *    frame not yet scanned (SHADOW_EXEC_UNSCANNED) goes there.
 * 7. Trap chaining (decode/chain.h): at the end of every trap, after
 *    events are delivered, the guest kernel's next instructions that would
 *    trap at once (swapgs; sysretq, swapgs; rdgsbase; swapgs, a handler's
 *    clac, ...) are emulated in the same trap, while nothing a trap would
 *    let happen in between is waiting (chain_may_go_on).
 */
#include <errno.h>
#include <sched.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "shadow/walk.h"
#include "shadow/x86.h"
#include "umbra/log.h"
#include "vmm/exitcode.h"
#include "vmm/guest_access.h"
#include "vmm/call_cx16.h"
#include "vmm/code_scan.h"
#include "vmm/shadow_calls.h"
#include "vmm/shadow_mode.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_emu.h"
#include "vmm/shadow_event.h"
#include "vmm/vm.h"

_Static_assert(UMBRA_MAX_SHADOW_UNSYNC <= SHADOW_MAX_UNSYNC, "--shadow-unsync fits the library");

/* ---- item 1: set-up -------------------------------------------------------- */

/* Guest RAM only (no ROM): what the shadow MMU may map writable. */
static void *shadow_gpa_to_hva(void *opaque, gpa_t a, size_t len)
{
	return gpa_to_hva(opaque, a, len);
}

/*
 * The shadow writer: keep the hva copy current (the library reads its own
 * stores back) and queue the store for the tail. Before the guest first ran
 * KVM has never seen the pool as page tables, but the boot stores are queued
 * all the same: one path, and the replay is harmless.
 */
static void writer_store(void *opaque, mpa_t spte_mpa, u64 *sptep, u64 val)
{
	struct shadow_mode *sm = opaque;

	__atomic_store_n(sptep, val, __ATOMIC_RELEASE);
	monitor_queue_store(&sm->mon, spte_mpa, val);
}

static int add_memslot(struct vm *vm, u32 slot, mpa_t base, u64 size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = base.v,
		.memory_size = size,
		.userspace_addr = (u64)(uintptr_t)hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		pr_err("KVM_SET_USER_MEMORY_REGION (shadow mode) [0x%llx, +0x%llx): %s",
		       (unsigned long long)base.v, (unsigned long long)size, strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	return 0;
}

/* ---- item 2: boot ----------------------------------------------------------- */

static void kvm_seg(struct kvm_segment *s, u16 sel, bool code, unsigned dpl)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = code ? 0xb : 0x3,
		.present = 1,
		.dpl = (u8)dpl,
		.db = !code,
		.s = 1,
		.l = code,
		.g = 1,
	};
}

/*
 * The real syscall MSRs: every guest `syscall` lands on the monitor's entry,
 * from 64-bit code (LSTAR) and, on AMD CPUs, from compatibility mode
 * (CSTAR: a 32-bit process's vDSO). RCX then says where it came from and
 * the virtual CS in which mode (shadow_emu_syscall). The real SYSENTER_CS
 * stays 0, so a guest `sysenter` is a #GP (Intel) or #UD (AMD) the
 * emulator runs with the virtual SYSENTER MSRs.
 */
static int set_syscall_msrs(struct vm *vm)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[4];
	} m = { .hdr = { .nmsrs = 4 },
		.e = { { .index = EMU_MSR_STAR, .data = MON_STAR },
		       { .index = EMU_MSR_LSTAR, .data = MON_SYSCALL_GVA },
		       { .index = EMU_MSR_CSTAR, .data = MON_SYSCALL_GVA },
		       { .index = EMU_MSR_SFMASK, .data = MON_SFMASK } } };

	if (ioctl(vm->vcpu_fd, KVM_SET_MSRS, &m) != 4) {
		pr_err("KVM_SET_MSRS (shadow mode syscall entry) failed: %s", strerror(errno));
		return UMBRA_EXIT_NO_KVM;
	}
	return 0;
}

/*
 * The real vCPU's first state: CPL0 in the tail on the monitor stack, with
 * the real GDT/IDT/TSS loaded and CR3 = the kernel-view root. Its iretq
 * enters the guest at real CPL3 (CS/SS = the DPL3 pair).
 */
static int real_boot_state(struct vm *vm, struct shadow_mode *sm)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	struct mon_frame *f = monitor_frame(&sm->mon);

	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &s) < 0 || ioctl(vm->vcpu_fd, KVM_GET_REGS, &r) < 0) {
		pr_err("KVM_GET_SREGS/REGS (shadow mode boot): %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	kvm_seg(&s.cs, MON_SEL_CODE, true, 0);
	kvm_seg(&s.ss, MON_SEL_DATA, false, 0);
	/* Data segments are ignored in 64-bit mode except FS/GS bases; give them
	 * the DPL3 selector so iretq to CPL3 keeps them (SDM Vol. 3A §6.14.3). */
	kvm_seg(&s.ds, MON_SEL_UDATA, false, 3);
	s.es = s.fs = s.gs = s.ds;
	/* Not a guest load: the first store gives DS, ES, FS and GS the virtual selectors. */
	sm->real_ds_sel = sm->real_es_sel = sm->real_fs_sel = sm->real_gs_sel = MON_SEL_UDATA;
	s.tr = (struct kvm_segment){ .base = monitor_gva(MON_OFF_TSS),
				     .limit = MON_TSS_LIMIT,
				     .selector = MON_SEL_TSS,
				     /*
				      * 64-bit TSS, busy, as LTR leaves it. QEMU's TCG reads
				      * the I/O bitmap only of a TSS typed 9 (available) and
				      * otherwise #GPs every port access at CPL3; its SVM
				      * does not mind the type, so it gets 9 (host_probe.h).
				      */
				     .type = sm->tr_type,
				     .present = 1 };
	s.ldt = (struct kvm_segment){ .unusable = 1 };
	s.gdt.base = monitor_gva(MON_OFF_GDT);
	s.gdt.limit = MON_GDT_ENTRIES * 8 - 1;
	s.idt.base = monitor_gva(MON_OFF_IDT);
	s.idt.limit = MON_NR_VECTORS * 16 - 1;
	s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	s.cr4 = shadow_real_cr4(sm);
	s.efer = EFER_LME | EFER_LMA | EFER_SCE | EFER_NXE;
	s.cr3 = sm->root.v;
	sm->mon.loaded_root = sm->root;

	/* The frame the tail's iretq consumes: the guest entry at real CPL3. */
	*f = (struct mon_frame){ .rip = vm->boot.rip,
				 .cs = sm->cpu.cs.l ? MON_SEL_UCODE : MON_SEL_UCODE32,
				 .rflags = shadow_real_rflags(sm->iopl3, emu_cpl(&sm->cpu),
							      sm->cpu.rflags),
				 .rsp = vm->boot.rsp,
				 .ss = MON_SEL_UDATA };
	sm->guest_rbx = r.rbx;
	r.rsp = monitor_prepare_return(&sm->mon, sm->root, sm->guest_rbx);
	r.rip = sm->mon.tail_entry;
	r.rflags = RFLAGS_FIXED; /* IF = 0 in the monitor */
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s) < 0 || ioctl(vm->vcpu_fd, KVM_SET_REGS, &r) < 0) {
		pr_err("KVM_SET_SREGS/REGS (shadow mode boot): %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	return set_syscall_msrs(vm);
}

/* CPUs this process may run on (at least 1). */
static int cpus_available(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return MAX(CPU_COUNT(&set), 1);
}

int shadow_mode_setup(struct vm *vm)
{
	struct shadow_mode *sm;
	u64 ram_top = MAX(vm->mem.low_ram_end, vm->mem.high_ram_end);
	int r;

	if (vm->opts->mmu != MMU_SHADOW)
		return 0;
	sm = calloc(1, sizeof(*sm));
	if (!sm)
		return UMBRA_EXIT_INTERNAL;
	vm->shadow = sm;
	sm->tr_type = vm->host.qemu_tcg ? 0x9 : 0xb; /* real_boot_state */
	sm->iopl3 = vm->strategy.sensitive == SHADOW_SENSITIVE_IOPL3;
	sm->rewrite_save_fl = sm->iopl3;
	sm->calls = !vm->opts->no_calls;
	sm->cx16_ok = call_cx16_host_ok();
	vm->stats.calls_on = sm->calls;
	/*
	 * Where CPL3 runs on the VM's own state (VMX, SVM: the probe's iopl3
	 * is yes), the real CR4 decides whether the guest kernel's SSE, xsave
	 * and rdfsbase work at real CPL3, so it carries the guest's own
	 * choices, and UMIP makes sgdt & co. trap as DESIGN.md wants. TSD
	 * (Linux's PR_SET_TSC) makes a process's rdtsc fault as on hardware;
	 * only in user mode (shadow_real_cr4 says why). On PVM CPL3 runs on
	 * the host's CR4, but KVM emulates the instructions that trap to it,
	 * and with UMIP in the vCPU's CR4 its emulator raises the #GP for
	 * sgdt & co. at CPL3 that reaches the monitor; without it, it answers
	 * them with the monitor's tables (testos's gdt_free_slot read the
	 * monitor's GDT base, seen on 2026-12-07).
	 */
	sm->real_cr4_fixed = CR4_PAE | (vm->cpu_cr4_valid & CR4_UMIP); /* as the guest CPUID says */
	if (vm->host.iopl3 == HOST_YES) {
		sm->real_cr4_mirror = CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE | CR4_FSGSBASE;
		sm->real_cr4_user_mirror = CR4_TSD;
	}
	r = monitor_create(&sm->mon, ram_top, vm->opts->shadow_pool_bytes);
	if (r) {
		pr_err("cannot map the shadow-mode monitor and pool: %s", strerror(-r));
		return UMBRA_EXIT_INTERNAL;
	}
	r = add_memslot(vm, vm->mem.nr_regions, sm->mon.region_mpa, MON_REGION_SIZE,
			sm->mon.region);
	if (!r)
		r = add_memslot(vm, vm->mem.nr_regions + 1, sm->mon.pool_mpa, sm->mon.pool_bytes,
				sm->mon.pool);
	if (r)
		return r;

	/* The virtual MSRs first: the LAPIC's gpa comes from APIC_BASE. */
	r = shadow_msr_snapshot(vm, &sm->msrs);
	if (r)
		return r;
	/*
	 * KVM's in-kernel LAPIC and IOAPIC answer only the vCPU's own accesses,
	 * so the shadow maps their pages at mpa == gpa (direct MMIO, mmu.h):
	 * the guest's loads and stores reach them without a trap to the VMM.
	 * APIC_BASE cannot move in shadow mode (shadow_msr.c), so the range
	 * stays right for the whole run.
	 */
	struct shadow_config cfg = {
		.mem = { .opaque = &vm->mem, .gpa_to_hva = shadow_gpa_to_hva },
		.pool = { .base = sm->mon.pool_mpa,
			  .hva = sm->mon.pool,
			  .nr_pages = sm->mon.pool_bytes / PAGE_SIZE,
			  /* map_anon: fresh anonymous memory; off: every page reused LIFO */
			  .zeroed = vm->opts->shadow_clean_first },
		.writer = { .opaque = sm, .store = writer_store, .commit = NULL },
		.flusher = { .opaque = &sm->mon, .flush = monitor_flush },
		/* Reserved address bits as the guest's CPUID says. */
		.maxphyaddr = vm->guest_maxphyaddr,
		.exec_gate = true, /* item 6 */
		.prefetch = vm->opts->shadow_prefetch,
		.unsync = vm->opts->shadow_unsync,
		.large_pages = vm->opts->shadow_large,
		.nr_mmio_direct = 3,
		.mmio_direct = { { .base = gpa(shadow_msr_apic_gpa(&sm->msrs)), .size = PAGE_SIZE },
				 { .base = gpa(MEM_IOAPIC_GPA), .size = PAGE_SIZE },
				 /*
				  * The option-ROM space and BIOS area, which Linux scans
				  * in 16-byte steps: their read-only memslot answers the
				  * vCPU directly (a write exits as MMIO and is dropped, as
				  * ROM would drop it).
				  */
				 { .base = gpa(MEM_ROM_START),
				   .size = MEM_ROM_END - MEM_ROM_START } },
	};
	patch_table_init(&sm->patches);
	code_entries_init(&sm->code_entries);
	patch_copies_init(&sm->copies);
	insn_starts_init(&sm->starts);
	scan_memos_init(&sm->memos);
	/* The helper needs a CPU of its own: with one, it would only slow the vCPU down. */
	if (!vm->opts->no_scan_ahead && cpus_available() < 2)
		pr_info("shadow mode: scan-ahead off: the VMM may run on one CPU only");
	else if (!vm->opts->no_scan_ahead && !(sm->ahead = scan_ahead_start()))
		pr_warn("shadow mode: no scan-ahead thread (%s); code is scanned on first fetch "
			"only",
			strerror(errno));
	vm->stats.scan_ahead_on = sm->ahead != NULL;
	sm->mmu = shadow_create(&cfg);
	if (!sm->mmu) {
		pr_err("shadow_create failed (out of memory?)");
		return UMBRA_EXIT_INTERNAL;
	}
	if (shadow_reserve_pml4(sm->mmu, MON_PML4_SLOT, monitor_pml4e(&sm->mon))) {
		pr_err("shadow_reserve_pml4(%u) failed", MON_PML4_SLOT);
		return UMBRA_EXIT_INTERNAL;
	}
	shadow_cpu_boot(&sm->cpu, &vm->boot, vm->guest_maxphyaddr);
	sm->cpu.virt.null_sel_keeps_base = vm->cpu_null_sel_keeps_base;
	/* Where AMD's and Intel's CPUs differ (decode/emulate.h, struct emu_virt). */
	sm->cpu.virt.syscall_compat = vm->cpu_amd;
	sm->cpu.virt.far_ptr_m16_32 = vm->cpu_amd;
	sm->cpu.virt.push_sreg_move16 = !vm->cpu_amd;
	sm->cpu.virt.iret_ss_np_is_ss = vm->cpu_amd;
	/* A CR4 or EFER bit whose feature the guest's CPUID lacks faults, as on that CPU. */
	sm->cpu.virt.cr4_valid = EMU_CR4_VALID_DEFAULT & vm->cpu_cr4_valid;
	sm->cpu.virt.efer_valid = vm->cpu_efer_valid;
	sm->xcr0 = 1; /* x87 only: the reset value */
	sm->shadow_cr4 = sm->cpu.cr4;
	shadow_set_mode(sm->mmu, sm->cpu.cr0, sm->shadow_cr4, sm->cpu.efer);
	sm->view = SHADOW_VIEW_KERNEL;
	sm->root = shadow_set_cr3(sm->mmu, sm->cpu.cr3, sm->view);
	pr_info("shadow mode: monitor at mpa 0x%llx (gva 0x%llx), pool %llu MiB at mpa 0x%llx",
		(unsigned long long)sm->mon.region_mpa.v, (unsigned long long)MON_GVA,
		(unsigned long long)(sm->mon.pool_bytes >> 20),
		(unsigned long long)sm->mon.pool_mpa.v);
	return real_boot_state(vm, sm);
}

void shadow_mode_teardown(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;

	if (!sm)
		return;
	/* First: the helper reads guest RAM and owns memos until it stops. */
	scan_ahead_stop(sm->ahead);
	sm->ahead = NULL;
	if (sm->mmu) {
		shadow_mode_collect_stats(vm);
		shadow_destroy(sm->mmu);
	}
	patch_table_destroy(&sm->patches);
	code_entries_destroy(&sm->code_entries);
	patch_copies_destroy(&sm->copies);
	insn_starts_destroy(&sm->starts);
	scan_memos_destroy(&sm->memos);
	monitor_destroy(&sm->mon);
	free(sm);
	vm->shadow = NULL;
}

void shadow_mode_collect_stats(struct vm *vm)
{
	if (vm->shadow && vm->shadow->mmu) {
		vm->stats.shadow = *shadow_get_stats(vm->shadow->mmu);
		vm->stats.patches_live = vm->shadow->patches.nsites;
		vm->stats.have_shadow = true;
	}
}

void shadow_mode_snapshot_mmu(struct vm *vm, struct shadow_stats *out)
{
	if (vm->shadow && vm->shadow->mmu)
		*out = *shadow_get_stats(vm->shadow->mmu);
	else
		memset(out, 0, sizeof(*out));
}

/* ---- item 3: trap dispatch ---------------------------------------------------- */

static bool is_ud_insn(const char *mnemonic)
{
	return !strcmp(mnemonic, "ud0") || !strcmp(mnemonic, "ud1") || !strcmp(mnemonic, "ud2");
}

/* in, out, ins, outs (capstone's names: insb, outsd, ...). */
static bool is_port_insn(const char *mnemonic)
{
	return !strcmp(mnemonic, "in") || !strcmp(mnemonic, "out") ||
	       (!strncmp(mnemonic, "ins", 3) && mnemonic[3] && !mnemonic[4]) ||
	       (!strncmp(mnemonic, "outs", 4) && mnemonic[4] && !mnemonic[5]);
}

/* What an emulated instruction asks for beyond the MMU (shadow_emu.c did that). */
static enum shadow_exit after_insn(struct vm *vm, const struct emu_report *rep, u64 rip)
{
	/* EMU_NOTE_CODE_MODE: shadow_cpu_store picks the real 64-bit or 32-bit CS. */
	(void)rip;
	if (rep->notes & EMU_NOTE_HALT)
		shadow_halt(vm);
	/* EMU_NOTE_IF_SET: shadow_event_finish delivers what is pending. */
	/* LIMITATION: EMU_NOTE_TPR: CR8 is kept, not forwarded to the LAPIC. */
	return vm->stop ? SHADOW_EXIT_STOP : SHADOW_EXIT_RESUME;
}

/*
 * Item 7: at most this many instructions chained per trap, so that a guest
 * running privileged instructions back to back still returns to the
 * monitor's loop (signals, --timeout) now and then.
 */
#define CHAIN_MAX 16u

/*
 * May a chain take in another instruction after the one `rep` reports (NULL:
 * at the start)? Not when a trap there would have let something happen
 * first: the VM stopped or idles; the instruction faulted, or a #DB
 * followed it (emu_in_handler: the guest is in its handler); it changed the
 * paging or code mode, the TPR, or IF (held interrupts are due); an sti
 * shadow is on; an interrupt is held for the guest while its IF is 1 (with
 * IF 0 a trap in between would hold it too: Linux's `swapgs; wrgsbase;
 * swapgs` runs with interrupts off, where the call window's cli leaves
 * ticks held in software); RFLAGS.TF asks for a #DB after each
 * instruction. Only 64-bit code at virtual CPL0 chains. A segment load
 * (EMU_NOTE_TABLES: the chain's only source of it is `mov r, Sreg`) may
 * be followed: the next emulated instruction sees the emulator's segments,
 * and shadow_cpu_store gives the vCPU the bases at the end, as after a trap
 * (Linux's native_load_gs_index: `swapgs; mov %edi,%gs; swapgs`).
 */
static bool chain_may_go_on(const struct vm *vm, const struct emu_report *rep)
{
	const struct shadow_mode *sm = vm->shadow;
	const struct emu_cpu *c = &sm->cpu;

	if (vm->stop || sm->halted ||
	    (rep && (emu_in_handler(rep) || (rep->notes & ~(EMU_NOTE_CR3 | EMU_NOTE_TABLES)))))
		return false;
	if (emu_cpl(c) != 0 || !c->cs.l || c->virt.int_shadow || (c->rflags & RFLAGS_TF))
		return false;
	return !(c->rflags & RFLAGS_IF) || !shadow_event_any_pending(sm);
}

/*
 * Item 7, the entry run-ahead. An interrupt or exception taken in user
 * mode enters the guest kernel at a handler that saves the registers and
 * then swaps GS: Linux 6.1 runs 37 instructions from asm_exc_page_fault
 * to error_entry's `swapgs` (nops, `cld`, `call`, fifteen pushes, two movs,
 * thirteen `xor`s, `testb $3, CS(%rsp); je`), which
 * traps unless the swapgs stand-in took it (the guest has FSGSBASE). The
 * chain's lookahead does not see that far, and emu_insn, at about a
 * microsecond an instruction, would cost what the trap does. So after such
 * a delivery the VMM runs the handler ahead with decode's fast path
 * (emu_fast_insn, exact per instruction) until an instruction it does not
 * take, and the chain goes on from there: the swapgs is emulated in the
 * same trap. Wherever it stops, the guest is where the CPU would have
 * taken it by then, so a run-ahead that finds no trap costs only time;
 * after AHEAD_GIVE_UP of those in a row, a handler is tried only once per
 * AHEAD_RETRY entries (the guest's code may change).
 */
#define AHEAD_MAX     64u /* instructions per run-ahead (Linux 6.1: 37 to the swapgs) */
#define AHEAD_GIVE_UP 4u
#define AHEAD_RETRY   1024u

/* The memo slot of the handler at `start`. */
static struct ahead_memo *ahead_slot(struct shadow_mode *sm, u64 start)
{
	return &sm->ahead_memo[(start >> 4) % SHADOW_AHEAD_MEMO];
}

static bool run_ahead(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	u64 start = sm->cpu.rip;
	struct ahead_memo *m = ahead_slot(sm, start);
	unsigned n = 0;

	if (m->rip == start && m->misses >= AHEAD_GIVE_UP && ++m->skips % AHEAD_RETRY)
		return false;
	vm->stats.ahead_tries++;
	/* A call into the call window (a stand-in) ends it: the CPU runs that. */
	while (n < AHEAD_MAX && !shadow_in_call_window(sm->cpu.rip) && shadow_emu_fast(vm))
		n++;
	vm->stats.ahead_insns += n;
	if (vm->trace && n)
		fprintf(vm->trace, "ahead %u rip 0x%llx -> 0x%llx\n", n, (unsigned long long)start,
			(unsigned long long)sm->cpu.rip);
	if (m->rip != start)
		*m = (struct ahead_memo){ .rip = start };
	return n > 0;
}

/* The run-ahead from `start` ended at an instruction the chain takes (true) or not. */
static void ahead_result(struct vm *vm, u64 start, bool reached)
{
	struct ahead_memo *m = ahead_slot(vm->shadow, start);

	if (reached)
		vm->stats.ahead_runs++;
	if (m->rip == start)
		m->misses = reached ? 0 : (u8)MIN(m->misses + 1u, 255u);
}

/*
 * Item 7: just before the guest resumes, emulate what it would trap on
 * next (decode/chain.h): after an emulated instruction, a syscall entry,
 * or an event delivered to a handler that starts with clac, or after the
 * entry run-ahead above. True if anything was chained (then *res is
 * updated and the caller delivers what an IF change made due).
 */
static bool chain(struct vm *vm, enum shadow_exit *res)
{
	struct shadow_mode *sm = vm->shadow;
	const struct emu_report *last = NULL;
	struct emu_report rep;
	bool entry = sm->entered_kernel && !vm->opts->no_chain_entry, ahead = false,
	     ran_ahead = false;
	u64 ahead_start = 0;
	unsigned n;

	sm->entered_kernel = false;
	if (vm->opts->no_chain)
		return false;
	for (n = 0; n < CHAIN_MAX && *res == SHADOW_EXIT_RESUME; n++) {
		u64 rip = sm->cpu.rip;
		struct chain_insn in;
		enum chain_class cls;
		enum emu_result r;

		if (!chain_may_go_on(vm, last))
			break;
		cls = shadow_emu_chain_next(vm, &in);
		if (ahead) {
			ahead_result(vm, ahead_start, cls != CHAIN_END);
			ahead = false;
		}
		if (cls == CHAIN_END) {
			if (!entry)
				break;
			entry = false;
			ahead_start = rip;
			if (!run_ahead(vm))
				break;
			ahead = ran_ahead = true;
			continue;
		}
		/*
		 * The guest's breakpoints hold in a chain as on the CPU: what it
		 * emulates, the emulator checks (decode/emulate.c items 7 and 8,
		 * and a #DB ends the chain, emu_in_handler); what it skips
		 * without the emulator, a nop or a jump, is left to run natively
		 * if an instruction breakpoint is on it (no RF: none of the
		 * chain's instructions trapped).
		 */
		if ((cls == CHAIN_NOP || cls == CHAIN_JUMP || cls == CHAIN_BRANCH) &&
		    shadow_dr_exec_at(vm))
			break;
		vm->stats.chained++;
		/* No effect but on RIP (a branch comes resolved by its flags). */
		if (cls == CHAIN_NOP || cls == CHAIN_JUMP || cls == CHAIN_BRANCH) {
			sm->cpu.rip = chain_next_ip(sm->cpu.rip, &in);
			continue;
		}
		r = shadow_emu_insn(vm, &rep, true);
		if (r != EMU_DONE) { /* as if it had trapped on its own */
			shadow_emu_stop(vm, r, &rep, rip);
			*res = SHADOW_EXIT_STOP;
			break;
		}
		if (vm->trace)
			fprintf(vm->trace, "chain %s rip 0x%llx\n", rep.mnemonic,
				(unsigned long long)rip);
		*res = after_insn(vm, &rep, rip);
		last = &rep;
	}
	/*
	 * The guest goes on natively where the run-ahead (and the chain after
	 * it) left it, maybe past a call into a frame whose scan never started
	 * there, and whose caller's page, run only here, never gave it as an
	 * exit: an entry to learn (item 6), as a handler is at its delivery.
	 */
	if (ran_ahead && emu_cpl(&sm->cpu) == 0 && !shadow_in_call_window(sm->cpu.rip))
		shadow_learn_entry(vm, sm->cpu.cs.base + sm->cpu.rip);
	return n > 0;
}

/*
 * On the way to user mode under a GDT not seen yet: its per-CPU entry into
 * the real GDT (monitor_set_cpunode), for the vDSO's `lsl`. Linux writes it
 * once per CPU, before any process runs, so once per GDT base will do; a
 * GDT not readable yet is tried again at the next return to user mode.
 */
static void sync_cpunode(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&sm->cpu);
	u64 desc = 0;

	if (sm->cpu.gdt_limit < MON_GDT_CPUNODE * 8 + 7) {
		monitor_set_cpunode(&sm->mon, 0);
		sm->cpunode_gdt = sm->cpu.gdt_base;
		return;
	}
	if (guest_read_virt(&vm->mem, &ctl, sm->cpu.gdt_base + MON_GDT_CPUNODE * 8, &desc,
			    sizeof(desc), 0) != sizeof(desc))
		return;
	monitor_set_cpunode(&sm->mon, desc);
	sm->cpunode_gdt = sm->cpu.gdt_base;
}

/*
 * #GP or #UD: a privileged or sensitive instruction of the deprivileged
 * guest, emulated on the virtual CPU. A ud0/ud1/ud2 is the guest's own #UD.
 *
 * In user mode (virtual CPL3) the guest runs at real CPL3 on its own pages
 * and selectors, so what the real CPU refuses there the virtual CPU
 * refuses too, except for what the emulator knows: port I/O and the IF
 * instructions under the virtual IOPL, `int n` through the guest's IDT,
 * segment loads from its GDT and LDT, iretq, sysenter. Any other user
 * fault is the process's own (a misaligned movdqa, a non-canonical AVX
 * access, an instruction this CPU lacks): the guest gets it with the real
 * error code, and its kernel sends the signal, as on hardware. The guest
 * kernel's unknown instructions still stop the VM: those may need the
 * privilege the VMM took away.
 */
enum shadow_exit shadow_handle_insn_trap(struct vm *vm, unsigned vector)
{
	struct shadow_mode *sm = vm->shadow;
	u64 rip = sm->cpu.rip;
	bool user = emu_cpl(&sm->cpu) == 3;
	struct emu_report rep;
	enum emu_result r;

	r = shadow_emu_insn(vm, &rep, false);
	if (r == EMU_UNKNOWN && user) {
		bool has = vector != X86_EXC_UD;

		vm->stats.user_faults_own++;
		if (vm->trace)
			fprintf(vm->trace, "user fault %u at rip 0x%llx (%s): the process's own\n",
				vector, (unsigned long long)rip,
				rep.mnemonic[0] ? rep.mnemonic : "?");
		return shadow_reflect_exception(
			vm, vector, has, has ? (u32)monitor_error_code(&sm->mon) : 0, false, 0);
	}
	/* Item 5: a port access the guest's CPL, IOPL and I/O bitmap refuse. */
	if (r == EMU_DONE && rep.faulted && rep.fault_vector == X86_EXC_GP &&
	    is_port_insn(rep.mnemonic))
		vm->stats.guest_io_denied++;

	if (r == EMU_UNKNOWN && vector == X86_EXC_UD && is_ud_insn(rep.mnemonic))
		return shadow_reflect_exception(vm, X86_EXC_UD, false, 0, false, 0);
	if (r != EMU_DONE) {
		shadow_emu_stop(vm, r, &rep, rip);
		return SHADOW_EXIT_STOP;
	}
	return after_insn(vm, &rep, rip);
}

/*
 * The access at the frame's RIP that shadow_fault said the guest may make
 * but the shadow cannot let through (a write-protected guest table, MMIO,
 * an SMAP view case): emulated; every store goes through shadow_pt_write or
 * the MMIO bus (shadow_emu.c, item 2).
 */
static enum shadow_exit emulate_access(struct vm *vm, enum shadow_fault_result why, gpa_t at)
{
	u64 rip = vm->shadow->cpu.rip;
	struct emu_report rep;
	enum emu_result r = shadow_emu_insn(vm, &rep, false);

	/*
	 * A store to a write-protected guest table by an instruction decode/
	 * does not know (xsave into a page that used to be a page table): the
	 * page is data now. Stop shadowing it and let the guest retry natively.
	 */
	if (r == EMU_UNKNOWN && why == SHADOW_EMULATE_PT_WRITE &&
	    shadow_unshadow_gfn(vm->shadow->mmu, gpa_to_gfn(at))) {
		vm->stats.unshadowed_for_unknown++;
		return SHADOW_EXIT_RESUME;
	}
	if (r != EMU_DONE) {
		shadow_emu_stop(vm, r, &rep, rip);
		return SHADOW_EXIT_STOP;
	}
	if (why == SHADOW_EMULATE_PT_WRITE)
		vm->stats.emulated_pt_writes++;
	else if (why == SHADOW_EMULATE_ACCESS)
		vm->stats.emulated_ram_stores++;
	return after_insn(vm, &rep, rip);
}

/*
 * A #BP: ours if RIP - 1 is a patch (a host that delivers int3 through the
 * DPL0 gate as #BP): back up onto the int3 and emulate the original.
 * Otherwise the guest's own breakpoint, reflected as before.
 */
static enum shadow_exit handle_bp(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;

	if (shadow_emu_is_patch(vm, sm->cpu.rip - 1)) {
		sm->cpu.rip--;
		return shadow_handle_insn_trap(vm, X86_EXC_BP);
	}
	return shadow_reflect_exception(vm, X86_EXC_BP, false, 0, false, 0);
}

static enum shadow_exit handle_pf(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	const struct mon_frame *f = monitor_frame(&sm->mon);
	u64 err = monitor_error_code(&sm->mon);
	u64 cr2 = vm->run->s.regs.sregs.cr2; /* the real CR2 the #PF set */
	struct shadow_fault_info info;
	enum shadow_fault_result res;
	struct mon_call_point p;
	u32 access;

	if (err & PFERR_RSVD) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"shadow mode: reserved-bit #PF at gva 0x%llx (rip 0x%llx): a shadow "
			"table entry is malformed",
			(unsigned long long)cr2, (unsigned long long)f->rip);
		return SHADOW_EXIT_STOP;
	}
	/*
	 * Invariant: a fault shadow_fault() fixed does not come back at once
	 * (bounded, so a lost store never hangs the VM). Emulated accesses may
	 * legitimately repeat (a loop storing to MMIO), so only FIXED counts.
	 */
	if (f->rip == sm->last_pf_rip && cr2 == sm->last_pf_cr2 && err == sm->last_pf_err) {
		if (++sm->pf_repeats >= SHADOW_PF_REPEAT_MAX) {
			vm_kill(vm, UMBRA_EXIT_INTERNAL,
				"shadow mode: the same #PF (gva 0x%llx, error code 0x%llx) at rip "
				"0x%llx came back %u times after being fixed",
				(unsigned long long)cr2, (unsigned long long)err,
				(unsigned long long)f->rip, sm->pf_repeats);
			return SHADOW_EXIT_STOP;
		}
	} else {
		sm->last_pf_rip = f->rip;
		sm->last_pf_cr2 = cr2;
		sm->last_pf_err = err;
		sm->pf_repeats = 0;
	}
	/* The access as the guest made it: user iff the guest is at virtual CPL3. */
	access = (sm->view == SHADOW_VIEW_USER ? ACC_USER : 0) |
		 ((err & PFERR_WRITE) ? ACC_WRITE : 0) | ((err & PFERR_FETCH) ? ACC_FETCH : 0) |
		 ((sm->cpu.rflags & RFLAGS_AC) ? ACC_AC_SET : 0); /* the virtual AC */
	res = shadow_fault(sm->mmu, gva(cr2), access, sm->view, &info);
	if (res != SHADOW_FIXED)
		sm->last_pf_rip = ~0ull; /* only a fault that was *fixed* must not repeat */
	/*
	 * The sync, iret and cmpxchg16b stand-ins' pushes and reads, where the
	 * shadow MMU did not fix the fault (a guest fault, a page it must see
	 * written, MMIO): never delivered or emulated in the window. Their
	 * slow paths run the original at its place, which raises or emulates
	 * what it would (the iretq itself pushes nothing).
	 */
	if (res != SHADOW_FIXED && res != SHADOW_MONITOR_CONFLICT && sm->window_on &&
	    emu_cpl(&sm->cpu) == 0 && monitor_call_point(&sm->mon, f->rip, &p) &&
	    shadow_call_has_slow_path(p.fn))
		return shadow_call_slow_path(vm, p.fn);
	switch (res) {
	case SHADOW_FIXED: return SHADOW_EXIT_RESUME;
	case SHADOW_GUEST_FAULT:
		if (sm->view == SHADOW_VIEW_USER && !vm->opts->no_prefault)
			sm->prefault = (struct shadow_prefault_arm){ .armed = true,
								     .rip = f->rip,
								     .cr3 = sm->cpu.cr3,
								     .cr2 = cr2,
								     .access = access };
		return shadow_reflect_exception(vm, X86_EXC_PF, true, info.error_code, true,
						info.cr2.v);
	case SHADOW_EMULATE_PT_WRITE:
	case SHADOW_MMIO:
	case SHADOW_EMULATE_ACCESS: return emulate_access(vm, res, info.gpa);
	case SHADOW_MONITOR_CONFLICT:
		if (sm->window_on && shadow_in_call_window(cr2))
			return shadow_call_withdraw(vm, cr2);
		vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
			"shadow mode: the guest maps gva 0x%llx in the range the monitor reserves "
			"(0x%llx-0x%llx), at rip 0x%llx",
			(unsigned long long)cr2, (unsigned long long)MON_GVA,
			(unsigned long long)(MON_GVA + (1ull << 39) - 1),
			(unsigned long long)f->rip);
		return SHADOW_EXIT_STOP;
	case SHADOW_EXEC_UNSCANNED: return shadow_scan_code_frame(vm, info.gpa, cr2, f->rip);
	case SHADOW_UNSUPPORTED:
	default:
		vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
			"shadow mode: the guest's paging mode is not shadowed (4-level, 32-bit and "
			"PAE paging are; 5-level paging is not), at rip 0x%llx",
			(unsigned long long)f->rip);
		return SHADOW_EXIT_STOP;
	}
}

/*
 * The guest's syscall (vmm/monitor.h, "The syscall entry"). On hosts where
 * it arrives at CPL0 the #UD gate's IST put the frame where trap() expects.
 */
static bool at_syscall_entry(unsigned vector, const struct mon_frame *f)
{
	return vector == X86_EXC_UD && f->rip == MON_SYSCALL_GVA;
}

static enum shadow_exit handle_syscall(struct vm *vm)
{
	u64 rip = vm->shadow->cpu.gpr[EMU_RCX] - 2;
	struct emu_report rep;
	enum emu_result r;

	vm->stats.syscalls++;
	r = shadow_emu_syscall(vm, &rep);
	if (r != EMU_DONE) {
		shadow_emu_stop(vm, r, &rep, rip);
		return SHADOW_EXIT_STOP;
	}
	return SHADOW_EXIT_RESUME;
}

/* Item 4: back to the guest through the tail. */
static enum shadow_exit resume_guest(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct kvm_regs *r = &vm->run->s.regs.regs;

	if (sm->mon.overflow) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"shadow mode: more than %u shadow-table stores in one trap (LIMITATION: "
			"the command buffer is not split yet)",
			(unsigned)MON_QUEUE_MAX);
		return SHADOW_EXIT_STOP;
	}
	vm->stats.shadow_stores_replayed += sm->mon.nr_queued;
	/*
	 * TPR masking, lazily (tpr_masking: the patch strategy). While the
	 * virtual IF is 0, the LAPIC timer's interrupt must wait in the IRR
	 * as it would on hardware (the guest may look there). The TPR is not
	 * raised when the virtual IF goes 0, only once the timer fires
	 * meanwhile: the vCPU takes the interrupt at real CPL3, and the trap
	 * puts it back in the IRR and raises the TPR in one KVM_SET_LAPIC
	 * (trap(), vcpu_lapic_requeue); the TPR stays 15 until the virtual IF
	 * is 1. So a window with IF 0 that no tick falls into costs nothing,
	 * and the stand-ins that set IF (sti, iretq) need not trap at its
	 * end. Other interrupts that come meanwhile are held in software
	 * (shadow_interrupt): in service in the LAPIC, not pending
	 * (LIMITATION; an ExtINT from the PIC cannot be put back at all).
	 * LIMITATION: the guest's own TPR is taken to be 0 (Linux and testos
	 * leave it so), and it reads 15 << 4 through the LAPIC page meanwhile.
	 * Under tpr_by_ioctl the TPR is lowered through KVM's register state
	 * (sregs.cr8) instead of a CR8 write in the monitor's tail.
	 */
	sm->mon.want_tpr = vm->strategy.tpr_masking && !(sm->cpu.rflags & RFLAGS_IF) &&
					   !sm->halted && sm->mon.tpr
				   ? 15
				   : 0;
	if (vm->strategy.tpr_by_ioctl && sm->mon.want_tpr != sm->mon.tpr) {
		vm->run->s.regs.sregs.cr8 = sm->mon.want_tpr;
		shadow_cpu_push_sregs(sm, vm->run);
		sm->mon.tpr = sm->mon.want_tpr;
	}
	/*
	 * With the call window the guest kernel sets its IF without a trap,
	 * and only a trap lowers the TPR again: so the sti and iret stand-ins
	 * must trap while the TPR masks, as well as when an interrupt is held
	 * here.
	 */
	if (sm->window_on && !sm->iopl3)
		monitor_call_data(&sm->mon)->pending =
			shadow_event_any_pending(sm) || sm->mon.want_tpr != 0;
	shadow_dr_arm(vm); /* the guest's breakpoints, when it changed them */
	r->rsp = monitor_prepare_return(&sm->mon, sm->root, sm->guest_rbx);
	r->rbx = sm->guest_rbx;
	r->rip = sm->mon.tail_entry;
	vm->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	return SHADOW_EXIT_RESUME;
}

/*
 * The sti stand-in's ud2: the guest kernel set its IF through the call
 * window with an interrupt held (vmm/monitor.h). Finish the stand-in here,
 * its `popfq; ret`, so that the interrupt is delivered (shadow_event_finish)
 * at the end of the guest's site, as after the original `sti; nop`, and
 * not inside the window.
 */
static enum shadow_exit call_pending_trap(struct vm *vm)
{
	vm->stats.call_traps++;
	/* LIMITATION: the stack went (not seen): delivered inside the window. */
	if (!shadow_call_finish(vm, true))
		vm->shadow->cpu.rip += 2;
	return SHADOW_EXIT_RESUME;
}

/*
 * The prefault. A user access that faults because its gpte is not present
 * yet (demand paging, copy-on-write) costs three traps: the #PF we deliver,
 * the return to user mode (its swapgs or iretq), and the #PF the access
 * takes again on the still-empty spte. When this trap returns to user mode
 * at the instruction whose #PF we delivered last, in the same address
 * space, the handler has done its work, and the access comes at once: map
 * it now (shadow_prefault, which does it only where the guest cannot tell
 * the difference) and the third trap is not taken. Anywhere else (a signal
 * handler, another process) nothing is done. Disarmed by the first return
 * to user mode either way.
 */
static void prefault_on_return(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;

	if (emu_cpl(&sm->cpu) != 3)
		return;
	sm->prefault.armed = false;
	/*
	 * The prefault's stores join this trap's batch, which resume_guest
	 * refuses past MON_QUEUE_MAX: leave the fault to its own trap unless
	 * this batch has room for a path and its prefetch group. A margin,
	 * not a guarantee: a fault's stores are not bounded in general (an
	 * eviction, stale pages cleared), in its own trap either.
	 */
	if (sm->cpu.rip != sm->prefault.rip || sm->cpu.cr3 != sm->prefault.cr3 ||
	    sm->mon.nr_queued + 64 > MON_QUEUE_MAX)
		return;
	shadow_prefault(sm->mmu, gva(sm->prefault.cr2), sm->prefault.access);
}

static enum shadow_exit trap(struct vm *vm, unsigned vector)
{
	struct shadow_mode *sm = vm->shadow;
	const struct kvm_regs *r = &vm->run->s.regs.regs;
	const struct mon_frame *f = monitor_frame(&sm->mon);
	struct shadow_trap_record *rec;
	enum shadow_exit res;
	double t0 = stats_now();
	bool woke, window_ud;
	u64 trap_rip;

	vm->stats.traps[vector]++;
	/* An interrupt that ends a hlt: the frame is the idle loop's, the guest's is parked. */
	woke = shadow_event_wake(vm);
	/*
	 * Invariant: the monitor itself never faults. A trap taken at CPL0 would
	 * push its frame below the command buffer, not at the top of the stack,
	 * and its CS would be the monitor's (only the idle loop takes
	 * interrupts at CPL0, and never an exception).
	 */
	if (r->rsp != monitor_trap_rsp(vector) ||
	    (woke ? vector < 32 : (f->cs & 3) != 3 && !at_syscall_entry(vector, f))) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"shadow mode: vector %u taken inside the monitor (the frame: rip 0x%llx, "
			"cs 0x%llx; the stub's rsp 0x%llx, expected 0x%llx)",
			vector, (unsigned long long)f->rip, (unsigned long long)f->cs,
			(unsigned long long)r->rsp, (unsigned long long)monitor_trap_rsp(vector));
		shadow_mode_dump_recent(vm); /* the traps before it */
		{
			/* What the CPU pushed where the stub ran (not the guest's frame). */
			struct walk_ctl ctl = shadow_cpu_walk_ctl(&sm->cpu);
			const struct kvm_sregs *ks = &vm->run->s.regs.sregs;
			u64 w[6] = { 0 };

			if (guest_read_virt(&vm->mem, &ctl, r->rsp, w, sizeof(w), 0) == sizeof(w))
				pr_err("  at the stub (rip 0x%llx, cs 0x%x): %016llx %016llx "
				       "%016llx %016llx %016llx %016llx",
				       (unsigned long long)r->rip, ks->cs.selector,
				       (unsigned long long)w[0], (unsigned long long)w[1],
				       (unsigned long long)w[2], (unsigned long long)w[3],
				       (unsigned long long)w[4], (unsigned long long)w[5]);
		}
		return SHADOW_EXIT_STOP;
	}
	sm->guest_rbx = r->rbx;
	{
		u64 kgs0 = sm->cpu.virt.kernel_gs_base;
		u16 gsel0 = sm->cpu.virt.gs_sel;

		vm->stats.call_fs_base_loads += shadow_cpu_load(sm, vm->run);
		/* What the stand-ins changed without a trap (vmm/monitor.h, the data page). */
		if (vm->trace &&
		    (kgs0 != sm->cpu.virt.kernel_gs_base || gsel0 != sm->cpu.virt.gs_sel))
			fprintf(vm->trace, "window kgs 0x%llx -> 0x%llx gs_sel 0x%x -> 0x%x\n",
				(unsigned long long)kgs0,
				(unsigned long long)sm->cpu.virt.kernel_gs_base, gsel0,
				sm->cpu.virt.gs_sel);
	}
	trap_rip = sm->cpu.rip;
	if (vector < 32)
		trap_sites_add(&vm->stats.sites, vector, trap_rip);
	rec = &sm->recent[sm->recent_n++ % SHADOW_RECENT];
	*rec = (struct shadow_trap_record){ .rip = trap_rip,
					    .cr3 = sm->cpu.cr3,
					    .cr2 = vm->run->s.regs.sregs.cr2,
					    .vector = (u16)vector,
					    .cpl = (u8)emu_cpl(&sm->cpu) };
	/* A ud2 of the call window's, which the guest kernel reached in a stand-in. */
	window_ud = vector == X86_EXC_UD && sm->window_on && emu_cpl(&sm->cpu) == 0;
	if (vector == X86_EXC_PF) {
		res = handle_pf(vm);
	} else if (vector == X86_EXC_UD && f->rip == MON_SYSCALL_GVA) {
		res = handle_syscall(vm);
	} else if (window_ud && monitor_call_is_pending_trap(f->rip)) {
		res = call_pending_trap(vm);
	} else if (window_ud && monitor_call_is_sync_trap(f->rip)) {
		res = shadow_call_slow_path(vm, MON_CALL_SYNC);
	} else if (window_ud && monitor_call_is_iret_trap(f->rip)) {
		res = shadow_call_slow_path(vm, MON_CALL_IRET);
	} else if (window_ud && monitor_call_is_load_gs_trap(f->rip)) {
		res = shadow_call_slow_path(vm, MON_CALL_LOAD_GS);
	} else if ((window_ud && monitor_call_is_load_fs_trap(f->rip)) ||
		   (vector == X86_EXC_GP &&
		    shadow_call_in_stand_in(sm, f->rip, MON_CALL_LOAD_FS))) {
		res = shadow_call_slow_path(vm, MON_CALL_LOAD_FS);
	} else if (window_ud && monitor_call_is_wrmsr_trap(f->rip)) {
		res = shadow_call_slow_path(vm, MON_CALL_WRMSR);
	} else if (window_ud && monitor_call_is_ss_load_trap(f->rip)) {
		res = shadow_call_slow_path(vm, MON_CALL_SS_LOAD);
	} else if (vector == X86_EXC_UD && shadow_call_in_stand_in(sm, f->rip, MON_CALL_SWAPGS)) {
		/* rdgsbase/wrgsbase refused at real CPL3 */
		res = shadow_call_slow_path(vm, MON_CALL_SWAPGS);
	} else if (vector == X86_EXC_GP && shadow_call_in_stand_in(sm, f->rip, MON_CALL_CX16)) {
		/* Its cmpxchg16b's operand: unaligned, or not canonical. */
		res = shadow_call_slow_path(vm, MON_CALL_CX16);
	} else if (vector == X86_EXC_GP || vector == X86_EXC_UD || vector == X86_EXC_NP) {
		res = shadow_handle_insn_trap(vm, vector);
	} else if (vector == X86_EXC_BP) {
		res = handle_bp(vm);
	} else if (vector < 32) {
		bool has = monitor_vector_has_error_code(vector);

		/*
		 * A single-step trap: its RFLAGS image has TF. The guest's handler
		 * reads DR6 for the cause (Linux: DR_STEP, TRAP_TRACE); an icebp
		 * (int1) leaves it as it was.
		 */
		if (vector == X86_EXC_DB && (sm->cpu.rflags & RFLAGS_TF))
			sm->cpu.virt.dr6 |= DR6_BS;
		/* Or one of the guest's breakpoints (vmm/shadow_debugreg.h, item 2). */
		if (vector == X86_EXC_DB)
			sm->cpu.virt.dr6 |= shadow_dr_hits(vm, f->rip, sm->cpu.rflags);
		/*
		 * A data breakpoint that a stand-in's access fired (its stack
		 * reads and writes are the guest's): delivered after the site,
		 * as after the instruction it stands for, never inside the window.
		 */
		if (vector == X86_EXC_DB && sm->window_on && shadow_in_call_window(sm->cpu.rip) &&
		    !shadow_call_finish(vm, false)) {
			vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
				"shadow mode: a #DB inside the monitor's call window at rip 0x%llx "
				"that cannot be finished; run with --monitor-calls=off",
				(unsigned long long)sm->cpu.rip);
			res = SHADOW_EXIT_STOP;
		} else {
			res = shadow_reflect_exception(vm, vector, has,
						       has ? (u32)monitor_error_code(&sm->mon) : 0,
						       false, 0);
		}
	} else {
		/* A tick with the virtual IF 0: back to the IRR, the TPR up (resume_guest). */
		if (vm->strategy.tpr_masking && !woke && !(sm->cpu.rflags & RFLAGS_IF) &&
		    vcpu_lapic_requeue(vm, vector, 15)) {
			sm->mon.tpr = 15;
			vm->stats.irq_requeued++;
		} else {
			shadow_interrupt(vm, vector);
		}
		res = SHADOW_EXIT_RESUME;
	}
	/*
	 * Still inside a stand-in (an interrupt or a fault on its stack took
	 * the vCPU there): finish it now, so that what is delivered next sees
	 * the end of the guest's site, never a RIP in the window.
	 */
	if (res == SHADOW_EXIT_RESUME && sm->window_on && emu_cpl(&sm->cpu) == 0 &&
	    shadow_in_call_window(sm->cpu.rip))
		shadow_call_finish(vm, vector >= 32 || sm->cpu.rip == trap_rip);
	if (res == SHADOW_EXIT_RESUME)
		res = shadow_event_finish(vm);
	if (res == SHADOW_EXIT_RESUME && chain(vm, &res) && res == SHADOW_EXIT_RESUME)
		res = shadow_event_finish(vm);
	if (res == SHADOW_EXIT_RESUME && !shadow_emu_check_rewrites(vm))
		res = SHADOW_EXIT_STOP;
	if (res == SHADOW_EXIT_RESUME) {
		if (sm->prefault.armed)
			prefault_on_return(vm);
		/* The stand-ins' descriptors, for a guest kernel about to run on. */
		if (sm->window_on && emu_cpl(&sm->cpu) == 0) {
			if (vm->stats.call_sync || vm->stats.call_iret || vm->stats.call_ss)
				call_sync_fill(vm);
			if (vm->stats.call_load_gs || vm->stats.call_load_fs)
				call_load_gs_fill(vm);
			if (vm->stats.call_ss_load)
				call_ss_load_fill(vm);
		}
		if (emu_cpl(&sm->cpu) == 3 && sm->cpunode_gdt != sm->cpu.gdt_base)
			sync_cpunode(vm);
		shadow_cpu_store(sm, vm->run);
		shadow_event_leave(vm);
		res = resume_guest(vm);
	}
	vm->stats.trap_time[vector] += stats_now() - t0;
	rec->next_rip = sm->cpu.rip;
	rec->result = (u8)res;
	/* A guest that died of a fault, or our own failure: what led there. */
	if (res == SHADOW_EXIT_STOP &&
	    (vm->exit_code == UMBRA_EXIT_TRIPLE_FAULT || vm->exit_code == UMBRA_EXIT_EMULATION ||
	     vm->exit_code == UMBRA_EXIT_INTERNAL))
		shadow_mode_dump_recent(vm);
	if (vm->trace)
		fprintf(vm->trace,
			"trap %u at 0x%llx rip 0x%llx cr3 0x%llx cr2 0x%llx gs 0x%llx kgs 0x%llx "
			"-> %s\n",
			vector, (unsigned long long)trap_rip, (unsigned long long)sm->cpu.rip,
			(unsigned long long)sm->cpu.cr3,
			(unsigned long long)vm->run->s.regs.sregs.cr2,
			(unsigned long long)sm->cpu.gs_base,
			(unsigned long long)sm->cpu.virt.kernel_gs_base,
			res == SHADOW_EXIT_RESUME ? (sm->halted ? "halt" : "resume") : "stop");
	return res;
}

/* Items 3 and 5. */
enum shadow_exit shadow_mode_io_exit(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	const struct kvm_run *run = vm->run;
	const struct kvm_sregs *s = &run->s.regs.sregs;
	unsigned vector;

	if (s->cs.dpl == 0) {
		/* Real CPL0: only the monitor runs there, and only a stub does `out`. */
		if (run->io.port != MON_TRAP_PORT || run->io.direction != KVM_EXIT_IO_OUT ||
		    !monitor_stub_vector(run->s.regs.regs.rip, &vector)) {
			vm_kill(vm, UMBRA_EXIT_INTERNAL,
				"shadow mode: port 0x%x accessed at CPL0 outside a stub (rip "
				"0x%llx)",
				run->io.port, run->s.regs.regs.rip);
			return SHADOW_EXIT_STOP;
		}
		return trap(vm, vector);
	}
	/*
	 * The guest kernel's own port access, at real CPL3 (the I/O bitmap
	 * lets it exit, vmm/monitor.h). Guest user code never gets here: its
	 * accesses are #GP traps that the emulator runs
	 * (decode/emulate_io.c). Checked all the same.
	 */
	vm->stats.guest_io++;
	if (shadow_emu_io_permitted(vm, run->io.port, run->io.size))
		return SHADOW_EXIT_GUEST_IO;
	vm_kill(vm, UMBRA_EXIT_INTERNAL,
		"shadow mode: port 0x%x accessed by the guest at virtual CPL%u (rip 0x%llx) "
		"with the real I/O bitmap on",
		run->io.port, emu_cpl(&sm->cpu), (unsigned long long)run->s.regs.regs.rip);
	return SHADOW_EXIT_STOP;
}

/* shadow_mode.h: the flight recorder, oldest first. */
void shadow_mode_dump_recent(struct vm *vm)
{
	static const char *const results[] = { "resume", "guest I/O", "stop" };
	const struct shadow_mode *sm = vm->shadow;
	u64 first;

	if (!sm)
		return;
	pr_err("  the guest as of its last trap: rip %016llx cs %04x (virtual CPL%u) cr3 %llx "
	       "rflags %08llx",
	       (unsigned long long)sm->cpu.rip, sm->cpu.cs.sel, emu_cpl(&sm->cpu),
	       (unsigned long long)sm->cpu.cr3, (unsigned long long)sm->cpu.rflags);
	first = sm->recent_n > SHADOW_RECENT ? sm->recent_n - SHADOW_RECENT : 0;
	pr_err("  its last %llu traps (of %llu), oldest first:",
	       (unsigned long long)(sm->recent_n - first), (unsigned long long)sm->recent_n);
	for (u64 i = first; i < sm->recent_n; i++) {
		const struct shadow_trap_record *t = &sm->recent[i % SHADOW_RECENT];

		pr_err("    vector %3u at rip %016llx (CPL%u, cr3 %llx, cr2 %llx) -> %s at %016llx",
		       t->vector, (unsigned long long)t->rip, t->cpl, (unsigned long long)t->cr3,
		       (unsigned long long)t->cr2,
		       t->result < ARRAY_SIZE(results) ? results[t->result] : "?",
		       (unsigned long long)t->next_rip);
	}
}
