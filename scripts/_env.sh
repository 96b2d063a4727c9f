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

# The lock of the test environment for an interpreter (scripts/locks/test-py3.X.txt, written by
# scripts/lock), or nothing when that Python line has none. The locks are resolved for Linux x86_64
# (CI and the developers' machines); elsewhere pyproject.toml's ranges are installed instead.
test_lock_for() {
  local python="$1" version lock
  [ "$(uname -sm)" = "Linux x86_64" ] || return 0
  version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  lock="$ROOT/scripts/locks/test-py$version.txt"
  [ -f "$lock" ] && echo "$lock"
  return 0
}

# ensure_venv DIR PYTHON EXTRAS [LOCK]: create DIR with PYTHON and install llmitm[EXTRAS] into it,
# again only when pyproject.toml or LOCK changed since the last install (a stamp of both).
# With LOCK (a fully pinned, hashed requirements file from scripts/lock) the venv holds exactly the
# lock's files, rebuilt from scratch when the lock changes, and llmitm itself on top without
# dependencies; a lock that lacks something pyproject.toml now asks for fails
# (scripts/locks/satisfies.py) with a hint to re-lock. Without LOCK, llmitm's own version ranges are
# installed (what a user gets).
ensure_venv() {
  local dir="$1" python="$2" extras="$3" lock="${4:-}" stamp have="" want lock_sum=""
  stamp="$dir/.llmitm-installed"
  [ -z "$lock" ] || lock_sum="lock:$(sha256sum < "$lock" | cut -c1-16)"
  want="$lock_sum pyproject:$(sha256sum < "$ROOT/pyproject.toml" | cut -c1-16) extras:$extras"
  [ -f "$stamp" ] && have="$(cat "$stamp")"
  [ "$have" = "$want" ] && return 0
  local pip=(-m pip install -q --disable-pip-version-check)
  if [ -n "$lock" ]; then
    if [ "${have%% *}" != "$lock_sum" ] || [ ! -x "$dir/bin/python" ]; then
      echo "llmitm: setting up $dir with $("$python" --version 2>&1) from ${lock#"$ROOT"/}…" >&2
      "$python" -m venv --clear "$dir" || return 1
      "$dir/bin/python" "${pip[@]}" --upgrade pip >&2 || return 1
      "$dir/bin/python" "${pip[@]}" --require-hashes -r "$lock" >&2 || return 1
    fi
    "$dir/bin/python" "${pip[@]}" --no-deps --no-build-isolation -e "$ROOT" >&2 || return 1
    if ! { "$dir/bin/python" -m pip check >&2 && "$dir/bin/python" "$ROOT/scripts/locks/satisfies.py" $extras; }; then
      echo "llmitm: ${lock#"$ROOT"/} does not satisfy pyproject.toml: run scripts/lock and commit the locks" >&2
      return 1
    fi
  else
    echo "llmitm: setting up $dir with $("$python" --version 2>&1)…" >&2
    "$python" -m venv "$dir" || return 1
    "$dir/bin/python" "${pip[@]}" --upgrade pip >&2 || return 1
    "$dir/bin/python" "${pip[@]}" -e "$ROOT${extras:+[$extras]}" >&2 || return 1
  fi
  echo "$want" > "$stamp"
}
