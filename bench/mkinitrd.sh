#!/bin/sh
# SPDX-License-Identifier: MIT
# The Linux guest's initramfs for `make bench` (issue 7): the cached busybox
# initramfs of images/linux/fetch.sh with a second gzip'd newc cpio appended
# that holds /ubench. The kernel unpacks concatenated archives in order, so
# the base one is used as it is, never rebuilt.
#
#   sh bench/mkinitrd.sh BASE_INITRAMFS UBENCH OUT
set -eu
[ $# -eq 3 ] || { echo "usage: $0 BASE_INITRAMFS UBENCH OUT" >&2; exit 2; }
base=$1 ubench=$2 out=$3
command -v cpio >/dev/null 2>&1 || { echo "mkinitrd.sh: cpio is not installed" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$ubench" "$dir/ubench"
chmod 755 "$dir/ubench"
{
	cat "$base"
	(cd "$dir" && echo ubench | cpio -o -H newc -R 0:0 --quiet | gzip -9)
} >"$out.tmp"
mv "$out.tmp" "$out"
