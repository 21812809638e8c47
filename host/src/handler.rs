//! Handling of one update: load the conversation, route, invoke the flow,
//! commit, deliver.
//!
//! The conversation key travels with the update through every step, and the
//! flow's actions are bound to the update's own chat, so no step can answer
//! the wrong user. The dispatcher guarantees that updates of one conversation
//! reach this code one at a time; the revision check in the commit protects
//! the same conversation handled by another host.

use std::sync::{Arc, RwLock};

use tracing::{Instrument, debug, info, info_span, warn};

use crate::registry::FlowSet;
use crate::router::{self, Route};
use crate::runtime::{Action, Event, InvokeError, Runtime, StateChange, Update};
use crate::store::{Commit, StateStore, StateWrite, StoreError};
use crate::telegram::inbound::{Inbound, InboundKind};
use crate::telegram::outbound::{Delivered, Sender, Target};

/// Commits retried on a revision conflict before the update is given up.
const MAX_COMMIT_ATTEMPTS: u32 = 5;

pub const APOLOGY: &str = "Sorry, something went wrong on our side while handling that. It was not your fault; please try again.";
pub const TOO_SLOW: &str = "Sorry, that took too long on our side and was stopped. It was not your fault; please try again.";
const NOT_UNDERSTOOD: &str = "I didn't understand that. Send /help to see what I can do.";
const UNSUPPORTED: &str = "I can't handle this here. Send /help to see what I can do.";
const NOTHING_TO_CANCEL: &str = "Nothing to cancel.";
const STALE_BUTTON: &str = "This button is no longer active.";
const STATE_RESET: &str = "Your saved progress could not be read by this version and was reset.";

/// Shared, swappable set of loaded flows.
pub type SharedFlows = Arc<RwLock<Arc<FlowSet>>>;

pub struct Handler {
    runtime: Arc<Runtime>,
    flows: SharedFlows,
    store: StateStore,
    sender: Sender,
}

/// What handling produced, before it is committed.
struct Plan {
    actions: Vec<Action>,
    active_flow: Option<String>,
    flow: Option<String>,
    write: PlannedWrite,
}

enum PlannedWrite {
    Keep,
    Put {
        data: Vec<u8>,
        schema: u32,
        version: String,
    },
    Delete,
}

impl Handler {
    pub fn new(
        runtime: Arc<Runtime>,
        flows: SharedFlows,
        store: StateStore,
        sender: Sender,
    ) -> Self {
        Self {
            runtime,
            flows,
            store,
            sender,
        }
    }

    pub async fn handle(&self, inbound: Inbound) {
        let span = info_span!(
            "update",
            update_id = inbound.update_id,
            chat_id = inbound.key.chat_id,
            user_id = inbound.key.user_id,
        );
        self.handle_inner(inbound).instrument(span).await;
    }

    async fn handle_inner(&self, inbound: Inbound) {
        let key = inbound.key;
        let (view, callback_query_id) = match inbound.kind.clone() {
            InboundKind::Membership { active } => {
                info!(active, "bot membership changed");
                if let Err(error) = self.store.set_chat_inactive(key.chat_id, !active).await {
                    warn!(%error, "failed to record membership change");
                }
                return;
            }
            InboundKind::Flow {
                view,
                callback_query_id,
            } => (view, callback_query_id),
        };
        let target = Target {
            chat_id: key.chat_id,
            thread_id: key.thread_id,
            callback_query_id,
        };

        for _ in 0..MAX_COMMIT_ATTEMPTS {
            match self.try_handle(&inbound, &view, &target).await {
                Ok(()) => return,
                Err(StoreError::Conflict(_)) => {
                    debug!("revision conflict, handling the update again")
                }
                Err(error) => {
                    warn!(%error, "state store failed, update not applied");
                    self.sender.reply(&target, APOLOGY).await;
                    return;
                }
            }
        }
        warn!(
            attempts = MAX_COMMIT_ATTEMPTS,
            "update kept conflicting, not applied"
        );
        self.sender.reply(&target, APOLOGY).await;
    }

