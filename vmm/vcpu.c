// SPDX-License-Identifier: MIT
/*
 * The vCPU: creation, the boot CPU state, and the run loop.
 *
 * 1. Create the vCPU, map its kvm_run page, give it the CPUID KVM supports
 *    (less what shadow mode and --cpu hide, vmm/cpu_features.c),
 *    and put the LAPIC in virtual-wire mode (LINT0 ExtINT, LINT1 NMI) as
 *    firmware leaves it, so the PIC's interrupts reach the CPU.
 * 2. Apply the loader's struct boot_state (long mode or 32-bit protected
 *    mode) with KVM_SET_SREGS/KVM_SET_REGS, once, before the first run.
 * 3. The run loop: KVM_RUN with KVM_CAP_SYNC_REGS, so the registers of every
 *    exit are in kvm_run with no extra ioctl; one handler per exit reason;
 *    an exit we do not understand dumps the registers and code and stops.
 *    In shadow mode port I/O exits carry the monitor's traps and go to
 *    vmm/shadow_mode.c first (handle_shadow_exit).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "decode/decode.h"
#include "shadow/walk.h"
#include "shadow/x86.h"
#include "umbra/bootinfo.h"
#include "umbra/log.h"
#include "vmm/cpu_features.h"
#include "vmm/emulate_glue.h"
#include "vmm/exitcode.h"
#include "vmm/guest_access.h"
#include "vmm/shadow_mode.h"
#include "vmm/shadow_msr.h"
#include "vmm/vm.h"

#define CPUID_ADDR_SIZES    0x80000008u
#define CPUID_DEFAULT_MAXPA 36 /* without leaf 0x80000008 (SDM Vol. 3A §4.1.4) */
/* LAPIC register offsets and LVT delivery modes: Intel SDM Vol. 3A §10.5.1. */
#define APIC_TPR	   0x80
#define APIC_ISR	   0x100 /* 8 registers, one per 32 vectors, 16 bytes apart */
#define APIC_IRR	   0x200
#define APIC_LVTT	   0x320
#define APIC_LVT0	   0x350
#define APIC_LVT1	   0x360
#define APIC_LVT_DM_MASK   (7u << 8)
#define APIC_LVT_DM_NMI	   (4u << 8)
#define APIC_LVT_DM_EXTINT (7u << 8)
#define APIC_LVT_MASKED	   (1u << 16)

/* Are these the entries of an AMD (or Hygon) CPU? */
static bool cpuid_is_amd(const struct kvm_cpuid_entry2 *e, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (e[i].function == 0)
			return (e[i].ebx == 0x68747541 && e[i].edx == 0x69746e65 &&
				e[i].ecx == 0x444d4163) || /* "AuthenticAMD" */
			       (e[i].ebx == 0x6f677948 && e[i].edx == 0x6e65476e &&
				e[i].ecx == 0x656e6975); /* "HygonGenuine" */
	return false;
}

/*
 * Does a null selector load keep the FS/GS base on the CPU these entries
 * describe? AMD's and Hygon's do, unless Fn8000_0021_EAX[6]
 * (NullSelectorClearsBase; AMD APM Vol. 3, CPUID) says it clears it.
 */
static bool cpuid_null_sel_keeps_base(const struct kvm_cpuid_entry2 *e, u32 n)
{
	bool clears = false;

	for (u32 i = 0; i < n; i++)
		if (e[i].function == 0x80000021)
			clears = e[i].eax & (1u << 6);
	return cpuid_is_amd(e, n) && !clears;
}

