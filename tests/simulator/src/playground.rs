//! The local playground: a terminal chat with the bot, as one Telegram user.
//!
//! Each input line is sent as a text message. Lines that start with `:` are
//! commands (see [`HELP`]). The bot's messages, edits, deletions and callback
//! notices in the user's chat are printed as they arrive.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::simulator::Simulator;
use crate::types::{BotMessage, SimEvent, SimUser};

/// Id of the user that the playground acts as.
pub const PLAYGROUND_USER_ID: i64 = 1001;

/// How long the bot must stay silent before scripted input goes on.
const SETTLE_QUIET: Duration = Duration::from_millis(500);

/// The command list that `:help` prints.
pub const HELP: &str = "\
Type a line and press Enter to send it as a message.
  :N       press button N of the newest message with buttons (:1, :2, ...)
  :N@ID    press button N of message ID
  :sticker send a sticker
  :gif     send a GIF (an animation message)
  :photo   send a photo
  ::text   send text that starts with ':'
  :help    show this list
  :quit    leave (end of input does the same)";

/// Settings for [`run`].
#[derive(Clone, Debug)]
pub struct PlaygroundOptions {
    /// The user who types.
    pub user: SimUser,
    /// Echoes each input line and, before handling the next one, waits until
    /// the bot has confirmed every update and stayed silent for 500 ms. Meant
    /// for piped input, where no person waits for the bot's reply.
    pub scripted: bool,
    /// Maximum time to wait for the bot to settle, per line in scripted mode
    /// and once at the end of scripted input.
    pub settle_timeout: Duration,
}

impl Default for PlaygroundOptions {
    fn default() -> Self {
        PlaygroundOptions {
            user: SimUser::new(PLAYGROUND_USER_ID, "Ann").with_language_code("en"),
            scripted: false,
            settle_timeout: Duration::from_secs(10),
        }
    }
}

/// One parsed input line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Text(String),
    /// Presses button `button` (1-based) of `message_id`, or of the newest
    /// message with an inline keyboard.
    Press {
        button: usize,
        message_id: Option<i32>,
    },
    Sticker,
    Gif,
    Photo,
    Help,
    Quit,
    Blank,
    Invalid(String),
}

fn parse_input(line: &str) -> Input {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Input::Blank;
    }
    let Some(command) = line.strip_prefix(':') else {
        return Input::Text(line.to_owned());
    };
    if command.starts_with(':') {
        return Input::Text(command.to_owned());
    }
    match command.trim() {
        "sticker" => Input::Sticker,
        "gif" => Input::Gif,
        "photo" => Input::Photo,
        "help" => Input::Help,
        "quit" => Input::Quit,
        other => parse_press(other).unwrap_or_else(|| Input::Invalid(line.to_owned())),
    }
}

fn parse_press(command: &str) -> Option<Input> {
    let (button, message_id) = match command.split_once('@') {
        Some((button, message_id)) => (button, Some(message_id.parse().ok()?)),
        None => (command, None),
    };
    let button: usize = button.parse().ok()?;
    (button > 0).then_some(Input::Press { button, message_id })
}

