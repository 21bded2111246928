#!/bin/bash
# SPDX-License-Identifier: MIT
#
# trap-profile.sh: where a Linux guest's shadow-mode traps go, by kernel
# symbol. Boots Debian's kernel (images/linux/fetch.sh) in shadow mode with
# ubench in the initramfs (bench/mkinitrd.sh) and --trace, runs COMMAND in
# the guest, counts the traps by vector and guest RIP, then boots the same
# kernel once more to name the busiest kernel RIPs through the guest's own
# /proc/kallsyms (both boots with nokaslr, so the addresses agree; printing
# the whole of kallsyms over the serial console would take far longer).
#
#   tools/trap-profile.sh [-n TOP] [--umbra PATH] [--opt UMBRA_OPTION]... [--] COMMAND
#
# COMMAND is a shell command line for the guest, e.g. '/ubench -m -n 300 mmap'.
# When it writes ubench's stats marks (-m), only the traps between the first
# two marks (the first workload's timed loop) are counted, and the table
# gives them per iteration of that workload too; otherwise the whole run's.
# --opt passes an option to umbra (repeatable: --opt=--sensitive=patch).
# Output: a Markdown table on stdout; progress on stderr. The trace and the
# consoles stay in $TRAP_PROFILE_DIR if set (else a temporary directory that
# is removed).
#
# Exit status: 0 done; 1 a boot failed or the images could not be had (the
# reason on stderr); 2 a bad command line.
set -eu
me=trap-profile.sh
top=25
umbra=vmm/umbra
ubench=build/rel/bench/ubench
opts=()
usage() {
	sed -n '/^#   tools/,/^set -eu/p' "$0" | grep -v '^set -eu' | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	-n) [ $# -ge 2 ] || usage; top=$2; shift 2 ;;
	--umbra) [ $# -ge 2 ] || usage; umbra=$2; shift 2 ;;
	--umbra=*) umbra=${1#--umbra=}; shift ;;
	--opt) [ $# -ge 2 ] || usage; opts+=("$2"); shift 2 ;;
	--opt=*) opts+=("${1#--opt=}"); shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "$me: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "$me: expected one COMMAND for the guest" >&2; usage; }