/* Item 1. */
static int setup_cpuid(struct vm *vm)
{
	struct kvm_cpuid2 *cpuid;
	int r = 0;

	cpuid = calloc(1, sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return UMBRA_EXIT_INTERNAL;
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		r = UMBRA_EXIT_NO_KVM;
		goto out;
	}
	cpuid->nent = cpu_features_kvm_clock(cpuid->entries, cpuid->nent, &vm->kvm_clock);
	if (vm->opts->mmu == MMU_SHADOW)
		cpuid->nent = cpu_features_hide_for_shadow(cpuid->entries, cpuid->nent);
	/* --cpu, in both modes, after what shadow mode hides. */
	cpu_features_apply(&vm->opts->cpu_hide, cpuid->entries, cpuid->nent);
	vm->kvm_clock = vm->kvm_clock && !cpu_features_hidden(&vm->opts->cpu_hide, "hypervisor");
	if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, cpuid) < 0) {
		pr_err("KVM_SET_CPUID2: %s", strerror(errno));
		r = UMBRA_EXIT_INTERNAL;
		goto out;
	}
	/*
	 * What the guest sees is the table KVM keeps, which is not always the
	 * one set: PVM hosts add features of their own CPU (SMEP, SMAP,
	 * FSGSBASE, which KVM_GET_SUPPORTED_CPUID leaves out). The CR4 and
	 * EFER bits the guest may set, and shadow mode's trapped cpuid
	 * (shadow_emu.c), follow it.
	 */
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->vcpu_fd, KVM_GET_CPUID2, cpuid) < 0) {
		pr_err("KVM_GET_CPUID2: %s", strerror(errno));
		r = UMBRA_EXIT_INTERNAL;
		goto out;
	}
	vm->guest_maxphyaddr = CPUID_DEFAULT_MAXPA;
	vm->cpu_null_sel_keeps_base = cpuid_null_sel_keeps_base(cpuid->entries, cpuid->nent);
	vm->cpu_amd = cpuid_is_amd(cpuid->entries, cpuid->nent);
	vm->cpu_cr4_valid = cpu_features_cr4_valid(cpuid->entries, cpuid->nent);
	vm->cpu_efer_valid = cpu_features_efer_valid(cpuid->entries, cpuid->nent);
	for (u32 i = 0; i < cpuid->nent; i++) {
		if (cpuid->entries[i].function == 0xd && cpuid->entries[i].index == 0)
			vm->guest_xcr0_mask = cpuid->entries[i].eax | (u64)cpuid->entries[i].edx
									      << 32;
		if (cpuid->entries[i].function == CPUID_ADDR_SIZES &&
		    (cpuid->entries[i].eax & 0xff))
			vm->guest_maxphyaddr = cpuid->entries[i].eax & 0xff;
	}
out:
	free(cpuid);
	return r;
}

static u32 lapic_reg(struct kvm_lapic_state *s, unsigned off, const u32 *set)
{
	u32 *p = (u32 *)(void *)&s->regs[off];

	if (set)
		*p = *set;
	return *p;
}

