// SPDX-License-Identifier: MIT
/* vmm/shadow_debugreg: the guest's hardware breakpoints (shadow_debugreg.h). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "umbra/log.h"
#include "decode/debugreg.h"
#include "shadow/x86.h"
#include "vmm/monitor.h"
#include "vmm/shadow_debugreg.h"
#include "vmm/shadow_mode.h"
#include "vmm/vm.h"

#define DR6_ACTIVE_LOW 0xffff0ff0ull /* DR6 with nothing to report */
#define DR7_FIXED1     0x400ull	     /* bit 10 reads as 1 */
/* The gva hole x86-64 Linux leaves to hypervisors; the monitor lives in it. */
#define HOLE_START 0xffff800000000000ull
#define HOLE_END   0xffff880000000000ull

u64 shadow_dr_real_dr7(const u64 dr[4], u64 dr7)
{
	u64 real = DR7_FIXED1;
	unsigned on = dr7_enabled(dr7);

	for (unsigned n = 0; n < 4; n++) {
		u64 len = dr7_len(dr7, n), start = dr[n] & ~(len - 1);

		if (!(on & (1u << n)) || dr7_rw(dr7, n) == DR7_RW_IO)
			continue;
		if (start < HOLE_END && start + len > HOLE_START)
			continue;
		real |= dr7 & (3ull << (2 * n));	/* Ln, Gn */
		real |= dr7 & (0xfull << (16 + 4 * n)); /* R/Wn, LENn */
	}
	return real;
}

bool shadow_dr_exec_at(const struct vm *vm)
{
	const struct emu_cpu *c = &vm->shadow->cpu;

	return dr_exec_hits(c->virt.dr, c->virt.dr7, c->cs.base + c->rip) != 0;
}

/* Item 1. */
bool shadow_dr_arm(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	const struct emu_virt *v = &sm->cpu.virt;
	struct shadow_dr_state *a = &sm->dr_armed;
	struct kvm_debugregs d;

	if (a->failed || (a->set && a->dr7 == v->dr7 && !memcmp(a->dr, v->dr, sizeof(a->dr))))
		return !a->failed;
	/* Never armed and nothing enabled: the real ones are as KVM reset them. */
	if (!a->set && !dr7_enabled(v->dr7))
		return true;
	memset(&d, 0, sizeof(d));
	memcpy(d.db, v->dr, sizeof(d.db));
	d.dr6 = DR6_ACTIVE_LOW;
	d.dr7 = shadow_dr_real_dr7(v->dr, v->dr7);
	if (ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &d) < 0) {
		pr_warn("shadow mode: KVM_SET_DEBUGREGS failed (%s): the guest's hardware "
			"breakpoints will not fire for code that runs natively",
			strerror(errno));
		a->failed = true;
		return false;
	}
	memcpy(a->dr, v->dr, sizeof(a->dr));
	a->dr7 = v->dr7;
	a->set = true;
	vm->stats.dr_arms++;
	return true;
}

/* Item 2. */
unsigned shadow_dr_hits(struct vm *vm, u64 rip, u64 rflags)
{
	const struct emu_virt *v = &vm->shadow->cpu.virt;
	u64 real7 = shadow_dr_real_dr7(v->dr, v->dr7);
	unsigned on = dr7_enabled(real7), hits = 0;
	struct kvm_debugregs d;

	if (!on)
		return 0;
	if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &d) == 0 && (d.dr6 & DR6_HITS_MASK)) {
		hits = (unsigned)(d.dr6 & DR6_HITS_MASK);
		d.dr6 = DR6_ACTIVE_LOW; /* the CPU leaves B0-B3 set: clear them for the next */
		if (ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &d) < 0)
			pr_warn("shadow mode: KVM_SET_DEBUGREGS (DR6) failed: %s", strerror(errno));
	} else {
		if (!(rflags & RFLAGS_RF))
			hits = dr_exec_hits(v->dr, real7, rip);
		/* Else every enabled data breakpoint; with TF, the #DB is the step's. */
		if (!hits && !(rflags & RFLAGS_TF))
			for (unsigned n = 0; n < 4; n++)
				if ((on & (1u << n)) && dr7_rw(real7, n) != DR7_RW_EXEC)
					hits |= 1u << n;
		vm->stats.dr_hits_inferred += hits != 0;
	}
	vm->stats.dr_hits += hits != 0;
	return hits;
}
