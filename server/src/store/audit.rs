//! The audit log.

use super::*;

impl Store {
    // ----- audit log -----------------------------------------------------------

    pub fn insert_audit(&self, entry: &NewAudit<'_>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit (at, actor, address, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![entry.at, entry.actor, entry.address, entry.action, entry.target, entry.detail],
            )?;
            Ok(())
        })
    }

    /// Newest first. `action` matches a whole action (`login`) or a dotted prefix
    /// (`terminal` matches `terminal.approve`).
    pub fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, at, actor, address, action, target, detail FROM audit
             WHERE (?1 IS NULL OR actor = ?1)
               AND (?2 IS NULL OR action = ?2 OR action LIKE ?2 || '.%')
               AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at <= ?4)
             ORDER BY at DESC, id DESC LIMIT ?5",
        )?;
        let rows =
            statement.query_map(params![query.actor, query.action, query.since, query.until, query.limit], |row| {
                Ok(AuditRecord {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    actor: row.get(2)?,
                    address: row.get(3)?,
                    action: row.get(4)?,
                    target: row.get(5)?,
                    detail: row.get(6)?,
                })
            })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
