// SPDX-License-Identifier: MIT
/*
 * ACPI tables (vmm/acpi.h): the smallest set with which Linux finds the
 * interrupt controllers, powers off and resets (ACPI 6.5 table layouts).
 *
 * Guest-visible contract. In the BIOS area the VMM fills ([0xe0000,
 * 0x100000), reported reserved in the memory map), from its start:
 *
 * 1. RSDP at 0xe0000 (the first 16-byte boundary Linux scans after the
 *    EBDA): "RSD PTR ", OEM "UMBRA ", revision 2, the RSDT and XSDT
 *    addresses, length 36; the checksum covers its first 20 bytes, the
 *    extended checksum all 36.
 * 2. RSDT (32-bit entries) and XSDT (64-bit entries), each listing the FADT
 *    then the MADT.
 * 3. FADT ("FACP", revision 6.5, 276 bytes), not HW-reduced:
 *      the FACS address in FIRMWARE_CTRL only (X_FIRMWARE_CTRL 0: ACPI
 *      says a non-zero X field overrides it, and Linux would list it twice),
 *      the DSDT address in DSDT and X_DSDT;
 *      SCI_INT 9; SMI_CMD 0, so the machine is always in ACPI mode;
 *      PM1a_EVT_BLK port 0x600, 4 bytes (devices/acpi_pm.c: status reads 0,
 *      enable is stored); PM1a_CNT_BLK port 0x604, 2 bytes (SLP_EN powers
 *      off); PM_TMR_BLK port 0x608, 4 bytes, a 24-bit count (TMR_VAL_EXT
 *      clear; devices/pm_timer.c); no PM1b, PM2 or GPE blocks;
 *      C2/C3 latencies above the "not supported" thresholds (101, 1001);
 *      CENTURY 0x32 (devices/cmos.c);
 *      IAPC_BOOT_ARCH LEGACY_DEVICES | 8042 (the i8042 answers self-test);
 *      flags WBINVD | PROC_C1 | PWR_BUTTON | SLP_BUTTON (no fixed buttons) |
 *      FIX_RTC (no RTC wake status) | RESET_REG_SUP;
 *      RESET_REG: system I/O port 0xcf9, 8 bits, byte access, RESET_VALUE
 *      0x06 (devices/reset_ctl.c resets on RST_CPU).
 *    Every 32-bit block field and its 64-bit GAS twin hold the same port.
 * 4. FACS: 64 bytes, 64-byte aligned, version 2, everything else 0 (no
 *    global lock owner, no waking vector: there is no S3).
 * 5. DSDT (revision 2) holding only Name (\_S5, Package (4) { 5, 5, 0, 0 }):
 *    `poweroff` writes SLP_TYP 5 and then SLP_EN to PM1a_CNT.
 * 6. MADT ("APIC", revision 5): local APIC address 0xfee00000, PCAT_COMPAT
 *    (the 8259s exist); one enabled Processor Local APIC per vCPU (UID =
 *    APIC ID = vCPU index); the I/O APIC, ID 0 at 0xfec00000, GSI base 0;
 *    one interrupt source override, ISA IRQ 9 -> GSI 9 level, active high
 *    (the SCI, as QEMU gives it); LINT1 of every processor is the NMI input
 *    (as QEMU). There is no IRQ 0 -> GSI 2 override, unlike QEMU: the VMM
 *    keeps KVM's default GSI routing, which wires ISA IRQ n (the PIT's IRQ 0
 *    included) to IOAPIC pin n; QEMU installs its own routing that moves
 *    IRQ 0 to pin 2. With the override Linux finds no timer on pin 2
 *    ("MP-BIOS bug: 8254 timer not connected to IO-APIC").
 * 7. Every table's checksum makes its bytes sum to 0 mod 256; OEM ID
 *    "UMBRA ", OEM table ID "UMBRAVMM", OEM revision 1, creator "UMBR"
 *    revision 1.
 *
 * The tables live in ROM: the OS cannot write them, and it never needs to
 * (the only OS-written table, the FACS, is written for the global lock,
 * which no AML here takes, and for S3/S4 wake, which is not offered).
 */
#include <errno.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/pm_timer.h"
#include "umbra/le.h"
#include "vmm/acpi.h"
#include "vmm/memory.h"

/* Table header fields (ACPI 6.5, 5.2.6). */
#define HDR_SIG	     0
#define HDR_LEN	     4
#define HDR_REV	     8
#define HDR_CSUM     9
#define HDR_OEMID    10
#define HDR_OEMTABLE 16
#define HDR_OEMREV   24
#define HDR_CREATOR  28
#define HDR_CREV     32

