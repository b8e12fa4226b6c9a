#!/usr/bin/env bash
# bench/images-scale.sh: image reflection at scale (issue 7): one repository with N tags (10,000
# by default) is scanned and two ImagePolicies are evaluated by `berth run --once`; the issue's
# target is a peak RSS under 32 MB. skopeo list-tags on the same repository is the peer.
#
# Design: a plain docker-registry on loopback in a temp dir. One small artifact is pushed by
# berth as "seed"; its manifest bytes are then PUT under N tags with one curl process (a config
# file of N URLs, 4 kept-alive connections), which is far faster than N skopeo copies. The tags
# are 90% semver ("1.<i/100>.<i%100>") and 10% timestamped builds ("main-<hex>-<ts>"), so both
# policies have work: semver ">=1.0.0" and numerical over the extracted timestamp.
# Measured, each under GNU /usr/bin/time (wall %e, peak RSS %M):
#   1. cold scan: `berth run --once` on an empty state dir (scan + both policies); the expected
#      tag count and both picks are checked;
#   2. rescan: the same again with nothing new (tags requests only);
#   3. peer: `skopeo list-tags` of the same repository (its output is checked to hold N+1 tags).
# Usage: bench/images-scale.sh [--berth PATH] [--tags N] [--keep-tmp]
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BERTH_BIN=${BERTH:-}
NTAGS=10000
KEEP_TMP=0
W=""
REG_PID=""

die() {
    echo "images-scale.sh: $*" >&2
    exit 1
}
note() { echo "[images-scale] $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
    --berth) BERTH_BIN=${2:?--berth needs a value}; shift 2 ;;
    --berth=*) BERTH_BIN=${1#*=}; shift ;;
    --tags) NTAGS=${2:?--tags needs a value}; shift 2 ;;
    --tags=*) NTAGS=${1#*=}; shift ;;
    --keep-tmp) KEEP_TMP=1; shift ;;
    -h | --help)
        echo "usage: bench/images-scale.sh [--berth PATH] [--tags N (default 10000)] [--keep-tmp]"
        exit 0
        ;;
    *) die "unknown argument '$1'" ;;
    esac
done
case $NTAGS in '' | *[!0-9]* | 0) die "--tags must be a positive integer, got '$NTAGS'" ;; esac

need() { command -v "$1" >/dev/null 2>&1 || die "missing tool '$1' (install: apt-get install $2)"; }
need docker-registry docker-registry
need curl curl
need jq jq
need skopeo skopeo
[ -x /usr/bin/time ] || die "missing tool '/usr/bin/time' (install: apt-get install time)"
if [ -z "$BERTH_BIN" ]; then
    for c in "$REPO/build-rel/berth" "$REPO/build-release/berth" "$REPO/build/berth"; do
        if [ -x "$c" ]; then BERTH_BIN=$c; break; fi
    done
fi
[ -n "$BERTH_BIN" ] && [ -x "$BERTH_BIN" ] || die "berth binary not found: pass --berth PATH"

cleanup() {
    local rc=$?
    set +e
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null
        wait "$REG_PID" 2>/dev/null
    fi
    if [ -n "$W" ]; then
        if [ "$KEEP_TMP" = 1 ]; then note "kept $W"; else rm -rf "$W"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

W=$(mktemp -d "${TMPDIR:-/tmp}/berth-images-scale.XXXXXX")
mkdir -p "$W/reg/data" "$W/seed" "$W/cfg"
read -r LOAD _ </proc/loadavg
cat >"$W/reg/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $W/reg/data
http:
  addr: 127.0.0.1:0
  secret: berth-images-scale
EOF
docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
REG_PID=$!
port=""
for ((i = 0; i < 500; i++)); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$W/reg/log" 2>/dev/null |
        head -n1 || true) # the log may not exist yet
    [ -n "$port" ] && break
    kill -0 "$REG_PID" 2>/dev/null || { cat "$W/reg/log" >&2; die "docker-registry exited at start"; }
    sleep 0.02
done
[ -n "$port" ] || die "docker-registry did not report its port"
REG=127.0.0.1:$port
note "registry at http://$REG; load average $LOAD on $(nproc) CPUs"

# ---- N tags of one manifest ----------------------------------------------------------------
echo "kind: ConfigMap" >"$W/seed/cm.yaml"
"$BERTH_BIN" push artifact "oci://$REG/bench/app:seed" --path="$W/seed" \
    --source=https://example.com/bench.git --revision=main@sha1:0000000000000000000000000000000000000000 \
    >/dev/null
