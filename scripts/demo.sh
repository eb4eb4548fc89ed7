#!/usr/bin/env bash
# Starts the product for a newcomer: a local Dovecot + SMTP server holding a demo
# mailbox, and Odoo 18 with imap_sent_sync installed in a demo database where the
# demo user's mailbox is already connected to that Dovecot. Ctrl-C stops it all.
#
#   DEMO_PORT   Odoo HTTP port (default 8069)
#   DEMO_DIR    state kept between runs (default .demo/ in this checkout):
#               the mail server's CA and mail, Odoo's data_dir
#   DEMO_RIG_DIR  the local mail server's CA, users and mail (default
#               /var/tmp/imap_sent_sync-demo-rig: Dovecot reads mail as an
#               unprivileged user, so it must not live under /root)
#   DEMO_RESET=1  start from a fresh database and mailbox
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/odoo_env.sh

DEMO_PORT="${DEMO_PORT:-8069}"
DEMO_DIR="${DEMO_DIR:-$REPO/.demo}"
DEMO_RIG_DIR="${DEMO_RIG_DIR:-/var/tmp/imap_sent_sync-demo-rig}"
DB="${DEMO_DB:-imap_sent_sync_demo}"
IMAPS_PORT="${DEMO_IMAPS_PORT:-10993}"
SMTP_PORT="${DEMO_SMTP_PORT:-10587}"
if [ "${DEMO_RESET:-0}" = 1 ]; then
    dropdb --if-exists "$DB"; rm -rf "$DEMO_DIR" "$DEMO_RIG_DIR"
fi
mkdir -p "$DEMO_DIR"
CONF="$DEMO_DIR/odoo.conf"
write_odoo_conf "$CONF" "$DEMO_DIR/data" "db_name = $DB" "http_port = $DEMO_PORT" "dbfilter = ^$DB\$"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "[demo] starting the local mail server (Dovecot + SMTP) on 127.0.0.1" >&2
rm -f "$DEMO_DIR/rig.json"
"$ODOO_VENV/bin/python" -m mailrig serve --demo --workdir "$DEMO_RIG_DIR" \
    --imaps-port "$IMAPS_PORT" --smtp-port "$SMTP_PORT" > "$DEMO_DIR/rig.json" 2> "$DEMO_DIR/rig.log" &
pids+=($!)
for _ in $(seq 1 60); do [ -s "$DEMO_DIR/rig.json" ] && break; sleep 0.5; done
[ -s "$DEMO_DIR/rig.json" ] || { cat "$DEMO_DIR/rig.log" >&2; echo "[demo] ERROR: mail server did not start" >&2; exit 1; }

if ! psql -lqt | cut -d'|' -f1 | grep -qw "$DB"; then
    echo "[demo] creating database $DB with Odoo's demo data and $OUR_ADDONS (about a minute)" >&2
    odoo_bin -c "$CONF" -d "$DB" -i "contacts,crm,$OUR_ADDONS" --stop-after-init --log-level=warn
else
    # The checkout may have moved on since the database was made.
    echo "[demo] updating $OUR_ADDONS in $DB" >&2
    odoo_bin -c "$CONF" -d "$DB" -i "$OUR_ADDONS" -u "$OUR_ADDONS" --stop-after-init --log-level=warn
fi
echo "[demo] connecting the demo user's mailbox to the local Dovecot" >&2
DEMO_RIG_INFO="$DEMO_DIR/rig.json" odoo_bin shell -c "$CONF" -d "$DB" --log-level=warn --no-http \
    < scripts/demo_setup.py

cat >&2 <<MSG

  imap_sent_sync demo is starting:  http://localhost:$DEMO_PORT
    sales rep:  login demo   password demo   (Email Sync > My Mailboxes: demo@rig.test, connected)
    manager:    login admin  password admin
  The mailbox lives on a local Dovecot (IMAPS 127.0.0.1:$IMAPS_PORT, SMTP 127.0.0.1:$SMTP_PORT);
  its users and passwords are in $DEMO_DIR/rig.json. Ctrl-C stops everything.

MSG
odoo_bin -c "$CONF" -d "$DB" &
pids+=($!)
wait "${pids[-1]}"