#define ACPI_OEM_ID	  "UMBRA "
#define ACPI_OEM_TABLE_ID "UMBRAVMM"
#define ACPI_CREATOR_ID	  "UMBR"

/* RSDP (5.2.5.3). */
#define RSDP_CSUM     8
#define RSDP_OEMID    9
#define RSDP_REV      15
#define RSDP_RSDT     16
#define RSDP_V1_LEN   20 /* the part the first checksum covers */
#define RSDP_LEN_OFF  20
#define RSDP_XSDT     24
#define RSDP_EXT_CSUM 32

/* FADT (5.2.9), revision 6.5. */
#define FADT_LEN	   276
#define FADT_REV	   6
#define FADT_MINOR	   5
#define FADT_FACS	   36
#define FADT_DSDT	   40
#define FADT_SCI_INT	   46
#define FADT_PM1A_EVT	   56
#define FADT_PM1A_CNT	   64
#define FADT_PM_TMR	   76
#define FADT_PM1_EVT_LEN   88
#define FADT_PM1_CNT_LEN   89
#define FADT_PM_TMR_LEN	   91
#define FADT_P_LVL2_LAT	   96
#define FADT_P_LVL3_LAT	   98
#define FADT_CENTURY	   108
#define FADT_BOOT_ARCH	   109
#define FADT_FLAGS	   112
#define FADT_RESET_REG	   116
#define FADT_RESET_VALUE   128
#define FADT_MINOR_REV	   131
#define FADT_X_DSDT	   140
#define FADT_X_PM1A_EVT	   148
#define FADT_X_PM1A_CNT	   172
#define FADT_X_PM_TMR	   208
#define LVL2_NOT_SUPPORTED 101	/* > 100: no C2 */
#define LVL3_NOT_SUPPORTED 1001 /* > 1000: no C3 */
#define CMOS_CENTURY	   0x32
#define BOOT_ARCH_LEGACY   (1u << 0)
#define BOOT_ARCH_8042	   (1u << 1)
#define FADT_F_WBINVD	   (1u << 0)
#define FADT_F_PROC_C1	   (1u << 2)
#define FADT_F_PWR_BUTTON  (1u << 4)
#define FADT_F_SLP_BUTTON  (1u << 5)
#define FADT_F_FIX_RTC	   (1u << 6)
#define FADT_F_RESET_REG   (1u << 10)

/* Generic Address Structure (5.2.3.2). */
#define GAS_SYSTEM_IO 1
#define GAS_ACC_BYTE  1
#define GAS_ACC_WORD  2
#define GAS_ACC_DWORD 3

/* FACS (5.2.10). */
#define FACS_LEN     64
#define FACS_ALIGN   64
#define FACS_VERSION 2
#define FACS_VER_OFF 32

/* MADT (5.2.12). */
#define MADT_REV	    5
#define MADT_PCAT_COMPAT    (1u << 0)
#define MADT_LAPIC	    0 /* type, length 8 */
#define MADT_IOAPIC	    1 /* length 12 */
#define MADT_ISO	    2 /* interrupt source override, length 10 */
#define MADT_LAPIC_NMI	    4 /* length 6 */
#define MADT_LAPIC_ENABLED  1
#define MPS_INTI_HIGH_LEVEL 0x000d /* polarity 01 active high, trigger 11 level */
#define MADT_ALL_CPUS	    0xff   /* processor UID for "every processor" */

#define TABLE_ALIGN 16

/*
 * Item 5. The DSDT's AML (ACPI 6.5, chapter 20): the whole definition block
 * after the header is one named object in the root scope.
 */
/* clang-format off */
static const u8 dsdt_aml[] = {
	0x08,			/* NameOp */
	'_', 'S', '5', '_',	/* NameSeg "_S5_" */
	0x12,			/* PackageOp */
	0x08,			/* PkgLength: 8 bytes, this one included */
	0x04,			/* NumElements */
	0x0a, ACPI_S5_SLP_TYP,	/* BytePrefix 5: SLP_TYPa */
	0x0a, ACPI_S5_SLP_TYP,	/* BytePrefix 5: SLP_TYPb (no PM1b block) */
	0x00, 0x00,		/* ZeroOp, ZeroOp: reserved */
};
/* clang-format on */

/* The byte that makes `len` bytes from `p` (that byte counted as 0) sum to 0. */
static u8 checksum(const u8 *p, size_t len)
{
	u8 sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (u8)(sum + p[i]);
	return (u8)-sum;
}

/* A 12-byte Generic Address Structure for a system I/O register. */
static void put_gas_io(u8 *p, size_t off, u8 bits, u8 access, u16 port)
{
	p[off] = GAS_SYSTEM_IO;
	p[off + 1] = bits;
	p[off + 2] = 0; /* bit offset */
	p[off + 3] = access;
	le_put64(p, off + 4, port);
}

