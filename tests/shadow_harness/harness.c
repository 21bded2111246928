/* SPDX-License-Identifier: MIT */
/*
 * The shadow MMU differential harness (see harness.h for the model).
 *
 * This file, in order:
 *  1. the choice source: a PRNG or the fuzzer's bytes;
 *  2. synthetic guest RAM, the pool, the shadow writer and the flusher;
 *  3. the model CPU: a hardware walk of the live shadow root, guest stores
 *     through the direct map, and guest accesses compared with the oracle;
 *  4. the model guest kernel: its page tables, edited only by guest stores;
 *  5. the operations, one function each, picked by weight;
 *  6. the check after every step, and the TLB the oracle allows (stale
 *     leaf translations until a flush, when the MMU has unsync on);
 *  7. set-up, the run loop and the summary.
 *
 * Guest-physical layout (gfns):
 *   1        the direct map's PDPT          2        the direct map's PD
 *   3..10    the PML4 of address space 0..7 (never reused for anything else)
 *   16..1039 the kernel's table frames: PDPTs, PDs and PTs of the window,
 *            recycled as data ("reuse a page-table page as data")
 *   the rest data; [20 MiB, 22 MiB) is a hole; beyond 32 MiB is not RAM.
 *
 * The window: the gvas random mappings use, a few slots at each level so
 * tables are shared and reused: PML4 0..2, PDPT 0..2, PD 0..3, PT 0..7
 * (and now and then any PT index).
 */
#include "tests/shadow_harness/harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- layout ---------------------------------------------------------------- */
#define DM_PDPT_GFN    1ull
#define DM_PD_GFN      2ull
#define PML4_GFN(as)   (3ull + (as))
#define REGION_LO_GFN  16ull
#define REGION_NR      1024ull
#define REGION_HI_GFN  (REGION_LO_GFN + REGION_NR)
#define RAM_GFNS       (HARNESS_RAM_SIZE >> PAGE_SHIFT)
#define DM_SLOT	       273u
#define MONITOR_PML4E  ((HARNESS_POOL_MPA + 512 * GiB) | PTE_P | PTE_RW) /* supervisor only */
#define GADDR_MASK     PTE_ADDR_MASK(HARNESS_MAXPHYADDR)
#define HOST_ADDR_MASK PTE_ADDR_MASK(X86_MAXPHYADDR_MAX)
#define RIGHTS_MASK    (PTE_RW | PTE_US | PTE_NX)

#define WIN_L4	  3u
#define WIN_L3	  3u
#define WIN_L2	  4u
#define WIN_L1	  8u
#define WIN_PAGES (WIN_L4 * WIN_L3 * WIN_L2 * WIN_L1)

#define MAX_TOUCHED 48
#define MAX_STALE   8192 /* ... at most: the model kernel flushes past 1024 (harness_step) */
#define NR_RECENT   32	 /* recently mapped gvas: accesses prefer them */

/* ---- operations ------------------------------------------------------------ */
enum harness_op {
	OP_ACCESS,
	OP_MAP_4K,
	OP_MAP_2M,
	OP_MAP_1G,
	OP_UNMAP,
	OP_PROTECT,
	OP_SET_AD,
	OP_NEW_AS,
	OP_SWITCH_CR3,
	OP_SWITCH_VIEW,
	OP_TABLE_TO_DATA,
	OP_INVLPG,
	OP_INVPCID,
	OP_FLUSH,
	OP_SET_MODE,
	OP_STAC_CLAC,
	OP_MAP_MONITOR,
	OP_REMAP,
	OP_PREFAULT,
	NR_OPS
};

static const struct {
	const char *name;
	unsigned weight;
} op_table[NR_OPS] = {
	[OP_ACCESS] = { "access", 300 },
	[OP_MAP_4K] = { "map-4k", 150 },
	[OP_MAP_2M] = { "map-2m", 40 },
	[OP_MAP_1G] = { "map-1g", 6 },
	[OP_UNMAP] = { "unmap", 50 },
	[OP_PROTECT] = { "protect", 80 },
	[OP_SET_AD] = { "set-ad", 60 },
	[OP_NEW_AS] = { "new-as", 20 },
	[OP_SWITCH_CR3] = { "switch-cr3", 60 },
	[OP_SWITCH_VIEW] = { "switch-view", 60 },
	[OP_TABLE_TO_DATA] = { "table-to-data", 20 },
	[OP_INVLPG] = { "invlpg", 40 },
	[OP_INVPCID] = { "invpcid", 10 },
	[OP_FLUSH] = { "flush", 10 },
	[OP_SET_MODE] = { "set-mode", 25 },
	[OP_STAC_CLAC] = { "stac-clac", 10 },
	[OP_MAP_MONITOR] = { "map-monitor", 4 },
	[OP_REMAP] = { "remap", 60 },
	[OP_PREFAULT] = { "prefault", 40 },
};
_Static_assert(NR_OPS <= ARRAY_SIZE(((struct harness_counts *)0)->ops), "ops[] too small");

struct harness {
	struct harness_config cfg;
	FILE *log;

	/* 1. choices */
	u64 prng, check_prng;
	size_t pos;
	bool exhausted;
	bool tail;    /* the bytes ran out: the PRNG drives the last steps */
	u64 tail_end; /* the step that ends the tail */

	/* 2. memory */
	u8 *ram;
	u8 *pool;
	struct shadow_mmu *mmu;
	char writer_error[256];

	/* the guest's control state (the oracle's input) */
	struct walk_ctl ctl;
	bool ac; /* virtual RFLAGS.AC */
	gpa_t pml4[HARNESS_MAX_AS];
	unsigned nr_as, cur_as;
	enum shadow_view view;
	mpa_t live_root;

	/* the kernel's table-frame allocator */
	u64 alloc_cursor;
	u8 in_use[REGION_NR];

	gva_t recent[NR_RECENT]; /* ring of gvas the kernel mapped */
	u64 recent_size[NR_RECENT];
	unsigned recent_next;

	/* this step */
	u64 step;
	unsigned op;
	gva_t touched[MAX_TOUCHED];
	unsigned nr_touched;
	bool failed;

	struct harness_counts counts;

	/*
	 * 6. Older values of the qwords of table frames the guest stored to
	 * since the last flush that covers them (only with cfg.unsync): what
	 * a TLB may still translate with (SDM Vol. 3A §4.10.4).
	 */
	struct {
		u64 gpa, val;
	} stale[MAX_STALE];
	unsigned nr_stale;
	bool quiet; /* fail() only returns -1: trying a stale value */
};

static const struct paging_mode *mode4 = &paging_mode_4level;

static bool passes_with_stale_leaf(struct harness *h, gva_t at, u32 acc,
				   int (*check)(struct harness *, void *), void *arg);

/*
 * One guest RAM buffer outlives the harness that used it, with a bitmap of
 * the pages anyone may have written, so the next harness_create zeroes only
 * those: the fuzzer creates a harness per input, and a fresh 32 MiB calloc
 * under ASan costs more than the run itself.
 */
static u8 *ram_cache;
static u8 ram_dirty[RAM_GFNS / 8];

/* ==== 1. choices ============================================================= */

