"""Folder discovery: which folder is the Sent, Trash, Archive... of a mailbox.

Servers that support SPECIAL-USE (RFC 6154) say so with attributes on LIST
(\\Sent, \\Trash...); Gmail's older XLIST attributes (\\Inbox, \\Spam,
\\AllMail) are understood too. Servers without them (older Exchange, many
hosting providers) are recognised by well-known names, English and a few
common localized ones, at the top level or directly under INBOX / [Gmail].

Each role (other than "other") is given to at most one folder per mailbox:
an attribute beats a name, an earlier name in the list beats a later one
("Sent" beats "Sent Mail"), a shallower folder beats a deeper one.
"""
import re
from dataclasses import dataclass

ROLES = ("inbox", "sent", "archive", "trash", "drafts", "junk", "all", "other")

# SPECIAL-USE (RFC 6154) and Gmail XLIST attributes -> role. \Flagged and
# \Important are virtual views, not roles the sync uses: they stay "other".
_ATTRIBUTE_ROLES = {
    "\\sent": "sent",
    "\\trash": "trash",
    "\\drafts": "drafts",
    "\\junk": "junk",
    "\\spam": "junk",        # XLIST
    "\\archive": "archive",
    "\\all": "all",
    "\\allmail": "all",      # XLIST
    "\\inbox": "inbox",      # XLIST
}
_NOT_SELECTABLE = {"\\noselect", "\\nonexistent"}

# Role -> names, most specific first. Compared case-insensitively with the
# last component of the folder path.
KNOWN_NAMES = {
    "sent": (
        "Sent", "Sent Items", "Sent Messages", "Sent Mail", "Sent Mails", "Sent-Mail",
        "Sent Email", "Gesendet", "Gesendete Objekte", "Gesendete Elemente",
        "Envoyés", "Éléments envoyés", "Messages envoyés", "Enviados", "Elementos enviados",
        "Itens enviados", "Posta inviata", "Verzonden", "Verzonden items",
        "Skickat", "Skickade objekt", "Sendt", "Sendte elementer", "Wysłane",
        "Elementy wysłane", "Odeslaná pošta", "Отправленные",
    ),
    "trash": (
        "Trash", "Deleted Items", "Deleted Messages", "Deleted", "Bin", "Papierkorb",
        "Gelöschte Objekte", "Gelöschte Elemente", "Corbeille", "Éléments supprimés",
        "Papelera", "Elementos eliminados", "Lixeira", "Itens excluídos", "Cestino",
        "Posta eliminata", "Prullenbak", "Verwijderde items", "Papperskorgen",
        "Borttagna objekt", "Kosz", "Elementy usunięte", "Koš", "Корзина",
        "Удаленные",
    ),
    "drafts": (
        "Drafts", "Draft", "Entwürfe", "Brouillons", "Borradores", "Rascunhos", "Bozze",
        "Concepten", "Utkast", "Kladder", "Kopie robocze", "Koncepty", "Черновики",
    ),
    "junk": (
        "Junk", "Junk Email", "Junk E-mail", "Junk Mail", "Spam", "Bulk Mail",
        "Spamverdacht", "Junk-E-Mail", "Courrier indésirable", "Correo no deseado",
        "Lixo eletrônico", "Posta indesiderata", "Ongewenste e-mail", "Skräppost",
        "Wiadomości-śmieci", "Nevyžádaná pošta", "Спам",
    ),
    "archive": (
        "Archive", "Archives", "Archived", "Archiv", "Archivo", "Arquivo", "Archivio",
        "Archief", "Arkiv", "Archiwum", "Архив",
    ),
    "all": ("All Mail", "Alle Nachrichten", "Tous les messages", "Tutti i messaggi"),
}
_NAME_ROLES = {}
for _role, _names in KNOWN_NAMES.items():
    for _rank, _name in enumerate(_names):
        _NAME_ROLES.setdefault(_name.casefold(), (_role, _rank))

# Parents under which a known name still counts as the role folder
# ("INBOX.Sent" on Courier/Cyrus, "[Gmail]/Sent Mail").
_ROLE_PARENTS = {"inbox", "[gmail]", "[google mail]"}


@dataclass
class FolderInfo:
    path: str                 # decoded unicode, as given to imapclient
    delimiter: str            # "" for a flat namespace
    flags: tuple              # LIST attributes as str, e.g. ("\\HasNoChildren", "\\Sent")
    role: str = "other"
    selectable: bool = True
    role_source: str = ""     # "attribute", "name" or "" -- why the role was chosen

    @property
    def name(self):
        """Last component of the path, for display."""
        return _split(self.path, self.delimiter)[-1]


