//! The durable inbox and outbox of each conversation.
//!
//! An update is stashed in its conversation's inbox before Telegram is told
//! it was received, and leaves the inbox in the same atomic step that
//! commits its effects. The actions an update produced wait in the
//! conversation's outbox until Telegram accepted them. After a crash, both
//! are found again through the set of conversations with pending work.

use std::str::FromStr;

use redis::AsyncCommands;

use super::{StateStore, StoreError};
use crate::conversation::ConversationKey;

/// An update as received, kept until its effects are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stashed {
    pub key: ConversationKey,
    pub update_id: i64,
    /// The update's JSON, as teloxide serializes it.
    pub raw: String,
}

impl StateStore {
    pub(super) fn inbox_key(&self, key: ConversationKey) -> String {
        format!("{}:{{{key}}}:inbox", self.namespace)
    }

    pub(super) fn outbox_key(&self, key: ConversationKey) -> String {
        format!("{}:{{{key}}}:outbox", self.namespace)
    }

    fn pending_key(&self) -> String {
        format!("{}:pending", self.namespace)
    }

    /// Stores `updates` in their conversations' inboxes and marks those
    /// conversations as having pending work. Storing an update twice keeps
    /// one copy.
    pub async fn stash(&self, updates: &[Stashed]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for update in updates {
            pipe.cmd("ZADD")
                .arg(self.inbox_key(update.key))
                .arg("NX")
                .arg(update.update_id)
                .arg(&update.raw)
                .ignore();
            pipe.cmd("SADD")
                .arg(self.pending_key())
                .arg(update.key.to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.connection.clone()).await?;
        Ok(())
    }

    /// Returns every conversation marked as having pending work.
    pub async fn pending_conversations(&self) -> Result<Vec<ConversationKey>, StoreError> {
        let members: Vec<String> = self.connection.clone().smembers(self.pending_key()).await?;
        let mut keys = Vec::with_capacity(members.len());
        for member in members {
            let key = ConversationKey::from_str(&member).map_err(|reason| StoreError::Decode {
                key: self.pending_key(),
                reason,
            })?;
            keys.push(key);
        }
        keys.sort();
        Ok(keys)
    }

    /// Returns at most `limit` of the conversation's stashed updates newer
    /// than `after` (all of them when `after` is `None`), in `update_id` order.
    pub async fn inbox_after(
        &self,
        key: ConversationKey,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Stashed>, StoreError> {
        let min = match after {
            Some(after) => format!("({after}"),
            None => "-inf".to_owned(),
        };
        let entries: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(self.inbox_key(key))
            .arg(min)
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .arg("WITHSCORES")
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(entries
            .into_iter()
            .map(|(raw, update_id)| Stashed {
                key,
                update_id,
                raw,
            })
            .collect())
    }

    /// Removes the stashed update `update_id`, for updates that are skipped
    /// without a commit.
    pub async fn drop_from_inbox(
        &self,
        key: ConversationKey,
        update_id: i64,
    ) -> Result<(), StoreError> {
        let _: () = self
            .connection
            .clone()
            .zrembyscore(self.inbox_key(key), update_id, update_id)
            .await?;
        Ok(())
    }

    pub(super) fn applied_key(&self, key: ConversationKey) -> String {
        format!("{}:{{{key}}}:applied", self.namespace)
    }

    /// Returns the conversation's outbox entries, oldest first.
    pub async fn outbox(&self, key: ConversationKey) -> Result<Vec<String>, StoreError> {
        let entries: Vec<String> = self
            .connection
            .clone()
            .lrange(self.outbox_key(key), 0, -1)
            .await?;
        Ok(entries)
    }

    /// Removes the oldest outbox entry, once Telegram accepted it or the
    /// policy settled it.
    pub async fn pop_outbox(&self, key: ConversationKey) -> Result<(), StoreError> {
        let _: Option<String> = self
            .connection
            .clone()
            .lpop(self.outbox_key(key), None)
            .await?;
        Ok(())
    }

    /// Drops every outbox entry of the conversation, for a chat the bot may
    /// no longer write to.
    pub async fn clear_outbox(&self, key: ConversationKey) -> Result<(), StoreError> {
        let _: () = self.connection.clone().del(self.outbox_key(key)).await?;
        Ok(())
    }

    /// Unmarks `key` when its inbox and outbox are both empty. Only safe while
    /// nothing else stashes updates, that is during recovery at start-up.
    pub async fn unmark_if_idle(&self, key: ConversationKey) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let inbox: usize = connection.zcard(self.inbox_key(key)).await?;
        let outbox: usize = connection.llen(self.outbox_key(key)).await?;
        if inbox > 0 || outbox > 0 {
            return Ok(false);
        }
        let _: () = connection.srem(self.pending_key(), key.to_string()).await?;
        Ok(true)
    }
}
