//! Intake by long polling (`getUpdates`).
//!
//! The loop never exits on a failed call: every error is logged and retried
//! with capped exponential backoff, and only a successful call moves the
//! offset. The client timeout of a poll is longer than the long-poll timeout
//! (see `TelegramConfig::poll_request_timeout`), so a hung connection is cut
//! off instead of wedging the loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, Update as TelegramUpdate, UpdateId, UpdateKind};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::inbound::{Inbound, classify};
use crate::dispatch::Dispatcher;
use crate::store::{Stashed, StateStore};

/// Update kinds requested from Telegram. `my_chat_member` must be listed
/// explicitly, or Telegram never sends the update that says a user blocked the bot.
pub const ALLOWED_UPDATES: &[AllowedUpdate] = &[
    AllowedUpdate::Message,
    AllowedUpdate::EditedMessage,
    AllowedUpdate::CallbackQuery,
    AllowedUpdate::MyChatMember,
];

const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Time without a successful `getUpdates` after which each failure also
/// logs that the bot is deaf.
pub const DEAF_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Maximum pause between attempts to store a batch. Shorter than
/// [`MAX_BACKOFF`], so intake resumes soon after Redis is back.
const MAX_STASH_BACKOFF: Duration = Duration::from_secs(5);

/// Unix time in milliseconds of the last successful `getUpdates`, or 0.
#[derive(Debug, Default)]
pub struct PollHealth {
    last_success_ms: AtomicU64,
}

impl PollHealth {
    /// Time since the last successful `getUpdates`, or `None` before the first.
    pub fn since_last_success(&self) -> Option<Duration> {
        let last = self.last_success_ms.load(Ordering::Relaxed);
        (last != 0).then(|| Duration::from_millis(now_ms().saturating_sub(last)))
    }

    fn record_success(&self) {
        self.last_success_ms.store(now_ms(), Ordering::Relaxed);
    }
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

pub struct Poller {
    pub bot: Bot,
    pub bot_username: String,
    pub poll_timeout_secs: u32,
    pub request_timeout: Duration,
    pub dispatcher: Arc<Dispatcher>,
    pub store: StateStore,
    pub health: Arc<PollHealth>,
}

impl Poller {
    /// Polls until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut offset: Option<i32> = None;
        let mut backoff = MIN_BACKOFF;
        info!(
            timeout_secs = self.poll_timeout_secs,
            "long polling started"
        );

        loop {
            let request = self
                .bot
                .get_updates()
                .timeout(self.poll_timeout_secs)
                .allowed_updates(ALLOWED_UPDATES.to_vec());
            let request = match offset {
                Some(offset) => request.offset(offset),
                None => request,
            };
            let result = tokio::select! {
                _ = shutdown.cancelled() => break,
                result = tokio::time::timeout(self.request_timeout, request.send()) => result,
            };

            let updates = match result {
                Ok(Ok(updates)) => updates,
                Ok(Err(RequestError::InvalidJson { raw, source })) => match parse_lenient(&raw) {
                    Some(updates) => {
                        warn!(error = %source, "getUpdates response not fully parsed, using the raw updates");
                        updates
                    }
                    None => {
                        backoff = self
                            .back_off(
                                backoff,
                                &format!("invalid getUpdates answer: {source}"),
                                &shutdown,
                            )
                            .await;
                        continue;
                    }
                },
                Ok(Err(error)) => {
                    backoff = self.back_off(backoff, &error.to_string(), &shutdown).await;
                    continue;
                }
                Err(_) => {
                    backoff = self
                        .back_off(backoff, "getUpdates timed out", &shutdown)
                        .await;
                    continue;
                }
            };
            backoff = MIN_BACKOFF;
            self.health.record_success();

            let Some(last) = updates.last() else {
                continue;
            };
            let next_offset = last.id.as_offset();
            let inbound = self.classify_all(&updates);

            // The batch is stored before the next call's offset tells Telegram
            // it was received, so a crash from here on loses nothing.
            if !self.stash(&inbound, &shutdown).await {
                break;
            }
            offset = Some(next_offset);
            for (inbound, _) in inbound {
                self.dispatcher.dispatch(inbound);
            }
        }
        info!("long polling stopped");
    }

    /// Classifies `updates`, pairing each routed one with its JSON for the inbox.
    fn classify_all(&self, updates: &[TelegramUpdate]) -> Vec<(Inbound, String)> {
        let mut routed = Vec::with_capacity(updates.len());
        for update in updates {
            match classify(update, &self.bot_username) {
                Ok(inbound) => match serde_json::to_string(update) {
                    Ok(raw) => routed.push((inbound, raw)),
                    Err(error) => {
                        warn!(update_id = inbound.update_id, %error, "update could not be serialized for the inbox, dropped")
                    }
                },
                Err(ignored) => {
                    debug!(update_id = ignored.update_id, reason = %ignored.reason, "update ignored");
                    crate::metrics::increment("flowbot_updates_total", &[("outcome", "ignored")]);
                }
            }
        }
        routed
    }

