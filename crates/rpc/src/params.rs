//! Request parameters: a query string or a form body, decoded once.

use std::collections::HashMap;

use crate::error::RpcError;

/// Decoded `name=value` pairs. A name given twice keeps its last value
/// (as PHP's `$_GET`/`$_POST`).
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw).unwrap_or_default();
        Self(pairs.into_iter().collect())
    }

    /// Query pairs overridden by body pairs.
    pub fn merged(query: Params, body: Params) -> Self {
        let mut m = query.0;
        m.extend(body.0);
        Self(m)
    }

    /// The name of a pair whose name or value is longer than `max` bytes.
    pub fn oversized(&self, max: usize) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k.len() > max || v.len() > max)
            .map(|(k, _)| k.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Present (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Present and non-empty (PHP's truthiness for optional strings).
    pub fn nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A required parameter: missing or empty is an error naming it.
    pub fn required(&self, name: &'static str) -> Result<&str, RpcError> {
        self.nonempty(name).ok_or(RpcError::MissingParam(name))
    }
}

/// A `0`/`1` flag parameter; anything else is refused (consent must be
/// explicit, never guessed from an empty or odd value).
pub fn flag(name: &str, v: &str) -> Result<bool, RpcError> {
    match v {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(RpcError::generic(format!("{name} must be 0 or 1"))),
    }
}
