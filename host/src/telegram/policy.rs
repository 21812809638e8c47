//! The Telegram error policy: what each known Bot API error means for the
//! action that caused it. One table, so every decision is made in one place.

use std::time::Duration;

use teloxide::{ApiError, RequestError};

/// The outcome decided for an action whose request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The wanted result is already there (an edit to identical content).
    Done,
    /// The message to edit is gone; send the text as a new message instead.
    SendAsNew,
    /// The action no longer matters (a callback answer that is too late).
    Skip,
    /// The bot may no longer write to the chat: mark it inactive and stop
    /// sending to it until the user comes back.
    ChatGone,
    /// Flood control: wait this long before any request to the chat.
    RetryAfter(Duration),
    /// A transient failure (network, 5xx, unreadable response): retry with backoff.
    Retry,
    /// A permanent failure of this one action: log it and go on.
    Fail,
}

impl Decision {
    /// Returns the decision's name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Done => "done",
            Decision::SendAsNew => "send_as_new",
            Decision::Skip => "skip",
            Decision::ChatGone => "chat_gone",
            Decision::RetryAfter(_) => "retry_after",
            Decision::Retry => "retry",
            Decision::Fail => "fail",
        }
    }
}

/// Known Bot API error descriptions, matched case-insensitively as substrings
/// because Telegram's wording varies slightly between methods and versions.
const TABLE: &[(&str, Decision)] = &[
    ("message is not modified", Decision::Done),
    ("message to edit not found", Decision::SendAsNew),
    ("query is too old", Decision::Skip),
    ("query id is invalid", Decision::Skip),
    ("message to delete not found", Decision::Skip),
    ("bot was blocked by the user", Decision::ChatGone),
    ("user is deactivated", Decision::ChatGone),
    ("chat not found", Decision::ChatGone),
    ("bot was kicked", Decision::ChatGone),
    ("group is deactivated", Decision::ChatGone),
    ("bot is not a member", Decision::ChatGone),
    ("bad gateway", Decision::Retry),
    ("gateway timeout", Decision::Retry),
    ("internal server error", Decision::Retry),
];

/// Decides what `error` means, with the reason to log beside the decision.
pub fn decide(error: &RequestError) -> (Decision, String) {
    match error {
        RequestError::RetryAfter(seconds) => (
            Decision::RetryAfter(seconds.duration()),
            format!("flood control: {error}"),
        ),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            (Decision::Retry, error.to_string())
        }
        RequestError::Api(api_error) => {
            let description = api_description(api_error);
            (decide_description(&description), description)
        }
        RequestError::MigrateToChatId(_) => (Decision::Fail, error.to_string()),
    }
}

/// Looks an error description up in the policy table.
pub fn decide_description(description: &str) -> Decision {
    let description = description.to_lowercase();
    TABLE
        .iter()
        .find(|(pattern, _)| description.contains(pattern))
        .map_or(Decision::Fail, |(_, decision)| *decision)
}

fn api_description(error: &ApiError) -> String {
    match error {
        ApiError::Unknown(description) => description.clone(),
        known => known.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each description as the Bot API sends it, with the decision expected.
    const CASES: &[(&str, Decision)] = &[
        (
            "Bad Request: message is not modified: specified new message content and reply markup \
             are exactly the same as a current content and reply markup of the message",
            Decision::Done,
        ),
        (
            "Bad Request: message to edit not found",
            Decision::SendAsNew,
        ),
        (
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
            Decision::Skip,
        ),
        ("Bad Request: message to delete not found", Decision::Skip),
        ("Forbidden: bot was blocked by the user", Decision::ChatGone),
        ("Forbidden: user is deactivated", Decision::ChatGone),
        ("Bad Request: chat not found", Decision::ChatGone),
        (
            "Forbidden: bot was kicked from the supergroup chat",
            Decision::ChatGone,
        ),
        ("Bad Request: group is deactivated", Decision::ChatGone),
        (
            "Forbidden: bot is not a member of the channel chat",
            Decision::ChatGone,
        ),
        ("Bad Gateway", Decision::Retry),
        ("Gateway Timeout", Decision::Retry),
        ("Internal Server Error", Decision::Retry),
        ("Bad Request: can't parse entities", Decision::Fail),
    ];

    #[test]
    fn every_description_has_its_decision() {
        for (description, expected) in CASES {
            assert_eq!(decide_description(description), *expected, "{description}");
        }
    }

    #[test]
    fn every_table_row_is_covered_by_a_case() {
        for (pattern, _) in TABLE {
            let covered = CASES
                .iter()
                .any(|(description, _)| description.to_lowercase().contains(pattern));
            assert!(covered, "no test case for policy row {pattern:?}");
        }
    }

    #[test]
    fn parsed_api_errors_use_the_same_table() {
        // teloxide parses some descriptions into variants; their text must
        // still reach the table.
        let blocked = RequestError::Api(ApiError::BotBlocked);
        assert_eq!(decide(&blocked).0, Decision::ChatGone);
        let not_modified = RequestError::Api(ApiError::MessageNotModified);
        assert_eq!(decide(&not_modified).0, Decision::Done);
        let gone = RequestError::Api(ApiError::MessageToEditNotFound);
        assert_eq!(decide(&gone).0, Decision::SendAsNew);
    }

    #[test]
    fn flood_control_waits_as_told() {
        let error = RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(222));
        assert_eq!(
            decide(&error).0,
            Decision::RetryAfter(Duration::from_secs(222))
        );
    }
}
