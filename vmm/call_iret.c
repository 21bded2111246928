// SPDX-License-Identifier: MIT
/*
 * The iret stand-in's sites (vmm/call_iret.h; the stand-in itself:
 * vmm/monitor.h, MON_CALL_IRET). Every interrupt or exception Linux takes
 * in its kernel returns through one iretq, native_irq_return_iret; under
 * shadow mode that iretq is patched (a native one would complete to the
 * host's selectors), so each return was a trap. Rewritten, a return to the
 * kernel takes none unless the stand-in finds something it must not do
 * natively; returns to user mode still trap (its slow path), or chain from
 * the `swapgs` before them (vmm/shadow_emu.c, shadow_emu_chain_next).
 */
#include <string.h>

#include "vmm/call_iret.h"
#include "vmm/monitor.h"

bool call_iret_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		    u8 *repl, unsigned *len)
{
	static const u8 site[MON_CALL_IRET_SITE] = { 0x48, 0xcf, 0x0f, 0x1f, 0x44, 0x00, 0x00 };

	if (off + MON_CALL_IRET_SITE > PAGE_SIZE || memcmp(page + off, site, sizeof(site)) ||
	    (page_la + off + MON_CALL_IRET_SITE) % 16 != 0 || !scan_is_insn_start(res, off))
		return false;
	/* Nothing known starts inside the site but the nopl (a scan may not reach it). */
	for (unsigned b = 1; b < MON_CALL_IRET_SITE; b++)
		if (b != 2 && scan_is_insn_start(res, off + b))
			return false;
	if (!monitor_put_rel32(repl, 0xe8, page_la + off, monitor_call_entry(MON_CALL_IRET, 0)))
		return false;
	*len = CALL_IRET_PATCH;
	return true;
}
