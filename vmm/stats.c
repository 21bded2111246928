// SPDX-License-Identifier: MIT
/* Run statistics output (vmm/stats.h). */
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmm/host_probe.h"
#include "shadow/x86.h"
#include "vmm/stats.h"

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "unknown",
	[KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug",
	[KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	[KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr",
	[KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi",
	[KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
	[KVM_EXIT_X86_RDMSR] = "rdmsr",
	[KVM_EXIT_X86_WRMSR] = "wrmsr",
};

const char *stats_exit_name(unsigned reason, char *buf, size_t len)
{
	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
		return exit_names[reason];
	snprintf(buf, len, "reason-%u", reason);
	return buf;
}

void stats_count_emulated(struct stats *st, const char *mnemonic)
{
	unsigned i;

	st->emulated++;
	for (i = 0; i < st->nr_emulated_by; i++) {
		if (!strcmp(st->emulated_by[i].name, mnemonic)) {
			st->emulated_by[i].count++;
			return;
		}
	}
	if (i == STATS_MAX_MNEMONICS) {
		st->emulated_other++;
		return;
	}
	snprintf(st->emulated_by[i].name, sizeof(st->emulated_by[i].name), "%s", mnemonic);
	st->emulated_by[i].count = 1;
	st->nr_emulated_by++;
}

double stats_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static u64 total_exits(const struct stats *st)
{
	u64 sum = st->exits_other;

	for (unsigned i = 0; i < STATS_MAX_EXIT_REASON; i++)
		sum += st->exits[i];
	return sum;
}

static u64 total_traps(const struct stats *st)
{
	u64 sum = 0;

	for (unsigned v = 0; v < STATS_NR_VECTORS; v++)
		sum += st->traps[v];
	return sum;
}

#define VECTOR_FIRST_IRQ 32 /* vectors below are exceptions (SDM Vol. 3A, 6.2) */

void stats_add_mark(struct stats *st, u32 label, const struct shadow_stats *mmu)
{
	struct stats_mark *m;
	u64 irqs = 0;

	if (st->nr_marks == STATS_MAX_MARKS) {
		st->marks_dropped++;
		return;
	}
	for (unsigned v = VECTOR_FIRST_IRQ; v < STATS_NR_VECTORS; v++)
		irqs += st->traps[v];
	m = &st->marks[st->nr_marks++];
	*m = (struct stats_mark){
		.label = label,
		.t = stats_now(),
		.exits = total_exits(st),
		.traps = total_traps(st),
		.traps_gp = st->traps[X86_EXC_GP],
		.traps_pf = st->traps[X86_EXC_PF],
		.traps_ud = st->traps[X86_EXC_UD],
		.traps_bp = st->traps[X86_EXC_BP],
		.traps_irq = irqs,
		.emulated = st->emulated,
		.emulated_pt_writes = st->emulated_pt_writes,
		.patch_traps = st->patch_traps,
		.syscalls = st->syscalls,
		.chained = st->chained,
		.call_traps = st->call_traps,
	};
	if (mmu) {
		m->faults = mmu->faults;
		m->pt_writes = mmu->pt_writes;
		m->root_switches = mmu->root_hits + mmu->root_misses;
		m->sp_created = mmu->sp_created;
		m->faults_fixed = mmu->faults_fixed;
		m->stores = mmu->stores;
	}
}

/* The shadow MMU's counters, one name and value each, for both formats. */
/* clang-format off */
#define SHADOW_COUNTERS(X)                                                                     \
	X(faults)                                                                              \
	X(faults_fixed) X(faults_guest) X(faults_pt_write) X(faults_mmio) X(faults_spurious)   \
		X(faults_emulate_access) X(faults_monitor_conflict) X(faults_unsupported)      \
		X(faults_mmio_direct) X(faults_exec_unscanned) X(exec_approves)                \
		X(exec_revokes)                                                                \
		X(window_links)                                                                \
			X(sp_live) X(sp_created) X(sp_zapped) X(rmap_live) X(write_protects)   \
				X(pt_writes) X(pt_write_updates) X(pt_write_zaps) X(unshadows) \
					X(root_hits) X(root_misses) X(roots_live) X(evictions) \
						X(flushes) X(stores) X(prefetched) X(unsyncs)  \
							X(unsync_ends) X(unsync_syncs)  \
								X(unsync_updates) \
	X(faults_fixed_large) X(large_maps) X(large_zaps) X(large_not_ram) X(large_tracked)    \
		X(large_gated) X(large_data_only) X(prefaults) X(prefaults_fixed) X(root_prefills) X(prefetched_other_view) X(unshadows_inactive) X(pool_clears)
/* clang-format on */

/* "name" or "name (note)". */
static void print_strategy_text(FILE *f, const char *what, const char *name, const char *note)
{
	fprintf(f, "    %-18s %s%s%s%s\n", what, name, note ? " (" : "", note ? note : "",
		note ? ")" : "");
}

static void print_host_text(const struct stats *st, FILE *f)
{
	const struct host_probe *p = st->host;
	const struct shadow_strategy *s = st->strategy;

	fprintf(f, "  host probe           %.1f ms: iopl3 %s, pt_stores_seen %s, syscall_cpl ",
		p->probe_ms, host_answer_name(p->iopl3), host_answer_name(p->pt_stores_seen));
	if (p->syscall_cpl < 0)
		fputs("unknown", f);
	else
		fprintf(f, "%d", p->syscall_cpl);
	fprintf(f, ", cpl3_fsgsbase %s\n", host_answer_name(p->cpl3_fsgsbase));
	if (p->note[0])
		fprintf(f, "    %-18s %s\n", "undecided", p->note);
	print_strategy_text(f, "sensitive insns", shadow_sensitive_name(s->sensitive),
			    s->sensitive_note);
	print_strategy_text(f, "shadow stores", shadow_stores_name(s->stores), s->stores_note);
	print_strategy_text(f, "syscall entry", shadow_syscall_entry_name(s->syscall_entry),
			    s->syscall_note);
	print_strategy_text(f, "tpr masking", s->tpr_masking ? "on" : "off", s->tpr_note);
}

/* The busiest exception sites: what --trace would show, without one. */
static void print_sites_text(const struct stats *st, FILE *f)
{
	struct trap_site top[TRAP_SITES_TOP];
	unsigned n = trap_sites_top(&st->sites, top, TRAP_SITES_TOP);

	if (!n)
		return;
	fprintf(f,
		"  busiest trap sites   %u of %u (exceptions only; %llu of %llu at sites not "
		"kept)\n",
		n, st->sites.used, (unsigned long long)st->sites.other,
		(unsigned long long)st->sites.total);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "    vector %-3u rip 0x%016llx %llu\n", (unsigned)top[i].vector,
			(unsigned long long)top[i].rip, (unsigned long long)top[i].count);
}

static void print_shadow_text(const struct stats *st, FILE *f, double wall)
{
	u64 traps = total_traps(st);

	fprintf(f, "  shadow traps         %llu (%.0f/s)\n", (unsigned long long)traps,
		wall > 0 ? (double)traps / wall : 0.0);
	for (unsigned v = 0; v < STATS_NR_VECTORS; v++)
		if (st->traps[v])
			fprintf(f, "    vector %-11u %llu (%.1f us each in the VMM)\n", v,
				(unsigned long long)st->traps[v],
				st->trap_time[v] * 1e6 / (double)st->traps[v]);
	print_sites_text(st, f);
	fprintf(f, "  reflected events     %llu\n", (unsigned long long)st->reflected);
	fprintf(f,
		"  interrupts delivered %llu (%llu held while IF=0); %llu put back in the IRR, "
		"the TPR raised\n",
		(unsigned long long)st->irq_delivered, (unsigned long long)st->irq_deferred,
		(unsigned long long)st->irq_requeued);
	fprintf(f, "  halts                %llu\n", (unsigned long long)st->halts);
	fprintf(f, "  guest port I/O       %llu (%llu refused with #GP)\n",
		(unsigned long long)st->guest_io, (unsigned long long)st->guest_io_denied);
	fprintf(f, "  guest syscalls       %llu\n", (unsigned long long)st->syscalls);
	fprintf(f, "  user faults, own     %llu (#GP/#UD/#NP of instructions not emulated)\n",
		(unsigned long long)st->user_faults_own);
	if (st->dr_arms || st->dr_hits_emulated)
		fprintf(f,
			"  hardware breakpoints %llu armed, %llu hit (%llu without DR6 from KVM), "
			"%llu hit in emulated instructions\n",
			(unsigned long long)st->dr_arms, (unsigned long long)st->dr_hits,
			(unsigned long long)st->dr_hits_inferred,
			(unsigned long long)st->dr_hits_emulated);
	fprintf(f, "  chained              %llu (emulated after another, without a trap)\n",
		(unsigned long long)st->chained);
	fprintf(f,
		"  entry run-aheads     %llu of %llu reached a trap (%llu instructions run "
		"ahead)\n",
		(unsigned long long)st->ahead_runs, (unsigned long long)st->ahead_tries,
		(unsigned long long)st->ahead_insns);
	fprintf(f, "  emulated PT writes   %llu\n", (unsigned long long)st->emulated_pt_writes);
	fprintf(f, "  emulated MMIO stores %llu\n", (unsigned long long)st->emulated_mmio);
	fprintf(f, "  tables unshadowed    %llu (stored to by an instruction not emulated)\n",
		(unsigned long long)st->unshadowed_for_unknown);
	fprintf(f, "  stores replayed      %llu\n", (unsigned long long)st->shadow_stores_replayed);
	fprintf(f,
		"  code pages scanned   %llu (%llu rewritten by the guest, %llu new entries, %llu "
		"fetches straddling in)\n",
		(unsigned long long)st->code_pages_scanned,
		(unsigned long long)st->code_page_writes, (unsigned long long)st->code_page_rescans,
		(unsigned long long)st->code_scan_straddles);
	fprintf(f,
		"  int3s over insns     %llu (text_poke_bp, kprobes: swept as the instruction)\n",
		(unsigned long long)st->code_scan_int3_covers);
	fprintf(f, "  sites in conflict    %llu (inside another instruction found: not patched)\n",
		(unsigned long long)st->code_scan_conflicts);
	fprintf(f, "  code scan time       %.3f s (%.3f s gathering entries)\n", st->code_scan_time,
		st->code_entry_time);
	fprintf(f,
		"  code scan decodes    %llu by capstone, %llu from scan memos (%llu scans found "
		"their frame's)\n",
		(unsigned long long)st->code_scan_decodes,
		(unsigned long long)st->code_scan_memo_decodes,
		(unsigned long long)st->code_scan_memo_own);
	fprintf(f,
		"  scan-ahead           %s: %llu frames asked, %llu decoded, %llu used by a scan "
		"(%llu waited for)\n",
		st->scan_ahead_on ? "on" : "off", (unsigned long long)st->scan_ahead_requests,
		(unsigned long long)st->scan_ahead_done, (unsigned long long)st->scan_ahead_used,
		(unsigned long long)st->scan_ahead_waits);
	fprintf(f, "  entries found later  %llu already scanned (no rescan)\n",
		(unsigned long long)st->code_entries_known);
	fprintf(f, "  save_fl rewrites     %llu (pushf sites that no longer trap)\n",
		(unsigned long long)st->save_fl_rewrites);
	fprintf(f,
		"  monitor calls        %s: %llu cli, %llu sti, %llu save_fl rewrites (%llu of "
		"them "
		"indirect and %llu direct calls, through %llu thunks); %llu traps (an interrupt "
		"held at sti); withdrawn %llu times; %llu gsbase sites; %llu sync_core sites (%llu "
		"slow calls); %llu iretq sites (%llu emulated); %llu cmpxchg16b_emu bodies (%llu "
		"slow calls); %llu SS compare sites; %llu CR2 read sites; %llu swapgs sites (%llu "
		"finished by the VMM); %llu load_gs sites (%llu slow calls); %llu load_fs sites "
		"(%llu slow calls, %llu finished by the VMM); %llu wrmsr sites (%llu slow calls, "
		"%llu FS bases deferred to a trap); %llu SS reload sites (%llu slow calls)\n",
		!st->calls_on	   ? "off"
		: st->calls_window ? "on"
				   : "on (window not claimed)",
		(unsigned long long)st->call_sites[1], (unsigned long long)st->call_sites[2],
		(unsigned long long)st->call_sites[3], (unsigned long long)st->call_indirect,
		(unsigned long long)st->call_direct, (unsigned long long)st->call_thunks,
		(unsigned long long)st->call_traps, (unsigned long long)st->call_withdrawals,
		(unsigned long long)st->call_gsbase, (unsigned long long)st->call_sync,
		(unsigned long long)st->call_sync_slow, (unsigned long long)st->call_iret,
		(unsigned long long)st->call_iret_slow, (unsigned long long)st->call_cx16,
		(unsigned long long)st->call_cx16_slow, (unsigned long long)st->call_ss,
		(unsigned long long)st->call_cr2, (unsigned long long)st->call_swapgs,
		(unsigned long long)st->call_swapgs_slow, (unsigned long long)st->call_load_gs,
		(unsigned long long)st->call_load_gs_slow, (unsigned long long)st->call_load_fs,
		(unsigned long long)st->call_load_fs_slow,
		(unsigned long long)st->call_load_fs_finished, (unsigned long long)st->call_wrmsr,
		(unsigned long long)st->call_wrmsr_slow, (unsigned long long)st->call_fs_base_loads,
		(unsigned long long)st->call_ss_load, (unsigned long long)st->call_ss_load_slow);
	if (st->fs_defer_stop_la)
		fprintf(f, "  FS base deferring    stopped by the scan at la 0x%llx (uses %u)\n",
			(unsigned long long)st->fs_defer_stop_la, st->fs_defer_stop_uses);
	fprintf(f,
		"  patches              %llu applied, %llu in place, %llu traps emulated, %llu "
		"guest copies restored\n",
		(unsigned long long)st->patches_applied, (unsigned long long)st->patches_live,
		(unsigned long long)st->patch_traps, (unsigned long long)st->patch_copies_restored);
	fprintf(f, "  shadow MMU\n");
#define X(name) fprintf(f, "    %-18s %llu\n", #name, (unsigned long long)st->shadow.name);
	SHADOW_COUNTERS(X)
#undef X
}

/* "trap_sites": the busiest exception sites, most traps first. */
static void print_sites_json(const struct stats *st, FILE *f)
{
	struct trap_site top[TRAP_SITES_TOP];
	unsigned n = trap_sites_top(&st->sites, top, TRAP_SITES_TOP);

	fputs(", \"trap_sites\": [", f);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s{\"vector\": %u, \"rip\": \"0x%llx\", \"count\": %llu}",
			i ? ", " : "", (unsigned)top[i].vector, (unsigned long long)top[i].rip,
			(unsigned long long)top[i].count);
	fprintf(f, "], \"trap_sites_kept\": %u, \"trap_sites_other\": %llu", st->sites.used,
		(unsigned long long)st->sites.other);
}

static void print_shadow_json(const struct stats *st, FILE *f, double wall)
{
	bool first = true;
	u64 traps = total_traps(st);

	fprintf(f, ", \"shadow\": {\"traps_total\": %llu, \"traps_per_s\": %.0f, \"traps\": {",
		(unsigned long long)traps, wall > 0 ? (double)traps / wall : 0.0);
	for (unsigned v = 0; v < STATS_NR_VECTORS; v++) {
		if (!st->traps[v])
			continue;
		fprintf(f, "%s\"%u\": %llu", first ? "" : ", ", v,
			(unsigned long long)st->traps[v]);
		first = false;
	}
	fputs("}, \"trap_us\": {", f);
	first = true;
	for (unsigned v = 0; v < STATS_NR_VECTORS; v++) {
		if (!st->traps[v])
			continue;
		fprintf(f, "%s\"%u\": %.1f", first ? "" : ", ", v,
			st->trap_time[v] * 1e6 / (double)st->traps[v]);
		first = false;
	}
	fputs("}", f);
	print_sites_json(st, f);
	fprintf(f,
		", \"reflected\": %llu, \"irq_delivered\": %llu, \"irq_deferred\": %llu, "
		"\"irq_requeued\": %llu, "
		"\"halts\": %llu, \"guest_io\": %llu, \"guest_io_denied\": %llu, "
		"\"user_faults_own\": %llu, \"dr_arms\": %llu, \"dr_hits\": %llu, "
		"\"dr_hits_inferred\": %llu, \"dr_hits_emulated\": %llu, \"syscalls\": "
		"%llu, \"chained\": %llu, \"ahead_runs\": "
		"%llu, \"ahead_tries\": "
		"%llu, "
		"\"ahead_insns\": %llu, \"emulated_pt_writes\": %llu, "
		"\"emulated_mmio\": %llu, \"unshadowed_for_unknown\": %llu, \"stores_replayed\": "
		"%llu, \"code_pages_scanned\": %llu, "
		"\"code_page_writes\": %llu, \"code_page_rescans\": %llu, \"code_scan_straddles\": "
		"%llu, \"code_scan_int3_covers\": %llu, \"code_scan_conflicts\": %llu, "
		"\"patches_applied\": "
		"%llu, \"patches_live\": %llu, "
		"\"patch_traps\": %llu, \"patch_copies_restored\": %llu, \"code_scan_time_s\": "
		"%.6f, "
		"\"code_entry_time_s\": %.6f, \"code_scan_decodes\": %llu, "
		"\"code_scan_memo_decodes\": %llu, \"code_scan_memo_own\": %llu, "
		"\"scan_ahead\": %s, \"scan_ahead_requests\": %llu, \"scan_ahead_done\": %llu, "
		"\"scan_ahead_used\": %llu, \"scan_ahead_waits\": %llu, "
		"\"code_entries_known\": %llu, \"save_fl_rewrites\": "
		"%llu, \"monitor_calls\": %s, \"call_window\": %s, \"call_sites\": {\"cli\": %llu, "
		"\"sti\": %llu, "
		"\"save_fl\": %llu}, \"call_indirect\": %llu, \"call_direct\": %llu, "
		"\"call_thunks\": %llu, \"call_gsbase\": %llu, \"call_sync\": %llu, "
		"\"call_sync_slow\": %llu, \"call_iret\": %llu, \"call_iret_slow\": %llu, "
		"\"call_cx16\": %llu, \"call_cx16_slow\": %llu, \"call_ss\": %llu, \"call_cr2\": "
		"%llu, \"call_swapgs\": %llu, \"call_swapgs_slow\": %llu, \"call_load_gs\": %llu, "
		"\"call_load_gs_slow\": %llu, \"call_load_fs\": %llu, \"call_load_fs_slow\": %llu, "
		"\"call_load_fs_finished\": %llu, \"call_wrmsr\": %llu, \"call_wrmsr_slow\": %llu, "
		"\"call_fs_base_loads\": %llu, \"fs_defer_stop_la\": \"0x%llx\", "
		"\"fs_defer_stop_uses\": %u, \"call_ss_load\": %llu, \"call_ss_load_slow\": "
		"%llu, "
		"\"call_traps\": %llu, \"call_withdrawals\": %llu",
		(unsigned long long)st->reflected, (unsigned long long)st->irq_delivered,
		(unsigned long long)st->irq_deferred, (unsigned long long)st->irq_requeued,
		(unsigned long long)st->halts, (unsigned long long)st->guest_io,
		(unsigned long long)st->guest_io_denied, (unsigned long long)st->user_faults_own,
		(unsigned long long)st->dr_arms, (unsigned long long)st->dr_hits,
		(unsigned long long)st->dr_hits_inferred, (unsigned long long)st->dr_hits_emulated,
		(unsigned long long)st->syscalls, (unsigned long long)st->chained,
		(unsigned long long)st->ahead_runs, (unsigned long long)st->ahead_tries,
		(unsigned long long)st->ahead_insns, (unsigned long long)st->emulated_pt_writes,
		(unsigned long long)st->emulated_mmio,
		(unsigned long long)st->unshadowed_for_unknown,
		(unsigned long long)st->shadow_stores_replayed,
		(unsigned long long)st->code_pages_scanned,
		(unsigned long long)st->code_page_writes, (unsigned long long)st->code_page_rescans,
		(unsigned long long)st->code_scan_straddles,
		(unsigned long long)st->code_scan_int3_covers,
		(unsigned long long)st->code_scan_conflicts,
		(unsigned long long)st->patches_applied, (unsigned long long)st->patches_live,
		(unsigned long long)st->patch_traps, (unsigned long long)st->patch_copies_restored,
		st->code_scan_time, st->code_entry_time, (unsigned long long)st->code_scan_decodes,
		(unsigned long long)st->code_scan_memo_decodes,
		(unsigned long long)st->code_scan_memo_own, st->scan_ahead_on ? "true" : "false",
		(unsigned long long)st->scan_ahead_requests,
		(unsigned long long)st->scan_ahead_done, (unsigned long long)st->scan_ahead_used,
		(unsigned long long)st->scan_ahead_waits,
		(unsigned long long)st->code_entries_known,
		(unsigned long long)st->save_fl_rewrites, st->calls_on ? "true" : "false",
		st->calls_window ? "true" : "false", (unsigned long long)st->call_sites[1],
		(unsigned long long)st->call_sites[2], (unsigned long long)st->call_sites[3],
		(unsigned long long)st->call_indirect, (unsigned long long)st->call_direct,
		(unsigned long long)st->call_thunks, (unsigned long long)st->call_gsbase,
		(unsigned long long)st->call_sync, (unsigned long long)st->call_sync_slow,
		(unsigned long long)st->call_iret, (unsigned long long)st->call_iret_slow,
		(unsigned long long)st->call_cx16, (unsigned long long)st->call_cx16_slow,
		(unsigned long long)st->call_ss, (unsigned long long)st->call_cr2,
		(unsigned long long)st->call_swapgs, (unsigned long long)st->call_swapgs_slow,
		(unsigned long long)st->call_load_gs, (unsigned long long)st->call_load_gs_slow,
		(unsigned long long)st->call_load_fs, (unsigned long long)st->call_load_fs_slow,
		(unsigned long long)st->call_load_fs_finished, (unsigned long long)st->call_wrmsr,
		(unsigned long long)st->call_wrmsr_slow, (unsigned long long)st->call_fs_base_loads,
		(unsigned long long)st->fs_defer_stop_la, st->fs_defer_stop_uses,
		(unsigned long long)st->call_ss_load, (unsigned long long)st->call_ss_load_slow,
		(unsigned long long)st->call_traps, (unsigned long long)st->call_withdrawals);
#define X(name) fprintf(f, ", \"%s\": %llu", #name, (unsigned long long)st->shadow.name);
	SHADOW_COUNTERS(X)
#undef X
	fputc('}', f);
}

/* One line per mark: its label and time, then what changed since the previous one. */
static void print_marks_text(const struct stats *st, FILE *f)
{
	const struct stats_mark start = { .t = st->t_start };

	fprintf(f, "  marks                %u (%llu dropped), differences from the previous\n",
		st->nr_marks, (unsigned long long)st->marks_dropped);
	for (unsigned i = 0; i < st->nr_marks; i++) {
		const struct stats_mark *m = &st->marks[i], *prev = i ? m - 1 : &start;

		fprintf(f, "    mark %-10u t %.6f s +%.6f s:", m->label, m->t - st->t_start,
			m->t - prev->t);
#define X(name, what) fprintf(f, " " #name " +%llu", (unsigned long long)(m->name - prev->name));
		STATS_MARK_COUNTERS(X)
#undef X
		fputc('\n', f);
	}
}

void stats_print_text(const struct stats *st, FILE *f, const char *mode, const char *image,
		      int exit_status)
{
	double wall = st->t_end - st->t_start;
	char buf[32];

	fprintf(f, "umbra stats: mode %s, image %s, exit status %d\n", mode, image, exit_status);
	fprintf(f, "  wall time            %.6f s\n", wall);
	fprintf(f, "  vm exits             %llu (%.0f/s)\n", (unsigned long long)total_exits(st),
		wall > 0 ? (double)total_exits(st) / wall : 0.0);
	for (unsigned i = 0; i < STATS_MAX_EXIT_REASON; i++)
		if (st->exits[i])
			fprintf(f, "    %-18s %llu\n", stats_exit_name(i, buf, sizeof(buf)),
				(unsigned long long)st->exits[i]);
	if (st->exits_other)
		fprintf(f, "    %-18s %llu\n", "other", (unsigned long long)st->exits_other);
	fprintf(f, "  unknown pio          %llu\n", (unsigned long long)st->pio_unknown);
	fprintf(f, "  unknown mmio         %llu\n", (unsigned long long)st->mmio_unknown);
	fprintf(f, "  emulated insns       %llu\n", (unsigned long long)st->emulated);
	for (unsigned i = 0; i < st->nr_emulated_by; i++)
		fprintf(f, "    %-18s %llu\n", st->emulated_by[i].name,
			(unsigned long long)st->emulated_by[i].count);
	if (st->emulated_other)
		fprintf(f, "    %-18s %llu\n", "other", (unsigned long long)st->emulated_other);
	if (st->hw_syscall_entry)
		fprintf(f, "  guest syscalls       %llu (through hw mode's entry page)\n",
			(unsigned long long)st->syscalls);
	if (st->host && st->strategy)
		print_host_text(st, f);
	if (st->have_shadow)
		print_shadow_text(st, f, wall);
	if (st->nr_marks || st->marks_dropped)
		print_marks_text(st, f);
	if (st->kvm_note[0])
		fprintf(f, "  kvm stats          none (%s)\n", st->kvm_note);
	for (unsigned i = 0; i < st->nr_kvm; i++)
		fprintf(f, "  kvm %-18s %llu\n", st->kvm[i].name,
			(unsigned long long)st->kvm[i].value);
}

/* `mode` and `image` are printed as JSON strings: escape what JSON requires. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_answer(FILE *f, enum host_answer a)
{
	fputs(a == HOST_YES ? "true" : a == HOST_NO ? "false" : "null", f);
}

/* A string, or null for NULL. */
static void json_string_or_null(FILE *f, const char *s)
{
	if (s)
		json_string(f, s);
	else
		fputs("null", f);
}

/* The "host" object: the probe's answers (null: unknown) and the strategy chosen. */
static void print_host_json(const struct stats *st, FILE *f)
{
	const struct host_probe *p = st->host;
	const struct shadow_strategy *s = st->strategy;

	fputs(", \"host\": {\"iopl3\": ", f);
	json_answer(f, p->iopl3);
	fputs(", \"pt_stores_seen\": ", f);
	json_answer(f, p->pt_stores_seen);
	if (p->syscall_cpl < 0)
		fputs(", \"syscall_cpl\": null", f);
	else
		fprintf(f, ", \"syscall_cpl\": %d", p->syscall_cpl);
	fputs(", \"cpl3_fsgsbase\": ", f);
	json_answer(f, p->cpl3_fsgsbase);
	fprintf(f, ", \"probe_ms\": %.3f, \"undecided\": ", p->probe_ms);
	json_string(f, p->note);
	fputs(", \"sensitive\": ", f);
	json_string(f, shadow_sensitive_name(s->sensitive));
	fputs(", \"sensitive_note\": ", f);
	json_string_or_null(f, s->sensitive_note);
	fputs(", \"shadow_stores\": ", f);
	json_string(f, shadow_stores_name(s->stores));
	fputs(", \"shadow_stores_note\": ", f);
	json_string_or_null(f, s->stores_note);
	fputs(", \"syscall_entry\": ", f);
	json_string(f, shadow_syscall_entry_name(s->syscall_entry));
	fputs(", \"syscall_entry_note\": ", f);
	json_string_or_null(f, s->syscall_note);
	fprintf(f, ", \"qemu_tcg\": %s, \"tpr_masking\": %s, \"tpr_masking_note\": ",
		p->qemu_tcg ? "true" : "false", s->tpr_masking ? "true" : "false");
	json_string_or_null(f, s->tpr_note);
	fputc('}', f);
}

/*
 * "marks": one object per mark, its counters as they were then (cumulative)
 * and "t_s", seconds since the start of the run; always present.
 */
static void print_marks_json(const struct stats *st, FILE *f)
{
	fputs(", \"marks\": [", f);
	for (unsigned i = 0; i < st->nr_marks; i++) {
		const struct stats_mark *m = &st->marks[i];

		fprintf(f, "%s{\"label\": %u, \"t_s\": %.6f", i ? ", " : "", m->label,
			m->t - st->t_start);
#define X(name, what) fprintf(f, ", \"" #name "\": %llu", (unsigned long long)m->name);
		STATS_MARK_COUNTERS(X)
#undef X
		fputc('}', f);
	}
	fprintf(f, "], \"marks_dropped\": %llu", (unsigned long long)st->marks_dropped);
}

void stats_print_json(const struct stats *st, FILE *f, const char *mode, const char *image,
		      int exit_status)
{
	bool first = true;
	char buf[32];

	fputs("{\"mode\": ", f);
	json_string(f, mode);
	fputs(", \"image\": ", f);
	json_string(f, image);
	fprintf(f,
		", \"exit_status\": %d, \"wall_time_s\": %.6f, \"exits_total\": %llu, \"exits\": {",
		exit_status, st->t_end - st->t_start, (unsigned long long)total_exits(st));
	for (unsigned i = 0; i < STATS_MAX_EXIT_REASON; i++) {
		if (!st->exits[i])
			continue;
		fprintf(f, "%s\"%s\": %llu", first ? "" : ", ",
			stats_exit_name(i, buf, sizeof(buf)), (unsigned long long)st->exits[i]);
		first = false;
	}
	if (st->exits_other)
		fprintf(f, "%s\"other\": %llu", first ? "" : ", ",
			(unsigned long long)st->exits_other);
	fprintf(f,
		"}, \"pio_unknown\": %llu, \"mmio_unknown\": %llu, \"emulated_total\": %llu, "
		"\"emulated\": {",
		(unsigned long long)st->pio_unknown, (unsigned long long)st->mmio_unknown,
		(unsigned long long)st->emulated);
	for (unsigned i = 0; i < st->nr_emulated_by; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_string(f, st->emulated_by[i].name);
		fprintf(f, ": %llu", (unsigned long long)st->emulated_by[i].count);
	}
	if (st->emulated_other)
		fprintf(f, "%s\"other\": %llu", st->nr_emulated_by ? ", " : "",
			(unsigned long long)st->emulated_other);
	fputc('}', f);
	if (st->hw_syscall_entry)
		fprintf(f, ", \"hw_syscalls\": %llu", (unsigned long long)st->syscalls);
	if (st->host && st->strategy)
		print_host_json(st, f);
	if (st->have_shadow)
		print_shadow_json(st, f, st->t_end - st->t_start);
	print_marks_json(st, f);
	if (st->nr_kvm) {
		fputs(", \"kvm\": {", f);
		for (unsigned i = 0; i < st->nr_kvm; i++) {
			fputs(i ? ", " : "", f);
			json_string(f, st->kvm[i].name);
			fprintf(f, ": %llu", (unsigned long long)st->kvm[i].value);
		}
		fputc('}', f);
	}
	fputs("}\n", f);
}
