#!/usr/bin/env bash
# bench/pull-push.sh: pull and push benchmark of `berth` against its peers, in one run, on
# the same data, against the same local registry, reported as ratios.
#
# Why this exists: berth's performance claims ("pull at least 2x faster than skopeo+tar,
# within 1.5x of a plain local decompress+untar; push at least 2x faster than tar+skopeo")
# must be measured the same way every time, on the same deterministic ~100 MB tree.
#
# Design: one temp dir holds everything (data, registry storage, layouts, extraction dirs)
# and is removed on exit together with the docker-registry we started (killed by its PID).
# Contenders alternate inside each run (rotated start) so slow drift hits all of them.
# Each timed command runs under /usr/bin/time (CPU user+sys and peak RSS of the process and
# the children it waited for); wall time comes from $EPOCHREALTIME around it; the registry's
# own CPU is read from /proc/PID/stat before and after. Directory creation, removal and the
# correctness checks are not timed. Page cache is warm unless --drop-caches is given.
#
# Usage: bench/pull-push.sh [--runs N] [--berth PATH] [--peer-only] [--seed N]
#                           [--data DIR] [--out DIR] [--drop-caches] [--keep-tmp]
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
FIXED_MTIME=1704067200 # same as mkdata.py

RUNS=5
SEED=42
BERTH_BIN=${BERTH:-}
PEER_ONLY=0
DATA_DIR=""
OUT_DIR="$HERE/out"
DROP_CACHES=0
KEEP_TMP=0

W=""
REG_PID=""

die() {
    echo "pull-push.sh: $*" >&2
    exit 1
}
note() { echo "[bench] $*" >&2; }

usage() {
    cat <<'EOF'
usage: bench/pull-push.sh [options]
  --runs N        timed runs per contender (default 5); median and min are reported
  --berth PATH    berth binary (default: $BERTH, build-release/berth, build/berth, PATH)
  --peer-only     measure only the peers (skopeo+tar, tar+skopeo, igzip|tar); no ratios
  --seed N        data seed passed to mkdata.py (default 42)
  --data DIR      keep the generated tree in DIR/tree and reuse it next time (same seed)
  --out DIR       where pull-push.json goes (default bench/out)
  --drop-caches   try `sync; echo 3 > /proc/sys/vm/drop_caches` before every timed command
                  (root only, affects the whole machine; default: warm page cache)
  --keep-tmp      keep the temp dir (registry storage, logs) for inspection
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --berth) BERTH_BIN=${2:?--berth needs a value}; shift 2 ;;
    --berth=*) BERTH_BIN=${1#*=}; shift ;;
    --seed) SEED=${2:?--seed needs a value}; shift 2 ;;
    --seed=*) SEED=${1#*=}; shift ;;
    --data) DATA_DIR=${2:?--data needs a value}; shift 2 ;;
    --data=*) DATA_DIR=${1#*=}; shift ;;
    --out) OUT_DIR=${2:?--out needs a value}; shift 2 ;;
    --out=*) OUT_DIR=${1#*=}; shift ;;
    --peer-only) PEER_ONLY=1; shift ;;
    --drop-caches) DROP_CACHES=1; shift ;;
    --keep-tmp) KEEP_TMP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
case $RUNS in '' | *[!0-9]* | 0) die "--runs must be a positive integer, got '$RUNS'" ;; esac
case $SEED in '' | *[!0-9]*) die "--seed must be a non-negative integer, got '$SEED'" ;; esac

# ---- tools ----------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "missing tool '$1' (install: $2)"; }
need docker-registry "apt-get install docker-registry"
need skopeo "apt-get install skopeo"
need igzip "apt-get install isal"
need tar "apt-get install tar"
need gzip "apt-get install gzip"
need curl "apt-get install curl"
need jq "apt-get install jq"
need python3 "apt-get install python3"
need sha256sum "apt-get install coreutils"
[ -x /usr/bin/time ] || die "missing tool '/usr/bin/time' (install: apt-get install time)"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (EPOCHREALTIME)"

