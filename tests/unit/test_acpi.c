/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the ACPI table builder (vmm/acpi.c), run over a buffer that
 * stands for the BIOS area at 0xe0000: the RSDP where Linux scans for it,
 * every checksum, the RSDT/XSDT entries pointing at valid tables, the FADT
 * fields, the MADT entries, the \_S5 AML bytes, and the error cases. The
 * offsets are spelled out from the ACPI 6.5 specification, independently of
 * acpi.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/acpi.h"

#define ROM_BASE 0xe0000u
#define ROM_SIZE 0x20000u

static u8 rom[ROM_SIZE];
static int used;

static u16 rd16(const u8 *p)
{
	return (u16)(p[0] | p[1] << 8);
}

static u32 rd32(const u8 *p)
{
	return (u32)rd16(p) | (u32)rd16(p + 2) << 16;
}

static u64 rd64(const u8 *p)
{
	return (u64)rd32(p) | (u64)rd32(p + 4) << 32;
}

static u8 sum(const u8 *p, size_t len)
{
	u8 s = 0;

	for (size_t i = 0; i < len; i++)
		s = (u8)(s + p[i]);
	return s;
}

/* The bytes at guest address `gpa`, which must lie in what acpi_build used. */
static const u8 *at(u64 gpa, size_t len)
{
	assert_true(gpa >= ROM_BASE);
	assert_true(gpa - ROM_BASE + len <= (u64)used);
	return rom + (gpa - ROM_BASE);
}

/* A table with a valid header: signature, length inside the buffer, checksum 0. */
static const u8 *table(u64 gpa, const char *sig)
{
	const u8 *t = at(gpa, 36);
	u32 len = rd32(t + 4);

	assert_memory_equal(t, sig, 4);
	assert_true(len >= 36);
	t = at(gpa, len);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, "UMBRA ", 6);
	return t;
}

static int setup(void **state)
{
	(void)state;
	memset(rom, 0xa5, sizeof(rom)); /* garbage the builder must not rely on */
	used = acpi_build(rom, ROM_BASE, sizeof(rom), 1);
	assert_true(used > 0);
	assert_true(used <= 4096);
	return 0;
}

/* Linux's acpi_find_root_pointer: 16-byte boundaries in [0xe0000, 0xfffff]. */
static const u8 *find_rsdp(void)
{
	for (u32 off = 0; off + ACPI_RSDP_LEN <= ROM_SIZE; off += 16)
		if (!memcmp(rom + off, "RSD PTR ", 8) && sum(rom + off, 20) == 0)
			return rom + off;
	return NULL;
}

static void test_rsdp(void **state)
{
	const u8 *r = find_rsdp();

	(void)state;
	assert_non_null(r);
	assert_ptr_equal(r, rom);   /* at 0xe0000 */
	assert_int_equal(r[15], 2); /* ACPI 2.0+ */
	assert_int_equal(rd32(r + 20), 36);
	assert_int_equal(sum(r, 20), 0);
	assert_int_equal(sum(r, 36), 0);
	assert_memory_equal(r + 9, "UMBRA ", 6);
	table(rd32(r + 16), "RSDT");
	table(rd64(r + 24), "XSDT");
	/* Exactly one RSDP. */
	for (u32 off = 16; off + 8 <= (u32)used; off += 16)
		assert_memory_not_equal(rom + off, "RSD PTR ", 8);
}

/* The XSDT and RSDT list the same tables, FADT then MADT, all valid. */
static void test_root_tables(void **state)
{
	const u8 *r = find_rsdp();
	const u8 *rsdt = table(rd32(r + 16), "RSDT"), *xsdt = table(rd64(r + 24), "XSDT");
	static const char *const sigs[] = { "FACP", "APIC" };

	(void)state;
	assert_int_equal(rd32(rsdt + 4), 36 + 2 * 4);
	assert_int_equal(rd32(xsdt + 4), 36 + 2 * 8);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(rd64(xsdt + 36 + 8 * i), rd32(rsdt + 36 + 4 * i));
		table(rd64(xsdt + 36 + 8 * i), sigs[i]);
	}
	/* Tables do not overlap the RSDP and sit below 4 GiB. */
	assert_true(rd64(xsdt + 36) >= ROM_BASE + ACPI_RSDP_LEN);
}

