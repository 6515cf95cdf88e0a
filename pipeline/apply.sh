#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# git am the series onto a fresh checkout of the base, then check that the
# result is exactly the repo's files: new files byte for byte, upstream
# files equal to the base with the fragments applied.
. "$(dirname "$0")/lib.sh"

ls "$SERIES_OUT"/0001-*.patch >/dev/null 2>&1 || die "no series: run make series"
export GIT_COMMITTER_NAME=$SERIES_NAME GIT_COMMITTER_EMAIL=$SERIES_EMAIL
export GIT_COMMITTER_DATE=$SERIES_DATE

git -C "$BASE_GIT" worktree prune
[ -e "$APPLY_TREE/.git" ] ||
	git -C "$BASE_GIT" worktree add -q -f --detach "$APPLY_TREE" "$BASE_TAG" >/dev/null
cd "$APPLY_TREE"
git am --abort >/dev/null 2>&1 || true
git checkout -q -f --detach "$BASE_TAG"
git clean -q -fdx
mapfile -t patches < <(ls "$SERIES_OUT"/*.patch | grep -v /0000-cover-letter)
git am -q "${patches[@]}" || die "git am failed"

# Build the expected tree independently of the commits: base, plus every
# fragment, plus every new file taken straight from the repo.
export GIT_INDEX_FILE=$BASE_DIR/expected.index
rm -f "$GIT_INDEX_FILE"
git read-tree "$BASE_TAG"
for c in "$REPO"/series/*.commit; do
	sed -n '/^---$/,$p' "$c" | sed '1d;/^[[:space:]]*$/d'
done | while read -r f; do
	case "$f" in
	*.patch) git apply --cached "$REPO/$f" || die "fragment $f" ;;
	*) blob=$(git hash-object -w "$REPO/$f")
	   mode=100644
	   [ -x "$REPO/$f" ] && mode=100755
	   git update-index --add --cacheinfo "$mode,$blob,$f" ;;
	esac
done
expected=$(git write-tree)
unset GIT_INDEX_FILE
actual=$(git rev-parse 'HEAD^{tree}')
if [ "$expected" != "$actual" ]; then
	git diff --stat "$expected" "$actual"
	die "the applied series differs from the repo's files"
fi
echo "applied $(git rev-list --count "$BASE_TAG..HEAD") patches; tree matches the repo ($actual)"
git rev-parse HEAD >"$OUT/applied-head"
