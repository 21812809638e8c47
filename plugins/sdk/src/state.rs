//! The JSON encoding of flow state, shared by [`crate::runtime`] and by
//! [`crate::Flow::migrate`] implementations.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes state bytes as JSON.
///
/// The error names the target type and carries serde's message, which gives
/// the line and column of the first problem.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes)
        .map_err(|error| format!("invalid state for {}: {error}", std::any::type_name::<T>()))
}

/// Encodes state as compact JSON.
pub fn encode<T: Serialize>(state: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(state).map_err(|error| {
        format!(
            "failed to encode state of {}: {error}",
            std::any::type_name::<T>()
        )
    })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Counter {
        count: u32,
        #[serde(default)]
        label: String,
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let state = Counter {
            count: 3,
            label: "sets".to_owned(),
        };

        let bytes = encode(&state).unwrap();

        assert_eq!(bytes, br#"{"count":3,"label":"sets"}"#);
        assert_eq!(decode::<Counter>(&bytes).unwrap(), state);
    }

    #[test]
    fn decode_fills_defaulted_fields() {
        let state: Counter = decode(br#"{"count":7}"#).unwrap();

        assert_eq!(
            state,
            Counter {
                count: 7,
                label: String::new()
            }
        );
    }

    #[test]
    fn decode_error_names_type_and_position() {
        let error = decode::<Counter>(br#"{"count":"three"}"#).unwrap_err();

        assert!(error.starts_with("invalid state for "), "{error}");
        assert!(error.contains("Counter"), "{error}");
        assert!(error.contains("line 1 column"), "{error}");
    }
}
