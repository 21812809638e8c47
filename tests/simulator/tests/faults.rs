//! Fault injection: error replies, raw pages, delays, hangs and resets, and
//! how rules match and count down.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use botapi_sim::{Fault, FaultRule};
use serde_json::json;
use support::{ANN_ID, ann, bot, method_url, post_json, start};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, Seconds};
use teloxide::{ApiError, RequestError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

#[tokio::test]
async fn retry_after_reaches_teloxide() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    sim.add_fault(
        FaultRule::new(Fault::retry_after(3))
            .for_method("sendMessage")
            .times(1),
    );

    let limited = bot.send_message(ChatId(ANN_ID), "hi").await;
    assert!(
        matches!(limited, Err(RequestError::RetryAfter(seconds)) if seconds == Seconds::from_seconds(3)),
        "{limited:?}"
    );
    assert!(
        sim.messages(ANN_ID).is_empty(),
        "a faulted call must not be handled"
    );

    bot.send_message(ChatId(ANN_ID), "hi").await.unwrap();
    assert_eq!(sim.messages(ANN_ID).len(), 1);
    let statuses: Vec<_> = sim.calls().iter().map(|call| call.status).collect();
    assert_eq!(statuses, [Some(429), Some(200)]);
}

#[tokio::test]
async fn chat_rule_blocks_one_chat_only() {
    let sim = start().await;
    let bot = bot(&sim);
    let bo = botapi_sim::SimUser::new(2002, "Bo");
    sim.add_private_chat(&ann());
    sim.add_private_chat(&bo);
    sim.add_fault(FaultRule::new(Fault::bot_blocked()).for_chat(ANN_ID));

    let blocked = bot.send_message(ChatId(ANN_ID), "hi").await;
    assert!(
        matches!(blocked, Err(RequestError::Api(ApiError::BotBlocked))),
        "{blocked:?}"
    );
    let other = bot.send_message(ChatId(bo.id), "hi").await;
    assert!(other.is_ok(), "{other:?}");
    // The rule has no `times`, so it stays until removed.
    let again = bot.send_message(ChatId(ANN_ID), "hi").await;
    assert!(
        matches!(again, Err(RequestError::Api(ApiError::BotBlocked))),
        "{again:?}"
    );
}

#[tokio::test]
async fn raw_fault_returns_page_as_is() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(Fault::bad_gateway()).for_method("getMe"));

    let response = reqwest::get(method_url(&sim, "getMe")).await.unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "text/html");
    let body = response.text().await.unwrap();
    assert!(body.contains("<h1>502 Bad Gateway</h1>"), "{body}");
    assert_eq!(sim.calls()[0].status, Some(502));
}

#[tokio::test]
async fn custom_error_body_is_sent() {
    let sim = start().await;
    let body = json!({ "ok": false, "error_code": 500, "description": "Internal Server Error" });
    sim.add_fault(FaultRule::new(Fault::Error {
        status: 500,
        body: body.clone(),
    }));
    let (status, received) = post_json(&sim, "getMe", json!({})).await;
    assert_eq!(status, 500);
    assert_eq!(received, body);
}

#[tokio::test]
async fn delay_fault_then_handles_call() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    sim.add_fault(FaultRule::new(Fault::Delay(Duration::from_millis(300))).for_chat(ANN_ID));

    let started = Instant::now();
    bot.send_message(ChatId(ANN_ID), "slow").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(sim.messages(ANN_ID)[0].text, "slow");
}

#[tokio::test]
async fn hang_fault_never_answers() {
    let sim = start().await;
    sim.add_private_chat(&ann());
    sim.add_fault(
        FaultRule::new(Fault::Hang)
            .for_method("sendMessage")
            .times(1),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();

    let result = client
        .post(method_url(&sim, "sendMessage"))
        .json(&json!({ "chat_id": ANN_ID, "text": "lost" }))
        .send()
        .await;
    let error = result.expect_err("a hanging call must not get a response");
    assert!(error.is_timeout(), "{error:?}");
    assert!(sim.messages(ANN_ID).is_empty());
    assert_eq!(sim.calls()[0].status, None);
}

#[tokio::test]
async fn reset_fault_resets_connection() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(Fault::Reset).for_method("getMe").times(1));
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "GET /bot{}/getMe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
        sim.token()
    );
    stream.write_all(request.as_bytes()).await.unwrap();

    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer))
        .await
        .expect("the connection should end quickly");
    let error = read.expect_err("the connection should be reset, not closed");
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    assert!(buffer.is_empty(), "no response bytes expected");
    assert_eq!(sim.calls()[0].status, None);

    // The rule was used once, so the next connection is served.
    let response = reqwest::get(method_url(&sim, "getMe")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn reset_fault_fails_teloxide_request() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_fault(FaultRule::new(Fault::Reset).times(1));
    let result = bot.get_me().await;
    assert!(
        matches!(result, Err(RequestError::Network(_))),
        "{result:?}"
    );
    assert!(bot.get_me().await.is_ok());
}

#[tokio::test]
async fn rules_match_in_insertion_order() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(Fault::api_error(400, "Bad Request: first")).times(1));
    sim.add_fault(FaultRule::new(Fault::api_error(400, "Bad Request: second")).times(1));
    let (_, first) = post_json(&sim, "getMe", json!({})).await;
    let (_, second) = post_json(&sim, "getMe", json!({})).await;
    let (status, _) = post_json(&sim, "getMe", json!({})).await;
    assert_eq!(first["description"], "Bad Request: first");
    assert_eq!(second["description"], "Bad Request: second");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn method_rule_ignores_other_methods() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(Fault::bot_blocked()).for_method("sendMessage"));
    let (status, _) = post_json(&sim, "getMe", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn removed_and_cleared_rules_stop() {
    let sim = start().await;
    let id = sim.add_fault(FaultRule::new(Fault::bot_blocked()));
    assert!(sim.remove_fault(id));
    assert!(!sim.remove_fault(id));
    let (status, _) = post_json(&sim, "getMe", json!({})).await;
    assert_eq!(status, 200);

    sim.add_fault(FaultRule::new(Fault::bot_blocked()));
    sim.add_fault(FaultRule::new(Fault::Hang));
    sim.clear_faults();
    let (status, _) = post_json(&sim, "getMe", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn token_check_comes_before_faults() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(Fault::Hang));
    let url = format!("{}bot1:wrong/getMe", sim.api_url());
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
}
