//! A Telegram Bot API simulator on loopback, for tests, benchmarks and the
//! local playground.
//!
//! It serves the methods that the flowbot host calls under Telegram's URL
//! scheme (`/bot<token>/<method>`), with Telegram's response envelope and
//! error texts, so teloxide talks to it unchanged through `TELOXIDE_API_URL`.
//! Tests push updates as users would cause them and read back what the bot
//! did.
//!
//! | module        | role                                                          |
//! | ------------- | ------------------------------------------------------------- |
//! | `config`      | [`SimConfig`]: listen address, token, the bot's profile        |
//! | `simulator`   | [`Simulator`]: start, shutdown and the output side for tests   |
//! | `input`       | the input side: text, media, button presses, raw updates       |
//! | `server`      | HTTP routes, the token check, fault injection, resets          |
//! | `methods`     | method dispatch, `getMe`, commands, webhook settings           |
//! | `messages`    | sending, editing and deleting messages; callback answers       |
//! | `updates`     | the update queue and `getUpdates` long polling                 |
//! | `store`       | chats, messages and the rest of the state behind one lock      |
//! | `params`      | query, JSON and form parameters; Telegram's error replies      |
//! | `objects`     | Bot API objects (User, Chat, Message, media) as JSON           |
//! | `faults`      | [`FaultRule`] and [`Fault`]                                    |
//! | `types`       | records for tests: [`BotMessage`], [`ApiCall`], [`SimEvent`]   |
//! | `playground`  | the terminal chat behind `botapi-sim chat`                     |
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use botapi_sim::{SimConfig, SimUser, Simulator};
//!
//! let sim = Simulator::start(SimConfig::default()).await?;
//! // Point the bot at sim.api_url() with sim.token(), then:
//! let ann = SimUser::new(1001, "Ann");
//! sim.send_text(&ann, "/start");
//! let replies = sim.wait_for_messages(ann.id, 1, Duration::from_secs(5)).await?;
//! println!("{}", replies[0].text);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod config;
mod faults;
mod input;
mod messages;
mod methods;
mod objects;
mod params;
pub mod playground;
mod server;
mod simulator;
mod store;
mod types;
mod updates;

pub use config::{BotProfile, DEFAULT_TOKEN, SimConfig};
pub use faults::{Fault, FaultId, FaultRule};
pub use simulator::Simulator;
pub use types::{ApiCall, BotMessage, CallbackAnswer, SimEvent, SimUser, Webhook};
