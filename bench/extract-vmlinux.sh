#!/bin/sh
# SPDX-License-Identifier: MIT
# Unpack the kernel ELF (vmlinux) from a bzImage, for `make bench-scan`:
#   bench/extract-vmlinux.sh [BZIMAGE [OUT]]
# Defaults: the Linux guest's bzImage in $UMBRA_CACHE or ~/.cache/umbra/linux
# (make linux-images), written beside it as vmlinux. The payload is found
# through the setup header (boot protocol 2.08+: payload_offset and
# payload_length, as tests/integration/test_kernel_simd.c does) and
# decompressed with the tool its magic names. Exit status: 0 written,
# 1 failed (the reason on stderr).
set -eu
cache=${UMBRA_CACHE:-$HOME/.cache/umbra/linux}
bz=${1:-$cache/bzImage}
out=${2:-$(dirname "$bz")/vmlinux}
die() { echo "extract-vmlinux: $*" >&2; exit 1; }

[ -r "$bz" ] || die "$bz: cannot read it (run make linux-images first)"
u8() { od -An -tu1 -j "$1" -N1 "$bz" | tr -d ' '; }
u32() { od -An -tu4 -j "$1" -N4 "$bz" | tr -d ' '; }
[ "$(dd if="$bz" bs=1 skip=514 count=4 2>/dev/null)" = HdrS ] || die "$bz: not a bzImage"
ver=$(od -An -tu2 -j 518 -N2 "$bz" | tr -d ' ')
[ "$ver" -ge 520 ] || die "$bz: boot protocol older than 2.08 (no payload fields)"
sects=$(u8 497); [ "$sects" -eq 0 ] && sects=4
off=$(( (sects + 1) * 512 + $(u32 584) ))
len=$(u32 588)
magic=$(od -An -tx1 -j "$off" -N6 "$bz" | tr -d ' \n')
case $magic in
1f8b*) tool=gzip ;;
fd377a585a00) tool=xz ;;
28b52ffd*) tool=zstd ;;
02214c18*) tool=lz4 ;;
425a68*) tool=bzip2 ;;
*) die "$bz: payload of an unknown compression format ($magic)" ;;
esac
command -v $tool > /dev/null || die "$tool is not installed (apt-get install $tool)"
# The build appends the uncompressed size (4 bytes) to every format: not part of it.
tail -c +$((off + 1)) "$bz" | head -c $((len - 4)) | $tool -dc > "$out" 2>/dev/null || true
[ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || die "$tool -dc did not give an ELF"
echo "extract-vmlinux: $out"
