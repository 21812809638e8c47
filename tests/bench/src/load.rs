//! The load: simulated users, each running the `/log` dialog of the workouts
//! flow in a closed loop, and the router that hands the simulator's events
//! to them.
//!
//! A user sends one step, waits for the bot's reply, then sends the next
//! step. Every bot message in the user's chat is judged against the step the
//! user was waiting for, so a wrong, repeated or foreign reply is counted
//! where it lands.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use botapi_sim::{BotMessage, Fault, FaultRule, SimEvent, SimUser, Simulator};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Steps of one `/log` round: the command, the exercise name, the reps.
pub const STEPS_PER_ROUND: usize = 3;

/// The bot's reply to `/log`, the same for every user.
const EXERCISE_PROMPT: &str = "Which exercise? Send its name, for example squat.";

/// Prefix of every exercise name, which makes the owner of a name easy to find.
const EXERCISE_PREFIX: &str = "lift-";

/// Returns the exercise name of user `user_id`. The id makes it unique, and
/// the trailing `-Ω` keeps one name from being a prefix of another.
pub fn exercise_name(user_id: i64) -> String {
    format!("{EXERCISE_PREFIX}{user_id}-Ω")
}

/// Returns the id of the user whose exercise name `text` contains, if any.
pub fn exercise_owner(text: &str) -> Option<i64> {
    let rest = text.split(EXERCISE_PREFIX).nth(1)?;
    rest.split('-').next()?.parse().ok()
}

/// One simulated user and the dialog it runs.
#[derive(Clone, Debug)]
pub struct UserPlan {
    pub user: SimUser,
    pub exercise: String,
    pub reps: u32,
    pub rounds: usize,
    /// Every Bot API call for this user's chat is delayed by the simulator.
    pub slow: bool,
    /// One flag per step. A set flag makes the simulator reject the step's
    /// reply once with 429 before accepting it.
    pub rate_limited: Vec<bool>,
}

impl UserPlan {
    pub fn new(user_id: i64, rounds: usize) -> Self {
        Self {
            user: SimUser::new(user_id, format!("User{user_id}")),
            exercise: exercise_name(user_id),
            reps: u32::try_from(user_id.rem_euclid(20)).expect("0..20 fits in u32") + 1,
            rounds,
            slow: false,
            rate_limited: vec![false; rounds * STEPS_PER_ROUND],
        }
    }

    pub fn steps(&self) -> usize {
        self.rounds * STEPS_PER_ROUND
    }

    /// Returns the text the user sends at `step`.
    pub fn input(&self, step: usize) -> String {
        match step % STEPS_PER_ROUND {
            0 => "/log".to_owned(),
            1 => self.exercise.clone(),
            _ => self.reps.to_string(),
        }
    }

    /// Returns the reply the workouts flow sends to `step`.
    pub fn expected_reply(&self, step: usize) -> String {
        let exercise = &self.exercise;
        match step % STEPS_PER_ROUND {
            0 => EXERCISE_PROMPT.to_owned(),
            1 => format!("How many reps of {exercise}? Send a whole number, for example 5."),
            _ => {
                let round = step / STEPS_PER_ROUND + 1;
                format!(
                    "Logged {exercise}: {} reps. Sets logged today: {round}.",
                    self.reps
                )
            }
        }
    }

    /// Judges a bot message in this user's chat that arrived while the user
    /// waited for the reply to `step`. After the last step, `step` is
    /// [`UserPlan::steps`], and no message is a reply any more.
    pub fn classify(&self, text: &str, step: usize) -> Verdict {
        if exercise_owner(text).is_some_and(|owner| owner != self.user.id) {
            return Verdict::Misrouted;
        }
        if step < self.steps() && text == self.expected_reply(step) {
            return Verdict::Reply;
        }
        if (0..step.min(self.steps())).any(|earlier| text == self.expected_reply(earlier)) {
            return Verdict::Duplicated;
        }
        if (step + 1..self.steps()).any(|later| text == self.expected_reply(later)) {
            return Verdict::OutOfOrder;
        }
        Verdict::Unexpected
    }
}

/// What a bot message in a user's chat turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The expected reply to the step the user waited for.
    Reply,
    /// It names another user's exercise, so it belongs in another chat.
    Misrouted,
    /// The text of a reply to an earlier step, which had already arrived.
    Duplicated,
    /// The text of a reply to a step the user has not sent yet.
    OutOfOrder,
    /// Any other text, such as the host's apology after a flow failure.
    Unexpected,
}

