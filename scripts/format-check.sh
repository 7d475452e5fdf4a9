#!/usr/bin/env bash
# Fails, listing the files, when any C++ source differs from what clang-format would write.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r file; do
  if ! clang-format --dry-run --Werror "$file" >/dev/null 2>&1; then
    bad+=("$file")
  fi
done < <(git ls-files '*.cc' '*.h')
if ((${#bad[@]} > 0)); then
  echo "format-check: these files need clang-format (run 'make format'):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format-check: all C++ files are formatted"
