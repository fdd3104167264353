"""Keys and certificates for reaching a cluster as a remote engine: a CA, the engine's server cert, a client cert,
SSH keys.

Made with the `cryptography` library (no openssl shelling out). Every
function returns bytes (PEM or OpenSSH text); writing them is the caller's.
The engine runs with --tlsverify, so a client must show a certificate signed
by this CA (mutual TLS); the CA signs nothing else.
"""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825


@dataclass(frozen=True)
class Pair:
    cert: bytes  # PEM
    key: bytes  # PEM, unencrypted: files are written 0600 in a root-only directory


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swarmml"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: datetime.datetime):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))


def make_ca(common_name: str) -> Pair:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (_builder(_name(common_name), _name(common_name), key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def _issue(ca: Pair, common_name: str, usage, sans=None) -> Pair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (_builder(_name(common_name), ca_cert.subject, key.public_key(), now)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                            crl_sign=False, content_commitment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def subject_alt_names(names) -> list:
    """Pure: x509 SANs from strings, IP addresses as IPAddress and the rest as DNSName."""
    sans, seen = [], set()
    for n in names:
        if not n or n in seen:
            continue
        seen.add(n)
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    return sans


def make_server(ca: Pair, common_name: str, names) -> Pair:
    """The engine's certificate, valid for each of names (host names and IP addresses)."""
    return _issue(ca, common_name, ExtendedKeyUsageOID.SERVER_AUTH, subject_alt_names(names))


def make_client(ca: Pair, common_name: str) -> Pair:
    return _issue(ca, common_name, ExtendedKeyUsageOID.CLIENT_AUTH)


@dataclass(frozen=True)
class SshKey:
    private: bytes  # OpenSSH private key format, what sshd's HostKey and ssh's IdentityFile read
    public: str  # "ssh-ed25519 AAAA..." (an authorized_keys / known_hosts key)


def make_ssh_key(comment: str = "") -> SshKey:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return SshKey(private, public.decode() + (f" {comment}" if comment else ""))
