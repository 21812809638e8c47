//! Classification of Bot API updates: which conversation an update belongs
//! to, and the typed view a flow receives.
//!
//! Every update kind has an outcome here, including kinds teloxide cannot
//! parse (they arrive as `UpdateKind::Error` with the raw JSON), so nothing
//! unexpected reaches the rest of the host as a crash.

use serde_json::Value;
use teloxide::types::{
    CallbackQuery, Chat, ChatMemberKind, MaybeInaccessibleMessage, MediaKind, Message,
    MessageEntityKind, MessageKind, Update as TelegramUpdate, UpdateKind, User as TelegramUser,
};

use crate::conversation::ConversationKey;
use crate::runtime::{Callback, ChatKind, Command, Contact, Event, Location, Update, User};

/// An update that belongs to a conversation.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub update_id: i64,
    pub key: ConversationKey,
    pub kind: InboundKind,
}

#[derive(Debug, Clone)]
pub enum InboundKind {
    /// Something for the conversation's flow or the host's commands.
    Flow {
        view: Update,
        /// Id of the callback query to answer, for button presses.
        callback_query_id: Option<String>,
    },
    /// The bot's own membership in the chat changed: `active` is false when
    /// the user blocked the bot or removed it from the group.
    Membership { active: bool },
    /// No new update: deliver what the conversation's outbox still contains,
    /// as found after a restart.
    Resume,
}

/// An update that goes to no conversation, with the reason; logged at debug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub update_id: i64,
    pub reason: String,
}

/// Classifies `update`; `bot_username` is used to drop commands meant for
/// other bots in groups (`/log@other_bot`).
pub fn classify(update: &TelegramUpdate, bot_username: &str) -> Result<Inbound, Ignored> {
    let update_id = i64::from(update.id.0);
    let ignored = |reason: &str| Ignored {
        update_id,
        reason: reason.to_owned(),
    };

    match &update.kind {
        UpdateKind::Message(message) => {
            let event =
                message_event(message, bot_username).ok_or_else(|| ignored("service message"))?;
            if let Event::Command(command) = &event
                && command.name.is_empty()
            {
                return Err(ignored("command addressed to another bot"));
            }
            from_message(update_id, message, event)
        }
        UpdateKind::EditedMessage(message) => {
            let text = message.text().or(message.caption()).map(str::to_owned);
            from_message(update_id, message, Event::EditedMessage(text))
        }
        UpdateKind::CallbackQuery(query) => from_callback(update_id, query),
        UpdateKind::MyChatMember(change) => {
            let active = !matches!(
                change.new_chat_member.kind,
                ChatMemberKind::Banned(_) | ChatMemberKind::Left
            );
            let key = ConversationKey::new(change.chat.id.0, user_id(&change.from));
            Ok(Inbound {
                update_id,
                key,
                kind: InboundKind::Membership { active },
            })
        }
        UpdateKind::ChannelPost(_) | UpdateKind::EditedChannelPost(_) => {
            Err(ignored("channel post"))
        }
        UpdateKind::Error(raw) => from_unknown(update_id, raw),
        _ => Err(ignored("update kind not routed to conversations")),
    }
}

fn from_message(update_id: i64, message: &Message, event: Event) -> Result<Inbound, Ignored> {
    // Anonymous admins and channels writing to a group have no `from` user
    // that is really theirs, so the sending chat's id is used as the user's.
    let sender_id = match (&message.sender_chat, &message.from) {
        (Some(sender_chat), _) => sender_chat.id.0,
        (None, Some(user)) => user_id(user),
        (None, None) => message.chat.id.0,
    };
    let thread_id = message
        .is_topic_message
        .then_some(())
        .and(message.thread_id)
        .map(|t| t.0.0);
    let key = ConversationKey::new(message.chat.id.0, sender_id).with_thread(thread_id);
    let date = message
        .edit_date()
        .copied()
        .unwrap_or(message.date)
        .timestamp();
    let view = Update {
        update_id,
        date,
        chat_kind: chat_kind(&message.chat),
        user: message
            .from
            .as_ref()
            .filter(|_| message.sender_chat.is_none())
            .map(user_view),
        message_id: Some(message.id.0),
        event,
    };
    Ok(Inbound {
        update_id,
        key,
        kind: InboundKind::Flow {
            view,
            callback_query_id: None,
        },
    })
}

