/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the command-line parser (vmm/options.c).
 *
 * Every test builds an argv, runs options_parse and checks the result code,
 * the exact field values and, for errors, that the message names the
 * offending option or value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/options.h"

#define ERRLEN 256

struct parsed {
	enum options_result r;
	struct umbra_options o;
	char err[ERRLEN];
};

/* Parse a NULL-terminated argument list; argv[0] is "umbra". */
static struct parsed parse_argv(const char *const *args)
{
	char *argv[32];
	int argc = 0;
	struct parsed p;

	argv[argc++] = (char *)"umbra";
	for (; *args; args++) {
		assert_true(argc < (int)ARRAY_SIZE(argv) - 1);
		argv[argc++] = (char *)*args;
	}
	argv[argc] = NULL;
	memset(&p, 0x5a, sizeof(p)); /* options_parse must reset everything */
	p.r = options_parse(argc, argv, &p.o, p.err, sizeof(p.err));
	return p;
}

#define PARSE(...) parse_argv((const char *const[]){ __VA_ARGS__, NULL })

static void assert_error_mentions(const struct parsed *p, const char *a, const char *b)
{
	assert_int_equal(p->r, OPTIONS_ERROR);
	if (!strstr(p->err, a))
		fail_msg("error '%s' does not mention '%s'", p->err, a);
	if (b && !strstr(p->err, b))
		fail_msg("error '%s' does not mention '%s'", p->err, b);
}

/* ---- defaults, help, version --------------------------------------------- */

static void test_defaults(void **state)
{
	struct parsed p = PARSE("run", "kernel.elf");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.mmu, MMU_SHADOW); /* the default */
	assert_int_equal(p.o.mem_bytes, 512 * MiB);
	assert_null(p.o.cmdline);
	assert_null(p.o.initrd);
	assert_string_equal(p.o.image, "kernel.elf");
	assert_int_equal(p.o.stats, STATS_NONE);
	assert_null(p.o.stats_file);
	assert_false(p.o.trace);
	assert_null(p.o.trace_file);
	assert_int_equal(p.o.debug_exit_port, 0xf4);
	assert_int_equal(p.o.verbose, 0);
	assert_string_equal(p.err, "");
}

static void test_help_and_version(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--help").r, OPTIONS_HELP);
	assert_int_equal(PARSE("-h").r, OPTIONS_HELP);
	assert_int_equal(PARSE("help").r, OPTIONS_HELP);
	assert_int_equal(PARSE("run", "--help").r, OPTIONS_HELP);
	assert_int_equal(PARSE("run", "img", "-h").r, OPTIONS_HELP);
	assert_int_equal(PARSE("--version").r, OPTIONS_VERSION);
	assert_int_equal(PARSE("-V").r, OPTIONS_VERSION);
}

static void test_usage_text(void **state)
{
	const char *u = options_usage();

	(void)state;
	assert_non_null(strstr(u, "Usage: umbra run [OPTIONS] IMAGE"));
	assert_non_null(strstr(u, "--mmu=shadow|hw"));
	assert_non_null(strstr(u, "--debug-exit-port"));
	assert_non_null(strstr(u, "Ctrl-A x"));
}

static void test_no_command(void **state)
{
	char *argv[] = { (char *)"umbra", NULL };
	struct umbra_options o;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(options_parse(1, argv, &o, err, sizeof(err)), OPTIONS_ERROR);
	assert_non_null(strstr(err, "no command given"));
	/* Defaults are set even on error. */
	assert_int_equal(o.mem_bytes, 512 * MiB);
}

static void test_unknown_command(void **state)
{
	struct parsed p = PARSE("start", "img");

	(void)state;
	assert_error_mentions(&p, "unknown command 'start'", NULL);
}

/* A quoted argument cannot break the one-line message (fuzz_options found "\n"). */
static void test_error_control_chars(void **state)
{
	struct parsed p = PARSE("st\nart", "img");
	struct parsed q = PARSE("run", "--cpu=-x\033[2J", "img");

	(void)state;
	assert_error_mentions(&p, "unknown command 'st?art'", NULL);
	assert_error_mentions(&q, "-x?[2J", NULL);
	assert_null(strchr(q.err, '\033'));
}

static void test_unknown_top_level_option(void **state)
{
	struct parsed p = PARSE("--frobnicate");

	(void)state;
	assert_error_mentions(&p, "unknown option '--frobnicate'", NULL);
}

