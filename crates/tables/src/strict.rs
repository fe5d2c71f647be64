//! Strict JSON for untrusted lines: duplicate keys are an error, and a UTF-8 byte-order mark at the
//! start of a file is accepted.
//!
//! `serde_json` keeps the last value of a key that appears twice in one object. Another validator
//! written in another language may keep the first, so one submission could mean two things to two
//! validators (a parser differential). Every reader of miners' lines goes through
//! [`parse_strict_line`], which refuses such objects and says which key, where.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The UTF-8 byte-order mark some editors write at the start of a file.
pub const UTF8_BOM: &str = "\u{feff}";

/// Drops a leading UTF-8 byte-order mark (only meaningful on a file's first line).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(UTF8_BOM).unwrap_or(text)
}

/// Parses one JSON value, refusing any object that names a key twice (at any depth). The error
/// text names the key and the JSON path of the object, e.g. ``duplicate key `prompt` in the object
/// at `$` (line 1 column 40)``.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictSeed { path: "$".into() }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Whether a [`parse_strict`] error is the duplicate-key refusal (rather than invalid JSON).
pub fn is_duplicate_key(error: &serde_json::Error) -> bool {
    error.classify() == serde_json::error::Category::Data
        && error.to_string().starts_with(DUPLICATE_KEY)
}

const DUPLICATE_KEY: &str = "duplicate key `";

/// Parses one JSON-lines line: a leading byte-order mark is dropped when `first_line`, then the
/// text must be valid JSON without duplicate keys (see [`parse_strict`]).
pub fn parse_strict_line(text: &str, first_line: bool) -> Result<Value, serde_json::Error> {
    parse_strict(if first_line { strip_bom(text) } else { text })
}

/// Deserializes a [`Value`], tracking the JSON path for messages.
struct StrictSeed {
    path: String,
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor { path: self.path })
    }
}

struct StrictVisitor {
    path: String,
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed {
            path: format!("{}[{}]", self.path, items.len()),
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "{DUPLICATE_KEY}{key}` in the object at `{}`; each key may appear once \
                     (validators could otherwise read different values)",
                    self.path
                )));
            }
            let value = map.next_value_seed(StrictSeed {
                path: format!("{}.{key}", self.path),
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_with_the_key_and_the_path() {
        let err = parse_strict(r#"{"prompt": "a", "final_answer": "1", "prompt": "b"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate key `prompt`"), "{err}");
        let e = parse_strict(r#"{"a": 1, "a": 1}"#).unwrap_err();
        assert!(is_duplicate_key(&e));
        assert!(!is_duplicate_key(&parse_strict("{").unwrap_err()));
        assert!(err.contains("at `$`"), "{err}");
        let nested = r#"{"messages": [{"role": "user", "content": "x", "role": "assistant"}]}"#;
        let err = parse_strict(nested).unwrap_err().to_string();
        assert!(
            err.contains("`role`") && err.contains("$.messages[0]"),
            "{err}"
        );
    }

    #[test]
    fn valid_json_parses_as_serde_json_does() {
        for text in [
            r#"{"a": 1, "b": [1, 2.5, -3, {"c": null}], "d": "é\u00e9", "e": true}"#,
            "[]",
            "18446744073709551615",
            r#"{"a": {"a": {"a": 1}}}"#,
        ] {
            assert_eq!(
                parse_strict(text).unwrap(),
                serde_json::from_str::<Value>(text).unwrap()
            );
        }
        assert!(parse_strict("{\"a\": 1} x").is_err());
        assert!(parse_strict("{\"a\": 1").is_err());
    }

    #[test]
    fn a_bom_is_accepted_on_the_first_line_only() {
        let line = "\u{feff}{\"a\": 1}";
        assert_eq!(parse_strict_line(line, true).unwrap()["a"], 1);
        assert!(parse_strict_line(line, false).is_err());
    }
}
