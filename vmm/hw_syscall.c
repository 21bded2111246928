// SPDX-License-Identifier: MIT
/*
 * hw mode's syscall entry on PVM hosts (vmm/hw_syscall.h says why and what
 * the guest sees).
 *
 * 1. Set-up: the region (a memslot above RAM) and the visible pages (in the
 *    option-ROM window), the real LSTAR, and the MSR filter.
 * 2. The guest's MSR accesses that the filter sends here.
 * 3. The slot entry, stored into a guest root by the vCPU itself.
 * 4. A syscall arriving at the entry page.
 *
 * The pages themselves are vmm/hw_syscall_region.c's.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "shadow/x86.h"
#include "umbra/log.h"
#include "vmm/emulate_glue.h"
#include "vmm/exitcode.h"
#include "vmm/hw_syscall.h"
#include "vmm/hw_syscall_region.h"
#include "vmm/vm.h"

/* The memslot number: the guest's regions take 0 .. MEM_MAX_REGIONS - 1. */
#define HW_SYSCALL_MEMSLOT 16u

/* ---- item 1 ----------------------------------------------------------------- */

/*
 * The filter: writes of STAR, LSTAR and SFMASK and reads of LSTAR exit to
 * the VMM; everything else stays KVM's. A bitmap bit of 1 allows.
 */
static int install_filter(struct vm *vm)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR,
				      .args = { KVM_MSR_EXIT_REASON_FILTER } };
	u8 writes = 1u << (EMU_MSR_CSTAR - EMU_MSR_STAR); /* CSTAR allowed, the other three not */
	u8 reads = 0;
	struct kvm_msr_filter f = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges = { { .flags = KVM_MSR_FILTER_WRITE,
			      .nmsrs = 4,
			      .base = EMU_MSR_STAR,
			      .bitmap = &writes },
			    { .flags = KVM_MSR_FILTER_READ,
			      .nmsrs = 1,
			      .base = EMU_MSR_LSTAR,
			      .bitmap = &reads } },
	};

	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ||
	    ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &f) < 0)
		return -errno;
	return 0;
}

