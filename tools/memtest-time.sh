#!/bin/bash
# SPDX-License-Identifier: MIT
#
# How long memtest86+ (Debian's, images/memtest/fetch.sh) takes to reach each
# of its first tests, in each configuration, side by side: a guest that runs
# everything at CPL0, where hw mode on a PVM host emulates every instruction
# and shadow mode runs it natively at CPL3 (README, "memtest86+").
#
#   tools/memtest-time.sh [--mem SIZE] [--timeout S] [--tests N] [--umbra PATH]
#                         [--image x64|ia32] [--hide FEAT] [CONFIG...]
#
# CONFIG: umbra-shadow, umbra-hw (vmm/umbra, built first; or --umbra's binary,
# used as it is), qemu-tcg, qemu-kvm
# (qemu-system-x86_64 -kernel); default: every one that can run here (umbra
# and qemu-kvm need /dev/kvm, QEMU must be installed). Each boots with
# --mem SIZE (default 64M) and is stopped once test N (default 4, counting
# from 0) starts, or after S seconds (default 300). Prints a Markdown table:
# the seconds from the start of the process to the start of each test, and
# umbra's exits and shadow traps (--stats=json). A configuration that cannot
# run is listed with the reason. --image ia32 times the package's 32-bit
# image instead of the 64-bit one (the events column adds the paging it
# showed, [LM] or [PAE]); --hide FEAT hides a CPUID feature from
# every configuration (umbra --cpu=-FEAT, QEMU -cpu max,-FEAT): --image ia32
# --hide lm runs it on PAE paging. Exit status: 0, 1 if one did not reach
# test N, 2 on bad usage or when the image cannot be fetched.
set -u
me=tools/memtest-time.sh
mem=64M
limit=300
upto=4
umbra=
flavour=x64
hide=
configs=()
usage() {
	sed -n '/^#   tools/,/^#   tools/s/^#   //p' "$0" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || usage; limit=$2; shift 2 ;;
	--tests) [ $# -ge 2 ] || usage; upto=$2; shift 2 ;;
	--umbra) [ $# -ge 2 ] || usage; umbra=$2; shift 2 ;;
	--image) [ $# -ge 2 ] || usage; flavour=$2; shift 2 ;;
	--hide) [ $# -ge 2 ] || usage; hide=$2; shift 2 ;;
	-h | --help) sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	umbra-shadow | umbra-hw | qemu-tcg | qemu-kvm) configs+=("$1"); shift ;;
	*) echo "$me: unknown argument '$1'" >&2; usage ;;
	esac
done
case $upto in [0-9]) ;; *) echo "$me: --tests must be 0..9" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.." || exit 2
case $flavour in x64 | ia32) ;; *) echo "$me: --image must be x64 or ia32" >&2; exit 2 ;; esac
case $hide in *[!a-z0-9_]*) echo "$me: --hide takes one feature name" >&2; exit 2 ;; esac
image=$(sh images/memtest/fetch.sh "$flavour") ||
	{ echo "$me: memtest86+ is not available" >&2; exit 2; }
umbra_cpu=() qemu_cpu=()
if [ -n "$hide" ]; then umbra_cpu=("--cpu=-$hide"); qemu_cpu=(-cpu "max,-$hide"); fi
[ ${#configs[@]} -gt 0 ] || configs=(umbra-shadow umbra-hw qemu-tcg qemu-kvm)
qemu=$(command -v qemu-system-x86_64 || true)
if [ -z "$umbra" ]; then
	umbra=vmm/umbra
	if [ -e /dev/kvm ] && [[ " ${configs[*]} " == *" umbra-"* ]]; then
		make -s vmm/umbra >&2 || { echo "$me: cannot build vmm/umbra" >&2; exit 2; }
	fi
fi
cmdline="console=ttyS0,115200 nosmp"

# Why config $1 cannot run here, or nothing.
why_not() {
	case $1 in
	umbra-*) [ -e /dev/kvm ] || echo "no /dev/kvm" ;;
	qemu-tcg) [ -n "$qemu" ] || echo "qemu-system-x86_64 not installed" ;;
	qemu-kvm) [ -n "$qemu" ] || echo "qemu-system-x86_64 not installed"
		[ -n "$qemu" ] && [ ! -e /dev/kvm ] && echo "no /dev/kvm" ;;
	esac
}

