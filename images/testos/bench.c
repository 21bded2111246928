/* SPDX-License-Identifier: MIT */
/*
 * The benchmark runner (bench=, iters=; bench.h) and the memory and compute
 * workloads:
 *   pf       page-fault storm: 256 MiB of not-present user pages touched
 *            once each from CPL3; the kernel's #PF handler allocates, zeroes
 *            and maps a frame per fault. One iteration = one page (fault).
 *   randread random 8-byte reads from CPL3 over 1 GiB of 4 KiB user pages
 *            (512 page tables; the 262144 pages map 16 MiB of frames in
 *            turn, so any --mem fits). One iteration = one read.
 *   mmap     map 64 zeroed pages (kernel), touch each (CPL3), unmap them
 *            with invlpg and free the frames (kernel). One iteration = one
 *            64-page cycle, including the entry to and exit from CPL3.
 *   compute  xorshift + multiply-add in registers at CPL3: no traps, no
 *            memory; the native-speed reference. One iteration = one step.
 * CPL3 code is timed by itself (rdtsc at CPL3, bench_blobs.S); mmap is timed
 * by the kernel around the whole cycle loop. The LAPIC timer keeps running
 * (100 Hz): its interrupts at CPL3 are part of what is measured.
 */
#include <stdarg.h>

#include "arch.h"
#include "bench.h"
#include "console.h"
#include "cpu.h"
#include "lib.h"
#include "paging.h"
#include "pmm.h"
#include "test.h"
#include "trap.h"
#include "user.h"

extern const struct bench __benches_start[], __benches_end[];
static const struct bench *cur_bench;

void bench_fail(const char *fmt, ...)
{
	va_list ap;

	kprintf("bench %s: error: ", cur_bench ? cur_bench->name : "?");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	debug_exit(EXIT_TESTS_FAILED);
}

/* The workload called @name (@len characters), or NULL. */
static const struct bench *bench_find(const char *name, size_t len)
{
	for (const struct bench *b = __benches_start; b < __benches_end; b++)
		if (strlen(b->name) == len && !strncmp(b->name, name, len))
			return b;
	return NULL;
}

static void bench_reset(void)
{
	catch_disarm();
	pf_hook = 0;
	write_rflags(RFLAGS_FIXED);
	write_cr3(kernel_pml4);
	as_clear_user(kernel_pml4);
	flush_tlb_all();
}

