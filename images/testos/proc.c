/* SPDX-License-Identifier: MIT */
/* The process model (proc.h): process table, scheduler, fork/COW, exit/wait, mmap, syscalls. */
#include "arch.h"
#include "console.h"
#include "cpu.h"
#include "gdt.h"
#include "lapic.h"
#include "lib.h"
#include "paging.h"
#include "pmm.h"
#include "proc.h"
#include "trap.h"
#include "user.h"

#define VEC_INT80      0x80
#define CODE_MAX_PAGES 16

struct proc proc_table[PROC_MAX];
struct proc_stats proc_stats;
uint64_t (*proc_test_hook)(struct proc *p, uint64_t arg);
uint64_t proc_fault_ad;

static int inited;
static int sched_active;     /* proc_run() is running: the hooks act */
static struct proc *current; /* the process at CPL3 (or whose trap is handled) */
static unsigned rr_pos;	     /* slot the round robin continues after */
static struct jmpbuf sched_jb;
static int next_pid = 1;
static uint16_t *refcnt; /* per frame number, valid for frames mapped by processes */
static uint64_t code_frames[CODE_MAX_PAGES], code_base;
static unsigned code_pages;

extern char __start_utext[], __stop_utext[]; /* the user programs (proc_user.c) */
extern char proc_int80_stub[];		     /* proc_entry.S */
extern const uint64_t exc_stubs[32];	     /* entry.S */
__attribute__((noreturn)) void proc_enter_frame(struct trap_frame *f);

static uint64_t user_nx(void)
{
	return cpu.nx ? PTE_NX : 0;
}

unsigned proc_refcount(uint64_t pa)
{
	return refcnt[pa >> 12];
}

/* rep movsq: one emulated instruction of 512 iterations (rep movsb would be 4096). */
static void copy_page(void *dst, const void *src)
{
	uint64_t n = PAGE_SIZE / 8;

	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* as_create() with string instructions (two emulated instructions instead of a 256-step loop). */
static uint64_t proc_as_create(void)
{
	uint64_t pml4 = pmm_alloc(), n = PML4_USER_SLOTS;
	void *d = phys_to_virt(pml4);
	const void *s = (uint64_t *)phys_to_virt(kernel_pml4) + PML4_USER_SLOTS;

	__asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0ULL) : "memory");
	n = 512 - PML4_USER_SLOTS; /* the kernel half, shared: slots 256-511 */
	__asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return pml4;
}

static void put_frame(uint64_t pa)
{
	if (--refcnt[pa >> 12] == 0)
		pmm_free(pa);
}

struct proc *proc_find(int pid)
{
	for (int i = 0; i < PROC_MAX; i++)
		if (proc_table[i].state != P_FREE && proc_table[i].pid == pid)
			return &proc_table[i];
	return NULL;
}

int proc_live(void)
{
	int n = 0;

	for (int i = 0; i < PROC_MAX; i++)
		n += proc_table[i].state != P_FREE;
	return n;
}

/* ---- address spaces -------------------------------------------------------- */

/* The PTE for @va in @p's space, creating the tables (and noting the PT) with @create. */
static uint64_t *proc_pte(struct proc *p, uint64_t va, int create)
{
	uint64_t *e = pt_entry(p->cr3, va, LVL_PT, create);

	if (e && create)
		p->pd_used[pt_index(va, LVL_PD) / 64] |= 1ULL << (pt_index(va, LVL_PD) % 64);
	return e;
}

uint64_t proc_frame_of(struct proc *p, uint64_t va, uint64_t *pte)
{
	uint64_t *e = p->cr3 ? proc_pte(p, va, 0) : NULL;

	if (pte)
		*pte = e ? *e : 0;
	return e && (*e & PTE_P) ? *e & PTE_ADDR : ~0ULL;
}

/*
 * Call @fn on every present PTE of [s, e) in @p, one page-table lookup per
 * 2 MiB (ranges whose page table is missing are skipped).
 */
