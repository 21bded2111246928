#!/bin/bash
# SPDX-License-Identifier: MIT
#
# What issues 6 and 7 still need from a host with /dev/kvm (our PVM machines
# above all), measured in one command and written to one report:
#
#   tools/pvm-report.sh [--quick] [--out DIR]
#
#  1. the host: CPU model and the cpuinfo flags shadow mode cares about
#     (fsgsbase, smap, smep, umip, pku, fsrm, pcid), kernel, whether
#     /dev/kvm is PVM (the kvm_pvm module);
#  2. shared/tools/hostprobe: probe, pt_visibility, pt_apply, syscall_probe
#     (what an exit, a CPL0 instruction, a CR3 load cost here);
#  3. umbra's own probe (`umbra run -v --stats`: strategy, iopl3,
#     cpl3_fsgsbase, where a syscall from CPL3 lands);
#  4. make bench-emu: the emulator's two paths, against the trap cost of 2;
#     and the monitor's stand-ins in a Linux boot running execs and pipe
#     round trips (umbra's --stats line: sites rewritten, slow calls, the
#     ones the VMM finished: a host that refused the load_fs stand-in's
#     real segment load would show there);
#  5. make bench QUICK=1 with the variants that show what each mechanism is
#     worth here (entry run-ahead, prefault, chaining, the pool's clean pages
#     first: fewer replayed stores, but KVM shadows more distinct frames as
#     tables, which only a PVM host can weigh), both guests, every
#     configuration that can run (README, "Benchmarks"): boot times to the
#     first userspace line included;
#  6. tools/trap-profile.sh of a pipe round trip and of an exec;
#  7. (before 5) test_linux_probe: the probe programs' lines, hardware
#     breakpoints (session 27) among them, with the NOTEs of what this host
#     does not let shadow mode honour;
#  8. (before 5) what an armed watchpoint costs (ubench -w: the traps of the
#     same workloads without and with one), and testos's debug-register
#     tests in both modes (session 28);
#  9. (before 5) test_linux_mm, test_linux_mm_sync and test_linux_modules
#     (session 29), test_linux_swap (session 30): Linux's memory manager,
#     swap and kernel modules against the shadow MMU, where a late or
#     missing TLB flush can show (the nested rig cannot show one: README,
#     "Without /dev/kvm").
# 10. (before 5) test_shadow_hello: the Multiboot guest's 32-bit checks
#     (32-bit and PAE paging, events, user mode: sessions 32 and 33), which
#     on PVM run at CPL3 on the host's GDT, whose 32-bit user segment may
#     be missing; and tools/memtest-time.sh: memtest86+, all CPL0, to its
#     fifth test in every configuration (hw mode there emulates each
#     instruction: 600 s at most), its 64-bit image and its 32-bit one
#     (compatibility mode on 4-level paging; with long mode hidden, PAE
#     paging: session 34; on PVM the guest's cpuid may not be filtered,
#     and the table says which paging memtest showed); test_linux32, Debian's
#     686-pae kernel in shadow mode (its 32-bit code at CPL3 in
#     compatibility mode on the host's GDT).
#
# --quick skips 5 (about half an hour on the rig; minutes on PVM) and 6.
# Each step's output goes to DIR (default bench/results/pvm-report-DATE), and
# DIR/report.md gathers them. A step that fails is reported as failed and
# the others still run. Exit status: 0 if every step ran, 1 if one failed,
# 2 on bad usage or without /dev/kvm (nothing to measure).
set -u
me=tools/pvm-report.sh
quick=0
out=
usage() {
	echo "usage: $me [--quick] [--out DIR]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; shift ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--out=*) out=${1#--out=}; shift ;;
	-h | --help) sed -n '3,50p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done
