// SPDX-License-Identifier: MIT
/*
 * Command-line parsing (vmm/options.h).
 *
 *   umbra --help | --version
 *   umbra run [OPTIONS] IMAGE
 *
 * Every option accepts both "--opt=value" and "--opt value". The parser is
 * hand-written rather than getopt_long so that it keeps no global state (the
 * unit tests call it many times) and so that every error names the option.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umbra/log.h"
#include "vmm/options.h"

static const char usage_text[] =
	"Usage: umbra run [OPTIONS] IMAGE\n"
	"       umbra --help | --version\n"
	"\n"
	"Run an x86-64 guest under KVM. IMAGE is a Multiboot (v1) kernel, loaded as\n"
	"QEMU's -kernel does, a Linux bzImage (boot protocol 2.12+, entered at its\n"
	"64-bit entry point, or at its 32-bit one if it has none), or a 64-bit ELF\n"
	"kernel entered by Umbra's boot contract (include/umbra/bootinfo.h); the\n"
	"format is told by content.\n"
	"\n"
	"Options:\n"
	"  --mmu=shadow|hw      who virtualizes the guest MMU: shadow (default) runs the\n"
	"                       guest deprivileged on Umbra's shadow page tables; hw\n"
	"                       leaves paging to KVM (see README.md)\n"
	"  --shadow-pool SIZE   memory for shadow page tables in shadow mode (default\n"
	"                       16M; a multiple of 2M, 2M to 1020M)\n"
	"  --shadow-prefetch N  shadow mode: a fault also fills the empty sptes of its\n"
	"                       aligned group of N that the guest's tables allow, and\n"
	"                       a kernel fault's user page in the user view (0 or a\n"
	"                       power of two up to 512; default 8; 0 turns both off)\n"
	"  --shadow-unsync N    shadow mode: up to N guest page tables (4K PTEs) may go\n"
	"                       out of sync, so the guest writes them without a trap\n"
	"                       and the shadow catches up at its next TLB flush (0 to\n"
	"                       64; default 16; 0 keeps every table write-protected)\n"
	"  --shadow-large on|off\n"
	"                       shadow mode: map a guest large page's 2M frames with\n"
	"                       2M sptes where that is exact (no guest page table\n"
	"                       and no executable kernel page in the frame; default on)\n"
	"  --shadow-clean-first on|off\n"
	"                       shadow mode: take never-used (zero) pool pages before\n"
	"                       reused ones, whose old entries cost a store each to\n"
	"                       clear (default on)\n"
	"  --shadow-prefault=on|off\n"
	"                       shadow mode: when a guest #PF handler returns to the\n"
	"                       user instruction that faulted, map the page it filled\n"
	"                       in the same trap instead of taking a second fault\n"
	"                       (default on; off to measure it)\n"
	"  --mem SIZE           guest RAM, e.g. 512M, 4G (default 512M; 2M to 1T)\n"
	"  --cmdline STR        kernel command line\n"
	"  --initrd FILE        initial ramdisk (Linux initrd; module 1 for Multiboot)\n"
	"  --cpu=-FEAT[,-FEAT]  hide CPUID features from the guest, e.g.\n"
	"                       --cpu=-xsave,-popcnt,-avx512f (names as in\n"
	"                       /proc/cpuinfo; the table is in vmm/cpu_features.c)\n"
	"  --sensitive=auto|patch|iopl3\n"
	"                       shadow mode's cli/sti: iopl3 runs the guest kernel at\n"
	"                       IOPL 3 so they run natively (VMX/SVM hosts only);\n"
	"                       patch traps and emulates them (every host); auto\n"
	"                       (default) takes iopl3 where the host allows it\n"
	"  --chain=on|off       shadow mode: emulate the trapping instructions that follow\n"
	"                       one in the same trap (default on; off to measure it)\n"
	"  --chain-entry=on|off shadow mode: after an interrupt or exception taken in user\n"
	"                       mode, run the guest's entry code ahead in the VMM to its\n"
	"                       next trapping instruction (Linux: error_entry's swapgs)\n"
	"                       and chain it (default on; off to measure it)\n"
	"  --monitor-calls=on|off\n"
	"                       shadow mode: rewrite Linux's paravirt cli/sti/save_fl\n"
	"                       sites into calls to monitor code that keeps the virtual\n"
	"                       IF without a trap (patch strategy; under iopl3 only\n"
	"                       native_save_fl's pushf) (default on)\n"
	"  --scan-ahead=on|off  shadow mode: a helper thread decodes the kernel code pages\n"
	"                       around each one scanned before they run (default on\n"
	"                       where the VMM may use two CPUs; off: one thread)\n"
	"  --stats[=text|json]  print exit counts and wall time at exit (to stderr)\n"
	"  --stats-file FILE    write the statistics to FILE instead of stderr\n"
	"  --trace[=FILE]       log unknown port and MMIO accesses, and in shadow mode\n"
	"                       every trap, chained instruction and stats mark\n"
	"                       (to stderr or FILE)\n"
	"  --debug-exit-port N  port of the isa-debug-exit device (default 0xf4;\n"
	"                       'none' removes it)\n"
	"  -v, --verbose        more messages (repeat for debug output)\n"
	"  -h, --help           this help\n"
	"  -V, --version        print the version\n"
	"\n"
	"Console: COM1 is wired to stdin/stdout. When stdin is a terminal it is put in\n"
	"raw mode; type Ctrl-A x to stop the VM.\n"
	"\n"
	"Exit status:\n"
	"  0   the guest powered off or reset\n"
	"  odd the guest's own status through the debug-exit device: (v << 1) | 1\n"
	"  2   bad command line          4   bad or missing image\n"
	"  6   /dev/kvm unavailable       8   guest triple fault\n"
	"  10  instruction not emulated   12  internal error\n"
	"  14  feature not implemented    16  stopped by a signal or Ctrl-A x\n";

const char *options_usage(void)
{
	return usage_text;
}

/* A plain decimal number from 0 to `max` (no sign, space, base prefix or suffix). */
static bool parse_decimal(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long n;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end || errno || n > max)
		return false;
	*out = (unsigned)n;
	return true;
}

