/* SPDX-License-Identifier: MIT */
/* CPUID feature detection: which architectural features tests may rely on. */
#ifndef TESTOS_CPU_H
#define TESTOS_CPU_H

#include <stdint.h>

struct cpu_features {
	int pge;      /* CPUID.1:EDX[13]  global pages */
	int pcid;     /* CPUID.1:ECX[17]  process-context identifiers */
	int smep;     /* CPUID.(7,0):EBX[7] */
	int smap;     /* CPUID.(7,0):EBX[20] */
	int invpcid;  /* CPUID.(7,0):EBX[10] */
	int nx;       /* CPUID.80000001h:EDX[20] */
	int pdpe1gb;  /* CPUID.80000001h:EDX[26] 1 GiB pages */
	int maxphyaddr; /* CPUID.80000008h:EAX[7:0] */
	char vendor[13];
};

extern struct cpu_features cpu;

void cpu_detect(void);
void cpu_print(void);

#endif /* TESTOS_CPU_H */
