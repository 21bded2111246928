// SPDX-License-Identifier: MIT
/* Unit tests for the 16550A UART (devices/serial.c), driven with a fake host. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/bus.h"
#include "devices/serial.h"

/* Register offsets and bits, spelled out independently of serial.c. */
#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define IER_ERBFI    0x01
#define IER_ETBEI    0x02
#define IER_ELSI     0x04
#define IER_EDSSI    0x08
#define LCR_DLAB     0x80
#define LCR_8N1	     0x03
#define MCR_DTR	     0x01
#define MCR_RTS	     0x02
#define MCR_OUT1     0x04
#define MCR_OUT2     0x08
#define MCR_LOOP     0x10
#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_TRIG_4   0x40
#define FCR_TRIG_14  0xc0

#define TEST_IRQ 4

/* ---- fake host ------------------------------------------------------------ */

#define MAX_IRQ_CALLS 64

struct fake_host {
	pthread_mutex_t lock; /* set_irq may come from the receiving thread */
	u8 out[256];
	size_t out_len;
	int console_calls;
	unsigned irq_calls;
	unsigned irq_nums[MAX_IRQ_CALLS];
	int irq_levels[MAX_IRQ_CALLS];
	int level; /* last level seen */
	/* When set, console_write and set_irq call this (with the device lock held). */
	void (*hook)(struct fake_host *h);
	struct device *dev;
	bool bad_sequence; /* two calls in a row with the same level */
};

static void fake_set_irq(void *opaque, unsigned irq, int level)
{
	struct fake_host *h = opaque;

	pthread_mutex_lock(&h->lock);
	if (h->irq_calls && h->level == level)
		h->bad_sequence = true;
	if (h->irq_calls < MAX_IRQ_CALLS) {
		h->irq_nums[h->irq_calls] = irq;
		h->irq_levels[h->irq_calls] = level;
	}
	h->irq_calls++;
	h->level = level;
	pthread_mutex_unlock(&h->lock);
	if (h->hook)
		h->hook(h);
}

static void fake_console_write(void *opaque, const u8 *buf, size_t len)
{
	struct fake_host *h = opaque;

	assert_true(h->out_len + len <= sizeof(h->out));
	memcpy(h->out + h->out_len, buf, len);
	h->out_len += len;
	h->console_calls++;
	if (h->hook)
		h->hook(h);
}

struct fixture {
	struct fake_host host;
	struct device *dev;
};

static int setup(void **state)
{
	static struct fixture f;
	struct dev_host dh;

	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.host.lock, NULL);
	dh = (struct dev_host){
		.opaque = &f.host,
		.set_irq = fake_set_irq,
		.console_write = fake_console_write,
	};
	f.dev = serial_create(&dh, TEST_IRQ);
	assert_non_null(f.dev);
	f.host.dev = f.dev;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	f->dev->ops->destroy(f->dev);
	pthread_mutex_destroy(&f->host.lock);
	return 0;
}

static u8 inb(struct device *dev, u64 off)
{
	u8 v = 0x5a; /* poison: the device must overwrite it */

	dev->ops->read(dev, off, &v, 1);
	return v;
}

static void outb(struct device *dev, u64 off, u8 v)
{
	dev->ops->write(dev, off, &v, 1);
}

/* Assert the exact sequence of set_irq calls so far, then forget them. */
static void expect_irq_calls(struct fake_host *h, unsigned n, const int *levels)
{
	assert_int_equal(h->irq_calls, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(h->irq_nums[i], TEST_IRQ);
		assert_int_equal(h->irq_levels[i], levels[i]);
	}
	assert_false(h->bad_sequence);
	h->irq_calls = 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_power_on_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(inb(f->dev, IER), 0x00);
	assert_int_equal(inb(f->dev, IIR), 0x01); /* no interrupt, FIFOs off */
	assert_int_equal(inb(f->dev, LCR), 0x00);
	assert_int_equal(inb(f->dev, MCR), 0x00);
	assert_int_equal(inb(f->dev, LSR), 0x60); /* THRE | TEMT */
	assert_int_equal(inb(f->dev, MSR), 0xb0); /* DCD | DSR | CTS, no deltas */
	assert_int_equal(inb(f->dev, SCR), 0x00);
	assert_int_equal(inb(f->dev, RBR), 0x00); /* empty */
	assert_int_equal(inb(f->dev, 8), 0xff);	  /* outside the 8 registers */
	assert_true(serial_rx_ready(f->dev));
	assert_int_equal(f->host.irq_calls, 0);
}