if [ "$PEER_ONLY" = 0 ]; then
    if [ -z "$BERTH_BIN" ]; then
        for c in "$REPO/build-release/berth" "$REPO/build/berth"; do
            if [ -x "$c" ]; then BERTH_BIN=$c; break; fi
        done
    fi
    [ -n "$BERTH_BIN" ] || BERTH_BIN=$(command -v berth || true)
    [ -n "$BERTH_BIN" ] || die "berth binary not found: pass --berth PATH (or --peer-only)"
    [ -x "$BERTH_BIN" ] || die "berth binary '$BERTH_BIN' is not executable"
    BERTH_BIN=$(cd "$(dirname "$BERTH_BIN")" && pwd)/$(basename "$BERTH_BIN")
    "$BERTH_BIN" push artifact --help >/dev/null 2>&1 ||
        die "'$BERTH_BIN push artifact --help' failed: is this a working berth binary?"
    BERTH_VERSION=$("$BERTH_BIN" version 2>/dev/null | head -n1 || true)
fi

# ---- temp dir, registry, cleanup --------------------------------------------------------
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

W=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
mkdir -p "$W/reg/data" "$W/x"
# disk: tree + every pull extraction of the phase + every pushed layer + layouts, ~110 MB each
NEED_MB=$(((2 + RUNS * 3 + RUNS * 2) * 110))
AVAIL_MB=$(df -Pm "$W" | awk 'NR == 2 { print $4 }')
[ "$AVAIL_MB" -ge "$NEED_MB" ] || die "need about $NEED_MB MB free in $W, only $AVAIL_MB MB available"
T_START=$EPOCHREALTIME
read -r LOAD_START _ </proc/loadavg
if awk -v l="$LOAD_START" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    note "warning: load average is $LOAD_START on $(nproc) CPUs: other work will inflate wall times"
fi

start_registry() {
    local port="" i
    cat >"$W/reg/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $W/reg/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: berth-bench
EOF
    REGISTRY_HTTP_ADDR=127.0.0.1:0 docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
    REG_PID=$!
    for ((i = 0; i < 500; i++)); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$W/reg/log" | head -n1)
        [ -n "$port" ] && break
        kill -0 "$REG_PID" 2>/dev/null || { cat "$W/reg/log" >&2; die "docker-registry exited at start"; }
        sleep 0.02
    done
    [ -n "$port" ] || die "docker-registry did not report its port within 10 s (log: $W/reg/log)"
    REG=127.0.0.1:$port
    for ((i = 0; i < 250; i++)); do
        curl -fsS -o /dev/null "http://$REG/v2/" 2>/dev/null && return 0
        sleep 0.02
    done
    die "docker-registry at $REG did not answer /v2/"
}

reg_ticks() { # utime+stime of the registry, in clock ticks
    local line rest
    read -r line <"/proc/$REG_PID/stat"
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $((${12} + ${13}))
}

# ---- helper scripts run under /usr/bin/time ---------------------------------------------
# The peer push: tar -czf, then an OCI layout shaped like `flux push artifact` output (Flux
# config with the diff_id, Flux layer media type, created/source/revision annotations),
# then skopeo copy to the registry. The diff_id (sha256 of the uncompressed tar) is passed
# in, computed outside the timed section: this favours the peer, never berth.
cat >"$W/peer-push.sh" <<'EOF'
#!/usr/bin/env bash
# peer-push.sh TREE LAYOUT REF DIFFID REVISION
set -euo pipefail
tree=$1 L=$2 ref=$3 diffid=$4 rev=$5
mkdir -p "$L/blobs/sha256"
tar -czf "$L/layer.tgz" -C "$tree" .
sum=$(sha256sum "$L/layer.tgz"); lhex=${sum%% *}
lsize=$(stat -c %s "$L/layer.tgz")
mv "$L/layer.tgz" "$L/blobs/sha256/$lhex"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
blob() { # blob CONTENT -> prints "size hex", stores the blob
    printf '%s' "$1" >"$L/tmp"
    local s; s=$(sha256sum "$L/tmp"); s=${s%% *}
    mv "$L/tmp" "$L/blobs/sha256/$s"
    echo "${#1} $s"
}
read -r csize chex < <(blob '{"architecture":"","created":"'"$created"'","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:'"$diffid"'"]},"config":{}}')
read -r msize mhex < <(blob '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.flux.config.v1+json","size":'"$csize"',"digest":"sha256:'"$chex"'"},"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","size":'"$lsize"',"digest":"sha256:'"$lhex"'"}],"annotations":{"org.opencontainers.image.created":"'"$created"'","org.opencontainers.image.revision":"'"$rev"'","org.opencontainers.image.source":"bench"}}')
printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":%s,"digest":"sha256:%s","annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
    "$msize" "$mhex" >"$L/index.json"
