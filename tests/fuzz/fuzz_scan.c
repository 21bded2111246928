/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the scan memo (decode/scan.h, item 7): whatever the
 * bytes, a rescan through the memo of an earlier scan records exactly what
 * a scan from scratch records. test_scan checks that on random pages; here
 * the fuzzer steers the bytes, the rewrites and what the memo is keyed on.
 *
 * Input: byte 0 flags (bit 0: 32-bit code; bit 1: rescan at another
 * address; bits 2-5: next-page bytes of the rescan), bytes 1-2 the entry
 * (little endian, mod 4096), then the page's first bytes (the rest int3),
 * up to the first 4096; after them, rewrites of 3 bytes each (offset,
 * offset, value) applied before the rescan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGE_GVA 0xffffffff81000000ull

static void same(const struct scan_result *a, const struct scan_result *b)
{
	if (memcmp(a->insn_len, b->insn_len, sizeof(a->insn_len)) ||
	    memcmp(a->targets, b->targets, sizeof(a->targets)) || a->nsites != b->nsites ||
	    a->ninsns != b->ninsns || a->nconflicts != b->nconflicts ||
	    a->next_used != b->next_used || a->pending_straddle != b->pending_straddle ||
	    a->ninvalid != b->ninvalid || a->nexits != b->nexits ||
	    (a->nexits && memcmp(a->exits, b->exits, a->nexits * sizeof(*a->exits))))
		abort();
	for (unsigned i = 0; i < a->nsites; i++)
		if (a->sites[i].off != b->sites[i].off || a->sites[i].len != b->sites[i].len ||
		    a->sites[i].kind != b->sites[i].kind ||
		    a->sites[i].conflict != b->sites[i].conflict)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static u8 buf[SCAN_PAGE_SIZE + SCAN_INSN_MAX];
	static struct scan_memo *memo;
	struct scan_result first, a, b;
	enum decode_mode mode;
	u64 gva2 = PAGE_GVA;
	unsigned next2, n;
	u16 entry;
	int ra, rb;

	if (size < 3)
		return 0;
	if (!memo && !(memo = scan_memo_new()))
		abort();
	mode = data[0] & 1 ? DECODE_32 : DECODE_64;
	if (data[0] & 2)
		gva2 += SCAN_PAGE_SIZE;
	next2 = MIN((data[0] >> 2) & 0xfu, SCAN_INSN_MAX);
	entry = (u16)((data[1] | data[2] << 8) % SCAN_PAGE_SIZE);
	data += 3;
	size -= 3;
	n = (unsigned)MIN(size, (size_t)SCAN_PAGE_SIZE);
	memset(buf, 0xcc, sizeof(buf));
	memcpy(buf, data, n);
	data += n;
	size -= n;

	/* The first scan fills the memo (a memo left by the last input included). */
	scan_result_init(&first, gva(PAGE_GVA), mode, SCAN_KINDS_SHADOW);
	if (scan_code_page_add_entry_memo(&first, buf, buf + SCAN_PAGE_SIZE, SCAN_INSN_MAX, &entry,
					  1, memo) < 0)
		abort();
	scan_result_free(&first);
	for (; size >= 3; data += 3, size -= 3)
		buf[(data[0] | data[1] << 8) % sizeof(buf)] = data[2];
	scan_result_init(&a, gva(gva2), mode, SCAN_KINDS_SHADOW);
	scan_result_init(&b, gva(gva2), mode, SCAN_KINDS_SHADOW);
	ra = scan_code_page_add_entry(&a, buf, buf + SCAN_PAGE_SIZE, next2, &entry, 1);
	rb = scan_code_page_add_entry_memo(&b, buf, buf + SCAN_PAGE_SIZE, next2, &entry, 1, memo);
	if (ra != rb || ra < 0 || a.ndecodes != b.ndecodes + b.nmemo)
		abort();
	same(&a, &b);
	scan_result_free(&a);
	scan_result_free(&b);
	/* The sync offset through the memo: the same answer. */
	if (scan_sync_offset_memo(memo, buf + 100, 64, buf + 164, 30, mode) !=
	    scan_sync_offset(buf + 100, 64, buf + 164, 30, mode))
		abort();
	return 0;
}
