#!/bin/bash
# test_ci_flow.sh: the CI examples of docs/ci.md, run as written (issue 7). The GitHub Actions
# and GitLab CI YAML blocks are read from docs/ci.md by testdata/ci/run_ci_example.py and their
# shell steps run in order, with the berth under test on PATH, against a docker-registry with TLS
# and basic auth: push + sign with the key from a secret (text for GitHub, a File variable for
# GitLab) and the password in BERTH_PASSWORD, tag staging, then the promotion job verifies and
# tags that digest production. Checked from outside: digests with skopeo, signatures with berth
# verify, the key file gone from the runner's temp dir. Negative paths: promoting an unsigned
# artifact stops at verify (production unchanged), and a wrong key password pushes nothing.
# BERTH_IT_CI_INSTALL=1 also runs the GitHub "Install berth" step (clone + Release build of this
# repository at HEAD, about a minute) and the publish job then uses the berth it built.
source "$(dirname "$0")/lib.sh"
require_tools docker-registry skopeo jq openssl htpasswd

RUN_CI=("$PYTHON" "$TESTDATA/ci/run_ci_example.py" "$BERTH_SRC/docs/ci.md")
"$PYTHON" -c 'import yaml' 2>/dev/null || skip "python3 has no yaml module (python3-yaml)"
PATH=$(dirname "$BERTH"):$PATH
unset BERTH_PASSWORD COSIGN_PASSWORD

start_registry tls
KEY_PASSWORD='ci key pass: with spaces & symbols'

it "a key pair and a checkout: deploy/ and the public key committed beside it"
mkdir -p "$T/keys"
BERTH_PASSWORD=$KEY_PASSWORD berth_ok generate-key-pair --output-key-prefix="$T/keys/cosign"
mkdir -p "$T/repo/deploy"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: "1"\n' \
    >"$T/repo/deploy/cm.yaml"
cp "$T/keys/cosign.pub" "$T/repo/cosign.pub"

SHA1=0123456789abcdef0123456789abcdef01234567
GH_SETS=(--set "secrets.COSIGN_KEY=$(cat "$T/keys/cosign.key")"
    --set "secrets.COSIGN_PASSWORD=$KEY_PASSWORD"
    --set "secrets.REGISTRY_USER=$TEST_USER" --set "secrets.REGISTRY_PASSWORD=$TEST_PASS"
    --set "vars.ARTIFACT_REPO=$REG/acme/app-deploy" --set "vars.REGISTRY_CA=$CA_FILE"
    --set "vars.BERTH_GIT=unused" --set "vars.BERTH_REF=unused"
    --set "github.server_url=https://git.example.com" --set "github.repository=acme/app"
    --set "github.sha=$SHA1" --set "github.ref_name=main")

INSTALL_ARGS=()
if [ "${BERTH_IT_CI_INSTALL:-0}" = 1 ]; then
    # the Install berth step too: clone this repository at HEAD and build it; apt-get stubbed
    command -v git >/dev/null || fail "BERTH_IT_CI_INSTALL=1 needs git"
    mkdir -p "$T/stub"
    printf '#!/bin/sh\necho "apt-get (stub) $*" >&2\n' >"$T/stub/apt-get"
    chmod +x "$T/stub/apt-get"
    PATH=$T/stub:$PATH
    INSTALL_ARGS=(--install --set "vars.BERTH_GIT=$BERTH_SRC"
        --set "vars.BERTH_REF=$(git -C "$BERTH_SRC" rev-parse HEAD)")
fi

it "GitHub Actions, publish job: push + sign on merge, tag staging"
"${RUN_CI[@]}" github publish "$T/repo" "${GH_SETS[@]}" "${INSTALL_ARGS[@]}" \
    >"$T/gh-publish.log" 2>&1 || { cat "$T/gh-publish.log" >&2; fail "the GitHub publish job failed"; }
log_text=$(cat "$T/gh-publish.log")
if [ "${#INSTALL_ARGS[@]}" -gt 0 ]; then
    assert_contains "$log_text" "=== Install berth"
    assert_match "$log_text" "PATH \+= .*/berth/build"
else
    assert_contains "$log_text" "skip Install berth"
fi
assert_contains "$log_text" "=== Push and sign"
assert_contains "$log_text" "=== Tag staging"
assert_match "$log_text" "runner temp left: \\[.*'output-"
assert_not_contains "$log_text" "cosign.key" "key file left in RUNNER_TEMP"
PUSHED=$(jq -r .digest "$T/repo/push.json")
assert_match "$PUSHED" '^sha256:[0-9a-f]{64}$' "digest in push.json"
assert_eq "oci://$REG/acme/app-deploy@$PUSHED" "$(jq -r .url "$T/repo/push.json")"
assert_eq "$SHA1" "$(jq -r .tag "$T/repo/push.json")"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/acme/app-deploy:$SHA1"
assert_eq "$PUSHED" "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" "skopeo: the pushed tag"
assert_eq "main@sha1:$SHA1" \
    "$(jq -r '.annotations["org.opencontainers.image.revision"]' "$T/.out")" "revision annotation"
assert_eq "https://git.example.com/acme/app" \
    "$(jq -r '.annotations["org.opencontainers.image.source"]' "$T/.out")" "source annotation"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/acme/app-deploy:staging"
