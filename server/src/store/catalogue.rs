//! The catalogue (images, flavors) and the cloud API's instances made from it.

use super::*;

impl Store {
    // ----- images --------------------------------------------------------------

    pub fn insert_image(&self, image: &NewImage<'_>, now: i64) -> Result<i64> {
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM images WHERE name = ?1", [image.name], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::ImageExists));
            }
            tx.execute(
                "INSERT INTO images
                    (name, base_disk, default_connection_type, os_username, os_password, guest_agent, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    image.name,
                    image.base_disk,
                    image.default_connection_type.as_str(),
                    image.os_username,
                    image.os_password.expose(),
                    image.guest_agent,
                    now
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    pub fn image_by_name(&self, name: &str) -> Result<Option<ImageRecord>> {
        let connection = self.lock();
        connection.query_row(&format!("{IMAGE_SELECT} WHERE name = ?1"), [name], image_from_row).optional()?.transpose()
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!("{IMAGE_SELECT} ORDER BY name"))?;
        let rows = statement.query_map([], image_from_row)?;
        rows.map(|row| row?).collect()
    }

    /// Deletes an image. Refused while a desktop or an instance runs on it: their
    /// overlays need its base disk.
    pub fn delete_image(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            let users: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM desktops d JOIN images i ON i.id = d.image_id WHERE i.name = ?1)
                      + (SELECT count(*) FROM instances n JOIN images i ON i.id = n.image_id WHERE i.name = ?1)",
                [name],
                |row| row.get(0),
            )?;
            if users > 0 {
                return Err(StoreError::InUse(Dependents::Machines));
            }
            Ok(tx.execute("DELETE FROM images WHERE name = ?1", [name])? > 0)
        })
    }

    // ----- flavors -------------------------------------------------------------

    pub fn insert_flavor(&self, flavor: &NewFlavor<'_>) -> Result<i64> {
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM flavors WHERE name = ?1", [flavor.name], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::FlavorExists));
            }
            tx.execute(
                "INSERT INTO flavors (name, vcpus, ram_mib, disk_gib) VALUES (?1, ?2, ?3, ?4)",
                params![flavor.name, flavor.vcpus, flavor.ram_mib, flavor.disk_gib],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    pub fn flavor_by_name(&self, name: &str) -> Result<Option<FlavorRecord>> {
        let connection = self.lock();
        Ok(connection.query_row(&format!("{FLAVOR_SELECT} WHERE name = ?1"), [name], flavor_from_row).optional()?)
    }

    /// Smallest first.
    pub fn flavors(&self) -> Result<Vec<FlavorRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!("{FLAVOR_SELECT} ORDER BY vcpus, ram_mib, disk_gib, name"))?;
        let rows = statement.query_map([], flavor_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a flavor. Refused while a desktop or an instance is of that size.
    pub fn delete_flavor(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            let users: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM desktops d JOIN flavors f ON f.id = d.flavor_id WHERE f.name = ?1)
                      + (SELECT count(*) FROM instances n JOIN flavors f ON f.id = n.flavor_id WHERE f.name = ?1)",
                [name],
                |row| row.get(0),
            )?;
            if users > 0 {
                return Err(StoreError::InUse(Dependents::Machines));
            }
            Ok(tx.execute("DELETE FROM flavors WHERE name = ?1", [name])? > 0)
        })
    }

    // ----- cloud API instances -------------------------------------------------

    pub fn insert_instance(&self, instance: &NewInstance<'_>, now: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO instances (id, name, image_id, flavor_id, internet, created_at, phase)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    instance.id,
                    instance.name,
                    instance.image_id,
                    instance.flavor_id,
                    instance.internet,
                    now,
                    instance.phase.as_str()
                ],
            )?;
            Ok(())
        })
    }

    /// A `Ready` instance.
    pub fn instance(&self, id: &str) -> Result<Option<InstanceRecord>> {
        let connection = self.lock();
        Ok(connection.query_row(&format!("{INSTANCE_SELECT} AND n.id = ?1"), [id], instance_from_row).optional()?)
    }

    /// Every `Ready` instance, oldest first.
    pub fn instances(&self) -> Result<Vec<InstanceRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!("{INSTANCE_SELECT} ORDER BY n.created_at, n.id"))?;
        let rows = statement.query_map([], instance_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every instance's id and phase, whatever its phase.
    pub fn instance_phases(&self) -> Result<Vec<(String, Phase)>> {
        phases(&self.lock(), "instances")
    }

    /// Moves an instance from phase `from` to `to`; false if it is not in `from`
    /// (or not there at all).
    pub fn move_instance(&self, id: &str, from: Phase, to: Phase) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE instances SET phase = ?1 WHERE id = ?2 AND phase = ?3",
                params![to.as_str(), id, from.as_str()],
            )? > 0)
        })
    }

    /// Deletes an instance's record, whatever its phase.
    pub fn delete_instance(&self, id: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM instances WHERE id = ?1", [id])? > 0))
    }
}

/// Every row's id and phase in `table` (`instances` or `desktops`).
pub(super) fn phases(connection: &Connection, table: &'static str) -> Result<Vec<(String, Phase)>> {
    let mut statement = connection.prepare(&format!("SELECT id, phase FROM {table} ORDER BY id"))?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (id, phase) = row?;
        let phase = Phase::parse(&phase).ok_or(StoreError::Corrupt { column: "phase", value: phase })?;
        Ok((id, phase))
    })
    .collect()
}

const IMAGE_SELECT: &str =
    "SELECT id, name, base_disk, default_connection_type, os_username, os_password, created_at, guest_agent
     FROM images";

const FLAVOR_SELECT: &str = "SELECT id, name, vcpus, ram_mib, disk_gib FROM flavors";

const INSTANCE_SELECT: &str = "SELECT n.id, n.name, i.name, f.name, n.internet, n.created_at
     FROM instances n JOIN images i ON i.id = n.image_id JOIN flavors f ON f.id = n.flavor_id
     WHERE n.phase = 'ready'";

fn image_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ImageRecord>> {
    let connection_type: String = row.get(3)?;
    let base_disk: String = row.get(2)?;
    let record = (|| {
        Ok(ImageRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            base_disk: PathBuf::from(base_disk.clone()),
            default_connection_type: ConnectionType::parse(&connection_type).ok_or_else(|| StoreError::Corrupt {
                column: "images.default_connection_type",
                value: connection_type.clone(),
            })?,
            os_username: row.get(4)?,
            os_password: Secret::new(row.get::<_, String>(5)?),
            created_at: row.get(6)?,
            guest_agent: row.get(7)?,
        })
    })();
    Ok(record)
}

fn flavor_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FlavorRecord> {
    Ok(FlavorRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        vcpus: row.get(2)?,
        ram_mib: row.get(3)?,
        disk_gib: row.get(4)?,
    })
}

fn instance_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRecord> {
    Ok(InstanceRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        image: row.get(2)?,
        flavor: row.get(3)?,
        internet: row.get(4)?,
        created_at: row.get(5)?,
    })
}
