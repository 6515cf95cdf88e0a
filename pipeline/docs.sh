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
mkdir -p "$out"
log=$LOGS/htmldocs.log
make -C "$APPLY_TREE" O="$out" SPHINXDIRS=mm SPHINXBUILD="$sphinx" PYTHON3=/usr/bin/python3 \
	htmldocs >"$log" 2>&1 || { tail -n 30 "$log"; die "make htmldocs failed"; }

# The series' pages and every file whose kernel-doc they include.
ours='hmm-mirror\.rst|hmm-dummy\.rst|migrate-vma\.rst|hmm_mirror|migrate_vma|hmm_dummy|hmm-dummy'
if grep -E 'WARNING|ERROR|CRITICAL' "$log" | grep -E "$ours"; then
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
echo "htmldocs (mm): the series' pages render their API with no warning;" \
	"$(grep -c WARNING "$log") warnings of the base's own pages"