static void for_each_pte(struct proc *p, uint64_t s, uint64_t e,
			 void (*fn)(struct proc *p, uint64_t va, uint64_t *pte, void *arg),
			 void *arg)
{
	uint64_t va = s;

	while (va < e) {
		uint64_t chunk_end = (va | (PAGE_2M - 1)) + 1;
		uint64_t *pte = proc_pte(p, va, 0);

		if (chunk_end > e)
			chunk_end = e;
		if (pte)
			for (; va < chunk_end; va += PAGE_SIZE, pte++)
				if (*pte & PTE_P)
					fn(p, va, pte, arg);
		va = chunk_end;
	}
}

static void unmap_one(struct proc *p, uint64_t va, uint64_t *pte, void *arg)
{
	(void)p;
	(void)va;
	if (!*(int *)arg) /* not the shared code image */
		put_frame(*pte & PTE_ADDR);
	*pte = 0;
}

/* Free every frame and page table of @p's user half, and its PML4. */
static void free_user(struct proc *p)
{
	uint64_t *pml4, *pdpt, *pd;

	if (!p->cr3)
		return;
	for (int i = 0; i < PROC_NVMA; i++) {
		int code = p->vma[i].code;

		if (p->vma[i].end)
			for_each_pte(p, p->vma[i].start, p->vma[i].end, unmap_one, &code);
	}
	/* All user memory is under PML4[0] -> PDPT[0] (proc.h). */
	pml4 = phys_to_virt(p->cr3);
	if (pml4[0] & PTE_P) {
		pdpt = table_of(pml4[0]);
		if (pdpt[0] & PTE_P) {
			pd = table_of(pdpt[0]);
			for (int w = 0; w < 8; w++)
				for (uint64_t bits = p->pd_used[w]; bits; bits &= bits - 1) {
					int i = w * 64 + __builtin_ctzll(bits);

					if (pd[i] & PTE_P)
						pmm_free(pd[i] & PTE_ADDR);
				}
			pmm_free(pdpt[0] & PTE_ADDR);
		}
		pmm_free(pml4[0] & PTE_ADDR);
	}
	pmm_free(p->cr3);
	p->cr3 = 0;
}

static struct vma *vma_find(struct proc *p, uint64_t va)
{
	for (int i = 0; i < PROC_NVMA; i++)
		if (p->vma[i].end && va >= p->vma[i].start && va < p->vma[i].end)
			return &p->vma[i];
	return NULL;
}

static struct vma *vma_free_slot(struct proc *p)
{
	for (int i = 0; i < PROC_NVMA; i++)
		if (!p->vma[i].end)
			return &p->vma[i];
	return NULL;
}

/* ---- set-up ------------------------------------------------------------------ */

static void proc_timer(struct trap_frame *f);
static int proc_user_fault(struct trap_frame *f);

static void int80_handler(struct trap_frame *f)
{
	if (!proc_syscall(f))
		syscall_dispatch(f); /* the calls of user.c; always returns by iretq here */
}

void proc_init(void)
{
	uint64_t start = (uint64_t)__start_utext, stop = (uint64_t)__stop_utext;
	uint64_t nframes = pmm_ram_top() / PAGE_SIZE;

	if (inited)
		return;
	/* No zeroing needed: a frame's count is set when a process first maps it. */
	refcnt = phys_to_virt(
		pmm_alloc_contig((nframes * 2 + PAGE_SIZE - 1) / PAGE_SIZE, PAGE_SIZE));
	code_base = start & ~(PAGE_SIZE - 1);
	code_pages = (stop - code_base + PAGE_SIZE - 1) / PAGE_SIZE;
	if (code_pages > CODE_MAX_PAGES)
		panic("proc: user code is %u pages, at most %u", code_pages, CODE_MAX_PAGES);
	/* Copy only the section's bytes (through the direct map), nothing else of the kernel. */
	for (unsigned i = 0; i < code_pages; i++) {
		uint64_t pg = code_base + i * PAGE_SIZE, s = pg < start ? start : pg;
		uint64_t e = pg + PAGE_SIZE > stop ? stop : pg + PAGE_SIZE;

		code_frames[i] = pmm_alloc_zeroed();
		memcpy((char *)phys_to_virt(code_frames[i]) + (s - pg),
		       phys_to_virt(kimg_to_phys((void *)s)), e - s);
	}
	idt_set_gate_dpl(VEC_INT80, (uint64_t)proc_int80_stub, 3);
	irq_set_handler(VEC_INT80, int80_handler);
	syscall_hook = proc_syscall;
	user_fault_hook = proc_user_fault;
	timer_hook = proc_timer;
	inited = 1;
}

