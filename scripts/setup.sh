#!/usr/bin/env bash
# Prepares a machine to run imap_sent_sync: system packages, the Odoo 18.0 source
# tree, a virtualenv with Odoo's and our Python requirements, and a running
# PostgreSQL with a superuser role for the current user. Idempotent: a second run
# checks and returns in a second or two.
#
#   ODOO_SRC   Odoo 18.0 source tree (default /opt/odoo-18.0). Cloned from GitHub
#              when absent (needs internet).
#   ODOO_VENV  virtualenv to create/use (default /opt/odoo-18.0-venv).
#   PYTHON     interpreter for the virtualenv (default python3; Odoo 18 wants 3.10-3.12).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ODOO_SRC="${ODOO_SRC:-/opt/odoo-18.0}"
ODOO_VENV="${ODOO_VENV:-/opt/odoo-18.0-venv}"
PYTHON="${PYTHON:-python3}"

say() { echo "[setup] $*" >&2; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages -------------------------------------------------------
APT_PACKAGES=(git dovecot-imapd dovecot-lmtpd postgresql libldap2-dev libsasl2-dev
              libpq-dev python3-dev build-essential openssl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    # policy-rc.d keeps Debian from starting its own dovecot/postgresql services:
    # the tests run their own Dovecot and we start PostgreSQL ourselves below.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Odoo 18.0 source --------------------------------------------------------
if [ ! -f "$ODOO_SRC/odoo-bin" ]; then
    say "no Odoo source at $ODOO_SRC: cloning Odoo 18.0 (set ODOO_SRC to use an existing tree)"
    as_root mkdir -p "$(dirname "$ODOO_SRC")"
    git clone --quiet --depth 1 --branch 18.0 https://github.com/odoo/odoo.git "$ODOO_SRC" \
        || die "could not clone Odoo 18.0 into $ODOO_SRC. Put an Odoo 18.0 source tree there or set ODOO_SRC."
fi
grep -q "^version_info = (18, 0," "$ODOO_SRC/odoo/release.py" \
    || die "$ODOO_SRC is not Odoo 18.0 (see $ODOO_SRC/odoo/release.py)"

# --- virtualenv ----------------------------------------------------------------
if [ ! -x "$ODOO_VENV/bin/python" ]; then
    say "creating virtualenv $ODOO_VENV"
    "$PYTHON" -m venv "$ODOO_VENV"
fi
stamp="$ODOO_VENV/.imap_sent_sync-requirements"
want="$(cat "$ODOO_SRC/requirements.txt" "$REPO/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing Python requirements (Odoo's and ours) into $ODOO_VENV"
    # Some of Odoo's pinned sdists still import pkg_resources at build time,
    # which setuptools 81 removed.
    constraints="$(mktemp)"; echo 'setuptools<81' > "$constraints"
    "$ODOO_VENV/bin/pip" install -q --disable-pip-version-check "setuptools<81" wheel
    "$ODOO_VENV/bin/pip" install -q --disable-pip-version-check --build-constraint "$constraints" \
        -r "$ODOO_SRC/requirements.txt" -r "$REPO/requirements.txt"
    rm -f "$constraints"
    echo "$want" > "$stamp"
fi
# Odoo is not a pip package here: make the source tree importable in the venv
# (pytest-odoo imports it).
site="$("$ODOO_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$ODOO_SRC" > "$site/odoo-src.pth"
"$ODOO_VENV/bin/python" -c "import odoo.release, imapclient, cryptography" \
    || die "the virtualenv $ODOO_VENV cannot import odoo/imapclient/cryptography"

# --- PostgreSQL --------------------------------------------------------------------
if ! pg_isready -q 2>/dev/null; then
    if command -v pg_lsclusters >/dev/null; then
        read -r pg_version pg_cluster _ < <(pg_lsclusters -h | head -n1)
        say "starting PostgreSQL $pg_version/$pg_cluster"
        as_root pg_ctlcluster "$pg_version" "$pg_cluster" start
    fi
    for _ in $(seq 1 30); do pg_isready -q && break; sleep 1; done
    pg_isready -q || die "PostgreSQL is not running and could not be started"
fi
# Odoo refuses to connect as the 'postgres' role: give the current user its own
# superuser role (it creates and drops the test databases).
me="$(id -un)"
if ! as_root su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='$me'\"" | grep -q 1; then
    say "creating PostgreSQL role $me"
    as_root su postgres -c "psql -qc 'CREATE ROLE \"$me\" SUPERUSER LOGIN'"
fi
say "ready: Odoo $ODOO_SRC, venv $ODOO_VENV, PostgreSQL up"
