// SPDX-License-Identifier: MIT
/*
 * A 16550A UART: the guest's console (devices/serial.h).
 *
 * Guest-visible contract. The VMM puts COM1 at port 0x3f8, eight byte-wide
 * registers, IRQ 4. Offsets below are relative to the base; a wider access is
 * taken as that many byte accesses at consecutive offsets, like an ISA bus.
 *
 *   off  DLAB=0 read  DLAB=0 write  DLAB=1
 *   0    RBR          THR           DLL (divisor latch, low byte)
 *   1    IER          IER           DLM (divisor latch, high byte)
 *   2    IIR          FCR
 *   3    LCR          LCR
 *   4    MCR          MCR
 *   5    LSR          (ignored)
 *   6    MSR          (ignored)
 *   7    SCR          SCR
 *
 * 1. Transmit. A byte written to THR goes at once to host->console_write (to
 *    the receive FIFO in loopback mode). Transmission takes no time, so THR
 *    and the transmitter are always empty: LSR.THRE and LSR.TEMT are always
 *    set and the transmit FIFO never holds anything.
 *
 * 2. Receive. The host's stdin reader calls serial_receive() from its own
 *    thread, so every register access and every receive takes s->lock. Bytes
 *    go into a 16-byte FIFO (1-byte holding register while FCR.FIFO_ENABLE
 *    is clear); serial_receive() only takes what fits and the caller retries
 *    the rest, so host input is never lost. LSR.DR is set while the FIFO holds
 *    a byte; reading RBR pops one (an empty RBR reads 0).
 *
 * 3. Overrun. Only loopback can deliver a byte into a full FIFO (host input
 *    waits instead). As on the chip, that sets LSR.OE, which reading LSR
 *    clears; in FIFO mode the new byte is lost, in 16450 mode it overwrites
 *    the holding register.
 *
 * 4. FIFO control. FCR bit 0 enables the FIFOs (IIR bits 7:6 then read 11);
 *    changing it empties them. Bits 1 and 2 (clear RX/TX FIFO) self-clear.
 *    Bits 7:6 choose the RX trigger level (1, 4, 8 or 14 bytes). The other
 *    bits are only written while bit 0 is set, as the datasheet says.
 *
 * 5. Interrupts. IIR reports the highest-priority enabled source (16550D
 *    datasheet, table 4):
 *      line status (LSR.OE with IER.ELSI)           cleared by reading LSR
 *      RX data at or above the trigger level (RDA)  cleared by draining RBR
 *      RX data below the trigger level (timeout)    cleared by draining RBR
 *      THR empty (IER.ETBEI)                        cleared by reading IIR when
 *                                                   it is the reported source,
 *                                                   or by writing THR
 *      modem status (MSR delta bits, IER.EDSSI)     cleared by reading MSR
 *    The THR-empty source is raised when ETBEI goes from 0 to 1 (THR is
 *    empty) and after every THR write (the byte leaves at once).
 *
 * 6. The IRQ line. As on a PC, the UART's interrupt output reaches the PIC
 *    only through the OUT2 gate, and loopback forces the OUT2 pin inactive.
 *    So the line is high exactly while IIR reports a source, MCR.OUT2 is set
 *    and MCR.LOOP is clear. host->set_irq(opaque, irq, level) is called only
 *    when that level changes (level-triggered model); it may be called from
 *    the thread that calls serial_receive().
 *
 * 7. Modem lines. Outside loopback the modem inputs read as a connected
 *    terminal: CTS, DSR and DCD asserted, RI not. In loopback (MCR.LOOP) the
 *    outputs feed the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD, and a
 *    change sets the matching MSR delta bit (TERI on RI's falling edge).
 *    While in loopback the receiver is disconnected from the host:
 *    serial_receive() accepts nothing and serial_rx_ready() is false.
 *    serial_rts() reports the RTS output pin as the far end sees it (MCR.RTS,
 *    inactive in loopback); the host uses it for flow control.
 *
 * 8. DLL/DLM, LCR and SCR are stored and read back; the divisor and the line
 *    format have no effect on anything.
 *
 * Callbacks are called with s->lock held; they must not call back into the
 * device.
 *
 * LIMITATION: the character timeout fires at once: data below the trigger
 *    level is reported as a timeout interrupt (IIR 0x0c) straight away, not
 *    after four character times. Drivers treat the two the same way.
 * LIMITATION: no parity, framing or break conditions (LSR.PE/FE/BI and
 *    LSR bit 7 are never set), no DMA mode signalling, no transmit FIFO
 *    (nothing ever waits to be sent), no baud-rate timing.
 */
