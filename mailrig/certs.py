"""Generated test PKI: one CA and one server certificate signed by it.

The rig never uses self-signed server certificates: client code under test must
exercise the real verification path (CA bundle given as PEM, hostname/IP check),
so the server certificate is a proper leaf signed by a throwaway CA.
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names the server certificate is valid for. 127.0.0.1 and localhost are what
# tests connect to; the rig.test names let tests that use a hostname-like
# string (with a resolver override) verify too.
SERVER_DNS_NAMES = ("localhost", "rig.test", "imap.rig.test", "smtp.rig.test")
SERVER_IPS = ("127.0.0.1", "::1")


def _key():
    # P-256: generation is instant (RSA-2048 would cost ~100 ms per key).
    return ec.generate_private_key(ec.SECP256R1(), default_backend())


def _pem_key(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path, data, mode):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def generate(directory):
    """Create ca.pem, ca.key, server.pem, server.key in ``directory``.

    Reuses existing files so a fixed ``--workdir`` keeps the same CA across
    restarts (a CA pasted into the Odoo demo mailbox stays valid).
    Returns a dict of the four paths.
    """
    paths = {
        "ca_file": os.path.join(directory, "ca.pem"),
        "ca_key": os.path.join(directory, "ca.key"),
        "cert_file": os.path.join(directory, "server.pem"),
        "key_file": os.path.join(directory, "server.key"),
    }
    if all(os.path.exists(p) for p in paths.values()):
        return paths

    now = datetime.datetime.utcnow()
    # Backdated a day so clock skew between processes never makes it "not yet valid".
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=3650)

    ca_key = _key()
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailrig"),
        x509.NameAttribute(NameOID.COMMON_NAME, "mailrig test CA"),
    ])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256(), default_backend())
    )

    srv_key = _key()
    san = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    srv_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailrig"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(srv_key.public_key()), critical=False
        )
        # Python >= 3.13 sets VERIFY_X509_STRICT, which requires the AKI extension.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256(), default_backend())
    )

    # Keys first: a crash mid-way leaves no ca.pem, so the next run regenerates all.
    _write(paths["ca_key"], _pem_key(ca_key), 0o600)
    _write(paths["key_file"], _pem_key(srv_key), 0o600)
    _write(paths["cert_file"], srv_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths["ca_file"], ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths
