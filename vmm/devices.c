// SPDX-License-Identifier: MIT
/*
 * The platform: which device sits where, and the host services devices use.
 *
 * Port map (all port I/O; the LAPIC, IOAPIC, PIC and PIT are KVM's in-kernel
 * devices and never reach this bus):
 *   0x060, 0x064   i8042 (reset line only)          devices/i8042.c
 *   0x070-0x071    CMOS/RTC                          devices/cmos.c
 *   0x0f4          isa-debug-exit (--debug-exit-port) devices/debug_exit.c
 *   0x3f8-0x3ff    COM1 16550A, IRQ 4               devices/serial.c
 *   0x510-0x511    QEMU fw_cfg (legacy I/O)          devices/fw_cfg.c
 *   0x520-0x523    stats marks (counter snapshots)   devices/stats_mark.c
 *   0x600-0x603    ACPI PM1a event block (no events) devices/acpi_pm.c
 *   0x604, 0xb004  ACPI PM1a control (power-off)     devices/acpi_pm.c
 *   0x608-0x60b    ACPI PM timer (3.579545 MHz)      devices/pm_timer.c
 *   0xcf9          reset control                     devices/reset_ctl.c
 * Anything else is counted as unknown and, with --trace, logged.
 *
 * The machine is described to the guest by the CMOS memory sizes, fw_cfg,
 * and the ACPI tables (vmm/acpi.c) that describe_machine() writes into the
 * BIOS area for every image type: they name the PM1a ports and the PM timer
 * above, the reset register 0xcf9, SCI IRQ 9, and the LAPIC/IOAPIC.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "devices/acpi_pm.h"
#include "devices/cmos.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/pm_timer.h"
#include "devices/reset_ctl.h"
#include "devices/serial.h"
#include "devices/stats_mark.h"
#include "umbra/log.h"
#include "vmm/acpi.h"
#include "vmm/exitcode.h"
#include "vmm/shadow_mode.h"
#include "vmm/vm.h"

#define NR_VCPUS 1 /* the machine has one vCPU */

/* ---- host services lent to devices (struct dev_host) ---------------------- */

static void host_set_irq(void *opaque, unsigned irq, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level l = { .irq = irq, .level = level };

	/* KVM_IRQ_LINE is safe from any thread: the stdin reader raises RX. */
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		pr_warn("KVM_IRQ_LINE %u: %s", irq, strerror(errno));
}

static void host_console_write(void *opaque, const u8 *buf, size_t len)
{
	(void)opaque;
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* stdout closed: the guest keeps running, output is lost */
		buf += n;
		len -= (size_t)n;
	}
}

static void host_request_stop(void *opaque, enum vm_stop_reason why, int status)
{
	struct vm *vm = opaque;

	switch (why) {
	case VM_STOP_POWEROFF:
		pr_info("guest powered off");
		vm_request_stop(vm, UMBRA_EXIT_OK);
		break;
	case VM_STOP_RESET:
		pr_info("guest requested a reset");
		vm_request_stop(vm, UMBRA_EXIT_OK);
		break;
	case VM_STOP_GUEST_STATUS:
		/* A process status has 8 bits: (v << 1) | 1 stays odd after truncation. */
		pr_info("guest exit status %d (debug-exit)", status & 0xff);
		vm_request_stop(vm, status & 0xff);
		break;
	}
}

static s64 host_wall_time(void *opaque)
{
	(void)opaque;
	return (s64)time(NULL);
}

static u64 host_monotonic_ns(void *opaque)
{
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}

/* A guest program marks a point of its run: snapshot the counters (vmm/stats.h). */
static void host_stats_mark(void *opaque, u32 label)
{
	struct vm *vm = opaque;
	struct shadow_stats mmu;

	shadow_mode_snapshot_mmu(vm, &mmu);
	stats_add_mark(&vm->stats, label, &mmu);
	if (vm->trace) /* so that a trace splits by workload as the stats do */
		fprintf(vm->trace, "mark %u\n", (unsigned)label);
}

/* ---- creation --------------------------------------------------------------- */

static int attach(struct vm *vm, struct device *dev, u64 base, u64 len, const char *what)
{
	int r;

	if (!dev) {
		pr_err("cannot create device %s: out of memory", what);
		return UMBRA_EXIT_INTERNAL;
	}
	r = bus_register(&vm->pio, base, len, dev);
	if (r) {
		pr_err("cannot place %s at port 0x%llx: %s", what, (unsigned long long)base,
		       r == -EEXIST ? "another device is there" : strerror(-r));
		if (dev->ops->destroy)
			dev->ops->destroy(dev);
		return r == -EEXIST ? UMBRA_EXIT_USAGE : UMBRA_EXIT_INTERNAL;
	}
	return 0;
}

