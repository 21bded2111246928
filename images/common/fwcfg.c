/* SPDX-License-Identifier: MIT */
/* QEMU fw_cfg probe through the legacy I/O ports; see fwcfg.h. */
#include <stdint.h>

#include "fwcfg.h"
#include "io.h"
#include "lib.h"
#include "print.h"

#define FW_CFG_PORT_SEL 0x510  /* 16-bit selector (write) */
#define FW_CFG_PORT_DATA 0x511 /* 8-bit data, auto-incrementing offset */

/* Selector keys (QEMU docs/specs/fw_cfg.rst). */
#define FW_CFG_SIGNATURE 0x00 /* "QEMU" */
#define FW_CFG_RAM_SIZE 0x03  /* u64 LE, bytes */
#define FW_CFG_NB_CPUS 0x05   /* u16 LE */

/* Select @key and read @len (<= 8) bytes as a little-endian integer. */
static uint64_t fwcfg_read_le(uint16_t key, int len)
{
	uint64_t val = 0;
	int i;

	outw(FW_CFG_PORT_SEL, key);
	for (i = 0; i < len; i++)
		val |= (uint64_t)inb(FW_CFG_PORT_DATA) << (8 * i);
	return val;
}

void fwcfg_report(void)
{
	char sig[5];
	int i, printable = 1;
	uint64_t cpus, ram;

	outw(FW_CFG_PORT_SEL, FW_CFG_SIGNATURE);
	for (i = 0; i < 4; i++) {
		sig[i] = (char)inb(FW_CFG_PORT_DATA);
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			printable = 0;
	}
	sig[4] = '\0';
	kprintf("fw_cfg: %s\n", printable ? sig : "none");
	if (memcmp(sig, "QEMU", 4))
		return;

	cpus = fwcfg_read_le(FW_CFG_NB_CPUS, 2);
	ram = fwcfg_read_le(FW_CFG_RAM_SIZE, 8);
	kprintf("fw_cfg: cpus %u ram %llu MiB\n", (unsigned)cpus,
		(unsigned long long)(ram >> 20));
}
