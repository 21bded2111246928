#!/bin/sh
# `make check`'s short run of the devices' fuzzer (tests/fuzz/fuzz_devices.c).
FUZZ_NAME=devices exec sh tests/fuzz/check_fuzz.sh
