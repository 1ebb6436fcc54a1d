"""Throwaway TLS material for the test broker: a CA, a broker certificate and a client one.

Made with the ``openssl`` command line (no Python dependency): EC P-256 keys, certificates
valid for two days. The broker certificate names ``IP:127.0.0.1`` (clients check it); the
client certificate is what mutual TLS asks for. Keys are unencrypted PKCS#8 PEM, which is
what Kafka's PEM key store reads, and the client key also comes encrypted with a password
(for clients that are given one). For tests only: nothing here is kept secret.

    files = generate_tls(tmp_path / "tls")
    files.ca_cert, files.client_cert, files.client_key
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL_TIMEOUT_S = 30.0
VALID_DAYS = 2
KEY_OPTIONS = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
BROKER_HOST = "127.0.0.1"


class TlsError(RuntimeError):
    """openssl failed; the message carries its output."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the PEM files are. ``client_key_encrypted`` holds ``client_key`` encrypted
    with ``client_key_password``."""

    directory: Path
    ca_cert: Path
    broker_cert: Path
    broker_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    client_key_password: str

    @classmethod
    def at(cls, directory: Path) -> TlsFiles:
        """The files ``generate_tls`` writes to ``directory`` (they may not exist yet)."""
        directory = Path(directory).resolve()
        password_file = directory / "client.key.password"
        password = (
            password_file.read_text(encoding="utf-8").strip() if password_file.is_file() else ""
        )
        return cls(
            directory=directory,
            ca_cert=directory / "ca.pem",
            broker_cert=directory / "broker.pem",
            broker_key=directory / "broker.key",
            client_cert=directory / "client.pem",
            client_key=directory / "client.key",
            client_key_encrypted=directory / "client.enc.key",
            client_key_password=password,
        )

    @property
    def complete(self) -> bool:
        return all(
            path.is_file()
            for path in (
                self.ca_cert,
                self.broker_cert,
                self.broker_key,
                self.client_cert,
                self.client_key,
                self.client_key_encrypted,
            )
        ) and bool(self.client_key_password)


def tls_available() -> tuple[bool, str]:
    """Whether certificates can be made here (the ``openssl`` command is on PATH)."""
    if shutil.which("openssl") is None:
        return False, "openssl is not on PATH (needed to make test certificates)"
    return True, "openssl found"


def generate_tls(directory: Path, *, client_name: str = "gatewatch-test-client") -> TlsFiles:
    """A new CA, broker and client certificate in ``directory``; existing ones are reused."""
    files = TlsFiles.at(directory)
    if files.complete:
        return files
    out = files.directory
    out.mkdir(parents=True, exist_ok=True)
    ca_key = out / "ca.key"
    days = str(VALID_DAYS)
    _openssl(
        "req", "-x509", *KEY_OPTIONS, "-keyout", ca_key, "-out", files.ca_cert,
        "-days", days, "-subj", "/CN=gatewatch-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _issue(
        out, "broker", files.broker_cert, files.broker_key, ca_key, files.ca_cert,
        subject=f"/CN={BROKER_HOST}",
        extensions=f"subjectAltName=IP:{BROKER_HOST}\nextendedKeyUsage=serverAuth\n",
    )  # fmt: skip
    _issue(
        out, "client", files.client_cert, files.client_key, ca_key, files.ca_cert,
        subject=f"/CN={client_name}",
        extensions="extendedKeyUsage=clientAuth\n",
    )  # fmt: skip
    password = secrets.token_hex(12)
    _openssl(
        "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", files.client_key,
        "-out", files.client_key_encrypted, "-passout", "stdin",
        stdin=password,
    )  # fmt: skip
    (out / "client.key.password").write_text(password + "\n", encoding="utf-8")
    return TlsFiles.at(out)


def _issue(
    out: Path,
    name: str,
    cert: Path,
    key: Path,
    ca_key: Path,
    ca_cert: Path,
    *,
    subject: str,
    extensions: str,
) -> None:
    """A key and a certificate for it signed by the CA."""
    csr = out / f"{name}.csr"
    ext = out / f"{name}.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions,
        encoding="utf-8",
    )
    _openssl("req", *KEY_OPTIONS, "-keyout", key, "-out", csr, "-subj", subject)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
        "-set_serial", str(secrets.randbits(63)), "-days", str(VALID_DAYS),
        "-extfile", ext, "-out", cert,
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


def _openssl(*args: str | Path, stdin: str | None = None) -> None:
    command = ["openssl", *(str(a) for a in args)]
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=OPENSSL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TlsError(f"{' '.join(command[:2])} timed out") from exc
    if done.returncode != 0:
        raise TlsError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")


__all__ = ["TlsError", "TlsFiles", "generate_tls", "tls_available"]