static const u8 *fadt(void)
{
	const u8 *r = find_rsdp();

	return table(rd64(table(rd64(r + 24), "XSDT") + 36), "FACP");
}

/* A system-I/O Generic Address Structure. */
static void check_gas_io(const u8 *g, u8 bits, u8 access, u64 port)
{
	assert_int_equal(g[0], 1); /* system I/O */
	assert_int_equal(g[1], bits);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], access);
	assert_int_equal(rd64(g + 4), port);
}

static void test_fadt(void **state)
{
	const u8 *f = fadt();
	u32 flags = rd32(f + 112);

	(void)state;
	assert_int_equal(rd32(f + 4), 276);
	assert_int_equal(f[8], 6);	       /* revision 6 */
	assert_int_equal(f[131], 5);	       /* minor 5 */
	assert_int_equal(rd16(f + 46), 9);     /* SCI_INT */
	assert_int_equal(rd32(f + 48), 0);     /* SMI_CMD: always in ACPI mode */
	assert_int_equal(rd32(f + 56), 0x600); /* PM1a_EVT_BLK */
	assert_int_equal(rd32(f + 60), 0);     /* no PM1b */
	assert_int_equal(rd32(f + 64), 0x604); /* PM1a_CNT_BLK */
	assert_int_equal(rd32(f + 68), 0);
	assert_int_equal(rd32(f + 76), 0x608); /* PM_TMR_BLK */
	assert_int_equal(rd32(f + 80), 0);     /* no GPE0 */
	assert_int_equal(f[88], 4);	       /* PM1_EVT_LEN */
	assert_int_equal(f[89], 2);	       /* PM1_CNT_LEN */
	assert_int_equal(f[91], 4);	       /* PM_TMR_LEN */
	assert_false(flags & (1u << 8));       /* TMR_VAL_EXT clear: a 24-bit count */
	assert_true(rd16(f + 96) > 100);       /* no C2 */
	assert_true(rd16(f + 98) > 1000);      /* no C3 */
	assert_int_equal(f[108], 0x32);	       /* CMOS century */
	assert_int_equal(rd16(f + 109), 0x3);  /* LEGACY_DEVICES | 8042 */
	assert_true(flags & (1u << 10));       /* RESET_REG_SUP */
	assert_false(flags & (1u << 20));      /* not HW_REDUCED_ACPI */
	assert_true(flags & (1u << 0));	       /* WBINVD */
	check_gas_io(f + 116, 8, 1, 0xcf9);    /* RESET_REG */
	assert_int_equal(f[128], 0x06);	       /* RESET_VALUE */
	check_gas_io(f + 148, 32, 2, 0x600);   /* X_PM1a_EVT_BLK */
	check_gas_io(f + 172, 16, 2, 0x604);   /* X_PM1a_CNT_BLK */
	check_gas_io(f + 208, 32, 3, 0x608);   /* X_PM_TMR_BLK */
	for (unsigned off = 220; off < 276; off++)
		assert_int_equal(f[off], 0); /* X_GPE0/1, sleep regs, hypervisor */

	/* FACS through FIRMWARE_CTRL only; DSDT through both fields. */
	assert_int_equal(rd64(f + 132), 0);
	{
		u32 facs_gpa = rd32(f + 36);
		const u8 *facs = at(facs_gpa, 64);

		assert_int_equal(facs_gpa % 64, 0);
		assert_memory_equal(facs, "FACS", 4);
		assert_int_equal(rd32(facs + 4), 64);
		assert_int_equal(facs[32], 2);	      /* version */
		assert_int_equal(rd32(facs + 16), 0); /* global lock free */
	}
	assert_int_equal(rd64(f + 140), rd32(f + 40));
	table(rd32(f + 40), "DSDT");
}