#include <pthread.h>
#include <stdlib.h>

#include "devices/serial.h"
#include "umbra/log.h"

/* Register offsets from the base. */
#define UART_RBR 0 /* read, DLAB=0: receive buffer */
#define UART_THR 0 /* write, DLAB=0: transmit holding */
#define UART_DLL 0 /* DLAB=1: divisor latch low */
#define UART_IER 1 /* DLAB=0: interrupt enable */
#define UART_DLM 1 /* DLAB=1: divisor latch high */
#define UART_IIR 2 /* read: interrupt identification */
#define UART_FCR 2 /* write: FIFO control */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */
#define UART_MSR 6 /* modem status */
#define UART_SCR 7 /* scratch */

/* IER bits. */
#define IER_ERBFI 0x01 /* received data available (and timeout) */
#define IER_ETBEI 0x02 /* transmit holding register empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f /* bits 7:4 always read 0 */

/* IIR: bit 0 clear means "a source is pending", bits 3:1 say which. */
#define IIR_NO_INT	 0x01
#define IIR_MSI		 0x00 /* modem status */
#define IIR_THRI	 0x02 /* THR empty */
#define IIR_RDI		 0x04 /* received data available */
#define IIR_RLSI	 0x06 /* receiver line status */
#define IIR_CTI		 0x0c /* character timeout */
#define IIR_FIFO_ENABLED 0xc0 /* bits 7:6 both set while FCR.FIFO_ENABLE */

/* FCR bits. */
#define FCR_FIFO_ENABLE	  0x01
#define FCR_CLEAR_RCVR	  0x02 /* self-clearing */
#define FCR_CLEAR_XMIT	  0x04 /* self-clearing; our TX FIFO is always empty */
#define FCR_DMA_MODE	  0x08
#define FCR_TRIGGER_MASK  0xc0
#define FCR_TRIGGER_SHIFT 6
#define FCR_STORED	  (FCR_FIFO_ENABLE | FCR_DMA_MODE | FCR_TRIGGER_MASK)

/* LCR bits. */
#define LCR_DLAB 0x80 /* divisor latch access */

/* MCR bits. */
#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08 /* on a PC: gates the UART interrupt to the PIC */
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f /* bits 7:5 always read 0 */

/* LSR bits. */
#define LSR_DR	   0x01 /* data ready */
#define LSR_OE	   0x02 /* overrun error */
#define LSR_PE	   0x04 /* parity error (never set) */
#define LSR_FE	   0x08 /* framing error (never set) */
#define LSR_BI	   0x10 /* break interrupt (never set) */
#define LSR_THRE   0x20 /* THR empty */
#define LSR_TEMT   0x40 /* transmitter empty */
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

/* MSR bits: deltas in 3:0, input lines in 7:4. */
#define MSR_DCTS      0x01
#define MSR_DDSR      0x02
#define MSR_TERI      0x04 /* trailing edge of RI */
#define MSR_DDCD      0x08
#define MSR_CTS	      0x10
#define MSR_DSR	      0x20
#define MSR_RI	      0x40
#define MSR_DCD	      0x80
#define MSR_CONNECTED (MSR_CTS | MSR_DSR | MSR_DCD) /* inputs outside loopback */

/* What an unimplemented register offset reads as. */
#define UART_FLOATING 0xff

struct serial {
	struct device dev;    /* first: handlers cast back */
	pthread_mutex_t lock; /* guards everything below */
	unsigned irq;
	int irq_level; /* last level passed to set_irq */

	u8 dll, dlm, ier, fcr, lcr, mcr, scr;
	u8 lsr_errors;	   /* sticky LSR error bits, cleared by reading LSR */
	u8 msr_delta;	   /* MSR bits 3:0, cleared by reading MSR */
	bool thr_ipending; /* THR-empty interrupt not yet acknowledged */

