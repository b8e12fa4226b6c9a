# shellcheck shell=bash
# shellcheck disable=SC2034  # variables set here are read by the test scripts
#
# lib.sh: the harness every tests/integration/test_*.sh sources. It starts real servers on
# loopback (docker-registry in four flavours, our token server, our fault proxy), runs the real
# berth binary and skopeo against them, and cleans up exactly what it started.
#
# Design: one temp dir per test ($T, removed on exit; kept when BERTH_IT_KEEP=1). Servers bind
# port 0 and report the port they got (docker-registry logs "listening on 127.0.0.1:N", our
# python servers write a port file); readiness is polled, never slept for, and capped at
# $BERTH_IT_WAIT seconds (default 10), after which the test fails with the server's log. Every
# server is started in its own process group (setsid) and the EXIT trap kills exactly those
# groups. Fixtures are pushed and checked with skopeo, so berth is never tested against itself.
#
# Environment (set by ctest): BERTH (the binary), BERTH_SRC (repo root), BERTH_BUILD.
# Tools: docker-registry, skopeo, openssl, htpasswd, curl, jq, python3, tar, gzip, sha256sum.
# A missing tool skips the test with exit 77 (ctest property SKIP_RETURN_CODE 77), unless
# BERTH_IT_REQUIRE_ALL=1 (CI), where it is a failure.

set -euo pipefail
shopt -s nullglob

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BERTH_SRC=${BERTH_SRC:-$(cd "$IT_DIR/../.." && pwd)}
TESTDATA=$BERTH_SRC/testdata
APP_DIR=$TESTDATA/app
TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
BERTH_IT_WAIT=${BERTH_IT_WAIT:-10}
BERTH_CMD_TIMEOUT=${BERTH_CMD_TIMEOUT:-120}
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

# The test user every auth-enabled server accepts.
TEST_USER=berth
TEST_PASS=s3cret

_IT_PIDS=()     # process group leaders we started
_IT_LOGS=()     # server logs shown when a test fails
_IT_CHECKS=0

# ------------------------------------------------------------------------------- reporting
log() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }

# it DESCRIPTION: announce the next scenario (shows in ctest --output-on-failure).
it() { printf '\n=== %s: %s\n' "$TEST_NAME" "$*" >&2; }

fail() {
    printf '\nFAIL %s: %s\n' "$TEST_NAME" "$*" >&2
    if [ -n "${LAST_CMD:-}" ]; then
        printf -- '--- last command (rc=%s): %s\n' "${RC:-?}" "$LAST_CMD" >&2
        printf -- '--- stdout:\n%s\n--- stderr:\n%s\n' "${OUT:-}" "${ERR:-}" >&2
    fi
    exit 1
}

skip() {
    if [ "${BERTH_IT_REQUIRE_ALL:-0}" = 1 ]; then
        fail "would skip, but BERTH_IT_REQUIRE_ALL=1: $*"
    fi
    printf 'SKIP %s: %s\n' "$TEST_NAME" "$*" >&2
    exit 77
}

finish() { printf '\nPASS %s: %d checks\n' "$TEST_NAME" "$_IT_CHECKS" >&2; }

require_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "required tool '$t' is not installed"
    done
}

# ------------------------------------------------------------------------------- assertions
assert_eq() { # EXPECTED ACTUAL [WHAT]
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$1" = "$2" ] || fail "${3:-values differ}: expected '$1', got '$2'"
}

assert_ne() { # A B [WHAT]
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$1" != "$2" ] || fail "${3:-values should differ}: both are '$1'"
}

assert_contains() { # HAYSTACK NEEDLE [WHAT]   (fixed string, case-sensitive)
    _IT_CHECKS=$((_IT_CHECKS + 1))
    case "$1" in
    *"$2"*) ;;
    *) fail "${3:-text} does not contain '$2': $(printf '%s' "$1" | head -c 2000)" ;;
    esac
}

assert_not_contains() { # HAYSTACK NEEDLE [WHAT]
    _IT_CHECKS=$((_IT_CHECKS + 1))
    case "$1" in
    *"$2"*) fail "${3:-text} contains '$2' but should not: $(printf '%s' "$1" | head -c 2000)" ;;
    *) ;;
    esac
}

assert_match() { # TEXT ERE [WHAT]   (grep -E, case-insensitive)
    _IT_CHECKS=$((_IT_CHECKS + 1))
    # a here-string, not a pipe: grep -q stops reading early, which would SIGPIPE a writer
    # under pipefail and fail the check by mistake
    grep -Eqi -- "$2" <<<"$1" || fail "${3:-text} does not match /$2/: $(head -c 2000 <<<"$1")"
}

assert_empty_dir() { # DIR [WHAT]
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ -d "$1" ] || fail "${2:-directory} '$1' is missing"
    local left
    left=$(ls -A "$1")
    [ -z "$left" ] || fail "${2:-directory} '$1' should be empty, holds: $(echo "$left" | tr '\n' ' ')"
}

