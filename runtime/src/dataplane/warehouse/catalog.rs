//! The tables a sync believes the warehouse holds: read once when the sync starts, then
//! brought forward by each chunk's plans, so that a chunk is planned (typed, laid out and
//! encoded) on the flattening thread while the chunk before it loads. A load checks, inside
//! its transaction, that the tables it writes still have the columns its plan assumed; a
//! table changed meanwhile (by hand, or by another warehouse writing the same schema) fails
//! the load, and the next attempt reads the catalog again.

use std::collections::HashMap;

use super::load::LoadError;
use super::plan::{Columns, TableLoad};

/// Schema -> table -> columns.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    schemas: HashMap<String, HashMap<String, Columns>>,
}

/// The columns a source's plans assumed of each table they write (`None`: no such table).
pub type Assumed = Vec<(String, Option<Columns>)>;

impl Catalog {
    /// A catalog from `information_schema` rows (schema, table, column, data type).
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String, String, String)>) -> Catalog {
        let mut schemas: HashMap<String, HashMap<String, Columns>> = HashMap::new();
        for (schema, table, column, data_type) in rows {
            schemas
                .entry(schema)
                .or_default()
                .entry(table)
                .or_default()
                .insert(column, super::types::ColumnType::from_sql(&data_type));
        }
        Catalog { schemas }
    }

    /// The columns of `schema.table` as this catalog has them (`None`: no such table).
    pub fn columns(&self, schema: &str, table: &str) -> Option<&Columns> {
        self.schemas.get(schema)?.get(table)
    }

    /// Takes the changes of `plans` (a source's, on `schema`) in: created tables, added and
    /// widened columns, as their load will make them. Returns what the plans assumed.
    pub fn take_in<'a>(
        &mut self,
        schema: &str,
        plans: impl Iterator<Item = &'a TableLoad> + Clone,
    ) -> Assumed {
        let tables = self.schemas.entry(schema.to_string()).or_default();
        let assumed = plans
            .clone()
            .map(|p| (p.table.clone(), tables.get(&p.table).cloned()))
            .collect();
        for plan in plans {
            let columns = tables.entry(plan.table.clone()).or_default();
            for (name, kind) in &plan.columns {
                columns.insert(name.clone(), *kind);
            }
        }
        assumed
    }
}

/// Checks that the tables of `assumed` have, in `stored` (read inside the load's
/// transaction), the columns the plans assumed.
///
/// # Errors
/// [`LoadError::Changed`] naming the first table that differs.
pub fn unchanged(stored: &HashMap<String, Columns>, assumed: &Assumed) -> Result<(), LoadError> {
    match assumed
        .iter()
        .find(|(table, columns)| stored.get(table) != columns.as_ref())
    {
        Some((table, _)) => Err(LoadError::Changed(table.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::warehouse::flatten::{Cells, Row};
    use crate::dataplane::warehouse::plan;
    use crate::dataplane::warehouse::types::{ColumnType, Scalar, Text};

    /// Table `t` of schema `s` planned against `catalog` for one row with column `n`, and
    /// taken in.
    fn plan_n(catalog: &mut Catalog, n: i64) -> (TableLoad, Assumed) {
        let pairs = vec![(Text::from("n"), Scalar::Number(n.into()))];
        let row = Row {
            id: "a".into(),
            received_at: None,
            cells: Cells::from_pairs(pairs).0,
            rejected: Vec::new(),
        };
        let load = plan::table(
            "t",
            catalog.columns("s", "t"),
            vec![row],
            0,
            &mut Vec::new(),
        );
        let assumed = catalog.take_in("s", std::iter::once(&load));
        (load, assumed)
    }

    #[test]
    fn a_chunk_is_planned_against_the_one_before_it() {
        let stored = Catalog::from_rows([(
            "s".to_string(),
            "t".to_string(),
            "id".to_string(),
            "VARCHAR".to_string(),
        )]);
        let mut catalog = stored.clone();
        let (first, assumed) = plan_n(&mut catalog, 1);
        let added: Vec<&str> = first.add.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(added, ["n", "uuid_ts"]);
        assert!(unchanged(&stored.schemas["s"], &assumed).is_ok());

        let (second, assumed) = plan_n(&mut catalog, 2);
        assert!(second.add.is_empty(), "the first chunk's columns are known");
        assert_eq!(
            assumed[0].1.as_ref().and_then(|c| c.get("n")),
            Some(&ColumnType::Int)
        );
        let e = unchanged(&stored.schemas["s"], &assumed).map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|e| e.contains("table `t` changed")),
            "{e:?}"
        );
    }
}
