// SPDX-License-Identifier: MIT
/*
 * Shadow mode: the privileged instructions, on the virtual state
 * (decode/emulate.h, EMU_MODE_SHADOW). The guest kernel runs at real CPL3,
 * so each of these traps; here it runs as at the *virtual* CPL, with the
 * faults the SDM gives at virtual CPL3 or for bad operands.
 *
 * 1. mov to/from CR0, CR2, CR3, CR4, CR8 with the reserved-bit and
 *    consistency checks of SDM Vol. 3A §2.5 and Vol. 2B MOV (Control
 *    Registers); CR3, CR0/CR4/EFER changes are reported as EMU_NOTE_*; in
 *    PAE paging outside long mode, the PDPTE loads of §4.4.1 (through
 *    ops->load_pdptes, EMU_NOTE_PDPTE).
 * 2. clts, lmsw, smsw (UMIP), invlpg, wbinvd, invd, hlt.
 * 3. The virtual IF and IOPL: cli, sti (with STI blocking), pushf, popf.
 * 4. rdmsr/wrmsr: the MSRs emu_cpu holds here, the rest through ops->msr;
 *    rdtsc/rdtscp (#GP(0) at CPL > 0 under CR4.TSD), the TSC through it.
 * 5. xsetbv (ops->write_xcr) and swapgs.
 * 6. mov to/from DR0-DR7 (SDM Vol. 2B MOV—Move to/from Debug Registers) on
 *    the virtual debug registers; rd/wr{fs,gs}base (SDM Vol. 2B) when the
 *    guest's CR4.FSGSBASE allows them.
 */
#include <string.h>

#include "decode/emulate_internal.h"
#include "shadow/x86.h"

/* CR0 bits that exist (SDM Vol. 3A Figure 2-7); writes of the other low bits are ignored. */
#define CR0_DEFINED                                                                                \
	(CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | \
	 CR0_PG)
#define CR0_HIGH_RESERVED GENMASK_ULL(63, 32)
/* CR0 bits whose change the shadow MMU must see. */
#define CR0_PAGING_BITS (CR0_PE | CR0_PG | CR0_WP)
/* LMSW loads only these (SDM Vol. 2A LMSW). */
#define LMSW_BITS (CR0_PE | CR0_MP | CR0_EM | CR0_TS)
/* CR4 bits whose change the shadow MMU must see (SDM Vol. 3A §4.10.4.1). */
#define CR4_PAGING_BITS                                                                       \
	(CR4_PSE | CR4_PAE | CR4_PGE | CR4_PCIDE | CR4_SMEP | CR4_SMAP | CR4_PKE | CR4_LA57 | \
	 CR4_PKS)
#define CR8_TPR_MASK	  0xfull /* SDM Vol. 3A §10.8.6.1 */
#define CR3_LOW_PCID_BITS GENMASK_ULL(11, 0)

/*
 * EFER bits the virtual CPU has (SDM Vol. 3A §2.2.1); LMA is read-only.
 * virt.efer_valid narrows them to the guest's CPUID (NX, SYSCALL).
 */
#define EFER_VALID	 (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)
#define EFER_PAGING_BITS (EFER_LME | EFER_NXE)

/*
 * RFLAGS bits POPF may change at CPL0 in 64-bit mode (SDM Vol. 2B POPF):
 * everything but RF (cleared), VM, VIF, VIP (unchanged) and the reserved bits.
 */
#define POPF_MASK                                                                            \
	(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_TF | RFLAGS_IF | \
	 RFLAGS_DF | RFLAGS_OF | RFLAGS_IOPL_MASK | RFLAGS_NT | RFLAGS_AC | RFLAGS_ID)

/* Debug registers (SDM Vol. 3A §17.2.3, §17.2.4). */
/*
 * Reserved bits that read as 1, with bit 16 (RTM, active low): the
 * virtual CPU has no RTM debugging, so it reads 1 as it does on CPUs
 * without it, whatever the guest writes (Linux writes 0 at boot, and its
 * #DB handler would take a 0 there for an RTM event).
 */
#define DR6_FIXED1	 0xffff0ff0ull
#define DR7_FIXED1	 0x400ull /* bit 10 reads as 1 */
#define DR_HIGH_RESERVED GENMASK_ULL(63, 32)

