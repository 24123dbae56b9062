#!/usr/bin/env bash
# The far side of the GPU kit (bench/README.md, "GPU run"). Copy every file of the kit
# folder into one folder on the GPU machine, then:
#
#   ./run.sh [<python venv holding nvidia/*/lib>] [measure options, e.g. --seconds 8]
#
# It checks every transferred file against PARTS.sha256, reassembles the split artifacts
# and checks them against ARTIFACTS.sha256, unpacks Node.js, the app and ONNX Runtime's
# CUDA provider (next to onnxruntime-node's binding, where it loads providers from),
# points LD_LIBRARY_PATH at the venv's CUDA 13 libraries, and runs the measurements with
# the CUDA provider required. Results: ./results/results.md and results.json.
# Needs only bash, coreutils, tar, gzip and ldd. WORK=<dir> unpacks elsewhere (default ./work).
# PROVIDER=cpu is a dry run without a GPU: no venv, no CUDA libraries, the CPU provider.
set -euo pipefail

KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${WORK:-$KIT/work}"
cd "$KIT"

die() {
  echo "run.sh: $*" >&2
  exit 1
}

PROVIDER="${PROVIDER:-cuda}"
VENV=""
if [[ $# -gt 0 && "$1" != --* ]]; then
  VENV="$1"
  shift
fi

echo "checking the transferred files" >&2
sha256sum --quiet -c PARTS.sha256 || die "a transferred file is damaged or missing (PARTS.sha256): copy it again"
while read -r name parts; do
  [[ -z "$name" ]] && continue
  # shellcheck disable=SC2086 # the parts are a list of plain file names, in order
  cat $parts >"$name.tmp"
  mv "$name.tmp" "$name"
done <ASSEMBLE.txt
sha256sum --quiet -c ARTIFACTS.sha256 || die "a reassembled artifact does not match ARTIFACTS.sha256"

rm -rf "$WORK"
mkdir -p "$WORK/node"
tar xzf node.tgz -C "$WORK/node" --strip-components=1 package/bin/node
tar xzf app.tgz -C "$WORK"
PROVIDER_DIR="$WORK/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
tar xzf cuda-provider.tgz -C "$PROVIDER_DIR"
NODE="$WORK/node/bin/node"
"$NODE" --version >/dev/null || die "the kit's Node.js does not run here"

# The CUDA 13 libraries: the venv's nvidia/*/lib folders (pip's nvidia-* wheels).
cuda_libraries() {
  if [[ -z "$VENV" ]]; then
    VENV="${VIRTUAL_ENV:-}"
  fi
  if [[ -z "$VENV" ]]; then
    local found
    found="$(find / -xdev -maxdepth 7 -type d -path '*/site-packages/nvidia' 2>/dev/null | head -n 1 || true)"
    [[ -n "$found" ]] && VENV="${found%/lib/python*}"
  fi
  [[ -n "$VENV" ]] || die "no virtual environment with nvidia/*/lib found: pass its folder as the first argument"
  local libs
  libs="$(find "$VENV" -maxdepth 7 -type d -path '*/site-packages/nvidia/*lib' -name lib 2>/dev/null | sort | paste -sd: -)"
  [[ -n "$libs" ]] || die "$VENV has no site-packages/nvidia/*/lib folders"
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "CUDA libraries from $VENV ($(echo "$libs" | tr ':' '\n' | wc -l) folders)" >&2
  local missing
  missing="$(ldd "$PROVIDER_DIR/libonnxruntime_providers_cuda.so" | grep 'not found' || true)"
  if [[ -n "$missing" ]]; then
    echo "$missing" >&2
    die "libonnxruntime_providers_cuda.so cannot find the libraries above in LD_LIBRARY_PATH"
  fi
}
[[ "$PROVIDER" == cpu ]] || cuda_libraries

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2

export ORT_DISABLE_TELEMETRY=1
export UV_THREADPOOL_SIZE="$(nproc)"
"$NODE" "$WORK/app/measure.mjs" --provider "$PROVIDER" --model "$WORK/app/model" --out "$KIT/results" "$@"
