/* SPDX-License-Identifier: MIT */
/*
 * hello.elf: the smallest guest that exercises Umbra's ELF64 boot contract
 * (include/umbra/bootinfo.h) and its basic devices. In order, it
 *   1. checks the boot magic in RSI and the boot info's magic and version;
 *   2. prints a greeting, the command line and the memory map on COM1;
 *   3. probes QEMU's fw_cfg;
 *   4. installs its own IDT (exceptions 0-31, PIT timer on vector 32), remaps
 *      the 8259 PIC, runs the PIT at 100 Hz and waits in hlt for 3 ticks;
 *   5. with the word "echo" on the command line: echoes serial input line
 *      by line, taken through the UART's IRQ 4 (see echo_run());
 *   6. exits through the debug-exit port with N from "exit=N".
 * "fault=ud" raises #UD after the greeting (reported, exit 0x7e);
 * "fault=triple" raises #UD with an empty IDT (the VMM sees a triple fault).
 */
#include <stdint.h>

#include <umbra/bootinfo.h>

#include "fwcfg.h"
#include "io.h"
#include "lib.h"
#include "pic.h"
#include "print.h"
#include "uart.h"

/* ---- IDT -------------------------------------------------------------- */

#define KERNEL_CS 0x08		  /* the boot contract's 64-bit code segment */
#define IDT_TYPE_INTR_GATE 0x0e	  /* 64-bit interrupt gate: clears IF */
#define IDT_ATTR_PRESENT 0x80
#define NR_EXCEPTIONS 32
#define TIMER_VECTOR 32		  /* IRQ0 after the PIC remap */
#define UART_VECTOR 0x24	  /* IRQ4 (COM1) after the PIC remap */
#define IDT_ENTRIES (UART_VECTOR + 1)

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* What exc_common in start.S hands to exception_handler(). */
struct exc_frame {
	uint64_t vector;
	uint64_t error_code;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

extern const uint64_t exc_stubs[NR_EXCEPTIONS];
void timer_stub(void);
void uart_stub(void);

static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(16)));

static void idt_set_gate(unsigned vec, uint64_t handler)
{
	struct idt_gate *g = &idt[vec];

	g->offset_lo = (uint16_t)handler;
	g->selector = KERNEL_CS;
	g->ist = 0;
	g->type_attr = IDT_ATTR_PRESENT | IDT_TYPE_INTR_GATE; /* DPL 0 */
	g->offset_mid = (uint16_t)(handler >> 16);
	g->offset_hi = (uint32_t)(handler >> 32);
	g->reserved = 0;
}

static void idt_load(const void *base, uint16_t limit)
{
	struct idt_ptr p = { .limit = limit, .base = (uint64_t)base };

	__asm__ volatile("lidt %0" : : "m"(p) : "memory");
}

static void idt_init(void)
{
	unsigned vec;

	for (vec = 0; vec < NR_EXCEPTIONS; vec++)
		idt_set_gate(vec, exc_stubs[vec]);
	idt_set_gate(TIMER_VECTOR, (uint64_t)timer_stub);
	idt_load(idt, sizeof(idt) - 1);
}

/* Called from exc_common with interrupts off; reports and leaves the VM. */
__attribute__((noreturn)) void exception_handler(const struct exc_frame *f);
void exception_handler(const struct exc_frame *f)
{
	kprintf("exception %u at rip 0x%llx err 0x%llx\n", (unsigned)f->vector,
		(unsigned long long)f->rip, (unsigned long long)f->error_code);
	debug_exit(EXIT_EXCEPTION);
}

/* ---- 8259 PIC and 8253/8254 PIT ---------------------------------------- */

#define TIMER_HZ 100
#define TIMER_TICKS_WANTED 3

static volatile unsigned timer_ticks;

/* Called from timer_stub in start.S. */
void timer_handler(void);
void timer_handler(void)
{
	timer_ticks++;
	pic_eoi();
}

static void wait_for_ticks(unsigned n)
{
	/*
	 * "sti; hlt" back to back: sti's one-instruction interrupt shadow means
	 * a tick cannot slip in between the check and the hlt and be missed.
	 */
	while (timer_ticks < n)
		__asm__ volatile("sti; hlt" : : : "memory");
	cpu_cli();
}

/* ---- "echo": serial input through IRQ 4 ---------------------------------- */

#define ECHO_RING_SIZE 256 /* a power of two; the UART FIFO holds only 16 */
#define ECHO_LINE_MAX 128  /* longer lines are cut */

/*
 * Bytes from the UART: the IRQ handler writes at echo_head, echo_run() reads
 * at echo_tail with interrupts off. Both indices run freely and wrap.
 */
static volatile uint8_t echo_ring[ECHO_RING_SIZE];
static volatile unsigned echo_head, echo_tail;
/*
 * Set by the IRQ handler when the ring is full: it leaves the rest in the
 * UART and turns the RX interrupt off; echo_run() turns it on again once it
 * has drained the ring. Without this, a sender faster than the guest (a
 * file on stdin, a slow guest CPU) refills the FIFO during each handler, the
 * next interrupt comes at the handler's iretq, and the ring overflows.
 */
