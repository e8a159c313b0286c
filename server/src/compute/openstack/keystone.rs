//! A Keystone v3 session: one token, fetched with the cloud's credential, cached and
//! renewed before it expires (or at once when a service answers 401), and the
//! service catalogue that came with it. Every request to Nova, Glance or Neutron goes
//! through [`Session::send`].

use super::OpenStackError;
use super::clouds::{Cloud, Credential, ProjectRef};
use reqwest::Method;
use reqwest::blocking::Client;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;
use thindesk_shared::Secret;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A token with less than this left is renewed before use.
const RENEW_BEFORE: time::Duration = time::Duration::minutes(5);

#[derive(Debug, Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Debug, Deserialize)]
struct TokenInfo {
    expires_at: String,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
    project: Option<ProjectInfo>,
}

#[derive(Debug, Clone, Deserialize)]
struct ProjectInfo {
    id: String,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Debug, Clone, Deserialize)]
struct CatalogEndpoint {
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    expires_at: OffsetDateTime,
    catalog: Vec<CatalogEntry>,
    project: Option<ProjectInfo>,
}

/// What a service answered: its status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T`; `service` names who answered, for the error.
    pub fn json<T: DeserializeOwned>(&self, service: &'static str) -> Result<T, OpenStackError> {
        serde_json::from_slice(&self.body).map_err(|e| OpenStackError::Protocol { service, detail: e.to_string() })
    }

    /// The message an OpenStack error body carries: `{"itemNotFound": {"message":
    /// ...}}` (Nova), `{"NeutronError": {"message": ...}}`, `{"error": {"message":
    /// ...}}` (Keystone), or the text itself.
    pub fn message(&self) -> String {
        if let Ok(Value::Object(outer)) = serde_json::from_slice::<Value>(&self.body) {
            for inner in outer.values() {
                if let Some(message) = inner.get("message").and_then(Value::as_str) {
                    return message.to_owned();
                }
            }
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.is_empty() { "no message".to_owned() } else { text.chars().take(300).collect() }
    }

    /// An error for this (unsuccessful) reply.
    pub fn error(&self, service: &'static str) -> OpenStackError {
        OpenStackError::Api { service, status: self.status, message: self.message() }
    }
}

pub struct Session {
    cloud: Cloud,
    http: Client,
    token: Mutex<Option<Token>>,
}

impl Session {
    /// A session for `cloud`; nothing is asked of Keystone until the first request.
    pub fn new(cloud: Cloud, timeout: Duration) -> Result<Session, OpenStackError> {
        let http = Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OpenStackError::Config(format!("the HTTP client cannot be built: {e}")))?;
        Ok(Session { cloud, http, token: Mutex::new(None) })
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The project the token is scoped to, as `(id, name)`.
    pub fn project(&self) -> Result<(String, String), OpenStackError> {
        let token = self.token(false)?;
        let project =
            token.project.ok_or_else(|| OpenStackError::Auth("the token is not scoped to a project".to_owned()))?;
        Ok((project.id, project.name))
    }

    /// The URL of `service_type`'s endpoint, without a trailing slash.
    pub fn endpoint(&self, service_type: &str) -> Result<String, OpenStackError> {
        let token = self.token(false)?;
        self.endpoint_in(&token, service_type)
    }

    fn endpoint_in(&self, token: &Token, service_type: &str) -> Result<String, OpenStackError> {
        let entry = token.catalog.iter().find(|entry| entry.kind == service_type);
        let endpoint = entry.and_then(|entry| {
            entry.endpoints.iter().find(|endpoint| {
                endpoint.interface == self.cloud.interface
                    && self.cloud.region.as_ref().is_none_or(|region| endpoint.region_id.as_ref() == Some(region))
            })
        });
        match endpoint {
            Some(endpoint) => Ok(endpoint.url.trim_end_matches('/').to_owned()),
            None => Err(OpenStackError::Config(format!(
                "the catalogue of cloud {:?} has no {} endpoint of service type {service_type:?}{}",
                self.cloud.name,
                self.cloud.interface,
                self.cloud.region.as_ref().map(|r| format!(" in region {r}")).unwrap_or_default()
            ))),
        }
    }

