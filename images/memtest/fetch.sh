#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fetch a second real guest for umbra: Debian's memtest86+ package, with
# `apt-get download`, and extract its two BIOS images, bzImage-style
# binaries booted by umbra's Linux boot protocol:
#   x64  boot/memtest86+x64.bin, with a 64-bit entry (the default);
#   ia32 boot/memtest86+ia32.bin, 32-bit code with the 32-bit entry only,
#        which runs in compatibility mode on 4-level paging where CPUID
#        offers long mode, else on PAE paging (umbra's --cpu=-lm).
# Called by `make memtest-image` and by tests/integration/test_memtest.c.
#
#   sh images/memtest/fetch.sh [x64|ia32]
#
# Everything goes to a cache outside the tracked files: $UMBRA_MEMTEST_CACHE,
# else ~/.cache/umbra/memtest. Once cached it works offline. On success it
# prints the path of the image asked for; on failure it says what could not
# be fetched or extracted and exits non-zero. Example:
#   vmm/umbra run --mem 256M --cmdline "console=ttyS0,115200 nosmp" \
#       "$(sh images/memtest/fetch.sh)"
set -eu

me=fetch.sh
die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 1
}

case ${1:-x64} in
x64 | ia32) flavour=${1:-x64} ;;
*) die "unknown image '$1' (x64 or ia32)" ;;
esac
pkg=memtest86+
cache=${UMBRA_MEMTEST_CACHE:-${HOME:?HOME is not set; set UMBRA_MEMTEST_CACHE}/.cache/umbra/memtest}
image=$cache/memtest86+$flavour.bin
mkdir -p "$cache/debs" || die "cannot create the cache directory $cache"

cached_deb() {
	ls "$cache/debs/$pkg"_*.deb 2>/dev/null | sort -V | tail -n 1
}

deb=$(cached_deb)
if [ -z "$deb" ]; then
	printf '%s: downloading Debian package %s\n' "$me" "$pkg" >&2
	(cd "$cache/debs" && apt-get download "$pkg" >&2) ||
		die "cannot download Debian package $pkg (apt-get download failed: offline, or stale apt lists? try apt-get update)"
	deb=$(cached_deb)
	[ -n "$deb" ] || die "apt-get download $pkg left no ${pkg}_*.deb in $cache/debs"
fi

# Extract again only when the package changed.
stamp=$(basename "$deb")
if [ -f "$cache/memtest86+x64.bin" ] && [ -f "$cache/memtest86+ia32.bin" ] &&
	[ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ]; then
	printf '%s\n' "$image"
	exit 0
fi
tmp=$(mktemp -d "$cache/extract.XXXXXX") || die "cannot create a directory in $cache"
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp" || die "cannot unpack $deb (dpkg-deb -x failed)"
for f in x64 ia32; do
	[ -f "$tmp/boot/memtest86+$f.bin" ] || die "$deb has no boot/memtest86+$f.bin"
	cp "$tmp/boot/memtest86+$f.bin" "$cache/memtest86+$f.bin.new" &&
		mv "$cache/memtest86+$f.bin.new" "$cache/memtest86+$f.bin" ||
		die "cannot write $cache/memtest86+$f.bin"
done
printf '%s\n' "$stamp" >"$cache/stamp"
printf '%s\n' "$image"
