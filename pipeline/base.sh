#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Turn Debian's linux-source-6.12 tarball into a git repo tagged "base".
# Kept in the cache and redone only when the package version changes.
. "$(dirname "$0")/lib.sh"

tarball=$(ls /usr/src/linux-source-6.12*.tar.xz 2>/dev/null | head -n1)
[ -n "$tarball" ] || die "no /usr/src/linux-source-6.12*.tar.xz: run pipeline/deps.sh"
pkgver=$(dpkg-query -W -f='${Version}' linux-source-6.12)

if [ -f "$BASE_GIT/hmm-base-pkg" ] && [ "$(cat "$BASE_GIT/hmm-base-pkg")" = "$pkgver" ]; then
	echo "base repo up to date: linux-source-6.12 $pkgver, Linux $(base_version)"
	exit 0
fi

rm -rf "$BASE_GIT" "$APPLY_TREE" "$SRC_TREE" "$CACHE/extract"
mkdir -p "$CACHE/extract"
tar -C "$CACHE/extract" -xf "$tarball"
top=$(ls "$CACHE/extract")
git init -q --bare "$BASE_GIT"
export GIT_DIR=$BASE_GIT GIT_WORK_TREE=$CACHE/extract/$top
export GIT_AUTHOR_NAME="Debian linux-source-6.12" GIT_AUTHOR_EMAIL="debian-kernel@lists.debian.org"
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
export GIT_AUTHOR_DATE=$SERIES_DATE GIT_COMMITTER_DATE=$SERIES_DATE
git config core.autocrlf false
git config gc.auto 0
# The tarball's own .gitignore ignores everything: force-add the lot.
git add -f -A
git commit -q -m "Linux from Debian linux-source-6.12 $pkgver"
git tag -f "$BASE_TAG" >/dev/null
unset GIT_DIR GIT_WORK_TREE
rm -rf "$CACHE/extract"
ver=$(base_version)
git -C "$BASE_GIT" tag -f "v$ver-debian" >/dev/null
echo "$pkgver" >"$BASE_GIT/hmm-base-pkg"
echo "base repo made: linux-source-6.12 $pkgver, Linux $ver"
