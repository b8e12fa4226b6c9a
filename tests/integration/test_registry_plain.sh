#!/bin/bash
# test_registry_plain.sh: the OCI interop suite (lib.sh run_registry_suite) against docker-registry
# over plain HTTP without auth (loopback: berth must pick plain HTTP by itself), plus a second
# plain registry for the archive round trip.
source "$(dirname "$0")/lib.sh"
run_registry_suite plain
