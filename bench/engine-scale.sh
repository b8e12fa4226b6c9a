#!/usr/bin/env bash
# bench/engine-scale.sh: berth's engine at scale, shaped like Flux's own benchmark
# (fluxcd/flux-benchmark, flux-ks-bench): N OCIRepository + N Kustomization pairs against one
# local registry, one small app artifact (ServiceAccount, Service, Deployment with replicas 0,
# Ingress) that every pair pulls and applies with its own INDEX substituted.
#
# Why this exists: issue 4 asks for time until all are Ready, peak RSS, CPU seconds and requests
# per no-change reconcile (one manifest HEAD per source) at 100 and 1,000 pairs, and sets targets
# for 1,000 pairs on a 2-core machine: all Ready < 60 s, peak RSS < 40 MB, idle RSS < 10 MB.
#
# Design: one temp dir holds the registry storage, the generated config, the state and target
# dirs; on exit the registry (and a background `berth run`, if any) is killed by its PID and the
# temp dir removed. For each N:
#   1. cold: `berth run --once` on an empty state dir, under /usr/bin/time (wall from
#      $EPOCHREALTIME, user+sys CPU, peak RSS); exit 0 and `berth get all -o json` counts
#      (2N objects, all Ready=True) and the number of target files (4N) are checked;
#   2. warm: a second `berth run --once` (nothing changed), measured the same way; the registry's
#      access log is cut before it, so the requests of that run are counted per method and path:
#      the check is exactly N requests, all `HEAD /v2/.../manifests/v1`;
#   3. idle: `berth run` (no --once) on a fresh state dir in the background; once `berth get all`
#      shows 2N Ready, VmRSS (and VmHWM, the peak) is sampled from /proc/PID/status over ~10 s,
#      then the process gets SIGTERM and must exit 0.
# The registry counts requests, not a proxy in front of it: a Python proxy would add its own
# latency to the cold run.
#
# Usage: bench/engine-scale.sh [--berth PATH] [--sizes "100 1000"] [--idle-secs S]
#                              [--keep-tmp] [--out DIR]
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BERTH_BIN=${BERTH:-}
SIZES="100 1000"
IDLE_SECS=10
KEEP_TMP=0
OUT_DIR="$HERE/out"

W=""
REG_PID=""
RUN_PID=""

die() {
    echo "engine-scale.sh: $*" >&2
    exit 1
}
note() { echo "[scale] $*" >&2; }

usage() {
    cat <<'EOF'
usage: bench/engine-scale.sh [options]
  --berth PATH    berth binary (default: $BERTH, build-release/berth, build/berth, PATH)
  --sizes "N..."  numbers of OCIRepository+Kustomization pairs (default "100 1000")
  --idle-secs S   how long the idle RSS of a converged `berth run` is sampled (default 10)
  --out DIR       where engine-scale.tsv goes (default bench/out)
  --keep-tmp      keep the temp dir (registry log, config, state, berth logs) for inspection
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
    --berth) BERTH_BIN=${2:?--berth needs a value}; shift 2 ;;
    --berth=*) BERTH_BIN=${1#*=}; shift ;;
    --sizes) SIZES=${2:?--sizes needs a value}; shift 2 ;;
    --sizes=*) SIZES=${1#*=}; shift ;;
    --idle-secs) IDLE_SECS=${2:?--idle-secs needs a value}; shift 2 ;;
    --idle-secs=*) IDLE_SECS=${1#*=}; shift ;;
    --out) OUT_DIR=${2:?--out needs a value}; shift 2 ;;
    --out=*) OUT_DIR=${1#*=}; shift ;;
    --keep-tmp) KEEP_TMP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
for n in $SIZES; do
    case $n in '' | *[!0-9]* | 0) die "--sizes must hold positive integers, got '$n'" ;; esac
done
case $IDLE_SECS in '' | *[!0-9]* | 0) die "--idle-secs must be a positive integer, got '$IDLE_SECS'" ;; esac

# ---- tools ----------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "missing tool '$1' (install: $2)"; }
need docker-registry "apt-get install docker-registry"
need curl "apt-get install curl"
need jq "apt-get install jq"
[ -x /usr/bin/time ] || die "missing tool '/usr/bin/time' (install: apt-get install time)"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (EPOCHREALTIME)"

if [ -z "$BERTH_BIN" ]; then
    for c in "$REPO/build-release/berth" "$REPO/build/berth"; do
        if [ -x "$c" ]; then BERTH_BIN=$c; break; fi
    done
