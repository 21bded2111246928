// SPDX-License-Identifier: MIT
/*
 * Unit tests for trap sites (vmm/trap_sites.c): counting by (vector, RIP),
 * the busiest-first list and its tie order, a full table, and how --stats
 * prints them (vmm/stats.c, text and JSON).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/stats.h"
#include "vmm/trap_sites.h"

static struct trap_sites *new_sites(void)
{
	struct trap_sites *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	return t;
}

/* The same RIP under two vectors is two sites; counts add up. */
static void test_count_and_order(void **state)
{
	struct trap_sites *t = new_sites();
	struct trap_site top[TRAP_SITES_TOP];

	(void)state;
	for (int i = 0; i < 5; i++)
		trap_sites_add(t, 6, 0xffffffff81c00080ull);
	for (int i = 0; i < 7; i++)
		trap_sites_add(t, 13, 0xffffffff8107e9ceull);
	for (int i = 0; i < 5; i++)
		trap_sites_add(t, 13, 0xffffffff81c00080ull); /* same RIP, other vector */
	for (int i = 0; i < 5; i++)
		trap_sites_add(t, 6, 0x400000ull); /* a tie with the first, lower RIP */
	trap_sites_add(t, 14, 0x1000ull);
	assert_int_equal(t->used, 5);
	assert_int_equal(t->total, 23);
	assert_int_equal(t->other, 0);
	assert_int_equal(trap_sites_top(t, top, TRAP_SITES_TOP), 5);
	assert_int_equal(top[0].vector, 13);
	assert_int_equal(top[0].count, 7);
	/* Ties: lower vector first, then lower RIP. */
	assert_int_equal(top[1].vector, 6);
	assert_int_equal(top[1].rip, 0x400000ull);
	assert_int_equal(top[2].vector, 6);
	assert_int_equal(top[2].rip, 0xffffffff81c00080ull);
	assert_int_equal(top[3].vector, 13);
	assert_int_equal(top[3].count, 5);
	assert_int_equal(top[4].count, 1);
	/* A shorter list keeps the busiest. */
	assert_int_equal(trap_sites_top(t, top, 2), 2);
	assert_int_equal(top[0].count, 7);
	assert_int_equal(top[1].rip, 0x400000ull);
	assert_int_equal(trap_sites_top(t, top, 0), 0);
	free(t);
}

/*
 * Many sites: the list is the true top (checked against the counts given),
 * and once the table is 3/4 full new sites go to `other` while known ones
 * still count.
 */
static void test_full_table(void **state)
{
	struct trap_sites *t = new_sites();
	struct trap_site top[TRAP_SITES_TOP];
	unsigned max_used = TRAP_SITES_CAP / 4 * 3;

	(void)state;
	/* Site i (RIPs 16 bytes apart, as in code) gets i % 97 + 1 traps. */
	for (unsigned i = 0; i < max_used; i++)
		for (unsigned k = 0; k <= i % 97; k++)
			trap_sites_add(t, 14, 0xffffffff81000000ull + 16 * i);
	assert_int_equal(t->used, max_used);
	assert_int_equal(t->other, 0);
	trap_sites_add(t, 14, 0x1234);		     /* no room */
	trap_sites_add(t, 6, 0xffffffff81000000ull); /* a known RIP, a new vector: no room */
	assert_int_equal(t->other, 2);
	assert_int_equal(t->used, max_used);
	assert_int_equal(trap_sites_top(t, top, TRAP_SITES_TOP), TRAP_SITES_TOP);
	for (unsigned i = 0; i < TRAP_SITES_TOP; i++) {
		assert_int_equal(top[i].count, 97);
		if (i)
			assert_true(top[i - 1].rip < top[i].rip);
	}
	/* Known sites still count when the table is full. */
	trap_sites_add(t, 14, top[5].rip);
	assert_int_equal(t->other, 2);
	assert_int_equal(trap_sites_top(t, top, 1), 1);
	assert_int_equal(top[0].count, 98);
	free(t);
}

static char *print(const struct stats *st, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (json)
		stats_print_json(st, f, "shadow", "img", 0);
	else
		stats_print_text(st, f, "shadow", "img", 0);
	fclose(f);
	return buf;
}

/* --stats lists them under the vectors; --stats=json as "trap_sites". */
static void test_stats_output(void **state)
{
	struct stats *st = calloc(1, sizeof(*st));
	char *out;

	(void)state;
	assert_non_null(st);
	st->have_shadow = true; /* the shadow-mode section is printed */
	st->traps[13] = 3;
	st->traps[6] = 1;
	for (int i = 0; i < 3; i++)
		trap_sites_add(&st->sites, 13, 0xffffffff8107e9ceull);
	trap_sites_add(&st->sites, 6, 0xffff808000009000ull);
	out = print(st, false);
	assert_non_null(strstr(out, "busiest trap sites   2 of 2 (exceptions only; 0 of 4 at sites "
				    "not kept)\n"));
	assert_non_null(strstr(out, "    vector 13  rip 0xffffffff8107e9ce 3\n"
				    "    vector 6   rip 0xffff808000009000 1\n"));
	free(out);
	out = print(st, true);
	assert_non_null(strstr(out,
			       "\"trap_sites\": [{\"vector\": 13, \"rip\": "
			       "\"0xffffffff8107e9ce\", \"count\": 3}, {\"vector\": 6, \"rip\": "
			       "\"0xffff808000009000\", \"count\": 1}], \"trap_sites_kept\": 2, "
			       "\"trap_sites_other\": 0, \"reflected\": "));
	free(out);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_and_order),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_stats_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
