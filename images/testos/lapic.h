/* SPDX-License-Identifier: MIT */
/*
 * Local APIC (xAPIC, memory-mapped; SDM 3A 11) and its timer in periodic
 * mode, calibrated against PIT channel 2. The 8259 PICs are remapped to
 * 0x20-0x2f and masked: only LAPIC interrupts are used.
 */
#ifndef TESTOS_LAPIC_H
#define TESTOS_LAPIC_H

#include <stdint.h>

#include "trap.h"

extern volatile uint64_t timer_ticks;
/* Called by every timer interrupt after the EOI (the scheduler, proc.c). */
extern void (*timer_hook)(struct trap_frame *f);
/* TSC ticks per millisecond, measured with the PIT by lapic_timer_start(). */
extern uint64_t tsc_per_ms;
/* The last timer interrupt's frame and where it was on the stack. */
extern struct trap_frame last_timer_frame;
extern volatile uint64_t last_timer_frame_addr;

uint64_t lapic_phys_base(void); /* from IA32_APIC_BASE */
void lapic_init(void);		/* needs paging_init() (LAPIC_VA) */
void lapic_timer_start(unsigned hz);
/*
 * For tests that count ticks exactly (tests/t72_irqflag.c): stop the timer
 * (a request already in the IRR stays there), arm a single expiry one
 * period from now, and go back to the periodic ticks of lapic_timer_start
 * (the test runner does so after every test).
 */
void lapic_timer_stop(void);
void lapic_timer_one_shot(void);
void lapic_timer_periodic(void);
void lapic_eoi(void);

#endif /* TESTOS_LAPIC_H */
