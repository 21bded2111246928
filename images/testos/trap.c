/* SPDX-License-Identifier: MIT */
/*
 * IDT (SDM 3A 6.10, 6.14) and the common C handler for every vector: IRQ
 * handlers, the #PF hook, armed catches, and unexpected exceptions (which
 * fail the running test, or stop the VM with status 0x7e outside tests).
 */
#include "arch.h"
#include "console.h"
#include "gdt.h"
#include "lib.h"
#include "test.h"
#include "trap.h"

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

#define GATE_INTR 0x0e /* 64-bit interrupt gate: clears IF on entry */
#define GATE_P 0x80

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_t irq_handlers[256];
struct catch *volatile cur_catch;
int (*pf_hook)(struct trap_frame *f);
int (*user_fault_hook)(struct trap_frame *f);

extern const uint64_t exc_stubs[32]; /* entry.S */
extern char timer_stub[], spurious_stub[];

static void set_gate(unsigned vec, uint64_t addr, unsigned ist)
{
	idt[vec].offset_lo = addr & 0xffff;
	idt[vec].selector = KERNEL_CS;
	idt[vec].ist = ist;
	idt[vec].type_attr = GATE_P | GATE_INTR; /* DPL 0: `int n` from CPL3 is #GP */
	idt[vec].offset_mid = (addr >> 16) & 0xffff;
	idt[vec].offset_hi = addr >> 32;
	idt[vec].reserved = 0;
}

void idt_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };

	for (unsigned v = 0; v < 32; v++)
		set_gate(v, exc_stubs[v], (v == VEC_DF || v == VEC_NMI || v == VEC_MC) ? IST_DF : 0);
	set_gate(VEC_TIMER, (uint64_t)timer_stub, 0);
	set_gate(VEC_SPURIOUS, (uint64_t)spurious_stub, 0);
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* An interrupt gate of privilege @dpl: with 3, `int @vec` is allowed from CPL3 (SDM 3A 6.12.1.1). */
void idt_set_gate_dpl(unsigned vec, uint64_t addr, unsigned dpl)
{
	set_gate(vec, addr, 0);
	idt[vec].type_attr |= (dpl & 3) << 5;
}

void irq_set_handler(unsigned vector, irq_handler_t h)
{
	irq_handlers[vector] = h;
}

void frame_longjmp(struct trap_frame *f, const struct jmpbuf *jb, int val)
{
	f->rbx = jb->rbx;
	f->rbp = jb->rbp;
	f->r12 = jb->r12;
	f->r13 = jb->r13;
	f->r14 = jb->r14;
	f->r15 = jb->r15;
	f->rsp = jb->rsp;
	f->rip = jb->rip;
	f->rflags = jb->rflags;
	f->rax = val;
	f->cs = KERNEL_CS;
	f->ss = KERNEL_DS;
}

void catch_arm(struct catch *c, uint64_t irq_vector)
{
	c->irq_vector = irq_vector;
	c->caught = 0;
	c->vector = ~0ULL;
	cur_catch = c;
}

void catch_disarm(void)
{
	cur_catch = 0;
}

int catch_event(struct trap_frame *f)
{
	struct catch *c = cur_catch;

	if (!c)
		return 0;
	cur_catch = 0;
	c->caught = 1;
	c->vector = f->vector;
	c->error = f->error;
	c->cr2 = f->vector == VEC_PF ? read_cr2() : 0;
	c->rip = f->rip;
	c->cs = f->cs;
	c->frame = *f;
	c->frame_addr = (uint64_t)f;
	frame_longjmp(f, &c->jb, 1);
	return 1;
}

void trap_print(const char *what, const struct trap_frame *f)
{
	kprintf("%s vector %lu error 0x%lx rip 0x%lx cs 0x%lx rflags 0x%lx rsp 0x%lx cr2 0x%lx "
		"cr3 0x%lx\n",
		what, f->vector, f->error, f->rip, f->cs, f->rflags, f->rsp, read_cr2(), read_cr3());
}

void trap_dispatch(struct trap_frame *f)
{
	if (f->vector >= 32) {
		if (irq_handlers[f->vector])
			irq_handlers[f->vector](f);
		return;
	}
	if (f->vector == VEC_PF && pf_hook && pf_hook(f))
		return;
	if ((f->cs & 3) == 3 && user_fault_hook && user_fault_hook(f))
		return;
	if (catch_event(f))
		return;
	trap_print("EXCEPTION", f);
	if (test_abort_from_trap(f))
		return;
	debug_exit(EXIT_EXCEPTION);
}
