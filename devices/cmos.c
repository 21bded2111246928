// SPDX-License-Identifier: MIT
/*
 * CMOS NVRAM and MC146818-style real-time clock (devices/cmos.h).
 *
 * Guest-visible contract. Two byte ports, registered as one range:
 *   offset 0 (port 0x70)  index, write-only; bit 7 is the PC's NMI-disable
 *                         gate, which is ignored; reads return 0xff.
 *   offset 1 (port 0x71)  data: the NVRAM byte or clock register at the index.
 * A wider access is taken as byte accesses at consecutive offsets, so
 * `outw 0x70` writes the index and then the data, as on a PC.
 *
 * 1. NVRAM. 128 bytes, all zero at creation except the control registers.
 *    The VMM fills the memory-size bytes (cmos_set_byte, cmos_set_memory)
 *    before the guest runs. The NVRAM is battery-backed: a VM reset keeps it
 *    and only forgets the index.
 *
 * 2. Time. Registers 0x00 seconds, 0x02 minutes, 0x04 hours, 0x06 day of
 *    week (1 = Sunday), 0x07 day of month, 0x08 month, 0x09 year in the
 *    century and 0x32 century are computed from host->wall_time() at the
 *    moment of the read, in UTC. Without a wall_time callback they read back
 *    what is stored in NVRAM.
 *
 * 3. Format, from register B: BCD unless B.DM (binary) is set; 24-hour unless
 *    B.24H is clear, in which case hours read 1..12 with bit 7 set for PM.
 *    The century follows B.DM too. Register B resets to 0x02 (24h, BCD).
 *
 * 4. Control registers.
 *    A (0x0a): resets to 0x26 (32.768 kHz time base, 1024 Hz rate); writable
 *              except UIP, which always reads 0: an update is never in
 *              progress, so a guest's "wait for !UIP" loop ends at once.
 *    B (0x0b): writable, stored; only DM and 24H have an effect.
 *    C (0x0c): interrupt flags; always reads 0, writes ignored.
 *    D (0x0d): always reads 0x80 (VRT: the battery and RAM are valid),
 *              writes ignored.
 *
 * LIMITATION: writes to the time registers (and B.SET) are stored in NVRAM,
 *    but the clock keeps following the host: a guest cannot set the time.
 * LIMITATION: no periodic, alarm or update-ended interrupts (B.PIE/AIE/UIE
 *    are stored and ignored; C never reports a flag; IRQ 8 is never raised),
 *    and the alarm registers 0x01/0x03/0x05 are plain NVRAM.
 * LIMITATION: the standard checksum at 0x2e/0x2f is not maintained.
 */
#include <stdlib.h>
#include <time.h>

#include "devices/cmos.h"
#include "umbra/log.h"

/* Offsets within the registered range. */
#define CMOS_PORT_INDEX 0
#define CMOS_PORT_DATA	1
#define CMOS_INDEX_MASK 0x7f /* bit 7 of the index write is NMI disable */
#define CMOS_FLOATING	0xff /* what the write-only index port reads as */

/* Clock registers (item 2). */
#define RTC_SECONDS	  0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES	  0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS	  0x04
#define RTC_HOURS_ALARM	  0x05
#define RTC_DAY_OF_WEEK	  0x06
#define RTC_DAY_OF_MONTH  0x07
#define RTC_MONTH	  0x08
#define RTC_YEAR	  0x09
#define RTC_REG_A	  0x0a
#define RTC_REG_B	  0x0b
#define RTC_REG_C	  0x0c
#define RTC_REG_D	  0x0d
#define RTC_CENTURY	  0x32 /* IBM PC convention, also in the ACPI FADT */

/* Register A. */
#define REG_A_UIP   0x80 /* update in progress: always reads 0 here */
#define REG_A_RESET 0x26 /* DV = 010 (32.768 kHz), RS = 0110 (1024 Hz) */

