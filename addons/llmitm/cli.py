"""The `llmitm` command: run the proxy, check a config, print client settings, show the key pool.

    llmitm run   [-c CONFIG] [--listen-host H] [--listen-port P] [--confdir DIR] [-- mitmdump args]
    llmitm web   [same options]                    (mitmweb instead of mitmdump)
    llmitm check -c CONFIG
    llmitm env   [--listen-port P] [--confdir DIR]
    llmitm keys  [-c CONFIG]
    llmitm ca    install|uninstall [--target T] [--dry-run] [--root DIR]
    llmitm usage [-c CONFIG] [--since 7d] [--by key,model] [--json|--csv]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .config import DEFAULT_CONFIG_PATH, ConfigError, LlmitmConfig, builtin_default, load_config, mask_secret

DEFAULT_CONFDIR = Path("~/.mitmproxy").expanduser()


def _config_path(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def _load(arg: str | None) -> LlmitmConfig:
    path = _config_path(arg)
    return load_config(path) if path else builtin_default()


def _load_or_explain(arg: str | None) -> LlmitmConfig | None:
    """The config, or None after printing what is wrong with it (file and field)."""
    try:
        return _load(arg)
    except ConfigError as e:
        print(f"llmitm: {e}", file=sys.stderr)
        return None


def _proxy_args(ns: argparse.Namespace) -> list[str]:
    import llmitm_addon

    args = [
        "-s", str(Path(llmitm_addon.__file__).resolve()),
        "--listen-host", ns.listen_host,
        "--listen-port", str(ns.listen_port),
        "--set", f"confdir={Path(ns.confdir).expanduser()}",
        "--set", "connection_strategy=lazy",
    ]
    extra_modes = [*ns.reverse, *(f"local:{program}" for program in ns.local)]
    if extra_modes:
        # The regular proxy first (its port is --listen-port), then each base-URL listener and capture.
        args += ["--mode", "regular"] + [a for mode in extra_modes for a in ("--mode", mode)]
    path = _config_path(ns.config)
    if path:
        args += ["--set", f"llmitm_config={path.resolve()}"]
    return args + ns.extra


def reverse_aliases() -> dict[str, str]:
    """Short names for the known AI hosts (`openai`, `anthropic`, `gemini`): each host's protocol family."""
    from .config import KNOWN_AI_HOSTS

    return {protocols[0].split("-")[0]: host for host, protocols in KNOWN_AI_HOSTS.items()}


def reverse_mode(spec: str) -> str:
    """`NAME=PORT` (NAME: an alias, a host, or an https:// URL) → mitmproxy's `reverse:URL@PORT`.

    An app whose base URL points at that port needs no proxy settings and no CA: the listener speaks
    plain HTTP on loopback and stands for the host it names, so routes match as if the app had called
    that host."""
    name, sep, port = spec.rpartition("=")
    if not sep or not port.isdigit() or not name:
        raise argparse.ArgumentTypeError(f"--reverse {spec!r}: expected NAME=PORT, e.g. openai=4000")
    target = reverse_aliases().get(name.lower(), name)
    if "://" not in target:
        target = f"https://{target}"
    return f"reverse:{target}@{port}"


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _unsafe_start(ns: argparse.Namespace, web: bool, config: LlmitmConfig | None = None) -> str | None:
    """Why starting as asked would expose the keys or the prompts, or None when it is safe."""
    authenticates = bool(config and config.clients) or any("proxyauth=" in a for a in ns.extra)
    if not _is_loopback(ns.listen_host) and not ns.allow_open_proxy and not authenticates:
        return (f"--listen-host {ns.listen_host} lets anyone who reaches this port spend every pooled key and read "
                "every prompt. Configure clients (the `clients:` section), or proxy credentials "
                "(-- --set proxyauth=@HTPASSWD_FILE), or pass --allow-open-proxy if this network is yours alone.")
    if ns.local and _mitmweb_lacks_auth():
        return ("--local needs mitmproxy 11.1+ on Linux, so Python 3.12+ (this is mitmproxy 11.0.2 on Python 3.11). "
                "Use HTTPS_PROXY (llmitm env) or a base-URL listener (--reverse) instead.")
    if web and _mitmweb_lacks_auth() and not ns.allow_unauthenticated_web:
        return ("mitmproxy 11.0.2 (the Python 3.11 install) has a web UI without authentication and without the "
                "CVE-2025-23217 fix: any local process or web page can read every prompt and run code in the proxy. "
                "Use Python 3.12+ (mitmproxy 12, token-protected UI), `llmitm run` without the UI, or pass "
                "--allow-unauthenticated-web if this machine has no other users and you browse nothing else.")
    return None


