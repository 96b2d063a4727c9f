"""Does this environment satisfy llmitm[EXTRAS]? Exit 1, listing what is missing or out of range.

    python scripts/locks/satisfies.py test

scripts/test runs it after installing a lock (scripts/lock): llmitm itself goes in with --no-deps, so a
dependency that pyproject.toml gained after the lock was made would otherwise be silently absent
(`pip check` only knows llmitm's base dependencies, not which extras were asked for).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution, version

from packaging.requirements import Requirement


def unmet(extras: list[str]) -> list[str]:
    problems = []
    for line in distribution("llmitm").requires or []:
        req = Requirement(line)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ["", *extras]):
            continue  # another extra's, or another Python's
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{req.name}{req.specifier} (not installed)")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req.name}{req.specifier} (installed {installed})")
    return problems


if __name__ == "__main__":
    problems = unmet(sys.argv[1:])
    for p in problems:
        print(f"llmitm: the lock lacks {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)
