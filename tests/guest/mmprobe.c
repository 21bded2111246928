// SPDX-License-Identifier: MIT
/*
 * A guest program for test_linux's mm tests (tests/integration/test_linux.c,
 * test_linux_mm and test_linux_mm_sync): what Linux's memory manager
 * does to a process's page tables that a shadow MMU must follow exactly,
 * each printed as one line "probe-mm-NAME: ok" (or what was seen instead).
 * A shadow MMU that keeps a stale spte, maps a clean gpte writable or a
 * gpte with A = 0 at all, shows here as data a process reads wrongly or
 * as an A/D bit the kernel never sees.
 *
 * The common oracle is "the process's view equals the kernel's": a word
 * read through the process's own pointer (the real CPU, through the
 * shadow tables) must equal the word pread() from /proc/self/mem (the
 * kernel's walk of the guest page tables, then its direct map).
 *
 *   accessed   MADV_COLD clears A in the PTEs of 64 pages and flushes;
 *              reading 16 of them and writing 8 more must make exactly
 *              those 24 "Referenced" in smaps (a spte left mapped after A
 *              was cleared, or a walk that does not set A, gives fewer)
 *   softdirty  clear_refs 4 write-protects the PTEs and clears soft-dirty;
 *              writing 3 of 16 pages must soft-dirty exactly those in
 *              /proc/self/pagemap (a spte left writable gives none)
 *   lazyfree   MADV_FREE cleans (D = 0) 32 written pages; all are read,
 *              then 16 written again, which must set D in their PTEs;
 *              MADV_PAGEOUT then discards the clean ones and must keep the
 *              16 (a write that does not set D loses the data)
 *   protect    mprotect to read-only and PROT_NONE, munmap and a MAP_FIXED
 *              mapping over written pages take effect at once
 *   exec       code in an anonymous page runs once mprotect makes it
 *              executable and faults once it makes it read-only (NX in the
 *              PTE), while a neighbour keeps running; code rewritten in
 *              place runs as rewritten; after fork a child that rewrites
 *              the page runs its copy and the parent its own
 *   punch      a shared memfd mapping in two processes: a hole punched in
 *              the file while the other process sleeps unmaps the page in
 *              both (the other's page tables change while they are not the
 *              loaded ones); both then read zero, and one's write reaches
 *              the other; a truncation makes the tail raise SIGBUS in both
 *   fork       after fork, private pages are copied on the first write in
 *              either process and a MAP_SHARED page is the same in both
 *   procmem    a write through /proc/self/mem to a read-only private page
 *              shared with the parent (FOLL_FORCE breaks the COW) is what
 *              the child then reads through its own pointer
 *   kernelview after fork, the kernel reads a page (copy_from_user) that the
 *              process then writes, and the process reads a page the
 *              kernel then writes (a COW break in kernel mode): each sees
 *              the other's write (in shadow mode the guest kernel's view of
 *              user pages is a root of its own)
 *   poketext   PTRACE_POKETEXT into a stopped child's text (a private file
 *              mapping: the page-cache page is copied for the child only);
 *              the child then runs the new code, the parent the old
 *   remap      MADV_DONTNEED gives zero pages; mremap moves the pages (the
 *              old range faults, the new one has the data)
 *   move       mremap between addresses aligned to 2 MiB and to 1 GiB:
 *              Linux then moves whole page tables (the PDE, or the PDPTE,
 *              that points at a table goes to another slot; the table
 *              stays), and a huge PMD as it is; the new range has the
 *              data in both views, the old one faults
 *   thp        a 2 MiB transparent huge page, then mprotect and
 *              MADV_DONTNEED of one 4 KiB page inside it (the kernel
 *              splits the PMD), the neighbours keep data and rights
 *   collapse   512 pages mapped with 4 KiB PTEs, then MADV_COLLAPSE: the
 *              kernel copies them into one 2 MiB page and replaces the page
 *              table by a huge PMD; reads and writes must reach the new
 *              page (a 4 KiB spte left from before writes to a freed frame)
 *   hugetlb    two 2 MiB hugetlbfs pages (PS in the guest's PDEs from the
 *              first fault); after fork each process writes one, which
 *              copies it for the writer only; then mprotect
 *   uffd       userfaultfd: missing pages filled by a handler thread
 *              (UFFDIO_COPY), then write protection (UFFDIO_WRITEPROTECT):
 *              three pages written, exactly three faults (a spte left
 *              writable gives fewer)
 *   compact    64 MiB with every other 64 KiB unmapped, then
 *              /proc/sys/vm/compact_memory: the pages the kernel migrated
 *              (moved to another frame) keep their data in both views
 *   ksm        identical MADV_MERGEABLE pages merged by ksmd (the PTEs
 *              write-protected and pointed at one frame), then each
 *              written: a COW copy per page, in both views
 *
 * `mmprobe swap` runs one more, alone, where the test has set up swap (a
 * zram device; test_linux_swap):
 *   swap       MADV_PAGEOUT swaps out 64 pages (pagemap must show each as
 *              a swap entry), then half are written and half read, and
 *              all swapped out and checked again; then a child confined to
 *              a memory cgroup of 24 MiB writes and checks 64 MiB (half in
 *              transparent huge pages, which reclaim splits) twice over,
 *              so that reclaim ages A bits, unmaps and swaps out under it
 *              all the time; last, in the cgroup, one process sleeps while
 *              another's 48 MiB push its 32 MiB out, and then checks them.
 *              A spte kept after its PTE became a swap entry shows as a
 *              write the kernel never sees, or as a frame's old data read
 *              back.
 *
 * Static, built by the Makefile (build/probe/mmprobe) and packed into a copy
 * of the guest's initramfs by the test; run as root (pagemap's soft-dirty
 * bits, hugetlbfs pages, compaction, ksm, memory cgroups).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define HUGE (2ul << 20)

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static int mem_fd = -1;

/* The word at p as the kernel sees it (its walk of the guest page tables). */
static uint64_t kernel_word(const void *p)
{
	uint64_t v = 0;

	if (pread(mem_fd, &v, sizeof(v), (off_t)(uintptr_t)p) != (ssize_t)sizeof(v))
		return ~0ull ^ (uintptr_t)p; /* differs from what a pointer read gives */
	return v;
}

static void kernel_store(void *p, uint64_t v)
{
	if (pwrite(mem_fd, &v, sizeof(v), (off_t)(uintptr_t)p) != (ssize_t)sizeof(v))
		printf("mmprobe: pwrite /proc/self/mem at %p: %s\n", p, strerror(errno));
}

static uint64_t tag(uint64_t seed, size_t page)
{
	return seed * 0x9e3779b97f4a7c15ull ^ (page + 1) * 0xff51afd7ed558ccdull;
}

/* Write the pattern of `seed` to the first word of each of n pages. */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		*(volatile uint64_t *)(p + i * PAGE) = tag(seed, i);
}

/*
 * Check pages [first, first + n) of the area at p against the pattern of
 * `seed` (0: zero pages) in both views; 0 if all agree, else describes the
 * first mismatch in why.
 */
static int check_from(const uint8_t *p, size_t first, size_t n, uint64_t seed, char *why,
		      size_t len)
{
	for (size_t i = first; i < first + n; i++) {
		uint64_t want = seed ? tag(seed, i) : 0;
		uint64_t u = *(const volatile uint64_t *)(p + i * PAGE);
		uint64_t k = kernel_word(p + i * PAGE);

		if (u != want || k != want) {
			snprintf(why, len,
				 "page %zu: process reads %#llx, kernel %#llx, want %#llx", i,
				 (unsigned long long)u, (unsigned long long)k,
				 (unsigned long long)want);
			return -1;
		}
	}
	return 0;
}

