// SPDX-License-Identifier: MIT
/*
 * emul.elf: runs, at CPL0, the instructions KVM's emulator rejects on PVM
 * hosts (shared/HOST.md) and checks their architectural effect, so that
 * Umbra's hw-mode fallback (decode/emulate.c) is tested from inside a guest.
 *
 * 1. Own GDT (same code/data selectors as the boot GDT, plus a 64-bit TSS
 *    with IST1), own IDT: int3 through a DPL3 trap gate, int $0x80 through a
 *    DPL3 interrupt gate on IST1, recovery handlers for #UD, #GP and #PF.
 * 2. One test per instruction, each printing "TEST <name> PASS", "TEST <name>
 *    FAIL <what was expected> <what was seen>" or "TEST <name> SKIP <why>"
 *    (an instruction CPUID does not report).
 * 3. "SUMMARY <passed> passed, <failed> failed", then the debug-exit port:
 *    0 when all passed (umbra exits 1), 1 otherwise (umbra exits 3).
 *
 * Self-contained on purpose (its own UART output, no images/common/): the
 * image must not change when other images' helpers do.
 */
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef unsigned __int128 u128;

#define COM1 0x3f8
#define UART_LSR 5
#define UART_LSR_THRE 0x20 /* transmit holding register empty */
#define DEBUG_EXIT_PORT 0xf4
#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS 0x20
#define GDT_CODE64 0x00af9a000000ffffull
#define GDT_DATA 0x00cf92000000ffffull
#define GATE_INTR 0xe
#define GATE_TRAP 0xf

#define RFLAGS_IF (1ull << 9)
#define RFLAGS_AC (1ull << 18)
#define CR4_OSXSAVE (1ull << 18)
#define PTE_P 1ull
#define PTE_RW 2ull
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull

/* An address no boot page table maps (the identity map ends at 4 GiB here). */
#define UNMAPPED_VA 0x800000000ull
#define NONCANONICAL_VA 0x0000800000000000ull
/* invpcid test: a 2 MiB page of the identity map that is remapped, and its new target. */
#define REMAP_VA 0x10000000ull
#define REMAP_TARGET 0x00600000ull

struct frame_rec {
	u64 rip, cs, rflags, rsp, ss, handler_rflags, handler_rsp, count;
};
struct fault_rec {
	u64 vector, error_code, rip, cr2, count;
};

struct frame_rec bp_rec, int80_rec;
struct fault_rec fault_rec;
u64 fault_recover_rip;

extern char bp_stub[], int80_stub[], ud_stub[], gp_stub[], pf_stub[], ist1_top[];
void emul_main(void);
void unexpected_exception(const u64 *frame);

static u64 gdt[6] __attribute__((aligned(16)));
static u64 idt[256 * 2] __attribute__((aligned(16)));
static struct __attribute__((packed)) {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3, iomap_base;
} tss __attribute__((aligned(16)));

static unsigned passed, failed;

/* ---- output -------------------------------------------------------------- */

static inline void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc_uart(char c)
{
	while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE))
		;
	outb(COM1, (u8)c);
}

static void puts_uart(const char *s)
{
	for (; *s; s++)
		putc_uart(*s);
}

static void put_hex(u64 v)
{
	char buf[19];
	int i = 18;

	buf[i] = '\0';
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	puts_uart(buf + i);
}

static void put_dec(u64 v)
{
	char buf[21];
	int i = 20;

	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_uart(buf + i);
}

