/* SPDX-License-Identifier: MIT */
/*
 * The 8259 PIC pair and the 8253/8254 PIT channel 0, as the images use them:
 * IRQ 0-7 on vectors 0x20-0x27 and IRQ 8-15 on 0x28-0x2f, edge triggered,
 * and a periodic tick.
 */
#ifndef IMAGES_PIC_H
#define IMAGES_PIC_H

#include <stdint.h>

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC_EOI	  0x20 /* non-specific end of interrupt */
#define PIC1_VECTOR_BASE 0x20
#define PIC1_MASK_ALL_BUT_IRQ0	    0xfe
#define PIC1_MASK_ALL_BUT_IRQ0_IRQ4 0xee

/* Initialise both PICs (ICW1-4); the master's mask is `master_mask`, the slave's all set. */
void pic_init(uint8_t master_mask);
/* End of interrupt for an IRQ of the master. */
void pic_eoi(void);
/* PIT channel 0 in rate-generator mode at `hz` ticks a second (IRQ 0). */
void pit_init(unsigned hz);

#endif
