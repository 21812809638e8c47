//! The update queue and `getUpdates`: offsets, limits, `allowed_updates` and
//! long polling.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::params::{ApiError, Params};
use crate::simulator::Shared;

/// Update kinds that Telegram delivers only when `allowed_updates` names them.
pub(crate) const OPT_IN_KINDS: [&str; 3] =
    ["chat_member", "message_reaction", "message_reaction_count"];

/// Maximum and default `limit` of `getUpdates`.
const MAX_LIMIT: i64 = 100;

const TERMINATED_BY_OTHER_POLL: &str = "terminated by other getUpdates request; make sure that \
                                        only one bot instance is running";
const WEBHOOK_ACTIVE: &str = "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";

#[derive(Debug)]
struct PendingUpdate {
    id: i64,
    kind: String,
    body: Value,
}

/// Updates that were pushed and not yet confirmed, in `update_id` order.
#[derive(Debug)]
pub(crate) struct UpdateQueue {
    next_id: i64,
    pending: VecDeque<PendingUpdate>,
    /// The remembered `allowed_updates`. `None` means Telegram's default.
    allowed: Option<Vec<String>>,
    /// Incremented by every `getUpdates`, so that an older long poll can tell
    /// that a newer one replaced it.
    poll_generation: u64,
}

impl Default for UpdateQueue {
    fn default() -> Self {
        UpdateQueue {
            next_id: 1,
            pending: VecDeque::new(),
            allowed: None,
            poll_generation: 0,
        }
    }
}

impl UpdateQueue {
    /// Queues `update`, assigning the next `update_id` when it has none, and
    /// returns its id.
    ///
    /// Panics if `update` is not a JSON object.
    pub(crate) fn skip_ids_to(&mut self, update_id: i64) {
        self.next_id = self.next_id.max(update_id);
    }

    pub(crate) fn push(&mut self, mut update: Value) -> i64 {
        let fields = update
            .as_object_mut()
            .expect("an update must be a JSON object");
        let id = match fields.get("update_id").and_then(Value::as_i64) {
            Some(id) => id,
            None => {
                fields.insert("update_id".into(), Value::from(self.next_id));
                self.next_id
            }
        };
        self.next_id = self.next_id.max(id + 1);

        let kind = fields
            .keys()
            .find(|key| key.as_str() != "update_id")
            .cloned()
            .unwrap_or_default();
        let position = self.pending.partition_point(|pending| pending.id <= id);
        let body = update;
        self.pending
            .insert(position, PendingUpdate { id, kind, body });
        id
    }

    /// Applies a `getUpdates` offset. A positive offset confirms every update
    /// with a smaller id. A negative offset keeps only the last `-offset` updates.
    pub(crate) fn confirm(&mut self, offset: i64) {
        if offset > 0 {
            self.pending.retain(|pending| pending.id >= offset);
        } else if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            let excess = self.pending.len().saturating_sub(keep);
            self.pending.drain(..excess);
        }
    }

    /// Remembers a new `allowed_updates` list. An empty list restores the default,
    /// as the Bot API documents.
    pub(crate) fn set_allowed(&mut self, kinds: Vec<String>) {
        self.allowed = if kinds.is_empty() { None } else { Some(kinds) };
    }

    pub(crate) fn allowed(&self) -> Option<&[String]> {
        self.allowed.as_deref()
    }

    fn is_allowed(&self, kind: &str) -> bool {
        match &self.allowed {
            Some(kinds) => kinds.iter().any(|allowed| allowed == kind),
            None => !OPT_IN_KINDS.contains(&kind),
        }
    }

    /// Drops pending updates whose kind `allowed_updates` excludes and returns
    /// how many were dropped.
    ///
    /// NOTE: Telegram filters when it creates an update, so it still delivers
    /// updates created before `allowed_updates` changed. The simulator filters
    /// when it delivers, so an update pushed before the bot's first `getUpdates`
    /// is judged by the list that call sends.
    pub(crate) fn drop_unwanted(&mut self) -> usize {
        let before = self.pending.len();
        let queue = std::mem::take(&mut self.pending);
        self.pending = queue
            .into_iter()
            .filter(|pending| self.is_allowed(&pending.kind))
            .collect();
        before - self.pending.len()
    }

    /// Returns up to `limit` pending updates, oldest first.
    pub(crate) fn first(&self, limit: usize) -> Vec<Value> {
        self.pending
            .iter()
            .take(limit)
            .map(|pending| pending.body.clone())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }

    fn start_poll(&mut self) -> u64 {
        self.poll_generation += 1;
        self.poll_generation
    }
}

