//! The Redis state store against a real redis-server.

use flowbot::conversation::ConversationKey;
use flowbot::store::{Commit, Stashed, StateStore, StateWrite, StoreError};
use flowbot_integration::RedisServer;
use redis::AsyncCommands;

const BOT_ID: i64 = 7000000001;

async fn store(redis: &RedisServer) -> StateStore {
    StateStore::connect(&redis.url, "flowbot", BOT_ID, 180)
        .await
        .expect("store connects")
}

const DIGEST: &str = "5e1f00d2c0ffee5e1f00d2c0ffee5e1f00d2c0ffee5e1f00d2c0ffee5e1f00d2";

fn put<'a>(expected_revision: u64, update_id: i64, data: &'a [u8]) -> Commit<'a> {
    Commit {
        expected_revision,
        update_id,
        active_flow: Some("workouts"),
        flow: Some("workouts"),
        write: StateWrite::Put {
            data,
            schema: 1,
            version: "0.1.0",
            digest: DIGEST,
        },
        tap: None,
        failures: None,
        outbox: &[],
    }
}

#[tokio::test]
async fn commit_then_load_round_trips() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let key = ConversationKey::new(1001, 1001);

    let committed = store.commit(key, &put(0, 100101, b"{\"sets\":1}")).await?;
    assert_eq!(committed.revision, 1);
    assert!(committed.outbox.is_empty());

    let conversation = store.load(key).await?;
    assert_eq!(conversation.revision, 1);
    assert_eq!(conversation.active_flow.as_deref(), Some("workouts"));
    assert_eq!(conversation.last_update_id, Some(100101));
    let state = store
        .load_state(key, "workouts")
        .await?
        .expect("state stored");
    assert_eq!(state.data, b"{\"sets\":1}");
    assert_eq!(state.schema, 1);
    assert_eq!(state.version, "0.1.0");
    assert_eq!(state.digest, DIGEST);
    Ok(())
}

#[tokio::test]
async fn stale_revision_is_a_conflict() -> anyhow::Result<()> {
    // Two hosts load revision 0 and both try to commit: one must lose, so
    // neither overwrites the other's write unseen.
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let key = ConversationKey::new(1001, 1001);

    store.commit(key, &put(0, 100101, b"[\"milk\"]")).await?;
    let error = store
        .commit(key, &put(0, 100102, b"[\"bread\"]"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict(conflicted) if conflicted == key),
        "{error}"
    );

    let state = store
        .load_state(key, "workouts")
        .await?
        .expect("state stored");
    assert_eq!(state.data, b"[\"milk\"]");
    Ok(())
}

#[tokio::test]
async fn keys_are_namespaced_per_bot_and_user() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let ann = ConversationKey::new(-100123, 1001);
    let ben = ConversationKey::new(-100123, 1002);

    store.commit(ann, &put(0, 1, b"ann")).await?;
    store.commit(ben, &put(0, 2, b"ben")).await?;

    assert_eq!(
        store.conversation_key(ann),
        "flowbot:b7000000001:{c-100123:u1001}:conv"
    );
    assert_eq!(
        store.load_state(ann, "workouts").await?.unwrap().data,
        b"ann"
    );
    assert_eq!(
        store.load_state(ben, "workouts").await?.unwrap().data,
        b"ben"
    );

    let mut connection = redis.connection().await?;
    let ttl: i64 = connection.ttl(store.state_key(ann, "workouts")).await?;
    assert!(
        ttl > 179 * 24 * 3600,
        "state TTL is refreshed on commit, got {ttl}"
    );
    Ok(())
}

#[tokio::test]
async fn delete_and_release_clear_the_record() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let key = ConversationKey::new(1001, 1001);

    store.commit(key, &put(0, 1, b"x")).await?;
    let release = Commit {
        expected_revision: 1,
        update_id: 2,
        active_flow: None,
        flow: Some("workouts"),
        write: StateWrite::Delete,
        tap: None,
        failures: None,
        outbox: &[],
    };
    store.commit(key, &release).await?;

    let conversation = store.load(key).await?;
    assert_eq!(conversation.active_flow, None);
    assert_eq!(conversation.revision, 2);
    assert!(store.load_state(key, "workouts").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn chat_inactive_flag_toggles() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;

    let inactive = async |chat_id| -> anyhow::Result<bool> {
        let key = ConversationKey::new(chat_id, chat_id);
        Ok(store.load_for_update(key, 1).await?.chat_inactive)
    };
    assert!(!inactive(1001).await?);
    store.set_chat_inactive(1001, true).await?;
    assert!(inactive(1001).await?);
    assert!(!inactive(1002).await?);
    store.set_chat_inactive(1001, false).await?;
    assert!(!inactive(1001).await?);
    Ok(())
}