void proc_reset(void)
{
	if (!inited)
		return;
	sched_active = 0;
	current = NULL;
	idt_set_gate_dpl(VEC_BP, exc_stubs[VEC_BP], 0);
	if ((read_cr3() & PTE_ADDR) != kernel_pml4)
		write_cr3(kernel_pml4);
	for (int i = 0; i < PROC_MAX; i++) {
		free_user(&proc_table[i]);
		proc_table[i].state = P_FREE;
	}
	memset(&proc_stats, 0, sizeof(proc_stats));
	proc_fault_ad = 0;
	proc_test_hook = NULL;
}

static struct proc *slot_alloc(void)
{
	for (int i = 0; i < PROC_MAX; i++)
		if (proc_table[i].state == P_FREE) {
			struct proc *p = &proc_table[i];

			memset(p, 0, sizeof(*p));
			p->pid = next_pid++;
			p->state = P_RUNNABLE; /* reserved; the caller finishes it */
			if ((uint64_t)proc_live() > proc_stats.max_live)
				proc_stats.max_live = proc_live();
			return p;
		}
	return NULL;
}

int proc_spawn(void (*fn)(uint64_t, uint64_t), uint64_t a0, uint64_t a1, struct proc_result *res)
{
	struct proc *p;

	proc_init();
	if ((char *)fn < __start_utext || (char *)fn >= __stop_utext)
		panic("proc_spawn: %p is not a user program (section utext)", fn);
	p = slot_alloc();
	if (!p)
		return -1;
	p->cr3 = proc_as_create();
	p->kres = res;
	if (res)
		memset(res, 0, sizeof(*res));
	p->vma[0] = (struct vma){ PROC_CODE_VA, PROC_CODE_VA + code_pages * PAGE_SIZE, 1 };
	for (unsigned i = 0; i < code_pages; i++)
		*proc_pte(p, PROC_CODE_VA + i * PAGE_SIZE, 1) = code_frames[i] | PTE_P | PTE_US;
	p->vma[1] = (struct vma){ PROC_STACK_TOP - PROC_STACK_SIZE, PROC_STACK_TOP, 0 };
	p->mmap_next = PROC_MMAP_BASE;
	p->frame.rip = PROC_CODE_VA + ((uint64_t)fn - code_base);
	p->frame.cs = USER_CS;
	p->frame.rflags = RFLAGS_IF | RFLAGS_FIXED;
	p->frame.rsp = PROC_STACK_TOP - 8; /* as after a call: RSP + 8 is 16-byte aligned */
	p->frame.ss = USER_DS;
	p->frame.rdi = a0;
	p->frame.rsi = a1;
	p->state = P_RUNNABLE;
	return p->pid;
}

/* ---- scheduling ------------------------------------------------------------- */

/* The next runnable process in round-robin order after @after (or after rr_pos). */
static struct proc *pick_next(struct proc *after)
{
	unsigned start = after ? (unsigned)(after - proc_table) + 1 : rr_pos + 1;

	for (unsigned i = 0; i < PROC_MAX; i++) {
		struct proc *p = &proc_table[(start + i) % PROC_MAX];

		if (p->state == P_RUNNABLE)
			return p;
	}
	return NULL;
}

/*
 * The current process stopped running (its frame is saved, or it is gone):
 * make the iretq through @f resume the next runnable process, or the
 * scheduler loop of proc_run() when there is none.
 */
static void schedule(struct trap_frame *f)
{
	struct proc *prev = current, *n = pick_next(prev);

	if (!n) {
		current = NULL;
		write_cr3(kernel_pml4);
		frame_longjmp(f, &sched_jb, 1);
		return;
	}
	if (n != prev) {
		proc_stats.switches++;
		write_cr3(n->cr3);
	}
	n->state = P_RUNNING;
	current = n;
	rr_pos = n - proc_table;
	*f = n->frame;
}

