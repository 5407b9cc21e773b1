//! Staging rows declared once: a Rust struct written through [`staging_row!`](crate::staging_row)
//! gives its table's Arrow schema, its batch builder, its natural key and its column docs, so the
//! three can never drift apart. The column every staging row carries, `ingested_at` (the run's
//! timestamp, used by incremental models and by "no change → no commit" merges), is declared
//! here and nowhere else.
//!
//! Rust types map to Arrow columns through [`Cell`]: `String`/`&'static str` → `Utf8`, `f64` →
//! `Float64`, `i64` → `Int64`, `i32` → `Int32`, `bool` → `Boolean`, `NaiveDate` → `Date32`,
//! `DateTime<Utc>` → `Timestamp(µs, UTC)`, [`Cents`] → `Decimal128(20, 2)`; `Option<T>` is the
//! nullable column of `T`, every other type is `NOT NULL`.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

use super::{LakeError, TableName};

/// The name of the column every staging row ends with.
pub const INGESTED_AT: &str = "ingested_at";

/// What [`INGESTED_AT`] holds, for the docs.
const INGESTED_AT_DOC: &str = "When the run that wrote this row started (UTC); every row a run \
     writes carries the same value. Not part of a row's identity: a re-ingest that changes \
     nothing else makes no commit.";

/// The column the lake adds on write to the rows of a table with a publication rule
/// ([`availability`](super::availability)), unless the connector writes it itself.
pub const AVAILABLE_AT: &str = "available_at";

const AVAILABLE_AT_DOC: &str = "When the row's value became public (UTC), from its upstream's \
     publication schedule; added by the lake when the row is written. A mart row for day D uses \
     only rows public by D's cut-off.";

/// The Arrow type of `ingested_at` (and of every other UTC timestamp column).
pub fn utc_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The `ingested_at` field: non-null, microseconds, UTC.
pub fn ingested_at_field() -> Field {
    Field::new(INGESTED_AT, utc_timestamp(), false)
}

/// The `ingested_at` column: the run's timestamp, `n` times.
pub fn ingested_at_column(n: usize, run_at: DateTime<Utc>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(vec![run_at.timestamp_micros(); n]).with_timezone("UTC"),
    )
}

/// A US-dollar amount in cents, stored as `DECIMAL(20, 2)` (exact, no float rounding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub i128);

/// A Rust value that is one cell of an Arrow column.
pub trait Cell {
    /// Whether the column takes NULLs (only `Option<T>` does).
    const NULLABLE: bool;
    /// The column's Arrow type.
    fn data_type() -> DataType;
    /// The column made of these cells, in order.
    fn column<'a>(cells: impl Iterator<Item = &'a Self>) -> Result<ArrayRef, ArrowError>
    where
        Self: 'a;
}

/// Implements [`Cell`] for a type and its `Option`, given the Arrow type, the array type, how
/// one value becomes the array's native value, and (optionally) a setting the built array needs
/// (a time zone, a precision).
macro_rules! cell {
    ($t:ty, $dt:expr, $array:ty, |$v:ident| $native:expr) => {
        cell!($t, $dt, $array, |$v| $native, |a| a);
    };
    ($t:ty, $dt:expr, $array:ty, |$v:ident| $native:expr, |$a:ident| $adjust:expr) => {
        cell!(@one $t, false, $dt, $array, |c: &$t| { let $v = c; Some($native) }, |$a| $adjust);
        cell!(@one Option<$t>, true, $dt, $array, |c: &Option<$t>| c.as_ref().map(|$v| $native), |$a| $adjust);
    };
    (@one $t:ty, $nullable:expr, $dt:expr, $array:ty, $conv:expr, |$a:ident| $adjust:expr) => {
        impl Cell for $t {
            const NULLABLE: bool = $nullable;
            fn data_type() -> DataType {
                $dt
            }
            fn column<'a>(cells: impl Iterator<Item = &'a Self>) -> Result<ArrayRef, ArrowError>
            where
                Self: 'a,
            {
                let $a: $array = cells.map($conv).collect();
                Ok(Arc::new($adjust))
            }
        }
    };
}