def _mitmweb_lacks_auth() -> bool:
    from mitmproxy.version import VERSION

    return tuple(int(p) for p in VERSION.split(".")[:2]) < (11, 1)


def cmd_run(ns: argparse.Namespace, web: bool = False) -> int:
    config = _load_or_explain(ns.config)
    if config is None:  # refuse to start on a broken config, naming the field
        return 2
    if (reason := _unsafe_start(ns, web, config)) is not None:
        print(f"llmitm: refusing to start: {reason}", file=sys.stderr)
        return 2
    from mitmproxy.tools import main

    run = main.mitmweb if web else main.mitmdump
    return run(_proxy_args(ns)) or 0


def cmd_check(ns: argparse.Namespace) -> int:
    config = _load_or_explain(ns.config)
    if config is None:
        return 2
    print(f"config: {config.source}")
    print(f"state: {config.state or 'sqlite (beside the config)'}")
    print("providers:")
    for name, p in config.providers.items():
        keys = ", ".join(f"{k.id or f'{name}#{i + 1}'}={mask_secret(k.key)}" for i, k in enumerate(p.keys))
        keys = keys or "none (the app's own credential passes through)"
        print(f"  {name}: {'/'.join(p.protocol)} at {p.base_url}; {p.strategy}; keys: {keys}")
    print("routes:")
    for i, r in enumerate(config.routes):
        match = ", ".join(f"{k}={v}" for k, v in r.match.model_dump().items() if v is not None) or "any intercepted host"
        model = f" model={r.model}" if r.model else (f" model_map={dict(r.model_map)}" if r.model_map else "")
        fallback = f" fallback={r.fallback}" if r.fallback else ""
        print(f"  #{i}: {match} -> {r.provider}{model}{fallback}")
    print("intercepted hosts: " + ", ".join(config.intercepted_hosts()))
    return 0


def ensure_ca(confdir: Path) -> Path:
    """Create mitmproxy's CA in confdir if missing; return a bundle of it plus the system roots."""
    from mitmproxy import certs

    confdir.mkdir(parents=True, exist_ok=True)
    certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    ca = confdir / "mitmproxy-ca-cert.pem"
    bundle = confdir / "llmitm-ca-bundle.pem"
    # SSL_CERT_FILE and REQUESTS_CA_BUNDLE *replace* the trust store: give clients the proxy's CA
    # plus the usual roots, so hosts llmitm tunnels untouched still verify.
    roots = Path("/etc/ssl/certs/ca-certificates.crt")
    if not roots.exists():
        import certifi

        roots = Path(certifi.where())
    bundle.write_bytes(ca.read_bytes() + b"\n" + roots.read_bytes())
    return bundle


def cmd_env(ns: argparse.Namespace) -> int:
    confdir = Path(ns.confdir).expanduser()
    bundle = ensure_ca(confdir)
    proxy = f"http://{ns.listen_host}:{ns.listen_port}"
    ca = confdir / "mitmproxy-ca-cert.pem"
    lines = {
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "NO_PROXY": "localhost,127.0.0.1,::1",
        "SSL_CERT_FILE": str(bundle),
        "REQUESTS_CA_BUNDLE": str(bundle),
        "CURL_CA_BUNDLE": str(bundle),  # Debian's curl ignores SSL_CERT_FILE
        "NODE_EXTRA_CA_CERTS": str(ca),
        "NODE_USE_ENV_PROXY": "1",
    }
    for name, value in lines.items():
        print(f"export {name}={value}")
    return 0


def cmd_ca(ns: argparse.Namespace) -> int:
    from . import trust

    confdir = Path(ns.confdir).expanduser()
    bundle = ensure_ca(confdir)
    ctx = trust.Context(ca=confdir / "mitmproxy-ca-cert.pem", bundle=bundle, root=Path(ns.root), profile=Path(ns.profile),
                        python=ns.python, java_cacerts=Path(ns.java_cacerts) if ns.java_cacerts else None)
    targets = ns.target or _default_trust_targets()
    try:
        changes = trust.plan(ctx, targets, install=ns.action == "install")
        trust.carry_out(changes, ns.dry_run)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"llmitm: ca {ns.action} failed: {e}", file=sys.stderr)
        return 1
    return 0


