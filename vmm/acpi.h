/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for the guest (vmm/acpi.c): the RSDP, RSDT, XSDT, FADT, FACS,
 * DSDT and MADT that tell an OS where the interrupt controllers are and how
 * to power off and reset. The builder only fills a byte buffer, so it needs
 * no KVM and the unit tests check it directly (tests/unit/test_acpi.c).
 *
 * The VMM builds them once per VM into the read-only BIOS window (vmm/memory.h,
 * [MEM_BIOS_START, MEM_ROM_END)), whatever the image type; only OSes that scan
 * for an RSDP (Linux) ever look at them.
 */
#ifndef UMBRA_VMM_ACPI_H
#define UMBRA_VMM_ACPI_H

#include <stddef.h>

#include "umbra/types.h"

#define ACPI_RSDP_ALIGN	 16	     /* OSes scan the BIOS area on 16-byte boundaries */
#define ACPI_RSDP_LEN	 36	     /* ACPI 2.0+ RSDP, with the XSDT address */
#define ACPI_HDR_LEN	 36	     /* every table but the RSDP and FACS */
#define ACPI_LAPIC_GPA	 0xfee00000u /* KVM's LAPIC default base (MSR IA32_APIC_BASE) */
#define ACPI_IOAPIC_ID	 0	     /* KVM's in-kernel IOAPIC resets its ID register to 0 */
#define ACPI_SCI_IRQ	 9	     /* as on QEMU's PIIX4/ICH9: ISA IRQ 9, level, active high */
#define ACPI_S5_SLP_TYP	 5	     /* \_S5's SLP_TYPa: devices/acpi_pm.c takes any value */
#define ACPI_RESET_PORT	 0xcf9	     /* devices/reset_ctl.c */
#define ACPI_RESET_VALUE 0x06	     /* SYS_RST | RST_CPU */
#define ACPI_MAX_CPUS	 255	     /* one xAPIC-ID byte each, 0xff is broadcast */

/*
 * Write the tables for a machine with `nr_cpus` vCPUs (LAPIC IDs 0 to
 * nr_cpus - 1) into `buf`, `size` bytes that the guest sees at gpa `base`
 * (below 4 GiB: the RSDT holds 32-bit addresses). The RSDP is at `base`,
 * which must be 16-byte aligned; the rest of `buf` up to the return value
 * holds the other tables, and bytes after it are left alone.
 * Returns the number of bytes used, or -EINVAL (bad base or nr_cpus) or
 * -ENOSPC (buffer too small), having written nothing.
 */
int acpi_build(u8 *buf, u64 base, size_t size, unsigned nr_cpus);

#endif /* UMBRA_VMM_ACPI_H */
