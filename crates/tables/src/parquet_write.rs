//! Writes rows to Parquet without Arrow: the schema is inferred from the rows (by the crate's
//! private `schema` module), each row is shredded into its leaf columns (definition and repetition
//! levels, as the Parquet format's nested encoding needs), and the `parquet` crate's column writers
//! encode them.
//!
//! Every field is nullable; lists use the standard three-level `LIST` layout
//! (`optional group f (LIST) { repeated group list { optional element } }`), the layout
//! pyarrow writes and every reader understands. A field missing from a row is written as null.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::{Type, TypePtr};
use serde_json::Value;

use crate::schema::{Kind, infer_fields};
use crate::{Row, TableError};

/// Compression of the written pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetCodec {
    /// No compression.
    Uncompressed,
    /// Snappy (pyarrow's default).
    Snappy,
    /// Zstandard at this level (1..=22).
    Zstd(i32),
}

/// How a Parquet file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Page compression.
    pub codec: ParquetCodec,
    /// Most rows in one row group (each group is shredded in memory before it is written).
    pub rows_per_group: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            codec: ParquetCodec::Snappy,
            rows_per_group: 16_384,
        }
    }
}

/// The values of one leaf column of a row group.
enum Values {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Double(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

/// One leaf column being filled: its values and levels.
struct Leaf {
    values: Values,
    def: Vec<i16>,
    rep: Vec<i16>,
    max_def: i16,
    max_rep: i16,
}

/// Writes `rows` to a Parquet file at `path` with a schema inferred from them.
pub fn write_parquet(
    path: &Path,
    rows: &[Row],
    options: &ParquetOptions,
) -> Result<(), TableError> {
    let schema_error = |reason: String| TableError::Schema {
        path: path.display().to_string(),
        reason,
    };
    let fields = infer_fields(rows).map_err(schema_error)?;
    let schema = message_type(&fields).map_err(schema_error)?;
    let parquet_error = |e: parquet::errors::ParquetError| TableError::Schema {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(compression(options.codec).map_err(parquet_error)?)
            .build(),
    );
    let file = File::create(path).map_err(|e| TableError::write(path, e))?;
    let mut writer =
        SerializedFileWriter::new(BufWriter::new(file), schema, props).map_err(parquet_error)?;
    for chunk in rows.chunks(options.rows_per_group.max(1)) {
        let leaves = shred_rows(&fields, chunk);
        let mut group = writer.next_row_group().map_err(parquet_error)?;
        write_leaves(&mut group, leaves).map_err(parquet_error)?;
        group.close().map_err(parquet_error)?;
    }
    writer.close().map_err(parquet_error)?;
    Ok(())
}

fn compression(codec: ParquetCodec) -> parquet::errors::Result<Compression> {
    Ok(match codec {
        ParquetCodec::Uncompressed => Compression::UNCOMPRESSED,
        ParquetCodec::Snappy => Compression::SNAPPY,
        ParquetCodec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level)?),
    })
}

/// The root `message` of the file's schema.
fn message_type(fields: &[(String, Kind)]) -> Result<TypePtr, String> {
    let children = fields
        .iter()
        .map(|(name, kind)| field_type(name, kind))
        .collect::<Result<Vec<_>, _>>()?;
    let root = Type::group_type_builder("schema")
        .with_fields(children)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(root))
}

/// The schema node of one (nullable) field.
fn field_type(name: &str, kind: &Kind) -> Result<TypePtr, String> {
    let built = match kind {
        Kind::Null | Kind::Str => primitive(name, Physical::BYTE_ARRAY, Some(LogicalType::String)),
        Kind::Bool => primitive(name, Physical::BOOLEAN, None),
        Kind::Int => primitive(name, Physical::INT64, None),
        Kind::Double => primitive(name, Physical::DOUBLE, None),
        Kind::List(element) => {
            let entry = Type::group_type_builder("list")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![field_type("element", element)?])
                .build();
            Type::group_type_builder(name)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::List))
                .with_fields(vec![Arc::new(entry.map_err(|e| e.to_string())?)])
                .build()
        }
        Kind::Struct(fields) if fields.is_empty() => {
            return Err(format!(
                "field `{name}` only holds empty objects, which Parquet cannot store"
            ));
        }
        Kind::Struct(fields) => Type::group_type_builder(name)
            .with_repetition(Repetition::OPTIONAL)
            .with_fields(
                fields
                    .iter()
                    .map(|(child, kind)| field_type(child, kind))
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .build(),
    };
    built.map(Arc::new).map_err(|e| e.to_string())
}

fn primitive(
    name: &str,
    physical: Physical,
    logical: Option<LogicalType>,
) -> parquet::errors::Result<Type> {
    Type::primitive_type_builder(name, physical)
        .with_repetition(Repetition::OPTIONAL)
        .with_logical_type(logical)
        .build()
}

