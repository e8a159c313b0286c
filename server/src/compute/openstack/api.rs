//! Typed models of the parts of Nova, Glance and Neutron the driver uses, and one
//! function per call. Nova is spoken at its base microversion 2.1, which Zed and
//! every later release accept.

use super::OpenStackError;
use super::keystone::{Reply, Session};
use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const COMPUTE: &str = "compute";
const IMAGE: &str = "image";
const NETWORK: &str = "network";

/// A Nova server, as `GET /servers/{id}` and `/servers/detail` give it.
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    /// Nova's status word: `ACTIVE`, `SHUTOFF`, `BUILD`, `REBOOT`, `HARD_REBOOT`...
    pub status: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// What Nova is doing to the server right now, if anything.
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
    /// Why a server is in ERROR.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Its addresses by network name.
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<Address>>,
    #[serde(default)]
    pub security_groups: Vec<GroupName>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    pub addr: String,
    pub version: u8,
    /// `fixed` or `floating`.
    #[serde(rename = "OS-EXT-IPS:type", default)]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupName {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub code: Option<u16>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct ServerBody {
    server: Server,
}

#[derive(Debug, Deserialize)]
struct CreatedBody {
    server: Created,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ServersPage {
    servers: Vec<Server>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    /// MiB.
    pub ram: u32,
    pub vcpus: u32,
    /// GiB of root disk.
    pub disk: u32,
}

#[derive(Debug, Deserialize)]
struct FlavorsPage {
    flavors: Vec<Flavor>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    /// Glance v2 gives an image's own properties (`os_admin_user`,
    /// `hw_qemu_guest_agent`...) beside its fields.
    #[serde(flatten)]
    pub properties: BTreeMap<String, Value>,
}

impl Image {
    /// A property as text (Glance keeps them as strings).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(Value::as_str)
    }
}

#[derive(Debug, Deserialize)]
struct ImagesPage {
    images: Vec<Image>,
    /// The next page's path, when there is one.
    #[serde(default)]
    next: Option<String>,
}

/// Pages a listing may have at the most: a bound on what a cloud can make the server
/// read (200 a page).
const MAX_PAGES: usize = 50;

#[derive(Debug, Clone, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
struct NetworksPage {
    networks: Vec<Network>,
}

/// What a new server is made of.
#[derive(Debug, Clone)]
pub struct NewServer<'a> {
    pub name: &'a str,
    pub image_id: &'a str,
    pub flavor_id: &'a str,
    pub network_id: &'a str,
    /// Security groups by name; empty: the project's `default`.
    pub security_groups: &'a [String],
    pub metadata: BTreeMap<String, String>,
    /// Given to the guest on a config drive (`openstack/latest/user_data`): a
    /// guest that cannot reach a metadata service (an isolated one) still reads it.
    pub user_data: Option<&'a [u8]>,
}

fn expect_success(reply: Reply, service: &'static str) -> Result<Reply, OpenStackError> {
    if reply.is_success() { Ok(reply) } else { Err(reply.error(service)) }
}