/* PAT entry types that exist (SDM Vol. 3A §11.12.2, Table 11-10): UC WC WT WP WB UC-. */
#define PAT_TYPE_VALID_MASK ((1u << 0) | (1u << 1) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7))

static unsigned iopl_of(const struct emu_cpu *cpu)
{
	return (unsigned)((cpu->rflags & RFLAGS_IOPL_MASK) >> RFLAGS_IOPL_SHIFT);
}

static bool is_cpl0(struct insn_ctx *c)
{
	return emu_cpl_of(c->cpu) == 0;
}

/* The GPR operand `i` of the instruction, or NULL. */
static const struct reg_slot *gpr_op(struct insn_ctx *c, unsigned i)
{
	const cs_x86_op *op = emu_op(c, i);

	return op && op->type == X86_OP_REG ? emu_slot_of(op->reg) : NULL;
}

/* ---- item 1: control registers ------------------------------------------- */

/* Is PAE paging outside long mode on with these values (SDM Vol. 3A §4.1.1)? */
static bool pae_paging(u64 cr0, u64 cr4, u64 efer)
{
	return (cr0 & CR0_PG) && (cr4 & CR4_PAE) && !(efer & EFER_LMA);
}

/*
 * A PDPTE load (§4.4.1) from the PDPT at `cr3` into the working copy, for a
 * write that leaves PAE paging on: #GP(0) if the VMM finds a reserved bit.
 */
static enum step load_pdptes(struct insn_ctx *c, u64 cr3)
{
	u64 regs[4];

	if (!c->ops->load_pdptes)
		return STEP_UNKNOWN;
	if (!c->ops->load_pdptes(c->ops->opaque, cr3, regs))
		return emu_raise(c, EXC_GP(0));
	memcpy(c->cpu->pdpte, regs, sizeof(regs));
	c->notes |= EMU_NOTE_PDPTE;
	return STEP_DONE;
}

/* The CR0 and CR4 bits whose change reloads the PDPTEs in PAE paging (§4.4.1). */
#define CR0_PDPTE_BITS (CR0_CD | CR0_NW | CR0_PG)
#define CR4_PDPTE_BITS (CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP)

static enum step write_cr0(struct insn_ctx *c, u64 v)
{
	struct emu_cpu *cpu = c->cpu;

	bool pg_on = (v & CR0_PG) && !(cpu->cr0 & CR0_PG);
	bool pg_off = !(v & CR0_PG) && (cpu->cr0 & CR0_PG);
	u64 efer = cpu->efer;

