//! A load's plan, from the rows of one source's batch and the warehouse's current columns:
//! per table, the columns to create or add, the integer columns to widen to float, and the
//! rows as typed cells; values that fit no column become `discards` rows (table, column, row
//! id, value, reason). Rows repeated within the batch (same id) are loaded once; `users` rows
//! of one user merge, later traits over earlier ones. Pure.

use std::collections::HashMap;

use foldhash::{HashMap as FastMap, HashMapExt, HashSet as FastSet, HashSetExt};

use serde_json::Value;

use super::flatten::{Cells, Row};
use super::types::{Cell, ColumnType, Scalar, coerce, infer, refusal, widen};

/// A table's columns as the warehouse has them.
pub type Columns = HashMap<String, ColumnType>;

/// The table refused values go to.
pub const DISCARDS: &str = "discards";

/// What to do to one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLoad {
    /// The table.
    pub table: String,
    /// Whether it must be created (with [`TableLoad::add`] as its columns).
    pub create: bool,
    /// Columns to add (all of them when created), in order.
    pub add: Vec<(String, ColumnType)>,
    /// Integer columns to turn into float columns.
    pub widen: Vec<String>,
    /// The columns the rows fill, `id` first.
    pub columns: Vec<(String, ColumnType)>,
    /// The rows, cells in [`TableLoad::columns`] order.
    pub rows: Vec<Vec<Cell>>,
    /// Rows replace the stored row of the same id, keeping what they leave null (`users`);
    /// otherwise a row whose id is stored already is skipped.
    pub upsert: bool,
}