assert_same_tree() { # EXPECTED_DIR ACTUAL_DIR
    _IT_CHECKS=$((_IT_CHECKS + 1))
    local d
    d=$(diff -r "$1" "$2" 2>&1) || fail "trees differ ($1 vs $2): $d"
}

assert_same_file() { # A B
    _IT_CHECKS=$((_IT_CHECKS + 1))
    cmp -s "$1" "$2" || fail "files differ: $1 ($(stat -c %s "$1") bytes) vs $2 ($(stat -c %s "$2") bytes)"
}

# ------------------------------------------------------------------------------- running berth
# bt ARGS...: run berth; sets OUT (stdout), ERR (stderr), RC; never fails by itself.
bt() {
    LAST_CMD="berth $*"
    RC=0
    local t0
    t0=$(_now_us)
    timeout -k 5 "$BERTH_CMD_TIMEOUT" "$BERTH" "$@" >"$T/.out" 2>"$T/.err" </dev/null || RC=$?
    # BERTH_IT_TRACE=1: one line per berth call with its exit code and duration.
    [ "${BERTH_IT_TRACE:-0}" != 1 ] ||
        log "$(printf 'rc=%s %6d ms: berth %s' "$RC" $((($(_now_us) - t0) / 1000)) "$*" | cut -c1-200)"
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
    [ "$RC" != 124 ] || fail "berth timed out after ${BERTH_CMD_TIMEOUT}s"
    # The contract reserves 0..3; anything else is a crash or a signal.
    [ "$RC" -le 3 ] || fail "berth exited with unexpected code $RC (crash or signal?)"
}

# berth_ok ARGS...: run berth and require exit 0.
berth_ok() {
    bt "$@"
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" = 0 ] || fail "berth $1 $2 failed (rc=$RC)"
}

# assert_fails [--rc N] SUBSTRING COMMAND...: the command (berth when COMMAND starts with
# "berth", else run as is) must exit non-zero (exactly N with --rc) and its stdout+stderr must
# contain SUBSTRING (case-insensitive).
assert_fails() {
    local want_rc=""
    if [ "$1" = --rc ]; then
        want_rc=$2
        shift 2
    fi
    local needle=$1
    shift
    if [ "$1" = berth ]; then
        shift
        bt "$@"
    else
        LAST_CMD="$*"
        RC=0
        "$@" >"$T/.out" 2>"$T/.err" </dev/null || RC=$?
        OUT=$(cat "$T/.out")
        ERR=$(cat "$T/.err")
    fi
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" != 0 ] || fail "expected a failure, got exit 0"
    if [ -n "$want_rc" ]; then
        [ "$RC" = "$want_rc" ] || fail "expected exit code $want_rc, got $RC"
    fi
    grep -qiF -- "$needle" <<<"$OUT"$'\n'"$ERR" ||
        fail "the failure message does not mention '$needle'"
}

# ------------------------------------------------------------------------------- skopeo
# sk ARGS...: skopeo with a test-local policy and auth file (nothing read from the host).
sk() {
    LAST_CMD="skopeo $*"
    RC=0
    REGISTRY_AUTH_FILE=$T/home/auth.json timeout -k 5 60 skopeo --policy "$T/policy.json" "$@" >"$T/.out" 2>"$T/.err" </dev/null || RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
    _IT_CHECKS=$((_IT_CHECKS + 1))
    [ "$RC" = 0 ] || fail "skopeo $1 failed (rc=$RC)"
}

# ------------------------------------------------------------------------------- digests, layouts
sha256_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
sha256_stdin() { echo "sha256:$(sha256sum | cut -d' ' -f1)"; }

