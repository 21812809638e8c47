//! State store: conversation records and flow state in Redis.
//!
//! Keys, with `P` the configured prefix and bot id (`flowbot:b7000000001`):
//!
//! - `P:{c<chat>:u<user>}:conv`: hash of `rev` (revision, bumped on every
//!   commit), `active` (flow holding the conversation), `last_update`
//!   (newest applied `update_id`), `last_tap`, and `failures`
//!   (`<flow>:<n>`, failed calls in a row of the flow invoked last).
//! - `P:{c<chat>:u<user>}:state:<flow>`: hash of `data`, `schema`, and the
//!   `version` and `digest` of the build that wrote it.
//! - `P:{c<chat>:u<user>}:inbox`: sorted set of updates received but not
//!   yet committed, scored by `update_id` (see `store/queues.rs`).
//! - `P:{c<chat>:u<user>}:outbox`: list of actions committed but not yet
//!   accepted by Telegram, oldest first.
//! - `P:{c<chat>:u<user>}:applied`: sorted set of the newest 100 applied
//!   `update_id`s, scored by revision.
//! - `P:pending`: set of conversations that may have inbox or outbox entries.
//! - `P:chat:<chat>`: hash with `inactive` set while the bot may not write to
//!   the chat (blocked, kicked).
//!
//! The braces are a Redis Cluster hash tag, so one conversation's keys share a
//! slot and the commit script may touch them together.

mod queues;

pub use queues::Stashed;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use thiserror::Error;

use crate::conversation::ConversationKey;

/// Maximum wait for the reply to one command or pipeline.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Maximum wait for one connection attempt.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("redis is unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),
    #[error("conversation {0} changed since it was loaded")]
    Conflict(ConversationKey),
    #[error("invalid record at {key}: {reason}")]
    Decode { key: String, reason: String },
}

impl StoreError {
    /// Tells whether trying again later may succeed: the connection failed
    /// or Redis is loading, failing over or busy. A rejected command or an
    /// invalid record fails the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(error) => {
                !matches!(error.retry_method(), redis::RetryMethod::NoRetry)
            }
            StoreError::Conflict(_) | StoreError::Decode { .. } => false,
        }
    }
}

/// A conversation's record as loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// 0 for a conversation never committed.
    pub revision: u64,
    pub active_flow: Option<String>,
    pub last_update_id: Option<i64>,
    /// The last inline button press, as `<message id>:<data>:<unix ms>`.
    pub last_tap: Option<String>,
    /// The flow invoked last and how many of its calls in a row failed.
    pub failures: Option<(String, u32)>,
}

impl Conversation {
    /// Returns how many calls of `flow` in a row failed in this conversation.
    pub fn failures_of(&self, flow: &str) -> u32 {
        match &self.failures {
            Some((failed, count)) if failed == flow => *count,
            _ => 0,
        }
    }
}

/// A conversation's record with the two checks made before an update is
/// handled; see [`StateStore::load_for_update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub conversation: Conversation,
    /// The update's effects are already committed.
    pub already_applied: bool,
    /// The bot may not write to the chat (blocked, kicked).
    pub chat_inactive: bool,
}

/// Builds a [`Conversation`] from the fields of its hash at `redis_key`.
fn decode_conversation(
    redis_key: &str,
    fields: Vec<(String, String)>,
) -> Result<Conversation, StoreError> {
    let mut conversation = Conversation::default();
    for (field, value) in fields {
        let invalid = |reason: String| StoreError::Decode {
            key: redis_key.to_owned(),
            reason,
        };
        match field.as_str() {
            "rev" => {
                conversation.revision = value
                    .parse()
                    .map_err(|_| invalid(format!("rev {value:?}")))?;
            }
            "last_update" => {
                let update_id = value
                    .parse()
                    .map_err(|_| invalid(format!("last_update {value:?}")))?;
                conversation.last_update_id = Some(update_id);
            }
            "active" => conversation.active_flow = Some(value),
            "last_tap" => conversation.last_tap = Some(value),
            "failures" => {
                let parsed = value
                    .rsplit_once(':')
                    .and_then(|(flow, count)| Some((flow.to_owned(), count.parse().ok()?)));
                conversation.failures =
                    Some(parsed.ok_or_else(|| invalid(format!("failures {value:?}")))?);
            }
            _ => {}
        }
    }
    Ok(conversation)
}

/// One flow's stored state for a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowState {
    pub data: Vec<u8>,
    pub schema: u32,
    /// Version of the flow build that wrote the state.
    pub version: String,
    /// Hex sha256 of the build that wrote the state; empty for state
    /// written before digests were recorded.
    pub digest: String,
}

/// What a commit does to one flow's state.
#[derive(Debug, Clone)]
pub enum StateWrite<'a> {
    Keep,
    Put {
        data: &'a [u8],
        schema: u32,
        version: &'a str,
        digest: &'a str,
    },
    Delete,
}

