//! HTTP side: the accept loop, the `/bot<token>/<method>` route, fault
//! injection and Telegram's response envelope.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::faults::Fault;
use crate::methods::{self, Method};
use crate::params::{ApiError, Params};
use crate::simulator::Shared;
use crate::updates;

/// Pause after a failed `accept`, so that running out of file descriptors
/// does not turn the loop into a busy loop.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Lets a request handler ask its connection task to reset the connection.
#[derive(Clone)]
struct ConnectionControl {
    reset: Arc<Notify>,
}

/// Accepts connections until `shutdown` turns true, then aborts every open
/// connection, long polls and hanging requests included.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = Router::new()
        .route("/{bot_segment}/{method}", any(handle_method))
        .fallback(|| async { reply_error(&ApiError::not_found()) })
        .with_state(shared);
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                Err(error) => {
                    warn!(%error, "Bot API simulator failed to accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            },
            // Reap finished connection tasks so that the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown_requested(&mut shutdown) => break,
        }
    }
    connections.shutdown().await;
}

/// Returns once `shutdown` is true or its sender is gone.
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    // The guard that wait_for returns is not Send, so it must not live in serve().
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves HTTP/1.1 on one connection. When a handler applies [`Fault::Reset`],
/// the connection is closed with `SO_LINGER` 0, which sends a TCP reset.
async fn serve_connection(mut stream: TcpStream, router: Router) {
    let _ = stream.set_nodelay(true);
    let control = ConnectionControl {
        reset: Arc::new(Notify::new()),
    };
    let reset = control.reset.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(control.clone());
        router.clone().oneshot(request.map(Body::new))
    });

    let reset_requested = {
        let connection = http1::Builder::new().serve_connection(TokioIo::new(&mut stream), service);
        tokio::select! {
            result = connection => {
                if let Err(error) = result {
                    debug!(%error, "Bot API simulator connection ended with an error");
                }
                false
            }
            _ = reset.notified() => true,
        }
    };
    if reset_requested && let Err(error) = stream.set_zero_linger() {
        warn!(%error, "failed to set SO_LINGER 0 for Fault::Reset, closing normally");
    }
}

/// Handles `/bot<token>/<method>`: checks the token and the method, records
/// the call, applies a matching fault, then runs the method.
async fn handle_method(
    State(shared): State<Arc<Shared>>,
    Path((bot_segment, method_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    control: Option<Extension<ConnectionControl>>,
    body: Bytes,
) -> Response {
    let Some(token) = bot_segment.strip_prefix("bot") else {
        return reply_error(&ApiError::not_found());
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let params = Params::from_request(query.as_deref(), content_type, body).await;

    let recorded_params = params.as_ref().map(Params::to_json).unwrap_or(Value::Null);
    let chat_id = params.as_ref().ok().and_then(|params| {
        let raw = params.raw("chat_id")?;
        shared.read(|state| state.resolve_chat(raw))
    });
    // teloxide writes method names capitalised (`SendMessage`), so the log
    // uses the documented spelling to keep tests independent of the client.
    let method = Method::from_name(&method_name);
    let logged_name = match method {
        Some(method) => method.name(),
        None => method_name.as_str(),
    };
    let call_index =
        shared.update(|state| state.record_call(logged_name, chat_id, recorded_params));

    let response = match (token == shared.config.token, method, params) {
        (false, _, _) => reply_error(&ApiError::unauthorized()),
        (true, None, _) => reply_error(&ApiError::not_found()),
        (true, Some(_), Err(error)) => reply_error(&error),
        (true, Some(method), Ok(params)) => {
            let control = control.map(|Extension(control)| control);
            call_method(&shared, method, chat_id, &params, control).await
        }
    };

    let status = response.status().as_u16();
    debug!(
        method = logged_name,
        status, "Bot API simulator served a call"
    );
    shared.update(|state| state.calls[call_index].status = Some(status));
    response
}

/// Applies the first matching fault, then runs the method unless the fault
/// replaced the response. Returns only when a response is due.
async fn call_method(
    shared: &Shared,
    method: Method,
    chat_id: Option<i64>,
    params: &Params,
    control: Option<ConnectionControl>,
) -> Response {
    let fault = shared.update(|state| state.faults.take_match(method.name(), chat_id));
    match fault {
        None => {}
        Some(Fault::Error { status, body }) => {
            return (status_code(status), axum::Json(body)).into_response();
        }
        Some(Fault::Raw {
            status,
            content_type,
            body,
        }) => {
            let content_type = HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("text/plain"));
            return (
                status_code(status),
                [(header::CONTENT_TYPE, content_type)],
                body,
            )
                .into_response();
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Reset) => {
            if let Some(control) = control {
                control.reset.notify_one();
            }
            // The connection task drops this future when it resets the connection.
            std::future::pending().await
        }
    }

    let result = match method {
        Method::GetUpdates => updates::get_updates(shared, params).await,
        other => shared.update(|state| methods::handle(state, other, params)),
    };
    match result {
        Ok(value) => (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "result": value })),
        )
            .into_response(),
        Err(error) => reply_error(&error),
    }
}

fn reply_error(error: &ApiError) -> Response {
    (status_code(error.status), axum::Json(error.to_json())).into_response()
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
