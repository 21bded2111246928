/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the benchmark harness's library (bench/harness/benchlib.h):
 * BENCH line parsing, number extraction from umbra's --stats=json (on output
 * captured from real runs), median/spread/ratio, CSV quoting, and the CSV and
 * Markdown writers on a small report.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/benchlib.h"

/*
 * Captured with `vmm/umbra run --mmu=shadow --mem 1G --stats=json --stats-file F
 * --cmdline bench=fork images/testos/testos.elf` (2026-11-22), trimmed: fewer
 * emulated mnemonics and shadow counters, the rest as umbra wrote it.
 */
static const char shadow_json[] =
	"{\"mode\": \"shadow\", \"image\": \"images/testos/testos.elf\", \"exit_status\": 0, "
	"\"wall_time_s\": 0.360590, \"exits_total\": 5374, \"exits\": {\"io\": 5374}, "
	"\"pio_unknown\": 0, \"mmio_unknown\": 0, \"emulated_total\": 3590, \"emulated\": "
	"{\"mov\": 2744, \"rdmsr\": 3, \"iretq\": 631, \"stosq\": 199}, \"shadow\": "
	"{\"traps_total\": 4722, \"traps_per_s\": 13095, \"traps\": {\"3\": 1236, \"13\": 1035, "
	"\"14\": 2424, \"64\": 27}, \"trap_us\": {\"3\": 4.7, \"13\": 6.1, \"14\": 17.4, "
	"\"64\": 2.8}, \"reflected\": 630, \"irq_delivered\": 27, \"syscalls\": 0, "
	"\"emulated_pt_writes\": 1921, \"stores_replayed\": 4632, \"faults\": 2424, "
	"\"faults_fixed\": 483, \"faults_guest\": 1, \"faults_pt_write\": 1921, "
	"\"sp_created\": 1027, \"pt_writes\": 16350, \"root_hits\": 1668, \"root_misses\": 405, "
	"\"roots_live\": 7, \"evictions\": 0, \"flushes\": 0, \"stores\": 4633}}\n";

/* The same workload in hw mode, untrimmed: no "shadow" object. */
static const char hw_json[] =
	"{\"mode\": \"hw\", \"image\": \"images/testos/testos.elf\", \"exit_status\": 0, "
	"\"wall_time_s\": 1.095192, \"exits_total\": 654, \"exits\": {\"io\": 654}, "
	"\"pio_unknown\": 0, \"mmio_unknown\": 0, \"emulated_total\": 0, \"emulated\": {}}\n";

/* ---- BENCH lines ---------------------------------------------------------- */

static void test_line_good(void **state)
{
	struct bench_line b;

	(void)state;
	assert_int_equal(bench_parse_line("BENCH fork 200 10293896", &b), 0);
	assert_string_equal(b.name, "fork");
	assert_int_equal(b.iters, 200);
	assert_true(b.cycles_per_iter == 10293896.0);

	assert_int_equal(bench_parse_line("BENCH compute 1073741824 5.37\n", &b), 0);
	assert_string_equal(b.name, "compute");
	assert_int_equal(b.iters, 1073741824ULL);
	assert_true(fabs(b.cycles_per_iter - 5.37) < 1e-9);

	assert_int_equal(bench_parse_line("BENCH pf 65536 680394.00\r\n", &b), 0);
	assert_string_equal(b.name, "pf");
	assert_true(b.cycles_per_iter == 680394.0);

	assert_int_equal(bench_parse_line("BENCH x 18446744073709551615 0", &b), 0);
	assert_int_equal(b.iters, UINT64_MAX);
	assert_true(b.cycles_per_iter == 0.0);
}

static void test_line_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"BENCH",
		"BENCH ",
		"BENCH fork",
		"BENCH fork 200",
		"BENCH fork 200 ",
		"BENCH fork 0 5", /* zero iterations */
		"BENCH fork x 5",
		"BENCH fork -1 5",
		"BENCH fork 200 -5",
		"BENCH fork 200 5.",
		"BENCH fork 200 .5",
		"BENCH fork 200 1e3",
		"BENCH fork 200 5.3.1",
		"BENCH fork 200 5 extra",
		"BENCH fork 200 5\n\n",
		"BENCH  fork 200 5",
		"BENCH fork  200 5",
		"bench fork 200 5",
		" BENCH fork 200 5",
		"BENCHfork 200 5",
		"BENCH fork 99999999999999999999999 5", /* overflows u64 */
		"BENCH a_name_much_longer_than_thirty_one_chars 1 1",
		"bench fork: error: cannot create a process",
	};
	struct bench_line b = { .name = "untouched", .iters = 7, .cycles_per_iter = 7 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bench_parse_line(bad[i], &b) != -1)
			fail_msg("accepted '%s'", bad[i]);
	}
	assert_string_equal(b.name, "untouched"); /* not written on failure */
	assert_int_equal(b.iters, 7);
}