fi
[ -n "$BERTH_BIN" ] || BERTH_BIN=$(command -v berth || true)
[ -n "$BERTH_BIN" ] || die "berth binary not found: pass --berth PATH"
[ -x "$BERTH_BIN" ] || die "berth binary '$BERTH_BIN' is not executable"
BERTH_BIN=$(cd "$(dirname "$BERTH_BIN")" && pwd)/$(basename "$BERTH_BIN")
"$BERTH_BIN" run --help >/dev/null 2>&1 || die "'$BERTH_BIN run --help' failed: is this a working berth binary?"
BERTH_VERSION=$("$BERTH_BIN" version 2>/dev/null | head -n1 || true)

# ---- temp dir, registry, cleanup --------------------------------------------------------
cleanup() {
    local rc=$?
    set +e
    if [ -n "$RUN_PID" ]; then
        kill "$RUN_PID" 2>/dev/null
        wait "$RUN_PID" 2>/dev/null
    fi
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

W=$(mktemp -d "${TMPDIR:-/tmp}/berth-scale.XXXXXX")
mkdir -p "$W/reg/data" "$W/app"
read -r LOAD_START _ </proc/loadavg
if awk -v l="$LOAD_START" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    note "warning: load average is $LOAD_START on $(nproc) CPUs: other work will inflate wall times"
fi

# The access log (on by default) writes one combined-format line per request:
# 127.0.0.1 - - [date] "HEAD /v2/app/manifests/v1 HTTP/1.1" 200 ...
cat >"$W/reg/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $W/reg/data
http:
  addr: 127.0.0.1:0
  secret: berth-scale
EOF
docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
REG_PID=$!
port=""
for ((i = 0; i < 500; i++)); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$W/reg/log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$REG_PID" 2>/dev/null || { cat "$W/reg/log" >&2; die "docker-registry exited at start"; }
    sleep 0.02
done
[ -n "$port" ] || die "docker-registry did not report its port within 10 s (log: $W/reg/log)"
REG=127.0.0.1:$port
for ((i = 0; i < 250; i++)); do
    curl -fsS -o /dev/null "http://$REG/v2/" 2>/dev/null && break
    sleep 0.02
done
curl -fsS -o /dev/null "http://$REG/v2/" || die "docker-registry at $REG did not answer /v2/"
note "registry at http://$REG (pid $REG_PID)"

# ---- the app artifact: Flux's benchmark app (manifests/podinfo), INDEX substituted -------
cat >"$W/app/app.yaml" <<'EOF'
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app-${INDEX}
---
apiVersion: v1
kind: Service
metadata:
  name: app-${INDEX}
  labels:
    app: app-${INDEX}
spec:
  type: ClusterIP
  selector:
    app: app-${INDEX}
  ports:
    - name: http
      port: 9898
      protocol: TCP
      targetPort: http
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${INDEX}
  labels:
    app: app-${INDEX}
spec:
  replicas: 0
  selector:
    matchLabels:
      app: app-${INDEX}
  template:
    metadata:
      labels:
        app: app-${INDEX}
    spec:
      serviceAccountName: app-${INDEX}
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.5.3
          command: ["./podinfo", "--port=9898"]
          ports:
            - name: http
              containerPort: 9898
              protocol: TCP
          resources:
            requests:
              cpu: 10m
              memory: 16Mi
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app-${INDEX}
spec:
  rules:
    - host: app-${INDEX}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: app-${INDEX}
                port:
                  name: http
EOF
"$BERTH_BIN" push artifact "oci://$REG/manifests/app:v1" --path="$W/app" \
    --source=https://example.com/bench/app.git \
    --revision=v1@sha1:0123456789abcdef0123456789abcdef01234567 >"$W/push.out" 2>"$W/push.err" ||
    { cat "$W/push.err" >&2; die "berth push artifact failed"; }
note "pushed $(cat "$W/push.out")"

# gen_config N DIR: N OCIRepository + N Kustomization pairs in DIR/pairs.yaml, as flux-ks-bench
# writes them (interval 60m, prune, postBuild substitute, targetNamespace per index).
gen_config() {
    local n=$1 d=$2 i
    mkdir -p "$d"
    for ((i = 0; i < n; i++)); do
        cat <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app-$i
  namespace: flux-system
spec:
  interval: 60m
  url: oci://$REG/manifests/app
  ref:
    tag: v1
  insecure: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: app-$i
  namespace: flux-system
spec:
  interval: 60m
  retryInterval: 2m
  timeout: 1m
  prune: true
  path: ./
  targetNamespace: app-$i
  sourceRef:
    kind: OCIRepository
    name: app-$i
  postBuild:
    substitute:
      INDEX: "$i"
---
EOF
    done >"$d/pairs.yaml"
}

# timed_once LABEL STATE TARGET CFG: berth run --once under /usr/bin/time; sets WALL CPU RSS_KB
# and REG_CPU (the registry's CPU seconds during the run: it shares the 2 cores)
timed_once() {
    local label=$1 state=$2 tgt=$3 cfg=$4 t0 t1 u s m r0 r1 rc=0
    r0=$(reg_ticks)
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S %M' -o "$W/time.out" "$BERTH_BIN" run --once --config="$cfg" \
        --state-dir="$state" --target="dir:$tgt" >"$W/$label.out" 2>"$W/$label.err" || rc=$?
    t1=$EPOCHREALTIME
    r1=$(reg_ticks)
    if [ "$rc" != 0 ]; then
        tail -n 20 "$W/$label.err" >&2
        die "$label: berth run --once exited $rc (not all Ready)"
    fi
    read -r u s m < <(tail -n 1 "$W/time.out")
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    RSS_KB=$m
    REG_CPU=$(awk -v t="$((r1 - r0))" -v h="$TCK" 'BEGIN { printf "%.2f", t / h }')
}

# check_ready N STATE: 2N objects in `berth get all -o json`, every one Ready=True
check_ready() {
    local n=$1 state=$2 total ready
    "$BERTH_BIN" get all --state-dir="$state" -o json >"$W/get.json" 2>"$W/get.err" ||
        { cat "$W/get.err" >&2; die "berth get all failed"; }
    total=$(jq 'length' "$W/get.json")
    ready=$(jq '[.[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length' "$W/get.json")
    [ "$total" = $((2 * n)) ] || die "berth get all lists $total objects, expected $((2 * n))"
    [ "$ready" = $((2 * n)) ] || die "only $ready of $((2 * n)) objects are Ready"
}

# ready_count STATE: how many objects are Ready=True (0 while the status files are not there)
ready_count() {
    "$BERTH_BIN" get all --state-dir="$1" -o json 2>/dev/null |
        jq '[.[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length' 2>/dev/null ||
        echo 0
}

reg_ticks() { # utime+stime of the registry, in clock ticks
    local line rest
    read -r line <"/proc/$REG_PID/stat"
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $((${12} + ${13}))
}
TCK=$(getconf CLK_TCK)

kb_to_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

mkdir -p "$OUT_DIR"
TSV=$OUT_DIR/engine-scale.tsv
printf 'pairs\tcold_wall_s\tcold_cpu_s\tcold_peak_rss_kb\twarm_wall_s\twarm_cpu_s\twarm_peak_rss_kb\twarm_requests\twarm_manifest_heads\tidle_ready_s\tidle_rss_kb_min\tidle_rss_kb_max\tidle_hwm_kb\tidle_rss_anon_kb\tidle_rss_file_kb\tcold_registry_cpu_s\twarm_registry_cpu_s\tidle_pss_kb\n' >"$TSV"

for N in $SIZES; do
    note "---- $N pairs"
    cfg=$W/cfg-$N
    gen_config "$N" "$cfg"

    # 1. cold: everything pulled, built and applied
    timed_once "cold-$N" "$W/state-$N" "$W/target-$N" "$cfg"
    check_ready "$N" "$W/state-$N"
    files=$(find "$W/target-$N" -type f | wc -l)
    [ "$files" = $((4 * N)) ] || die "target holds $files files, expected $((4 * N))"
    C_WALL=$WALL C_CPU=$CPU C_RSS=$RSS_KB C_REG=$REG_CPU
    note "cold: ${C_WALL} s wall, ${C_CPU} s CPU (registry ${C_REG} s), peak RSS $(kb_to_mb "$C_RSS") MB, $files files"

    # 2. warm: nothing changed; count the registry's access-log lines written during the run
    sleep 1 # let the registry flush its log
    off=$(wc -l <"$W/reg/log")
    timed_once "warm-$N" "$W/state-$N" "$W/target-$N" "$cfg"
    check_ready "$N" "$W/state-$N"
    sleep 1
    tail -n +"$((off + 1))" "$W/reg/log" | grep -o '"[A-Z]* /v2/[^ ]* HTTP/[0-9.]*"' >"$W/warm-$N.req" || true
    REQS=$(wc -l <"$W/warm-$N.req")
    HEADS=$(grep -c '^"HEAD /v2/manifests/app/manifests/v1 ' "$W/warm-$N.req" || true)
    W_WALL=$WALL W_CPU=$CPU W_RSS=$RSS_KB W_REG=$REG_CPU
    note "warm: ${W_WALL} s wall, ${W_CPU} s CPU (registry ${W_REG} s), peak RSS $(kb_to_mb "$W_RSS") MB, $REQS requests ($HEADS manifest HEADs)"
    if [ "$REQS" != "$N" ] || [ "$HEADS" != "$N" ]; then
        sort "$W/warm-$N.req" | uniq -c >&2
        die "no-change run: $REQS requests, $HEADS manifest HEADs, expected exactly $N HEADs"
    fi

    # 3. idle: a long-running berth run on a fresh state dir, after it converged
    t0=$EPOCHREALTIME
    "$BERTH_BIN" run --config="$cfg" --state-dir="$W/idle-state-$N" --target="dir:$W/idle-target-$N" \
        >"$W/idle-$N.out" 2>"$W/idle-$N.err" &
    RUN_PID=$!
    deadline=$((SECONDS + 600))
    while [ "$(ready_count "$W/idle-state-$N")" != $((2 * N)) ]; do
        kill -0 "$RUN_PID" 2>/dev/null || { tail -n 20 "$W/idle-$N.err" >&2; die "berth run exited before converging"; }
        [ "$SECONDS" -lt "$deadline" ] || die "berth run did not converge within 600 s"
        sleep 0.5
    done
    t1=$EPOCHREALTIME
    I_READY=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    sleep 1 # the last status file is written before the pass ends
    rss_min="" rss_max=0
    for ((i = 0; i <= IDLE_SECS; i++)); do
        r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$RUN_PID/status")
        [ -z "$rss_min" ] || [ "$r" -lt "$rss_min" ] && rss_min=$r
        [ "$r" -gt "$rss_max" ] && rss_max=$r
        [ "$i" = "$IDLE_SECS" ] || sleep 1
    done
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$RUN_PID/status")
    # the split: private heap and stacks vs. pages of mapped files (mostly shared libraries)
    anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$RUN_PID/status")
    filerss=$(awk '/^RssFile:/ { print $2 }' "/proc/$RUN_PID/status")
    # PSS charges a shared page to each of its n users 1/n: what this process really costs
    pss=$(awk '/^Pss:/ { print $2 }' "/proc/$RUN_PID/smaps_rollup")
    cp "/proc/$RUN_PID/smaps" "$W/idle-$N.smaps" # per mapping, kept with --keep-tmp
    kill -TERM "$RUN_PID"
    rc=0
    wait "$RUN_PID" || rc=$?
    RUN_PID=""
    [ "$rc" = 0 ] || die "berth run exited $rc after SIGTERM"
    note "idle: all Ready after ~${I_READY} s (polled), VmRSS $(kb_to_mb "$rss_min")-$(kb_to_mb "$rss_max") MB over ${IDLE_SECS} s, VmHWM $(kb_to_mb "$hwm") MB; RssAnon $(kb_to_mb "$anon") MB, RssFile $(kb_to_mb "$filerss") MB, PSS $(kb_to_mb "$pss") MB"

    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$N" "$C_WALL" "$C_CPU" "$C_RSS" \
        "$W_WALL" "$W_CPU" "$W_RSS" "$REQS" "$HEADS" "$I_READY" "$rss_min" "$rss_max" "$hwm" "$anon" "$filerss" "$C_REG" "$W_REG" "$pss" >>"$TSV"
    rm -rf "$W/state-$N" "$W/target-$N" "$W/idle-state-$N" "$W/idle-target-$N"
done

read -r LOAD_END _ </proc/loadavg
# ---- report -----------------------------------------------------------------------------
{
    echo "berth engine at scale: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "berth: $BERTH_VERSION ($BERTH_BIN)"
    echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
    echo "load average: $LOAD_START at start, $LOAD_END at end"
    echo
    echo "| pairs | cold: all Ready | cold CPU (registry) | cold peak RSS | no-change run | its CPU (registry) | its peak RSS | requests (manifest HEADs) | idle: all Ready after | idle RSS | idle VmHWM | idle anon + file | idle PSS |"
    echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    tail -n +2 "$TSV" | while IFS=$'\t' read -r n cw cc cr ww wc wr rq hd ir imin imax ihwm ia ifl creg wreg ipss; do
        echo "| $n | $cw s | $cc s ($creg s) | $(kb_to_mb "$cr") MB | $ww s | $wc s ($wreg s) | $(kb_to_mb "$wr") MB | $rq ($hd) | ~$ir s | $(kb_to_mb "$imin")–$(kb_to_mb "$imax") MB | $(kb_to_mb "$ihwm") MB | $(kb_to_mb "$ia") + $(kb_to_mb "$ifl") MB | $(kb_to_mb "$ipss") MB |"
    done
}
note "raw figures: $TSV"
