// SPDX-License-Identifier: MIT
/*
 * Unit tests for stats marks: the port's guest-visible contract
 * (devices/stats_mark.c) and the snapshots and their output in vmm/stats.c
 * (stats_add_mark, the "marks" of --stats=json, the text lines).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/stats_mark.h"
#include "vmm/stats.h"

/* ---- fake host: records the labels ------------------------------------------ */

struct marks {
	int calls;
	u32 label[8];
};

static struct marks marks;

static void fake_stats_mark(void *opaque, u32 label)
{
	struct marks *m = opaque;

	if (m->calls < 8)
		m->label[m->calls] = label;
	m->calls++;
}

static const struct dev_host host = { .opaque = &marks, .stats_mark = fake_stats_mark };

static struct bus bus;

#include "bus_io.h"	/* needs `bus` */
static struct stats st; /* large: not on the stack */

static int setup(void **state)
{
	(void)state;
	memset(&marks, 0, sizeof(marks));
	memset(&bus, 0, sizeof(bus));
	memset(&st, 0, sizeof(st));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bus_destroy(&bus);
	return 0;
}

static void place(void)
{
	struct device *dev = stats_mark_create(&host);

	assert_non_null(dev);
	assert_int_equal(bus_register(&bus, STATS_MARK_PORT, STATS_MARK_LEN, dev), 0);
}

/* ---- the port ------------------------------------------------------------------ */

/* Item 1: every write width is a label, little-endian, at any offset. */
static void test_port_write_labels(void **state)
{
	(void)state;
	place();
	out(0x520, 7, 1);
	out(0x520, 0xbeef, 2);
	out(0x520, 0x80000001, 4);
	out(0x523, 3, 1);
	assert_int_equal(marks.calls, 4);
	assert_int_equal(marks.label[0], 7);
	assert_int_equal(marks.label[1], 0xbeef);
	assert_int_equal(marks.label[2], 0x80000001);
	assert_int_equal(marks.label[3], 3);
}

/* Item 2: the magic, its low bytes, bytes from an offset; reads record nothing. */
static void test_port_read_magic(void **state)
{
	(void)state;
	place();
	assert_int_equal(in(0x520, 4), STATS_MARK_MAGIC);
	assert_int_equal(in(0x520, 4), 0x52424d55);
	assert_int_equal(in(0x520, 2), 0x4d55);
	assert_int_equal(in(0x520, 1), 'U');
	assert_int_equal(in(0x521, 1), 'M');
	assert_int_equal(in(0x522, 1), 'B');
	assert_int_equal(in(0x523, 1), 'R');
	assert_int_equal(in(0x522, 2), 0x5242);
	assert_int_equal(in(0x522, 4), 0xffff5242); /* past the register: all-ones */
	assert_int_equal(marks.calls, 0);
	/* Nothing next door is ours. */
	assert_null(bus_find(&bus, 0x51f));
	assert_null(bus_find(&bus, 0x524));
}

static void test_port_no_callback(void **state)
{
	struct device *dev = stats_mark_create(&(struct dev_host){ 0 });
	u8 v = 1;

	(void)state;
	assert_non_null(dev);
	dev->ops->write(dev, 0, &v, 1); /* no stats_mark: nothing happens */
	dev->ops->destroy(dev);
	dev = stats_mark_create(NULL);
	assert_non_null(dev);
	dev->ops->write(dev, 0, &v, 1);
	dev->ops->destroy(dev);
}

/* ---- the snapshots --------------------------------------------------------------- */

/* Counters of a shadow-mode run, `k` times the base amounts. */
static void count(u64 k)
{
	st.exits[2] = 10 * k; /* KVM_EXIT_IO */
	st.exits_other = k;
	st.traps[3] = 1 * k;
	st.traps[6] = 2 * k;
	st.traps[13] = 3 * k;
	st.traps[14] = 4 * k;
	st.traps[1] = 5 * k;   /* #DB: in the total only */
	st.traps[32] = 6 * k;  /* interrupts ... */
	st.traps[236] = 7 * k; /* ... every vector from 32 */
	st.emulated = 8 * k;
	st.emulated_pt_writes = 9 * k;
	st.patch_traps = 11 * k;
	st.syscalls = 12 * k;
	st.chained = 13 * k;
	st.call_traps = 14 * k;
}

static void test_snapshot_fields(void **state)
{
	struct shadow_stats mmu = {
		.faults = 100, .pt_writes = 200, .root_hits = 30, .root_misses = 4, .sp_created = 50
	};
	const struct stats_mark *m = &st.marks[0];

	(void)state;
	count(1);
	stats_add_mark(&st, 42, &mmu);
	assert_int_equal(st.nr_marks, 1);
	assert_int_equal(m->label, 42);
	assert_true(m->t > 0);
	assert_int_equal(m->exits, 11);
	assert_int_equal(m->traps, 1 + 2 + 3 + 4 + 5 + 6 + 7);
	assert_int_equal(m->traps_bp, 1);
	assert_int_equal(m->traps_ud, 2);
	assert_int_equal(m->traps_gp, 3);
	assert_int_equal(m->traps_pf, 4);
	assert_int_equal(m->traps_irq, 13);
	assert_int_equal(m->emulated, 8);
	assert_int_equal(m->emulated_pt_writes, 9);
	assert_int_equal(m->patch_traps, 11);
	assert_int_equal(m->syscalls, 12);
	assert_int_equal(m->chained, 13);
	assert_int_equal(m->call_traps, 14);
	assert_int_equal(m->faults, 100);
	assert_int_equal(m->pt_writes, 200);
	assert_int_equal(m->root_switches, 34);
	assert_int_equal(m->sp_created, 50);
	/* hw mode: no MMU counters. */
	stats_add_mark(&st, 43, NULL);
	assert_int_equal(st.nr_marks, 2);
	assert_int_equal(st.marks[1].faults, 0);
	assert_int_equal(st.marks[1].root_switches, 0);
	assert_int_equal(st.marks[1].exits, 11);
	assert_true(st.marks[1].t >= m->t);
}

