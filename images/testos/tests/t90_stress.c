/* SPDX-License-Identifier: MIT */
/*
 * Randomized page-table stress, checked against a software model. A seeded
 * xorshift PRNG (seed=<n>, ops=<n> on the command line) maps, unmaps and
 * remaps 4 KiB pages of a small window in two address spaces to a pool of
 * frames, switches CR3 between them, invalidates (invlpg or a CR3 reload,
 * SDM 3A 4.10.4.1), and reads and writes through the window. Every read is
 * compared with the model, and an unmapped page must fault with the exact
 * error code and CR2 (SDM 3A 4.7). Prints
 *   STRESS seed=<n> ops=<n> checksum=<hex>
 * where the checksum hashes everything read: the same for the same seed.
 */
#include "../arch.h"
#include "../console.h"
#include "../lib.h"
#include "../paging.h"
#include "../pmm.h"
#include "../test.h"

#define NPAGES 32
#define NFRAMES 16
#define DEFAULT_SEED 0x5eed
#define DEFAULT_OPS 3000
#define UNMAPPED 0xff

struct model {
	uint64_t root[2];
	uint8_t map[2][NPAGES]; /* frame index, or UNMAPPED */
	uint64_t frame[NFRAMES];
	uint64_t word0[NFRAMES]; /* word 0 of each frame (written by the test) */
	int cur;
	uint64_t hash;
};

static void hash(struct model *m, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		m->hash = (m->hash ^ (v & 0xff)) * 0x100000001b3ULL; /* FNV-1a */
}

static void invalidate(struct model *m, uint64_t va, uint64_t r)
{
	if (r & 1)
		invlpg(va);
	else
		write_cr3(m->root[m->cur]);
}

static void check_read(struct model *m, unsigned as, unsigned p, unsigned word, uint64_t op)
{
	uint64_t va = TWIN + p * PAGE_SIZE + word * 8;
	struct catch c;
	volatile uint64_t v = 0;
	unsigned f = m->map[as][p];

	if (CATCH(&c))
		v = peek(va);
	catch_disarm();
	if (f == UNMAPPED) {
		expect_fault(&c, VEC_PF, 0, va, "stress: read of an unmapped page");
		hash(m, 0xfa017);
		return;
	}
	expect_no_fault(&c, "stress: read of a mapped page");
	if (v != (word ? pat(0xe0 + f, word) : m->word0[f]))
		test_fail("stress op %lu: read as%u page %u word %u (frame %u): expected 0x%lx saw 0x%lx",
			  op, as, p, word, f, word ? pat(0xe0 + f, word) : m->word0[f], v);
	hash(m, v);
}

TEST(stress)
{
	static struct model m;
	uint64_t seed = cmdline_u64(test_cmdline, "seed", DEFAULT_SEED);
	uint64_t ops = cmdline_u64(test_cmdline, "ops", DEFAULT_OPS), s = seed ? seed : DEFAULT_SEED;

	memset(&m, 0, sizeof(m));
	m.hash = 0xcbf29ce484222325ULL;
	for (int f = 0; f < NFRAMES; f++) {
		m.frame[f] = frame_new(0xe0 + f);
		m.word0[f] = pat(0xe0 + f, 0);
	}
	for (int as = 0; as < 2; as++) {
		m.root[as] = as_create();
		pt_entry(m.root[as], TWIN, LVL_PT, 1); /* the window's PT */
		memset(m.map[as], UNMAPPED, NPAGES);
	}
	write_cr3(m.root[0]);
	for (uint64_t op = 0; op < ops; op++) {
		uint64_t r = xorshift64(&s), kind = r % 100;
		unsigned as = (r >> 8) & 1, p = (r >> 9) % NPAGES, f = (r >> 16) % NFRAMES;
		unsigned word = (r >> 24) % (PAGE_SIZE / 8);
		uint64_t va = TWIN + p * PAGE_SIZE;

		if (kind < 30) { /* map or remap */
			*pt_entry(m.root[as], va, LVL_PT, 0) = m.frame[f] | PTE_P | PTE_RW;
			m.map[as][p] = f;
			if (as == (unsigned)m.cur)
				invalidate(&m, va, r >> 32);
		} else if (kind < 40) { /* unmap */
			*pt_entry(m.root[as], va, LVL_PT, 0) = 0;
			m.map[as][p] = UNMAPPED;
			if (as == (unsigned)m.cur)
				invalidate(&m, va, r >> 32);
		} else if (kind < 50) { /* switch address space */
			m.cur ^= 1;
			write_cr3(m.root[m.cur]);
		} else if (kind < 55) { /* reload CR3 */
			write_cr3(m.root[m.cur]);
		} else if (kind < 85) {
			check_read(&m, m.cur, p, word, op);
		} else { /* write word 0 */
			struct catch c;
			uint64_t v = xorshift64(&s);
			unsigned fm = m.map[m.cur][p];

			if (CATCH(&c))
				poke(va, v);
			catch_disarm();
			if (fm == UNMAPPED) {
				expect_fault(&c, VEC_PF, PF_W, va, "stress: write to an unmapped page");
			} else {
				expect_no_fault(&c, "stress: write to a mapped page");
				m.word0[fm] = v;
			}
			hash(&m, v);
		}
	}
	/* Final sweep: every page of both address spaces. */
	for (int as = 0; as < 2; as++) {
		m.cur = as;
		write_cr3(m.root[as]);
		for (unsigned p = 0; p < NPAGES; p++) {
			check_read(&m, as, p, 0, ops);
			check_read(&m, as, p, p + 1, ops);
		}
	}
	kprintf("STRESS seed=%lu ops=%lu checksum=%016lx\n", seed, ops, m.hash);
	write_cr3(kernel_pml4);
	for (int as = 0; as < 2; as++)
		as_destroy(m.root[as]);
	for (int f = 0; f < NFRAMES; f++)
		pmm_free(m.frame[f]);
}
