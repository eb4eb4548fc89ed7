"""Provider presets: server settings and known quirks of common mail providers.

Values are the providers' published IMAP/SMTP settings. Connection limits are
approximate (providers rarely document them, the numbers are the widely
reported ones) and only used to stay well below them. ``saves_sent_copy`` says
whether the provider files a copy of mail sent through its SMTP server in the
Sent folder by itself; the sync still searches by Message-ID before APPEND,
so a wrong guess costs a search, never a duplicate.

``domains`` drive ``suggest_preset``: entries are exact domains, or
"name.*" for a family of national domains (hotmail.com, hotmail.co.uk...).
Google Workspace and Microsoft 365 run on the customer's own domains, which
cannot be guessed from the address, so those presets list no domains.
"""
from dataclasses import dataclass
from email.utils import parseaddr


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = "ssl"
    smtp_host: str = ""
    smtp_port: int = 465
    smtp_security: str = "ssl"
    app_password_hint: str = ""
    saves_sent_copy: bool = False
    sent_folder: str | None = None
    max_connections: int | None = None   # approximate, per account
    domains: tuple = ()
    notes: str = ""


_PRESET_LIST = [
    Preset(
        "gmail", "Gmail / Google Workspace",
        imap_host="imap.gmail.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.gmail.com", smtp_port=465, smtp_security="ssl",
        app_password_hint=(
            "Google requires an app password: turn on 2-Step Verification for the Google "
            "account, then create an app password at https://myaccount.google.com/apppasswords "
            "and paste it here instead of the normal password. IMAP is always on for Gmail "
            "accounts; in Google Workspace the administrator must allow IMAP (Admin console > "
            "Apps > Google Workspace > Gmail > End User Access)."),
        saves_sent_copy=True,
        sent_folder="[Gmail]/Sent Mail",
        max_connections=15,
        domains=("gmail.com", "googlemail.com"),
        notes=(
            "Gmail files mail sent through smtp.gmail.com in Sent Mail itself. Labels are "
            "folders: one message can be in INBOX, a label and [Gmail]/All Mail at once. Some "
            "accounts show localized names ([Google Mail]/..., [Gmail]/Gesendet); roles come "
            "from SPECIAL-USE. Removing a message from a label folder only removes the label; "
            "it stays in All Mail. Google Workspace addresses use the company's own domain."),
    ),
    Preset(
        "outlook", "Outlook.com / Hotmail / Live",
        imap_host="outlook.office365.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp-mail.outlook.com", smtp_port=587, smtp_security="starttls",
        app_password_hint=(
            "With two-step verification on, create an app password at "
            "https://account.live.com/proofs/AppPassword (Microsoft account > Security > "
            "Advanced security options > App passwords). Microsoft is retiring password "
            "sign-in for IMAP/SMTP on Outlook.com: if a correct app password is refused, the "
            "account needs OAuth2, which this connector does not support yet."),
        saves_sent_copy=True,
        sent_folder="Sent",
        max_connections=16,
        domains=("outlook.com", "outlook.*", "hotmail.*", "live.*", "msn.com",
                 "windowslive.com", "passport.com"),
        notes=("Outlook.com files mail sent through its SMTP in Sent itself. Folder names are "
               "Sent, Deleted, Junk, Archive; connection limit approximate (Exchange default)."),
    ),
    Preset(
        "microsoft365", "Microsoft 365 (work or school)",
        imap_host="outlook.office365.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.office365.com", smtp_port=587, smtp_security="starttls",
        app_password_hint=(
            "Your Microsoft 365 administrator must enable IMAP and Authenticated SMTP for this "
            "mailbox (Microsoft 365 admin center > Users > Active users > Mail > Manage email "
            "apps). Microsoft has switched off password (basic) authentication for IMAP in "
            "Exchange Online and is retiring it for SMTP: unless your tenant still allows it, "
            "the mailbox needs OAuth2, which this connector does not support yet."),
        saves_sent_copy=True,
        sent_folder="Sent Items",
        max_connections=16,
        domains=(),
        notes=("Exchange Online files mail sent through smtp.office365.com in Sent Items "
               "itself. Folders: Sent Items, Deleted Items, Junk Email, Archive. Uses the "
               "organisation's own domain, so it is never guessed from the address."),
    ),
    Preset(
        "yahoo", "Yahoo Mail",
        imap_host="imap.mail.yahoo.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.mail.yahoo.com", smtp_port=465, smtp_security="ssl",
        app_password_hint=(
            "Yahoo requires an app password: open https://login.yahoo.com/account/security, "
            "choose 'Generate app password' and paste it here instead of the normal password."),
        sent_folder="Sent",
        domains=("yahoo.*", "ymail.com", "rocketmail.com"),
        notes="Yahoo Japan (yahoo.co.jp) is a different service with other servers.",
    ),
    Preset(
        "aol", "AOL Mail",
        imap_host="imap.aol.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.aol.com", smtp_port=465, smtp_security="ssl",
        app_password_hint=(
            "AOL requires an app password: open https://login.aol.com/account/security, "
            "choose 'Generate app password' and paste it here instead of the normal password."),
        sent_folder="Sent",
        domains=("aol.com", "aol.*", "aim.com", "verizon.net"),
        notes="Verizon.net mailboxes are hosted by AOL.",
    ),
    Preset(
        "icloud", "iCloud Mail",
        imap_host="imap.mail.me.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.mail.me.com", smtp_port=587, smtp_security="starttls",
        app_password_hint=(
            "Apple requires an app-specific password: with two-factor authentication on, "
            "create one at https://account.apple.com (Sign-In and Security > App-Specific "
            "Passwords). Log in with your iCloud email address; if that is refused, try only "
            "the part before the @."),
        sent_folder="Sent Messages",
        domains=("icloud.com", "me.com", "mac.com"),
        notes="Folders: Sent Messages, Deleted Messages, Junk, Archive.",
    ),
    Preset(
        "fastmail", "Fastmail",
        imap_host="imap.fastmail.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.fastmail.com", smtp_port=465, smtp_security="ssl",
        app_password_hint=(
            "Fastmail requires an app password: Settings > Privacy & Security > "
            "Manage app passwords > New app password, with access to IMAP and SMTP."),
        sent_folder="Sent",
        domains=("fastmail.com", "fastmail.fm", "fastmail.*", "messagingengine.com"),
    ),
    Preset(
        "zoho", "Zoho Mail",
        imap_host="imap.zoho.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.zoho.com", smtp_port=465, smtp_security="ssl",
        app_password_hint=(
            "Turn on IMAP first: Zoho Mail > Settings > Mail Accounts > IMAP Access. With "
            "two-factor authentication, create an application-specific password at "
            "https://accounts.zoho.com (Security > App Passwords) and use it here."),
        sent_folder="Sent",
        domains=("zoho.com", "zohomail.com"),
        notes=("Accounts in the EU, India or Australia data centres use imap.zoho.eu / "
               "smtp.zoho.eu (.in, .com.au); organisation accounts on their own domain use "
               "imappro.zoho.com / smtppro.zoho.com."),
    ),
    Preset(
        "yandex", "Yandex Mail",
        imap_host="imap.yandex.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.yandex.com", smtp_port=465, smtp_security="ssl",
        app_password_hint=(
            "Allow IMAP in Yandex Mail (All settings > Email clients > 'From the "
            "imap.yandex.com server via IMAP', with app passwords), then create an app "
            "password for Mail at https://id.yandex.com/security/app-passwords."),
        sent_folder="Sent",
        domains=("yandex.ru", "yandex.com", "ya.ru", "yandex.by", "yandex.kz", "yandex.ua",
                 "narod.ru"),
    ),
    Preset(
        "gmx", "GMX (gmx.net, gmx.de, gmx.at, gmx.ch)",
        imap_host="imap.gmx.net", imap_port=993, imap_security="ssl",
        smtp_host="mail.gmx.net", smtp_port=587, smtp_security="starttls",
        app_password_hint=(
            "IMAP is off by default: in GMX webmail open Settings > POP3 & IMAP and allow "
            "access via POP3 and IMAP. With two-factor authentication, create an "
            "application-specific password in the GMX security settings."),
        sent_folder="Gesendet",
        domains=("gmx.de", "gmx.net", "gmx.at", "gmx.ch"),
    ),
    Preset(
        "gmx_com", "GMX.com (international)",
        imap_host="imap.gmx.com", imap_port=993, imap_security="ssl",
        smtp_host="mail.gmx.com", smtp_port=587, smtp_security="starttls",
        app_password_hint=(
            "IMAP is off by default: in GMX webmail open Settings > POP3 & IMAP and allow "
            "access via POP3 and IMAP."),
        sent_folder="Sent",
        domains=("gmx.com", "gmx.*"),
    ),
    Preset(
        "mail_com", "mail.com",
        imap_host="imap.mail.com", imap_port=993, imap_security="ssl",
        smtp_host="smtp.mail.com", smtp_port=587, smtp_security="starttls",
        app_password_hint=(
            "Allow IMAP in mail.com: Settings > POP3 & IMAP > allow access. mail.com offers "
            "IMAP only on some (paid) plans."),
        sent_folder="Sent",
        domains=("mail.com", "email.com", "usa.com", "myself.com", "post.com", "europe.com",
                 "consultant.com", "engineer.com", "techie.com", "dr.com", "writeme.com",
                 "iname.com", "accountant.com", "cheerful.com"),
    ),
    Preset(
        "web_de", "WEB.DE",
        imap_host="imap.web.de", imap_port=993, imap_security="ssl",
        smtp_host="smtp.web.de", smtp_port=587, smtp_security="starttls",
        app_password_hint=(
            "IMAP is off by default: in WEB.DE webmail open Einstellungen > POP3/IMAP Abruf "
            "and allow access via POP3 and IMAP."),
        sent_folder="Gesendet",
        domains=("web.de",),
    ),
    Preset(
        "t_online", "Telekom (t-online.de)",
        imap_host="secureimap.t-online.de", imap_port=993, imap_security="ssl",
        smtp_host="securesmtp.t-online.de", smtp_port=465, smtp_security="ssl",
        app_password_hint=(
            "Use the separate 'E-Mail-Passwort' set in the Telekom E-Mail Center "
            "(Einstellungen > Passwörter), not the Telekom login password."),
        sent_folder="Gesendet",
        domains=("t-online.de", "magenta.de"),
    ),
    Preset(
        "custom", "Other provider / own server",
        app_password_hint=(
            "Use the mailbox password, or an app password if your provider requires one (most "
            "do once two-step verification is on). Check that IMAP access is enabled for the "
            "mailbox; your provider's help pages list the IMAP and SMTP server names."),
        notes="Enter the servers by hand. For a server with a private CA, use the Custom CA field.",
    ),
]