static int check(const uint8_t *p, size_t n, uint64_t seed, char *why, size_t len)
{
	return check_from(p, 0, n, seed, why, len);
}

/* A check's one line: "probe-mm-<name>: ok", or what went wrong (`why`). */
static void verdict(const char *name, const char *why)
{
	printf("probe-mm-%s: %s\n", name, why[0] ? why : "ok");
}

/*
 * Write its index to the second word of each of pages [first, first + n)
 * and read it back through the kernel: a write through a stale spte goes
 * to a frame the process no longer has. 0, or -1 with the page in why.
 */
static int writes_seen(uint8_t *p, size_t first, size_t n, char *why, size_t len)
{
	for (size_t i = first; i < first + n; i++) {
		*(volatile uint64_t *)(p + i * PAGE + 8) = i;
		if (kernel_word(p + i * PAGE + 8) != i)
			return snprintf(why, len, "page %zu: a write the kernel does not see", i),
			       -1;
	}
	return 0;
}

/*
 * A forked child's own /proc/self/mem: the inherited descriptor is the
 * parent's mm (the file was opened by the parent).
 */
static void reopen_mem(void)
{
	close(mem_fd);
	mem_fd = open("/proc/self/mem", O_RDWR);
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* A number from a sysfs/procfs file, or -1. */
static long read_number(const char *path)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

/*
 * `field` (e.g. "Referenced:") in kB of the smaps entry (the VMA) that
 * holds p, or -1. Each probe's area is a VMA of its own: its mapping has
 * MADV_NOHUGEPAGE or MADV_HUGEPAGE, which no neighbour has.
 */
static long smaps_kb(const void *p, const char *field)
{
	char line[256];
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long lo, hi, a = (unsigned long)(uintptr_t)p;
	long kb = -1;
	int in = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* A mapping's header line: no field name ("Size:") parses as "%lx-%lx". */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = lo <= a && a < hi;
		else if (in && !strncmp(line, field, strlen(field))) {
			kb = strtol(line + strlen(field), NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* A long from /proc/vmstat, or -1. */
static long vmstat(const char *name)
{
	char line[128];
	FILE *f = fopen("/proc/vmstat", "r");
	long v = -1;
	size_t n = strlen(name);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ' ') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static uint8_t *map_pages(size_t n)
{
	void *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* 4 KiB PTEs: THP (always, in Debian's kernel) has its own probe. */
	madvise(p, n * PAGE, MADV_NOHUGEPAGE);
	return p;
}

/* ---- faults --------------------------------------------------------------- */

static sigjmp_buf fault_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(fault_jmp, 1);
}

/* Whether reading (write = 0) or writing the word at p raises SIGSEGV or SIGBUS. */
static int faults(volatile uint64_t *p, int write)
{
	struct sigaction sa = { .sa_handler = on_segv }, old, old_bus;
	volatile int faulted = 0;

	sigaction(SIGSEGV, &sa, &old);
	sigaction(SIGBUS, &sa, &old_bus);
	if (!sigsetjmp(fault_jmp, 1)) {
		if (write)
			*p = 0x5a5a;
		else
			(void)*p;
	} else {
		faulted = 1;
	}
	sigaction(SIGSEGV, &old, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return faulted;
}

/* ---- the probes ----------------------------------------------------------- */

static void probe_accessed(void)
{
	uint8_t *p = map_pages(64);
	long r0, r1, r2;

	if (!p) {
		printf("probe-mm-accessed: mmap: %s\n", strerror(errno));
		return;
	}
	fill(p, 64, 1);
	/*
	 * Not clear_refs 1: it leaves the TLB as it is, and a CPU need not
	 * set A again through an entry it still holds. MADV_COLD clears A and
	 * PG_referenced and flushes.
	 */
	if (madvise(p, 64 * PAGE, MADV_COLD)) {
		printf("probe-mm-accessed: MADV_COLD: %s\n", strerror(errno));
		return;
	}
	r0 = smaps_kb(p, "Referenced:");
	for (size_t i = 0; i < 16; i++)
		(void)*(volatile uint64_t *)(p + i * PAGE);
	r1 = smaps_kb(p, "Referenced:");
	for (size_t i = 16; i < 24; i++)
		*(volatile uint64_t *)(p + i * PAGE) = i;
	r2 = smaps_kb(p, "Referenced:");
	if (r0 == 0 && r1 == 16 * 4 && r2 == 24 * 4)
		printf("probe-mm-accessed: ok\n");
	else
		printf("probe-mm-accessed: Referenced %ld kB after MADV_COLD (want 0), %ld after "
		       "16 reads (want 64), %ld after 8 writes (want 96)\n",
		       r0, r1, r2);
	munmap(p, 64 * PAGE);
}

static void probe_softdirty(void)
{
	static const size_t written[] = { 2, 5, 11 };
	uint8_t *p = map_pages(16);
	uint64_t pm[16];
	int pfd;
	char got[80] = "", want[80] = "";

	if (!p) {
		printf("probe-mm-softdirty: mmap: %s\n", strerror(errno));
		return;
	}
	fill(p, 16, 2);
	if (write_file("/proc/self/clear_refs", "4")) {
		printf("probe-mm-softdirty: clear_refs 4: %s\n", strerror(errno));
		return;
	}
	for (size_t i = 0; i < 16; i++)
		(void)*(volatile uint64_t *)(p + i * PAGE);
	for (size_t i = 0; i < 3; i++)
		*(volatile uint64_t *)(p + written[i] * PAGE) = ~tag(2, written[i]);
	pfd = open("/proc/self/pagemap", O_RDONLY);
	if (pfd < 0 ||
	    pread(pfd, pm, sizeof(pm), (off_t)((uintptr_t)p / PAGE * 8)) != (ssize_t)sizeof(pm)) {
		printf("probe-mm-softdirty: pagemap: %s\n", strerror(errno));
		if (pfd >= 0)
			close(pfd);
		return;
	}
	close(pfd);
	for (size_t i = 0; i < 16; i++) {
		if (pm[i] >> 55 & 1)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), " %zu", i);
	}
	for (size_t i = 0; i < 3; i++)
		snprintf(want + strlen(want), sizeof(want) - strlen(want), " %zu", written[i]);
	if (!strcmp(got, want))
		printf("probe-mm-softdirty: ok\n");
	else
		printf("probe-mm-softdirty: soft-dirty pages:%s (want%s)\n", got[0] ? got : " none",
		       want);
	munmap(p, 16 * PAGE);
}

static void probe_lazyfree(void)
{
	enum { N = 32 };
	uint8_t *p = map_pages(N);
	size_t lost = 0, discarded = 0, kept = 0;
	long freed0 = vmstat("pglazyfreed");

	if (!p) {
		printf("probe-mm-lazyfree: mmap: %s\n", strerror(errno));
		return;
	}
	fill(p, N, 3);
	if (madvise(p, N * PAGE, MADV_FREE)) {
		printf("probe-mm-lazyfree: MADV_FREE: %s\n", strerror(errno));
		return;
	}
	/*
	 * Read first: the PTEs get A = 1 with D = 0, so a write must set D
	 * in a PTE the CPU already uses (a write that faults on a not-accessed
	 * PTE sets both on the way).
	 */
	for (size_t i = 0; i < N; i++)
		(void)*(volatile uint64_t *)(p + i * PAGE);
	for (size_t i = 0; i < N; i += 2)
		*(volatile uint64_t *)(p + i * PAGE) = ~tag(3, i);
	if (madvise(p, N * PAGE, MADV_PAGEOUT)) {
		printf("probe-mm-lazyfree: MADV_PAGEOUT: %s\n", strerror(errno));
		return;
	}
	for (size_t i = 0; i < N; i++) {
		uint64_t u = *(volatile uint64_t *)(p + i * PAGE);

		if (i % 2 == 0)
			lost += u != ~tag(3, i) || kernel_word(p + i * PAGE) != u;
		else if (u == 0)
			discarded++;
		else
			kept += u == tag(3, i);
	}
	if (!lost && discarded + kept == N / 2 && discarded)
		printf("probe-mm-lazyfree: ok (%zu of %d clean pages discarded)\n", discarded,
		       N / 2);
	else
		printf("probe-mm-lazyfree: %zu of %d written pages lost their data; of the clean "
		       "ones %zu discarded, %zu kept (pglazyfreed %ld -> %ld)\n",
		       lost, N / 2, discarded, kept, freed0, vmstat("pglazyfreed"));
	munmap(p, N * PAGE);
}

static void probe_protect(void)
{
	uint8_t *p = map_pages(4);
	char why[160] = "";

	if (!p) {
		printf("probe-mm-protect: mmap: %s\n", strerror(errno));
		return;
	}
	fill(p, 4, 4);
	mprotect(p, PAGE, PROT_READ);
	mprotect(p + PAGE, PAGE, PROT_NONE);
	munmap(p + 2 * PAGE, PAGE);
	if (!faults((uint64_t *)p, 1))
		snprintf(why, sizeof(why), "a write to a read-only page did not fault");
	else if (faults((uint64_t *)p, 0) || *(volatile uint64_t *)p != tag(4, 0))
		snprintf(why, sizeof(why), "the read-only page lost its data");
	else if (!faults((uint64_t *)(p + PAGE), 0))
		snprintf(why, sizeof(why), "a read of a PROT_NONE page did not fault");
	else if (!faults((uint64_t *)(p + 2 * PAGE), 0))
		snprintf(why, sizeof(why), "a read of an unmapped page did not fault");
	else if (faults((uint64_t *)(p + 3 * PAGE), 1))
		snprintf(why, sizeof(why), "a write to the writable neighbour faulted");
	mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE);
	if (!why[0] && (faults((uint64_t *)p, 1) || faults((uint64_t *)(p + PAGE), 1)))
		snprintf(why, sizeof(why), "a write after mprotect back to read-write faulted");
	if (!why[0] && *(volatile uint64_t *)(p + PAGE) != 0x5a5a)
		snprintf(why, sizeof(why), "the page made writable again did not keep a write");
	/* A fresh mapping over written pages reads zero. */
	fill(p + 3 * PAGE, 1, 5);
	if (!why[0] && mmap(p + 3 * PAGE, PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		snprintf(why, sizeof(why), "MAP_FIXED: %s", strerror(errno));
	else if (!why[0])
		check(p + 3 * PAGE, 1, 0, why, sizeof(why)); /* says what it read instead */
	verdict("protect", why);
	munmap(p, 4 * PAGE);
}

/* Whether calling the function at p raises SIGSEGV; else its result in *ret. */
static int call_faults(const void *p, int *ret)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	volatile int faulted = 0;

	sigaction(SIGSEGV, &sa, &old);
	if (!sigsetjmp(fault_jmp, 1))
		*ret = ((int (*)(void))(uintptr_t)p)();
	else
		faulted = 1;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

/* Whether the function at p returns want (a fault or another value: no). */
static int runs(const void *p, int want)
{
	int r = -1;

	return !call_faults(p, &r) && r == want;
}

static void probe_exec(void)
{
	static const uint8_t code[] = { 0xb8, 0, 0, 0, 0, 0xc3 }; /* mov $imm32,%eax; ret */
	uint8_t *p = map_pages(2);
	char why[160] = "";
	int status = 0;
	pid_t pid;

	if (!p) {
		printf("probe-mm-exec: mmap: %s\n", strerror(errno));
		return;
	}
	memcpy(p, code, sizeof(code));
	memcpy(p + PAGE, code, sizeof(code));
	p[1] = 42;
	p[PAGE + 1] = 7;
	if (mprotect(p, 2 * PAGE, PROT_READ | PROT_EXEC))
		snprintf(why, sizeof(why), "mprotect RX: %s", strerror(errno));
	else if (!runs(p, 42) || !runs(p + PAGE, 7))
		snprintf(why, sizeof(why), "code in a page made executable did not run");
	else if (mprotect(p, PAGE, PROT_READ) || runs(p, 42))
		snprintf(why, sizeof(why), "code ran from a page made read-only (no NX)");
	else if (!runs(p + PAGE, 7) || faults((uint64_t *)p, 0))
		snprintf(why, sizeof(why),
			 "mprotect of one page changed its neighbour or its reads");
	else if (mprotect(p, PAGE, PROT_READ | PROT_WRITE) || (p[1] = 43, 0) ||
		 mprotect(p, PAGE, PROT_READ | PROT_EXEC) || !runs(p, 43))
		snprintf(why, sizeof(why), "code rewritten in place did not run as rewritten");
	if (why[0]) {
		printf("probe-mm-exec: %s\n", why);
		return;
	}
	pid = fork();
	if (pid == 0) {
		/* The child's copy: writable and executable at once, then run. */
		if (mprotect(p, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC))
			_exit(2);
		p[1] = 44;
		_exit(runs(p, 44) ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		snprintf(why, sizeof(why), "the child did not run its rewritten copy (status %#x)",
			 status);
	else if (!runs(p, 43))
		snprintf(why, sizeof(why), "the child's rewrite reached the parent's code");
	verdict("exec", why);
	munmap(p, 2 * PAGE);
}

static void probe_fork(void)
{
	uint8_t *priv = map_pages(8);
	uint8_t *shared =
		mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int go[2], done[2], status = 0;
	char why[160] = "", c = 0;
	pid_t pid;

	if (!priv || shared == MAP_FAILED || pipe(go) || pipe(done)) {
		printf("probe-mm-fork: set-up: %s\n", strerror(errno));
		return;
	}
	fill(priv, 8, 6);
	*(volatile uint64_t *)shared = 1;
	pid = fork();
	if (pid == 0) {
		/* The child writes pages 0-3; it reads 4-7 after the parent has written them. */
		reopen_mem();
		fill(priv, 4, 7);
		*(volatile uint64_t *)shared = 2;
		if (write(done[1], "x", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(10);
		if (check(priv, 4, 7, why, sizeof(why)))
			_exit(11);
		/* The parent's writes to 4-7 must not show here. */
		if (check_from(priv, 4, 4, 6, why, sizeof(why)))
			_exit(12);
		if (*(volatile uint64_t *)shared != 3)
			_exit(13);
		_exit(0);
	}
	if (pid < 0 || read(done[0], &c, 1) != 1) {
		printf("probe-mm-fork: fork: %s\n", strerror(errno));
		return;
	}
	if (check(priv, 8, 6, why, sizeof(why)))
		; /* the child's writes showed in the parent */
	else if (*(volatile uint64_t *)shared != 2)
		snprintf(why, sizeof(why), "the shared page reads %llu in the parent, want 2",
			 (unsigned long long)*(volatile uint64_t *)shared);
	for (size_t i = 4; i < 8; i++)
		*(volatile uint64_t *)(priv + i * PAGE) = tag(0x66, i);
	*(volatile uint64_t *)shared = 3;
	if (write(go[1], "x", 1) != 1 || waitpid(pid, &status, 0) != pid)
		snprintf(why, sizeof(why), "lost the child: %s", strerror(errno));
	else if (!why[0] && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		snprintf(why, sizeof(why),
			 "the child saw the wrong data (status %#x: 11 its own writes, "
			 "12 the parent's, 13 the shared page)",
			 status);
	verdict("fork", why);
	munmap(priv, 8 * PAGE);
	munmap(shared, PAGE);
	close(go[0]), close(go[1]), close(done[0]), close(done[1]);
}

/*
 * The child's side of probe_punch: page 1 read (its PTE made), then asleep
 * until the parent has punched it out; then zero, written, and page 2 gone
 * after the truncation. Exits 0, or 10 + the step that went wrong.
 */
static void punch_child(volatile uint64_t *m, int go, int done)
{
	char c;

	reopen_mem();
	if (m[PAGE / 8] != tag(18, 1))
		_exit(10);
	if (write(done, "r", 1) != 1 || read(go, &c, 1) != 1)
		_exit(11);
	if (m[PAGE / 8] != 0 || kernel_word((const void *)&m[PAGE / 8]) != 0)
		_exit(12); /* the page punched out is still mapped here */
	m[PAGE / 8] = tag(19, 1);
	if (write(done, "w", 1) != 1 || read(go, &c, 1) != 1)
		_exit(13);
	if (!faults(&m[2 * PAGE / 8], 0))
		_exit(14); /* the truncated page still reads here */
	_exit(0);
}

static void probe_punch(void)
{
	int fd = (int)syscall(SYS_memfd_create, "mmprobe", 0), go[2], done[2], status = 0;
	volatile uint64_t *m;
	char why[160] = "", c;
	pid_t pid;

	if (fd < 0 || ftruncate(fd, 4 * PAGE) || pipe(go) || pipe(done)) {
		printf("probe-mm-punch: set-up: %s\n", strerror(errno));
		return;
	}
	m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		printf("probe-mm-punch: mmap: %s\n", strerror(errno));
		return;
	}
	fill((uint8_t *)m, 4, 18);
	pid = fork();
	if (pid == 0)
		punch_child(m, go[0], done[1]);
	if (pid < 0 || read(done[0], &c, 1) != 1)
		snprintf(why, sizeof(why), "lost the child: %s", strerror(errno));
	else if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PAGE, PAGE))
		snprintf(why, sizeof(why), "fallocate PUNCH_HOLE: %s", strerror(errno));
	else if (m[PAGE / 8] != 0 || kernel_word((const void *)&m[PAGE / 8]) != 0)
		snprintf(why, sizeof(why), "the page punched out still reads its data");
	else if (write(go[1], "g", 1) != 1 || read(done[0], &c, 1) != 1)
		snprintf(why, sizeof(why), "the child stopped after the punch");
	else if (m[PAGE / 8] != tag(19, 1) || kernel_word((const void *)&m[PAGE / 8]) != tag(19, 1))
		snprintf(why, sizeof(why), "the child's write to the shared page is not seen");
	else if (ftruncate(fd, 2 * PAGE) || !faults(&m[2 * PAGE / 8], 0))
		snprintf(why, sizeof(why), "a page truncated off the file still reads");
	else
		check((const uint8_t *)m, 1, 18, why, sizeof(why)); /* page 0 kept its data */
	if (pid > 0) {
		if (write(go[1], "t", 1) != 1 || waitpid(pid, &status, 0) != pid)
			status = -1;
		if (!why[0] && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			snprintf(why, sizeof(why),
				 "the child saw the wrong thing (status %#x: 12 the punched page "
				 "still mapped, 14 the truncated page still mapped)",
				 status);
	}
	verdict("punch", why);
	munmap((void *)m, 4 * PAGE);
	close(fd);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

static void probe_procmem(void)
{
	uint8_t *p = map_pages(2);
	int status = 0;
	pid_t pid;

	if (!p) {
		printf("probe-mm-procmem: mmap: %s\n", strerror(errno));
		return;
	}
	fill(p, 2, 8);
	mprotect(p, 2 * PAGE, PROT_READ);
	pid = fork();
	if (pid == 0) {
		/* Read first, so the child's PTE (and a shadow spte) maps the shared frame. */
		reopen_mem();
		if (*(volatile uint64_t *)p != tag(8, 0))
			_exit(20);
		kernel_store(p, 0x1234);
		if (*(volatile uint64_t *)p != 0x1234)
			_exit(21); /* still reading the shared frame */
		if (*(volatile uint64_t *)(p + PAGE) != tag(8, 1) || !faults((uint64_t *)p, 1))
			_exit(22);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		printf("probe-mm-procmem: fork: %s\n", strerror(errno));
	else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		printf("probe-mm-procmem: child status %#x (21: it read the old frame after the "
		       "forced COW)\n",
		       status);
	else if (*(volatile uint64_t *)p != tag(8, 0) || kernel_word(p) != tag(8, 0))
		printf("probe-mm-procmem: the child's forced write showed in the parent\n");
	else
		printf("probe-mm-procmem: ok\n");
	munmap(p, 2 * PAGE);
}

/*
 * The kernel's accesses to user memory (copy_from_user, copy_to_user) go
 * through the guest kernel's own view of the user pages (in shadow mode a
 * root of its own): a COW break in one view must show in the other.
 */
static void probe_kernelview(void)
{
	uint8_t *p = map_pages(2);
	int up[2], down[2], status = 0;
	uint64_t a = 0, b = 0, v = 0x88;
	pid_t pid;

	if (!p || pipe(up) || pipe(down)) {
		printf("probe-mm-kernelview: set-up: %s\n", strerror(errno));
		return;
	}
	fill(p, 2, 13);
	pid = fork();
	if (pid == 0) {
		/* The kernel reads page 0 (its view maps the shared frame); the process writes it.
		 */
		if (write(up[1], p, 8) != 8)
			_exit(30);
		*(volatile uint64_t *)p = 0x77;
		if (write(up[1], p, 8) != 8)
			_exit(31);
		/* The process reads page 1; the kernel writes it (a COW break in kernel mode). */
		if (*(volatile uint64_t *)(p + PAGE) != tag(13, 1))
			_exit(32);
		if (read(down[0], p + PAGE, 8) != 8)
			_exit(33);
		if (*(volatile uint64_t *)(p + PAGE) != 0x88)
			_exit(34);
		_exit(0);
	}
	if (pid < 0 || write(down[1], &v, 8) != 8 || read(up[0], &a, 8) != 8 ||
	    read(up[0], &b, 8) != 8 || waitpid(pid, &status, 0) != pid)
		printf("probe-mm-kernelview: child: %s\n", strerror(errno));
	else if (a != tag(13, 0) || b != 0x77)
		printf("probe-mm-kernelview: the kernel read %#llx after the process wrote 0x77 "
		       "(before: %#llx, want %#llx)\n",
		       (unsigned long long)b, (unsigned long long)a,
		       (unsigned long long)tag(13, 0));
	else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		printf("probe-mm-kernelview: child status %#x (34: it did not read what the kernel "
		       "wrote)\n",
		       status);
	else if (*(volatile uint64_t *)p != tag(13, 0) || kernel_word(p + PAGE) != tag(13, 1))
		printf("probe-mm-kernelview: the child's writes showed in the parent\n");
	else
		printf("probe-mm-kernelview: ok\n");
	munmap(p, 2 * PAGE);
	close(up[0]), close(up[1]), close(down[0]), close(down[1]);
}

/* `mov $1,%eax; ret`: the word a debugger rewrites in probe_poketext. */
__attribute__((noipa, aligned(64))) static int poke_target(void)
{
	return 1;
}

/*
 * A debugger's breakpoint write: PTRACE_POKETEXT into a child's text, a
 * private file mapping of this program, copies the page (a forced COW of
 * page-cache memory) in the child only; the child must then execute the
 * new code, and the parent the old.
 */
static void probe_poketext(void)
{
	int (*volatile fn)(void) = poke_target;
	uintptr_t at = (uintptr_t)poke_target;
	int status = 0;
	long word;
	pid_t pid = fork();

	if (pid == 0) {
		if (fn() != 1) /* the child's text mapped, old frame */
			_exit(50);
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		_exit(fn());
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
		printf("probe-mm-poketext: the child did not stop (status %#x): %s\n", status,
		       strerror(errno));
		return;
	}
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, pid, (void *)at, NULL);
	if (errno || (word & 0xffffffffffff) != 0xc300000001b8) {
		printf("probe-mm-poketext: poke_target is not mov $1,%%eax; ret (%#lx, %s)\n", word,
		       strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return;
	}
	if (ptrace(PTRACE_POKETEXT, pid, (void *)at, (void *)((word & ~0xff00l) | 0x0200)) ||
	    ptrace(PTRACE_CONT, pid, NULL, NULL) || waitpid(pid, &status, 0) != pid)
		printf("probe-mm-poketext: ptrace: %s\n", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 2)
		printf("probe-mm-poketext: the child returned %d after the poke, want 2 (status "
		       "%#x)\n",
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
	else if (fn() != 1)
		printf("probe-mm-poketext: the poke showed in the parent\n");
	else
		printf("probe-mm-poketext: ok\n");
}

static void probe_remap(void)
{
	uint8_t *p = map_pages(8), *q;
	char why[160] = "";

	if (!p) {
		printf("probe-mm-remap: mmap: %s\n", strerror(errno));
		return;
	}
	fill(p, 8, 9);
	madvise(p, 2 * PAGE, MADV_DONTNEED);
	if (!check(p, 2, 0, why, sizeof(why)) && !check_from(p, 2, 6, 9, why, sizeof(why))) {
		/* Move pages 2-7 into a reserved range of our own; the old range must fault. */
		void *dst = mmap(NULL, 12 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		q = dst == MAP_FAILED ? MAP_FAILED
				      : mremap(p + 2 * PAGE, 6 * PAGE, 6 * PAGE,
					       MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (q == MAP_FAILED)
			snprintf(why, sizeof(why), "mremap: %s", strerror(errno));
		else if (!faults((uint64_t *)(p + 2 * PAGE), 0))
			snprintf(why, sizeof(why), "the range mremap moved from still reads");
		else {
			check_from(q - 2 * PAGE, 2, 6, 9, why, sizeof(why));
			munmap(q, 12 * PAGE);
		}
	}
	verdict("remap", why);
	munmap(p, 2 * PAGE);
}

/*
 * mremap of `span` bytes (2 MiB or 1 GiB) between two addresses aligned to
 * it, every `step`-th page written first (in a THP when `huge`): 0, or -1
 * with what went wrong in why.
 */
static int move_aligned(size_t span, size_t step, int huge, uint64_t seed, char *why, size_t len)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	uint8_t *src_raw = mmap(NULL, 2 * span, PROT_READ | PROT_WRITE, flags, -1, 0);
	uint8_t *dst_raw = mmap(NULL, 2 * span, PROT_NONE, flags, -1, 0);
	uint8_t *src, *dst, *q;
	int r = -1;

	if (src_raw == MAP_FAILED || dst_raw == MAP_FAILED)
		return snprintf(why, len, "mmap of 2 x %zu bytes: %s", span, strerror(errno)), -1;
	src = (uint8_t *)(((uintptr_t)src_raw + span - 1) & ~(span - 1));
	dst = (uint8_t *)(((uintptr_t)dst_raw + span - 1) & ~(span - 1));
	madvise(src, span, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t i = 0; i < span / PAGE; i += step)
		*(volatile uint64_t *)(src + i * PAGE) = tag(seed, i);
	q = mremap(src, span, span, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (q == MAP_FAILED)
		snprintf(why, len, "mremap of %zu bytes: %s", span, strerror(errno));
	else if (!faults((uint64_t *)src, 0))
		snprintf(why, len, "the %zu bytes mremap moved from still read", span);
	else {
		for (size_t i = 0; i < span / PAGE; i += step)
			if (check_from(q, i, 1, seed, why, len) || writes_seen(q, i, 1, why, len))
				break;
		r = why[0] ? -1 : 0;
	}
	munmap(src_raw, 2 * span);
	munmap(dst_raw, 2 * span);
	return r;
}

static void probe_move(void)
{
	char why[160] = "";

	if (!move_aligned(HUGE, 1, 0, 15, why, sizeof(why)) &&
	    !move_aligned(HUGE, 1, 1, 16, why, sizeof(why)))
		move_aligned(1ul << 30, HUGE / PAGE, 0, 17, why, sizeof(why));
	verdict("move", why);
}

static void probe_thp(void)
{
	uint8_t *raw =
		mmap(NULL, 3 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *p, *hole;
	char why[160] = "";
	long huge_kb;

	if (raw == MAP_FAILED) {
		printf("probe-mm-thp: mmap: %s\n", strerror(errno));
		return;
	}
	p = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	madvise(p, HUGE, MADV_HUGEPAGE);
	fill(p, HUGE / PAGE, 10);
	huge_kb = smaps_kb(p, "AnonHugePages:");
	if (check(p, HUGE / PAGE, 10, why, sizeof(why)))
		;
	else {
		/* One read-only page in the middle: the PMD is split. */
		hole = p + 300 * PAGE;
		mprotect(hole, PAGE, PROT_READ);
		if (!faults((uint64_t *)hole, 1))
			snprintf(why, sizeof(why),
				 "a write to the read-only 4 KiB page of the "
				 "split huge page did not fault");
		else if (faults((uint64_t *)(hole + PAGE), 1) ||
			 faults((uint64_t *)(hole - PAGE), 1))
			snprintf(why, sizeof(why), "a write next to it faulted");
		else {
			*(volatile uint64_t *)(hole + PAGE) = tag(10, 301);
			*(volatile uint64_t *)(hole - PAGE) = tag(10, 299);
			madvise(p + 100 * PAGE, PAGE, MADV_DONTNEED);
			if (*(volatile uint64_t *)(p + 100 * PAGE) != 0)
				snprintf(why, sizeof(why),
					 "MADV_DONTNEED in the huge page: not zero");
			else {
				*(volatile uint64_t *)(p + 100 * PAGE) = tag(10, 100);
				check(p, HUGE / PAGE, 10, why, sizeof(why));
			}
		}
	}
	if (why[0])
		printf("probe-mm-thp: %s\n", why);
	else if (huge_kb < 2048)
		printf("probe-mm-thp: no huge page (AnonHugePages %ld kB)\n", huge_kb);
	else
		printf("probe-mm-thp: ok\n");
	munmap(raw, 3 * HUGE);
}

/*
 * hugetlbfs: the guest maps 2 MiB pages with PS set in its PDEs from the
 * start (no 4 KiB stage as with THP), and a COW after fork copies a whole
 * 2 MiB page: the PDE is pointed at another 2 MiB frame.
 */
static void probe_collapse(void)
{
	enum { N = HUGE / PAGE };
	uint8_t *raw =
		mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *p;
	char why[160] = "";
	long before, after;

	if (raw == MAP_FAILED) {
		printf("probe-mm-collapse: mmap: %s\n", strerror(errno));
		return;
	}
	p = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	madvise(p, HUGE, MADV_NOHUGEPAGE);
	fill(p, N, 14);
	before = smaps_kb(p, "AnonHugePages:");
	madvise(p, HUGE, MADV_HUGEPAGE);
	if (madvise(p, HUGE, MADV_COLLAPSE)) {
		printf("probe-mm-collapse: MADV_COLLAPSE: %s\n", strerror(errno));
		munmap(raw, 2 * HUGE);
		return;
	}
	after = smaps_kb(p, "AnonHugePages:");
	if (!check(p, N, 14, why, sizeof(why)))
		writes_seen(p, 0, N, why, sizeof(why));
	if (why[0])
		printf("probe-mm-collapse: %s\n", why);
	else if (before != 0 || after != 2048)
		printf("probe-mm-collapse: AnonHugePages %ld kB before, %ld kB after (want 0, "
		       "2048)\n",
		       before, after);
	else
		printf("probe-mm-collapse: ok\n");
	munmap(raw, 2 * HUGE);
}

static void probe_hugetlb(void)
{
	enum { N = 2 * HUGE / PAGE };
	uint8_t *p;
	int status = 0;
	char why[160] = "";
	pid_t pid;

	int go[2];

	/* Two mapped, and one COW copy in each process. */
	if (write_file("/proc/sys/vm/nr_hugepages", "6") ||
	    read_number("/proc/sys/vm/nr_hugepages") < 4 || pipe(go)) {
		printf("probe-mm-hugetlb: nr_hugepages: %s (%ld reserved)\n", strerror(errno),
		       read_number("/proc/sys/vm/nr_hugepages"));
		return;
	}
	p = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		 -1, 0);
	if (p == MAP_FAILED) {
		printf("probe-mm-hugetlb: mmap: %s\n", strerror(errno));
		close(go[0]), close(go[1]);
		write_file("/proc/sys/vm/nr_hugepages", "0");
		return;
	}
	/* Read one page first: the PDE then has A = 1 and D = 0 when the writes come. */
	(void)*(volatile uint64_t *)(p + HUGE);
	fill(p, N, 14);
	if (check(p, N, 14, why, sizeof(why)) == 0) {
		char c;

		pid = fork();
		if (pid == 0) {
			/*
			 * The first 2 MiB page is copied on this write; the second
			 * must still read as before the parent's write to it.
			 */
			reopen_mem();
			if (read(go[0], &c, 1) != 1)
				_exit(42);
			*(volatile uint64_t *)(p + 7 * PAGE) = 0x99;
			if (*(volatile uint64_t *)(p + 7 * PAGE) != 0x99 ||
			    kernel_word(p + 7 * PAGE) != 0x99)
				_exit(40);
			if (check_from(p, 8, N - 8, 14, why, sizeof(why)))
				_exit(41);
			_exit(0);
		}
		/*
		 * The parent's PDEs were write-protected by the fork: its write
		 * to the second page copies it for the parent.
		 */
		*(volatile uint64_t *)(p + HUGE + 3 * PAGE) = 0xaa;
		if (pid < 0 || write(go[1], "x", 1) != 1 || waitpid(pid, &status, 0) != pid)
			snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			snprintf(why, sizeof(why),
				 "the child saw the wrong data after the COW copies "
				 "(status %#x: 41, the parent's write showed)",
				 status);
		else if (*(volatile uint64_t *)(p + HUGE + 3 * PAGE) != 0xaa ||
			 kernel_word(p + HUGE + 3 * PAGE) != 0xaa)
			snprintf(why, sizeof(why), "the parent lost its write to its COW copy");
		else {
			/* The word back as it was; then one 2 MiB page read-only. */
			*(volatile uint64_t *)(p + HUGE + 3 * PAGE) = tag(14, 512 + 3);
			if (check(p, N, 14, why, sizeof(why)))
				; /* why says what differs */
			else if (mprotect(p, HUGE, PROT_READ) ||
				 !faults((uint64_t *)(p + 5 * PAGE), 1))
				snprintf(why, sizeof(why),
					 "a write to the read-only 2 MiB page did not fault");
			else if (faults((uint64_t *)(p + HUGE), 1))
				snprintf(why, sizeof(why),
					 "a write to the writable 2 MiB page faulted");
		}
	}
	munmap(p, 2 * HUGE);
	close(go[0]), close(go[1]);
	write_file("/proc/sys/vm/nr_hugepages", "0");
	verdict("hugetlb", why);
}

/* ---- userfaultfd ----------------------------------------------------------- */

struct uffd_handler {
	int fd;
	/* Counted before the fault is resolved: the faulting thread may read them then. */
	volatile unsigned missing, wp;
	volatile int err; /* the errno of a failed UFFDIO_COPY or UFFDIO_WRITEPROTECT */
	uint64_t seed, base;
};

/*
 * The handler thread: a missing page is filled with UFFDIO_COPY (the
 * pattern of `seed`), a write-protect fault resolved by lifting the
 * protection of that page. If that fails it says so in err and wakes the
 * faulting thread, which faults again. Runs until cancelled.
 */
static void *uffd_serve(void *arg)
{
	struct uffd_handler *h = arg;
	static uint8_t page[PAGE] __attribute__((aligned(PAGE)));
	struct uffd_msg msg;

	while (read(h->fd, &msg, sizeof(msg)) == sizeof(msg)) {
		uint64_t at = msg.arg.pagefault.address & ~(PAGE - 1);

		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
			struct uffdio_writeprotect wp = { .range = { at, PAGE }, .mode = 0 };

			h->wp++;
			if (ioctl(h->fd, UFFDIO_WRITEPROTECT, &wp))
				h->err = errno;
		} else {
			struct uffdio_copy c = { .dst = at, .src = (uintptr_t)page, .len = PAGE };

			memset(page, 0, PAGE);
			*(uint64_t *)page = tag(h->seed, (at - h->base) / PAGE);
			h->missing++;
			if (ioctl(h->fd, UFFDIO_COPY, &c))
				h->err = errno;
		}
		if (h->err) {
			struct uffdio_range r = { at, PAGE };

			ioctl(h->fd, UFFDIO_WAKE, &r);
		}
	}
	return NULL;
}

/*
 * userfaultfd, as live migration's post-copy and CRIU use it: pages filled
 * by another thread (UFFDIO_COPY installs the PTE the faulting thread then
 * uses), and write protection that must raise exactly one fault per page
 * written (UFFDIO_WRITEPROTECT clears RW in the PTEs and flushes).
 */
static void probe_uffd(void)
{
	enum { N = 8 };
	struct uffd_handler h = { .seed = 15 };
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	uint8_t *p = map_pages(N);
	char why[160] = "";
	pthread_t t;

	h.fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	h.base = (uintptr_t)p;
	if (!p || h.fd < 0 || ioctl(h.fd, UFFDIO_API, &api)) {
		printf("probe-mm-uffd: userfaultfd: %s\n", strerror(errno));
		return;
	}
	struct uffdio_register reg = { .range = { (uintptr_t)p, N * PAGE },
				       .mode = UFFDIO_REGISTER_MODE_MISSING |
					       UFFDIO_REGISTER_MODE_WP };

	if (ioctl(h.fd, UFFDIO_REGISTER, &reg) || pthread_create(&t, NULL, uffd_serve, &h)) {
		printf("probe-mm-uffd: register: %s\n", strerror(errno));
		close(h.fd);
		return;
	}
	/* Missing pages, in order: the handler fills page i with tag(15, i). */
	if (!check(p, N, 15, why, sizeof(why)) && h.missing != N)
		snprintf(why, sizeof(why), "%u missing-page faults for %d pages", h.missing, N);
	if (!why[0]) {
		struct uffdio_writeprotect wp = { .range = { (uintptr_t)p, N * PAGE },
						  .mode = UFFDIO_WRITEPROTECT_MODE_WP };

		/* Protect all, read all (no fault), write three: three faults. */
		if (ioctl(h.fd, UFFDIO_WRITEPROTECT, &wp))
			snprintf(why, sizeof(why), "UFFDIO_WRITEPROTECT: %s", strerror(errno));
		else if (!check(p, N, 15, why, sizeof(why))) {
			for (size_t i = 1; i < N; i += 3)
				*(volatile uint64_t *)(p + i * PAGE) = tag(16, i);
			if (h.wp != 3)
				snprintf(why, sizeof(why),
					 "%u write-protect faults for 3 pages written", h.wp);
			else if (kernel_word(p + 4 * PAGE) != tag(16, 4) ||
				 kernel_word(p + 5 * PAGE) != tag(15, 5))
				snprintf(why, sizeof(why), "the writes after the faults were lost");
		}
	}
	/* A read blocked on the fd keeps it open: cancel the thread, then close. */
	pthread_cancel(t);
	pthread_join(t, NULL);
	munmap(p, N * PAGE);
	close(h.fd);
	if (h.err && !why[0])
		snprintf(why, sizeof(why), "the handler's ioctl failed: %s", strerror(h.err));
	verdict("uffd", why);
}

static void probe_compact(void)
{
	enum { N = 16384, CHUNK = 16 }; /* 64 MiB, every other 64 KiB unmapped */
	uint8_t *p = map_pages(N);
	char why[160] = "";
	long m0, m1;

	if (!p) {
		printf("probe-mm-compact: mmap: %s\n", strerror(errno));
		return;
	}
	fill(p, N, 11);
	for (size_t i = CHUNK; i < N; i += 2 * CHUNK)
		munmap(p + i * PAGE, CHUNK * PAGE);
	m0 = vmstat("pgmigrate_success");
	if (write_file("/proc/sys/vm/compact_memory", "1")) {
		printf("probe-mm-compact: compact_memory: %s\n", strerror(errno));
		return;
	}
	m1 = vmstat("pgmigrate_success");
	for (size_t i = 0; i < N && !why[0]; i += 2 * CHUNK) {
		if (check_from(p, i, CHUNK, 11, why, sizeof(why)) ||
		    writes_seen(p, i, CHUNK, why, sizeof(why)))
			break;
	}
	if (why[0])
		printf("probe-mm-compact: %s (%ld pages migrated)\n", why, m1 - m0);
	else if (m1 - m0 <= 0)
		printf("probe-mm-compact: no page migrated (pgmigrate_success %ld -> %ld)\n", m0,
		       m1);
	else
		printf("probe-mm-compact: ok (%ld pages migrated)\n", m1 - m0);
	for (size_t i = 0; i < N; i += 2 * CHUNK)
		munmap(p + i * PAGE, CHUNK * PAGE);
}

static void probe_ksm(void)
{
	enum { N = 32 };
	uint8_t *p = map_pages(N);
	long sharing = 0;
	char why[160] = "";

	if (!p) {
		printf("probe-mm-ksm: mmap: %s\n", strerror(errno));
		return;
	}
	for (size_t i = 0; i < N; i++)
		memset(p + i * PAGE, 0x3c, PAGE);
	if (madvise(p, N * PAGE, MADV_MERGEABLE) ||
	    write_file("/sys/kernel/mm/ksm/pages_to_scan", "1000") ||
	    write_file("/sys/kernel/mm/ksm/sleep_millisecs", "10") ||
	    write_file("/sys/kernel/mm/ksm/run", "1")) {
		printf("probe-mm-ksm: set-up: %s\n", strerror(errno));
		return;
	}
	/* ksmd merges on its second pass (the first only checksums): give it 60 s. */
	for (int t = 0; t < 600 && sharing < N - 1; t++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		/* This process's merged pages (Linux 6.1 has the count), else all of them. */
		sharing = read_number("/proc/self/ksm_merging_pages");
		if (sharing < 0)
			sharing = read_number("/sys/kernel/mm/ksm/pages_sharing");
	}
	for (size_t i = 0; i < N && !why[0]; i++) {
		if (*(volatile uint64_t *)(p + i * PAGE + 64) != 0x3c3c3c3c3c3c3c3cull)
			snprintf(why, sizeof(why), "merged page %zu lost its data", i);
		*(volatile uint64_t *)(p + i * PAGE) = tag(12, i);
	}
	if (!why[0])
		check(p, N, 12, why, sizeof(why));
	write_file("/sys/kernel/mm/ksm/run", "2"); /* unmerge and stop */
	if (why[0])
		printf("probe-mm-ksm: %s (%ld pages merged)\n", why, sharing);
	else if (sharing < N - 1)
		printf("probe-mm-ksm: ksmd merged %ld of %d pages in 60 s\n", sharing, N - 1);
	else
		printf("probe-mm-ksm: ok (%ld pages merged)\n", sharing);
	munmap(p, N * PAGE);
}

/* ---- swap (mmprobe swap) ------------------------------------------------- */

/* How many of the n pages at p pagemap shows as swapped out (bit 62), or -1. */
static long swapped_pages(const uint8_t *p, size_t n)
{
	uint64_t pm[64];
	long swapped = 0;
	int pfd = open("/proc/self/pagemap", O_RDONLY);

	if (pfd < 0)
		return -1;
	for (size_t i = 0; i < n; i += 64) {
		size_t m = n - i < 64 ? n - i : 64;

		if (pread(pfd, pm, m * 8, (off_t)((uintptr_t)(p + i * PAGE) / PAGE * 8)) !=
		    (ssize_t)(m * 8)) {
			close(pfd);
			return -1;
		}
		for (size_t j = 0; j < m; j++)
			swapped += pm[j] >> 62 & 1;
	}
	close(pfd);
	return swapped;
}

/* Part one: MADV_PAGEOUT, so every page's way out and back in is known. */
static int swap_pageout(char *why, size_t len)
{
	enum { N = 64 };
	uint8_t *p = map_pages(N);
	long out;

	if (!p)
		return snprintf(why, len, "mmap: %s", strerror(errno)), -1;
	fill(p, N, 12);
	if (madvise(p, N * PAGE, MADV_PAGEOUT))
		return snprintf(why, len, "MADV_PAGEOUT: %s", strerror(errno)), -1;
	if ((out = swapped_pages(p, N)) != N)
		return snprintf(why, len, "%ld of %d pages swapped out after MADV_PAGEOUT", out, N),
		       -1;
	/* Even pages: a write meets the swap entry; odd ones: a read. */
	for (size_t i = 0; i < N; i += 2)
		*(volatile uint64_t *)(p + i * PAGE) = tag(13, i);
	for (size_t i = 1; i < N; i += 2)
		if (*(volatile uint64_t *)(p + i * PAGE) != tag(12, i))
			return snprintf(why, len, "page %zu: not its data after a swap-in", i), -1;
	for (size_t i = 0; i < N; i++)
		if (kernel_word(p + i * PAGE) != (i % 2 ? tag(12, i) : tag(13, i)))
			return snprintf(why, len,
					"page %zu: the kernel reads %#llx after a swap-in", i,
					(unsigned long long)kernel_word(p + i * PAGE)),
			       -1;
	/* Out again: the written pages must go out with the new data. */
	if (madvise(p, N * PAGE, MADV_PAGEOUT))
		return snprintf(why, len, "MADV_PAGEOUT: %s", strerror(errno)), -1;
	for (size_t i = 0; i < N; i++) {
		uint64_t want = i % 2 ? tag(12, i) : tag(13, i);
		uint64_t u = *(volatile uint64_t *)(p + i * PAGE);

		if (u != want || kernel_word(p + i * PAGE) != want)
			return snprintf(why, len,
					"page %zu: process reads %#llx, kernel %#llx, want %#llx "
					"(swapped out twice)",
					i, (unsigned long long)u,
					(unsigned long long)kernel_word(p + i * PAGE),
					(unsigned long long)want),
			       -1;
	}
	munmap(p, N * PAGE);
	return 0;
}

/*
 * Part three, in the memory cgroup too: this process fills 32 MiB and
 * sleeps while another fills 48 MiB, so that reclaim swaps this process's
 * pages out while its page tables are not the ones loaded (in shadow mode:
 * a cached root whose guest tables change under it). Then both views of
 * them must hold the data, and a rewrite must reach the kernel's.
 */
static int swap_idle(char *why, size_t len)
{
	enum { N = 8192, M = 12288 }; /* 32 MiB here, 48 MiB in the other process */
	long before, after;
	int go[2], status = 0;
	uint8_t *p;
	pid_t pid;
	char c;

	if (pipe(go))
		return snprintf(why, len, "pipe: %s", strerror(errno)), -1;
	pid = fork(); /* before the mapping: the other process shares none of it */
	if (pid == 0) {
		uint8_t *q;

		close(go[1]);
		if (read(go[0], &c, 1) != 1 || !(q = map_pages(M)))
			_exit(2);
		reopen_mem();
		fill(q, M, 50);
		if (check(q, M, 50, why, len)) {
			printf("probe-mm-swap: the other process: %s\n", why);
			_exit(1);
		}
		_exit(0);
	}
	close(go[0]);
	if (pid < 0 || !(p = map_pages(N)))
		return snprintf(why, len, "fork or mmap: %s", strerror(errno)), -1;
	fill(p, N, 40);
	before = swapped_pages(p, N);
	if (write(go[1], "g", 1) != 1 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return snprintf(why, len, "the other process failed (status %#x)", status), -1;
	close(go[1]);
	after = swapped_pages(p, N);
	printf("probe-mm-swap-idle: %ld -> %ld of %d pages swapped out while asleep\n", before,
	       after, N);
	if (after <= before)
		return snprintf(why, len, "no page of the sleeping process was swapped out"), -1;
	if (check(p, N, 40, why, len))
		return -1;
	fill(p, N, 41);
	if (check(p, N, 41, why, len))
		return -1;
	munmap(p, N * PAGE);
	return 0;
}

/*
 * Part two, in a forked child confined to a 24 MiB memory cgroup: 64 MiB
 * written and checked in passes, so that each pass swaps most of it out
 * and back in; then part three. Exits 0, or 1 after printing what went
 * wrong.
 */
static void swap_pressure_child(void)
{
	enum { N = 16384, PASSES = 3 }; /* 64 MiB; the first half in THPs */
	uint8_t *raw, *p;
	char why[200] = "";

	if (mkdir("/sys/fs/cgroup/mmprobe", 0755) && errno != EEXIST)
		snprintf(why, sizeof(why), "mkdir /sys/fs/cgroup/mmprobe: %s", strerror(errno));
	else if (write_file("/sys/fs/cgroup/mmprobe/memory.max", "24M") ||
		 write_file("/sys/fs/cgroup/mmprobe/cgroup.procs", "0"))
		snprintf(why, sizeof(why), "joining a 24M memory cgroup: %s", strerror(errno));
	if (why[0]) {
		printf("probe-mm-swap: %s\n", why);
		_exit(1);
	}
	reopen_mem();
	raw = mmap(NULL, N * PAGE + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	if (raw == MAP_FAILED) {
		printf("probe-mm-swap: mmap: %s\n", strerror(errno));
		_exit(1);
	}
	p = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	madvise(p, N / 2 * PAGE, MADV_HUGEPAGE);
	madvise(p + N / 2 * PAGE, N / 2 * PAGE, MADV_NOHUGEPAGE);
	fill(p, N, 20);
	for (unsigned pass = 1; pass <= PASSES && !why[0]; pass++) {
		if (check(p, N, 19 + pass, why, sizeof(why)))
			break;
		fill(p, N, 20 + pass);
	}
	if (!why[0])
		check(p, N, 20 + PASSES, why, sizeof(why));
	if (why[0]) {
		printf("probe-mm-swap: under memory pressure: %s\n", why);
		_exit(1);
	}
	munmap(raw, N * PAGE + HUGE);
	if (swap_idle(why, sizeof(why))) {
		printf("probe-mm-swap: while asleep: %s\n", why);
		_exit(1);
	}
	_exit(0);
}

static void probe_swap(void)
{
	char why[200] = "";
	long out0 = vmstat("pswpout"), in0 = vmstat("pswpin"), split0 = vmstat("thp_split_pmd");
	int status;
	pid_t pid;

	if (read_number("/proc/sys/vm/swappiness") < 0 || swapped_pages(NULL, 0) < 0) {
		printf("probe-mm-swap: no /proc/sys/vm or pagemap\n");
		return;
	}
	if (swap_pageout(why, sizeof(why))) {
		printf("probe-mm-swap: %s\n", why);
		return;
	}
	pid = fork();
	if (pid == 0)
		swap_pressure_child();
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		if (pid < 0 || !WIFEXITED(status))
			printf("probe-mm-swap: the memory-pressure child did not exit (status "
			       "%#x)\n",
			       pid < 0 ? -1 : status);
		return;
	}
	printf("probe-mm-swap: ok (%ld pages swapped out, %ld in, %ld huge PMDs split)\n",
	       vmstat("pswpout") - out0, vmstat("pswpin") - in0, vmstat("thp_split_pmd") - split0);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	mem_fd = open("/proc/self/mem", O_RDWR);
	if (mem_fd < 0) {
		printf("probe-mm: /proc/self/mem: %s\n", strerror(errno));
		return 1;
	}
	if (argc > 1) {
		if (strcmp(argv[1], "swap")) {
			printf("usage: mmprobe [swap]\n");
			return 2;
		}
		probe_swap();
		return 0;
	}
	probe_accessed();
	probe_softdirty();
	probe_lazyfree();
	probe_protect();
	probe_exec();
	probe_fork();
	probe_punch();
	probe_procmem();
	probe_kernelview();
	probe_poketext();
	probe_remap();
	probe_move();
	probe_thp();
	probe_collapse();
	probe_hugetlb();
	probe_uffd();
	probe_compact();
	probe_ksm();
	return 0;
}
