#!/bin/sh
# `make check`'s short run of the boot loaders' fuzzer (tests/fuzz/fuzz_boot.c).
FUZZ_NAME=boot exec sh tests/fuzz/check_fuzz.sh
