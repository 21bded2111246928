// SPDX-License-Identifier: MIT
/*
 * A minimal i8042 (PS/2 controller): enough for a guest to find the
 * controller, run its self-test and reset the machine (devices/i8042.h).
 *
 * Guest-visible contract. One range at port 0x60, five bytes:
 *   offset 0 (port 0x60)  data: read the output buffer; write a parameter
 *   offset 4 (port 0x64)  read the status register; write a command
 *   offsets 1..3          not ours: read 0xff, writes ignored. (On a PC,
 *                         0x61 is system control port B; KVM's in-kernel
 *                         PIT claims it, so accesses to it never get here.)
 * A wider access is taken as byte accesses at consecutive offsets.
 *
 * 1. Status register: OBF (bit 0) while the output buffer holds a byte,
 *    SYS (bit 2, POST passed), CMD (bit 3, the last write was to port 0x64),
 *    KEYLOCK (bit 4, keyboard not inhibited). At reset it reads 0x1c.
 *
 * 2. Output buffer: one byte. Reading port 0x60 returns it and clears OBF;
 *    with OBF clear it returns the last byte again.
 *
 * 3. Commands (writes to port 0x64):
 *      0x20  read the command byte into the output buffer
 *      0x60  the next data write is the new command byte
 *      0xaa  controller self-test: 0x55 into the output buffer
 *      0xab  keyboard interface test: 0x00 (no fault) into the output buffer
 *      0xad  disable keyboard (command byte bit 4 set)
 *      0xae  enable keyboard (command byte bit 4 clear)
 *      0xd0  read the output port into the output buffer
 *      0xd1  the next data write is the output port; if its bit 0 (the
 *            active-low reset line) is clear, the machine resets
 *      0xf0..0xff  pulse the output lines whose bit is clear for ~6 us: bit 0
 *            is the reset line, so 0xfe (and every even one) resets
 *    A reset calls host->request_stop(opaque, VM_STOP_RESET, 0). Any other
 *    command is ignored (no output, no error).
 *
 * 4. The command byte resets to 0x45 (keyboard IRQ enabled, SYS, scan-code
 *    translation): stored and read back, no effect.
 *
 * LIMITATION: no keyboard and no mouse. Data writes with no command waiting
 *    for a parameter (commands to the keyboard) are ignored; nothing ever
 *    answers, so a driver times out and finds no device. IRQ 1 and IRQ 12
 *    are never raised. AUX commands (0xa7..0xa9, 0xd3, 0xd4) are ignored.
 * LIMITATION: the A20 gate (output port bit 1) is stored but A20 is always
 *    enabled.
 */
#include <stdlib.h>

#include "devices/i8042.h"

/* Offsets within the registered range. */
#define I8042_DATA     0 /* port 0x60 */
#define I8042_COMMAND  4 /* port 0x64, write */
#define I8042_STATUS   4 /* port 0x64, read */
#define I8042_FLOATING 0xff

/* Status register (item 1). */
#define STATUS_OBF     0x01 /* output buffer full */
#define STATUS_IBF     0x02 /* input buffer full: never, we take bytes at once */
#define STATUS_SYS     0x04 /* system flag: self-test passed */
#define STATUS_CMD     0x08 /* last write was a command (port 0x64) */
#define STATUS_KEYLOCK 0x10 /* keyboard not inhibited */
#define STATUS_RESET   (STATUS_SYS | STATUS_CMD | STATUS_KEYLOCK)

/* Controller commands (item 3). */
#define CMD_READ_CTR	  0x20
#define CMD_WRITE_CTR	  0x60
#define CMD_SELF_TEST	  0xaa
#define CMD_KBD_TEST	  0xab
#define CMD_KBD_DISABLE	  0xad
#define CMD_KBD_ENABLE	  0xae
#define CMD_READ_OUTPORT  0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_PULSE_FIRST	  0xf0 /* 0xf0..0xff: pulse lines whose bit is clear */

#define SELF_TEST_OK 0x55
#define KBD_TEST_OK  0x00

/* Command byte (item 4). */
#define CTR_KBD_INT	0x01
#define CTR_SYS		0x04
#define CTR_KBD_DISABLE 0x10
#define CTR_XLATE	0x40
#define CTR_RESET	(CTR_KBD_INT | CTR_SYS | CTR_XLATE)