/// Returns true for about `fraction` of all `(user, step)` pairs, the same
/// pairs for the same `seed` on every run.
pub fn is_rate_limited(seed: u64, user_id: i64, step: usize, fraction: f64) -> bool {
    let hash = mix64(mix64(seed ^ user_id as u64) ^ step as u64);
    // The top 53 bits as a uniform value in [0, 1).
    let uniform = (hash >> 11) as f64 / (1u64 << 53) as f64;
    uniform < fraction
}

/// Mixes the bits of `value` with the SplitMix64 finaliser, so every input
/// bit affects every output bit.
fn mix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Counts of replies that were not the expected one at the expected time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    pub misrouted: u64,
    pub duplicated: u64,
    /// Steps whose reply did not arrive within the reply timeout.
    pub missing: u64,
    pub out_of_order: u64,
    pub unexpected: u64,
    /// Replies that arrived after their step had been counted missing.
    pub late: u64,
}

impl ErrorCounts {
    pub fn count(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Reply => {}
            Verdict::Misrouted => self.misrouted += 1,
            Verdict::Duplicated => self.duplicated += 1,
            Verdict::OutOfOrder => self.out_of_order += 1,
            Verdict::Unexpected => self.unexpected += 1,
        }
    }

    pub fn add(&mut self, other: &ErrorCounts) {
        self.misrouted += other.misrouted;
        self.duplicated += other.duplicated;
        self.missing += other.missing;
        self.out_of_order += other.out_of_order;
        self.unexpected += other.unexpected;
        self.late += other.late;
    }

    pub fn is_clean(&self) -> bool {
        *self == ErrorCounts::default()
    }
}

/// One step of one user's dialog, at its index in [`UserOutcome::steps`].
#[derive(Clone, Debug)]
pub struct StepRecord {
    /// When `push_update` had queued the user's message.
    pub pushed_at: Instant,
    /// When the router received the simulator's event for the reply. `None`
    /// when there is no reply yet, or when the event was lost and the reply
    /// was found by reading the chat.
    pub observed_at: Option<Instant>,
    /// Message id of the reply, once it arrived.
    pub reply_id: Option<i32>,
    pub rate_limited: bool,
}

/// Why a user stopped before its last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The reply to this step did not arrive within the reply timeout.
    ReplyTimeout(usize),
    /// The run ended (timeout, interrupt, host exit) while the user waited
    /// for the reply to this step.
    Cancelled(usize),
}

/// Everything one user saw.
#[derive(Clone, Debug)]
pub struct UserOutcome {
    pub plan: UserPlan,
    pub steps: Vec<StepRecord>,
    pub errors: ErrorCounts,
    /// Highest message id judged so far, so later sweeps skip older messages.
    pub last_seen_id: i32,
    pub stop: Option<Stop>,
}

impl UserOutcome {
    /// Returns the step that later messages are judged against.
    pub fn current_step(&self) -> usize {
        match self.stop {
            Some(Stop::ReplyTimeout(step) | Stop::Cancelled(step)) => step,
            None => self.plan.steps(),
        }
    }

    /// Judges the chat's messages that arrived after the user stopped
    /// waiting. A reply to the step that timed out counts as late. A reply
    /// to the step the run cancelled is no error, because the host was
    /// never given the time to send it.
    pub fn judge_later_messages(&mut self, messages: &[BotMessage]) {
        let step = self.current_step();
        for message in messages {
            if message.message_id <= self.last_seen_id {
                continue;
            }
            self.last_seen_id = message.message_id;
            match self.plan.classify(&message.text, step) {
                Verdict::Reply => {
                    if let Some(Stop::ReplyTimeout(_)) = self.stop {
                        self.errors.late += 1;
                    }
                }
                verdict => self.errors.count(verdict),
            }
        }
    }
}

/// A message for one user's task from the router.
#[derive(Debug)]
pub enum Arrival {
    Message {
        message: BotMessage,
        observed_at: Instant,
    },
    /// The router missed events, so the user must read its chat.
    Resync,
}

/// State shared by every user task.
pub struct LoadContext {
    pub sim: Simulator,
    pub reply_timeout: Duration,
    pub retry_after_secs: u32,
    pub cancel: CancellationToken,
    /// Steps whose reply arrived, across all users, for progress output.
    pub replies: AtomicU64,
    /// Pause between a reply and the user's next step; zero for a closed
    /// loop without think time.
    pub think: Duration,
}