/* Timer at CPL3: preempt the running process if another one can run. */
static void proc_timer(struct trap_frame *f)
{
	if (!sched_active || !current || (f->cs & 3) != 3 || !pick_next(current))
		return;
	current->frame = *f;
	current->state = P_RUNNABLE;
	current->preempts++;
	proc_stats.preempts++;
	schedule(f);
}

int proc_run(void)
{
	volatile unsigned idle = 0; /* kept across tos_setjmp */
	volatile int ret = 0;

	proc_init();
	__asm__ volatile("cli");
	/* int3 from CPL3 is a system call while processes run (proc.h); #GP otherwise. */
	idt_set_gate_dpl(VEC_BP, exc_stubs[VEC_BP], 3);
	sched_active = 1;
	while (proc_live()) {
		struct proc *p = pick_next(NULL);

		if (!p) {
			/*
			 * Idle: everything is blocked. Only processes wake
			 * processes, so waiting for the timer a while and still
			 * finding nothing runnable is a deadlock.
			 */
			if (++idle > 20) {
				ret = -1;
				break;
			}
			__asm__ volatile("sti; hlt; cli");
			continue;
		}
		idle = 0;
		if (tos_setjmp(&sched_jb) == 0) {
			current = p;
			rr_pos = p - proc_table;
			p->state = P_RUNNING;
			write_cr3(p->cr3);
			proc_enter_frame(&p->frame);
		}
		/* Back from schedule(): nothing runnable (current == NULL, kernel CR3). */
	}
	sched_active = 0;
	current = NULL;
	idt_set_gate_dpl(VEC_BP, exc_stubs[VEC_BP], 0);
	return ret;
}

/* ---- exit / wait ------------------------------------------------------------ */

static void proc_exit(struct proc *p, uint64_t status)
{
	struct proc *parent = p->ppid ? proc_find(p->ppid) : NULL;

	if ((read_cr3() & PTE_ADDR) == p->cr3)
		write_cr3(kernel_pml4); /* before its tables are freed */
	free_user(p);
	proc_stats.exits++;
	for (int i = 0; i < PROC_MAX; i++) { /* orphans go to the kernel */
		struct proc *c = &proc_table[i];

		if (c->state != P_FREE && c->ppid == p->pid) {
			c->ppid = 0;
			c->kres = NULL;
			if (c->state == P_ZOMBIE)
				c->state = P_FREE;
		}
	}
	p->status = status;
	if (!parent) {
		if (p->kres) {
			p->kres->status = status;
			p->kres->preempts = p->preempts;
			p->kres->done = 1;
		}
		p->state = P_FREE;
	} else if (parent->state == P_WAITING) {
		parent->frame.rax = p->pid;
		parent->frame.rdx = status;
		parent->state = P_RUNNABLE;
		p->state = P_FREE;
	} else {
		p->state = P_ZOMBIE;
	}
}

static void sys_wait(struct proc *p, struct trap_frame *f)
{
	int children = 0;

	for (int i = 0; i < PROC_MAX; i++) {
		struct proc *c = &proc_table[i];

		if (c->state == P_FREE || c->ppid != p->pid)
			continue;
		children++;
		if (c->state == P_ZOMBIE) {
			f->rax = c->pid;
			f->rdx = c->status;
			c->state = P_FREE;
			return;
		}
	}
	if (!children) {
		f->rax = (uint64_t)-1;
		f->rdx = 0;
		return;
	}
	p->frame = *f;
	p->state = P_WAITING;
	schedule(f);
}

/* ---- fork and copy-on-write -------------------------------------------------- */

struct fork_ctx {
	struct proc *child;
	int code;
	uint64_t *cpte; /* the child's PTE for the current page (same 2 MiB as the last) */
	uint64_t cva;
};

static void fork_one(struct proc *p, uint64_t va, uint64_t *pte, void *arg)
{
	struct fork_ctx *c = arg;
	uint64_t e = *pte;

	(void)p;
	if (!c->code) {
		if (e & PTE_RW) {
			e = (e & ~PTE_RW) | PTE_COW;
			*pte = e;
		}
		refcnt[(e & PTE_ADDR) >> 12]++;
	}
	/* Tables are the child's own: one lookup per 2 MiB, then the next entries. */
	if (!c->cpte || (va & ~(PAGE_2M - 1)) != (c->cva & ~(PAGE_2M - 1)))
		c->cpte = proc_pte(c->child, va, 1);
	else
		c->cpte += (va - c->cva) / PAGE_SIZE;
	c->cva = va;
	*c->cpte = e;
}

