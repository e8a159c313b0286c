//! The audit log: who did what, when and from where. Services write it as they act,
//! so the command line, the v1.0 API, the cloud API and the console are all recorded.
//! **No entry ever holds a secret**: no password, token, ticket, key or session id.

use super::{ServiceError, unix_now};
pub use crate::store::AuditRecord;
use crate::store::{AuditQuery, NewAudit, Store};
use std::net::IpAddr;
use std::sync::Arc;

/// Entries one listing returns at most.
pub const MAX_AUDIT_LIMIT: i64 = 1000;
pub const DEFAULT_AUDIT_LIMIT: i64 = 100;

/// Who acts: a user's name (or `cli:USER`, `cloud-api`, `terminal`) and the address
/// the request came from, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub address: Option<IpAddr>,
}

impl Actor {
    pub fn new(name: impl Into<String>, address: Option<IpAddr>) -> Self {
        Self { name: name.into(), address }
    }

    /// The administration command line, named after the operating-system user.
    pub fn cli() -> Self {
        let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
        Self { name: format!("cli:{user}"), address: None }
    }

    /// Work the server does on its own (the demo's set-up, tests' seeding).
    pub fn system() -> Self {
        Self { name: "system".into(), address: None }
    }
}

pub struct Audit {
    store: Arc<Store>,
}

impl Audit {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Writes one entry. The action already happened, so a failure to record it is
    /// logged rather than undoing it.
    pub fn record(&self, actor: &Actor, action: &str, target: &str, detail: &str) {
        let address = actor.address.map(|a| a.to_canonical().to_string()).unwrap_or_default();
        let entry = NewAudit { at: unix_now(), actor: &actor.name, address: &address, action, target, detail };
        if let Err(error) = self.store.insert_audit(&entry) {
            tracing::error!(%error, action, "cannot write the audit log");
        }
    }

    /// Newest first, at most `limit` (1 to 1000, default 100) entries.
    pub fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, ServiceError> {
        let limit = filter.limit.unwrap_or(DEFAULT_AUDIT_LIMIT).clamp(1, MAX_AUDIT_LIMIT);
        let nonempty = |s: &Option<String>| s.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let query = AuditQuery {
            actor: nonempty(&filter.actor),
            action: nonempty(&filter.action),
            since: filter.since,
            until: filter.until,
            limit,
        };
        Ok(self.store.audit(&query)?)
    }
}

/// A listing's filters; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// A whole action (`terminal.approve`) or its first part (`terminal`).
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: Option<i64>,
}

/// Reads `2026-11-24T10:00:00Z`, `2026-11-24` (midnight UTC) or Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    let full = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    if let Ok(t) = time::PrimitiveDateTime::parse(text, &full) {
        return Some(t.assume_utc().unix_timestamp());
    }
    let minutes = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    if let Ok(t) = time::PrimitiveDateTime::parse(text, &minutes) {
        return Some(t.assume_utc().unix_timestamp());
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &day).ok().map(|d| d.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_three_spellings() {
        assert_eq!(parse_time("2016-03-04T21:08:12Z"), Some(1_457_125_692));
        assert_eq!(parse_time("2016-03-04"), Some(1_457_049_600));
        assert_eq!(parse_time("2016-03-04T21:08"), Some(1_457_125_680));
        assert_eq!(parse_time("1457125692"), Some(1_457_125_692));
        assert_eq!(parse_time("yesterday"), None);
    }
}
