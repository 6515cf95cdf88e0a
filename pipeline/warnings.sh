#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Rebuild the series' own kernel objects with W=1 and sparse (C=2 checks
# them even when up to date); any warning in our files fails.
. "$(dirname "$0")/lib.sh"

head=$(cat "$OUT/applied-head")
[ "$(git -C "$SRC_TREE" rev-parse HEAD)" = "$head" ] || die "build the series first"
ours=$(git -C "$SRC_TREE" diff --name-only --diff-filter=A "$BASE_TAG" HEAD -- '*.c' '*.h' |
	grep -v '^tools/' || true)
objs=$(grep '\.c$' <<<"$ours" | sed 's/\.c$/.o/' || true)
[ -n "$objs" ] || { echo "no kernel C files in the series"; exit 0; }

sparse=$("$REPO/pipeline/sparse.sh") || die "no sparse that this base accepts"
echo "sparse: $sparse ($("$sparse" --version))"
# shellcheck disable=SC2086
make -C "$SRC_TREE" O="$BUILD/plain" -j"$JOBS" CC="ccache gcc" W=1 C=2 CHECK="$sparse" $objs \
	>"$OUT/warnings.tmp" 2>&1 || { cat "$OUT/warnings.tmp"; die "W=1 C=2 build failed"; }
# The kernel skips the checker with only a warning when it finds it unusable.
if grep -q 'is not available or not up to date' "$OUT/warnings.tmp"; then
	cat "$OUT/warnings.tmp"
	die "the kernel did not run sparse"
fi
checked=$(grep -c '^  CHECK ' "$OUT/warnings.tmp" || true)
[ "$checked" -ge "$(wc -w <<<"$objs")" ] ||
	die "sparse checked $checked files, the series has $(wc -w <<<"$objs") objects"
pattern=$(sed 's/[.[\*^$]/\\&/g' <<<"$ours" | paste -sd'|')
if grep -E "($pattern)(:[0-9]+)+: (warning|error|note)" "$OUT/warnings.tmp"; then
	die "W=1 or sparse warns in our files"
fi
echo "W=1 and sparse: no warning in $(wc -l <<<"$ours") files ($(wc -w <<<"$objs") objects)"
