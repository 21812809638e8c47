//! Handling of one update: load the conversation, route, invoke the flow,
//! commit, deliver.
//!
//! The conversation key travels with the update through every step, and the
//! flow's actions are bound to the update's own chat, so no step can reply to
//! the wrong user. The dispatcher guarantees that updates of one conversation
//! reach this code one at a time; the revision check in the commit protects
//! the same conversation handled by another host.
//!
//! The commit also removes the update from the conversation's inbox and puts
//! its actions in the outbox, so after a crash an update is either handled
//! again from the inbox or its replies go out from the outbox, never both.
//! A flow failure commits no state but does record the update as handled,
//! with an apology in the outbox, so a poisonous update is not retried.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::breaker::Breakers;
use crate::conversation::ConversationKey;
use crate::metrics;
use crate::registry::{FlowSet, Registry, RegistryError};
use crate::router::{self, Route};
use crate::runtime::{
    Action, AnswerCallback, Event, FlowComponent, InvokeError, Outcome, Runtime, StateChange,
    Update,
};
use crate::store::{Commit, FlowState, StateStore, StateWrite, StoreError};
use crate::telegram::inbound::{Inbound, InboundKind};
use crate::telegram::outbound::{Delivered, Outgoing, Sender, Target};

/// Attempts of one update against conflicts and store errors that retrying
/// cannot fix. An update that runs out stays in the inbox and is handled at
/// the next start.
const MAX_ATTEMPTS: u32 = 6;
/// Minimum and maximum pause between attempts after a store error.
const MIN_STORE_BACKOFF: Duration = Duration::from_millis(100);
const MAX_STORE_BACKOFF: Duration = Duration::from_secs(5);
/// Failed calls of one flow in a row, in one conversation, after which the
/// flow's stored state is reset before the next call.
const FAILURES_BEFORE_RESET: u32 = 3;
/// Two presses of the same button closer than this are one press.
const DOUBLE_TAP_WINDOW: Duration = Duration::from_millis(1500);

pub const APOLOGY: &str = "Sorry, something went wrong on our side while handling that. It was not your fault; please try again.";
pub const TOO_SLOW: &str = "Sorry, that took too long on our side and was stopped. It was not your fault; please try again.";
const NOT_UNDERSTOOD: &str = "I didn't understand that. Send /help to see what I can do.";
const UNSUPPORTED: &str = "I can't handle this here. Send /help to see what I can do.";
const NOTHING_TO_CANCEL: &str = "Nothing to cancel.";
const CANCELLED: &str = "Cancelled. Nothing in progress was saved.";
const STALE_BUTTON: &str = "This button is no longer active.";
const STATE_RESET: &str = "Your saved progress could not be read by this version and was reset.";

pub struct Handler {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    store: StateStore,
    sender: Sender,
    /// Bounds the updates being invoked and committed at once; delivery
    /// happens outside it, so slow chats do not hold it.
    permits: Arc<Semaphore>,
    breakers: Breakers,
}

/// What handling produced, before it is committed.
struct Plan {
    actions: Vec<Action>,
    active_flow: Option<String>,
    flow: Option<String>,
    write: PlannedWrite,
    /// New failure count of the invoked flow, as `<flow>:<n>`; `None` keeps
    /// the stored count.
    failures: Option<String>,
}

enum PlannedWrite {
    Keep,
    Put {
        data: Vec<u8>,
        schema: u32,
        version: String,
        digest: String,
    },
    Delete,
}

/// Records how long an update spent in `stage` since `started`.
fn observe_stage(stage: &str, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    metrics::observe("flowbot_update_stage_seconds", &[("stage", stage)], seconds);
}

