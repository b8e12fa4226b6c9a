#!/bin/bash
# test_registry_tls.sh: the OCI interop suite (lib.sh run_registry_suite) against docker-registry
# over TLS (a CA made at test time, passed with --ca-file) with htpasswd basic auth (--creds),
# plus a second plain registry for the archive round trip.
source "$(dirname "$0")/lib.sh"
run_registry_suite tls
