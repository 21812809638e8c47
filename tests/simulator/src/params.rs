//! Request parameters from the query string and the body, and the Bot API's
//! error replies.
//!
//! Telegram accepts parameters in the query string, as a JSON body, as an
//! `application/x-www-form-urlencoded` body or as `multipart/form-data`.
//! Query, form and multipart values arrive as strings, so the typed getters
//! also accept `"42"`, `"true"` and JSON text.

use std::convert::Infallible;

use axum::body::Bytes;
use serde_json::{Map, Value, json};

/// An error reply: `{"ok":false,"error_code":N,"description":"..."}`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) description: String,
}

impl ApiError {
    /// Builds a 400 error. `detail` is the text after Telegram's `Bad Request: ` prefix.
    pub(crate) fn bad_request(detail: impl AsRef<str>) -> Self {
        ApiError {
            status: 400,
            description: format!("Bad Request: {}", detail.as_ref()),
        }
    }

    pub(crate) fn unauthorized() -> Self {
        ApiError {
            status: 401,
            description: "Unauthorized".to_owned(),
        }
    }

    pub(crate) fn not_found() -> Self {
        ApiError {
            status: 404,
            description: "Not Found".to_owned(),
        }
    }

    /// Builds a 409 error. `detail` is the text after Telegram's `Conflict: ` prefix.
    pub(crate) fn conflict(detail: &str) -> Self {
        ApiError {
            status: 409,
            description: format!("Conflict: {detail}"),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "ok": false,
            "error_code": self.status,
            "description": self.description,
        })
    }
}

/// The parameters of one request, merged into a JSON object.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Params(Map<String, Value>);

impl Params {
    /// Parses the query string and the body. Body parameters override query
    /// parameters of the same name.
    pub(crate) async fn from_request(
        query: Option<&str>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Params, ApiError> {
        let mut params = Map::new();
        if let Some(query) = query {
            params.extend(parse_form(query.as_bytes()));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params(params));
        }

        let media_type = content_type
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase());
        match media_type.as_deref() {
            Some("application/x-www-form-urlencoded") => params.extend(parse_form(&body)),
            Some("multipart/form-data") => {
                let content_type = content_type.unwrap_or_default();
                params.extend(parse_multipart(content_type, body).await?);
            }
            Some("application/json") | None => match serde_json::from_slice(&body) {
                Ok(Value::Object(fields)) => params.extend(fields),
                Ok(_) => return Err(ApiError::bad_request("request body is not a JSON object")),
                Err(error) => {
                    return Err(ApiError::bad_request(format!("invalid JSON body: {error}")));
                }
            },
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported Content-Type {other:?}, use application/json, \
                     application/x-www-form-urlencoded or multipart/form-data"
                )));
            }
        }
        Ok(Params(params))
    }

    #[cfg(test)]
    pub(crate) fn from_json(value: Value) -> Params {
        match value {
            Value::Object(fields) => Params(fields),
            _ => panic!("params must be a JSON object"),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }

    pub(crate) fn raw(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    /// Returns an integer parameter given as a JSON number or a decimal string.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| {
            ApiError::bad_request(format!("parameter \"{name}\" must be an integer"))
        })
    }

    /// Returns a string parameter. Numbers and booleans are converted to text.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        match self.raw(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    /// Returns a boolean parameter. `true`, `"true"`, `"1"` and `1` count as true,
    /// and a missing parameter as false.
    pub(crate) fn flag(&self, name: &str) -> bool {
        match self.raw(name) {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::Number(number)) => number.as_i64() == Some(1),
            Some(Value::String(text)) => matches!(text.trim(), "true" | "True" | "1"),
            _ => false,
        }
    }

    /// Returns an object or array parameter. A string is parsed as JSON text,
    /// which is how query and form parameters carry structured values.
    pub(crate) fn structured(&self, name: &str) -> Result<Option<Value>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(text)) => serde_json::from_str(text)
                .map(Some)
                .map_err(|error| format!("parameter \"{name}\" is not valid JSON: {error}")),
            Some(value) => Ok(Some(value.clone())),
        }
    }
}

fn parse_form(bytes: &[u8]) -> impl Iterator<Item = (String, Value)> + '_ {
    form_urlencoded::parse(bytes)
        .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
}

