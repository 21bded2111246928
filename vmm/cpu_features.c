// SPDX-License-Identifier: MIT
/*
 * --cpu=-NAME[,-NAME...] (vmm/cpu_features.h): the table of feature names
 * (Linux's /proc/cpuinfo spelling) and where CPUID reports each (Intel SDM
 * Vol. 2A CPUID, Tables 3-8 to 3-10; AMD APM Vol. 3 for 0x80000001), the
 * parser, and the mask applied to the guest's CPUID entries.
 *
 * Hiding is literal: dependent features are not hidden with it (hiding
 * xsave leaves avx set; Linux itself drops AVX and friends without XSAVE).
 *
 * LIMITATION: the mask reaches the guest only where KVM intercepts its
 * cpuid. On our PVM hosts (shared/HOST.md) it does not: Debian's kernel in
 * hw mode reported XSAVE, XSAVES and AVX-512 although KVM_GET_SUPPORTED_CPUID
 * lists none of them, and --cpu=-xsaves,-avx512f changed nothing it printed.
 * There the kernel's own noxsave / clearcpuid= are what hide features.
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>

#include "shadow/x86.h"
#include "vmm/cpu_features.h"

enum cpuid_reg { EAX, EBX, ECX, EDX };

struct cpu_feature {
	const char *name;
	u32 leaf, subleaf; /* subleaf is matched only for leaves that have them (7, 0xd) */
	u8 reg;		   /* enum cpuid_reg */
	u8 bit;
};