static void test_no_image(void **state)
{
	struct parsed p = PARSE("run");

	(void)state;
	assert_error_mentions(&p, "no IMAGE given", NULL);
	p = PARSE("run", "--mem", "1G");
	assert_error_mentions(&p, "no IMAGE given", NULL);
}

static void test_two_images(void **state)
{
	struct parsed p = PARSE("run", "a.elf", "b.elf");

	(void)state;
	assert_error_mentions(&p, "'b.elf'", "one IMAGE only");
}

static void test_double_dash(void **state)
{
	struct parsed p = PARSE("run", "--mem=1G", "--", "-odd-name");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_string_equal(p.o.image, "-odd-name");
	assert_int_equal(p.o.mem_bytes, 1 * GiB);

	p = PARSE("run", "--", "a", "b");
	assert_error_mentions(&p, "unexpected argument 'b'", NULL);

	p = PARSE("run", "a", "--", "b");
	assert_error_mentions(&p, "unexpected argument 'b'", NULL);
}

static void test_unknown_option(void **state)
{
	struct parsed p = PARSE("run", "--bogus", "img");

	(void)state;
	assert_error_mentions(&p, "unknown option '--bogus'", NULL);
	/* A prefix of a real option is not that option. */
	p = PARSE("run", "--memory=1G", "img");
	assert_error_mentions(&p, "unknown option '--memory=1G'", NULL);
	p = PARSE("run", "-x", "img");
	assert_error_mentions(&p, "unknown option '-x'", NULL);
}

static void test_missing_value(void **state)
{
	struct parsed p = PARSE("run", "img", "--mem");

	(void)state;
	assert_error_mentions(&p, "option '--mem' needs a value", NULL);
	p = PARSE("run", "img", "--mmu");
	assert_error_mentions(&p, "option '--mmu' needs a value", NULL);
	p = PARSE("run", "img", "--cmdline");
	assert_error_mentions(&p, "option '--cmdline' needs a value", NULL);
	p = PARSE("run", "img", "--initrd");
	assert_error_mentions(&p, "option '--initrd' needs a value", NULL);
	p = PARSE("run", "img", "--initrd=");
	assert_error_mentions(&p, "'--initrd=' needs a value", NULL);
	p = PARSE("run", "img", "--stats-file");
	assert_error_mentions(&p, "option '--stats-file' needs a value", NULL);
	p = PARSE("run", "img", "--debug-exit-port");
	assert_error_mentions(&p, "option '--debug-exit-port' needs a value", NULL);
}

/* ---- --mmu ----------------------------------------------------------------- */

static void test_mmu(void **state)
{
	struct parsed p = PARSE("run", "--mmu=shadow", "img");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.mmu, MMU_SHADOW);
	p = PARSE("run", "--mmu", "shadow", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.mmu, MMU_SHADOW);
	assert_string_equal(p.o.image, "img");
	p = PARSE("run", "--mmu=shadow", "--mmu=hw", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.mmu, MMU_HW);
	p = PARSE("run", "--mmu", "hw", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.mmu, MMU_HW);
}

/*
 * An on|off option `opt` whose "off" the parser records as a true bool at
 * offset `off_at` of struct umbra_options: on by default, on/off by name,
 * the last one wins, anything else (or no value) named in the error.
 */
