use serde_json::{Value, json};

use super::*;

const BOT: &str = "demo_flow_bot";

fn ann() -> Value {
    json!({"id": 1001, "is_bot": false, "first_name": "Ann", "language_code": "en"})
}

fn private_chat() -> Value {
    json!({"id": 1001, "first_name": "Ann", "type": "private"})
}

/// Builds an update with a message from Ann in her private chat, with
/// `content` merged into the message.
fn message_update(update_id: i64, content: Value) -> TelegramUpdate {
    let mut message =
        json!({"message_id": 11, "from": ann(), "chat": private_chat(), "date": 1796374800});
    message
        .as_object_mut()
        .unwrap()
        .extend(content.as_object().unwrap().clone());
    parse(json!({"update_id": update_id, "message": message}))
}

/// Parses from text, as teloxide does with Bot API answers: its update
/// deserializer needs string keys it can borrow, which `from_value` lacks.
fn parse(update: Value) -> TelegramUpdate {
    serde_json::from_str(&update.to_string()).expect("fixture is a valid update")
}

fn flow_event(update: &TelegramUpdate) -> Event {
    match classify(update, BOT).expect("update is routed").kind {
        InboundKind::Flow { view, .. } => view.event,
        other => panic!("expected a flow update, got {other:?}"),
    }
}

#[test]
fn text_keeps_chat_and_user() {
    let update = message_update(100101, json!({"text": "add milk"}));
    let inbound = classify(&update, BOT).unwrap();
    assert_eq!(inbound.update_id, 100101);
    assert_eq!(inbound.key, ConversationKey::new(1001, 1001));
    assert!(matches!(flow_event(&update), Event::Text(text) if text == "add milk"));
}

#[test]
fn command_with_args_and_bot_suffix() {
    let update = message_update(
        1,
        json!({"text": "/Log@demo_flow_bot squat 5", "entities": [{"type": "bot_command", "offset": 0, "length": 18}]}),
    );
    let Event::Command(command) = flow_event(&update) else {
        panic!("not a command")
    };
    assert_eq!(command.name, "log");
    assert_eq!(command.args, "squat 5");
}

#[test]
fn command_for_another_bot_is_ignored() {
    let update = message_update(
        2,
        json!({"text": "/log@other_bot", "entities": [{"type": "bot_command", "offset": 0, "length": 14}]}),
    );
    let ignored = classify(&update, BOT).unwrap_err();
    assert_eq!(ignored.reason, "command addressed to another bot");
}

#[test]
fn command_entity_length_counts_utf16_units() {
    // "/add" is 4 units; the emoji after it is 2 UTF-16 units but 4 bytes.
    let text = "/add 💪 bench";
    assert_eq!(utf16_prefix_len(text, 4), 4);
    assert_eq!(utf16_prefix_len("💪x", 2), 4);
    // A length that ends inside a surrogate pair rounds up to the boundary.
    assert_eq!(utf16_prefix_len("💪x", 1), 4);
    assert_eq!(utf16_prefix_len("ab", 10), 2);
}

#[test]
fn text_without_command_entity_is_text() {
    let update = message_update(3, json!({"text": "/ not a command"}));
    assert!(matches!(flow_event(&update), Event::Text(_)));
}

#[test]
fn sticker_carries_its_emoji() {
    let update = message_update(
        4,
        json!({"sticker": {"file_id": "CAACAgIAAxk", "file_unique_id": "AgAD", "type": "regular",
            "width": 512, "height": 512, "is_animated": false, "is_video": false, "emoji": "💪"}}),
    );
    assert!(matches!(flow_event(&update), Event::Sticker(Some(emoji)) if emoji == "💪"));
}

#[test]
fn gif_with_animation_and_document_is_animation() {
    let file = json!({"file_id": "CgACAgQAAxk", "file_unique_id": "AgADx", "file_name": "lift.gif.mp4", "mime_type": "video/mp4"});
    let mut animation = file.clone();
    animation.as_object_mut().unwrap().extend(
        json!({"width": 320, "height": 240, "duration": 3})
            .as_object()
            .unwrap()
            .clone(),
    );
    let update = message_update(5, json!({"animation": animation, "document": file}));
    assert!(matches!(flow_event(&update), Event::Animation));
}

#[test]
fn photo_carries_its_caption() {
    let update = message_update(
        6,
        json!({"photo": [{"file_id": "AgAC", "file_unique_id": "AQAD", "width": 90, "height": 90}], "caption": "new PR"}),
    );
    assert!(matches!(flow_event(&update), Event::Photo(Some(caption)) if caption == "new PR"));
}

#[test]
fn edited_message_carries_new_text() {
    let update = parse(
        json!({"update_id": 7, "edited_message": {"message_id": 11, "from": ann(),
        "chat": private_chat(), "date": 1796374800, "edit_date": 1796374860, "text": "squat 3x5"}}),
    );
    assert!(matches!(flow_event(&update), Event::EditedMessage(Some(text)) if text == "squat 3x5"));
}