impl Handler {
    pub fn new(
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        store: StateStore,
        sender: Sender,
        max_concurrent: usize,
        breakers: Breakers,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(max_concurrent));
        Self {
            runtime,
            registry,
            store,
            sender,
            permits,
            breakers,
        }
    }

    /// Handles one update, then delivers the conversation's outbox.
    pub async fn handle(&self, inbound: Inbound) {
        let span = info_span!(
            "update",
            update_id = inbound.update_id,
            chat_id = inbound.key.chat_id,
            user_id = inbound.key.user_id,
        );
        async {
            let mut committed_outbox = None;
            match &inbound.kind {
                InboundKind::Membership { active } => {
                    self.change_membership(&inbound, *active).await
                }
                InboundKind::Flow {
                    view,
                    callback_query_id,
                } => {
                    let target = Target {
                        chat_id: inbound.key.chat_id,
                        thread_id: inbound.key.thread_id,
                        callback_query_id: callback_query_id.clone(),
                    };
                    let started = Instant::now();
                    committed_outbox = self.apply(&inbound, view, &target).await;
                    observe_stage("handle", started);
                }
                InboundKind::Resume => {}
            }
            let started = Instant::now();
            let delivered = match &committed_outbox {
                Some(entries) => self.sender.deliver(inbound.key, entries).await,
                None => self.sender.flush(inbound.key).await,
            };
            observe_stage("deliver", started);
            match delivered {
                Ok(Delivered::Sent) => {}
                Ok(Delivered::ChatGone) => info!("chat is gone, outbox dropped"),
                Err(error) => {
                    warn!(%error, "outbox delivery failed, kept for the next update or start")
                }
            }
        }
        .instrument(span)
        .await;
    }

    async fn change_membership(&self, inbound: &Inbound, active: bool) {
        info!(active, "bot membership changed");
        let key = inbound.key;
        let result = async {
            self.store.set_chat_inactive(key.chat_id, !active).await?;
            if !active {
                self.store.clear_outbox(key).await?;
            }
            self.store.drop_from_inbox(key, inbound.update_id).await
        };
        if let Err(error) = result.await {
            warn!(%error, "failed to record membership change");
        }
    }

    /// Handles a flow update, retrying on revision conflicts and store errors.
    /// Returns the outbox as the commit left it, or `None` when nothing was
    /// committed.
    ///
    /// While Redis cannot be reached the update is retried until it can,
    /// because skipping it would let the conversation's later updates
    /// overtake it. Conflicts and errors that retrying cannot fix give up
    /// after [`MAX_ATTEMPTS`], and the update stays in the inbox for the
    /// next start.
    async fn apply(
        &self,
        inbound: &Inbound,
        view: &Update,
        target: &Target,
    ) -> Option<Vec<String>> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let mut backoff = MIN_STORE_BACKOFF;
        let mut attempt = 0;
        let mut counted = 0;
        while counted < MAX_ATTEMPTS {
            attempt += 1;
            match self.try_handle(inbound, view, target).await {
                Ok(outbox) => return outbox,
                Err(StoreError::Conflict(_)) => {
                    counted += 1;
                    debug!(attempt, "revision conflict, handling the update again");
                }
                Err(error) => {
                    if !error.is_transient() {
                        counted += 1;
                    }
                    warn!(%error, attempt, retry_in_ms = backoff.as_millis() as u64, "state store failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_STORE_BACKOFF);
                }
            }
        }
        warn!(
            attempts = attempt,
            "update not applied; it stays in the inbox for the next start"
        );
        metrics::increment("flowbot_updates_total", &[("outcome", "not_applied")]);
        None
    }

    /// Runs one attempt against freshly loaded state. Flow failures become
    /// an apology in the plan; only store errors are returned. Returns the
    /// outbox after the commit, or `None` for an update skipped without one.
    async fn try_handle(
        &self,
        inbound: &Inbound,
        view: &Update,
        target: &Target,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let key = inbound.key;
        let loaded = self.store.load_for_update(key, inbound.update_id).await?;
        let conversation = loaded.conversation;
        if loaded.already_applied {
            info!("update already applied, skipped");
            metrics::increment("flowbot_updates_total", &[("outcome", "duplicate")]);
            self.store.drop_from_inbox(key, inbound.update_id).await?;
            return Ok(None);
        }
        if loaded.chat_inactive {
            debug!("chat is inactive, flows are not invoked until the bot is a member again");
            metrics::increment("flowbot_updates_total", &[("outcome", "chat_inactive")]);
            self.store.drop_from_inbox(key, inbound.update_id).await?;
            return Ok(None);
        }

        // A press of the same button again within the window is answered
        // and otherwise ignored, so a double tap applies once.
        let tap = match &view.event {
            Event::Callback(callback) => Some(format!(
                "{}:{}",
                callback.message_id.unwrap_or(0),
                callback.data
            )),
            _ => None,
        };
        let now_ms = unix_ms();
        let repeated = tap
            .as_deref()
            .is_some_and(|tap| is_repeated_tap(conversation.last_tap.as_deref(), tap, now_ms));

        // The snapshot taken here serves the whole update, so a reload in
        // the meantime does not change the build halfway.
        let flows = self.registry.snapshot();
        let route = if repeated {
            Route::Ignore
        } else {
            router::route(conversation.active_flow.as_deref(), &view.event, &flows)
        };
        debug!(
            ?route,
            repeated,
            active = conversation.active_flow.as_deref(),
            "routed"
        );

        let active = &conversation.active_flow;
        let mut plan = match route {
            Route::Flow {
                flow,
                callback_data,
            } => {
                let mut view = view.clone();
                if let (Event::Callback(callback), Some(data)) = (&mut view.event, callback_data) {
                    callback.data = data;
                }
                let entering = active.as_deref() != Some(flow.as_str());
                let digest = flows
                    .assigned(&flow, key.user_id)
                    .map(|assigned| assigned.digest.as_str())
                    .unwrap_or_default();
                if entering && self.breakers.is_open(digest) {
                    debug!(flow, "breaker open, new conversation turned away");
                    host_plan(
                        active,
                        format!(
                            "{flow} is unavailable right now because it keeps failing. Please try again in a few minutes."
                        ),
                    )
                } else {
                    let failures = conversation.failures_of(&flow);
                    self.invoke(&flows, &flow, key, &view, active, failures)
                        .await?
                }
            }
            Route::Help | Route::Start => host_plan(active, help_text(&flows, &route)),
            Route::Cancel => match active {
                // The flow hears of the cancel, so it drops its dialog and its
                // old buttons go stale; the conversation is released either way.
                Some(flow) if flows.get(flow).is_some() => {
                    let mut cancelled = view.clone();
                    cancelled.event = Event::Cancelled;
                    let failures = conversation.failures_of(flow);
                    let mut plan = self
                        .invoke(&flows, flow, key, &cancelled, active, failures)
                        .await?;
                    plan.actions.insert(0, text_action(CANCELLED.to_owned()));
                    plan.active_flow = None;
                    plan
                }
                Some(_) => Plan {
                    actions: vec![text_action(CANCELLED.to_owned())],
                    active_flow: None,
                    flow: None,
                    write: PlannedWrite::Keep,
                    failures: None,
                },
                None => host_plan(&None, NOTHING_TO_CANCEL.to_owned()),
            },
            Route::NotUnderstood => host_plan(active, NOT_UNDERSTOOD.to_owned()),
            Route::Unsupported => host_plan(active, UNSUPPORTED.to_owned()),
            Route::StaleButton => notice_plan(active, STALE_BUTTON.to_owned()),
            Route::Busy { active: holder } => {
                notice_plan(active, format!("Finish {holder} first, or send /cancel."))
            }
            Route::Ignore => host_plan(active, String::new()),
        };
        bind_callback_answer(&mut plan.actions, target);

        let outbox: Vec<String> = plan
            .actions
            .into_iter()
            .map(|action| {
                serde_json::to_string(&Outgoing {
                    target: target.clone(),
                    action,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|error| StoreError::Decode {
                key: key.to_string(),
                reason: error.to_string(),
            })?;
        let write = match &plan.write {
            PlannedWrite::Keep => StateWrite::Keep,
            PlannedWrite::Put {
                data,
                schema,
                version,
                digest,
            } => StateWrite::Put {
                data,
                schema: *schema,
                version,
                digest,
            },
            PlannedWrite::Delete => StateWrite::Delete,
        };
        let tap_record = tap
            .filter(|_| !repeated)
            .map(|tap| format!("{tap}:{now_ms}"));
        let commit = Commit {
            expected_revision: conversation.revision,
            update_id: inbound.update_id,
            active_flow: plan.active_flow.as_deref(),
            flow: plan.flow.as_deref(),
            write,
            tap: tap_record.as_deref(),
            failures: plan.failures.as_deref(),
            outbox: &outbox,
        };
        let committed = self.store.commit(key, &commit).await?;
        let outcome = if repeated { "double_tap" } else { "handled" };
        metrics::increment("flowbot_updates_total", &[("outcome", outcome)]);
        Ok(Some(committed.outbox))
    }

    /// Invokes `flow_name` and turns its outcome into a plan. A failed flow
    /// gives a plan with only an apology, which changes no state. `failures`
    /// counts the flow's failed calls in a row in this conversation. After
    /// [`FAILURES_BEFORE_RESET`] of them its stored state is reset, because
    /// the state itself may be what makes the flow fail.
    async fn invoke(
        &self,
        flows: &FlowSet,
        flow_name: &str,
        key: ConversationKey,
        view: &Update,
        active: &Option<String>,
        failures: u32,
    ) -> Result<Plan, StoreError> {
        let assigned = flows
            .assigned(flow_name, key.user_id)
            .expect("router returns loaded flows")
            .clone();
        let in_dialog = active.as_deref() == Some(flow_name);
        let (flow, start) = match self.store.load_state(key, flow_name).await {
            Err(StoreError::Decode { reason, .. }) => (
                assigned,
                Start::Reset {
                    reason: format!("invalid state record: {reason}"),
                },
            ),
            Err(error) => return Err(error),
            Ok(Some(_)) if failures >= FAILURES_BEFORE_RESET => {
                let reason = format!("{failures} failed calls in a row on this state");
                (assigned, Start::Reset { reason })
            }
            Ok(stored) => self.choose_build(assigned, stored, in_dialog).await,
        };
        let manifest = &flow.manifest;
        let span = info_span!("flow", flow = %manifest.name, version = %manifest.version, digest = %&flow.digest[..12]);

        async {
            let mut notices = Vec::new();
            let mut carried_write = PlannedWrite::Keep;
            let put = |data: Vec<u8>| PlannedWrite::Put {
                data,
                schema: manifest.state_schema,
                version: manifest.version.clone(),
                digest: flow.digest.clone(),
            };
            // Migrated state is committed even when the flow leaves it
            // unchanged. State that this build cannot read is dropped with a
            // notice, so the user is never stuck.
            let failed = |error: &InvokeError| {
                self.breakers
                    .record_failure(&manifest.name, &manifest.version, &flow.digest);
                failure_plan(error, active, flow_name, failures + 1)
            };
            let state = match start {
                Start::Fresh => None,
                Start::Stored(data) => Some(data),
                Start::Unavailable { reason } => {
                    warn!(%reason, "build that wrote the state cannot be loaded now");
                    return Ok(failure_plan(
                        &InvokeError::Flow(reason),
                        active,
                        flow_name,
                        failures + 1,
                    ));
                }
                Start::Migrate { from_schema, data } => {
                    match self.runtime.migrate(&flow, from_schema, &data).await {
                        Ok(migrated) => {
                            info!(from_schema, "state migrated");
                            carried_write = put(migrated.clone());
                            Some(migrated)
                        }
                        // The flow reported that it cannot convert this
                        // state, which will not change, so it is reset.
                        Err(InvokeError::Flow(error)) => {
                            warn!(from_schema, %error, "state migration failed, state reset");
                            notices.push(text_action(STATE_RESET.to_owned()));
                            carried_write = PlannedWrite::Delete;
                            None
                        }
                        // A trap, deadline or memory cap may be passing, so
                        // the state is kept for the next update.
                        Err(error) => return Ok(failed(&error)),
                    }
                }
                Start::Reset { reason } => {
                    warn!(%reason, "no loaded build reads the stored state, state reset");
                    notices.push(text_action(STATE_RESET.to_owned()));
                    carried_write = PlannedWrite::Delete;
                    None
                }
            };

            let mut result = self.call(&flow, view, state.as_deref()).await;
            if let Err(InvokeError::UnreadableState(reason)) = &result {
                warn!(%reason, "flow cannot decode the stored state, state reset");
                notices.push(text_action(STATE_RESET.to_owned()));
                carried_write = PlannedWrite::Delete;
                result = self.call(&flow, view, None).await;
            }
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(error) => return Ok(failed(&error)),
            };
            let mut actions = notices;
            actions.extend(outcome.actions);
            if let Err(reason) = router::tag_buttons(flow_name, &mut actions) {
                return Ok(failed(&InvokeError::OutputTooLarge(reason)));
            }

            let write = match outcome.state {
                StateChange::Unchanged => carried_write,
                StateChange::Replace(data) => put(data),
                StateChange::Clear => PlannedWrite::Delete,
            };
            Ok(Plan {
                actions,
                active_flow: (!outcome.done).then(|| flow_name.to_owned()),
                flow: Some(flow_name.to_owned()),
                write,
                failures: (failures > 0).then(|| format!("{flow_name}:0")),
            })
        }
        .instrument(span)
        .await
    }

    /// Picks the build that handles the update and how it gets its state.
    ///
    /// The assigned build (pinned, or canary for this user) serves when it
    /// reads the stored schema, directly or by migration. Otherwise a
    /// conversation in the middle of a dialog stays on the build that wrote
    /// its state until the dialog ends. Outside a dialog, or when that build
    /// is not installed, the state is reset. When that build is installed
    /// but cannot be loaded now, the update gets an apology instead.
    async fn choose_build(
        &self,
        assigned: Arc<FlowComponent>,
        stored: Option<FlowState>,
        in_dialog: bool,
    ) -> (Arc<FlowComponent>, Start) {
        let Some(stored) = stored else {
            return (assigned, Start::Fresh);
        };
        if stored.schema == assigned.manifest.state_schema {
            return (assigned, Start::Stored(stored.data));
        }
        if assigned.reads_schema(stored.schema) {
            let start = Start::Migrate {
                from_schema: stored.schema,
                data: stored.data,
            };
            return (assigned, start);
        }
        if in_dialog && !stored.digest.is_empty() {
            match self.registry.component(&stored.digest).await {
                Ok(writer) if writer.manifest.state_schema == stored.schema => {
                    debug!(writer = %writer.manifest.version, "dialog stays on the build that wrote its state");
                    return (writer, Start::Stored(stored.data));
                }
                Ok(_) | Err(RegistryError::NotInstalled(_)) => {}
                // Reading or compiling the build may work on the next
                // update, so the state is kept for it.
                Err(error) => {
                    let reason = format!("{error:#}");
                    return (assigned, Start::Unavailable { reason });
                }
            }
        }
        let reason = format!(
            "state schema {} written by {} {}, and {} reads schema {}",
            stored.schema,
            assigned.manifest.name,
            if stored.version.is_empty() {
                "an unknown version"
            } else {
                stored.version.as_str()
            },
            assigned.manifest.version,
            assigned.manifest.state_schema
        );
        (assigned, Start::Reset { reason })
    }

    /// Calls the flow and counts the call and its time.
    async fn call(
        &self,
        flow: &FlowComponent,
        view: &Update,
        state: Option<&[u8]>,
    ) -> Result<Outcome, InvokeError> {
        let started = Instant::now();
        let (result, cpu) = self.runtime.handle(flow, view, state).await;
        let manifest = &flow.manifest;
        let labels = [
            ("flow", manifest.name.as_str()),
            ("version", manifest.version.as_str()),
        ];
        metrics::add(
            "flowbot_flow_call_seconds_total",
            &labels,
            started.elapsed().as_secs_f64(),
        );
        metrics::add("flowbot_flow_cpu_seconds_total", &labels, cpu.as_secs_f64());
        let result_label = match &result {
            Ok(_) => "ok",
            Err(InvokeError::Deadline(_)) => "deadline",
            Err(InvokeError::OutOfMemory(_)) => "out_of_memory",
            Err(InvokeError::Trap(_)) => "trap",
            Err(InvokeError::Flow(_)) => "error",
            Err(InvokeError::UnreadableState(_)) => "unreadable_state",
            Err(InvokeError::OutputTooLarge(_)) => "output_too_large",
        };
        let digest = &flow.digest[..12];
        metrics::increment(
            "flowbot_flow_calls_total",
            &[
                labels[0],
                labels[1],
                ("digest", digest),
                ("result", result_label),
            ],
        );
        result
    }
}

/// The state that the chosen build starts from.
enum Start {
    /// No state stored.
    Fresh,
    /// The stored state, in the build's own schema.
    Stored(Vec<u8>),
    /// The stored state, to be migrated from an older schema first.
    Migrate { from_schema: u32, data: Vec<u8> },
    /// The stored state cannot be read; it is dropped with a notice.
    Reset { reason: String },
    /// The build that can read the stored state failed to load; the update
    /// gets an apology and the state is kept.
    Unavailable { reason: String },
}

/// The apology for a failed call of `flow`: no state change, the active
/// flow kept, and the flow's failures in a row raised to `failures`.
fn failure_plan(error: &InvokeError, active: &Option<String>, flow: &str, failures: u32) -> Plan {
    warn!(cause = %error, failures, "flow invocation failed, nothing committed");
    let text = match error {
        InvokeError::Deadline(_) => TOO_SLOW,
        _ => APOLOGY,
    };
    let mut plan = host_plan(active, text.to_owned());
    plan.failures = Some(format!("{flow}:{failures}"));
    plan
}

/// Makes sure a button press is answered exactly once, so the user's client
/// stops its spinner, and drops answers when there is no press to answer.
fn bind_callback_answer(actions: &mut Vec<Action>, target: &Target) {
    let mut answered = false;
    actions.retain(|action| {
        if !matches!(action, Action::AnswerCallback(_)) {
            return true;
        }
        let keep = target.callback_query_id.is_some() && !answered;
        if !keep {
            debug!("dropping a callback answer with no press left to answer");
        }
        answered |= keep;
        keep
    });
    if target.callback_query_id.is_some() && !answered {
        actions.push(Action::AnswerCallback(AnswerCallback {
            notice: None,
            alert: false,
        }));
    }
}

/// True when `tap` (`<message id>:<data>`) repeats `last` (`<tap>:<unix ms>`)
/// within [`DOUBLE_TAP_WINDOW`].
fn is_repeated_tap(last: Option<&str>, tap: &str, now_ms: u64) -> bool {
    let Some((last_tap, at)) = last.and_then(|last| last.rsplit_once(':')) else {
        return false;
    };
    let Ok(at) = at.parse::<u64>() else {
        return false;
    };
    last_tap == tap && now_ms.saturating_sub(at) < DOUBLE_TAP_WINDOW.as_millis() as u64
}

fn unix_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn text_action(text: String) -> Action {
    Action::SendText(crate::runtime::SendText { text, markup: None })
}

/// A host reply that leaves the active flow and all state as they are.
fn host_plan(active_flow: &Option<String>, text: String) -> Plan {
    let actions = if text.is_empty() {
        Vec::new()
    } else {
        vec![text_action(text)]
    };
    Plan {
        actions,
        active_flow: active_flow.clone(),
        flow: None,
        write: PlannedWrite::Keep,
        failures: None,
    }
}

/// A notice on the pressed button, leaving everything else as it is.
fn notice_plan(active_flow: &Option<String>, notice: String) -> Plan {
    let answer = Action::AnswerCallback(crate::runtime::AnswerCallback {
        notice: Some(notice),
        alert: false,
    });
    Plan {
        actions: vec![answer],
        active_flow: active_flow.clone(),
        flow: None,
        write: PlannedWrite::Keep,
        failures: None,
    }
}

fn help_text(flows: &FlowSet, route: &Route) -> String {
    let mut text = String::new();
    if *route == Route::Start {
        text.push_str("Hi! ");
    }
    text.push_str("Here is what I can do:\n");
    for (command, description) in flows.command_list() {
        text.push_str(&format!("/{command} - {description}\n"));
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SendText;

    fn target(callback_query_id: Option<&str>) -> Target {
        Target {
            chat_id: 1001,
            thread_id: None,
            callback_query_id: callback_query_id.map(str::to_owned),
        }
    }

    fn answer(notice: &str) -> Action {
        Action::AnswerCallback(AnswerCallback {
            notice: Some(notice.to_owned()),
            alert: false,
        })
    }

    fn send(text: &str) -> Action {
        Action::SendText(SendText {
            text: text.to_owned(),
            markup: None,
        })
    }

    #[test]
    fn unanswered_press_gets_an_answer() {
        let mut actions = vec![send("saved")];
        bind_callback_answer(&mut actions, &target(Some("44")));
        assert_eq!(actions.len(), 2);
        assert!(matches!(&actions[1], Action::AnswerCallback(answer) if answer.notice.is_none()));
    }

    #[test]
    fn press_is_answered_once() {
        let mut actions = vec![answer("first"), send("saved"), answer("second")];
        bind_callback_answer(&mut actions, &target(Some("44")));
        assert_eq!(actions.len(), 2);
        assert!(
            matches!(&actions[0], Action::AnswerCallback(answer) if answer.notice.as_deref() == Some("first"))
        );
    }

    #[test]
    fn answer_without_press_is_dropped() {
        let mut actions = vec![answer("nothing to answer"), send("hi")];
        bind_callback_answer(&mut actions, &target(None));
        assert_eq!(actions.len(), 1);
        assert!(matches!(&actions[0], Action::SendText(_)));
    }

    #[test]
    fn repeated_tap_within_window() {
        let last = Some("41:workouts~finish:1:10000");
        assert!(is_repeated_tap(last, "41:workouts~finish:1", 10_050));
        assert!(!is_repeated_tap(last, "41:workouts~finish:1", 12_000));
        assert!(!is_repeated_tap(last, "41:workouts~cancel:1", 10_050));
        assert!(!is_repeated_tap(None, "41:workouts~finish:1", 10_050));
    }
}
