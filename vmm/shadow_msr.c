// SPDX-License-Identifier: MIT
/*
 * Shadow mode's virtual MSRs (vmm/shadow_msr.h).
 *
 * The guest kernel runs at real CPL3, so every rdmsr/wrmsr traps (#GP) and
 * is emulated. The MSRs struct emu_cpu holds (EFER, the syscall MSRs, the
 * segment bases, PAT, TSC_AUX: decode/emulate.h, emu_msr_index) never get
 * here. For the others, forwarding to KVM would cost a KVM_GET/SET_MSRS
 * ioctl per access on the trap path (HOST.md: ~5 us each, and the trap path
 * makes no ioctl but KVM_RUN), so the few a kernel reads are snapshotted
 * from the vCPU once, at set-up, and served from here:
 *
 *   MSR                    read            write
 *   ---------------------  --------------  ---------------------------------------
 *   IA32_APIC_BASE  0x1b   the snapshot    reserved bits set: #GP(0); the same
 *                                          base, EN and EXTD: accepted (BSP is
 *                                          kept as snapshotted); any other value:
 *                                          the VM stops (LIMITATION: KVM's LAPIC
 *                                          cannot be moved, disabled or switched
 *                                          to x2APIC without an ioctl)
 *   IA32_MTRRCAP    0xfe   the snapshot    #GP(0) (read-only, SDM Vol. 4 2-2)
 *   IA32_MISC_ENABLE 0x1a0 the snapshot    the snapshot's value: accepted; any
 *                                          other: the VM stops (LIMITATION)
 *   IA32_MTRR_DEF_TYPE 0x2ff the last     reserved bits or an undefined type:
 *                          value written   #GP(0); else kept (LIMITATION: memory
 *                          (first: the     types are not applied; guest RAM is the
 *                          snapshot)       host's write-back memory)
 *   IA32_MTRR_PHYSBASEn    0 (as KVM       a type not UC/WC/WT/WP/WB, or bits 11:8
 *    0x200 + 2n            gives a fresh   or from MAXPHYADDR up set: #GP(0); else
 *   IA32_MTRR_PHYSMASKn    vCPU; not       kept (LIMITATION as for MTRR_DEF_TYPE);
 *    0x201 + 2n            snapshotted),   PHYSMASK: bits 10:0 (11 is V) or from
 *    (n < MTRRCAP.VCNT     then the last   MAXPHYADDR up set: #GP(0); else kept
 *    and n < 16)           value written
 *   IA32_MTRR_FIX64K_00000 0x250, FIX16K_80000 0x258, FIX16K_A0000 0x259,
 *   FIX4K_C0000..FIX4K_F8000 0x268-0x26f (if MTRRCAP.FIX):
 *                          the same        a byte that is not a valid type: #GP(0);
 *                                          else kept (LIMITATION as above)
 *   IA32_BIOS_SIGN_ID 0x8b the snapshot    accepted and ignored (Linux writes 0
 *                          (microcode      before reading the revision back)
 *                          revision)
 *   IA32_SPEC_CTRL  0x48   the last value  kept (LIMITATION: not applied to the
 *                          written         real vCPU; the host's own mitigations
 *                                          stay in force)
 *   IA32_PRED_CMD   0x49   #GP(0) (write-  0 or 1 (IBPB) accepted, nothing done
 *   IA32_FLUSH_CMD  0x10b  only)           (the same, L1D flush)
 *   IA32_ARCH_CAPABILITIES 0x10a the snapshot  #GP(0) (read-only)
 *   IA32_TSC        0x10   the vCPU's TSC  #GP(0) (LIMITATION: a kernel that
 *                          (KVM_GET_MSRS), writes it is not supported)
 *                          also for an emulated rdtsc (the guest's CR4.TSD)
 *   MSR_KVM_WALL_CLOCK_NEW the last value  forwarded to KVM (KVM_SET_MSRS), which
 *    0x4b564d00            written (first  writes its wall-clock structure into
 *   MSR_KVM_SYSTEM_TIME_NEW  0)            guest RAM (the same gpa in its VM)
 *    0x4b564d01                            and keeps the pvclock page there up
 *                                          to date: kvmclock, present only when
 *                                          the guest's CPUID offers it (vmm/
 *                                          cpu_features.h); refused: #GP(0)
 *   IA32_TSC_ADJUST 0x3b   the snapshot,   kept, and forwarded to KVM, which moves
 *                          then the last   the vCPU's TSC by the difference (SDM
 *                          value written   Vol. 3B §18.17.3); present where KVM has it
 *   HWCR      0xc0010015   the snapshot    forwarded to KVM, which takes only the
 *   (AMD's)                (TscFreqSel set bits it implements (McStatusWrEn,
 *                          by vcpu.c),     TscFreqSel); refused: #GP(0). Linux
 *                          then the last   reads it on family 10h and later and
 *                          value written   warns without TscFreqSel
 *   IA32_MCG_CAP    0x179  the snapshot    #GP(0) (read-only)
 *   IA32_MCG_STATUS 0x17a  the snapshot,   kept (KVM's rule; Linux writes 0)
 *                          then the last
 *                          value written
 *   IA32_MCG_CTL    0x17b  the same, if MCG_CAP.CTL_P: 0 or all ones, else #GP(0)
 *   IA32_MCi_CTL    0x400+4i  the          0 or all ones (bits 10 and 0 may be
 *   IA32_MCi_STATUS 0x401+4i  snapshot,    clear, as KVM allows); STATUS 0 only;
 *   IA32_MCi_ADDR   0x402+4i  then the     ADDR, MISC: kept; for i < MCG_CAP's
 *   IA32_MCi_MISC   0x403+4i  last written count (and < 32), else #GP(0). Linux
 *                                          with MCE (Debian's 686-pae) reads them
 *                                          all at boot, and panics on a #GP there
 *   anything else          #GP(0)          #GP(0)
 *
 * An MSR KVM would not give at the snapshot is absent: #GP(0) like the rest.
 * The MTRRs exist only as MTRRCAP announces them: with MTRRCAP absent, or an
 * n >= VCNT, or the fixed ones with FIX clear, they are #GP(0) too. Shadow
 * mode keeps at most 16 variable-range pairs (SHADOW_MTRR_NVAR; KVM has 8).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "umbra/log.h"
#include "vmm/exitcode.h"
#include "vmm/shadow_mode.h"
#include "vmm/shadow_msr.h"
#include "vmm/vm.h"

#define APIC_BASE_DEFAULT 0xfee00000ull
/* MTRR_DEF_TYPE: type in bits 7:0, FE bit 10, E bit 11; the rest is reserved. */
#define MTRR_DEF_TYPE_VALID_MASK 0xcffull
/* PHYSBASE: type in bits 7:0, 11:8 reserved; PHYSMASK: V bit 11, 10:0 reserved. */
#define MTRR_PHYSBASE_RSVD 0xf00ull
#define MTRR_PHYSMASK_RSVD 0x7ffull

