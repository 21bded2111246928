/* SPDX-License-Identifier: MIT */
/*
 * Reading guest memory by guest-virtual address, through the guest's own
 * page tables, for the VMM's diagnostics and emulation (both modes).
 */
#ifndef UMBRA_VMM_GUEST_ACCESS_H
#define UMBRA_VMM_GUEST_ACCESS_H

#include "decode/emulate.h"
#include "shadow/walk.h"
#include "vmm/memory.h"

/* The walker's view of guest memory: RAM and the ROM window are both readable. */
struct walk_mem guest_walk_mem(struct guest_mem *mem);

/*
 * hw mode: the walk_ctl of KVM's sregs. In PAE paging its PDPTE registers
 * are read from the PDPT at CR3 (what the CPU loaded, unless the guest
 * rewrote its PDPT since: no known guest walks through such a stale PDPT).
 */
struct walk_ctl guest_hw_walk_ctl(struct guest_mem *mem, u64 cr0, u64 cr3, u64 cr4, u64 efer,
				  unsigned maxphyaddr);

/*
 * Where a fetch at linear `la` lands through the guest tables described by
 * `ctl` (peek: no A/D side effects): its gpa into *gpa; false if it does
 * not translate for a fetch.
 */
bool guest_fetch_gpa(struct guest_mem *mem, const struct walk_ctl *ctl, u64 la, gpa_t *gpa);

/*
 * Copy up to `len` bytes at `gva` into `buf`, page by page through the guest
 * tables described by `ctl` (peek: no A/D side effects), checking `access`
 * (ACC_*). Stops at the first byte that does not translate or is not
 * RAM/ROM. Returns the number of bytes copied.
 */
size_t guest_read_virt(struct guest_mem *mem, const struct walk_ctl *ctl, u64 gva, void *buf,
		       size_t len, u32 access);

/*
 * Translate the emulator's linear address `la` for an access of kind
 * `emu_access` (EMU_ACC_*) through the guest tables described by `ctl`,
 * setting A/D bits as the CPU would. EMU_MAP_OK: *gpa and *hva (NULL when the
 * gpa is not RAM, or is the ROM window and the access writes). EMU_MAP_FAULT:
 * *fault is the guest #PF to deliver. EMU_MAP_NOT_RAM: a guest table lies
 * outside RAM.
 */
enum emu_map_result guest_translate_emu(struct guest_mem *mem, const struct walk_ctl *ctl, u64 la,
					unsigned len, u32 emu_access, gpa_t *gpa, void **hva,
					struct emu_event *fault);

#endif /* UMBRA_VMM_GUEST_ACCESS_H */
