#!/usr/bin/env bash
# The berth command line without a registry: help on every verb, usage errors and their exit
# codes (docs/errors.md), flag syntax, and the offline `build artifact`. Needs only $BERTH.
set -euo pipefail

BERTH=${BERTH:?set BERTH to the berth binary}
T=$(mktemp -d)
hang_pid=
cleanup() {
    [[ -z $hang_pid ]] || kill "$hang_pid" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fails=0

# run CMD...: sets $rc, $out (stdout) and $err (stderr).
run() {
    set +e
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    set -e
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

fail() {
    echo "FAIL: $*" >&2
    echo "  rc=$rc" >&2
    echo "  stdout: ${out:0:400}" >&2
    echo "  stderr: ${err:0:400}" >&2
    fails=$((fails + 1))
}

expect_rc() { # expect_rc WANT DESCRIPTION
    [[ $rc -eq $1 ]] || fail "$2: exit $rc, want $1"
}
expect_out() { # expect_out TEXT DESCRIPTION
    [[ $out == *"$1"* ]] || fail "$2: stdout lacks '$1'"
}
expect_err() { # expect_err TEXT DESCRIPTION
    [[ $err == *"$1"* ]] || fail "$2: stderr lacks '$1'"
}

# ---- top level
run "$BERTH" --help
expect_rc 0 "berth --help"
for v in push pull tag list diff build copy version; do expect_out "$v" "berth --help lists $v"; done
run "$BERTH" help
expect_rc 0 "berth help"
run "$BERTH"
expect_rc 2 "berth without a verb"
run "$BERTH" frobnicate
expect_rc 2 "unknown verb"
expect_err 'unknown command "frobnicate"' "unknown verb is named"
expect_err "push" "unknown verb lists the verbs"
run "$BERTH" push frob
expect_rc 2 "unknown noun"
expect_err '"frob"' "unknown noun is named"
expect_err "artifact" "unknown noun lists the nouns"
run "$BERTH" --bogus
expect_rc 2 "unknown top-level flag"
expect_err '"--bogus"' "unknown top-level flag is named"

# ---- --help on every verb shows its own flags
check_help() { # check_help "VERB [NOUN]" FLAG...
    local words=$1
    shift
    # shellcheck disable=SC2086
    run "$BERTH" $words --help
    expect_rc 0 "berth $words --help"
    expect_out "Usage:" "berth $words --help"
    for f in "$@"; do expect_out -- "$f" "berth $words --help shows $f"; done
    # shellcheck disable=SC2086
    run "$BERTH" help $words
    expect_rc 0 "berth help $words"
    expect_out "Usage:" "berth help $words"
}
reg=(--creds --insecure-registry --ca-file --cert-file --key-file --docker-config --timeout --debug --quiet)
check_help "push artifact" --path --source --revision --annotations --ignore-paths --add-ignore-paths \
    --reproducible --output-format "${reg[@]}"
check_help "pull artifact" --output --layer-media-type --output-format "${reg[@]}"
check_help "tag artifact" --tag "${reg[@]}"
check_help "list artifacts" --filter-regex --filter-semver --output-format "${reg[@]}"
check_help "diff artifact" --path --ignore-paths "${reg[@]}"
check_help "build artifact" --path --output --ignore-paths --add-ignore-paths
check_help "copy" --no-signatures --src-creds --dest-creds --src-ca-file --dest-ca-file --src-cert-file \
    --src-key-file --dest-cert-file --dest-key-file --src-insecure --dest-insecure "${reg[@]}"
check_help "version" --output-format
run "$BERTH" push artifact -h
expect_rc 0 "-h"
expect_out "--revision" "-h prints the help"
run "$BERTH" push --help
expect_rc 0 "berth push --help (single noun)"
expect_out "--revision" "berth push --help shows push artifact"

# ---- usage errors: exit 2, naming the problem
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --path=. --source=s --revision=r --bogus
expect_rc 2 "unknown flag"
expect_err 'unknown flag "--bogus" for "berth push artifact"' "unknown flag is named"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --path=. --source=s --revision=r -Z
expect_rc 2 "unknown shorthand"
expect_err '"-Z"' "unknown shorthand is named"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --source=s --revision=r
expect_rc 2 "missing --path"
expect_err '"--path"' "missing --path is named"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --path=. --source=s
expect_rc 2 "missing --revision"
expect_err '"--revision"' "missing --revision is named"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --path=. --source=s --revision=r -a k=v=w
expect_rc 2 "annotation with two '='"
expect_err '"k=v=w"' "bad annotation is named"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --path=. --source=s --revision=r -a novalue
expect_rc 2 "annotation without '='"
expect_err '"novalue"' "bad annotation is named"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --path=. --source=s --revision=r -o xml
expect_rc 2 "bad output format"
expect_err '"xml"' "bad output format is named"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y --path=. --source=s --revision=r --timeout=soon
expect_rc 2 "bad --timeout"
expect_err '"soon"' "bad --timeout is named"
run "$BERTH" push artifact --path=. --source=s --revision=r
expect_rc 2 "missing reference"
expect_err "argument" "missing reference explained"
run "$BERTH" push artifact oci://127.0.0.1:1/x:y oci://127.0.0.1:1/x:z --path=. --source=s --revision=r
expect_rc 2 "two references"
run "$BERTH" pull artifact oci://127.0.0.1:1/x:y --output
expect_rc 2 "flag without its value"
expect_err "--output" "flag without value is named"
run "$BERTH" list artifacts oci://127.0.0.1:1/x --filter-regex='v(?=1)'
expect_rc 2 "non-RE2 regex"
expect_err "lookaround" "non-RE2 regex explained"
run "$BERTH" list artifacts oci://127.0.0.1:1/x --filter-semver='>=x!!'
expect_rc 2 "bad semver constraint"
expect_err '>=x!!' "bad semver constraint is named"
run "$BERTH" tag artifact oci://127.0.0.1:1/x:y --tag='bad tag'
expect_rc 2 "invalid new tag"
expect_err '"bad tag"' "invalid new tag is named"
run "$BERTH" version -- --help
expect_rc 2 "-- ends the flags"
run "$BERTH" version -qh
expect_rc 0 "combined boolean shorthands"
expect_out "Usage:" "-qh shows the help"

run "$BERTH" copy oci://127.0.0.1:1/x:y ftp://nowhere/x
expect_rc 2 "unknown copy location"
expect_err '"ftp://nowhere/x"' "unknown copy location is named"
run "$BERTH" copy oci://127.0.0.1:1/x:y
expect_rc 2 "copy with one location"

# ---- malformed reference: exit 2 with the precise error
run "$BERTH" pull artifact 'oci://127.0.0.1:1/UPPER/case:y' --output="$T"
expect_rc 2 "malformed reference"
expect_err "UPPER/case" "malformed reference: repository is named"
expect_err "berth: " "errors start with berth:"
run "$BERTH" pull artifact 'oci://127.0.0.1:1/x:y' --output="$T" --debug --bogus
expect_rc 2 "unknown flag with --debug"

# ---- pull: the output directory must exist (checked before any network access)
run "$BERTH" pull artifact oci://127.0.0.1:1/x:y --output=/nonexistent
expect_rc 1 "pull into a missing directory"
expect_err '"/nonexistent"' "missing output directory is named"
touch "$T/file"
run "$BERTH" pull artifact oci://127.0.0.1:1/x:y --output="$T/file"
expect_rc 1 "pull into a file"
expect_err "not a directory" "output file explained"

# ---- --timeout bounds the whole command: a server that accepts and never answers
python3 - "$T/port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns, end = [], time.time() + 60
s.settimeout(1)
while time.time() < end:
    try:
        conns.append(s.accept())
    except OSError:
        pass
PY
hang_pid=$!
# python may start slowly on a loaded machine: wait up to 30 s for the port
for _ in $(seq 300); do [[ -s $T/port ]] && break; sleep 0.1; done
[[ -s $T/port ]] || fail "the hanging test server did not start"
run "$BERTH" list artifacts "oci://127.0.0.1:$(cat "$T/port")/x" --timeout=2s
expect_rc 1 "--timeout expiry"
expect_err "timed out after 2s" "--timeout expiry explained"
kill "$hang_pid" 2>/dev/null || true
hang_pid=

# ---- version
run "$BERTH" version
expect_rc 0 "version"
expect_out "berth version " "version text"
run "$BERTH" version -o json
expect_rc 0 "version -o json"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["version"]' "$out" ||
    fail "version -o json is not JSON with a version"

# ---- build artifact (offline): default ignore set, --ignore-paths replaces, --add appends
mkdir -p "$T/src/sub" "$T/src/.git"
echo a >"$T/src/a.yaml"
echo b >"$T/src/sub/b.yaml"
echo p >"$T/src/logo.png"
echo g >"$T/src/.git/HEAD"
run "$BERTH" build artifact --path="$T/src" --output="$T/a.tgz"
expect_rc 0 "build artifact"
expect_out "sha256:" "build prints the digest"
list=$(tar tzf "$T/a.tgz" | sort | tr '\n' ' ')
[[ $list == "./ ./a.yaml ./sub/ ./sub/b.yaml " || $list == ". a.yaml sub sub/b.yaml " ]] ||
    fail "default ignore set: archive holds '$list'"
run "$BERTH" build artifact -f "$T/src" --output "$T/b.tgz" --ignore-paths=.git/
expect_rc 0 "build with --ignore-paths"
tar tzf "$T/b.tgz" >"$T/b.list" # not piped into grep -q: an early exit would SIGPIPE tar
grep -q 'logo.png' "$T/b.list" || fail "--ignore-paths did not replace the defaults"
run "$BERTH" build artifact -f "$T/src" --output "$T/c.tgz" --add-ignore-paths=sub/
expect_rc 0 "build with --add-ignore-paths"
list=$(tar tzf "$T/c.tgz" | tr '\n' ' ')
[[ $list != *sub* && $list != *logo.png* && $list == *a.yaml* ]] ||
    fail "--add-ignore-paths did not append to the defaults: '$list'"
run "$BERTH" build artifact -f "$T/src" --output "$T/d.tgz" -o json
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["digest"].startswith("sha256:")' \
    "$out" || fail "build -o json"
run "$BERTH" build artifact --path="$T/missing" --output="$T/e.tgz"
expect_rc 1 "build a missing path"
expect_err "$T/missing" "missing path is named"
[[ ! -e $T/e.tgz ]] || fail "a failed build left its output"

# ---- no progress output when stderr is not a terminal
run "$BERTH" build artifact --path="$T/src" --output="$T/f.tgz"
[[ -z $err ]] || fail "build wrote to stderr without a terminal"

if [[ $fails -ne 0 ]]; then
    echo "$fails check(s) failed" >&2
    exit 1
fi
echo "ok: berth CLI usage"
