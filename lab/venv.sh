#!/usr/bin/env bash
# Create the repository's .venv with the lab/test tools and the roost package (editable).
# Re-installs only when requirements/lab.txt or python/pyproject.toml change.
. "$(dirname "$0")/lib.sh"

venv=$ROOT/.venv
stamp=$venv/.roost-stamp
want=$(cat "$ROOT/requirements/lab.txt" "$ROOT/python/pyproject.toml" | sha256sum | cut -c1-16)
[ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && exit 0

mkdir -p "$LAB_DIR"
plog=$LAB_DIR/pip.log
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" || die "cannot create $venv (is python3-venv installed?)"
log "installing Python tools into .venv (log: $plog)"
"$venv/bin/pip" install -q -r "$ROOT/requirements/lab.txt" -e "$ROOT/python[dev]" >"$plog" 2>&1 ||
  die "pip install failed: $(grep -m1 -i error "$plog" || tail -n1 "$plog")"
echo "$want" >"$stamp"
