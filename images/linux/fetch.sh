#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fetch a real Linux guest for umbra: Debian's cloud kernel (the versioned
# linux-image-*-cloud-amd64 package that linux-image-cloud-amd64 depends on)
# and busybox-static, with `apt-get download`; extract the kernel's bzImage and
# build a gzip'd newc cpio initramfs around busybox. Called by `make
# linux-images` (and later by the Linux run/check targets).
#
#   sh images/linux/fetch.sh [amd64|i386]
#
# i386: the 32-bit guest instead, Debian's 686-pae kernel (the package
# linux-image-686-pae depends on: PAE paging, a 32-bit boot protocol entry)
# and the i386 busybox-static, from Debian's i386 archive through apt lists
# kept in the cache (this machine's apt configuration is not changed).
#
# Everything goes to a cache outside the tracked files: $UMBRA_CACHE, else
# ~/.cache/umbra/linux (linux-i386 for i386). Once cached it works offline.
# On success it prints two lines, the path of the bzImage then the path of
# the initramfs; on failure it names what could not be fetched or built and
# exits non-zero.
#
# The initramfs's /init mounts proc, sys, devtmpfs and a tmpfs on /tmp, then:
#   umbra.run=<base64>    (on the kernel command line) decodes a shell script,
#                         runs it with sh, or
#   umbra.script=<path>   runs a script already in the initramfs (a test may
#                         append its own cpio archive to the initramfs: the
#                         kernel unpacks concatenated archives);
# either way it then prints "UMBRA-EXIT: <status>" on the console and powers
# off with `reboot -f` (boot with reboot=k: umbra exits on the i8042 reset).
# Without either it starts an interactive shell on the console; leaving that
# shell reboots too. Example:
#   vmm/umbra run --cmdline "console=ttyS0 reboot=k panic=-1 \
#       umbra.run=$(printf 'uname -r\n' | base64 -w0)" --initrd INITRAMFS BZIMAGE
set -eu

me=fetch.sh
die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 1
}
note() { printf '%s: %s\n' "$me" "$*" >&2; }

arch=${1:-amd64}
case $arch in
amd64) meta=linux-image-cloud-amd64 flavour=cloud-amd64 dir=linux ;;
i386) meta=linux-image-686-pae flavour=686-pae dir=linux-i386 ;;
*) die "unknown architecture '$arch' (amd64 or i386)" ;;
esac
cache=${UMBRA_CACHE:-${HOME:?HOME is not set; set UMBRA_CACHE}/.cache/umbra/$dir}
bzimage=$cache/bzImage
initramfs=$cache/initramfs.cpio.gz
mkdir -p "$cache/debs" || die "cannot create the cache directory $cache"

# apt for $arch: the machine's own for amd64; for i386 Debian's i386 lists,
# fetched into the cache on first use (the machine's sources, another
# architecture).
apt_i386() {
	"$@" -o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache" \
		-o APT::Architecture=i386 -o APT::Architectures::=i386
}
apt_for() {
	if [ "$arch" = amd64 ]; then "$@"; else apt_i386 "$@"; fi
}
if [ "$arch" = i386 ] && [ ! -d "$cache/apt/lists/partial" ]; then
	mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" ||
		die "cannot create $cache/apt"
	note "fetching Debian's i386 package lists into $cache/apt"
	apt_i386 apt-get -q update >&2 || {
		rm -rf "$cache/apt"
		die "cannot fetch Debian's i386 package lists (apt-get update failed: offline?)"
	}
fi

# Newest cached .deb of package $1, or nothing.
cached_deb() {
	ls "$cache/debs/$1"_*.deb 2>/dev/null | sort -V | tail -n 1
}

# Make sure a .deb of package $1 is in the cache; print its path.
fetch_deb() {
	deb=$(cached_deb "$1")
	if [ -z "$deb" ]; then
		note "downloading Debian package $1"
		(cd "$cache/debs" && apt_for apt-get download "$1" >&2) ||
			die "cannot download Debian package $1 (apt-get download failed: offline, or stale apt lists? try apt-get update)"
		deb=$(cached_deb "$1")
		[ -n "$deb" ] || die "apt-get download $1 left no $1_*.deb in $cache/debs"
	fi
	printf '%s\n' "$deb"
}

# 1. Which kernel: the versioned package the meta-package depends on. The
#    answer is remembered so that a cached kernel keeps working offline.
kpkg=$(apt_for apt-cache depends "$meta" 2>/dev/null |
	sed -n "s/^ *|\{0,1\}Depends: \(linux-image-[^ <>]*-$flavour\)\$/\1/p" | head -n 1) || true
if [ -z "$kpkg" ] && [ -f "$cache/kernel-package" ]; then
	kpkg=$(cat "$cache/kernel-package")
	note "apt-cache cannot resolve $meta; using the cached $kpkg"
fi
[ -n "$kpkg" ] || die "cannot tell which kernel package $meta depends on (apt-cache depends $meta found none; try apt-get update)"
printf '%s\n' "$kpkg" >"$cache/kernel-package"

kdeb=$(fetch_deb "$kpkg")
bdeb=$(fetch_deb busybox-static)