void bench_run(const char *cmdline)
{
	const char *list = cmdline_value(cmdline, "bench"), *p;
	const char *iv = cmdline_value(cmdline, "iters");
	uint64_t iters_override = cmdline_u64(cmdline, "iters", 0);

	if (iv && !iters_override) {
		kprintf("bench: iters= wants a positive decimal or 0x-hex count\n");
		debug_exit(EXIT_TESTS_FAILED);
	}
	/* Check every name before running any. */
	for (p = list; p && *p && *p != ' ';) {
		size_t n = 0;

		while (p[n] && p[n] != ' ' && p[n] != ',')
			n++;
		if (!n || !bench_find(p, n)) {
			char name[64];
			size_t k = n < sizeof(name) - 1 ? n : sizeof(name) - 1;

			memcpy(name, p, k);
			name[k] = '\0';
			kprintf("bench: unknown workload '%s'; known:", name);
			for (const struct bench *b = __benches_start; b < __benches_end; b++)
				kprintf(" %s", b->name);
			kprintf("\n");
			debug_exit(EXIT_TESTS_FAILED);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	for (p = list; p && *p && *p != ' ';) {
		size_t n = 0;

		while (p[n] && p[n] != ' ' && p[n] != ',')
			n++;
		cur_bench = bench_find(p, n);
		uint64_t iters = iters_override ? iters_override : cur_bench->default_iters;

		bench_reset();
		uint64_t cycles = cur_bench->fn(iters);

		bench_reset();
		/* Cycles per iteration with two decimals: compute runs at ~5 per iteration. */
		uint64_t centi = cycles / iters * 100 + cycles % iters * 100 / iters;

		kprintf("BENCH %s %lu %lu.%02lu\n", cur_bench->name, iters, centi / 100, centi % 100);
		cur_bench = 0;
		p += n;
		if (*p == ',')
			p++;
	}
	power_off();
}

/* ---- CPL3 helpers -------------------------------------------------------- */

void bench_user_map(const char *start, const char *end)
{
	user_map(kernel_pml4, start, end);
}

void bench_user_call(uint64_t a0, uint64_t a1, struct trap_frame *out)
{
	struct catch c;

	user_run(&c, a0, a1);
	if (!c.caught || c.vector != VEC_UD)
		bench_fail("user code: expected it to end with ud2 (#UD), saw %s vector %lu error 0x%lx "
			   "rip 0x%lx cs 0x%lx cr2 0x%lx",
			   c.caught ? "" : "no event,", c.vector, c.error, c.rip, c.cs, c.cr2);
	*out = c.frame;
}

USER_BLOB(ub_b_compute);
USER_BLOB(ub_b_touch);
USER_BLOB(ub_b_randread);

static uint64_t user_nx(void)
{
	return cpu.nx ? PTE_NX : 0;
}

/* Fail unless @frames frames are free; @hint says how much --mem it takes. */
static void need_frames(uint64_t frames, const char *what, const char *hint)
{
	uint64_t free = pmm_free_frames();

	if (free < frames)
		bench_fail("%s needs %lu MiB of free guest RAM, %lu MiB free: run with a larger --mem%s",
			   what,
			   (uint64_t)((frames * PAGE_SIZE + (1 << 20) - 1) >> 20),
			   (uint64_t)(free * PAGE_SIZE >> 20), hint);
}

/* ---- compute ------------------------------------------------------------- */

BENCH(compute, 1ULL << 30)
{
	struct trap_frame f;

	bench_user_map(ub_b_compute_start, ub_b_compute_end);
	bench_user_call(iters, 0, &f);
	kprintf("bench compute: result 0x%lx\n", f.rax);
	return f.r9 - f.r8;
}

/* ---- pf: page-fault storm ------------------------------------------------ */

#define PF_VA TWIN
static uint64_t pf_pages;
static volatile uint64_t pf_faults, pf_other;

static int pf_fault(struct trap_frame *f)
{
	uint64_t va = read_cr2();

	if (va < PF_VA || va >= PF_VA + pf_pages * PAGE_SIZE || (f->error & PF_P)) {
		pf_other++;
		return 0;
	}
	/* Not present -> present: nothing to invalidate (SDM 3A 4.10.4.3). */
	pt_map(kernel_pml4, va & ~(PAGE_SIZE - 1), pmm_alloc_zeroed(), PTE_RW | PTE_US | user_nx(),
	       LVL_PT);
	pf_faults++;
	return 1;
}

BENCH(pf, 65536) /* 256 MiB */
{
	struct trap_frame f;

	/* The frames, a page table per 2 MiB, the upper tables, the blob's pages. */
	need_frames(iters + (iters + 511) / 512 + 16, "the page-fault storm (a frame per page)",
		    " (512M or more for the default 65536 pages, 256 MiB)");
	bench_user_map(ub_b_touch_start, ub_b_touch_end);
	pf_pages = iters;
	pf_faults = pf_other = 0;
	pf_hook = pf_fault;
	bench_user_call(PF_VA, iters, &f);
	pf_hook = 0;
	if (pf_faults != iters || pf_other)
		bench_fail("expected %lu demand faults and no other, saw %lu and %lu", iters, pf_faults,
			   pf_other);
	/* Unmap and free, a page table at a time (the tables go in bench_reset). */
	for (uint64_t p = 0; p < iters; p += 512) {
		uint64_t *pt = kentry(PF_VA + p * PAGE_SIZE, LVL_PT);

		for (uint64_t i = 0; i < 512 && p + i < iters; i++) {
			pmm_free(pt[i] & PTE_ADDR);
			pt[i] = 0;
		}
	}
	return f.r9 - f.r8;
}

/* ---- randread: random reads over 1 GiB ----------------------------------- */

/* rep movsq: 512 iterations where memcpy's rep movsb takes 4096 (each emulated in hw mode here). */
static void copy_page64(void *dst, const void *src)
{
	uint64_t n = PAGE_SIZE / 8;

	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

#define RR_VA TWIN /* 1 GiB-aligned: one page directory */
#define RR_FRAMES 4096 /* 16 MiB */

BENCH(randread, 1ULL << 22)
{
	uint64_t frames, pts[8], *pd, flags = PTE_P | PTE_US | user_nx();
	struct trap_frame f;

	need_frames(RR_FRAMES + 512 + 16, "randread (16 MiB of frames, 2 MiB of page tables)", "");
	frames = pmm_alloc_contig(RR_FRAMES, PAGE_SIZE);
	/* Eight page tables map the 16 MiB; the other 504 are copies of them. */
	for (int k = 0; k < 8; k++) {
		uint64_t *pt;

		pts[k] = pmm_alloc();
		pt = phys_to_virt(pts[k]);
		for (uint64_t i = 0; i < 512; i++)
			pt[i] = (frames + ((uint64_t)k * 512 + i) * PAGE_SIZE) | flags;
	}
	pd = pt_entry(kernel_pml4, RR_VA, LVL_PD, 1);
	for (int j = 0; j < 512; j++) {
		uint64_t pt = j < 8 ? pts[j] : pmm_alloc();

		if (j >= 8)
			copy_page64(phys_to_virt(pt), phys_to_virt(pts[j % 8]));
		pd[j] = pt | PTE_P | PTE_RW | PTE_US;
	}
	bench_user_map(ub_b_randread_start, ub_b_randread_end);
	bench_user_call(RR_VA, iters, &f);
	for (uint64_t i = 0; i < RR_FRAMES; i++)
		pmm_free(frames + i * PAGE_SIZE);
	return f.r9 - f.r8;
}

/* ---- mmap: map / touch / unmap churn ------------------------------------- */

#define MM_VA (TWIN + PAGE_1G)
#define MM_PAGES 64

BENCH(mmap, 256)
{
	uint64_t *pt, t0, cycles;
	struct trap_frame f;

	need_frames(MM_PAGES + 16, "mmap", "");
	bench_user_map(ub_b_touch_start, ub_b_touch_end);
	pt = pt_entry(kernel_pml4, MM_VA, LVL_PT, 1); /* MM_VA is 2 MiB-aligned: 64 PTEs in a row */
	t0 = rdtsc();
	for (uint64_t n = 0; n < iters; n++) {
		for (int i = 0; i < MM_PAGES; i++)
			pt[i] = pmm_alloc_zeroed() | PTE_P | PTE_RW | PTE_US | user_nx();
		bench_user_call(MM_VA, MM_PAGES, &f);
		if (!n && *(uint64_t *)phys_to_virt(pt[0] & PTE_ADDR) != MM_PAGES)
			bench_fail("first cycle: expected 0x%x in the first page, saw 0x%lx", MM_PAGES,
				   *(uint64_t *)phys_to_virt(pt[0] & PTE_ADDR));
		for (int i = 0; i < MM_PAGES; i++) {
			uint64_t pa = pt[i] & PTE_ADDR;

			pt[i] = 0;
			invlpg(MM_VA + i * PAGE_SIZE);
			pmm_free(pa);
		}
	}
	cycles = rdtsc() - t0;
	return cycles;
}
