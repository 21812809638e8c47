//! Helpers shared by the integration tests: a simulator on a free loopback
//! port, a teloxide client pointed at it, and raw HTTP access.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use botapi_sim::{SimConfig, SimUser, Simulator};
use teloxide::Bot;

/// Upper bound for waits that normally finish in milliseconds.
pub const WAIT: Duration = Duration::from_secs(5);

pub const ANN_ID: i64 = 1001;

pub async fn start() -> Simulator {
    Simulator::start(SimConfig::default())
        .await
        .expect("simulator should start on 127.0.0.1:0")
}

pub fn ann() -> SimUser {
    SimUser::new(ANN_ID, "Ann").with_username("ann")
}

/// Returns a teloxide client that talks to `sim`, built the way the host builds it.
pub fn bot(sim: &Simulator) -> Bot {
    let url = reqwest::Url::parse(&sim.api_url()).expect("api_url should be a valid URL");
    Bot::new(sim.token()).set_api_url(url)
}

/// Returns the URL of `method` with the simulator's token.
pub fn method_url(sim: &Simulator, method: &str) -> String {
    format!("{}bot{}/{method}", sim.api_url(), sim.token())
}

/// Sends a JSON body to `method` and returns the status and the parsed body.
pub async fn post_json(
    sim: &Simulator,
    method: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(method_url(sim, method))
        .json(&body)
        .send()
        .await
        .expect("request should get a response");
    let status = response.status().as_u16();
    let body = response.json().await.expect("response should be JSON");
    (status, body)
}
