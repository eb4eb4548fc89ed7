import { toRaw, useComponent } from "@odoo/owl";

import { discussComponentRegistry } from "@mail/core/common/discuss_component_registry";
import { messageActionsRegistry } from "@mail/core/common/message_actions";
import { _t } from "@web/core/l10n/translation";
import { Deferred } from "@web/core/utils/concurrency";
import { useService } from "@web/core/utils/hooks";

// Chatter actions on emails synced from a mailbox (the server sends
// mailsync_synced / mailsync_archived with each message, see mail.message
// _to_store). Odoo's own Delete only exists for comments; these act on the
// synced email and, per the mailbox's rules, on its copies in the mailbox.

function setupServices() {
    const component = useComponent();
    component.mailsyncOrm = useService("orm");
    component.mailsyncDialog = useService("dialog");
}

messageActionsRegistry
    .add("mailsync-archive", {
        condition: (component) =>
            component.props.message.mailsync_synced && !component.props.message.mailsync_archived,
        icon: "fa fa-archive",
        title: _t("Archive: hide from the chatter (kept and searchable); per the mailbox's rules, also move it out of the Inbox"),
        onClick: async (component) => {
            const message = toRaw(component.props.message);
            await component.mailsyncOrm.call("mail.message", "action_mailsync_archive", [
                [message.id],
            ]);
            message.mailsync_archived = true;
            message.delete();
        },
        setup: setupServices,
        sequence: 88,
    })
    .add("mailsync-unarchive", {
        condition: (component) =>
            component.props.message.mailsync_synced && component.props.message.mailsync_archived,
        icon: "fa fa-inbox",
        title: _t("Unarchive: show in the chatter again"),
        onClick: async (component) => {
            const message = toRaw(component.props.message);
            await component.mailsyncOrm.call("mail.message", "action_mailsync_unarchive", [
                [message.id],
            ]);
            message.mailsync_archived = false;
        },
        setup: setupServices,
        sequence: 88,
    })
    .add("mailsync-delete", {
        condition: (component) => component.props.message.mailsync_synced,
        icon: "fa fa-trash",
        title: _t("Delete this email (per the mailbox's rules, also move it to the mailbox's Trash)"),
        onClick: async (component) => {
            const message = toRaw(component.props.message);
            const def = new Deferred();
            component.mailsyncDialog.add(
                discussComponentRegistry.get("MessageConfirmDialog"),
                {
                    message,
                    prompt: _t(
                        "Delete this email from Odoo? Depending on the mailbox's rules, its copy in the mailbox is moved to the Trash."
                    ),
                    onConfirm: async () => {
                        def.resolve(true);
                        await component.mailsyncOrm.call("mail.message", "action_mailsync_delete", [
                            [message.id],
                        ]);
                        message.delete();
                    },
                },
                { context: component, onClose: () => def.resolve(false) }
            );
            return def;
        },
        setup: setupServices,
        sequence: 91,
    });
