/* SPDX-License-Identifier: MIT */
/*
 * The sync_core stand-in's VMM side (vmm/monitor.h, MON_CALL_SYNC): which
 * sites it takes, what it needs in the call window's data page, and the
 * slow path that runs the original instructions.
 */
#ifndef UMBRA_VMM_CALL_SYNC_H
#define UMBRA_VMM_CALL_SYNC_H

#include <stdbool.h>

#include "decode/emulate.h"
#include "decode/scan.h"
#include "umbra/types.h"

struct vm;
struct shadow_mode;

/*
 * What the data page's descriptors were computed from: while the guest's
 * tables and segments stay the same, they still hold (a change in the
 * table's memory is what the stand-in itself checks).
 */
struct call_sync_key {
	bool valid;
	u64 gdt_base, ldtr_base;
	u32 gdt_limit, ldtr_limit;
	u16 ldtr_sel;
	struct emu_seg cs, ss;
};

/* Bytes of a sync site the rewrite covers: `call` + nops (decode/patch.h allows 15). */
#define CALL_SYNC_PATCH 15u

/*
 * Is there an iret_to_self at `off` of `page` (fetched at `page_la`) with
 * %eax as its temporary, each of its instructions a start the scan found?
 * Then fill `repl` (the call to the stand-in, then nops that never run)
 * and *len (CALL_SYNC_PATCH).
 */
bool call_sync_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		    u8 *repl, unsigned *len);

/*
 * Before the guest kernel runs: the data page's descriptors for its current
 * CS and SS, and their selectors (the iret stand-in's data too: it compares
 * a frame's CS and SS with these, vmm/call_iret.h).
 */
void call_sync_fill(struct vm *vm);

/*
 * Before the guest kernel runs: the load_gs stand-in's non-null selector
 * (the one its slow path loaded last) and, where loading it would only set
 * the selector and a base of 0, its descriptor's place and value, which the
 * stand-in compares with the live one (vmm/monitor.h, MON_CALL_LOAD_GS).
 */
void call_load_gs_fill(struct vm *vm);

/*
 * The SS load stand-in's key (vmm/monitor.h, MON_CALL_SS_LOAD), on every
 * trap back to the guest kernel: where __KERNEL_DS's descriptor is and the
 * value it holds if that loads as SS at CPL0 and is accessed (so the load
 * writes nothing to the table); else the slow path.
 */
void call_ss_load_fill(struct vm *vm);

/*
 * The vCPU is at a rewritten site (RIP at its `call`): run the original
 * instructions there, as the CPU would, faults included. false: the VM
 * was stopped (an instruction could not be emulated).
 */
bool call_sync_run_original(struct vm *vm);

#endif /* UMBRA_VMM_CALL_SYNC_H */
