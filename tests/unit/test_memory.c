/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for guest-physical memory (vmm/memory.c): the PC layout for
 * several RAM sizes, the gpa -> hva bounds check (every edge, and sums that
 * would overflow), the usable-RAM figure and the memory map handed to guests.
 * The RAM is MAP_NORESERVE, so even the 5 GiB layout costs only the pages a
 * test touches.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/memory.h"

/* PC layout constants, spelled out independently of memory.h. */
#define LOW_END	   0xa0000ull /* 640 KiB */
#define EBDA	   0x9fc00ull /* top 1 KiB of low RAM */
#define ROM_START  0xc0000ull /* the read-only window: option-ROM space... */
#define BIOS_START 0xe0000ull /* ... then the BIOS area */
#define ONE_MIB	   0x100000ull
#define HOLE_START 0xc0000000ull /* 3 GiB */
#define FOUR_GIB   0x100000000ull

struct region_want {
	u64 base, size;
	u64 hva_off; /* from mem->ram, or from mem->rom for the ROM */
	enum mem_kind kind;
};

static void check_regions(const struct guest_mem *m, const struct region_want *w, unsigned n)
{
	assert_int_equal(m->nr_regions, n);
	for (unsigned i = 0; i < n; i++) {
		const struct mem_region *r = &m->regions[i];
		u8 *base = w[i].kind == MEM_ROM ? m->rom : m->ram;

		assert_int_equal(r->base.v, w[i].base);
		assert_int_equal(r->size, w[i].size);
		assert_int_equal(r->kind, w[i].kind);
		assert_ptr_equal(r->hva, base + w[i].hva_off);
	}
}

static void test_layout_512m(void **state)
{
	struct guest_mem m;
	const struct region_want want[] = {
		{ 0, LOW_END, 0, MEM_RAM },
		{ LOW_END, ROM_START - LOW_END, LOW_END, MEM_VGA },
		{ ROM_START, 0x40000, 0, MEM_ROM },
		{ ONE_MIB, 512 * MiB - ONE_MIB, ONE_MIB, MEM_RAM },
	};

	(void)state;
	assert_int_equal(guest_mem_init(&m, 512 * MiB), 0);
	assert_int_equal(m.ram_bytes, 512 * MiB);
	assert_non_null(m.ram);
	assert_non_null(m.rom);
	assert_int_equal(m.low_ram_end, 512 * MiB);
	assert_int_equal(m.high_ram_end, 0);
	check_regions(&m, want, ARRAY_SIZE(want));
	guest_mem_destroy(&m);
	assert_null(m.ram);
	assert_null(m.rom);
	assert_int_equal(m.nr_regions, 0);
}

static void test_layout_3g_exactly(void **state)
{
	struct guest_mem m;
	const struct region_want want[] = {
		{ 0, LOW_END, 0, MEM_RAM },
		{ LOW_END, ROM_START - LOW_END, LOW_END, MEM_VGA },
		{ ROM_START, 0x40000, 0, MEM_ROM },
		{ ONE_MIB, HOLE_START - ONE_MIB, ONE_MIB, MEM_RAM },
	};

	(void)state;
	assert_int_equal(guest_mem_init(&m, 3 * GiB), 0);
	assert_int_equal(m.low_ram_end, HOLE_START);
	assert_int_equal(m.high_ram_end, 0);
	check_regions(&m, want, ARRAY_SIZE(want));
	/* The last byte below the hole is RAM; the hole is not. */
	assert_ptr_equal(gpa_to_hva(&m, gpa(HOLE_START - 1), 1), m.ram + HOLE_START - 1);
	assert_null(gpa_to_hva(&m, gpa(HOLE_START), 1));
	assert_null(gpa_to_hva(&m, gpa(FOUR_GIB), 1));
	guest_mem_destroy(&m);
}