/// Empty leaf columns for `kind`, in schema (depth-first) order, with their maximum levels.
fn empty_leaves(kind: &Kind, def: i16, rep: i16, out: &mut Vec<Leaf>) {
    let leaf = |values| Leaf {
        values,
        def: Vec::new(),
        rep: Vec::new(),
        max_def: def + 1,
        max_rep: rep,
    };
    match kind {
        Kind::Null | Kind::Str => out.push(leaf(Values::Bytes(Vec::new()))),
        Kind::Bool => out.push(leaf(Values::Bool(Vec::new()))),
        Kind::Int => out.push(leaf(Values::Int(Vec::new()))),
        Kind::Double => out.push(leaf(Values::Double(Vec::new()))),
        Kind::List(element) => empty_leaves(element, def + 2, rep + 1, out),
        Kind::Struct(fields) => fields
            .iter()
            .for_each(|(_, kind)| empty_leaves(kind, def + 1, rep, out)),
    }
}

/// Number of leaf columns under `kind`.
fn leaf_count(kind: &Kind) -> usize {
    match kind {
        Kind::List(element) => leaf_count(element),
        Kind::Struct(fields) => fields.iter().map(|(_, kind)| leaf_count(kind)).sum(),
        _ => 1,
    }
}

/// Shreds `rows` into the leaf columns of `fields`.
fn shred_rows(fields: &[(String, Kind)], rows: &[Row]) -> Vec<Leaf> {
    let mut leaves = Vec::new();
    for (_, kind) in fields {
        empty_leaves(kind, 0, 0, &mut leaves);
    }
    for row in rows {
        let mut at = 0;
        for (name, kind) in fields {
            let count = leaf_count(kind);
            shred(kind, row.get(name), 0, 0, 0, &mut leaves[at..at + count]);
            at += count;
        }
    }
    leaves
}

/// Appends one value of a nullable node: `def`/`rep` are the levels reached by its parent,
/// `depth` the repetition depth of the enclosing lists, `leaves` the node's own leaf columns.
fn shred(kind: &Kind, value: Option<&Value>, def: i16, rep: i16, depth: i16, leaves: &mut [Leaf]) {
    let value = value.filter(|v| !v.is_null());
    let Some(value) = value else {
        return leaves.iter_mut().for_each(|leaf| leaf.push_null(def, rep));
    };
    match (kind, value) {
        (Kind::List(element), Value::Array(items)) => {
            if items.is_empty() {
                return leaves
                    .iter_mut()
                    .for_each(|leaf| leaf.push_null(def + 1, rep));
            }
            for (i, item) in items.iter().enumerate() {
                let item_rep = if i == 0 { rep } else { depth + 1 };
                shred(element, Some(item), def + 2, item_rep, depth + 1, leaves);
            }
        }
        (Kind::Struct(fields), Value::Object(map)) => {
            let mut at = 0;
            for (name, kind) in fields {
                let count = leaf_count(kind);
                shred(
                    kind,
                    map.get(name),
                    def + 1,
                    rep,
                    depth,
                    &mut leaves[at..at + count],
                );
                at += count;
            }
        }
        (_, value) => leaves[0].push_value(value, def + 1, rep),
    }
}

impl Leaf {
    fn push_null(&mut self, def: i16, rep: i16) {
        self.def.push(def);
        self.rep.push(rep);
    }

    /// Appends a primitive value; the schema was inferred from these rows, so its kind fits.
    fn push_value(&mut self, value: &Value, def: i16, rep: i16) {
        self.def.push(def);
        self.rep.push(rep);
        match (&mut self.values, value) {
            (Values::Bool(out), Value::Bool(b)) => out.push(*b),
            (Values::Int(out), Value::Number(n)) => out.push(n.as_i64().unwrap_or_default()),
            (Values::Double(out), Value::Number(n)) => out.push(n.as_f64().unwrap_or(f64::NAN)),
            (Values::Bytes(out), Value::String(s)) => out.push(ByteArray::from(s.as_str())),
            _ => unreachable!("inferred schema fits every row"),
        }
    }
}

/// Writes the leaf columns of one row group, in schema order.
fn write_leaves(
    group: &mut SerializedRowGroupWriter<'_, BufWriter<File>>,
    leaves: Vec<Leaf>,
) -> parquet::errors::Result<()> {
    for leaf in leaves {
        let mut column = group.next_column()?.ok_or_else(|| {
            parquet::errors::ParquetError::General("schema has fewer columns than rows".into())
        })?;
        let def = (leaf.max_def > 0).then_some(leaf.def.as_slice());
        let rep = (leaf.max_rep > 0).then_some(leaf.rep.as_slice());
        match &leaf.values {
            Values::Bool(v) => column.typed::<BoolType>().write_batch(v, def, rep)?,
            Values::Int(v) => column.typed::<Int64Type>().write_batch(v, def, rep)?,
            Values::Double(v) => column.typed::<DoubleType>().write_batch(v, def, rep)?,
            Values::Bytes(v) => column.typed::<ByteArrayType>().write_batch(v, def, rep)?,
        };
        column.close()?;
    }
    Ok(())
}
