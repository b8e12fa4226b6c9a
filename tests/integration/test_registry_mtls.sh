#!/bin/bash
# test_registry_mtls.sh: the OCI interop suite (lib.sh run_registry_suite) against docker-registry
# over TLS that requires a client certificate (--cert-file/--key-file, no password), plus a
# second plain registry for the archive round trip.
source "$(dirname "$0")/lib.sh"
run_registry_suite mtls