	if (v & CR0_HIGH_RESERVED)
		return emu_raise(c, EXC_GP(0));
	v = (v & CR0_DEFINED) | CR0_ET; /* ET is fixed to 1 */
	if (((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
		return emu_raise(c, EXC_GP(0));
	/* 64-bit code cannot leave paging (SDM Vol. 3A §9.8.5.4: go through compat mode). */
	if (pg_off && emu_long64(cpu))
		return emu_raise(c, EXC_GP(0));
	if (pg_off && (cpu->cr4 & CR4_PCIDE))
		return emu_raise(c, EXC_GP(0));
	/* Enabling paging with EFER.LME activates IA-32e mode; it needs PAE (§9.8.5). */
	if (pg_on && (cpu->efer & EFER_LME) && !(cpu->cr4 & CR4_PAE))
		return emu_raise(c, EXC_GP(0));
	if (!(v & CR0_WP) && (cpu->cr4 & CR4_CET))
		return emu_raise(c, EXC_GP(0));
	if (pg_on && (efer & EFER_LME))
		efer |= EFER_LMA;
	if (pg_off)
		efer &= ~EFER_LMA;
	if (pae_paging(v, cpu->cr4, efer) && ((v ^ cpu->cr0) & CR0_PDPTE_BITS)) {
		enum step s = load_pdptes(c, cpu->cr3);

		if (s != STEP_DONE)
			return s;
	}
	cpu->efer = efer;
	if ((v ^ cpu->cr0) & CR0_PAGING_BITS)
		c->notes |= EMU_NOTE_PAGING_MODE;
	cpu->cr0 = v;
	return STEP_DONE;
}

static u64 cr3_reserved(const struct emu_cpu *cpu)
{
	unsigned maxphyaddr = cpu->virt.maxphyaddr ? cpu->virt.maxphyaddr : X86_MAXPHYADDR_MAX;

	return GENMASK_ULL(63, maxphyaddr);
}

static enum step write_cr3(struct insn_ctx *c, u64 v)
{
	struct emu_cpu *cpu = c->cpu;
	bool noflush = false;

	if (cpu->cr4 & CR4_PCIDE) {
		noflush = v & CR3_NOFLUSH;
		v &= ~CR3_NOFLUSH;
	}
	if (v & cr3_reserved(cpu))
		return emu_raise(c, EXC_GP(0));
	if (pae_paging(cpu->cr0, cpu->cr4, cpu->efer)) {
		enum step s = load_pdptes(c, v);

		if (s != STEP_DONE)
			return s;
	}
	cpu->cr3 = v;
	c->notes |= EMU_NOTE_CR3;
	c->cr3_noflush = noflush;
	return STEP_DONE;
}

static enum step write_cr4(struct insn_ctx *c, u64 v)
{
	struct emu_cpu *cpu = c->cpu;
	u64 valid = cpu->virt.cr4_valid ? cpu->virt.cr4_valid : EMU_CR4_VALID_DEFAULT;
	u64 changed = v ^ cpu->cr4;

	if (v & ~valid)
		return emu_raise(c, EXC_GP(0));
	if (cpu->efer & EFER_LMA) {
		/* IA-32e mode needs PAE and cannot switch paging depth (§2.5). */
		if (!(v & CR4_PAE) || (changed & CR4_LA57))
			return emu_raise(c, EXC_GP(0));
	} else if (v & CR4_PCIDE) {
		return emu_raise(c, EXC_GP(0)); /* PCIDE needs IA-32e mode */
	}
	if ((changed & v & CR4_PCIDE) && (cpu->cr3 & CR3_LOW_PCID_BITS))
		return emu_raise(c, EXC_GP(0)); /* setting PCIDE with a nonzero PCID */
	if ((v & CR4_CET) && !(cpu->cr0 & CR0_WP))
		return emu_raise(c, EXC_GP(0));
	if (pae_paging(cpu->cr0, v, cpu->efer) && (changed & CR4_PDPTE_BITS)) {
		enum step s = load_pdptes(c, cpu->cr3);

		if (s != STEP_DONE)
			return s;
	}
	if (changed & CR4_PAGING_BITS)
		c->notes |= EMU_NOTE_PAGING_MODE;
	cpu->cr4 = v;
	return STEP_DONE;
}

/* mov crN, r64 / mov r64, crN (SDM Vol. 2B MOV—Move to/from Control Registers). */
static enum step do_mov_cr(struct insn_ctx *c)
{
	const cs_x86_op *dst = emu_op(c, 0), *src = emu_op(c, 1);
	bool to_cr = dst && dst->type == X86_OP_REG && dst->reg >= X86_REG_CR0 &&
		     dst->reg <= X86_REG_CR15;
	x86_reg cr = to_cr ? dst->reg : src->reg;
	const struct reg_slot *g = gpr_op(c, to_cr ? 1 : 0);
	struct emu_cpu *cpu = c->cpu;
	u64 v;

	/* The GPR is 64 bits in 64-bit mode, 32 bits in protected mode. */
	if (!g || g->high8 || g->size != (emu_long64(cpu) ? 8 : 4))
		return STEP_UNKNOWN;
	if (cr != X86_REG_CR0 && cr != X86_REG_CR2 && cr != X86_REG_CR3 && cr != X86_REG_CR4 &&
	    cr != X86_REG_CR8)
		return emu_raise(c, EXC_UD());
	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	if (!to_cr) {
		v = cr == X86_REG_CR0	? cpu->cr0
		    : cr == X86_REG_CR2 ? cpu->cr2
		    : cr == X86_REG_CR3 ? cpu->cr3
		    : cr == X86_REG_CR4 ? cpu->cr4
					: cpu->virt.cr8;
		emu_reg_set(cpu, g, v);
		return STEP_DONE;
	}
	v = emu_reg_get(cpu, g);
	switch (cr) {
	case X86_REG_CR0: return write_cr0(c, v);
	case X86_REG_CR2: cpu->cr2 = v; return STEP_DONE;
	case X86_REG_CR3: return write_cr3(c, v);
	case X86_REG_CR4: return write_cr4(c, v);
	default:
		if (v & ~CR8_TPR_MASK)
			return emu_raise(c, EXC_GP(0));
		cpu->virt.cr8 = v;
		c->notes |= EMU_NOTE_TPR;
		return STEP_DONE;
	}
}

static bool is_mov_cr(struct insn_ctx *c)
{
	for (unsigned i = 0; i < c->x86->op_count; i++) {
		const cs_x86_op *op = &c->x86->operands[i];

		if (op->type == X86_OP_REG && op->reg >= X86_REG_CR0 && op->reg <= X86_REG_CR15)
			return true;
	}
	return false;
}

/* ---- item 2 -------------------------------------------------------------- */

/* clts: CR0.TS = 0; #GP(0) at CPL > 0 (SDM Vol. 2A CLTS). */
static enum step do_clts(struct insn_ctx *c)
{
	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	c->cpu->cr0 &= ~CR0_TS;
	return STEP_DONE;
}

/* lmsw r/m16: CR0 bits 3:0, PE can be set but not cleared (SDM Vol. 2A LMSW). */
static enum step do_lmsw(struct insn_ctx *c)
{
	enum step st;
	u16 v;

	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	st = emu_read_rm16(c, emu_op(c, 0), &v);
	if (st != STEP_DONE)
		return st;
	c->cpu->cr0 = (c->cpu->cr0 & ~(LMSW_BITS & ~CR0_PE)) | (v & LMSW_BITS);
	return STEP_DONE;
}

/*
 * smsw r/m: CR0 into a register (its operand size) or bits 15:0 into
 * memory; #GP(0) at CPL > 0 when CR4.UMIP = 1 (SDM Vol. 2B SMSW).
 */
static enum step do_smsw(struct insn_ctx *c)
{
	const cs_x86_op *op = emu_op(c, 0);
	const struct reg_slot *s;
	enum step st;
	u16 v16;
	u64 la;

	if (!op)
		return STEP_UNKNOWN;
	if (!is_cpl0(c) && (c->cpu->cr4 & CR4_UMIP))
		return emu_raise(c, EXC_GP(0));
	if (op->type == X86_OP_REG) {
		if (!(s = emu_slot_of(op->reg)))
			return STEP_UNKNOWN;
		emu_reg_set(c->cpu, s, c->cpu->cr0);
		return STEP_DONE;
	}
	st = emu_operand_la(c, op, &la);
	if (st != STEP_DONE)
		return st;
	v16 = (u16)c->cpu->cr0;
	return emu_mem_write(c, la, &v16, sizeof(v16), emu_data_access(c->cpu, 0));
}

/*
 * invlpg m: invalidate the translation of one address in the current PCID,
 * global ones too; a no-op for a non-canonical address (SDM Vol. 2A INVLPG).
 */
static enum step do_invlpg(struct insn_ctx *c)
{
	const cs_x86_op *op = emu_op(c, 0);
	u64 la, pcid;

	if (!op || op->type != X86_OP_MEM)
		return STEP_UNKNOWN;
	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	if (emu_operand_la(c, op, &la) != STEP_DONE)
		return STEP_DONE; /* non-canonical (the only fault possible here): nothing to do */
	pcid = (c->cpu->cr4 & CR4_PCIDE) ? c->cpu->cr3 & CR3_PCID_MASK : 0;
	if (!c->ops->flush_tlb(c->ops->opaque, EMU_FLUSH_INVLPG, pcid, la))
		return STEP_HOST_ERROR;
	return STEP_DONE;
}

/* wbinvd, invd: no effect on our coherent guest memory; #GP(0) at CPL > 0. */
static enum step do_cpl0_nop(struct insn_ctx *c)
{
	return is_cpl0(c) ? STEP_DONE : emu_raise(c, EXC_GP(0));
}

/* hlt: #GP(0) at CPL > 0; else the VMM waits for an interrupt (SDM Vol. 2A HLT). */
static enum step do_hlt(struct insn_ctx *c)
{
	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	c->notes |= EMU_NOTE_HALT;
	return STEP_DONE;
}

/* ---- item 3: the virtual IF ---------------------------------------------- */

/*
 * cli/sti in protected mode: allowed when CPL <= IOPL, else #GP(0) (SDM
 * Vol. 2A CLI, Vol. 2B STI). sti that sets IF blocks interrupts until the
 * next instruction completes (virt.int_shadow).
 * CR4.PVI (VIF at CPL3) is not emulated: EMU_CR4_VALID_DEFAULT leaves it out,
 * and the VMM hides VME from the guest's CPUID.
 */
static enum step do_cli_sti(struct insn_ctx *c, bool set)
{
	struct emu_cpu *cpu = c->cpu;

	if (emu_cpl_of(cpu) > iopl_of(cpu))
		return emu_raise(c, EXC_GP(0));
	if (!set) {
		cpu->rflags &= ~RFLAGS_IF;
	} else if (!(cpu->rflags & RFLAGS_IF)) {
		cpu->rflags |= RFLAGS_IF;
		cpu->virt.int_shadow = true;
		c->notes |= EMU_NOTE_IF_SET;
	}
	return STEP_DONE;
}

/* pushf: RFLAGS with VM and RF cleared, 8 bytes (2 with 66h) (SDM Vol. 2B PUSHF). */
static enum step do_pushf(struct insn_ctx *c)
{
	return emu_push(c, c->cpu->rflags & ~(RFLAGS_VM | RFLAGS_RF), emu_stack_opsize(c));
}

/*
 * popf: the flags POPF_MASK allows at the virtual CPL: IOPL only at CPL0,
 * IF only when CPL <= IOPL; a 16-bit popf changes bits 15:0 only; RF is
 * cleared, VM/VIF/VIP unchanged (SDM Vol. 2B POPF, 64-bit mode).
 */
static enum step do_popf(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = emu_stack_opsize(c), cpl = emu_cpl_of(cpu);
	u64 v = 0, mask = POPF_MASK, old = cpu->rflags, la;
	enum step st = emu_stack_la(c, 0, size, &la);

	if (st != STEP_DONE)
		return st;
	st = emu_mem_read(c, la, &v, size, emu_data_access(cpu, 0));
	if (st != STEP_DONE)
		return st;
	if (cpl > 0)
		mask &= ~RFLAGS_IOPL_MASK;
	if (cpl > iopl_of(cpu))
		mask &= ~RFLAGS_IF;
	if (size == 2)
		mask &= 0xffff;
	cpu->rflags = ((old & ~mask) | (v & mask) | RFLAGS_FIXED) & ~RFLAGS_RF;
	emu_set_sp(cpu, cpu->gpr[EMU_RSP] + size);
	if (!(old & RFLAGS_IF) && (cpu->rflags & RFLAGS_IF))
		c->notes |= EMU_NOTE_IF_SET;
	return STEP_DONE;
}

/* ---- item 4: MSRs -------------------------------------------------------- */

static bool pat_valid(u64 v)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned type = (v >> (8 * i)) & 0xff;

		if (type > 7 || !(PAT_TYPE_VALID_MASK & (1u << type)))
			return false;
	}
	return true;
}

/* The MSRs kept in emu_cpu: a pointer to the value, or NULL. */
static u64 *held_msr(struct emu_cpu *cpu, u32 index)
{
	switch (index) {
	case EMU_MSR_EFER: return &cpu->efer;
	case EMU_MSR_STAR: return &cpu->virt.star;
	case EMU_MSR_LSTAR: return &cpu->virt.lstar;
	case EMU_MSR_CSTAR: return &cpu->virt.cstar;
	case EMU_MSR_SFMASK: return &cpu->virt.sfmask;
	case EMU_MSR_FS_BASE: return &cpu->fs_base;
	case EMU_MSR_GS_BASE: return &cpu->gs_base;
	case EMU_MSR_KERNEL_GS_BASE: return &cpu->virt.kernel_gs_base;
	case EMU_MSR_TSC_AUX: return &cpu->virt.tsc_aux;
	case EMU_MSR_PAT: return &cpu->virt.pat;
	case EMU_MSR_SYSENTER_CS: return &cpu->virt.sysenter_cs;
	case EMU_MSR_SYSENTER_ESP: return &cpu->virt.sysenter_esp;
	case EMU_MSR_SYSENTER_EIP: return &cpu->virt.sysenter_eip;
	default: return NULL;
	}
}

/* Whether `v` is a value wrmsr accepts for a held MSR (SDM Vol. 4 Table 2-2). */
static bool held_msr_ok(struct insn_ctx *c, u32 index, u64 v)
{
	const struct emu_cpu *cpu = c->cpu;

	switch (index) {
	case EMU_MSR_EFER:
		if (v & ~(cpu->virt.efer_valid ? cpu->virt.efer_valid : EFER_VALID))
			return false;
		/* LME cannot change while paging is on (§9.8.5). */
		return !((cpu->cr0 & CR0_PG) && ((v ^ cpu->efer) & EFER_LME));
	case EMU_MSR_LSTAR:
	case EMU_MSR_CSTAR:
	case EMU_MSR_SYSENTER_ESP:
	case EMU_MSR_SYSENTER_EIP:
	case EMU_MSR_FS_BASE:
	case EMU_MSR_GS_BASE:
	case EMU_MSR_KERNEL_GS_BASE: return emu_is_canonical(v);
	case EMU_MSR_SFMASK:
	case EMU_MSR_SYSENTER_CS:
	case EMU_MSR_TSC_AUX: return !(v >> 32);
	case EMU_MSR_PAT: return pat_valid(v);
	default: return true; /* STAR: any value */
	}
}

/* rdmsr/wrmsr: ECX the index, EDX:EAX the value; #GP(0) at CPL > 0 or for an unknown MSR. */
static enum step do_msr(struct insn_ctx *c, bool write)
{
	struct emu_cpu *cpu = c->cpu;
	u32 index = (u32)cpu->gpr[EMU_RCX];
	u64 v = (cpu->gpr[EMU_RDX] << 32) | (u32)cpu->gpr[EMU_RAX];
	u64 *held = held_msr(cpu, index);

	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	if (held && write) {
		if (!held_msr_ok(c, index, v))
			return emu_raise(c, EXC_GP(0));
		if (index == EMU_MSR_EFER) {
			v = (v & ~EFER_LMA) | (cpu->efer & EFER_LMA); /* LMA is read-only */
			if ((v ^ cpu->efer) & EFER_PAGING_BITS)
				c->notes |= EMU_NOTE_PAGING_MODE;
		}
		*held = v;
		return STEP_DONE;
	}
	if (held) {
		v = *held;
	} else {
		enum emu_msr_result r =
			c->ops->msr ? c->ops->msr(c->ops->opaque, index, write, &v) : EMU_MSR_GP;

		if (r == EMU_MSR_GP)
			return emu_raise(c, EXC_GP(0));
		if (r != EMU_MSR_OK)
			return STEP_HOST_ERROR;
		if (write)
			return STEP_DONE;
	}
	cpu->gpr[EMU_RAX] = (u32)v;
	cpu->gpr[EMU_RDX] = v >> 32;
	return STEP_DONE;
}

/*
 * rdtsc, rdtscp (SDM Vol. 2B): EDX:EAX the TSC, read through ops->msr;
 * rdtscp also ECX = TSC_AUX[31:0]. Real CPL3 runs them natively unless the
 * real CR4.TSD is set, which shadow mode does in user mode under the
 * guest's TSD: this then raises the #GP(0) hardware would. In the kernel
 * they run here only when something else brought them to the emulator.
 */
static enum step do_rdtsc(struct insn_ctx *c, bool aux)
{
	struct emu_cpu *cpu = c->cpu;
	u64 tsc = 0;
	enum emu_msr_result r;