/* Register B. */
#define REG_B_SET   0x80 /* freeze updates (stored, ignored) */
#define REG_B_PIE   0x40 /* periodic interrupt enable (ignored) */
#define REG_B_AIE   0x20 /* alarm interrupt enable (ignored) */
#define REG_B_UIE   0x10 /* update-ended interrupt enable (ignored) */
#define REG_B_SQWE  0x08 /* square wave enable (ignored) */
#define REG_B_DM    0x04 /* data mode: 1 = binary, 0 = BCD */
#define REG_B_24H   0x02 /* 1 = 24-hour mode, 0 = 12-hour */
#define REG_B_DSE   0x01 /* daylight saving enable (ignored) */
#define REG_B_RESET REG_B_24H

/* Register D. */
#define REG_D_VRT 0x80 /* valid RAM and time */

/* Hours register in 12-hour mode. */
#define RTC_HOURS_PM 0x80

#define HOURS_PER_HALF_DAY 12
#define TM_YEAR_BASE	   1900 /* struct tm counts years from 1900 */
#define YEARS_PER_CENTURY  100

/* Memory-size units (QEMU hw/i386/pc.c). */
#define CMOS_BASE_MEM_MAX_KIB 640
#define CMOS_MEM_UNIT	      (64 * KiB)
#define CMOS_EXT_MEM_START    MiB /* extended memory starts at 1 MiB */
#define CMOS_MEM_16M_START    (16 * MiB)
#define CMOS_MEM_16BIT_MAX    0xffff

struct cmos {
	struct device dev; /* first: handlers cast back */
	u8 index;
	u8 nvram[CMOS_NVRAM_SIZE];
};

static const struct dev_ops cmos_ops;

static struct cmos *to_cmos(struct device *dev)
{
	BUG_ON(dev->ops != &cmos_ops);
	return (struct cmos *)dev;
}

static u8 to_bcd(unsigned v)
{
	return (u8)(((v / 10) << 4) | (v % 10));
}

/* Item 3: encode a clock field as register B asks. */
static u8 encode(const struct cmos *c, unsigned v)
{
	return (c->nvram[RTC_REG_B] & REG_B_DM) ? (u8)v : to_bcd(v);
}

static u8 encode_hours(const struct cmos *c, unsigned hour)
{
	unsigned h12;

	if (c->nvram[RTC_REG_B] & REG_B_24H)
		return encode(c, hour);
	h12 = hour % HOURS_PER_HALF_DAY;
	if (h12 == 0)
		h12 = HOURS_PER_HALF_DAY;
	return encode(c, h12) | (hour >= HOURS_PER_HALF_DAY ? RTC_HOURS_PM : 0);
}

static bool is_clock_register(u8 index)
{
	switch (index) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY_OF_WEEK:
	case RTC_DAY_OF_MONTH:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY: return true;
	default: return false;
	}
}

/* Item 2: a clock register, from the host's wall time. */
static u8 read_clock(const struct cmos *c, u8 index)
{
	time_t now = (time_t)c->dev.host.wall_time(c->dev.host.opaque);
	struct tm tm;
	unsigned year;

	if (!gmtime_r(&now, &tm))
		return c->nvram[index];
	year = (unsigned)tm.tm_year + TM_YEAR_BASE;
	switch (index) {
	case RTC_SECONDS: return encode(c, (unsigned)tm.tm_sec);
	case RTC_MINUTES: return encode(c, (unsigned)tm.tm_min);
	case RTC_HOURS: return encode_hours(c, (unsigned)tm.tm_hour);
	case RTC_DAY_OF_WEEK: return encode(c, (unsigned)tm.tm_wday + 1);
	case RTC_DAY_OF_MONTH: return encode(c, (unsigned)tm.tm_mday);
	case RTC_MONTH: return encode(c, (unsigned)tm.tm_mon + 1);
	case RTC_YEAR: return encode(c, year % YEARS_PER_CENTURY);
	default: /* RTC_CENTURY */ return encode(c, year / YEARS_PER_CENTURY);
	}
}

static u8 read_data(const struct cmos *c)
{
	u8 index = c->index;

	if (is_clock_register(index) && c->dev.host.wall_time)
		return read_clock(c, index);
	switch (index) {
	case RTC_REG_A: return c->nvram[index] & ~REG_A_UIP;
	case RTC_REG_C: return 0;
	case RTC_REG_D: return REG_D_VRT;
	default: return c->nvram[index];
	}
}