/// Parses a `multipart/form-data` body. teloxide sends it for methods that
/// may upload a file, such as `setWebhook` with its `certificate`. A file part
/// is kept as `{"file_name": ..., "size": ...}`, and its content is dropped.
async fn parse_multipart(content_type: &str, body: Bytes) -> Result<Map<String, Value>, ApiError> {
    let invalid = |error: multer::Error| {
        ApiError::bad_request(format!("invalid multipart/form-data body: {error}"))
    };
    let boundary = multer::parse_boundary(content_type).map_err(invalid)?;
    let body = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut multipart = multer::Multipart::new(body, boundary);

    let mut fields = Map::new();
    while let Some(field) = multipart.next_field().await.map_err(invalid)? {
        let name = field.name().unwrap_or_default().to_owned();
        let value = match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let size = field.bytes().await.map_err(invalid)?.len();
                json!({ "file_name": file_name, "size": size })
            }
            None => Value::String(field.text().await.map_err(invalid)?),
        };
        fields.insert(name, value);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(
        query: Option<&str>,
        content_type: &str,
        body: &'static [u8],
    ) -> Result<Params, ApiError> {
        Params::from_request(query, Some(content_type), Bytes::from_static(body)).await
    }

    #[tokio::test]
    async fn body_overrides_query() {
        let params = parse(
            Some("chat_id=1&text=query"),
            "application/json; charset=utf-8",
            br#"{"text":"body"}"#,
        )
        .await
        .unwrap();
        assert_eq!(params.int("chat_id").unwrap(), Some(1));
        assert_eq!(params.string("text").as_deref(), Some("body"));
    }

    #[tokio::test]
    async fn form_body_values_are_strings() {
        let params = parse(
            None,
            "application/x-www-form-urlencoded",
            b"chat_id=-100&show_alert=true&reply_markup=%7B%22inline_keyboard%22%3A%5B%5D%7D",
        )
        .await
        .unwrap();
        assert_eq!(params.int("chat_id").unwrap(), Some(-100));
        assert!(params.flag("show_alert"));
        assert_eq!(
            params.structured("reply_markup").unwrap(),
            Some(json!({ "inline_keyboard": [] }))
        );
    }

    #[tokio::test]
    async fn empty_body_gives_query_only() {
        let params = parse(Some("offset=5"), "application/json", b"")
            .await
            .unwrap();
        assert_eq!(params.int("offset").unwrap(), Some(5));
        assert_eq!(params.int("limit").unwrap(), None);
    }

    #[test]
    fn invalid_integer_is_rejected() {
        let params = Params::from_json(json!({ "offset": "five" }));
        let error = params.int("offset").unwrap_err();
        assert_eq!(error.status, 400);
        assert!(error.description.contains("offset"));
    }

    #[tokio::test]
    async fn non_object_body_is_rejected() {
        let error = parse(None, "application/json", b"[1]").await.unwrap_err();
        assert_eq!(error.status, 400);
    }

    #[tokio::test]
    async fn unknown_content_type_is_rejected() {
        let error = parse(None, "text/plain", b"chat_id=1").await.unwrap_err();
        assert_eq!(error.status, 400);
        assert!(error.description.contains("text/plain"));
    }

    #[tokio::test]
    async fn multipart_fields_are_read() {
        let body = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"url\"\r\n\r\n\
https://bot.example.test/hook\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"allowed_updates\"\r\n\r\n\
[\"message\"]\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"certificate\"; filename=\"cert.pem\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
PEMDATA\r\n\
--XyZ--\r\n";
        let params = parse(None, "multipart/form-data; boundary=XyZ", body)
            .await
            .unwrap();
        assert_eq!(
            params.string("url").as_deref(),
            Some("https://bot.example.test/hook")
        );
        assert_eq!(
            params.structured("allowed_updates").unwrap(),
            Some(json!(["message"]))
        );
        assert_eq!(
            params.raw("certificate"),
            Some(&json!({ "file_name": "cert.pem", "size": 7 }))
        );
    }

    #[tokio::test]
    async fn malformed_multipart_is_rejected() {
        let error = parse(None, "multipart/form-data", b"--x")
            .await
            .unwrap_err();
        assert!(error.description.contains("multipart/form-data"));
    }

    #[test]
    fn null_counts_as_missing() {
        let params = Params::from_json(json!({ "reply_markup": null }));
        assert_eq!(params.structured("reply_markup").unwrap(), None);
    }
}
