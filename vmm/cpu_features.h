/* SPDX-License-Identifier: MIT */
/*
 * --cpu: CPUID features hidden from the guest (vmm/cpu_features.c). Names
 * follow Linux's /proc/cpuinfo flags; each maps to one CPUID leaf,
 * sub-leaf, register and bit. Parsing and masking are pure, for the unit
 * tests; vmm/vcpu.c applies the mask to the CPUID it gives the vCPU.
 */
#ifndef UMBRA_VMM_CPU_FEATURES_H
#define UMBRA_VMM_CPU_FEATURES_H

#include <stddef.h>

#include "umbra/types.h"

#define CPU_FEATURES_MAX 128 /* table entries a cpu_hide can name */

/* The features to hide: bit i is entry i of the table. */
struct cpu_hide {
	u64 bits[CPU_FEATURES_MAX / 64];
};

struct kvm_cpuid_entry2;

/*
 * Add the features of `spec` ("-xsave,-popcnt": a comma-separated list of
 * -NAME) to *h. Returns false with a message naming the bad item in `err`
 * for an unknown name or an item without '-'; *h is then unspecified.
 */
bool cpu_features_parse(const char *spec, struct cpu_hide *h, char *err, size_t errlen);

/* Clear the bits of every hidden feature in the `n` entries (leaf and sub-leaf matched). */
void cpu_features_apply(const struct cpu_hide *h, struct kvm_cpuid_entry2 *entries, u32 n);

/* Is feature `name` hidden by *h (false for an unknown name)? */
bool cpu_features_hidden(const struct cpu_hide *h, const char *name);

/*
 * kvmclock, in both modes: KVM's paravirtual leaves cut to its feature
 * leaf (0x40000001) with only CLOCKSOURCE2, CLOCKSOURCE_STABLE_BIT and
 * NOP_IO_DELAY (as KVM offers them), and CPUID.1:ECX's hypervisor bit set so that a guest
 * looks there. Without a paravirtual clock Linux finds no TSC frequency on
 * an AMD host without HPET or ACPI PM timer (its PIT calibration needs port
 * reads far faster than an exit), marks the TSC unstable and keeps time in
 * jiffies, which fall behind whenever ticks are held or merged. Returns the
 * new number of entries; *clock: kvmclock offered (KVM's signature leaf and
 * CLOCKSOURCE2 were there). `--cpu=-hypervisor` takes it back.
 */
u32 cpu_features_kvm_clock(struct kvm_cpuid_entry2 *entries, u32 nent, bool *clock);

/*
 * Shadow mode's own hiding (vmm/cpu_features.c has the list and why): drop
 * KVM's paravirtual leaves but kvmclock's and clear what shadow mode cannot
 * honour in place. Returns the new number of entries.
 */
u32 cpu_features_hide_for_shadow(struct kvm_cpuid_entry2 *entries, u32 nent);

/*
 * The CR4 bits the CPU these entries describe lets a MOV to CR4 set: each
 * feature's bit where CPUID offers it, and PCE. Shadow mode's emulator
 * raises #GP(0) for the others (emu_virt.cr4_valid), as KVM does from the
 * guest's CPUID in hw mode.
 */
u64 cpu_features_cr4_valid(const struct kvm_cpuid_entry2 *entries, u32 nent);
/* Likewise the EFER bits a WRMSR may set: SCE, NXE, LME/LMA where CPUID offers them. */
u64 cpu_features_efer_valid(const struct kvm_cpuid_entry2 *entries, u32 nent);

/* Room for the CPUID entries KVM gives (KVM_GET_SUPPORTED_CPUID, KVM_GET_CPUID2). */
#define CPUID_MAX_ENTRIES 256

/*
 * What a cpuid of `leaf`, `subleaf` returns on a vCPU with these entries
 * (out[] = EAX, EBX, ECX, EDX), by KVM's rules (kvm_cpuid()): the entry of
 * that leaf, whose subleaf counts only where it is flagged significant; a
 * leaf beyond the highest of its range gives, on Intel (`amd` false), the
 * highest basic leaf's entry as Intel CPUs do, and zeros on AMD; any other
 * missing leaf gives zeros. Shadow mode answers a trapped cpuid with it.
 */
void cpu_features_lookup(const struct kvm_cpuid_entry2 *entries, u32 nent, bool amd, u32 leaf,
			 u32 subleaf, u32 out[4]);

#endif /* UMBRA_VMM_CPU_FEATURES_H */
