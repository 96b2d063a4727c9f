"""The `llmitm` command: run the proxy, check a config, print client settings, show the key pool.

    llmitm run   [-c CONFIG] [--listen-host H] [--listen-port P] [--confdir DIR] [-- mitmdump args]
    llmitm web   [same options]                    (mitmweb instead of mitmdump)
    llmitm check -c CONFIG
    llmitm env   [--listen-port P] [--confdir DIR]
    llmitm keys  [-c CONFIG]
"""

from __future__ import annotations

import argparse
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
    path = _config_path(ns.config)
    if path:
        args += ["--set", f"llmitm_config={path.resolve()}"]
    return args + ns.extra


def cmd_run(ns: argparse.Namespace, web: bool = False) -> int:
    if _load_or_explain(ns.config) is None:  # refuse to start on a broken config, naming the field
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
        "NODE_EXTRA_CA_CERTS": str(ca),
        "NODE_USE_ENV_PROXY": "1",
    }
    for name, value in lines.items():
        print(f"export {name}={value}")
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
        p.add_argument("extra", nargs="*", help="extra mitmdump/mitmweb arguments, after --")
    p = sub.add_parser("check", help="validate a config and print a summary")
    p.add_argument("-c", "--config")
    p = sub.add_parser("env", help="print the shell lines that point a client at the proxy")
    common(p, config=False)
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
    return cmd_keys(ns)


if __name__ == "__main__":
    sys.exit(main())