    /// Stores the routed updates in their conversations' inboxes, retrying
    /// until Redis accepts them. Returns false if stopped first.
    async fn stash(&self, routed: &[(Inbound, String)], shutdown: &CancellationToken) -> bool {
        let stashed: Vec<Stashed> = routed
            .iter()
            .map(|(inbound, raw)| Stashed {
                key: inbound.key,
                update_id: inbound.update_id,
                raw: raw.clone(),
            })
            .collect();
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.store.stash(&stashed).await {
                Ok(()) => return true,
                Err(error) => {
                    warn!(%error, retry_in_ms = backoff.as_millis() as u64, "failed to store updates, offset held");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_STASH_BACKOFF);
                }
            }
        }
    }

    async fn back_off(
        &self,
        backoff: Duration,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> Duration {
        warn!(
            reason,
            retry_in_ms = backoff.as_millis() as u64,
            "getUpdates failed"
        );
        if let Some(since) = self.health.since_last_success()
            && since > DEAF_AFTER
        {
            warn!(
                seconds = since.as_secs(),
                "no successful getUpdates for a while, the bot receives nothing"
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
        (backoff * 2).min(MAX_BACKOFF)
    }
}

/// Parses an update stored in an inbox. The JSON is what teloxide's own
/// serializer wrote, so failure means a corrupt entry.
pub fn parse_stored(raw: &str) -> serde_json::Result<TelegramUpdate> {
    serde_json::from_str(raw)
}

/// Recovers the updates of a `getUpdates` answer that teloxide rejected as a
/// whole, keeping each one that has an `update_id`; updates teloxide cannot
/// read become `UpdateKind::Error` with their raw JSON.
pub fn parse_lenient(raw: &str) -> Option<Vec<TelegramUpdate>> {
    let answer: Value = serde_json::from_str(raw).ok()?;
    if answer.get("ok") != Some(&Value::Bool(true)) {
        return None;
    }
    let updates = answer.get("result")?.as_array()?;
    let parsed = updates
        .iter()
        .filter_map(|value| {
            let id = value
                .get("update_id")?
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())?;
            // From text, not from the value: teloxide's update deserializer
            // needs string keys it can borrow.
            let update = serde_json::from_str::<TelegramUpdate>(&value.to_string()).unwrap_or(
                TelegramUpdate {
                    id: UpdateId(id),
                    kind: UpdateKind::Error(value.clone()),
                },
            );
            Some(update)
        })
        .collect();
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_parse_keeps_unreadable_updates() {
        let raw = r#"{"ok":true,"result":[
            {"update_id":5,"message":{"message_id":1,"chat":{"id":1001,"type":"private","first_name":"Ann"},"date":"not a number","text":"hi"}},
            {"update_id":6,"message":{"message_id":2,"from":{"id":1001,"is_bot":false,"first_name":"Ann"},"chat":{"id":1001,"type":"private","first_name":"Ann"},"date":1796374800,"text":"ok"}}
        ]}"#;
        let updates = parse_lenient(raw).unwrap();
        let ids: Vec<u32> = updates.iter().map(|update| update.id.0).collect();
        assert_eq!(ids, vec![5, 6]);
        assert!(matches!(updates[0].kind, UpdateKind::Error(_)));
        assert!(matches!(updates[1].kind, UpdateKind::Message(_)));
    }

    #[test]
    fn stored_updates_round_trip() {
        let raw = r#"{"ok":true,"result":[
            {"update_id":7,"message":{"message_id":1,"from":{"id":1001,"is_bot":false,"first_name":"Ann"},"chat":{"id":1001,"type":"private","first_name":"Ann"},"date":1796374800,"sticker":{"file_id":"CAAC","file_unique_id":"AgAD","type":"regular","width":512,"height":512,"is_animated":false,"is_video":false,"emoji":"💪"}}},
            {"update_id":8,"message":{"message_id":2,"chat":{"id":1001,"type":"private","first_name":"Ann"},"date":"broken"}}
        ]}"#;
        for update in parse_lenient(raw).unwrap() {
            let stored = serde_json::to_string(&update).unwrap();
            let parsed = parse_stored(&stored).unwrap();
            assert_eq!(parsed.id, update.id, "{stored}");
            assert_eq!(
                std::mem::discriminant(&parsed.kind),
                std::mem::discriminant(&update.kind),
                "{stored}"
            );
        }
    }

    #[test]
    fn lenient_parse_rejects_error_answers() {
        assert!(
            parse_lenient(r#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#).is_none()
        );
        assert!(parse_lenient("<html>502 Bad Gateway</html>").is_none());
    }
}
