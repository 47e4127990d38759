//! Options of the integration actions: webhook_send, message_send, email_send,
//! conversation_send, case_create.

use serde_json::Value;

use crate::model::address::Address;

option_struct! {
    /// `webhook_send`: send an HTTP request with `data` as its body.
    WebhookSendOption {
        /// true: wait for the response before going on.
        opt sync: bool,
        /// The destination URL.
        req uri: String,
        /// POST, GET, PUT or DELETE.
        opt method: String,
        /// The body's content type, for example application/json.
        opt data_type: String,
        /// The body; `${...}` is substituted.
        opt data: String,
    }
}

option_struct! {
    /// `message_send`: send an SMS.
    MessageSendOption {
        /// The sender.
        opt source: Address,
        /// The recipients.
        req destinations: Vec<Address>,
        /// The text.
        req text: String,
    }
}

option_struct! {
    /// `email_send`: send an email.
    EmailSendOption {
        /// The recipients.
        req destinations: Vec<Address>,
        /// The subject.
        opt subject: String,
        /// The body.
        opt content: String,
        /// Attachments.
        opt attachments: Value,
    }
}

option_struct! {
    /// `conversation_send`: send into a conversation.
    ConversationSendOption {
        /// The conversation.
        req conversation_id: String,
        /// The text.
        opt text: String,
        /// Wait until sent.
        opt sync: bool,
    }
}

option_struct! {
    /// `case_create`: open a CRM case.
    CaseCreateOption {
        /// The case's name.
        opt name: String,
        /// Its detail.
        opt detail: String,
        /// A note.
        opt note: String,
        /// Wait until created.
        opt sync: bool,
    }
}