/* ---- stats JSON ----------------------------------------------------------- */

static double num(const char *json, const char *path)
{
	double v = -12345;

	if (bench_json_number(json, path, &v))
		fail_msg("no number at '%s'", path);
	return v;
}

static void test_json_found(void **state)
{
	(void)state;
	assert_true(num(shadow_json, "exits_total") == 5374);
	assert_true(num(shadow_json, "exit_status") == 0);
	assert_true(fabs(num(shadow_json, "wall_time_s") - 0.36059) < 1e-9);
	assert_true(num(shadow_json, "exits.io") == 5374);
	assert_true(num(shadow_json, "emulated_total") == 3590);
	assert_true(num(shadow_json, "emulated.iretq") == 631);
	assert_true(num(shadow_json, "shadow.traps_total") == 4722);
	assert_true(num(shadow_json, "shadow.traps.14") == 2424);
	assert_true(num(shadow_json, "shadow.traps.3") == 1236); /* not "13" */
	assert_true(fabs(num(shadow_json, "shadow.trap_us.14") - 17.4) < 1e-9);
	assert_true(num(shadow_json, "shadow.faults") == 2424); /* not faults_fixed */
	assert_true(num(shadow_json, "shadow.root_misses") == 405);
	assert_true(num(shadow_json, "shadow.stores") == 4633); /* the last key */
	assert_true(num(hw_json, "exits_total") == 654);
	assert_true(num(" {\"a\": [1, {\"b\": 2}, \"x\"], \"b\": -3.5e2, \"t\": true, "
			"\"n\": null, \"s\": \"q\\\"}\", \"c\": 4}",
			"c") == 4);
	assert_true(num("{\"a\": [1, {\"b\": 2}], \"b\": -3.5e2}", "b") == -350);
}

static void test_json_absent_or_bad(void **state)
{
	static const struct {
		const char *json, *path;
	} cases[] = {
		{ shadow_json, "nope" },
		{ shadow_json, "shadow.nope" },
		{ shadow_json, "shadow.traps.15" },
		{ shadow_json, "mode" },       /* a string */
		{ shadow_json, "shadow" },     /* an object */
		{ shadow_json, "exits.io.x" }, /* a number, not an object */
		{ shadow_json, "io" },	       /* only nested */
		{ shadow_json, "shadow." },
		{ shadow_json, "" },
		{ hw_json, "shadow.traps_total" }, /* hw mode: no shadow block */
		{ hw_json, "emulated.mov" },
		{ "", "a" },
		{ "[{\"a\": 1}]", "a" },	     /* not an object */
		{ "{\"a\": 1", "b" },		     /* truncated */
		{ "{\"x\": [1, 2, \"a\": 3}", "a" }, /* malformed before the key */
		{ "{\"a\": }", "a" },
		{ "{\"a\" 1}", "a" },
		{ "{\"s\": \"unterminated, \"a\": 1", "a" },
	};
	double v = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (bench_json_number(cases[i].json, cases[i].path, &v) != -1)
			fail_msg("case %zu: found '%s' in %s", i, cases[i].path, cases[i].json);
	assert_true(v == 99);
	assert_int_equal(bench_json_number(NULL, "a", &v), -1);
	assert_int_equal(bench_json_number("{\"a\": 1}", NULL, &v), -1);
}

static void test_metrics(void **state)
{
	double m[BM_COUNT];

	(void)state;
	bench_metrics_from_json(shadow_json, m);
	assert_true(m[BM_EXITS] == 5374);
	assert_true(m[BM_TRAPS] == 4722);
	assert_true(m[BM_FAULTS] == 2424);
	assert_true(m[BM_PT_WRITES] == 1921);
	assert_true(m[BM_ROOT_SWITCH] == 1668 + 405);
	assert_true(fabs(m[BM_ROOT_HIT] - 100.0 * 1668 / 2073) < 1e-9);
	assert_true(m[BM_EMULATED] == 3590);
	assert_true(fabs(m[BM_WALL] - 0.36059) < 1e-9);

	bench_metrics_from_json(hw_json, m);
	assert_true(m[BM_EXITS] == 654);
	assert_true(m[BM_EMULATED] == 0);
	assert_true(isnan(m[BM_TRAPS]) && isnan(m[BM_FAULTS]) && isnan(m[BM_PT_WRITES]));
	assert_true(isnan(m[BM_ROOT_SWITCH]) && isnan(m[BM_ROOT_HIT]));
}

/* ---- median, spread, ratio ------------------------------------------------ */