assert_eq "$PUSHED" "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" "skopeo: staging"
berth_ok verify "oci://$REG/acme/app-deploy:$SHA1" --key="$T/keys/cosign.pub" "${BERTH_REG_ARGS[@]}"
assert_contains "$OUT" "Verified"

it "GitHub Actions, promote job: verify, then tag exactly the verified digest production"
"${RUN_CI[@]}" github promote "$T/repo" "${GH_SETS[@]}" --set "inputs.from_tag=$SHA1" \
    >"$T/gh-promote.log" 2>&1 || { cat "$T/gh-promote.log" >&2; fail "the promote job failed"; }
assert_contains "$(cat "$T/gh-promote.log")" "production is now $PUSHED"
assert_eq "true" "$(jq -r .verified "$T/repo/verify.json")" "verify.json"
assert_eq '["production"]' "$(jq -c .tags "$T/repo/promote.json")" "promote.json tags"
assert_eq "$PUSHED" "$(jq -r .digest "$T/repo/promote.json")" "promote.json digest"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/acme/app-deploy:production"
assert_eq "$PUSHED" "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" "skopeo: production"

it "promoting an unsigned artifact stops at verify (exit 3 seen); production stays"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rogue\n' >"$T/rogue.yaml"
berth_ok push artifact "oci://$REG/acme/app-deploy:rogue" --path="$T/rogue.yaml" \
    --source=x --revision=y "${BERTH_REG_ARGS[@]}"
rc=0
"${RUN_CI[@]}" github promote "$T/repo" "${GH_SETS[@]}" --set "inputs.from_tag=rogue" \
    >"$T/gh-rogue.log" 2>&1 || rc=$?
assert_eq 1 "$rc" "promote job exit status"
assert_contains "$(cat "$T/gh-rogue.log")" "::error::$REG/acme/app-deploy:rogue is not signed by cosign.pub"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/acme/app-deploy:production"
assert_eq "$PUSHED" "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" "production unchanged"

SHA2=89abcdef0123456789abcdef0123456789abcdef
GL_SETS=(--set "COSIGN_KEY=$T/keys/cosign.key" --set "COSIGN_PASSWORD=$KEY_PASSWORD"
    --set "CI_REGISTRY_IMAGE=$REG/acme/gl" --set "CI_REGISTRY_USER=$TEST_USER"
    --set "CI_REGISTRY_PASSWORD=$TEST_PASS" --set "REGISTRY_CA=$CA_FILE"
    --set "CI_COMMIT_SHA=$SHA2" --set "CI_COMMIT_BRANCH=main" --set "CI_DEFAULT_BRANCH=main"
    --set "CI_PROJECT_URL=https://gitlab.example.com/acme/app")

it "GitLab CI, publish job: File variable key, push + sign, tag staging"
rm -f "$T/repo/"*.json
"${RUN_CI[@]}" gitlab publish "$T/repo" "${GL_SETS[@]}" >"$T/gl-publish.log" 2>&1 ||
    { cat "$T/gl-publish.log" >&2; fail "the GitLab publish job failed"; }
assert_contains "$(cat "$T/gl-publish.log")" "skip before_script"
GL_PUSHED=$(jq -r .digest "$T/repo/push.json")
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/acme/gl/deploy:$SHA2"
assert_eq "$GL_PUSHED" "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" "skopeo: the pushed tag"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/acme/gl/deploy:staging"
assert_eq "$GL_PUSHED" "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" "skopeo: staging"

it "GitLab CI, promote job: verify + production"
"${RUN_CI[@]}" gitlab promote "$T/repo" "${GL_SETS[@]}" >"$T/gl-promote.log" 2>&1 ||
    { cat "$T/gl-promote.log" >&2; fail "the GitLab promote job failed"; }
assert_eq "$GL_PUSHED" "$(jq -r .digest "$T/repo/promote.json")" "promote.json digest"
sk inspect --raw "${SKOPEO_ARGS[@]}" "docker://$REG/acme/gl/deploy:production"
assert_eq "$GL_PUSHED" "sha256:$(sha256sum <"$T/.out" | cut -d' ' -f1)" "skopeo: production"
berth_ok verify "oci://$REG/acme/gl/deploy:production" --key="$T/keys/cosign.pub" "${BERTH_REG_ARGS[@]}"

it "a wrong key password fails the publish job and pushes nothing"
SHA3=fedcba9876543210fedcba9876543210fedcba98
rc=0
"${RUN_CI[@]}" gitlab publish "$T/repo" "${GL_SETS[@]}" --set "COSIGN_PASSWORD=wrong" \
    --set "CI_COMMIT_SHA=$SHA3" >"$T/gl-wrong.log" 2>&1 || rc=$?
assert_ne 0 "$rc" "publish job exit status"
assert_contains "$(cat "$T/gl-wrong.log")" "berth:"
tags=$(curl -s "${CURL_ARGS[@]}" "https://$REG/v2/acme/gl/deploy/tags/list")
assert_contains "$tags" "\"$SHA2\"" "earlier tag listed (the check can see tags)"
assert_not_contains "$tags" "$SHA3" "nothing pushed with a wrong password"

finish
