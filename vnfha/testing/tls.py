"""A throwaway PKI for tests: one CA, a server certificate for loopback, client certificates.

Keys are EC P-256, certificates valid for one day from an hour ago (so a test host with a
slightly wrong clock still accepts them). Never use these outside tests: the keys are written
unencrypted next to the certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vnfha.testing.etcd import TlsFiles

__all__ = ["TestPki", "make_test_pki"]


@dataclass(frozen=True, slots=True)
class TestPki:
    """PEM file paths: the CA, the server's pair (also usable as a client, e.g. by etcdctl),
    one pair per client name (its certificate's CN is the name), and one per member name (CN
    the name, valid as server on loopback and as client: what a vnfha member uses for mTLS
    replication)."""

    __test__ = False  # not a pytest test class

    ca_file: str
    server: TlsFiles
    clients: dict[str, TlsFiles] = field(default_factory=dict)
    members: dict[str, TlsFiles] = field(default_factory=dict)


def make_test_pki(directory: str, *, clients: Sequence[str] = (),
                  members: Sequence[str] = ()) -> TestPki:
    """Write a CA, a server certificate for ``localhost``/``127.0.0.1``/``::1``, a client
    certificate per name in ``clients`` and a server-and-client certificate per name in
    ``members`` into ``directory``; return their paths."""
    from cryptography import x509  # noqa: PLC0415 - a dev dependency, imported when used
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> TlsFiles:
        key_path, cert_path = out / f"{stem}.key", out / f"{stem}.crt"
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        key_path.chmod(0o600)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return TlsFiles(str(out / "ca.crt"), str(cert_path), str(key_path))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("vnfha test CA"))
        .issuer_name(name("vnfha test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (out / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(cn: str, *, server: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(
                x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]),
                critical=False,
            )
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_files = write("server", *issue("localhost", server=True))
    client_files = {cn: write(f"client-{cn}", *issue(cn, server=False)) for cn in clients}
    member_files = {cn: write(f"member-{cn}", *issue(cn, server=True)) for cn in members}
    return TestPki(str(out / "ca.crt"), server_files, client_files, member_files)
