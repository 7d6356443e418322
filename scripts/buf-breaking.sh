#!/usr/bin/env bash
# Checks that the protos break nothing published (`buf breaking`, FILE rules from buf.yaml):
# names may be added, never renamed, removed, renumbered or retyped within gryning.v1.
#
# What it compares against:
# - on a branch other than main: the commit where the branch left main (the merge base with
#   main, or with origin/main in a clone that has no local main), so that only this branch's
#   own changes are judged, however far main has moved since;
# - on main itself (as CI runs it in a fresh clone of main): the previous commit, HEAD~1 (for
#   a merge, the main it was merged into);
# - GRYNING_BUF_AGAINST=<commit> overrides both;
# and then against every earlier commit that changed proto/, since each was published.
# The protos of that commit are taken with `git archive`, so this works in a plain clone, a
# worktree and a detached checkout alike. Usage: scripts/buf-breaking.sh BUF_BINARY
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

buf="${1:?usage: scripts/buf-breaking.sh BUF_BINARY (from scripts/install-buf.sh)}"

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "buf breaking: not a git checkout, so there is no published state to compare with" >&2
  exit 1
fi

if [[ -n "${GRYNING_BUF_AGAINST:-}" ]]; then
  against="$GRYNING_BUF_AGAINST"
  why="GRYNING_BUF_AGAINST"
else
  branch="$(git rev-parse --abbrev-ref HEAD)"
  main=""
  for candidate in main origin/main; do
    if git rev-parse --verify --quiet "$candidate^{commit}" >/dev/null; then
      main="$candidate"
      break
    fi
  done
  if [[ -z "$main" ]]; then
    echo "buf breaking: no main or origin/main to compare with; run 'git fetch origin main'" >&2
    exit 1
  fi
  if [[ "$branch" == "main" ]] || [[ "$(git rev-parse HEAD)" == "$(git rev-parse "$main")" ]]; then
    if ! git rev-parse --verify --quiet "HEAD~1^{commit}" >/dev/null; then
      if [[ "$(git rev-parse --is-shallow-repository)" == "true" ]]; then
        echo "buf breaking: a shallow clone has no previous commit; run 'git fetch --deepen=1'" >&2
        exit 1
      fi
      echo "buf breaking: the first commit has nothing published before it; nothing to compare"
      exit 0
    fi
    against="$(git rev-parse HEAD~1)"
    why="the previous commit of main"
  else
    if ! against="$(git merge-base HEAD "$main")"; then
      echo "buf breaking: this branch shares no history with $main; run 'git fetch --unshallow'" >&2
      exit 1
    fi
    why="where this branch left $main"
  fi
fi

# Not only that commit: every earlier state of proto/ is a published state, so the protos are
# checked against each commit before it that changed proto/. A rename made and merged in a
# series of commits is caught however many commits came after it.
states=("$against")
while read -r commit; do
  [[ "$commit" != "$against" ]] && states+=("$commit")
done < <(git rev-list "$against" -- proto)

published="$(mktemp -d)"
trap 'rm -rf "$published"' EXIT
for state in "${states[@]}"; do
  if ! git cat-file -e "$state:proto" 2>/dev/null; then
    continue
  fi
  rm -rf "${published:?}/proto"
  git archive "$state" proto | tar -x -C "$published"
  # The published protos are read as a module rooted at proto/, as buf.yaml reads ours.
  if ! "$buf" breaking --against "$published/proto"; then
    cat >&2 <<EOF
buf breaking: against $(git rev-parse --short "$state") (${why}, or a state of proto/ before
it), the change above renames, removes or retypes a published gryning.v1 name.
The contract (docs/contract.md) allows only additions within a version: restore the old
name, number or type and add the new one beside it, or put the change in a new package
(gryning.v2) while v1 is still served. Check again with: bash scripts/test.sh
EOF
    exit 1
  fi
done
echo "buf breaking: no published name changed since $(git rev-parse --short "$against") ($why) nor since any of the ${#states[@]} published states of proto/ up to it"