static void test_dlab_divisor_latch(void **state)
{
	struct fixture *f = *state;

	outb(f->dev, LCR, LCR_DLAB | LCR_8N1);
	outb(f->dev, DLL, 0x0c); /* 9600 baud */
	outb(f->dev, DLM, 0x01);
	assert_int_equal(inb(f->dev, DLL), 0x0c);
	assert_int_equal(inb(f->dev, DLM), 0x01);
	assert_int_equal(f->host.out_len, 0); /* DLL write is not a THR write */
	assert_int_equal(inb(f->dev, LCR), LCR_DLAB | LCR_8N1);

	outb(f->dev, LCR, LCR_8N1);
	assert_int_equal(inb(f->dev, IER), 0x00); /* DLM is hidden again */
	outb(f->dev, IER, 0xff);
	assert_int_equal(inb(f->dev, IER), 0x0f); /* bits 7:4 read 0 */
	outb(f->dev, IER, 0);
	outb(f->dev, THR, 'Z');
	assert_int_equal(f->host.out_len, 1);
	assert_int_equal(f->host.out[0], 'Z');

	outb(f->dev, LCR, LCR_DLAB | LCR_8N1);
	assert_int_equal(inb(f->dev, DLL), 0x0c); /* untouched by the THR write */
	assert_int_equal(inb(f->dev, DLM), 0x01);

	/* A 16-bit access is two byte accesses: DLL then DLM. */
	u8 w[2] = { 0x34, 0x12 }, r[2] = { 0, 0 };

	f->dev->ops->write(f->dev, DLL, w, 2);
	f->dev->ops->read(f->dev, DLL, r, 2);
	assert_int_equal(r[0], 0x34);
	assert_int_equal(r[1], 0x12);
}

static void test_thr_reaches_console(void **state)
{
	struct fixture *f = *state;
	const char *msg = "Hello, umbra\n";

	for (size_t i = 0; i < strlen(msg); i++) {
		assert_int_equal(inb(f->dev, LSR) & 0x60, 0x60);
		outb(f->dev, THR, (u8)msg[i]);
		assert_int_equal(inb(f->dev, LSR), 0x60); /* empty again at once */
	}
	assert_int_equal(f->host.out_len, strlen(msg));
	assert_memory_equal(f->host.out, msg, strlen(msg));
	assert_int_equal(f->host.console_calls, (int)strlen(msg));
	outb(f->dev, SCR, 0xa5);
	assert_int_equal(inb(f->dev, SCR), 0xa5);
}

static void test_rx_fifo_and_dr(void **state)
{
	struct fixture *f = *state;

	outb(f->dev, FCR, FCR_ENABLE);
	assert_int_equal(inb(f->dev, IIR), 0xc1); /* FIFOs enabled, no source */
	assert_int_equal(serial_receive(f->dev, (const u8 *)"abc", 3), 3);
	assert_int_equal(inb(f->dev, LSR), 0x61);
	assert_int_equal(inb(f->dev, RBR), 'a');
	assert_int_equal(inb(f->dev, LSR), 0x61);
	assert_int_equal(inb(f->dev, RBR), 'b');
	assert_int_equal(inb(f->dev, RBR), 'c');
	assert_int_equal(inb(f->dev, LSR), 0x60);
	assert_int_equal(inb(f->dev, RBR), 0x00);
	/* The ring wraps correctly. */
	for (int round = 0; round < 3; round++) {
		u8 buf[10];

		for (int i = 0; i < 10; i++)
			buf[i] = (u8)(round * 10 + i);
		assert_int_equal(serial_receive(f->dev, buf, 10), 10);
		for (int i = 0; i < 10; i++)
			assert_int_equal(inb(f->dev, RBR), round * 10 + i);
	}
	assert_int_equal(inb(f->dev, LSR), 0x60);
	assert_int_equal(f->host.irq_calls, 0); /* IER = 0 */
}

