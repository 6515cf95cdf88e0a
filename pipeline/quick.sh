#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# quick.sh FLAVOUR 'COMMANDS': the developer's loop. Copy the repo's new
# files over the last applied tree, rebuild the FLAVOUR kernel there
# incrementally, boot it and run COMMANDS (busybox sh, in /kselftest/hmm,
# with hmm_dummy loaded and swap on) instead of the suites. Needs one
# make run or make check first; the next full run resets the tree.
# QUICK_PATHS (an extended regex) limits the files copied, e.g. to run
# new tests against the kernel as it was: QUICK_PATHS=^tools/
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: quick.sh plain|check 'COMMANDS'}
cmds=${2:?usage: quick.sh plain|check 'COMMANDS'}
[ -e "$SRC_TREE/.git" ] || die "no applied tree: run make run or make check first"

take_pipeline_lock
# Start from the series as last applied (bisect may have moved the tree).
git -C "$SRC_TREE" checkout -q -f --detach "$(cat "$OUT/applied-head")"
# Fragments (*.patch) are not copied: a change to one needs a full run.
for c in "$REPO"/series/*.commit; do
	sed -n '/^---$/,$p' "$c" | sed '1d;/^[[:space:]]*$/d'
done | grep -v '\.patch$' | grep -E "${QUICK_PATHS:-.}" | while read -r f; do
	cmp -s "$REPO/$f" "$SRC_TREE/$f" || cp "$REPO/$f" "$SRC_TREE/$f"
done
"$REPO/pipeline/build.sh" "$flavour" >"$LOGS/quick-build.log" 2>&1 || {
	tail -n 30 "$LOGS/quick-build.log"
	die "the $flavour kernel does not build"
}
printf '%s\n' "$cmds" >"$OUT/quick-cmd"
"$REPO/pipeline/guest.sh" "$flavour" quick
# Runs queue on the lock: keep this one's console under a name of its own.
console=$OUT/console-quick-$(date +%Y%m%d-%H%M%S)-$$.log
cp "$OUT/console-quick.log" "$console"
echo "console: $console"
# The suites' verdict does not apply; splats and failures still count.
PYTHONPATH=$REPO/pipeline python3 - "$console" <<'PY'
import sys
import verdict
lines = open(sys.argv[1], errors="replace").read().splitlines()
splats = [l for l in lines if verdict.SPLATS.search(l)]
failed = [l for l in lines if l.lstrip("# ").startswith("not ok")]
done = any(l.startswith("@@@ GUEST DONE") for l in lines)
print(f"quick: {len(failed)} not ok, {len(splats)} splat lines, "
      f"{'finished' if done else 'DID NOT FINISH'}")
sys.exit(1 if failed or splats or not done else 0)
PY