static const struct cpu_feature features[] = {
	/* CPUID.1:ECX */
	{ "sse3", 1, 0, ECX, 0 },
	{ "pclmulqdq", 1, 0, ECX, 1 },
	{ "monitor", 1, 0, ECX, 3 },
	{ "ssse3", 1, 0, ECX, 9 },
	{ "fma", 1, 0, ECX, 12 },
	{ "cx16", 1, 0, ECX, 13 },
	{ "pcid", 1, 0, ECX, 17 },
	{ "sse4_1", 1, 0, ECX, 19 },
	{ "sse4_2", 1, 0, ECX, 20 },
	{ "x2apic", 1, 0, ECX, 21 },
	{ "movbe", 1, 0, ECX, 22 },
	{ "popcnt", 1, 0, ECX, 23 },
	{ "tsc_deadline_timer", 1, 0, ECX, 24 },
	{ "aes", 1, 0, ECX, 25 },
	{ "xsave", 1, 0, ECX, 26 },
	{ "avx", 1, 0, ECX, 28 },
	{ "f16c", 1, 0, ECX, 29 },
	{ "rdrand", 1, 0, ECX, 30 },
	{ "hypervisor", 1, 0, ECX, 31 },
	/* CPUID.1:EDX */
	{ "pse", 1, 0, EDX, 3 },
	{ "pae", 1, 0, EDX, 6 },
	{ "mce", 1, 0, EDX, 7 },
	{ "pge", 1, 0, EDX, 13 },
	{ "mca", 1, 0, EDX, 14 },
	{ "clflush", 1, 0, EDX, 19 },
	/* CPUID.(7,0):EBX */
	{ "fsgsbase", 7, 0, EBX, 0 },
	{ "bmi1", 7, 0, EBX, 3 },
	{ "hle", 7, 0, EBX, 4 },
	{ "avx2", 7, 0, EBX, 5 },
	{ "smep", 7, 0, EBX, 7 },
	{ "bmi2", 7, 0, EBX, 8 },
	{ "erms", 7, 0, EBX, 9 },
	{ "invpcid", 7, 0, EBX, 10 },
	{ "rtm", 7, 0, EBX, 11 },
	{ "avx512f", 7, 0, EBX, 16 },
	{ "avx512dq", 7, 0, EBX, 17 },
	{ "rdseed", 7, 0, EBX, 18 },
	{ "adx", 7, 0, EBX, 19 },
	{ "smap", 7, 0, EBX, 20 },
	{ "avx512ifma", 7, 0, EBX, 21 },
	{ "clflushopt", 7, 0, EBX, 23 },
	{ "clwb", 7, 0, EBX, 24 },
	{ "avx512cd", 7, 0, EBX, 28 },
	{ "sha_ni", 7, 0, EBX, 29 },
	{ "avx512bw", 7, 0, EBX, 30 },
	{ "avx512vl", 7, 0, EBX, 31 },
	/* CPUID.(7,0):ECX */
	{ "avx512vbmi", 7, 0, ECX, 1 },
	{ "umip", 7, 0, ECX, 2 },
	{ "pku", 7, 0, ECX, 3 },
	{ "waitpkg", 7, 0, ECX, 5 },
	{ "avx512_vbmi2", 7, 0, ECX, 6 },
	{ "gfni", 7, 0, ECX, 8 },
	{ "vaes", 7, 0, ECX, 9 },
	{ "vpclmulqdq", 7, 0, ECX, 10 },
	{ "avx512_vnni", 7, 0, ECX, 11 },
	{ "avx512_bitalg", 7, 0, ECX, 12 },
	{ "avx512_vpopcntdq", 7, 0, ECX, 14 },
	{ "la57", 7, 0, ECX, 16 },
	{ "rdpid", 7, 0, ECX, 22 },
	{ "movdiri", 7, 0, ECX, 27 },
	{ "movdir64b", 7, 0, ECX, 28 },
	/* CPUID.(7,0):EDX */
	{ "fsrm", 7, 0, EDX, 4 },
	{ "serialize", 7, 0, EDX, 14 },
	/* CPUID.(0xd,1):EAX */
	{ "xsaveopt", 0xd, 1, EAX, 0 },
	{ "xsavec", 0xd, 1, EAX, 1 },
	{ "xgetbv1", 0xd, 1, EAX, 2 },
	{ "xsaves", 0xd, 1, EAX, 3 },
	/* CPUID.0x80000001:ECX, EDX */
	{ "lahf_lm", 0x80000001u, 0, ECX, 0 },
	{ "abm", 0x80000001u, 0, ECX, 5 },
	{ "3dnowprefetch", 0x80000001u, 0, ECX, 8 },
	{ "pdpe1gb", 0x80000001u, 0, EDX, 26 },
	{ "rdtscp", 0x80000001u, 0, EDX, 27 },
	/* Long mode: hidden, EFER.LME is reserved (cpu_features_efer_valid); a 32-bit guest then
	   stays out of IA-32e mode (memtest86+'s ia32 image takes PAE paging instead). */
	{ "lm", 0x80000001u, 0, EDX, 29 },
};

#define NFEATURES (sizeof(features) / sizeof(features[0]))
_Static_assert(NFEATURES <= CPU_FEATURES_MAX, "struct cpu_hide is too small for the table");

static int lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < NFEATURES; i++)
		if (strlen(features[i].name) == len && !strncmp(features[i].name, name, len))
			return (int)i;
	return -1;
}

bool cpu_features_parse(const char *spec, struct cpu_hide *h, char *err, size_t errlen)
{
	const char *p = spec;

	for (;;) {
		size_t len = strcspn(p, ",");
		int i;

		if (len < 2 || p[0] != '-') {
			snprintf(err, errlen,
				 "--cpu: '%.*s' in '%s' is not -NAME (only hiding features is "
				 "supported, e.g. --cpu=-xsave,-popcnt)",
				 (int)len, p, spec);
			return false;
		}
		i = lookup(p + 1, len - 1);
		if (i < 0) {
			snprintf(err, errlen,
				 "--cpu: unknown feature '%.*s' in '%s' (names as in "
				 "/proc/cpuinfo; see vmm/cpu_features.c)",
				 (int)(len - 1), p + 1, spec);
			return false;
		}
		h->bits[i / 64] |= 1ull << (i % 64);
		if (!p[len])
			return true;
		p += len + 1;
	}
}

static bool is_hidden(const struct cpu_hide *h, size_t i)
{
	return h->bits[i / 64] & (1ull << (i % 64));
}

