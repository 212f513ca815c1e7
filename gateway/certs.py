"""`gateway certs init|issue`: a small CA for mutual TLS between the gateway and its worker hosts.

`init` makes the cluster CA (ca.crt, ca.key) in a directory; `issue HOST` signs a key pair for
one host. Every host certificate serves both ends of a hop: a worker host's NGINX presents it as
its server certificate, the gateway's NGINX as its client certificate. Keys are written 0600 and
never printed; the CA key should then leave the machine that issues certificates.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import ConfigError
from gateway.private_files import private_dir, write_private

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_DAYS = 3650
HOST_DAYS = 825  # what browsers and most TLS stacks still accept for a leaf certificate


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `certs` on the `gateway` parser."""
    certs = commands.add_parser("certs", help="mutual TLS between hosts: a CA (init), host certificates (issue)")
    actions = certs.add_subparsers(dest="certs_command", required=True)
    init = actions.add_parser("init", help="make the cluster CA: DIR/ca.crt and DIR/ca.key (0600)")
    issue = actions.add_parser("issue", help="sign DIR/HOST.crt and DIR/HOST.key (0600) for one host")
    issue.add_argument("host", help="the host's address or DNS name, as the models' `hosts` name it")
    for sub in (init, issue):
        sub.add_argument("--dir", type=Path, default=Path("certs"), help="the CA's directory (default: ./certs)")
        sub.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    certs.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.certs_command == "init":
        cert = init_ca(args.dir)
        print(f"cluster CA: {cert} (its key {args.dir / CA_KEY} is 0600; keep it off the serving hosts)")
    else:
        cert, key = issue(args.dir, args.host)
        print(f"{args.host}: {cert} and {key} (0600); in that host's [server]: cluster_ca_file = "
              f"\"{args.dir / CA_CERT}\", cluster_cert_file = \"{cert}\", cluster_key_file = \"{key}\"")
    return 0


def init_ca(directory: Path) -> Path:
    """A new CA in `directory`; refuses to replace one (every issued certificate hangs on it)."""
    private_dir(directory)
    if (directory / CA_KEY).exists():
        raise ConfigError(f"{directory / CA_KEY} exists already; a new CA would orphan every host certificate "
                          "it signed. Use another --dir, or delete the old CA first")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway cluster CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(directory / CA_KEY, _key_pem(key))
    return _write_cert(directory / CA_CERT, cert)


def issue(directory: Path, host: str) -> tuple[Path, Path]:
    """A key pair for `host`, signed by the CA in `directory`, valid as server and as client."""
    if not host or "/" in host or host.startswith("."):
        raise ConfigError(f"{host!r} is not a host name or address")
    try:
        ca_key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"no CA in {directory}: run `gateway certs init --dir {directory}` first") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{directory / CA_KEY} is not the EC key `gateway certs init` writes")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=HOST_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_path = write_private(directory / f"{host}.key", _key_pem(key))
    return _write_cert(directory / f"{host}.crt", cert), key_path


def _names(host: str) -> list[x509.GeneralName]:
    """An address is written as an IP name (what Python's ssl checks) and as a DNS name (NGINX's
    proxy_ssl_verify compares names with X509_check_host, which reads DNS names only)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return [x509.DNSName(host)]
    return [x509.IPAddress(address), x509.DNSName(host)]


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    return write_private(path, cert.public_bytes(serialization.Encoding.PEM))
