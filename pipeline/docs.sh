#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the mm documentation of the applied tree with Sphinx (make
# htmldocs SPHINXDIRS=mm) and fail on any warning about the series' pages
# or the sources whose kernel-doc they render, or if a page lacks the API
# it is meant to render. The base's own warnings (cross references out of
# Documentation/mm, which SPHINXDIRS=mm cannot resolve) are counted only.
. "$(dirname "$0")/lib.sh"

[ -d "$APPLY_TREE" ] || die "no applied tree: run pipeline/apply.sh"
# Debian's Sphinx runs on Debian's python3, not on another one first on PATH.
sphinx=/usr/bin/sphinx-build
[ -x "$sphinx" ] || die "no $sphinx: install python3-sphinx"
out=$BUILD/docs
# Sphinx never deletes a page: a stale one would pass the checks below.
rm -rf "$out/Documentation/output"
mkdir -p "$out"
log=$LOGS/htmldocs.log
make -C "$APPLY_TREE" O="$out" SPHINXDIRS=mm SPHINXBUILD="$sphinx" PYTHON3=/usr/bin/python3 \
	htmldocs >"$log" 2>&1 || { tail -n 30 "$log"; die "make htmldocs failed"; }

# The series' pages and every file whose kernel-doc they include: no
# warning at all. The documents the series edits (the index's toctree):
# none but the references out of Documentation/mm, which SPHINXDIRS=mm
# cannot resolve and the base has already.
ours='hmm-mirror|hmm-dummy|migrate-vma|hmm_mirror|migrate_vma|hmm_dummy'
touched=$(git -C "$APPLY_TREE" diff --name-only "$BASE_TAG" HEAD -- Documentation |
	sed 's/[.[\*^$]/\\&/g' | paste -sd'|')
out_of_mm="undefined label: |unknown document: '(\.\./|/)"
if grep -E 'WARNING|ERROR|CRITICAL' "$log" | grep -E "$ours" ||
   { [ -n "$touched" ] && grep -E 'WARNING|ERROR|CRITICAL' "$log" | grep -E "$touched" |
	grep -Ev "$out_of_mm"; }; then
	die "htmldocs warns about the series' documentation (full log: $log)"
fi

# Each page renders the API its directives name.
html=$out/Documentation/output/mm
check_renders() {	# check_renders PAGE SYMBOL...
	local page=$html/$1.html sym
	shift
	[ -f "$page" ] || die "htmldocs made no $page"
	for sym in "$@"; do
		grep -q "id=\"c\.$sym\"" "$page" || die "$page does not render $sym"
	done
}
check_renders hmm-mirror hmm_mirror_register hmm_vma_fault_pfns_unlocked hmm_mirror_ops
check_renders migrate-vma migrate_vma migrate_vma_fault migrate_vma_ops
check_renders hmm-dummy hmm_dummy_cmd hmm_dummy_counters hmm_dummy_info hmm_dummy_inject
grep -q 'HMM_DUMMY_READ_UNLOCKED' "$html/hmm-dummy.html" ||
	die "$html/hmm-dummy.html does not render the commands (DOC: Commands)"
echo "htmldocs (mm): the series' pages render their API with no warning;" \
	"$(grep -c WARNING "$log") warnings of the base's own pages"
