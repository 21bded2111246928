/* SPDX-License-Identifier: MIT */
/*
 * The SS stand-in's sites (vmm/monitor.h, MON_CALL_SS_CMP): Linux's
 * `mov %ss,%ax; cmp $__KERNEL_DS,%ax` in __switch_to, which runs at every
 * context switch on AMD CPUs (X86_BUG_SYSRET_SS_ATTRS: SYSRET leaves SS's
 * cached attributes stale there, so Linux reloads SS when it is not
 * __KERNEL_DS). Shadow mode patches the `mov %ss` (at real CPL3 it would
 * read the real SS), so each was a trap; rewritten, the compare takes none.
 * The reload that follows, rarer (only when SS is null after an interrupt
 * from user mode), still traps.
 */
#ifndef UMBRA_VMM_CALL_SS_H
#define UMBRA_VMM_CALL_SS_H

#include <stdbool.h>

#include "decode/scan.h"
#include "umbra/types.h"

#define CALL_SS_SITE 7u /* mov %ss,%ax (66 8c d0); cmp $0x18,%ax (66 83 f8 18) */

/*
 * Is there, at `off` of `page` (fetched at `page_la`), the 7 bytes of the
 * site, both instructions starts the scan found and none inside them? Then
 * fill `repl` with `call` to the stand-in and a 2-byte nop (never run: the
 * stand-in returns past it), *len CALL_SS_SITE.
 */
bool call_ss_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		  u8 *repl, unsigned *len);

#endif /* UMBRA_VMM_CALL_SS_H */
