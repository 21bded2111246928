#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fetch a second real guest for umbra: Debian's memtest86+ package, with
# `apt-get download`, and extract its 64-bit image (boot/memtest86+x64.bin,
# a bzImage-style binary with a 64-bit entry, booted by umbra's Linux boot
# protocol). Called by `make memtest-image` and by tests/integration/
# test_memtest.c.
#
# Everything goes to a cache outside the tracked files: $UMBRA_MEMTEST_CACHE,
# else ~/.cache/umbra/memtest. Once cached it works offline. On success it
# prints the path of the image; on failure it says what could not be fetched
# or extracted and exits non-zero. Example:
#   vmm/umbra run --mem 256M --cmdline "console=ttyS0,115200 nosmp" \
#       "$(sh images/memtest/fetch.sh)"
set -eu

me=fetch.sh
die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 1
}

pkg=memtest86+
cache=${UMBRA_MEMTEST_CACHE:-${HOME:?HOME is not set; set UMBRA_MEMTEST_CACHE}/.cache/umbra/memtest}
image=$cache/memtest86+x64.bin
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
if [ -f "$image" ] && [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ]; then
	printf '%s\n' "$image"
	exit 0
fi
tmp=$(mktemp -d "$cache/extract.XXXXXX") || die "cannot create a directory in $cache"
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp" || die "cannot unpack $deb (dpkg-deb -x failed)"
[ -f "$tmp/boot/memtest86+x64.bin" ] || die "$deb has no boot/memtest86+x64.bin"
cp "$tmp/boot/memtest86+x64.bin" "$image.new" && mv "$image.new" "$image" ||
	die "cannot write $image"
printf '%s\n' "$stamp" >"$cache/stamp"
printf '%s\n' "$image"
