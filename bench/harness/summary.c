/* SPDX-License-Identifier: MIT */
/* Median and spread of a handful of samples, and ratios that tolerate zero (benchlib.h). */
#include <math.h>
#include <stdlib.h>

#include "bench/harness/benchlib.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct bench_summary bench_summarize(const double *samples, unsigned n)
{
	struct bench_summary s = { .n = 0, .median = NAN, .min = NAN, .max = NAN };
	double *v;
	unsigned k = 0;

	if (!n || !(v = malloc(n * sizeof(*v))))
		return s;
	for (unsigned i = 0; i < n; i++)
		if (!isnan(samples[i]))
			v[k++] = samples[i];
	if (k) {
		qsort(v, k, sizeof(*v), cmp_double);
		s.n = k;
		s.min = v[0];
		s.max = v[k - 1];
		s.median = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	}
	free(v);
	return s;
}

double bench_spread_pct(const struct bench_summary *s)
{
	if (!s->n || s->median == 0)
		return NAN;
	return (s->max - s->min) / s->median * 100.0;
}

double bench_ratio(double num, double den)
{
	if (isnan(num) || isnan(den) || den == 0)
		return NAN;
	return num / den;
}
