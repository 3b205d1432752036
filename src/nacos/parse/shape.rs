//! Checked access to JSON answers: every field read says where it is (`pageItems[2].dataId`) and
//! what was wrong with it, so that an answer of another shape is an error, never a default.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A shape problem, as text for the error message.
pub type Shape<T> = Result<T, String>;

/// What kind of JSON value this is, for messages.
#[must_use]
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A JSON object and where it sits in the answer.
#[derive(Clone)]
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

/// The value as an object (`path` names it in messages; "" for the whole answer).
pub fn object<'a>(v: &'a Value, path: &str) -> Shape<Obj<'a>> {
    match v {
        Value::Object(map) => Ok(Obj {
            map,
            path: path.to_owned(),
        }),
        other => Err(format!("{} is {}, not an object", name(path), kind(other))),
    }
}

/// The value as a list.
pub fn list<'a>(v: &'a Value, path: &str) -> Shape<&'a [Value]> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("{} is {}, not a list", name(path), kind(other))),
    }
}

fn name(path: &str) -> String {
    if path.is_empty() {
        "the answer".to_owned()
    } else {
        format!("`{path}`")
    }
}

/// `path.key` (or `key` at the top).
#[must_use]
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
#[must_use]
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl<'a> Obj<'a> {
    /// Where a key of this object sits.
    #[must_use]
    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of a key, `None` when absent or null.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Whether the object has this key (even null).
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn missing(&self, key: &str, want: &str) -> String {
        match self.map.get(key) {
            None => format!("`{}` is missing", self.at(key)),
            Some(v) => format!("`{}` is {}, not {want}", self.at(key), kind(v)),
        }
    }

    /// A required non-empty string.
    pub fn str(&self, key: &str) -> Shape<&'a str> {
        match self.map.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err(self.missing(key, "a non-empty string")),
        }
    }

    /// A string that may be empty, null or absent ("" then).
    pub fn opt_str(&self, key: &str) -> Shape<&'a str> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.missing(key, "a string")),
        }
    }

    /// A required string that may be empty.
    pub fn any_str(&self, key: &str) -> Shape<&'a str> {
        match self.map.get(key) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(self.missing(key, "a string")),
        }
    }

    /// A required count (a non-negative integer).
    pub fn count(&self, key: &str) -> Shape<u64> {
        self.map
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.missing(key, "a count"))
    }

    /// A required row id: a non-negative integer, or the same written as a string of digits
    /// (Nacos writes the `Long` ids of its config list items as strings).
    pub fn row_id(&self, key: &str) -> Shape<u64> {
        match self.map.get(key) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        }
        .ok_or_else(|| self.missing(key, "a row id"))
    }

    /// A required integer.
    pub fn int(&self, key: &str) -> Shape<i64> {
        self.map
            .get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| self.missing(key, "an integer"))
    }

    /// A number, or `default` when null or absent.
    pub fn opt_number(&self, key: &str, default: f64) -> Shape<f64> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.missing(key, "a number")),
        }
    }

    /// A boolean, or `default` when null or absent.
    pub fn opt_bool(&self, key: &str, default: bool) -> Shape<bool> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.missing(key, "a boolean")),
        }
    }

    /// A required list.
    pub fn list(&self, key: &str) -> Shape<&'a [Value]> {
        match self.map.get(key) {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(self.missing(key, "a list")),
        }
    }

    /// A required object.
    pub fn object(&self, key: &str) -> Shape<Obj<'a>> {
        match self.map.get(key) {
            Some(Value::Object(map)) => Ok(Obj {
                map,
                path: self.at(key),
            }),
            _ => Err(self.missing(key, "an object")),
        }
    }

    /// Metadata: an object of scalars, or (r-nacos catalog) a JSON string of one; empty when
    /// null or absent.
    pub fn string_map(&self, key: &str) -> Shape<BTreeMap<String, String>> {
        let parsed;
        let map = match self.map.get(key) {
            None | Some(Value::Null) => return Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m,
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(BTreeMap::new()),
            Some(Value::String(s)) => {
                parsed = serde_json::from_str::<Map<String, Value>>(s)
                    .map_err(|_| self.missing(key, "an object (or a JSON string of one)"))?;
                &parsed
            }
            Some(_) => return Err(self.missing(key, "an object")),
        };
        map.iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(format!(
                            "`{}` is {}, not a scalar",
                            self.at(&format!("{key}.{k}")),
                            kind(v)
                        ))
                    }
                    other => other.to_string(),
                };
                Ok((k.clone(), s))
            })
            .collect()
    }

    /// The value of a key for messages that quote it.
    #[must_use]
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// Every key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map.iter()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it has no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// How many characters of an unexpected answer an error quotes.
const SNIPPET_CHARS: usize = 200;

/// The beginning of an answer, for messages.
#[must_use]
pub fn snippet(body: &str) -> String {
    body.chars().take(SNIPPET_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_where_and_what() {
        let v: Value = serde_json::from_str(r#"{"a": {"b": [1, {"c": null}]}, "n": "x"}"#).unwrap();
        let o = object(&v, "").unwrap();
        assert_eq!(o.count("n").unwrap_err(), "`n` is a string, not a count");
        assert_eq!(o.str("zz").unwrap_err(), "`zz` is missing");
        let inner = &v["a"]["b"][1];
        let path = index("a.b", 1);
        let o = object(inner, &path).unwrap();
        assert_eq!(
            o.str("c").unwrap_err(),
            "`a.b[1].c` is null, not a non-empty string"
        );
        assert_eq!(o.opt_str("c").unwrap(), "");
        assert_eq!(
            object(&Value::Null, "").err().unwrap(),
            "the answer is null, not an object"
        );
        assert_eq!(
            list(&v, "").unwrap_err(),
            "the answer is an object, not a list"
        );
    }

    #[test]
    fn metadata_comes_as_an_object_or_a_json_string_of_one() {
        let v: Value =
            serde_json::from_str(r#"{"m": {"a": "1", "b": 2}, "s": "{\"k\":\"v\"}", "bad": [1]}"#)
                .unwrap();
        let o = object(&v, "").unwrap();
        assert_eq!(o.string_map("m").unwrap().get("b").unwrap(), "2");
        assert_eq!(o.string_map("s").unwrap().get("k").unwrap(), "v");
        assert!(o.string_map("none").unwrap().is_empty());
        assert!(o.string_map("bad").is_err());
    }
}
