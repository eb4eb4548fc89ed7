#!/usr/bin/env bash
# Runs the whole test suite: protocol tests (tests/, real Dovecot + SMTP started by
# the tests) and the Odoo addon tests (real PostgreSQL, a fresh database with the
# addons installed), in one pytest run. Extra arguments go to pytest, e.g.
#   scripts/test.sh -k connection -x
# Exits non-zero when any test fails or errors, or when nothing could run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/odoo_env.sh

RUN_DIR="$(mktemp -d /tmp/imap_sent_sync-test.XXXXXX)"
DB="imap_sent_sync_test_$$"
CONF="$RUN_DIR/odoo.conf"
write_odoo_conf "$CONF" "$RUN_DIR/data" "db_name = $DB"

cleanup() {
    dropdb --if-exists "$DB" >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT

# mass_mailing is installed too: the outbound tests prove that mass mailings get
# no Sent copy by default, which needs the app to exist.
INSTALL="$OUR_ADDONS,mass_mailing"
echo "[test] installing $INSTALL into fresh database $DB" >&2
if ! odoo_bin -c "$CONF" -d "$DB" -i "$INSTALL" --without-demo=all --stop-after-init \
        --log-level=warn > "$RUN_DIR/install.log" 2>&1; then
    cat "$RUN_DIR/install.log" >&2
    echo "[test] ERROR: installing the addons failed" >&2
    exit 1
fi
# Odoo logs load errors without failing the exit code: treat them as failures.
if grep -E " (ERROR|CRITICAL) " "$RUN_DIR/install.log" >&2; then
    echo "[test] ERROR: installing the addons logged errors" >&2
    exit 1
fi

test_paths=(tests imap_sent_sync/tests)
[ -d imap_sent_sync_crm/tests ] && test_paths+=(imap_sent_sync_crm/tests)
echo "[test] running pytest ${test_paths[*]}" >&2
set +e
# A skipped test did not run: conftest.py turns any skip into a failure.
MAILSYNC_FAIL_ON_SKIP=1 "$ODOO_VENV/bin/pytest" --odoo-config="$CONF" --odoo-database="$DB" --odoo-log-level=warn \
    -p no:cacheprovider "${test_paths[@]}" "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is not a green run.
[ "$rc" = 5 ] && echo "[test] ERROR: no test ran" >&2
exit "$rc"