fn stashed(key: ConversationKey, update_id: i64) -> Stashed {
    Stashed {
        key,
        update_id,
        raw: format!("{{\"update_id\":{update_id}}}"),
    }
}

#[tokio::test]
async fn commit_moves_update_from_inbox_to_outbox() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let key = ConversationKey::new(1001, 1001);

    // The same batch stored twice (a retried getUpdates) keeps one copy.
    let batch = [stashed(key, 10), stashed(key, 11), stashed(key, 12)];
    store.stash(&batch).await?;
    store.stash(&batch).await?;
    assert_eq!(store.inbox_after(key, None, 100).await?, batch.to_vec());
    assert_eq!(store.pending_conversations().await?, vec![key]);

    let outbox = ["first".to_owned(), "second".to_owned()];
    let commit = Commit {
        outbox: &outbox,
        ..put(0, 11, b"x")
    };
    let committed = store.commit(key, &commit).await?;
    assert_eq!(
        store.inbox_after(key, None, 100).await?,
        vec![stashed(key, 10), stashed(key, 12)],
        "only the committed update left the inbox"
    );
    assert_eq!(store.outbox(key).await?, outbox.to_vec());
    assert_eq!(committed.outbox, outbox.to_vec());

    store.pop_outbox(key).await?;
    assert_eq!(store.outbox(key).await?, vec!["second".to_owned()]);

    // The next commit returns what is still unsent before its own entries.
    let third = ["third".to_owned()];
    let commit = Commit {
        outbox: &third,
        ..put(1, 12, b"y")
    };
    let committed = store.commit(key, &commit).await?;
    assert_eq!(
        committed.outbox,
        vec!["second".to_owned(), "third".to_owned()]
    );
    assert_eq!(store.outbox(key).await?, committed.outbox);
    Ok(())
}

#[tokio::test]
async fn failed_commit_changes_no_queue() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let key = ConversationKey::new(1001, 1001);
    store.stash(&[stashed(key, 10)]).await?;

    let outbox = ["reply".to_owned()];
    let stale = Commit {
        outbox: &outbox,
        ..put(5, 10, b"x")
    };
    assert!(matches!(
        store.commit(key, &stale).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.inbox_after(key, None, 100).await?.len(), 1);
    assert!(store.outbox(key).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn idle_conversation_is_unmarked() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let busy = ConversationKey::new(1001, 1001);
    let done = ConversationKey::new(1002, 1002);
    store.stash(&[stashed(busy, 1), stashed(done, 2)]).await?;
    store.drop_from_inbox(done, 2).await?;

    assert!(!store.unmark_if_idle(busy).await?);
    assert!(store.unmark_if_idle(done).await?);
    assert_eq!(store.pending_conversations().await?, vec![busy]);
    Ok(())
}

#[tokio::test]
async fn applied_ids_survive_a_random_jump() -> anyhow::Result<()> {
    // After a week without updates Telegram picks the next update_id at
    // random, possibly below the last one; it must still be applied once.
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let key = ConversationKey::new(1001, 1001);

    let applied = async |update_id| -> anyhow::Result<bool> {
        Ok(store.load_for_update(key, update_id).await?.already_applied)
    };
    store.commit(key, &put(0, 900_000, b"a")).await?;
    assert!(!applied(7).await?);
    store.commit(key, &put(1, 7, b"b")).await?;
    assert!(applied(900_000).await?);
    assert!(applied(7).await?);
    assert!(!applied(8).await?);
    Ok(())
}

#[tokio::test]
async fn failure_count_round_trips_and_is_kept() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let store = store(&redis).await;
    let key = ConversationKey::new(1001, 1001);

    let failed = Commit {
        failures: Some("workouts:2"),
        ..put(0, 100, b"x")
    };
    store.commit(key, &failed).await?;
    let conversation = store.load(key).await?;
    assert_eq!(conversation.failures_of("workouts"), 2);
    assert_eq!(conversation.failures_of("exercises"), 0);

    // A commit that names no count keeps the stored one.
    store.commit(key, &put(1, 101, b"y")).await?;
    assert_eq!(store.load(key).await?.failures_of("workouts"), 2);
    Ok(())
}