int hw_syscall_setup(struct vm *vm)
{
	struct hw_syscall *hs = &vm->hw_sys;
	struct kvm_userspace_memory_region slot;
	u64 real_lstar = HW_SYSCALL_GVA;
	u8 *rom;
	int r;

	memset(hs, 0, sizeof(*hs));
	if (vm->opts->mmu == MMU_SHADOW || vm->host.syscall_cpl != 3)
		return 0;
	hs->region_gpa = hw_region_gpa(MAX(vm->mem.low_ram_end, vm->mem.high_ram_end));
	hs->region_bytes = hw_region_bytes(hs->region_gpa);
	if (!hs->region_bytes) {
		pr_err("hw mode: the syscall entry's region would lie at or above 512 GiB");
		return UMBRA_EXIT_UNSUPPORTED;
	}
	hs->region = mmap(NULL, hs->region_bytes, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hs->region == MAP_FAILED) {
		hs->region = NULL;
		pr_err("hw mode: mapping the syscall entry's region: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	hw_region_build(hs->region, hs->region_gpa);
	rom = gpa_to_hva_kind(&vm->mem, gpa(HW_SYSCALL_ROM_GPA),
			      (u64)HW_SYSCALL_ROM_PAGES * PAGE_SIZE, true);
	BUG_ON(!rom); /* the option-ROM window is always there (vmm/memory.h) */
	hw_region_build_rom(rom, hs->region_gpa);
	slot = (struct kvm_userspace_memory_region){
		.slot = HW_SYSCALL_MEMSLOT,
		.guest_phys_addr = hs->region_gpa,
		.memory_size = hs->region_bytes,
		.userspace_addr = (u64)(uintptr_t)hs->region,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
		pr_err("KVM_SET_USER_MEMORY_REGION (hw mode syscall entry): %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	r = install_filter(vm);
	if (r || !vcpu_msr(vm, KVM_SET_MSRS, EMU_MSR_LSTAR, &real_lstar)) {
		/* Without it the guest runs as before: its processes cannot make syscalls. */
		pr_warn("hw mode on this host: a syscall from user mode stays at CPL3 (KVM here is "
			"PVM, shared/HOST.md) and KVM refuses the MSR filter that works around it "
			"(%s), so a guest's processes cannot make syscalls; --mmu=shadow can",
			r ? strerror(-r) : "KVM_SET_MSRS of LSTAR");
		return 0;
	}
	hs->on = true;
	vm->stats.hw_syscall_entry = true;
	pr_debug("hw mode: syscall entry at 0x%llx, region at gpa 0x%llx (%llu KiB)",
		 HW_SYSCALL_GVA, (unsigned long long)hs->region_gpa,
		 (unsigned long long)hs->region_bytes / 1024);
	return 0;
}

void hw_syscall_teardown(struct vm *vm)
{
	struct hw_syscall *hs = &vm->hw_sys;

	if (hs->region)
		munmap(hs->region, hs->region_bytes);
	memset(hs, 0, sizeof(*hs));
}

/* ---- item 3 ----------------------------------------------------------------- */

/*
 * Store `val` at guest-physical `gpa` with the vCPU, so that KVM's write
 * tracking sees it: finish the pending exit, then run the store stub on
 * the store root with interrupts off, and put every register back. Only
 * from 64-bit code at CPL0 (an LSTAR write is). False if the vCPU did
 * anything but the stub's `out`; the guest state is restored either way
 * (KVM_SET_REGS/SREGS: the sync regs in kvm_run then hold the stub's, so
 * nothing may read them before the next exit, and none is marked dirty).
 */
static bool store_by_vcpu(struct vm *vm, u64 gpa, u64 val)
{
	struct hw_syscall *hs = &vm->hw_sys;
	struct kvm_run *run = vm->run;
	u64 stub_end = hw_region_stub_end(hs->region_gpa);
	struct kvm_regs saved, regs;
	struct kvm_sregs ssaved, sregs;
	bool ok = false;

	run->immediate_exit = 1;
	if (ioctl(vm->vcpu_fd, KVM_RUN, 0) == 0 || errno != EINTR) {
		run->immediate_exit = 0;
		return false;
	}
	run->immediate_exit = 0;
	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &saved) < 0 ||
	    ioctl(vm->vcpu_fd, KVM_GET_SREGS, &ssaved) < 0)
		return false;
	if (!(ssaved.efer & EFER_LMA) || !ssaved.cs.l || ssaved.cs.dpl != 0)
		return false;
	regs = saved;
	sregs = ssaved;
	sregs.cr3 = hw_region_store_root(hs->region_gpa);
	regs.rip = hw_region_stub(hs->region_gpa);
	regs.rax = val;
	regs.rdi = gpa;
	regs.rflags = RFLAGS_FIXED; /* IF = 0: no interrupt while on the store root */
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) == 0 &&
	    ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) == 0) {
		for (unsigned tries = 0; tries < 100; tries++) {
			if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
				if (errno == EINTR || errno == EAGAIN)
					continue;
				break;
			}
			/* KVM may report the `out` before or after its RIP moved past it. */
			ok = run->exit_reason == KVM_EXIT_IO && run->io.port == HW_SYSCALL_PORT &&
			     (run->s.regs.regs.rip == stub_end ||
			      run->s.regs.regs.rip == stub_end - 2); /* `out` is 2 bytes */
			break;
		}
	}
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &ssaved) < 0 ||
	    ioctl(vm->vcpu_fd, KVM_SET_REGS, &saved) < 0)
		return false;
	return ok;
}

/*
 * The guest wrote LSTAR while on the root in CR3: give that root the
 * slot entry, unless it has it. False if the VM was stopped.
 */