/// Writes whole lines and flushes after each, so that piped output arrives
/// line by line. Shared by the input loop and the event printer.
#[derive(Clone)]
struct Printer {
    output: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Printer {
    fn line(&self, text: &str) -> io::Result<()> {
        let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        writeln!(output, "{text}")?;
        output.flush()
    }
}

/// Spawns a thread that reads standard input line by line. The channel closes
/// at end of input or on a read error.
///
/// A plain thread is used because a pending read on tokio's stdin cannot be
/// cancelled and would keep the runtime from shutting down after Ctrl-C.
pub fn spawn_stdin_reader() -> mpsc::Receiver<String> {
    let (lines, receiver) = mpsc::channel(64);
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.blocking_send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Runs the playground until `:quit` or the end of `input`.
pub async fn run(
    sim: &Simulator,
    mut input: mpsc::Receiver<String>,
    output: impl Write + Send + 'static,
    options: PlaygroundOptions,
) -> anyhow::Result<()> {
    let printer = Printer {
        output: Arc::new(Mutex::new(Box::new(output))),
    };
    let user = options.user.clone();
    sim.add_private_chat(&user);
    print_banner(sim, &printer, &user)?;

    let events = sim.subscribe();
    let event_printer = tokio::spawn(print_events(events, printer.clone(), user.id));
    let result = read_lines(sim, &mut input, &printer, &options).await;
    event_printer.abort();
    result
}

async fn read_lines(
    sim: &Simulator,
    input: &mut mpsc::Receiver<String>,
    printer: &Printer,
    options: &PlaygroundOptions,
) -> anyhow::Result<()> {
    let user = &options.user;
    while let Some(line) = input.recv().await {
        if options.scripted {
            settle(sim, options.settle_timeout).await;
            printer.line(&format!("{}: {line}", user.first_name.to_lowercase()))?;
        }
        match parse_input(&line) {
            Input::Text(text) => {
                sim.send_text(user, &text);
            }
            Input::Press { button, message_id } => press(sim, printer, user, button, message_id)?,
            Input::Sticker => {
                sim.send_sticker(user);
            }
            Input::Gif => {
                sim.send_animation(user);
            }
            Input::Photo => {
                sim.send_photo(user);
            }
            Input::Help => printer.line(HELP)?,
            Input::Quit => return Ok(()),
            Input::Blank => {}
            Input::Invalid(line) => {
                printer.line(&format!(
                    "unknown command {line:?}, type :help for the list"
                ))?;
            }
        }
    }
    if options.scripted {
        settle(sim, options.settle_timeout).await;
    }
    Ok(())
}

fn print_banner(sim: &Simulator, printer: &Printer, user: &SimUser) -> io::Result<()> {
    let url = sim.api_url();
    printer.line(&format!("Bot API simulator listening on {url}"))?;
    printer.line(&format!(
        "Start the bot with TELOXIDE_API_URL={url} and the token given to --token."
    ))?;
    printer.line(&format!(
        "You are {} (user {}) in a private chat with the bot. Type :help for commands.",
        user.first_name, user.id
    ))
}

/// Presses a button for the user. Prints a notice instead when the message or
/// button does not exist or the button sends no callback data.
fn press(
    sim: &Simulator,
    printer: &Printer,
    user: &SimUser,
    button: usize,
    message_id: Option<i32>,
) -> io::Result<()> {
    let messages = sim.messages(user.id);
    let mut candidates = messages
        .iter()
        .rev()
        .filter(|message| !message.deleted && !message.buttons().is_empty());
    let target = match message_id {
        Some(id) => candidates.find(|message| message.message_id == id),
        None => candidates.next(),
    };
    let Some(message) = target else {
        let notice = match message_id {
            Some(id) => format!("message #{id} was not found or has no buttons"),
            None => "no message with buttons to press".to_owned(),
        };
        return printer.line(&notice);
    };

    let buttons = message.buttons();
    let Some((text, data)) = buttons.get(button - 1) else {
        return printer.line(&format!(
            "message #{} has {} buttons, there is no button {button}",
            message.message_id,
            buttons.len()
        ));
    };
    if data.is_empty() {
        return printer.line(&format!("button {button} [{text}] sends no callback data"));
    }
    sim.press_button(user, message.message_id, data);
    Ok(())
}

/// Waits until the bot has confirmed every update and then stayed silent for
/// [`SETTLE_QUIET`], or until `timeout` passes.
async fn settle(sim: &Simulator, timeout: Duration) {
    let mut events = sim.subscribe();
    let _ = tokio::time::timeout(timeout, async {
        loop {
            let _ = sim.wait_until_idle(timeout).await;
            match tokio::time::timeout(SETTLE_QUIET, events.recv()).await {
                Err(_) => break,
                Ok(Err(broadcast::error::RecvError::Closed)) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
}

/// Prints the bot's activity in `chat_id` until the event channel closes.
async fn print_events(mut events: broadcast::Receiver<SimEvent>, printer: Printer, chat_id: i64) {
    // Remembers which messages had an inline keyboard, to report its removal.
    let mut had_keyboard: HashMap<i32, bool> = HashMap::new();
    loop {
        let lines = match events.recv().await {
            Ok(event) => render_event(&event, chat_id, &mut had_keyboard),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                vec![format!("({missed} bot events were not shown)")]
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for line in lines {
            if printer.line(&line).is_err() {
                return;
            }
        }
    }
}

fn render_event(
    event: &SimEvent,
    chat_id: i64,
    had_keyboard: &mut HashMap<i32, bool>,
) -> Vec<String> {
    match event {
        SimEvent::MessageSent(message) if message.chat_id == chat_id => {
            had_keyboard.insert(message.message_id, !message.buttons().is_empty());
            render_message(message, "")
        }
        SimEvent::MessageEdited(message) if message.chat_id == chat_id => {
            let has_keyboard = !message.buttons().is_empty();
            let had = had_keyboard.insert(message.message_id, has_keyboard);
            let mut lines = render_message(message, " (edited)");
            if had == Some(true) && !has_keyboard {
                lines.push("  (buttons removed)".to_owned());
            }
            lines
        }
        SimEvent::MessageDeleted(message) if message.chat_id == chat_id => {
            vec![format!("bot #{} deleted", message.message_id)]
        }
        SimEvent::CallbackAnswered(answer) => match &answer.text {
            Some(text) if answer.show_alert => vec![format!("alert: {text}")],
            Some(text) => vec![format!("notice: {text}")],
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Renders a message as `bot #ID: text`, followed by its keyboard.
fn render_message(message: &BotMessage, marker: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut text_lines = message.text.lines();
    let first = text_lines.next().unwrap_or_default();
    lines.push(format!("bot #{}{marker}: {first}", message.message_id));
    lines.extend(text_lines.map(|line| format!("  {line}")));
    lines.extend(render_keyboard(message.reply_markup.as_ref()));
    lines
}

/// Renders an inline keyboard as numbered buttons, one line per row, such as
/// `[1 Finish] [2 Cancel]`. Reply keyboards are shown without numbers because
/// the user types their text.
fn render_keyboard(markup: Option<&Value>) -> Vec<String> {
    let Some(markup) = markup else {
        return Vec::new();
    };
    let button_text = |button: &Value| button["text"].as_str().unwrap_or_default().to_owned();

    if let Some(rows) = markup.get("inline_keyboard").and_then(Value::as_array) {
        let mut number = 0;
        return rows
            .iter()
            .filter_map(Value::as_array)
            .filter(|row| !row.is_empty())
            .map(|row| {
                let buttons: Vec<String> = row
                    .iter()
                    .map(|button| {
                        number += 1;
                        format!("[{number} {}]", button_text(button))
                    })
                    .collect();
                format!("  {}", buttons.join(" "))
            })
            .collect();
    }
    if let Some(rows) = markup.get("keyboard").and_then(Value::as_array) {
        let buttons: Vec<String> = rows
            .iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|button| match button {
                Value::String(text) => format!("[{text}]"),
                object => format!("[{}]", button_text(object)),
            })
            .collect();
        return vec![format!("  reply keyboard: {}", buttons.join(" "))];
    }
    if markup.get("remove_keyboard").is_some() {
        return vec!["  (reply keyboard removed)".to_owned()];
    }
    if markup.get("force_reply").is_some() {
        return vec!["  (asks for a reply)".to_owned()];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn input_lines_parse() {
        let cases = [
            ("hello", Input::Text("hello".into())),
            ("/start", Input::Text("/start".into())),
            ("::colon", Input::Text(":colon".into())),
            ("", Input::Blank),
            ("   ", Input::Blank),
            (
                ":1",
                Input::Press {
                    button: 1,
                    message_id: None,
                },
            ),
            (
                ":2@42",
                Input::Press {
                    button: 2,
                    message_id: Some(42),
                },
            ),
            (":sticker", Input::Sticker),
            (":gif", Input::Gif),
            (":photo", Input::Photo),
            (":help", Input::Help),
            (":quit", Input::Quit),
            (":0", Input::Invalid(":0".into())),
            (":1@x", Input::Invalid(":1@x".into())),
            (":dance", Input::Invalid(":dance".into())),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_input(line), expected, "line {line:?}");
        }
    }

    #[test]
    fn inline_keyboard_renders_numbered() {
        let markup = json!({ "inline_keyboard": [
            [{ "text": "Finish", "callback_data": "f" }, { "text": "Cancel", "callback_data": "c" }],
            [{ "text": "Help", "url": "https://example.test" }],
        ] });
        assert_eq!(
            render_keyboard(Some(&markup)),
            ["  [1 Finish] [2 Cancel]", "  [3 Help]"]
        );
    }

    #[test]
    fn reply_keyboards_render_without_numbers() {
        let keyboard = json!({ "keyboard": [[{ "text": "Yes" }, "No"]] });
        let remove = json!({ "remove_keyboard": true });
        assert_eq!(
            render_keyboard(Some(&keyboard)),
            ["  reply keyboard: [Yes] [No]"]
        );
        assert_eq!(
            render_keyboard(Some(&remove)),
            ["  (reply keyboard removed)"]
        );
    }

    #[test]
    fn edit_that_drops_buttons_is_marked() {
        let mut message = BotMessage {
            message_id: 4,
            chat_id: 1001,
            text: "Pick one\nor cancel".into(),
            reply_markup: Some(
                json!({ "inline_keyboard": [[{ "text": "A", "callback_data": "a" }]] }),
            ),
            parse_mode: None,
            date: 0,
            edit_date: None,
            edits: 0,
            deleted: false,
        };
        let mut had_keyboard = HashMap::new();
        let sent = render_event(
            &SimEvent::MessageSent(message.clone()),
            1001,
            &mut had_keyboard,
        );
        assert_eq!(sent, ["bot #4: Pick one", "  or cancel", "  [1 A]"]);

        message.text = "Done".into();
        message.reply_markup = None;
        let edited = render_event(&SimEvent::MessageEdited(message), 1001, &mut had_keyboard);
        assert_eq!(edited, ["bot #4 (edited): Done", "  (buttons removed)"]);
    }

    #[test]
    fn other_chats_are_not_rendered() {
        let message = BotMessage {
            message_id: 1,
            chat_id: 2002,
            text: "hi".into(),
            reply_markup: None,
            parse_mode: None,
            date: 0,
            edit_date: None,
            edits: 0,
            deleted: false,
        };
        let lines = render_event(&SimEvent::MessageSent(message), 1001, &mut HashMap::new());
        assert!(lines.is_empty());
    }
}