	if ((cpu->cr4 & CR4_TSD) && !is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	r = c->ops->msr ? c->ops->msr(c->ops->opaque, EMU_MSR_TSC, false, &tsc) : EMU_MSR_GP;
	if (r != EMU_MSR_OK)
		return STEP_HOST_ERROR; /* the VMM always has the vCPU's TSC */
	cpu->gpr[EMU_RAX] = (u32)tsc;
	cpu->gpr[EMU_RDX] = tsc >> 32;
	if (aux)
		cpu->gpr[EMU_RCX] = (u32)cpu->virt.tsc_aux;
	return STEP_DONE;
}

/*
 * cpuid (SDM Vol. 2A CPUID): EAX..EDX from the VMM's table for leaf EAX,
 * subleaf ECX (upper halves cleared). Any CPL: the guest is offered no
 * CPUID faulting. Two bits follow the control registers, as on hardware:
 * CPUID.1:ECX.OSXSAVE[27] is CR4.OSXSAVE and CPUID.(7,0):ECX.OSPKE[4] is
 * CR4.PKE. Shadow mode only (PVM hosts run a CPL3 cpuid natively, on the
 * host's CPUID, so shadow mode traps it: SCAN_KIND_CPUID).
 */
#define CPUID_1_ECX_OSXSAVE (1u << 27)
#define CPUID_7_ECX_OSPKE   (1u << 4)
static enum step do_cpuid(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	u32 leaf = (u32)cpu->gpr[EMU_RAX], sub = (u32)cpu->gpr[EMU_RCX], r[4];

	if (!c->ops->cpuid)
		return STEP_UNKNOWN;
	if (!c->ops->cpuid(c->ops->opaque, leaf, sub, r))
		return STEP_HOST_ERROR;
	if (leaf == 1)
		r[2] = (r[2] & ~CPUID_1_ECX_OSXSAVE) |
		       (cpu->cr4 & CR4_OSXSAVE ? CPUID_1_ECX_OSXSAVE : 0);
	if (leaf == 7 && sub == 0)
		r[2] = (r[2] & ~CPUID_7_ECX_OSPKE) | (cpu->cr4 & CR4_PKE ? CPUID_7_ECX_OSPKE : 0);
	cpu->gpr[EMU_RAX] = r[0];
	cpu->gpr[EMU_RBX] = r[1];
	cpu->gpr[EMU_RCX] = r[2];
	cpu->gpr[EMU_RDX] = r[3];
	return STEP_DONE;
}

/* ---- item 5 -------------------------------------------------------------- */

/* xsetbv: #UD if CR4.OSXSAVE = 0; #GP(0) at CPL > 0 or for a refused value (SDM Vol. 2B). */
static enum step do_xsetbv(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	u64 v = (cpu->gpr[EMU_RDX] << 32) | (u32)cpu->gpr[EMU_RAX];

	if (!(cpu->cr4 & CR4_OSXSAVE))
		return emu_raise(c, EXC_UD());
	if (!is_cpl0(c) || !c->ops->write_xcr ||
	    !c->ops->write_xcr(c->ops->opaque, (u32)cpu->gpr[EMU_RCX], v))
		return emu_raise(c, EXC_GP(0));
	return STEP_DONE;
}

/* swapgs: exchange GS.base and IA32_KERNEL_GS_BASE; #GP(0) at CPL > 0 (SDM Vol. 2B). */
static enum step do_swapgs(struct insn_ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	u64 t = cpu->gs_base;

	if (!emu_long64(cpu))
		return emu_raise(c, EXC_UD()); /* 64-bit mode only */
	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	cpu->gs_base = cpu->virt.kernel_gs_base;
	cpu->virt.kernel_gs_base = t;
	return STEP_DONE;
}

/* ---- item 6 -------------------------------------------------------------- */

static bool is_dr(const cs_x86_op *op)
{
	return op && op->type == X86_OP_REG && op->reg >= X86_REG_DR0 && op->reg <= X86_REG_DR15;
}

/*
 * mov drN, r / mov r, drN: #GP(0) at CPL > 0; DR4/DR5 are DR6/DR7 when
 * CR4.DE = 0 and #UD when CR4.DE = 1; DR8-15 #UD; #GP(0) for a 1 in bits
 * 63:32 of DR6/DR7. With DR7.GD set, a #DB fault instead, before the access
 * (general detect, SDM Vol. 3A §17.2.4; its DR6.BD and the clearing of GD
 * are made as it is delivered, emulate.c item 9). Every mov to or from a DR
 * traps in shadow mode, so this is exact; the real DR7 never holds GD.
 */
static enum step do_mov_dr(struct insn_ctx *c)
{
	const cs_x86_op *dst = emu_op(c, 0);
	bool to_dr = is_dr(dst);
	unsigned n = (unsigned)((to_dr ? dst->reg : emu_op(c, 1)->reg) - X86_REG_DR0);
	const struct reg_slot *g = gpr_op(c, to_dr ? 1 : 0);
	struct emu_cpu *cpu = c->cpu;
	u64 *dr, v;

