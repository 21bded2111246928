// SPDX-License-Identifier: MIT
/* Call sites matched byte for byte (vmm/call_literal.h). */
#include <string.h>

#include "umbra/log.h"
#include "vmm/call_literal.h"
#include "vmm/monitor.h"

static const struct {
	enum call_literal_kind kind;
	u8 bytes[11], len;
	u16 starts; /* bit b: an instruction starts at byte b of the site */
	u16 fn;	    /* MON_CALL_*, entered with the pad the site leaves after the call */
	/*
	 * The site's bytes after the call keep the original's (instead of
	 * nops), so that code may also arrive there: asm_load_gs_index's
	 * fixup for a bad selector jumps back to its `2:` (the nop before the
	 * second swapgs), which then runs as it was. 0: nops.
	 */
	bool keep_tail;
} literals[] = {
	{ CALL_LIT_RD_KGS,
	  { 0x0f, 0x01, 0xf8, 0xf3, 0x48, 0x0f, 0xae, 0xc8, 0x0f, 0x01, 0xf8 },
	  11,
	  1u << 0 | 1u << 3 | 1u << 8,
	  MON_CALL_RD_KGS,
	  false },
	{ CALL_LIT_WR_KGS,
	  { 0x0f, 0x01, 0xf8, 0xf3, 0x48, 0x0f, 0xae, 0xdf, 0x0f, 0x01, 0xf8 },
	  11,
	  1u << 0 | 1u << 3 | 1u << 8,
	  MON_CALL_WR_KGS,
	  false },
	{ CALL_LIT_CR2,
	  { 0x0f, 0x20, 0xd0, 0x0f, 0x1f, 0x00 },
	  6,
	  1u << 0 | 1u << 3,
	  MON_CALL_RD_CR2,
	  false },
	{ CALL_LIT_SS,
	  { 0x66, 0x8c, 0xd0, 0x66, 0x83, 0xf8, 0x18 },
	  7,
	  1u << 0 | 1u << 3,
	  MON_CALL_SS_CMP,
	  false },
	/* swapgs, then the 3-byte nop Linux's alternatives leave, its three 1-byte nops, or lfence.
	 */
	{ CALL_LIT_SWAPGS,
	  { 0x0f, 0x01, 0xf8, 0x0f, 0x1f, 0x00 },
	  6,
	  1u << 0 | 1u << 3,
	  MON_CALL_SWAPGS,
	  false },
	{ CALL_LIT_SWAPGS,
	  { 0x0f, 0x01, 0xf8, 0x90, 0x90, 0x90 },
	  6,
	  1u << 0 | 1u << 3 | 1u << 4 | 1u << 5,
	  MON_CALL_SWAPGS,
	  false },
	{ CALL_LIT_SWAPGS,
	  { 0x0f, 0x01, 0xf8, 0x0f, 0xae, 0xe8 },
	  6,
	  1u << 0 | 1u << 3,
	  MON_CALL_SWAPGS,
	  false },
	/* asm_load_gs_index: swapgs; mov %edi,%gs; a 3-byte nop, three nops or mfence; swapgs. */
	{ CALL_LIT_LOAD_GS,
	  { 0x0f, 0x01, 0xf8, 0x8e, 0xef, 0x0f, 0x1f, 0x00, 0x0f, 0x01, 0xf8 },
	  11,
	  1u << 0 | 1u << 3 | 1u << 5 | 1u << 8,
	  MON_CALL_LOAD_GS,
	  true },
	{ CALL_LIT_LOAD_GS,
	  { 0x0f, 0x01, 0xf8, 0x8e, 0xef, 0x90, 0x90, 0x90, 0x0f, 0x01, 0xf8 },
	  11,
	  1u << 0 | 1u << 3 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 8,
	  MON_CALL_LOAD_GS,
	  true },
	{ CALL_LIT_LOAD_GS,
	  { 0x0f, 0x01, 0xf8, 0x8e, 0xef, 0x0f, 0xae, 0xf0, 0x0f, 0x01, 0xf8 },
	  11,
	  1u << 0 | 1u << 3 | 1u << 5 | 1u << 8,
	  MON_CALL_LOAD_GS,
	  true },
	/*
	 * load_seg_legacy: `mov $__USER_DS,%edx; mov %edx,%fs; mov %eax,%fs`.
	 * Its fixup for a bad selector zeroes the register and retries the mov.
	 */
	{ CALL_LIT_LOAD_FS,
	  { 0xba, 0x2b, 0x00, 0x00, 0x00, 0x8e, 0xe2, 0x8e, 0xe0 },
	  9,
	  1u << 0 | 1u << 5 | 1u << 7,
	  MON_CALL_LOAD_FS,
	  true },
	/*
	 * native_write_msr: `mov %esi,%eax; mov %edi,%ecx; wrmsr`, then the 2-byte
	 * nop of its tracepoint's static key (a jmp while tracing: no match).
	 */
	{ CALL_LIT_WRMSR,
	  { 0x89, 0xf0, 0x89, 0xf9, 0x0f, 0x30, 0x66, 0x90 },
	  8,
	  1u << 0 | 1u << 2 | 1u << 4 | 1u << 6,
	  MON_CALL_WRMSR,
	  true },
	/* __switch_to on AMD CPUs: `mov $__KERNEL_DS,%eax; mov %eax,%ss`. */
	{ CALL_LIT_SS_LOAD,
	  { 0xb8, 0x18, 0x00, 0x00, 0x00, 0x8e, 0xd0 },
	  7,
	  1u << 0 | 1u << 5,
	  MON_CALL_SS_LOAD,
	  true },
};

/* Linux's x86 nops for 1, 2 and 6 bytes: the pads the sites leave. */
static void put_nops(u8 *p, unsigned n)
{
	static const u8 nop1[] = { 0x90 }, nop2[] = { 0x66, 0x90 },
			nop6[] = { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	const u8 *nop = n == 1 ? nop1 : n == 2 ? nop2 : nop6;

	BUG_ON(n != 1 && n != 2 && n != 6);
	memcpy(p, nop, n);
}

enum call_literal_kind call_literal_plan(const struct scan_result *res, const u8 *page, u64 page_la,
					 unsigned off, u8 *repl, unsigned *len)
{
	for (unsigned k = 0; k < sizeof(literals) / sizeof(literals[0]); k++) {
		const unsigned n = literals[k].len, pad = n - 5;
		bool ok = off + n <= PAGE_SIZE && !memcmp(page + off, literals[k].bytes, n);

		/* A branch may land at the start, or in a tail kept as it was. */
		for (unsigned b = 0; ok && b < n; b++)
			ok = scan_is_insn_start(res, off + b) ==
				     !!(literals[k].starts & (1u << b)) &&
			     (b == 0 || (literals[k].keep_tail && b >= 5) ||
			      !scan_is_target(res, off + b));
		if (!ok || !monitor_put_rel32(repl, 0xe8, page_la + off,
					      monitor_call_entry(literals[k].fn, pad)))
			continue;
		if (literals[k].keep_tail)
			memcpy(repl + 5, page + off + 5, pad);
		else
			put_nops(repl + 5, pad);
		*len = n;
		return literals[k].kind;
	}
	return CALL_LIT_NONE;
}
