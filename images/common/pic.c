/* SPDX-License-Identifier: MIT */
/* The 8259 PICs and PIT channel 0 (pic.h). */
#include "pic.h"

#include "io.h"

#define PIC2_CMD		0xa0
#define PIC2_DATA		0xa1
#define PIC_ICW1_INIT_ICW4	0x11 /* init, edge triggered, cascade, ICW4 follows */
#define PIC_ICW4_8086		0x01
#define PIC2_VECTOR_BASE	0x28
#define PIC1_ICW3_SLAVE_ON_IRQ2 0x04 /* bit mask of the cascade input */
#define PIC2_ICW3_CASCADE_ID	0x02
#define PIC_MASK_ALL		0xff

#define PIT_CH0_DATA		 0x40
#define PIT_CMD			 0x43
#define PIT_CMD_CH0_LOHI_RATEGEN 0x34 /* channel 0, lobyte/hibyte, mode 2 */
#define PIT_HZ			 1193182

void pic_init(uint8_t master_mask)
{
	outb(PIC1_CMD, PIC_ICW1_INIT_ICW4);
	outb(PIC2_CMD, PIC_ICW1_INIT_ICW4);
	outb(PIC1_DATA, PIC1_VECTOR_BASE); /* ICW2 */
	outb(PIC2_DATA, PIC2_VECTOR_BASE);
	outb(PIC1_DATA, PIC1_ICW3_SLAVE_ON_IRQ2); /* ICW3 */
	outb(PIC2_DATA, PIC2_ICW3_CASCADE_ID);
	outb(PIC1_DATA, PIC_ICW4_8086); /* ICW4 */
	outb(PIC2_DATA, PIC_ICW4_8086);
	outb(PIC1_DATA, master_mask); /* OCW1: masks */
	outb(PIC2_DATA, PIC_MASK_ALL);
}

void pic_eoi(void)
{
	outb(PIC1_CMD, PIC_EOI);
}

void pit_init(unsigned hz)
{
	unsigned divisor = (PIT_HZ + hz / 2) / hz;

	outb(PIT_CMD, PIT_CMD_CH0_LOHI_RATEGEN);
	outb(PIT_CH0_DATA, divisor & 0xff);
	outb(PIT_CH0_DATA, divisor >> 8);
}
