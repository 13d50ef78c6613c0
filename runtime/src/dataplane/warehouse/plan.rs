//! A load's plan, from the rows of one source's batch and the warehouse's current columns:
//! per table, the columns to create or add, the integer columns to widen to float, and the
//! rows as typed cells; values that fit no column become `discards` rows (table, column, row
//! id, value, reason). Rows repeated within the batch (same id) are loaded once; `users` rows
//! of one user merge, later traits over earlier ones. Pure.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::flatten::Row;
use super::types::{Cell, ColumnType, coerce, infer, refusal, widen};

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

    /// The rows' ids (the first column is always `id`).
    pub fn ids(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter_map(|row| match row.first() {
                Some(Cell::Text(id)) => Some(id.as_str()),
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
    let mut types: Columns = existing.cloned().unwrap_or_default();
    let mut order: Vec<String> = vec!["id".into()];
    // `order`'s members, so that a row's cells are placed in constant time each.
    let mut placed: std::collections::HashSet<&str> = std::iter::once("id").collect();
    let mut widened: Vec<String> = Vec::new();
    for row in &rows {
        for (column, value) in &row.cells {
            let Some(wants) = fixed(column).or_else(|| infer(value)) else {
                continue;
            };
            match types.get(column).copied() {
                None => {
                    types.insert(column.clone(), wants);
                }
                Some(has) => {
                    if let Some(wider) = widen(has, wants).filter(|w| *w != has) {
                        types.insert(column.clone(), wider);
                        if existing.is_some_and(|e| e.contains_key(column)) {
                            widened.push(column.clone());
                        }
                    }
                }
            }
            if placed.insert(column) {
                order.push(column.clone());
            }
        }
    }
    types.entry("id".into()).or_insert(ColumnType::Text);
    types.insert("uuid_ts".into(), ColumnType::Timestamp);
    order.retain(|c| c != "uuid_ts");
    order.push("uuid_ts".into());
    let columns: Vec<(String, ColumnType)> = order
        .iter()
        .map(|c| (c.clone(), types.get(c).copied().unwrap_or(ColumnType::Text)))
        .collect();
    let add = columns
        .iter()
        .filter(|(c, _)| !existing.is_some_and(|e| e.contains_key(c)))
        .cloned()
        .collect();
    let cells = rows
        .into_iter()
        .map(|row| cells_of(table, &columns, row, now, discards))
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

fn cells_of(
    table: &str,
    columns: &[(String, ColumnType)],
    mut row: Row,
    now: i64,
    discards: &mut Vec<Row>,
) -> Vec<Cell> {
    for (key, value, reason) in std::mem::take(&mut row.rejected) {
        discards.push(discard(table, &key, &row, &value, reason));
    }
    columns
        .iter()
        .map(|(column, kind)| {
            if column == "uuid_ts" {
                return Cell::Timestamp(now);
            }
            // Taken out of the row: text moves into its cell instead of being copied.
            match (row.cells.remove(column), *kind) {
                (None, _) => Cell::Null,
                (Some(Value::String(text)), ColumnType::Text) => Cell::Text(text),
                (Some(value), kind) => coerce(&value, kind).unwrap_or_else(|| {
                    discards.push(discard(table, column, &row, &value, refusal(&value, kind)));
                    Cell::Null
                }),
            }
        })
        .collect()
}

/// A `discards` row: its id is derived from the refused value's place, so a replayed load
/// finds it stored already.
fn discard(table: &str, column: &str, row: &Row, value: &Value, reason: String) -> Row {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let id = blake3::hash(format!("{table}\0{column}\0{}", row.id).as_bytes())
        .to_hex()
        .to_string();
    let mut cells = BTreeMap::new();
    cells.insert("id".to_string(), Value::String(id.clone()));
    cells.insert("table_name".to_string(), Value::String(table.to_string()));
    cells.insert("column_name".to_string(), Value::String(column.to_string()));
    cells.insert("column_value".to_string(), Value::String(text));
    cells.insert("reason".to_string(), Value::String(reason));
    cells.insert("row_id".to_string(), Value::String(row.id.clone()));
    if let Some(at) = &row.received_at {
        cells.insert("received_at".to_string(), Value::String(at.clone()));
    }
    Row {
        id,
        received_at: row.received_at.clone(),
        cells,
        rejected: Vec::new(),
    }
}

/// The first row of each id, in order.
fn dedup(rows: Vec<Row>) -> Vec<Row> {
    let mut seen = std::collections::HashSet::new();
    rows.into_iter()
        .filter(|r| seen.insert(r.id.clone()))
        .collect()
}

/// One row per id: later values over earlier ones, what a later row leaves out kept.
fn merge(rows: Vec<Row>) -> Vec<Row> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Row> = Vec::new();
    for row in rows {
        match at.get(&row.id) {
            Some(&i) => {
                let into = &mut out[i];
                into.cells.extend(row.cells);
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
        Row {
            id: id.into(),
            received_at: Some("2026-01-01T00:00:00Z".into()),
            cells: serde_json::from_value(cells).unwrap(),
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
