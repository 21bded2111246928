/* SPDX-License-Identifier: MIT */
/*
 * A fixture for the SIMD fallback's tests (included after emu_env.h): a
 * vCPU XSAVE area in the host's own layout of components 2-7 (CPUID leaf
 * 0xd), big enough for AVX-512 state, with the guest's XCR0 chosen by the
 * test. emu_env.h's own area holds only x87, SSE and AVX.
 */
#ifndef UMBRA_TESTS_EMU_HOST_XSTATE_H
#define UMBRA_TESTS_EMU_HOST_XSTATE_H

#include <cpuid.h>

static struct {
	u8 vcpu[4096], copy[4096];
	struct emu_xstate xs;
	u32 off[8]; /* where component i is in vcpu[] */
	u64 xcr0;   /* what the guest's xgetbv reads */
} host_xstate;

static inline struct emu_xstate *host_xstate_get(void *opaque)
{
	(void)opaque;
	memcpy(host_xstate.copy, host_xstate.vcpu, sizeof(host_xstate.copy));
	host_xstate.xs.area = host_xstate.copy;
	return &host_xstate.xs;
}

static inline bool host_xstate_put(void *opaque, const struct emu_xstate *xs)
{
	(void)opaque;
	(void)xs;
	memcpy(host_xstate.vcpu, host_xstate.copy, sizeof(host_xstate.vcpu));
	return true;
}

static inline bool host_xstate_xcr(void *opaque, u32 index, u64 *value)
{
	(void)opaque;
	*value = host_xstate.xcr0;
	return index == 0;
}

/* Give env's vCPU the host-layout area, MXCSR at its default, XINUSE = xcr0. */
static inline void use_host_xstate(struct env *env, u64 xcr0)
{
	unsigned a, b, c, d;

	memset(&host_xstate, 0, sizeof(host_xstate));
	host_xstate.xcr0 = xcr0;
	host_xstate.xs.size = sizeof(host_xstate.vcpu);
	for (unsigned i = 2; i < 8; i++) {
		if (!__get_cpuid_count(0xd, i, &a, &b, &c, &d))
			continue;
		host_xstate.xs.offset[i] = host_xstate.off[i] = b;
		host_xstate.xs.len[i] = a;
	}
	memcpy(host_xstate.vcpu + 24, &(u32){ 0x1f80 }, 4);
	memcpy(host_xstate.vcpu + 512, &xcr0, 8);
	env->ops.get_xstate = host_xstate_get;
	env->ops.put_xstate = host_xstate_put;
	env->ops.read_xcr = host_xstate_xcr;
}

static inline bool host_has_avx512f(void)
{
	unsigned a, b, c, d;

	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 16));
}

/* The test process's own MXCSR: the fallback must leave it as it was. */
static inline u32 host_mxcsr(void)
{
	u32 v;

	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

#define NEED_AVX512()                                                      \
	do {                                                               \
		if (!host_has_avx512f()) {                                 \
			print_message("SKIP: the host has no AVX-512F\n"); \
			skip();                                            \
		}                                                          \
	} while (0)

#endif /* UMBRA_TESTS_EMU_HOST_XSTATE_H */
