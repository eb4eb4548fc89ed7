"""Where and how to connect: one IMAP or SMTP server endpoint."""
from dataclasses import dataclass, field

from .errors import AuthError, MailsyncError, UnencryptedNotAllowed

SECURITY_SSL = "ssl"            # implicit TLS from the first byte (IMAP 993, SMTP 465)
SECURITY_STARTTLS = "starttls"  # plain connect, then STARTTLS, refused if not offered
SECURITY_NONE = "none"          # clear text, only with allow_unencrypted
SECURITY_CHOICES = (
    (SECURITY_SSL, "SSL/TLS"),
    (SECURITY_STARTTLS, "STARTTLS"),
    (SECURITY_NONE, "None (unencrypted)"),
)
DEFAULT_TIMEOUT = 20.0


@dataclass
class Endpoint:
    """One server to talk to, and the credential to log in with.

    ``secret`` is excluded from repr so that logging an Endpoint, or an
    exception showing one, never shows the password. Certificates are always
    verified; ``ca_pem`` adds a trusted CA (e.g. a self-hosted server's own CA).
    """

    host: str
    port: int
    security: str
    login: str
    secret: str = field(repr=False)
    ca_pem: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    allow_unencrypted: bool = False

    def __post_init__(self):
        self.host = (self.host or "").strip()
        self.login = (self.login or "").strip()
        self.secret = self.secret or ""
        self.security = (self.security or "").strip().lower()
        if self.security not in dict(SECURITY_CHOICES):
            raise MailsyncError(
                "Unknown security %r." % self.security,
                "Choose SSL/TLS, STARTTLS or None.", reason="config")
        if not self.host:
            raise MailsyncError("The server name is empty.", "Enter the server name.",
                                reason="config")
        try:
            self.port = int(self.port)
        except (TypeError, ValueError):
            raise MailsyncError("The port %r is not a number." % (self.port,),
                                "Enter a port between 1 and 65535.", reason="config") from None
        if not 0 < self.port < 65536:
            raise MailsyncError("The port %s is out of range." % self.port,
                                "Enter a port between 1 and 65535.", reason="config")
        if not self.timeout or self.timeout <= 0:
            # A socket without a timeout can hang a worker forever.
            self.timeout = DEFAULT_TIMEOUT

    def check_credentials(self, step=None):
        """Refuse to log in with an empty login or secret (a clear error, not a server NO)."""
        if not self.login:
            raise AuthError("No login name is set for %s." % self.describe(),
                            "Enter the login, usually the full email address.", step,
                            reason="no_login")
        if not self.secret:
            raise AuthError("No password is stored for %s." % self.describe(),
                            "Enter the password or app password.", step, reason="no_secret")

    @property
    def is_encrypted(self):
        return self.security != SECURITY_NONE

    def describe(self):
        """'imap.example.com:993 (SSL/TLS)' -- safe to show and log."""
        return "%s:%s (%s)" % (self.host, self.port, dict(SECURITY_CHOICES)[self.security])

    def check_security_allowed(self, step=None):
        """Refuse clear text unless the user explicitly accepted it."""
        if self.security == SECURITY_NONE and not self.allow_unencrypted:
            raise UnencryptedNotAllowed(
                "Security 'None' sends the password and all mail unencrypted, and it has "
                "not been allowed for this mailbox.",
                "Choose SSL/TLS or STARTTLS. Only if the server really offers neither, tick "
                "'I understand the password travels unencrypted'.",
                step, reason="unencrypted_not_allowed")