# registry_blob_path ROOT DIGEST: the file holding a blob in docker-registry's filesystem storage.
registry_blob_path() {
    local hex=${2#sha256:}
    echo "$1/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

# layout_manifest_digest DIR TAG: the digest index.json gives TAG.
layout_manifest_digest() {
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
        "$1/index.json" | head -n1
}

layout_blob() { echo "$1/blobs/sha256/${2#sha256:}"; }

# flux_layout_from_tar TAR LAYOUT_DIR TAG SOURCE REVISION: wrap an uncompressed tar as a Flux
# artifact (gzip -n layer, the ggcr config of spec/oci-artifacts.md 1.2, a compact manifest with
# Flux media types and the created/revision/source annotations) in a new OCI image layout.
# Sets FLUX_MANIFEST_DIGEST and FLUX_LAYER_DIGEST.
flux_layout_from_tar() {
    local tar=$1 dir=$2 tag=$3 source=$4 revision=$5
    local work=$dir.work
    mkdir -p "$dir/blobs/sha256" "$work"
    gzip -n -c "$tar" >"$work/layer.tgz"
    local diff_id layer lsize config csize manifest msize
    diff_id=$(sha256_of "$tar")
    layer=$(sha256_of "$work/layer.tgz")
    lsize=$(stat -c %s "$work/layer.tgz")
    cp "$work/layer.tgz" "$(layout_blob "$dir" "$layer")"
    printf '{"architecture":"","created":"2025-01-02T03:04:05Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}' \
        "$diff_id" >"$work/config.json"
    config=$(sha256_of "$work/config.json")
    csize=$(stat -c %s "$work/config.json")
    cp "$work/config.json" "$(layout_blob "$dir" "$config")"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.flux.config.v1+json","size":%s,"digest":"%s"},"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","size":%s,"digest":"%s"}],"annotations":{"org.opencontainers.image.created":"2025-01-02T03:04:05Z","org.opencontainers.image.revision":"%s","org.opencontainers.image.source":"%s"}}' \
        "$csize" "$config" "$lsize" "$layer" "$revision" "$source" >"$work/manifest.json"
    manifest=$(sha256_of "$work/manifest.json")
    msize=$(stat -c %s "$work/manifest.json")
    cp "$work/manifest.json" "$(layout_blob "$dir" "$manifest")"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest" "$msize" "$tag" >"$dir/index.json"
    rm -rf "$work"
    FLUX_MANIFEST_DIGEST=$manifest
    FLUX_LAYER_DIGEST=$layer
}

# flux_tar_of_dir SRC_DIR OUT_TAR: a deterministic tar as GNU tar makes it (not berth's writer).
flux_tar_of_dir() {
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf "$2" .
}

# mk_evil_tar KIND OUT [ARG]: an uncompressed tar holding a harmless ok.yaml first, then
#   dotdot    a regular file "../x"
#   absolute  a regular file named ARG (an absolute path)
#   symlink   a symlink "link" -> ARG (a directory outside), then a file "link/pwned.txt"
#   hardlink  a hard link "hl" -> ARG (a path outside)
# Made with python's tarfile because GNU tar refuses to write such names.
mk_evil_tar() {
    "$PYTHON" - "$@" <<'PY'
import io, sys, tarfile
kind, out = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else ""

def entry(name, typ=tarfile.REGTYPE, data=b"", link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.linkname = typ, 0o644, 0, link
    ti.size = len(data) if typ == tarfile.REGTYPE else 0
    return ti, (io.BytesIO(data) if typ == tarfile.REGTYPE else None)

with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
    tf.addfile(*entry("ok.yaml", data=b"kind: ConfigMap\n"))
    if kind == "dotdot":
        tf.addfile(*entry("../x", data=b"escaped\n"))
    elif kind == "absolute":
        tf.addfile(*entry(arg, data=b"escaped\n"))
    elif kind == "symlink":
        tf.addfile(*entry("link", tarfile.SYMTYPE, link=arg))
        tf.addfile(*entry("link/pwned.txt", data=b"escaped\n"))
    elif kind == "hardlink":
        tf.addfile(*entry("hl", tarfile.LNKTYPE, link=arg))
    else:
        sys.exit("mk_evil_tar: unknown kind " + kind)
PY
}

# skopeo_push_layout LAYOUT_DIR TAG DEST_REF: skopeo copy oci:DIR:TAG docker://DEST_REF,
# byte for byte, with the current registry's skopeo flags.
skopeo_push_layout() {
    sk copy --quiet --preserve-digests "${SKOPEO_DEST_ARGS[@]}" "oci:$1:$2" "docker://$3"
}

# ------------------------------------------------------------------------------- processes
# spawn NAME LOGFILE COMMAND...: start COMMAND in its own session/process group; sets SPAWNED.
spawn() {
    local name=$1 logf=$2
    shift 2
    setsid "$@" >"$logf" 2>&1 </dev/null &
    SPAWNED=$!
    _IT_PIDS+=("$SPAWNED")
    _IT_LOGS+=("$name:$logf")
}

_now_us() { echo "${EPOCHREALTIME/./}"; }

# wait_until NAME PID LOGFILE COMMAND...: poll COMMAND every 20 ms until it succeeds; fail
# (printing the log) when PID dies or after $BERTH_IT_WAIT seconds.
wait_until() {
    local name=$1 pid=$2 logf=$3
    shift 3
    local deadline=$(($(_now_us) + BERTH_IT_WAIT * 1000000))
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            printf -- '--- %s log:\n' "$name" >&2
            cat "$logf" >&2 || true
            fail "$name exited before it was ready"
        fi
        if [ "$(_now_us)" -ge "$deadline" ]; then
            printf -- '--- %s log:\n' "$name" >&2
            cat "$logf" >&2 || true
            fail "$name not ready after ${BERTH_IT_WAIT}s"
        fi
        sleep 0.02
    done
}

_port_from_log() { grep -Eo 'listening on 127\.0\.0\.1:[0-9]+' "$1" | head -n1 | grep -Eo '[0-9]+$'; }
_http_answers() { # URL CURL_ARGS...: true once the server answers HTTP at all (any status)
    local url=$1 code
    shift
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url") || true
    [ -n "$code" ] && [ "$code" != 000 ]
}

_cleanup() {
    local rc=$?
    set +e
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        local entry
        for entry in "${_IT_LOGS[@]}"; do
            printf -- '--- tail of %s log (%s):\n' "${entry%%:*}" "${entry#*:}" >&2
            tail -n 15 "${entry#*:}" 2>/dev/null | cut -c1-400 >&2
        done
    fi
    local pid
    for pid in "${_IT_PIDS[@]}"; do
        # setsid made each server a group leader: signal the whole group, then the pid itself.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${_IT_PIDS[@]}"; do
        local i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.02
            i=$((i + 1))
        done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "${BERTH_IT_KEEP:-0}" = 1 ]; then
        log "kept $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}

# ------------------------------------------------------------------------------- PKI
# make_pki: a CA, a server cert (IP:127.0.0.1, DNS:localhost) and a client cert, once per test.
# Sets CA_FILE, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY.
make_pki() {
    local d=$T/pki
    if [ ! -f "$d/client.crt" ]; then
        mkdir -p "$d"
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${ec[@]}" -days 2 -subj '/CN=berth-it-ca' \
            -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
        openssl req "${ec[@]}" -subj '/CN=127.0.0.1' -keyout "$d/server.key" \
            -out "$d/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
        openssl req "${ec[@]}" -subj '/CN=berth-it-client' -keyout "$d/client.key" \
            -out "$d/client.csr" 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
        openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/client.ext" -out "$d/client.crt" 2>/dev/null
    fi
    CA_FILE=$d/ca.crt
    SERVER_CERT=$d/server.crt
    SERVER_KEY=$d/server.key
    CLIENT_CERT=$d/client.crt
    CLIENT_KEY=$d/client.key
}

# ------------------------------------------------------------------------------- servers
# start_token_server DIR: testdata/tokensrv.py with a fresh RS256 signer in DIR.
# Sets TOKEN_URL, TOKEN_CERT (the rootcertbundle for the registry), TOKEN_LOG (one line per
# token request).
start_token_server() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=berth-it-token-signer' \
        -keyout "$d/sign.key" -out "$d/sign.crt" 2>/dev/null
    TOKEN_LOG=$d/token-requests.log
    : >"$TOKEN_LOG"
    spawn tokensrv "$d/tokensrv.log" "$PYTHON" "$TESTDATA/tokensrv.py" --port 0 \
        --port-file "$d/tokensrv.port" --key "$d/sign.key" --cert "$d/sign.crt" \
        --issuer berth-it-issuer --service berth-it-registry --creds "$TEST_USER:$TEST_PASS" \
        --log "$TOKEN_LOG"
    local pid=$SPAWNED
    wait_until tokensrv "$pid" "$d/tokensrv.log" test -s "$d/tokensrv.port"
    TOKEN_URL="http://127.0.0.1:$(cat "$d/tokensrv.port")/token"
    wait_until tokensrv "$pid" "$d/tokensrv.log" _http_answers "$TOKEN_URL"
    TOKEN_CERT=$d/sign.crt
}

# Start testdata/kubeapi/server.py over HTTPS with bearer token TOKEN (make_pki first); extra
# arguments go to the server. Sets KD (its dir: server.log, requests.log), KPID and KAPI.
# KUBEAPI_NAME (default kubeapi) names its directory, so several servers can run at once (two
# clusters); each call overwrites KD, KPID and KAPI, so save them before starting another.
start_kubeapi_tls() { # TOKEN [SERVER_FLAGS...]
    local token=$1
    shift
    KD=$T/${KUBEAPI_NAME:-kubeapi}
    mkdir -p "$KD"
    spawn "${KUBEAPI_NAME:-kubeapi}" "$KD/server.log" "$PYTHON" "$TESTDATA/kubeapi/server.py" --port 0 \
        --port-file "$KD/port" --log "$KD/requests.log" --tls-cert "$SERVER_CERT" \
        --tls-key "$SERVER_KEY" --token "$token" "$@"
    KPID=$SPAWNED
    wait_until "${KUBEAPI_NAME:-kubeapi}" "$KPID" "$KD/server.log" test -s "$KD/port"
    KAPI=https://127.0.0.1:$(cat "$KD/port")
    wait_until "${KUBEAPI_NAME:-kubeapi}" "$KPID" "$KD/server.log" _http_answers "$KAPI/healthz" --cacert "$CA_FILE"
}

# find_kubectl: KUBECTL = $KUBECTL, else the kubectl scripts/get-kubectl.sh provides (cached in
# $BERTH_KUBECTL_CACHE or ~/.cache/berth/kubectl), else empty (the caller skips what needs it).
find_kubectl() {
    KUBECTL=${KUBECTL:-}
    [ -n "$KUBECTL" ] ||
        KUBECTL=$(bash "$BERTH_SRC/scripts/get-kubectl.sh" "$_IT_KUBECTL_CACHE" 2>/dev/null) ||
        KUBECTL=""
}

# Write to FILE a kubeconfig for SERVER (default $KAPI; CA from make_pki) with user token-user
# (TOKEN) in the current context "it".
write_token_kubeconfig() { # FILE TOKEN [SERVER]
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: it
  cluster:
    server: ${3:-$KAPI}/
    certificate-authority-data: $(base64 -w0 "$CA_FILE")
users:
- name: token-user
  user:
    token: $2
contexts:
- name: it
  context: {cluster: it, user: token-user}
current-context: it
EOF
}

# require_kubectl: find_kubectl, or skip the test.
require_kubectl() {
    find_kubectl
    [ -n "$KUBECTL" ] || skip "kubectl not available (scripts/get-kubectl.sh)"
}

# kube_object GROUP RESOURCE NS NAME: the object as the API test server stores it (JSON, read
# from its /_kubeapi/objects dump, not through the API), or empty when there is none.
kube_object() {
    curl -fsS --cacert "$CA_FILE" -o "$T/.kobj" \
        "$KAPI/_kubeapi/objects?group=$1&resource=$2&namespace=$3" || fail "kube_object: cannot read $2"
    jq -c --arg n "$4" '[.. | objects | select(.metadata?.name? == $n)] | first // empty' "$T/.kobj"
}

# start_registry VARIANT [NAME]: start docker-registry; VARIANT is
#   plain  plain HTTP, no auth
#   tls    TLS (our CA) + htpasswd basic auth (berth:s3cret)
#   mtls   TLS + client certificates required (clientcas), no password
#   token  plain HTTP + bearer tokens from testdata/tokensrv.py (berth:s3cret; anonymous pull)
# NAME (default reg-VARIANT) names its directory, so several registries can run at once; each
# call overwrites the variables below, so save them (REG2=$REG) before starting another.
# Sets: REG (127.0.0.1:PORT), REG_ROOT (storage root), REG_LOG, REG_SCHEME (http|https),
#   REG_VARIANT, CA_FILE/CLIENT_CERT/CLIENT_KEY (TLS variants), SKOPEO_CERT_DIR (ca.crt,
#   client.cert, client.key as skopeo wants them), and the arrays
#   BERTH_REG_ARGS   global berth flags for this registry (--ca-file, --cert-file/--key-file,
#                    --creds)
#   BERTH_SRC_ARGS / BERTH_DEST_ARGS   the same as --src-* / --dest-* flags of `berth copy`
#   SKOPEO_ARGS / SKOPEO_SRC_ARGS / SKOPEO_DEST_ARGS   skopeo flags (inspect, copy src, copy dest)
#   CURL_ARGS        curl flags to talk to the registry directly (TLS and basic auth)
start_registry() {
    local variant=$1 name=${2:-reg-$1}
    local d=$T/$name
    mkdir -p "$d/data" "$d/certs"
    local tls="" auth=""
    BERTH_REG_ARGS=()
    BERTH_SRC_ARGS=()
    BERTH_DEST_ARGS=()
    CURL_ARGS=()
    SKOPEO_CERT_DIR=""
    REG_SCHEME=http
    case "$variant" in
    plain)
        SKOPEO_ARGS=(--tls-verify=false)
        SKOPEO_SRC_ARGS=(--src-tls-verify=false)
        SKOPEO_DEST_ARGS=(--dest-tls-verify=false)
        ;;
    tls | mtls)
        make_pki
        REG_SCHEME=https
        SKOPEO_CERT_DIR=$d/certs
        cp "$CA_FILE" "$SKOPEO_CERT_DIR/ca.crt"
        tls="  tls:
    certificate: $SERVER_CERT
    key: $SERVER_KEY"
        BERTH_REG_ARGS=(--ca-file="$CA_FILE")
        BERTH_SRC_ARGS=(--src-ca-file="$CA_FILE")
        BERTH_DEST_ARGS=(--dest-ca-file="$CA_FILE")
        CURL_ARGS=(--cacert "$CA_FILE")
        if [ "$variant" = tls ]; then
            htpasswd -Bbn "$TEST_USER" "$TEST_PASS" >"$d/htpasswd" 2>/dev/null
            auth="auth:
  htpasswd:
    realm: berth-it-realm
    path: $d/htpasswd"
            BERTH_REG_ARGS+=(--creds="$TEST_USER:$TEST_PASS")
            BERTH_SRC_ARGS+=(--src-creds="$TEST_USER:$TEST_PASS")
            BERTH_DEST_ARGS+=(--dest-creds="$TEST_USER:$TEST_PASS")
            CURL_ARGS+=(-u "$TEST_USER:$TEST_PASS")
            SKOPEO_ARGS=(--cert-dir "$SKOPEO_CERT_DIR" --creds "$TEST_USER:$TEST_PASS")
            SKOPEO_SRC_ARGS=(--src-cert-dir "$SKOPEO_CERT_DIR" --src-creds "$TEST_USER:$TEST_PASS")
            SKOPEO_DEST_ARGS=(--dest-cert-dir "$SKOPEO_CERT_DIR" --dest-creds "$TEST_USER:$TEST_PASS")
        else
            tls="$tls
    clientcas:
      - $CA_FILE"
            cp "$CLIENT_CERT" "$SKOPEO_CERT_DIR/client.cert"
            cp "$CLIENT_KEY" "$SKOPEO_CERT_DIR/client.key"
            BERTH_REG_ARGS+=(--cert-file="$CLIENT_CERT" --key-file="$CLIENT_KEY")
            BERTH_SRC_ARGS+=(--src-cert-file="$CLIENT_CERT" --src-key-file="$CLIENT_KEY")
            BERTH_DEST_ARGS+=(--dest-cert-file="$CLIENT_CERT" --dest-key-file="$CLIENT_KEY")
            CURL_ARGS+=(--cert "$CLIENT_CERT" --key "$CLIENT_KEY")
            SKOPEO_ARGS=(--cert-dir "$SKOPEO_CERT_DIR")
            SKOPEO_SRC_ARGS=(--src-cert-dir "$SKOPEO_CERT_DIR")
            SKOPEO_DEST_ARGS=(--dest-cert-dir "$SKOPEO_CERT_DIR")
        fi
        ;;
    token)
        start_token_server "$d/token"
        auth="auth:
  token:
    realm: $TOKEN_URL
    service: berth-it-registry
    issuer: berth-it-issuer
    rootcertbundle: $TOKEN_CERT"
        BERTH_REG_ARGS=(--creds="$TEST_USER:$TEST_PASS")
        BERTH_SRC_ARGS=(--src-creds="$TEST_USER:$TEST_PASS")
        BERTH_DEST_ARGS=(--dest-creds="$TEST_USER:$TEST_PASS")
        SKOPEO_ARGS=(--tls-verify=false --creds "$TEST_USER:$TEST_PASS")
        SKOPEO_SRC_ARGS=(--src-tls-verify=false --src-creds "$TEST_USER:$TEST_PASS")
        SKOPEO_DEST_ARGS=(--dest-tls-verify=false --dest-creds "$TEST_USER:$TEST_PASS")
        ;;
    *) fail "start_registry: unknown variant '$variant'" ;;
    esac

    cat >"$d/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: berth-it-secret
