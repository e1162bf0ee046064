//! Tags (Uptime Kuma's `tag` and `monitor_tag`): create, rename, recolour,
//! delete (detached everywhere in the same transaction), the tags of
//! monitors, and setting a monitor's tags inside its write's transaction.

use super::{Db, DbError, Result};
use crate::ids::MonitorId;
use crate::monitor::TagRef;
use crate::now_ms;
use sqlx::Row;
use std::collections::BTreeMap;

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
}

/// A tag on a monitor, with its value there ("" for none).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonitorTag {
    pub tag_id: i64,
    pub name: String,
    pub color: String,
    pub value: String,
}

/// A tag's name: 1 to 64 characters, no control characters, no `:` (it
/// separates name and value in filters).
pub fn check_tag_name(name: &str) -> std::result::Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 64 || name.trim() != name {
        return Err("must be 1 to 64 characters, without surrounding spaces".into());
    }
    if name.chars().any(|c| c.is_control() || c == ':') {
        return Err("must not hold ':' or control characters".into());
    }
    Ok(())
}

/// A colour: `#rgb` or `#rrggbb` (stored lower case, six digits).
pub fn check_tag_color(color: &str) -> std::result::Result<String, String> {
    let hex = color.strip_prefix('#').unwrap_or("");
    let ok = matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err("must be a colour like #2563eb".into());
    }
    let hex = hex.to_ascii_lowercase();
    Ok(if hex.len() == 3 {
        format!("#{}", hex.chars().flat_map(|c| [c, c]).collect::<String>())
    } else {
        format!("#{hex}")
    })
}

fn unique_name(e: sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Database(ref d) if d.is_unique_violation() => DbError::Rejected {
            field: "name",
            msg: "is the name of another tag".into(),
        },
        other => other.into(),
    }
}

impl Db {
    /// Every tag, by name.
    pub async fn tags(&self) -> Result<Vec<Tag>> {
        self.query("SELECT id, name, color FROM tag ORDER BY name, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Tag {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    color: r.try_get("color")?,
                })
            })
            .collect()
    }

    pub async fn tag(&self, id: i64) -> Result<Option<Tag>> {
        Ok(self.tags().await?.into_iter().find(|t| t.id == id))
    }

    /// Creates a tag (name and colour already checked).
    pub async fn create_tag(&self, name: &str, color: &str) -> Result<Tag> {
        let id = in_tx!(self, |c| {
            self.query("INSERT INTO tag (name, color, created_at) VALUES (?, ?, ?)")
                .bind(name)
                .bind(color)
                .bind(now_ms())
                .execute(&mut *c)
                .await
                .map_err(unique_name)?;
            self.last_insert_id(c).await
        })?;
        Ok(Tag {
            id,
            name: name.to_owned(),
            color: color.to_owned(),
        })
    }

    pub async fn update_tag(&self, id: i64, name: &str, color: &str) -> Result<Tag> {
        self.query("UPDATE tag SET name = ?, color = ? WHERE id = ?")
            .bind(name)
            .bind(color)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unique_name)?;
        self.tag(id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("tag {id}")))
    }

    /// Deletes a tag and takes it off every monitor.
    pub async fn delete_tag(&self, id: i64) -> Result<()> {
        in_tx!(self, |c| {
            let n = self
                .query("DELETE FROM tag WHERE id = ?")
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(DbError::NotFound(format!("tag {id}")));
            }
            self.query("DELETE FROM monitor_tag WHERE tag_id = ?")
                .bind(id)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    /// The tags of each monitor in `ids` (every monitor with `None`).
    pub async fn monitor_tags(
        &self,
        ids: Option<&[MonitorId]>,
    ) -> Result<BTreeMap<MonitorId, Vec<MonitorTag>>> {
        let filter = match ids {
            Some([]) => return Ok(BTreeMap::new()),
            Some(ids) => format!(
                " WHERE mt.monitor_id IN ({})",
                ids.iter()
                    .map(|i| i.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => String::new(),
        };
        let mut out: BTreeMap<MonitorId, Vec<MonitorTag>> = BTreeMap::new();
        let sql = format!(
            "SELECT mt.monitor_id, mt.tag_id, mt.value, t.name, t.color \
             FROM monitor_tag mt JOIN tag t ON t.id = mt.tag_id{filter} \
             ORDER BY mt.monitor_id, t.name, mt.value"
        );
        for r in self.query_built(sql).fetch_all(&self.pool).await? {
            out.entry(MonitorId(r.try_get("monitor_id")?))
                .or_default()
                .push(MonitorTag {
                    tag_id: r.try_get("tag_id")?,
                    name: r.try_get("name")?,
                    color: r.try_get("color")?,
                    value: r.try_get("value")?,
                });
        }
        Ok(out)
    }

    /// Replaces the tags of `monitor` inside the caller's transaction; every
    /// tag named must exist (by id or name), else nothing is written.
    pub(crate) async fn set_monitor_tags(
        &self,
        c: &mut sqlx::AnyConnection,
        monitor: MonitorId,
        tags: &[TagRef],
    ) -> Result<()> {
        let mut rows: Vec<(i64, &str)> = Vec::new();
        for t in tags {
            let found = match (&t.id, &t.name) {
                (Some(id), _) => {
                    self.query("SELECT id FROM tag WHERE id = ?")
                        .bind(*id)
                        .fetch_optional(&mut *c)
                        .await?
                }
                (None, Some(name)) => {
                    self.query("SELECT id FROM tag WHERE name = ?")
                        .bind(name.as_str())
                        .fetch_optional(&mut *c)
                        .await?
                }
                (None, None) => None,
            };
            let Some(r) = found else {
                let what = t.id.map_or_else(
                    || format!("'{}'", t.name.as_deref().unwrap_or("")),
                    |i| i.to_string(),
                );
                return Err(DbError::Rejected {
                    field: "tags",
                    msg: format!("unknown tag {what}"),
                });
            };
            let id: i64 = r.try_get("id")?;
            if !rows.contains(&(id, t.value.as_str())) {
                rows.push((id, t.value.as_str()));
            }
        }
        self.query("DELETE FROM monitor_tag WHERE monitor_id = ?")
            .bind(monitor.0)
            .execute(&mut *c)
            .await?;
        for (id, value) in rows {
            self.query("INSERT INTO monitor_tag (monitor_id, tag_id, value) VALUES (?, ?, ?)")
                .bind(monitor.0)
                .bind(id)
                .bind(value)
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_colours_are_checked() {
        assert!(check_tag_name("team").is_ok());
        assert!(check_tag_name("").is_err());
        assert!(check_tag_name("a:b").is_err());
        assert!(check_tag_name(" pad").is_err());
        assert_eq!(check_tag_color("#2563EB").unwrap(), "#2563eb");
        assert_eq!(check_tag_color("#abc").unwrap(), "#aabbcc");
        for bad in ["red", "#12", "#12345g", "2563eb"] {
            assert!(check_tag_color(bad).is_err(), "{bad}");
        }
    }
}
