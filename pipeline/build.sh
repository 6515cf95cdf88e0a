#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# build.sh FLAVOUR [REV]: build the kernel and modules of FLAVOUR (plain or
# check) from $SRC_TREE, first moving it to REV when given. The build tree
# $BUILD/FLAVOUR is kept between runs; git checkout only rewrites the files
# that changed, so the build stays incremental.
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: build.sh plain|check [REV]}
rev=${2:-}
[ -f "$REPO/pipeline/kconfig/$flavour.config" ] || die "unknown flavour $flavour"
out=$BUILD/$flavour

git -C "$BASE_GIT" worktree prune
[ -e "$SRC_TREE/.git" ] ||
	git -C "$BASE_GIT" worktree add -q -f --detach "$SRC_TREE" "$BASE_TAG" >/dev/null
if [ -n "$rev" ]; then
	git -C "$SRC_TREE" checkout -q -f --detach "$rev"
fi

# Everything that could leak the host or the time into the image is fixed,
# so that ccache hits across runs.
export KBUILD_BUILD_TIMESTAMP="$SERIES_DATE" KBUILD_BUILD_USER=hmm KBUILD_BUILD_HOST=qemu
KMAKE=(make -C "$SRC_TREE" O="$out" -j"$JOBS" CC="ccache gcc" HOSTCC="ccache gcc")

fragments=("$REPO/pipeline/kconfig/qemu.config" "$REPO/pipeline/kconfig/$flavour.config")
# HMM_SELFTEST_CONFIG: another copy of the selftests' config (bisect.sh
# gives the final one to every commit).
selftest_config=${HMM_SELFTEST_CONFIG:-$SRC_TREE/tools/testing/selftests/hmm/config}
[ -f "$selftest_config" ] && fragments+=("$selftest_config")

mkdir -p "$out"
"${KMAKE[@]}" -s tinyconfig
"$SRC_TREE/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >/dev/null
"${KMAKE[@]}" -s olddefconfig

config_survives "$SRC_TREE" "$out/.config" x86 "${fragments[@]}"

"${KMAKE[@]}" bzImage modules
"${KMAKE[@]}" -s headers
echo "built $flavour kernel $(cat "$out/include/config/kernel.release") at $(git -C "$SRC_TREE" rev-parse --short HEAD)"