# 2. Rebuild only when an input changed: the two packages or this script
#    (which holds /init).
stamp="$(basename "$kdeb") $(basename "$bdeb") $(cksum <"$0")"
if [ -f "$bzimage" ] && [ -f "$initramfs" ] && [ -f "$cache/stamp" ] &&
	[ "$(cat "$cache/stamp")" = "$stamp" ]; then
	printf '%s\n%s\n' "$bzimage" "$initramfs"
	exit 0
fi

if ! command -v cpio >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		note "installing cpio (needed to build the initramfs)"
		apt-get install -y cpio >&2 || die "cannot install Debian package cpio"
	else
		die "cpio is not installed; install it (apt-get install cpio) and run again"
	fi
fi

work=$cache/work
rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox" "$work/root"

# 3. The kernel: /boot/vmlinuz-<version> in the package is a bzImage.
dpkg-deb -x "$kdeb" "$work/kernel" || die "cannot extract $kdeb"
vmlinuz=$(ls "$work/kernel/boot/vmlinuz-"* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] || die "package $kpkg has no /boot/vmlinuz-*"
cp "$vmlinuz" "$bzimage.tmp"

# 4. The initramfs: busybox, one symlink per applet (made here rather than by
#    `busybox --install` at boot, where every instruction of the guest kernel
#    may be slow), /init, and /dev/console for the kernel to open before
#    /init runs.
dpkg-deb -x "$bdeb" "$work/busybox" || die "cannot extract $bdeb"
bb=$work/busybox/bin/busybox
[ -x "$bb" ] || die "package busybox-static has no /bin/busybox"
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" \
	"$root/proc" "$root/sys" "$root/tmp" "$root/root" "$root/etc"
cp "$bb" "$root/bin/busybox"
# The applet list, from busybox itself; where this machine cannot run an i386
# binary (a kernel without IA32 emulation), from this machine's own
# busybox-static of the same Debian version, which has the same applets.
lister=$bb
if ! "$bb" --list-full >/dev/null 2>&1; then
	[ "$arch" != amd64 ] || die "$bb does not run here"
	hdeb=$(cached_deb busybox-static-host)
	if [ -z "$hdeb" ]; then
		note "this machine cannot run the i386 busybox; listing applets with its own busybox-static"
		mkdir -p "$work/host-deb"
		(cd "$work/host-deb" && apt-get download busybox-static >&2) ||
			die "cannot download Debian package busybox-static for this machine"
		hdeb=$(ls "$work/host-deb"/busybox-static_*.deb | head -n 1)
		[ "$(dpkg-deb -f "$hdeb" Version)" = "$(dpkg-deb -f "$bdeb" Version)" ] ||
			die "busybox-static for this machine ($(dpkg-deb -f "$hdeb" Version)) and i386 ($(dpkg-deb -f "$bdeb" Version)) differ: cannot list the i386 applets"
		mv "$hdeb" "$cache/debs/busybox-static-host_$(dpkg-deb -f "$hdeb" Version | tr ':' '_').deb"
		hdeb=$(cached_deb busybox-static-host)
	fi
	dpkg-deb -x "$hdeb" "$work/host" || die "cannot extract $hdeb"
	lister=$work/host/bin/busybox
fi
"$lister" --list-full | while read -r applet; do
	[ "$applet" = bin/busybox ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
[ -L "$root/bin/sh" ] || die "busybox-static provides no sh applet"

cat >"$root/init" <<'EOF'
#!/bin/sh
# /init of umbra's Linux initramfs, written by images/linux/fetch.sh (see there).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts

set -f # the command line is split into words, never globbed
run= script=
for arg in $(cat /proc/cmdline); do
	case $arg in
	umbra.run=*) run=${arg#umbra.run=} ;;
	umbra.script=*) script=${arg#umbra.script=} ;;
	esac
done
set +f

if [ -n "$run" ] || [ -n "$script" ]; then
	if [ -n "$run" ]; then
		script=/tmp/umbra-run.sh
		printf '%s' "$run" | base64 -d >"$script" ||
			echo "umbra: umbra.run= is not valid base64"
	fi
	sh "$script"
	echo "UMBRA-EXIT: $?"
	sync
	reboot -f
	exit 1
fi

echo "umbra: interactive shell (no umbra.run= or umbra.script=); 'reboot -f' or 'exit' ends the VM"
setsid cttyhack sh -l
sync
reboot -f
EOF
chmod 755 "$root/init"

# dev/console (character device 5:1) as a hand-written newc entry, so that
# building needs no root: cpio's headers are ASCII, 13 hex fields after
# "070701", then the NUL-terminated name padded to 4 bytes.
newc_entry() { # name mode(hex) nlink rdevmajor rdevminor
	namesize=$((${#1} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\000' \
		0 "0x$2" 0 0 "$3" 0 0 0 0 "$4" "$5" "$namesize" 0 "$1"
	pad=$(((4 - (110 + namesize) % 4) % 4))
	while [ "$pad" -gt 0 ]; do
		printf '\000'
		pad=$((pad - 1))
	done
}

(
	cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet
	newc_entry dev/console 2180 1 5 1 # S_IFCHR | 0600
	newc_entry TRAILER!!! 0 1 0 0
) | gzip -9 >"$initramfs.tmp" || die "cannot build the initramfs"

mv "$bzimage.tmp" "$bzimage"
mv "$initramfs.tmp" "$initramfs"
printf '%s\n' "$stamp" >"$cache/stamp"
rm -rf "$work"
printf '%s\n%s\n' "$bzimage" "$initramfs"