bool cpu_features_hidden(const struct cpu_hide *h, const char *name)
{
	int i = lookup(name, strlen(name));

	return i >= 0 && is_hidden(h, (size_t)i);
}

/* Whether entry `e` is the leaf (and sub-leaf, for 7 and 0xd) that holds feature `f`. */
static bool entry_is(const struct kvm_cpuid_entry2 *e, const struct cpu_feature *f)
{
	bool has_subleaves = f->leaf == 7 || f->leaf == 0xd;

	return e->function == f->leaf && (!has_subleaves || e->index == f->subleaf);
}

void cpu_features_apply(const struct cpu_hide *h, struct kvm_cpuid_entry2 *entries, u32 n)
{
	for (size_t i = 0; i < NFEATURES; i++) {
		const struct cpu_feature *f = &features[i];

		if (!is_hidden(h, i))
			continue;
		for (u32 k = 0; k < n; k++) {
			struct kvm_cpuid_entry2 *e = &entries[k];
			u32 *regs[] = { &e->eax, &e->ebx, &e->ecx, &e->edx };

			if (entry_is(e, f))
				*regs[f->reg] &= ~(1u << f->bit);
		}
	}
}

#define CPUID_KVM_LEAF_LAST	     0x400000ffu
#define CPUID_1_ECX_HYPERVISOR	     (1u << 31)
#define CPUID_KVM_SIGNATURE	     0x40000000u
#define CPUID_KVM_FEATURES	     0x40000001u
#define KVM_FEATURE_NOP_IO_DELAY     (1u << 1)
#define KVM_FEATURE_CLOCKSOURCE2     (1u << 3)
#define KVM_FEATURE_CLOCK_STABLE_BIT (1u << 24)
/*
 * What the guest may see of KVM's features: kvmclock, and NOP_IO_DELAY (a
 * promise that no port needs the delay of a write to port 0x80, true of
 * every device here; Linux then skips those writes, each an exit to the
 * VMM: two per PIT tick when the PIT drives Linux's ticks).
 */
#define KVM_FEATURES_KEPT \
	(KVM_FEATURE_NOP_IO_DELAY | KVM_FEATURE_CLOCKSOURCE2 | KVM_FEATURE_CLOCK_STABLE_BIT)

u32 cpu_features_kvm_clock(struct kvm_cpuid_entry2 *entries, u32 nent, bool *clock)
{
	bool signature = false;
	u32 n = 0;

	*clock = false;
	for (u32 i = 0; i < nent; i++)
		if (entries[i].function == CPUID_KVM_SIGNATURE &&
		    entries[i].eax >= CPUID_KVM_FEATURES)
			signature = true;
	for (u32 i = 0; i < nent; i++) {
		struct kvm_cpuid_entry2 *e = &entries[i];

		if (e->function > CPUID_KVM_FEATURES && e->function <= CPUID_KVM_LEAF_LAST)
			continue;
		if (e->function == CPUID_KVM_SIGNATURE)
			e->eax = CPUID_KVM_FEATURES; /* the last leaf */
		if (e->function == CPUID_KVM_FEATURES) {
			e->eax &= KVM_FEATURES_KEPT;
			e->ebx = e->ecx = e->edx = 0; /* no hints (REALTIME) either */
			*clock = signature && (e->eax & KVM_FEATURE_CLOCKSOURCE2);
		}
		entries[n++] = *e;
	}
	for (u32 i = 0; i < n && *clock; i++)
		if (entries[i].function == 1)
			entries[i].ecx |= CPUID_1_ECX_HYPERVISOR;
	return n;
}

