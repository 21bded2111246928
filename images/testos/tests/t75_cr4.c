/* SPDX-License-Identifier: MIT */
/*
 * CR4 against CPUID (SDM Vol. 3A §2.5, Vol. 2B MOV to CR4): setting a CR4
 * bit whose feature CPUID does not offer is #GP(0), and CR4 keeps its
 * value. Shadow mode hides features it cannot honour (PKU among them:
 * vmm/cpu_features.c) and must then refuse their bits as such a CPU does;
 * hw mode's KVM does the same from the CPUID it was given, for the bits
 * listed here (its __cr4_reserved_bits). Not VME, PVI, TSD or DE: KVM lets
 * those through whatever CPUID says, so the modes would differ (shadow mode
 * refuses them; tests/unit/test_cpu_features.c). Only absent features are
 * tried: setting a present one could change what the rest of the suite runs
 * on; a CPU that offers all of them has nothing to refuse.
 */
#include "../arch.h"
#include "../test.h"

/* A CR4 bit and the CPUID leaf, register (0 EAX .. 3 EDX) and bit that offer it. */
struct cr4_feature {
	const char *name;
	uint64_t cr4;
	uint32_t leaf, reg, bit;
};

static const struct cr4_feature features[] = {
	{ "UMIP", 1ull << 11, 7, 2, 2 },   { "FSGSBASE", 1ull << 16, 7, 1, 0 },
	{ "PCIDE", 1ull << 17, 1, 2, 17 }, { "OSXSAVE", 1ull << 18, 1, 2, 26 },
	{ "SMEP", 1ull << 20, 7, 1, 7 },   { "SMAP", 1ull << 21, 7, 1, 20 },
	{ "PKE", 1ull << 22, 7, 2, 3 },
};

static int offered(const struct cr4_feature *f)
{
	uint32_t r[4], max;

	cpuid(0, 0, &max, &r[1], &r[2], &r[3]);
	if (f->leaf > max)
		return 0;
	cpuid(f->leaf, 0, &r[0], &r[1], &r[2], &r[3]);
	return (r[f->reg] >> f->bit) & 1;
}

/* Write CR4 under a catch: @c records whether and how it faulted. */
static void try_write_cr4(struct catch *c, uint64_t v)
{
	if (CATCH(c))
		write_cr4(v);
	catch_disarm();
}

TEST(cr4_absent_feature_gp)
{
	uint64_t before = read_cr4();

	for (unsigned i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		const struct cr4_feature *f = &features[i];
		struct catch c;

		if (offered(f) || (before & f->cr4))
			continue;
		try_write_cr4(&c, before | f->cr4);
		if (!c.caught)
			write_cr4(before); /* take it back before failing */
		CHECK(c.caught, "CR4.%s set without CPUID offering it: no #GP", f->name);
		CHECK_EQ("the fault's vector", VEC_GP, c.vector);
		CHECK_EQ("its error code", 0, c.error);
		CHECK_EQ("CR4 after the #GP", before, read_cr4());
	}
}