static void test_rx_16450_holds_one_byte(void **state)
{
	struct fixture *f = *state;

	/* FIFOs off (the power-on state): a one-byte holding register. */
	assert_int_equal(serial_receive(f->dev, (const u8 *)"xy", 2), 1);
	assert_false(serial_rx_ready(f->dev));
	assert_int_equal(serial_receive(f->dev, (const u8 *)"y", 1), 0);
	assert_int_equal(inb(f->dev, LSR), 0x61); /* no overrun: the host waits */
	assert_int_equal(inb(f->dev, RBR), 'x');
	assert_true(serial_rx_ready(f->dev));
	assert_int_equal(serial_receive(f->dev, (const u8 *)"y", 1), 1);
	assert_int_equal(inb(f->dev, RBR), 'y');
}

static void test_fifo_full(void **state)
{
	struct fixture *f = *state;
	u8 buf[20];

	outb(f->dev, FCR, FCR_ENABLE);
	for (int i = 0; i < 20; i++)
		buf[i] = (u8)(0x40 + i);
	assert_int_equal(serial_receive(f->dev, buf, 20), 16);
	assert_false(serial_rx_ready(f->dev));
	assert_int_equal(serial_receive(f->dev, buf + 16, 4), 0);
	assert_int_equal(inb(f->dev, LSR), 0x61); /* full, but no OE */
	assert_int_equal(inb(f->dev, RBR), 0x40);
	assert_true(serial_rx_ready(f->dev));
	assert_int_equal(serial_receive(f->dev, buf + 16, 4), 1);
	for (int i = 1; i <= 16; i++)
		assert_int_equal(inb(f->dev, RBR), 0x40 + i);
	assert_int_equal(inb(f->dev, LSR), 0x60);
}

static void test_overrun_in_loopback(void **state)
{
	struct fixture *f = *state;

	outb(f->dev, FCR, FCR_ENABLE);
	outb(f->dev, MCR, MCR_LOOP);
	for (int i = 0; i < 17; i++)
		outb(f->dev, THR, (u8)(0x80 + i));
	assert_int_equal(f->host.out_len, 0);	  /* loopback: nothing leaves */
	assert_int_equal(inb(f->dev, LSR), 0x63); /* DR | OE | THRE | TEMT */
	assert_int_equal(inb(f->dev, LSR), 0x61); /* OE clears on read */
	for (int i = 0; i < 16; i++)
		assert_int_equal(inb(f->dev, RBR), 0x80 + i); /* the 17th is lost */
	assert_int_equal(inb(f->dev, LSR), 0x60);

	/* 16450 mode: the new byte overwrites the holding register. */
	outb(f->dev, FCR, 0);
	assert_int_equal(inb(f->dev, IIR), 0x01);
	outb(f->dev, THR, 'a');
	outb(f->dev, THR, 'b');
	assert_int_equal(inb(f->dev, LSR), 0x63);
	assert_int_equal(inb(f->dev, RBR), 'b');
	assert_int_equal(inb(f->dev, LSR), 0x60);
}

static void test_fcr_clears(void **state)
{
	struct fixture *f = *state;

	outb(f->dev, FCR, FCR_ENABLE);
	assert_int_equal(serial_receive(f->dev, (const u8 *)"12345", 5), 5);
	outb(f->dev, FCR, FCR_ENABLE | FCR_CLEAR_RX);
	assert_int_equal(inb(f->dev, LSR), 0x60);
	assert_int_equal(inb(f->dev, IIR), 0xc1); /* clear bit self-clears */
	assert_int_equal(serial_receive(f->dev, (const u8 *)"67", 2), 2);
	outb(f->dev, FCR, 0); /* disabling the FIFOs empties them */
	assert_int_equal(inb(f->dev, LSR), 0x60);
	assert_int_equal(inb(f->dev, IIR), 0x01);
	/* Trigger bits are not written while bit 0 is clear. */
	outb(f->dev, FCR, FCR_TRIG_14);
	assert_int_equal(inb(f->dev, IIR), 0x01);
}