	if (!g || g->high8 || g->size != (emu_long64(cpu) ? 8 : 4))
		return STEP_UNKNOWN;
	if (n > 7 || ((n == 4 || n == 5) && (cpu->cr4 & CR4_DE)))
		return emu_raise(c, EXC_UD());
	if (!is_cpl0(c))
		return emu_raise(c, EXC_GP(0));
	if (cpu->virt.dr7 & DR7_GD)
		return emu_raise(c, emu_exception(X86_EXC_DB, false, 0));
	if (n == 4 || n == 5)
		n += 2; /* aliases of DR6 and DR7 */
	dr = n < 4 ? &cpu->virt.dr[n] : n == 6 ? &cpu->virt.dr6 : &cpu->virt.dr7;
	if (!to_dr) {
		v = n < 4 ? *dr : *dr | (n == 6 ? DR6_FIXED1 : DR7_FIXED1);
		emu_reg_set(cpu, g, v);
		return STEP_DONE;
	}
	v = emu_reg_get(cpu, g);
	if (n >= 6 && (v & DR_HIGH_RESERVED))
		return emu_raise(c, EXC_GP(0));
	*dr = v;
	return STEP_DONE;
}

/*
 * rdfsbase/rdgsbase/wrfsbase/wrgsbase r32/r64 (any CPL): #UD unless 64-bit
 * mode and CR4.FSGSBASE = 1; #GP(0) for a non-canonical base.
 */
static enum step do_fsgsbase(struct insn_ctx *c, bool gs, bool write)
{
	const struct reg_slot *g = gpr_op(c, 0);
	struct emu_cpu *cpu = c->cpu;
	u64 *base = gs ? &cpu->gs_base : &cpu->fs_base, v;

