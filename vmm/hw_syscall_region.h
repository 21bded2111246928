/* SPDX-License-Identifier: MIT */
/*
 * The pages behind hw mode's syscall entry on PVM hosts (vmm/hw_syscall.h):
 * their layout and contents. Knows nothing of KVM, so it is unit-tested
 * (tests/unit/test_hw_syscall.c).
 *
 * Region layout (pages from its gpa, the first 1 GiB boundary at or above
 * max(top of RAM, 4 GiB), where shadow mode puts its monitor):
 *   0       PDPT of the slot-257 mapping (entry 0 -> page 1)
 *   1       PD (entry 0 -> page 2)
 *   2       PT (entry 0 -> the entry page, entry 1 -> the MMIO page)
 *   3-5     the same for a guest with EFER.NXE = 1, whose MMIO page is NX:
 *           Linux's boot check of the kernel's tables (CONFIG_DEBUG_WX)
 *           warns of a page that is writable and executable
 *   6       the entry page at HW_SYSCALL_GVA: `mov %al, HW_SYSCALL_GVA +
 *           4096` (user, read-only, executable), then int3
 *   7       the store stub: `mov %rax, (%rdi); out %al, $HW_SYSCALL_PORT`
 *   8       the store root: a PML4 whose entry 0 -> page 9
 *   9       its PDPT, entry i -> page 10 + i
 *   10 ...  its PDs: 2 MiB pages mapping [0, gpa + 1 GiB) one to one
 *           (supervisor, writable), so the stub runs at its own gpa and
 *           reaches any guest root by its gpa
 * The MMIO page: a gpa with no memslot, 512 MiB above the region, mapped
 * user-writable at HW_SYSCALL_GVA + 4096. Why a store there: it is the one
 * thing a CPL3 instruction can do on a PVM host that surely exits (KVM
 * emulates it: KVM_EXIT_MMIO, RIP already past it). An `out` obeys the
 * guest's TSS I/O bitmap there, and Linux's denies every port.
 *
 * The slot-257 entry and the tables under it are present, user and
 * writable; the leaves decide (the entry page read-only, the MMIO page
 * writable). Every table is built once, before the vCPU first runs: KVM
 * shadows them from then on and would not see a later store from userspace.
 */
#ifndef UMBRA_VMM_HW_SYSCALL_REGION_H
#define UMBRA_VMM_HW_SYSCALL_REGION_H

#include "umbra/types.h"

#define HW_SYSCALL_GVA	     0xffff808000000000ull /* PML4 slot 257 */
#define HW_SYSCALL_SLOT	     257u
#define HW_SYSCALL_PORT	     0xe1u /* the store stub's `out`, at CPL0 */
#define HW_SYSCALL_ENTRY_LEN 6u	   /* the entry's store: RIP after it */
#define HW_SYSCALL_MMIO_GVA  (HW_SYSCALL_GVA + PAGE_SIZE)

/* Where the region goes for RAM ending at `ram_top`. */
u64 hw_region_gpa(u64 ram_top);

/* Its size in bytes (0 if the store root could not reach it: at or above 512 GiB). */
u64 hw_region_bytes(u64 region_gpa);

/* Fill `region` (hw_region_bytes long, zeroed) for `region_gpa`. */
void hw_region_build(u8 *region, u64 region_gpa);

/* The PML4 entry of slot 257, for a guest whose EFER.NXE is `nxe`. */
u64 hw_region_slot_entry(u64 region_gpa, bool nxe);

/* The gpa of the MMIO page (no memslot: the entry's store exits there). */
u64 hw_region_mmio_gpa(u64 region_gpa);

/* The store stub: the root to run it on, its first byte, and its end (after its `out`). */
u64 hw_region_store_root(u64 region_gpa);
u64 hw_region_stub(u64 region_gpa);
u64 hw_region_stub_end(u64 region_gpa);

#endif /* UMBRA_VMM_HW_SYSCALL_REGION_H */
