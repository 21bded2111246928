/* SPDX-License-Identifier: MIT */
/*
 * The cmpxchg16b stand-in's sites (vmm/monitor.h, MON_CALL_CX16): the body
 * of Linux's this_cpu_cmpxchg16b_emu, and the VMM's slow path for it.
 */
#ifndef UMBRA_VMM_CALL_CX16_H
#define UMBRA_VMM_CALL_CX16_H

#include <stdbool.h>

#include "decode/scan.h"
#include "umbra/types.h"

struct vm;

#define CALL_CX16_BODY	40u /* the body's bytes, both returns included */
#define CALL_CX16_PATCH 5u  /* the bytes the rewrite covers: the `jmp` */

/* Can the host run the stand-in: does its CPU have CMPXCHG16B (CPUID.1:ECX.CX16)? */
bool call_cx16_host_ok(void);

/*
 * Is there, at `off` of `page` (fetched at `page_la`), the body of Linux's
 * this_cpu_cmpxchg16b_emu (arch/x86/lib/cmpxchg16b_emu.S, as Linux 6.1
 * builds it; each return `jmp __x86_return_thunk` or, once apply_returns
 * has inlined it, `ret` and int3s), wholly in the page, its first byte a
 * start the scan found and none inside its first instruction but the cli
 * and the cmp? Then fill `repl` with the `jmp` to the stand-in and *len
 * (CALL_CX16_PATCH).
 */
bool call_cx16_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		    u8 *repl, unsigned *len);

/*
 * The slow path, the vCPU put back at the body's start (`body`, its gva):
 * emulate the instructions the rewrite covers from the guest's bytes
 * (pushfq, cli, cmp), each raising what the real one would at its own
 * RIP, and leave the vCPU at the jne after them, whose bytes are the
 * body's own, to run natively. False if the VM stopped (vm_kill called).
 */
bool call_cx16_run_original(struct vm *vm, u64 body);

#endif /* UMBRA_VMM_CALL_CX16_H */