static uint64_t sys_fork(struct proc *p, struct trap_frame *f)
{
	struct proc *c = slot_alloc();
	struct fork_ctx ctx = { 0 };

	if (!c)
		return (uint64_t)-1;
	c->ppid = p->pid;
	c->cr3 = proc_as_create();
	c->mmap_next = p->mmap_next;
	ctx.child = c;
	for (int i = 0; i < PROC_NVMA; i++) {
		c->vma[i] = p->vma[i];
		if (!p->vma[i].end)
			continue;
		ctx.code = p->vma[i].code;
		ctx.cpte = NULL;
		for_each_pte(p, p->vma[i].start, p->vma[i].end, fork_one, &ctx);
	}
	write_cr3(p->cr3); /* the parent's writable translations are stale now */
	c->frame = *f;
	c->frame.rax = 0;
	c->state = P_RUNNABLE;
	proc_stats.forks++;
	return c->pid;
}

/* The A/D bits a PTE the #PF handler fills gets (proc_fault_ad, proc.h). */
static uint64_t fault_ad(uint64_t error)
{
	if (proc_fault_ad != PROC_AD_LINUX)
		return proc_fault_ad;
	return PTE_A | ((error & PF_W) ? PTE_D : 0);
}

/*
 * #PF (and any other exception) from a process at CPL3: demand-zero and COW
 * faults are resolved; anything else kills the process.
 */
static int proc_user_fault(struct trap_frame *f)
{
	struct proc *p = current;

	if (!sched_active || !p || (f->cs & 3) != 3)
		return 0;
	if (f->vector == VEC_BP) /* int3: the system call gate used on our hosts (proc.h) */
		return proc_syscall(f);
	if (f->vector == VEC_PF) {
		uint64_t va = read_cr2(), page = va & ~(PAGE_SIZE - 1);
		struct vma *v = vma_find(p, va);

		if (v && !v->code) {
			uint64_t *pte = proc_pte(p, page, 1), e = *pte;

			if (!(f->error & PF_P) && !(e & PTE_P)) {
				uint64_t pa = pmm_alloc_zeroed();

				refcnt[pa >> 12] = 1;
				/* Not present -> present: no invalidation needed (SDM 3A 4.10.4.3).
				 */
				*pte = pa | PTE_P | PTE_RW | PTE_US | user_nx() |
				       fault_ad(f->error);
				proc_stats.demand_faults++;
				return 1;
			}
			if ((f->error & (PF_P | PF_W)) == (PF_P | PF_W) && (e & PTE_COW)) {
				uint64_t old = e & PTE_ADDR;

				if (refcnt[old >> 12] == 1) {
					*pte = ((e | PTE_RW) & ~PTE_COW) | fault_ad(f->error);
					proc_stats.cow_reuses++;
				} else {
					uint64_t pa = pmm_alloc();

					copy_page(phys_to_virt(pa), phys_to_virt(old));
					refcnt[old >> 12]--;
					refcnt[pa >> 12] = 1;
					*pte = pa | ((e & ~PTE_ADDR & ~PTE_COW) | PTE_RW) |
					       fault_ad(f->error);
					proc_stats.cow_copies++;
				}
				invlpg(page);
				return 1;
			}
		}
	}
	proc_stats.kills++;
	proc_stats.kill_pid = p->pid;
	proc_stats.kill_vector = f->vector;
	proc_stats.kill_error = f->error;
	proc_stats.kill_cr2 = f->vector == VEC_PF ? read_cr2() : 0;
	proc_stats.kill_rip = f->rip;
	proc_exit(p, PROC_KILLED | f->vector);
	schedule(f);
	return 1;
}

/* ---- memory and the console -------------------------------------------------- */

static uint64_t sys_mmap(struct proc *p, uint64_t len)
{
	struct vma *v = vma_free_slot(p);
	uint64_t start = p->mmap_next;

	len = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (!v || !len || len > PROC_MMAP_END - start)
		return (uint64_t)-1;
	*v = (struct vma){ start, start + len, 0 };
	p->mmap_next = start + len + PAGE_SIZE; /* a guard page between areas */
	return start;
}

