//! The Bot API methods served, their dispatch, and the bot-level methods:
//! `getMe`, the command list and the webhook settings.

use serde_json::{Value, json};

use crate::messages;
use crate::objects::bot_me;
use crate::params::{ApiError, Params};
use crate::store::{CommandScopeKey, State};
use crate::types::Webhook;
use crate::updates::allowed_updates_param;

/// Maximum number of commands in one list.
const MAX_COMMANDS: usize = 100;
/// Maximum command length in characters.
const MAX_COMMAND_LEN: usize = 32;
/// Maximum command description length in characters.
const MAX_DESCRIPTION_LEN: usize = 256;

/// A Bot API method that the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    GetMe,
    GetUpdates,
    SendMessage,
    EditMessageText,
    EditMessageReplyMarkup,
    AnswerCallbackQuery,
    DeleteMessage,
    SetMyCommands,
    GetMyCommands,
    DeleteMyCommands,
    SetWebhook,
    DeleteWebhook,
    GetWebhookInfo,
}

const METHODS: [(&str, Method); 13] = [
    ("getMe", Method::GetMe),
    ("getUpdates", Method::GetUpdates),
    ("sendMessage", Method::SendMessage),
    ("editMessageText", Method::EditMessageText),
    ("editMessageReplyMarkup", Method::EditMessageReplyMarkup),
    ("answerCallbackQuery", Method::AnswerCallbackQuery),
    ("deleteMessage", Method::DeleteMessage),
    ("setMyCommands", Method::SetMyCommands),
    ("getMyCommands", Method::GetMyCommands),
    ("deleteMyCommands", Method::DeleteMyCommands),
    ("setWebhook", Method::SetWebhook),
    ("deleteWebhook", Method::DeleteWebhook),
    ("getWebhookInfo", Method::GetWebhookInfo),
];

impl Method {
    /// Looks up a method by name. Telegram matches method names case-insensitively.
    pub(crate) fn from_name(name: &str) -> Option<Method> {
        METHODS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, method)| *method)
    }

    /// Returns the name as the Bot API documentation spells it, such as `sendMessage`.
    pub(crate) fn name(self) -> &'static str {
        METHODS
            .iter()
            .find(|(_, method)| *method == self)
            .map(|(name, _)| *name)
            .expect("every method is listed in METHODS")
    }
}

/// Handles every method except `getUpdates`, which waits and so lives in
/// [`crate::updates::get_updates`].
pub(crate) fn handle(
    state: &mut State,
    method: Method,
    params: &Params,
) -> Result<Value, ApiError> {
    match method {
        Method::GetMe => Ok(bot_me(&state.bot)),
        Method::GetUpdates => unreachable!("getUpdates is served by updates::get_updates"),
        Method::SendMessage => messages::send_message(state, params),
        Method::EditMessageText => messages::edit_message_text(state, params),
        Method::EditMessageReplyMarkup => messages::edit_message_reply_markup(state, params),
        Method::AnswerCallbackQuery => messages::answer_callback_query(state, params),
        Method::DeleteMessage => messages::delete_message(state, params),
        Method::SetMyCommands => set_my_commands(state, params),
        Method::GetMyCommands => get_my_commands(state, params),
        Method::DeleteMyCommands => delete_my_commands(state, params),
        Method::SetWebhook => set_webhook(state, params),
        Method::DeleteWebhook => delete_webhook(state, params),
        Method::GetWebhookInfo => Ok(webhook_info(state)),
    }
}

fn set_my_commands(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let scope = command_scope(params)?;
    let commands = params
        .structured("commands")
        .map_err(ApiError::bad_request)?
        .unwrap_or(Value::Array(Vec::new()));
    let commands = parse_commands(&commands)?;

    if commands.is_empty() {
        state.commands.remove(&scope);
    } else {
        state.commands.insert(scope, commands);
    }
    Ok(Value::Bool(true))
}

fn get_my_commands(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let scope = command_scope(params)?;
    let commands = state
        .commands
        .get(&scope)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let list = commands
        .iter()
        .map(|(command, description)| json!({ "command": command, "description": description }))
        .collect();
    Ok(Value::Array(list))
}

fn delete_my_commands(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let scope = command_scope(params)?;
    state.commands.remove(&scope);
    Ok(Value::Bool(true))
}

/// Builds the key of a command list from `scope` and `language_code`.
fn command_scope(params: &Params) -> Result<CommandScopeKey, ApiError> {
    let language = params.string("language_code").unwrap_or_default();
    let scope = params
        .structured("scope")
        .map_err(ApiError::bad_request)?
        .unwrap_or_else(|| json!({ "type": "default" }));
    if !scope.get("type").is_some_and(Value::is_string) {
        return Err(ApiError::bad_request(
            "can't parse BotCommandScope JSON object",
        ));
    }
    Ok((scope.to_string(), language))
}

/// Parses and checks a `commands` array: a command is 1 to 32 lowercase
/// letters, digits and underscores, and a description 1 to 256 characters.
fn parse_commands(commands: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let invalid_list = || ApiError::bad_request("can't parse commands JSON object");
    let items = commands.as_array().ok_or_else(invalid_list)?;
    if items.len() > MAX_COMMANDS {
        return Err(ApiError::bad_request("BOT_COMMANDS_TOO_MUCH"));
    }

    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let command = item["command"].as_str().ok_or_else(invalid_list)?;
        let description = item["description"].as_str().ok_or_else(invalid_list)?;
        let command_valid = (1..=MAX_COMMAND_LEN).contains(&command.chars().count())
            && command
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !command_valid {
            return Err(ApiError::bad_request("BOT_COMMAND_INVALID"));
        }
        // NOTE: the description limits come from the Bot API documentation, but
        // this error text is a guess. Telegram's real text was not checked.
        if !(1..=MAX_DESCRIPTION_LEN).contains(&description.trim().chars().count()) {
            return Err(ApiError::bad_request("BOT_COMMAND_DESCRIPTION_INVALID"));
        }
        parsed.push((command.to_owned(), description.to_owned()));
    }
    Ok(parsed)
}