# Run config $1; sets the global arrays at[] (seconds to each test) and info.
measure() {
	local cfg=$1 dir pid start now i
	dir=$(mktemp -d) || return 1
	case $cfg in
	umbra-*) "$umbra" run --mmu="${cfg#umbra-}" "${umbra_cpu[@]}" --mem "$mem" --stats=json \
		--cmdline "$cmdline" "$image" >"$dir/out" 2>"$dir/err" </dev/null & ;;
	qemu-*) "$qemu" -accel "${cfg#qemu-}" "${qemu_cpu[@]}" -m "$mem" -display none \
		-serial "file:$dir/out" -no-reboot -kernel "$image" -append "$cmdline" \
		>"$dir/err" 2>&1 </dev/null & ;;
	esac
	pid=$!
	start=$(date +%s.%N)
	at=()
	reached=0
	while kill -0 "$pid" 2>/dev/null; do
		now=$(date +%s.%N)
		# Each test's screen row: "#N  [name]", "#NN [name]" from test 10 (memtest
		# redraws every few seconds; on a fast host tests 1 to 9 may pass unseen).
		for i in $(grep -a -o '#[0-9]\+ \+\[' "$dir/out" 2>/dev/null | tr -dc '0-9\n' | sort -nu); do
			# A later test than N stands for N: N itself may have passed unseen.
			[ "$i" -gt "$upto" ] && i=$upto
			[ -z "${at[$i]:-}" ] &&
				at[i]=$(printf '%.1f' "$(echo "$now - $start" | bc)")
			[ "$i" -ge "$upto" ] && reached=1
		done
		if [ "$reached" = 1 ] || [ "$(echo "$now - $start > $limit" | bc)" = 1 ]; then
			kill -TERM "$pid"
			break
		fi
		sleep 0.2
	done
	wait "$pid" 2>/dev/null
	info=""
	if [[ $cfg == umbra-* ]]; then
		info="$(grep -a -o '"exits_total": [0-9]*' "$dir/err" | grep -o '[0-9]*$') exits"
		[ "$cfg" = umbra-shadow ] &&
			info="$info, $(grep -a -o '"traps_total": [0-9]*' "$dir/err" | grep -o '[0-9]*$') traps"
	fi
	# The 32-bit image names the paging it took: [LM] (compatibility mode) or [PAE].
	paging=$(grep -a -o -m1 '\[\(LM\|PAE\)\]' "$dir/out" | head -n 1)
	[ -n "$paging" ] && info="${info:+$info, }$paging"
	rm -rf "$dir"
}

status=0
printf '%s\n\n' "memtest86+ ($(basename "$image")${hide:+, CPUID without $hide}), --mem $mem, $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
printf '| config |'
for ((i = 0; i <= upto; i++)); do printf ' test %d s |' "$i"; done
printf ' events |\n| --- |'
for ((i = 0; i <= upto; i++)); do printf ' ---: |'; done
printf ' --- |\n'
for cfg in "${configs[@]}"; do
	why=$(why_not "$cfg")
	if [ -n "$why" ]; then
		printf '| %s | not runnable here: %s |\n' "$cfg" "$why"
		continue
	fi
	echo "$me: $cfg ..." >&2
	measure "$cfg"
	printf '| %s |' "$cfg"
	for ((i = 0; i <= upto; i++)); do printf ' %s |' "${at[$i]:--}"; done
	printf ' %s |\n' "${info:--}"
	[ "$reached" = 1 ] || status=1
done
printf '\nSeconds from the start of the process to the first screen showing each test\n'
printf '(memtest redraws its screen every few seconds: a short test may pass unseen, "-"),\n'
printf 'until test %s or a later one shows (the last column: whichever came first), or %s s.\n' \
	"$upto" "$limit"
exit $status