fn from_callback(update_id: i64, query: &CallbackQuery) -> Result<Inbound, Ignored> {
    let ignored = |reason: &str| Ignored {
        update_id,
        reason: reason.to_owned(),
    };
    let (chat, message_id, thread_id) = match &query.message {
        Some(MaybeInaccessibleMessage::Regular(message)) => {
            let thread = message
                .is_topic_message
                .then_some(())
                .and(message.thread_id);
            (&message.chat, Some(message.id.0), thread.map(|t| t.0.0))
        }
        Some(MaybeInaccessibleMessage::Inaccessible(message)) => {
            (&message.chat, Some(message.message_id.0), None)
        }
        None => return Err(ignored("callback from an inline-mode message")),
    };
    let data = query
        .data
        .clone()
        .ok_or_else(|| ignored("callback without data"))?;
    let key = ConversationKey::new(chat.id.0, user_id(&query.from)).with_thread(thread_id);
    let view = Update {
        update_id,
        date: unix_now(),
        chat_kind: chat_kind(chat),
        user: Some(user_view(&query.from)),
        message_id: None,
        event: Event::Callback(Callback { data, message_id }),
    };
    Ok(Inbound {
        update_id,
        key,
        kind: InboundKind::Flow {
            view,
            callback_query_id: Some(query.id.0.clone()),
        },
    })
}

/// Routes an update teloxide could not parse by the chat and sender found in
/// its raw JSON, as an `unknown` event named after its content.
fn from_unknown(update_id: i64, raw: &Value) -> Result<Inbound, Ignored> {
    let ignored = |reason: String| Ignored { update_id, reason };
    let Some((kind, body)) = raw
        .as_object()
        .and_then(|fields| fields.iter().find(|(name, _)| *name != "update_id"))
    else {
        return Err(ignored("update without content".to_owned()));
    };
    let Some(chat_id) = body.pointer("/chat/id").and_then(Value::as_i64) else {
        return Err(ignored(format!(
            "unparsed update kind {kind} without a chat"
        )));
    };
    let sender_id = body
        .pointer("/sender_chat/id")
        .or_else(|| body.pointer("/from/id"))
        .and_then(Value::as_i64)
        .unwrap_or(chat_id);
    let chat_kind = match body.pointer("/chat/type").and_then(Value::as_str) {
        Some("group") => ChatKind::Group,
        Some("supergroup") => ChatKind::Supergroup,
        Some("channel") => return Err(ignored("channel post".to_owned())),
        _ => ChatKind::Private,
    };
    let thread_id = body
        .get("is_topic_message")
        .and_then(Value::as_bool)
        .filter(|is_topic| *is_topic)
        .and(body.get("message_thread_id"))
        .and_then(Value::as_i64)
        .and_then(|id| i32::try_from(id).ok());
    let name = content_kind(kind, body);
    let date = body
        .get("edit_date")
        .or_else(|| body.get("date"))
        .and_then(Value::as_i64)
        .unwrap_or_else(unix_now);
    let view = Update {
        update_id,
        date,
        chat_kind,
        user: None,
        message_id: body
            .get("message_id")
            .and_then(Value::as_i64)
            .and_then(|id| i32::try_from(id).ok()),
        event: Event::Unknown(name),
    };
    let key = ConversationKey::new(chat_id, sender_id).with_thread(thread_id);
    Ok(Inbound {
        update_id,
        key,
        kind: InboundKind::Flow {
            view,
            callback_query_id: None,
        },
    })
}

/// Names what an unparsed update carries: for messages, their first field
/// that is not common to every message (`poll`, `video_note`, ...).
fn content_kind(kind: &str, body: &Value) -> String {
    const COMMON_FIELDS: &[&str] = &[
        "message_id",
        "message_thread_id",
        "from",
        "sender_chat",
        "date",
        "chat",
        "edit_date",
        "forward_origin",
        "is_topic_message",
        "is_automatic_forward",
        "reply_to_message",
        "external_reply",
        "quote",
        "via_bot",
        "author_signature",
        "has_protected_content",
        "media_group_id",
        "entities",
        "caption",
        "caption_entities",
        "link_preview_options",
        "reply_markup",
        "business_connection_id",
        "sender_boost_count",
        "effect_id",
        "show_caption_above_media",
        "has_media_spoiler",
    ];
    if !kind.ends_with("message") {
        return kind.to_owned();
    }
    body.as_object()
        .and_then(|fields| {
            fields
                .keys()
                .find(|name| !COMMON_FIELDS.contains(&name.as_str()))
        })
        .cloned()
        .unwrap_or_else(|| kind.to_owned())
}

