//! Places, the terminals in them, and the server's settings.

use super::*;

/// A macro rather than a `const`, so that each query is one `&'static str` (`concat!`)
/// and its prepared statement is found in the cache without building the text.
macro_rules! terminal_select {
    () => {
        "SELECT t.mac, p.name, t.seat_number, t.state, t.register_mode, t.created_at
     FROM terminals t JOIN places p ON p.id = t.place_id"
    };
}

impl Store {
    // ----- places --------------------------------------------------------------

    pub fn insert_place(&self, name: &str, address: &str) -> Result<()> {
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM places WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::PlaceExists));
            }
            tx.execute("INSERT INTO places (name, address) VALUES (?1, ?2)", params![name, address])?;
            Ok(())
        })
    }

    pub fn places(&self) -> Result<Vec<PlaceRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached("SELECT name, address FROM places ORDER BY name")?;
        let rows = statement.query_map([], |row| Ok(PlaceRecord { name: row.get(0)?, address: row.get(1)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn place_exists(&self, name: &str) -> Result<bool> {
        let connection = self.lock();
        Ok(connection
            .prepare_cached("SELECT 1 FROM places WHERE name = ?1")?
            .query_row([name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Deletes a place. Refused while terminals sit in it.
    pub fn delete_place(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            let terminals: i64 = tx.query_row(
                "SELECT count(*) FROM terminals t JOIN places p ON p.id = t.place_id WHERE p.name = ?1",
                [name],
                |row| row.get(0),
            )?;
            if terminals > 0 {
                return Err(StoreError::InUse(Dependents::Terminals));
            }
            Ok(tx.execute("DELETE FROM places WHERE name = ?1", [name])? > 0)
        })
    }

    // ----- terminals -----------------------------------------------------------

    /// Registers a terminal, checking both uniqueness rules inside one transaction so
    /// that two terminals racing for one seat cannot both get it.
    pub fn insert_terminal(&self, terminal: &NewTerminal<'_>, now: i64) -> Result<()> {
        let mac = terminal.mac.to_string();
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM terminals WHERE mac = ?1", [&mac], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::TerminalExists));
            }
            let place_id: i64 =
                tx.query_row("SELECT id FROM places WHERE name = ?1", [terminal.place], |r| r.get(0))?;
            let seat_taken = tx
                .query_row(
                    "SELECT 1 FROM terminals WHERE place_id = ?1 AND seat_number = ?2",
                    params![place_id, terminal.seat_number],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if seat_taken {
                return Err(StoreError::Conflict(Conflict::SeatTaken));
            }
            tx.execute(
                "INSERT INTO terminals (mac, place_id, seat_number, state, register_mode, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![mac, place_id, terminal.seat_number, terminal.state.as_str(), terminal.register_mode, now],
            )?;
            Ok(())
        })
    }

    pub fn terminal(&self, mac: MacAddress) -> Result<Option<TerminalRecord>> {
        let connection = self.lock();
        connection
            .prepare_cached(concat!(terminal_select!(), " WHERE t.mac = ?1"))?
            .query_row([mac.to_string()], terminal_from_row)
            .optional()?
            .transpose()
    }

    pub fn terminals(&self, state: Option<TerminalState>) -> Result<Vec<TerminalRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(concat!(
            terminal_select!(),
            " WHERE ?1 IS NULL OR t.state = ?1 ORDER BY p.name, t.seat_number"
        ))?;
        let rows = statement.query_map([state.map(TerminalState::as_str)], terminal_from_row)?;
        rows.map(|row| row?).collect()
    }

    pub fn set_terminal_state(&self, mac: MacAddress, state: TerminalState) -> Result<bool> {
        self.write(|tx| {
            Ok(tx
                .execute("UPDATE terminals SET state = ?1 WHERE mac = ?2", params![state.as_str(), mac.to_string()])?
                > 0)
        })
    }

    /// Moves a terminal to another place and seat; false when there is no such
    /// terminal. The seat must be free (or be the terminal's own).
    pub fn move_terminal(&self, mac: MacAddress, place: &str, seat_number: &str) -> Result<bool> {
        let mac = mac.to_string();
        self.write(|tx| {
            let Some(place_id) =
                tx.query_row("SELECT id FROM places WHERE name = ?1", [place], |r| r.get::<_, i64>(0)).optional()?
            else {
                return Err(StoreError::Missing("place"));
            };
            let taken = tx
                .query_row(
                    "SELECT 1 FROM terminals WHERE place_id = ?1 AND seat_number = ?2 AND mac <> ?3",
                    params![place_id, seat_number, mac],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if taken {
                return Err(StoreError::Conflict(Conflict::SeatTaken));
            }
            Ok(tx.execute(
                "UPDATE terminals SET place_id = ?1, seat_number = ?2 WHERE mac = ?3",
                params![place_id, seat_number, mac],
            )? > 0)
        })
    }

    pub fn delete_terminal(&self, mac: MacAddress) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM terminals WHERE mac = ?1", [mac.to_string()])? > 0))
    }

    // ----- settings ------------------------------------------------------------

    pub fn registration_mode(&self) -> Result<RegistrationMode> {
        let connection = self.lock();
        let value: Option<String> = connection
            .query_row("SELECT value FROM settings WHERE key = ?1", [setting::TERMINAL_REGISTRATION_MODE], |r| r.get(0))
            .optional()?;
        match value {
            None => Ok(RegistrationMode::default()),
            Some(text) => RegistrationMode::parse(&text)
                .ok_or(StoreError::Corrupt { column: "settings.terminal_registration_mode", value: text }),
        }
    }

    pub fn set_registration_mode(&self, mode: RegistrationMode) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![setting::TERMINAL_REGISTRATION_MODE, mode.as_str()],
            )?;
            Ok(())
        })
    }
}

/// Rows whose text columns hold values this program does not know are reported as
/// corrupt rather than guessed at.
fn terminal_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TerminalRecord>> {
    let mac: String = row.get(0)?;
    let state: String = row.get(3)?;
    let record = (|| {
        Ok(TerminalRecord {
            mac: mac.parse().map_err(|_| StoreError::Corrupt { column: "terminals.mac", value: mac.clone() })?,
            place: row.get(1)?,
            seat_number: row.get(2)?,
            state: TerminalState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt { column: "terminals.state", value: state.clone() })?,
            register_mode: row.get(4)?,
            created_at: row.get(5)?,
        })
    })();
    Ok(record)
}