def _split(path, delimiter):
    return path.split(delimiter) if delimiter else [path]


def _as_str(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def is_inbox(path):
    # RFC 3501: INBOX is case-insensitive; every other name is case-sensitive.
    return path.upper() == "INBOX"


def role_from_attributes(flags):
    lowered = {_as_str(f).lower() for f in flags}
    for attribute, role in _ATTRIBUTE_ROLES.items():
        if attribute in lowered:
            return role
    return None


def role_from_name(path, delimiter):
    """(role, rank) if the path is a well-known folder name at a sensible depth."""
    parts = _split(path, delimiter)
    if len(parts) > 2 or (len(parts) == 2 and parts[0].casefold() not in _ROLE_PARENTS):
        return None
    return _NAME_ROLES.get(re.sub(r"\s+", " ", parts[-1]).strip().casefold())


def detect_role(path, flags, delimiter):
    """Role of one folder from its attributes, else its name; "other" when unknown."""
    if is_inbox(path):
        return "inbox"
    if not is_selectable(flags):
        return "other"
    role = role_from_attributes(flags)
    if role:
        return role
    by_name = role_from_name(path, delimiter)
    return by_name[0] if by_name else "other"


def is_selectable(flags):
    return not ({_as_str(f).lower() for f in flags} & _NOT_SELECTABLE)


def folder_infos(listing):
    """FolderInfo list from imapclient ``list_folders()`` tuples (flags, delimiter, name).

    Roles are unique per mailbox: see the module docstring for the tie-break.
    """
    folders = []
    for flags, delimiter, path in listing:
        path = _as_str(path)
        delimiter = _as_str(delimiter)
        flags = tuple(_as_str(f) for f in flags)
        folders.append(FolderInfo(path, delimiter, flags, "other", is_selectable(flags)))
    _assign_roles(folders)
    # Servers list in arbitrary order; show INBOX first, then by name.
    folders.sort(key=lambda f: (not is_inbox(f.path), f.path.casefold(), f.path))
    return folders


def _assign_roles(folders):
    candidates = {}  # role -> list of (priority tuple, folder)
    for folder in folders:
        if is_inbox(folder.path):
            folder.role, folder.role_source = "inbox", "name"
            continue
        if not folder.selectable:
            continue
        role = role_from_attributes(folder.flags)
        if role:
            priority = (0, 0)
            source = "attribute"
        else:
            by_name = role_from_name(folder.path, folder.delimiter)
            if not by_name:
                continue
            role, rank = by_name
            priority = (1, rank)
            source = "name"
        depth = len(_split(folder.path, folder.delimiter))
        candidates.setdefault(role, []).append(((*priority, depth, folder.path), folder, source))
    for role, found in candidates.items():
        if role == "inbox":  # an XLIST \Inbox on a localized name ("Posteingang")
            if any(f.role == "inbox" for f in folders):
                continue
        _priority, folder, source = min(found, key=lambda item: item[0])
        folder.role, folder.role_source = role, source


def list_folders(client):
    """All folders of the logged-in mailbox with their roles.

    Plain LIST carries SPECIAL-USE attributes on most servers (Dovecot, Gmail,
    Fastmail). A server that announces SPECIAL-USE but leaves them out of plain
    LIST is asked again with the RFC 6154 return option.
    """
    listing = client.list_folders()
    if client.has_capability("SPECIAL-USE") and not any(
            role_from_attributes(flags) for flags, _d, _n in listing):
        extended = _list_with_special_use(client)
        if extended:
            listing = _merge_attributes(listing, extended)
    return folder_infos(listing)


def _list_with_special_use(client):
    # imapclient 4.1 has no LIST RETURN option; use its own LIST plumbing
    # (the same parser list_folders uses) with the extended arguments.
    try:
        typ, data = client._imap._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        if typ != "OK":
            return []
        typ, data = client._imap._untagged_response(typ, data, "LIST")
        return client._proc_folder_list(data)
    except Exception:  # optional refinement: plain LIST already worked
        return []


def _merge_attributes(listing, extended):
    extra = {_as_str(name): tuple(flags) for flags, _delimiter, name in extended}
    merged = []
    for flags, delimiter, name in listing:
        more = tuple(f for f in extra.get(_as_str(name), ()) if f not in flags)
        merged.append((tuple(flags) + more, delimiter, name))
    return merged


def folder_for_role(folders, role):
    """The folder holding ``role``, or None."""
    for folder in folders:
        if folder.role == role:
            return folder
    return None


def find_folder(folders, path):
    for folder in folders:
        if folder.path == path or (is_inbox(path) and is_inbox(folder.path)):
            return folder
    return None
