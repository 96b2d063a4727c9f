"""`llmitm ca install|uninstall`: make clients trust llmitm's CA, and take that trust back exactly.

Each target is a small plan of changes — a file written or removed, a marked block added to or removed
from a text file, a command run — that is printed in full before (or instead of, with `--dry-run`)
being carried out. Uninstall removes only what install added: the CA file llmitm wrote, the block
between its markers, the keystore alias `llmitm`; a trust store is left as it was.

Targets:
  debian   /usr/local/share/ca-certificates/llmitm.crt + update-ca-certificates (Debian, Ubuntu)
  fedora   /etc/pki/ca-trust/source/anchors/llmitm.pem + update-ca-trust (Fedora, RHEL)
  macos    security add-trusted-cert into the System keychain
  python   the CA appended, between markers, to certifi's bundle of a given interpreter
  env      SSL_CERT_FILE / REQUESTS_CA_BUNDLE (Python), NODE_EXTRA_CA_CERTS (Node), CURL_CA_BUNDLE (curl)
           exported from a marked block in a shell profile (~/.profile by default)
  java     keytool -importcert -alias llmitm into a JDK's cacerts
`--root DIR` applies the file changes under DIR (a throw-away root, for trying it out).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BEGIN = "# >>> llmitm CA >>>"
END = "# <<< llmitm CA <<<"
NEWLINE_ADDED = " (a final newline was added before this block)"
ALIAS = "llmitm"


@dataclass(frozen=True)
class Change:
    """One step of a plan: what it does (printed as is) and how to do it."""

    says: str
    apply: Callable[[], None]


@dataclass(frozen=True)
class Context:
    ca: Path  # mitmproxy-ca-cert.pem
    bundle: Path  # the CA plus the system roots (what SSL_CERT_FILE must point at)
    root: Path = Path("/")
    profile: Path = Path("~/.profile")
    python: str = "python3"
    java_cacerts: Path | None = None
    storepass: str = "changeit"  # the JDK's well-known default; not a secret

    def under_root(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        return self.root / path.relative_to("/") if path.is_absolute() else path


# -- building blocks ----------------------------------------------------------------------------


def write_file(target: Path, content: bytes) -> Change:
    def apply() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    return Change(f"write {target} ({len(content)} bytes)", apply)


def remove_file(target: Path) -> list[Change]:
    return [Change(f"remove {target}", lambda: target.unlink())] if target.exists() else []


def add_block(target: Path, lines: list[str]) -> list[Change]:
    text = target.read_text() if target.exists() else ""
    if BEGIN in text:
        return []

    def apply() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        current = target.read_text() if target.exists() else ""
        # A file without a final newline gets one, and the marker says so, so that removal is exact.
        opening = BEGIN if current.endswith("\n") or not current else "\n" + BEGIN + NEWLINE_ADDED
        target.write_text(current + "\n".join([opening, *lines, END]) + "\n")

    shown = "\n".join("    " + line for line in [BEGIN, *lines, END])
    return [Change(f"append to {target}:\n{shown}", apply)]


def remove_block(target: Path) -> list[Change]:
    if not target.exists() or BEGIN not in target.read_text():
        return []

    def apply() -> None:
        text = target.read_text()
        start = text.index(BEGIN)
        end = text.index(END, start) + len(END) + 1  # with its newline
        if text.startswith(BEGIN + NEWLINE_ADDED, start):
            start -= 1
        target.write_text(text[:start] + text[end:])

    return [Change(f"remove the block between {BEGIN!r} and {END!r} from {target}", apply)]


def run(*argv: str) -> Change:
    def apply() -> None:
        subprocess.run(list(argv), check=True, stdout=subprocess.DEVNULL)

    return Change("run " + " ".join(argv), apply)


# -- targets: (install, uninstall) plans ---------------------------------------------------------


def debian(ctx: Context, install: bool) -> list[Change]:
    target = ctx.under_root("/usr/local/share/ca-certificates/llmitm.crt")
    refresh = [run("update-ca-certificates", *_debian_root_args(ctx))] if shutil.which("update-ca-certificates") else []
    if install:
        return [write_file(target, ctx.ca.read_bytes()), *refresh]
    return [*remove_file(target), *(refresh if target.exists() else [])]


def _debian_root_args(ctx: Context) -> list[str]:
    if ctx.root == Path("/"):
        return []
    return [
        "--fresh",
        "--certsconf", str(ctx.under_root("/etc/ca-certificates.conf")),
        "--certsdir", str(ctx.under_root("/usr/share/ca-certificates")),
        "--localcertsdir", str(ctx.under_root("/usr/local/share/ca-certificates")),
        "--etccertsdir", str(ctx.under_root("/etc/ssl/certs")),
        "--hooksdir", str(ctx.under_root("/etc/ca-certificates/update.d")),
    ]


def fedora(ctx: Context, install: bool) -> list[Change]:
    target = ctx.under_root("/etc/pki/ca-trust/source/anchors/llmitm.pem")
    refresh = [run("update-ca-trust", "extract")] if ctx.root == Path("/") else []
    if install:
        return [write_file(target, ctx.ca.read_bytes()), *refresh]
    return [*remove_file(target), *(refresh if target.exists() else [])]


def macos(ctx: Context, install: bool) -> list[Change]:
    keychain = "/Library/Keychains/System.keychain"
    if install:
        return [run("security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k", keychain, str(ctx.ca))]
    return [run("security", "remove-trusted-cert", "-d", str(ctx.ca))]


def python(ctx: Context, install: bool) -> list[Change]:
    where = subprocess.run([ctx.python, "-c", "import certifi; print(certifi.where())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    target = ctx.under_root(where)
    if install:
        return add_block(target, ctx.ca.read_text().strip().splitlines())
    return remove_block(target)


def env(ctx: Context, install: bool) -> list[Change]:
    target = ctx.under_root(ctx.profile)
    if not install:
        return remove_block(target)
    return add_block(target, [
        f"export SSL_CERT_FILE={ctx.bundle}",
        f"export REQUESTS_CA_BUNDLE={ctx.bundle}",
        f"export CURL_CA_BUNDLE={ctx.bundle}",
        f"export NODE_EXTRA_CA_CERTS={ctx.ca}",
    ])


def java(ctx: Context, install: bool) -> list[Change]:
    cacerts = ctx.java_cacerts or _default_java_cacerts()
    common = ["-keystore", str(cacerts), "-storepass", ctx.storepass, "-noprompt"]
    present = _java_has_alias(cacerts, ctx.storepass)
    if install:
        return [] if present else [run("keytool", "-importcert", "-alias", ALIAS, "-file", str(ctx.ca), *common)]
    return [run("keytool", "-delete", "-alias", ALIAS, *common)] if present else []


def _default_java_cacerts() -> Path:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise RuntimeError("keytool not found: install a JDK or pass --java-cacerts")
    return Path(keytool).resolve().parent.parent / "lib" / "security" / "cacerts"


def _java_has_alias(cacerts: Path, storepass: str) -> bool:
    out = subprocess.run(["keytool", "-list", "-alias", ALIAS, "-keystore", str(cacerts), "-storepass", storepass],
                         capture_output=True, text=True)
    return out.returncode == 0


TARGETS: dict[str, Callable[[Context, bool], list[Change]]] = {
    "debian": debian, "fedora": fedora, "macos": macos, "python": python, "env": env, "java": java,
}


def plan(ctx: Context, targets: list[str], install: bool) -> list[Change]:
    return [change for name in targets for change in TARGETS[name](ctx, install)]


def carry_out(changes: list[Change], dry_run: bool, say: Callable[[str], None] = print) -> None:
    if not changes:
        say("nothing to change")
    for change in changes:
        say(("would " if dry_run else "") + change.says)
        if not dry_run:
            change.apply()