impl TableLoad {
    /// The columns' names, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|(c, _)| c.clone()).collect()
    }

    /// The ids of `rows` (a plan's: the first column is always `id`).
    pub fn ids_of(rows: &[Vec<Cell>]) -> Vec<String> {
        rows.iter()
            .filter_map(|row| match row.first() {
                Some(Cell::Text(id)) => Some(id.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Whether the rows can go straight into the table, skipping the staging table: the
    /// table is new (so holds none of their ids) and the load only inserts.
    pub fn direct(&self) -> bool {
        self.create && !self.upsert
    }
}

/// The fixed type of a column every table has, if `column` is one.
fn fixed(column: &str) -> Option<ColumnType> {
    match column {
        "received_at" | "sent_at" | "timestamp" | "original_timestamp" | "uuid_ts" => {
            Some(ColumnType::Timestamp)
        }
        "id" | "anonymous_id" | "user_id" | "event" | "event_text" | "group_id" | "previous_id" => {
            Some(ColumnType::Text)
        }
        _ => None,
    }
}

/// The plan for `table` given its stored `existing` columns (`None`: no such table) and the
/// batch's `rows` (in ingestion order); refused values are pushed to `discards` (as rows of
/// [`DISCARDS`]). `uuid_ts` (the load time, `now` in microseconds) is added to every row.
pub fn table(
    table: &str,
    existing: Option<&Columns>,
    rows: Vec<Row>,
    now: i64,
    discards: &mut Vec<Row>,
) -> TableLoad {
    let upsert = table == "users";
    let rows = if upsert { merge(rows) } else { dedup(rows) };
    let (mut columns, widened) = layout(&rows, existing);
    let uuid_ts = columns.len();
    columns.push(("uuid_ts".into(), ColumnType::Timestamp));
    // Each column's place, built once: a row's cells are placed by a lookup each.
    let at: FastMap<&str, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (c, _))| (c.as_str(), i))
        .collect();
    let cells = rows
        .into_iter()
        .map(|row| cells_of(table, &columns, &at, uuid_ts, row, now, discards))
        .collect();
    let add = columns
        .iter()
        .filter(|(c, _)| !existing.is_some_and(|e| e.contains_key(c)))
        .cloned()
        .collect();
    TableLoad {
        table: table.to_string(),
        create: existing.is_none(),
        add,
        widen: widened,
        columns,
        rows: cells,
        upsert,
    }
}

/// The columns the rows fill (`id` first, then in the order the rows meet them; without
/// `uuid_ts`) with their types, and the stored integer columns that must widen to float.
fn layout(rows: &[Row], existing: Option<&Columns>) -> (Vec<(String, ColumnType)>, Vec<String>) {
    let stored = |column: &str| existing.and_then(|e| e.get(column)).copied();
    let mut columns = vec![("id".to_string(), stored("id").unwrap_or(ColumnType::Text))];
    let mut at: FastMap<&str, usize> = std::iter::once(("id", 0)).collect();
    let mut widened: Vec<String> = Vec::new();
    for row in rows {
        for (column, value) in row.cells.iter() {
            if &**column == "uuid_ts" {
                continue;
            }
            let Some(wants) = fixed(column).or_else(|| infer(value)) else {
                continue;
            };
            let (place, has) = match at.get(&**column) {
                Some(&i) => (Some(i), Some(columns[i].1)),
                None => (None, stored(column)),
            };
            let kind = match has {
                None => wants,
                Some(has) => match widen(has, wants).filter(|w| *w != has) {
                    Some(wider) => {
                        if stored(column).is_some() {
                            widened.push(column.to_string());
                        }
                        wider
                    }
                    None => has,
                },
            };
            match place {
                Some(i) => columns[i].1 = kind,
                None => {
                    at.insert(&**column, columns.len());
                    columns.push((column.to_string(), kind));
                }
            }
        }
    }
    (columns, widened)
}

/// A row's cells in the plan's column order; a value that does not fit its column is null
/// there and a `discards` row.
fn cells_of(
    table: &str,
    columns: &[(String, ColumnType)],
    at: &FastMap<&str, usize>,
    uuid_ts: usize,
    mut row: Row,
    now: i64,
    discards: &mut Vec<Row>,
) -> Vec<Cell> {
    for (key, value, reason) in std::mem::take(&mut row.rejected) {
        discards.push(discard(table, &key, &row, value, reason));
    }
    let mut cells = vec![Cell::Null; columns.len()];
    cells[uuid_ts] = Cell::Timestamp(now);
    for (column, value) in std::mem::take(&mut row.cells) {
        let Some(&i) = at.get(&*column).filter(|&&i| i != uuid_ts) else {
            continue;
        };
        let kind = columns[i].1;
        match coerce(value, kind) {
            Ok(cell) => cells[i] = cell,
            Err(value) => {
                let reason = refusal(&value, kind);
                discards.push(discard(table, &column, &row, value.into_json(), reason));
            }
        }
    }
    cells
}

/// A `discards` row: its id is derived from the refused value's place, so a replayed load
/// finds it stored already.
fn discard(table: &str, column: &str, row: &Row, value: Value, reason: String) -> Row {
    let text = match value {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let id = blake3::hash(format!("{table}\0{column}\0{}", row.id).as_bytes())
        .to_hex()
        .to_string();
    let mut pairs = vec![
        ("id".into(), Scalar::Text(id.as_str().into())),
        ("table_name".into(), Scalar::Text(table.into())),
        ("column_name".into(), Scalar::Text(column.into())),
        ("column_value".into(), Scalar::Text(text.into())),
        ("reason".into(), Scalar::Text(reason.into())),
        ("row_id".into(), Scalar::Text(row.id.as_str().into())),
    ];
    if let Some(at) = row.received_at.as_deref().and_then(Scalar::text) {
        pairs.push(("received_at".into(), at));
    }
    Row {
        id,
        received_at: row.received_at.clone(),
        cells: Cells::from_pairs(pairs).0,
        rejected: Vec::new(),
    }
}

/// The first row of each id, in order.
fn dedup(rows: Vec<Row>) -> Vec<Row> {
    let mut seen = FastSet::new();
    rows.into_iter()
        .filter(|r| seen.insert(r.id.clone()))
        .collect()
}

/// One row per id: later values over earlier ones, what a later row leaves out kept.
fn merge(rows: Vec<Row>) -> Vec<Row> {
    let mut at: FastMap<String, usize> = FastMap::new();
    let mut out: Vec<Row> = Vec::new();
    for row in rows {
        match at.get(&row.id) {
            Some(&i) => {
                let into = &mut out[i];
                into.cells.overlay(row.cells);
                into.rejected.extend(row.rejected);
                into.received_at = row.received_at.or(into.received_at.take());
            }
            None => {
                at.insert(row.id.clone(), out.len());
                out.push(row);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: &str, cells: Value) -> Row {
        let Value::Object(cells) = cells else {
            panic!("cells are an object")
        };
        let pairs = cells
            .into_iter()
            .filter_map(|(column, value)| {
                let scalar = match value {
                    Value::Bool(b) => Some(Scalar::Bool(b)),
                    Value::Number(n) => Some(Scalar::Number(n)),
                    Value::String(s) => Scalar::text(&s),
                    _ => None,
                };
                Some((column.into(), scalar?))
            })
            .collect();
        Row {
            id: id.into(),
            received_at: Some("2026-01-01T00:00:00Z".into()),
            cells: Cells::from_pairs(pairs).0,
            rejected: Vec::new(),
        }
    }

    #[test]
    fn new_table_types_first_seen_and_ints_widen() {
        let mut discards = Vec::new();
        let rows = vec![
            row(
                "a",
                json!({"id": "a", "n": 1, "t": "x", "at": "2026-01-01T00:00:00Z"}),
            ),
            row("b", json!({"id": "b", "n": 2.5, "t": 7, "flag": true})),
            row("a", json!({"id": "a", "n": 99})),
        ];
        let plan = table("t", None, rows, 5, &mut discards);
        assert!(plan.create);
        let cols: Vec<(&str, ColumnType)> =
            plan.columns.iter().map(|(c, t)| (c.as_str(), *t)).collect();
        assert_eq!(
            cols,
            [
                ("id", ColumnType::Text),
                ("at", ColumnType::Timestamp),
                ("n", ColumnType::Float),
                ("t", ColumnType::Text),
                ("flag", ColumnType::Bool),
                ("uuid_ts", ColumnType::Timestamp),
            ]
        );
        assert_eq!(plan.rows.len(), 2, "the repeated id is loaded once");
        assert_eq!(plan.rows[0][2], Cell::Float(1.0));
        assert_eq!(plan.rows[1][3], Cell::Text("7".into()));
        assert_eq!(plan.rows[1][5], Cell::Timestamp(5));
        assert!(discards.is_empty());
    }

    #[test]
    fn conflicts_go_to_discards_and_stored_ints_widen() {
        let existing: Columns = [
            ("id".to_string(), ColumnType::Text),
            ("n".to_string(), ColumnType::Int),
            ("b".to_string(), ColumnType::Bool),
        ]
        .into_iter()
        .collect();
        let mut discards = Vec::new();
        let rows = vec![row("a", json!({"id": "a", "n": 1.5, "b": "yes", "new": 1}))];
        let plan = table("t", Some(&existing), rows, 0, &mut discards);
        assert!(!plan.create);
        assert_eq!(plan.widen, ["n"]);
        let added: Vec<&str> = plan.add.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(added, ["new", "uuid_ts"]);
        let b = plan.columns.iter().position(|(c, _)| c == "b").unwrap();
        assert_eq!(plan.rows[0][b], Cell::Null);
        assert_eq!(discards.len(), 1);
        let d = &discards[0].cells;
        assert_eq!(d["table_name"], "t");
        assert_eq!(d["column_name"], "b");
        assert_eq!(d["column_value"], "yes");
        assert_eq!(d["row_id"], "a");
        assert_eq!(d["reason"], "text does not fit a column of a boolean");
        let again = table(
            "t",
            Some(&existing),
            vec![row("a", json!({"b": "yes"}))],
            0,
            &mut discards,
        );
        assert_eq!(again.rows.len(), 1);
        assert_eq!(
            discards[0].id, discards[1].id,
            "a replay's discard has the same id"
        );
    }

    #[test]
    fn times_keep_their_instant_and_conflicts_across_events_are_discarded() {
        let mut discards = Vec::new();
        let rows = vec![
            row(
                "a",
                json!({"id": "a", "at": "2026-01-01T00:00:00.25Z", "label": "x", "n": 1}),
            ),
            row(
                "b",
                json!({"id": "b", "at": "2026-01-01 noon", "label": "2026-01-01T00:00:00Z",
                       "n": "two", "received_at": "not a time"}),
            ),
        ];
        let plan = table("t", None, rows, 0, &mut discards);
        let at = |c: &str| plan.columns.iter().position(|(n, _)| n == c).unwrap();
        assert_eq!(plan.columns[at("at")].1, ColumnType::Timestamp);
        assert_eq!(plan.columns[at("label")].1, ColumnType::Text);
        assert_eq!(plan.columns[at("n")].1, ColumnType::Int);
        assert_eq!(
            plan.rows[0][at("at")],
            Cell::Timestamp(1_767_225_600_250_000)
        );
        assert_eq!(
            plan.rows[1][at("label")],
            Cell::Text("2026-01-01T00:00:00Z".into()),
            "a time in a text column is its text"
        );
        for column in ["at", "n", "received_at"] {
            assert_eq!(plan.rows[1][at(column)], Cell::Null, "{column}");
        }
        let mut refused: Vec<(String, String)> = discards
            .iter()
            .map(|d| {
                let text = |c: &str| match d.cells.get(c) {
                    Some(Scalar::Text(t)) => t.to_string(),
                    other => format!("{other:?}"),
                };
                (text("column_name"), text("column_value"))
            })
            .collect();
        refused.sort();
        assert_eq!(
            refused,
            [
                ("at".to_string(), "2026-01-01 noon".to_string()),
                ("n".to_string(), "two".to_string()),
                ("received_at".to_string(), "not a time".to_string()),
            ]
        );
    }

    #[test]
    fn users_merge_later_traits_over_earlier() {
        let mut discards = Vec::new();
        let rows = vec![
            row("u", json!({"id": "u", "plan": "free", "email": "a@b.c"})),
            row("u", json!({"id": "u", "plan": "pro"})),
        ];
        let plan = table("users", None, rows, 0, &mut discards);
        assert!(plan.upsert);
        assert_eq!(plan.rows.len(), 1);
        let at = |c: &str| plan.columns.iter().position(|(n, _)| n == c).unwrap();
        assert_eq!(plan.rows[0][at("plan")], Cell::Text("pro".into()));
        assert_eq!(plan.rows[0][at("email")], Cell::Text("a@b.c".into()));
    }
}