static void test_layout_5g(void **state)
{
	struct guest_mem m;
	const struct region_want want[] = {
		{ 0, LOW_END, 0, MEM_RAM },
		{ LOW_END, ROM_START - LOW_END, LOW_END, MEM_VGA },
		{ ROM_START, 0x40000, 0, MEM_ROM },
		{ ONE_MIB, HOLE_START - ONE_MIB, ONE_MIB, MEM_RAM },
		{ FOUR_GIB, 2 * GiB, HOLE_START, MEM_RAM },
	};

	(void)state;
	assert_int_equal(guest_mem_init(&m, 5 * GiB), 0);
	assert_int_equal(m.low_ram_end, HOLE_START);
	assert_int_equal(m.high_ram_end, 6 * GiB);
	check_regions(&m, want, ARRAY_SIZE(want));
	/* gpa 4 GiB is host offset 3 GiB: the RAM hidden by the hole is relocated. */
	assert_ptr_equal(gpa_to_hva(&m, gpa(FOUR_GIB), 8), m.ram + HOLE_START);
	assert_ptr_equal(gpa_to_hva(&m, gpa(6 * GiB - 1), 1), m.ram + 5 * GiB - 1);
	assert_null(gpa_to_hva(&m, gpa(6 * GiB), 1));
	assert_null(gpa_to_hva(&m, gpa(6 * GiB - 1), 2));
	/* The PCI hole is unbacked, even though the host mapping is contiguous there. */
	assert_null(gpa_to_hva(&m, gpa(HOLE_START), 1));
	assert_null(gpa_to_hva(&m, gpa(FOUR_GIB - 1), 1));
	assert_null(gpa_to_hva(&m, gpa(HOLE_START - 1), 2));
	assert_null(gpa_to_hva(&m, gpa(FOUR_GIB - 1), 2));
	/* Writing through the high alias really lands in the mapping. */
	*(u8 *)gpa_to_hva(&m, gpa(6 * GiB - 1), 1) = 0x5c;
	assert_int_equal(m.ram[5 * GiB - 1], 0x5c);
	guest_mem_destroy(&m);
}

static void test_init_rejects_small(void **state)
{
	struct guest_mem m;

	(void)state;
	memset(&m, 0x77, sizeof(m));
	assert_int_equal(guest_mem_init(&m, 2 * MiB - 1), -EINVAL);
	assert_null(m.ram);
	assert_null(m.rom);
	assert_int_equal(m.nr_regions, 0);
	assert_int_equal(guest_mem_init(&m, 1 * MiB), -EINVAL);
	assert_int_equal(guest_mem_init(&m, 0), -EINVAL);
	/* Destroying a cleared struct is harmless. */
	guest_mem_destroy(&m);
}

static void test_init_minimum(void **state)
{
	struct guest_mem m;

	(void)state;
	assert_int_equal(guest_mem_init(&m, 2 * MiB), 0);
	assert_int_equal(m.low_ram_end, 2 * MiB);
	assert_int_equal(m.nr_regions, 4);
	assert_int_equal(m.regions[3].size, 1 * MiB);
	assert_ptr_equal(gpa_to_hva(&m, gpa(2 * MiB - 1), 1), m.ram + 2 * MiB - 1);
	assert_null(gpa_to_hva(&m, gpa(2 * MiB), 1));
	guest_mem_destroy(&m);
}

/* ---- gpa_to_hva ------------------------------------------------------------ */

static int setup_64m(void **state)
{
	static struct guest_mem m;

	if (guest_mem_init(&m, 64 * MiB))
		return -1;
	*state = &m;
	return 0;
}

static int teardown_mem(void **state)
{
	guest_mem_destroy(*state);
	return 0;
}

static void test_hva_low_ram_edges(void **state)
{
	struct guest_mem *m = *state;

	assert_ptr_equal(gpa_to_hva(m, gpa(0), 1), m->ram);
	assert_ptr_equal(gpa_to_hva(m, gpa(0), LOW_END), m->ram);
	assert_ptr_equal(gpa_to_hva(m, gpa(LOW_END - 1), 1), m->ram + LOW_END - 1);
	assert_ptr_equal(gpa_to_hva(m, gpa(0x1234), 16), m->ram + 0x1234);
	/* From low RAM into the 640K hole. */
	assert_null(gpa_to_hva(m, gpa(LOW_END - 1), 2));
	assert_null(gpa_to_hva(m, gpa(0), LOW_END + 1));
	/* VGA memory is backed (memory.h), on its own: no access spans into it. */
	assert_ptr_equal(gpa_to_hva(m, gpa(LOW_END), 1), m->ram + LOW_END);
	assert_ptr_equal(gpa_to_hva(m, gpa(0xb8000), 4000), m->ram + 0xb8000);
	assert_ptr_equal(gpa_to_hva(m, gpa(ROM_START - 1), 1), m->ram + ROM_START - 1);
	assert_null(gpa_to_hva(m, gpa(ROM_START - 1), 2));
	/* ... but it is no RAM for the loaders. */
	assert_null(gpa_to_ram(m, gpa(LOW_END), 1));
	assert_null(gpa_to_ram(m, gpa(0xb8000), 4000));
	assert_ptr_equal(gpa_to_ram(m, gpa(LOW_END - 1), 1), m->ram + LOW_END - 1);
	/* The ROM is not RAM. */
	assert_null(gpa_to_hva(m, gpa(ROM_START), 1));
	assert_null(gpa_to_hva(m, gpa(BIOS_START - 1), 1));
}

