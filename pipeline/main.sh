#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# main.sh run|check|series|bench|robot|pristine: the jobs behind the Makefile's
# targets, as logged stages with their elapsed times.
. "$(dirname "$0")/lib.sh"

P=$REPO/pipeline
job=${1:?usage: main.sh run|check|series|bench|robot|pristine|move}
t0=$(date +%s)
echo "hmm-series $job: logs in $LOGS, caches in $CACHE"
take_pipeline_lock

prepare() {
	stage deps "$P/deps.sh"
	stage base "$P/base.sh"
	# base.sh has just recorded which base it made: look again.
	base_paths
	stage series "$P/series.sh"
	echo "    series: $(ls "$SERIES_OUT" | wc -l) files in $SERIES_OUT, base Linux $(base_version)"
}

verdict() {	# verdict MODE [verdict.py options]
	local mode=$1 rc=0
	shift
	python3 "$P/verdict.py" "$OUT/console-$mode.log" "$@" | tee "$OUT/verdict-$mode.txt" || rc=$?
	if [ $rc -ne 0 ]; then
		echo "---- last lines of the console ($OUT/console-$mode.log)"
		grep -v '^@@@' "$OUT/console-$mode.log" | tail -n 25
	fi
	return $rc
}

finish() {	# finish MODE: judge the guest's console, print the total, exit
	local rc=0
	verdict "$1" --pristine "$P/pristine/hmm-tests.txt" || rc=$?
	echo "==> total $(($(date +%s) - t0))s"
	exit $rc
}

case "$job" in
series)
	prepare
	;;
run)
	prepare
	stage apply "$P/apply.sh"
	stage build-plain "$P/build.sh" plain "$(cat "$OUT/applied-head")"
	stage guest-plain "$P/guest.sh" plain run
	finish run
	;;
check)
	prepare
	stage apply "$P/apply.sh"
	stage checkpatch "$P/checkpatch.sh"
	stage docs "$P/docs.sh"
	stage bisect "$P/bisect.sh"
	stage warnings "$P/warnings.sh"
	stage robot "$P/robot.sh" reduced
	sed -n 's/^robot: /    /p' "$LOGS/robot.log"
	stage build-check "$P/build.sh" check "$(cat "$OUT/applied-head")"
	stage guest-check "$P/guest.sh" check check
	finish check
	;;
bench)
	prepare
	stage apply "$P/apply.sh"
	stage build-plain "$P/build.sh" plain "$(cat "$OUT/applied-head")"
	# Instructions first, the figures of record; wall-clock for reference.
	stage guest-icount "$P/guest.sh" plain bench
	stage guest-wall "$P/guest.sh" plain benchwall
	for mode in bench benchwall; do
		sed -n 's/^bench: //p' "$OUT/console-$mode.log"
	done | tee "$OUT/bench.txt"
	echo "==> total $(($(date +%s) - t0))s"
	for mode in bench benchwall; do
		grep -q "^@@@ END $mode rc=0 " "$OUT/console-$mode.log" ||
			die "the benchmark failed: see $OUT/console-$mode.log"
	done
	;;
robot)
	prepare
	stage apply "$P/apply.sh"
	stage robot "$P/robot.sh" full
	sed -n 's/^robot: /    /p' "$LOGS/robot.log"
	echo "==> total $(($(date +%s) - t0))s"
	;;
pristine)
	prepare
	# The same config as the series' kernels, less the series' own options.
	HMM_SELFTEST_CONFIG=$BASE_DIR/pristine-selftests.config
	cp "$GEN/tools/testing/selftests/hmm/config" "$HMM_SELFTEST_CONFIG"
	export HMM_SELFTEST_CONFIG
	stage build-plain "$P/build.sh" plain "$BASE_TAG"
	stage guest-pristine "$P/guest.sh" plain pristine
	mkdir -p "$P/pristine"
	python3 "$P/verdict.py" "$OUT/console-pristine.log" --record "$P/pristine/hmm-tests.txt"
	;;
move)
	stage deps "$P/deps.sh"
	"$P/move.sh" "${2:?usage: make move TO=linux-source-X.Y}"
	;;
*)
	die "unknown job $job"
	;;
esac