static void write_data(struct cmos *c, u8 val)
{
	switch (c->index) {
	case RTC_REG_A: c->nvram[RTC_REG_A] = val & ~REG_A_UIP; break;
	case RTC_REG_C:
	case RTC_REG_D: break; /* read-only */
	default: c->nvram[c->index] = val; break;
	}
}

static void cmos_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct cmos *c = to_cmos(dev);
	u8 *p = data;

	for (unsigned i = 0; i < len; i++)
		p[i] = off + i == CMOS_PORT_DATA ? read_data(c) : CMOS_FLOATING;
}

static void cmos_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct cmos *c = to_cmos(dev);
	const u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		if (off + i == CMOS_PORT_INDEX)
			c->index = p[i] & CMOS_INDEX_MASK;
		else if (off + i == CMOS_PORT_DATA)
			write_data(c, p[i]);
	}
}

/* Item 1: NVRAM survives a reset. */
static void cmos_reset(struct device *dev)
{
	to_cmos(dev)->index = 0;
}

static void cmos_destroy(struct device *dev)
{
	free(to_cmos(dev));
}

static const struct dev_ops cmos_ops = {
	.name = "cmos",
	.read = cmos_read,
	.write = cmos_write,
	.reset = cmos_reset,
	.destroy = cmos_destroy,
};

struct device *cmos_create(const struct dev_host *host)
{
	struct cmos *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->dev.ops = &cmos_ops;
	if (host)
		c->dev.host = *host;
	c->nvram[RTC_REG_A] = REG_A_RESET;
	c->nvram[RTC_REG_B] = REG_B_RESET;
	c->nvram[RTC_REG_D] = REG_D_VRT;
	return &c->dev;
}

void cmos_set_byte(struct device *dev, u8 index, u8 val)
{
	to_cmos(dev)->nvram[index & CMOS_INDEX_MASK] = val;
}

static void set_le16(struct device *dev, u8 lo, u8 hi, u64 val)
{
	cmos_set_byte(dev, lo, (u8)val);
	cmos_set_byte(dev, hi, (u8)(val >> 8));
}

void cmos_set_memory(struct device *dev, u64 below_4g_bytes, u64 above_4g_bytes)
{
	u64 val;

	/* Base memory: the first MiB, of which DOS sees at most 640 KiB. */
	val = MIN(below_4g_bytes / KiB, (u64)CMOS_BASE_MEM_MAX_KIB);
	set_le16(dev, CMOS_BASE_MEM_LO, CMOS_BASE_MEM_HI, val);

	/* Extended memory: KiB above 1 MiB, as far as 16 bits reach (64 MiB). */
	val = below_4g_bytes > CMOS_EXT_MEM_START ? (below_4g_bytes - CMOS_EXT_MEM_START) / KiB : 0;
	val = MIN(val, (u64)CMOS_MEM_16BIT_MAX);
	set_le16(dev, CMOS_EXT_MEM_LO, CMOS_EXT_MEM_HI, val);
	set_le16(dev, CMOS_EXT_MEM2_LO, CMOS_EXT_MEM2_HI, val);

	/* Memory between 16 MiB and 4 GiB, in 64 KiB units. */
	val = below_4g_bytes > CMOS_MEM_16M_START
		      ? (below_4g_bytes - CMOS_MEM_16M_START) / CMOS_MEM_UNIT
		      : 0;
	val = MIN(val, (u64)CMOS_MEM_16BIT_MAX);
	set_le16(dev, CMOS_MEM_16M_LO, CMOS_MEM_16M_HI, val);

	/* Memory above 4 GiB, in 64 KiB units, 24 bits. */
	val = above_4g_bytes / CMOS_MEM_UNIT;
	cmos_set_byte(dev, CMOS_MEM_4G_LO, (u8)val);
	cmos_set_byte(dev, CMOS_MEM_4G_MID, (u8)(val >> 8));
	cmos_set_byte(dev, CMOS_MEM_4G_HI, (u8)(val >> 16));
}
