#!/usr/bin/env bash
# berth's main job on an embedded default, on loopback only:
#   start a local registry, push the sample app config as a Flux-format artifact, list it,
#   pull it back and verify every digest; then generate a key pair, sign, and let the engine
#   (`berth run --once`) sync the verified artifact into a directory target, show the files and
#   `berth get all`; then push a signed change and show the update and the prune.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
"$root/scripts/install-deps.sh" --test
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target berth_cli
berth="$root/build/berth"

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
reg_pid=""
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. a registry on a free loopback port (distribution 2.8, Debian's docker-registry)
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: info, formatter: text}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:0, secret: berth-demo}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/registry.log" | head -1)
  [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" && break
  sleep 0.05
done
[ -n "${port:-}" ] || { cat "$work/registry.log"; echo "demo: registry did not start" >&2; exit 1; }
reg=127.0.0.1:$port
echo "== registry listening on $reg"

# 2. push the sample app config twice (v1, then a change as v2)
echo "== berth push artifact oci://$reg/demo/app:v1"
"$berth" push artifact "oci://$reg/demo/app:v1" --path=testdata/app \
  --source=https://example.invalid/app.git --revision="main@sha1:$(git rev-parse HEAD 2>/dev/null || echo 0000000)"
cp -r testdata/app "$work/app-v2"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo-extra\ndata:\n  added: "in v2"\n' \
  >"$work/app-v2/extra.yaml"
"$berth" push artifact "oci://$reg/demo/app:v2" --path="$work/app-v2" \
  --source=https://example.invalid/app.git --revision=main@sha1:v2 -o json

# 3. list and pull back
echo "== berth list artifacts oci://$reg/demo/app"
"$berth" list artifacts "oci://$reg/demo/app"
mkdir -p "$work/out"
echo "== berth pull artifact oci://$reg/demo/app:v2 --output=$work/out"
"$berth" pull artifact "oci://$reg/demo/app:v2" --output="$work/out"
echo "== pulled files"
(cd "$work/out" && find . -type f | sort)
echo "== berth diff artifact (local v2 tree vs registry v2)"
"$berth" diff artifact "oci://$reg/demo/app:v2" --path="$work/app-v2"

# 4. the engine: a signed artifact, a verified OCIRepository, a Kustomization, a directory target
export BERTH_PASSWORD=berth-demo
echo "== berth generate-key-pair (cosign format)"
"$berth" generate-key-pair --output-key-prefix="$work/cosign"
echo "== berth sign oci://$reg/demo/app:v1"
"$berth" sign "oci://$reg/demo/app:v1" --key="$work/cosign.key"
mkdir -p "$work/config"
write_config() { # TAG
  sed -e "s|@REGISTRY@|$reg|; s|@TAG@|$1|" testdata/engine/demo/berth.yaml.tmpl |
    awk -v pub="$work/cosign.pub" '/^@COSIGN_PUB@$/ { while ((getline l < pub) > 0) print "    " l; next } { print }' \
      >"$work/config/berth.yaml"
}
write_config v1
run_engine() {
  echo "== berth run --once --config=$work/config --state-dir=$work/state --target=dir:$work/target"
  "$berth" run --once --config="$work/config" --state-dir="$work/state" --target="dir:$work/target"
  echo "== target files"
  (cd "$work/target" && find . -type f | sort)
  echo "== berth get all"
  "$berth" get all --state-dir="$work/state"
}
run_engine

# 5. a change: the Service removed, the greeting changed; signed, and the config moved to v3
cp -r "$work/app-v2" "$work/app-v3"
rm "$work/app-v3/workloads/web/service.yaml"
sed -i 's/hello from berth/hello from berth v3/' "$work/app-v3/config/configmap.yaml"
echo "== berth push artifact oci://$reg/demo/app:v3 (Service removed, greeting changed) and sign it"
"$berth" push artifact "oci://$reg/demo/app:v3" --path="$work/app-v3" \
  --source=https://example.invalid/app.git --revision=main@sha1:v3
"$berth" sign "oci://$reg/demo/app:v3" --key="$work/cosign.key"
write_config v3
run_engine
echo "== the updated ConfigMap"
grep GREETING "$work/target/demo/core_ConfigMap_web-config.yaml"
echo "== demo finished: pushed, signed, verified, synced, updated and pruned against $reg"