    /// Sends a request to `service_type` at `path` (after its endpoint's URL), with
    /// the cached token; a 401 renews the token and sends once more.
    pub fn send(
        &self,
        service_type: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, OpenStackError> {
        let mut renewed = false;
        loop {
            let token = self.token(renewed)?;
            let url = format!("{}{path}", self.endpoint_in(&token, service_type)?);
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("X-Auth-Token", token.value.expose())
                .header("Accept", "application/json");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().map_err(|e| OpenStackError::Unreachable {
                service: service_type,
                url: url.clone(),
                detail: error_chain(&e),
            })?;
            let status = response.status().as_u16();
            let body = response
                .bytes()
                .map_err(|e| OpenStackError::Unreachable { service: service_type, url, detail: error_chain(&e) })?
                .to_vec();
            if status == 401 && !renewed {
                renewed = true;
                continue;
            }
            return Ok(Reply { status, body });
        }
    }

    /// Revokes the cached token at Keystone but keeps it, so that the next request
    /// meets what an expired or revoked token meets (a 401) and must renew it: how the
    /// tests show renewal against a real cloud.
    pub fn revoke_cached_token(&self) -> Result<(), OpenStackError> {
        let token = self.token(false)?;
        let url = format!("{}/auth/tokens", self.cloud.auth_url);
        let response = self
            .http
            .delete(&url)
            .header("X-Auth-Token", token.value.expose())
            .header("X-Subject-Token", token.value.expose())
            .send()
            .map_err(|e| OpenStackError::Unreachable { service: "keystone", url, detail: error_chain(&e) })?;
        let status = response.status().as_u16();
        if status == 204 {
            Ok(())
        } else {
            Err(OpenStackError::Auth(format!("revoking the token: Keystone answered {status}")))
        }
    }

    /// The cached token, or a new one if there is none, it expires within
    /// [`RENEW_BEFORE`] or `renew` says so.
    fn token(&self, renew: bool) -> Result<Token, OpenStackError> {
        let mut cached = self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(token) =
            cached.as_ref().filter(|token| !renew && token.expires_at - OffsetDateTime::now_utc() > RENEW_BEFORE)
        {
            return Ok(token.clone());
        }
        let token = self.authenticate()?;
        *cached = Some(token.clone());
        Ok(token)
    }

    fn authenticate(&self) -> Result<Token, OpenStackError> {
        let identity = match &self.cloud.credential {
            Credential::Password { username, password, user_domain, project } => {
                let scope = match project {
                    ProjectRef::Id(id) => json!({"project": {"id": id}}),
                    ProjectRef::Name { name, domain } => json!({"project": {"name": name, "domain": {"name": domain}}}),
                };
                json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": username, "domain": {"name": user_domain}, "password": password.expose()}}},
                    "scope": scope}})
            }
            Credential::ApplicationCredential { id, secret } => json!({"auth": {"identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.expose()}}}}),
        };
        let url = format!("{}/auth/tokens", self.cloud.auth_url);
        let unreachable = |e: reqwest::Error| OpenStackError::Unreachable {
            service: "keystone",
            url: url.clone(),
            detail: error_chain(&e),
        };
        let response = self.http.post(&url).json(&identity).send().map_err(unreachable)?;
        let status = response.status().as_u16();
        let subject = response.headers().get("X-Subject-Token").and_then(|v| v.to_str().ok()).map(Secret::new);
        let reply = Reply { status, body: response.bytes().map_err(unreachable)?.to_vec() };
        if !reply.is_success() {
            return Err(OpenStackError::Auth(format!(
                "Keystone at {} answered {status}: {}",
                self.cloud.auth_url,
                reply.message()
            )));
        }
        let value =
            subject.ok_or_else(|| OpenStackError::Auth("Keystone's answer carries no X-Subject-Token".to_owned()))?;
        let body: TokenBody = reply.json("keystone")?;
        let expires_at =
            OffsetDateTime::parse(&body.token.expires_at, &Rfc3339).map_err(|e| OpenStackError::Protocol {
                service: "keystone",
                detail: format!("expires_at {:?}: {e}", body.token.expires_at),
            })?;
        tracing::debug!(cloud = %self.cloud.name, %expires_at, "Keystone token issued");
        Ok(Token { value, expires_at, catalog: body.token.catalog, project: body.token.project })
    }
}

/// An error with its sources, which say what actually went wrong (refused, DNS...).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake Keystone and Nova on loopback: tokens that expire `lifetime` after
    /// issue, and a compute endpoint that answers 401 to any token but the newest.
    /// Counts the tokens issued.
    fn fake_cloud(lifetime: time::Duration) -> (Cloud, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let (mut length, mut token) = (0usize, String::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let (name, value) = line.split_once(':').unwrap_or(("", ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "x-auth-token" => token = value.trim().to_owned(),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let newest = format!("token-{}", counter.load(Ordering::SeqCst));
                let (status, headers, body) = if request_line.starts_with("POST /v3/auth/tokens") {
                    let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let expires = (OffsetDateTime::now_utc() + lifetime).format(&Rfc3339).expect("format");
                    let catalog = format!(
                        r#"[{{"type": "compute", "endpoints": [{{"interface": "public", "region_id": "RegionOne", "url": "http://{address}/compute"}}]}}]"#
                    );
                    let body = format!(
                        r#"{{"token": {{"expires_at": "{expires}", "catalog": {catalog}, "project": {{"id": "p", "name": "thindesk"}}}}}}"#
                    );
                    ("201 Created", format!("X-Subject-Token: token-{number}\r\n"), body)
                } else if token == newest {
                    ("200 OK", String::new(), "{}".to_owned())
                } else {
                    ("401 Unauthorized", String::new(), r#"{"error": {"message": "expired"}}"#.to_owned())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let text = format!(
            "clouds:\n  c:\n    auth:\n      auth_url: http://{address}\n      username: u\n      password: p\n      project_name: thindesk\n    region_name: RegionOne\n"
        );
        (Cloud::parse(&text, "c").expect("cloud"), issued)
    }

    fn get(session: &Session) -> u16 {
        session.send("compute", Method::GET, "/servers", None, &[]).expect("sent").status
    }

    #[test]
    fn a_token_is_reused_until_it_nears_its_expiry() {
        let (cloud, issued) = fake_cloud(time::Duration::hours(1));
        let session = Session::new(cloud, Duration::from_secs(10)).expect("session");
        assert_eq!(get(&session), 200);
        assert_eq!(get(&session), 200);
        assert_eq!(issued.load(Ordering::SeqCst), 1, "one token for both requests");
        assert_eq!(session.project().expect("project"), ("p".to_owned(), "thindesk".to_owned()));

        let (cloud, issued) = fake_cloud(time::Duration::minutes(2));
        let session = Session::new(cloud, Duration::from_secs(10)).expect("session");
        assert_eq!(get(&session), 200);
        assert_eq!(get(&session), 200);
        assert_eq!(issued.load(Ordering::SeqCst), 2, "a token with less than 5 minutes left is renewed");
    }

    #[test]
    fn a_401_renews_the_token_and_sends_once_more() {
        let (cloud, issued) = fake_cloud(time::Duration::hours(1));
        let session = Session::new(cloud, Duration::from_secs(10)).expect("session");
        assert_eq!(get(&session), 200);
        // Another token issued elsewhere: the fake cloud now refuses the cached one.
        issued.fetch_add(1, Ordering::SeqCst);
        assert_eq!(get(&session), 200, "renewed after the 401");
        assert_eq!(issued.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn error_bodies_give_their_message() {
        let nova = Reply {
            status: 404,
            body: br#"{"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}"#.to_vec(),
        };
        assert_eq!(nova.message(), "Instance x could not be found.");
        let plain = Reply { status: 502, body: b"Bad Gateway\n".to_vec() };
        assert_eq!(plain.message(), "Bad Gateway");
        let empty = Reply { status: 500, body: Vec::new() };
        assert_eq!(empty.message(), "no message");
    }
}