static void test_summary_odd(void **state)
{
	const double v[] = { 30, 10, 20 };
	struct bench_summary s = bench_summarize(v, 3);

	(void)state;
	assert_int_equal(s.n, 3);
	assert_true(s.median == 20 && s.min == 10 && s.max == 30);
	assert_true(fabs(bench_spread_pct(&s) - 100.0) < 1e-9);
	assert_true(v[0] == 30 && v[1] == 10); /* the samples are not sorted in place */
}

static void test_summary_even(void **state)
{
	const double v[] = { 4, 1, 3, 2 };
	struct bench_summary s = bench_summarize(v, 4);

	(void)state;
	assert_int_equal(s.n, 4);
	assert_true(s.median == 2.5 && s.min == 1 && s.max == 4);
	assert_true(fabs(bench_spread_pct(&s) - 120.0) < 1e-9);
}

static void test_summary_one_and_none(void **state)
{
	const double one[] = { 7.5 }, nans[] = { NAN, 5, NAN, 9 };
	struct bench_summary s = bench_summarize(one, 1);

	(void)state;
	assert_int_equal(s.n, 1);
	assert_true(s.median == 7.5 && s.min == 7.5 && s.max == 7.5);
	assert_true(bench_spread_pct(&s) == 0);

	s = bench_summarize(NULL, 0);
	assert_int_equal(s.n, 0);
	assert_true(isnan(s.median) && isnan(s.min) && isnan(s.max));
	assert_true(isnan(bench_spread_pct(&s)));

	s = bench_summarize(nans, 4); /* failed runs are NAN: skipped */
	assert_int_equal(s.n, 2);
	assert_true(s.median == 7 && s.min == 5 && s.max == 9);

	s = bench_summarize(nans, 1);
	assert_int_equal(s.n, 0);
	assert_true(isnan(s.median));

	const double zeros[] = { 0, 0 };

	s = bench_summarize(zeros, 2);
	assert_true(s.median == 0 && isnan(bench_spread_pct(&s)));
}

static void test_ratio(void **state)
{
	(void)state;
	assert_true(bench_ratio(1, 4) == 0.25);
	assert_true(bench_ratio(0, 4) == 0);
	assert_true(isnan(bench_ratio(5, 0)));
	assert_true(isnan(bench_ratio(0, 0)));
	assert_true(isnan(bench_ratio(5, -0.0)));
	assert_true(isnan(bench_ratio(NAN, 2)));
	assert_true(isnan(bench_ratio(2, NAN)));
}

/* ---- writers -------------------------------------------------------------- */

/* What @fn writes, as a string (free it). */
#define CAPTURE(buf, call)                               \
	do {                                             \
		size_t len_;                             \
		FILE *f = open_memstream(&(buf), &len_); \
		assert_non_null(f);                      \
		call;                                    \
		assert_int_equal(fclose(f), 0);          \
	} while (0)

static void expect_csv_field(const char *in, const char *want)
{
	char *out = NULL;

	CAPTURE(out, bench_csv_field(f, in));
	assert_string_equal(out, want);
	free(out);
}

static void test_csv_quoting(void **state)
{
	(void)state;
	expect_csv_field("plain", "plain");
	expect_csv_field("", "");
	expect_csv_field("a b", "a b");
	expect_csv_field("one, two", "\"one, two\"");
	expect_csv_field("say \"hi\"", "\"say \"\"hi\"\"\"");
	expect_csv_field("\"", "\"\"\"\"");
	expect_csv_field("two\nlines", "\"two\nlines\"");
	expect_csv_field("cr\r", "\"cr\r\"");
	expect_csv_field(" lead", "\" lead\"");
	expect_csv_field("trail ", "\"trail \"");
	expect_csv_field("not runnable here: needs the Linux guest of issue 6",
			 "not runnable here: needs the Linux guest of issue 6");
}

static void test_fmt(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(bench_fmt(buf, sizeof(buf), NAN, 2), "n/a");
	assert_string_equal(bench_fmt(buf, sizeof(buf), 0.2345, 2), "0.23");
	assert_string_equal(bench_fmt(buf, sizeof(buf), 680394, 0), "680394");
}

/* Two workloads; shadow and hw ran, "qemu" did not, hw's pf run failed. */
static struct bench_cell cells[4 * 3];
static const char *const works[] = { "fork", "pf" }, *const units[] = { "fork, exit", "page" };
static const char *const confs[] = { "umbra-shadow", "umbra-hw", "qemu" };

static struct bench_report small_report(void)
{
	struct bench_report r = { .nwork = 2,
				  .nconf = 3,
				  .work = works,
				  .work_unit = units,
				  .conf = confs,
				  .shadow = 0,
				  .hw = 1,
				  .cells = cells };
	const double fs[] = { 100, 120, 110 }, fh[] = { 400, 440 };