/* Output port. Bit 0 is the CPU reset line, active low. */
#define OUTPORT_RESET_N 0x01
#define OUTPORT_A20	0x02
#define OUTPORT_RESET	(OUTPORT_RESET_N | OUTPORT_A20)

/* The pulse-command bit for the reset line. */
#define PULSE_RESET_N 0x01

/* What the next data-port write means. */
enum i8042_param { PARAM_NONE, PARAM_CTR, PARAM_OUTPORT };

struct i8042 {
	struct device dev; /* first: handlers cast back */
	u8 status;
	u8 outbuf;
	u8 ctr;	    /* command byte */
	u8 outport; /* output port */
	enum i8042_param param;
};

static void request_reset(struct i8042 *k)
{
	if (k->dev.host.request_stop)
		k->dev.host.request_stop(k->dev.host.opaque, VM_STOP_RESET, 0);
}

/* Item 2. */
static void put_output(struct i8042 *k, u8 val)
{
	k->outbuf = val;
	k->status |= STATUS_OBF;
}

/* Item 3. */
static void write_command(struct i8042 *k, u8 cmd)
{
	k->status |= STATUS_CMD;
	k->param = PARAM_NONE;
	if (cmd >= CMD_PULSE_FIRST) {
		if (!(cmd & PULSE_RESET_N))
			request_reset(k);
		return;
	}
	switch (cmd) {
	case CMD_READ_CTR: put_output(k, k->ctr); break;
	case CMD_WRITE_CTR: k->param = PARAM_CTR; break;
	case CMD_SELF_TEST:
		k->status |= STATUS_SYS;
		put_output(k, SELF_TEST_OK);
		break;
	case CMD_KBD_TEST: put_output(k, KBD_TEST_OK); break;
	case CMD_KBD_DISABLE: k->ctr |= CTR_KBD_DISABLE; break;
	case CMD_KBD_ENABLE: k->ctr &= ~CTR_KBD_DISABLE; break;
	case CMD_READ_OUTPORT: put_output(k, k->outport); break;
	case CMD_WRITE_OUTPORT: k->param = PARAM_OUTPORT; break;
	default: break;
	}
}

static void write_data(struct i8042 *k, u8 val)
{
	enum i8042_param param = k->param;

	k->status &= ~STATUS_CMD;
	k->param = PARAM_NONE;
	switch (param) {
	case PARAM_CTR: k->ctr = val; break;
	case PARAM_OUTPORT:
		k->outport = val;
		if (!(val & OUTPORT_RESET_N))
			request_reset(k);
		break;
	case PARAM_NONE: break; /* a keyboard command: there is no keyboard */
	}
}

static u8 read_reg(struct i8042 *k, u64 off)
{
	switch (off) {
	case I8042_DATA: k->status &= ~STATUS_OBF; return k->outbuf;
	case I8042_STATUS: return k->status;
	default: return I8042_FLOATING;
	}
}

static void i8042_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct i8042 *k = (struct i8042 *)dev;
	u8 *p = data;

	for (unsigned i = 0; i < len; i++)
		p[i] = read_reg(k, off + i);
}

static void i8042_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct i8042 *k = (struct i8042 *)dev;
	const u8 *p = data;

	for (unsigned i = 0; i < len; i++) {
		if (off + i == I8042_DATA)
			write_data(k, p[i]);
		else if (off + i == I8042_COMMAND)
			write_command(k, p[i]);
	}
}

static void i8042_reset(struct device *dev)
{
	struct i8042 *k = (struct i8042 *)dev;

	k->status = STATUS_RESET;
	k->outbuf = 0;
	k->ctr = CTR_RESET;
	k->outport = OUTPORT_RESET;
	k->param = PARAM_NONE;
}

static void i8042_destroy(struct device *dev)
{
	free((struct i8042 *)dev);
}

static const struct dev_ops i8042_ops = {
	.name = "i8042",
	.read = i8042_read,
	.write = i8042_write,
	.reset = i8042_reset,
	.destroy = i8042_destroy,
};

struct device *i8042_create(const struct dev_host *host)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->dev.ops = &i8042_ops;
	if (host)
		k->dev.host = *host;
	i8042_reset(&k->dev);
	return &k->dev;
}