PRESETS = {preset.key: preset for preset in _PRESET_LIST}

# Domains that look like a preset's family but belong to a different service.
_NOT_A_PRESET = {"yahoo.co.jp"}


def get_preset(key):
    """The Preset for ``key``; the "custom" preset for an unknown or empty key."""
    return PRESETS.get(key or "custom") or PRESETS["custom"]


def _domain_of(address):
    address = (address or "").strip()
    if "@" in address:
        address = parseaddr(address)[1] or address
        address = address.rsplit("@", 1)[-1]
    return address.strip().strip(".").lower()


def _matches(domain, pattern):
    if not pattern.endswith(".*"):
        return domain == pattern
    family = pattern[:-1]                      # "hotmail."
    if not domain.startswith(family):
        return False
    suffix = domain[len(family):]              # "com", "co.uk"
    return 1 <= len(suffix.split(".")) <= 2 and all(suffix.split("."))


def suggest_preset(address):
    """Preset key for an email address (or bare domain), None when it can't be told.

    Exact domains win over "name.*" families (gmx.net -> "gmx", gmx.fr -> "gmx_com").
    """
    domain = _domain_of(address)
    if not domain or domain in _NOT_A_PRESET:
        return None
    for preset in _PRESET_LIST:
        if domain in preset.domains:
            return preset.key
    for preset in _PRESET_LIST:
        if any(_matches(domain, pattern) for pattern in preset.domains if pattern.endswith(".*")):
            return preset.key
    return None


def login_failure_hint(preset_key=None):
    """What to tell a user whose password was refused, for this provider."""
    preset = get_preset(preset_key)
    return preset.app_password_hint or PRESETS["custom"].app_password_hint