/// Returns the event a message carries, or `None` for service messages
/// (members joining, pins, topic changes, ...), which no flow handles.
fn message_event(message: &Message, bot_username: &str) -> Option<Event> {
    let common = match &message.kind {
        MessageKind::Common(common) => common,
        MessageKind::Dice(_) => return Some(Event::Unknown("dice".to_owned())),
        // teloxide's fallback for content it does not know; its field name is lost.
        MessageKind::Empty {} => return Some(Event::Unknown("message".to_owned())),
        _ => return None,
    };
    let event = match &common.media_kind {
        MediaKind::Text(text) => {
            let entities = text
                .entities
                .iter()
                .filter(|entity| entity.kind == MessageEntityKind::BotCommand);
            let command_length = entities
                .filter(|entity| entity.offset == 0)
                .map(|entity| entity.length)
                .next();
            match command_length {
                Some(length) => Event::Command(parse_command(&text.text, length, bot_username)),
                None => Event::Text(text.text.clone()),
            }
        }
        MediaKind::Sticker(sticker) => Event::Sticker(sticker.sticker.emoji.clone()),
        MediaKind::Animation(_) => Event::Animation,
        MediaKind::Photo(photo) => Event::Photo(photo.caption.clone()),
        MediaKind::Voice(_) => Event::Voice,
        MediaKind::Document(document) => Event::Document(document.document.file_name.clone()),
        MediaKind::Location(location) => Event::Location(Location {
            latitude: location.location.latitude,
            longitude: location.location.longitude,
        }),
        MediaKind::Contact(contact) => Event::Contact(Contact {
            phone_number: contact.contact.phone_number.clone(),
            first_name: contact.contact.first_name.clone(),
        }),
        MediaKind::Audio(_) => Event::Unknown("audio".to_owned()),
        MediaKind::Video(_) => Event::Unknown("video".to_owned()),
        MediaKind::VideoNote(_) => Event::Unknown("video_note".to_owned()),
        MediaKind::Poll(_) => Event::Unknown("poll".to_owned()),
        MediaKind::Venue(_) => Event::Unknown("venue".to_owned()),
        MediaKind::Game(_) => Event::Unknown("game".to_owned()),
        MediaKind::Story(_) => Event::Unknown("story".to_owned()),
        MediaKind::PaidMedia(_) => Event::Unknown("paid_media".to_owned()),
        MediaKind::Checklist(_) => Event::Unknown("checklist".to_owned()),
        MediaKind::Migration(_) => return None,
    };
    Some(event)
}

/// Splits `/name@bot args` whose command entity is `length` UTF-16 code units
/// long. A command addressed to another bot gets an empty name.
fn parse_command(text: &str, length: usize, bot_username: &str) -> Command {
    let end = utf16_prefix_len(text, length);
    let (head, rest) = text.split_at(end);
    let head = head.trim_start_matches('/');
    let (name, addressee) = match head.split_once('@') {
        Some((name, addressee)) => (name, Some(addressee)),
        None => (head, None),
    };
    let for_us = addressee.is_none_or(|addressee| addressee.eq_ignore_ascii_case(bot_username));
    Command {
        name: if for_us {
            name.to_lowercase()
        } else {
            String::new()
        },
        args: rest.trim().to_owned(),
    }
}

/// Returns the byte length of the prefix of `text` that is `units` UTF-16
/// code units long, clamped to the text and to a character boundary.
fn utf16_prefix_len(text: &str, units: usize) -> usize {
    let mut counted = 0;
    for (index, character) in text.char_indices() {
        if counted >= units {
            return index;
        }
        counted += character.len_utf16();
    }
    text.len()
}

fn unix_now() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

fn user_id(user: &TelegramUser) -> i64 {
    // Telegram user ids fit in 52 bits, so the conversion never saturates.
    i64::try_from(user.id.0).unwrap_or(i64::MAX)
}

fn user_view(user: &TelegramUser) -> User {
    User {
        id: user_id(user),
        first_name: user.first_name.clone(),
        username: user.username.clone(),
        language_code: user.language_code.clone(),
    }
}

fn chat_kind(chat: &Chat) -> ChatKind {
    if chat.is_private() {
        ChatKind::Private
    } else if chat.is_supergroup() {
        ChatKind::Supergroup
    } else if chat.is_group() {
        ChatKind::Group
    } else {
        ChatKind::Channel
    }
}

#[cfg(test)]
mod tests;
