//! Fault injection: rules that make chosen API calls fail the way Telegram or
//! the network can fail.

use std::time::Duration;

use serde_json::{Value, json};

/// What the simulator does to a call that a [`FaultRule`] matches.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Responds with `status` and the JSON `body` without handling the call.
    Error { status: u16, body: Value },
    /// Responds with `status`, the given `Content-Type` and `body` as is, like a
    /// proxy error page.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Waits this long, then handles the call normally.
    Delay(Duration),
    /// Reads the request and never responds. The connection stays open until
    /// the client gives up or the simulator shuts down.
    Hang,
    /// Closes the connection with a TCP reset instead of a response.
    Reset,
}

impl Fault {
    /// Builds an error reply in Telegram's shape with the given status and description.
    pub fn api_error(status: u16, description: impl Into<String>) -> Fault {
        Fault::Error {
            status,
            body: json!({
                "ok": false,
                "error_code": status,
                "description": description.into(),
            }),
        }
    }

    /// Builds Telegram's flood-control reply: 429 with `parameters.retry_after`
    /// in seconds.
    pub fn retry_after(seconds: u32) -> Fault {
        Fault::Error {
            status: 429,
            body: json!({
                "ok": false,
                "error_code": 429,
                "description": format!("Too Many Requests: retry after {seconds}"),
                "parameters": { "retry_after": seconds },
            }),
        }
    }

    /// Builds the 403 reply that Telegram sends when the user has blocked the bot.
    pub fn bot_blocked() -> Fault {
        Fault::api_error(403, "Forbidden: bot was blocked by the user")
    }

    /// Builds a 502 HTML page like the one a reverse proxy returns when Telegram's
    /// backend is down.
    pub fn bad_gateway() -> Fault {
        Fault::Raw {
            status: 502,
            content_type: "text/html".to_owned(),
            body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                   <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
                   </body>\r\n</html>\r\n"
                .to_owned(),
        }
    }
}

/// A fault and the calls it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// Method name to match, compared case-insensitively. `None` matches every
    /// method, `getUpdates` included.
    pub method: Option<String>,
    /// `chat_id` to match. A rule with a chat never matches calls without one.
    pub chat_id: Option<i64>,
    /// Number of calls to apply the fault to. `None` applies it until the rule
    /// is removed.
    pub times: Option<usize>,
    pub fault: Fault,
}

impl FaultRule {
    /// Creates a rule that applies `fault` to every call until removed.
    pub fn new(fault: Fault) -> FaultRule {
        FaultRule {
            method: None,
            chat_id: None,
            times: None,
            fault,
        }
    }

    pub fn for_method(mut self, method: impl Into<String>) -> FaultRule {
        self.method = Some(method.into());
        self
    }

    pub fn for_chat(mut self, chat_id: i64) -> FaultRule {
        self.chat_id = Some(chat_id);
        self
    }

    pub fn times(mut self, times: usize) -> FaultRule {
        self.times = Some(times);
        self
    }

    fn matches(&self, method: &str, chat_id: Option<i64>) -> bool {
        let method_matches = self
            .method
            .as_deref()
            .is_none_or(|expected| expected.eq_ignore_ascii_case(method));
        let chat_matches = self
            .chat_id
            .is_none_or(|expected| chat_id == Some(expected));
        method_matches && chat_matches
    }
}

/// Handle for removing a rule with [`Simulator::remove_fault`](crate::Simulator::remove_fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

/// The active rules, in insertion order.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    next_id: u64,
    rules: Vec<(FaultId, FaultRule)>,
}

impl FaultSet {
    pub(crate) fn add(&mut self, rule: FaultRule) -> FaultId {
        self.next_id += 1;
        let id = FaultId(self.next_id);
        if rule.times != Some(0) {
            self.rules.push((id, rule));
        }
        id
    }

    /// Removes a rule. Returns false when it was already removed or used up.
    pub(crate) fn remove(&mut self, id: FaultId) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(rule_id, _)| *rule_id != id);
        self.rules.len() != before
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// Returns the fault of the first rule that matches the call and counts one
    /// use against that rule, removing it when its `times` are used up.
    pub(crate) fn take_match(&mut self, method: &str, chat_id: Option<i64>) -> Option<Fault> {
        let index = self
            .rules
            .iter()
            .position(|(_, rule)| rule.matches(method, chat_id))?;
        let rule = &mut self.rules[index].1;
        let fault = rule.fault.clone();
        if let Some(times) = rule.times.as_mut() {
            *times -= 1;
            if *times == 0 {
                self.rules.remove(index);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_in_insertion_order() {
        let mut faults = FaultSet::default();
        faults.add(FaultRule::new(Fault::Hang).for_method("sendMessage"));
        faults.add(FaultRule::new(Fault::Reset));
        assert_eq!(faults.take_match("SENDMESSAGE", Some(1)), Some(Fault::Hang));
        assert_eq!(faults.take_match("getMe", None), Some(Fault::Reset));
    }

    #[test]
    fn chat_rule_needs_chat() {
        let mut faults = FaultSet::default();
        faults.add(FaultRule::new(Fault::Hang).for_chat(5));
        assert_eq!(faults.take_match("sendMessage", None), None);
        assert_eq!(faults.take_match("sendMessage", Some(6)), None);
        assert_eq!(faults.take_match("sendMessage", Some(5)), Some(Fault::Hang));
    }

    #[test]
    fn times_are_counted_down() {
        let mut faults = FaultSet::default();
        faults.add(FaultRule::new(Fault::Hang).times(2));
        assert!(faults.take_match("getMe", None).is_some());
        assert!(faults.take_match("getMe", None).is_some());
        assert!(faults.take_match("getMe", None).is_none());
    }

    #[test]
    fn zero_times_is_never_active() {
        let mut faults = FaultSet::default();
        faults.add(FaultRule::new(Fault::Hang).times(0));
        assert!(faults.take_match("getMe", None).is_none());
    }

    #[test]
    fn removed_rule_stops_matching() {
        let mut faults = FaultSet::default();
        let id = faults.add(FaultRule::new(Fault::Hang));
        assert!(faults.remove(id));
        assert!(!faults.remove(id));
        assert!(faults.take_match("getMe", None).is_none());
    }

    #[test]
    fn retry_after_carries_parameters() {
        let Fault::Error { status, body } = Fault::retry_after(7) else {
            panic!("retry_after builds Fault::Error");
        };
        assert_eq!(status, 429);
        assert_eq!(body["parameters"]["retry_after"], 7);
        assert_eq!(body["description"], "Too Many Requests: retry after 7");
    }
}