static void test_hva_high_ram_edges(void **state)
{
	struct guest_mem *m = *state;

	assert_ptr_equal(gpa_to_hva(m, gpa(ONE_MIB), 1), m->ram + ONE_MIB);
	assert_ptr_equal(gpa_to_hva(m, gpa(ONE_MIB), 63 * MiB), m->ram + ONE_MIB);
	assert_ptr_equal(gpa_to_hva(m, gpa(64 * MiB - 1), 1), m->ram + 64 * MiB - 1);
	assert_ptr_equal(gpa_to_hva(m, gpa(64 * MiB - 4096), 4096), m->ram + 64 * MiB - 4096);
	/* Crossing the end of RAM, and just past it. */
	assert_null(gpa_to_hva(m, gpa(64 * MiB - 4096), 4097));
	assert_null(gpa_to_hva(m, gpa(ONE_MIB), 63 * MiB + 1));
	assert_null(gpa_to_hva(m, gpa(64 * MiB), 1));
	/* From the ROM into RAM is two regions. */
	assert_null(gpa_to_hva_kind(m, gpa(ONE_MIB - 1), 2, true));
}

static void test_hva_rom(void **state)
{
	struct guest_mem *m = *state;

	const u8 *optrom;

	assert_null(gpa_to_hva(m, gpa(ROM_START), 1));
	assert_null(gpa_to_hva(m, gpa(ONE_MIB - 1), 1));
	assert_null(gpa_to_hva_kind(m, gpa(ROM_START), 1, false));
	assert_ptr_equal(gpa_to_hva_kind(m, gpa(ROM_START), 1, true), m->rom);
	assert_ptr_equal(gpa_to_hva_kind(m, gpa(ROM_START), 0x40000, true), m->rom);
	assert_ptr_equal(gpa_to_hva_kind(m, gpa(BIOS_START), 0x20000, true), m->rom + 0x20000);
	assert_ptr_equal(gpa_to_hva_kind(m, gpa(0xf0000), 0x10000, true), m->rom + 0x30000);
	assert_ptr_equal(gpa_to_hva_kind(m, gpa(ONE_MIB - 1), 1, true), m->rom + 0x3ffff);
	assert_null(gpa_to_hva_kind(m, gpa(ROM_START - 1), 2, true));
	assert_null(gpa_to_hva_kind(m, gpa(ROM_START), 0x40001, true));
	/* The empty option-ROM space reads as all-ones, as the unbacked hole did. */
	optrom = gpa_to_hva_kind(m, gpa(ROM_START), BIOS_START - ROM_START, true);
	assert_non_null(optrom);
	for (u64 i = 0; i < BIOS_START - ROM_START; i++)
		if (optrom[i] != 0xff)
			fail_msg("option-ROM byte at %#llx is %#x",
				 (unsigned long long)(ROM_START + i), optrom[i]);
	/* rom_ok still allows RAM. */
	assert_ptr_equal(gpa_to_hva_kind(m, gpa(0x5000), 8, true), m->ram + 0x5000);
}

static void test_hva_zero_length(void **state)
{
	struct guest_mem *m = *state;

	/* An empty range at the very end of a region is inside it. */
	assert_ptr_equal(gpa_to_hva(m, gpa(64 * MiB), 0), m->ram + 64 * MiB);
	assert_ptr_equal(gpa_to_hva(m, gpa(LOW_END), 0), m->ram + LOW_END);
	assert_ptr_equal(gpa_to_hva(m, gpa(0x8000), 0), m->ram + 0x8000);
	/* ... but not one past it. */
	assert_null(gpa_to_hva(m, gpa(64 * MiB + 1), 0));
	assert_null(gpa_to_hva(m, gpa(0xc0001), 0)); /* past VGA memory, in the ROM */
}

static void test_hva_no_overflow(void **state)
{
	struct guest_mem *m = *state;

	assert_null(gpa_to_hva(m, gpa(ONE_MIB), UINT64_MAX));
	assert_null(gpa_to_hva(m, gpa(0), UINT64_MAX));
	assert_null(gpa_to_hva(m, gpa(0x1000), UINT64_MAX - 0xfff));
	assert_null(gpa_to_hva(m, gpa(UINT64_MAX), 1));
	assert_null(gpa_to_hva(m, gpa(UINT64_MAX), 0));
	assert_null(gpa_to_hva(m, gpa(UINT64_MAX - 0xfff), 0x1000));
	/* gpa + len wraps to a small value inside RAM. */
	assert_null(gpa_to_hva(m, gpa(UINT64_MAX - 0xfff), 0x2000));
	assert_null(gpa_to_hva_kind(m, gpa(ROM_START), UINT64_MAX, true));
}

/* ---- usable RAM and the memory map ----------------------------------------- */

static void test_usable(void **state)
{
	struct guest_mem m;

	(void)state;
	assert_int_equal(guest_mem_init(&m, 64 * MiB), 0);
	assert_int_equal(guest_mem_usable(&m), EBDA + 63 * MiB);
	guest_mem_destroy(&m);
	assert_int_equal(guest_mem_init(&m, 3 * GiB), 0);
	assert_int_equal(guest_mem_usable(&m), EBDA + HOLE_START - ONE_MIB);
	guest_mem_destroy(&m);
	assert_int_equal(guest_mem_init(&m, 5 * GiB), 0);
	assert_int_equal(guest_mem_usable(&m), EBDA + HOLE_START - ONE_MIB + 2 * GiB);
	guest_mem_destroy(&m);
}