#[test]
fn callback_press_names_its_message() {
    let update = parse(
        json!({"update_id": 100301, "callback_query": {"id": "4400000000000000301",
        "from": ann(), "chat_instance": "-5500000000000000301", "data": "set:A",
        "message": {"message_id": 31, "from": {"id": 7000000001u64, "is_bot": true, "first_name": "Demo Flow Bot", "username": BOT},
            "chat": private_chat(), "date": 1796374900, "text": "Pick a question set"}}}),
    );
    let inbound = classify(&update, BOT).unwrap();
    assert_eq!(inbound.key, ConversationKey::new(1001, 1001));
    let InboundKind::Flow {
        view,
        callback_query_id,
    } = inbound.kind
    else {
        panic!("not a flow update")
    };
    assert_eq!(callback_query_id.as_deref(), Some("4400000000000000301"));
    let Event::Callback(callback) = view.event else {
        panic!("not a callback")
    };
    assert_eq!(callback.data, "set:A");
    assert_eq!(callback.message_id, Some(31));
}

#[test]
fn blocked_bot_is_membership_change() {
    let bot = json!({"id": 7000000001u64, "is_bot": true, "first_name": "Demo Flow Bot", "username": BOT});
    let member = |status: &str| json!({"user": bot, "status": status, "until_date": 0});
    for (old, new, active) in [("member", "kicked", false), ("kicked", "member", true)] {
        let update = parse(
            json!({"update_id": 101201, "my_chat_member": {"chat": private_chat(), "from": ann(),
            "date": 1796375600, "old_chat_member": member(old), "new_chat_member": member(new)}}),
        );
        let inbound = classify(&update, BOT).unwrap();
        assert!(
            matches!(inbound.kind, InboundKind::Membership { active: a } if a == active),
            "{old} -> {new}"
        );
    }
}

#[test]
fn channel_post_is_ignored() {
    let update = parse(json!({"update_id": 8, "channel_post": {"message_id": 5,
        "sender_chat": {"id": -1001234, "title": "News", "type": "channel"},
        "chat": {"id": -1001234, "title": "News", "type": "channel"}, "date": 1796374800, "text": "hello"}}));
    assert_eq!(classify(&update, BOT).unwrap_err().reason, "channel post");
}

#[test]
fn anonymous_admin_is_keyed_by_sender_chat() {
    let group = json!({"id": -1001987654321i64, "title": "Gym", "type": "supergroup"});
    let update = parse(json!({"update_id": 9, "message": {"message_id": 9,
        "from": {"id": 1087968824, "is_bot": true, "first_name": "Group", "username": "GroupAnonymousBot"},
        "sender_chat": group, "chat": group, "date": 1796374800, "text": "hi"}}));
    let inbound = classify(&update, BOT).unwrap();
    assert_eq!(
        inbound.key,
        ConversationKey::new(-1001987654321, -1001987654321)
    );
}

#[test]
fn forum_topic_message_is_keyed_by_topic() {
    let group =
        json!({"id": -1001987654321i64, "title": "Gym", "type": "supergroup", "is_forum": true});
    let update = parse(
        json!({"update_id": 10, "message": {"message_id": 90, "message_thread_id": 77,
        "is_topic_message": true, "from": ann(), "chat": group, "date": 1796374800, "text": "hi"}}),
    );
    let inbound = classify(&update, BOT).unwrap();
    assert_eq!(
        inbound.key,
        ConversationKey::new(-1001987654321, 1001).with_thread(Some(77))
    );
}

#[test]
fn unparsed_kind_is_routed_as_unknown() {
    // An update kind from a future Bot API version that teloxide cannot parse.
    let raw = json!({"update_id": 11, "message": {"message_id": 12, "from": ann(), "chat": private_chat(),
        "date": 1796374800, "hologram": {"file_id": "x"}}});
    let update = TelegramUpdate {
        id: teloxide::types::UpdateId(11),
        kind: UpdateKind::Error(raw),
    };
    let inbound = classify(&update, BOT).unwrap();
    assert_eq!(inbound.key, ConversationKey::new(1001, 1001));
    assert!(matches!(flow_event(&update), Event::Unknown(kind) if kind == "hologram"));
}

#[test]
fn unparsed_kind_without_chat_is_ignored() {
    let update = TelegramUpdate {
        id: teloxide::types::UpdateId(12),
        kind: UpdateKind::Error(json!({"update_id": 12, "purchased_paid_media": {"from": ann()}})),
    };
    let ignored = classify(&update, BOT).unwrap_err();
    assert!(
        ignored.reason.contains("purchased_paid_media"),
        "{}",
        ignored.reason
    );
}

#[test]
fn service_message_is_ignored() {
    let update = message_update(13, json!({"new_chat_title": "Gym buddies"}));
    assert_eq!(
        classify(&update, BOT).unwrap_err().reason,
        "service message"
    );
}

#[test]
fn message_with_unknown_content_is_unknown() {
    // teloxide parses a message whose content it does not know as
    // `MessageKind::Empty`; it must reach the flow, not vanish as a service message.
    let update = message_update(14, json!({"hologram": {"file_id": "HOLO1", "depth": 3}}));
    assert!(matches!(flow_event(&update), Event::Unknown(kind) if kind == "message"));
}

#[test]
fn date_is_the_message_or_edit_date() {
    let sent = message_update(15, json!({"text": "hi"}));
    let InboundKind::Flow { view, .. } = classify(&sent, BOT).unwrap().kind else {
        panic!("not a flow update")
    };
    assert_eq!(view.date, 1796374800);

    let edited = parse(
        json!({"update_id": 16, "edited_message": {"message_id": 11, "from": ann(),
        "chat": private_chat(), "date": 1796374800, "edit_date": 1796378400, "text": "squat 3x5"}}),
    );
    let InboundKind::Flow { view, .. } = classify(&edited, BOT).unwrap().kind else {
        panic!("not a flow update")
    };
    assert_eq!(view.date, 1796378400);
}