$tls
$auth
EOF
    REG_LOG=$d/registry.log
    spawn "$name" "$REG_LOG" docker-registry serve "$d/config.yml"
    local pid=$SPAWNED
    wait_until "$name" "$pid" "$REG_LOG" _port_from_log "$REG_LOG"
    REG=127.0.0.1:$(_port_from_log "$REG_LOG")
    wait_until "$name" "$pid" "$REG_LOG" _http_answers "$REG_SCHEME://$REG/v2/" "${CURL_ARGS[@]}"
    REG_ROOT=$d/data
    REG_VARIANT=$variant
    log "registry $name ($variant) at $REG_SCHEME://$REG"
}

# start_faultproxy UPSTREAM FAULT_ARGS...: testdata/faultproxy.py in front of a plain registry.
# Sets PROXY (127.0.0.1:PORT) and PROXY_LOG (one line per request:
# "METHOD PATH STATUS range=<Range|-> [injected|cut@K]").
start_faultproxy() {
    local upstream=$1
    shift
    local d
    d=$(mktemp -d "$T/proxy.XXXX")
    PROXY_LOG=$d/requests.log
    : >"$PROXY_LOG"
    spawn faultproxy "$d/proxy.log" "$PYTHON" "$TESTDATA/faultproxy.py" --upstream "$upstream" \
        --port 0 --port-file "$d/port" --log "$PROXY_LOG" "$@"
    local pid=$SPAWNED
    wait_until faultproxy "$pid" "$d/proxy.log" test -s "$d/port"
    PROXY=127.0.0.1:$(cat "$d/port")
    # Readiness probe through the proxy to the registry (goes into the log; tests grep /v2/<repo>).
    wait_until faultproxy "$pid" "$d/proxy.log" _http_answers "http://$PROXY/v2/"
    : >"$PROXY_LOG"
}

