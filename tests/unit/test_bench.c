/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the benchmark harness's library (bench/harness/benchlib.h):
 * BENCH line parsing (testos's cycles and ubench's ns=), number extraction
 * from umbra's --stats=json (on output captured from real runs),
 * median/spread/ratio, the Linux boot script and its base64, CSV quoting, the
 * stats marks (parsing, a workload's events between its marks), and the CSV
 * and Markdown writers on small reports (one VM per workload as for
 * testos; one boot per configuration with native, as for Linux).
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
 * emulated mnemonics and shadow counters, the rest as umbra wrote it, but
 * for code_scan_time_s (written since 2026-12-05) added.
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
	"\"roots_live\": 7, \"evictions\": 0, \"flushes\": 0, \"stores\": 4633, "
	"\"code_scan_time_s\": 0.012345}}\n";

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
	assert_true(b.per_iter == 10293896.0);

	assert_int_equal(bench_parse_line("BENCH compute 1073741824 5.37\n", &b), 0);
	assert_string_equal(b.name, "compute");
	assert_int_equal(b.iters, 1073741824ULL);
	assert_true(fabs(b.per_iter - 5.37) < 1e-9);

	assert_int_equal(bench_parse_line("BENCH pf 65536 680394.00\r\n", &b), 0);
	assert_string_equal(b.name, "pf");
	assert_true(b.per_iter == 680394.0);

	assert_int_equal(bench_parse_line("BENCH x 18446744073709551615 0", &b), 0);
	assert_int_equal(b.iters, UINT64_MAX);
	assert_true(b.per_iter == 0.0);
	assert_int_equal(b.unit, BENCH_CYCLES);
}

