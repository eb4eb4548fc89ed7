"""python -m mailrig serve [--demo] [--workdir DIR] [--imaps-port N] [--smtp-port N] ...

Starts a rig, prints ONE JSON line (host, ports, ca_file, users with passwords)
on stdout, then stays up until SIGTERM/SIGINT and stops cleanly (exit 0).
With a fixed --workdir and ports, a restarted rig keeps the same CA, users and
mail, so an Odoo demo mailbox pointing at it keeps working.
"""
import argparse
import json
import signal
import sys
import threading

from .demo import seed_demo
from .rig import MailRig


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mailrig")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="run a rig until SIGTERM/SIGINT")
    serve.add_argument("--demo", action="store_true",
                       help="add demo@rig.test (standard layout) with a few seeded messages")
    serve.add_argument("--workdir", help="keep CA, certs, users and mail here across runs")
    serve.add_argument("--imaps-port", type=int)
    serve.add_argument("--imap-port", type=int)
    serve.add_argument("--smtp-port", type=int)
    serve.add_argument("--smtps-port", type=int)
    serve.add_argument("--saves-sent", action="store_true",
                       help="SMTP also files submitted mail in the sender's Sent folder")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)

    rig = MailRig(workdir=args.workdir, imaps_port=args.imaps_port, imap_port=args.imap_port,
                  smtp_port=args.smtp_port, smtps_port=args.smtps_port)
    rig.start()
    try:
        rig.smtp_saves_sent = args.saves_sent
        if args.demo:
            seed_demo(rig)
        sys.stdout.write(json.dumps(rig.info(), sort_keys=True) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        rig.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
