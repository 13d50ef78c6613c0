//! The SQL a load runs, the same shape in both databases: schema changes first (create,
//! add columns, widen), then per table the batch through the bulk path (`COPY`, DuckDB's
//! appender), straight into the table when none of its ids is stored, else into a temporary
//! staging table and one statement that moves the rows whose id is not stored yet (`users`:
//! an update of the stored rows, what the batch leaves null kept, then the insert of new
//! ones). Pure text.

use super::naming::quote;
use super::plan::TableLoad;
use super::types::Dialect;

/// `schema.table`, quoted.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote(schema), quote(table))
}

/// Creates the schema if it is missing.
pub fn create_schema(schema: &str) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema))
}

/// Every table's columns in `schema`: rows of (table, column, data type).
pub fn columns_query(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = $1"
        }
        Dialect::DuckDb => {
            "SELECT table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_schema = ? AND table_catalog = current_database()"
        }
    }
}

/// Every table's columns in the warehouse: rows of (schema, table, column, data type), for a
/// sync's catalog (PostgreSQL's system schemas left out).
pub fn catalog_query(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "SELECT table_schema::text, table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        }
        Dialect::DuckDb => {
            "SELECT table_schema, table_name, column_name, data_type \
             FROM information_schema.columns WHERE table_catalog = current_database()"
        }
    }
}

/// The statements that bring `load.table` to the plan's columns (none when nothing changes).
pub fn schema_changes(dialect: Dialect, schema: &str, load: &TableLoad) -> Vec<String> {
    let target = qualified(schema, &load.table);
    let column = |(name, kind): &(String, super::types::ColumnType)| {
        // PostgreSQL gets a primary key on `id`: the index the dedup looks rows up in.
        // DuckDB's would forbid later `ALTER TABLE`s; its hash anti-join needs none.
        let key = if name == "id" && dialect == Dialect::Postgres {
            " PRIMARY KEY"
        } else {
            ""
        };
        format!("{} {}{key}", quote(name), kind.sql(dialect))
    };
    if load.create {
        let columns: Vec<String> = load.add.iter().map(column).collect();
        return vec![format!(
            "CREATE TABLE IF NOT EXISTS {target} ({})",
            columns.join(", ")
        )];
    }
    let mut out: Vec<String> = load
        .add
        .iter()
        .map(|c| format!("ALTER TABLE {target} ADD COLUMN {}", column(c)))
        .collect();
    for name in &load.widen {
        out.push(format!(
            "ALTER TABLE {target} ALTER COLUMN {} TYPE {}",
            quote(name),
            super::types::ColumnType::Float.sql(dialect)
        ));
    }
    out
}

/// The staging table's name for the `n`th table of a load.
pub fn stage_name(n: usize) -> String {
    format!("_sluice_stage_{n}")
}

/// Creates the staging table `stage` with the load's columns: a temporary table, which
/// PostgreSQL drops at commit and DuckDB replaces at its next use (it has no `ON COMMIT
/// DROP`; its temporary tables live in memory until the connection closes).
pub fn create_stage(dialect: Dialect, stage: &str, load: &TableLoad) -> String {
    let columns: Vec<String> = load
        .columns
        .iter()
        .map(|(name, kind)| format!("{} {}", quote(name), kind.sql(dialect)))
        .collect();
    match dialect {
        Dialect::Postgres => format!(
            "CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP",
            quote(stage),
            columns.join(", ")
        ),
        Dialect::DuckDb => format!(
            "CREATE OR REPLACE TEMPORARY TABLE {} ({})",
            quote(stage),
            columns.join(", ")
        ),
    }
}

/// Whether `schema.table` holds a row whose id is in the array `$1` (PostgreSQL).
pub fn stored_any(schema: &str, table: &str) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE \"id\" = ANY($1))",
        qualified(schema, table)
    )
}

/// Creates (or empties) DuckDB's temporary table `ids` of one text column, `id`.
pub fn create_ids(ids: &str) -> String {
    format!(
        "CREATE OR REPLACE TEMPORARY TABLE {} (\"id\" VARCHAR)",
        quote(ids)
    )
}

/// Whether `schema.table` holds a row whose id is in the table `ids` (DuckDB).
pub fn stored_any_of(schema: &str, table: &str, ids: &str) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {} AS _t JOIN {ids} AS _i ON _t.\"id\" = _i.\"id\")",
        qualified(schema, table)
    )
}

/// The statements that move the rows of `staged` (the staging table, quoted) into the
/// table: an update of stored rows first when the load upserts, then the insert of the rows
/// whose id is not stored.
pub fn merge(schema: &str, staged: &str, load: &TableLoad) -> Vec<String> {
    let target = qualified(schema, &load.table);
    let table = quote(&load.table);
    let names: Vec<String> = load.columns.iter().map(|(c, _)| quote(c)).collect();
    let list = names.join(", ");
    let mut out = Vec::new();
    if load.upsert {
        let sets: Vec<String> = names
            .iter()
            .filter(|c| c.as_str() != "\"id\"")
            .map(|c| format!("{c} = COALESCE(_s.{c}, {table}.{c})"))
            .collect();
        if !sets.is_empty() {
            out.push(format!(
                "UPDATE {target} SET {} FROM {staged} AS _s WHERE {table}.\"id\" = _s.\"id\"",
                sets.join(", ")
            ));
        }
    }
    let picked: Vec<String> = names.iter().map(|c| format!("_s.{c}")).collect();
    out.push(format!(
        "INSERT INTO {target} ({list}) SELECT {} FROM {staged} AS _s \
         WHERE NOT EXISTS (SELECT 1 FROM {target} AS _t WHERE _t.\"id\" = _s.\"id\")",
        picked.join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::warehouse::types::ColumnType;

    fn load(create: bool, upsert: bool) -> TableLoad {
        TableLoad {
            table: "users".into(),
            create,
            add: vec![
                ("id".into(), ColumnType::Text),
                ("n".into(), ColumnType::Int),
            ],
            widen: vec!["m".into()],
            columns: vec![
                ("id".into(), ColumnType::Text),
                ("n".into(), ColumnType::Int),
            ],
            rows: vec![],
            upsert,
        }
    }

    #[test]
    fn statements_read_as_expected() {
        assert_eq!(
            schema_changes(Dialect::Postgres, "s", &load(true, false)),
            ["CREATE TABLE IF NOT EXISTS \"s\".\"users\" (\"id\" TEXT PRIMARY KEY, \"n\" BIGINT)"]
        );
        assert_eq!(
            schema_changes(Dialect::DuckDb, "s", &load(false, false)),
            [
                "ALTER TABLE \"s\".\"users\" ADD COLUMN \"id\" VARCHAR",
                "ALTER TABLE \"s\".\"users\" ADD COLUMN \"n\" BIGINT",
                "ALTER TABLE \"s\".\"users\" ALTER COLUMN \"m\" TYPE DOUBLE",
            ]
        );
        let merged = merge("s", "\"_st\"", &load(false, true));
        assert_eq!(
            merged[0],
            "UPDATE \"s\".\"users\" SET \"n\" = COALESCE(_s.\"n\", \"users\".\"n\") FROM \"_st\" AS _s WHERE \"users\".\"id\" = _s.\"id\""
        );
        assert!(merged[1].starts_with("INSERT INTO \"s\".\"users\" (\"id\", \"n\") SELECT _s.\"id\", _s.\"n\" FROM \"_st\" AS _s WHERE NOT EXISTS"));
    }
}