/// Forwards each `MessageSent` event to the task of the chat's user, with
/// the time it was received. Returns the task and the number of events the
/// broadcast channel dropped because the router fell behind.
///
/// Subscribe before the first update is pushed, or early replies are lost.
pub fn spawn_router(
    sim: &Simulator,
    routes: HashMap<i64, mpsc::UnboundedSender<Arrival>>,
) -> (JoinHandle<()>, Arc<AtomicU64>) {
    let mut events = sim.subscribe();
    let lost = Arc::new(AtomicU64::new(0));
    let lost_count = lost.clone();
    let task = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(SimEvent::MessageSent(message)) => {
                    let observed_at = Instant::now();
                    if let Some(route) = routes.get(&message.chat_id) {
                        let _ = route.send(Arrival::Message {
                            message,
                            observed_at,
                        });
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(skipped)) => {
                    lost_count.fetch_add(skipped, Ordering::Relaxed);
                    for route in routes.values() {
                        let _ = route.send(Arrival::Resync);
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    (task, lost)
}

/// Runs one user's dialog to the end, or until a reply times out or the run
/// is cancelled.
pub async fn run_user(
    context: Arc<LoadContext>,
    plan: UserPlan,
    mut inbox: mpsc::UnboundedReceiver<Arrival>,
) -> UserOutcome {
    let mut outcome = UserOutcome {
        steps: Vec::with_capacity(plan.steps()),
        errors: ErrorCounts::default(),
        last_seen_id: 0,
        stop: None,
        plan,
    };

    if !context.think.is_zero() {
        // Users start spread over one think time, by id, so the load arrives
        // evenly instead of in waves.
        let offset = u32::try_from(outcome.plan.user.id.rem_euclid(1000)).unwrap_or(0);
        tokio::time::sleep(context.think * offset / 1000).await;
    }
    for step in 0..outcome.plan.steps() {
        if step > 0 && !context.think.is_zero() {
            tokio::time::sleep(context.think).await;
        }
        let rate_limited = outcome.plan.rate_limited[step];
        if rate_limited {
            // The rule matches only this chat's next sendMessage, which is the
            // reply to this step, because the user sends nothing else meanwhile.
            context.sim.add_fault(
                FaultRule::new(Fault::retry_after(context.retry_after_secs))
                    .for_method("sendMessage")
                    .for_chat(outcome.plan.user.id)
                    .times(1),
            );
        }
        context
            .sim
            .send_text(&outcome.plan.user, &outcome.plan.input(step));
        let pushed_at = Instant::now();
        outcome.steps.push(StepRecord {
            pushed_at,
            observed_at: None,
            reply_id: None,
            rate_limited,
        });

        let deadline = pushed_at + context.reply_timeout;
        if let Err(stop) = wait_for_reply(&context, &mut outcome, &mut inbox, deadline).await {
            if let Stop::ReplyTimeout(_) = stop {
                outcome.errors.missing += 1;
            }
            outcome.stop = Some(stop);
            return outcome;
        }
        context.replies.fetch_add(1, Ordering::Relaxed);
    }
    outcome
}

/// Judges arriving messages until the reply to the newest step in
/// `outcome.steps` is among them.
async fn wait_for_reply(
    context: &LoadContext,
    outcome: &mut UserOutcome,
    inbox: &mut mpsc::UnboundedReceiver<Arrival>,
    deadline: Instant,
) -> Result<(), Stop> {
    let step = outcome.steps.len() - 1;
    loop {
        let arrival = tokio::select! {
            _ = context.cancel.cancelled() => return Err(Stop::Cancelled(step)),
            _ = tokio::time::sleep_until(deadline) => return Err(Stop::ReplyTimeout(step)),
            arrival = inbox.recv() => arrival,
        };
        let arrived: Vec<(BotMessage, Option<Instant>)> = match arrival {
            Some(Arrival::Message {
                message,
                observed_at,
            }) => vec![(message, Some(observed_at))],
            Some(Arrival::Resync) => context
                .sim
                .messages(outcome.plan.user.id)
                .into_iter()
                .map(|message| (message, None))
                .collect(),
            // The router is gone, which happens only when the run ends.
            None => return Err(Stop::Cancelled(step)),
        };

        for (message, observed_at) in arrived {
            // A resync may repeat messages that were already judged.
            if message.message_id <= outcome.last_seen_id {
                continue;
            }
            outcome.last_seen_id = message.message_id;
            let record = &mut outcome.steps[step];
            match outcome.plan.classify(&message.text, step) {
                Verdict::Reply if record.reply_id.is_none() => {
                    record.reply_id = Some(message.message_id);
                    record.observed_at = observed_at;
                }
                // A second copy of the reply within one resync batch.
                Verdict::Reply => outcome.errors.duplicated += 1,
                verdict => outcome.errors.count(verdict),
            }
        }
        if outcome.steps[step].reply_id.is_some() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_read_from_exercise_name() {
        let plan = UserPlan::new(1_000_017, 1);
        assert_eq!(exercise_owner(&plan.expected_reply(1)), Some(1_000_017));
        assert_eq!(exercise_owner(&plan.expected_reply(2)), Some(1_000_017));
        assert_eq!(exercise_owner(EXERCISE_PROMPT), None);
    }

    #[test]
    fn inputs_and_replies_follow_the_dialog() {
        let plan = UserPlan::new(1_000_003, 2);
        assert_eq!(plan.steps(), 6);
        assert_eq!(plan.input(0), "/log");
        assert_eq!(plan.input(1), "lift-1000003-Ω");
        assert_eq!(plan.input(2), "4");
        assert_eq!(
            plan.expected_reply(1),
            "How many reps of lift-1000003-Ω? Send a whole number, for example 5."
        );
        assert_eq!(
            plan.expected_reply(5),
            "Logged lift-1000003-Ω: 4 reps. Sets logged today: 2."
        );
    }

    #[test]
    fn classify_tells_each_case_apart() {
        let plan = UserPlan::new(1_000_001, 2);
        let other = UserPlan::new(1_000_002, 2);
        assert_eq!(plan.classify(&plan.expected_reply(1), 1), Verdict::Reply);
        assert_eq!(
            plan.classify(&other.expected_reply(1), 1),
            Verdict::Misrouted
        );
        assert_eq!(
            plan.classify(&plan.expected_reply(1), 2),
            Verdict::Duplicated
        );
        assert_eq!(
            plan.classify(&plan.expected_reply(2), 1),
            Verdict::OutOfOrder
        );
        assert_eq!(
            plan.classify("Sorry, something went wrong.", 1),
            Verdict::Unexpected
        );
    }

    #[test]
    fn classify_after_last_step_finds_no_reply() {
        let plan = UserPlan::new(1_000_001, 1);
        let end = plan.steps();
        assert_eq!(
            plan.classify(&plan.expected_reply(2), end),
            Verdict::Duplicated
        );
        assert_eq!(plan.classify("anything", end), Verdict::Unexpected);
    }

    /// Builds a bot message in `plan`'s chat with the expected reply to `step`.
    fn reply_to(plan: &UserPlan, step: usize, message_id: i32) -> BotMessage {
        BotMessage {
            message_id,
            chat_id: plan.user.id,
            text: plan.expected_reply(step),
            reply_markup: None,
            parse_mode: None,
            date: 0,
            edit_date: None,
            edits: 0,
            deleted: false,
        }
    }

    fn stopped_outcome(plan: UserPlan, stop: Stop) -> UserOutcome {
        UserOutcome {
            plan,
            steps: Vec::new(),
            errors: ErrorCounts::default(),
            last_seen_id: 2,
            stop: Some(stop),
        }
    }

    #[test]
    fn late_reply_after_timeout_is_counted_late() {
        let plan = UserPlan::new(1_000_001, 1);
        let reply = reply_to(&plan, 1, 4);
        let mut outcome = stopped_outcome(plan, Stop::ReplyTimeout(1));
        outcome.judge_later_messages(std::slice::from_ref(&reply));
        // A second sweep over the same message counts nothing new.
        outcome.judge_later_messages(&[reply]);
        assert_eq!(outcome.errors.late, 1);
        assert_eq!(outcome.errors.duplicated, 0);
    }

    #[test]
    fn reply_after_cancel_is_no_error() {
        let plan = UserPlan::new(1_000_001, 1);
        let reply = reply_to(&plan, 1, 4);
        let mut outcome = stopped_outcome(plan, Stop::Cancelled(1));
        outcome.judge_later_messages(&[reply]);
        assert!(outcome.errors.is_clean(), "{:?}", outcome.errors);
    }

    #[test]
    fn rate_limited_share_is_close_to_fraction() {
        let hits = (0..20_000)
            .filter(|index| is_rate_limited(7, 1_000_000 + index / 9, *index as usize % 9, 0.05))
            .count();
        assert!((800..1200).contains(&hits), "{hits} of 20000 selected");
    }

    #[test]
    fn rate_limited_choice_depends_on_seed() {
        let pick = |seed| -> Vec<bool> {
            (0..200)
                .map(|step| is_rate_limited(seed, 1_000_000, step, 0.5))
                .collect()
        };
        assert_eq!(pick(1), pick(1));
        assert_ne!(pick(1), pick(2));
    }
}
