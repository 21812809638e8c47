//! The conversation key: which updates share state and run one at a time.

use std::fmt;

/// Identifies one conversation of one bot: a user in a chat, plus the forum
/// topic when the chat has topics.
///
/// Updates without a sending user (channel posts, anonymous group admins) use
/// the sending chat's id as `user_id`, never a shared placeholder account, so
/// two senders never share state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationKey {
    pub chat_id: i64,
    pub user_id: i64,
    /// Forum topic (`message_thread_id`), only for topic messages.
    pub thread_id: Option<i32>,
}

impl ConversationKey {
    pub fn new(chat_id: i64, user_id: i64) -> Self {
        Self {
            chat_id,
            user_id,
            thread_id: None,
        }
    }

    pub fn with_thread(self, thread_id: Option<i32>) -> Self {
        Self { thread_id, ..self }
    }
}

impl fmt::Display for ConversationKey {
    /// Formats as `c<chat>:u<user>` with `:t<topic>` appended for forum topics;
    /// the store uses this text inside its Redis keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}:u{}", self.chat_id, self.user_id)?;
        if let Some(thread_id) = self.thread_id {
            write!(f, ":t{thread_id}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ConversationKey {
    type Err = String;

    /// Parses the `Display` form back, as stored in the pending set.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            || format!("invalid conversation key {text:?}: expected c<chat>:u<user>[:t<topic>]");
        let mut parts = text.split(':');
        let chat_id = parts
            .next()
            .and_then(|part| part.strip_prefix('c'))
            .and_then(|id| id.parse().ok());
        let user_id = parts
            .next()
            .and_then(|part| part.strip_prefix('u'))
            .and_then(|id| id.parse().ok());
        let (Some(chat_id), Some(user_id)) = (chat_id, user_id) else {
            return Err(invalid());
        };
        let thread_id = match parts.next() {
            None => None,
            Some(part) => Some(
                part.strip_prefix('t')
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(invalid)?,
            ),
        };
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self {
            chat_id,
            user_id,
            thread_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_in_one_group_have_distinct_keys() {
        let ann = ConversationKey::new(-100123, 1001);
        let ben = ConversationKey::new(-100123, 1002);
        assert_ne!(ann, ben);
        assert_ne!(ann.to_string(), ben.to_string());
    }

    #[test]
    fn forum_topic_is_part_of_the_key() {
        let general = ConversationKey::new(-1001987654321, 1001);
        let topic = general.with_thread(Some(7));
        assert_ne!(general, topic);
        assert_eq!(topic.to_string(), "c-1001987654321:u1001:t7");
    }

    #[test]
    fn display_form_parses_back() {
        for key in [
            ConversationKey::new(1001, 1001),
            ConversationKey::new(-100123, 7).with_thread(Some(9)),
        ] {
            assert_eq!(key.to_string().parse::<ConversationKey>(), Ok(key));
        }
        assert!("c1:x2".parse::<ConversationKey>().is_err());
        assert!("c1:u2:t3:z".parse::<ConversationKey>().is_err());
    }
}