skopeo copy -q --dest-tls-verify=false "oci:$L:v1" "docker://$ref"
EOF

# The peer pull: skopeo copy to a fresh OCI layout, find the layer from the layout's own
# manifest, tar -xzf it.
cat >"$W/peer-pull.sh" <<'EOF'
#!/usr/bin/env bash
# peer-pull.sh REF LAYOUT OUTDIR
set -euo pipefail
ref=$1 L=$2 out=$3
skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$L:v1"
m=$(jq -r '.manifests[0].digest' "$L/index.json")
l=$(jq -r '.layers[0].digest' "$L/blobs/sha256/${m#sha256:}")
tar -xzf "$L/blobs/sha256/${l#sha256:}" -C "$out"
EOF

# The floor: decompress + untar a layer file already on local disk.
cat >"$W/floor.sh" <<'EOF'
#!/usr/bin/env bash
# floor.sh LAYERFILE OUTDIR
set -euo pipefail
igzip -dc "$1" | tar -xf - -C "$2"
EOF

# ---- measurement ------------------------------------------------------------------------
DROP_WARNED=0
maybe_drop_caches() {
    [ "$DROP_CACHES" = 1 ] || return 0
    sync
    if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        [ "$DROP_WARNED" = 1 ] || note "cannot drop page cache here (not root or read-only /proc): warm runs"
        DROP_WARNED=1
    fi
}