/* One MSR from the vCPU for the snapshot; false if KVM does not know it. */
static bool get_one(struct vm *vm, u32 index, struct shadow_msr_val *out)
{
	out->value = 0;
	out->present = vcpu_msr(vm, KVM_GET_MSRS, index, &out->value);
	if (!out->present)
		out->value = 0;
	return out->present;
}

/* The machine-check banks the snapshot's MCG_CAP announces, as far as shadow mode keeps them. */
static unsigned mce_bank_count(const struct shadow_msrs *m)
{
	return m->mcg_cap.present
		       ? MIN((unsigned)(m->mcg_cap.value & MCG_CAP_COUNT_MASK), SHADOW_MCE_BANKS)
		       : 0;
}

int shadow_msr_snapshot(struct vm *vm, struct shadow_msrs *m)
{
	memset(m, 0, sizeof(*m));
	get_one(vm, MSR_IA32_MTRRCAP, &m->mtrrcap);
	get_one(vm, MSR_IA32_MISC_ENABLE, &m->misc_enable);
	get_one(vm, MSR_IA32_MTRR_DEF_TYPE, &m->mtrr_def_type);
	get_one(vm, MSR_IA32_BIOS_SIGN_ID, &m->bios_sign_id);
	get_one(vm, MSR_IA32_SPEC_CTRL, &m->spec_ctrl);
	get_one(vm, MSR_IA32_ARCH_CAPS, &m->arch_caps);
	get_one(vm, MSR_IA32_TSC_ADJUST, &m->tsc_adjust);
	get_one(vm, MSR_K7_HWCR, &m->hwcr);
	if (get_one(vm, MSR_IA32_MCG_CAP, &m->mcg_cap)) {
		get_one(vm, MSR_IA32_MCG_STATUS, &m->mcg_status);
		if (m->mcg_cap.value & MCG_CAP_CTL_P)
			get_one(vm, MSR_IA32_MCG_CTL, &m->mcg_ctl);
		for (unsigned i = 0; i < mce_bank_count(m) * 4; i++) {
			struct shadow_msr_val v;

			get_one(vm, MSR_IA32_MC0_CTL + i, &v);
			m->mce_banks[i] = v.value;
		}
	}
	/* Not read from KVM: 0 until the guest writes them, as on a fresh vCPU. */
	m->kvm_wall_clock.present = m->kvm_system_time.present = vm->kvm_clock;
	/* The in-kernel LAPIC always has an APIC_BASE; without it nothing works. */
	if (!get_one(vm, MSR_IA32_APIC_BASE, &m->apic_base)) {
		pr_err("KVM_GET_MSRS(IA32_APIC_BASE) at shadow-mode set-up: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	return 0;
}

u64 shadow_msr_apic_gpa(const struct shadow_msrs *m)
{
	return m->apic_base.present ? m->apic_base.value & ~0xfffull : APIC_BASE_DEFAULT;
}

static bool valid_mtrr_type(u64 t)
{
	return t == 0 || t == 1 || t == 4 || t == 5 || t == 6; /* UC WC WT WP WB */
}

/* The virtual MSR `index` names in `m`, or NULL if it is not in the table. */
static struct shadow_msr_val *msr_slot(struct shadow_msrs *m, u32 index)
{
	switch (index) {
	case MSR_IA32_APIC_BASE: return &m->apic_base;
	case MSR_IA32_MTRRCAP: return &m->mtrrcap;
	case MSR_IA32_MISC_ENABLE: return &m->misc_enable;
	case MSR_IA32_MTRR_DEF_TYPE: return &m->mtrr_def_type;
	case MSR_IA32_BIOS_SIGN_ID: return &m->bios_sign_id;
	case MSR_IA32_SPEC_CTRL: return &m->spec_ctrl;
	case MSR_IA32_ARCH_CAPS: return &m->arch_caps;
	case MSR_IA32_TSC_ADJUST: return &m->tsc_adjust;
	case MSR_K7_HWCR: return &m->hwcr;
	case MSR_IA32_MCG_CAP: return &m->mcg_cap;
	case MSR_IA32_MCG_STATUS: return &m->mcg_status;
	case MSR_IA32_MCG_CTL: return &m->mcg_ctl;
	case MSR_KVM_WALL_CLOCK_NEW: return &m->kvm_wall_clock;
	case MSR_KVM_SYSTEM_TIME_NEW: return &m->kvm_system_time;
	default: return NULL;
	}
}

enum mtrr_kind { MTRR_PHYSBASE, MTRR_PHYSMASK, MTRR_FIXED };

/* The MTRR `index` names in `m` if MTRRCAP announces it (its kind in `*kind`), else NULL. */
static u64 *mtrr_slot(struct shadow_msrs *m, u32 index, enum mtrr_kind *kind)
{
	u64 cap = m->mtrrcap.value;
	unsigned fix;

	if (!m->mtrrcap.present)
		return NULL;
	if (index >= MSR_IA32_MTRR_PHYSBASE0 &&
	    index < MSR_IA32_MTRR_PHYSBASE0 + 2 * SHADOW_MTRR_NVAR) {
		u32 n = (index - MSR_IA32_MTRR_PHYSBASE0) / 2;

		if (n >= (cap & MTRRCAP_VCNT_MASK))
			return NULL;
		*kind = index & 1 ? MTRR_PHYSMASK : MTRR_PHYSBASE;
		return &m->mtrr_var[n][index & 1];
	}
	if (!(cap & MTRRCAP_FIX))
		return NULL;
	switch (index) {
	case MSR_IA32_MTRR_FIX64K_00000: fix = 0; break;
	case MSR_IA32_MTRR_FIX16K_80000: fix = 1; break;
	case MSR_IA32_MTRR_FIX16K_A0000: fix = 2; break;
	default:
		if (index < MSR_IA32_MTRR_FIX4K_C0000 || index > MSR_IA32_MTRR_FIX4K_F8000)
			return NULL;
		fix = 3 + (index - MSR_IA32_MTRR_FIX4K_C0000);
		break;
	}
	*kind = MTRR_FIXED;
	return &m->mtrr_fix[fix];
}

/* Whether the SDM lets an MTRR of `kind` hold `v` (Vol. 3A 12.11.2.3, 12.11.2.2). */
static bool mtrr_value_ok(enum mtrr_kind kind, unsigned maxphyaddr, u64 v)
{
	u64 above_pa = maxphyaddr < 64 ? ~0ull << maxphyaddr : 0;

	switch (kind) {
	case MTRR_PHYSBASE:
		return !(v & (MTRR_PHYSBASE_RSVD | above_pa)) && valid_mtrr_type(v & 0xff);
	case MTRR_PHYSMASK: return !(v & (MTRR_PHYSMASK_RSVD | above_pa));
	case MTRR_FIXED:
		for (unsigned shift = 0; shift < 64; shift += 8)
			if (!valid_mtrr_type((v >> shift) & 0xff))
				return false;
		return true;
	}
	return false;
}

/* An access to the MTRRs' table rows; #GP(0) for an MSR that is not one MTRRCAP announces. */
static enum shadow_msr_result mtrr_access(struct shadow_msrs *m, unsigned maxphyaddr, u32 index,
					  bool write, u64 *value)
{
	enum mtrr_kind kind;
	u64 *mtrr = mtrr_slot(m, index, &kind);

	if (!mtrr)
		return SHADOW_MSR_GP;
	if (!write) {
		*value = *mtrr;
		return SHADOW_MSR_OK;
	}
	if (!mtrr_value_ok(kind, maxphyaddr, *value))
		return SHADOW_MSR_GP;
	*mtrr = *value;
	return SHADOW_MSR_OK;
}

/* IA32_MCi_*: bank i < MCG_CAP's count, with KVM's write rules (arch/x86/kvm/x86.c set_msr_mce). */
static enum shadow_msr_result mce_bank_access(struct shadow_msrs *m, u32 index, bool write,
					      u64 *value)
{
	u32 off = index - MSR_IA32_MC0_CTL; /* the caller checked index >= MC0_CTL */

	if (off >= mce_bank_count(m) * 4)
		return SHADOW_MSR_GP;
	if (!write) {
		*value = m->mce_banks[off];
		return SHADOW_MSR_OK;
	}
	/* CTL: 0 or all ones, but for bits 10 (Linux on K8s) and 0 (UnixWare); STATUS: 0. */
	if ((off % 4 == 0 && *value && (*value | (1ull << 10) | 1) != ~0ull) ||
	    (off % 4 == 1 && *value))
		return SHADOW_MSR_GP;
	m->mce_banks[off] = *value;
	return SHADOW_MSR_OK;
}

/* A write that keeps `v` equal to the snapshot `old` in `keep`; else stop (LIMITATION). */
static enum shadow_msr_result write_same(u64 old, u64 v, u64 keep)
{
	return (old ^ v) & keep ? SHADOW_MSR_STOP : SHADOW_MSR_OK;
}

enum shadow_msr_result shadow_msr_policy(struct shadow_msrs *m, unsigned maxphyaddr, u32 index,
					 bool write, u64 *value)
{
	struct shadow_msr_val *reg = msr_slot(m, index);

	/* The write-only command MSRs: a barrier or flush the host's own VM exit covers. */
	if (index == MSR_IA32_PRED_CMD || index == MSR_IA32_FLUSH_CMD)
		return write && *value <= 1 ? SHADOW_MSR_OK : SHADOW_MSR_GP;
	if (!reg && index >= MSR_IA32_MC0_CTL && index < MSR_IA32_MC0_CTL + SHADOW_MCE_BANKS * 4)
		return mce_bank_access(m, index, write, value);
	if (!reg)
		return mtrr_access(m, maxphyaddr, index, write, value);
	if (!reg->present)
		return SHADOW_MSR_GP;
	if (!write) {
		*value = reg->value;
		return SHADOW_MSR_OK;
	}
	switch (index) {
	case MSR_IA32_APIC_BASE: {
		/* Bits 0-7 and 9 are reserved, and every bit from MAXPHYADDR up. */
		u64 rsvd = 0x2ffull | (maxphyaddr < 64 ? ~0ull << maxphyaddr : 0);

		if (*value & rsvd)
			return SHADOW_MSR_GP;
		return write_same(reg->value, *value, ~0xfffull | APIC_BASE_EN | APIC_BASE_EXTD);
	}
	case MSR_IA32_MISC_ENABLE: return write_same(reg->value, *value, ~0ull);
	case MSR_IA32_BIOS_SIGN_ID:
		return SHADOW_MSR_OK; /* a write asks the CPU to refresh it: nothing to do */
	case MSR_IA32_SPEC_CTRL:
	case MSR_IA32_MCG_STATUS: reg->value = *value; return SHADOW_MSR_OK;
	case MSR_IA32_MCG_CTL:
		if (*value && *value != ~0ull)
			return SHADOW_MSR_GP;
		reg->value = *value;
		return SHADOW_MSR_OK;
	case MSR_IA32_TSC_ADJUST:
	case MSR_K7_HWCR:
	case MSR_KVM_WALL_CLOCK_NEW:
	case MSR_KVM_SYSTEM_TIME_NEW: reg->value = *value; return SHADOW_MSR_FORWARD;
	case MSR_IA32_MTRR_DEF_TYPE:
		if ((*value & ~MTRR_DEF_TYPE_VALID_MASK) || !valid_mtrr_type(*value & 0xff))
			return SHADOW_MSR_GP;
		reg->value = *value;
		return SHADOW_MSR_OK;
	default: return SHADOW_MSR_GP; /* MTRRCAP and MCG_CAP are read-only */
	}
}

enum emu_msr_result shadow_msr_access(struct vm *vm, u32 index, bool write, u64 *value)
{
	struct shadow_mode *sm = vm->shadow;
	struct shadow_msr_val *reg = msr_slot(&sm->msrs, index),
			      old = reg ? *reg : (struct shadow_msr_val){ 0 };

	/* The TSC moves: read it from the vCPU at the time of the access. */
	if (index == EMU_MSR_TSC && !write)
		return vcpu_msr(vm, KVM_GET_MSRS, index, value) ? EMU_MSR_OK : EMU_MSR_HOST_ERROR;
	switch (shadow_msr_policy(&sm->msrs, sm->cpu.virt.maxphyaddr, index, write, value)) {
	case SHADOW_MSR_OK: return EMU_MSR_OK;
	case SHADOW_MSR_GP: return EMU_MSR_GP;
	case SHADOW_MSR_FORWARD:
		if (vcpu_msr(vm, KVM_SET_MSRS, index, value))
			return EMU_MSR_OK;
		*reg = old;
		return EMU_MSR_GP;
	case SHADOW_MSR_STOP: break;
	}
	vm_kill(vm, UMBRA_EXIT_UNSUPPORTED,
		"shadow mode: wrmsr %s (0x%x) from 0x%llx to 0x%llx at rip 0x%llx: shadow mode "
		"cannot change this MSR (LIMITATION: it is a snapshot of KVM's vCPU)",
		index == MSR_IA32_APIC_BASE ? "IA32_APIC_BASE" : "IA32_MISC_ENABLE", index,
		(unsigned long long)msr_slot(&sm->msrs, index)->value, (unsigned long long)*value,
		(unsigned long long)sm->cpu.rip);
	return EMU_MSR_HOST_ERROR;
}