/// One atomic step applied to a conversation after an update was handled.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    /// Revision the update was handled against; a different stored revision
    /// makes the commit fail with [`StoreError::Conflict`].
    pub expected_revision: u64,
    pub update_id: i64,
    /// Flow that holds the conversation afterwards.
    pub active_flow: Option<&'a str>,
    /// Flow whose state `write` applies to.
    pub flow: Option<&'a str>,
    pub write: StateWrite<'a>,
    /// Button press to remember for double-tap detection.
    pub tap: Option<&'a str>,
    /// New failure count of the flow invoked, as `<flow>:<n>`; `None`
    /// keeps the stored one, as for updates the host handles itself.
    pub failures: Option<&'a str>,
    /// Serialized outbound actions, appended to the outbox in order.
    pub outbox: &'a [String],
}

/// The result of a commit: the new revision and the outbox it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The conversation's new revision.
    pub revision: u64,
    /// The conversation's whole outbox after the commit, oldest first: entries
    /// left unsent by earlier updates, then this commit's.
    pub outbox: Vec<String>,
}

/// Checks the revision, then in one step writes the conversation record
/// and the flow state, records the update as applied, removes it from the
/// inbox, and appends the outbound actions to the outbox. Returns the new
/// revision and the whole outbox, or -1 and nothing on a revision mismatch.
///
/// The applied set keeps the newest 100 update ids by revision, not by id,
/// because Telegram picks the next `update_id` at random after a week
/// without updates; 100 is the most one `getUpdates` call returns, so a
/// redelivered batch is always recognised.
///
/// KEYS: conversation, flow state, inbox, outbox, applied set. ARGV: expected revision,
/// update id, active flow ('' for none), state operation (keep, put,
/// delete), data, schema, version, TTL in seconds (0 for none), last tap
/// ('' to keep), digest, failures ('' to keep), then one outbox entry per
/// remaining argument.
const COMMIT_SCRIPT: &str = r#"
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[1]) then
  return {-1, {}}
end
rev = rev + 1
redis.call('HSET', KEYS[1], 'rev', rev, 'last_update', ARGV[2])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'active')
else
  redis.call('HSET', KEYS[1], 'active', ARGV[3])
end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'last_tap', ARGV[9])
end
if ARGV[11] ~= '' then
  redis.call('HSET', KEYS[1], 'failures', ARGV[11])
end
if ARGV[4] == 'put' then
  redis.call('HSET', KEYS[2], 'data', ARGV[5], 'schema', ARGV[6], 'version', ARGV[7], 'digest', ARGV[10])
elseif ARGV[4] == 'delete' then
  redis.call('DEL', KEYS[2])
end
redis.call('ZADD', KEYS[5], rev, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -101)
redis.call('ZREMRANGEBYSCORE', KEYS[3], ARGV[2], ARGV[2])
for i = 12, #ARGV do
  redis.call('RPUSH', KEYS[4], ARGV[i])
end
local ttl = tonumber(ARGV[8])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[5], ttl)
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('EXPIRE', KEYS[2], ttl)
  end
end
return {rev, redis.call('LRANGE', KEYS[4], 0, -1)}
"#;

/// Redis-backed store of conversations and flow state for one bot.
#[derive(Clone)]
pub struct StateStore {
    connection: ConnectionManager,
    /// `<prefix>:b<bot id>`, the start of every key.
    namespace: String,
    ttl_secs: u64,
    commit_script: Script,
}