static void check_on_off(const char *opt, size_t off_at)
{
	char eq_off[64], eq_bad[64];
	struct parsed p = PARSE("run", "img");

	snprintf(eq_off, sizeof(eq_off), "%s=off", opt);
	snprintf(eq_bad, sizeof(eq_bad), "%s=no", opt);
	assert_false(*(bool *)((char *)&p.o + off_at));
	p = PARSE("run", eq_off, "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_true(*(bool *)((char *)&p.o + off_at));
	p = PARSE("run", eq_off, opt, "on", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_false(*(bool *)((char *)&p.o + off_at));
	p = PARSE("run", eq_bad, "img");
	assert_error_mentions(&p, opt, "'no'");
	p = PARSE("run", opt, "img"); /* the value is missing: img is no value */
	assert_error_mentions(&p, opt, "'img'");
}

static void test_chain(void **state)
{
	(void)state;
	check_on_off("--chain", offsetof(struct umbra_options, no_chain));
	check_on_off("--chain-entry", offsetof(struct umbra_options, no_chain_entry));
}

static void test_shadow_prefault(void **state)
{
	(void)state;
	check_on_off("--shadow-prefault", offsetof(struct umbra_options, no_prefault));
}

static void test_scan_ahead(void **state)
{
	(void)state;
	check_on_off("--scan-ahead", offsetof(struct umbra_options, no_scan_ahead));
}

static void test_monitor_calls(void **state)
{
	(void)state;
	check_on_off("--monitor-calls", offsetof(struct umbra_options, no_calls));
}

/* --sensitive: auto by default; patch and iopl3 by name; anything else named in the error. */
static void test_sensitive(void **state)
{
	struct parsed p = PARSE("run", "img");

	(void)state;
	assert_int_equal(p.o.sensitive, SENSITIVE_AUTO);
	p = PARSE("run", "--sensitive=patch", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.sensitive, SENSITIVE_PATCH);
	p = PARSE("run", "--sensitive", "iopl3", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.sensitive, SENSITIVE_IOPL3);
	p = PARSE("run", "--sensitive=iopl3", "--sensitive=auto", "img");
	assert_int_equal(p.o.sensitive, SENSITIVE_AUTO);
	p = PARSE("run", "--sensitive=iopl", "img");
	assert_error_mentions(&p, "--sensitive", "'iopl'");
	p = PARSE("run", "--sensitive", "img");
	assert_int_equal(p.r, OPTIONS_ERROR); /* "img" is taken as the value */
}

static void test_shadow_pool(void **state)
{
	struct parsed p = PARSE("run", "img");

	(void)state;
	assert_int_equal(p.o.shadow_pool_bytes, UMBRA_DEFAULT_SHADOW_POOL);
	p = PARSE("run", "--shadow-pool", "64M", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.shadow_pool_bytes, 64 * MiB);
	p = PARSE("run", "--shadow-pool=2M", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.shadow_pool_bytes, 2 * MiB);
	p = PARSE("run", "--shadow-pool", "3M", "img");
	assert_int_equal(p.r, OPTIONS_ERROR);
	p = PARSE("run", "--shadow-pool", "1G", "img");
	assert_int_equal(p.r, OPTIONS_ERROR);
	p = PARSE("run", "--shadow-pool", "0", "img");
	assert_int_equal(p.r, OPTIONS_ERROR);
	p = PARSE("run", "--shadow-pool", "lots", "img");
	assert_int_equal(p.r, OPTIONS_ERROR);
}

static void test_shadow_prefetch(void **state)
{
	static const char *const bad[] = { "3", "1024", "-8", " 8", "8x", "", "0x8", "lots" };
	struct parsed p = PARSE("run", "img");

	(void)state;
	assert_int_equal(p.o.shadow_prefetch, UMBRA_DEFAULT_SHADOW_PREFETCH);
	p = PARSE("run", "--shadow-prefetch", "0", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.shadow_prefetch, 0);
	p = PARSE("run", "--shadow-prefetch=512", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.shadow_prefetch, 512);
	p = PARSE("run", "--shadow-prefetch=1", "img");
	assert_int_equal(p.o.shadow_prefetch, 1);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		p = PARSE("run", "--shadow-prefetch", bad[i], "img");
		assert_error_mentions(&p, "--shadow-prefetch", bad[i]);
	}
}

static void test_shadow_unsync(void **state)
{
	static const char *const bad[] = { "65", "-1", " 8", "8x", "", "0x8", "many" };
	struct parsed p = PARSE("run", "img");

	(void)state;
	assert_int_equal(p.o.shadow_unsync, UMBRA_DEFAULT_SHADOW_UNSYNC);
	p = PARSE("run", "--shadow-unsync", "0", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.shadow_unsync, 0);
	p = PARSE("run", "--shadow-unsync=64", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.shadow_unsync, 64);
	p = PARSE("run", "--shadow-unsync=3", "img");
	assert_int_equal(p.o.shadow_unsync, 3);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		p = PARSE("run", "--shadow-unsync", bad[i], "img");
		assert_error_mentions(&p, "--shadow-unsync", bad[i]);
	}
}

