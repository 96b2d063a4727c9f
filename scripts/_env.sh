# Shared by scripts/llmitm and scripts/test: find interpreters and build a venv with llmitm in it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# A working interpreter for a version: PATH first, then pyenv's folder (pyenv shims refuse
# versions that are installed but not selected).
find_python() {
  local version="$1" candidate
  for candidate in "python$version" "$HOME"/.pyenv/versions/"$version"*/bin/python3 /usr/local/bin/python"$version" /usr/bin/python"$version"; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys, venv' >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# The newest Python 3.12+ on this machine (mitmproxy 12), if any.
find_newest_python() {
  local v
  for v in 3.14 3.13 3.12; do
    find_python "$v" && return 0
  done
  return 1
}

# ensure_venv DIR PYTHON EXTRAS: create DIR with PYTHON and install llmitm[EXTRAS] into it, again
# only when pyproject.toml changed since the last install.
ensure_venv() {
  local dir="$1" python="$2" extras="$3" stamp want
  stamp="$dir/.llmitm-installed"
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-$extras"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "llmitm: setting up $dir with $("$python" --version 2>&1)…" >&2
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}" >&2
  echo "$want" > "$stamp"
}
