/* SPDX-License-Identifier: MIT */
/*
 * For the scan memo's tests (tests/unit/test_scan.c, test_scan_ahead.c): a
 * scan through a memo must record exactly what a scan from scratch does.
 * Include after cmocka.h.
 */
#ifndef UMBRA_TESTS_SCAN_SAME_H
#define UMBRA_TESTS_SCAN_SAME_H

#include <string.h>

#include "decode/scan.h"

/*
 * Everything scans `a` (from scratch) and `b` (through a memo) recorded is
 * the same, the decode counters aside; `iter` names the case in a failure.
 */
static inline void assert_same_scan(const struct scan_result *a, const struct scan_result *b,
				    int iter)
{
	if (memcmp(a->insn_len, b->insn_len, sizeof(a->insn_len)))
		for (unsigned o = 0; o < SCAN_PAGE_SIZE; o++)
			if (a->insn_len[o] != b->insn_len[o])
				fail_msg("iter %d: offset %#x: len %u from scratch, %u with the "
					 "memo",
					 iter, o, a->insn_len[o], b->insn_len[o]);
	assert_memory_equal(a->targets, b->targets, sizeof(a->targets));
	assert_int_equal(a->nsites, b->nsites);
	for (unsigned i = 0; i < a->nsites; i++) {
		assert_int_equal(a->sites[i].off, b->sites[i].off);
		assert_int_equal(a->sites[i].len, b->sites[i].len);
		assert_int_equal(a->sites[i].kind, b->sites[i].kind);
		assert_int_equal(a->sites[i].conflict, b->sites[i].conflict);
		assert_memory_equal(a->sites[i].orig, b->sites[i].orig, a->sites[i].len);
	}
	assert_int_equal(a->ninsns, b->ninsns);
	assert_int_equal(a->nconflicts, b->nconflicts);
	assert_int_equal(a->next_used, b->next_used);
	assert_int_equal(a->pending_straddle, b->pending_straddle);
	assert_int_equal(a->ninvalid, b->ninvalid);
	assert_int_equal(a->nexits, b->nexits);
	if (a->nexits)
		assert_memory_equal(a->exits, b->exits, a->nexits * sizeof(*a->exits));
}

#endif /* UMBRA_TESTS_SCAN_SAME_H */
