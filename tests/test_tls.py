"""TLS policy: the SSLContext and how certificate failures are explained.

Handshakes run against small real TLS listeners on loopback (ssl module, one
connection each) with certificates made here: self-signed, private CA,
wrong host name, expired -- cases the shared mail rig does not serve.
"""
import datetime
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from imap_sent_sync.mailsync.errors import TlsError
from imap_sent_sync.mailsync.tls import (
    check_ca_pem, describe_tls, make_ssl_context, tls_error_from,
)


# -- certificates -----------------------------------------------------------

def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tls-test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject, key, issuer=None, issuer_key=None, dns_names=("localhost",), ca=False,
          days_valid=(-1, 365)):
    now = datetime.datetime.utcnow()
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject))
               .issuer_name(_name(issuer or subject))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days_valid[0]))
               .not_valid_after(now + datetime.timedelta(days=days_valid[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256(), default_backend())


def _key():
    return ec.generate_private_key(ec.SECP256R1(), default_backend())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


class Certs:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.ca_key = _key()
        self.ca = _cert("tls-test CA", self.ca_key, ca=True, dns_names=())
        self.leaf_key = _key()
        self.leaf = _cert("localhost", self.leaf_key, issuer="tls-test CA", issuer_key=self.ca_key)
        self.self_signed = _cert("localhost", self.leaf_key)
        self.other_host = _cert("other.test", self.leaf_key, issuer="tls-test CA",
                                issuer_key=self.ca_key, dns_names=("other.test",))
        self.expired = _cert("localhost", self.leaf_key, issuer="tls-test CA",
                             issuer_key=self.ca_key, days_valid=(-30, -1))

    def server_context(self, cert):
        cert_path = self.dir / ("cert-%s.pem" % cert.serial_number)
        key_path = self.dir / "key.pem"
        cert_path.write_text(_pem(cert))
        key_path.write_text(_pem_key(self.leaf_key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


# -- one-shot loopback servers ----------------------------------------------

class OneShotServer:
    """Accepts one connection; TLS handshake with ``context``, or a plain IMAP greeting."""

    def __init__(self, context=None):
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(10)
        try:
            conn, _addr = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                if self.context is None:
                    conn.sendall(b"* OK plain IMAP here\r\n")
                    conn.recv(1024)
                else:
                    with self.context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
            except OSError:
                pass

    def close(self):
        self.listener.close()
        self.thread.join(5)


def handshake(port, client_context, host="localhost"):
    """Client handshake; returns the TLS socket or the translated TlsError."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return client_context.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, ssl.CertificateError) as exc:
        sock.close()
        return tls_error_from(exc, host, port, "imap_tls")


def against(server_context, client_context, host="localhost"):
    server = OneShotServer(server_context)
    try:
        result = handshake(server.port, client_context, host)
        if isinstance(result, ssl.SSLSocket):
            summary = describe_tls(result)
            result.close()
            return summary
        return result
    finally:
        server.close()


# -- the context ------------------------------------------------------------

def test_default_context_verifies_chain_and_hostname():
    context = make_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_custom_ca_keeps_verification_on(certs):
    context = make_ssl_context(_pem(certs.ca))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert any(c["subject"] == ((("organizationName", "tls-test"),),
                                (("commonName", "tls-test CA"),))
               for c in context.get_ca_certs())


def test_pasted_pem_with_crlf_and_indentation_is_accepted(certs):
    messy = "\r\n".join("   " + line for line in _pem(certs.ca).splitlines()) + "\r\n\r\n"
    check_ca_pem(messy)  # no exception


@pytest.mark.parametrize("text", ["not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                  "-----END CERTIFICATE-----\n"])
def test_invalid_custom_ca_is_a_clear_error(text):
    with pytest.raises(TlsError) as caught:
        make_ssl_context(text)
    assert caught.value.reason == "bad_ca"
    assert "PEM" in caught.value.hint


def test_blank_custom_ca_means_system_cas_only():
    assert make_ssl_context("  \n").get_ca_certs() == make_ssl_context().get_ca_certs()


# -- handshakes and how failures read --------------------------------------

def test_trusted_private_ca_handshake_and_summary(certs):
    summary = against(certs.server_context(certs.leaf), make_ssl_context(_pem(certs.ca)))
    assert isinstance(summary, str), summary
    assert summary.startswith("TLS 1.")
    assert "certificate for localhost issued by tls-test" in summary
    assert "valid until" in summary


def test_private_ca_not_given_is_untrusted(certs):
    error = against(certs.server_context(certs.leaf), make_ssl_context())
    assert isinstance(error, TlsError)
    assert error.reason == "untrusted"
    assert "unknown certificate authority" in error.message
    assert "Custom CA" in error.hint
    assert error.step == "imap_tls"


def test_self_signed_leaf_says_so(certs):
    error = against(certs.server_context(certs.self_signed), make_ssl_context())
    assert error.reason == "self_signed"
    assert "self-signed" in error.message
    assert "Custom CA" in error.hint


def test_self_signed_leaf_trusted_when_pasted(certs):
    summary = against(certs.server_context(certs.self_signed),
                      make_ssl_context(_pem(certs.self_signed)))
    assert isinstance(summary, str), summary


def test_pasted_server_certificate_alone_is_a_trust_anchor(certs):
    # The user pastes the server's own certificate (not its CA): partial chain.
    summary = against(certs.server_context(certs.leaf), make_ssl_context(_pem(certs.leaf)))
    assert isinstance(summary, str), summary


def test_hostname_mismatch(certs):
    error = against(certs.server_context(certs.other_host), make_ssl_context(_pem(certs.ca)))
    assert error.reason == "hostname"
    assert "not valid for 'localhost'" in error.message


def test_expired_certificate(certs):
    error = against(certs.server_context(certs.expired), make_ssl_context(_pem(certs.ca)))
    assert error.reason == "expired"
    assert "expired" in error.message


def test_plain_text_server_on_a_tls_port(certs):
    error = against(None, make_ssl_context())
    assert error.reason == "not_tls"
    assert "STARTTLS" in error.hint


def test_describe_tls_without_tls():
    with socket.socket() as sock:
        assert describe_tls(sock) == "no encryption"
