# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the pipeline scripts: paths, banners, logged stages.
# Sourced, never run.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${HMM_SERIES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hmm-series}
OUT=$REPO/out
LOGS=$OUT/logs
SERIES_OUT=$OUT/series
# The base kernel: a Debian linux-source-X.Y package. HMM_BASE_PKG picks
# one to try; otherwise the newest the archive carries, which base.sh
# detects and records in $CACHE/base-pkg. Each base keeps its own trees,
# so going back and forth stays incremental.
base_paths() {
	BASE_PKG=${HMM_BASE_PKG:-$(cat "$CACHE/base-pkg" 2>/dev/null || echo none)}
	BASE_DIR=$CACHE/$BASE_PKG
	BASE_GIT=$BASE_DIR/kernel.git	# bare repo holding the base commit
	APPLY_TREE=$BASE_DIR/apply	# worktree where the series is git am'd
	SRC_TREE=$BASE_DIR/src		# worktree the kernels are built from
	BUILD=$BASE_DIR/build		# O= build trees, one per flavour
	GEN=$BASE_DIR/gen		# worktree where series.sh makes the commits
}
JOBS=${JOBS:-$(($(nproc) + 1))}
BASE_TAG=base

# Fixed identity and dates make the series byte-identical from the same input.
SERIES_NAME="HMM Series Developers"
SERIES_EMAIL="hmm-series@users.noreply.example"
SERIES_DATE="2026-11-22T00:00:00+0000"

export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export LC_ALL=C

mkdir -p "$CACHE" "$LOGS"
base_paths

die() {
	echo "error: $*" >&2
	exit 1
}

# take_pipeline_lock: one job at a time on the shared trees (main.sh and
# quick.sh). Once we hold it, no other pipeline git runs on the caches, so
# any git lock file left there is from a job that was killed mid-command
# (the end of a session, a timeout): without this, every later run stops at
# "index.lock: File exists".
take_pipeline_lock() {
	exec 9>"$CACHE/quick.lock"
	flock 9
	find "$CACHE" -mindepth 3 -maxdepth 7 -path '*/kernel.git/*' \
		-name '*.lock' -type f -print -delete |
		sed 's/^/removed a stale git lock: /'
}

# stage NAME CMD...: run CMD with its output in $LOGS/NAME.log, print a
# banner with the elapsed time, and show the log's tail when it fails.
stage() {
	local name=$1 start rc
	shift
	start=$(date +%s)
	printf '==> %-22s ' "$name"
	set +e
	("$@") >"$LOGS/$name.log" 2>&1
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		printf 'FAILED after %ss (log: %s)\n' "$(($(date +%s) - start))" "$LOGS/$name.log"
		tail -n 40 "$LOGS/$name.log" | sed 's/^/    /'
		exit $rc
	fi
	printf 'done in %ss\n' "$(($(date +%s) - start))"
}

base_version() {
	git -C "$BASE_GIT" show "$BASE_TAG:Makefile" |
		awk '/^VERSION =/{v=$3} /^PATCHLEVEL =/{p=$3} /^SUBLEVEL =/{s=$3}
		     END{print v "." p "." s}'
}

fragment_file() {	# fragment_file series/NN-x/PATH.patch: the PATH it changes
	local f=${1#series/*/}
	echo "${f%.patch}"
}

# config_survives TREE CONFIG SRCARCH FRAGMENT...: every option a fragment
# asks for must have survived olddefconfig into CONFIG, unless the source
# TREE does not know it for SRCARCH (an early commit of the series, or
# another architecture's option).
config_survives() {
	local tree=$1 config=$2 srcarch=$3 known f line sym want
	shift 3
	known=$(find "$tree" -name 'Kconfig*' -not -path '*/.git/*' \
		\( -not -path "$tree/arch/*" -o -path "$tree/arch/$srcarch/*" \) -print0 |
		xargs -0 sed -nE 's/^[[:space:]]*(menu)?config[[:space:]]+([A-Za-z0-9_]+).*/CONFIG_\2/p' |
		sort -u)
	for f in "$@"; do
		{ grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set)' "$f" || true; } |
		while read -r line; do
			sym=$(sed -E 's/^# (CONFIG_[A-Za-z0-9_]+) is not set/\1/; s/=.*//' <<<"$line")
			grep -qxF "$sym" <<<"$known" || continue
			want=$line
			[[ $line == \#* ]] && want="# $sym is not set"
			grep -qxF "$want" "$config" ||
				{ [[ $line == \#* ]] && ! grep -q "^$sym=" "$config"; } ||
				die "$f asks for '$line' but $config has '$(grep "^$sym=\|^# $sym " "$config")'"
		done
	done
}

# The version of the newest clang-N installed (deps.sh installs the newest
# the archive has), or nothing.
robot_clang_version() {
	find /usr/bin -maxdepth 1 -name 'clang-[0-9]*' -printf '%f\n' |
		sed -nE 's/^clang-([0-9]+)$/\1/p' | sort -n | tail -n 1
}