    /// Runs one attempt against freshly loaded state. Flow failures are
    /// answered here; only store errors are returned.
    async fn try_handle(
        &self,
        inbound: &Inbound,
        view: &Update,
        target: &Target,
    ) -> Result<(), StoreError> {
        let key = inbound.key;
        if self.store.is_chat_inactive(key.chat_id).await? {
            // The user writes again, so they unblocked the bot.
            info!("chat is active again");
            self.store.set_chat_inactive(key.chat_id, false).await?;
        }
        let conversation = self.store.load(key).await?;
        if conversation
            .last_update_id
            .is_some_and(|last| last >= inbound.update_id)
        {
            debug!(
                last_update_id = conversation.last_update_id,
                "update already applied, skipped"
            );
            return Ok(());
        }

        let flows = self.flows.read().expect("flow set lock poisoned").clone();
        let route = router::route(conversation.active_flow.as_deref(), &view.event, &flows);
        debug!(
            ?route,
            active = conversation.active_flow.as_deref(),
            "routed"
        );

        let plan = match route {
            Route::Flow {
                flow,
                callback_data,
            } => {
                let mut view = view.clone();
                if let (Event::Callback(callback), Some(data)) = (&mut view.event, callback_data) {
                    callback.data = data;
                }
                match self.invoke(&flows, &flow, key, &view, target).await? {
                    Some(plan) => plan,
                    None => return Ok(()),
                }
            }
            Route::Help | Route::Start => {
                host_plan(&conversation.active_flow, help_text(&flows, &route))
            }
            Route::Cancel => match &conversation.active_flow {
                Some(flow) => Plan {
                    actions: vec![text_action(format!("Cancelled {flow}."))],
                    active_flow: None,
                    flow: None,
                    write: PlannedWrite::Keep,
                },
                None => host_plan(&None, NOTHING_TO_CANCEL.to_owned()),
            },
            Route::NotUnderstood => host_plan(&conversation.active_flow, NOT_UNDERSTOOD.to_owned()),
            Route::Unsupported => host_plan(&conversation.active_flow, UNSUPPORTED.to_owned()),
            Route::StaleButton => notice_plan(&conversation.active_flow, STALE_BUTTON.to_owned()),
            Route::Busy { active } => notice_plan(
                &conversation.active_flow,
                format!("Finish {active} first, or send /cancel."),
            ),
            Route::Ignore => {
                debug!("nothing to do for this update");
                host_plan(&conversation.active_flow, String::new())
            }
        };

        let write = match &plan.write {
            PlannedWrite::Keep => StateWrite::Keep,
            PlannedWrite::Put {
                data,
                schema,
                version,
            } => StateWrite::Put {
                data,
                schema: *schema,
                version,
            },
            PlannedWrite::Delete => StateWrite::Delete,
        };
        let commit = Commit {
            expected_revision: conversation.revision,
            update_id: inbound.update_id,
            active_flow: plan.active_flow.as_deref(),
            flow: plan.flow.as_deref(),
            write,
        };
        self.store.commit(key, &commit).await?;

        if self.sender.deliver(target, &plan.actions).await == Delivered::ChatGone {
            info!("chat is gone, remaining actions dropped");
        }
        Ok(())
    }

    /// Invokes `flow` and turns its outcome into a plan. Returns `None` when
    /// the flow failed; the user has then been answered and nothing is committed.
    async fn invoke(
        &self,
        flows: &FlowSet,
        flow_name: &str,
        key: crate::conversation::ConversationKey,
        view: &Update,
        target: &Target,
    ) -> Result<Option<Plan>, StoreError> {
        let flow = flows
            .get(flow_name)
            .expect("router returns loaded flows")
            .clone();
        let manifest = &flow.manifest;
        let span = info_span!("flow", flow = %manifest.name, version = %manifest.version, digest = %&flow.digest[..12]);

        async {
            // State written under an older schema is migrated, and the result
            // is committed even when the flow leaves it unchanged. State that
            // this version cannot read is dropped with a notice, so the user is
            // never stuck.
            let mut notices = Vec::new();
            let mut carried_write = PlannedWrite::Keep;
            let state = match self.store.load_state(key, flow_name).await? {
                Some(stored) if stored.schema == manifest.state_schema => Some(stored.data),
                Some(stored) if stored.schema < manifest.state_schema => {
                    match self.runtime.migrate(&flow, stored.schema, &stored.data).await {
                        Ok(migrated) => {
                            info!(from_schema = stored.schema, "state migrated");
                            carried_write = PlannedWrite::Put {
                                data: migrated.clone(),
                                schema: manifest.state_schema,
                                version: manifest.version.clone(),
                            };
                            Some(migrated)
                        }
                        Err(error) => {
                            warn!(from_schema = stored.schema, %error, "state migration failed, state reset");
                            notices.push(text_action(STATE_RESET.to_owned()));
                            carried_write = PlannedWrite::Delete;
                            None
                        }
                    }
                }
                Some(stored) => {
                    warn!(stored_schema = stored.schema, "state written under a newer schema, state reset");
                    notices.push(text_action(STATE_RESET.to_owned()));
                    carried_write = PlannedWrite::Delete;
                    None
                }
                None => None,
            };

            let outcome = match self.runtime.handle(&flow, view, state.as_deref()).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    self.report_failure(&error, target).await;
                    return Ok(None);
                }
            };
            let mut actions = notices;
            actions.extend(outcome.actions);
            if let Err(reason) = router::tag_buttons(flow_name, &mut actions) {
                self.report_failure(&InvokeError::OutputTooLarge(reason), target).await;
                return Ok(None);
            }

            let write = match outcome.state {
                StateChange::Unchanged => carried_write,
                StateChange::Replace(data) => PlannedWrite::Put {
                    data,
                    schema: manifest.state_schema,
                    version: manifest.version.clone(),
                },
                StateChange::Clear => PlannedWrite::Delete,
            };
            Ok(Some(Plan {
                actions,
                active_flow: (!outcome.done).then(|| flow_name.to_owned()),
                flow: Some(flow_name.to_owned()),
                write,
            }))
        }
        .instrument(span)
        .await
    }

    async fn report_failure(&self, error: &InvokeError, target: &Target) {
        warn!(cause = %error, "flow invocation failed, nothing committed");
        let text = match error {
            InvokeError::Deadline(_) => TOO_SLOW,
            _ => APOLOGY,
        };
        self.sender.reply(target, text).await;
    }
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
