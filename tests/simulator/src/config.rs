//! Simulator configuration: listen address, bot token and the bot's profile.

use std::net::SocketAddr;

/// Token that [`SimConfig::default`] uses. It has the shape of a real token
/// (`<bot id>:<secret>`) so that clients which check the shape accept it.
pub const DEFAULT_TOKEN: &str = "7000000001:AAFsimulatorTokenForLocalTestsOnly0";

/// Settings for [`Simulator::start`](crate::Simulator::start).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to listen on. Port 0 picks a free port; read the chosen one
    /// from [`Simulator::api_url`](crate::Simulator::api_url).
    pub addr: SocketAddr,
    /// Token that clients must put in the URL (`/bot<token>/<method>`).
    pub token: String,
    /// The bot account that `getMe` returns and that sends the bot's messages.
    pub bot: BotProfile,
}

/// The bot's own Telegram account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotProfile {
    pub id: i64,
    pub first_name: String,
    pub username: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: DEFAULT_TOKEN.to_owned(),
            bot: BotProfile::default(),
        }
    }
}

impl Default for BotProfile {
    fn default() -> Self {
        BotProfile {
            id: 7_000_000_001,
            first_name: "Demo Flow Bot".to_owned(),
            username: "demo_flow_bot".to_owned(),
        }
    }
}

impl SimConfig {
    /// Returns the default configuration with `token` in place of [`DEFAULT_TOKEN`].
    pub fn with_token(token: impl Into<String>) -> Self {
        SimConfig {
            token: token.into(),
            ..SimConfig::default()
        }
    }
}