	u8 rx_fifo[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count; /* ring: oldest byte at rx_head */
};

static const struct dev_ops serial_ops;

static struct serial *to_serial(struct device *dev)
{
	BUG_ON(dev->ops != &serial_ops);
	return (struct serial *)dev;
}

static bool fifo_enabled(const struct serial *s)
{
	return s->fcr & FCR_FIFO_ENABLE;
}

/* Item 2: room for 16 bytes in FIFO mode, 1 in 16450 mode. */
static unsigned rx_capacity(const struct serial *s)
{
	return fifo_enabled(s) ? SERIAL_FIFO_SIZE : 1;
}

static unsigned rx_trigger_level(const struct serial *s)
{
	static const u8 levels[] = { 1, 4, 8, 14 };

	if (!fifo_enabled(s))
		return 1;
	return levels[(s->fcr & FCR_TRIGGER_MASK) >> FCR_TRIGGER_SHIFT];
}

static void rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* Items 2 and 3: append one received byte. */
static void rx_push(struct serial *s, u8 byte)
{
	if (s->rx_count == rx_capacity(s)) {
		s->lsr_errors |= LSR_OE;
		if (!fifo_enabled(s))
			s->rx_fifo[s->rx_head] = byte;
		return;
	}
	s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
	s->rx_count++;
}

static u8 rx_pop(struct serial *s)
{
	u8 byte;

	if (!s->rx_count)
		return 0;
	byte = s->rx_fifo[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
	s->rx_count--;
	return byte;
}

/* Item 7: the modem input lines (MSR bits 7:4) for a given MCR. */
static u8 modem_inputs(u8 mcr)
{
	u8 in = 0;

	if (!(mcr & MCR_LOOP))
		return MSR_CONNECTED;
	if (mcr & MCR_RTS)
		in |= MSR_CTS;
	if (mcr & MCR_DTR)
		in |= MSR_DSR;
	if (mcr & MCR_OUT1)
		in |= MSR_RI;
	if (mcr & MCR_OUT2)
		in |= MSR_DCD;
	return in;
}

/* Item 5: the IIR identification of the highest-priority pending source. */
static u8 pending_iid(const struct serial *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr_errors & LSR_ERRORS))
		return IIR_RLSI;
	if ((s->ier & IER_ERBFI) && s->rx_count)
		return s->rx_count >= rx_trigger_level(s) ? IIR_RDI : IIR_CTI;
	if ((s->ier & IER_ETBEI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_EDSSI) && s->msr_delta)
		return IIR_MSI;
	return IIR_NO_INT;
}

/* Item 6: recompute the line and tell the host only when it changes. */
static void update_irq(struct serial *s)
{
	int level = pending_iid(s) != IIR_NO_INT && (s->mcr & MCR_OUT2) && !(s->mcr & MCR_LOOP);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (s->dev.host.set_irq)
		s->dev.host.set_irq(s->dev.host.opaque, s->irq, level);
}

/* Item 1. */
static void write_thr(struct serial *s, u8 byte)
{
	s->thr_ipending = false;
	if (s->mcr & MCR_LOOP)
		rx_push(s, byte);
	else if (s->dev.host.console_write)
		s->dev.host.console_write(s->dev.host.opaque, &byte, 1);
	/* The byte left at once: THR is empty again. */
	s->thr_ipending = true;
}

/* Item 4. */
static void write_fcr(struct serial *s, u8 val)
{
	bool was_enabled = fifo_enabled(s);

	if (!(val & FCR_FIFO_ENABLE)) {
		if (was_enabled)
			rx_clear(s);
		s->fcr = 0;
		return;
	}
	if (!was_enabled || (val & FCR_CLEAR_RCVR))
		rx_clear(s);
	s->fcr = val & FCR_STORED;
}

static void write_ier(struct serial *s, u8 val)
{
	u8 changed = (s->ier ^ val) & IER_MASK;

	s->ier = val & IER_MASK;
	/* THR is always empty, so enabling ETBEI raises the source at once. */
	if (changed & IER_ETBEI)
		s->thr_ipending = s->ier & IER_ETBEI;
}

static void write_mcr(struct serial *s, u8 val)
{
	u8 old_in = modem_inputs(s->mcr), new_in, changed;

	s->mcr = val & MCR_MASK;
	new_in = modem_inputs(s->mcr);
	changed = old_in ^ new_in;
	if (changed & MSR_CTS)
		s->msr_delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		s->msr_delta |= MSR_DDSR;
	if (changed & MSR_DCD)
		s->msr_delta |= MSR_DDCD;
	if ((old_in & MSR_RI) && !(new_in & MSR_RI))
		s->msr_delta |= MSR_TERI;
}