cell!(String, DataType::Utf8, StringArray, |v| v.as_str());
cell!(&'static str, DataType::Utf8, StringArray, |v| *v);
cell!(f64, DataType::Float64, Float64Array, |v| *v);
cell!(i64, DataType::Int64, Int64Array, |v| *v);
cell!(i32, DataType::Int32, Int32Array, |v| *v);
cell!(bool, DataType::Boolean, BooleanArray, |v| *v);
cell!(NaiveDate, DataType::Date32, Date32Array, |v| {
    Date32Type::from_naive_date(*v)
});

cell!(
    DateTime<Utc>,
    utc_timestamp(),
    TimestampMicrosecondArray,
    |v| v.timestamp_micros(),
    |a| a.with_timezone("UTC")
);
cell!(
    Cents,
    DataType::Decimal128(20, 2),
    Decimal128Array,
    |v| v.0,
    |a| a.with_precision_and_scale(20, 2)?
);

/// What a field of a declared row adds to its table: one column for a [`Cell`], or every column
/// of a group declared with [`column_group!`](crate::column_group) (columns several tables share,
/// declared once: a price bar's `date`, `open` … `volume`).
pub trait Columns {
    /// Appends the field's columns, in order, with their docs. A [`Cell`] is one column named
    /// `name` documented by `doc`; a group ignores both and appends its own fields.
    fn declare(name: &'static str, doc: &'static str, out: &mut Vec<(Field, &'static str)>);
    /// Appends the field's arrays, one per declared column, built from these cells.
    fn arrays<'a, I>(cells: I, out: &mut Vec<ArrayRef>) -> Result<(), ArrowError>
    where
        I: Iterator<Item = &'a Self> + Clone,
        Self: 'a;
}

impl<T: Cell> Columns for T {
    fn declare(name: &'static str, doc: &'static str, out: &mut Vec<(Field, &'static str)>) {
        out.push((Field::new(name, T::data_type(), T::NULLABLE), doc));
    }

    fn arrays<'a, I>(cells: I, out: &mut Vec<ArrayRef>) -> Result<(), ArrowError>
    where
        I: Iterator<Item = &'a Self> + Clone,
        Self: 'a,
    {
        out.push(T::column(cells)?);
        Ok(())
    }
}

/// One documented column of a staging table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDoc {
    /// Column name.
    pub name: String,
    /// Arrow type, as DataFusion prints it.
    pub data_type: String,
    /// Whether it takes NULLs.
    pub nullable: bool,
    /// What it holds (the field's doc comment).
    pub doc: String,
}

/// A staging table's documentation: name, natural key and columns.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDoc {
    /// The table.
    pub table: TableName,
    /// Its natural key (the MERGE key).
    pub keys: &'static [&'static str],
    /// Every column as stored: the declared ones, `ingested_at`, then `available_at` when the
    /// lake stamps it.
    pub columns: Vec<ColumnDoc>,
}

/// A row of a staging table, declared with [`staging_row!`](crate::staging_row).
pub trait StagingRow: Columns + Sized {
    /// The table's name in the `staging` zone.
    const TABLE: &'static str;
    /// The natural key: at most one row per key value.
    const KEYS: &'static [&'static str];

    /// The declared columns, in order (without `ingested_at`), each with its doc comment.
    fn declared() -> Vec<(Field, &'static str)> {
        let mut out = Vec::new();
        Self::declare(Self::TABLE, "", &mut out);
        out
    }

    /// `staging.<TABLE>`.
    fn table() -> TableName {
        TableName::staging(Self::TABLE)
    }

    /// The table's schema: the declared fields, then `ingested_at`.
    fn schema() -> SchemaRef {
        let mut fields: Vec<Field> = Self::declared().into_iter().map(|(f, _)| f).collect();
        fields.push(ingested_at_field());
        Arc::new(Schema::new(fields))
    }

    /// The rows as one batch, stamped with the run's timestamp.
    fn batch(rows: &[Self], run_at: DateTime<Utc>) -> Result<RecordBatch, LakeError> {
        let data = |e: ArrowError| LakeError::Data {
            table: Self::table(),
            message: e.to_string(),
        };
        let mut columns = Vec::new();
        Self::arrays(rows.iter(), &mut columns).map_err(data)?;
        columns.push(ingested_at_column(rows.len(), run_at));
        RecordBatch::try_new(Self::schema(), columns).map_err(data)
    }

    /// The table's documentation, from the declaration.
    fn doc() -> TableDoc {
        let declared = Self::declared();
        let stamps_itself = declared.iter().any(|(f, _)| f.name() == AVAILABLE_AT);
        let ingested = (ingested_at_field(), INGESTED_AT_DOC);
        let mut columns = declared
            .into_iter()
            .chain([ingested])
            .map(|(f, doc)| ColumnDoc {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
                doc: doc.split_whitespace().collect::<Vec<_>>().join(" "),
            })
            .collect::<Vec<_>>();
        if super::availability::stamped(Self::TABLE) && !stamps_itself {
            columns.push(ColumnDoc {
                name: AVAILABLE_AT.to_string(),
                data_type: utc_timestamp().to_string(),
                nullable: true,
                doc: AVAILABLE_AT_DOC.to_string(),
            });
        }
        TableDoc {
            table: Self::table(),
            keys: Self::KEYS,
            columns,
        }
    }
}

