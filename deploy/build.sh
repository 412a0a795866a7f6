#!/usr/bin/env bash
# build.sh builds a static effnas binary at deploy/effnas and, when podman
# or buildah is installed, the image deploy/Containerfile describes.
#
#	deploy/build.sh                    # binary, then image effnas:latest if podman/buildah is there
#	IMAGE=registry.example.com/you/effnas:1 deploy/build.sh
#	NO_IMAGE=1 deploy/build.sh         # the binary only
#	OUT=/tmp/effnas NO_IMAGE=1 deploy/build.sh   # elsewhere (relative to the repository)
#
# The binary links SQLite (cgo) statically: netgo and osusergo keep glibc's
# resolver and user lookup, which would need glibc's shared libraries at
# run time, out of it, and sqlite_omit_load_extension drops SQLite's
# dlopen for the same reason. It runs on any x86-64 Linux, in an image
# FROM scratch too. Needs Go (go.mod's version) and gcc with glibc's static
# libraries (Debian: libc6-dev).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

out=${OUT:-deploy/effnas}
echo "building $out (static)" >&2
CGO_ENABLED=1 go build -trimpath \
	-tags netgo,osusergo,sqlite_omit_load_extension \
	-ldflags '-s -w -linkmode external -extldflags "-static"' \
	-o "$out" ./cmd/effnas

if [[ -n "${NO_IMAGE:-}" ]]; then
	exit 0
fi
image=${IMAGE:-effnas:latest}
if command -v podman >/dev/null; then
	build=(podman build)
elif command -v buildah >/dev/null; then
	build=(buildah bud)
else
	echo "neither podman nor buildah is installed: built $out only; build the image with" >&2
	echo "  docker build -f deploy/Containerfile -t $image DIR   (DIR holding the Containerfile and effnas)" >&2
	exit 0
fi
# A context of its own, with nothing in it but the binary.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$out" "$context/effnas"
"${build[@]}" -f deploy/Containerfile -t "$image" "$context"
echo "built image $image; try it: podman run --rm $image -h" >&2
