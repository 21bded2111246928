/* SPDX-License-Identifier: MIT */
/*
 * Shadow mode's MSRs beyond those struct emu_cpu holds (vmm/shadow_msr.c):
 * a snapshot of the host vCPU's values taken once at VM start, served as
 * virtual MSRs from then on, so rdmsr/wrmsr never cost an ioctl on the trap
 * path. The policy, MSR by MSR, is the table in shadow_msr.c.
 */
#ifndef UMBRA_VMM_SHADOW_MSR_H
#define UMBRA_VMM_SHADOW_MSR_H

#include "decode/emulate.h"
#include "umbra/types.h"

struct vm;

#define MSR_IA32_APIC_BASE	0x1bu
#define MSR_IA32_BIOS_SIGN_ID	0x8bu
#define MSR_IA32_SPEC_CTRL	0x48u
#define MSR_IA32_PRED_CMD	0x49u
#define MSR_IA32_ARCH_CAPS	0x10au
#define MSR_IA32_FLUSH_CMD	0x10bu
#define MSR_IA32_MTRRCAP	0xfeu
#define MSR_IA32_MISC_ENABLE	0x1a0u
#define MSR_IA32_MTRR_DEF_TYPE	0x2ffu
#define MSR_IA32_TSC_ADJUST	0x3bu
#define MSR_K7_HWCR		0xc0010015u
#define MSR_IA32_MCG_CAP	0x179u
#define MSR_IA32_MCG_STATUS	0x17au
#define MSR_IA32_MCG_CTL	0x17bu
#define MSR_IA32_MC0_CTL	0x400u /* bank i: CTL, STATUS, ADDR, MISC at 0x400 + 4i */
#define MSR_KVM_WALL_CLOCK_NEW	0x4b564d00u
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u

/* The MTRRs (SDM Vol. 3A 12.11): PHYSBASEn = 0x200 + 2n, PHYSMASKn = 0x201 + 2n. */
#define MSR_IA32_MTRR_PHYSBASE0	   0x200u
#define MSR_IA32_MTRR_FIX64K_00000 0x250u
#define MSR_IA32_MTRR_FIX16K_80000 0x258u
#define MSR_IA32_MTRR_FIX16K_A0000 0x259u
#define MSR_IA32_MTRR_FIX4K_C0000  0x268u
#define MSR_IA32_MTRR_FIX4K_F8000  0x26fu

/* MTRRCAP: VCNT (the variable-range count) in bits 7:0, FIX (fixed ranges) bit 8. */
#define MTRRCAP_VCNT_MASK 0xffull
#define MTRRCAP_FIX	  (1ull << 8)

/*
 * The variable-range pairs shadow mode keeps. With a VCNT above this (KVM
 * gives 8), only the first SHADOW_MTRR_NVAR pairs exist and the others are
 * #GP(0); MTRRCAP still reads as snapshotted.
 */
#define SHADOW_MTRR_NVAR 16u
/* The 11 fixed-range MTRRs: FIX64K_00000, FIX16K_80000/A0000, FIX4K_C0000..F8000. */
#define SHADOW_MTRR_NFIX 11u

/* MCG_CAP: the bank count in bits 7:0, MCG_CTL present with CTL_P, bit 8 (SDM Vol. 3B §16.3.1). */
#define MCG_CAP_COUNT_MASK 0xffull
#define MCG_CAP_CTL_P	   (1ull << 8)
/* The banks shadow mode keeps: KVM's KVM_MAX_MCE_BANKS. More are #GP(0). */
#define SHADOW_MCE_BANKS 32u

#define APIC_BASE_BSP  (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN   (1ull << 11)

/* One virtual MSR: `present` iff KVM gave it a value at the snapshot. */
struct shadow_msr_val {
	bool present;
	u64 value;
};

struct shadow_msrs {
	struct shadow_msr_val apic_base, mtrrcap, misc_enable, mtrr_def_type, bios_sign_id;
	struct shadow_msr_val spec_ctrl, arch_caps, tsc_adjust, hwcr;
	/* kvmclock's, present when the guest's CPUID offers it (struct vm's kvm_clock). */
	struct shadow_msr_val kvm_wall_clock, kvm_system_time;
	/*
	 * The MTRRs, not snapshotted (0, as KVM gives a fresh vCPU) but present
	 * as MTRRCAP says: mtrr_var[n] = { PHYSBASEn, PHYSMASKn } for n < VCNT
	 * (and < SHADOW_MTRR_NVAR), mtrr_fix[] in MSR order if FIX is set; none
	 * without MTRRCAP.
	 */
	u64 mtrr_var[SHADOW_MTRR_NVAR][2];
	u64 mtrr_fix[SHADOW_MTRR_NFIX];
	/*
	 * Machine check (SDM Vol. 3B §16.3), snapshotted: MCG_CAP (read-only),
	 * MCG_STATUS, MCG_CTL if MCG_CAP.CTL_P, and the banks' CTL, STATUS,
	 * ADDR and MISC for i < MCG_CAP.COUNT (and < SHADOW_MCE_BANKS), as KVM
	 * keeps them: nothing ever raises a machine check in them.
	 */
	struct shadow_msr_val mcg_cap, mcg_status, mcg_ctl;
	u64 mce_banks[SHADOW_MCE_BANKS * 4];
};

/*
 * Take the snapshot with KVM_GET_MSRS (set-up only, never on the trap
 * path). An MSR KVM refuses is left absent: the guest's rdmsr of it is
 * #GP(0), as with every MSR not in the table. Returns 0 or UMBRA_EXIT_*.
 */
int shadow_msr_snapshot(struct vm *vm, struct shadow_msrs *m) __must_check;

/* What the policy makes of one access (shadow_msr_policy). */
enum shadow_msr_result {
	SHADOW_MSR_OK,	    /* read (*value set) or written */
	SHADOW_MSR_GP,	    /* not in the table, absent, or a refused value: #GP(0) */
	SHADOW_MSR_STOP,    /* a write shadow mode cannot honour: the VM must stop */
	SHADOW_MSR_FORWARD, /* a write KVM must see (kvmclock's): `m` holds it already */
};

/*
 * The policy of the table in shadow_msr.c, on the snapshot `m` alone (no
 * ioctl, no struct vm): `maxphyaddr` is the guest's physical-address width
 * (the reserved bits of APIC_BASE and the MTRRs). A kept write (MTRR_DEF_TYPE,
 * SPEC_CTRL, the MTRRs) updates `m`; on SHADOW_MSR_STOP, `m` is unchanged.
 */
enum shadow_msr_result shadow_msr_policy(struct shadow_msrs *m, unsigned maxphyaddr, u32 index,
					 bool write, u64 *value);

/*
 * The emulator's ops->msr in shadow mode (decode/emulate.h). A write the
 * policy cannot honour stops the VM with a message naming the MSR and the
 * values, and returns EMU_MSR_HOST_ERROR.
 */
enum emu_msr_result shadow_msr_access(struct vm *vm, u32 index, bool write, u64 *value);

/* The guest-physical LAPIC page the snapshot names (APIC_BASE, else the reset 0xfee00000). */
u64 shadow_msr_apic_gpa(const struct shadow_msrs *m);

#endif /* UMBRA_VMM_SHADOW_MSR_H */
