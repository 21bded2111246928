/* SPDX-License-Identifier: MIT */
/*
 * Statistics, and the end of every public operation.
 *
 * This file:
 *  1. hand the counters to the VMM (DESIGN.md "Statistics");
 *  2. close an operation: close the writer's batch (commit), then ask for
 *     the one real TLB flush the operation needs, if any. Every public
 *     function that may store into a shadow table ends here.
 */
#include "shadow/internal.h"

/* Item 1. */
const struct shadow_stats *shadow_get_stats(const struct shadow_mmu *mmu)
{
	return &mmu->stats;
}

/* Item 2. */
void op_end(struct shadow_mmu *mmu)
{
	mmu->busy_root = NULL;
	if (mmu->cfg.writer.commit)
		mmu->cfg.writer.commit(mmu->cfg.writer.opaque);
	if (mmu->need_flush_all) {
		mmu->need_flush_all = false;
		if (mmu->cfg.flusher.flush)
			mmu->cfg.flusher.flush(mmu->cfg.flusher.opaque, SHADOW_FLUSH_ALL, gva(0));
	}
}
