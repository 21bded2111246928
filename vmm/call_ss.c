// SPDX-License-Identifier: MIT
/* The SS stand-in's sites (vmm/call_ss.h; the stand-in: vmm/monitor.h, MON_CALL_SS_CMP). */
#include <string.h>

#include "vmm/call_ss.h"
#include "vmm/monitor.h"

bool call_ss_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		  u8 *repl, unsigned *len)
{
	static const u8 site[CALL_SS_SITE] = { 0x66, 0x8c, 0xd0, 0x66, 0x83, 0xf8, 0x18 };

	if (off + CALL_SS_SITE > PAGE_SIZE || memcmp(page + off, site, sizeof(site)))
		return false;
	for (unsigned b = 0; b < CALL_SS_SITE; b++)
		if (scan_is_insn_start(res, off + b) != (b == 0 || b == 3) ||
		    (b && scan_is_target(res, off + b))) /* only falling through reaches the cmp */
			return false;
	if (!monitor_put_rel32(repl, 0xe8, page_la + off,
			       monitor_call_entry(MON_CALL_SS_CMP, MON_CALL_SS_PAD)))
		return false;
	repl[5] = 0x66; /* xchg %ax,%ax */
	repl[6] = 0x90;
	*len = CALL_SS_SITE;
	return true;
}