def _default_trust_targets() -> list[str]:
    """This machine's system store, plus the environment variables the common runtimes read."""
    if sys.platform == "darwin":
        return ["macos", "env"]
    if Path("/etc/debian_version").exists():
        return ["debian", "env"]
    if Path("/etc/fedora-release").exists() or Path("/etc/redhat-release").exists():
        return ["fedora", "env"]
    return ["env"]


def cmd_usage(ns: argparse.Namespace) -> int:
    from .observe import report

    config = _load_or_explain(ns.config)
    if config is None:
        return 2
    try:
        print(report.usage(config, since=ns.since, by=ns.by, fmt="json" if ns.json else "csv" if ns.csv else "table"))
    except report.ReportError as e:
        print(f"llmitm: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_keys(ns: argparse.Namespace) -> int:
    config = _load_or_explain(ns.config)
    if config is None:
        return 2
    from .provider_pools import key_table

    for line in key_table(config):
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmitm", description="AI-traffic proxy for unmodified apps (mitmproxy addon).")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, config: bool = True) -> None:
        if config:
            p.add_argument("-c", "--config", help=f"YAML config (default: {DEFAULT_CONFIG_PATH} if present, else built-in)")
        p.add_argument("--listen-host", default="127.0.0.1")
        p.add_argument("--listen-port", type=int, default=8080)
        p.add_argument("--confdir", default=str(DEFAULT_CONFDIR), help="mitmproxy's confdir (CA, settings)")

    for name, help_ in (("run", "run the proxy (mitmdump)"), ("web", "run the proxy with mitmweb's UI")):
        p = sub.add_parser(name, help=help_)
        common(p)
        p.add_argument("--reverse", action="append", default=[], metavar="NAME=PORT", type=reverse_mode,
                       help="a base-URL listener for apps that cannot use a proxy: NAME is openai, anthropic, gemini, "
                            "a host or an https:// URL (repeatable), e.g. --reverse openai=4000")
        p.add_argument("--local", action="append", default=[], metavar="PROGRAM",
                       help="capture one program's traffic with no proxy settings (mitmproxy local mode: Linux "
                            "needs Python 3.12+, root for its eBPF redirector and a kernel that loads it; repeatable)")
        p.add_argument("--allow-open-proxy", action="store_true",
                       help="listen on a non-loopback address without client authentication")
        if name == "web":
            p.add_argument("--allow-unauthenticated-web", action="store_true",
                           help="start mitmweb 11.0.2's UI, which has no authentication (Python 3.11 only)")
        else:
            p.set_defaults(allow_unauthenticated_web=False)
        p.add_argument("extra", nargs="*", help="extra mitmdump/mitmweb arguments, after --")
    p = sub.add_parser("check", help="validate a config and print a summary")
    p.add_argument("-c", "--config")
    p = sub.add_parser("env", help="print the shell lines that point a client at the proxy")
    common(p, config=False)
    p = sub.add_parser("ca", help="make clients trust llmitm's CA (or take that trust back); prints every change")
    p.add_argument("action", choices=["install", "uninstall"])
    p.add_argument("--target", action="append", choices=["debian", "fedora", "macos", "python", "env", "java"],
                   help="repeatable; default: this machine's system store and env")
    p.add_argument("--dry-run", action="store_true", help="print the changes, change nothing")
    p.add_argument("--root", default="/", help="apply file changes under this folder (a throw-away root)")
    p.add_argument("--profile", default="~/.profile", help="shell profile for the env target")
    p.add_argument("--python", default=sys.executable, help="interpreter whose certifi bundle the python target changes")
    p.add_argument("--java-cacerts", help="keystore for the java target (default: the JDK of keytool on PATH)")
    p.add_argument("--confdir", default=str(DEFAULT_CONFDIR), help="mitmproxy's confdir (CA)")
    p = sub.add_parser("usage", help="usage and cost totals from the ledger (by key, model, client, route, day)")
    p.add_argument("-c", "--config")
    p.add_argument("--since", default="30d", help="24h, 7d, 30m or YYYY-MM-DD (default 30d)")
    p.add_argument("--by", default="", help="comma-separated: day, client, route, provider, model, key")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")
    p = sub.add_parser("keys", help="show every pooled key's state, read from the state store")
    p.add_argument("-c", "--config")
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.command == "run":
        return cmd_run(ns)
    if ns.command == "web":
        return cmd_run(ns, web=True)
    if ns.command == "check":
        return cmd_check(ns)
    if ns.command == "env":
        return cmd_env(ns)
    if ns.command == "ca":
        return cmd_ca(ns)
    if ns.command == "usage":
        return cmd_usage(ns)
    return cmd_keys(ns)


if __name__ == "__main__":
    sys.exit(main())