/* Item 7: the common header; the checksum is set by finish(). */
static void put_header(u8 *t, const char *sig, u32 len, u8 rev)
{
	memcpy(t + HDR_SIG, sig, 4);
	le_put32(t, HDR_LEN, len);
	t[HDR_REV] = rev;
	memcpy(t + HDR_OEMID, ACPI_OEM_ID, 6);
	memcpy(t + HDR_OEMTABLE, ACPI_OEM_TABLE_ID, 8);
	le_put32(t, HDR_OEMREV, 1);
	memcpy(t + HDR_CREATOR, ACPI_CREATOR_ID, 4);
	le_put32(t, HDR_CREV, 1);
}

static void finish(u8 *t)
{
	u32 len = (u32)t[HDR_LEN] | (u32)t[HDR_LEN + 1] << 8 | (u32)t[HDR_LEN + 2] << 16 |
		  (u32)t[HDR_LEN + 3] << 24;

	t[HDR_CSUM] = 0;
	t[HDR_CSUM] = checksum(t, len);
}

/* A bump allocator over the buffer. */
struct acpi_buf {
	u8 *buf;
	u64 base;
	size_t size, used;
	bool full;
};

/* Room for `len` bytes at an `align` boundary; its offset (0 when full). */
static size_t take(struct acpi_buf *b, size_t len, size_t align)
{
	size_t at = ALIGN_UP(b->used, align);

	if (at > b->size || len > b->size - at) {
		b->full = true;
		return 0;
	}
	b->used = at + len;
	return at;
}

static u32 gpa_of(const struct acpi_buf *b, size_t off)
{
	return (u32)(b->base + off);
}

