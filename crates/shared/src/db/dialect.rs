//! The one place that knows how the SQL dialects differ. Every query of the
//! data layer is built through [`Dialect`]: the statement text goes through
//! [`Dialect::sql`] (placeholders), and the few constructs without a common
//! spelling — upserts, insert-or-ignore, the id of the last insert, integer
//! sums, the migrations — are asked of it. A new backend is one more arm in
//! each method here and one more migrations folder.

use super::Backend;
use std::borrow::Cow;

/// What a column of an upsert becomes when the row already exists.
#[derive(Debug, Clone, Copy)]
pub enum Set<'a> {
    /// The value the insert carried.
    New(&'a str),
    /// The stored value plus the value the insert carried.
    Add(&'a str),
}

/// SQL spelling for one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub Backend);

impl Dialect {
    /// The statement as this backend takes it. SQLite and MySQL both take `?`
    /// placeholders, so today the text is unchanged; a backend with numbered
    /// placeholders rewrites them here, and nowhere else.
    pub fn sql(self, sql: &str) -> Cow<'_, str> {
        match self.0 {
            Backend::Sqlite | Backend::MySql => Cow::Borrowed(sql),
        }
    }

    /// The value an upsert's `INSERT` carried for `col`.
    pub fn inserted(self, col: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("excluded.{col}"),
            Backend::MySql => format!("VALUES({col})"),
        }
    }

    /// The clause that turns an `INSERT` into `table`, keyed by `key`, into
    /// an upsert: each column of `sets` takes the new value or adds it, and
    /// `raw` (assignments that read the stored row as `table.col` and the new
    /// one through [`Dialect::inserted`]) follows. An `INSERT … SELECT` must
    /// end its `SELECT` with a `WHERE` (SQLite cannot otherwise tell the
    /// `ON` of the clause from a join's).
    pub fn upsert(self, table: &str, key: &[&str], sets: &[Set<'_>], raw: &[String]) -> String {
        let mut assign: Vec<String> = sets
            .iter()
            .map(|s| match *s {
                Set::New(c) => format!("{c} = {}", self.inserted(c)),
                Set::Add(c) => format!("{c} = {table}.{c} + {}", self.inserted(c)),
            })
            .collect();
        assign.extend(raw.iter().cloned());
        match self.0 {
            Backend::Sqlite => format!(
                " ON CONFLICT({}) DO UPDATE SET {}",
                key.join(", "),
                assign.join(", ")
            ),
            Backend::MySql => format!(" ON DUPLICATE KEY UPDATE {}", assign.join(", ")),
        }
    }

    /// `col` compared and sorted without regard to case (MySQL's default
    /// collations already are).
    pub fn nocase(self, col: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("{col} COLLATE NOCASE"),
            Backend::MySql => col.to_owned(),
        }
    }

    /// `INSERT INTO {rest}` that silently keeps an existing row with the same key.
    pub fn insert_ignore(self, rest: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("INSERT OR IGNORE INTO {rest}"),
            Backend::MySql => format!("INSERT IGNORE INTO {rest}"),
        }
    }

    /// A query answering the id the last `INSERT` on this connection
    /// generated, as column `id`.
    pub fn last_insert_id(self) -> &'static str {
        match self.0 {
            Backend::Sqlite => "SELECT last_insert_rowid() AS id",
            Backend::MySql => "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS id",
        }
    }

    /// `SUM(col)` as a 64-bit integer (MySQL answers a DECIMAL, which the
    /// `Any` driver cannot decode).
    pub fn sum_int(self, col: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("SUM({col})"),
            Backend::MySql => format!("CAST(SUM({col}) AS SIGNED)"),
        }
    }

    /// What ends a `SELECT` that must lock the rows it reads against
    /// writers until the transaction ends (SQLite: the writer holds the
    /// whole database already).
    pub fn for_update(self) -> &'static str {
        match self.0 {
            Backend::Sqlite => "",
            Backend::MySql => " FOR UPDATE",
        }
    }

    /// What ends a `SELECT` that must keep the rows it reads from changing
    /// until the transaction ends, while others may read them too.
    pub fn for_share(self) -> &'static str {
        match self.0 {
            Backend::Sqlite => "",
            Backend::MySql => " LOCK IN SHARE MODE",
        }
    }

    /// The migrations of this backend.
    pub fn migrator(self) -> sqlx::migrate::Migrator {
        match self.0 {
            Backend::Sqlite => sqlx::migrate!("../../migrations/sqlite"),
            Backend::MySql => sqlx::migrate!("../../migrations/mysql"),
        }
    }

    /// A trigger named `name` that makes every insert into `table` whose
    /// `col` equals `value` fail with an error. Test support: it lets a test
    /// fail a write part-way. `value` must be a literal without quotes.
    pub fn failing_insert_trigger(self, name: &str, table: &str, col: &str, value: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
                 WHEN NEW.{col} = '{value}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            ),
            Backend::MySql => format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW \
                 IF NEW.{col} = '{value}' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_read_the_new_value_in_each_dialect() {
        let sets = [Set::New("a"), Set::Add("n")];
        assert_eq!(
            Dialect(Backend::Sqlite).upsert("t", &["k"], &sets, &[]),
            " ON CONFLICT(k) DO UPDATE SET a = excluded.a, n = t.n + excluded.n"
        );
        assert_eq!(
            Dialect(Backend::MySql).upsert("t", &["k"], &sets, &["b = 1".into()]),
            " ON DUPLICATE KEY UPDATE a = VALUES(a), n = t.n + VALUES(n), b = 1"
        );
    }
}
