/* SPDX-License-Identifier: MIT */
/*
 * CR4 against CPUID (SDM Vol. 3A §2.5, Vol. 2B MOV to CR4): setting a CR4
 * bit whose feature CPUID does not offer is #GP(0), and CR4 keeps its
 * value. Shadow mode hides features it cannot honour (VME, DE, PKU, LA57:
 * vmm/cpu_features.c) and must then refuse their bits as such a CPU does;
 * hw mode's KVM does the same from the CPUID it was given. Only absent
 * features are tried: setting a present one could change what the rest of
 * the suite runs on.
 */
#include "../arch.h"
#include "../test.h"

#define CR4_VME_BIT	 (1ull << 0)
#define CR4_PVI_BIT	 (1ull << 1)
#define CR4_TSD_BIT	 (1ull << 2)
#define CR4_DE_BIT	 (1ull << 3)
#define CR4_UMIP_BIT	 (1ull << 11)
#define CR4_FSGSBASE_BIT (1ull << 16)
#define CR4_PCIDE_BIT	 (1ull << 17)
#define CR4_OSXSAVE_BIT	 (1ull << 18)
#define CR4_SMEP_BIT	 (1ull << 20)
#define CR4_SMAP_BIT	 (1ull << 21)
#define CR4_PKE_BIT	 (1ull << 22)

/* A CR4 bit and the CPUID leaf, register (0 EAX .. 3 EDX) and bit that offer it. */
struct cr4_feature {
	const char *name;
	uint64_t cr4;
	uint32_t leaf, reg, bit;
};

static const struct cr4_feature features[] = {
	{ "VME", CR4_VME_BIT, 1, 3, 1 },      { "PVI", CR4_PVI_BIT, 1, 3, 1 },
	{ "TSD", CR4_TSD_BIT, 1, 3, 4 },      { "DE", CR4_DE_BIT, 1, 3, 2 },
	{ "UMIP", CR4_UMIP_BIT, 7, 2, 2 },    { "FSGSBASE", CR4_FSGSBASE_BIT, 7, 1, 0 },
	{ "PCIDE", CR4_PCIDE_BIT, 1, 2, 17 }, { "OSXSAVE", CR4_OSXSAVE_BIT, 1, 2, 26 },
	{ "SMEP", CR4_SMEP_BIT, 7, 1, 7 },    { "SMAP", CR4_SMAP_BIT, 7, 1, 20 },
	{ "PKE", CR4_PKE_BIT, 7, 2, 3 },
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
	unsigned tried = 0;

	for (unsigned i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		const struct cr4_feature *f = &features[i];
		struct catch c;

		if (offered(f) || (before & f->cr4))
			continue;
		tried++;
		try_write_cr4(&c, before | f->cr4);
		if (!c.caught)
			write_cr4(before); /* take it back before failing */
		CHECK(c.caught, "CR4.%s set without CPUID offering it: no #GP", f->name);
		CHECK_EQ("the fault's vector", VEC_GP, c.vector);
		CHECK_EQ("its error code", 0, c.error);
		CHECK_EQ("CR4 after the #GP", before, read_cr4());
	}
	if (!tried)
		test_skip("CPUID offers every CR4 feature tried here");
}