int options_parse_size(const char *s, u64 *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	switch (*end) {
	case '\0': break;
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default: return -EINVAL;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (shift && v > (~0ull >> shift))
		return -ERANGE;
	*out = (u64)v << shift;
	return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __printf(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* An `on|off` option's value into *off (true for off); false, with the error set, for another. */
static bool parse_off(const char *name, const char *v, bool *off, char *err, size_t errlen)
{
	if (strcmp(v, "on") && strcmp(v, "off")) {
		set_err(err, errlen, "%s: expected 'on' or 'off', got '%s'", name, v);
		return false;
	}
	*off = !strcmp(v, "off");
	return true;
}

/*
 * Match argv[*i] against "--name" / "--name=value". For options that take a
 * value, the value comes after '=' or from the next argument. Returns the
 * value (or "" for a flag without '='), NULL if argv[*i] is not this option.
 * *missing is set when a required value is absent.
 */
static const char *match(int argc, char **argv, int *i, const char *name, bool takes_value,
			 bool *missing)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (!takes_value)
		return "";
	if (*i + 1 >= argc) {
		*missing = true;
		return "";
	}
	return argv[++*i];
}

/* The `on|off` options of `run`: each sets its `no_` flag in struct umbra_options for off. */
static const struct on_off_option {
	const char *name;
	size_t no_flag; /* offsetof a bool */
} on_off_options[] = {
	{ "--shadow-prefault", offsetof(struct umbra_options, no_prefault) },
	{ "--chain-entry", offsetof(struct umbra_options, no_chain_entry) },
	{ "--chain", offsetof(struct umbra_options, no_chain) },
	{ "--scan-ahead", offsetof(struct umbra_options, no_scan_ahead) },
	{ "--monitor-calls", offsetof(struct umbra_options, no_calls) },
};

/* match() for any of on_off_options: its value, and the option in *opt; NULL if none. */
static const char *match_on_off(int argc, char **argv, int *i, const struct on_off_option **opt,
				bool *missing)
{
	for (size_t k = 0; k < sizeof(on_off_options) / sizeof(on_off_options[0]); k++) {
		const char *v = match(argc, argv, i, on_off_options[k].name, true, missing);

		if (v) {
			*opt = &on_off_options[k];
			return v;
		}
	}
	return NULL;
}

static enum options_result parse_run(int argc, char **argv, int i, struct umbra_options *o,
				     char *err, size_t errlen)
{
	for (; i < argc; i++) {
		const char *a = argv[i], *v;
		const struct on_off_option *on_off;
		bool missing = false;

		if (a[0] != '-' || !strcmp(a, "-")) {
			if (o->image) {
				set_err(err, errlen, "unexpected argument '%s' (one IMAGE only)",
					a);
				return OPTIONS_ERROR;
			}
			o->image = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			if (i + 1 < argc && !o->image)
				o->image = argv[++i];
			if (i + 1 < argc) {
				set_err(err, errlen, "unexpected argument '%s'", argv[i + 1]);
				return OPTIONS_ERROR;
			}
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return OPTIONS_HELP;
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			o->verbose++;
			continue;
		}
		if ((v = match(argc, argv, &i, "--mmu", true, &missing))) {
			if (missing)
				goto need_value;
			if (!strcmp(v, "hw"))
				o->mmu = MMU_HW;
			else if (!strcmp(v, "shadow"))
				o->mmu = MMU_SHADOW;
			else {
				set_err(err, errlen, "--mmu: expected 'hw' or 'shadow', got '%s'",
					v);
				return OPTIONS_ERROR;
			}
		} else if ((v = match(argc, argv, &i, "--shadow-pool", true, &missing))) {
			if (missing)
				goto need_value;
			if (options_parse_size(v, &o->shadow_pool_bytes) ||
			    o->shadow_pool_bytes < UMBRA_MIN_SHADOW_POOL ||
			    o->shadow_pool_bytes > UMBRA_MAX_SHADOW_POOL ||
			    o->shadow_pool_bytes % UMBRA_MIN_SHADOW_POOL) {
				set_err(err, errlen,
					"--shadow-pool: '%s' is not a multiple of 2M from 2M to "
					"1020M",
					v);
				return OPTIONS_ERROR;
			}
		} else if ((v = match(argc, argv, &i, "--shadow-prefetch", true, &missing))) {
			unsigned n;

			if (missing)
				goto need_value;
			if (!parse_decimal(v, UMBRA_MAX_SHADOW_PREFETCH, &n) || (n & (n - 1))) {
				set_err(err, errlen,
					"--shadow-prefetch: '%s' is not 0 or a power of two up to "
					"512",
					v);
				return OPTIONS_ERROR;
			}
			o->shadow_prefetch = n;
		} else if ((v = match(argc, argv, &i, "--shadow-unsync", true, &missing))) {
			unsigned n;

			if (missing)
				goto need_value;
			if (!parse_decimal(v, UMBRA_MAX_SHADOW_UNSYNC, &n)) {
				set_err(err, errlen,
					"--shadow-unsync: '%s' is not a number from 0 to 64", v);
				return OPTIONS_ERROR;
			}
			o->shadow_unsync = n;
		} else if ((v = match(argc, argv, &i, "--shadow-large", true, &missing))) {
			if (missing)
				goto need_value;
			if (strcmp(v, "on") && strcmp(v, "off")) {
				set_err(err, errlen, "--shadow-large: '%s' is not on or off", v);
				return OPTIONS_ERROR;
			}
			o->shadow_large = !strcmp(v, "on");
		} else if ((v = match(argc, argv, &i, "--shadow-clean-first", true, &missing))) {
			if (missing)
				goto need_value;
			if (strcmp(v, "on") && strcmp(v, "off")) {
				set_err(err, errlen, "--shadow-clean-first: '%s' is not on or off",
					v);
				return OPTIONS_ERROR;
			}
			o->shadow_clean_first = !strcmp(v, "on");
		} else if ((v = match(argc, argv, &i, "--mem", true, &missing))) {
			int r;

			if (missing)
				goto need_value;
			r = options_parse_size(v, &o->mem_bytes);
			if (r == -EINVAL) {
				set_err(err, errlen, "--mem: '%s' is not a size (try 512M or 4G)",
					v);
				return OPTIONS_ERROR;
			}
			if (r || o->mem_bytes < UMBRA_MIN_MEM || o->mem_bytes > UMBRA_MAX_MEM) {
				set_err(err, errlen, "--mem: '%s' is out of range (2M to 1T)", v);
				return OPTIONS_ERROR;
			}
		} else if ((v = match(argc, argv, &i, "--cmdline", true, &missing))) {
			if (missing)
				goto need_value;
			o->cmdline = v;
		} else if ((v = match(argc, argv, &i, "--initrd", true, &missing))) {
			if (missing || !*v)
				goto need_value;
			o->initrd = v;
		} else if ((v = match(argc, argv, &i, "--cpu", true, &missing))) {
			if (missing || !*v)
				goto need_value;
			if (!cpu_features_parse(v, &o->cpu_hide, err, errlen))
				return OPTIONS_ERROR;
		} else if ((v = match(argc, argv, &i, "--sensitive", true, &missing))) {
			if (missing)
				goto need_value;
			if (!strcmp(v, "auto"))
				o->sensitive = SENSITIVE_AUTO;
			else if (!strcmp(v, "patch"))
				o->sensitive = SENSITIVE_PATCH;
			else if (!strcmp(v, "iopl3"))
				o->sensitive = SENSITIVE_IOPL3;
			else {
				set_err(err, errlen,
					"--sensitive: expected 'auto', 'patch' or 'iopl3', got "
					"'%s'",
					v);
				return OPTIONS_ERROR;
			}
		} else if ((v = match_on_off(argc, argv, &i, &on_off, &missing))) {
			if (missing)
				goto need_value;
			if (!parse_off(on_off->name, v, (bool *)((char *)o + on_off->no_flag), err,
				       errlen))
				return OPTIONS_ERROR;
		} else if ((v = match(argc, argv, &i, "--stats-file", true, &missing))) {
			if (missing || !*v)
				goto need_value;
			o->stats_file = v;
			if (o->stats == STATS_NONE)
				o->stats = STATS_TEXT;
		} else if ((v = match(argc, argv, &i, "--stats", false, &missing))) {
			if (!*v || !strcmp(v, "text"))
				o->stats = STATS_TEXT;
			else if (!strcmp(v, "json"))
				o->stats = STATS_JSON;
			else {
				set_err(err, errlen, "--stats: expected 'text' or 'json', got '%s'",
					v);
				return OPTIONS_ERROR;
			}
		} else if ((v = match(argc, argv, &i, "--trace", false, &missing))) {
			o->trace = true;
			o->trace_file = *v ? v : NULL;
		} else if ((v = match(argc, argv, &i, "--debug-exit-port", true, &missing))) {
			char *end;
			unsigned long port;

			if (missing)
				goto need_value;
			if (!strcmp(v, "none")) {
				o->debug_exit_port = -1;
				continue;
			}
			errno = 0;
			port = strtoul(v, &end, 0);
			if (!*v || *end || errno || port > 0xffff) {
				set_err(err, errlen,
					"--debug-exit-port: '%s' is not a port (0-0xffff or none)",
					v);
				return OPTIONS_ERROR;
			}
			o->debug_exit_port = (int)port;
		} else {
			set_err(err, errlen, "unknown option '%s' (try umbra --help)", a);
			return OPTIONS_ERROR;
		}
		continue;
	need_value:
		set_err(err, errlen, "option '%s' needs a value", a);
		return OPTIONS_ERROR;
	}
	if (!o->image) {
		set_err(err, errlen, "no IMAGE given (usage: umbra run [OPTIONS] IMAGE)");
		return OPTIONS_ERROR;
	}
	return OPTIONS_RUN;
}

static enum options_result parse(int argc, char **argv, struct umbra_options *o, char *err,
				 size_t errlen);

/*
 * The messages quote what the user typed; a control character in it (an
 * argument with a newline) would break the one-line message umbra prints
 * and could drive the terminal, so each becomes '?'.
 */
enum options_result options_parse(int argc, char **argv, struct umbra_options *o, char *err,
				  size_t errlen)
{
	enum options_result r = parse(argc, argv, o, err, errlen);

	if (r == OPTIONS_ERROR)
		log_one_line(err);
	return r;
}

static enum options_result parse(int argc, char **argv, struct umbra_options *o, char *err,
				 size_t errlen)
{
	*o = (struct umbra_options){
		.mmu = MMU_SHADOW, /* shared/DESIGN.md: the mode this VMM is about */
		.shadow_pool_bytes = UMBRA_DEFAULT_SHADOW_POOL,
		.shadow_prefetch = UMBRA_DEFAULT_SHADOW_PREFETCH,
		.shadow_unsync = UMBRA_DEFAULT_SHADOW_UNSYNC,
		.shadow_large = true,
		.shadow_clean_first = true,
		.mem_bytes = UMBRA_DEFAULT_MEM,
		.stats = STATS_NONE,
		.debug_exit_port = UMBRA_DEFAULT_DEBUG_EXIT_PORT,
	};
	if (errlen)
		err[0] = '\0';
	if (argc < 2) {
		set_err(err, errlen,
			"no command given (usage: umbra run [OPTIONS] IMAGE; try --help)");
		return OPTIONS_ERROR;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
		return OPTIONS_HELP;
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
		return OPTIONS_VERSION;
	if (strcmp(argv[1], "run")) {
		if (argv[1][0] == '-')
			set_err(err, errlen, "unknown option '%s' (try umbra --help)", argv[1]);
		else
			set_err(err, errlen, "unknown command '%s' (the command is 'run')",
				argv[1]);
		return OPTIONS_ERROR;
	}
	return parse_run(argc, argv, 2, o, err, errlen);
}