static void check_entry(const struct umbra_mem_entry *e, u64 addr, u64 len, u32 type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->len, len);
	assert_int_equal(e->type, type);
	assert_int_equal(e->reserved, 0);
}

static void test_map_512m(void **state)
{
	struct guest_mem m;
	struct umbra_mem_entry map[UMBRA_BOOT_MAX_MEM_ENTRIES];
	u64 ram = 0;

	(void)state;
	memset(map, 0xee, sizeof(map));
	assert_int_equal(guest_mem_init(&m, 512 * MiB), 0);
	assert_int_equal(guest_mem_map(&m, map, ARRAY_SIZE(map)), 4);
	check_entry(&map[0], 0, EBDA, UMBRA_MEM_RAM);
	check_entry(&map[1], EBDA, 0x400, UMBRA_MEM_RESERVED);
	check_entry(&map[2], BIOS_START, 0x20000, UMBRA_MEM_RESERVED);
	check_entry(&map[3], ONE_MIB, 511 * MiB, UMBRA_MEM_RAM);
	/* Untouched beyond the count. */
	assert_int_equal(map[4].addr, 0xeeeeeeeeeeeeeeeeull);
	/* The RAM entries add up to the usable figure. */
	for (unsigned i = 0; i < 4; i++)
		if (map[i].type == UMBRA_MEM_RAM)
			ram += map[i].len;
	assert_int_equal(ram, guest_mem_usable(&m));
	guest_mem_destroy(&m);
}

static void test_map_5g(void **state)
{
	struct guest_mem m;
	struct umbra_mem_entry map[UMBRA_BOOT_MAX_MEM_ENTRIES];
	u64 ram = 0;

	(void)state;
	assert_int_equal(guest_mem_init(&m, 5 * GiB), 0);
	assert_int_equal(guest_mem_map(&m, map, ARRAY_SIZE(map)), 5);
	check_entry(&map[0], 0, EBDA, UMBRA_MEM_RAM);
	check_entry(&map[1], EBDA, 0x400, UMBRA_MEM_RESERVED);
	check_entry(&map[2], BIOS_START, 0x20000, UMBRA_MEM_RESERVED);
	check_entry(&map[3], ONE_MIB, HOLE_START - ONE_MIB, UMBRA_MEM_RAM);
	check_entry(&map[4], FOUR_GIB, 2 * GiB, UMBRA_MEM_RAM);
	/* Sorted and non-overlapping. */
	for (unsigned i = 1; i < 5; i++)
		assert_true(map[i - 1].addr + map[i - 1].len <= map[i].addr);
	for (unsigned i = 0; i < 5; i++)
		if (map[i].type == UMBRA_MEM_RAM)
			ram += map[i].len;
	assert_int_equal(ram, guest_mem_usable(&m));
	guest_mem_destroy(&m);
}

static void test_map_truncated(void **state)
{
	struct guest_mem m;
	struct umbra_mem_entry map[3];

	(void)state;
	memset(map, 0xee, sizeof(map));
	assert_int_equal(guest_mem_init(&m, 5 * GiB), 0);
	assert_int_equal(guest_mem_map(&m, map, 2), 2);
	check_entry(&map[0], 0, EBDA, UMBRA_MEM_RAM);
	check_entry(&map[1], EBDA, 0x400, UMBRA_MEM_RESERVED);
	assert_int_equal(map[2].addr, 0xeeeeeeeeeeeeeeeeull);
	assert_int_equal(guest_mem_map(&m, map, 0), 0);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_512m),
		cmocka_unit_test(test_layout_3g_exactly),
		cmocka_unit_test(test_layout_5g),
		cmocka_unit_test(test_init_rejects_small),
		cmocka_unit_test(test_init_minimum),
		cmocka_unit_test_setup_teardown(test_hva_low_ram_edges, setup_64m, teardown_mem),
		cmocka_unit_test_setup_teardown(test_hva_high_ram_edges, setup_64m, teardown_mem),
		cmocka_unit_test_setup_teardown(test_hva_rom, setup_64m, teardown_mem),
		cmocka_unit_test_setup_teardown(test_hva_zero_length, setup_64m, teardown_mem),
		cmocka_unit_test_setup_teardown(test_hva_no_overflow, setup_64m, teardown_mem),
		cmocka_unit_test(test_usable),
		cmocka_unit_test(test_map_512m),
		cmocka_unit_test(test_map_5g),
		cmocka_unit_test(test_map_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
