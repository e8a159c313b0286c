//! Desktops and who owns them.

use super::*;

/// A macro rather than a `const`, so that each query is one `&'static str` (`concat!`)
/// and its prepared statement is found in the cache without building the text.
macro_rules! desktop_select {
    () => {
        "SELECT d.id, d.name, d.owner_id, u.name, d.status, d.os_username, d.os_password,
        d.default_connection_type, d.enable_usb, d.enable_clipboard, d.enable_audio, d.created_at, i.name, f.name,
        coalesce(i.guest_agent, 0)
     FROM desktops d JOIN users u ON u.id = d.owner_id
     LEFT JOIN images i ON i.id = d.image_id LEFT JOIN flavors f ON f.id = d.flavor_id
     WHERE d.phase = 'ready'"
    };
}

impl Store {
    // ----- desktops ------------------------------------------------------------

    pub fn insert_desktop(&self, desktop: &NewDesktop<'_>, now: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO desktops (id, name, owner_id, status, os_username, os_password,
                    default_connection_type, enable_usb, enable_clipboard, enable_audio, created_at,
                    image_id, flavor_id, phase)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    desktop.id,
                    desktop.name,
                    desktop.owner_id,
                    desktop.status.as_str(),
                    desktop.os_username,
                    desktop.os_password.expose(),
                    desktop.default_connection_type.as_str(),
                    desktop.policy.enable_usb,
                    desktop.policy.enable_clipboard,
                    desktop.policy.enable_audio,
                    now,
                    desktop.image_id,
                    desktop.flavor_id,
                    desktop.phase.as_str()
                ],
            )?;
            Ok(())
        })
    }

    /// A `Ready` desktop; so are the desktops the listings below return.
    pub fn desktop(&self, id: &str) -> Result<Option<DesktopRecord>> {
        let connection = self.lock();
        connection
            .prepare_cached(concat!(desktop_select!(), " AND d.id = ?1"))?
            .query_row([id], desktop_from_row)
            .optional()?
            .transpose()
    }

    pub fn desktops_of(&self, owner_id: i64) -> Result<Vec<DesktopRecord>> {
        let connection = self.lock();
        let mut statement =
            connection.prepare_cached(concat!(desktop_select!(), " AND d.owner_id = ?1 ORDER BY d.name, d.id"))?;
        let rows = statement.query_map([owner_id], desktop_from_row)?;
        rows.map(|row| row?).collect()
    }

    /// Every desktop, of every owner.
    pub fn all_desktops(&self) -> Result<Vec<DesktopRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(concat!(desktop_select!(), " ORDER BY u.name, d.name, d.id"))?;
        let rows = statement.query_map([], desktop_from_row)?;
        rows.map(|row| row?).collect()
    }

    pub fn set_desktop_status(&self, id: &str, status: DesktopStatus) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute("UPDATE desktops SET status = ?1 WHERE id = ?2", params![status.as_str(), id])? > 0)
        })
    }

    /// Gives the desktop to `owner_id`, with a new OS password when one is given.
    pub fn set_desktop_owner(&self, id: &str, owner_id: i64, os_password: Option<&Secret>) -> Result<bool> {
        self.write(|tx| {
            let changed = match os_password {
                Some(password) => tx.execute(
                    "UPDATE desktops SET owner_id = ?1, os_password = ?2 WHERE id = ?3",
                    params![owner_id, password.expose(), id],
                )?,
                None => tx.execute("UPDATE desktops SET owner_id = ?1 WHERE id = ?2", params![owner_id, id])?,
            };
            Ok(changed > 0)
        })
    }

    /// Every desktop's id and phase, whatever its phase.
    pub fn desktop_phases(&self) -> Result<Vec<(String, Phase)>> {
        super::catalogue::phases(&self.lock(), "desktops")
    }

    /// Moves a desktop from phase `from` to `to`; false if it is not in `from` (or
    /// not there at all).
    pub fn move_desktop(&self, id: &str, from: Phase, to: Phase) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE desktops SET phase = ?1 WHERE id = ?2 AND phase = ?3",
                params![to.as_str(), id, from.as_str()],
            )? > 0)
        })
    }

    /// Deletes a desktop's record, whatever its phase.
    pub fn delete_desktop(&self, id: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM desktops WHERE id = ?1", [id])? > 0))
    }
}

fn desktop_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<DesktopRecord>> {
    let status: String = row.get(4)?;
    let connection_type: String = row.get(7)?;
    let record = (|| {
        Ok(DesktopRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            owner_id: row.get(2)?,
            owner_name: row.get(3)?,
            status: DesktopStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt { column: "desktops.status", value: status.clone() })?,
            os_username: row.get(5)?,
            os_password: Secret::new(row.get::<_, String>(6)?),
            default_connection_type: ConnectionType::parse(&connection_type).ok_or_else(|| StoreError::Corrupt {
                column: "desktops.default_connection_type",
                value: connection_type.clone(),
            })?,
            policy: Policy { enable_usb: row.get(8)?, enable_clipboard: row.get(9)?, enable_audio: row.get(10)? },
            created_at: row.get(11)?,
            image: row.get(12)?,
            flavor: row.get(13)?,
            guest_agent: row.get(14)?,
        })
    })();
    Ok(record)
}