: >"$W/runs.tsv"
# timed PHASE TOOL RUN CMD... : runs CMD once, appends one row to runs.tsv
timed() {
    local phase=$1 tool=$2 run=$3 t0 t1 r0 r1 u s m
    shift 3
    maybe_drop_caches
    r0=$(reg_ticks)
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f '%U %S %M' -o "$W/time.out" "$@" >"$W/cmd.out" 2>"$W/cmd.err"; then
        echo "---- stderr of: $*" >&2
        tail -n 20 "$W/cmd.err" >&2
        echo "---- registry log (last lines)" >&2
        tail -n 5 "$W/reg/log" >&2
        die "$phase/$tool run $run failed"
    fi
    t1=$EPOCHREALTIME
    r1=$(reg_ticks)
    read -r u s m < <(tail -n 1 "$W/time.out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$tool" "$run" "$t0" "$t1" "$u" "$s" "$m" \
        "$((r1 - r0))" >>"$W/runs.tsv"
    note "$(printf '%-4s %-5s run %d/%d: %.3f s' "$phase" "$tool" "$run" "$RUNS" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
}

# layer_of REPO TAG -> "sha256:HEX SIZE" of layers[0], read back from the registry
layer_of() {
    curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REG/v2/$1/manifests/$2" | jq -r '.layers[0] | "\(.digest) \(.size)"'
}

# assert_uploaded REPO HEX: the registry log shows the blob upload of HEX into REPO
# completed (PUT .../blobs/uploads/...digest=sha256:HEX -> 201), i.e. bytes were really
# sent to this repository, not skipped by a HEAD hit or a cross-repository mount.
assert_uploaded() {
    local repo=$1 hex=$2 i
    for ((i = 0; i < 50; i++)); do
        if grep -F 'http.request.method=PUT' "$W/reg/log" | grep -F "/v2/$repo/blobs/uploads/" |
            grep -Ei "digest=sha256(%3A|:)$hex" | grep -qF 'http.response.status=201'; then
            return 0
        fi
        sleep 0.1
    done
    die "registry log shows no completed upload of layer sha256:$hex into '$repo' (mounted or skipped?)"
}

# set_marker TEXT: a small per-run file so every push sends a blob the registry has never seen
set_marker() {
    printf '%s\n' "$1" >"$TREE/bench-run.txt"
    touch -d "@$FIXED_MTIME" "$TREE/bench-run.txt" "$TREE"
}
diff_id() {
    local s
    s=$(tar -cf - -C "$TREE" . | sha256sum)
    echo "${s%% *}"
}
same_tree() { # same_tree DIR LABEL: untimed correctness check
    diff -r -q "$1" "$TREE" >"$W/diff.out" 2>&1 || {
        head -n 10 "$W/diff.out" >&2
        die "$2: extracted tree differs from the input tree"
    }
}

# ---- data -------------------------------------------------------------------------------
MKDATA_SUM=$(sha256sum "$HERE/mkdata.py")
STAMP="seed=$SEED mkdata=${MKDATA_SUM%% *}"
if [ -n "$DATA_DIR" ]; then
    mkdir -p "$DATA_DIR"
    DATA_DIR=$(cd "$DATA_DIR" && pwd)
    TREE=$DATA_DIR/tree
    if [ -d "$TREE" ] && [ "$(cat "$DATA_DIR/stamp" 2>/dev/null)" = "$STAMP" ]; then
        note "reusing data in $TREE"
    else
        rm -rf "$TREE" "$DATA_DIR/stamp"
        python3 "$HERE/mkdata.py" --seed "$SEED" "$TREE" >&2
        echo "$STAMP" >"$DATA_DIR/stamp"
    fi
else
    TREE=$W/tree
    python3 "$HERE/mkdata.py" --seed "$SEED" "$TREE" >&2
fi
start_registry
note "registry $REG (pid $REG_PID), temp dir $W"

# ---- pull source: one artifact, pushed once with the peer flow --------------------------
set_marker "pull"
TREE_BYTES=$(du -sb "$TREE" | cut -f1)
TREE_FILES=$(find "$TREE" -type f | wc -l)
DIFFID=$(diff_id)
mkdir -p "$W/src"
bash "$W/peer-push.sh" "$TREE" "$W/src" "$REG/bench:v1" "$DIFFID" "r0" >"$W/cmd.out" 2>&1 ||
    { cat "$W/cmd.out" >&2; die "could not push the pull source with skopeo"; }
read -r PULL_LAYER PULL_LAYER_SIZE < <(layer_of bench v1)
LAYER_FILE=$W/src/blobs/sha256/${PULL_LAYER#sha256:}
[ -f "$LAYER_FILE" ] || die "pull source layer $PULL_LAYER is not in the local layout"

TOOLS_PULL=(peer floor)
TOOLS_PUSH=(peer)
if [ "$PEER_ONLY" = 0 ]; then
    TOOLS_PULL=(berth peer floor)
    TOOLS_PUSH=(berth peer)
fi

# rotated RUN TOOLS...: the tools, starting at index (RUN-1) mod count
rotated() {
    local run=$1 n i
    shift
    n=$#
    local a=("$@")
    for ((i = 0; i < n; i++)); do echo "${a[$(((run - 1 + i) % n))]}"; done
}

# ---- 1. pull ----------------------------------------------------------------------------
for ((run = 1; run <= RUNS; run++)); do
    for tool in $(rotated "$run" "${TOOLS_PULL[@]}"); do
        out=$W/x/pull-$tool-$run
        mkdir -p "$out"
        case $tool in
        berth) timed pull berth "$run" "$BERTH_BIN" pull artifact "oci://$REG/bench:v1" --output="$out" ;;
        peer) timed pull peer "$run" bash "$W/peer-pull.sh" "$REG/bench:v1" "$W/x/layout-$run" "$out" ;;
        floor) timed pull floor "$run" bash "$W/floor.sh" "$LAYER_FILE" "$out" ;;
        esac
        [ "$run" -gt 1 ] || same_tree "$out" "pull/$tool"
        # Extraction dirs are removed only after the phase: ext4 (at least without a journal)
        # scans inodes deleted in the last 30 s on every file creation, which made each
        # extraction 1.5-2 s slower when the previous run's 2,000 files had just been deleted.
        rm -rf "$W/x/layout-$run"
    done
done
rm -rf "$W"/x/pull-*

# ---- 2. push ----------------------------------------------------------------------------
: >"$W/push-layers.tsv"
for ((run = 1; run <= RUNS; run++)); do
    for tool in $(rotated "$run" "${TOOLS_PUSH[@]}"); do
        set_marker "push $tool $run"
        case $tool in
        berth)
            repo=bench/push-$run tag=v$run
            timed push berth "$run" "$BERTH_BIN" push artifact "oci://$REG/$repo:$tag" \
                --path="$TREE" --source=bench --revision="r$run"
            ;;
        peer)
            repo=bench/peer-$run tag=v1
            did=$(diff_id)
            mkdir -p "$W/x/playout-$run"
            timed push peer "$run" bash "$W/peer-push.sh" "$TREE" "$W/x/playout-$run" "$REG/$repo:$tag" \
                "$did" "r$run"
            rm -rf "$W/x/playout-$run"
            ;;
        esac
        read -r layer lsize < <(layer_of "$repo" "$tag")
        assert_uploaded "$repo" "${layer#sha256:}"
        printf '%s\t%s\t%s\t%s\n' "$tool" "$run" "$layer" "$lsize" >>"$W/push-layers.tsv"
        if [ "$tool" = berth ] && [ "$run" = 1 ]; then # untimed: the pushed layer holds the tree
            mkdir -p "$W/x/check"
            curl -fsS "http://$REG/v2/$repo/blobs/$layer" | tar -xzf - -C "$W/x/check"
            same_tree "$W/x/check" "push/berth (layer read back)"
            rm -rf "$W/x/check"
        fi
    done
