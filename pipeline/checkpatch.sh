#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# checkpatch --strict (with codespell) on every patch of the series, and
# kernel-doc -Wall on every C file and header the series adds. Any
# error, warning or check fails.
. "$(dirname "$0")/lib.sh"

[ -d "$APPLY_TREE" ] || die "no applied tree: run pipeline/apply.sh"
cd "$APPLY_TREE"
dict=/usr/lib/python3/dist-packages/codespell_lib/data/dictionary.txt
[ -f "$dict" ] || die "no codespell dictionary at $dict: install codespell"

bad=0
for p in "$SERIES_OUT"/0*.patch; do
	case "$p" in */0000-cover-letter.patch) continue ;; esac
	if ! perl scripts/checkpatch.pl --strict --codespell --codespellfile="$dict" \
		--no-tree --quiet "$p" >"$OUT/checkpatch.tmp" 2>&1 ||
	   [ -s "$OUT/checkpatch.tmp" ]; then
		echo "checkpatch: $(basename "$p")"
		cat "$OUT/checkpatch.tmp"
		bad=1
	fi
done
rm -f "$OUT/checkpatch.tmp"

files=$(git diff --name-only --diff-filter=A "$BASE_TAG" HEAD -- '*.c' '*.h')
# kernel-doc is a Perl script up to 6.x, a Python one since.
kdoc=(perl scripts/kernel-doc)
head -n1 scripts/kernel-doc | grep -q python && kdoc=(python3 scripts/kernel-doc)
# shellcheck disable=SC2086
if ! "${kdoc[@]}" -none -Wall $files >"$OUT/kdoc.tmp" 2>&1 || [ -s "$OUT/kdoc.tmp" ]; then
	echo "kernel-doc:"
	cat "$OUT/kdoc.tmp"
	bad=1
fi
rm -f "$OUT/kdoc.tmp"
[ $bad -eq 0 ] || die "static checks found problems"
echo "checkpatch --strict: $(ls "$SERIES_OUT" | grep -vc 0000-cover) patches clean; kernel-doc: $(wc -w <<<"$files") files clean"