/* ubench's lines: nanoseconds per iteration, "ns=" before the number. */
static void test_line_ns(void **state)
{
	struct bench_line b;

	(void)state;
	assert_int_equal(bench_parse_line("BENCH pf 65536 ns=15391.94\n", &b), 0);
	assert_string_equal(b.name, "pf");
	assert_int_equal(b.iters, 65536);
	assert_int_equal(b.unit, BENCH_NS);
	assert_true(fabs(b.per_iter - 15391.94) < 1e-9);

	assert_int_equal(bench_parse_line("BENCH compute 1073741824 ns=1\r\n", &b), 0);
	assert_int_equal(b.unit, BENCH_NS);
	assert_true(b.per_iter == 1.0);

	/* The unit is per line: a cycles line after an ns one is cycles again. */
	assert_int_equal(bench_parse_line("BENCH fork 200 10293896", &b), 0);
	assert_int_equal(b.unit, BENCH_CYCLES);

	static const char *const bad[] = {
		"BENCH pf 65536 ns=",	    "BENCH pf 65536 ns=-1", "BENCH pf 65536 ns= 5",
		"BENCH pf 65536 ns=5.",	    "BENCH pf 65536 ns=.5", "BENCH pf 65536 NS=5",
		"BENCH pf 65536 ns=5 ns=5", "BENCH pf 65536 ns5",   "BENCH pf 65536 cycles=5",
		"BENCH pf 0 ns=5",	    "BENCH pf ns=5 65536",  "BENCH pf 65536 ns=ns=5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (bench_parse_line(bad[i], &b) != -1)
			fail_msg("accepted '%s'", bad[i]);
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
	struct bench_line b = { .name = "untouched", .iters = 7, .per_iter = 7 };

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
	assert_true(m[BM_STORES] == 4632);
	assert_true(m[BM_ROOT_SWITCH] == 1668 + 405);
	assert_true(fabs(m[BM_ROOT_HIT] - 100.0 * 1668 / 2073) < 1e-9);
	assert_true(m[BM_EMULATED] == 3590);
	assert_true(fabs(m[BM_WALL] - 0.36059) < 1e-9);
	assert_true(m[BM_TRAP_PF] == 2424);
	assert_true(m[BM_TRAP_GP] == 1035);
	assert_true(m[BM_TRAP_BP] == 1236);
	assert_true(fabs(m[BM_SCAN] - 0.012345) < 1e-9);

	bench_metrics_from_json(hw_json, m);
	assert_true(m[BM_EXITS] == 654);
	assert_true(m[BM_EMULATED] == 0);
	assert_true(isnan(m[BM_TRAPS]) && isnan(m[BM_FAULTS]) && isnan(m[BM_PT_WRITES]));
	assert_true(isnan(m[BM_STORES]) && isnan(m[BM_SCAN]));
	assert_true(isnan(m[BM_ROOT_SWITCH]) && isnan(m[BM_ROOT_HIT]));
	assert_true(isnan(m[BM_TRAP_PF]) && isnan(m[BM_TRAP_GP]) && isnan(m[BM_TRAP_BP]));

	/* Shadow mode lists only the vectors that trapped: the others are 0, not absent. */
	bench_metrics_from_json("{\"exits_total\": 3, \"shadow\": {\"traps_total\": 5, "
				"\"traps\": {\"14\": 5}}}",
				m);
	assert_true(m[BM_TRAPS] == 5 && m[BM_TRAP_PF] == 5);
	assert_true(m[BM_TRAP_GP] == 0 && m[BM_TRAP_BP] == 0);
	assert_true(isnan(m[BM_FAULTS]) && isnan(m[BM_WALL]));
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

/* ---- the Linux boot script ---------------------------------------------- */

static void expect_b64(const char *in, const char *want)
{
	char out[64];

	assert_int_equal(bench_base64(in, strlen(in), out, sizeof(out)), strlen(want));
	assert_string_equal(out, want);
}

static void test_base64(void **state)
{
	char out[8], big[16];
	const unsigned char bin[] = { 0xff, 0x00, 0xfe, 0x7f };

	(void)state;
	/* RFC 4648, section 10 */
	expect_b64("", "");
	expect_b64("f", "Zg==");
	expect_b64("fo", "Zm8=");
	expect_b64("foo", "Zm9v");
	expect_b64("foob", "Zm9vYg==");
	expect_b64("fooba", "Zm9vYmE=");
	expect_b64("foobar", "Zm9vYmFy");
	assert_int_equal(bench_base64(bin, sizeof(bin), big, sizeof(big)), 8);
	assert_string_equal(big, "/wD+fw==");
	/* The NUL needs room too. */
	assert_int_equal(bench_base64(bin, sizeof(bin), out, sizeof(out)), 0);
	assert_int_equal(bench_base64("foo", 3, out, 4), 0);
	assert_int_equal(bench_base64("foo", 3, out, 5), 4);
	assert_string_equal(out, "Zm9v");
}

static void test_linux_script(void **state)
{
	const char *const names[] = { "pf", "fork" };
	const uint64_t iters[] = { 65536, 0 };
	const char *const want = "echo UMBRA-USERSPACE-UP\n/ubench -n 65536 pf\n/ubench fork\n";
	char buf[256], b64[256];
	int len;

	(void)state;
	assert_string_equal(bench_userspace_marker, "UMBRA-USERSPACE-UP");
	len = bench_linux_script(buf, sizeof(buf), names, iters, 2, 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(buf, want);
	/* What `base64 -w0` prints for it: what /init decodes with busybox base64 -d. */
	assert_true(bench_base64(buf, (size_t)len, b64, sizeof(b64)) > 0);
	assert_string_equal(b64, "ZWNobyBVTUJSQS1VU0VSU1BBQ0UtVVAKL3ViZW5jaCAtbiA2NTUzNiBwZgovdWJl"
				 "bmNoIGZvcmsK");

	assert_int_equal(bench_linux_script(buf, sizeof(buf), names, iters, 0, 0),
			 strlen("echo UMBRA-USERSPACE-UP\n"));
	assert_int_equal(bench_linux_script(buf, strlen(want), names, iters, 2, 0),
			 -1); /* no NUL */
	assert_int_equal(bench_linux_script(buf, strlen(want) + 1, names, iters, 2, 0),
			 strlen(want));
	assert_int_equal(bench_linux_script(buf, 10, names, iters, 2, 0), -1);

	static const char *const bad[] = { "", "a;reboot", "A", "pf fork", "$(x)" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (bench_linux_script(buf, sizeof(buf), &bad[i], iters, 1, 1) != -1)
			fail_msg("accepted workload name '%s'", bad[i]);
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
	struct bench_report r = { .guest = "testos",
				  .unit = BENCH_CYCLES,
				  .nwork = 2,
				  .nconf = 3,
				  .work = works,
				  .work_unit = units,
				  .conf = confs,
				  .shadow = 0,
				  .hw = 1,
				  .tcg = -1,
				  .native = -1,
				  .cells = cells };
	const double fs[] = { 100, 120, 110 }, fh[] = { 400, 440 };

	for (unsigned i = 0; i < 6; i++) {
		cells[i].status = NULL;
		cells[i].per_iter = bench_summarize(NULL, 0);
		for (unsigned m = 0; m < BM_COUNT; m++)
			cells[i].metric[m] = NAN;
	}
	bench_cell(&r, 0, 0)->per_iter = bench_summarize(fs, 3);
	bench_cell(&r, 0, 0)->iters = 200;
	bench_metrics_from_json(shadow_json, bench_cell(&r, 0, 0)->metric);
	bench_cell(&r, 0, 1)->per_iter = bench_summarize(fh, 2);
	bench_cell(&r, 0, 1)->iters = 200;
	bench_metrics_from_json(hw_json, bench_cell(&r, 0, 1)->metric);
	bench_cell(&r, 1, 0)->per_iter = bench_summarize(fs, 1);
	bench_metrics_from_json(shadow_json, bench_cell(&r, 1, 0)->metric);
	bench_cell(&r, 1, 1)->status = "failed: umbra exited with status 8";
	bench_cell(&r, 0, 2)->status = "not runnable here: no \"qemu\", sorry";
	bench_cell(&r, 1, 2)->status = "not runnable here: no \"qemu\", sorry";
	return r;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_write_csv(void **state)
{
	struct bench_report r = small_report();
	char *out = NULL;

	(void)state;
	CAPTURE(out, bench_write_csv(f, &r));
	assert_non_null(strstr(
		out, "guest,workload,iteration,config,status,runs,iters,unit,median,"
		     "min,max,spread_pct,ratio_shadow_hw,ratio_shadow_qemu_tcg,"
		     "ratio_to_native,boot_s,exits,shadow_traps,traps_pf,traps_gp,"
		     "traps_bp,shadow_faults,pt_write_emulations,shadow_stores,root_switches,"
		     "root_hit_pct,emulated_insns,code_scan_s,wall_s,traps_per_op,exits_per_op\n"));
	assert_non_null(strstr(out, "\ntestos,fork,\"fork, exit\",umbra-shadow,ok,3,200,cycles,"
				    "110.00,100.00,120.00,18.2,0.262,,,,5374,4722,2424,1035,1236,"
				    "2424,1921,4632,2073,80.5,3590,0.012,0.361,,\n"));
	assert_non_null(strstr(out, "\ntestos,fork,\"fork, exit\",umbra-hw,ok,2,200,cycles,420.00,"
				    "400.00,440.00,9.5,0.262,,,,654,,,,,,,,,,0,,1.095,,\n"));
	assert_non_null(strstr(out,
			       "\ntestos,fork,\"fork, exit\",qemu,\"not runnable here: no "
			       "\"\"qemu\"\", sorry\",0,,cycles,,,,,0.262,,,,,,,,,,,,,,,,,,\n"));
	assert_non_null(strstr(out, "\ntestos,pf,page,umbra-hw,failed: umbra exited with status "
				    "8,0,,cycles,,,,,,,,,,,,,,,,,,,,,,,\n"));
	/* 1 header + 2 workloads x 3 configurations */
	assert_int_equal(count_lines(out), 7);
	free(out);

	/* Several reports share a file: the rows alone, no second header. */
	CAPTURE(out, bench_write_csv_rows(f, &r));
	assert_null(strstr(out, "guest,workload"));
	assert_int_equal(count_lines(out), 6);
	free(out);
}

static void test_write_markdown(void **state)
{
	struct bench_report r = small_report();
	char *out = NULL;

	(void)state;
	CAPTURE(out, bench_write_markdown(f, &r));
	assert_non_null(strstr(out, "| workload | one iteration | umbra-shadow | umbra-hw | qemu | "
				    "shadow/hw |\n| --- | --- | ---: | ---: | ---: | ---: |\n"));
	assert_non_null(strstr(out, "| fork | fork, exit | 110 ±18.2% | 420 ±9.5% | n/a [1] | "
				    "0.26 |\n"));
	assert_non_null(strstr(out, "| pf | page | 100 | n/a [2] | n/a [1] | n/a |\n"));
	assert_non_null(strstr(out, "Median guest TSC cycles per iteration"));
	assert_non_null(strstr(out, "[1] not runnable here: no \"qemu\", sorry\n"));
	assert_non_null(strstr(out, "[2] failed: umbra exited with status 8\n"));
	assert_non_null(strstr(
		out,
		"| workload | config | exits | shadow traps | #PF | #GP | #BP | "
		"shadow faults | PT-write emul. | shadow stores | root switches | root hit % | "
		"emulated insns | code scan s | wall s |\n| --- | --- | ---: | ---: | ---: | "
		"---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"));
	assert_non_null(strstr(out, "| fork | umbra-shadow | 5374 | 4722 | 2424 | 1035 | 1236 | "
				    "2424 | 1921 | 4632 | 2073 | 80.5 | 3590 | 0.012 | 0.361 |\n"));
	assert_non_null(strstr(out,
			       "| fork | umbra-hw | 654 | - | - | - | - | - | - | - | - | - | 0 | "
			       "- | 1.095 |\n"));
	assert_null(strstr(out, "| pf | umbra-hw |")); /* no events for a failed cell */
	assert_null(strstr(out, "/native"));	       /* no native configuration */
	assert_null(strstr(out, "boot s"));	       /* a VM per workload, no boots */
	free(out);

	/* Nothing ran: every cell says why, and there are no counts to show. */
	for (unsigned i = 0; i < 6; i++)
		cells[i].status = "not runnable here: /dev/kvm is not available";
	CAPTURE(out, bench_write_markdown(f, &r));
	assert_non_null(strstr(out, "| pf | page | n/a [1] | n/a [1] | n/a [1] | n/a |\n"));
	assert_non_null(strstr(out, "[1] not runnable here: /dev/kvm is not available\n"));
	assert_null(strstr(out, "[2]"));
	assert_non_null(strstr(out, "\nNo configuration ran: no event counts.\n"));
	assert_null(strstr(out, "| workload | config |"));
	free(out);
}

/*
 * As for the Linux guest: one boot per configuration runs both workloads;
 * hw timed out, qemu-tcg ran without umbra's counts, native has no boot.
 */
static struct bench_cell lcells[2 * 4];
static struct bench_boot lboots[4];
static const char *const lworks[] = { "pf", "compute" }, *const lunits[] = { "fault", "step" };
static const char *const lconfs[] = { "umbra-shadow", "umbra-hw", "qemu-tcg", "native" };

static struct bench_report linux_report(void)
{
	struct bench_report r = { .guest = "linux",
				  .unit = BENCH_NS,
				  .nwork = 2,
				  .nconf = 4,
				  .work = lworks,
				  .work_unit = lunits,
				  .conf = lconfs,
				  .shadow = 0,
				  .hw = 1,
				  .tcg = 2,
				  .native = 3,
				  .cells = lcells,
				  .boot = lboots };
	const double pf_shadow[] = { 28000, 30000, 33000 }, pf_tcg[] = { 20000 },
		     pf_native[] = { 10000 }, c_shadow[] = { 2 }, c_tcg[] = { 40 },
		     c_native[] = { 1.6 }, boot_shadow[] = { 45, 47, 46 }, boot_tcg[] = { 30 };
	static const char timeout[] = "failed: timed out after 60 s";

	for (unsigned i = 0; i < 8; i++) {
		lcells[i] = (struct bench_cell){ .per_iter = bench_summarize(NULL, 0) };
		for (unsigned m = 0; m < BM_COUNT; m++)
			lcells[i].metric[m] = NAN;
	}
	for (unsigned c = 0; c < 4; c++) {
		lboots[c] = (struct bench_boot){ .secs = bench_summarize(NULL, 0) };
		for (unsigned m = 0; m < BM_COUNT; m++)
			lboots[c].metric[m] = NAN;
	}
	bench_cell(&r, 0, 0)->per_iter = bench_summarize(pf_shadow, 3);
	bench_cell(&r, 0, 0)->iters = 65536;
	bench_cell(&r, 0, 2)->per_iter = bench_summarize(pf_tcg, 1);
	bench_cell(&r, 0, 3)->per_iter = bench_summarize(pf_native, 1);
	bench_cell(&r, 1, 0)->per_iter = bench_summarize(c_shadow, 1);
	bench_cell(&r, 1, 2)->per_iter = bench_summarize(c_tcg, 1);
	bench_cell(&r, 1, 3)->per_iter = bench_summarize(c_native, 1);
	bench_cell(&r, 0, 1)->status = timeout;
	bench_cell(&r, 1, 1)->status = timeout;
	lboots[0].secs = bench_summarize(boot_shadow, 3);
	bench_metrics_from_json(shadow_json, lboots[0].metric);
	lboots[1].status = timeout;
	lboots[2].secs = bench_summarize(boot_tcg, 1);
	lboots[2].metric[BM_WALL] = 120.5;
	return r;
}

static void test_cell_ratio(void **state)
{
	struct bench_report r = linux_report();

	(void)state;
	assert_true(fabs(bench_cell_ratio(&r, 0, 0, 3) - 3.0) < 1e-9); /* shadow/native */
	assert_true(fabs(bench_cell_ratio(&r, 0, 0, 2) - 1.5) < 1e-9); /* shadow/tcg */
	assert_true(fabs(bench_cell_ratio(&r, 1, 2, 3) - 25.0) < 1e-9);
	assert_true(bench_cell_ratio(&r, 0, 3, 3) == 1.0);
	assert_true(isnan(bench_cell_ratio(&r, 0, 1, 3))); /* hw did not run */
	assert_true(isnan(bench_cell_ratio(&r, 0, 0, 1)));
	assert_true(isnan(bench_cell_ratio(&r, 0, -1, 3))); /* no such configuration */
	assert_true(isnan(bench_cell_ratio(&r, 0, 0, -1)));

	bench_cell(&r, 0, 3)->per_iter.median = 0; /* a 0 ns native time: no ratio */
	assert_true(isnan(bench_cell_ratio(&r, 0, 0, 3)));
}

static void test_write_linux_csv(void **state)
{
	struct bench_report r = linux_report();
	char *out = NULL;

	(void)state;
	CAPTURE(out, bench_write_csv_rows(f, &r));
	/* Every row of a configuration carries its boot's time and counts. */
	assert_non_null(strstr(out,
			       "linux,pf,fault,umbra-shadow,ok,3,65536,ns,30000.00,28000.00,"
			       "33000.00,16.7,,1.500,3.000,46.000,5374,4722,2424,1035,1236,2424,"
			       "1921,4632,2073,80.5,3590,0.012,0.361,,\n"));
	assert_non_null(strstr(out,
			       "\nlinux,compute,step,umbra-shadow,ok,1,,ns,2.00,2.00,2.00,0.0,,"
			       "0.050,1.250,46.000,5374,4722,2424,1035,1236,2424,1921,4632,2073,"
			       "80.5,3590,0.012,0.361,,\n"));
	assert_non_null(strstr(out, "\nlinux,pf,fault,umbra-hw,failed: timed out after 60 s,0,,ns,"
				    ",,,,,1.500,,,,,,,,,,,,,,,,,\n"));
	assert_non_null(strstr(out, "\nlinux,pf,fault,qemu-tcg,ok,1,,ns,20000.00,20000.00,20000.00,"
				    "0.0,,1.500,2.000,30.000,,,,,,,,,,,,,120.500,,\n"));
	assert_non_null(strstr(out, "\nlinux,pf,fault,native,ok,1,,ns,10000.00,10000.00,10000.00,"
				    "0.0,,1.500,,,,,,,,,,,,,,,,,\n"));
	assert_int_equal(count_lines(out), 8);
	free(out);
}

static void test_write_linux_markdown(void **state)
{
	struct bench_report r = linux_report();
	char *out = NULL;

	(void)state;
	CAPTURE(out, bench_write_markdown(f, &r));
	assert_non_null(strstr(out,
			       "| workload | one iteration | umbra-shadow | umbra-hw | qemu-tcg "
			       "| native | shadow/hw | shadow/qemu-tcg |\n| --- | --- | ---: | "
			       "---: | ---: | ---: | ---: | ---: |\n"));
	assert_non_null(strstr(out, "| pf | fault | 30000 ±16.7% | n/a [1] | 20000 | 10000 | n/a | "
				    "1.50 |\n"));
	assert_non_null(strstr(out, "| compute | step | 2.00 | n/a [1] | 40.00 | 1.60 | n/a | "
				    "0.05 |\n"));
	assert_non_null(strstr(out, "Median nanoseconds per iteration"));
	assert_non_null(strstr(out, "[1] failed: timed out after 60 s\n"));
	/* Ratios to native: every other configuration, per workload. */
	assert_non_null(strstr(out, "| workload | umbra-shadow/native | umbra-hw/native | "
				    "qemu-tcg/native |\n| --- | ---: | ---: | ---: |\n"));
	assert_non_null(strstr(out, "| pf | 3.00 | n/a | 2.00 |\n"));
	assert_non_null(strstr(out, "| compute | 1.25 | n/a | 25.00 |\n"));
	/* The boots: time and counts per configuration, none for native. */
	assert_non_null(strstr(
		out,
		"| config | boot s | exits | shadow traps | #PF | #GP | #BP | "
		"shadow faults | PT-write emul. | shadow stores | root switches | root hit % | "
		"emulated insns | code scan s | wall s |\n| --- | ---: | ---: |"));
	assert_non_null(strstr(out, "| umbra-shadow | 46.0 | 5374 | 4722 | 2424 | 1035 | 1236 | "
				    "2424 | 1921 | 4632 | 2073 | 80.5 | 3590 | 0.012 | 0.361 |\n"));
	assert_non_null(strstr(out,
			       "| umbra-hw | n/a [1] | - | - | - | - | - | - | - | - | - | - | "
			       "- | - | - |\n"));
	assert_non_null(strstr(out,
			       "| qemu-tcg | 30.0 | - | - | - | - | - | - | - | - | - | - | - | "
			       "- | 120.500 |\n"));
	assert_null(strstr(out, "\n| native |"));	   /* no boot row */
	assert_null(strstr(out, "[2]"));		   /* the boot's note is the cells' note */
	assert_null(strstr(out, "| pf | umbra-shadow |")); /* no per-workload event table */
	assert_null(strstr(out, "traps/op"));		   /* no stats marks: no table */
	free(out);
}

/* ---- stats marks ------------------------------------------------------------ */

static void test_linux_script_marks(void **state)
{
	const char *const names[] = { "pf", "fork" };
	const uint64_t iters[] = { 65536, 0 };
	const char *const want = "echo UMBRA-USERSPACE-UP\n/ubench -m -k 0 -n 65536 pf\n"
				 "/ubench -m -k 1 fork\n";
	char buf[256];

	(void)state;
	assert_int_equal(bench_linux_script(buf, sizeof(buf), names, iters, 2, 1), strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(bench_linux_script(buf, strlen(want), names, iters, 2, 1), -1);
}

/*
 * The tail of a shadow-mode --stats=json with marks, as vmm/stats.c prints
 * them (tests/unit/test_stats_mark.c checks that side): workloads 0 and 1
 * of a boot, then a start mark whose workload died.
 */
static const char marks_json[] =
	"{\"mode\": \"shadow\", \"exits_total\": 90000, \"shadow\": {\"traps_total\": 80000, "
	"\"traps\": {\"14\": 70000}, \"faults\": 70000}, \"marks\": [{\"label\": 0, \"t_s\": "
	"1.500000, \"exits\": 1000, \"traps\": 900, \"traps_gp\": 3, \"traps_pf\": 800, "
	"\"traps_ud\": 0, \"traps_bp\": 1, \"traps_irq\": 13, \"emulated\": 8, "
	"\"emulated_pt_writes\": 9, \"patch_traps\": 11, \"syscalls\": 12, \"faults\": 100, "
	"\"pt_writes\": 200, \"root_switches\": 34, \"sp_created\": 50}, {\"label\": 1, "
	"\"t_s\": 2.000000, \"exits\": 67000, \"traps\": 66436, \"faults\": 65636}, "
	"{\"label\": 2, \"t_s\": 3.25, \"exits\": 67100, \"traps\": 66500}, {\"label\": 3, "
	"\"t_s\": 4.5, \"exits\": 67300, \"traps\": 66600}, {\"label\": 4, \"t_s\": 5, "
	"\"exits\": 67400, \"traps\": 66700}], \"marks_dropped\": 0}\n";

static void test_json_marks(void **state)
{
	struct bench_mark m[8];
	double v;

	(void)state;
	assert_int_equal(bench_json_marks(marks_json, m, 8), 5);
	assert_int_equal(m[0].label, 0);
	assert_true(m[0].t_s == 1.5);
	assert_true(m[0].exits == 1000);
	assert_true(m[0].traps == 900);
	assert_int_equal(m[1].label, 1);
	assert_true(m[1].exits == 67000 && m[1].traps == 66436);
	assert_int_equal(m[4].label, 4);
	assert_true(m[4].t_s == 5 && m[4].exits == 67400);
	/* Only @cap stored; the other numbers are still found around the array. */
	assert_int_equal(bench_json_marks(marks_json, m, 2), 2);
	assert_int_equal(bench_json_marks(marks_json, m, 0), 0);
	assert_int_equal(bench_json_number(marks_json, "marks_dropped", &v), 0);
	assert_true(v == 0);
	assert_int_equal(bench_json_number(marks_json, "shadow.faults", &v), 0);
	assert_true(v == 70000);

	/* No marks: none printed, or an older umbra. */
	assert_int_equal(bench_json_marks("{\"marks\": [], \"marks_dropped\": 3}", m, 8), 0);
	assert_int_equal(bench_json_marks(shadow_json, m, 8), -1);
	assert_int_equal(bench_json_marks(hw_json, m, 8), -1);
	assert_int_equal(bench_json_marks(NULL, m, 8), -1);
	/* A counter umbra did not print is NAN. */
	assert_int_equal(bench_json_marks("{\"marks\": [{\"label\": 7}]}", m, 8), 1);
	assert_int_equal(m[0].label, 7);
	assert_true(isnan(m[0].exits) && isnan(m[0].traps) && isnan(m[0].t_s));

	static const char *const bad[] = {
		"{\"shadow\": {\"marks\": []}}", /* not at the top level */
		"{\"marks\": 3}",
		"{\"marks\": [1, 2]}",
		"{\"marks\": [{\"t_s\": 1}]}", /* no label */
		"{\"marks\": [{\"label\": -1}]}",
		"{\"marks\": [{\"label\": 1.5}]}",
		"{\"marks\": [{\"label\": 4294967296}]}",
		"{\"marks\": [{\"label\": 1} {\"label\": 2}]}",
		"{\"marks\": [{\"label\": 1}",
		"[{\"label\": 1}]",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (bench_json_marks(bad[i], m, 8) != -1)
			fail_msg("accepted marks in '%s'", bad[i]);
}

static void test_mark_delta(void **state)
{
	struct bench_mark m[8], d;
	int n;

	(void)state;
	n = bench_json_marks(marks_json, m, 8);
	assert_int_equal(n, 5);
	assert_int_equal(bench_mark_delta(m, (unsigned)n, 0, &d), 0);
	assert_int_equal(d.label, 0);
	assert_true(d.exits == 66000 && d.traps == 65536 && d.t_s == 0.5);
	assert_int_equal(bench_mark_delta(m, (unsigned)n, 1, &d), 0);
	assert_int_equal(d.label, 2);
	assert_true(d.exits == 200 && d.traps == 100 && d.t_s == 1.25);
	/* Workload 2 started and never ended; 3 never marked. */
	assert_int_equal(bench_mark_delta(m, (unsigned)n, 2, &d), -1);
	assert_int_equal(bench_mark_delta(m, (unsigned)n, 3, &d), -1);
	assert_int_equal(bench_mark_delta(m, 0, 0, &d), -1);

	/* The end must come right after the start; the first such pair counts. */
	const struct bench_mark odd[] = {
		{ .label = 2, .exits = 10 }, { .label = 0, .exits = 20 },
		{ .label = 3, .exits = 30 }, { .label = 2, .exits = 40 },
		{ .label = 3, .exits = 45 }, { .label = 2, .exits = 50 },
		{ .label = 3, .exits = 70 },
	};

	assert_int_equal(bench_mark_delta(odd, 7, 1, &d), 0);
	assert_true(d.exits == 5);
	assert_int_equal(bench_mark_delta(odd, 7, 0, &d), -1);
}

/* The Linux report with per-iteration counts for umbra-shadow's two workloads. */
static void test_write_marks(void **state)
{
	struct bench_report r = linux_report();
	const double pf_traps[] = { 1.5, 1.0, 1.02 }, pf_exits[] = { 1.1, 1.3, 1.2 },
		     c_traps[] = { 0.0000123 }, c_exits[] = { 250 };
	char *out = NULL;

	(void)state;
	bench_cell(&r, 0, 0)->traps_op = bench_summarize(pf_traps, 3);
	bench_cell(&r, 0, 0)->exits_op = bench_summarize(pf_exits, 3);
	bench_cell(&r, 1, 0)->traps_op = bench_summarize(c_traps, 1);
	bench_cell(&r, 1, 0)->exits_op = bench_summarize(c_exits, 1);
	/* A failed cell's counts are not shown (they cannot be there, but still). */
	bench_cell(&r, 0, 1)->traps_op = bench_summarize(c_exits, 1);
	CAPTURE(out, bench_write_markdown(f, &r));
	assert_non_null(strstr(out, "\n| workload | umbra-shadow traps/op | umbra-shadow exits/op "
				    "|\n| --- | ---: | ---: |\n| pf | 1.02 | 1.2 |\n| compute | "
				    "1.23e-05 | 250 |\n"));
	assert_non_null(strstr(out, "Events per iteration of each workload alone"));
	assert_null(strstr(out, "umbra-hw traps/op"));
	free(out);

	CAPTURE(out, bench_write_csv_rows(f, &r));
	assert_non_null(strstr(out, "linux,pf,fault,umbra-shadow,ok,3,65536,ns,30000.00,28000.00,"
				    "33000.00,16.7,,1.500,3.000,46.000,5374,4722,2424,1035,1236,"
				    "2424,1921,4632,2073,80.5,3590,0.012,0.361,1.0200,1.2000\n"));
	assert_non_null(strstr(out,
			       "\nlinux,compute,step,umbra-shadow,ok,1,,ns,2.00,2.00,2.00,"
			       "0.0,,0.050,1.250,46.000,5374,4722,2424,1035,1236,2424,1921,4632,"
			       "2073,80.5,3590,0.012,0.361,0.0000,250.0000\n"));
	assert_non_null(strstr(out, "\nlinux,pf,fault,umbra-hw,failed: timed out after 60 s,0,,ns,"
				    ",,,,,1.500,,,,,,,,,,,,,,,,,\n"));
	free(out);
}

/* --variant NAME:OPTS: the configuration's name and umbra's options. */
/* On a PVM host (no syscall reaches CPL0): QEMU never, umbra-hw only when named. */
static void test_cpl0_unrunnable(void **state)
{
	(void)state;
	assert_null(bench_cpl0_unrunnable(0, 0, 1));
	assert_null(bench_cpl0_unrunnable(1, 0, 1));
	assert_non_null(strstr(bench_cpl0_unrunnable(0, 1, 0), "cannot run user programs"));
	assert_non_null(strstr(bench_cpl0_unrunnable(1, 0, 0), "unless --configs names it"));
	assert_null(bench_cpl0_unrunnable(1, 1, 0));
}

static void test_variant(void **state)
{
	struct bench_variant v;
	char err[400];

	(void)state;
	assert_int_equal(
		bench_parse_variant("noprefault:--shadow-prefault=off", &v, err, sizeof(err)), 0);
	assert_string_equal(v.name, "shadow-noprefault");
	assert_int_equal(v.nopts, 1);
	assert_string_equal(v.opts[0], "--shadow-prefault=off");
	assert_null(v.opts[1]);
	/* Spaces separate options; a value keeps its commas. */
	assert_int_equal(bench_parse_variant("pvm-like:--cpu=-fsgsbase,-smap  --chain=off", &v, err,
					     sizeof(err)),
			 0);
	assert_string_equal(v.name, "shadow-pvm-like");
	assert_int_equal(v.nopts, 2);
	assert_string_equal(v.opts[0], "--cpu=-fsgsbase,-smap");
	assert_string_equal(v.opts[1], "--chain=off");
	assert_null(v.opts[2]);
}

static void test_variant_bad(void **state)
{
	static const struct {
		const char *arg, *says;
	} bad[] = {
		{ "--chain=off", "expected NAME:OPTS" },
		{ ":--chain=off", "expected NAME:OPTS" },
		{ "waytoolongforavariantname:--chain=off", "expected NAME:OPTS" },
		{ "No:--chain=off", "lower-case" },
		{ "a b:--chain=off", "lower-case" },
		{ "x:", "no option" },
		{ "x:   ", "no option" },
		{ "x:chain=off", "'chain=off' is not an umbra option" },
		{ "x:--", "'--' is not an umbra option" },
		{ "x:--mmu=hw", "no --mmu" },
		{ "x:--a --b --c --d --e --f --g --h --i", "at most 8" },
	};
	struct bench_variant v;
	char err[400];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(bench_parse_variant(bad[i].arg, &v, err, sizeof(err)), -1);
		if (!strstr(err, bad[i].says))
			fail_msg("'%s': expected the error to say '%s', it says '%s'", bad[i].arg,
				 bad[i].says, err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_good),
		cmocka_unit_test(test_line_malformed),
		cmocka_unit_test(test_line_ns),
		cmocka_unit_test(test_json_found),
		cmocka_unit_test(test_json_absent_or_bad),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_summary_odd),
		cmocka_unit_test(test_summary_even),
		cmocka_unit_test(test_summary_one_and_none),
		cmocka_unit_test(test_ratio),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_linux_script),
		cmocka_unit_test(test_csv_quoting),
		cmocka_unit_test(test_fmt),
		cmocka_unit_test(test_write_csv),
		cmocka_unit_test(test_write_markdown),
		cmocka_unit_test(test_cell_ratio),
		cmocka_unit_test(test_write_linux_csv),
		cmocka_unit_test(test_write_linux_markdown),
		cmocka_unit_test(test_linux_script_marks),
		cmocka_unit_test(test_json_marks),
		cmocka_unit_test(test_mark_delta),
		cmocka_unit_test(test_write_marks),
		cmocka_unit_test(test_cpl0_unrunnable),
		cmocka_unit_test(test_variant),
		cmocka_unit_test(test_variant_bad),
	};

	return cmocka_run_group_tests_name("bench", tests, NULL, NULL);
}
