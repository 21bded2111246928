/* SPDX-License-Identifier: MIT */
/* CPUID feature detection (SDM 2A, CPUID). */
#include "arch.h"
#include "console.h"
#include "cpu.h"
#include "lib.h"

struct cpu_features cpu;

void cpu_detect(void)
{
	uint32_t a, b, c, d, max, maxext;

	cpuid(0, 0, &max, &b, &c, &d);
	memcpy(cpu.vendor, &b, 4);
	memcpy(cpu.vendor + 4, &d, 4);
	memcpy(cpu.vendor + 8, &c, 4);
	cpuid(1, 0, &a, &b, &c, &d);
	cpu.pge = !!(d & (1u << 13));
	cpu.pcid = !!(c & (1u << 17));
	if (max >= 7) {
		cpuid(7, 0, &a, &b, &c, &d);
		cpu.smep = !!(b & (1u << 7));
		cpu.invpcid = !!(b & (1u << 10));
		cpu.smap = !!(b & (1u << 20));
	}
	cpuid(0x80000000, 0, &maxext, &b, &c, &d);
	if (maxext >= 0x80000001) {
		cpuid(0x80000001, 0, &a, &b, &c, &d);
		cpu.nx = !!(d & (1u << 20));
		cpu.pdpe1gb = !!(d & (1u << 26));
	}
	cpu.maxphyaddr = 36;
	if (maxext >= 0x80000008) {
		cpuid(0x80000008, 0, &a, &b, &c, &d);
		cpu.maxphyaddr = a & 0xff;
	}
}

void cpu_print(void)
{
	kprintf("cpu: %s maxphyaddr %d:%s%s%s%s%s%s%s\n", cpu.vendor, cpu.maxphyaddr,
		cpu.pge ? " pge" : "", cpu.nx ? " nx" : "", cpu.pdpe1gb ? " pdpe1gb" : "",
		cpu.smep ? " smep" : "", cpu.smap ? " smap" : "", cpu.pcid ? " pcid" : "",
		cpu.invpcid ? " invpcid" : "");
}
