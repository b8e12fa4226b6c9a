#!/bin/bash
# test_registry_token.sh: the OCI interop suite (lib.sh run_registry_suite) against docker-registry
# with bearer-token auth served by testdata/tokensrv.py (RS256 JWTs, --creds), plus a second
# plain registry for the archive round trip.
source "$(dirname "$0")/lib.sh"
run_registry_suite token