static void test_snapshot_bounded(void **state)
{
	(void)state;
	for (unsigned i = 0; i < STATS_MAX_MARKS + 3; i++)
		stats_add_mark(&st, i, NULL);
	assert_int_equal(st.nr_marks, STATS_MAX_MARKS);
	assert_int_equal(st.marks_dropped, 3);
	assert_int_equal(st.marks[STATS_MAX_MARKS - 1].label, STATS_MAX_MARKS - 1);
}

/* stats_print_json or stats_print_text into a string (free it). */
static char *print(bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (json)
		stats_print_json(&st, f, "shadow", "img", 0);
	else
		stats_print_text(&st, f, "shadow", "img", 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Two marks with known times: the JSON array holds their cumulative counters. */
static void two_marks(void)
{
	struct shadow_stats mmu = { .faults = 100,
				    .pt_writes = 200,
				    .root_hits = 30,
				    .root_misses = 4,
				    .sp_created = 50,
				    .faults_fixed = 70,
				    .stores = 300 };

	st.t_start = 1000.0;
	st.t_end = 1010.0;
	count(1);
	stats_add_mark(&st, 0, &mmu);
	count(3);
	mmu.faults = 160;
	mmu.stores = 345;
	stats_add_mark(&st, 1, &mmu);
	st.marks[0].t = 1001.5;
	st.marks[1].t = 1004.25;
}

static void test_json_marks(void **state)
{
	char *s;

	(void)state;
	two_marks();
	s = print(true);
	assert_non_null(strstr(
		s, ", \"marks\": [{\"label\": 0, \"t_s\": 1.500000, \"exits\": 11, \"traps\": 28, "
		   "\"traps_gp\": 3, \"traps_pf\": 4, \"traps_ud\": 2, \"traps_bp\": 1, "
		   "\"traps_irq\": 13, \"emulated\": 8, \"emulated_pt_writes\": 9, "
		   "\"patch_traps\": 11, \"syscalls\": 12, \"chained\": 13, \"call_traps\": 14, "
		   "\"faults\": 100, \"pt_writes\": 200, "
		   "\"root_switches\": 34, \"sp_created\": 50, \"faults_fixed\": 70, "
		   "\"stores\": 300}, {\"label\": 1, \"t_s\": 4.250000, "
		   "\"exits\": 33, \"traps\": 84, "));
	assert_non_null(strstr(s, "\"faults\": 160, \"pt_writes\": 200, \"root_switches\": 34, "
				  "\"sp_created\": 50, \"faults_fixed\": 70, \"stores\": 345}], "
				  "\"marks_dropped\": 0}\n"));
	free(s);
}

static void test_json_no_marks(void **state)
{
	char *s;

	(void)state;
	s = print(true);
	assert_non_null(strstr(s, ", \"marks\": [], \"marks_dropped\": 0}\n"));
	free(s);
	st.marks_dropped = 5;
	s = print(true);
	assert_non_null(strstr(s, ", \"marks\": [], \"marks_dropped\": 5}\n"));
	free(s);
}

/*
 * KVM's own counters (vmm/kvm_stats.h): the JSON object's last member,
 * "kvm", and a text line each; none without them, or the reason why not.
 */
static void test_kvm_counters(void **state)
{
	char *s;

	(void)state;
	s = print(true);
	assert_null(strstr(s, "\"kvm\""));
	free(s);
	st.kvm[0] = (struct stats_kvm){ "exits", 543 };
	st.kvm[1] = (struct stats_kvm){ "insn_emulation", 766 };
	st.nr_kvm = 2;
	s = print(true);
	assert_non_null(strstr(s, ", \"kvm\": {\"exits\": 543, \"insn_emulation\": 766}}\n"));
	free(s);
	s = print(false);
	assert_non_null(
		strstr(s, "\n  kvm exits              543\n  kvm insn_emulation     766\n"));
	free(s);
	st.nr_kvm = 0;
	snprintf(st.kvm_note, sizeof(st.kvm_note), "KVM_GET_STATS_FD: Inappropriate ioctl");
	s = print(false);
	assert_non_null(
		strstr(s, "  kvm stats          none (KVM_GET_STATS_FD: Inappropriate ioctl)\n"));
	free(s);
}

/* Text: one line per mark with the differences from the previous one. */
static void test_text_marks(void **state)
{
	char *s;

	(void)state;
	s = print(false);
	assert_null(strstr(s, "marks")); /* none: no section */
	free(s);
	two_marks();
	s = print(false);
	assert_non_null(strstr(s, "  marks                2 (0 dropped)"));
	assert_non_null(strstr(s, "    mark 0          t 1.500000 s +1.500000 s: exits +11 traps "
				  "+28 traps_gp +3 "));
	assert_non_null(strstr(s, "    mark 1          t 4.250000 s +2.750000 s: exits +22 traps "
				  "+56 traps_gp +6 traps_pf +8 traps_ud +4 traps_bp +2 traps_irq "
				  "+26 emulated +16 emulated_pt_writes +18 patch_traps +22 "
				  "syscalls +24 chained +26 call_traps +28 faults +60 pt_writes +0 "
				  "root_switches +0 "
				  "sp_created +0 faults_fixed +0 stores +45\n"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_port_write_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_read_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_no_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_no_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kvm_counters, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
