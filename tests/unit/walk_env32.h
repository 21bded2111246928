/* SPDX-License-Identifier: MIT */
/*
 * The fixture test_walk32.c (32-bit paging) and test_walkpae.c (PAE paging)
 * share: a malloc'd "guest RAM" of WALK_ENV_RAM_SIZE bytes at gpa 0, the
 * walker's view of it, and a walk or an expected #PF at a 32-bit gva. Each
 * test's setup() fills the control registers and its tables.
 */
#ifndef UMBRA_TESTS_WALK_ENV32_H
#define UMBRA_TESTS_WALK_ENV32_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shadow/shadow.h"

#define WALK_ENV_RAM_SIZE (8 * MiB)

struct env {
	u8 *ram;
	struct walk_mem mem;
	struct walk_ctl ctl;
};

static void *test_gpa_to_hva(void *opaque, gpa_t where, size_t len)
{
	struct env *env = opaque;

	if (where.v >= WALK_ENV_RAM_SIZE || len > WALK_ENV_RAM_SIZE - where.v)
		return NULL;
	return env->ram + where.v;
}

/* Zeroed guest RAM and the walker's view of it; the caller sets env->ctl. */
static struct env *env_new(void)
{
	struct env *env = calloc(1, sizeof(*env));

	env->ram = calloc(1, WALK_ENV_RAM_SIZE);
	env->mem = (struct walk_mem){ .opaque = env, .gpa_to_hva = test_gpa_to_hva };
	return env;
}

static int teardown(void **state)
{
	struct env *env = *state;

	free(env->ram);
	free(env);
	return 0;
}

static enum walk_result do_walk(struct env *env, struct guest_walk *walk, u32 va, u32 access,
				u32 flags)
{
	return walk_guest(paging_mode_select(&env->ctl), &env->mem, &env->ctl, gva(va), access,
			  flags, walk);
}

/* A walk that sets A/D must fault with exactly this #PF. */
static void expect_pf(struct env *env, u32 va, u32 access, u32 error_code)
{
	struct guest_walk walk;

	assert_int_equal(do_walk(env, &walk, va, access, WALK_SET_AD), WALK_FAULT);
	assert_int_equal(walk.fault.vector, X86_EXC_PF);
	assert_int_equal(walk.fault.error_code, error_code);
	assert_int_equal(walk.fault.cr2.v, va);
}

#endif /* UMBRA_TESTS_WALK_ENV32_H */
