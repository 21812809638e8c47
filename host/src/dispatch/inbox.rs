//! Reading updates back from a conversation's durable inbox in Redis: after a
//! restart, and when a conversation got more updates than its queue holds.

use std::future::Future;
use std::pin::Pin;

use tracing::{debug, warn};

use super::{Refill, Refilled};
use crate::conversation::ConversationKey;
use crate::store::{StateStore, StoreError};
use crate::telegram::inbound::classify;
use crate::telegram::polling::parse_stored;

/// The inboxes in Redis, read as updates ready to dispatch.
pub struct StoredInbox {
    pub store: StateStore,
    /// The bot's username, which classification needs to tell commands for
    /// this bot from commands for others.
    pub bot_username: String,
}

impl StoredInbox {
    async fn read(
        &self,
        key: ConversationKey,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Refilled, StoreError> {
        let stashed = self.store.inbox_after(key, after, limit).await?;
        let mut refilled = Refilled {
            updates: Vec::with_capacity(stashed.len()),
            through: stashed.last().map(|entry| entry.update_id),
            more: stashed.len() >= limit,
        };
        for entry in stashed {
            // An entry that no longer parses or classifies would fail the
            // same way on every read, so it leaves the inbox.
            let update = match parse_stored(&entry.raw) {
                Ok(update) => update,
                Err(error) => {
                    warn!(update_id = entry.update_id, %key, %error, "invalid stored update dropped");
                    self.store.drop_from_inbox(key, entry.update_id).await?;
                    continue;
                }
            };
            match classify(&update, &self.bot_username) {
                Ok(inbound) if inbound.key == key => refilled.updates.push(inbound),
                Ok(inbound) => {
                    warn!(update_id = entry.update_id, %key, found = %inbound.key, "stored update belongs to another conversation, dropped");
                    self.store.drop_from_inbox(key, entry.update_id).await?;
                }
                Err(ignored) => {
                    debug!(update_id = ignored.update_id, reason = %ignored.reason, "stored update ignored");
                    self.store.drop_from_inbox(key, entry.update_id).await?;
                }
            }
        }
        Ok(refilled)
    }
}

impl Refill for StoredInbox {
    fn refill(
        &self,
        key: ConversationKey,
        after: Option<i64>,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Refilled, StoreError>> + Send + '_>> {
        Box::pin(self.read(key, after, limit))
    }
}