static void test_dsdt_s5(void **state)
{
	const u8 *d = table(rd32(fadt() + 40), "DSDT");
	static const u8 want[] = {
		0x08, '_',  'S',  '5',	'_', /* Name (_S5, */
		0x12, 0x08, 0x04,	     /* Package, PkgLength 8, 4 elements */
		0x0a, 0x05, 0x0a, 0x05,	     /* SLP_TYPa 5, SLP_TYPb 5 */
		0x00, 0x00,		     /* reserved */
	};

	(void)state;
	assert_int_equal(rd32(d + 4), 36 + sizeof(want));
	assert_int_equal(d[8], 2); /* 64-bit AML integers */
	assert_memory_equal(d + 36, want, sizeof(want));
	assert_int_equal(ACPI_S5_SLP_TYP, 5);
}

static const u8 *madt(void)
{
	const u8 *r = find_rsdp();

	return table(rd64(table(rd64(r + 24), "XSDT") + 44), "APIC");
}

static void test_madt(void **state)
{
	const u8 *m = madt();
	u32 len = rd32(m + 4), off = 44;
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;

	(void)state;
	assert_int_equal(rd32(m + 36), 0xfee00000);
	assert_int_equal(rd32(m + 40), 1); /* PCAT_COMPAT */
	while (off < len) {
		const u8 *e = m + off;

		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0: /* Processor Local APIC */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], 0);	  /* UID */
			assert_int_equal(e[3], 0);	  /* APIC ID */
			assert_int_equal(rd32(e + 4), 1); /* enabled */
			lapics++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], 0);
			assert_int_equal(rd32(e + 4), 0xfec00000);
			assert_int_equal(rd32(e + 8), 0); /* GSI base */
			ioapics++;
			break;
		case 2: /* interrupt source override: only the SCI */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0); /* ISA */
			assert_int_equal(e[3], 9);
			assert_int_equal(rd32(e + 4), 9);
			assert_int_equal(rd16(e + 8), 0x000d); /* level, active high */
			isos++;
			break;
		case 4: /* local APIC NMI */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default: fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(lapics, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
	assert_int_equal(nmis, 1);
}

static void test_madt_cpus(void **state)
{
	const u8 *m;
	unsigned n = 0;

	(void)state;
	used = acpi_build(rom, ROM_BASE, sizeof(rom), 4);
	assert_true(used > 0);
	m = madt();
	for (u32 off = 44; off < rd32(m + 4); off += m[off + 1]) {
		if (m[off] != 0)
			continue;
		assert_int_equal(m[off + 2], n);
		assert_int_equal(m[off + 3], n);
		n++;
	}
	assert_int_equal(n, 4);
}

static void test_errors(void **state)
{
	u8 small[256];

	(void)state;
	assert_int_equal(acpi_build(small, ROM_BASE, sizeof(small), 1), -ENOSPC);
	assert_int_equal(acpi_build(rom, ROM_BASE + 8, sizeof(rom), 1), -EINVAL);
	assert_int_equal(acpi_build(rom, 0x100000000ull, sizeof(rom), 1), -EINVAL);
	assert_int_equal(acpi_build(rom, ROM_BASE, sizeof(rom), 0), -EINVAL);
	assert_int_equal(acpi_build(rom, ROM_BASE, sizeof(rom), ACPI_MAX_CPUS + 1), -EINVAL);
	/* Exactly enough room works; the bytes after it are untouched. */
	memset(rom, 0xa5, sizeof(rom));
	used = acpi_build(rom, ROM_BASE, sizeof(rom), 1);
	assert_int_equal(acpi_build(rom, ROM_BASE, (size_t)used, 1), used);
	assert_int_equal(acpi_build(rom, ROM_BASE, (size_t)used - 1, 1), -ENOSPC);
	assert_int_equal(rom[used], 0xa5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rsdp, setup),
		cmocka_unit_test_setup(test_root_tables, setup),
		cmocka_unit_test_setup(test_fadt, setup),
		cmocka_unit_test_setup(test_dsdt_s5, setup),
		cmocka_unit_test_setup(test_madt, setup),
		cmocka_unit_test_setup(test_madt_cpus, setup),
		cmocka_unit_test_setup(test_errors, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
