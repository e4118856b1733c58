# find-models.sh — sourced (not run) by osprey's scripts and tests to find the
# model directory, so every consumer resolves it the same way:
#   1. $OSPREY_MODELS            (explicit choice wins)
#   2. <repo>/models             (scripts/fetch-models.sh downloads or links here)
#   3. <repo>/../shared/models   (the read-only development copy on this machine)
#   4. <main checkout>/../shared/models when <repo> is a git worktree elsewhere
# A candidate counts only if it holds at least one model file we know about, so
# an empty ./models left behind by an interrupted download does not hide (3).
#
# Usage:  . scripts/find-models.sh
#         osp_models_dir            -> prints the directory, returns 1 if none
#         osp_model_path REL...     -> prints the first REL that exists under it
#         osp_images_dir MODELS [SUB] -> the photos beside MODELS (or in
#                                      <repo>/../shared/images) that hold SUB
#         osp_repo_root             -> prints the repository root
# Works with `set -euo pipefail` in the caller.

osp_repo_root() {
  if [ -n "${OSP_SOURCE_DIR:-}" ]; then
    (cd "$OSP_SOURCE_DIR" && pwd -P)
  else
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
  fi
}

# True when $1 looks like a models directory (any layout we produce or ship).
osp__models_dir_ok() {
  local d=$1
  [ -d "$d" ] || return 1
  local f
  for f in onnx/resnet50.onnx onnx/mobilenet_v2.onnx onnx/squeezenet1_1.onnx \
           resnet50v1/resnet50-v1-7.onnx resnet18-v2-7.onnx \
           resnet50-v1-12-qdq.onnx tflite/mobilenet_v2_1.0_224_quant.tflite; do
    [ -e "$d/$f" ] && return 0
  done
  # mobilenetv2-12.tar.gz extracts to a directory whose exact name we do not
  # control; accept any .onnx one level down.
  compgen -G "$d/*/*.onnx" >/dev/null 2>&1 && return 0
  return 1
}

# The main checkout of a git worktree (empty when not a worktree): lets a
# worktree find the development copy next to the main checkout.
osp__main_checkout() {
  local root common
  root=$(osp_repo_root)
  common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) || return 0
  [ "$(basename "$common")" = .git ] || return 0
  common=$(dirname "$common")
  [ "$common" != "$root" ] && echo "$common"
  return 0
}

# Candidate directories, in order (one per line).
osp__models_candidates() {
  local root main
  root=$(osp_repo_root)
  [ -n "${OSPREY_MODELS:-}" ] && echo "$OSPREY_MODELS"
  echo "$root/models"
  echo "$root/../shared/models"
  main=$(osp__main_checkout)
  [ -n "$main" ] && echo "$main/../shared/models"
  return 0
}

osp_models_dir() {
  local cand
  while IFS= read -r cand; do
    if osp__models_dir_ok "$cand"; then
      (cd "$cand" && pwd)
      return 0
    fi
  done < <(osp__models_candidates)
  return 1
}

# Prints the first of the given relative paths that exists in the models dir.
osp_model_path() {
  local dir rel
  dir=$(osp_models_dir) || return 1
  for rel in "$@"; do
    if [ -e "$dir/$rel" ]; then
      echo "$dir/$rel"
      return 0
    fi
  done
  return 1
}

# Human-readable list of where we looked, for skip/error messages.
osp_models_searched() {
  local list
  list=$(osp__models_candidates | paste -sd, | sed 's/,/, /g')
  [ -n "${OSPREY_MODELS:-}" ] || list="\$OSPREY_MODELS (unset), $list"
  echo "$list"
}

# The photo directory that goes with models directory $1: its sibling
# images/ when that holds $2 (default: the directory itself), else the
# development copy in <repo>/../shared/images.
osp_images_dir() {
  local d
  d="$(dirname "$1")/images"
  if [ -e "$d/${2:-.}" ]; then
    echo "$d"
  else
    echo "$(osp_repo_root)/../shared/images"
  fi
}
