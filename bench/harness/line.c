/* SPDX-License-Identifier: MIT */
/*
 * Parse the "BENCH <name> <iterations> <value>" lines (benchlib.h): testos
 * prints guest TSC cycles per iteration with two decimals ("5.37"), ubench
 * (bench/guest/ubench.c) nanoseconds per iteration marked "ns=5.37".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/benchlib.h"

/* A decimal u64 at *@p followed by a space or the end; advances *@p. */
static int parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	*out = v;
	*p = end;
	return 0;
}

/* A decimal "D+" or "D+.D+" at *@p; advances *@p. */
static int parse_decimal(const char **p, double *out)
{
	const char *s = *p, *q = s;

	while (*q >= '0' && *q <= '9')
		q++;
	if (q == s)
		return -1;
	if (*q == '.') {
		const char *frac = ++q;

		while (*q >= '0' && *q <= '9')
			q++;
		if (q == frac)
			return -1;
	}
	*out = strtod(s, NULL);
	*p = q;
	return 0;
}

int bench_parse_line(const char *line, struct bench_line *out)
{
	const char *p = line, *name;
	size_t n;
	struct bench_line b;

	if (strncmp(p, "BENCH ", 6))
		return -1;
	p += 6;
	name = p;
	while (*p && *p != ' ' && *p != '\n' && *p != '\r')
		p++;
	n = (size_t)(p - name);
	if (!n || n >= sizeof(b.name) || *p != ' ')
		return -1;
	memcpy(b.name, name, n);
	b.name[n] = '\0';
	p++;
	if (parse_u64(&p, &b.iters) || *p != ' ' || !b.iters)
		return -1;
	p++;
	b.unit = BENCH_CYCLES;
	if (!strncmp(p, "ns=", 3)) {
		b.unit = BENCH_NS;
		p += 3;
	}
	if (parse_decimal(&p, &b.per_iter))
		return -1;
	if (*p == '\r')
		p++;
	if (*p == '\n')
		p++;
	if (*p)
		return -1;
	*out = b;
	return 0;
}
