//! Places, terminals and how terminals get registered.

use super::audit::{Actor, Audit};
use super::{FieldErrors, Principal, ServiceError, unix_now};
use crate::store::{Conflict, NewTerminal, Store, StoreError, TerminalRecord};
use std::net::IpAddr;
use std::sync::Arc;
use thindesk_shared::terminal::RegistrationRequest;
use thindesk_shared::{MacAddress, Place, RegistrationMode, Terminal, TerminalState};

pub const MAX_SEAT_CHARS: usize = 32;
pub const MAX_PLACE_CHARS: usize = 64;

/// The one mode a registration may name.
pub const AUTH_MODE: &str = "auth";

/// A registration body that passed the checks that need no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub place: String,
    pub seat_number: String,
    pub mac: MacAddress,
    /// `mode: "auth"`: an administrator registers the terminal directly.
    pub by_administrator: bool,
}

impl Registration {
    /// Checks a registration, collecting every field's problem at once so a
    /// terminal's form can show them all beside their fields.
    pub fn check(request: RegistrationRequest) -> Result<Self, ServiceError> {
        let mut errors = FieldErrors::default();
        let place = request.place.trim().to_owned();
        if place.is_empty() {
            errors.add("place", "is required");
        }
        let seat_number = request.seat_number.trim().to_owned();
        if seat_number.is_empty() {
            errors.add("seat_number", "is required");
        } else if seat_number.chars().count() > MAX_SEAT_CHARS || seat_number.chars().any(char::is_control) {
            errors.add("seat_number", format!("must be 1 to {MAX_SEAT_CHARS} printable characters"));
        }
        let mac = if request.mac_address.is_empty() {
            errors.add("mac_address", "is required");
            None
        } else {
            request.mac_address.parse::<MacAddress>().map_err(|e| errors.add("mac_address", e.to_string())).ok()
        };
        let by_administrator = match request.mode.as_deref() {
            None => false,
            Some(AUTH_MODE) => true,
            Some(_) => {
                errors.add("mode", "must be \"auth\" or left out");
                false
            }
        };
        match mac {
            Some(mac) if errors.is_empty() => Ok(Self { place, seat_number, mac, by_administrator }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

pub struct Terminals {
    store: Arc<Store>,
    audit: Audit,
}

impl Terminals {
    pub fn new(store: Arc<Store>) -> Self {
        Self { audit: Audit::new(store.clone()), store }
    }

    pub fn places(&self) -> Result<Vec<Place>, ServiceError> {
        Ok(self.store.places()?.into_iter().map(|p| Place { name: p.name, address: p.address }).collect())
    }

    pub fn lookup(&self, mac: &str) -> Result<Terminal, ServiceError> {
        let mac = parse_mac(mac)?;
        let record = self.store.terminal(mac)?.ok_or(ServiceError::TerminalNotFound)?;
        Ok(to_wire(record))
    }

    /// Registers a terminal. `registrar` must be an administrator when the
    /// registration says `mode: "auth"`; the caller authenticates them first.
    pub fn register(
        &self,
        registration: &Registration,
        registrar: Option<&Principal>,
        address: Option<IpAddr>,
    ) -> Result<TerminalState, ServiceError> {
        let (state, register_mode) = if registration.by_administrator {
            registrar.ok_or(ServiceError::NoCredentials)?.require_admin()?;
            (TerminalState::Approved, AUTH_MODE.to_owned())
        } else {
            let mode = self.store.registration_mode()?;
            (mode.initial_state(), mode.as_str().to_owned())
        };
        if !self.store.place_exists(&registration.place)? {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "place",
                format!("there is no place named {:?}", registration.place),
            )));
        }
        let terminal = NewTerminal {
            mac: registration.mac,
            place: &registration.place,
            seat_number: &registration.seat_number,
            state,
            register_mode: &register_mode,
        };
        match self.store.insert_terminal(&terminal, unix_now()) {
            Ok(()) => {
                let actor = registrar.map_or_else(|| Actor::new("terminal", address), Principal::actor);
                let detail = format!(
                    "place {:?}, seat {:?}, {} ({register_mode})",
                    registration.place,
                    registration.seat_number,
                    state.as_str()
                );
                self.audit.record(&actor, "terminal.register", &registration.mac.to_string(), &detail);
                Ok(state)
            }
            Err(StoreError::Conflict(Conflict::TerminalExists)) => Err(ServiceError::TerminalExists),
            Err(StoreError::Conflict(Conflict::SeatTaken)) => Err(ServiceError::SeatTaken),
            Err(other) => Err(other.into()),
        }
    }

    // ----- administration ------------------------------------------------------

    pub fn add_place(&self, by: &Actor, name: &str, address: &str) -> Result<(), ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_PLACE_CHARS || name.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "name",
                format!("must be 1 to {MAX_PLACE_CHARS} printable characters"),
            )));
        }
        match self.store.insert_place(name, address.trim()) {
            Ok(()) => {
                self.audit.record(by, "place.create", name, address.trim());
                Ok(())
            }
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict(format!("a place named {name:?} exists"))),
            Err(other) => Err(other.into()),
        }
    }

    pub fn delete_place(&self, by: &Actor, name: &str) -> Result<(), ServiceError> {
        match self.store.delete_place(name) {
            Ok(true) => {
                self.audit.record(by, "place.delete", name, "");
                Ok(())
            }
            Ok(false) => Err(ServiceError::NotFound(format!("place {name:?}"))),
            Err(StoreError::InUse(_)) => {
                Err(ServiceError::Conflict("terminals are registered in this place; delete or move them first".into()))
            }
            Err(other) => Err(other.into()),
        }
    }

    pub fn terminals(&self, state: Option<TerminalState>) -> Result<Vec<Terminal>, ServiceError> {
        Ok(self.store.terminals(state)?.into_iter().map(to_wire).collect())
    }

    /// Approves or rejects a terminal (or sets it waiting again).
    pub fn set_state(&self, by: &Actor, mac: &str, state: TerminalState) -> Result<(), ServiceError> {
        let mac = parse_mac(mac)?;
        if !self.store.set_terminal_state(mac, state)? {
            return Err(ServiceError::TerminalNotFound);
        }
        let action = match state {
            TerminalState::Approved => "terminal.approve",
            TerminalState::Rejected => "terminal.reject",
            TerminalState::Waiting => "terminal.wait",
        };
        self.audit.record(by, action, &mac.to_string(), "");
        Ok(())
    }

    /// Moves a terminal to another place and seat; the seat must be free.
    pub fn move_to(&self, by: &Actor, mac: &str, place: &str, seat_number: &str) -> Result<(), ServiceError> {
        let mac = parse_mac(mac)?;
        let (place, seat_number) = (place.trim(), seat_number.trim());
        let mut errors = FieldErrors::default();
        if !self.store.place_exists(place)? {
            errors.add("place", format!("there is no place named {place:?}"));
        }
        if seat_number.is_empty()
            || seat_number.chars().count() > MAX_SEAT_CHARS
            || seat_number.chars().any(char::is_control)
        {
            errors.add("seat_number", format!("must be 1 to {MAX_SEAT_CHARS} printable characters"));
        }
        errors.into_result(())?;
        match self.store.move_terminal(mac, place, seat_number) {
            Ok(true) => {
                self.audit.record(
                    by,
                    "terminal.move",
                    &mac.to_string(),
                    &format!("place {place:?}, seat {seat_number:?}"),
                );
                Ok(())
            }
            Ok(false) => Err(ServiceError::TerminalNotFound),
            Err(StoreError::Conflict(Conflict::SeatTaken)) => Err(ServiceError::SeatTaken),
            Err(StoreError::Missing(_)) => {
                Err(ServiceError::Invalid(FieldErrors::single("place", "there is no such place")))
            }
            Err(other) => Err(other.into()),
        }
    }

    pub fn delete(&self, by: &Actor, mac: &str) -> Result<(), ServiceError> {
        let mac = parse_mac(mac)?;
        if !self.store.delete_terminal(mac)? {
            return Err(ServiceError::TerminalNotFound);
        }
        self.audit.record(by, "terminal.delete", &mac.to_string(), "");
        Ok(())
    }

    pub fn registration_mode(&self) -> Result<RegistrationMode, ServiceError> {
        Ok(self.store.registration_mode()?)
    }

    pub fn set_registration_mode(&self, by: &Actor, mode: RegistrationMode) -> Result<(), ServiceError> {
        self.store.set_registration_mode(mode)?;
        self.audit.record(
            by,
            "setting.set",
            thindesk_shared::admin::Settings::TERMINAL_REGISTRATION_MODE,
            mode.as_str(),
        );
        Ok(())
    }
}