static int setup_lapic(struct vm *vm)
{
	struct kvm_lapic_state s;
	u32 lvt0, lvt1;

	if (ioctl(vm->vcpu_fd, KVM_GET_LAPIC, &s) < 0) {
		pr_err("KVM_GET_LAPIC: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	lvt0 = (lapic_reg(&s, APIC_LVT0, NULL) & ~(APIC_LVT_DM_MASK | APIC_LVT_MASKED)) |
	       APIC_LVT_DM_EXTINT;
	lvt1 = (lapic_reg(&s, APIC_LVT1, NULL) & ~(APIC_LVT_DM_MASK | APIC_LVT_MASKED)) |
	       APIC_LVT_DM_NMI;
	lapic_reg(&s, APIC_LVT0, &lvt0);
	lapic_reg(&s, APIC_LVT1, &lvt1);
	if (ioctl(vm->vcpu_fd, KVM_SET_LAPIC, &s) < 0) {
		pr_err("KVM_SET_LAPIC: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	return 0;
}

bool vcpu_lapic_requeue(struct vm *vm, unsigned vector, u8 tpr)
{
	struct kvm_lapic_state s;
	unsigned reg = 0x10 * (vector / 32);
	u32 bit = 1u << (vector % 32), isr, irr, tpr_reg = (u32)tpr << 4;

	if (vector > 255 || ioctl(vm->vcpu_fd, KVM_GET_LAPIC, &s) < 0)
		return false;
	/*
	 * Only the LAPIC timer's own vector: KVM_SET_LAPIC restarts the timer
	 * and drops an expiry not yet injected, which for any other vector
	 * could be a one-shot expiry lost for good. The timer's just taken
	 * has been injected, and the next is the guest's to arm.
	 */
	if ((lapic_reg(&s, APIC_LVTT, NULL) & 0xff) != vector)
		return false;
	/*
	 * In service, as KVM's acknowledgement leaves it; on PVM hosts the
	 * vector taken is in neither register (seen on 2026-12-07: ISR and
	 * IRR both clear at the trap), so it is pending again all the same.
	 */
	isr = lapic_reg(&s, APIC_ISR + reg, NULL);
	isr &= ~bit;
	irr = lapic_reg(&s, APIC_IRR + reg, NULL) | bit;
	lapic_reg(&s, APIC_ISR + reg, &isr);
	lapic_reg(&s, APIC_IRR + reg, &irr);
	lapic_reg(&s, APIC_TPR, &tpr_reg);
	if (ioctl(vm->vcpu_fd, KVM_SET_LAPIC, &s) < 0)
		return false;
	/* The sregs KVM reads back at the next exit: in step until then. */
	vm->run->s.regs.sregs.cr8 = tpr;
	return true;
}

/* Item 2. */
static void flat_segment(struct kvm_segment *seg, u16 sel, bool code, bool long_mode)
{
	*seg = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = code ? 0xb : 0x3, /* execute/read accessed, read/write accessed */
		.present = 1,
		.dpl = 0,
		.db = code && long_mode ? 0 : 1,
		.s = 1,
		.l = code && long_mode,
		.g = 1,
	};
}

static int set_boot_state(struct vm *vm)
{
	const struct boot_state *bs = &vm->boot;
	bool lm = bs->mode == BOOT_LONG64;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = bs->rip,
		.rsp = bs->rsp,
		.rflags = bs->rflags,
		.rax = bs->rax,
		.rbx = bs->rbx,
		.rdi = bs->rdi,
		.rsi = bs->rsi,
	};

	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		pr_err("KVM_GET_SREGS: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	flat_segment(&sregs.cs, bs->cs_sel, true, lm);
	flat_segment(&sregs.ds, bs->ds_sel, false, lm);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = UMBRA_BOOT_GDT;
	sregs.gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	if (lm) {
		sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
		sregs.cr3 = bs->cr3;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA | EFER_SCE | (bs->nx ? EFER_NXE : 0);
	} else {
		sregs.cr0 = CR0_PE | CR0_ET;
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
	}
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		pr_err("setting the boot CPU state: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	return 0;
}

bool vcpu_msr(struct vm *vm, unsigned long req, u32 index, u64 *value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} buf;

	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = 1;
	buf.e.index = index;
	buf.e.data = *value;
	if (ioctl(vm->vcpu_fd, req, &buf) != 1)
		return false;
	*value = buf.e.data;
	return true;
}

/*
 * AMD's HWCR.TscFreqSel (bit 24; APM Vol. 2, MSR C001_0015): the TSC counts
 * at the P0 frequency, which KVM's constant TSC does. KVM leaves it clear
 * unless userspace sets it, and Linux on a family 10h or later CPU warns
 * "[Firmware Bug]: TSC doesn't count with P0 frequency!" (seen on an EPYC of
 * family 1Ah). Where KVM refuses it (before Linux 6.6) the guest warns so.
 */
#define HWCR_TSC_FREQ_SEL (1ull << 24)
static void setup_hwcr(struct vm *vm)
{
	u64 hwcr = 0;

	if (!vm->cpu_amd || !vcpu_msr(vm, KVM_GET_MSRS, MSR_K7_HWCR, &hwcr))
		return;
	hwcr |= HWCR_TSC_FREQ_SEL;
	(void)vcpu_msr(vm, KVM_SET_MSRS, MSR_K7_HWCR, &hwcr);
}

int vcpu_setup(struct vm *vm)
{
	int sz, r;

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0) {
		pr_err("KVM_CREATE_VCPU: %s", strerror(errno));
		return UMBRA_EXIT_NO_KVM;
	}
	sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run)) {
		pr_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	vm->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		pr_err("mmap of kvm_run: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	vm->run_size = (size_t)sz;
	r = setup_cpuid(vm);
	if (!r)
		setup_hwcr(vm);
	if (!r)
		r = setup_lapic(vm);
	if (!r)
		r = set_boot_state(vm);
	return r;
}

void vcpu_teardown(struct vm *vm)
{
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	vm->run = NULL;
	vm->vcpu_fd = -1;
}

/* ---- Item 3: the run loop -------------------------------------------------- */

enum exit_action {
	EXIT_RESUME,   /* handled: run the guest again */
	EXIT_SHUTDOWN, /* the VM stopped; vm->exit_code says how */
	EXIT_FATAL,    /* vm_kill was called */
};

static const struct kvm_regs *regs_of(struct vm *vm)
{
	return &vm->run->s.regs.regs;
}

static const struct kvm_sregs *sregs_of(struct vm *vm)
{
	return &vm->run->s.regs.sregs;
}

/*
 * Copy up to `len` instruction bytes at the guest's CS:RIP through the
 * guest's own page tables (peek: no A/D side effects). Returns the count.
 */
static size_t fetch_code(struct vm *vm, u8 *buf, size_t len)
{
	const struct kvm_sregs *s = sregs_of(vm);
	u64 addr = s->cs.base + regs_of(vm)->rip;
	struct walk_ctl ctl =
		guest_hw_walk_ctl(&vm->mem, s->cr0, s->cr3, s->cr4, s->efer, vm->guest_maxphyaddr);

	if (!(s->efer & EFER_LMA))
		addr &= 0xffffffffu;
	return guest_read_virt(&vm->mem, &ctl, addr, buf, len, ACC_FETCH);
}

/* Print registers and the code at RIP (kvmtool's show_registers/show_code). */
static void dump_state(struct vm *vm)
{
	const struct kvm_regs *r = regs_of(vm);
	const struct kvm_sregs *s = sregs_of(vm);
	u8 code[16];
	size_t n = fetch_code(vm, code, sizeof(code));
	char text[128];

	pr_err("  rip %016llx rsp %016llx rflags %08llx", r->rip, r->rsp, r->rflags);
	pr_err("  rax %016llx rbx %016llx rcx %016llx rdx %016llx", r->rax, r->rbx, r->rcx, r->rdx);
	pr_err("  rsi %016llx rdi %016llx rbp %016llx", r->rsi, r->rdi, r->rbp);
	pr_err("  cr0 %08llx cr2 %016llx cr3 %016llx cr4 %08llx efer %llx", s->cr0, s->cr2, s->cr3,
	       s->cr4, s->efer);
	pr_err("  cs %04x (base %llx, l %d, db %d, dpl %d)", s->cs.selector, s->cs.base, s->cs.l,
	       s->cs.db, s->cs.dpl);
	if (n) {
		decode_describe(code, n, s->cs.base + r->rip, decode_mode_of(s->cs.l, s->cs.db),
				text, sizeof(text));
		pr_err("  code at rip: %s", text);
	} else {
		pr_err("  code at rip: not readable (not mapped in the guest's page tables)");
	}
	shadow_mode_dump_recent(vm);
}

static enum exit_action handle_io(struct vm *vm)
{
	struct kvm_run *run = vm->run;
	u8 *data = (u8 *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* `count` > 1 for rep ins/outs: one access per element. */
	for (u32 i = 0; i < run->io.count; i++, data += run->io.size) {
		if (!bus_access(&vm->pio, run->io.port, data, run->io.size, is_write)) {
			vm->stats.pio_unknown++;
			if (vm->trace)
				fprintf(vm->trace,
					"pio %s port 0x%04x size %u value 0x%llx rip 0x%llx\n",
					is_write ? "out" : "in", run->io.port, run->io.size,
					(unsigned long long)(is_write
								     ? dev_data_get(data,
										    run->io.size)
								     : ~0ull >> (64 -
										 8 * run->io.size)),
					regs_of(vm)->rip);
		}
	}
	return vm->stop ? EXIT_SHUTDOWN : EXIT_RESUME;
}

static enum exit_action handle_mmio(struct vm *vm)
{
	struct kvm_run *run = vm->run;
	bool is_write = run->mmio.is_write;
	unsigned len = run->mmio.len;

	if (len > sizeof(run->mmio.data)) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL, "MMIO access of %u bytes at 0x%llx", len,
			run->mmio.phys_addr);
		return EXIT_FATAL;
	}
	if (!bus_access(&vm->mmio, run->mmio.phys_addr, run->mmio.data, len, is_write)) {
		vm->stats.mmio_unknown++;
		if (vm->trace)
			fprintf(vm->trace, "mmio %s addr 0x%llx size %u value 0x%llx rip 0x%llx\n",
				is_write ? "write" : "read", run->mmio.phys_addr, len,
				(unsigned long long)dev_data_get(run->mmio.data, len),
				regs_of(vm)->rip);
	}
	return vm->stop ? EXIT_SHUTDOWN : EXIT_RESUME;
}

static enum exit_action handle_shutdown(struct vm *vm)
{
	vm_kill(vm, UMBRA_EXIT_TRIPLE_FAULT, "guest triple fault (shutdown) at rip 0x%llx",
		regs_of(vm)->rip);
	dump_state(vm);
	return EXIT_FATAL;
}

/*
 * KVM gave up on an instruction (on PVM hosts: every guest CPL0 instruction
 * goes through KVM's emulator, which rejects some; shared/HOST.md). Emulate
 * it in the VMM and resume; an instruction we do not know stops the VM with
 * RIP, bytes and disassembly, never a silent skip.
 */
static enum exit_action handle_internal_error(struct vm *vm)
{
	struct kvm_run *run = vm->run;
	u64 rip = regs_of(vm)->rip;
	struct emu_report rep;

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		switch (vmm_emulate_insn(vm, &rep)) {
		case EMU_DONE:
			if (vm->trace && rep.faulted)
				fprintf(vm->trace,
					"emulate %s rip 0x%llx: exception %u delivered\n",
					rep.mnemonic, (unsigned long long)rip, rep.fault_vector);
			else if (vm->trace)
				fprintf(vm->trace, "emulate %s rip 0x%llx\n", rep.mnemonic,
					(unsigned long long)rip);
			return EXIT_RESUME;
		case EMU_UNHANDLED_MEM:
			vm_kill(vm, UMBRA_EXIT_EMULATION,
				"the instruction at rip 0x%llx (%s) accesses memory that is not "
				"guest RAM; the VMM does not emulate that",
				regs_of(vm)->rip, rep.mnemonic);
			break;
		case EMU_TRIPLE_FAULT:
			vm_kill(vm, UMBRA_EXIT_TRIPLE_FAULT,
				"guest triple fault delivering a fault of the instruction at rip "
				"0x%llx (%s)",
				regs_of(vm)->rip, rep.mnemonic);
			break;
		case EMU_HOST_ERROR:
			vm_kill(vm, UMBRA_EXIT_INTERNAL,
				"host error emulating the instruction at rip 0x%llx (%s)",
				regs_of(vm)->rip, rep.mnemonic);
			break;
		case EMU_UNKNOWN:
		default:
			vm_kill(vm, UMBRA_EXIT_EMULATION,
				"neither KVM nor the VMM can emulate the instruction at rip 0x%llx "
				"(hw mode)",
				regs_of(vm)->rip);
			break;
		}
	} else {
		vm_kill(vm, UMBRA_EXIT_INTERNAL, "KVM internal error, suberror %u, at rip 0x%llx",
			run->internal.suberror, regs_of(vm)->rip);
	}
	dump_state(vm);
	return EXIT_FATAL;
}

