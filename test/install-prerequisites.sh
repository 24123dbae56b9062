#!/usr/bin/env bash
# `npm test` runs this first: it installs, from Debian's packages, what a fresh machine lacks
# for the suites, and does nothing where everything is there.
#   - a JDK with its compiler module: DynamoDB Local's loopback launcher
#     (local/DynamoDbLocalLoopback.java) runs through Java's source launcher;
#   - Debian's chromium: the results page's tests drive it through playwright-core, which
#     downloads no browser of its own;
#   - torch, torchvision and onnx under Debian's /usr/bin/python3: `labeler model export`
#     and its tests (about 250 MB; 2.5 minutes to install on 2 busy cores).
set -euo pipefail
packages=()
if ! java --list-modules 2>/dev/null | grep -q '^jdk.compiler'; then
  packages+=(default-jdk-headless)
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  packages+=(chromium)
fi
if ! /usr/bin/python3 -c 'import torch, torchvision, onnx' 2>/dev/null; then
  packages+=(python3-torch python3-torchvision python3-onnx)
fi
((${#packages[@]})) || exit 0

if ! command -v apt-get >/dev/null; then
  echo "npm test needs what these Debian packages give, and this machine has no apt-get: ${packages[*]}" >&2
  echo "install their equivalents (a JDK 17+ with jdk.compiler, chromium, torch + torchvision + onnx for /usr/bin/python3), then run npm test again" >&2
  exit 1
fi

as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "npm test needs these Debian packages, and this user cannot install them: ${packages[*]}" >&2
    echo "install them once as root: apt-get update && apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
fi
echo "installing what the tests need: ${packages[*]}" >&2
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"