static void test_iir_priorities(void **state)
{
	struct fixture *f = *state;

	outb(f->dev, FCR, FCR_ENABLE);
	/* Loopback drops CTS/DSR/DCD: DCTS | DDSR | DDCD become pending. */
	outb(f->dev, MCR, MCR_LOOP);
	outb(f->dev, IER, IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI);
	for (int i = 0; i < 17; i++)
		outb(f->dev, THR, (u8)i); /* fills the FIFO and overruns */

	assert_int_equal(inb(f->dev, IIR), 0xc6); /* line status first */
	assert_int_equal(inb(f->dev, IIR), 0xc6); /* IIR read does not clear it */
	assert_int_equal(inb(f->dev, LSR), 0x63);
	assert_int_equal(inb(f->dev, IIR), 0xc4); /* then received data */
	for (int i = 0; i < 15; i++)
		assert_int_equal(inb(f->dev, RBR), i);
	assert_int_equal(inb(f->dev, IIR), 0xc4); /* 1 byte >= trigger level 1 */
	assert_int_equal(inb(f->dev, RBR), 15);
	assert_int_equal(inb(f->dev, IIR), 0xc2); /* then THR empty... */
	assert_int_equal(inb(f->dev, IIR), 0xc0); /* ...acked by that read */
	assert_int_equal(inb(f->dev, IIR), 0xc0); /* modem status stays */
	assert_int_equal(inb(f->dev, MSR), 0x0b); /* DDCD | DDSR | DCTS, lines 0 */
	assert_int_equal(inb(f->dev, IIR), 0xc1);
	assert_int_equal(inb(f->dev, MSR), 0x00);

	/* A THR write re-arms THR empty; disabling a source hides it. */
	outb(f->dev, THR, 'q');
	assert_int_equal(inb(f->dev, IIR), 0xc4);
	outb(f->dev, IER, IER_ETBEI);
	assert_int_equal(inb(f->dev, IIR), 0xc2);
	assert_int_equal(inb(f->dev, IIR), 0xc1);
	/* Re-enabling ETBEI raises it again (THR is empty). */
	outb(f->dev, IER, 0);
	outb(f->dev, IER, IER_ETBEI);
	assert_int_equal(inb(f->dev, IIR), 0xc2);
	/* Writing IER with ETBEI already set does not. */
	outb(f->dev, IER, IER_ETBEI | IER_ERBFI);
	assert_int_equal(inb(f->dev, IIR), 0xc4); /* 'q' still there */
	assert_int_equal(inb(f->dev, RBR), 'q');
	assert_int_equal(inb(f->dev, IIR), 0xc1);
	/* Loopback gates the IRQ pin: nothing was ever raised. */
	assert_int_equal(f->host.irq_calls, 0);
}

static void test_rx_trigger_and_timeout(void **state)
{
	struct fixture *f = *state;

	outb(f->dev, IER, IER_ERBFI);
	outb(f->dev, FCR, FCR_ENABLE | FCR_TRIG_14);
	assert_int_equal(serial_receive(f->dev, (const u8 *)"abc", 3), 3);
	assert_int_equal(inb(f->dev, IIR), 0xcc); /* below trigger: timeout */
	assert_int_equal(serial_receive(f->dev, (const u8 *)"defghijklmn", 11), 11);
	assert_int_equal(inb(f->dev, IIR), 0xc4); /* 14 bytes: data available */
	assert_int_equal(inb(f->dev, RBR), 'a');
	assert_int_equal(inb(f->dev, IIR), 0xcc);

	outb(f->dev, FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_TRIG_4);
	assert_int_equal(inb(f->dev, IIR), 0xc1);
	assert_int_equal(serial_receive(f->dev, (const u8 *)"123", 3), 3);
	assert_int_equal(inb(f->dev, IIR), 0xcc);
	assert_int_equal(serial_receive(f->dev, (const u8 *)"4", 1), 1);
	assert_int_equal(inb(f->dev, IIR), 0xc4);
}

