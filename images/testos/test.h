/* SPDX-License-Identifier: MIT */
/*
 * The test framework. A test is a function registered with TEST(name) in the
 * .tests section (the registry; run in link order, then definition order).
 * Each prints exactly one line: "TEST <name> PASS", "TEST <name> FAIL
 * <expected> <seen>" (test_fail, which also ends the test) or "TEST <name>
 * SKIP <why>" (test_skip). Command line: test=<prefix>[,<prefix>...] runs
 * only the tests whose names start with one of the prefixes; skip=<prefix>,...
 * leaves those out (reported as SKIP); "times" adds a TIME line per test.
 * After every test the runner restores the kernel's baseline state (CR0,
 * CR3, CR4, EFER, RFLAGS, the user half of the kernel's address space).
 */
#ifndef TESTOS_TEST_H
#define TESTOS_TEST_H

#include <stdint.h>

#include "trap.h"

struct test {
	const char *name;
	void (*fn)(void);
};

#define TEST(tname)                                                                              \
	static void tname##_run(void);                                                           \
	static const struct test tname##_desc                                                    \
		__attribute__((used, section(".tests"), aligned(16))) = { #tname, tname##_run }; \
	static void tname##_run(void)

extern const char *test_cmdline;

__attribute__((noreturn, format(printf, 1, 2))) void test_fail(const char *fmt, ...);
__attribute__((noreturn)) void test_skip(const char *why);
/* An unexpected exception during a test: fail it and resume the runner. */
int test_abort_from_trap(struct trap_frame *f);
__attribute__((noreturn)) void tests_run(const char *cmdline);

#define CHECK_EQ(what, expected, seen)                                             \
	do {                                                                       \
		uint64_t e_ = (uint64_t)(expected), s_ = (uint64_t)(seen);         \
		if (e_ != s_)                                                      \
			test_fail("%s: expected 0x%lx saw 0x%lx", (what), e_, s_); \
	} while (0)
#define CHECK(cond, ...)                        \
	do {                                    \
		if (!(cond))                    \
			test_fail(__VA_ARGS__); \
	} while (0)

/*
 * With IF=0: exactly one timer expiry, held (in the IRR or by the VMM),
 * and none due after it (tests/t72_irqflag.c).
 */
void one_tick_held(const char *where);

/* @c caught exception @vec with error code @err (and CR2 @cr2 for #PF). */
void expect_fault(const struct catch *c, uint64_t vec, uint64_t err, uint64_t cr2,
		  const char *what);
void expect_no_fault(const struct catch *c, const char *what);

/* The test window: a region of the user half each test may map freely (PML4 slot 32). */
#define TWIN 0x0000100000000000ULL

/* Test data: a frame whose 64-bit word i holds pat(tag, i). */
static inline uint64_t pat(uint64_t tag, uint64_t i)
{
	return 0x5a00000000000000ULL | (tag << 24) | i;
}
uint64_t frame_new(uint64_t tag);
static inline uint64_t peek(uint64_t va)
{
	return *(volatile uint64_t *)va;
}
static inline void poke(uint64_t va, uint64_t v)
{
	*(volatile uint64_t *)va = v;
}
/* Map one 4 KiB page in the kernel's address space (user half). */
void map4k(uint64_t va, uint64_t pa, uint64_t flags);
/* The entry of @level translating @va in the kernel's address space (NULL if none). */
uint64_t *kentry(uint64_t va, int level);
/* Read @va expecting no fault; fails the test on a fault. */
uint64_t read_checked(uint64_t va, const char *what);

#endif /* TESTOS_TEST_H */
