#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Turn the repo into a git format-patch series in out/series/.
#
# series/NN-*.commit describe the commits in order: the commit message, a
# line "---", then the repo files the commit carries, one per line. A
# fragment (a git diff against an upstream file, applied with git apply)
# lives in the commit's own folder, series/NN-*/, at the path of the file
# it changes plus ".patch"; any other file is a new file at its kernel path.
. "$(dirname "$0")/lib.sh"


# Repo paths that drive the pipeline and are not part of the series: all
# but the fragments in the commits' folders.
NOT_SERIES='^(README\.md|Makefile|\.gitignore|\.ci/|pipeline/|series/[^/]+$)'

commit_files() {	# the file list of one .commit file
	sed -n '/^---$/,$p' "$1" | sed '1d;/^[[:space:]]*$/d'
}

commit_message() {
	sed '/^---$/,$d' "$1"
}

check_ownership() {	# every series file belongs to exactly one commit
	local listed owned
	listed=$(for c in "$REPO"/series/*.commit; do commit_files "$c"; done | sort)
	owned=$(cd "$REPO" && { git ls-files; git ls-files -o --exclude-standard; } |
		grep -Ev "$NOT_SERIES" | sort -u)
	dup=$(uniq -d <<<"$listed")
	[ -z "$dup" ] || die "listed by more than one commit: $dup"
	extra=$(comm -13 <(echo "$listed") <(echo "$owned"))
	[ -z "$extra" ] || die "in no commit: $extra"
	missing=$(comm -23 <(echo "$listed") <(echo "$owned"))
	[ -z "$missing" ] || die "listed but missing: $missing"
	local c folder misplaced
	for c in "$REPO"/series/*.commit; do
		folder=series/$(basename "$c" .commit)/
		misplaced=$(commit_files "$c" | awk -v d="$folder" '
			/\.patch$/ ? index($0, d) != 1 : /^series\//')
		[ -z "$misplaced" ] || die "$(basename "$c"): a fragment must be in $folder," \
			"any other file outside series/: $misplaced"
	done
	local f changed
	while IFS= read -r f; do
		# What git apply would touch, not what the diff headers claim.
		changed=$(cd "$REPO" && git apply --numstat "$f" | cut -f3- | sort -u)
		[ "$changed" = "$(fragment_file "$f")" ] ||
			die "$f must change $(fragment_file "$f") alone, not: $changed"
		[ -z "$(cd "$REPO" && git apply --summary "$f")" ] ||
			die "$f creates, deletes or renames a file: new files live at their paths"
	done < <(grep '\.patch$' <<<"$listed" || true)
}

add_commit() {	# apply one .commit file on top of $GEN's HEAD and commit it
	local c=$1 f n=$2
	commit_files "$c" | while read -r f; do
		case "$f" in
		*.patch) git -C "$GEN" apply --index "$REPO/$f" ||
				die "$f does not apply ($(basename "$c"))" ;;
		*) mkdir -p "$GEN/$(dirname "$f")"
		   cp "$REPO/$f" "$GEN/$f"
		   git -C "$GEN" add -f "$f" ;;
		esac
	done
	# One minute apart so the series reads in order in a mail client.
	local date
	date=$(date -u -d "$SERIES_DATE + $n minutes" +%Y-%m-%dT%H:%M:%S+0000)
	GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date \
		git -C "$GEN" commit -q --cleanup=verbatim -F <(commit_message "$c")
}

fill_cover_letter() {
	local cover=$1 ver pkgver subject
	ver=$(base_version)
	pkgver=$(cat "$BASE_GIT/hmm-base-pkg")
	subject=$(head -n1 "$REPO/series/cover-letter")
	sed '1,2d' "$REPO/series/cover-letter" |
		sed "s/@BASE_VERSION@/$ver/g; s/@BASE_PACKAGE@/$pkgver/g; s/@BASE_PACKAGE_NAME@/$BASE_PKG/g" >"$OUT/blurb"
	SUBJECT=$subject BLURB="$OUT/blurb" perl -0pi -e '
		s/\*\*\* SUBJECT HERE \*\*\*/$ENV{SUBJECT}/;
		open(my $fh, "<", $ENV{BLURB}) or die; local $/; my $b = <$fh>;
		$b =~ s/\n+$//;
		s/\*\*\* BLURB HERE \*\*\*/$b/;' "$cover"
	rm -f "$OUT/blurb"
}

check_ownership
[ -d "$BASE_GIT" ] || die "no base repo: run pipeline/base.sh"
export GIT_AUTHOR_NAME=$SERIES_NAME GIT_AUTHOR_EMAIL=$SERIES_EMAIL
export GIT_COMMITTER_NAME=$SERIES_NAME GIT_COMMITTER_EMAIL=$SERIES_EMAIL
git -C "$BASE_GIT" worktree prune
[ -e "$GEN/.git" ] || git -C "$BASE_GIT" worktree add -q -f --detach "$GEN" "$BASE_TAG" >/dev/null
git -C "$GEN" checkout -q -f --detach "$BASE_TAG"
git -C "$GEN" clean -q -fdx

n=0
for c in "$REPO"/series/*.commit; do
	n=$((n + 1))
	add_commit "$c" "$n"
done

rm -rf "$SERIES_OUT"
GIT_COMMITTER_DATE=$SERIES_DATE git -C "$GEN" format-patch -q --cover-letter \
	--no-signature --base="$BASE_TAG" -o "$SERIES_OUT" "$BASE_TAG..HEAD"
fill_cover_letter "$SERIES_OUT"/0000-cover-letter.patch
git -C "$GEN" rev-parse HEAD >"$OUT/series-head"
ls "$SERIES_OUT"
