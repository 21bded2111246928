#!/bin/sh
# `make check`'s short run of the command line's fuzzer (tests/fuzz/fuzz_options.c).
FUZZ_NAME=options exec sh tests/fuzz/check_fuzz.sh
