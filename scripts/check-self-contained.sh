#!/usr/bin/env bash
# Fails when a tracked file (code, tests, benches, scripts, CI) reaches outside the repository:
# a path through the shared folder or the tool library beside the checkout, an absolute path into the
# development machine's work folder, or a symbolic link that leaves the tree. Documentation
# (*.md) may name the workplace's reference script for people to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
hits=$(git ls-files -z -- ':!*.md' ':!scripts/check-self-contained.sh' \
    | xargs -0 grep -nIE '\.\./(shared|\.library)|/work/' 2>/dev/null || true)
if [ -n "$hits" ]; then
    echo "error: these tracked files reach outside the repository:" >&2
    echo "$hits" >&2
    status=1
fi
while IFS= read -r -d '' link; do
    target=$(readlink -f -- "$link" || true)
    case "$target" in
        "$PWD"/*) ;;
        *) echo "error: symbolic link $link points outside the repository ($target)" >&2; status=1 ;;
    esac
done < <(git ls-files -z | while IFS= read -r -d '' f; do [ -L "$f" ] && printf '%s\0' "$f"; done)
[ "$status" -eq 0 ] && echo "self-contained: no tracked file reaches outside the repository"
exit "$status"