/// Stores the webhook. The simulator never calls it, but while it is set
/// `getUpdates` returns 409 as Telegram does. An empty `url` removes it.
fn set_webhook(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let url = params.string("url").unwrap_or_default();
    let allowed_updates = allowed_updates_param(params)?;
    if params.flag("drop_pending_updates") {
        state.updates.clear();
    }
    if url.is_empty() {
        state.webhook = None;
        return Ok(Value::Bool(true));
    }
    if !url.starts_with("https://") {
        return Err(ApiError::bad_request(
            "bad webhook: An HTTPS URL must be provided for webhook",
        ));
    }

    if let Some(kinds) = &allowed_updates {
        state.updates.set_allowed(kinds.clone());
    }
    state.webhook = Some(Webhook {
        url,
        secret_token: params.string("secret_token"),
        allowed_updates,
    });
    Ok(Value::Bool(true))
}

fn delete_webhook(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    if params.flag("drop_pending_updates") {
        state.updates.clear();
    }
    state.webhook = None;
    Ok(Value::Bool(true))
}

fn webhook_info(state: &State) -> Value {
    let mut info = json!({
        "url": state.webhook.as_ref().map(|webhook| webhook.url.as_str()).unwrap_or(""),
        "has_custom_certificate": false,
        "pending_update_count": state.updates.len(),
    });
    if state.webhook.is_some() {
        info["max_connections"] = Value::from(40);
    }
    if let Some(allowed) = state.updates.allowed() {
        info["allowed_updates"] = Value::from(allowed.to_vec());
    }
    info
}

#[cfg(test)]
mod tests {
    use tokio::sync::broadcast;

    use super::*;
    use crate::config::BotProfile;

    fn state() -> State {
        State::new(BotProfile::default(), broadcast::channel(4).0)
    }

    fn call(state: &mut State, method: Method, params: Value) -> Result<Value, ApiError> {
        handle(state, method, &Params::from_json(params))
    }

    #[test]
    fn method_names_ignore_case() {
        assert_eq!(Method::from_name("getMe"), Some(Method::GetMe));
        assert_eq!(Method::from_name("GETME"), Some(Method::GetMe));
        assert_eq!(Method::from_name("sendPhoto"), None);
        assert_eq!(
            Method::from_name("SendMessage").map(Method::name),
            Some("sendMessage")
        );
    }

    #[test]
    fn commands_are_kept_per_scope() {
        let mut state = state();
        let group_scope = json!({ "type": "all_group_chats" });
        let default_list = json!([{ "command": "start", "description": "Start" }]);
        let group_list = json!([{ "command": "log", "description": "Log" }]);
        call(
            &mut state,
            Method::SetMyCommands,
            json!({ "commands": default_list }),
        )
        .unwrap();
        call(
            &mut state,
            Method::SetMyCommands,
            json!({ "commands": group_list, "scope": group_scope }),
        )
        .unwrap();

        let default_result = call(&mut state, Method::GetMyCommands, json!({})).unwrap();
        let group_result = call(
            &mut state,
            Method::GetMyCommands,
            json!({ "scope": group_scope }),
        )
        .unwrap();
        let german_result = call(
            &mut state,
            Method::GetMyCommands,
            json!({ "language_code": "de" }),
        )
        .unwrap();
        assert_eq!(default_result, default_list);
        assert_eq!(group_result, group_list);
        assert_eq!(german_result, json!([]));
    }

    #[test]
    fn invalid_command_is_rejected() {
        let mut state = state();
        for command in ["Start", "", "with space", &"a".repeat(33)] {
            let list = json!([{ "command": command, "description": "x" }]);
            let error = call(
                &mut state,
                Method::SetMyCommands,
                json!({ "commands": list }),
            );
            assert_eq!(
                error.unwrap_err().description,
                "Bad Request: BOT_COMMAND_INVALID",
                "command {command:?}"
            );
        }
    }

    #[test]
    fn empty_command_list_deletes() {
        let mut state = state();
        let list = json!([{ "command": "start", "description": "Start" }]);
        call(
            &mut state,
            Method::SetMyCommands,
            json!({ "commands": list }),
        )
        .unwrap();
        call(&mut state, Method::SetMyCommands, json!({ "commands": [] })).unwrap();
        assert!(state.commands.is_empty());
    }

    #[test]
    fn webhook_requires_https() {
        let mut state = state();
        let error = call(
            &mut state,
            Method::SetWebhook,
            json!({ "url": "http://example.test/" }),
        );
        assert_eq!(error.unwrap_err().status, 400);
        assert_eq!(state.webhook, None);
    }

    #[test]
    fn webhook_info_reports_settings() {
        let mut state = state();
        call(
            &mut state,
            Method::SetWebhook,
            json!({
                "url": "https://bot.example.test/hook",
                "secret_token": "s3cret",
                "allowed_updates": ["message"],
            }),
        )
        .unwrap();
        let info = call(&mut state, Method::GetWebhookInfo, json!({})).unwrap();
        assert_eq!(info["url"], "https://bot.example.test/hook");
        assert_eq!(info["allowed_updates"], json!(["message"]));
        assert_eq!(
            state.webhook.as_ref().unwrap().secret_token.as_deref(),
            Some("s3cret")
        );

        call(&mut state, Method::DeleteWebhook, json!({})).unwrap();
        let info = call(&mut state, Method::GetWebhookInfo, json!({})).unwrap();
        assert_eq!(info["url"], "");
    }
}