static void test_irq_line(void **state)
{
	struct fixture *f = *state;
	struct fake_host *h = &f->host;

	outb(f->dev, IER, IER_ERBFI);
	assert_int_equal(serial_receive(f->dev, (const u8 *)"a", 1), 1);
	assert_int_equal(inb(f->dev, IIR), 0x04);
	expect_irq_calls(h, 0, NULL); /* OUT2 clear: the line stays low */

	outb(f->dev, MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
	expect_irq_calls(h, 1, (const int[]){ 1 });
	assert_int_equal(inb(f->dev, IIR), 0x04);
	assert_int_equal(inb(f->dev, LSR), 0x61);
	expect_irq_calls(h, 0, NULL); /* no change, no call */
	assert_int_equal(inb(f->dev, RBR), 'a');
	expect_irq_calls(h, 1, (const int[]){ 0 });

	assert_int_equal(serial_receive(f->dev, (const u8 *)"b", 1), 1);
	expect_irq_calls(h, 1, (const int[]){ 1 });
	outb(f->dev, MCR, MCR_DTR | MCR_RTS); /* OUT2 off gates it */
	expect_irq_calls(h, 1, (const int[]){ 0 });
	outb(f->dev, MCR, MCR_OUT2);
	expect_irq_calls(h, 1, (const int[]){ 1 });
	outb(f->dev, MCR, MCR_OUT2 | MCR_LOOP); /* loopback forces the pin off */
	expect_irq_calls(h, 1, (const int[]){ 0 });
	outb(f->dev, MCR, MCR_OUT2);
	expect_irq_calls(h, 1, (const int[]){ 1 });
	/* Leaving loopback changed DCD etc., but EDSSI is off: no new source. */
	assert_int_equal(inb(f->dev, RBR), 'b');
	expect_irq_calls(h, 1, (const int[]){ 0 });

	/* THR empty: raised by enabling ETBEI, lowered by the IIR read... */
	outb(f->dev, IER, IER_ETBEI);
	expect_irq_calls(h, 1, (const int[]){ 1 });
	assert_int_equal(inb(f->dev, IIR), 0x02);
	expect_irq_calls(h, 1, (const int[]){ 0 });
	assert_int_equal(inb(f->dev, IIR), 0x01);
	/* ...and raised again once a written byte has left. */
	outb(f->dev, THR, '!');
	expect_irq_calls(h, 1, (const int[]){ 1 });
	outb(f->dev, IER, 0);
	expect_irq_calls(h, 1, (const int[]){ 0 });

	/* Line status: an overrun needs loopback, which gates the pin... */
	outb(f->dev, IER, IER_ELSI);
	outb(f->dev, MCR, MCR_OUT2 | MCR_LOOP);
	outb(f->dev, THR, 1);
	outb(f->dev, THR, 2); /* 16450 mode: overrun */
	expect_irq_calls(h, 0, NULL);
	/* ...until loopback ends with the OE still pending. */
	outb(f->dev, MCR, MCR_OUT2);
	expect_irq_calls(h, 1, (const int[]){ 1 });
	assert_int_equal(inb(f->dev, IIR), 0x06);
	assert_int_equal(inb(f->dev, LSR), 0x63);
	expect_irq_calls(h, 1, (const int[]){ 0 });

	/* Reset lowers a raised line. */
	outb(f->dev, IER, IER_ETBEI);
	expect_irq_calls(h, 1, (const int[]){ 1 });
	f->dev->ops->reset(f->dev);
	expect_irq_calls(h, 1, (const int[]){ 0 });
	assert_int_equal(inb(f->dev, IER), 0);
	assert_int_equal(inb(f->dev, MCR), 0);
	assert_int_equal(inb(f->dev, LSR), 0x60); /* the pending byte is gone */
	assert_int_equal(inb(f->dev, IIR), 0x01);
}

static void test_modem_status_irq(void **state)
{
	struct fixture *f = *state;
	struct fake_host *h = &f->host;

	outb(f->dev, IER, IER_EDSSI);
	outb(f->dev, MCR, MCR_OUT2);
	assert_int_equal(inb(f->dev, IIR), 0x01); /* no delta outside loopback */
	expect_irq_calls(h, 0, NULL);
	outb(f->dev, MCR, MCR_OUT2 | MCR_LOOP);
	/* CTS and DSR fell (RTS, DTR clear); DCD follows OUT2 and stays up. */
	assert_int_equal(inb(f->dev, IIR), 0x00); /* deltas, but pin gated */
	expect_irq_calls(h, 0, NULL);
	outb(f->dev, MCR, MCR_OUT2); /* back: lines rise again, deltas remain */
	expect_irq_calls(h, 1, (const int[]){ 1 });
	assert_int_equal(inb(f->dev, MSR), 0xb3);
	expect_irq_calls(h, 1, (const int[]){ 0 });
	assert_int_equal(inb(f->dev, MSR), 0xb0);
}

static void test_loopback_lines(void **state)
{
	struct fixture *f = *state;

	/* Linux's 8250 probe: LOOP | OUT2 | RTS reads back as DCD | CTS. */
	outb(f->dev, MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
	assert_int_equal(inb(f->dev, MSR) & 0xf0, 0x90);
	assert_int_equal(inb(f->dev, MSR), 0x90);

	outb(f->dev, MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT1 | MCR_OUT2);
	assert_int_equal(inb(f->dev, MCR), 0x1f);
	assert_int_equal(inb(f->dev, MSR), 0xf2); /* all lines; DSR rose */
	outb(f->dev, MCR, MCR_LOOP | MCR_DTR);
	/* CTS, RI, DCD fell: DCTS | TERI | DDCD, DSR still up. */
	assert_int_equal(inb(f->dev, MSR), 0x2d);
	assert_int_equal(inb(f->dev, MSR), 0x20);
	outb(f->dev, MCR, 0xff);
	assert_int_equal(inb(f->dev, MCR), 0x1f); /* bits 7:5 read 0 */

	/* Bytes come back; the host side cannot deliver meanwhile. */
	outb(f->dev, FCR, FCR_ENABLE);
	outb(f->dev, THR, 'L');
	outb(f->dev, THR, 'B');
	assert_int_equal(f->host.out_len, 0);
	assert_false(serial_rx_ready(f->dev));
	assert_int_equal(serial_receive(f->dev, (const u8 *)"x", 1), 0);
	assert_int_equal(inb(f->dev, RBR), 'L');
	assert_int_equal(inb(f->dev, RBR), 'B');
	assert_int_equal(inb(f->dev, LSR), 0x60);

	outb(f->dev, MCR, MCR_DTR);
	assert_true(serial_rx_ready(f->dev));
	outb(f->dev, THR, 'o');
	assert_int_equal(f->host.out_len, 1);
	assert_int_equal(f->host.out[0], 'o');
	assert_int_equal(inb(f->dev, LSR), 0x60);
}

/* The RTS pin the host's flow control watches: MCR.RTS, never in loopback. */
static void test_rts_pin(void **state)
{
	struct fixture *f = *state;

	assert_false(serial_rts(f->dev)); /* power-on: RTS low */
	outb(f->dev, MCR, MCR_DTR | MCR_OUT2);
	assert_false(serial_rts(f->dev));
	outb(f->dev, MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	assert_true(serial_rts(f->dev));
	outb(f->dev, MCR, MCR_RTS | MCR_LOOP);
	assert_false(serial_rts(f->dev));
	outb(f->dev, MCR, MCR_RTS);
	assert_true(serial_rts(f->dev));
	f->dev->ops->reset(f->dev);
	assert_false(serial_rts(f->dev));
}

static void test_on_the_bus(void **state)
{
	struct fixture *f = *state;
	struct bus bus = { 0 };
	u8 v;

	assert_int_equal(bus_register(&bus, SERIAL_COM1_BASE, SERIAL_IO_LEN, f->dev), 0);
	v = LCR_8N1;
	assert_true(bus_access(&bus, 0x3fb, &v, 1, true));
	v = 0;
	assert_true(bus_access(&bus, 0x3fb, &v, 1, false));
	assert_int_equal(v, LCR_8N1);
	v = 'k';
	assert_true(bus_access(&bus, 0x3f8, &v, 1, true));
	assert_int_equal(f->host.out[0], 'k');
	assert_true(bus_access(&bus, 0x3fd, &v, 1, false));
	assert_int_equal(v, 0x60);
	assert_false(bus_access(&bus, 0x400, &v, 1, false));
	free(bus.ranges); /* the fixture destroys the device */
}

static void test_null_callbacks(void **state)
{
	struct device *dev = serial_create(&(struct dev_host){ 0 }, TEST_IRQ);

	(void)state;
	assert_non_null(dev);
	outb(dev, IER, IER_ETBEI | IER_ERBFI);
	outb(dev, MCR, MCR_OUT2);
	outb(dev, THR, 'x');
	assert_int_equal(serial_receive(dev, (const u8 *)"y", 1), 1);
	assert_int_equal(inb(dev, RBR), 'y');
	dev->ops->destroy(dev);

	dev = serial_create(NULL, TEST_IRQ);
	assert_non_null(dev);
	outb(dev, THR, 'x');
	dev->ops->destroy(dev);
}

/* ---- receive racing with the vCPU ----------------------------------------- */

#define RACE_BYTES 20000

static u8 race_byte(unsigned i)
{
	return (u8)(i * 7 + i / 256 + 3);
}

static void *race_sender(void *arg)
{
	struct device *dev = arg;
	u8 buf[RACE_BYTES];
	size_t sent = 0;

	for (unsigned i = 0; i < RACE_BYTES; i++)
		buf[i] = race_byte(i);
	while (sent < RACE_BYTES) {
		/* Vary the chunk size so partial acceptance happens. */
		size_t chunk = MIN((size_t)(1 + sent % 23), RACE_BYTES - sent);
		size_t n = serial_receive(dev, buf + sent, chunk);

		sent += n;
		if (!n)
			sched_yield();
	}
	return NULL;
}

static void test_receive_races_reads(void **state)
{
	struct fixture *f = *state;
	pthread_t tid;
	unsigned got = 0;
	bool in_order = true;

	outb(f->dev, FCR, FCR_ENABLE | FCR_TRIG_4);
	outb(f->dev, IER, IER_ERBFI);
	outb(f->dev, MCR, MCR_OUT2);
	assert_int_equal(pthread_create(&tid, NULL, race_sender, f->dev), 0);
	while (got < RACE_BYTES) {
		u8 lsr = inb(f->dev, LSR);

		if (!(lsr & 0x01)) {
			/* Exercise IIR concurrently too. */
			(void)inb(f->dev, IIR);
			sched_yield();
			continue;
		}
		assert_int_equal(lsr & 0x02, 0); /* never an overrun */
		if (inb(f->dev, RBR) != race_byte(got))
			in_order = false;
		got++;
	}
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_true(in_order);
	assert_int_equal(inb(f->dev, LSR), 0x60);
	assert_int_equal(inb(f->dev, IIR), 0xc1);
	/* Level changes strictly alternate and end low. */
	assert_false(f->host.bad_sequence);
	assert_true(f->host.irq_calls >= 2);
	assert_int_equal(f->host.irq_calls % 2, 0);
	assert_int_equal(f->host.level, 0);
}

/*
 * The device lock, checked deterministically: while one side of the device
 * is inside a host callback (called with the lock held), the other side must
 * block. A second thread tries; after a pause it must still be waiting.
 */
#define BLOCK_PAUSE_NS 50000000 /* 50 ms */

struct blocker {
	struct device *dev;
	bool use_receive; /* else a register read */
	bool done;	  /* accessed atomically */
	size_t result;
};

static void *blocker_thread(void *arg)
{
	struct blocker *b = arg;

	if (b->use_receive)
		b->result = serial_receive(b->dev, (const u8 *)"z", 1);
	else
		b->result = inb(b->dev, LSR);
	__atomic_store_n(&b->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static struct blocker blocker;
static pthread_t blocker_tid;
static bool blocker_was_done;

static void start_blocker_and_pause(struct fake_host *h)
{
	struct timespec pause = { 0, BLOCK_PAUSE_NS };

	h->hook = NULL; /* once */
	blocker.dev = h->dev;
	assert_int_equal(pthread_create(&blocker_tid, NULL, blocker_thread, &blocker), 0);
	nanosleep(&pause, NULL);
	blocker_was_done = __atomic_load_n(&blocker.done, __ATOMIC_SEQ_CST);
}

static void test_lock_serializes(void **state)
{
	struct fixture *f = *state;

	outb(f->dev, FCR, FCR_ENABLE);

	/* A: the vCPU is in console_write; the stdin reader must wait. */
	memset(&blocker, 0, sizeof(blocker));
	blocker.use_receive = true;
	f->host.hook = start_blocker_and_pause;
	outb(f->dev, THR, 'a');
	assert_int_equal(pthread_join(blocker_tid, NULL), 0);
	assert_false(blocker_was_done);
	assert_true(__atomic_load_n(&blocker.done, __ATOMIC_SEQ_CST));
	assert_int_equal(blocker.result, 1);
	assert_int_equal(inb(f->dev, RBR), 'z');

	/* B: the reader is in set_irq from serial_receive; the vCPU must wait. */
	outb(f->dev, IER, IER_ERBFI);
	outb(f->dev, MCR, MCR_OUT2);
	memset(&blocker, 0, sizeof(blocker));
	blocker.use_receive = false;
	f->host.hook = start_blocker_and_pause;
	assert_int_equal(serial_receive(f->dev, (const u8 *)"q", 1), 1);
	assert_int_equal(pthread_join(blocker_tid, NULL), 0);
	assert_false(blocker_was_done);
	assert_int_equal(blocker.result, 0x61); /* it saw the byte: DR */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_power_on_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab_divisor_latch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thr_reaches_console, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_fifo_and_dr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_16450_holds_one_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrun_in_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fcr_clears, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_priorities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_trigger_and_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modem_status_irq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rts_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_the_bus, setup, teardown),
		cmocka_unit_test(test_null_callbacks),
		cmocka_unit_test_setup_teardown(test_receive_races_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_serializes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
