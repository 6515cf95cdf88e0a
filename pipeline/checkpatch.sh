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

# A patch found clean is remembered by the hash of what checkpatch reads
# (the patch, the script, its word lists) and of this script (its
# options), so a warm run checks only the patches that changed; a patch
# with findings is checked every time.
stamps=$CACHE/checkpatch-clean
mkdir -p "$stamps"
tools_sum=$(cat scripts/checkpatch.pl scripts/spelling.txt scripts/const_structs.checkpatch \
	"$dict" "$REPO/pipeline/checkpatch.sh" | sha256sum | cut -d' ' -f1)
stamp_of() {	# stamp_of PATCH: the file that says PATCH was found clean
	echo "$stamps/$(sha256sum <"$1" | cut -d' ' -f1)-$tools_sum"
}
check_one() {	# check_one PATCH: findings in OUT/PATCH.checkpatch, or a stamp
	local p=$1 found=$OUT/$(basename "$1").checkpatch
	[ -e "$(stamp_of "$p")" ] && return 0
	perl scripts/checkpatch.pl --strict --codespell --codespellfile="$dict" \
		--no-tree --quiet "$p" >"$found" 2>&1 && [ ! -s "$found" ] &&
		touch "$(stamp_of "$p")"
	return 0
}
export -f stamp_of check_one
export dict stamps tools_sum OUT

bad=0
patches=$(ls "$SERIES_OUT"/0*.patch | grep -v '/0000-cover-letter\.patch$') ||
	die "no patches in $SERIES_OUT"
# shellcheck disable=SC2086
printf '%s\n' $patches | xargs -P "$JOBS" -I{} bash -c 'check_one "$1"' _ {} ||
	die "checkpatch could not run on every patch"
for p in $patches; do
	found=$OUT/$(basename "$p").checkpatch
	if [ ! -e "$(stamp_of "$p")" ]; then
		echo "checkpatch: $(basename "$p")"
		cat "$found"
		bad=1
	fi
	rm -f "$found"
done

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
