#!/bin/sh
# Refreshes functions/cuda-provider.sha256: the sha256 of the NuGet package the GPU image
# takes onnxruntime-node's CUDA 12 execution provider from (functions/Dockerfile, gpu-deps),
# for the onnxruntime-node version in package-lock.json. Run it from the repository root
# after `npm ci` whenever onnxruntime-node changes, review the diff, commit it.
#
# It trusts nothing it downloads alone: the package's SHA-512 must equal the packageHash
# that nuget.org's catalog publishes for that version before its sha256 is written.
set -eu
version="$(node -p "require('./node_modules/onnxruntime-node/script/install-metadata-versions.js').nuget[0].version")"
id=microsoft.ml.onnxruntime.gpu.linux
nupkg="${id}.${version}.nupkg"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/$nupkg" "https://api.nuget.org/v3-flatcontainer/${id}/${version}/${nupkg}"
catalog="$(curl -fsSL --compressed "https://api.nuget.org/v3/registration5-gz-semver2/${id}/${version}.json" \
  | node -e 'let s="";process.stdin.on("data",(d)=>{s+=d}).on("end",()=>console.log(JSON.parse(s).catalogEntry))')"
published="$(curl -fsSL --compressed "$catalog" \
  | node -e 'let s="";process.stdin.on("data",(d)=>{s+=d}).on("end",()=>{const c=JSON.parse(s);if(c.packageHashAlgorithm!=="SHA512")throw new Error(c.packageHashAlgorithm);console.log(c.packageHash)})')"
actual="$(node -e 'const h=require("node:crypto").createHash("sha512");h.update(require("node:fs").readFileSync(process.argv[1]));console.log(h.digest("base64"))' "$tmp/$nupkg")"
if [ "$published" != "$actual" ]; then
  echo "SHA-512 of $nupkg ($actual) differs from nuget.org's catalog ($published): not writing it" >&2
  exit 1
fi
{
  echo "# sha256 of the NuGet package the GPU image takes the CUDA execution provider from;"
  echo "# its SHA-512 matched nuget.org's catalog when written by functions/cuda-provider-sha256.sh."
  (cd "$tmp" && sha256sum "$nupkg")
} > functions/cuda-provider.sha256
cat functions/cuda-provider.sha256
