"""TLS through the server's own options: HTTPS works and the session cookie is Secure."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from tests.auth_helpers import TEST_PASSWORD, ensure_user
from tests.service import ServiceProcess


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_and_a_secure_session_cookie(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    config = AppConfig.model_validate(
        {
            "server": {
                "data_dir": str(tmp_path / "data"),
                "tls_certfile": str(cert_file),
                "tls_keyfile": str(key_file),
            }
        }
    )
    service = ServiceProcess(config)
    service.start()
    try:
        ensure_user(service.node, "tess", Role.VIEWER)
        trust = ssl.create_default_context(cafile=str(cert_file))
        with httpx.Client(base_url=service.url, verify=trust) as client:
            response = client.post(
                "/api/auth/login", json={"name": "tess", "password": TEST_PASSWORD}
            )
            assert response.status_code == 200
            for cookie in response.headers.get_list("set-cookie"):
                assert "secure" in cookie.lower(), cookie
            assert client.get("/api/auth/me").json()["name"] == "tess"
    finally:
        service.stop()