impl StateStore {
    /// Connects to `url`; `ttl_days` of 0 keeps records forever.
    pub async fn connect(
        url: &str,
        prefix: &str,
        bot_id: i64,
        ttl_days: u32,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        // Without a response timeout, a command sent just before Redis went
        // away can wait forever, and with it the conversation or intake that
        // sent it. The redis crate's `tcp_nodelay` feature is off, so the
        // connection keeps Nagle's algorithm. Turning it on changed neither
        // p99 of `scripts/bench overhead-1000` (2.3 to 2.5 ms) nor of
        // unpaced-1000.
        // A failed reconnection is reported at once instead of being retried
        // here, because every caller retries with its own backoff and logs.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_connection_timeout(CONNECTION_TIMEOUT)
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            namespace: format!("{prefix}:b{bot_id}"),
            ttl_secs: u64::from(ttl_days) * 24 * 60 * 60,
            commit_script: Script::new(COMMIT_SCRIPT),
        })
    }

    pub fn conversation_key(&self, key: ConversationKey) -> String {
        format!("{}:{{{key}}}:conv", self.namespace)
    }

    pub fn state_key(&self, key: ConversationKey, flow: &str) -> String {
        format!("{}:{{{key}}}:state:{flow}", self.namespace)
    }

    fn chat_key(&self, chat_id: i64) -> String {
        format!("{}:chat:{chat_id}", self.namespace)
    }

    pub async fn load(&self, key: ConversationKey) -> Result<Conversation, StoreError> {
        let redis_key = self.conversation_key(key);
        let fields: Vec<(String, String)> = self.connection.clone().hgetall(&redis_key).await?;
        decode_conversation(&redis_key, fields)
    }

    /// Reads what handling `update_id` starts from in one round trip: the
    /// conversation record, whether the update was already applied, and
    /// whether its chat is inactive. The three reads see one moment, and a
    /// commit later checks the revision, so nothing changes in between
    /// unnoticed.
    pub async fn load_for_update(
        &self,
        key: ConversationKey,
        update_id: i64,
    ) -> Result<Loaded, StoreError> {
        let redis_key = self.conversation_key(key);
        let (fields, applied_score, chat_inactive): (Vec<(String, String)>, Option<f64>, bool) =
            redis::pipe()
                .hgetall(&redis_key)
                .zscore(self.applied_key(key), update_id)
                .hexists(self.chat_key(key.chat_id), "inactive")
                .query_async(&mut self.connection.clone())
                .await?;
        Ok(Loaded {
            conversation: decode_conversation(&redis_key, fields)?,
            already_applied: applied_score.is_some(),
            chat_inactive,
        })
    }

    pub async fn load_state(
        &self,
        key: ConversationKey,
        flow: &str,
    ) -> Result<Option<FlowState>, StoreError> {
        let redis_key = self.state_key(key, flow);
        type Fields = (
            Option<Vec<u8>>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let (data, schema, version, digest): Fields = redis::cmd("HMGET")
            .arg(&redis_key)
            .arg(&["data", "schema", "version", "digest"])
            .query_async(&mut self.connection.clone())
            .await?;
        let Some(data) = data else {
            return Ok(None);
        };
        let schema = schema.unwrap_or_default();
        let schema = schema.parse().map_err(|_| StoreError::Decode {
            key: redis_key.clone(),
            reason: format!("schema {schema:?}"),
        })?;
        Ok(Some(FlowState {
            data,
            schema,
            version: version.unwrap_or_default(),
            digest: digest.unwrap_or_default(),
        }))
    }

    /// Applies `commit` atomically.
    pub async fn commit(
        &self,
        key: ConversationKey,
        commit: &Commit<'_>,
    ) -> Result<Committed, StoreError> {
        let state_key = match commit.flow {
            Some(flow) => self.state_key(key, flow),
            None => format!("{}:{{{key}}}:state", self.namespace),
        };
        let (operation, data, schema, version, digest): (&str, &[u8], u32, &str, &str) =
            match &commit.write {
                StateWrite::Keep => ("keep", &[], 0, "", ""),
                StateWrite::Put {
                    data,
                    schema,
                    version,
                    digest,
                } => ("put", data, *schema, version, digest),
                StateWrite::Delete => ("delete", &[], 0, "", ""),
            };
        let mut invocation = self.commit_script.prepare_invoke();
        invocation
            .key(self.conversation_key(key))
            .key(state_key)
            .key(self.inbox_key(key))
            .key(self.outbox_key(key))
            .key(self.applied_key(key))
            .arg(commit.expected_revision)
            .arg(commit.update_id)
            .arg(commit.active_flow.unwrap_or(""))
            .arg(operation)
            .arg(data)
            .arg(schema)
            .arg(version)
            .arg(self.ttl_secs)
            .arg(commit.tap.unwrap_or(""))
            .arg(digest)
            .arg(commit.failures.unwrap_or(""));
        for entry in commit.outbox {
            invocation.arg(entry);
        }
        let (revision, outbox): (i64, Vec<String>) = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        let revision = u64::try_from(revision).map_err(|_| StoreError::Conflict(key))?;
        Ok(Committed { revision, outbox })
    }

    /// Records whether the bot may write to `chat_id`.
    pub async fn set_chat_inactive(&self, chat_id: i64, inactive: bool) -> Result<(), StoreError> {
        let key = self.chat_key(chat_id);
        let mut connection = self.connection.clone();
        if inactive {
            let _: () = connection.hset(&key, "inactive", 1).await?;
        } else {
            let _: () = connection.hdel(&key, "inactive").await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_transient() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(StoreError::Unavailable(refused.into()).is_transient());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::Unavailable(reset.into()).is_transient());
        let loading = redis::RedisError::from((redis::ErrorKind::BusyLoadingError, "loading"));
        assert!(StoreError::Unavailable(loading).is_transient());
    }

    #[test]
    fn rejected_commands_are_not_transient() {
        let rejected = redis::RedisError::from((redis::ErrorKind::ResponseError, "ERR"));
        assert!(!StoreError::Unavailable(rejected).is_transient());
        let key = ConversationKey::new(1, 1);
        assert!(!StoreError::Conflict(key).is_transient());
        let decode = StoreError::Decode {
            key: "k".to_owned(),
            reason: "r".to_owned(),
        };
        assert!(!decode.is_transient());
    }
}
