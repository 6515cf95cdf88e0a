#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# move.sh PACKAGE: move the series onto another base, e.g. the next
# linux-source-X.Y, and rewrite the repo's files from the result.
#
# 1. The series is made on the current base and the new base is fetched.
# 2. Its patches are git am'd with a three-way merge onto the new base, in
#    the worktree $CACHE/PACKAGE/move. A conflict stops here: resolve it
#    there, "git am --continue", and run this again. The same goes for
#    code that needs changes to build on the new base: amend the commit
#    that owns the file (git rebase -i in that tree), then run this again.
# 3. With the whole series applied there, every fragment is regenerated
#    as the diff its commit makes to its file, chained fragments included,
#    and every new file is copied back from its commit.
#
# HMM_BASE_PKG=PACKAGE then selects the new base for every other target;
# without it the pipeline takes the newest package of the archive.
. "$(dirname "$0")/lib.sh"

to=${1:?usage: move.sh linux-source-X.Y}
from=$BASE_PKG
[ "$to" != "$from" ] || die "the series is on $from already"

commit_files() {
	sed -n '/^---$/,$p' "$1" | sed '1d;/^[[:space:]]*$/d'
}

move_tree=$CACHE/$to/move
commits=$(ls "$REPO"/series/*.commit | wc -l)

if [ ! -e "$move_tree/.git" ]; then
	"$REPO/pipeline/series.sh" >/dev/null
	patches=("$SERIES_OUT"/0*.patch)
	HMM_BASE_PKG=$to "$REPO/pipeline/base.sh"
	HMM_BASE_PKG=$to base_paths
	# git am -3 finds each patch's preimage blobs in the old base.
	echo "$CACHE/$from/kernel.git/objects" >"$BASE_GIT/objects/info/alternates"
	git -C "$BASE_GIT" worktree prune
	git -C "$BASE_GIT" worktree add -q -f --detach "$move_tree" "$BASE_TAG"
	export GIT_COMMITTER_NAME=$SERIES_NAME GIT_COMMITTER_EMAIL=$SERIES_EMAIL
	mapfile -t patches < <(printf '%s\n' "${patches[@]}" | grep -v /0000-cover-letter)
	git -C "$move_tree" am -3 "${patches[@]}" || {
		echo
		echo "The series does not apply cleanly onto $to. In $move_tree:"
		echo "resolve the conflicts, git add -f them (the tarball's .gitignore ignores"
		echo "everything), git am --continue, then run"
		echo "this again to rewrite the repo's files."
		exit 1
	}
fi

cd "$move_tree"
[ ! -d "$(git rev-parse --git-path rebase-apply)" ] ||
	die "git am is still in progress in $move_tree: finish it first"
[ ! -d "$(git rev-parse --git-path rebase-merge)" ] ||
	die "a rebase is still in progress in $move_tree: finish it first"
mapfile -t revs < <(git rev-list --reverse base..HEAD)
[ "${#revs[@]}" -eq "$commits" ] ||
	die "$move_tree has ${#revs[@]} commits above base, the series $commits"

# Every path a commit of the move tree changes must be one of its files or
# the target of one of its fragments: a fixup that reached another file
# would be dropped silently.
n=0
for c in "$REPO"/series/*.commit; do
	rev=${revs[$n]}
	n=$((n + 1))
	extra=$(comm -13 <(commit_files "$c" | while read -r f; do
			case "$f" in *.patch) fragment_file "$f" ;; *) echo "$f" ;; esac
		done | sort) <(git diff --name-only "$rev^" "$rev" | sort))
	[ -z "$extra" ] || die "$(basename "$c") in $move_tree also changes: $extra;" \
		"add series/$(basename "$c" .commit)/PATH.patch (or the new file) to it, then run again"
done

n=0
for c in "$REPO"/series/*.commit; do
	rev=${revs[$n]}
	n=$((n + 1))
	commit_files "$c" | while read -r f; do
		case "$f" in
		*.patch)
			target=$(fragment_file "$f")
			git diff "$rev^" "$rev" -- "$target" >"$REPO/$f"
			[ -s "$REPO/$f" ] || die "$(basename "$c") no longer changes $target ($f)"
			;;
		*)
			git show "$rev:$f" >"$REPO/$f" || die "$f is not in $(basename "$c")"
			;;
		esac
	done
done
[ -n "${HMM_BASE_PKG:-}" ] || echo "$to" >"$CACHE/base-pkg"
echo "moved from $from to $to: the repo's files are rewritten from $move_tree"
echo "(git diff shows what changed). Remove that tree before the next move."
