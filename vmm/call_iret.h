/* SPDX-License-Identifier: MIT */
/*
 * The iret stand-in's sites (vmm/monitor.h, MON_CALL_IRET): which iretqs it
 * takes. Its data is the sync stand-in's (vmm/call_sync.h, call_sync_fill)
 * plus the virtual SS; the VMM finishes or undoes it in vmm/shadow_mode.c.
 */
#ifndef UMBRA_VMM_CALL_IRET_H
#define UMBRA_VMM_CALL_IRET_H

#include <stdbool.h>

#include "decode/scan.h"
#include "umbra/types.h"

/* Bytes of an iret site the rewrite covers: the `call`; the nopl's last 2 stay. */
#define CALL_IRET_PATCH 5u

/*
 * Is there, at `off` of `page` (fetched at `page_la`), an `iretq` followed
 * by the 5-byte nopl that pads it to a 16-byte boundary (Linux's
 * native_irq_return_iret, the end of its entry code's return path), the
 * iretq a start the scan found, and no start it knows inside the site but
 * the nopl's? Then fill `repl` with the call to the stand-in and *len
 * (CALL_IRET_PATCH). Padding up to an aligned function start is what
 * assemblers emit and nothing jumps into, so the call may cover it.
 */
bool call_iret_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		    u8 *repl, unsigned *len);

#endif /* UMBRA_VMM_CALL_IRET_H */
