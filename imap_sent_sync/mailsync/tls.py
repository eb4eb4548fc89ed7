"""TLS policy: always verify the certificate chain and the host name.

One function builds the ssl.SSLContext for every IMAP and SMTP connection, so
there is exactly one place where the policy lives. The only knob is an extra
trusted CA (PEM text) per mailbox, for self-hosted servers with a private CA or
a self-signed certificate; verification itself can never be switched off.
"""
import functools
import ssl
from datetime import datetime, timezone

from .endpoint import SECURITY_NONE
from .errors import TlsError

# OpenSSL X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code) we explain.
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_SELF_SIGNED_LEAF = 18
_SELF_SIGNED_IN_CHAIN = 19
_UNKNOWN_ISSUER_CODES = {2, 19, 20, 21}
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64

_CUSTOM_CA_HINT = ("If this is your own or your company's server, paste its CA certificate "
                   "(PEM text, -----BEGIN CERTIFICATE-----) into the Custom CA field.")

# OpenSSL error reasons meaning "the other side does not speak TLS here".
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                    "HTTP_REQUEST", "UNKNOWN_PROTOCOL")
_OLD_TLS_REASONS = ("UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION",
                    "NO_PROTOCOLS_AVAILABLE", "VERSION_TOO_LOW")


def ssl_context_for(endpoint, step):
    """The SSLContext for ``endpoint`` (None for an unencrypted one).

    A bad custom CA is reported as a failure of ``step`` (the protocol's TLS step).
    """
    if endpoint.security == SECURITY_NONE:
        return None
    try:
        return make_ssl_context(endpoint.ca_pem)
    except TlsError as exc:
        exc.step = step
        raise


def make_ssl_context(ca_pem=None):
    """The SSLContext for a mailbox: system CAs, plus ``ca_pem`` when given.

    Hostname checking and chain verification stay on (create_default_context).
    TLS 1.2 is the minimum: older versions are broken and no mail provider
    still needs them.

    Contexts are shared per CA text: loading the system CA bundle costs tens
    of milliseconds, and an SSLContext can serve any number of connections.
    Callers must not modify the returned context.
    """
    ca_pem = _normalise_pem(ca_pem) if ca_pem and ca_pem.strip() else None
    return _context_for(ca_pem)


@functools.lru_cache(maxsize=64)
def _context_for(ca_pem):
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem:
        try:
            context.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise TlsError(
                "The custom CA certificate could not be read.",
                "Paste the certificate as PEM text, including the -----BEGIN CERTIFICATE----- "
                "and -----END CERTIFICATE----- lines.",
                reason="bad_ca", detail=str(exc)) from None
        # Let a pasted server certificate (not only a root CA) be a trust anchor,
        # as Python 3.13 does by default. The user chose to trust exactly it.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def _normalise_pem(text):
    # Text fields pasted from a browser or a Windows editor carry CRLF or
    # stray indentation, which OpenSSL's PEM reader does not accept.
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line) + "\n"


def check_ca_pem(ca_pem):
    """Raise TlsError if ``ca_pem`` is not usable; for validating a form field."""
    make_ssl_context(ca_pem)


def tls_error_from(exc, host, port, step=None):
    """Explain a TLS failure: which certificate problem, or why no handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate_error(exc, host, step)
    if isinstance(exc, ssl.CertificateError):  # alias of the above in 3.7+, kept for safety
        return TlsError("The server's certificate is not valid for %r." % host,
                        _hostname_hint(host), step, reason="hostname", detail=str(exc))
    reason = (getattr(exc, "reason", None) or "").upper()
    text = str(exc)
    if any(r in reason or r in text.upper() for r in _NOT_TLS_REASONS):
        return TlsError(
            "%s port %s did not answer with TLS: it probably expects STARTTLS or no "
            "encryption on this port." % (host, port),
            "Ports 993 (IMAP) and 465 (SMTP) use SSL/TLS; ports 143 (IMAP) and 587 (SMTP) "
            "use STARTTLS. Match the security to the port.",
            step, reason="not_tls", detail=text)
    if any(r in reason or r in text.upper() for r in _OLD_TLS_REASONS):
        return TlsError(
            "%s only offers outdated TLS versions (older than TLS 1.2), which are refused."
            % host,
            "Ask the server's administrator to enable TLS 1.2 or 1.3.",
            step, reason="old_tls", detail=text)
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return TlsError(
            "%s closed the connection during the TLS handshake." % host,
            "Check that the port and security match (993/465 SSL/TLS, 143/587 STARTTLS).",
            step, reason="handshake", detail=text)
    return TlsError("The TLS handshake with %s failed: %s" % (host, reason or text),
                    "Check the port and security, or ask the server's administrator.",
                    step, reason="handshake", detail=text)


def _certificate_error(exc, host, step):
    code = getattr(exc, "verify_code", None)
    detail = str(exc)
    if code == _SELF_SIGNED_LEAF:
        return TlsError("The server's certificate is self-signed, so it cannot be verified.",
                        _CUSTOM_CA_HINT, step, reason="self_signed", detail=detail)
    if code in _UNKNOWN_ISSUER_CODES:
        return TlsError(
            "The server's certificate is signed by an unknown certificate authority "
            "(a private CA or a self-signed chain), so it cannot be verified.",
            _CUSTOM_CA_HINT, step, reason="untrusted", detail=detail)
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
        return TlsError("The server's certificate is not valid for %r." % host,
                        _hostname_hint(host), step, reason="hostname", detail=detail)
    if code == _CERT_HAS_EXPIRED:
        return TlsError("The server's certificate has expired.",
                        "The server's administrator must renew the certificate. If it looks "
                        "valid, check this machine's clock.",
                        step, reason="expired", detail=detail)
    if code == _CERT_NOT_YET_VALID:
        return TlsError("The server's certificate is not valid yet.",
                        "Check this machine's date and time.",
                        step, reason="not_yet_valid", detail=detail)
    return TlsError("The server's certificate could not be verified: %s."
                    % (getattr(exc, "verify_message", None) or detail),
                    _CUSTOM_CA_HINT, step, reason="certificate", detail=detail)


def _hostname_hint(host):
    return ("Connect with a host name the certificate is issued for, usually the provider's "
            "official server name (not an IP address or an alias of %r)." % host)


def describe_tls(sock):
    """'TLS 1.3, certificate for imap.x.com issued by R3, valid until 2026-09-01' for a socket."""
    if not isinstance(sock, ssl.SSLSocket):
        return "no encryption"
    parts = [(sock.version() or "TLS").replace("TLSv", "TLS ")]
    cert = sock.getpeercert() or {}
    subject = _name_field(cert.get("subject"), "commonName")
    issuer = _name_field(cert.get("issuer"), "organizationName") or _name_field(
        cert.get("issuer"), "commonName")
    if subject:
        parts.append("certificate for %s" % subject + (" issued by %s" % issuer if issuer else ""))
    not_after = cert.get("notAfter")
    if not_after:
        expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), timezone.utc)
        parts.append("valid until %s" % expires.strftime("%Y-%m-%d"))
    return ", ".join(parts)


def _name_field(name, key):
    for rdn in name or ():
        for attr, value in rdn:
            if attr == key:
                return value
    return None
