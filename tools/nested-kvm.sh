#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nested-kvm.sh: run a command where /dev/kvm exists, on a host that has none.
#
# Some of our build machines come without /dev/kvm (shared/HOST.md describes
# the ones with PVM). This boots Debian's generic kernel under QEMU's TCG with
# an emulated AMD CPU that has SVM, loads kvm_amd there (nested paging and
# all), mounts this host's / over virtio-9p and runs the command in a chroot of
# it, in the current directory. The command sees the same files, a real KVM,
# and a CPU that is emulated: everything is slow (TCG), and some behaviour is
# TCG's, not hardware's (README.md, "Testing without /dev/kvm").
#
#   tools/nested-kvm.sh [--mem SIZE] [--smp N] [--timeout SECS] [--] CMD [ARG...]
#
# With a terminal on stdin the command gets it, through the nested guest's
# serial console: `tools/nested-kvm.sh -- make run` gives an interactive
# shell. QEMU's own escape key is then Ctrl-] (Ctrl-] x quits QEMU), so that
# Ctrl-A reaches the command (umbra's Ctrl-A x). Otherwise stdin is
# /dev/null.
#
# Exit status: the command's; 125 if the command did not report one (the
# nested guest panicked, or the time ran out); 126 if the nested guest could
# not be prepared (a package could not be fetched, QEMU is missing); 2 for a
# bad command line.
#
# Downloads (apt-get download: the kernel package that linux-image-amd64
# depends on, and busybox-static) go to $UMBRA_NESTED_CACHE, else
# ~/.cache/umbra/nested; nothing is fetched again once cached.
set -eu

me=nested-kvm.sh
mem=6G
smp=2
limit=0
tcg_thread=${NESTED_TCG_THREAD:-multi}

usage() {
	sed -n '/^#   tools/,/^#   tools/s/^#   //p' "$0"
	sed -n '/^# Exit status/,/^# bad command line/s/^# //p' "$0"
}
die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 126
}

while [ $# -gt 0 ]; do
	case $1 in
	--mem) mem=${2:?--mem needs a size, e.g. 6G}; shift 2 ;;
	--smp) smp=${2:?--smp needs a count}; shift 2 ;;
	--timeout) limit=${2:?--timeout needs seconds}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) printf '%s: unknown option %s\n' "$me" "$1" >&2; usage >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { usage >&2; exit 2; }
case $limit in '' | *[!0-9]*)
	printf '%s: --timeout: %s is not a number of seconds\n' "$me" "$limit" >&2
	exit 2
	;;
esac

command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 not found (apt-get install -y -t bookworm-backports qemu-system-x86; README.md)"
[ "$(id -u)" = 0 ] || die "must run as root: the 9p share exports / with the caller's rights"

cache=${UMBRA_NESTED_CACHE:-${HOME:?HOME is not set}/.cache/umbra/nested}
mkdir -p "$cache/debs" || die "cannot create $cache"

# ---- the kernel and busybox, fetched once ------------------------------------
fetch() { # fetch PACKAGE: its .deb into $cache/debs, unless there
	local deb
	deb=$(ls "$cache/debs/$1"_*.deb 2>/dev/null | head -n 1)
	if [ -z "$deb" ]; then
		(cd "$cache/debs" && apt-get download "$1" >/dev/null 2>&1) ||
			die "apt-get download $1 failed (no network? try apt-get update)"
		deb=$(ls "$cache/debs/$1"_*.deb | head -n 1)
	fi
	printf '%s\n' "$deb"
}

