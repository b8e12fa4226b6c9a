#!/usr/bin/env bash
# bench/mirror.sh: `berth copy --from-list` (issue 6) against `skopeo sync`, the usual tool for
# mirroring a list of images, on the same references between two local registries.
#
# Why: a site mirror copies tens of artifacts and images in one run; the figures that matter
# are the wall time of a full mirror, of a rerun where everything is already there (the resume
# path: HEADs only), and of a registry -> oci-archive run (the air-gap leg).
#
# Design: docker-registry instances on free loopback ports in one temp dir (killed by PID and
# removed on exit): the source, and a fresh destination per tool and run. N artifacts with one incompressible layer of M MiB each are pushed with
# berth (not timed). Each measured command runs R times into an empty destination (or a new
# file) so every run does the full work; the "rerun" rows repeat the command into the
# destination the previous run filled. skopeo sync gets a YAML source listing the same N references.
# Medians of wall time (from $EPOCHREALTIME) are printed as a markdown table on stdout.
#
# Usage: bench/mirror.sh [--berth PATH] [--refs N] [--layer-mib M] [--runs R] [--keep-tmp]
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BERTH_BIN=${BERTH:-}
REFS=20
LAYER_MIB=4
RUNS=3
KEEP_TMP=0
PIDS=()

die() {
    echo "mirror.sh: $*" >&2
    exit 1
}
note() { echo "[mirror] $*" >&2; }
while [ $# -gt 0 ]; do
    case $1 in
    --berth) BERTH_BIN=$2; shift 2 ;;
    --refs) REFS=$2; shift 2 ;;
    --layer-mib) LAYER_MIB=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --keep-tmp) KEEP_TMP=1; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
    esac
done
if [ -z "$BERTH_BIN" ]; then
    for c in "$REPO/build-release/berth" "$REPO/build-rel/berth" "$REPO/build/berth"; do
        [ -x "$c" ] && { BERTH_BIN=$c; break; }
    done
fi
[ -x "${BERTH_BIN:-}" ] || die "no berth binary: pass --berth"
for t in docker-registry skopeo; do command -v $t >/dev/null || die "$t is not installed"; done

W=$(mktemp -d "${TMPDIR:-/tmp}/berth-mirror-bench.XXXXXX")
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$KEEP_TMP" = 1 ]; then note "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

start_registry() { # NAME: sets REG
    local d=$W/$1
    mkdir -p "$d/data"
    cat >"$d/config.yml" <<EOF
version: 0.1
log: {level: info, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $d/data}}
http: {addr: 127.0.0.1:0, secret: bench}
EOF
    docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
    PIDS+=($!)
    local i=0
    until grep -Eqo 'listening on 127\.0\.0\.1:[0-9]+' "$d/log"; do
        i=$((i + 1))
        [ $i -lt 500 ] || die "registry $1 did not start"
        sleep 0.02
    done
    REG=127.0.0.1:$(grep -Eo 'listening on 127\.0\.0\.1:[0-9]+' "$d/log" | head -n1 | grep -Eo '[0-9]+$')
}

start_registry src
SRC=$REG
note "registry $SRC; $REFS artifacts of $LAYER_MIB MiB; $RUNS runs each"

: >"$W/refs.txt"
printf '%s:\n  images:\n' "$SRC" >"$W/sync.yaml"
for i in $(seq 1 "$REFS"); do
    mkdir -p "$W/data/$i"
    head -c $((LAYER_MIB * 1048576)) /dev/urandom >"$W/data/$i/blob.bin"
    "$BERTH_BIN" push artifact "oci://$SRC/mirror/app-$i:v1" --path="$W/data/$i" \
        --source=bench --revision="r$i" -q >/dev/null
    echo "$SRC/mirror/app-$i:v1" >>"$W/refs.txt"
    printf '    mirror/app-%s: [v1]\n' "$i" >>"$W/sync.yaml"
done
printf '  tls-verify: false\n' >>"$W/sync.yaml"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timed() { # OUTFILE CMD...: append the wall ms of CMD to OUTFILE
    local out=$1 t0 t1
    shift
    t0=${EPOCHREALTIME/./}
    "$@" >"$W/last.out" 2>&1 || { cat "$W/last.out" >&2; die "failed: $*"; }
    t1=${EPOCHREALTIME/./}
    echo $(((t1 - t0) / 1000)) >>"$out"
}

for r in $(seq 1 "$RUNS"); do
    note "run $r"
    # a fresh destination registry per tool and run: skopeo would otherwise mount blobs it
    # pushed to the same registry in an earlier run instead of uploading them
    start_registry "dst-b$r"
    timed "$W/t.berth" "$BERTH_BIN" copy -q --from-list="$W/refs.txt" --to-registry="$REG/m" \
        --state-file="$W/b$r.json"
    timed "$W/t.berth-rerun" "$BERTH_BIN" copy -q --from-list="$W/refs.txt" \
        --to-registry="$REG/m" --state-file="$W/b$r.json"
    start_registry "dst-s$r"
    timed "$W/t.skopeo" skopeo sync --src yaml --dest docker --dest-tls-verify=false \
        "$W/sync.yaml" "$REG/m"
    timed "$W/t.skopeo-rerun" skopeo sync --src yaml --dest docker --dest-tls-verify=false \
        "$W/sync.yaml" "$REG/m"
    timed "$W/t.archive" "$BERTH_BIN" copy -q --from-list="$W/refs.txt" "oci-archive:$W/m$r.tar"
    rm -f "$W/m$r.tar"
done

printf '| %s artifacts x %s MiB, registry -> registry | median wall ms (%s runs) |\n|---|---|\n' \
    "$REFS" "$LAYER_MIB" "$RUNS"
printf '| berth copy --from-list --to-registry | %s |\n' "$(median <"$W/t.berth")"
printf '| skopeo sync --src yaml --dest docker | %s |\n' "$(median <"$W/t.skopeo")"
printf '| berth rerun, everything present | %s |\n' "$(median <"$W/t.berth-rerun")"
printf '| skopeo sync rerun, everything present | %s |\n' "$(median <"$W/t.skopeo-rerun")"
printf '| berth copy --from-list oci-archive:FILE | %s |\n' "$(median <"$W/t.archive")"
printf '\nload average: %s; nproc %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
