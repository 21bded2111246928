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
 *         from that offset (or 0), with the next page's first 14 bytes
 *
 * Printed: the pages, instructions and sites found, microseconds per page
 * for each step (the median over RUNS passes over all pages), and a digest
 * of everything the scans recorded (offsets, lengths, targets, sites and
 * exits): a change to the scanner that only makes it faster must leave the
 * digest as it was.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode/scan.h"

#define RUNS	  5
#define SYNC_TAIL 64
#define SYNC_HEAD (2 * SCAN_INSN_MAX)
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct code c;
	double t_sync[RUNS], t_scan[RUNS];
	u64 insns = 0, sites = 0, h = 0xcbf29ce484222325ull, first_h = 0;
	const char *path = argc > 1 ? argv[1] : "/proc/self/exe";

	if (argc > 2 || (argc == 2 && !strcmp(argv[1], "--help"))) {
		fprintf(stderr, "usage: scan_bench [ELF64 file]   (default: this program)\n");
		return 2;
	}
	if (load_code(path, &c))
		return 1;
	for (unsigned run = 0; run < RUNS; run++) {
		double sync_s = 0, scan_s = 0;

		h = 0xcbf29ce484222325ull;
		insns = sites = 0;
		for (unsigned p = 0; p < c.npages; p++) {
			const u8 *page = c.bytes + (size_t)p * SCAN_PAGE_SIZE;
			bool next = p + 1 < c.npages && c.gva[p + 1] == c.gva[p] + SCAN_PAGE_SIZE;
			bool prev = p > 0 && c.gva[p - 1] + SCAN_PAGE_SIZE == c.gva[p];
			struct scan_result r;
			double t0 = now(), t1;
			int sync = prev ? scan_sync_offset(page - SYNC_TAIL, SYNC_TAIL, page,
							   SYNC_HEAD, DECODE_64)
					: -1;
			int n;

			t1 = now();
			n = scan_code_page(&r, page, next ? page + SCAN_PAGE_SIZE : NULL,
					   next ? SCAN_NEXT_MAX : 0, gva(c.gva[p]), DECODE_64,
					   SCAN_KINDS_SHADOW, (u16)(sync > 0 ? sync : 0));
			scan_s += now() - t1;
			sync_s += t1 - t0;
			if (n < 0) {
				fprintf(stderr, "scan_bench: page %#llx: scan failed (%d)\n",
					(unsigned long long)c.gva[p], n);
				return 1;
			}
			insns += r.ninsns;
			sites += r.nsites;
			h = digest_result(h, sync, &r);
			scan_result_free(&r);
		}
		t_sync[run] = sync_s * 1e6 / c.npages;
		t_scan[run] = scan_s * 1e6 / c.npages;
		if (run == 0)
			first_h = h;
		else if (h != first_h) {
			fprintf(stderr, "scan_bench: the scans differ between runs\n");
			return 1;
		}
	}
	qsort(t_sync, RUNS, sizeof(double), cmp_double);
	qsort(t_scan, RUNS, sizeof(double), cmp_double);
	printf("scan_bench: %s: %u pages, %llu instructions, %llu sites, digest %016llx\n", path,
	       c.npages, (unsigned long long)insns, (unsigned long long)sites,
	       (unsigned long long)h);
	printf("  sync   %8.1f us per page (median of %d runs; min %.1f, max %.1f)\n",
	       t_sync[RUNS / 2], RUNS, t_sync[0], t_sync[RUNS - 1]);
	printf("  scan   %8.1f us per page (median of %d runs; min %.1f, max %.1f)\n",
	       t_scan[RUNS / 2], RUNS, t_scan[0], t_scan[RUNS - 1]);
	return 0;
}