static volatile unsigned echo_throttled;
static volatile unsigned uart_irqs;

/* Called from uart_stub in start.S. */
void uart_irq_handler(void);
void uart_irq_handler(void)
{
	/*
	 * Empty the receiver completely: the PIC is edge triggered, so the
	 * next interrupt needs the line to drop (FIFO empty) and rise again.
	 */
	while (uart_rx_ready()) {
		if (echo_head - echo_tail >= ECHO_RING_SIZE) {
			uart_disable_rx_irq(); /* the line drops: no edge is lost */
			echo_throttled = 1;
			break;
		}
		echo_ring[echo_head++ % ECHO_RING_SIZE] = uart_getc();
	}
	uart_irqs++;
	pic_eoi();
}

/*
 * Print each received line as "echo: <line>" ('\r' ignored) until a line
 * starting with 'q'. The output does not depend on timing: the IRQ count
 * is only reported as "irqs ok" (at least one) or "no irqs".
 */
static void echo_run(void)
{
	char line[ECHO_LINE_MAX + 1];
	unsigned len = 0;

	idt_set_gate(UART_VECTOR, (uint64_t)uart_stub);
	outb(PIC1_DATA, PIC1_MASK_ALL_BUT_IRQ0_IRQ4);
	uart_enable_rx_irq(); /* after the unmask: data already waiting raises IRQ 4 */
	kprintf("echo: ready\n");
	for (;;) {
		/* As in wait_for_ticks(): no interrupt is missed before hlt. */
		__asm__ volatile("sti; hlt" : : : "memory");
		cpu_cli();
		while (echo_tail != echo_head) {
			char c = (char)echo_ring[echo_tail++ % ECHO_RING_SIZE];

			if (c == '\r')
				continue;
			if (c == 'q' && len == 0)
				goto out;
			if (c == '\n') {
				line[len] = '\0';
				kprintf("echo: %s\n", line);
				len = 0;
			} else if (len < ECHO_LINE_MAX) {
				line[len++] = c;
			}
		}
		if (echo_throttled) { /* drained: let the UART interrupt again */
			echo_throttled = 0;
			uart_enable_rx_irq();
		}
	}
out:
	kprintf("echo: bye\n");
	kprintf(uart_irqs ? "echo: irqs ok\n" : "echo: no irqs\n");
}

/* ---- main --------------------------------------------------------------- */

static void print_memory_map(const struct umbra_boot_info *info)
{
	uint32_t i, n = info->nr_mem;

	kprintf("memory: %llu MiB in %u ranges\n",
		(unsigned long long)(info->ram_size >> 20), (unsigned)n);
	if (n > UMBRA_BOOT_MAX_MEM_ENTRIES)
		n = UMBRA_BOOT_MAX_MEM_ENTRIES;
	for (i = 0; i < n; i++) {
		const struct umbra_mem_entry *e = &info->mem[i];

		kprintf("  [0x%llx-0x%llx] %s\n", (unsigned long long)e->addr,
			(unsigned long long)(e->addr + e->len - 1),
			e->type == UMBRA_MEM_RAM ? "ram" : "reserved");
	}
}

void hello_main(const struct umbra_boot_info *info, uint64_t magic);
void hello_main(const struct umbra_boot_info *info, uint64_t magic)
{
	const char *cmdline;

	uart_init();
	if (magic != UMBRA_BOOT_MAGIC) {
		kprintf("bad boot magic 0x%llx\n", (unsigned long long)magic);
		debug_exit(EXIT_BAD_BOOT);
	}
	if (!info || info->magic != UMBRA_BOOT_MAGIC ||
	    info->version != UMBRA_BOOT_INFO_VERSION) {
		kprintf("bad boot info at 0x%llx\n",
			(unsigned long long)(uintptr_t)info);
		debug_exit(EXIT_BAD_BOOT);
	}
	cmdline = info->cmdline ? (const char *)(uintptr_t)info->cmdline : "";

	kprintf("hello from umbra guest\n");
	if (cmdline_is(cmdline, "fault", "ud")) {
		idt_init();
		__asm__ volatile("ud2");
	}
	if (cmdline_is(cmdline, "fault", "triple")) {
		idt_load(0, 0); /* #UD -> #GP -> #DF -> shutdown */
		__asm__ volatile("ud2");
	}

	kprintf("cmdline: %s\n", cmdline);
	print_memory_map(info);
	fwcfg_report();

	idt_init();
	pic_init(PIC1_MASK_ALL_BUT_IRQ0);
	pit_init(TIMER_HZ);
	wait_for_ticks(TIMER_TICKS_WANTED);
	/*
	 * Print the count waited for, not timer_ticks: a tick pending at the
	 * last iretq may already have been taken, and the output must not
	 * depend on timing.
	 */
	kprintf("timer: %u ticks\n", TIMER_TICKS_WANTED);
	if (cmdline_has_word(cmdline, "echo"))
		echo_run();

	kprintf("bye\n");
	debug_exit(cmdline_exit_code(cmdline));
}
