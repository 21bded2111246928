/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of code scanning (decode/scan.c, no KVM): what shadow mode
 * pays, in the VMM, the first time a page of guest kernel code runs. Built
 * -O2 without sanitizers against build/rel/libdecode.a: `make bench-scan`.
 *
 * The code: the executable sections of an ELF64 file given as the argument
 * (`make bench-scan SCAN_ELF=vmlinux`; bench/extract-vmlinux.sh unpacks the
 * Linux guest's), else this program's own. Each 4 KiB page of them is
 * treated as the VMM treats a kernel code page on its first execution:
 *
 *  sync   scan_sync_offset() of its first 30 bytes after the previous
 *         page's last 64 (where the page's first instruction starts)
 *  scan   scan_code_page() with shadow mode's kinds and the linear sweep,
 *         from that offset (or 0), with the next page's first 14 bytes.
 *         Offset 0 where the sync step found none is the bench's choice,
 *         not the VMM's (which adds no entry then): it can land inside an
 *         instruction of the page before and record sites that are not
 *         there (on Debian's 6.1 cloud kernel, one popf at
 *         0xffffffff8305a004, a byte of a movq's immediate)
 *  memo   the same scan into an empty scan memo (decode/scan.h, item 7):
 *         what keeping the decodes costs on a first scan
 *  rescan the page rewritten as Linux patches its text (one 5-byte
 *         instruction turned into a 5-byte nop, or a nop into a jmp) and
 *         scanned again, from scratch and with the memo of its first scan;
 *         both must record the same, and the memo must decode less
 *
 * Printed: the pages, instructions and sites found, microseconds per page
 * for each step (the median over RUNS passes over all pages), and a digest
 * of everything the first scans recorded (offsets, lengths, targets, sites
 * and exits): a change to the scanner that only makes it faster must leave
 * the digest as it was. The rescans have a digest of their own.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode/scan.h"

#define RUNS	  5
#define MAX_PAGES (64 * 1024)

struct code {
	const u8 *bytes; /* page-aligned runs of executable bytes, back to back */
	u64 *gva;	 /* each page's address in the image */
	unsigned npages;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static u8 *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	u8 *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* The executable sections of an ELF64 image, each cut into whole pages. */
static int load_code(const char *path, struct code *c)
{
	size_t len = 0;
	u8 *img = read_all(path, &len), *out;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	size_t used = 0;

	if (!img || len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff + (u64)eh->e_shnum * sizeof(Elf64_Shdr) > len) {
		fprintf(stderr, "scan_bench: %s: not an ELF64 file with section headers\n", path);
		free(img);
		return -1;
	}
	out = malloc(len + SCAN_PAGE_SIZE);
	c->gva = malloc(MAX_PAGES * sizeof(*c->gva));
	c->npages = 0;
	for (unsigned i = 0; out && c->gva && i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff) + i;

		if (sh->sh_type != SHT_PROGBITS || !(sh->sh_flags & SHF_EXECINSTR) ||
		    sh->sh_offset + sh->sh_size > len)
			continue;
		for (u64 o = 0; o + SCAN_PAGE_SIZE <= sh->sh_size && c->npages < MAX_PAGES;
		     o += SCAN_PAGE_SIZE) {
			memcpy(out + used, img + sh->sh_offset + o, SCAN_PAGE_SIZE);
			c->gva[c->npages++] = sh->sh_addr + o;
			used += SCAN_PAGE_SIZE;
		}
	}
	free(img);
	if (!out || !c->gva || !c->npages) {
		fprintf(stderr, "scan_bench: %s: no whole page of executable code\n", path);
		free(out);
		return -1;
	}
	c->bytes = out;
	return 0;
}

/* FNV-1a over what a scan recorded. */
static u64 digest(u64 h, const void *p, size_t n)
{
	const u8 *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static u64 digest_result(u64 h, int sync, const struct scan_result *r)
{
	h = digest(h, &sync, sizeof(sync));
	h = digest(h, r->insn_len, sizeof(r->insn_len));
	h = digest(h, r->targets, sizeof(r->targets));
	h = digest(h, &r->nsites, sizeof(r->nsites));
	for (unsigned i = 0; i < r->nsites; i++) {
		const struct scan_site *s = &r->sites[i];

		h = digest(h, &s->off, sizeof(s->off));
		h = digest(h, &s->len, sizeof(s->len));
		h = digest(h, &s->kind, sizeof(s->kind));
		h = digest(h, &s->conflict, sizeof(s->conflict));
	}
	h = digest(h, r->exits, r->nexits * sizeof(*r->exits));
	return digest(h, &r->pending_straddle, sizeof(r->pending_straddle));
}

/*
 * Rewrite one 5-byte instruction of a scanned page as text patching does:
 * a 5-byte nop becomes `jmp .+0x40`, anything else the 5-byte nop. The
 * last such instruction in the page; false if it has none.
 */
static bool rewrite_five(u8 *page, const struct scan_result *r)
{
	static const u8 nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	static const u8 jmp[5] = { 0xe9, 0x3b, 0x00, 0x00, 0x00 };

	for (unsigned o = SCAN_PAGE_SIZE - 5; o-- > 0;) {
		if (r->insn_len[o] != 5)
			continue;
		memcpy(page + o, memcmp(page + o, nop5, 5) ? nop5 : jmp, 5);
		return true;
	}
	return false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Scan page `p` of `c`, its bytes at `page`, as the VMM does, from `sync`; the seconds taken. */
static double scan_into(struct scan_result *r, const u8 *page, const struct code *c, unsigned p,
			int sync, struct scan_memo *memo, int *n)
{
	bool next = p + 1 < c->npages && c->gva[p + 1] == c->gva[p] + SCAN_PAGE_SIZE;
	u16 entry = (u16)(sync > 0 ? sync : 0);
	double t0 = now();

	scan_result_init(r, gva(c->gva[p]), DECODE_64, SCAN_KINDS_SHADOW);
	*n = scan_code_page_add_entry_memo(
		r, page, next ? c->bytes + (size_t)(p + 1) * SCAN_PAGE_SIZE : NULL,
		next ? SCAN_NEXT_MAX : 0, &entry, 1, memo);
	return now() - t0;
}

/*
 * The memo and rescan steps for page `p`, whose plain scan is `first`:
 * scan it into the memo (the same result as `first`, or fail), rewrite a
 * copy, and rescan the copy without and with the memo (the same result, or
 * fail). Adds the times and decodes up and the rescan to `rh`. Returns 1
 * if the page was rewritten and rescanned, 0 if it has no 5-byte
 * instruction, -1 on a failure (reported).
 */
static int rescan(const struct code *c, unsigned p, int sync, const struct scan_result *first,
		  struct scan_memo *memo, u8 *copy, double *memo_s, double *full_s, double *re_s,
		  u64 *rh, u64 *decodes_full, u64 *decodes_memo)
{
	const u8 *page = c->bytes + (size_t)p * SCAN_PAGE_SIZE;
	struct scan_result a, b;
	int na, nb;
	bool same;

	*memo_s += scan_into(&a, page, c, p, sync, memo, &na);
	same = na >= 0 && digest_result(0, sync, &a) == digest_result(0, sync, first);
	scan_result_free(&a);
	if (!same) {
		fprintf(stderr, "scan_bench: page %#llx: the scan into a memo differs\n",
			(unsigned long long)c->gva[p]);
		return -1;
	}
	memcpy(copy, page, SCAN_PAGE_SIZE);
	if (!rewrite_five(copy, first))
		return 0;
	*full_s += scan_into(&a, copy, c, p, sync, NULL, &na);
	*re_s += scan_into(&b, copy, c, p, sync, memo, &nb);
	same = na >= 0 && nb >= 0 && digest_result(0, sync, &a) == digest_result(0, sync, &b);
	*rh = digest_result(*rh, sync, &a);
	*decodes_full += a.ndecodes;
	*decodes_memo += b.ndecodes;
	scan_result_free(&a);
	scan_result_free(&b);
	if (!same) {
		fprintf(stderr, "scan_bench: page %#llx: the rescan with the memo differs\n",
			(unsigned long long)c->gva[p]);
		return -1;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct code c;
	double t_sync[RUNS], t_scan[RUNS], t_memo[RUNS], t_full[RUNS], t_re[RUNS];
	u64 insns = 0, sites = 0, h = 0xcbf29ce484222325ull, first_h = 0;
	u64 rh = 0, rewritten = 0, decodes_full = 0, decodes_memo = 0;
	struct scan_memo *memo = scan_memo_new();
	static u8 copy[SCAN_PAGE_SIZE];
	const char *path = argc > 1 ? argv[1] : "/proc/self/exe";

	if (argc > 2 || (argc == 2 && !strcmp(argv[1], "--help"))) {
		fprintf(stderr, "usage: scan_bench [ELF64 file]   (default: this program)\n");
		return 2;
	}
	if (!memo || load_code(path, &c))
		return 1;
	for (unsigned run = 0; run < RUNS; run++) {
		double sync_s = 0, scan_s = 0, memo_s = 0, full_s = 0, re_s = 0;

		h = 0xcbf29ce484222325ull;
		rh = 0xcbf29ce484222325ull;
		insns = sites = rewritten = decodes_full = decodes_memo = 0;
		for (unsigned p = 0; p < c.npages; p++) {
			const u8 *page = c.bytes + (size_t)p * SCAN_PAGE_SIZE;
			bool prev = p > 0 && c.gva[p - 1] + SCAN_PAGE_SIZE == c.gva[p];
			struct scan_result r;
			double t0 = now();
			int sync = prev ? scan_sync_offset(page - SCAN_SYNC_TAIL, SCAN_SYNC_TAIL,
							   page, SCAN_SYNC_HEAD, DECODE_64)
					: -1;
			int n;

			sync_s += now() - t0;
			scan_s += scan_into(&r, page, &c, p, sync, NULL, &n);
			if (n < 0) {
				fprintf(stderr, "scan_bench: page %#llx: scan failed (%d)\n",
					(unsigned long long)c.gva[p], n);
				return 1;
			}
			insns += r.ninsns;
			sites += r.nsites;
			h = digest_result(h, sync, &r);
			n = rescan(&c, p, sync, &r, memo, copy, &memo_s, &full_s, &re_s, &rh,
				   &decodes_full, &decodes_memo);
			if (n < 0)
				return 1;
			rewritten += (u64)n;
			scan_result_free(&r);
		}
		t_sync[run] = sync_s * 1e6 / c.npages;
		t_scan[run] = scan_s * 1e6 / c.npages;
		t_memo[run] = memo_s * 1e6 / c.npages;
		t_full[run] = rewritten ? full_s * 1e6 / (double)rewritten : 0;
		t_re[run] = rewritten ? re_s * 1e6 / (double)rewritten : 0;
		if (run == 0)
			first_h = h;
		else if (h != first_h) {
			fprintf(stderr, "scan_bench: the scans differ between runs\n");
			return 1;
		}
	}
	qsort(t_sync, RUNS, sizeof(double), cmp_double);
	qsort(t_scan, RUNS, sizeof(double), cmp_double);
	qsort(t_memo, RUNS, sizeof(double), cmp_double);
	qsort(t_full, RUNS, sizeof(double), cmp_double);
	qsort(t_re, RUNS, sizeof(double), cmp_double);
	printf("scan_bench: %s: %u pages, %llu instructions, %llu sites, digest %016llx\n", path,
	       c.npages, (unsigned long long)insns, (unsigned long long)sites,
	       (unsigned long long)h);
	printf("  sync   %8.1f us per page (median of %d runs; min %.1f, max %.1f)\n",
	       t_sync[RUNS / 2], RUNS, t_sync[0], t_sync[RUNS - 1]);
	printf("  scan   %8.1f us per page (median of %d runs; min %.1f, max %.1f)\n",
	       t_scan[RUNS / 2], RUNS, t_scan[0], t_scan[RUNS - 1]);
	printf("  memo   %8.1f us per page, the first scan into a scan memo\n", t_memo[RUNS / 2]);
	printf("rescan after a 5-byte rewrite (%llu pages), digest %016llx:\n",
	       (unsigned long long)rewritten, (unsigned long long)rh);
	printf("  full   %8.1f us per page rewritten, %llu decodes\n", t_full[RUNS / 2],
	       (unsigned long long)decodes_full);
	printf("  memo   %8.1f us per page rewritten, %llu decodes (the same result)\n",
	       t_re[RUNS / 2], (unsigned long long)decodes_memo);
	scan_memo_free(memo);
	return 0;
}
