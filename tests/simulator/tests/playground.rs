//! The terminal playground, driven by scripted input with a small teloxide
//! bot on the other side, and the `botapi-sim chat` binary with piped stdin.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use botapi_sim::playground::{self, HELP, PlaygroundOptions};
use support::{bot, start};
use teloxide::Bot;
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, UpdateKind};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// An output that the test can read after the playground wrote to it.
#[derive(Clone, Default)]
struct Transcript(Arc<Mutex<Vec<u8>>>);

impl Write for Transcript {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Transcript {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A bot that offers Finish/Cancel on /start, answers and edits on Finish,
/// and comments on stickers. It stops when the simulator goes away.
async fn run_demo_bot(bot: Bot) {
    let mut offset = 0;
    while let Ok(updates) = bot.get_updates().offset(offset).timeout(1).await {
        for update in updates {
            offset = update.id.0 as i32 + 1;
            match update.kind {
                UpdateKind::Message(message) if message.text() == Some("/start") => {
                    let keyboard = InlineKeyboardMarkup::new([[
                        InlineKeyboardButton::callback("Finish", "finish"),
                        InlineKeyboardButton::callback("Cancel", "cancel"),
                    ]]);
                    bot.send_message(message.chat.id, "Pick one")
                        .reply_markup(keyboard)
                        .await
                        .unwrap();
                }
                UpdateKind::Message(message) if message.sticker().is_some() => {
                    bot.send_message(message.chat.id, "Nice sticker")
                        .await
                        .unwrap();
                }
                UpdateKind::CallbackQuery(query) if query.data.as_deref() == Some("finish") => {
                    bot.answer_callback_query(query.id.clone())
                        .text("Saved")
                        .await
                        .unwrap();
                    let message = query.regular_message().unwrap();
                    bot.edit_message_text(message.chat.id, message.id, "Done")
                        .await
                        .unwrap();
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn scripted_chat_shows_bot_activity() {
    let sim = start().await;
    let demo_bot = tokio::spawn(run_demo_bot(bot(&sim)));
    let (lines, input) = mpsc::channel(16);
    for line in [
        "/start",
        ":1",
        ":sticker",
        ":bogus",
        ":3",
        ":help",
        ":quit",
        "after quit",
    ] {
        lines.send(line.to_owned()).await.unwrap();
    }
    let transcript = Transcript::default();
    let options = PlaygroundOptions {
        scripted: true,
        settle_timeout: Duration::from_secs(5),
        ..PlaygroundOptions::default()
    };

    playground::run(&sim, input, transcript.clone(), options)
        .await
        .unwrap();
    demo_bot.abort();

    let text = transcript.text();
    let banner_end = text
        .find("ann: /start")
        .expect("the first input line should be echoed");
    assert!(text[..banner_end].contains(&format!("listening on {}", sim.api_url())));
    let expected = format!(
        "ann: /start
bot #2: Pick one
  [1 Finish] [2 Cancel]
ann: :1
notice: Saved
bot #2 (edited): Done
  (buttons removed)
ann: :sticker
bot #4: Nice sticker
ann: :bogus
unknown command \":bogus\", type :help for the list
ann: :3
no message with buttons to press
ann: :help
{HELP}
ann: :quit
"
    );
    assert_eq!(&text[banner_end..], expected);
}

#[tokio::test]
async fn pressing_missing_button_prints_notice() {
    let sim = start().await;
    let demo_bot = tokio::spawn(run_demo_bot(bot(&sim)));
    let (lines, input) = mpsc::channel(16);
    for line in ["/start", ":3", ":1@9"] {
        lines.send(line.to_owned()).await.unwrap();
    }
    drop(lines);
    let transcript = Transcript::default();
    let options = PlaygroundOptions {
        scripted: true,
        settle_timeout: Duration::from_secs(5),
        ..PlaygroundOptions::default()
    };

    playground::run(&sim, input, transcript.clone(), options)
        .await
        .unwrap();
    demo_bot.abort();

    let text = transcript.text();
    assert!(
        text.contains("message #2 has 2 buttons, there is no button 3"),
        "{text}"
    );
    assert!(
        text.contains("message #9 was not found or has no buttons"),
        "{text}"
    );
    assert!(sim.callback_answers().is_empty());
}

#[tokio::test]
async fn chat_binary_reads_piped_stdin() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_botapi-sim"))
        .args(["chat", "--addr", "127.0.0.1:0", "--settle-secs", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the botapi-sim binary should start");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b":help\n:photo\nhello\n").await.unwrap();
    drop(stdin);

    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the playground should exit at end of input")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "status {:?}, stderr: {stderr}",
        output.status
    );
    assert!(
        stdout.contains("Bot API simulator listening on http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("ann: :help"), "{stdout}");
    assert!(stdout.contains(HELP), "{stdout}");
    assert!(stdout.contains("ann: hello"), "{stdout}");
}

#[tokio::test]
async fn binary_rejects_public_address() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_botapi-sim"))
        .args(["serve", "--addr", "0.0.0.0:0"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