static enum exit_action handle_system_event(struct vm *vm)
{
	switch (vm->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
	case KVM_SYSTEM_EVENT_RESET: vm_request_stop(vm, UMBRA_EXIT_OK); return EXIT_SHUTDOWN;
	default:
		vm_kill(vm, UMBRA_EXIT_INTERNAL, "unexpected KVM system event %u",
			vm->run->system_event.type);
		return EXIT_FATAL;
	}
}

static enum exit_action handle_unknown(struct vm *vm)
{
	char buf[32];

	vm_kill(vm, UMBRA_EXIT_INTERNAL, "unexpected KVM exit '%s' at rip 0x%llx",
		stats_exit_name(vm->run->exit_reason, buf, sizeof(buf)), regs_of(vm)->rip);
	dump_state(vm);
	return EXIT_FATAL;
}

/*
 * Shadow mode: port I/O carries the monitor's traps (vmm/shadow_mode.c);
 * CPL0 code is the monitor's, so an emulation failure there is our bug.
 */
static enum exit_action handle_shadow_exit(struct vm *vm, u32 reason)
{
	switch (reason) {
	case KVM_EXIT_IO:
		switch (shadow_mode_io_exit(vm)) {
		case SHADOW_EXIT_RESUME: return EXIT_RESUME;
		case SHADOW_EXIT_GUEST_IO: return handle_io(vm);
		case SHADOW_EXIT_STOP:
		default:
			return vm->exit_code == UMBRA_EXIT_OK && vm->stop ? EXIT_SHUTDOWN
									  : EXIT_FATAL;
		}
	case KVM_EXIT_MMIO: return handle_mmio(vm);
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT: return EXIT_RESUME;
	case KVM_EXIT_SHUTDOWN: return handle_shutdown(vm);
	case KVM_EXIT_SYSTEM_EVENT: return handle_system_event(vm);
	case KVM_EXIT_INTERNAL_ERROR:
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"shadow mode: KVM internal error (suberror %u) at rip 0x%llx, cs 0x%x",
			vm->run->internal.suberror, regs_of(vm)->rip, sregs_of(vm)->cs.selector);
		dump_state(vm);
		return EXIT_FATAL;
	default: return handle_unknown(vm);
	}
}