/* Tell the guest about its machine through fw_cfg and the CMOS. */
static int describe_machine(struct vm *vm)
{
	u64 below = vm->mem.low_ram_end;
	u64 above = vm->mem.high_ram_end ? vm->mem.high_ram_end - MEM_4G : 0;
	int r;

	cmos_set_memory(vm->cmos, below, above);
	/* The ACPI tables (RSDP first) go in the BIOS area, for every image type. */
	r = acpi_build(vm->mem.rom + (MEM_BIOS_START - MEM_ROM_START), MEM_BIOS_START,
		       MEM_ROM_END - MEM_BIOS_START, NR_VCPUS);
	if (r < 0) {
		pr_err("cannot build the ACPI tables: %s", strerror(-r));
		return UMBRA_EXIT_INTERNAL;
	}
	if (fw_cfg_add_u64(vm->fw_cfg, FW_CFG_RAM_SIZE, vm->mem.ram_bytes) ||
	    fw_cfg_add_u16(vm->fw_cfg, FW_CFG_NB_CPUS, NR_VCPUS) ||
	    fw_cfg_add_u16(vm->fw_cfg, FW_CFG_MAX_CPUS, NR_VCPUS)) {
		pr_err("fw_cfg: out of memory");
		return UMBRA_EXIT_INTERNAL;
	}
	return 0;
}

int devices_setup(struct vm *vm)
{
	const struct dev_host *h = &vm->dev_host;
	struct device *acpi;
	int r;

	vm->dev_host = (struct dev_host){
		.opaque = vm,
		.set_irq = host_set_irq,
		.console_write = host_console_write,
		.request_stop = host_request_stop,
		.wall_time = host_wall_time,
		.monotonic_ns = host_monotonic_ns,
		.stats_mark = host_stats_mark,
	};
	vm->serial = serial_create(h, SERIAL_COM1_IRQ);
	if ((r = attach(vm, vm->serial, SERIAL_COM1_BASE, SERIAL_IO_LEN, "serial (COM1)")))
		return r;
	vm->cmos = cmos_create(h);
	if ((r = attach(vm, vm->cmos, CMOS_IO_BASE, CMOS_IO_LEN, "cmos")))
		return r;
	vm->fw_cfg = fw_cfg_create(h);
	if ((r = attach(vm, vm->fw_cfg, FW_CFG_IO_BASE, FW_CFG_IO_LEN, "fw_cfg")))
		return r;
	if ((r = attach(vm, i8042_create(h), I8042_IO_BASE, I8042_IO_LEN, "i8042")))
		return r;
	acpi = acpi_pm_create(h);
	if ((r = attach(vm, acpi, ACPI_PM1A_CNT_Q35, ACPI_PM1A_CNT_LEN, "acpi-pm")))
		return r;
	/* The same device answers at both legacy addresses. */
	if (bus_register(&vm->pio, ACPI_PM1A_CNT_BOCHS, ACPI_PM1A_CNT_LEN, acpi)) {
		pr_err("cannot place acpi-pm at port 0x%x", ACPI_PM1A_CNT_BOCHS);
		return UMBRA_EXIT_INTERNAL;
	}
	if ((r = attach(vm, acpi_pm_evt_create(h), ACPI_PM1A_EVT_Q35, ACPI_PM1A_EVT_LEN,
			"acpi-pm event block")))
		return r;
	if ((r = attach(vm, pm_timer_create(h), ACPI_PM_TMR_Q35, ACPI_PM_TMR_LEN, "acpi-pm timer")))
		return r;
	if ((r = attach(vm, reset_ctl_create(h), RESET_CTL_PORT, RESET_CTL_LEN, "reset control")))
		return r;
	if ((r = attach(vm, stats_mark_create(h), STATS_MARK_PORT, STATS_MARK_LEN, "stats marks")))
		return r;
	if (vm->opts->debug_exit_port >= 0 &&
	    (r = attach(vm, debug_exit_create(h), (u64)vm->opts->debug_exit_port,
			DEBUG_EXIT_MAX_WIDTH /* 1, 2 or 4-byte writes */,
			"debug-exit (see --debug-exit-port)")))
		return r;
	return describe_machine(vm);
}

void devices_teardown(struct vm *vm)
{
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	vm->serial = vm->cmos = vm->fw_cfg = NULL;
}