case $top in '' | *[!0-9]*) echo "$me: -n wants a number, not '$top'" >&2; exit 2 ;; esac
cmd=$1
die() { echo "$me: $*" >&2; exit 1; }
[ -x "$umbra" ] || die "$umbra: not built (run make)"
[ -x "$ubench" ] || die "$ubench: not built (make $ubench)"
set -- $(sh images/linux/fetch.sh) || die "no Linux images (make linux-images needs the network once)"
[ $# -eq 2 ] || die "images/linux/fetch.sh did not name the bzImage and initramfs"
bz=$1 base=$2
dir=${TRAP_PROFILE_DIR:-}
if [ -z "$dir" ]; then
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"
sh bench/mkinitrd.sh "$base" "$ubench" "$dir/initrd.gz" || die "could not build the initramfs"
cmdline="console=ttyS0 reboot=k panic=-1 nopti noreplace-smp pci=off quiet nokaslr"

# boot SCRIPT CONSOLE [UMBRA OPTIONS...]: one shadow-mode boot running SCRIPT.
boot() {
	local script=$1 out=$2
	shift 2
	"$umbra" run --mmu=shadow --mem 1G "${opts[@]}" "$@" \
		--cmdline "$cmdline umbra.run=$(printf '%s\n' "$script" | base64 -w0)" \
		--initrd "$dir/initrd.gz" "$bz" >"$out" 2>"$out.err" </dev/null ||
		die "the boot failed (status $?): $(tail -n 3 "$out.err" | tr '\n' ' ')"
	grep -aq 'UMBRA-EXIT: 0' "$out" ||
		die "the guest script did not succeed: $(grep -a 'UMBRA-EXIT' "$out" | tr -d '\r')"
}

echo "$me: booting with --trace to run: $cmd" >&2
boot "$cmd" "$dir/console" --trace="$dir/trace"
# The first workload's window (its stats marks 0 and 1), or the whole trace.
if grep -q '^mark 0$' "$dir/trace"; then
	awk '/^mark 0$/ { w = 1; next } /^mark 1$/ { exit } w && /^trap / { print $2, $4 }' \
		"$dir/trace" >"$dir/sites.all"
	read -r wname iters <<<"$(grep -a -m1 '^BENCH ' "$dir/console" | awk '{ print $2, $3 }')"
	scope="between the first workload's stats marks (${wname:-?}, ${iters:-?} iterations)"
else
	awk '/^trap / { print $2, $4 }' "$dir/trace" >"$dir/sites.all"
	iters=
	scope="the whole run (no stats marks: use ubench -m for one workload's)"
fi
total=$(wc -l <"$dir/sites.all")
sort "$dir/sites.all" | uniq -c | sort -rn | head -n "$top" >"$dir/sites.top"

# Name the kernel RIPs (ffffffff8...) in one awk pass over /proc/kallsyms.
addrs=$(awk '$3 ~ /^0xffffffff[89a-e]/ { print $3 }' "$dir/sites.top" | sort -u | tr '\n' ' ')
: >"$dir/syms"
if [ -n "$addrs" ]; then
	echo "$me: booting again to name $(echo $addrs | wc -w) kernel addresses" >&2
	# Only the low 32 bits are compared: awk's numbers are doubles.
	resolve="awk -v L='$addrs' 'function h(s, i, v) { v = 0; s = tolower(s);
	  for (i = 1; i <= length(s); i++) v = v * 16 + index(\"0123456789abcdef\", substr(s, i, 1)) - 1;
	  return v }
	BEGIN { n = split(L, A, \" \"); for (i = 1; i <= n; i++) { t[i] = h(substr(A[i], 11)); best[i] = -1 } }
	(\$2 == \"t\" || \$2 == \"T\") && substr(\$1, 1, 8) == \"ffffffff\" { x = h(substr(\$1, 9));
	  for (i = 1; i <= n; i++) if (x <= t[i] && x > best[i]) { best[i] = x; name[i] = \$3 } }
	END { for (i = 1; i <= n; i++) printf \"SYM %s %s+0x%x\\n\", A[i], name[i], t[i] - best[i] }' /proc/kallsyms"
	boot "$resolve" "$dir/console2"
	grep -a '^SYM ' "$dir/console2" | tr -d '\r' | awk '{ print $2, $3 }' >"$dir/syms"
fi

vec_name() {
	case $1 in
	6) echo '#UD' ;; 13) echo '#GP' ;; 14) echo '#PF' ;; 3) echo '#BP' ;; 1) echo '#DB' ;;
	*) if [ "$1" -ge 32 ]; then echo "irq $1"; else echo "exc $1"; fi ;;
	esac
}
echo "Shadow-mode traps of \`$cmd\`, $scope: $total traps; the $top busiest sites."
[ ${#opts[@]} -eq 0 ] || echo "umbra options: ${opts[*]}"
echo
if [ -n "$iters" ]; then
	echo "| traps | per iteration | trap | guest RIP | where |"
	echo "| ---: | ---: | --- | --- | --- |"
else
	echo "| traps | trap | guest RIP | where |"
	echo "| ---: | --- | --- | --- |"
fi
while read -r n vec rip; do
	case $rip in
	0xffffffffffe*) where="the call window (a stand-in's slow path)" ;;
	0xffff8080*) where="the monitor (its syscall entry page)" ;;
	# A string comparison: some awks read 0x... as a (rounded) number.
	0xffffffff[89a-f]*) where=$(awk -v a="$rip" '$1 "" == a "" { print $2; exit }' "$dir/syms") ;;
	*) where="" ;;
	esac
	# Printed without leading zeros: 12 hex digits at most is the lower half.
	[ ${#rip} -gt 14 ] || where="user mode"
	[ -n "$where" ] || where="?"
	if [ "$vec" -ge 32 ]; then where="(interrupted here) $where"; fi
	if [ -n "$iters" ]; then
		printf '| %s | %s | %s | %s | %s |\n' "$n" "$(awk -v n="$n" -v i="$iters" 'BEGIN { printf "%.3g", n / i }')" \
			"$(vec_name "$vec")" "$rip" "$where"
	else
		printf '| %s | %s | %s | %s |\n' "$n" "$(vec_name "$vec")" "$rip" "$where"
	fi
done <"$dir/sites.top"
