#!/bin/sh
# `make check`'s short run of the scan memo's fuzzer (tests/fuzz/fuzz_scan.c).
FUZZ_NAME=scan exec sh tests/fuzz/check_fuzz.sh
