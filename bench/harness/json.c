/* SPDX-License-Identifier: MIT */
/*
 * A purpose-built JSON scanner for umbra's --stats=json output (benchlib.h):
 * it walks the text once, following a dotted key path through nested objects,
 * and stops at the number it was asked for. Strings are compared raw (umbra's
 * keys need no escapes); arrays are skipped; nesting is limited to 32 levels.
 * The "marks" array is read element by element: the scanner finds where it
 * starts, and each element is an object searched like the whole text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/benchlib.h"

#define MAX_DEPTH 32

enum { SCAN_ERR = -1, SCAN_OK = 0, SCAN_FOUND = 1 };

struct scan {
	const char *p;
	double val;
	int locate; /* stop at the value found (s->p), whatever it is */
};

static void skip_ws(struct scan *s)
{
	while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
		s->p++;
}

/* A string at s->p (which is at '"'): its raw text in [*start, *start + *len). */
static int scan_string(struct scan *s, const char **start, size_t *len)
{
	const char *q = s->p + 1;

	if (*s->p != '"')
		return SCAN_ERR;
	*start = q;
	while (*q && *q != '"') {
		if (*q == '\\' && q[1])
			q++;
		q++;
	}
	if (*q != '"')
		return SCAN_ERR;
	*len = (size_t)(q - *start);
	s->p = q + 1;
	return SCAN_OK;
}

static int scan_number(struct scan *s, double *out)
{
	char *end;

	if (*s->p != '-' && (*s->p < '0' || *s->p > '9'))
		return SCAN_ERR;
	*out = strtod(s->p, &end);
	if (end == s->p)
		return SCAN_ERR;
	s->p = end;
	return SCAN_OK;
}

static int scan_value(struct scan *s, const char *want, unsigned depth);

/* An object at s->p ('{'); @want is the rest of the path, or NULL. */
static int scan_object(struct scan *s, const char *want, unsigned depth)
{
	size_t comp = want ? strcspn(want, ".") : 0;

	s->p++;
	skip_ws(s);
	if (*s->p == '}') {
		s->p++;
		return SCAN_OK;
	}
	for (;;) {
		const char *key, *sub = NULL;
		size_t len;
		int r;

		skip_ws(s);
		if (scan_string(s, &key, &len))
			return SCAN_ERR;
		skip_ws(s);
		if (*s->p++ != ':')
			return SCAN_ERR;
		skip_ws(s);
		if (want && len == comp && !memcmp(key, want, len)) {
			if (!want[comp] && s->locate)
				return SCAN_FOUND;
			if (!want[comp])
				return scan_number(s, &s->val) ? SCAN_ERR : SCAN_FOUND;
			sub = want + comp + 1;
		}
		r = scan_value(s, sub, depth + 1);
		if (r)
			return r;
		skip_ws(s);
		if (*s->p == '}') {
			s->p++;
			return SCAN_OK;
		}
		if (*s->p++ != ',')
			return SCAN_ERR;
	}
}

static int scan_array(struct scan *s, unsigned depth)
{
	s->p++;
	skip_ws(s);
	if (*s->p == ']') {
		s->p++;
		return SCAN_OK;
	}
	for (;;) {
		int r = scan_value(s, NULL, depth + 1);

		if (r)
			return r;
		skip_ws(s);
		if (*s->p == ']') {
			s->p++;
			return SCAN_OK;
		}
		if (*s->p++ != ',')
			return SCAN_ERR;
	}
}

static int scan_value(struct scan *s, const char *want, unsigned depth)
{
	static const char *const literals[] = { "true", "false", "null" };
	const char *str;
	size_t len;
	double d;

	if (depth > MAX_DEPTH)
		return SCAN_ERR;
	skip_ws(s);
	switch (*s->p) {
	case '{': return scan_object(s, want, depth);
	case '[': return scan_array(s, depth);
	case '"': return scan_string(s, &str, &len);
	default:
		for (unsigned i = 0; i < 3; i++) {
			len = strlen(literals[i]);
			if (!strncmp(s->p, literals[i], len)) {
				s->p += len;
				return SCAN_OK;
			}
		}
		return scan_number(s, &d);
	}
}

int bench_json_number(const char *json, const char *path, double *out)
{
	struct scan s = { .p = json };

	if (!json || !path || !*path)
		return -1;
	skip_ws(&s);
	if (*s.p != '{' || scan_value(&s, path, 0) != SCAN_FOUND)
		return -1;
	*out = s.val;
	return 0;
}

/* Number @key of the object at @obj, or NAN. */
static double member(const char *obj, const char *key)
{
	double v;

	return bench_json_number(obj, key, &v) ? NAN : v;
}

int bench_json_marks(const char *json, struct bench_mark *out, unsigned cap)
{
	struct scan s = { .p = json, .locate = 1 };
	unsigned n = 0;

	if (!json)
		return -1;
	skip_ws(&s);
	if (*s.p != '{' || scan_value(&s, "marks", 0) != SCAN_FOUND || *s.p != '[')
		return -1;
	s.p++;
	skip_ws(&s);
	if (*s.p == ']')
		return 0;
	for (;;) {
		const char *obj = s.p;
		double label;

		if (*obj != '{' || scan_value(&s, NULL, 1))
			return -1;
		label = member(obj, "label");
		if (!(label >= 0 && label <= UINT32_MAX) || label != floor(label))
			return -1;
		if (n < cap)
			out[n++] = (struct bench_mark){ .label = (uint32_t)label,
							.t_s = member(obj, "t_s"),
							.exits = member(obj, "exits"),
							.traps = member(obj, "traps") };
		skip_ws(&s);
		if (*s.p == ']')
			return (int)n;
		if (*s.p++ != ',')
			return -1;
		skip_ws(&s);
	}
}

int bench_mark_delta(const struct bench_mark *marks, unsigned n, unsigned k, struct bench_mark *out)
{
	uint64_t start = 2 * (uint64_t)k;

	for (unsigned i = 0; i + 1 < n; i++) {
		const struct bench_mark *a = &marks[i], *b = &marks[i + 1];

		if (a->label != start || b->label != start + 1)
			continue;
		*out = (struct bench_mark){ .label = a->label,
					    .t_s = b->t_s - a->t_s,
					    .exits = b->exits - a->exits,
					    .traps = b->traps - a->traps };
		return 0;
	}
	return -1;
}
