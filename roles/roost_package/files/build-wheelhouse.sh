#!/bin/sh
# Build the roost wheel and a wheelhouse of its runtime dependencies, on the controller,
# as one tar archive of the wheels (hosts receive it in one transfer and unpack it).
# Called by the roost_package role (tasks/build.yml), guarded by `creates: OUT`:
#   build-wheelhouse.sh PYTHON SOURCE OUT.tar "PY_VERSIONS" "PLATFORMS" "EXTRAS"
# OUT.tar appears only when everything is in it (built in a temporary directory, then
# renamed), so an interrupted build is never mistaken for a finished one.
set -eu
python=$1 source=$2 out=$3 versions=$4 platforms=$5 extras=$6

work=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Build from a clean copy: an in-tree build would write build/ and *.egg-info into python/.
mkdir "$work/src" "$work/wheels"
cp -R "$source/pyproject.toml" "$source/README.md" "$source/src" "$work/src/"
find "$work/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src"
wheel=$(find "$work/wheels" -name 'roost-*.whl')

# Runtime dependencies for every target Python, binary wheels only (targets build
# nothing); platform "any" admits pure-Python wheels only. And pip itself: hosts run it
# from its wheel (the venv holds no pip; the role's vars/main.yml, roost_package_pip).
for version in $versions; do
  for platform in $platforms; do
    "$python" -m pip download --quiet --only-binary=:all: \
      --python-version "$version" --platform "$platform" \
      --dest "$work/wheels" "roost$extras @ file://$wheel" pip
  done
done

# Wheels only, no directory entry (unpacking must not change the host's directory), owned
# by root and readable by all.
chmod 0644 "$work/wheels"/*
(cd "$work/wheels" && tar -cf "$work/wheelhouse.tar" --owner=0 --group=0 --numeric-owner -- *.whl)
chmod 0644 "$work/wheelhouse.tar"
mv "$work/wheelhouse.tar" "$out"