static enum exit_action handle_exit(struct vm *vm)
{
	u32 reason = vm->run->exit_reason;

	if (reason < STATS_MAX_EXIT_REASON)
		vm->stats.exits[reason]++;
	else
		vm->stats.exits_other++;
	if (vm->shadow)
		return handle_shadow_exit(vm, reason);
	switch (reason) {
	case KVM_EXIT_IO: return handle_io(vm);
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		if (vm->hw_sys.on && hw_syscall_msr_exit(vm))
			return EXIT_RESUME;
		return vm->stop ? EXIT_FATAL : handle_unknown(vm);
	case KVM_EXIT_MMIO:
		if (hw_syscall_mmio_exit(vm))
			return vm->stop ? EXIT_FATAL : EXIT_RESUME;
		return handle_mmio(vm);
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT: /* with the in-kernel LAPIC hlt stays in KVM; resume if not */
		return EXIT_RESUME;
	case KVM_EXIT_SHUTDOWN: return handle_shutdown(vm);
	case KVM_EXIT_INTERNAL_ERROR: return handle_internal_error(vm);
	case KVM_EXIT_SYSTEM_EVENT: return handle_system_event(vm);
	case KVM_EXIT_FAIL_ENTRY:
	default: return handle_unknown(vm);
	}
}

int vcpu_run_loop(struct vm *vm)
{
	struct kvm_run *run = vm->run;

	run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	while (!vm->stop) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* A signal or stop request kicked us out; the loop test decides. */
				run->immediate_exit = 0;
				vm->stats.exits[KVM_EXIT_INTR]++;
				continue;
			}
			vm_kill(vm, UMBRA_EXIT_INTERNAL, "KVM_RUN: %s", strerror(errno));
			break;
		}
		if (handle_exit(vm) != EXIT_RESUME)
			break;
	}
	return vm->exit_code;
}
