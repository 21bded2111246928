/* SPDX-License-Identifier: MIT */
/*
 * Where a run's traps come from: shadow mode's exceptions counted by
 * (vector, guest RIP), so that `--stats` can name the instructions that
 * cost the most without a --trace (vmm/trap_sites.c). Interrupts are not
 * counted here: they arrive wherever the guest happens to be.
 */
#ifndef UMBRA_VMM_TRAP_SITES_H
#define UMBRA_VMM_TRAP_SITES_H

#include "umbra/types.h"

#define TRAP_SITES_CAP 4096u /* distinct sites kept (a power of two) */
#define TRAP_SITES_TOP 20u   /* how many --stats lists */

struct trap_site {
	u64 rip;   /* the guest RIP the trap was taken at: the faulting instruction */
	u64 count; /* 0: the slot is free */
	u8 vector;
};

struct trap_sites {
	struct trap_site slot[TRAP_SITES_CAP];
	unsigned used;	  /* slots taken */
	u64 total, other; /* traps counted; ... of them at sites no slot was left for */
};

/* Count one trap of `vector` (below 32) at `rip`. */
void trap_sites_add(struct trap_sites *t, unsigned vector, u64 rip);

/*
 * The `n` busiest sites into out[], most traps first (ties: lower vector,
 * then lower RIP, so the order is the same from run to run); returns how
 * many were written.
 */
unsigned trap_sites_top(const struct trap_sites *t, struct trap_site *out, unsigned n);

#endif /* UMBRA_VMM_TRAP_SITES_H */
