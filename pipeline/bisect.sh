#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the plain kernel at every commit of the applied series, in order,
# in one build tree: each step is incremental, and the last one leaves the
# plain kernel of the whole series behind.
#
# Every commit is configured with the series' final config fragments, so
# that the driver is built from the commit that adds it on. The core's
# options are selected by drivers only, so the commits before the driver
# would build none of their own code: each commit's new C files are also
# compiled one by one. A commit that changes nothing the kernel build
# reads (only tools/, Documentation/, MAINTAINERS) builds what the commit
# before it built, and is not built again.
. "$(dirname "$0")/lib.sh"

head=$(cat "$OUT/applied-head" 2>/dev/null) || die "no applied series: run pipeline/apply.sh"
selftest_config=$BASE_DIR/bisect-selftests.config
git -C "$BASE_GIT" show "$head:tools/testing/selftests/hmm/config" >"$selftest_config" 2>/dev/null ||
	: >"$selftest_config"
export HMM_SELFTEST_CONFIG=$selftest_config

for rev in $(git -C "$BASE_GIT" rev-list --reverse "$BASE_TAG..$head"); do
	subject=$(git -C "$BASE_GIT" log -1 --format=%s "$rev")
	kernel_files=$(git -C "$BASE_GIT" diff --name-only "$rev^" "$rev" |
		grep -Ev '^(tools/|Documentation/|MAINTAINERS$)' || true)
	if [ -z "$kernel_files" ]; then
		echo "builds: $subject (changes no kernel file: built as the commit before)"
		continue
	fi
	start=$(date +%s)
	"$REPO/pipeline/build.sh" plain "$rev" >"$LOGS/bisect-$rev.log" 2>&1 || {
		tail -n 30 "$LOGS/bisect-$rev.log"
		die "the series does not build at '$subject' ($rev)"
	}
	objs=$(git -C "$BASE_GIT" diff --name-only --diff-filter=A "$rev^" "$rev" -- '*.c' |
		grep -v '^tools/' | sed 's/\.c$/.o/' || true)
	if [ -n "$objs" ]; then
		# shellcheck disable=SC2086
		make -C "$SRC_TREE" O="$BUILD/plain" -j"$JOBS" CC="ccache gcc" $objs \
			>>"$LOGS/bisect-$rev.log" 2>&1 || {
			tail -n 30 "$LOGS/bisect-$rev.log"
			die "the new files of '$subject' do not compile ($rev)"
		}
	fi
	echo "builds: $subject ($(($(date +%s) - start))s; new objects: $(echo $objs))"
done
# The commits skipped at the end changed no kernel file: only move the tree.
git -C "$SRC_TREE" checkout -q -f --detach "$head"