cd "$(dirname "$0")/.." || exit 2
[ -e /dev/kvm ] || { echo "$me: no /dev/kvm here: nothing to measure (run it on a KVM host)" >&2; exit 2; }
[ -f Makefile ] || { echo "$me: run ./configure first" >&2; exit 2; }
out=${out:-bench/results/pvm-report-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$out" || exit 2
report=$out/report.md
failed=0

# step NAME COMMAND...: run it, its output in $out/NAME.txt, a line in the report.
step() {
	local name=$1 t0 rc
	shift
	echo "$me: $name: $*" >&2
	t0=$(date +%s)
	"$@" >"$out/$name.txt" 2>&1
	rc=$?
	printf '\n## %s (%s, status %d, %d s)\n\n```\n' "$name" "$*" "$rc" "$(($(date +%s) - t0))" >>"$report"
	tail -n 60 "$out/$name.txt" >>"$report"
	printf '```\n' >>"$report"
	[ $rc -eq 0 ] || failed=1
}

{
	echo "# Umbra on $(hostname), $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
	echo "- kernel: $(uname -r)"
	echo "- flags shadow mode cares about: $(grep -m1 -o -w -E 'fsgsbase|smap|smep|umip|pku|fsrm|pcid|invpcid' /proc/cpuinfo | sort -u | tr '\n' ' ')"
	echo "- /dev/kvm: $(if [ -e /sys/module/kvm_pvm ]; then echo 'PVM (kvm_pvm)'; elif [ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ]; then echo 'VMX/SVM'; else echo 'present, module not named'; fi)"
} >"$report"

probe=../shared/tools/hostprobe
if [ -d "$probe" ]; then
	pd=$out/hostprobe
	cp -r "$probe" "$pd"
	step hostprobe-build make -C "$pd" all syscall_probe
	step hostprobe bash -c "cd '$pd' && ./probe"
	step pt_visibility bash -c "cd '$pd' && ./pt_visibility"
	step pt_apply bash -c "cd '$pd' && ./pt_apply"
	step syscall_probe bash -c "cd '$pd' && ./syscall_probe"
else
	printf '\n## hostprobe\n\nnot found at %s\n' "$probe" >>"$report"
fi
step build make -j"$(nproc)" vmm/umbra images build/rel/bench/umbra-bench build/rel/bench/ubench
# hello ends through debug-exit with status 1, its success (README, "Exit status").
step umbra-probe bash -c 'vmm/umbra run -v --mmu=shadow --stats images/hello/hello.elf 2>&1 |
	grep -E "host probe|sensitive|exit status"; [ "${PIPESTATUS[0]}" -eq 1 ]'
step bench-emu make bench-emu
# A Linux boot in shadow mode that runs `/ubench ARGS` and prints its BENCH
# (and WATCH) lines and umbra's --stats lines matching PATTERN.
ubench_boot() {
	local d run rc args=$1 pattern=$2
	# shellcheck disable=SC2046 # two paths, no spaces
	set -- $(sh images/linux/fetch.sh) && [ $# -eq 2 ] || return 1
	d=$(mktemp -d) || return 1
	run=$(printf '/ubench %s 2>&1\n' "$args" | base64 -w0)
	sh bench/mkinitrd.sh "$2" build/rel/bench/ubench "$d/initrd.gz" &&
		vmm/umbra run --mmu=shadow --mem 1G --stats --initrd "$d/initrd.gz" "$1" \
			--cmdline "console=ttyS0 reboot=k panic=-1 nopti noreplace-smp pci=off quiet umbra.run=$run" \
			2>"$d/stats" | grep -a -E '^(BENCH|WATCH)' &&
		grep -E "$pattern" "$d/stats"
	rc=$?
	[ $rc -eq 0 ] || grep -a "^umbra" "$d/stats" | tail -n 5
	rm -rf "$d"
	return $rc
}
# The monitor's stand-ins in a Linux boot running execs and pipe round trips:
# its BENCH lines and umbra's --stats lines for traps and monitor calls.
step standins ubench_boot '-n 30 exec -n 1000 pingpong' 'shadow traps|monitor calls'
# What an armed hardware watchpoint costs shadow mode (session 28: trap
# chaining stays on, the emulator checks what it runs): the same workloads
# without and with one armed (ubench -w), the traps of each whole run.
watch_cost() {
	local w
	for w in '' -w; do
		echo "ubench $w:"
		ubench_boot "$w -n 20000 syscall -n 1000 pingpong -n 50 fork" \
			'shadow traps|chained|breakpoints' || return 1
	done
}
step watch-cost watch_cost
# testos's debug-register tests in shadow mode (patch) and hw mode: whether
# this host's KVM takes a VM's breakpoints at all (the rig's did).
testos_debugreg() {
	local m
	for m in '--mmu=shadow --sensitive=patch' --mmu=hw; do
		echo "umbra run $m:"
		# shellcheck disable=SC2086 # two words
		vmm/umbra run $m --cmdline test=dr_,iret_rf,irqflag_sti_dr images/testos/testos.elf 2>&1 |
			grep -a -E '^(TEST|SUMMARY)'
	done
}
step testos-debugreg testos_debugreg
# What a Linux process may do that PVM may not let shadow mode honour: the
# probe programs' lines (single steps, ioperm, its own faults, PR_SET_TSC,
# the per-CPU segment, hardware breakpoints, the 32-bit process).
# PIPESTATUS[0] below is the test's status: `make && test | grep` runs the
# pipeline `test | grep` last.
step linux-probe bash -c 'make build/san/tests/test_linux build/san/umbra probe-programs >/dev/null &&
	env UMBRA=vmm/umbra LINUX_TESTS=test_linux_probe build/san/tests/test_linux 2>&1 |
	grep -a -E "probe|NOTE|OK|FAIL|SKIP"; [ "${PIPESTATUS[0]}" -eq 0 ]'
# Linux's memory manager and kernel modules against the shadow MMU (the
# probe's lines: pages discarded, migrated, merged; a failing check's words).
step linux-mm bash -c 'make build/san/tests/test_linux probe-programs >/dev/null &&
	env UMBRA=vmm/umbra LINUX_TESTS="test_linux_mm*" build/san/tests/test_linux 2>&1 |
	grep -a -E "probe-mm|NOTE|OK|FAIL|SKIP"; [ "${PIPESTATUS[0]}" -eq 0 ]'
step linux-modules bash -c 'make build/san/tests/test_linux >/dev/null &&
	env UMBRA=vmm/umbra LINUX_TESTS=test_linux_modules build/san/tests/test_linux 2>&1 |
	grep -a -E "module|NOTE|OK|FAIL|SKIP"; [ "${PIPESTATUS[0]}" -eq 0 ]'
step linux-swap bash -c 'make build/san/tests/test_linux probe-programs >/dev/null &&
	env UMBRA=vmm/umbra LINUX_TESTS=test_linux_swap build/san/tests/test_linux 2>&1 |
	grep -a -E "swap|NOTE|OK|FAIL|SKIP"; [ "${PIPESTATUS[0]}" -eq 0 ]'
step mboot-32bit bash -c 'make build/san/tests/test_shadow_hello build/san/umbra images >/dev/null &&
	env UMBRA=vmm/umbra build/san/tests/test_shadow_hello 2>&1 |
	grep -a -E "paging32:|pae:|events32:|OK|FAIL|SKIP|ERROR"; [ "${PIPESTATUS[0]}" -eq 0 ]'
step memtest tools/memtest-time.sh --timeout 600
step memtest-ia32 tools/memtest-time.sh --timeout 600 --image ia32
step memtest-ia32-pae tools/memtest-time.sh --timeout 600 --image ia32 --hide lm
step linux32 bash -c 'make build/san/tests/test_linux32 >/dev/null &&
	env UMBRA=vmm/umbra build/san/tests/test_linux32 2>&1 |
	grep -a -E "uname|forkexec|tmpfs|dmesg-alarms|OK|FAIL|SKIP|ERROR"; [ "${PIPESTATUS[0]}" -eq 0 ]'
if [ $quick -eq 0 ]; then
	step bench make bench QUICK=1 BENCH_ARGS="--linux-timeout 1800 --variant noentry:--chain-entry=off --variant noprefault:--shadow-prefault=off --variant nochain:--chain=off --variant lifo:--shadow-clean-first=off"
	step profile-pingpong tools/trap-profile.sh -n 25 '/ubench -m -n 2000 pingpong'
	step profile-exec tools/trap-profile.sh -n 25 '/ubench -m -n 100 exec'
fi
echo "$me: wrote $report" >&2
exit $failed