/// Declares a staging table's row: a struct whose fields, in order, are the table's columns
/// (`ingested_at` is added after them), with its table name and natural key.
///
/// ```ignore
/// macrolake::staging_row! {
///     /// One settlement of one contract.
///     #[derive(Debug, Clone, PartialEq)]
///     pub struct SettleRow in "futures_daily" keys [contract, date] {
///         /// Contract code, e.g. `ZQZ25`.
///         pub contract: String,
///         /// Trade date.
///         pub date: chrono::NaiveDate,
///         /// Settlement price; NULL when not published.
///         pub settle: Option<f64>,
///     }
/// }
/// ```
#[macro_export]
macro_rules! staging_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident in $table:literal keys [$($key:ident),+ $(,)?] {
            $($body:tt)*
        }
    ) => {
        $crate::column_group! {
            $(#[$meta])*
            $vis struct $name {
                $($body)*
            }
        }

        impl $crate::lake::row::StagingRow for $name {
            const TABLE: &'static str = $table;
            const KEYS: &'static [&'static str] = &[$(stringify!($key)),+];
        }
    };
}

/// Declares a group of columns: a struct whose fields, in order, are columns (each a [`Cell`] or
/// another group), to be a field of rows declared with [`staging_row!`](crate::staging_row).
/// The field docs are the columns' docs; the group's own field name in a row is not a column.
#[macro_export]
macro_rules! column_group {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $fvis:vis $field:ident : $ty:ty
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[doc = $doc])* $fvis $field: $ty, )+
        }

        impl $crate::lake::row::Columns for $name {
            fn declare(
                _: &'static str,
                _: &'static str,
                out: &mut Vec<(datafusion::arrow::datatypes::Field, &'static str)>,
            ) {
                $( <$ty as $crate::lake::row::Columns>::declare(
                    stringify!($field),
                    concat!($($doc, "\n",)* ""),
                    out,
                ); )+
            }

            fn arrays<'a, I>(
                cells: I,
                out: &mut Vec<datafusion::arrow::array::ArrayRef>,
            ) -> Result<(), datafusion::arrow::error::ArrowError>
            where
                I: Iterator<Item = &'a Self> + Clone,
                Self: 'a,
            {
                $( <$ty as $crate::lake::row::Columns>::arrays(cells.clone().map(|c| &c.$field), out)?; )+
                Ok(())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;

    crate::staging_row! {
        /// A row with one column of each kind.
        #[derive(Debug, Clone)]
        struct Probe in "probe" keys [id, day] {
            /// The id.
            /// Second line.
            id: String,
            /// The day.
            day: NaiveDate,
            /// Maybe a value.
            value: Option<f64>,
            /// An amount.
            amount: Option<Cents>,
            /// A flag.
            flag: bool,
            /// A constant label.
            label: &'static str,
            /// A count.
            n: i64,
            /// A time.
            at: Option<DateTime<Utc>>,
        }
    }

    fn probe(id: &str, value: Option<f64>) -> Probe {
        Probe {
            id: id.into(),
            day: NaiveDate::from_ymd_opt(2026, 6, 5).unwrap(),
            value,
            amount: value.map(|v| Cents((v * 100.0) as i128)),
            flag: value.is_some(),
            label: "x",
            n: 3,
            at: None,
        }
    }

    #[test]
    fn schema_follows_the_declaration_with_ingested_at_last() {
        let s = Probe::schema();
        let cols: Vec<(&str, String, bool)> = s
            .fields()
            .iter()
            .map(|f| {
                (
                    f.name().as_str(),
                    f.data_type().to_string(),
                    f.is_nullable(),
                )
            })
            .collect();
        assert_eq!(
            cols,
            vec![
                ("id", "Utf8".to_string(), false),
                ("day", "Date32".to_string(), false),
                ("value", "Float64".to_string(), true),
                ("amount", "Decimal128(20, 2)".to_string(), true),
                ("flag", "Boolean".to_string(), false),
                ("label", "Utf8".to_string(), false),
                ("n", "Int64".to_string(), false),
                ("at", utc_timestamp().to_string(), true),
                ("ingested_at", utc_timestamp().to_string(), false),
            ]
        );
        assert_eq!(Probe::KEYS, &["id", "day"]);
        assert_eq!(Probe::table().to_string(), "staging.probe");
    }

    #[test]
    fn batch_holds_the_values_and_the_run_stamp() {
        let run_at = DateTime::parse_from_rfc3339("2026-06-05T22:00:00Z")
            .unwrap()
            .to_utc();
        let b = Probe::batch(&[probe("a", Some(1.25)), probe("b", None)], run_at).unwrap();
        assert_eq!(b.num_rows(), 2);
        let amount = b
            .column(3)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        assert_eq!(amount.value_as_string(0), "1.25");
        assert!(amount.is_null(1));
        let day = b.column(1).as_any().downcast_ref::<Date32Array>().unwrap();
        assert_eq!(day.value_as_date(1), NaiveDate::from_ymd_opt(2026, 6, 5));
        let stamp = b
            .column(8)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(stamp.value(1), run_at.timestamp_micros());
        assert_eq!(Probe::batch(&[], run_at).unwrap().num_rows(), 0);
    }

    crate::column_group! {
        /// Two columns several rows share.
        #[derive(Debug, Clone)]
        struct Band {
            /// Lower edge.
            lo: f64,
            /// Upper edge, when known.
            hi: Option<f64>,
        }
    }

    crate::staging_row! {
        /// A row with a group of columns in the middle.
        #[derive(Debug, Clone)]
        struct Banded in "banded" keys [id, lo] {
            /// The id.
            id: String,
            /// Not a column: its fields are.
            band: Band,
            /// After the group.
            tail: bool,
        }
    }

    #[test]
    fn a_group_adds_its_fields_as_columns_in_place() {
        let run_at = DateTime::parse_from_rfc3339("2026-06-05T22:00:00Z")
            .unwrap()
            .to_utc();
        let row = |id: &str, lo, hi| Banded {
            id: id.into(),
            band: Band { lo, hi },
            tail: hi.is_none(),
        };
        let b = Banded::batch(&[row("a", 1.5, Some(2.0)), row("b", 3.0, None)], run_at).unwrap();
        let names: Vec<&str> = b
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["id", "lo", "hi", "tail", "ingested_at"]);
        let hi = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!((hi.value(0), hi.is_null(1)), (2.0, true));
        let lo = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(lo.value(1), 3.0);
        let tail = b.column(3).as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(!tail.value(0) && tail.value(1));
        let d = Banded::doc();
        let docs: Vec<(&str, &str, bool)> = d
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.doc.as_str(), c.nullable))
            .take(4)
            .collect();
        assert_eq!(
            docs,
            [
                ("id", "The id.", false),
                ("lo", "Lower edge.", false),
                ("hi", "Upper edge, when known.", true),
                ("tail", "After the group.", false),
            ]
        );
    }

    #[test]
    fn docs_come_from_the_field_comments() {
        let d = Probe::doc();
        assert_eq!(d.columns.len(), 9);
        assert_eq!(d.columns[0].name, "id");
        assert_eq!(d.columns[0].doc, "The id. Second line.");
        assert_eq!(d.columns[3].data_type, "Decimal128(20, 2)");
        assert_eq!(d.columns[8].name, "ingested_at");
        assert!(d.columns[8].doc.starts_with("When the run"));
        assert!(!d.columns[8].nullable);
    }
}
