/* SPDX-License-Identifier: MIT */
/*
 * Logging and internal-invariant checks.
 *
 * pr_err/pr_warn/pr_info/pr_debug print "umbra: " plus the message to stderr
 * when the runtime level (log_level) allows. BUG_ON reports file:line and
 * aborts: it is for broken *internal* invariants only, never for guest or user
 * mistakes (those get an error return and a documented exit status).
 */
#ifndef UMBRA_LOG_H
#define UMBRA_LOG_H

#include "umbra/types.h"

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_level;

void log_printf(enum log_level lvl, const char *fmt, ...) __printf(2, 3);
/*
 * Make `s` one line that cannot drive a terminal: each control character
 * (newline, escape, DEL) becomes '?'. log_printf does it to every message.
 */
void log_one_line(char *s);
void bug_report(const char *file, int line, const char *cond) __attribute__((noreturn));
void warn_report(const char *file, int line, const char *cond);

#define pr_err(...)   log_printf(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  log_printf(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_printf(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)

#define BUG_ON(cond)                                           \
	do {                                                   \
		if (cond)                                      \
			bug_report(__FILE__, __LINE__, #cond); \
	} while (0)

#define WARN_ON_ONCE(cond)                                      \
	({                                                      \
		static bool warned_;                            \
		bool c_ = !!(cond);                             \
		if (c_ && !warned_) {                           \
			warned_ = true;                         \
			warn_report(__FILE__, __LINE__, #cond); \
		}                                               \
		c_;                                             \
	})

#endif /* UMBRA_LOG_H */
