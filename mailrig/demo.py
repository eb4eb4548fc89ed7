"""Demo mailbox: demo@rig.test with a few messages exchanged with Odoo's demo
contacts (base/data/res_partner_demo.xml), plus one private message from a
non-contact that a correct sync must keep out of Odoo."""
import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

DEMO_NAME = "demo"
DEMO_PASSWORD = "demo-password"

# Odoo 18 demo partners (scripts/demo_setup.py makes sure they have these addresses).
AZURE = ("Azure Interior", "vauxoo@yourcompany.example.com")
BRANDON = ("Brandon Freeman", "brandon.freeman55@example.com")
DECO = ("Deco Addict", "info@agrolait.com")
WOOD = ("Wood Corner", "bhu.a100@ic.example.com")
PRIVATE = ("Sam Private", "sam@private.example.net")


def _msg(frm, to, subject, body, when, msgid, in_reply_to=None, cc=None):
    m = EmailMessage()
    m["From"] = '"%s" <%s>' % frm
    m["To"] = '"%s" <%s>' % to
    if cc:
        m["Cc"] = '"%s" <%s>' % cc
    m["Subject"] = subject
    m["Date"] = format_datetime(when)
    m["Message-ID"] = msgid
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    m.set_content(body)
    return m.as_bytes(policy=m.policy.clone(linesep="\r\n"))


def demo_messages(address, now=None):
    """[(folder, raw, flags, datetime)] -- dates within the default 60-day window."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    me = ("Demo User", address)
    d = lambda days, hours=0: now - datetime.timedelta(days=days, hours=hours)  # noqa: E731
    ids = [make_msgid(domain="demo.rig.test") for _ in range(6)]
    return [
        ("INBOX", _msg(BRANDON, me, "Quote for 20 office chairs",
                       "Hello,\n\nCould you send us a quote for 20 office chairs?\n\nBrandon",
                       d(9), ids[0]), (b"\\Seen",), d(9)),
        ("Sent", _msg(me, BRANDON, "Re: Quote for 20 office chairs",
                      "Hi Brandon,\n\nPlease find our quote attached shortly.\n\nDemo",
                      d(8), ids[1], in_reply_to=ids[0], cc=AZURE), (b"\\Seen",), d(8)),
        ("INBOX", _msg(BRANDON, me, "Re: Quote for 20 office chairs",
                       "Thanks, we will review it this week.\n\nBrandon",
                       d(7), ids[2], in_reply_to=ids[1]), (), d(7)),
        ("Sent", _msg(me, DECO, "Delivery schedule",
                      "Hello,\n\nYour order ships on Monday.\n\nDemo",
                      d(5), ids[3]), (b"\\Seen",), d(5)),
        ("INBOX", _msg(WOOD, me, "Invoice question",
                       "Hi,\n\nCan you confirm the invoice total?\n\nWood Corner",
                       d(2), ids[4]), (), d(2)),
        ("INBOX", _msg(PRIVATE, me, "Dinner on Friday?",
                       "Private note: are we still on for Friday?", d(1), ids[5]), (), d(1)),
    ]


def seed_demo(rig):
    """Add demo@rig.test (standard layout) and seed it once; idempotent across
    restarts with a kept workdir. Returns the RigUser."""
    user = rig.add_user(DEMO_NAME, password=DEMO_PASSWORD, layout="standard", exist_ok=True)
    if rig.folder_uids(user, "INBOX") or rig.folder_uids(user, "Sent"):
        return user
    for folder, raw, flags, when in demo_messages(user.address):
        rig.append(user, folder, raw, flags=flags, msg_time=when)
    return user
