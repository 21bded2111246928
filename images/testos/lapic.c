/* SPDX-License-Identifier: MIT */
/* Local APIC timer (SDM 3A 11.5.4), PIT-calibrated, and the 8259 masked. */
#include "arch.h"
#include "console.h"
#include "lapic.h"
#include "paging.h"

/* LAPIC register offsets (SDM 3A table 11-1) */
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0	       /* spurious-interrupt vector register */
#define LAPIC_SVR_ENABLE 0x100 /* APIC software enable */
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_PERIODIC (1u << 17)
#define LAPIC_LVT_MASKED (1u << 16)
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LAPIC_DIV_16 0x3
#define APIC_BASE_ADDR_MASK 0xffffff000ULL

/* 8259 PIC and 8254 PIT ports */
#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PIT_PORT_B 0x61 /* bit 0: channel 2 gate, bit 1: speaker, bit 5: OUT2 */
#define PIT_HZ 1193182

volatile uint64_t timer_ticks;
void (*timer_hook)(struct trap_frame *f);
uint64_t tsc_per_ms;
struct trap_frame last_timer_frame;
volatile uint64_t last_timer_frame_addr;
static uint32_t timer_count;

static inline uint32_t lapic_read(unsigned reg)
{
	return *(volatile uint32_t *)(LAPIC_VA + reg);
}

static inline void lapic_write(unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC_VA + reg) = v;
}

uint64_t lapic_phys_base(void)
{
	return rdmsr(MSR_APIC_BASE) & APIC_BASE_ADDR_MASK;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

static void timer_irq(struct trap_frame *f)
{
	timer_ticks++;
	last_timer_frame = *f;
	last_timer_frame_addr = (uint64_t)f;
	lapic_eoi();
	/* A test waiting for an interrupt in user mode. */
	if ((f->cs & 3) == 3 && cur_catch && cur_catch->irq_vector == f->vector)
		catch_event(f);
	else if (timer_hook)
		timer_hook(f); /* preemption (proc.c) */
}

static void spurious_irq(struct trap_frame *f)
{
	(void)f; /* no EOI for the spurious vector (SDM 3A 11.9) */
}

static void pic_mask_all(void)
{
	/* ICW1-4: cascade, vectors 0x20/0x28, then mask every line. */
	outb(PIC1_CMD, 0x11);
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, 0x20);
	outb(PIC2_DATA, 0x28);
	outb(PIC1_DATA, 4);
	outb(PIC2_DATA, 2);
	outb(PIC1_DATA, 1);
	outb(PIC2_DATA, 1);
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
}

void lapic_init(void)
{
	pic_mask_all();
	irq_set_handler(VEC_TIMER, timer_irq);
	irq_set_handler(VEC_SPURIOUS, spurious_irq);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
}

/* LAPIC timer ticks (divide by 16) in 10 ms, measured with PIT channel 2 (mode 0). */
static uint32_t calibrate_10ms(void)
{
	uint16_t pit = PIT_HZ / 100;

	outb(PIT_PORT_B, (inb(PIT_PORT_B) & ~0x02) | 0x01); /* gate on, speaker off */
	outb(PIT_CMD, 0xb0); /* channel 2, lobyte/hibyte, mode 0 */
	outb(PIT_CH2, pit & 0xff);
	outb(PIT_CH2, pit >> 8);
	lapic_write(LAPIC_TIMER_DIV, LAPIC_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VEC_TIMER);
	uint64_t t0 = rdtsc();

	lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
	while (!(inb(PIT_PORT_B) & 0x20))
		;
	tsc_per_ms = (rdtsc() - t0) / 10;
	return 0xffffffff - lapic_read(LAPIC_TIMER_CUR);
}

void lapic_timer_stop(void)
{
	lapic_write(LAPIC_TIMER_INIT, 0); /* a count of 0 stops the timer (SDM 3A 11.5.4) */
}

void lapic_timer_one_shot(void)
{
	lapic_write(LAPIC_LVT_TIMER, VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, timer_count);
}

void lapic_timer_periodic(void)
{
	if (!timer_count) /* never started */
		return;
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_PERIODIC | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, timer_count);
}

void lapic_timer_start(unsigned hz)
{
	uint32_t per10ms = calibrate_10ms();

	timer_count = per10ms * 100 / hz;
	if (!timer_count)
		timer_count = 1;
	kprintf("lapic: timer %u ticks per 10 ms (div 16), %u Hz\n", per10ms, hz);
	lapic_write(LAPIC_TIMER_DIV, LAPIC_DIV_16);
	lapic_timer_periodic();
}