/// Percent-encodes a query value.
fn query(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `GET /servers/{id}`; `None` when Nova has no such server.
pub fn server(session: &Session, id: &str) -> Result<Option<Server>, OpenStackError> {
    let reply = session.send(COMPUTE, Method::GET, &format!("/servers/{}", query(id)), None, &[])?;
    if reply.status == 404 {
        return Ok(None);
    }
    Ok(Some(expect_success(reply, COMPUTE)?.json::<ServerBody>(COMPUTE)?.server))
}

/// Every server of the project whose name matches the regular expression
/// `name_pattern` (Nova's `name` filter), following the pages.
pub fn servers(session: &Session, name_pattern: &str) -> Result<Vec<Server>, OpenStackError> {
    let mut all: Vec<Server> = Vec::new();
    loop {
        let mut path = format!("/servers/detail?limit=200&name={}", query(name_pattern));
        if let Some(last) = all.last() {
            path.push_str(&format!("&marker={}", query(&last.id)));
        }
        let page: ServersPage =
            expect_success(session.send(COMPUTE, Method::GET, &path, None, &[])?, COMPUTE)?.json(COMPUTE)?;
        let full = page.servers.len() == 200;
        all.extend(page.servers);
        if !full {
            return Ok(all);
        }
    }
}

/// `POST /servers`: the new server's id (it is in BUILD).
pub fn create_server(session: &Session, new: &NewServer<'_>) -> Result<String, OpenStackError> {
    let body = json!({"server": server_body(new)});
    let reply = session.send(COMPUTE, Method::POST, "/servers", Some(&body), &[])?;
    Ok(expect_success(reply, COMPUTE)?.json::<CreatedBody>(COMPUTE)?.server.id)
}

fn server_body(new: &NewServer<'_>) -> Value {
    let mut server = json!({
        "name": new.name,
        "imageRef": new.image_id,
        "flavorRef": new.flavor_id,
        "networks": [{"uuid": new.network_id}],
        "metadata": new.metadata,
    });
    if !new.security_groups.is_empty() {
        server["security_groups"] = new.security_groups.iter().map(|name| json!({"name": name})).collect();
    }
    if let Some(user_data) = new.user_data {
        server["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(user_data));
        server["config_drive"] = json!(true);
    }
    server
}

/// `DELETE /servers/{id}`; `false` when there was no such server.
pub fn delete_server(session: &Session, id: &str) -> Result<bool, OpenStackError> {
    let reply = session.send(COMPUTE, Method::DELETE, &format!("/servers/{}", query(id)), None, &[])?;
    if reply.status == 404 {
        return Ok(false);
    }
    expect_success(reply, COMPUTE)?;
    Ok(true)
}

/// A server action (`POST /servers/{id}/action`): `{"os-start": null}`,
/// `{"reboot": {"type": "SOFT"}}`...; `false` when there was no such server.
pub fn action(session: &Session, id: &str, body: &Value) -> Result<bool, OpenStackError> {
    let reply = session.send(COMPUTE, Method::POST, &format!("/servers/{}/action", query(id)), Some(body), &[])?;
    if reply.status == 404 {
        return Ok(false);
    }
    expect_success(reply, COMPUTE)?;
    Ok(true)
}

#[derive(Debug, Deserialize)]
struct ConsoleOutputBody {
    output: String,
}

/// The last `lines` lines of the server's serial console log
/// (`{"os-getConsoleOutput": {"length": N}}`); `None` when there is no such server.
/// Only of a running server: for a stopped one nova-compute (Zed, libvirt) reads
/// the stale pty its inactive domain names and never answers.
pub fn console_output(session: &Session, id: &str, lines: u32) -> Result<Option<String>, OpenStackError> {
    let body = json!({"os-getConsoleOutput": {"length": lines}});
    let reply = session.send(COMPUTE, Method::POST, &format!("/servers/{}/action", query(id)), Some(&body), &[])?;
    if reply.status == 404 {
        return Ok(None);
    }
    Ok(Some(expect_success(reply, COMPUTE)?.json::<ConsoleOutputBody>(COMPUTE)?.output))
}

#[derive(Debug, Deserialize)]
struct RemoteConsoleBody {
    remote_console: RemoteConsole,
}

/// A console of a server, reached through a proxy of the cloud's.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteConsole {
    pub protocol: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// For `spice-html5`: the proxy's page with `?token=...`, the one-time key that
    /// the proxy's websocket (`ws://HOST:PORT/?token=...`) accepts too.
    pub url: String,
}

/// `POST /servers/{id}/remote-consoles` (microversion 2.6) for a `spice-html5`
/// console; `None` when there is no such server.
pub fn spice_html5_console(session: &Session, id: &str) -> Result<Option<RemoteConsole>, OpenStackError> {
    let body = json!({"remote_console": {"protocol": "spice", "type": "spice-html5"}});
    let reply = session.send(
        COMPUTE,
        Method::POST,
        &format!("/servers/{}/remote-consoles", query(id)),
        Some(&body),
        &[("OpenStack-API-Version", "compute 2.6"), ("X-OpenStack-Nova-API-Version", "2.6")],
    )?;
    if reply.status == 404 {
        return Ok(None);
    }
    Ok(Some(expect_success(reply, COMPUTE)?.json::<RemoteConsoleBody>(COMPUTE)?.remote_console))
}

/// Whether Nova makes `spice-direct` consoles (microversion 2.99). Clouds before it
/// (Zed among them) refuse the microversion: 406, or 400 from some proxies in front.
pub fn spice_direct_offered(session: &Session, id: &str) -> Result<bool, OpenStackError> {
    let body = json!({"remote_console": {"protocol": "spice", "type": "spice-direct"}});
    let reply = session.send(
        COMPUTE,
        Method::POST,
        &format!("/servers/{}/remote-consoles", query(id)),
        Some(&body),
        &[("OpenStack-API-Version", "compute 2.99"), ("X-OpenStack-Nova-API-Version", "2.99")],
    )?;
    match reply.status {
        406 | 400 | 404 => Ok(false),
        _ => Ok(expect_success(reply, COMPUTE).is_ok()),
    }
}

/// Every flavor the project may use.
pub fn flavors(session: &Session) -> Result<Vec<Flavor>, OpenStackError> {
    let reply = session.send(COMPUTE, Method::GET, "/flavors/detail", None, &[])?;
    Ok(expect_success(reply, COMPUTE)?.json::<FlavorsPage>(COMPUTE)?.flavors)
}

/// Glance's images named `name` (any visibility the project sees).
pub fn images_named(session: &Session, name: &str) -> Result<Vec<Image>, OpenStackError> {
    let reply = session.send(IMAGE, Method::GET, &format!("/v2/images?name={}", query(name)), None, &[])?;
    Ok(expect_success(reply, IMAGE)?.json::<ImagesPage>(IMAGE)?.images)
}

/// Every active image the project sees, following Glance's pages.
pub fn images(session: &Session) -> Result<Vec<Image>, OpenStackError> {
    let mut all = Vec::new();
    let mut path = "/v2/images?status=active&limit=200".to_owned();
    for _ in 0..MAX_PAGES {
        let page: ImagesPage =
            expect_success(session.send(IMAGE, Method::GET, &path, None, &[])?, IMAGE)?.json(IMAGE)?;
        all.extend(page.images);
        match page.next {
            Some(next) if next.starts_with("/v2/images?") => path = next,
            _ => return Ok(all),
        }
    }
    Err(OpenStackError::Protocol { service: IMAGE, detail: format!("more than {MAX_PAGES} pages of images") })
}

/// One action Nova recorded on a server (`os-instance-actions`).
#[derive(Debug, Clone, Deserialize)]
pub struct InstanceAction {
    pub action: String,
    /// `Error` when it failed; none when it succeeded or is under way.
    #[serde(default)]
    pub message: Option<String>,
}

/// The actions Nova recorded on server `id`, newest first.
pub fn instance_actions(session: &Session, id: &str) -> Result<Vec<InstanceAction>, OpenStackError> {
    #[derive(Deserialize)]
    struct Actions {
        #[serde(rename = "instanceActions")]
        actions: Vec<InstanceAction>,
    }
    let path = format!("/servers/{}/os-instance-actions", query(id));
    let reply = session.send(COMPUTE, Method::GET, &path, None, &[])?;
    Ok(expect_success(reply, COMPUTE)?.json::<Actions>(COMPUTE)?.actions)
}

/// `changePassword`: Nova sets the password of the image's `os_admin_user` through
/// the guest agent, and answers only once it has (409 while the agent does not).
pub fn change_password(session: &Session, id: &str, password: &str) -> Result<bool, OpenStackError> {
    let body = json!({"changePassword": {"adminPass": password}});
    let reply = session.send(COMPUTE, Method::POST, &format!("/servers/{}/action", query(id)), Some(&body), &[])?;
    if reply.status == 404 {
        return Ok(false);
    }
    expect_success(reply, COMPUTE)?;
    Ok(true)
}

/// Neutron's networks named `name` that the project sees.
pub fn networks_named(session: &Session, name: &str) -> Result<Vec<Network>, OpenStackError> {
    let reply = session.send(NETWORK, Method::GET, &format!("/v2.0/networks?name={}", query(name)), None, &[])?;
    Ok(expect_success(reply, NETWORK)?.json::<NetworksPage>(NETWORK)?.networks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query("^thindesk-a_b$"), "%5Ethindesk-a_b%24");
        assert_eq!(query("m1.small"), "m1.small");
    }

    #[test]
    fn user_data_goes_on_a_config_drive() {
        let mut new = NewServer {
            name: "thindesk-x",
            image_id: "i",
            flavor_id: "f",
            network_id: "n",
            security_groups: &[],
            metadata: BTreeMap::new(),
            user_data: None,
        };
        let plain = server_body(&new);
        assert!(plain.get("user_data").is_none() && plain.get("config_drive").is_none());
        new.user_data = Some(b"thindesk.targets=a=1.2.3.4:80:none\n");
        let body = server_body(&new);
        assert_eq!(body["config_drive"], json!(true));
        assert_eq!(body["user_data"], json!("dGhpbmRlc2sudGFyZ2V0cz1hPTEuMi4zLjQ6ODA6bm9uZQo="));
    }

    #[test]
    fn a_server_in_error_is_read_with_its_fault() {
        let body = br#"{"server": {"id": "u", "name": "thindesk-x", "status": "ERROR",
            "metadata": {"thindesk_id": "x"}, "OS-EXT-STS:task_state": null,
            "fault": {"code": 500, "message": "No valid host was found. ", "created": "2026-12-02T00:00:00Z"}}}"#;
        let reply = Reply { status: 200, body: body.to_vec() };
        let server = reply.json::<ServerBody>(COMPUTE).expect("parses").server;
        assert_eq!(server.status, "ERROR");
        assert_eq!(server.metadata.get("thindesk_id").map(String::as_str), Some("x"));
        assert_eq!(server.fault.map(|f| f.message), Some("No valid host was found. ".to_owned()));
    }
}
