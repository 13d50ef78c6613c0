//! A load's rows as an Arrow record batch for DuckDB's appender: one typed column per plan
//! column, built on the flattening thread, so the load thread hands DuckDB whole vectors
//! (no text to format here, none to parse there, as a CSV file needs). Pure.

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;

use super::plan::TableLoad;
use super::types::{Cell, ColumnType};

/// Why rows could not become a record batch.
#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    /// A cell's value is not of its column's type (a planning fault: plans coerce cells).
    #[error("column `{column}` is {kind:?} but a row holds {cell:?}")]
    Mismatch {
        /// The column.
        column: String,
        /// Its type.
        kind: ColumnType,
        /// The cell.
        cell: Cell,
    },
    /// Arrow refused the columns.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

/// `rows` (cells in `plan`'s column order) as a record batch with `plan`'s columns. Cost:
/// one pass over each column's cells, straight into its array; text is copied once, into
/// the column's buffer.
///
/// # Errors
/// A cell does not fit its column's type.
pub fn batch(plan: &TableLoad, rows: &[Vec<Cell>]) -> Result<RecordBatch, ColumnarError> {
    let mut fields = Vec::with_capacity(plan.columns.len());
    let mut arrays = Vec::with_capacity(plan.columns.len());
    for (i, (name, kind)) in plan.columns.iter().enumerate() {
        let cells = rows.iter().map(|row| row.get(i).unwrap_or(&Cell::Null));
        let array = column(*kind, cells).map_err(|cell| ColumnarError::Mismatch {
            column: name.clone(),
            kind: *kind,
            cell,
        })?;
        fields.push(Field::new(name, data_type(*kind), true));
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// One column's cells as an Arrow array of `kind`; the first cell that does not fit, if any.
fn column<'a>(
    kind: ColumnType,
    cells: impl ExactSizeIterator<Item = &'a Cell>,
) -> Result<ArrayRef, Cell> {
    let n = cells.len();
    match kind {
        ColumnType::Int => build(Int64Builder::with_capacity(n), cells, |c| match c {
            Cell::Int(v) => Some(*v),
            _ => None,
        }),
        ColumnType::Float => build(Float64Builder::with_capacity(n), cells, |c| match c {
            Cell::Float(v) => Some(*v),
            #[allow(clippy::cast_precision_loss)]
            Cell::Int(v) => Some(*v as f64),
            _ => None,
        }),
        ColumnType::Bool => build(BooleanBuilder::with_capacity(n), cells, |c| match c {
            Cell::Bool(v) => Some(*v),
            _ => None,
        }),
        ColumnType::Text => build(
            StringBuilder::with_capacity(n, n * 16),
            cells,
            |c| match c {
                Cell::Text(v) => Some(&**v),
                _ => None,
            },
        ),
        ColumnType::Timestamp => {
            build(
                TimestampMicrosecondBuilder::with_capacity(n),
                cells,
                |c| match c {
                    Cell::Timestamp(v) => Some(*v),
                    _ => None,
                },
            )
        }
    }
}

/// Each cell's value as `pick` reads it for the column's type (a null as null) appended to
/// `builder`, in one pass; the first cell `pick` refuses, if any.
fn build<'a, T, B>(
    mut builder: B,
    cells: impl Iterator<Item = &'a Cell>,
    pick: impl Fn(&'a Cell) -> Option<T>,
) -> Result<ArrayRef, Cell>
where
    B: ArrayBuilder + Extend<Option<T>>,
{
    let mut misfit = None;
    builder.extend(cells.map_while(|cell| match cell {
        Cell::Null => Some(None),
        cell => match pick(cell) {
            Some(value) => Some(Some(value)),
            None => {
                misfit = Some(cell.clone());
                None
            }
        },
    }));
    match misfit {
        Some(cell) => Err(cell),
        None => Ok(builder.finish()),
    }
}

/// The Arrow type a column of `kind` is handed to DuckDB as.
fn data_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Text => DataType::Utf8,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::arrow::array::{Array, AsArray};
    use duckdb::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};

    fn plan(columns: &[(&str, ColumnType)]) -> TableLoad {
        TableLoad {
            table: "t".into(),
            create: true,
            add: vec![],
            widen: vec![],
            columns: columns.iter().map(|(c, k)| (c.to_string(), *k)).collect(),
            rows: vec![],
            upsert: false,
        }
    }

    #[test]
    fn cells_become_typed_columns_with_nulls() {
        let plan = plan(&[
            ("id", ColumnType::Text),
            ("n", ColumnType::Int),
            ("x", ColumnType::Float),
            ("b", ColumnType::Bool),
            ("at", ColumnType::Timestamp),
        ]);
        let rows = vec![
            vec![
                Cell::Text("a".into()),
                Cell::Int(3),
                Cell::Int(2),
                Cell::Bool(true),
                Cell::Timestamp(7),
            ],
            vec![
                Cell::Text("b".into()),
                Cell::Null,
                Cell::Float(1.5),
                Cell::Null,
                Cell::Null,
            ],
        ];
        let batch = batch(&plan, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        for (field, (_, kind)) in batch.schema().fields().iter().zip(&plan.columns) {
            assert_eq!(field.data_type(), &data_type(*kind));
        }
        assert_eq!(batch.column(0).as_string::<i32>().value(1), "b");
        assert_eq!(batch.column(1).as_primitive::<Int64Type>().value(0), 3);
        assert!(batch.column(1).is_null(1));
        let x = batch.column(2).as_primitive::<Float64Type>();
        assert_eq!((x.value(0), x.value(1)), (2.0, 1.5));
        assert!(batch.column(3).as_boolean().value(0));
        assert_eq!(
            batch
                .column(4)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            7
        );
        assert!(batch.column(4).is_null(1));
    }

    #[test]
    fn a_cell_of_another_type_is_refused_by_name() {
        let plan = plan(&[("n", ColumnType::Int)]);
        let err = batch(&plan, &[vec![Cell::Text("x".into())]]).unwrap_err();
        assert!(err.to_string().contains("column `n`"), "{err}");
    }
}