	if (!g || g->size < 4)
		return STEP_UNKNOWN;
	if (!emu_long64(cpu) || !(cpu->cr4 & CR4_FSGSBASE))
		return emu_raise(c, EXC_UD());
	if (!write) {
		emu_reg_set(cpu, g, *base);
		return STEP_DONE;
	}
	v = emu_reg_get(cpu, g);
	if (!emu_is_canonical(v))
		return emu_raise(c, EXC_GP(0));
	*base = v;
	return STEP_DONE;
}

enum step emu_dispatch_priv(struct insn_ctx *c)
{
	switch (c->insn->id) {
	case X86_INS_MOV:
		if (is_mov_cr(c))
			return do_mov_cr(c);
		if (is_dr(emu_op(c, 0)) || is_dr(emu_op(c, 1)))
			return do_mov_dr(c);
		return STEP_UNKNOWN;
	case X86_INS_RDFSBASE: return do_fsgsbase(c, false, false);
	case X86_INS_RDGSBASE: return do_fsgsbase(c, true, false);
	case X86_INS_WRFSBASE: return do_fsgsbase(c, false, true);
	case X86_INS_WRGSBASE: return do_fsgsbase(c, true, true);
	case X86_INS_CLTS: return do_clts(c);
	case X86_INS_LMSW: return do_lmsw(c);
	case X86_INS_SMSW: return do_smsw(c);
	case X86_INS_INVLPG: return do_invlpg(c);
	case X86_INS_WBINVD:
	case X86_INS_INVD: return do_cpl0_nop(c);
	case X86_INS_HLT: return do_hlt(c);
	case X86_INS_CLI: return do_cli_sti(c, false);
	case X86_INS_STI: return do_cli_sti(c, true);
	case X86_INS_PUSHF:
	case X86_INS_PUSHFD:
	case X86_INS_PUSHFQ: return do_pushf(c);
	case X86_INS_POPF:
	case X86_INS_POPFD:
	case X86_INS_POPFQ: return do_popf(c);
	case X86_INS_RDMSR: return do_msr(c, false);
	case X86_INS_WRMSR: return do_msr(c, true);
	case X86_INS_RDTSC: return do_rdtsc(c, false);
	case X86_INS_RDTSCP: return do_rdtsc(c, true);
	case X86_INS_XSETBV: return do_xsetbv(c);
	case X86_INS_SWAPGS: return do_swapgs(c);
	case X86_INS_CPUID: return do_cpuid(c);
	default: return STEP_UNKNOWN;
	}
}
