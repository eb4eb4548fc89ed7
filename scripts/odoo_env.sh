# Sourced by the other scripts: paths and an Odoo config file for this checkout.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ODOO_SRC="${ODOO_SRC:-/opt/odoo-18.0}"
ODOO_VENV="${ODOO_VENV:-/opt/odoo-18.0-venv}"
ODOO_ADDONS_PATH="$ODOO_SRC/addons,$ODOO_SRC/odoo/addons,$REPO"
# The addons this repository ships, in install order.
OUR_ADDONS="imap_sent_sync"
[ -f "$REPO/imap_sent_sync_crm/__manifest__.py" ] && OUR_ADDONS="$OUR_ADDONS,imap_sent_sync_crm"

# write_odoo_conf FILE DATA_DIR [extra "key = value" lines...]
write_odoo_conf() {
    local file="$1" data_dir="$2"; shift 2
    mkdir -p "$data_dir"
    {
        echo "[options]"
        echo "addons_path = $ODOO_ADDONS_PATH"
        echo "data_dir = $data_dir"
        echo "list_db = True"
        for line in "$@"; do echo "$line"; done
    } > "$file"
}

odoo_bin() { "$ODOO_VENV/bin/python" "$ODOO_SRC/odoo-bin" "$@"; }
