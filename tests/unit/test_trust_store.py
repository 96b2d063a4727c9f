"""`llmitm ca`: every change is printed; install then uninstall leaves each trust store as it was."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from llmitm import cli


def ca_cli(tmp_path: Path, capsys, *args: str) -> str:
    code = cli.main(["ca", *args, "--confdir", str(tmp_path / "conf")])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"link:" + str(p.readlink()).encode())
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def test_dry_run_prints_each_change_and_changes_nothing(tmp_path, capsys):
    profile = tmp_path / "profile"
    profile.write_text("export PATH=/usr/bin\n")
    out = ca_cli(tmp_path, capsys, "install", "--dry-run", "--root", str(tmp_path / "root"), "--profile", str(profile),
                 "--target", "debian", "--target", "fedora", "--target", "env")
    assert f"would write {tmp_path}/root/usr/local/share/ca-certificates/llmitm.crt" in out
    assert f"would write {tmp_path}/root/etc/pki/ca-trust/source/anchors/llmitm.pem" in out
    assert "would run update-ca-certificates" in out
    assert "export NODE_EXTRA_CA_CERTS=" in out and "export CURL_CA_BUNDLE=" in out and "export SSL_CERT_FILE=" in out
    assert not (tmp_path / "root").exists() and profile.read_text() == "export PATH=/usr/bin\n"
    out = ca_cli(tmp_path, capsys, "install", "--dry-run", "--target", "macos")
    assert "would run security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain" in out


@pytest.mark.parametrize("original", ["export PATH=/usr/bin\n", "export PATH=/usr/bin", ""])
def test_env_profile_block_comes_and_goes_exactly(tmp_path, capsys, original):
    profile = tmp_path / "profile"
    profile.write_text(original)
    ca_cli(tmp_path, capsys, "install", "--target", "env", "--profile", str(profile))
    assert "NODE_EXTRA_CA_CERTS" in profile.read_text()
    assert ca_cli(tmp_path, capsys, "install", "--target", "env", "--profile", str(profile)) == "nothing to change\n"
    ca_cli(tmp_path, capsys, "uninstall", "--target", "env", "--profile", str(profile))
    assert profile.read_text() == original


def test_python_certifi_bundle_comes_back_byte_for_byte(tmp_path, capsys):
    import certifi

    bundle = tmp_path / "root" / Path(certifi.where()).relative_to("/")
    bundle.parent.mkdir(parents=True)
    shutil.copy(certifi.where(), bundle)
    before = bundle.read_bytes()
    ca_cli(tmp_path, capsys, "install", "--target", "python", "--root", str(tmp_path / "root"))
    ca = (tmp_path / "conf" / "mitmproxy-ca-cert.pem").read_text().strip()
    assert ca in bundle.read_text()
    ca_cli(tmp_path, capsys, "uninstall", "--target", "python", "--root", str(tmp_path / "root"))
    assert bundle.read_bytes() == before


@pytest.mark.skipif(shutil.which("update-ca-certificates") is None, reason="Debian's ca-certificates is not installed")
def test_debian_system_store_in_a_throwaway_root(tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree("/usr/share/ca-certificates", root / "usr/share/ca-certificates", symlinks=True)
    (root / "etc/ssl/certs").mkdir(parents=True)
    (root / "etc/ca-certificates/update.d").mkdir(parents=True)
    shutil.copy("/etc/ca-certificates.conf", root / "etc/ca-certificates.conf")
    (root / "usr/local/share/ca-certificates").mkdir(parents=True)
    subprocess.run(["update-ca-certificates", *cli_root_args(root)], check=True, capture_output=True)
    before = snapshot(root)
    ca_cli(tmp_path, capsys, "install", "--target", "debian", "--root", str(root))
    ca = (tmp_path / "conf" / "mitmproxy-ca-cert.pem").read_text().strip()
    assert ca in (root / "etc/ssl/certs/ca-certificates.crt").read_text()
    ca_cli(tmp_path, capsys, "uninstall", "--target", "debian", "--root", str(root))
    assert snapshot(root) == before


def cli_root_args(root: Path) -> list[str]:
    from llmitm import trust

    ctx = trust.Context(ca=Path("/dev/null"), bundle=Path("/dev/null"), root=root)
    return trust._debian_root_args(ctx)


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no JDK keytool on this machine")
def test_java_keystore_alias_comes_and_goes(tmp_path, capsys):
    cacerts = tmp_path / "cacerts"
    store = subprocess.run(["keytool", "-genkeypair", "-alias", "placeholder", "-keyalg", "RSA", "-keysize", "1024",
                            "-dname", "CN=placeholder", "-keystore", str(cacerts), "-storepass", "changeit",
                            "-keypass", "changeit", "-validity", "1"], capture_output=True)
    assert store.returncode == 0, store.stderr

    def aliases() -> str:
        return subprocess.run(["keytool", "-list", "-keystore", str(cacerts), "-storepass", "changeit"],
                              capture_output=True, text=True, check=True).stdout

    before = aliases()
    ca_cli(tmp_path, capsys, "install", "--target", "java", "--java-cacerts", str(cacerts))
    assert "llmitm" in aliases()
    ca_cli(tmp_path, capsys, "uninstall", "--target", "java", "--java-cacerts", str(cacerts))
    assert aliases() == before