static void exit_guest(u8 code)
{
	outb(DEBUG_EXIT_PORT, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void unexpected_exception(const u64 *frame)
{
	puts_uart("unexpected exception ");
	put_dec(fault_rec.vector);
	puts_uart(" error ");
	put_hex(fault_rec.error_code);
	puts_uart(" at rip ");
	put_hex(frame[0]);
	puts_uart("\n");
	exit_guest(1);
}

/* ---- results ------------------------------------------------------------- */

/* Check one value; the first mismatch of a test prints its FAIL line. */
static int check(const char *test, const char *what, u64 expected, u64 seen)
{
	if (expected == seen)
		return 0;
	puts_uart("TEST ");
	puts_uart(test);
	puts_uart(" FAIL ");
	puts_uart(what);
	puts_uart(": expected ");
	put_hex(expected);
	puts_uart(", saw ");
	put_hex(seen);
	puts_uart("\n");
	return 1;
}

static void result(const char *test, int bad)
{
	if (bad) {
		failed++;
		return;
	}
	passed++;
	puts_uart("TEST ");
	puts_uart(test);
	puts_uart(" PASS\n");
}

static void skip(const char *test, const char *why)
{
	puts_uart("TEST ");
	puts_uart(test);
	puts_uart(" SKIP ");
	puts_uart(why);
	puts_uart("\n");
}

/* ---- CPU helpers --------------------------------------------------------- */

static void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static int cpuid_bit(u32 leaf, unsigned reg, unsigned bit)
{
	u32 r[4];

	cpuid(leaf, 0, &r[0], &r[1], &r[2], &r[3]);
	return (r[reg] >> bit) & 1;
}

#define EBX 1
#define ECX 2
#define EDX 3

/* ---- item 1: descriptor tables ------------------------------------------- */

static void set_gate(unsigned vec, void *handler, unsigned type, unsigned dpl, unsigned ist)
{
	u64 off = (u64)handler;

	idt[vec * 2] = (off & 0xffff) | ((u64)SEL_CODE << 16) | ((u64)ist << 32) |
		       ((u64)(0x80 | dpl << 5 | type) << 40) | (((off >> 16) & 0xffff) << 48);
	idt[vec * 2 + 1] = off >> 32;
}

static void setup_tables(void)
{
	u64 base = (u64)&tss, limit = sizeof(tss) - 1;
	struct __attribute__((packed)) {
		u16 limit;
		u64 base;
	} gdtr = { sizeof(gdt) - 1, (u64)gdt }, idtr = { sizeof(idt) - 1, (u64)idt };

	tss.ist[0] = (u64)ist1_top;
	tss.iomap_base = sizeof(tss);
	gdt[SEL_CODE / 8] = GDT_CODE64;
	gdt[SEL_DATA / 8] = GDT_DATA;
	gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			   (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	set_gate(3, bp_stub, GATE_TRAP, 3, 0);
	set_gate(6, ud_stub, GATE_INTR, 0, 0);
	set_gate(13, gp_stub, GATE_INTR, 0, 0);
	set_gate(14, pf_stub, GATE_INTR, 0, 0);
	set_gate(0x80, int80_stub, GATE_INTR, 3, 1);
	__asm__ volatile("lgdt %0; lidt %1; ltr %w2" : : "m"(gdtr), "m"(idtr), "r"(SEL_TSS));
	/* Mask the PICs: the tests run with IF = 1 and want no interrupts. */
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
}

/* ---- item 2: the tests --------------------------------------------------- */

static void test_clac_stac(void)
{
	u64 after_stac, after_clac;
	int bad = 0;

	if (!cpuid_bit(7, EBX, 20)) {
		skip("clac_stac", "no SMAP in CPUID");
		return;
	}
	__asm__ volatile("stac; pushfq; popq %0; clac; pushfq; popq %1"
			 : "=r"(after_stac), "=r"(after_clac));
	bad |= check("clac_stac", "AC after stac", RFLAGS_AC, after_stac & RFLAGS_AC);
	bad |= check("clac_stac", "AC after clac", 0, after_clac & RFLAGS_AC);
	result("clac_stac", bad);
}

/* int3 through a trap gate, IF = 1: the frame, and IF still 1 in the handler. */
static void test_int3(void)
{
	u64 rip, rsp, flags, before = bp_rec.count;
	int bad = 0;

	__asm__ volatile("sti\n\t"
			 "pushfq\n\t"
			 "popq %2\n\t"
			 "leaq 1f(%%rip), %0\n\t"
			 "movq %%rsp, %1\n\t"
			 "int3\n"
			 "1:\tcli"
			 : "=&r"(rip), "=&r"(rsp), "=&r"(flags)
			 :
			 : "memory");
	bad |= check("int3", "handler entries", before + 1, bp_rec.count);
	bad |= check("int3", "frame rip (after int3)", rip, bp_rec.rip);
	bad |= check("int3", "frame cs", SEL_CODE, bp_rec.cs);
	bad |= check("int3", "frame rflags", flags, bp_rec.rflags);
	bad |= check("int3", "frame rsp", rsp, bp_rec.rsp);
	bad |= check("int3", "frame ss", SEL_DATA, bp_rec.ss);
	bad |= check("int3", "handler IF (trap gate)", RFLAGS_IF, bp_rec.handler_rflags & RFLAGS_IF);
	bad |= check("int3", "frame address", (rsp & ~15ull) - 40, bp_rec.handler_rsp);
	result("int3", bad);
}

/* int $0x80 through an interrupt gate on IST1: stack switch, IF cleared. */
static void test_int80(void)
{
	u64 rip, rsp, flags, before = int80_rec.count;
	int bad = 0;

	__asm__ volatile("sti\n\t"
			 "pushfq\n\t"
			 "popq %2\n\t"
			 "leaq 1f(%%rip), %0\n\t"
			 "movq %%rsp, %1\n\t"
			 "int $0x80\n"
			 "1:\tcli"
			 : "=&r"(rip), "=&r"(rsp), "=&r"(flags)
			 :
			 : "memory");
	bad |= check("int80", "handler entries", before + 1, int80_rec.count);
	bad |= check("int80", "frame rip (after int)", rip, int80_rec.rip);
	bad |= check("int80", "frame cs", SEL_CODE, int80_rec.cs);
	bad |= check("int80", "frame rflags", flags, int80_rec.rflags);
	bad |= check("int80", "frame rsp", rsp, int80_rec.rsp);
	bad |= check("int80", "frame ss", SEL_DATA, int80_rec.ss);
	bad |= check("int80", "handler IF (interrupt gate)", 0,
		     int80_rec.handler_rflags & RFLAGS_IF);
	bad |= check("int80", "frame on IST1", (u64)ist1_top - 40, int80_rec.handler_rsp);
	result("int80", bad);
}

static void test_xgetbv(void)
{
	u64 cr4;
	u32 lo, hi;
	int bad = 0;

	if (!cpuid_bit(1, ECX, 26)) {
		skip("xgetbv", "no XSAVE in CPUID");
		return;
	}
	__asm__ volatile("movq %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("movq %0, %%cr4" : : "r"(cr4 | CR4_OSXSAVE));
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	/* XCR0 resets to 1 (x87 only) and nobody here executed xsetbv. */
	bad |= check("xgetbv", "XCR0", 1, ((u64)hi << 32) | lo);
	result("xgetbv", bad);
}

static u8 movbe_buf[2 * 4096] __attribute__((aligned(4096)));

/*
 * 1 if movbe runs: CPUID reports it and a first movbe does not #UD. On our
 * PVM hosts KVM injects #UD for movbe at CPL0 although CPUID reports MOVBE
 * (no emulation-failure exit: the VMM never sees the instruction).
 */
static int movbe_usable(const char *test)
{
	u64 before = fault_rec.count;
	u32 v = 0;

	if (!cpuid_bit(1, ECX, 22)) {
		skip(test, "no MOVBE in CPUID");
		return 0;
	}
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
			 "movq %%rax, fault_recover_rip(%%rip)\n\t"
			 "movbe (%1), %0\n"
			 "1:"
			 : "+r"(v)
			 : "r"(movbe_buf)
			 : "rax", "memory");
	fault_recover_rip = 0;
	if (fault_rec.count != before) {
		skip(test, "movbe raised #UD at CPL0 although CPUID reports MOVBE (host KVM)");
		return 0;
	}
	return 1;
}

static void test_movbe(void)
{
	u64 *q = (u64 *)movbe_buf;
	u64 r64, r16 = 0xaaaaaaaaaaaaaaaaull, r32 = 0xaaaaaaaaaaaaaaaaull;
	u64 *split = (u64 *)(movbe_buf + 4096 - 4);
	int bad = 0;

	if (!movbe_usable("movbe"))
		return;
	q[0] = 0x0102030405060708ull;
	__asm__ volatile("movbe %1, %0" : "=r"(r64) : "m"(q[0]));
	__asm__ volatile("movbe %1, %k0" : "+r"(r32) : "m"(q[0]));
	__asm__ volatile("movbe %1, %w0" : "+r"(r16) : "m"(q[0]));
	bad |= check("movbe", "64-bit load", 0x0807060504030201ull, r64);
	bad |= check("movbe", "32-bit load (zero-extends)", 0x08070605ull, r32);
	bad |= check("movbe", "16-bit load (merges)", 0xaaaaaaaaaaaa0807ull, r16);
	__asm__ volatile("movbe %k1, %0" : "=m"(q[1]) : "r"(0x11223344u));
	bad |= check("movbe", "32-bit store", 0x44332211ull, q[1] & 0xffffffffull);
	/* A store that straddles two pages. */
	__asm__ volatile("movbe %1, %0" : "=m"(*split) : "r"(0x1122334455667788ull));
	bad |= check("movbe", "split-page store", 0x8877665544332211ull, *split);
	result("movbe", bad);
}

/* movbe onto an unmapped page: #PF, error code W (not present, supervisor), CR2. */
static void test_movbe_pf(void)
{
	u64 before = fault_rec.count;
	int bad = 0;

	if (!movbe_usable("movbe_pf"))
		return;
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
			 "movq %%rax, fault_recover_rip(%%rip)\n\t"
			 "movbe %%ecx, (%0)\n"
			 "1:"
			 :
			 : "r"(UNMAPPED_VA), "c"(0)
			 : "rax", "memory");
	fault_recover_rip = 0;
	bad |= check("movbe_pf", "faults", before + 1, fault_rec.count);
	bad |= check("movbe_pf", "vector", 14, fault_rec.vector);
	bad |= check("movbe_pf", "error code", 0x2, fault_rec.error_code);
	bad |= check("movbe_pf", "cr2", UNMAPPED_VA, fault_rec.cr2);
	result("movbe_pf", bad);
}

/* movbe from a non-canonical address: #GP(0). */
static void test_movbe_gp(void)
{
	u64 before = fault_rec.count;
	u32 v = 0;
	int bad = 0;

	if (!movbe_usable("movbe_gp"))
		return;
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
			 "movq %%rax, fault_recover_rip(%%rip)\n\t"
			 "movbe (%1), %0\n"
			 "1:"
			 : "+r"(v)
			 : "r"(NONCANONICAL_VA)
			 : "rax", "memory");
	fault_recover_rip = 0;
	bad |= check("movbe_gp", "faults", before + 1, fault_rec.count);
	bad |= check("movbe_gp", "vector", 13, fault_rec.vector);
	bad |= check("movbe_gp", "error code", 0, fault_rec.error_code);
	result("movbe_gp", bad);
}

static u128 cx16_slot __attribute__((aligned(16)));

static int cmpxchg16b(u128 *p, u64 *lo, u64 *hi, u64 new_lo, u64 new_hi)
{
	u8 z;

	__asm__ volatile("lock cmpxchg16b %1; setz %0"
			 : "=q"(z), "+m"(*p), "+a"(*lo), "+d"(*hi)
			 : "b"(new_lo), "c"(new_hi)
			 : "memory", "cc");
	return z;
}

static void test_cmpxchg16b(void)
{
	u64 lo = 0x1111, hi = 0x2222;
	int bad = 0, z;

	if (!cpuid_bit(1, ECX, 13)) {
		skip("cmpxchg16b", "no CX16 in CPUID");
		return;
	}
	cx16_slot = ((u128)0x2222 << 64) | 0x1111;
	z = cmpxchg16b(&cx16_slot, &lo, &hi, 0x3333, 0x4444);
	bad |= check("cmpxchg16b", "ZF on match", 1, (u64)z);
	bad |= check("cmpxchg16b", "stored low", 0x3333, (u64)cx16_slot);
	bad |= check("cmpxchg16b", "stored high", 0x4444, (u64)(cx16_slot >> 64));
	bad |= check("cmpxchg16b", "RAX kept", 0x1111, lo);
	lo = 0x5555;
	hi = 0x6666;
	z = cmpxchg16b(&cx16_slot, &lo, &hi, 0x7777, 0x8888);
	bad |= check("cmpxchg16b", "ZF on mismatch", 0, (u64)z);
	bad |= check("cmpxchg16b", "RAX loaded", 0x3333, lo);
	bad |= check("cmpxchg16b", "RDX loaded", 0x4444, hi);
	bad |= check("cmpxchg16b", "memory unchanged", 0x3333, (u64)cx16_slot);
	result("cmpxchg16b", bad);
}

static u64 flush_line[8] __attribute__((aligned(64)));

static void test_cache_lines(void)
{
	if (cpuid_bit(7, EBX, 24)) {
		flush_line[0] = 42;
		__asm__ volatile("clwb %0" : "+m"(flush_line[0]));
		result("clwb", check("clwb", "data", 42, flush_line[0]));
	} else {
		skip("clwb", "no CLWB in CPUID");
	}
	if (cpuid_bit(7, EBX, 23)) {
		flush_line[1] = 43;
		__asm__ volatile("clflushopt %0" : "+m"(flush_line[1]));
		result("clflushopt", check("clflushopt", "data", 43, flush_line[1]));
	} else {
		skip("clflushopt", "no CLFLUSHOPT in CPUID");
	}
	flush_line[2] = 44;
	__asm__ volatile("clflush %0" : "+m"(flush_line[2]));
	result("clflush", check("clflush", "data", 44, flush_line[2]));
}

static void invpcid(u64 type, u64 pcid, u64 va)
{
	struct {
		u64 pcid, va;
	} desc = { pcid, va };

	__asm__ volatile("invpcid %1, %0" : : "r"(type), "m"(desc) : "memory");
}

/* The PDE that maps `va` in the boot identity map (2 MiB pages). */
static u64 *pde_of(u64 va)
{
	u64 cr3, *pml4, *pdpt, *pd;

	__asm__ volatile("movq %%cr3, %0" : "=r"(cr3));
	pml4 = (u64 *)(cr3 & PTE_ADDR);
	pdpt = (u64 *)(pml4[(va >> 39) & 511] & PTE_ADDR);
	pd = (u64 *)(pdpt[(va >> 30) & 511] & PTE_ADDR);
	return &pd[(va >> 21) & 511];
}

/* Remap a 2 MiB page, invpcid type 0 (that address), then type 2 (all) after undoing it. */
static void test_invpcid(void)
{
	volatile u64 *probe = (volatile u64 *)REMAP_VA;
	volatile u64 *target = (volatile u64 *)REMAP_TARGET;
	u64 *pde, old;
	int bad = 0;

	if (!cpuid_bit(7, EBX, 10)) {
		skip("invpcid", "no INVPCID in CPUID");
		return;
	}
	*probe = 0x1234;
	*target = 0xabcd;
	pde = pde_of(REMAP_VA);
	old = *pde;
	bad |= check("invpcid", "identity map PDE", REMAP_VA | PTE_PS | PTE_P | PTE_RW,
		     old & (PTE_ADDR | PTE_PS | PTE_P | PTE_RW));
	*pde = REMAP_TARGET | (old & ~PTE_ADDR);
	invpcid(0, 0, REMAP_VA);
	bad |= check("invpcid", "new mapping after type 0", 0xabcd, *probe);
	*pde = old;
	invpcid(2, 0, 0);
	bad |= check("invpcid", "old mapping after type 2", 0x1234, *probe);
	result("invpcid", bad);
}

void emul_main(void)
{
	puts_uart("emul: hw-mode instruction fallback test\n");
	setup_tables();
	test_clac_stac();
	test_int3();
	test_int80();
	test_xgetbv();
	test_movbe();
	test_movbe_pf();
	test_movbe_gp();
	test_cmpxchg16b();
	test_cache_lines();
	test_invpcid();
	puts_uart("SUMMARY ");
	put_dec(passed);
	puts_uart(" passed, ");
	put_dec(failed);
	puts_uart(" failed\n");
	exit_guest(failed ? 1 : 0);
}