/// Serves `getUpdates`: confirms the offset, then returns the pending updates
/// at once or waits up to `timeout` seconds for the first one.
///
/// A newer `getUpdates` makes a waiting one return 409, as Telegram does when
/// two bot instances poll. An active webhook makes every call return 409.
pub(crate) async fn get_updates(shared: &Shared, params: &Params) -> Result<Value, ApiError> {
    let offset = params.int("offset")?;
    let limit = params
        .int("limit")?
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT) as usize;
    let timeout = params.int("timeout")?.unwrap_or(0).max(0) as u64;
    let allowed = allowed_updates_param(params)?;

    let generation = shared.update(|state| {
        if state.webhook.is_some() {
            return Err(ApiError::conflict(WEBHOOK_ACTIVE));
        }
        if let Some(offset) = offset {
            state.updates.confirm(offset);
        }
        if let Some(kinds) = allowed {
            state.updates.set_allowed(kinds);
        }
        Ok(state.updates.start_poll())
    })?;

    // Subscribe after the update above so that its own change notification does
    // not wake this poll. Each pass below checks the state before waiting, so a
    // change between the two steps is not missed.
    let mut changes = shared.subscribe_changes();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let (ready, dropped) = shared.update_quietly(|state| {
            if state.updates.poll_generation != generation {
                return Err(ApiError::conflict(TERMINATED_BY_OTHER_POLL));
            }
            let dropped = state.updates.drop_unwanted();
            Ok((state.updates.first(limit), dropped))
        })?;
        if dropped > 0 {
            shared.notify_changed();
        }
        if !ready.is_empty() || Instant::now() >= deadline {
            return Ok(Value::Array(ready));
        }

        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Parses `allowed_updates`, a JSON array of kind names.
pub(crate) fn allowed_updates_param(params: &Params) -> Result<Option<Vec<String>>, ApiError> {
    let Some(value) = params
        .structured("allowed_updates")
        .map_err(ApiError::bad_request)?
    else {
        return Ok(None);
    };
    let invalid =
        || ApiError::bad_request("can't parse allowed updates: expected an array of strings");
    let items = value.as_array().ok_or_else(invalid)?;
    items
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ids(queue: &UpdateQueue) -> Vec<i64> {
        queue
            .first(MAX_LIMIT as usize)
            .iter()
            .map(|update| update["update_id"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn push_assigns_sequential_ids() {
        let mut queue = UpdateQueue::default();
        assert_eq!(queue.push(json!({ "message": {} })), 1);
        assert_eq!(queue.push(json!({ "message": {} })), 2);
        assert_eq!(ids(&queue), [1, 2]);
    }

    #[test]
    fn push_keeps_given_id_and_order() {
        let mut queue = UpdateQueue::default();
        assert_eq!(queue.push(json!({ "update_id": 10, "message": {} })), 10);
        assert_eq!(queue.push(json!({ "update_id": 5, "message": {} })), 5);
        assert_eq!(queue.push(json!({ "message": {} })), 11);
        assert_eq!(ids(&queue), [5, 10, 11]);
    }

    #[test]
    fn positive_offset_confirms_smaller_ids() {
        let mut queue = UpdateQueue::default();
        for _ in 0..4 {
            queue.push(json!({ "message": {} }));
        }
        queue.confirm(3);
        assert_eq!(ids(&queue), [3, 4]);
    }

    #[test]
    fn negative_offset_keeps_last_updates() {
        let mut queue = UpdateQueue::default();
        for _ in 0..4 {
            queue.push(json!({ "message": {} }));
        }
        queue.confirm(-1);
        assert_eq!(ids(&queue), [4]);
    }

    #[test]
    fn default_filter_drops_opt_in_kinds() {
        let mut queue = UpdateQueue::default();
        queue.push(json!({ "message": {} }));
        queue.push(json!({ "chat_member": {} }));
        queue.push(json!({ "message_reaction": {} }));
        queue.push(json!({ "callback_query": {} }));
        assert_eq!(queue.drop_unwanted(), 2);
        assert_eq!(ids(&queue), [1, 4]);
    }

    #[test]
    fn empty_allowed_list_restores_default() {
        let mut queue = UpdateQueue::default();
        queue.set_allowed(vec!["message".into()]);
        assert_eq!(queue.allowed(), Some(&["message".to_owned()][..]));
        queue.set_allowed(Vec::new());
        assert_eq!(queue.allowed(), None);
    }

    #[test]
    fn allowed_list_filters_other_kinds() {
        let mut queue = UpdateQueue::default();
        queue.set_allowed(vec!["chat_member".into()]);
        queue.push(json!({ "message": {} }));
        queue.push(json!({ "chat_member": {} }));
        queue.drop_unwanted();
        assert_eq!(ids(&queue), [2]);
    }
}