fn parse_mac(text: &str) -> Result<MacAddress, ServiceError> {
    text.parse().map_err(|e: thindesk_shared::MacError| {
        ServiceError::Invalid(FieldErrors::single("mac_address", e.to_string()))
    })
}

fn to_wire(record: TerminalRecord) -> Terminal {
    Terminal {
        place: record.place,
        seat_number: record.seat_number,
        mac_address: record.mac.to_string(),
        state: record.state,
        register_mode: record.register_mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: serde_json::Value) -> RegistrationRequest {
        serde_json::from_value(body).expect("a registration body")
    }

    #[test]
    fn every_field_problem_is_reported_at_once() {
        let body = json!({"place": " ", "seat_number": "", "mac_address": "nope", "mode": "sudo"});
        match Registration::check(request(body)) {
            Err(ServiceError::Invalid(errors)) => {
                let fields: Vec<&str> = errors.0.keys().map(String::as_str).collect();
                assert_eq!(fields, ["mac_address", "mode", "place", "seat_number"]);
            }
            other => panic!("expected field errors, got {other:?}"),
        }
        match Registration::check(request(json!({}))) {
            Err(ServiceError::Invalid(errors)) => {
                let fields: Vec<&str> = errors.0.keys().map(String::as_str).collect();
                assert_eq!(fields, ["mac_address", "place", "seat_number"], "each missing field is named");
            }
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_good_body_is_normalised() {
        let body = json!({"place": " b101 ", "seat_number": 12, "mac_address": "0800200a8c6d", "mode": "auth"});
        let registration = Registration::check(request(body)).expect("valid");
        assert_eq!(registration.place, "b101");
        assert_eq!(registration.seat_number, "12");
        assert_eq!(registration.mac.to_string(), "08:00:20:0A:8C:6D");
        assert!(registration.by_administrator);
    }
}
