#!/usr/bin/env bash
# Lint: clang-format (the repository's .clang-format) and the banned-function list of
# docs/style (strcpy, sprintf, atoi, system, ...), over every tracked C file.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
[ ${#files[@]} -gt 0 ] || { echo "lint: no C files found" >&2; exit 1; }
status=0
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/berth-lint.$$; then
  sed -n 1,40p /tmp/berth-lint.$$ >&2
  echo "lint: clang-format differences (run clang-format -i on the files above)" >&2
  status=1
fi
rm -f /tmp/berth-lint.$$
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|gmtime|localtime|rand|system|popen|alloca)[[:space:]]*\('
if grep -nE "$banned" "${files[@]}" | grep -vE '^\S+:[0-9]+:\s*(\*|//|/\*)'; then
  echo "lint: banned functions used (see the list in scripts/lint.sh)" >&2
  status=1
fi
[ $status -eq 0 ] && echo "lint: ${#files[@]} files clean"
exit $status