static void munmap_one(struct proc *p, uint64_t va, uint64_t *pte, void *arg)
{
	(void)p;
	put_frame(*pte & PTE_ADDR);
	*pte = 0;
	if (++*(uint64_t *)arg <= 32)
		invlpg(va);
}

static uint64_t sys_munmap(struct proc *p, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + ((len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)), n = 0;

	if ((addr & (PAGE_SIZE - 1)) || !len || end <= addr || end > USER_HALF_END)
		return (uint64_t)-1;
	for (int i = 0; i < PROC_NVMA; i++) {
		struct vma *v = &p->vma[i];
		uint64_t s = v->start > addr ? v->start : addr, e = v->end < end ? v->end : end;

		if (!v->end || v->code || s >= e)
			continue;
		if (s > v->start && e < v->end) { /* a hole in the middle: split */
			struct vma *w = vma_free_slot(p);

			if (!w)
				return (uint64_t)-1;
			*w = (struct vma){ e, v->end, 0 };
			v->end = s;
		} else if (s > v->start) {
			v->end = s;
		} else if (e < v->end) {
			v->start = e;
		} else {
			v->start = v->end = 0;
		}
		for_each_pte(p, s, e, munmap_one, &n);
	}
	if (n > 32)
		write_cr3(p->cr3); /* many pages: flush everything non-global at once */
	return 0;
}

/* Copy the user buffer through the page tables (no user access from CPL0: SMAP-proof). */
static uint64_t sys_write(struct proc *p, uint64_t buf, uint64_t len)
{
	char *out = proc_stats.last_write;

	if (len > WRITE_MAX || buf >= USER_HALF_END || len > USER_HALF_END - buf)
		return (uint64_t)-1;
	for (uint64_t i = 0; i < len; i++) {
		uint64_t pte;

		if ((proc_frame_of(p, buf + i, &pte) == ~0ULL) || !(pte & PTE_US))
			return (uint64_t)-1;
		out[i] = *(char *)phys_to_virt((pte & PTE_ADDR) + ((buf + i) & (PAGE_SIZE - 1)));
	}
	out[len] = 0;
	proc_stats.last_write_len = len;
	proc_stats.writes++;
	for (uint64_t i = 0; i < len; i++)
		console_putc(out[i]);
	return len;
}

/* ---- system calls ------------------------------------------------------------- */

int proc_syscall(struct trap_frame *f)
{
	struct proc *p = current, *t;
	uint64_t a0 = f->rdi, a1 = f->rsi;

	if (!sched_active || !p)
		return 0;
	switch (f->rax) {
	case SYS_PEXIT:
		proc_exit(p, a0 & 0xffffffffULL);
		schedule(f);
		break;
	case SYS_WRITE: f->rax = sys_write(p, a0, a1); break;
	case SYS_GETPID: f->rax = p->pid; break;
	case SYS_YIELD:
		f->rax = 0;
		p->frame = *f;
		p->state = P_RUNNABLE;
		schedule(f);
		break;
	case SYS_FORK: f->rax = sys_fork(p, f); break;
	case SYS_WAIT: sys_wait(p, f); break;
	case SYS_MMAP: f->rax = sys_mmap(p, a0); break;
	case SYS_MUNMAP: f->rax = sys_munmap(p, a0, a1); break;
	case SYS_SEND:
		t = proc_find((int)a0);
		if (!t || t->state == P_ZOMBIE) {
			f->rax = (uint64_t)-1;
			break;
		}
		if (t->state == P_RECV)
			t->state = P_RUNNABLE; /* its saved RAX is already 0 */
		else
			t->tokens++;
		f->rax = 0;
		break;
	case SYS_RECV:
		f->rax = 0;
		if (p->tokens) {
			p->tokens--;
			break;
		}
		p->frame = *f;
		p->state = P_RECV;
		schedule(f);
		break;
	case SYS_KHOOK: f->rax = proc_test_hook ? proc_test_hook(p, a0) : (uint64_t)-1; break;
	default: f->rax = (uint64_t)-1; break;
	}
	return 1;
}