MT=application/vnd.oci.image.manifest.v1+json
curl -fsS -H "Accept: $MT" -o "$W/manifest.json" "http://$REG/v2/bench/app/manifests/seed"
n_ts=$((NTAGS / 10))
n_sem=$((NTAGS - n_ts))
{
    for ((i = 0; i < n_sem; i++)); do
        printf 'url = "http://%s/v2/bench/app/manifests/1.%d.%d"\n' "$REG" $((i / 100)) $((i % 100))
    done
    for ((i = 0; i < n_ts; i++)); do
        printf 'url = "http://%s/v2/bench/app/manifests/main-%07x-%d"\n' "$REG" $((i * 7919)) $((1700000000 + i))
    done
} >"$W/curl.cfg"
t0=$EPOCHREALTIME
curl -sS --parallel --parallel-max 4 -X PUT -H "Content-Type: $MT" \
    --data-binary "@$W/manifest.json" -K "$W/curl.cfg" \
    -w '%{http_code}\n' -o /dev/null >"$W/put.codes" 2>"$W/put.err" ||
    die "curl failed: $(tail -c 300 "$W/put.err")"
t1=$EPOCHREALTIME
bad=$(grep -cv '^201$' "$W/put.codes" || true)
[ "$bad" = 0 ] || die "$bad of $NTAGS manifest PUTs did not answer 201"
note "tagged $NTAGS times in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
want_sem="1.$(((n_sem - 1) / 100)).$(((n_sem - 1) % 100))"
want_ts=$(printf 'main-%07x-%d' $(((n_ts - 1) * 7919)) $((1700000000 + n_ts - 1)))

cat >"$W/cfg/images.yaml" <<EOF
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, namespace: bench}
spec:
  image: $REG/bench/app
  interval: 60m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: semver, namespace: bench}
spec:
  imageRepositoryRef: {name: app}
  policy: {semver: {range: ">=1.0.0"}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: timestamp, namespace: bench}
spec:
  imageRepositoryRef: {name: app}
  filterTags: {pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '\$ts'}
  policy: {numerical: {order: asc}}
EOF

# measure LABEL COMMAND...: wall seconds and peak RSS (KiB) of COMMAND into WALL / RSS_KB.
measure() {
    local label=$1
    shift
    /usr/bin/time -f '%e %M' -o "$W/time.$label" "$@" >"$W/out.$label" 2>"$W/err.$label" ||
        die "$label failed: $(tail -n 5 "$W/err.$label")"
    read -r WALL RSS_KB <"$W/time.$label"
}
check_berth() {
    "$BERTH_BIN" get images all --state-dir="$W/state" -o json >"$W/status.json"
    local count sem ts
    count=$(jq -r '.[] | select(.kind=="ImageRepository") | .status.lastScanResult.tagCount' "$W/status.json")
    sem=$(jq -r '.[] | select(.name=="semver") | .status.latestRef.tag' "$W/status.json")
    ts=$(jq -r '.[] | select(.name=="timestamp") | .status.latestRef.tag' "$W/status.json")
    [ "$count" = $((NTAGS + 1)) ] || die "tagCount $count, want $((NTAGS + 1))"
    [ "$sem" = "$want_sem" ] || die "semver policy picked '$sem', want '$want_sem'"
    [ "$ts" = "$want_ts" ] || die "numerical policy picked '$ts', want '$want_ts'"
}

RUN=("$BERTH_BIN" run --once --config="$W/cfg" --state-dir="$W/state" --target="dir:$W/target")
measure cold "${RUN[@]}"
check_berth
COLD_WALL=$WALL COLD_RSS=$RSS_KB
measure rescan "${RUN[@]}"
check_berth
RE_WALL=$WALL RE_RSS=$RSS_KB
measure skopeo skopeo list-tags --tls-verify=false "docker://$REG/bench/app"
[ "$(jq '.Tags | length' "$W/out.skopeo")" = $((NTAGS + 1)) ] || die "skopeo did not list $((NTAGS + 1)) tags"
SK_WALL=$WALL SK_RSS=$RSS_KB

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "| $NTAGS tags (load $LOAD, $(nproc) CPUs) | wall s | peak RSS MB | wall vs skopeo | RSS vs skopeo |"
echo "|---|---|---|---|---|"
echo "| berth run --once, cold (scan + 2 policies) | $COLD_WALL | $(mb "$COLD_RSS") | $(ratio "$COLD_WALL" "$SK_WALL") | $(ratio "$COLD_RSS" "$SK_RSS") |"
echo "| berth run --once, rescan (nothing new) | $RE_WALL | $(mb "$RE_RSS") | $(ratio "$RE_WALL" "$SK_WALL") | $(ratio "$RE_RSS" "$SK_RSS") |"
echo "| skopeo list-tags (peer) | $SK_WALL | $(mb "$SK_RSS") | 1.00 | 1.00 |"
awk -v k="$COLD_RSS" 'BEGIN { exit !(k < 32 * 1024) }' || die "peak RSS $(mb "$COLD_RSS") MB is over the 32 MB target"