/*
 * What shadow mode cannot honour yet is hidden from its guest (issue 6):
 *  - KVM's paravirtual features but kvmclock and NOP_IO_DELAY
 *    (cpu_features_kvm_clock has already cut leaf 0x40000001 to them in
 *    both modes): async page faults,
 *    PV EOI and the rest are MSRs the guest would write to KVM, and in
 *    shadow mode its wrmsr reaches the VMM's virtual MSRs instead, which
 *    forward only kvmclock's (vmm/shadow_msr.c);
 *  - x2APIC (CPUID.1:ECX[21]) and the TSC-deadline timer (CPUID.1:ECX[24]):
 *    MSR interfaces to the LAPIC, same reason (the xAPIC page is mapped);
 *  - MONITOR/MWAIT (CPUID.1:ECX[3]): privileged, not emulated;
 *  - XSAVES (CPUID.(0xd,1):EAX[3]): privileged (IA32_XSS), not emulated;
 *  - PKU (CPUID.7:ECX[3]): the guest's PKRU would be the real one;
 *  - LA57 (CPUID.7:ECX[16]): the shadow MMU walks 4-level tables only, and
 *    Linux's decompressor turns 5-level paging on wherever CPUID offers it
 *    (first seen on QEMU TCG's "max" CPU; Ice Lake and later servers too);
 *  - VME (CPUID.1:EDX[1]): CR4.VME and CR4.PVI (a process's cli/sti on the
 *    virtual VIF) are not emulated;
 *  - DE (CPUID.1:EDX[2]): CR4.DE's I/O breakpoints are not (the real CR4
 *    is not the guest's; README "Hardware breakpoints"). Without it DR4/DR5
 *    alias DR6/DR7, which the emulator does.
 * Linux clears CR4.VME, PVI and DE at boot (cpu_init), so neither is missed.
 * The CR4 bits of what is hidden then fault as on such a CPU
 * (cpu_features_cr4_valid).
 */
#define CPUID_1_EDX_VME	    (1u << 1)
#define CPUID_1_EDX_DE	    (1u << 2)
#define CPUID_1_ECX_MONITOR (1u << 3)
#define CPUID_1_ECX_X2APIC  (1u << 21)
#define CPUID_1_ECX_TSC_DL  (1u << 24)
#define CPUID_7_ECX_PKU	    (1u << 3)
#define CPUID_7_ECX_LA57    (1u << 16)
#define CPUID_D1_EAX_XSAVES (1u << 3)
u32 cpu_features_hide_for_shadow(struct kvm_cpuid_entry2 *entries, u32 nent)
{
	u32 n = 0;

	for (u32 i = 0; i < nent; i++) {
		struct kvm_cpuid_entry2 *e = &entries[i];

		if (e->function > CPUID_KVM_FEATURES && e->function <= CPUID_KVM_LEAF_LAST)
			continue;
		if (e->function == CPUID_KVM_FEATURES)
			e->eax &= KVM_FEATURES_KEPT;
		if (e->function == 1) {
			e->ecx &= ~(CPUID_1_ECX_MONITOR | CPUID_1_ECX_X2APIC | CPUID_1_ECX_TSC_DL);
			e->edx &= ~(CPUID_1_EDX_VME | CPUID_1_EDX_DE);
		}
		if (e->function == 7 && e->index == 0)
			e->ecx &= ~(CPUID_7_ECX_PKU | CPUID_7_ECX_LA57);
		if (e->function == 0xd && e->index == 1)
			e->eax &= ~CPUID_D1_EAX_XSAVES;
		entries[n++] = *e;
	}
	return n;
}

/*
 * A control-register bit (CR4's, EFER's) and the CPUID feature that offers
 * it, named as in /proc/cpuinfo for the reader; these are not in `features`,
 * which lists what --cpu may hide.
 */
struct offered_bit {
	u64 bit;
	struct cpu_feature by;
};

/* The `bits` of `table` whose feature `e[0..n)` offers. */
static u64 offered(const struct offered_bit *table, size_t len, const struct kvm_cpuid_entry2 *e,
		   u32 n)
{
	u64 valid = 0;

	for (size_t i = 0; i < len; i++)
		for (u32 k = 0; k < n; k++) {
			const u32 regs[] = { e[k].eax, e[k].ebx, e[k].ecx, e[k].edx };

			if (entry_is(&e[k], &table[i].by) &&
			    ((regs[table[i].by.reg] >> table[i].by.bit) & 1))
				valid |= table[i].bit;
		}
	return valid;
}