static bool install_in_root(struct vm *vm)
{
	const struct kvm_sregs *s = &vm->run->s.regs.sregs;
	u64 root = s->cr3 & PTE_ADDR_MASK(X86_MAXPHYADDR_MAX);
	u64 slot_gpa = root + HW_SYSCALL_SLOT * 8;
	const u64 *e;

	if (!(s->efer & EFER_LMA) || !(s->cr0 & CR0_PG))
		return true; /* not in long mode yet: the write that matters comes later */
	if (s->cr4 & CR4_LA57) {
		vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
			"hw mode on this host: 5-level paging is on, and the syscall entry needs "
			"4-level tables");
		return false;
	}
	e = gpa_to_hva(&vm->mem, gpa(slot_gpa), sizeof(*e));
	if (!e) {
		vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
			"hw mode on this host: the guest's root table at 0x%llx is not in its RAM",
			(unsigned long long)root);
		return false;
	}
	if (*e == hw_region_slot_entry(false) || *e == hw_region_slot_entry(true))
		return true;
	if (*e & PTE_P) {
		vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
			"hw mode on this host: the guest maps PML4 slot %u (0x%016llx, entry "
			"0x%llx in the root at 0x%llx), which the syscall entry needs",
			HW_SYSCALL_SLOT, HW_SYSCALL_GVA, (unsigned long long)*e,
			(unsigned long long)root);
		return false;
	}
	if (!store_by_vcpu(vm, slot_gpa, hw_region_slot_entry(s->efer & EFER_NXE))) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"hw mode: storing the syscall entry's PML4 entry with the vCPU failed");
		return false;
	}
	return true;
}

/* ---- item 2 ----------------------------------------------------------------- */

bool hw_syscall_msr_exit(struct vm *vm)
{
	struct hw_syscall *hs = &vm->hw_sys;
	struct kvm_run *run = vm->run;
	u32 index = run->msr.index;
	u64 v = run->msr.data;

	run->msr.error = 0;
	if (run->exit_reason == KVM_EXIT_X86_RDMSR) {
		if (index == EMU_MSR_LSTAR)
			run->msr.data = hs->lstar;
		else
			run->msr.error = 1; /* the filter sends no other read */
		return true;
	}
	switch (index) {
	case EMU_MSR_STAR:
	case EMU_MSR_SFMASK:
		/* KVM keeps the real ones (its emulator's compatibility-mode syscall uses them). */
		if (!vcpu_msr(vm, KVM_SET_MSRS, index, &v)) {
			run->msr.error = 1; /* #GP, as KVM would have raised */
			return true;
		}
		*(index == EMU_MSR_STAR ? &hs->star : &hs->sfmask) = v;
		return true;
	case EMU_MSR_LSTAR:
		if (!emu_is_canonical(v)) {
			run->msr.error = 1;
			return true;
		}
		hs->lstar = v;
		return install_in_root(vm);
	default: run->msr.error = 1; return true;
	}
}

/* ---- item 4 ----------------------------------------------------------------- */

bool hw_syscall_mmio_exit(struct vm *vm)
{
	struct kvm_run *run = vm->run;
	struct emu_report rep;

	/* KVM has finished the store: RIP is past it, and nothing is left to complete. */
	if (!vm->hw_sys.on || run->mmio.phys_addr != hw_region_mmio_gpa(vm->hw_sys.region_gpa) ||
	    !run->mmio.is_write || (run->s.regs.sregs.cs.selector & 3) != 3 ||
	    run->s.regs.regs.rip != HW_SYSCALL_GVA + HW_SYSCALL_ENTRY_LEN)
		return false; /* someone else's access there: an unknown MMIO address */
	vm->stats.syscalls++;
	switch (vmm_emulate_syscall_entry(vm, &rep)) {
	case EMU_DONE: return true;
	case EMU_TRIPLE_FAULT:
		vm_kill(vm, UMBRA_EXIT_TRIPLE_FAULT,
			"guest triple fault delivering #UD for a syscall at rip 0x%llx",
			(unsigned long long)run->s.regs.regs.rcx - 2);
		return true;
	default:
		vm_kill(vm, UMBRA_EXIT_EMULATION,
			"hw mode: the syscall at rip 0x%llx could not be entered",
			(unsigned long long)run->s.regs.regs.rcx - 2);
		return true;
	}
}