static u8 read_reg(struct serial *s, u64 off)
{
	bool dlab = s->lcr & LCR_DLAB;
	u8 val;

	switch (off) {
	case UART_RBR: return dlab ? s->dll : rx_pop(s);
	case UART_IER: return dlab ? s->dlm : s->ier;
	case UART_IIR:
		val = pending_iid(s);
		if (val == IIR_THRI)
			s->thr_ipending = false;
		return val | (fifo_enabled(s) ? IIR_FIFO_ENABLED : 0);
	case UART_LCR: return s->lcr;
	case UART_MCR: return s->mcr;
	case UART_LSR:
		val = s->lsr_errors | LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
		s->lsr_errors = 0;
		return val;
	case UART_MSR:
		val = modem_inputs(s->mcr) | s->msr_delta;
		s->msr_delta = 0;
		return val;
	case UART_SCR: return s->scr;
	default: return UART_FLOATING;
	}
}

static void write_reg(struct serial *s, u64 off, u8 val)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (off) {
	case UART_THR:
		if (dlab)
			s->dll = val;
		else
			write_thr(s, val);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = val;
		else
			write_ier(s, val);
		break;
	case UART_FCR: write_fcr(s, val); break;
	case UART_LCR: s->lcr = val; break;
	case UART_MCR: write_mcr(s, val); break;
	case UART_SCR: s->scr = val; break;
	default: /* LSR and MSR writes are factory-test only: ignored */ break;
	}
}

static void serial_read(struct device *dev, u64 off, void *data, unsigned len)
{
	struct serial *s = to_serial(dev);
	u8 *p = data;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < len; i++)
		p[i] = read_reg(s, off + i);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(struct device *dev, u64 off, const void *data, unsigned len)
{
	struct serial *s = to_serial(dev);
	const u8 *p = data;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < len; i++)
		write_reg(s, off + i, p[i]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* Power-on state; lowers the IRQ line if it was high. Caller holds the lock. */
static void reset_locked(struct serial *s)
{
	s->dll = s->dlm = s->ier = s->fcr = s->lcr = s->mcr = s->scr = 0;
	s->lsr_errors = 0;
	s->msr_delta = 0;
	s->thr_ipending = false;
	rx_clear(s);
	update_irq(s);
}

static void serial_reset(struct device *dev)
{
	struct serial *s = to_serial(dev);

	pthread_mutex_lock(&s->lock);
	reset_locked(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_destroy(struct device *dev)
{
	struct serial *s = to_serial(dev);

	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct dev_ops serial_ops = {
	.name = "serial",
	.read = serial_read,
	.write = serial_write,
	.reset = serial_reset,
	.destroy = serial_destroy,
};

struct device *serial_create(const struct dev_host *host, unsigned irq)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL)) {
		free(s);
		return NULL;
	}
	s->dev.ops = &serial_ops;
	if (host)
		s->dev.host = *host;
	s->irq = irq;
	s->irq_level = 0; /* the line starts low; reset_locked() won't touch it */
	reset_locked(s);
	return &s->dev;
}

/* Item 2, the host side. */
size_t serial_receive(struct device *dev, const u8 *buf, size_t len)
{
	struct serial *s = to_serial(dev);
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP)) {
		n = MIN(len, (size_t)(rx_capacity(s) - s->rx_count));
		for (size_t i = 0; i < n; i++)
			rx_push(s, buf[i]);
		update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Item 7. */
bool serial_rts(struct device *dev)
{
	struct serial *s = to_serial(dev);
	bool rts;

	pthread_mutex_lock(&s->lock);
	rts = (s->mcr & (MCR_RTS | MCR_LOOP)) == MCR_RTS;
	pthread_mutex_unlock(&s->lock);
	return rts;
}

bool serial_rx_ready(struct device *dev)
{
	struct serial *s = to_serial(dev);
	bool ready;

	pthread_mutex_lock(&s->lock);
	ready = !(s->mcr & MCR_LOOP) && s->rx_count < rx_capacity(s);
	pthread_mutex_unlock(&s->lock);
	return ready;
}