u64 cpu_features_cr4_valid(const struct kvm_cpuid_entry2 *e, u32 n)
{
	/* Each CR4 bit and the CPUID bit that offers it (SDM Vol. 3A §2.5; Vol. 2A CPUID). */
	static const struct offered_bit cr4[] = {
		{ CR4_VME | CR4_PVI, { "vme", 1, 0, EDX, 1 } },
		{ CR4_TSD, { "tsc", 1, 0, EDX, 4 } },
		{ CR4_DE, { "de", 1, 0, EDX, 2 } },
		{ CR4_PSE, { "pse", 1, 0, EDX, 3 } },
		{ CR4_PAE, { "pae", 1, 0, EDX, 6 } },
		{ CR4_MCE, { "mce", 1, 0, EDX, 7 } },
		{ CR4_PGE, { "pge", 1, 0, EDX, 13 } },
		{ CR4_OSFXSR, { "fxsr", 1, 0, EDX, 24 } },
		{ CR4_OSXMMEXCPT, { "sse", 1, 0, EDX, 25 } },
		{ CR4_PCIDE, { "pcid", 1, 0, ECX, 17 } },
		{ CR4_OSXSAVE, { "xsave", 1, 0, ECX, 26 } },
		{ CR4_FSGSBASE, { "fsgsbase", 7, 0, EBX, 0 } },
		{ CR4_SMEP, { "smep", 7, 0, EBX, 7 } },
		{ CR4_SMAP, { "smap", 7, 0, EBX, 20 } },
		{ CR4_UMIP, { "umip", 7, 0, ECX, 2 } },
		{ CR4_PKE, { "pku", 7, 0, ECX, 3 } },
		{ CR4_LA57, { "la57", 7, 0, ECX, 16 } },
	};

	/* PCE has no CPUID bit: every 64-bit CPU has RDPMC. */
	return CR4_PCE | offered(cr4, sizeof(cr4) / sizeof(cr4[0]), e, n);
}

u64 cpu_features_efer_valid(const struct kvm_cpuid_entry2 *e, u32 n)
{
	static const struct offered_bit efer[] = {
		{ EFER_SCE, { "syscall", 0x80000001u, 0, EDX, 11 } },
		{ EFER_NXE, { "nx", 0x80000001u, 0, EDX, 20 } },
		{ EFER_LME | EFER_LMA, { "lm", 0x80000001u, 0, EDX, 29 } },
	};

	return offered(efer, sizeof(efer) / sizeof(efer[0]), e, n);
}

static const struct kvm_cpuid_entry2 *find_entry(const struct kvm_cpuid_entry2 *e, u32 n, u32 leaf,
						 u32 subleaf)
{
	for (u32 i = 0; i < n; i++)
		if (e[i].function == leaf &&
		    (!(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e[i].index == subleaf))
			return &e[i];
	return NULL;
}

void cpu_features_lookup(const struct kvm_cpuid_entry2 *entries, u32 nent, bool amd, u32 leaf,
			 u32 subleaf, u32 out[4])
{
	const struct kvm_cpuid_entry2 *e = find_entry(entries, nent, leaf, subleaf);

	if (!e && !amd) {
		/*
		 * The ranges KVM knows: basic, hypervisor, extended, Centaur; a
		 * range without its top leaf counts as exceeded, as in KVM's
		 * get_out_of_range_cpuid_entry().
		 */
		const struct kvm_cpuid_entry2 *top =
			find_entry(entries, nent, leaf & 0xc0000000u, 0);
		const struct kvm_cpuid_entry2 *basic = find_entry(entries, nent, 0, 0);

		if ((!top || leaf > top->eax) && basic)
			e = find_entry(entries, nent, basic->eax, subleaf);
	}
	out[0] = e ? e->eax : 0;
	out[1] = e ? e->ebx : 0;
	out[2] = e ? e->ecx : 0;
	out[3] = e ? e->edx : 0;
}