# ------------------------------------------------------------------------------- the registry suite
# The interop scenarios every registry variant must pass (test_registry_<variant>.sh call
# run_registry_suite <variant>). Each one crosses berth with skopeo so neither side checks itself.
SRC_URL=https://example.com/berth/app.git
REVISION=main@sha1:0123456789abcdef0123456789abcdef01234567

# 1. berth push -> skopeo copy to an OCI layout: the manifest there is the one berth pushed (same
#    digest, bytes hash to it) and the layer is byte-identical to `berth build artifact`.
suite_push_then_skopeo_pull() {
    it "[$REG_VARIANT] berth push artifact, skopeo pulls the same manifest and layer bytes"
    berth_ok push artifact "oci://$REG/app:v1" --path="$APP_DIR" --source="$SRC_URL" \
        --revision="$REVISION" "${BERTH_REG_ARGS[@]}"
    assert_match "$OUT" "^$REG/app@sha256:[0-9a-f]{64}$" "push output"
    APP_DIGEST=${OUT##*@}

    sk copy --quiet --preserve-digests "${SKOPEO_SRC_ARGS[@]}" "docker://$REG/app:v1" "oci:$T/s1:v1"
    local m mfile
    m=$(layout_manifest_digest "$T/s1" v1)
    assert_eq "$APP_DIGEST" "$m" "manifest digest skopeo stored vs berth printed"
    mfile=$(layout_blob "$T/s1" "$m")
    assert_eq "$APP_DIGEST" "$(sha256_of "$mfile")" "sha256 of the manifest bytes skopeo fetched"

    assert_eq application/vnd.oci.image.manifest.v1+json "$(jq -r .mediaType "$mfile")" "manifest mediaType"
    assert_eq application/vnd.cncf.flux.config.v1+json "$(jq -r .config.mediaType "$mfile")" "config mediaType"
    assert_eq 1 "$(jq '.layers | length' "$mfile")" "layer count"
    assert_eq application/vnd.cncf.flux.content.v1.tar+gzip "$(jq -r '.layers[0].mediaType' "$mfile")" "layer mediaType"
    assert_eq "$SRC_URL" "$(jq -r '.annotations["org.opencontainers.image.source"]' "$mfile")" "source annotation"
    assert_eq "$REVISION" "$(jq -r '.annotations["org.opencontainers.image.revision"]' "$mfile")" "revision annotation"
    assert_match "$(jq -r '.annotations["org.opencontainers.image.created"]' "$mfile")" \
        '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "created annotation"

    APP_LAYER=$(jq -r '.layers[0].digest' "$mfile")
    berth_ok build artifact --path="$APP_DIR" --output="$T/app.tgz"
    assert_eq "$APP_LAYER" "$(sha256_of "$T/app.tgz")" "layer digest vs berth build artifact"
    assert_same_file "$T/app.tgz" "$(layout_blob "$T/s1" "$APP_LAYER")"
    assert_eq "$(stat -c %s "$T/app.tgz")" "$(jq -r '.layers[0].size' "$mfile")" "layer size"

    # The config is the ggcr/Flux config whose diff_id is the sha256 of the uncompressed tar.
    local cfg
    cfg=$(layout_blob "$T/s1" "$(jq -r .config.digest "$mfile")")
    assert_eq "$(gzip -dc "$T/app.tgz" | sha256_stdin)" "$(jq -r '.rootfs.diff_ids[0]' "$cfg")" "config diff_id"
    # And the layer unpacks (with GNU tar) to exactly the source tree.
    mkdir -p "$T/s1-untar"
    tar -xzf "$T/app.tgz" -C "$T/s1-untar"
    assert_same_tree "$APP_DIR" "$T/s1-untar"
}

# 2. A Flux-format artifact built with GNU tar + gzip -n and pushed by skopeo -> berth pull.
suite_skopeo_push_then_berth_pull() {
    it "[$REG_VARIANT] skopeo pushes a Flux-format artifact, berth pull artifact extracts it"
    flux_tar_of_dir "$APP_DIR" "$T/flux-app.tar"
    flux_layout_from_tar "$T/flux-app.tar" "$T/flux-layout" v1 https://example.com/flux/app.git \
        "v1.2.3@sha1:fedcba9876543210fedcba9876543210fedcba98"
    skopeo_push_layout "$T/flux-layout" v1 "$REG/flux/app:v1"

    mkdir -p "$T/s2-out"
    berth_ok pull artifact "oci://$REG/flux/app:v1" --output="$T/s2-out" "${BERTH_REG_ARGS[@]}"
    assert_same_tree "$APP_DIR" "$T/s2-out"
    assert_contains "$OUT" "source: https://example.com/flux/app.git" "pull output"
    assert_contains "$OUT" "revision: v1.2.3@sha1:fedcba9876543210fedcba9876543210fedcba98" "pull output"
    assert_contains "$OUT" "digest: $REG/flux/app@$FLUX_MANIFEST_DIGEST" "pull output"

    # By digest, with -o json.
    mkdir -p "$T/s2-out-digest"
    berth_ok pull artifact "oci://$REG/flux/app@$FLUX_MANIFEST_DIGEST" --output="$T/s2-out-digest" \
        -o json "${BERTH_REG_ARGS[@]}"
    assert_same_tree "$APP_DIR" "$T/s2-out-digest"
    assert_eq https://example.com/flux/app.git "$(jq -r .source <<<"$OUT")" "json source"
    assert_contains "$(jq -r .digest <<<"$OUT")" "$FLUX_MANIFEST_DIGEST" "json digest"
}

# 3. berth copy registry -> OCI layout; skopeo copies that layout back; the digest is unchanged.
suite_copy_to_layout_and_back() {
    it "[$REG_VARIANT] berth copy to oci-layout, skopeo copies the layout back, digest unchanged"
    berth_ok copy "oci://$REG/app:v1" "oci-layout:$T/s3-layout:v1" "${BERTH_REG_ARGS[@]}"
    assert_contains "$OUT" "($APP_DIGEST)" "copy output"
    assert_eq "$APP_DIGEST" "$(layout_manifest_digest "$T/s3-layout" v1)" "layout index digest"
    local f
    for f in "$T"/s3-layout/blobs/sha256/*; do
        assert_eq "sha256:$(basename "$f")" "$(sha256_of "$f")" "layout blob $(basename "$f")"
    done

    skopeo_push_layout "$T/s3-layout" v1 "$REG/app-copy:v1"
    sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/app-copy:v1"
    assert_eq "$APP_DIGEST" "$(printf '%s' "$OUT" | sha256_stdin)" "digest after the round trip"

    # berth also writes the layout back itself (with the --dest-* flags).
    berth_ok copy "oci-layout:$T/s3-layout:v1" "oci://$REG/app-back:v1" "${BERTH_DEST_ARGS[@]}"
    assert_contains "$OUT" "($APP_DIGEST)" "copy output"
    sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/app-back:v1"
    assert_eq "$APP_DIGEST" "$(printf '%s' "$OUT" | sha256_stdin)" "digest after layout -> registry"
}

# 4. registry -> oci-archive -> a second (plain) registry keeps every digest. Uses the
#    side-specific --src-*/--dest-* flags. Needs REG2 (a plain registry started beforehand).
suite_archive_round_trip() {
    it "[$REG_VARIANT] registry -> oci-archive -> second registry keeps every digest"
    berth_ok copy "oci://$REG/app:v1" "oci-archive:$T/app-archive.tar:v1" "${BERTH_SRC_ARGS[@]}"
    assert_contains "$OUT" "($APP_DIGEST)" "copy output"
    # skopeo reads berth's archive and sees the same manifest bytes.
    sk inspect --raw "oci-archive:$T/app-archive.tar:v1"
    assert_eq "$APP_DIGEST" "$(printf '%s' "$OUT" | sha256_stdin)" "manifest digest inside the archive"

    berth_ok copy "oci-archive:$T/app-archive.tar:v1" "oci://$REG2/app:v1"
    assert_contains "$OUT" "($APP_DIGEST)" "copy output"

    local raw
    raw=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REG2/v2/app/manifests/v1") || fail "cannot fetch the manifest from $REG2"
    assert_eq "$APP_DIGEST" "$(printf '%s' "$raw" | sha256_stdin)" "manifest digest in the 2nd registry"
    assert_eq "$APP_LAYER" "$(jq -r '.layers[0].digest' <<<"$raw")" "layer digest in the 2nd registry"
    local d
    for d in "$(jq -r .config.digest <<<"$raw")" "$APP_LAYER"; do
        assert_eq "$d" "$(curl -fsS "http://$REG2/v2/app/blobs/$d" | sha256_stdin)" "blob $d in the 2nd registry"
    done
    # And berth pulls it from there into the original tree.
    mkdir -p "$T/s4-out"
    berth_ok pull artifact "oci://$REG2/app:v1" --output="$T/s4-out"
    assert_same_tree "$APP_DIR" "$T/s4-out"
}

# run_registry_suite VARIANT: a plain second registry, then the variant under test, then 1-4.
run_registry_suite() {
    require_tools docker-registry skopeo openssl htpasswd curl jq tar gzip setsid
    start_registry plain second
    REG2=$REG
    start_registry "$1"
    suite_push_then_skopeo_pull
    if [ "$1" = token ]; then
        # The token server saw berth's user ask for push on the repository.
        assert_match "$(cat "$TOKEN_LOG")" "user=$TEST_USER scope=repository:app:[a-z,]*push" "token requests"
    fi
    suite_skopeo_push_then_berth_pull
    suite_copy_to_layout_and_back
    suite_archive_round_trip
    finish
}

# ------------------------------------------------------------------------------- setup
[ -n "${BERTH:-}" ] || {
    if [ -n "${BERTH_BUILD:-}" ] && [ -x "$BERTH_BUILD/berth" ]; then BERTH=$BERTH_BUILD/berth; fi
}
if [ -z "${BERTH:-}" ] || [ ! -x "$BERTH" ]; then
    printf 'FAIL %s: the berth binary is not set or not executable (BERTH=%s)\n' \
        "$TEST_NAME" "${BERTH:-}" >&2
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/berth-it.XXXXXX")
# where scripts/get-kubectl.sh keeps kubectl (read before HOME moves into $T)
_IT_KUBECTL_CACHE=${BERTH_KUBECTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubectl}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$T/policy.json"
# Keep berth and skopeo away from the host's credentials and caches.
# (REGISTRY_AUTH_FILE is given to skopeo only: docker-registry reads every REGISTRY_* variable
# as a configuration override.)
export HOME=$T/home DOCKER_CONFIG=$T/home/.docker
export XDG_RUNTIME_DIR=$T/home/run NO_PROXY='*' no_proxy='*' LC_ALL=C
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
mkdir -p "$HOME/.docker" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