static u64 xorshift64s(u64 *s)
{
	u64 x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* A choice in [0, bound): from the PRNG, or from the next 1, 2 or 4 input bytes. */
static u64 pick(struct harness *h, u64 bound)
{
	u64 v = 0;
	unsigned need, i;

	if (bound <= 1)
		return 0;
	if (!h->cfg.bytes || h->tail)
		return xorshift64s(&h->prng) % bound;
	need = bound <= 256 ? 1 : bound <= 65536 ? 2 : 4;
	if (h->pos + need > h->cfg.nr_bytes) {
		h->exhausted = true;
		return 0;
	}
	for (i = 0; i < need; i++)
		v |= (u64)h->cfg.bytes[h->pos++] << (8 * i);
	return v % bound;
}

static bool chance(struct harness *h, unsigned percent)
{
	return pick(h, 100) < percent;
}

/* ==== 2. memory, writer, flusher ============================================ */

static bool gpa_is_ram(u64 where, u64 len)
{
	if (where >= HARNESS_RAM_SIZE || len > HARNESS_RAM_SIZE - where)
		return false;
	return where + len <= HARNESS_HOLE_GPA || where >= HARNESS_HOLE_GPA + HARNESS_HOLE_SIZE;
}

static void mark_dirty(u64 where, u64 len)
{
	u64 page;

	for (page = where >> PAGE_SHIFT; page <= (where + len - 1) >> PAGE_SHIFT; page++)
		ram_dirty[page / 8] |= 1u << (page % 8);
}

/* Guest memory for the walker and the MMU: they may write A/D bits through it. */
static void *harness_gpa_to_hva(void *opaque, gpa_t where, size_t len)
{
	struct harness *h = opaque;

	if (!len || !gpa_is_ram(where.v, len))
		return NULL;
	mark_dirty(where.v, len);
	return h->ram + where.v;
}

static u64 ram_read(struct harness *h, u64 where)
{
	return __atomic_load_n((u64 *)(h->ram + where), __ATOMIC_RELAXED);
}

static void note_stale(struct harness *h, u64 where, u64 old);

static void ram_write(struct harness *h, u64 where, u64 val)
{
	if (ram_read(h, where) != val)
		note_stale(h, where, ram_read(h, where));
	mark_dirty(where, 8);
	__atomic_store_n((u64 *)(h->ram + where), val, __ATOMIC_RELAXED);
}

static u64 *pool_hva(struct harness *h, u64 at)
{
	if (at < HARNESS_POOL_MPA || at - HARNESS_POOL_MPA >= h->cfg.pool_pages * PAGE_SIZE)
		return NULL;
	return (u64 *)(h->pool + (at - HARNESS_POOL_MPA));
}

static void writer_store(void *opaque, mpa_t spte_mpa, u64 *sptep, u64 val)
{
	struct harness *h = opaque;
	u8 *p = (u8 *)sptep;

	h->counts.writer_stores++;
	if (p < h->pool || p >= h->pool + h->cfg.pool_pages * PAGE_SIZE ||
	    ((uintptr_t)p & 7) != 0 || spte_mpa.v != HARNESS_POOL_MPA + (u64)(p - h->pool)) {
		if (!h->writer_error[0])
			snprintf(h->writer_error, sizeof(h->writer_error),
				 "shadow writer: store to hva %p / mpa %#llx is not a consistent "
				 "aligned pool location",
				 (void *)sptep, (unsigned long long)spte_mpa.v);
		return;
	}
	__atomic_store_n(sptep, val, __ATOMIC_RELAXED);
}

static void writer_commit(void *opaque)
{
	struct harness *h = opaque;

	h->counts.writer_commits++;
}

static void flusher_flush(void *opaque, enum shadow_flush_kind kind, gva_t where)
{
	struct harness *h = opaque;

	(void)where;
	if (kind == SHADOW_FLUSH_GVA)
		h->counts.flushes_gva++;
	else
		h->counts.flushes_all++;
}

/* ==== reporting ============================================================= */

static const char *view_name(enum shadow_view view)
{
	return view == SHADOW_VIEW_USER ? "user" : "kernel";
}

static unsigned pt_index(u64 va, unsigned level)
{
	return (va >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

static const char *walk_result_name(enum walk_result r)
{
	switch (r) {
	case WALK_OK: return "ok";
	case WALK_FAULT: return "#PF";
	case WALK_BAD_GPA: return "table outside RAM";
	case WALK_UNSUPPORTED_MODE: return "unsupported mode";
	}
	return "?";
}

static const char *fault_result_name(int r)
{
	switch (r) {
	case SHADOW_FIXED: return "FIXED";
	case SHADOW_GUEST_FAULT: return "GUEST_FAULT";
	case SHADOW_EMULATE_PT_WRITE: return "EMULATE_PT_WRITE";
	case SHADOW_MMIO: return "MMIO";
	case SHADOW_MONITOR_CONFLICT: return "MONITOR_CONFLICT";
	case SHADOW_EMULATE_ACCESS: return "EMULATE_ACCESS";
	case SHADOW_UNSUPPORTED: return "UNSUPPORTED";
	}
	return "?";
}

static bool hw_walk(struct harness *h, mpa_t root, gva_t where, u64 *out_mpa, u64 *rights,
		    char *why, size_t why_len);

static u32 view_read_access(struct harness *h, enum shadow_view view)
{
	if (view == SHADOW_VIEW_USER)
		return ACC_USER;
	return h->ac ? ACC_AC_SET : 0;
}

static void describe_gva(struct harness *h, gva_t where, enum shadow_view view)
{
	FILE *out = h->log;
	struct guest_walk walk;
	enum walk_result r;
	u64 m = 0, rights = 0;
	char why[128] = "";
	bool mapped;
	unsigned level;

	if (view == h->view) {
		mapped = hw_walk(h, h->live_root, where, &m, &rights, why, sizeof(why));
		fprintf(out, "  shadow (live root %#llx, hardware walk): %s",
			(unsigned long long)h->live_root.v, mapped ? "" : "not mapped");
		if (mapped)
			fprintf(out, "mpa %#llx rights%s%s%s", (unsigned long long)m,
				rights & PTE_RW ? " RW" : " RO", rights & PTE_US ? " US" : " S",
				rights & PTE_NX ? " NX" : " X");
		fprintf(out, "%s%s\n", why[0] ? " -- " : "", why);
	}
	mapped = shadow_translate(h->mmu, view, where, (mpa_t *)&m, &rights);
	fprintf(out, "  shadow_translate(%s): ", view_name(view));
	if (mapped)
		fprintf(out, "mpa %#llx rights%s%s%s\n", (unsigned long long)m,
			rights & PTE_RW ? " RW" : " RO", rights & PTE_US ? " US" : " S",
			rights & PTE_NX ? " NX" : " X");
	else
		fprintf(out, "not mapped\n");
	r = walk_guest(mode4, &(struct walk_mem){ h, harness_gpa_to_hva }, &h->ctl, where,
		       view_read_access(h, view), WALK_PEEK, &walk);
	fprintf(out, "  oracle (%s read, AC=%d): %s", view_name(view), h->ac, walk_result_name(r));
	if (r == WALK_OK)
		fprintf(out, " gpa %#llx level %u", (unsigned long long)walk.gpa.v, walk.level);
	if (r == WALK_FAULT)
		fprintf(out, " error code %#x", walk.fault.error_code);
	fprintf(out, "\n");
	for (level = 4; level >= 1 && level >= walk.level; level--)
		fprintf(out, "    L%u gpte @%#llx = %#018llx\n", level,
			(unsigned long long)walk.gpte_gpa[level].v,
			(unsigned long long)walk.gpte[level]);
	fprintf(out, "  control: cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx; as %u of %u\n",
		(unsigned long long)h->ctl.cr0, (unsigned long long)h->ctl.cr3,
		(unsigned long long)h->ctl.cr4, (unsigned long long)h->ctl.efer, h->cur_as,
		h->nr_as);
}

/* Report a violation: seed, step, operation, gva, both translations. Returns -1. */
static int __printf(4, 5)
	fail(struct harness *h, gva_t where, enum shadow_view view, const char *fmt, ...)
{
	va_list ap;

	if (h->failed || h->quiet)
		return -1;
	h->failed = true;
	fprintf(h->log, "shadow-diff: VIOLATION seed=%llu step=%llu op=%s view=%s gva=%#llx: ",
		(unsigned long long)h->cfg.seed, (unsigned long long)h->step,
		h->op < NR_OPS ? op_table[h->op].name : "setup", view_name(view),
		(unsigned long long)where.v);
	va_start(ap, fmt);
	vfprintf(h->log, fmt, ap);
	va_end(ap);
	fprintf(h->log, "\n");
	describe_gva(h, where, view);
	if (!h->cfg.bytes)
		fprintf(h->log,
			"  reproduce: SHADOW_DIFF_SEED=%llu SHADOW_DIFF_OPS=%llu "
			"SHADOW_DIFF_TRACE=1 "
			"(pool %llu pages)\n",
			(unsigned long long)h->cfg.seed, (unsigned long long)h->step + 1,
			(unsigned long long)h->cfg.pool_pages);
	fflush(h->log);
	return -1;
}

static void __printf(2, 3) trace(struct harness *h, const char *fmt, ...)
{
	va_list ap;

	if (!h->cfg.trace)
		return;
	fprintf(h->log, "  [%llu] %s: ", (unsigned long long)h->step, op_table[h->op].name);
	va_start(ap, fmt);
	vfprintf(h->log, fmt, ap);
	va_end(ap);
	fprintf(h->log, "\n");
}

static void touch(struct harness *h, gva_t where)
{
	if (h->nr_touched < MAX_TOUCHED)
		h->touched[h->nr_touched++] = where;
}

/* ==== 3. the model CPU ======================================================= */

/*
 * Walk the shadow tables from `root` as the hardware would for a CPL3
 * access: RW and US ANDed, NX ORed, PS at levels 2 and 3. A non-leaf spte
 * must point into the pool; `why` says what was wrong if not.
 */
static bool hw_walk(struct harness *h, mpa_t root, gva_t where, u64 *out_mpa, u64 *rights,
		    char *why, size_t why_len)
{
	u64 table = root.v, acc = PTE_RW | PTE_US, nx = 0;
	unsigned level;

	for (level = 4; level >= 1; level--) {
		u64 *sptes = pool_hva(h, table), spte;

		if (!sptes) {
			snprintf(why, why_len, "level %u table mpa %#llx is outside the pool",
				 level, (unsigned long long)table);
			return false;
		}
		spte = __atomic_load_n(&sptes[pt_index(where.v, level)], __ATOMIC_RELAXED);
		if (!(spte & PTE_P))
			return false;
		acc &= spte & (PTE_RW | PTE_US);
		nx |= spte & PTE_NX;
		if (level == 1 || ((level == 2 || level == 3) && (spte & PTE_PS))) {
			u64 size = walk_level_page_size(mode4, level);

			*out_mpa = ((spte & HOST_ADDR_MASK) & ~(size - 1)) | (where.v & (size - 1));
			*rights = acc | nx;
			return true;
		}
		if (level == 4 && pt_index(where.v, 4) == HARNESS_MONITOR_SLOT)
			return false; /* the monitor's own tables: not ours to walk */
		table = spte & HOST_ADDR_MASK;
	}
	return false;
}

static bool rights_allow(u64 rights, u32 kind)
{
	if (!(rights & PTE_US))
		return false; /* the guest always runs at real CPL3 */
	if ((kind & ACC_WRITE) && !(rights & PTE_RW))
		return false;
	if ((kind & ACC_FETCH) && (rights & PTE_NX))
		return false;
	return true;
}

static int set_view(struct harness *h, enum shadow_view view)
{
	if (h->view == view)
		return 0;
	h->view = view;
	h->live_root = shadow_switch_view(h->mmu, view);
	if (!pool_hva(h, h->live_root.v) || (h->live_root.v & ~PAGE_MASK))
		return fail(h, gva(0), view,
			    "shadow_switch_view returned root mpa %#llx, not a pool page",
			    (unsigned long long)h->live_root.v);
	return 0;
}

static void forget_stale(struct harness *h, u64 where);

static int load_cr3(struct harness *h, u64 cr3)
{
	/* The MMU syncs at every CR3 load, flushing or not (mmu.h): so the oracle expects it. */
	h->nr_stale = 0;
	h->ctl.cr3 = cr3 & ~CR3_NOFLUSH;
	h->live_root = shadow_set_cr3(h->mmu, cr3, h->view);
	if (!pool_hva(h, h->live_root.v) || (h->live_root.v & ~PAGE_MASK))
		return fail(h, gva(0), h->view,
			    "shadow_set_cr3 returned root mpa %#llx, not a pool page",
			    (unsigned long long)h->live_root.v);
	return 0;
}

static gva_t dm_gva(u64 where)
{
	return gva(HARNESS_DIRECT_MAP + where);
}

/*
 * A guest store of `val` to the kernel's direct map at gpa `where` (8-byte
 * aligned), made at virtual CPL0 exactly as the CPU would through the live
 * shadow root. This is the only way the kernel edits its tables after boot.
 */
static int cpu_store(struct harness *h, u64 where, u64 val)
{
	gva_t at = dm_gva(where);
	u32 acc = ACC_WRITE | (h->ac ? ACC_AC_SET : 0);
	unsigned tries;

	if (!gpa_is_ram(where, 8) || (where & 7))
		return fail(h, at, SHADOW_VIEW_KERNEL, "harness bug: store to non-RAM gpa %#llx",
			    (unsigned long long)where);
	if (set_view(h, SHADOW_VIEW_KERNEL))
		return -1;
	h->counts.cpu_stores++;
	touch(h, at);
	for (tries = 0; tries < HARNESS_MAX_FAULTS; tries++) {
		struct shadow_fault_info info = { 0 };
		enum shadow_fault_result r;
		u64 m, rights;
		char why[128] = "";

		if (hw_walk(h, h->live_root, at, &m, &rights, why, sizeof(why))) {
			if (m != where)
				return fail(h, at, h->view,
					    "the direct map translates to mpa %#llx, the guest to "
					    "gpa %#llx",
					    (unsigned long long)m, (unsigned long long)where);
			if (rights_allow(rights, ACC_WRITE)) {
				ram_write(h, where, val);
				return 0;
			}
		} else if (why[0]) {
			return fail(h, at, h->view, "%s", why);
		}
		h->counts.cpu_store_faults++;
		r = shadow_fault(h->mmu, at, acc, SHADOW_VIEW_KERNEL, &info);
		switch (r) {
		case SHADOW_FIXED: continue;
		case SHADOW_EMULATE_PT_WRITE: {
			u64 old = ram_read(h, where);

			if ((info.gpa.v & PAGE_MASK) != (where & PAGE_MASK))
				return fail(
					h, at, h->view,
					"EMULATE_PT_WRITE for gpa %#llx, the store is to gpa %#llx",
					(unsigned long long)info.gpa.v, (unsigned long long)where);
			ram_write(h, where, val);
			h->counts.pt_writes++;
			shadow_pt_write(h->mmu, gpa(where), 8, &old, &val);
			return 0;
		}
		default:
			return fail(h, at, h->view,
				    "harness bug or library bug: a direct-map store got %s (error "
				    "code %#x)",
				    fault_result_name(r), info.error_code);
		}
	}
	return fail(h, at, h->view, "no progress: a direct-map store faulted %u times",
		    HARNESS_MAX_FAULTS);
}

/* Frames the kernel never lets a data write change (its fixed tables). */
static bool frame_is_fixed(u64 frame)
{
	return frame >= DM_PDPT_GFN && frame < PML4_GFN(HARNESS_MAX_AS);
}

/* A qword a random data write stores: same value on fixed frames, else a mix. */
static u64 data_value(struct harness *h, u64 where)
{
	u64 frame = where >> PAGE_SHIFT;

	if (frame_is_fixed(frame))
		return ram_read(h, where);
	switch (pick(h, 4)) {
	case 0: return 0;
	case 1: /* something that looks like a gpte to a table frame */
		return ((REGION_LO_GFN + pick(h, REGION_NR)) << PAGE_SHIFT) |
		       (pick(h, 128) & 0x67) | PTE_P;
	case 2: /* a data gpte, maybe large */
		return ((pick(h, RAM_GFNS + 512)) << PAGE_SHIFT) | (pick(h, 256) & 0xe7) | PTE_P;
	default: return ((u64)pick(h, 1ull << 32) << 32) | pick(h, 1ull << 32);
	}
}

/* An access that went through the shadow to mpa m: may the guest's tables make it? */
struct access_done {
	gva_t where;
	u32 kind, acc;
	u64 m;
};

static int access_allowed(struct harness *h, void *arg)
{
	const struct access_done *ad = arg;
	struct walk_mem mem = { h, harness_gpa_to_hva };
	struct guest_walk w;
	u64 leaf;

	if (walk_guest(mode4, &mem, &h->ctl, ad->where, ad->acc, WALK_PEEK, &w) != WALK_OK ||
	    !gpa_is_ram(w.gpa.v, 8) || w.gpa.v != ad->m)
		return -1;
	leaf = ram_read(h, w.gpte_gpa[w.level].v);
	return (leaf & PTE_A) && (!(ad->kind & ACC_WRITE) || (leaf & PTE_D)) ? 0 : -1;
}

/*
 * A guest access of `kind` (0 = read, ACC_WRITE or ACC_FETCH) at `where` in
 * `view`, made by the model CPU and compared with the oracle.
 */
static int cpu_access(struct harness *h, gva_t where, u32 kind, enum shadow_view view)
{
	struct walk_mem mem = { h, harness_gpa_to_hva };
	u32 acc = kind | view_read_access(h, view);
	struct shadow_fault_info info = { 0 };
	bool in_monitor = pt_index(where.v, 4) == HARNESS_MONITOR_SLOT;
	struct guest_walk ow;
	enum walk_result orc;
	int outcome = -1; /* -1: reached memory through the shadow, else a fault result */
	u64 m = 0, rights = 0;
	unsigned tries;

	where.v &= ~7ull;
	if (set_view(h, view))
		return -1;
	h->counts.accesses++;
	touch(h, where);
	orc = walk_guest(mode4, &mem, &h->ctl, where, acc, WALK_PEEK, &ow);
	for (tries = 0; tries < HARNESS_MAX_FAULTS; tries++) {
		char why[128] = "";
		enum shadow_fault_result r;

		if (hw_walk(h, h->live_root, where, &m, &rights, why, sizeof(why)) &&
		    rights_allow(rights, kind))
			break;
		if (why[0])
			return fail(h, where, view, "%s", why);
		r = shadow_fault(h->mmu, where, acc, view, &info);
		if (r != SHADOW_FIXED) {
			outcome = r;
			break;
		}
	}
	if (tries == HARNESS_MAX_FAULTS)
		return fail(
			h, where, view,
			"no progress: %s %s faulted %u times and shadow_fault kept saying FIXED",
			view_name(view),
			kind & ACC_WRITE   ? "write"
			: kind & ACC_FETCH ? "fetch"
					   : "read",
			HARNESS_MAX_FAULTS);

	switch (outcome) {
	case -1: h->counts.accesses_ok++; break;
	case SHADOW_GUEST_FAULT: h->counts.accesses_guest_fault++; break;
	case SHADOW_MMIO: h->counts.accesses_mmio++; break;
	case SHADOW_EMULATE_PT_WRITE: h->counts.accesses_pt_write++; break;
	case SHADOW_MONITOR_CONFLICT: h->counts.accesses_monitor++; break;
	case SHADOW_EMULATE_ACCESS: h->counts.accesses_emulate++; break;
	}

	trace(h, "  -> %s; oracle %s %#x level %u gpa %#llx",
	      outcome == -1 ? "ok" : fault_result_name(outcome), walk_result_name(orc),
	      orc == WALK_FAULT ? ow.fault.error_code : 0, ow.level, (unsigned long long)ow.gpa.v);

	/* Compare with the oracle. */
	if (in_monitor) {
		if (outcome == -1)
			return fail(h, where, view,
				    "the guest reached the monitor slot (mpa %#llx)",
				    (unsigned long long)m);
		if (orc == WALK_OK && outcome != SHADOW_MONITOR_CONFLICT)
			return fail(h, where, view,
				    "the guest maps the reserved slot; shadow_fault said %s, not "
				    "MONITOR_CONFLICT",
				    fault_result_name(outcome));
		if (orc == WALK_FAULT && outcome != SHADOW_MONITOR_CONFLICT &&
		    (outcome != SHADOW_GUEST_FAULT || info.error_code != ow.fault.error_code))
			return fail(
				h, where, view,
				"oracle #PF %#x in the reserved slot; shadow_fault said %s (%#x)",
				ow.fault.error_code, fault_result_name(outcome), info.error_code);
		return 0;
	}
	if (outcome == SHADOW_MONITOR_CONFLICT)
		return fail(h, where, view, "MONITOR_CONFLICT outside the reserved slot");
	if (outcome == -1) {
		/* Through a stale leaf (unsync): fine if an older gpte allowed it. */
		struct access_done ad = { where, kind, acc, m };

		/* Only when the oracle holds older values: else no second walk per access. */
		if (h->nr_stale && access_allowed(h, &ad) &&
		    passes_with_stale_leaf(h, where, acc, access_allowed, &ad)) {
			if (kind & ACC_WRITE)
				ram_write(h, m, data_value(h, m));
			return 0;
		}
	}
	switch (orc) {
	case WALK_OK:
		if (!gpa_is_ram(ow.gpa.v, 8)) {
			if (outcome != SHADOW_MMIO || info.gpa.v != ow.gpa.v)
				return fail(h, where, view,
					    "oracle: non-RAM gpa %#llx (MMIO); shadow: %s mpa/gpa "
					    "%#llx",
					    (unsigned long long)ow.gpa.v,
					    outcome == -1 ? "mapped" : fault_result_name(outcome),
					    (unsigned long long)(outcome == -1 ? m : info.gpa.v));
			return 0;
		}
		if (outcome == SHADOW_EMULATE_PT_WRITE && (kind & ACC_WRITE)) {
			u64 old, val;

			if (info.gpa.v != ow.gpa.v)
				return fail(h, where, view,
					    "EMULATE_PT_WRITE at gpa %#llx, oracle gpa %#llx",
					    (unsigned long long)info.gpa.v,
					    (unsigned long long)ow.gpa.v);
			old = ram_read(h, ow.gpa.v);
			val = data_value(h, ow.gpa.v);
			ram_write(h, ow.gpa.v, val);
			h->counts.pt_writes++;
			shadow_pt_write(h->mmu, ow.gpa, 8, &old, &val);
			return 0;
		}
		if (outcome == SHADOW_EMULATE_ACCESS) {
			/*
			 * With SMAP the kernel view cannot map a user page; the VMM
			 * emulates the legal accesses to one against info.gpa: data
			 * with AC = 1, and fetches (SMAP does not cover them; with
			 * SMEP = 0 they are allowed). Only legal there.
			 */
			if (view != SHADOW_VIEW_KERNEL || !(h->ctl.cr4 & CR4_SMAP) ||
			    !((acc & ACC_AC_SET) || (kind & ACC_FETCH)) || !(ow.rights & PTE_US))
				return fail(h, where, view,
					    "EMULATE_ACCESS outside SMAP with AC = 1");
			if (info.gpa.v != ow.gpa.v)
				return fail(h, where, view,
					    "EMULATE_ACCESS at gpa %#llx, oracle gpa %#llx",
					    (unsigned long long)info.gpa.v,
					    (unsigned long long)ow.gpa.v);
			/*
			 * An emulated write stores the value already there: whether the VMM
			 * must report an emulated store to a shadowed table here with
			 * shadow_pt_write is not specified by mmu.h.
			 */
			return 0;
		}
		if (outcome != -1)
			return fail(h, where, view,
				    "oracle: access ok at gpa %#llx; shadow_fault said %s (%#x)",
				    (unsigned long long)ow.gpa.v, fault_result_name(outcome),
				    info.error_code);
		if (m != ow.gpa.v)
			return fail(h, where, view, "oracle gpa %#llx, shadow mpa %#llx",
				    (unsigned long long)ow.gpa.v, (unsigned long long)m);
		{
			/* The CPU set A (and D for a write) in the leaf gpte; did the shadow? */
			u64 leaf = ram_read(h, ow.gpte_gpa[ow.level].v);

			if (!(leaf & PTE_A) || ((kind & ACC_WRITE) && !(leaf & PTE_D)))
				return fail(h, where, view,
					    "a %s went through the shadow but the leaf gpte %#llx "
					    "lacks %s",
					    kind & ACC_WRITE ? "write" : "read",
					    (unsigned long long)leaf, !(leaf & PTE_A) ? "A" : "D");
		}
		if (kind & ACC_WRITE)
			ram_write(h, m, data_value(h, m));
		return 0;
	case WALK_FAULT:
		if (outcome != SHADOW_GUEST_FAULT)
			return fail(h, where, view, "oracle #PF error code %#x; shadow: %s",
				    ow.fault.error_code,
				    outcome == -1 ? "access went through"
						  : fault_result_name(outcome));
		if (info.error_code != ow.fault.error_code || info.cr2.v != where.v)
			return fail(h, where, view,
				    "oracle #PF %#x cr2 %#llx; shadow #PF %#x cr2 %#llx",
				    ow.fault.error_code, (unsigned long long)where.v,
				    info.error_code, (unsigned long long)info.cr2.v);
		return 0;
	case WALK_BAD_GPA:
		if (outcome == -1)
			return fail(h, where, view,
				    "a guest table is outside RAM but the access went through");
		return 0;
	case WALK_UNSUPPORTED_MODE: break;
	}
	return fail(h, where, view, "oracle: unsupported mode");
}

/* ==== 4. the model guest kernel ============================================ */

static bool frame_in_region(u64 frame)
{
	return frame >= REGION_LO_GFN && frame < REGION_HI_GFN;
}

static u64 gpte_frame(u64 gpte)
{
	return (gpte & GADDR_MASK) >> PAGE_SHIFT;
}

/* Does this gpte lead to one of the kernel's own table frames at `level`? */
static bool links_table(u64 gpte, unsigned level)
{
	if (!(gpte & PTE_P) || level == 1)
		return false;
	if ((level == 2 || level == 3) && (gpte & PTE_PS))
		return false;
	return frame_in_region(gpte_frame(gpte));
}

/*
 * 6. The TLB the oracle allows: `old` was the qword at `where` until the
 * guest stored over it. Only table frames matter (the region's; the fixed
 * frames' tables are never leaf tables), and only with unsync on: in sync,
 * the shadow follows every store at once.
 */
static void note_stale(struct harness *h, u64 where, u64 old)
{
	if (!h->cfg.unsync || !h->mmu || !frame_in_region(where >> PAGE_SHIFT))
		return;
	for (unsigned i = 0; i < h->nr_stale; i++)
		if (h->stale[i].gpa == where && h->stale[i].val == old)
			return;
	if (h->nr_stale == MAX_STALE) {
		fail(h, gva(0), h->view, "harness bug: more than %u stale gptes", MAX_STALE);
		return;
	}
	h->stale[h->nr_stale].gpa = where;
	h->stale[h->nr_stale++].val = old;
}

/* A flush that covers the gpte at `where`: its older values are gone. */
static void forget_stale(struct harness *h, u64 where)
{
	for (unsigned i = 0; i < h->nr_stale;)
		if (h->stale[i].gpa == where)
			h->stale[i] = h->stale[--h->nr_stale];
		else
			i++;
}

/* The gpa of the 4 KiB leaf gpte that translates `at` now, or 0 (no leaf table on the way). */
static u64 leaf_gpte_gpa(struct harness *h, gva_t at, u32 acc)
{
	struct walk_mem mem = { h, harness_gpa_to_hva };
	struct guest_walk w;
	enum walk_result r = walk_guest(mode4, &mem, &h->ctl, at, acc, WALK_PEEK, &w);

	return (r == WALK_OK || r == WALK_FAULT) && w.level == PG_LEVEL_4K ? w.gpte_gpa[1].v : 0;
}

/*
 * Does `check` pass (quietly) with the leaf gpte of `at` put back to one
 * of its older values since the last flush that covered it? The value is
 * poked raw (not a guest store) and restored after each try.
 */
static bool passes_with_stale_leaf(struct harness *h, gva_t at, u32 acc,
				   int (*check)(struct harness *, void *), void *arg)
{
	u64 where = leaf_gpte_gpa(h, at, acc), now;
	bool ok = false;

	if (!where || !h->nr_stale)
		return false;
	now = ram_read(h, where);
	h->quiet = true;
	for (unsigned i = 0; i < h->nr_stale && !ok; i++) {
		if (h->stale[i].gpa != where)
			continue;
		__atomic_store_n((u64 *)(h->ram + where), h->stale[i].val, __ATOMIC_RELAXED);
		ok = check(h, arg) == 0;
		__atomic_store_n((u64 *)(h->ram + where), now, __ATOMIC_RELAXED);
	}
	h->quiet = false;
	if (ok)
		h->counts.stale_ok++;
	return ok;
}

/* A flush of `at` (current tables): its translation is exact from now on. */
static void forget_stale_gva(struct harness *h, gva_t at)
{
	u64 where = leaf_gpte_gpa(h, at, 0);

	if (where)
		forget_stale(h, where);
}

/* The guest's invlpg. */
static void guest_invlpg(struct harness *h, gva_t at)
{
	forget_stale_gva(h, at);
	shadow_invlpg(h->mmu, at);
}

/* Mark every region frame the window of any address space reaches. */
static void mark_in_use(struct harness *h)
{
	unsigned as, i4, i3, i2;

	memset(h->in_use, 0, sizeof(h->in_use));
	for (as = 0; as < h->nr_as; as++) {
		u64 pml4 = h->pml4[as].v;

		for (i4 = 0; i4 <= WIN_L4; i4++) {
			unsigned slot = i4 < WIN_L4 ? i4 : HARNESS_MONITOR_SLOT;
			u64 e4 = ram_read(h, pml4 + slot * 8), pdpt;

			if (!links_table(e4, 4))
				continue;
			pdpt = gpte_frame(e4);
			h->in_use[pdpt - REGION_LO_GFN] = 1;
			for (i3 = 0; i3 < WIN_L3; i3++) {
				u64 e3 = ram_read(h, (pdpt << PAGE_SHIFT) + i3 * 8), pd;

				if (!links_table(e3, 3))
					continue;
				pd = gpte_frame(e3);
				h->in_use[pd - REGION_LO_GFN] = 1;
				for (i2 = 0; i2 < WIN_L2; i2++) {
					u64 e2 = ram_read(h, (pd << PAGE_SHIFT) + i2 * 8);

					if (links_table(e2, 2))
						h->in_use[gpte_frame(e2) - REGION_LO_GFN] = 1;
				}
			}
		}
	}
}

/* Zero a page through the direct map, storing only where it is not zero yet. */
static int kernel_clear_page(struct harness *h, u64 page)
{
	unsigned i;

	for (i = 0; i < PAGE_SIZE / 8; i++)
		if (ram_read(h, page + i * 8) && cpu_store(h, page + i * 8, 0))
			return -1;
	return 0;
}

/* A fresh, zeroed table frame no window reaches now. Returns its gpa or 0 on failure. */
static u64 alloc_table(struct harness *h)
{
	unsigned n;

	mark_in_use(h);
	for (n = 0; n < REGION_NR; n++) {
		u64 frame = REGION_LO_GFN + (h->alloc_cursor++ % REGION_NR);

		if (h->in_use[frame - REGION_LO_GFN])
			continue;
		if (kernel_clear_page(h, frame << PAGE_SHIFT))
			return 0;
		return frame << PAGE_SHIFT;
	}
	fail(h, gva(0), h->view, "harness bug: no free table frame");
	return 0;
}

static u64 random_table_flags(struct harness *h)
{
	u64 flags = PTE_P | PTE_RW | PTE_US | PTE_A;

	if (chance(h, 8))
		flags &= ~PTE_RW;
	if (chance(h, 8))
		flags &= ~PTE_US;
	if (chance(h, 2))
		flags |= PTE_NX;
	if (chance(h, 10))
		flags &= ~PTE_A;
	return flags;
}

static u64 random_leaf_flags(struct harness *h)
{
	u64 flags = PTE_P;

	if (chance(h, 60))
		flags |= PTE_RW;
	if (chance(h, 60))
		flags |= PTE_US;
	if (chance(h, 15))
		flags |= PTE_NX;
	if (chance(h, 50))
		flags |= PTE_A;
	if (chance(h, 40))
		flags |= PTE_D;
	if (chance(h, 10))
		flags |= PTE_G;
	if (chance(h, 2))
		flags |= 1ull << 45; /* above MAXPHYADDR: reserved */
	return flags;
}

/* A random gfn for a 4 KiB mapping: data, a table frame, a fixed frame or not RAM. */
static u64 random_target_4k(struct harness *h)
{
	switch (pick(h, 10)) {
	case 0:
	case 1:
	case 2: return (REGION_HI_GFN + pick(h, RAM_GFNS - REGION_HI_GFN)) << PAGE_SHIFT;
	case 3:
	case 4: /* a page-table page also mapped as data */
		return (REGION_LO_GFN + pick(h, REGION_NR)) << PAGE_SHIFT;
	case 5: return (DM_PDPT_GFN + pick(h, 2 + HARNESS_MAX_AS)) << PAGE_SHIFT;
	case 6: /* not RAM: the hole or beyond the end */
		return chance(h, 50) ? HARNESS_HOLE_GPA + (pick(h, 512) << PAGE_SHIFT)
				     : HARNESS_RAM_SIZE + (pick(h, 64) << PAGE_SHIFT);
	default: /* a few hot data frames, so the rmap has several sptes per gfn */
		return (2000 + pick(h, 4)) << PAGE_SHIFT;
	}
}

static gva_t window_gva(struct harness *h)
{
	u64 i4 = pick(h, WIN_L4), i3 = pick(h, WIN_L3), i2 = pick(h, WIN_L2);
	u64 i1 = chance(h, 92) ? pick(h, WIN_L1) : pick(h, 512);

	return gva((i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12));
}

/*
 * The table at `level` (2..4) that holds the gpte for `at`, creating the
 * tables above `leaf_level` as needed (create) or giving up (returns 0).
 */
static u64 kernel_table_for(struct harness *h, gva_t at, unsigned leaf_level, bool create)
{
	u64 table = h->pml4[h->cur_as].v;
	unsigned level;

	for (level = 4; level > leaf_level; level--) {
		u64 gpte_gpa = table + pt_index(at.v, level) * 8;
		u64 gpte = ram_read(h, gpte_gpa), next;

		if (links_table(gpte, level)) {
			table = gpte_frame(gpte) << PAGE_SHIFT;
			continue;
		}
		if (!create)
			return 0;
		next = alloc_table(h);
		if (!next || cpu_store(h, gpte_gpa, next | random_table_flags(h)))
			return 0;
		table = next;
	}
	return table;
}

/* The gpa of the gpte at `level` for `at` in the current address space, or 0. */
static u64 kernel_gpte_gpa(struct harness *h, gva_t at, unsigned level)
{
	u64 table = kernel_table_for(h, at, level, false);

	return table ? table + pt_index(at.v, level) * 8 : 0;
}

/* The gpa of the entry that ends the walk for `at` (a leaf or a non-present entry). */
static u64 kernel_leaf_gpa(struct harness *h, gva_t at, unsigned *level_out)
{
	u64 table = h->pml4[h->cur_as].v;
	unsigned level;

	for (level = 4;; level--) {
		u64 where = table + pt_index(at.v, level) * 8;
		u64 gpte = ram_read(h, where);

		*level_out = level;
		/* Only through the kernel's own table frames: never into a fixed frame. */
		if (!links_table(gpte, level))
			return where;
		table = gpte & GADDR_MASK;
	}
}

/* ==== 5. operations ========================================================= */

static int op_map(struct harness *h, unsigned level)
{
	gva_t at = window_gva(h);
	u64 target, table, flags = random_leaf_flags(h);

	if (level == 1) {
		target = random_target_4k(h);
	} else if (level == 2) {
		at.v &= ~(2 * MiB - 1);
		target = pick(h, HARNESS_RAM_SIZE / (2 * MiB) + 2) * 2 * MiB;
		flags |= PTE_PS;
		if (chance(h, 3))
			flags |= 1ull << 13; /* reserved in a 2 MiB PDE */
	} else {
		at.v &= ~(GiB - 1);
		target = pick(h, 3) * GiB;
		flags |= PTE_PS;
	}
	trace(h, "gva %#llx -> gpa %#llx flags %#llx", (unsigned long long)at.v,
	      (unsigned long long)target, (unsigned long long)flags);
	table = kernel_table_for(h, at, level, true);
	if (!table)
		return h->failed ? -1 : 0;
	touch(h, at);
	h->recent[h->recent_next] = at;
	h->recent_size[h->recent_next] = walk_level_page_size(mode4, level);
	h->recent_next = (h->recent_next + 1) % NR_RECENT;
	return cpu_store(h, table + pt_index(at.v, level) * 8, target | flags);
}

static unsigned random_level(struct harness *h)
{
	static const unsigned levels[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4 };

	return levels[pick(h, 16)];
}

static int op_unmap(struct harness *h)
{
	gva_t at = window_gva(h);
	unsigned level = random_level(h);
	u64 where = kernel_gpte_gpa(h, at, level), gpte;

	trace(h, "gva %#llx level %u gpte@%#llx", (unsigned long long)at.v, level,
	      (unsigned long long)where);
	if (!where)
		return 0;
	touch(h, at);
	gpte = ram_read(h, where);
	return cpu_store(h, where, chance(h, 70) ? 0 : gpte & ~PTE_P);
}

static int op_protect(struct harness *h)
{
	/* Rights, and now and then a reserved bit or PS (a table becomes a large page). */
	static const u64 bits[] = { PTE_RW, PTE_US, PTE_NX, PTE_RW, PTE_US,	PTE_NX,
				    PTE_RW, PTE_US, PTE_G,  PTE_A,  1ull << 45, PTE_PS };
	gva_t at = window_gva(h);
	unsigned level = random_level(h);
	u64 where = kernel_gpte_gpa(h, at, level), bit = bits[pick(h, ARRAY_SIZE(bits))];

	trace(h, "gva %#llx level %u toggle %#llx", (unsigned long long)at.v, level,
	      (unsigned long long)bit);
	if (!where)
		return 0;
	touch(h, at);
	return cpu_store(h, where, ram_read(h, where) ^ bit);
}

static int op_set_ad(struct harness *h)
{
	gva_t at = window_gva(h);
	unsigned level;
	u64 where = kernel_leaf_gpa(h, at, &level), gpte = ram_read(h, where);
	u64 bit = chance(h, 50) ? PTE_A : PTE_D;

	gpte = chance(h, 50) ? gpte | bit : gpte & ~bit;
	trace(h, "gva %#llx level %u gpte@%#llx := %#llx", (unsigned long long)at.v, level,
	      (unsigned long long)where, (unsigned long long)gpte);
	touch(h, at);
	if (chance(h, 30)) {
		/* Clear A on the way down too, as a reclaim scan would. */
		u64 up = kernel_gpte_gpa(h, at, level < 4 ? level + 1 : 4);

		if (up && up != where && cpu_store(h, up, ram_read(h, up) & ~PTE_A))
			return -1;
	}
	if (cpu_store(h, where, gpte))
		return -1;
	if (chance(h, 50))
		guest_invlpg(h, at); /* the kernel flushes, as Linux does */
	return 0;
}

static u64 make_cr3(struct harness *h, unsigned as)
{
	u64 cr3 = h->pml4[as].v;

	if (h->ctl.cr4 & CR4_PCIDE) {
		cr3 |= chance(h, 80) ? as + 1 : pick(h, 8);
		if (chance(h, 50))
			cr3 |= CR3_NOFLUSH;
	}
	return cr3;
}

static int op_new_as(struct harness *h)
{
	unsigned as, slot;
	u64 pml4, cur = h->pml4[h->cur_as].v;

	if (h->nr_as < HARNESS_MAX_AS) {
		as = h->nr_as++;
	} else {
		as = pick(h, HARNESS_MAX_AS);
		if (as == h->cur_as)
			as = (as + 1) % HARNESS_MAX_AS;
	}
	pml4 = h->pml4[as].v;
	trace(h, "address space %u, pml4 %#llx", as, (unsigned long long)pml4);
	/* Everything but the direct map goes; the window is rebuilt below. */
	for (slot = 0; slot < 512; slot++) {
		u64 where = pml4 + slot * 8;
		u64 want =
			slot == DM_SLOT ? (DM_PDPT_GFN << PAGE_SHIFT) | PTE_P | PTE_RW | PTE_A : 0;

		if (slot < WIN_L4) {
			u64 e = ram_read(h, cur + slot * 8);

			switch (pick(h, 10)) {
			case 0:
			case 1:
			case 2:
			case 3:
			case 4:
			case 5: /* share the PDPT */ want = e; break;
			case 6:
			case 7:
			case 8: {
				/* A new PDPT sharing the PDs. */
				u64 pdpt = alloc_table(h);
				unsigned i3;

				if (!pdpt)
					return -1;
				for (i3 = 0; links_table(e, 4) && i3 < WIN_L3; i3++) {
					u64 e3 = ram_read(h, (e & GADDR_MASK) + i3 * 8);

					if (e3 && cpu_store(h, pdpt + i3 * 8, e3))
						return -1;
				}
				want = pdpt | PTE_P | PTE_RW | PTE_US | PTE_A;
				break;
			}
			default: break;
			}
		}
		if (ram_read(h, where) != want && cpu_store(h, where, want))
			return -1;
	}
	if (chance(h, 50)) {
		h->cur_as = as;
		return load_cr3(h, make_cr3(h, as));
	}
	return 0;
}

static int op_switch_cr3(struct harness *h)
{
	unsigned as = pick(h, h->nr_as);
	u64 cr3 = make_cr3(h, as);

	trace(h, "address space %u cr3 %#llx", as, (unsigned long long)cr3);
	h->cur_as = as;
	return load_cr3(h, cr3);
}

static int op_switch_view(struct harness *h)
{
	trace(h, "to %s", view_name(!h->view));
	return set_view(h, h->view == SHADOW_VIEW_KERNEL ? SHADOW_VIEW_USER : SHADOW_VIEW_KERNEL);
}

/* Unlink a PT (or a PD) from the window and scribble on its frame through the direct map. */
static int op_table_to_data(struct harness *h)
{
	gva_t at = window_gva(h);
	unsigned level = chance(h, 80) ? 2 : 3; /* the level of the entry that links it */
	u64 where = kernel_gpte_gpa(h, at, level), gpte, frame;
	unsigned n;

	if (!where)
		return 0;
	gpte = ram_read(h, where);
	trace(h, "gva %#llx level %u gpte %#llx", (unsigned long long)at.v, level,
	      (unsigned long long)gpte);
	if (!links_table(gpte, level))
		return 0;
	frame = gpte & GADDR_MASK;
	touch(h, at);
	if (cpu_store(h, where, 0))
		return -1;
	for (n = 1 + pick(h, 24); n; n--) {
		u64 off = pick(h, 512) * 8;

		if (cpu_store(h, frame + off, data_value(h, frame + off)))
			return -1;
	}
	return 0;
}

static int op_invlpg(struct harness *h)
{
	gva_t at = chance(h, 85) ? window_gva(h) : dm_gva(pick(h, RAM_GFNS) << PAGE_SHIFT);

	trace(h, "gva %#llx", (unsigned long long)at.v);
	guest_invlpg(h, at);
	return 0;
}

static int op_invpcid(struct harness *h)
{
	unsigned type = pick(h, 4);
	u16 pcid = pick(h, 9);
	gva_t at = window_gva(h);
	u16 cur_pcid = (h->ctl.cr4 & CR4_PCIDE) ? (h->ctl.cr3 & CR3_PCID_MASK) : 0;

	trace(h, "type %u pcid %u gva %#llx", type, pcid, (unsigned long long)at.v);
	if (type == 0 && pcid == cur_pcid) {
		forget_stale_gva(h, at);
	} else if (type != 0) {
		h->nr_stale = 0; /* the MMU syncs everything at these (mmu.h) */
	}
	shadow_invpcid(h->mmu, type, pcid, at);
	return 0;
}

static int op_flush(struct harness *h)
{
	enum shadow_flush_scope scope =
		pick(h, 2) ? SHADOW_FLUSH_EVERYTHING : SHADOW_FLUSH_NONGLOBAL;

	trace(h, "%s", scope == SHADOW_FLUSH_EVERYTHING ? "everything" : "non-global");
	h->nr_stale = 0;
	shadow_flush(h->mmu, scope);
	return 0;
}

static int op_set_mode(struct harness *h)
{
	u64 cr4 = h->ctl.cr4;

	switch (pick(h, 6)) {
	case 0: h->ctl.cr0 ^= CR0_WP; break;
	case 1: h->ctl.cr4 ^= CR4_SMEP; break;
	case 2: h->ctl.cr4 ^= CR4_SMAP; break;
	case 3: h->ctl.efer ^= EFER_NXE; break;
	case 4: h->ctl.cr4 ^= CR4_PGE; break;
	default:
		/* CR4.PCIDE may be set only with CR3[11:0] = 0 (SDM Vol. 3A §4.10.1). */
		if ((h->ctl.cr4 & CR4_PCIDE) || !(h->ctl.cr3 & CR3_PCID_MASK))
			h->ctl.cr4 ^= CR4_PCIDE;
		break;
	}
	trace(h, "cr0 %#llx cr4 %#llx efer %#llx", (unsigned long long)h->ctl.cr0,
	      (unsigned long long)h->ctl.cr4, (unsigned long long)h->ctl.efer);
	/* A CR4.PGE or PCIDE change flushes the TLB (SDM Vol. 3A §4.10.4.1). */
	if ((cr4 ^ h->ctl.cr4) & (CR4_PGE | CR4_PCIDE))
		h->nr_stale = 0;
	shadow_set_mode(h->mmu, h->ctl.cr0, h->ctl.cr4, h->ctl.efer);
	h->live_root = shadow_switch_view(h->mmu, h->view);
	if (!pool_hva(h, h->live_root.v))
		return fail(h, gva(0), h->view,
			    "after shadow_set_mode the root mpa %#llx is not a pool page",
			    (unsigned long long)h->live_root.v);
	return 0;
}

static int op_stac_clac(struct harness *h)
{
	h->ac = !h->ac;
	trace(h, "AC=%d", h->ac);
	return 0;
}

static int op_access(struct harness *h)
{
	static const u32 kinds[] = { 0, 0, 0, ACC_WRITE, ACC_WRITE, ACC_FETCH };
	u32 kind = kinds[pick(h, ARRAY_SIZE(kinds))];
	enum shadow_view view = pick(h, 2) ? SHADOW_VIEW_USER : SHADOW_VIEW_KERNEL;
	gva_t at;

	switch (pick(h, 20)) {
	case 0:
	case 1:
	case 2: /* the direct map: data, tables, the hole */
		at = dm_gva((pick(h, HARNESS_RAM_SIZE / 8)) * 8);
		break;
	case 3:
		at = gva(0xffff800000000000ull + pick(h, 1u << 24) * 8); /* the monitor slot */
		break;
	case 4:
	case 5:
	case 6:
	case 7:
	case 8:
	case 9:
	case 10:
	case 11: { /* somewhere the kernel mapped lately */
		unsigned n = pick(h, NR_RECENT);

		at = gva(h->recent[n].v +
			 pick(h, h->recent_size[n] ? h->recent_size[n] / 8 : 1) * 8);
		break;
	}
	default: at = gva(window_gva(h).v | pick(h, 512) * 8); break;
	}
	trace(h, "%s %s gva %#llx AC=%d", view_name(view),
	      kind == ACC_WRITE	  ? "write"
	      : kind == ACC_FETCH ? "fetch"
				  : "read",
	      (unsigned long long)at.v, h->ac);
	return cpu_access(h, at, kind, view);
}

/*
 * shadow_prefault of a user access where the kernel mapped lately (the VMM
 * calls it when a guest #PF handler returns to the user instruction). It
 * must write none of the gptes on the way (it runs only where the access
 * would set no A/D bit), and what it maps must allow the access; the
 * oracle checks the rest as for every touched gva.
 */
static int op_prefault(struct harness *h)
{
	static const u32 kinds[] = { 0, ACC_WRITE, ACC_WRITE, ACC_FETCH };
	u32 kind = kinds[pick(h, ARRAY_SIZE(kinds))];
	unsigned n = pick(h, NR_RECENT);
	gva_t at = gva(h->recent[n].v + pick(h, h->recent_size[n] ? h->recent_size[n] / 8 : 1) * 8);
	struct walk_mem mem = { h, harness_gpa_to_hva };
	u64 before[WALK_MAX_LEVELS + 1] = { 0 };
	struct guest_walk w;
	u64 m, rights;
	bool fixed;

	if (set_view(h, SHADOW_VIEW_USER))
		return -1;
	touch(h, at);
	trace(h, "user %s gva %#llx",
	      kind == ACC_WRITE	  ? "write"
	      : kind == ACC_FETCH ? "fetch"
				  : "read",
	      (unsigned long long)at.v);
	/* The gptes a walk reads (as far as it gets), before and after. */
	if (walk_guest(mode4, &mem, &h->ctl, at, kind | ACC_USER, WALK_PEEK, &w) ==
	    WALK_UNSUPPORTED_MODE)
		return 0;
	for (unsigned l = 1; l <= WALK_MAX_LEVELS; l++)
		if (w.gpte_gpa[l].v && gpa_is_ram(w.gpte_gpa[l].v, 8))
			before[l] = ram_read(h, w.gpte_gpa[l].v);
	fixed = shadow_prefault(h->mmu, at, kind | ACC_USER);
	for (unsigned l = 1; l <= WALK_MAX_LEVELS; l++)
		if (w.gpte_gpa[l].v && gpa_is_ram(w.gpte_gpa[l].v, 8) &&
		    ram_read(h, w.gpte_gpa[l].v) != before[l])
			return fail(h, at, SHADOW_VIEW_USER,
				    "prefault wrote the level-%u gpte at gpa %#llx: %#llx -> %#llx",
				    l, (unsigned long long)w.gpte_gpa[l].v,
				    (unsigned long long)before[l],
				    (unsigned long long)ram_read(h, w.gpte_gpa[l].v));
	if (fixed) {
		char why[128] = "";

		h->counts.prefaults_fixed++;
		if (!hw_walk(h, h->live_root, at, &m, &rights, why, sizeof(why)) ||
		    !rights_allow(rights, kind))
			return fail(h, at, SHADOW_VIEW_USER,
				    "shadow_prefault said fixed, but the access does not pass%s%s",
				    why[0] ? ": " : "", why);
	}
	return 0;
}

/* Point the reserved slot of the current address space at a window PDPT, then touch it. */
static int op_map_monitor(struct harness *h)
{
	u64 where = h->pml4[h->cur_as].v + HARNESS_MONITOR_SLOT * 8;
	u64 e = ram_read(h, h->pml4[h->cur_as].v + pick(h, WIN_L4) * 8);
	gva_t at = gva(0xffff800000000000ull | (pick(h, WIN_L3) << 30) | (pick(h, WIN_L2) << 21) |
		       (pick(h, WIN_L1) << 12));

	trace(h, "pml4e[256] := %#llx, access %#llx", (unsigned long long)e,
	      (unsigned long long)at.v);
	if (cpu_store(h, where, chance(h, 20) ? 0 : e))
		return -1;
	return cpu_access(h, at, pick(h, 2) ? ACC_WRITE : 0,
			  pick(h, 2) ? SHADOW_VIEW_USER : SHADOW_VIEW_KERNEL);
}

/*
 * Change the 4 KiB leaf gpte of a page the kernel mapped lately while the
 * shadow may hold a translation for it, perhaps change it back, perhaps
 * flush (invlpg, or a CR3 reload as Linux flushes), and use it again in
 * between and after: the sequences that out-of-sync tables must get right
 * (a translation stale until the flush, exact after it).
 */
static int op_remap(struct harness *h)
{
	unsigned n = pick(h, NR_RECENT);
	gva_t at = h->recent[n];
	enum shadow_view view = pick(h, 2) ? SHADOW_VIEW_USER : SHADOW_VIEW_KERNEL;
	static const u32 kinds[] = { 0, 0, ACC_WRITE, ACC_FETCH };
	u64 where, old, val;

	if (h->recent_size[n] != PAGE_SIZE || !(where = kernel_gpte_gpa(h, at, 1)))
		return 0;
	old = ram_read(h, where);
	switch (pick(h, 6)) {
	case 0: val = 0; break;
	case 1: val = old & ~PTE_RW; break;
	case 2: val = old ^ PTE_US; break;
	case 3: val = old & ~(PTE_A | PTE_D); break;
	case 4: val = old | PTE_RW | PTE_A | PTE_D; break;
	default: val = random_target_4k(h) | random_leaf_flags(h); break;
	}
	trace(h, "gva %#llx gpte@%#llx %#llx -> %#llx", (unsigned long long)at.v,
	      (unsigned long long)where, (unsigned long long)old, (unsigned long long)val);
	touch(h, at);
	if (chance(h, 70) && cpu_access(h, at, kinds[pick(h, 4)], view))
		return -1;
	if (cpu_store(h, where, val) || cpu_access(h, at, kinds[pick(h, 4)], view))
		return -1;
	if (chance(h, 30) && (cpu_store(h, where, old) || cpu_access(h, at, 0, view)))
		return -1;
	switch (pick(h, 3)) {
	case 0: guest_invlpg(h, at); break;
	case 1:
		if (load_cr3(h, h->ctl.cr3))
			return -1;
		break;
	default: break; /* no flush: the check allows the old translation */
	}
	return cpu_access(h, at, kinds[pick(h, 4)], view);
}

static unsigned pick_op(struct harness *h)
{
	unsigned total = 0, op;
	u64 r;

	for (op = 0; op < NR_OPS; op++)
		total += op_table[op].weight;
	r = pick(h, total);
	for (op = 0; op < NR_OPS; op++) {
		if (r < op_table[op].weight)
			return op;
		r -= op_table[op].weight;
	}
	return OP_ACCESS;
}

static int run_op(struct harness *h, unsigned op)
{
	switch (op) {
	case OP_ACCESS: return op_access(h);
	case OP_MAP_4K: return op_map(h, 1);
	case OP_MAP_2M: return op_map(h, 2);
	case OP_MAP_1G: return op_map(h, 3);
	case OP_UNMAP: return op_unmap(h);
	case OP_PROTECT: return op_protect(h);
	case OP_SET_AD: return op_set_ad(h);
	case OP_NEW_AS: return op_new_as(h);
	case OP_SWITCH_CR3: return op_switch_cr3(h);
	case OP_SWITCH_VIEW: return op_switch_view(h);
	case OP_TABLE_TO_DATA: return op_table_to_data(h);
	case OP_INVLPG: return op_invlpg(h);
	case OP_INVPCID: return op_invpcid(h);
	case OP_FLUSH: return op_flush(h);
	case OP_SET_MODE: return op_set_mode(h);
	case OP_STAC_CLAC: return op_stac_clac(h);
	case OP_MAP_MONITOR: return op_map_monitor(h);
	case OP_REMAP: return op_remap(h);
	case OP_PREFAULT: return op_prefault(h);
	}
	return 0;
}

/* ==== 6. the check ========================================================== */

/*
 * The invariant for one gva in one view (DESIGN.md, correctness oracle):
 * a shadow translation equals the guest's with the same or fewer rights.
 */
struct mapping {
	gva_t at;
	enum shadow_view view;
	u32 acc;
	u64 m, rights;
};

static int check_mapping(struct harness *h, void *arg);

static int check_gva(struct harness *h, gva_t at, enum shadow_view view)
{
	/* SMAP pages are never mapped in the kernel view (EMULATE_ACCESS): AC = 0. */
	u32 acc = view == SHADOW_VIEW_USER ? ACC_USER : 0;
	u64 m = 0, rights = 0;
	bool mapped;

	h->counts.gva_checks++;
	if (view == h->view) {
		u64 tm = 0, trights = 0;
		char why[128] = "";
		bool tmapped;

		mapped = hw_walk(h, h->live_root, at, &m, &rights, why, sizeof(why));
		if (why[0])
			return fail(h, at, view, "%s", why);
		tmapped = shadow_translate(h->mmu, view, at, (mpa_t *)&tm, &trights);
		if (tmapped != mapped ||
		    (mapped && (tm != m || ((trights ^ rights) & RIGHTS_MASK))))
			return fail(
				h, at, view,
				"shadow_translate disagrees with the live root (%s %#llx %#llx)",
				tmapped ? "mapped" : "unmapped", (unsigned long long)tm,
				(unsigned long long)trights);
	} else {
		mapped = shadow_translate(h->mmu, view, at, (mpa_t *)&m, &rights);
	}
	if (!mapped || !(rights & PTE_US))
		return 0; /* nothing the guest at real CPL3 can reach */
	h->counts.gva_checks_mapped++;
	if (pt_index(at.v, 4) == HARNESS_MONITOR_SLOT)
		return fail(h, at, view, "the reserved slot is reachable at CPL3");
	{
		struct mapping mp = { at, view, acc, m, rights };

		h->quiet = true;
		if (!check_mapping(h, &mp)) {
			h->quiet = false;
			return 0;
		}
		h->quiet = false;
		if (passes_with_stale_leaf(h, at, acc, check_mapping, &mp))
			return 0;
		return check_mapping(h, &mp); /* reports */
	}
}

/*
 * The rest of check_gva: the shadow maps `at` to mpa m with `rights`; does
 * the guest's walk agree, with the same or fewer rights?
 */
static int check_mapping(struct harness *h, void *arg)
{
	const struct mapping *mp = arg;
	struct walk_mem mem = { h, harness_gpa_to_hva };
	gva_t at = mp->at;
	enum shadow_view view = mp->view;
	u32 acc = mp->acc;
	u64 m = mp->m, rights = mp->rights, leaf;
	struct guest_walk w;

	if (walk_guest(mode4, &mem, &h->ctl, at, acc, WALK_PEEK, &w) != WALK_OK)
		return fail(h, at, view, "the shadow maps a gva the guest cannot read");
	if (w.gpa.v != m)
		return fail(h, at, view, "stale translation: shadow mpa %#llx, guest gpa %#llx",
			    (unsigned long long)m, (unsigned long long)w.gpa.v);
	if (!gpa_is_ram(w.gpa.v & PAGE_MASK, PAGE_SIZE))
		return fail(h, at, view, "the shadow maps non-RAM gpa %#llx",
			    (unsigned long long)m);
	leaf = ram_read(h, w.gpte_gpa[w.level].v);
	if (!(leaf & PTE_A))
		return fail(h, at, view, "mapped while the leaf gpte %#llx has A clear",
			    (unsigned long long)leaf);
	if (rights & PTE_RW) {
		struct guest_walk ww;

		if (walk_guest(mode4, &mem, &h->ctl, at, acc | ACC_WRITE, WALK_PEEK, &ww) !=
		    WALK_OK)
			return fail(h, at, view, "writable in the shadow, the guest may not write");
		if (!(leaf & PTE_D))
			return fail(h, at, view,
				    "writable in the shadow while the leaf gpte %#llx is clean",
				    (unsigned long long)leaf);
	}
	if (!(rights & PTE_NX)) {
		struct guest_walk fw;

		if (walk_guest(mode4, &mem, &h->ctl, at, (acc & ACC_USER) | ACC_FETCH, WALK_PEEK,
			       &fw) != WALK_OK)
			return fail(h, at, view,
				    "executable in the shadow, the guest may not fetch");
	}
	return 0;
}

static int check_both(struct harness *h, gva_t at)
{
	if (check_gva(h, at, SHADOW_VIEW_KERNEL) || check_gva(h, at, SHADOW_VIEW_USER))
		return -1;
	return 0;
}

static gva_t window_page(unsigned n)
{
	u64 i1 = n % WIN_L1, i2 = (n / WIN_L1) % WIN_L2, i3 = (n / (WIN_L1 * WIN_L2)) % WIN_L3;
	u64 i4 = n / (WIN_L1 * WIN_L2 * WIN_L3);

	return gva((i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12));
}

static int check_monitor_slot(struct harness *h)
{
	u64 *root = pool_hva(h, h->live_root.v);

	if (!root)
		return fail(h, gva(0), h->view, "the live root %#llx is not in the pool",
			    (unsigned long long)h->live_root.v);
	if (root[HARNESS_MONITOR_SLOT] != MONITOR_PML4E)
		return fail(h, gva(0xffff800000000000ull), h->view,
			    "live root slot %u holds %#llx, not the reserved %#llx",
			    HARNESS_MONITOR_SLOT, (unsigned long long)root[HARNESS_MONITOR_SLOT],
			    (unsigned long long)MONITOR_PML4E);
	return 0;
}

/* After every step: the touched gvas, a random sample of the window, the monitor slot. */
static int check_step(struct harness *h)
{
	unsigned i;

	if (h->writer_error[0])
		return fail(h, gva(0), h->view, "%s", h->writer_error);
	if (check_monitor_slot(h))
		return -1;
	for (i = 0; i < h->nr_touched; i++)
		if (check_both(h, gva(h->touched[i].v & PAGE_MASK)))
			return -1;
	for (i = 0; i < h->cfg.samples_per_step; i++) {
		u64 r = xorshift64s(&h->check_prng);

		if (check_both(h, window_page(r % WIN_PAGES)))
			return -1;
		if ((r >> 32) % 4 == 0 &&
		    check_both(h, dm_gva(((r >> 40) % RAM_GFNS) << PAGE_SHIFT)))
			return -1;
	}
	return 0;
}

int harness_check_all(struct harness *h)
{
	u64 frame;
	unsigned n;

	if (check_monitor_slot(h))
		return -1;
	for (n = 0; n < WIN_PAGES; n++)
		if (check_both(h, window_page(n)))
			return -1;
	/* The direct map of every frame that is or was a kernel table. */
	for (frame = DM_PDPT_GFN; frame < REGION_HI_GFN; frame++)
		if (check_both(h, dm_gva(frame << PAGE_SHIFT)))
			return -1;
	return 0;
}

/* ==== 7. set-up and the run loop ============================================ */

struct harness *harness_create(const struct harness_config *cfg)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct shadow_config sc;
	unsigned i;

	if (!h)
		return NULL;
	h->cfg = *cfg;
	h->log = cfg->log ? cfg->log : stderr;
	h->prng = cfg->seed * 0x9e3779b97f4a7c15ull + 1;
	if (cfg->bytes) {
		/* The tail's PRNG: FNV-1a of the input, so an input replays exactly. */
		size_t n;

		h->prng = 0xcbf29ce484222325ull;
		for (n = 0; n < cfg->nr_bytes; n++)
			h->prng = (h->prng ^ cfg->bytes[n]) * 0x100000001b3ull;
		h->prng |= 1;
	}
	h->check_prng = cfg->seed ^ 0xc2b2ae3d27d4eb4full;
	if (!h->check_prng)
		h->check_prng = 1;
	if (!h->cfg.pool_pages)
		h->cfg.pool_pages = 2048;
	h->op = NR_OPS;
	if (ram_cache) {
		u64 page;

		h->ram = ram_cache;
		ram_cache = NULL;
		for (page = 0; page < RAM_GFNS; page++)
			if (ram_dirty[page / 8] & (1u << (page % 8)))
				memset(h->ram + (page << PAGE_SHIFT), 0, PAGE_SIZE);
	} else {
		h->ram = calloc(1, HARNESS_RAM_SIZE);
	}
	memset(ram_dirty, 0, sizeof(ram_dirty));
	h->pool = aligned_alloc(PAGE_SIZE, h->cfg.pool_pages * PAGE_SIZE);
	if (!h->ram || !h->pool) {
		fprintf(h->log, "shadow-diff: out of memory\n");
		goto fail;
	}
	memset(h->pool, 0xcc, h->cfg.pool_pages * PAGE_SIZE); /* garbage until the MMU writes it */

	/* Boot: the direct map and the first PML4, written before paging is on. */
	ram_write(h, DM_PDPT_GFN << PAGE_SHIFT, (DM_PD_GFN << PAGE_SHIFT) | PTE_P | PTE_RW | PTE_A);
	for (i = 0; i < HARNESS_RAM_SIZE / (2 * MiB); i++)
		ram_write(h, (DM_PD_GFN << PAGE_SHIFT) + i * 8,
			  (i * 2 * MiB) | PTE_P | PTE_RW | PTE_PS | PTE_A | PTE_D | PTE_G);
	for (i = 0; i < HARNESS_MAX_AS; i++)
		h->pml4[i] = gpa(PML4_GFN(i) << PAGE_SHIFT);
	ram_write(h, h->pml4[0].v + DM_SLOT * 8,
		  (DM_PDPT_GFN << PAGE_SHIFT) | PTE_P | PTE_RW | PTE_A);
	h->nr_as = 1;
	h->ctl = (struct walk_ctl){
		.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
		.cr3 = h->pml4[0].v,
		.cr4 = CR4_PAE | CR4_PGE,
		.efer = EFER_LME | EFER_LMA | EFER_NXE,
		.maxphyaddr = HARNESS_MAXPHYADDR,
	};

	sc = (struct shadow_config){
		.mem = { h, harness_gpa_to_hva },
		.pool = { mpa(HARNESS_POOL_MPA), h->pool, h->cfg.pool_pages, false /* 0xcc */ },
		.writer = { h, writer_store, writer_commit },
		.flusher = { h, flusher_flush },
		.maxphyaddr = HARNESS_MAXPHYADDR,
		.prefetch = h->cfg.prefetch,
		.unsync = h->cfg.unsync,
		.large_pages = h->cfg.large,
	};
	h->mmu = shadow_create(&sc);
	if (!h->mmu) {
		fprintf(h->log, "shadow-diff: shadow_create failed (pool %llu pages)\n",
			(unsigned long long)h->cfg.pool_pages);
		goto fail;
	}
	if (shadow_reserve_pml4(h->mmu, HARNESS_MONITOR_SLOT, MONITOR_PML4E)) {
		fprintf(h->log, "shadow-diff: shadow_reserve_pml4 failed\n");
		goto fail;
	}
	shadow_set_mode(h->mmu, h->ctl.cr0, h->ctl.cr4, h->ctl.efer);
	h->view = SHADOW_VIEW_KERNEL;
	if (load_cr3(h, h->ctl.cr3))
		goto fail;
	return h;
fail:
	harness_destroy(h);
	return NULL;
}

void harness_destroy(struct harness *h)
{
	if (!h)
		return;
	if (h->mmu)
		shadow_destroy(h->mmu);
	free(h->pool);
	if (!ram_cache)
		ram_cache = h->ram; /* zeroed by the next harness_create */
	else
		free(h->ram);
	free(h);
}

int harness_step(struct harness *h)
{
	unsigned op;

	if (h->failed)
		return -1;
	if (h->cfg.bytes && !h->tail && h->pos >= h->cfg.nr_bytes) {
		if (!h->cfg.prng_tail_ops)
			return 0;
		h->tail = true;
		h->tail_end = h->step + h->cfg.prng_tail_ops;
	}
	if (h->tail && h->step >= h->tail_end)
		return 0;
	h->nr_touched = 0;
	if (h->nr_stale > 1024) {
		/* A kernel flushes now and then; this bounds the oracle's TLB model. */
		h->nr_stale = 0;
		shadow_flush(h->mmu, SHADOW_FLUSH_EVERYTHING);
	}
	op = pick_op(h);
	h->op = op;
	h->counts.ops[op]++;
	if (run_op(h, op) || check_step(h))
		return -1;
	if (h->cfg.full_check_every && (h->step + 1) % h->cfg.full_check_every == 0 &&
	    harness_check_all(h))
		return -1;
	h->step++;
	h->counts.steps = h->step;
	return 1;
}

int harness_run(struct harness *h, u64 nr_ops)
{
	while (h->step < nr_ops) {
		int r = harness_step(h);

		if (r < 0)
			return -1;
		if (r == 0)
			break;
	}
	return harness_check_all(h);
}

const struct harness_counts *harness_get_counts(const struct harness *h)
{
	return &h->counts;
}

const char *harness_op_name(unsigned op)
{
	return op < NR_OPS ? op_table[op].name : "?";
}

unsigned harness_nr_ops(void)
{
	return NR_OPS;
}

void harness_print_summary(const struct harness *h, FILE *out)
{
	const struct harness_counts *c = &h->counts;
	const struct shadow_stats *s = shadow_get_stats(h->mmu);
	unsigned op;

	fprintf(out,
		"shadow-diff: seed %llu, %llu steps, pool %llu pages, %llu gva checks (%llu mapped "
		"in the shadow)\n",
		(unsigned long long)h->cfg.seed, (unsigned long long)c->steps,
		(unsigned long long)h->cfg.pool_pages, (unsigned long long)c->gva_checks,
		(unsigned long long)c->gva_checks_mapped);
	fprintf(out, "  ops:");
	for (op = 0; op < NR_OPS; op++)
		fprintf(out, " %s %llu", op_table[op].name, (unsigned long long)c->ops[op]);
	fprintf(out,
		"\n  accesses %llu: ok %llu, #PF %llu, mmio %llu, pt-write %llu, monitor %llu, "
		"emulate (SMAP) %llu\n",
		(unsigned long long)c->accesses, (unsigned long long)c->accesses_ok,
		(unsigned long long)c->accesses_guest_fault, (unsigned long long)c->accesses_mmio,
		(unsigned long long)c->accesses_pt_write, (unsigned long long)c->accesses_monitor,
		(unsigned long long)c->accesses_emulate);
	fprintf(out,
		"  kernel stores %llu (%llu faults), PT writes emulated %llu; writer stores %llu, "
		"commits %llu; flushes gva %llu all %llu\n",
		(unsigned long long)c->cpu_stores, (unsigned long long)c->cpu_store_faults,
		(unsigned long long)c->pt_writes, (unsigned long long)c->writer_stores,
		(unsigned long long)c->writer_commits, (unsigned long long)c->flushes_gva,
		(unsigned long long)c->flushes_all);
	fprintf(out,
		"  shadow: faults %llu (fixed %llu guest %llu pt-write %llu mmio %llu spurious "
		"%llu), "
		"sp live %llu created %llu zapped %llu, rmap %llu, wp %llu, pt writes %llu "
		"(updates %llu zaps %llu), unshadows %llu (inactive %llu), roots hit %llu miss "
		"%llu live %llu, "
		"evictions %llu, flushes %llu, stores %llu, prefetched %llu (user view %llu), "
		"root prefills %llu, large maps %llu zaps %llu\n",
		(unsigned long long)s->faults, (unsigned long long)s->faults_fixed,
		(unsigned long long)s->faults_guest, (unsigned long long)s->faults_pt_write,
		(unsigned long long)s->faults_mmio, (unsigned long long)s->faults_spurious,
		(unsigned long long)s->sp_live, (unsigned long long)s->sp_created,
		(unsigned long long)s->sp_zapped, (unsigned long long)s->rmap_live,
		(unsigned long long)s->write_protects, (unsigned long long)s->pt_writes,
		(unsigned long long)s->pt_write_updates, (unsigned long long)s->pt_write_zaps,
		(unsigned long long)s->unshadows, (unsigned long long)s->unshadows_inactive,
		(unsigned long long)s->root_hits, (unsigned long long)s->root_misses,
		(unsigned long long)s->roots_live, (unsigned long long)s->evictions,
		(unsigned long long)s->flushes, (unsigned long long)s->stores,
		(unsigned long long)s->prefetched, (unsigned long long)s->prefetched_other_view,
		(unsigned long long)s->root_prefills, (unsigned long long)s->large_maps,
		(unsigned long long)s->large_zaps);
	fprintf(out,
		"  unsync %u: tables out of sync %llu, back in sync %llu, syncs %llu updating "
		"%llu sptes; checks passed on a stale leaf %llu; prefaults %llu (mapped %llu)\n",
		h->cfg.unsync, (unsigned long long)s->unsyncs, (unsigned long long)s->unsync_ends,
		(unsigned long long)s->unsync_syncs, (unsigned long long)s->unsync_updates,
		(unsigned long long)c->stale_ok, (unsigned long long)s->prefaults,
		(unsigned long long)c->prefaults_fixed);
}