# Bump when the initramfs below changes, so that a cached one is rebuilt.
layout=2
if [ "$(cat "$cache/ready" 2>/dev/null)" != "$layout" ]; then
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
	[ -n "$pkg" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
	printf '%s: fetching %s and busybox-static into %s\n' "$me" "$pkg" "$cache" >&2
	kdeb=$(fetch "$pkg")
	bdeb=$(fetch busybox-static)
	rm -rf "$cache/x" && mkdir -p "$cache/x"
	# Only the kernel and the modules KVM and 9p need (the package unpacks to 400 MB).
	dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$cache/x" --wildcards \
		'./boot/vmlinuz-*' '*/kvm/kvm.ko' '*/kvm/kvm-amd.ko' '*/irqbypass.ko' \
		'*/ccp/ccp.ko' '*/virtio/virtio.ko' '*/virtio/virtio_ring.ko' \
		'*/virtio/virtio_pci*.ko' '*/netfs/netfs.ko' '*/fscache/fscache.ko' \
		'*/net/9p/9pnet.ko' '*/net/9p/9pnet_virtio.ko' '*/fs/9p/9p.ko' ||
		die "cannot unpack $kdeb"
	dpkg-deb --fsys-tarfile "$bdeb" | tar -x -C "$cache/x" ./bin/busybox ||
		die "cannot unpack $bdeb"

	ird=$cache/initrd
	rm -rf "$ird" && mkdir -p "$ird/bin" "$ird/mod" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/host"
	cp "$cache/x/bin/busybox" "$ird/bin/"
	for a in sh mount insmod mkdir poweroff cat chroot sed; do ln -s busybox "$ird/bin/$a"; done
	# In dependency order (each module's depends= line).
	for m in irqbypass kvm ccp kvm-amd virtio_ring virtio virtio_pci_modern_dev \
		virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
		f=$(find "$cache/x/lib/modules" -name "$m.ko" | head -n 1)
		[ -n "$f" ] || die "$pkg has no $m.ko"
		cp "$f" "$ird/mod/"
		echo "$m" >>"$ird/mod/order"
	done
	cat >"$ird/init" <<'EOF'
#!/bin/sh
# The nested guest: KVM and the host's / over 9p, then nested.run=SCRIPT.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mod/order); do
	insmod /mod/$m.ko || echo "nested-kvm: insmod $m failed"
done
[ -c /dev/kvm ] || echo "nested-kvm: no /dev/kvm in the nested guest"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none host /host ||
	echo "nested-kvm: cannot mount the host's / over 9p"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs shm /host/dev/shm
run=$(sed -n 's/.*nested\.run=\([^ ]*\).*/\1/p' /proc/cmdline)
chroot /host /bin/sh "$run"
poweroff -f
EOF
	chmod +x "$ird/init"
	(cd "$ird" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$cache/initrd.gz" ||
		die "cannot build $cache/initrd.gz"
	cp "$cache"/x/boot/vmlinuz-* "$cache/vmlinuz"
	echo "$layout" >"$cache/ready"
fi

# ---- the run -------------------------------------------------------------------
work=$(mktemp -d /tmp/nested-kvm.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
	echo "cd $(printf '%q' "$PWD") || exit 125"
	echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	echo "export HOME=$(printf '%q' "$HOME") TERM=dumb UMBRA_NESTED=1"
	printf '%q ' "$@"
	echo
	echo "echo \$? >$work/status"
} >"$work/run.sh"

to=()
[ "$limit" -gt 0 ] && to=(timeout --foreground "$limit")
# -cpu max under TCG: an AMD CPU with SVM and nested paging, which kvm_amd needs.
qemu=(qemu-system-x86_64 -accel tcg,thread=$tcg_thread -cpu max -smp "$smp" -m "$mem"
	-nographic -no-reboot -kernel "$cache/vmlinuz" -initrd "$cache/initrd.gz"
	-append "console=ttyS0 quiet loglevel=3 panic=-1 nested.run=$work/run.sh"
	-virtfs local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap,id=host)
if [ -t 0 ]; then
	# Interactive: QEMU puts the terminal in raw mode; no filter (a prompt has no newline).
	"${to[@]}" "${qemu[@]}" -echr 0x1d || true
else
	"${to[@]}" "${qemu[@]}" </dev/null |
		sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' \
			-e '/^SeaBIOS\|^iPXE\|^Press Ctrl-B\|^Booting from/d' || true
fi
if [ ! -s "$work/status" ]; then
	printf '%s: the command reported no status (nested guest panic, or --timeout %s s)\n' \
		"$me" "$limit" >&2
	exit 125
fi
exit "$(cat "$work/status")"