done

# ---- 3. report --------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
T_END=$EPOCHREALTIME
read -r LOAD_END _ </proc/loadavg
export BENCH_LOAD="$LOAD_START $LOAD_END"
export BENCH_RUNS=$RUNS BENCH_SEED=$SEED BENCH_PEER_ONLY=$PEER_ONLY BENCH_DROP=$DROP_CACHES
export BENCH_TREE_BYTES=$TREE_BYTES BENCH_TREE_FILES=$TREE_FILES
export BENCH_PULL_LAYER=$PULL_LAYER BENCH_PULL_LAYER_SIZE=$PULL_LAYER_SIZE
export BENCH_BERTH=${BERTH_BIN:-} BENCH_BERTH_VERSION=${BERTH_VERSION:-}
BENCH_SKOPEO_VERSION=$(skopeo --version 2>/dev/null || true)
BENCH_REGISTRY_VERSION=$(docker-registry --version 2>/dev/null || true)
BENCH_TAR_VERSION=$(tar --version | head -n1)
BENCH_IGZIP_VERSION=$(igzip --version 2>&1 | head -n1)
BENCH_ELAPSED=$(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.1f", b - a }')
BENCH_CLK_TCK=$(getconf CLK_TCK)
export BENCH_SKOPEO_VERSION BENCH_REGISTRY_VERSION BENCH_TAR_VERSION BENCH_IGZIP_VERSION
export BENCH_ELAPSED BENCH_CLK_TCK
python3 - "$W/runs.tsv" "$W/push-layers.tsv" "$OUT_DIR/pull-push.json" <<'PY'
import json, os, platform, statistics, sys, time

runs_tsv, layers_tsv, out_json = sys.argv[1:4]
E = os.environ
tck = int(E["BENCH_CLK_TCK"])
rows = []
for line in open(runs_tsv):
    ph, tool, run, t0, t1, u, s, m, rt = line.rstrip("\n").split("\t")
    rows.append({"phase": ph, "tool": tool, "run": int(run),
                 "wall_s": round(float(t1) - float(t0), 4),
                 "cpu_s": round(float(u) + float(s), 3), "user_s": float(u), "sys_s": float(s),
                 "maxrss_kib": int(m), "registry_cpu_s": round(int(rt) / tck, 3)})
layers = {}
for line in open(layers_tsv):
    tool, run, dg, size = line.split()
    layers.setdefault(tool, []).append(int(size))

def summ(ph, tool):
    rs = [r for r in rows if r["phase"] == ph and r["tool"] == tool]
    if not rs:
        return None
    med = lambda k: round(statistics.median(r[k] for r in rs), 4)
    return {"runs": len(rs),
            "wall_median_s": med("wall_s"), "wall_min_s": min(r["wall_s"] for r in rs),
            "wall_max_s": max(r["wall_s"] for r in rs),
            "cpu_median_s": med("cpu_s"), "maxrss_median_kib": int(med("maxrss_kib")),
            "maxrss_max_kib": max(r["maxrss_kib"] for r in rs),
            "registry_cpu_median_s": med("registry_cpu_s")}

phases = {"pull": ["berth", "peer", "floor"], "push": ["berth", "peer"]}
res = {ph: {t: summ(ph, t) for t in tools if summ(ph, t)} for ph, tools in phases.items()}

def ratio(ph, a, b, target):
    A, B = res[ph].get(a), res[ph].get(b)
    if not A or not B:
        return None
    w = round(A["wall_median_s"] / B["wall_median_s"], 3)
    return {"wall": w, "cpu": round(A["cpu_median_s"] / B["cpu_median_s"], 3),
            "target_wall_max": target, "met": w <= target}

ratios = {"pull": ratio("pull", "berth", "peer", 0.5),
          "pull_floor": ratio("pull", "berth", "floor", 1.5),
          "push": ratio("push", "berth", "peer", 0.5)}

def cpu_model():
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()

def mem_kib():
    try:
        for l in open("/proc/meminfo"):
            if l.startswith("MemTotal:"):
                return int(l.split()[1])
    except OSError:
        return None

doc = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "mem_kib": mem_kib(),
                "kernel": platform.release(), "hostname": platform.node(),
                "loadavg_1min_start_end": [float(x) for x in E["BENCH_LOAD"].split()]},
    "config": {"runs": int(E["BENCH_RUNS"]), "seed": int(E["BENCH_SEED"]),
               "page_cache": "dropped before each timed command" if E["BENCH_DROP"] == "1" else "warm",
               "network": "loopback, plain HTTP", "peer_only": E["BENCH_PEER_ONLY"] == "1"},
    "tools": {"berth": E["BENCH_BERTH"] or None, "berth_version": E["BENCH_BERTH_VERSION"] or None,
              "skopeo": E["BENCH_SKOPEO_VERSION"], "registry": E["BENCH_REGISTRY_VERSION"],
              "tar": E["BENCH_TAR_VERSION"], "igzip": E["BENCH_IGZIP_VERSION"]},
    "data": {"tree_bytes": int(E["BENCH_TREE_BYTES"]), "tree_files": int(E["BENCH_TREE_FILES"]),
             "pull_layer": E["BENCH_PULL_LAYER"], "pull_layer_bytes": int(E["BENCH_PULL_LAYER_SIZE"]),
             "push_layer_bytes_median": {t: int(statistics.median(v)) for t, v in layers.items()}},
    "results": res, "ratios": ratios, "elapsed_s": float(E["BENCH_ELAPSED"]), "runs": rows,
}
with open(out_json, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

label = {"berth": "berth", "peer": None, "floor": "igzip -dc \\| tar -x (local file)"}
peer_label = {"pull": "skopeo copy + tar -xzf", "push": "tar -czf + skopeo copy"}
m = doc["machine"]
print(f"## berth pull/push benchmark, {doc['date']}\n")
print(f"{m['cpus']} CPUs ({m['cpu_model']}), {round((m['mem_kib'] or 0) / 1048576)} GiB, "
      f"kernel {m['kernel']}; loopback registry ({doc['tools']['registry']}), "
      f"{doc['config']['page_cache']} page cache, {doc['config']['runs']} runs each, "
      f"load average {m['loadavg_1min_start_end'][0]} -> {m['loadavg_1min_start_end'][1]}.  ")
d = doc["data"]
print(f"Data: {d['tree_files']} files, {d['tree_bytes'] / 1e6:.1f} MB; pull layer "
      f"{d['pull_layer_bytes'] / 1e6:.1f} MB; push layer median "
      + ", ".join(f"{t} {v / 1e6:.1f} MB" for t, v in d["push_layer_bytes_median"].items()) + ".\n")
print("| phase | contender | wall median (s) | wall min (s) | CPU user+sys median (s) | peak RSS median (MiB) | registry CPU median (s) |")
print("|---|---|---:|---:|---:|---:|---:|")
for ph, tools in res.items():
    for t, r in tools.items():
        name = peer_label[ph] if t == "peer" else label[t]
        print(f"| {ph} | {name} | {r['wall_median_s']:.3f} | {r['wall_min_s']:.3f} | {r['cpu_median_s']:.2f} "
              f"| {r['maxrss_median_kib'] / 1024:.1f} | {r['registry_cpu_median_s']:.2f} |")
print()
if any(ratios.values()):
    print("| ratio | wall | CPU | target (wall) | met |")
    print("|---|---:|---:|---:|---|")
    names = {"pull": "pull: berth / (skopeo+tar)", "pull_floor": "pull: berth / (igzip\\|tar)",
             "push": "push: berth / (tar+skopeo)"}
    for k, r in ratios.items():
        if r:
            print(f"| {names[k]} | {r['wall']:.2f} | {r['cpu']:.2f} | <= {r['target_wall_max']} | "
                  f"{'yes' if r['met'] else 'NO'} |")
    print()
print(f"JSON: {out_json} (total bench time {doc['elapsed_s']} s)")
PY