/* Item 3. */
static void build_fadt(u8 *t, u32 facs, u32 dsdt)
{
	put_header(t, "FACP", FADT_LEN, FADT_REV);
	t[FADT_MINOR_REV] = FADT_MINOR;
	le_put32(t, FADT_FACS, facs);
	le_put32(t, FADT_DSDT, dsdt);
	le_put16(t, FADT_SCI_INT, ACPI_SCI_IRQ);
	le_put32(t, FADT_PM1A_EVT, ACPI_PM1A_EVT_Q35);
	le_put32(t, FADT_PM1A_CNT, ACPI_PM1A_CNT_Q35);
	t[FADT_PM1_EVT_LEN] = ACPI_PM1A_EVT_LEN;
	t[FADT_PM1_CNT_LEN] = ACPI_PM1A_CNT_LEN;
	le_put32(t, FADT_PM_TMR, ACPI_PM_TMR_Q35);
	t[FADT_PM_TMR_LEN] = ACPI_PM_TMR_LEN;
	le_put16(t, FADT_P_LVL2_LAT, LVL2_NOT_SUPPORTED);
	le_put16(t, FADT_P_LVL3_LAT, LVL3_NOT_SUPPORTED);
	t[FADT_CENTURY] = CMOS_CENTURY;
	le_put16(t, FADT_BOOT_ARCH, BOOT_ARCH_LEGACY | BOOT_ARCH_8042);
	le_put32(t, FADT_FLAGS,
		 FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
			 FADT_F_FIX_RTC | FADT_F_RESET_REG);
	put_gas_io(t, FADT_RESET_REG, 8, GAS_ACC_BYTE, ACPI_RESET_PORT);
	t[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
	le_put64(t, FADT_X_DSDT, dsdt);
	put_gas_io(t, FADT_X_PM1A_EVT, 8 * ACPI_PM1A_EVT_LEN, GAS_ACC_WORD, ACPI_PM1A_EVT_Q35);
	put_gas_io(t, FADT_X_PM1A_CNT, 8 * ACPI_PM1A_CNT_LEN, GAS_ACC_WORD, ACPI_PM1A_CNT_Q35);
	put_gas_io(t, FADT_X_PM_TMR, 8 * ACPI_PM_TMR_LEN, GAS_ACC_DWORD, ACPI_PM_TMR_Q35);
	finish(t);
}

/* Item 6. */
static size_t madt_len(unsigned nr_cpus)
{
	return ACPI_HDR_LEN + 8 + 8 * (size_t)nr_cpus + 12 + 10 + 6;
}

static void put_iso(u8 *t, size_t off, u8 irq, u32 gsi, u16 flags)
{
	t[off] = MADT_ISO;
	t[off + 1] = 10;
	t[off + 2] = 0; /* bus: ISA */
	t[off + 3] = irq;
	le_put32(t, off + 4, gsi);
	le_put16(t, off + 8, flags);
}

static void build_madt(u8 *t, unsigned nr_cpus)
{
	size_t off = ACPI_HDR_LEN;

	put_header(t, "APIC", (u32)madt_len(nr_cpus), MADT_REV);
	le_put32(t, off, ACPI_LAPIC_GPA);
	le_put32(t, off + 4, MADT_PCAT_COMPAT);
	off += 8;
	for (unsigned i = 0; i < nr_cpus; i++, off += 8) {
		t[off] = MADT_LAPIC;
		t[off + 1] = 8;
		t[off + 2] = (u8)i; /* ACPI processor UID */
		t[off + 3] = (u8)i; /* APIC ID */
		le_put32(t, off + 4, MADT_LAPIC_ENABLED);
	}
	t[off] = MADT_IOAPIC;
	t[off + 1] = 12;
	t[off + 2] = ACPI_IOAPIC_ID;
	le_put32(t, off + 4, (u32)MEM_IOAPIC_GPA);
	le_put32(t, off + 8, 0); /* GSI base */
	off += 12;
	put_iso(t, off, ACPI_SCI_IRQ, ACPI_SCI_IRQ, MPS_INTI_HIGH_LEVEL);
	off += 10;
	t[off] = MADT_LAPIC_NMI;
	t[off + 1] = 6;
	t[off + 2] = MADT_ALL_CPUS;
	le_put16(t, off + 3, 0); /* flags: conforms */
	t[off + 5] = 1;		 /* LINT1 */
	finish(t);
}

int acpi_build(u8 *buf, u64 base, size_t size, unsigned nr_cpus)
{
	struct acpi_buf b = { .buf = buf, .base = base, .size = size };
	size_t rsdp, facs, dsdt, fadt, madt, rsdt, xsdt;
	u8 *t;

	if (base % ACPI_RSDP_ALIGN || base > 0xffffffffu || size > 0xffffffffu - base ||
	    nr_cpus == 0 || nr_cpus > ACPI_MAX_CPUS)
		return -EINVAL;
	rsdp = take(&b, ACPI_RSDP_LEN, ACPI_RSDP_ALIGN);
	facs = take(&b, FACS_LEN, FACS_ALIGN);
	dsdt = take(&b, ACPI_HDR_LEN + sizeof(dsdt_aml), TABLE_ALIGN);
	fadt = take(&b, FADT_LEN, TABLE_ALIGN);
	madt = take(&b, madt_len(nr_cpus), TABLE_ALIGN);
	rsdt = take(&b, ACPI_HDR_LEN + 2 * 4, TABLE_ALIGN);
	xsdt = take(&b, ACPI_HDR_LEN + 2 * 8, TABLE_ALIGN);
	if (b.full)
		return -ENOSPC; /* nothing written */
	memset(buf, 0, b.used);

	/* Item 4. */
	t = buf + facs;
	memcpy(t, "FACS", 4);
	le_put32(t, 4, FACS_LEN);
	t[FACS_VER_OFF] = FACS_VERSION;

	/* Item 5. */
	t = buf + dsdt;
	put_header(t, "DSDT", ACPI_HDR_LEN + sizeof(dsdt_aml), 2);
	memcpy(t + ACPI_HDR_LEN, dsdt_aml, sizeof(dsdt_aml));
	finish(t);

	build_fadt(buf + fadt, gpa_of(&b, facs), gpa_of(&b, dsdt));
	build_madt(buf + madt, nr_cpus);

	/* Item 2. */
	t = buf + rsdt;
	put_header(t, "RSDT", ACPI_HDR_LEN + 2 * 4, 1);
	le_put32(t, ACPI_HDR_LEN, gpa_of(&b, fadt));
	le_put32(t, ACPI_HDR_LEN + 4, gpa_of(&b, madt));
	finish(t);
	t = buf + xsdt;
	put_header(t, "XSDT", ACPI_HDR_LEN + 2 * 8, 1);
	le_put64(t, ACPI_HDR_LEN, gpa_of(&b, fadt));
	le_put64(t, ACPI_HDR_LEN + 8, gpa_of(&b, madt));
	finish(t);

	/* Item 1. */
	t = buf + rsdp;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + RSDP_OEMID, ACPI_OEM_ID, 6);
	t[RSDP_REV] = 2;
	le_put32(t, RSDP_RSDT, gpa_of(&b, rsdt));
	le_put32(t, RSDP_LEN_OFF, ACPI_RSDP_LEN);
	le_put64(t, RSDP_XSDT, gpa_of(&b, xsdt));
	t[RSDP_CSUM] = checksum(t, RSDP_V1_LEN);
	t[RSDP_EXT_CSUM] = checksum(t, ACPI_RSDP_LEN);
	return (int)b.used;
}
