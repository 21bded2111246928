/* SPDX-License-Identifier: MIT */
/*
 * Call sites matched byte for byte (vmm/monitor.h has the stand-ins): a
 * short sequence of Linux's that shadow mode would trap on, rewritten into
 * `call rel32` to its stand-in, then nops that never run (the stand-in
 * returns past them). Each is known by its bytes alone:
 *  - CALL_LIT_RD_KGS, CALL_LIT_WR_KGS: `swapgs; rdgsbase %rax; swapgs` and
 *    its `wrgsbase %rdi` twin (__rdgsbase_inactive/__wrgsbase_inactive, at
 *    every context switch), 11 bytes;
 *  - CALL_LIT_CR2: `mov %cr2,%rax` and the 3-byte nop that pads it to the
 *    `call *pv_ops.mmu.read_cr2` Linux's alternatives replaced
 *    (exc_page_fault's first act);
 *  - CALL_LIT_SS: `mov %ss,%ax; cmp $0x18,%ax` (__KERNEL_DS), Linux's test
 *    in __switch_to on AMD CPUs (X86_BUG_SYSRET_SS_ATTRS), at every context
 *    switch; the reload that follows, only when SS is null, still traps.
 *  - CALL_LIT_SWAPGS: `swapgs` and the nop or `lfence` after it (6 bytes:
 *    Linux's error_entry from user mode, SWAPGS then
 *    FENCE_SWAPGS_USER_ENTRY), at every interrupt and exception the guest
 *    takes in user mode. Only where the caller knows rdgsbase/wrgsbase run
 *    at real CPL3 (vmm/monitor.h, MON_CALL_SWAPGS).
 *  - CALL_LIT_LOAD_GS: `swapgs; mov %edi,%gs; <nop3 or mfence>; swapgs`
 *    (Linux's asm_load_gs_index, 11 bytes), at every context switch where
 *    the guest lacks FSGSBASE (MON_CALL_LOAD_GS).
 *  - CALL_LIT_LOAD_FS: `mov $0x2b,%edx; mov %edx,%fs; mov %eax,%fs` (Linux's
 *    load_seg_legacy on AMD CPUs, 9 bytes), at every context switch to a
 *    task whose FS base is 0 where the guest lacks FSGSBASE
 *    (MON_CALL_LOAD_FS).
 *  - CALL_LIT_WRMSR: `mov %esi,%eax; mov %edi,%ecx; wrmsr; <2-byte nop>`
 *    (the body of Linux's native_write_msr, 8 bytes), where the FS base of
 *    the next task is written at a context switch without FSGSBASE
 *    (MON_CALL_WRMSR).
 *  - CALL_LIT_SS_LOAD: `mov $0x18,%eax; mov %eax,%ss` (Linux's reload of
 *    __KERNEL_DS in __switch_to on AMD CPUs, 7 bytes), at a context switch
 *    after an event from user mode (MON_CALL_SS_LOAD).
 */
#ifndef UMBRA_VMM_CALL_LITERAL_H
#define UMBRA_VMM_CALL_LITERAL_H

#include "decode/scan.h"
#include "umbra/types.h"

enum call_literal_kind {
	CALL_LIT_NONE = -1,
	CALL_LIT_RD_KGS,
	CALL_LIT_WR_KGS,
	CALL_LIT_CR2,
	CALL_LIT_SS,
	CALL_LIT_SWAPGS,
	CALL_LIT_LOAD_GS,
	CALL_LIT_LOAD_FS,
	CALL_LIT_WRMSR,
	CALL_LIT_SS_LOAD,
};

/*
 * Is there, at `off` of `page` (fetched at `page_la`), one of the sites
 * above: its bytes wholly in the page, an instruction start the scan found
 * at each of its instructions and nowhere else, and no in-page branch
 * landing inside it (scan_is_target)? Then fill `repl` with the call and
 * its nops, *len with the site's length, and return its kind.
 */
enum call_literal_kind call_literal_plan(const struct scan_result *res, const u8 *page, u64 page_la,
					 unsigned off, u8 *repl, unsigned *len);

#endif /* UMBRA_VMM_CALL_LITERAL_H */
