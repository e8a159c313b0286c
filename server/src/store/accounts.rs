//! Users, their tokens and console sessions.

use super::*;

impl Store {
    // ----- users ---------------------------------------------------------------

    pub fn insert_user(&self, name: &str, password_hash: &str, is_admin: bool, now: i64) -> Result<i64> {
        self.write(|tx| insert_user_in(tx, name, password_hash, is_admin, now))
    }

    /// Inserts every user or none: one name that exists refuses the whole batch.
    pub fn insert_users(&self, users: &[(String, String, bool)], now: i64) -> Result<()> {
        self.write(|tx| {
            for (name, password_hash, is_admin) in users {
                insert_user_in(tx, name, password_hash, *is_admin, now)?;
            }
            Ok(())
        })
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let connection = self.lock();
        Ok(connection
            .prepare_cached("SELECT id, name, password_hash, is_admin, created_at FROM users WHERE name = ?1")?
            .query_row([name], user_from_row)
            .optional()?)
    }

    pub fn users(&self) -> Result<Vec<UserRecord>> {
        let connection = self.lock();
        let mut statement =
            connection.prepare("SELECT id, name, password_hash, is_admin, created_at FROM users ORDER BY name")?;
        let rows = statement.query_map([], user_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets a new password hash and drops every token of the user except `keep_token`,
    /// and every console session of theirs.
    /// Returns false when there is no such user.
    pub fn set_password(&self, user_id: i64, password_hash: &str, keep_token: Option<&str>) -> Result<bool> {
        self.write_revoking(|tx| {
            let changed =
                tx.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![password_hash, user_id])?;
            if changed == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM tokens WHERE user_id = ?1 AND hash IS NOT ?2", params![user_id, keep_token])?;
            // Whoever knew the old password may have a console open: that ends too.
            tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user_id])?;
            Ok(true)
        })
    }

    pub fn set_admin(&self, user_id: i64, is_admin: bool) -> Result<bool> {
        self.write_revoking(|tx| {
            Ok(tx.execute("UPDATE users SET is_admin = ?1 WHERE id = ?2", params![is_admin, user_id])? > 0)
        })
    }

    /// Deletes a user and their tokens. Refused while the user owns desktops, so that no
    /// running machine is orphaned.
    pub fn delete_user(&self, user_id: i64) -> Result<bool> {
        self.write_revoking(|tx| {
            let desktops: i64 =
                tx.query_row("SELECT count(*) FROM desktops WHERE owner_id = ?1", [user_id], |row| row.get(0))?;
            if desktops > 0 {
                return Err(StoreError::InUse(Dependents::Desktops));
            }
            Ok(tx.execute("DELETE FROM users WHERE id = ?1", [user_id])? > 0)
        })
    }

    // ----- tokens --------------------------------------------------------------

    /// Stores a token's hash, and forgets tokens that have expired.
    pub fn insert_token(&self, hash: &str, user_id: i64, issued_at: i64, expires_at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM tokens WHERE expires_at <= ?1", [issued_at])?;
            tx.execute(
                "INSERT INTO tokens (hash, user_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![hash, user_id, issued_at, expires_at],
            )?;
            Ok(())
        })
    }

    /// Revokes one token; false when there was none with this hash.
    pub fn delete_token(&self, hash: &str) -> Result<bool> {
        self.write_revoking(|tx| Ok(tx.execute("DELETE FROM tokens WHERE hash = ?1", [hash])? > 0))
    }

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let connection = self.lock();
        Ok(connection
            .prepare_cached(
                "SELECT u.id, u.name, u.password_hash, u.is_admin, u.created_at, t.issued_at, t.expires_at
                 FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
            )?
            .query_row([hash], |row| {
                Ok(TokenRecord { user: user_from_row(row)?, issued_at: row.get(5)?, expires_at: row.get(6)? })
            })
            .optional()?)
    }

    // ----- console sessions ----------------------------------------------------

    /// Stores a console session by the hash of its id, and forgets expired ones.
    pub fn insert_console_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM console_sessions WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "INSERT INTO console_sessions (hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, user_id, csrf, now, expires_at],
            )?;
            Ok(())
        })
    }

    /// The session's user, its CSRF token and when it expires.
    pub fn console_session(&self, hash: &str) -> Result<Option<(UserRecord, String, i64)>> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                "SELECT u.id, u.name, u.password_hash, u.is_admin, u.created_at, s.csrf, s.expires_at
                 FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?1",
                [hash],
                |row| Ok((user_from_row(row)?, row.get(5)?, row.get(6)?)),
            )
            .optional()?)
    }

    pub fn delete_console_session(&self, hash: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM console_sessions WHERE hash = ?1", [hash])? > 0))
    }
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        password_hash: row.get(2)?,
        is_admin: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// One user, inside the caller's transaction; refused when the name is taken.
fn insert_user_in(tx: &rusqlite::Transaction<'_>, name: &str, hash: &str, is_admin: bool, now: i64) -> Result<i64> {
    if tx.query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some() {
        return Err(StoreError::Conflict(Conflict::UserExists));
    }
    tx.execute(
        "INSERT INTO users (name, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, hash, is_admin, now],
    )?;
    Ok(tx.last_insert_rowid())
}
