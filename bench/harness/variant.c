/* SPDX-License-Identifier: MIT */
/*
 * Shadow-mode variants (benchlib.h): `umbra-bench --variant NAME:OPTS` adds
 * a configuration "shadow-NAME" that runs umbra-shadow with OPTS on top, in
 * the same runs as the others, so that the share of one mechanism (the
 * prefault, trap chaining, 2 MiB sptes, ...) is measured side by side on
 * the same machine, alternating with the rest.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "bench/harness/benchlib.h"

int bench_parse_variant(const char *arg, struct bench_variant *v, char *err, size_t errlen)
{
	const char *colon = strchr(arg, ':');
	size_t nlen = colon ? (size_t)(colon - arg) : 0;
	char *p;

	memset(v, 0, sizeof(*v));
	if (!colon || !nlen || nlen > BENCH_VARIANT_NAME_MAX) {
		snprintf(err, errlen,
			 "'%s': expected NAME:OPTS, a name of 1 to %d letters, digits or dashes",
			 arg, BENCH_VARIANT_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < nlen; i++)
		if (!islower((unsigned char)arg[i]) && !isdigit((unsigned char)arg[i]) &&
		    arg[i] != '-') {
			snprintf(err, errlen,
				 "'%s': the name may hold lower-case letters, digits and dashes",
				 arg);
			return -1;
		}
	snprintf(v->name, sizeof(v->name), "shadow-%.*s", (int)nlen, arg);
	if (strlen(colon + 1) >= sizeof(v->buf)) {
		snprintf(err, errlen, "'%s': the options are longer than %zu bytes", arg,
			 sizeof(v->buf) - 1);
		return -1;
	}
	strcpy(v->buf, colon + 1);
	/* Options are separated by spaces (an option's value may hold commas: --cpu=-a,-b). */
	for (p = strtok(v->buf, " "); p; p = strtok(NULL, " ")) {
		if (strncmp(p, "--", 2) || !p[2]) {
			snprintf(err, errlen, "'%s': '%s' is not an umbra option (--NAME[=VALUE])",
				 arg, p);
			return -1;
		}
		if (!strncmp(p, "--mmu", 5)) {
			snprintf(err, errlen, "'%s': a variant is of shadow mode: no --mmu", arg);
			return -1;
		}
		if (v->nopts == BENCH_VARIANT_OPTS_MAX) {
			snprintf(err, errlen, "'%s': at most %d options", arg,
				 BENCH_VARIANT_OPTS_MAX);
			return -1;
		}
		v->opts[v->nopts++] = p;
	}
	if (!v->nopts) {
		snprintf(err, errlen, "'%s': no option after the name", arg);
		return -1;
	}
	return 0;
}
