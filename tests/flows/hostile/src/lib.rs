//! A flow that misbehaves on purpose, to test that the host contains it.
//! It is built for the tests only and never shipped.
//!
//! - `/ping`: replies `pong <n>`, where n counts pings in state; panics
//!   when the state has `poisoned` set, as state that a flow cannot handle
//!   would make it.
//! - `/div A B`: replies A / B; B = 0 panics (an integer division by zero).
//! - `/spin`: loops forever.
//! - `/hog`: allocates memory until allocation fails.
//! - `/bigstate`: returns 10 MB of state.
//! - `/flood`: returns 10,000 actions.
//! - `/longtext N`: replies with a text of N characters.
//! - `/peek`: tries to read a file, an environment variable and open a socket,
//!   and replies with what it got.

use flowbot_sdk::{Event, Flow, Manifest, Reply, Update};
use serde::{Deserialize, Serialize};

pub struct Hostile;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pings: u32,
    #[serde(default)]
    blob: String,
    #[serde(default)]
    poisoned: bool,
}

impl Flow for Hostile {
    type State = State;

    fn manifest() -> Manifest {
        Manifest::new("hostile", "0.1.0", 1)
            .command("ping", "Reply pong")
            .command("div", "Divide two whole numbers")
            .command("spin", "Loop forever")
            .command("hog", "Allocate memory until it fails")
            .command("bigstate", "Return 10 MB of state")
            .command("flood", "Return 10,000 actions")
            .command("longtext", "Reply with a long text")
            .command("peek", "Try files, environment and sockets")
    }

    fn handle(update: &Update, state: &mut State) -> Result<Reply, String> {
        let Event::Command(command) = &update.event else {
            return Ok(Reply::text("commands only").done());
        };
        let args: Vec<&str> = command.args.split_whitespace().collect();
        let reply = match command.name.as_str() {
            "ping" => {
                assert!(!state.poisoned, "poisoned state");
                state.pings += 1;
                Reply::text(format!("pong {}", state.pings))
            }
            "div" => {
                let number = |index: usize| args.get(index).and_then(|arg| arg.parse::<i64>().ok());
                let (Some(dividend), Some(divisor)) = (number(0), number(1)) else {
                    return Ok(Reply::text("usage: /div A B").done());
                };
                // Panics on a zero divisor, on purpose.
                Reply::text(format!("{}", dividend / std::hint::black_box(divisor)))
            }
            "spin" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "hog" => {
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                loop {
                    chunks.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "bigstate" => {
                state.blob = "x".repeat(10 << 20);
                Reply::text("state grew")
            }
            "flood" => {
                let mut reply = Reply::new();
                for index in 0..10_000 {
                    reply = reply.and_text(format!("message {index}"));
                }
                reply
            }
            "longtext" => {
                let length = args
                    .first()
                    .and_then(|arg| arg.parse().ok())
                    .unwrap_or(100_000);
                Reply::text("a".repeat(length))
            }
            "peek" => Reply::text(peek()),
            other => Reply::text(format!("unknown command {other}")),
        };
        Ok(reply.done())
    }
}

/// Tries what a sandboxed flow must not be able to do; returns one line per try.
fn peek() -> String {
    let file = match std::fs::read_to_string("/etc/hostname") {
        Ok(_) => "file: read".to_owned(),
        Err(error) => format!("file: denied ({error})"),
    };
    let environment = match std::env::var("HOME") {
        Ok(_) => "env: read".to_owned(),
        Err(error) => format!("env: denied ({error})"),
    };
    let socket = match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(_) => "socket: connected".to_owned(),
        Err(error) => format!("socket: denied ({error})"),
    };
    format!("{file}\n{environment}\n{socket}")
}

flowbot_sdk::export_flow!(Hostile);
