/* SPDX-License-Identifier: MIT */
/*
 * The pages behind hw mode's syscall entry on PVM hosts (vmm/hw_syscall.h):
 * their layout and contents. Knows nothing of KVM, so it is unit-tested
 * (tests/unit/test_hw_syscall.c).
 *
 * The slot: PML4 slot 509 (0xfffffe8000000000), the unused hole between
 * the CPU entry area (508) and the espfix stacks (510) of Linux's 4-level
 * layout, above the range its KASLR places regions in (below 508). It
 * must lie at or above the direct map's slot, since Linux's pgd_ctor
 * copies only the kernel root's entries from there up into a new process's
 * root (KERNEL_PGD_BOUNDARY = pgd_index(PAGE_OFFSET)); the hypervisor hole
 * (256-271) is below it.
 *
 * The visible pages, in the option-ROM window (HW_SYSCALL_ROM_GPA, the top
 * 28 KiB below the BIOS area; a read-only memslot the guest reads all-ones
 * from otherwise): Linux's boot check of its own tables (CONFIG_DEBUG_WX)
 * walks every kernel slot through the direct map, which maps the ISA range
 * but not memory above RAM. Their entries carry A (and D on the writable
 * leaf) already, so the CPU never has to write them.
 *   0       PDPT of the slot (entry 0 -> page 1)
 *   1       PD (entry 0 -> page 2)
 *   2       PT (entry 0 -> the entry page, entry 1 -> the MMIO page)
 *   3-5     the same for a guest with EFER.NXE = 1, whose MMIO page is NX:
 *           CONFIG_DEBUG_WX warns of a page that is writable and executable
 *   6       the entry page at HW_SYSCALL_GVA: `mov %al, HW_SYSCALL_GVA +
 *           4096` (user, read-only, executable), then int3
 * The MMIO page: a gpa with no memslot, 512 MiB above the region, mapped
 * user-writable at HW_SYSCALL_GVA + 4096. Why a store there: it is the one
 * thing a CPL3 instruction can do on a PVM host that surely exits (KVM
 * emulates it: KVM_EXIT_MMIO, RIP already past it). An `out` obeys the
 * guest's TSS I/O bitmap there, and Linux's denies every port.
 *
 * The region (a memslot above RAM, at the first 1 GiB boundary at or above
 * max(top of RAM, 4 GiB), where shadow mode puts its monitor), which no
 * guest table points at:
 *   0       the store stub: `mov %rax, (%rdi); out %al, $HW_SYSCALL_PORT`
 *   1       the store root: a PML4 whose entry 0 -> page 2
 *   2       its PDPT, entry i -> page 3 + i
 *   3 ...   its PDs: 2 MiB pages mapping [0, gpa + 1 GiB) one to one
 *           (supervisor, writable), so the stub runs at its own gpa and
 *           reaches any guest root by its gpa
 * Every table is built once, before the vCPU first runs: KVM shadows them
 * from then on and would not see a later store made from userspace.
 */
#ifndef UMBRA_VMM_HW_SYSCALL_REGION_H
#define UMBRA_VMM_HW_SYSCALL_REGION_H

#include "umbra/types.h"

#define HW_SYSCALL_SLOT	     509u
#define HW_SYSCALL_GVA	     0xfffffe8000000000ull /* PML4 slot 509 */
#define HW_SYSCALL_PORT	     0xe1u		   /* the store stub's `out`, at CPL0 */
#define HW_SYSCALL_ENTRY_LEN 6u			   /* the entry's store: RIP after it */
#define HW_SYSCALL_MMIO_GVA  (HW_SYSCALL_GVA + PAGE_SIZE)
#define HW_SYSCALL_ROM_PAGES 7u
#define HW_SYSCALL_ROM_GPA   (0xe0000ull - HW_SYSCALL_ROM_PAGES * PAGE_SIZE)

/* Where the region goes for RAM ending at `ram_top`. */
u64 hw_region_gpa(u64 ram_top);

/* Its size in bytes (0 if the store root could not reach it: at or above 512 GiB). */
u64 hw_region_bytes(u64 region_gpa);

/* Fill `region` (hw_region_bytes long, zeroed) for `region_gpa`. */
void hw_region_build(u8 *region, u64 region_gpa);

/*
 * Fill the visible pages: `rom` is the host mapping of HW_SYSCALL_ROM_GPA
 * (HW_SYSCALL_ROM_PAGES pages), for the region at `region_gpa`.
 */
void hw_region_build_rom(u8 *rom, u64 region_gpa);

/* The PML4 entry of the slot, for a guest whose EFER.NXE is `nxe`. */
u64 hw_region_slot_entry(bool nxe);

/* The gpa of the MMIO page (no memslot: the entry's store exits there). */
u64 hw_region_mmio_gpa(u64 region_gpa);

/* The store stub: the root to run it on, its first byte, and its end (after its `out`). */
u64 hw_region_store_root(u64 region_gpa);
u64 hw_region_stub(u64 region_gpa);
u64 hw_region_stub_end(u64 region_gpa);

#endif /* UMBRA_VMM_HW_SYSCALL_REGION_H */
