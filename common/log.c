// SPDX-License-Identifier: MIT
/* Logging and invariant reports: see include/umbra/log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "umbra/log.h"

enum log_level log_level = LOG_WARN;

void log_one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/*
 * One message, one line. Messages quote what came from outside: a file
 * name, an option, a guest's string. A control character in one (a path
 * with a newline, an escape sequence) would break the line or drive the
 * terminal, so each is printed as '?'. A message longer than the buffer
 * ends in "...".
 */
void log_printf(enum log_level lvl, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	int n;

	if (lvl > log_level)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	log_one_line(msg);
	fprintf(stderr, "umbra: %s%s\n", msg, (size_t)n >= sizeof(msg) ? "..." : "");
}

void bug_report(const char *file, int line, const char *cond)
{
	fprintf(stderr, "umbra: BUG at %s:%d: %s\n", file, line, cond);
	abort();
}

void warn_report(const char *file, int line, const char *cond)
{
	fprintf(stderr, "umbra: WARNING at %s:%d: %s\n", file, line, cond);
}
