// SPDX-License-Identifier: MIT
/* Logging and invariant reports: see include/umbra/log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "umbra/log.h"

enum log_level log_level = LOG_WARN;

void log_printf(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > log_level)
		return;
	fputs("umbra: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
