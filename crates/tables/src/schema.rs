//! The shape of rows, inferred from their JSON values, for the Parquet writer.

use serde_json::Value;

use crate::Row;

/// The kind of value a field holds across all rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// Only nulls (or empty lists) seen so far; written as a nullable string column.
    Null,
    /// `true`/`false`.
    Bool,
    /// Integers that fit `i64`.
    Int,
    /// Numbers with a fraction or exponent (integers in the same field become doubles).
    Double,
    /// Strings.
    Str,
    /// A list whose elements all have this kind.
    List(Box<Kind>),
    /// An object with these fields, in first-seen order.
    Struct(Vec<(String, Kind)>),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Int => "integer",
            Kind::Double => "number",
            Kind::Str => "string",
            Kind::List(_) => "list",
            Kind::Struct(_) => "object",
        }
    }
}

/// The kind of one JSON value; `field` names it in errors.
fn kind_of(value: &Value, field: &str) -> Result<Kind, String> {
    Ok(match value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(n) if n.is_u64() => {
            return Err(format!(
                "field `{field}`: integer {n} does not fit a signed 64-bit column"
            ));
        }
        Value::Number(_) => Kind::Double,
        Value::String(_) => Kind::Str,
        Value::Array(items) => {
            let element = format!("{field}[]");
            let mut kind = Kind::Null;
            for item in items {
                kind = merge(kind, kind_of(item, &element)?, &element)?;
            }
            Kind::List(Box::new(kind))
        }
        Value::Object(map) => Kind::Struct(struct_fields(map, field)?),
    })
}

fn struct_fields(map: &Row, field: &str) -> Result<Vec<(String, Kind)>, String> {
    map.iter()
        .map(|(name, value)| {
            let path = if field.is_empty() {
                name.clone()
            } else {
                format!("{field}.{name}")
            };
            Ok((name.clone(), kind_of(value, &path)?))
        })
        .collect()
}

/// The kind that holds values of both kinds, or why none does.
fn merge(a: Kind, b: Kind, field: &str) -> Result<Kind, String> {
    Ok(match (a, b) {
        (Kind::Null, other) | (other, Kind::Null) => other,
        (Kind::Int, Kind::Double) | (Kind::Double, Kind::Int) => Kind::Double,
        (Kind::List(x), Kind::List(y)) => {
            Kind::List(Box::new(merge(*x, *y, &format!("{field}[]"))?))
        }
        (Kind::Struct(x), Kind::Struct(y)) => Kind::Struct(merge_fields(x, y, field)?),
        (x, y) if x == y => x,
        (x, y) => {
            return Err(format!(
                "field `{field}` holds both {} and {} values; give it one type",
                x.name(),
                y.name()
            ));
        }
    })
}

/// Union of two field lists: shared fields merged, new ones appended in order.
fn merge_fields(
    mut into: Vec<(String, Kind)>,
    from: Vec<(String, Kind)>,
    field: &str,
) -> Result<Vec<(String, Kind)>, String> {
    for (name, kind) in from {
        let path = if field.is_empty() {
            name.clone()
        } else {
            format!("{field}.{name}")
        };
        match into.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, existing)) => {
                let old = std::mem::replace(existing, Kind::Null);
                *existing = merge(old, kind, &path)?;
            }
            None => into.push((name, kind)),
        }
    }
    Ok(into)
}

/// The fields of a table of `rows`: the union of their fields, each with one kind.
pub(crate) fn infer_fields<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
) -> Result<Vec<(String, Kind)>, String> {
    let mut fields = Vec::new();
    for row in rows {
        fields = merge_fields(fields, struct_fields(row, "")?, "")?;
    }
    Ok(fields)
}
