/* SPDX-License-Identifier: MIT */
/*
 * Shadow mode's code scanning and patching (vmm/code_scan.c): a guest
 * kernel code frame is scanned, patched and approved before its first
 * instruction runs at real CPL3.
 */
#ifndef UMBRA_VMM_CODE_SCAN_H
#define UMBRA_VMM_CODE_SCAN_H

#include "umbra/types.h"
#include "vmm/shadow_mode.h"

struct vm;

/*
 * SHADOW_EXEC_UNSCANNED: the guest kernel fetches at linear `la` from
 * frame `at`, which is not approved. Scan it from every entry known in it,
 * patch and rewrite its sites, approve it. SHADOW_EXIT_STOP (vm_kill
 * called) if that failed.
 */
enum shadow_exit shadow_scan_code_frame(struct vm *vm, gpa_t at, u64 la, u64 rip);

#endif /* UMBRA_VMM_CODE_SCAN_H */