	for (unsigned i = 0; i < 6; i++) {
		cells[i].status = NULL;
		cells[i].cycles = bench_summarize(NULL, 0);
		for (unsigned m = 0; m < BM_COUNT; m++)
			cells[i].metric[m] = NAN;
	}
	bench_cell(&r, 0, 0)->cycles = bench_summarize(fs, 3);
	bench_cell(&r, 0, 0)->iters = 200;
	bench_metrics_from_json(shadow_json, bench_cell(&r, 0, 0)->metric);
	bench_cell(&r, 0, 1)->cycles = bench_summarize(fh, 2);
	bench_cell(&r, 0, 1)->iters = 200;
	bench_metrics_from_json(hw_json, bench_cell(&r, 0, 1)->metric);
	bench_cell(&r, 1, 0)->cycles = bench_summarize(fs, 1);
	bench_metrics_from_json(shadow_json, bench_cell(&r, 1, 0)->metric);
	bench_cell(&r, 1, 1)->status = "failed: umbra exited with status 8";
	bench_cell(&r, 0, 2)->status = "not runnable here: no \"qemu\", sorry";
	bench_cell(&r, 1, 2)->status = "not runnable here: no \"qemu\", sorry";
	return r;
}

static void test_write_csv(void **state)
{
	struct bench_report r = small_report();
	char *out = NULL;

	(void)state;
	CAPTURE(out, bench_write_csv(f, &r));
	assert_non_null(strstr(out, "workload,iteration,config,status,runs,iters,cycles_median,"
				    "cycles_min,cycles_max,spread_pct,ratio_shadow_hw,exits,"
				    "shadow_traps,shadow_faults,pt_write_emulations,root_switches,"
				    "root_hit_pct,emulated_insns,wall_s\n"));
	assert_non_null(strstr(out,
			       "\nfork,\"fork, exit\",umbra-shadow,ok,3,200,110.00,100.00,"
			       "120.00,18.2,0.262,5374,4722,2424,1921,2073,80.5,3590,0.361\n"));
	assert_non_null(strstr(out, "\nfork,\"fork, exit\",umbra-hw,ok,2,200,420.00,400.00,440.00,"
				    "9.5,0.262,654,,,,,,0,1.095\n"));
	assert_non_null(strstr(out, "\nfork,\"fork, exit\",qemu,\"not runnable here: no "
				    "\"\"qemu\"\", sorry\",0,,,,,,0.262,,,,,,,,\n"));
	assert_non_null(strstr(out, "\npf,page,umbra-hw,failed: umbra exited with status 8,0,,,,,,,"
				    ",,,,,,,\n"));
	/* 1 header + 2 workloads x 3 configurations */
	size_t lines = 0;

	for (const char *p = out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 7);
	free(out);
}

static void test_write_markdown(void **state)
{
	struct bench_report r = small_report();
	char *out = NULL;

	(void)state;
	CAPTURE(out, bench_write_markdown(f, &r));
	assert_non_null(strstr(out, "| workload | one iteration | umbra-shadow | umbra-hw | qemu | "
				    "shadow/hw |\n"));
	assert_non_null(strstr(out, "| fork | fork, exit | 110 ±18.2% | 420 ±9.5% | n/a [1] | "
				    "0.26 |\n"));
	assert_non_null(strstr(out, "| pf | page | 100 | n/a [2] | n/a [1] | n/a |\n"));
	assert_non_null(strstr(out, "[1] not runnable here: no \"qemu\", sorry\n"));
	assert_non_null(strstr(out, "[2] failed: umbra exited with status 8\n"));
	assert_non_null(strstr(out, "| fork | umbra-shadow | 5374 | 4722 | 2424 | 1921 | 2073 | "
				    "80.5 | 3590 | 0.361 |\n"));
	assert_non_null(strstr(out, "| fork | umbra-hw | 654 | - | - | - | - | - | 0 | 1.095 |\n"));
	assert_null(strstr(out, "| pf | umbra-hw |")); /* no events for a failed cell */
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_good),
		cmocka_unit_test(test_line_malformed),
		cmocka_unit_test(test_json_found),
		cmocka_unit_test(test_json_absent_or_bad),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_summary_odd),
		cmocka_unit_test(test_summary_even),
		cmocka_unit_test(test_summary_one_and_none),
		cmocka_unit_test(test_ratio),
		cmocka_unit_test(test_csv_quoting),
		cmocka_unit_test(test_fmt),
		cmocka_unit_test(test_write_csv),
		cmocka_unit_test(test_write_markdown),
	};

	return cmocka_run_group_tests_name("bench", tests, NULL, NULL);
}
