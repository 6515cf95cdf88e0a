#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the plain kernel at every commit of the applied series, in order,
# in one build tree: each step is incremental, and the last one leaves the
# plain kernel of the whole series behind.
. "$(dirname "$0")/lib.sh"

head=$(cat "$OUT/applied-head" 2>/dev/null) || die "no applied series: run pipeline/apply.sh"
for rev in $(git -C "$BASE_GIT" rev-list --reverse "$BASE_TAG..$head"); do
	subject=$(git -C "$BASE_GIT" log -1 --format=%s "$rev")
	start=$(date +%s)
	"$REPO/pipeline/build.sh" plain "$rev" >"$LOGS/bisect-$rev.log" 2>&1 || {
		tail -n 30 "$LOGS/bisect-$rev.log"
		die "the series does not build at '$subject' ($rev)"
	}
	echo "builds: $subject ($(($(date +%s) - start))s)"
done
