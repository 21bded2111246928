// SPDX-License-Identifier: MIT
/*
 * KVM VM setup (hw mode and the parts both modes share).
 *
 * 1. Open /dev/kvm and check the API version and the capabilities we rely
 *    on; a host without them gets one clear line and UMBRA_EXIT_NO_KVM.
 * 2. Create the VM, the in-kernel irqchip (PIC, IOAPIC, LAPIC) and PIT.
 * 3. Register every memory region as a memslot (the ROM window read-only).
 * Contract: on success vm->kvm_fd and vm->vm_fd are open and owned by the
 * VM; kvm_teardown closes them. No lock is needed: all of this runs on the
 * main thread before the vCPU starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "umbra/log.h"
#include "vmm/exitcode.h"
#include "vmm/vm.h"

#define KVM_DEV_PATH "/dev/kvm"
/* KVM needs three pages of guest-physical space for VMX real-mode support. */
#define KVM_TSS_GPA	     0xfffbd000ull
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ull

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
};

/* Item 1. */
static int open_kvm(struct vm *vm)
{
	int v, sync;

	vm->kvm_fd = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int e = errno;

		pr_err("cannot open %s: %s%s", KVM_DEV_PATH, strerror(e),
		       e == EACCES   ? " (add yourself to the kvm group, or run as root)"
		       : e == ENOENT ? " (this host offers no KVM: umbra needs kvm_intel, "
				       "kvm_amd or kvm_pvm loaded)"
				     : "");
		return UMBRA_EXIT_NO_KVM;
	}
	v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		pr_err("%s speaks KVM API version %d, umbra needs %d", KVM_DEV_PATH, v,
		       KVM_API_VERSION);
		return UMBRA_EXIT_NO_KVM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			pr_err("%s lacks %s, which umbra needs", KVM_DEV_PATH,
			       required_caps[i].name);
			return UMBRA_EXIT_NO_KVM;
		}
	}
	sync = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
	if ((sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) !=
	    (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) {
		pr_err("%s lacks KVM_CAP_SYNC_REGS for registers, which umbra needs", KVM_DEV_PATH);
		return UMBRA_EXIT_NO_KVM;
	}
	return 0;
}

/* Item 3. */
static int add_memslots(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.flags = r->kind == MEM_ROM ? KVM_MEM_READONLY : 0,
			.guest_phys_addr = r->base.v,
			.memory_size = r->size,
			.userspace_addr = (u64)(uintptr_t)r->hva,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			pr_err("KVM_SET_USER_MEMORY_REGION [0x%llx, +0x%llx): %s",
			       (unsigned long long)r->base.v, (unsigned long long)r->size,
			       strerror(errno));
			return UMBRA_EXIT_INTERNAL;
		}
	}
	return 0;
}

/* Item 2. */
int kvm_setup(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	u64 idmap = KVM_IDENTITY_MAP_GPA;
	int r;

	vm->vm_fd = vm->vcpu_fd = -1;
	r = open_kvm(vm);
	if (r)
		return r;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		pr_err("KVM_CREATE_VM: %s", strerror(errno));
		return errno == ENOMEM ? UMBRA_EXIT_INTERNAL : UMBRA_EXIT_NO_KVM;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_GPA) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		pr_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		pr_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return UMBRA_EXIT_NO_KVM;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		pr_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return UMBRA_EXIT_NO_KVM;
	}
	return add_memslots(vm);
}

void kvm_teardown(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}
