/* SPDX-License-Identifier: MIT */
/*
 * hw mode's syscall entry on hosts where a `syscall` from CPL3 stays at
 * CPL3 (KVM on PVM; shared/HOST.md, host probe `syscall_cpl 3`).
 *
 * There the CPU jumps to LSTAR with RCX, R11 and SFMASK applied but CS
 * still the user's, so the guest kernel's entry code is fetched at CPL3
 * from a supervisor page: a #PF, and Linux kills the process. The VMM
 * cannot see exceptions in hw mode (KVM delivers them to the guest), so it
 * makes the syscall land somewhere that exits:
 *
 *  - The guest's writes of STAR, LSTAR and SFMASK exit to the VMM (an MSR
 *    filter with KVM_CAP_X86_USER_SPACE_MSR). The VMM keeps the guest's
 *    values (a read of LSTAR returns the guest's) and points the real LSTAR
 *    at HW_SYSCALL_GVA.
 *  - HW_SYSCALL_GVA is in PML4 slot 509, an unused hole of Linux's 4-level
 *    layout that its pgd_ctor copies into every new process's root
 *    (vmm/hw_syscall_region.h says why that slot). At each LSTAR write the
 *    VMM puts its own entry in that slot of the guest's current root (the
 *    kernel's, for Linux), through the vCPU, so that KVM's shadow of that
 *    root sees the store (HOST.md: stores made from userspace are not
 *    seen). A root that already maps the slot stops the VM (status 14).
 *  - The page at HW_SYSCALL_GVA is user-executable and read-only, and
 *    holds a store to the next page, which has no memory behind it: KVM
 *    emulates the store and exits (KVM_EXIT_MMIO). The VMM then makes the
 *    syscall's CPL0 half with the emulator (emu_syscall_entry): CS and SS
 *    from STAR, RIP = the guest's LSTAR. A process that jumps to the page
 *    itself gets exactly what a `syscall` at RCX - 2 with its R11 as RFLAGS
 *    gives, nothing more.
 *
 * The guest-visible contract: slot 509 of the roots that were current at an
 * LSTAR write holds the VMM's entry; a process sees a page of that store
 * and int3 at HW_SYSCALL_GVA, and a page after it whose stores are dropped
 * and whose reads are all-ones (unclaimed MMIO); the top 28 KiB of the
 * option-ROM window hold the tables (hw_syscall_region.h), read-only as the
 * rest of it. Nothing else changes. 4-level paging only.
 *
 * LIMITATION: kernels with page-table isolation (PTI, on Intel CPUs that
 * need it) give processes a user root without the kernel's upper half; a
 * syscall there would fault at HW_SYSCALL_GVA. Our hosts are AMD's.
 */
#ifndef UMBRA_VMM_HW_SYSCALL_H
#define UMBRA_VMM_HW_SYSCALL_H

#include "umbra/types.h"
#include "vmm/hw_syscall_region.h"

struct vm;

struct hw_syscall {
	bool on;	  /* this host needs it and it is set up */
	u8 *region;	  /* the VMM's pages (hw_syscall_region.h, "The region") */
	u64 region_gpa;	  /* where they are in guest-physical space, above RAM */
	u64 region_bytes; /* their size */
	/* The guest's syscall MSRs: the real LSTAR is HW_SYSCALL_GVA. */
	u64 star, lstar, sfmask;
};

/*
 * hw mode: if vm->host says a CPL3 syscall stays at CPL3, map the region,
 * install the MSR filter and turn the entry on. 0 or an UMBRA_EXIT_* code.
 */
int hw_syscall_setup(struct vm *vm) __must_check;
void hw_syscall_teardown(struct vm *vm);

/* A KVM_EXIT_X86_RDMSR or KVM_EXIT_X86_WRMSR: handle it (always: the filter only sends ours). */
bool hw_syscall_msr_exit(struct vm *vm);

/*
 * A KVM_EXIT_MMIO: true if it was a syscall arriving at the entry page, now
 * done (the vCPU at the guest's LSTAR at CPL0) or the VM stopped with why.
 */
bool hw_syscall_mmio_exit(struct vm *vm);

#endif /* UMBRA_VMM_HW_SYSCALL_H */
