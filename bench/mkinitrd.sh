#!/bin/sh
# SPDX-License-Identifier: MIT
# The Linux guest's initramfs for `make bench` (issue 7) and test_linux's
# probe test: the cached busybox initramfs of images/linux/fetch.sh with a
# second gzip'd newc cpio appended that holds PROGRAM as /its-basename
# (/ubench). The kernel unpacks concatenated archives in order, so the base
# one is used as it is, never rebuilt.
#
#   sh bench/mkinitrd.sh BASE_INITRAMFS PROGRAM OUT
set -eu
[ $# -eq 3 ] || { echo "usage: $0 BASE_INITRAMFS PROGRAM OUT" >&2; exit 2; }
base=$1 prog=$2 out=$3 name=$(basename "$2")
command -v cpio >/dev/null 2>&1 || { echo "mkinitrd.sh: cpio is not installed" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$prog" "$dir/$name"
chmod 755 "$dir/$name"
{
	cat "$base"
	(cd "$dir" && echo "$name" | cpio -o -H newc -R 0:0 --quiet | gzip -9)
} >"$out.tmp"
mv "$out.tmp" "$out"