static void test_shadow_large(void **state)
{
	static const char *const bad[] = { "yes", "1", "", "ON", "of" };
	struct parsed p = PARSE("run", "img");

	(void)state;
	assert_true(p.o.shadow_large);
	assert_true(p.o.shadow_clean_first);
	p = PARSE("run", "--shadow-clean-first", "off", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_false(p.o.shadow_clean_first);
	p = PARSE("run", "--shadow-clean-first", "sometimes", "img");
	assert_error_mentions(&p, "--shadow-clean-first", "sometimes");
	p = PARSE("run", "--shadow-large", "off", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_false(p.o.shadow_large);
	p = PARSE("run", "--shadow-large=on", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_true(p.o.shadow_large);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		p = PARSE("run", "--shadow-large", bad[i], "img");
		assert_error_mentions(&p, "--shadow-large", bad[i]);
	}
}

static void test_mmu_bad(void **state)
{
	struct parsed p = PARSE("run", "--mmu=bad", "img");

	(void)state;
	assert_error_mentions(&p, "--mmu", "'bad'");
	p = PARSE("run", "--mmu", "ept", "img");
	assert_error_mentions(&p, "--mmu", "'ept'");
	p = PARSE("run", "--mmu=", "img");
	assert_error_mentions(&p, "--mmu", "got ''");
}

/* ---- --mem ----------------------------------------------------------------- */

static u64 mem_ok(const char *form_eq, const char *value)
{
	struct parsed p = PARSE("run", form_eq, "img");
	struct parsed q;

	if (p.r != OPTIONS_RUN)
		fail_msg("'%s' rejected: %s", form_eq, p.err);
	q = PARSE("run", "--mem", value, "img");
	if (q.r != OPTIONS_RUN)
		fail_msg("'--mem %s' rejected: %s", value, q.err);
	assert_int_equal(p.o.mem_bytes, q.o.mem_bytes);
	assert_string_equal(q.o.image, "img");
	return p.o.mem_bytes;
}

static void test_mem_sizes(void **state)
{
	(void)state;
	assert_int_equal(mem_ok("--mem=512M", "512M"), 512 * MiB);
	assert_int_equal(mem_ok("--mem=4G", "4G"), 4 * GiB);
	assert_int_equal(mem_ok("--mem=2M", "2M"), 2 * MiB);
	assert_int_equal(mem_ok("--mem=1T", "1T"), 1 * TiB);
	assert_int_equal(mem_ok("--mem=4GiB", "4GiB"), 4 * GiB);
	assert_int_equal(mem_ok("--mem=4GB", "4GB"), 4 * GiB);
	assert_int_equal(mem_ok("--mem=2048K", "2048K"), 2 * MiB);
	assert_int_equal(mem_ok("--mem=0x20000000", "0x20000000"), 512 * MiB);
	assert_int_equal(mem_ok("--mem=1g", "1g"), 1 * GiB);
	assert_int_equal(mem_ok("--mem=2097152", "2097152"), 2 * MiB);
}

static void assert_mem_rejected(const char *value, const char *what)
{
	struct parsed p = PARSE("run", "--mem", value, "img");
	char quoted[64];

	snprintf(quoted, sizeof(quoted), "'%s'", value);
	assert_error_mentions(&p, "--mem", quoted);
	assert_error_mentions(&p, what, NULL);
}

static void test_mem_out_of_range(void **state)
{
	(void)state;
	assert_mem_rejected("1M", "out of range");
	assert_mem_rejected("1024K", "out of range");
	assert_mem_rejected("0", "out of range");
	assert_mem_rejected("2097151", "out of range");
	assert_mem_rejected("999T", "out of range");
	assert_mem_rejected("2T", "out of range");
	assert_mem_rejected("1025G", "out of range");
	assert_mem_rejected("20000000T", "out of range");
	assert_mem_rejected("99999999999999999999", "out of range");
}

static void test_mem_not_a_size(void **state)
{
	struct parsed p;

	(void)state;
	assert_mem_rejected("12Q", "not a size");
	assert_mem_rejected("", "not a size");
	assert_mem_rejected("M", "not a size");
	assert_mem_rejected("-1G", "not a size");
	assert_mem_rejected("1.5G", "not a size");
	assert_mem_rejected("4Gi", "not a size");
	assert_mem_rejected("4 G", "not a size");
	p = PARSE("run", "--mem=", "img");
	assert_error_mentions(&p, "--mem: '' is not a size", NULL);
}

/* ---- options_parse_size directly ------------------------------------------- */

static void test_parse_size(void **state)
{
	u64 v;

	(void)state;
	assert_int_equal(options_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(options_parse_size("65536", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(options_parse_size("1K", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(options_parse_size("1k", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(options_parse_size("1024K", &v), 0);
	assert_int_equal(v, 1 * MiB);
	assert_int_equal(options_parse_size("3m", &v), 0);
	assert_int_equal(v, 3 * MiB);
	assert_int_equal(options_parse_size("5G", &v), 0);
	assert_int_equal(v, 5 * GiB);
	assert_int_equal(options_parse_size("2t", &v), 0);
	assert_int_equal(v, 2 * TiB);
	assert_int_equal(options_parse_size("7MiB", &v), 0);
	assert_int_equal(v, 7 * MiB);
	assert_int_equal(options_parse_size("7MB", &v), 0);
	assert_int_equal(v, 7 * MiB);
	assert_int_equal(options_parse_size("0x10", &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(options_parse_size("0x10M", &v), 0);
	assert_int_equal(v, 16 * MiB);
	assert_int_equal(options_parse_size("18446744073709551615", &v), 0);
	assert_int_equal(v, UINT64_MAX);
	/* The largest T value that fits: (2^24 - 1) << 40. */
	assert_int_equal(options_parse_size("16777215T", &v), 0);
	assert_int_equal(v, 16777215ull << 40);
}

static void test_parse_size_errors(void **state)
{
	u64 v = 1234;

	(void)state;
	assert_int_equal(options_parse_size("20000000T", &v), -ERANGE);
	assert_int_equal(options_parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(options_parse_size("17179869184G", &v), -ERANGE);
	assert_int_equal(options_parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(options_parse_size("", &v), -EINVAL);
	assert_int_equal(options_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(options_parse_size("M", &v), -EINVAL);
	assert_int_equal(options_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(options_parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(options_parse_size("-5", &v), -EINVAL);
	assert_int_equal(options_parse_size(" 5", &v), -EINVAL);
	assert_int_equal(options_parse_size("5Gb", &v), -EINVAL);
	assert_int_equal(options_parse_size("5iB", &v), -EINVAL);
	assert_int_equal(options_parse_size("5B", &v), -EINVAL);
	assert_int_equal(options_parse_size("5GiBx", &v), -EINVAL);
	assert_int_equal(options_parse_size("0x", &v), -EINVAL);
	/* Errors leave the output alone. */
	assert_int_equal(v, 1234);
}

/* ---- --cmdline, --initrd --------------------------------------------------- */

static void test_cmdline_and_initrd(void **state)
{
	struct parsed p = PARSE("run", "--cmdline=console=ttyS0 quiet", "--initrd=rd.img", "k");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_string_equal(p.o.cmdline, "console=ttyS0 quiet");
	assert_string_equal(p.o.initrd, "rd.img");
	assert_string_equal(p.o.image, "k");

	p = PARSE("run", "--cmdline", "a=b", "--initrd", "rd2", "k");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_string_equal(p.o.cmdline, "a=b");
	assert_string_equal(p.o.initrd, "rd2");
	assert_string_equal(p.o.image, "k");

	/* A value that looks like an option is still the value. */
	p = PARSE("run", "--cmdline", "--mem=4G", "k");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_string_equal(p.o.cmdline, "--mem=4G");
	assert_int_equal(p.o.mem_bytes, 512 * MiB);

	/* An empty command line is allowed. */
	p = PARSE("run", "--cmdline=", "k");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_string_equal(p.o.cmdline, "");
}

/* ---- --stats, --stats-file -------------------------------------------------- */

static void test_stats(void **state)
{
	struct parsed p = PARSE("run", "--stats", "img");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.stats, STATS_TEXT);
	assert_null(p.o.stats_file);
	assert_string_equal(p.o.image, "img");

	p = PARSE("run", "--stats=text", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.stats, STATS_TEXT);

	p = PARSE("run", "--stats=json", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.stats, STATS_JSON);

	p = PARSE("run", "--stats=xml", "img");
	assert_error_mentions(&p, "--stats", "'xml'");

	/* The format is optional, so it only comes after '=': "--stats json" is an image. */
	p = PARSE("run", "--stats", "json", "img");
	assert_error_mentions(&p, "'img'", "one IMAGE only");
}

static void test_stats_file(void **state)
{
	struct parsed p = PARSE("run", "--stats-file=out.txt", "img");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.stats, STATS_TEXT);
	assert_string_equal(p.o.stats_file, "out.txt");

	p = PARSE("run", "--stats-file", "s.json", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.stats, STATS_TEXT);
	assert_string_equal(p.o.stats_file, "s.json");
	assert_string_equal(p.o.image, "img");

	/* It keeps a format chosen before or after it. */
	p = PARSE("run", "--stats=json", "--stats-file", "s.json", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.stats, STATS_JSON);
	p = PARSE("run", "--stats-file", "s.json", "--stats=json", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.stats, STATS_JSON);
	assert_string_equal(p.o.stats_file, "s.json");

	p = PARSE("run", "--stats-file=", "img");
	assert_error_mentions(&p, "'--stats-file=' needs a value", NULL);
}

/* ---- --trace ---------------------------------------------------------------- */

static void test_trace(void **state)
{
	struct parsed p = PARSE("run", "--trace", "img");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_true(p.o.trace);
	assert_null(p.o.trace_file);
	assert_string_equal(p.o.image, "img");

	p = PARSE("run", "--trace=trace.log", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_true(p.o.trace);
	assert_string_equal(p.o.trace_file, "trace.log");

	/* Like --stats, the file only follows '='. */
	p = PARSE("run", "--trace", "trace.log", "img");
	assert_error_mentions(&p, "'img'", "one IMAGE only");
}

/* ---- --debug-exit-port ------------------------------------------------------ */

static void test_debug_exit_port(void **state)
{
	struct parsed p = PARSE("run", "--debug-exit-port=0x501", "img");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.debug_exit_port, 0x501);

	p = PARSE("run", "--debug-exit-port", "0x501", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.debug_exit_port, 0x501);
	assert_string_equal(p.o.image, "img");

	p = PARSE("run", "--debug-exit-port", "1281", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.debug_exit_port, 1281);

	p = PARSE("run", "--debug-exit-port=0xffff", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.debug_exit_port, 0xffff);

	p = PARSE("run", "--debug-exit-port=0", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.debug_exit_port, 0);

	p = PARSE("run", "--debug-exit-port=none", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.debug_exit_port, -1);

	p = PARSE("run", "--debug-exit-port", "none", "img");
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.debug_exit_port, -1);
	assert_string_equal(p.o.image, "img");
}

static void test_debug_exit_port_bad(void **state)
{
	struct parsed p = PARSE("run", "--debug-exit-port=70000", "img");

	(void)state;
	assert_error_mentions(&p, "--debug-exit-port", "'70000'");
	p = PARSE("run", "--debug-exit-port", "0x10000", "img");
	assert_error_mentions(&p, "--debug-exit-port", "'0x10000'");
	p = PARSE("run", "--debug-exit-port", "abc", "img");
	assert_error_mentions(&p, "--debug-exit-port", "'abc'");
	p = PARSE("run", "--debug-exit-port=12x", "img");
	assert_error_mentions(&p, "--debug-exit-port", "'12x'");
	p = PARSE("run", "--debug-exit-port=-1", "img");
	assert_error_mentions(&p, "--debug-exit-port", "'-1'");
	p = PARSE("run", "--debug-exit-port=", "img");
	assert_error_mentions(&p, "--debug-exit-port", "''");
	p = PARSE("run", "--debug-exit-port=99999999999999999999999", "img");
	assert_error_mentions(&p, "--debug-exit-port", "not a port");
}

/* ---- -v ---------------------------------------------------------------------- */

static void test_verbose(void **state)
{
	struct parsed p = PARSE("run", "-v", "img", "-v", "--verbose");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_int_equal(p.o.verbose, 3);
	assert_string_equal(p.o.image, "img");
	p = PARSE("run", "-v", "-v", "img");
	assert_int_equal(p.o.verbose, 2);
	/* No bundling: "-vv" is not two -v. */
	p = PARSE("run", "-vv", "img");
	assert_error_mentions(&p, "unknown option '-vv'", NULL);
}

/* Everything at once, options after the image. */
static void test_all_options(void **state)
{
	struct parsed p = PARSE("run", "img.elf", "--mmu", "shadow", "--mem", "3G", "--cmdline",
				"x", "--initrd", "rd", "--stats=json", "--stats-file", "st",
				"--trace=tr", "--debug-exit-port", "none", "-v");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_string_equal(p.o.image, "img.elf");
	assert_int_equal(p.o.mmu, MMU_SHADOW);
	assert_int_equal(p.o.mem_bytes, 3 * GiB);
	assert_string_equal(p.o.cmdline, "x");
	assert_string_equal(p.o.initrd, "rd");
	assert_int_equal(p.o.stats, STATS_JSON);
	assert_string_equal(p.o.stats_file, "st");
	assert_true(p.o.trace);
	assert_string_equal(p.o.trace_file, "tr");
	assert_int_equal(p.o.debug_exit_port, -1);
	assert_int_equal(p.o.verbose, 1);
}

/* A dash alone is an image name (stdin by convention), not an option. */
static void test_dash_is_image(void **state)
{
	struct parsed p = PARSE("run", "-");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_string_equal(p.o.image, "-");
}

/* ---- --cpu ---------------------------------------------------------------- */

static void test_cpu(void **state)
{
	struct parsed p = PARSE("run", "--cpu=-xsave,-popcnt", "--cpu", "-avx512f", "k.elf");
	struct parsed d = PARSE("run", "k.elf");

	(void)state;
	assert_int_equal(p.r, OPTIONS_RUN);
	assert_true(cpu_features_hidden(&p.o.cpu_hide, "xsave"));
	assert_true(cpu_features_hidden(&p.o.cpu_hide, "popcnt"));
	assert_true(cpu_features_hidden(&p.o.cpu_hide, "avx512f")); /* repeated --cpu adds */
	assert_false(cpu_features_hidden(&p.o.cpu_hide, "avx"));
	assert_false(cpu_features_hidden(&p.o.cpu_hide, "no-such-feature"));
	/* the default hides nothing */
	assert_int_equal(d.r, OPTIONS_RUN);
	assert_false(cpu_features_hidden(&d.o.cpu_hide, "xsave"));
	for (size_t i = 0; i < ARRAY_SIZE(d.o.cpu_hide.bits); i++)
		assert_int_equal(d.o.cpu_hide.bits[i], 0);
}

static void test_cpu_bad(void **state)
{
	struct parsed p;

	(void)state;
	p = PARSE("run", "--cpu=-xsave,-bogus", "k.elf");
	assert_error_mentions(&p, "--cpu", "'bogus'");
	assert_error_mentions(&p, "-xsave,-bogus", NULL);
	p = PARSE("run", "--cpu=xsave", "k.elf");
	assert_error_mentions(&p, "--cpu", "'xsave'");
	p = PARSE("run", "--cpu=+xsave", "k.elf");
	assert_error_mentions(&p, "--cpu", "+xsave");
	p = PARSE("run", "--cpu=-xsave,", "k.elf");
	assert_error_mentions(&p, "--cpu", NULL);
	p = PARSE("run", "--cpu=-", "k.elf");
	assert_error_mentions(&p, "--cpu", NULL);
	p = PARSE("run", "--cpu=", "k.elf");
	assert_error_mentions(&p, "--cpu", NULL);
	p = PARSE("run", "k.elf", "--cpu");
	assert_error_mentions(&p, "--cpu", "needs a value");
}

/* A tiny error buffer is truncated, never overrun (ASan checks). */
static void test_small_error_buffer(void **state)
{
	char *argv[] = { (char *)"umbra", (char *)"run", (char *)"--bogus-option-name", NULL };
	struct umbra_options o;
	char err[8];

	(void)state;
	assert_int_equal(options_parse(3, argv, &o, err, sizeof(err)), OPTIONS_ERROR);
	assert_string_equal(err, "unknown");
}

int main(void)
{
#define T(f) cmocka_unit_test(f)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_help_and_version),
		T(test_usage_text),
		T(test_no_command),
		T(test_unknown_command),
		T(test_error_control_chars),
		T(test_unknown_top_level_option),
		T(test_no_image),
		T(test_two_images),
		T(test_double_dash),
		T(test_unknown_option),
		T(test_missing_value),
		T(test_mmu),
		T(test_mmu_bad),
		T(test_shadow_pool),
		T(test_shadow_prefetch),
		T(test_shadow_unsync),
		T(test_shadow_large),
		T(test_sensitive),
		T(test_chain),
		T(test_shadow_prefault),
		T(test_monitor_calls),
		T(test_scan_ahead),
		T(test_mem_sizes),
		T(test_mem_out_of_range),
		T(test_mem_not_a_size),
		T(test_parse_size),
		T(test_parse_size_errors),
		T(test_cmdline_and_initrd),
		T(test_stats),
		T(test_stats_file),
		T(test_trace),
		T(test_debug_exit_port),
		T(test_debug_exit_port_bad),
		T(test_verbose),
		T(test_all_options),
		T(test_dash_is_image),
		T(test_small_error_buffer),
		T(test_cpu),
		T(test_cpu_bad),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
