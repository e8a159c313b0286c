//! Opening a desktop in a remote-display viewer.
//!
//! **Secrets (the SPICE ticket, the desktop's OS password) go to the viewer on its
//! standard input only: never in its command line (which every user of the machine
//! can read) and never in a file left behind.** SPICE: `remote-viewer -` reads the
//! `.vv` file from stdin (checked with virt-viewer 11). RDP: `xfreerdp /from-stdin:force`
//! reads the user name, domain and password from stdin.
//!
//! **SPICE runs over TLS only.** A display that gives `tls_port` gets a `.vv` with
//! `tls-port` and no plain `port`, `secure-channels=all`, the authority to trust
//! (`ca`) and the certificate's subject (`host-subject`), so the viewer checks the
//! display's certificate against them and opens no channel in the clear.
//!
//! **RDP certificates: trust on first use, recorded per desktop, never ignored.** The
//! server cannot learn the certificate a guest's RDP service presents (it never
//! connects to its own host), and a desktop's forwarded port is another desktop's
//! later, so FreeRDP's one `known_hosts2` keyed by host and port would mix desktops
//! up. Each desktop gets a directory of its own on the terminal
//! ([`rdp_records_dir`]`/<desktop id>`, 0700) and xfreerdp runs with
//! `XDG_CONFIG_HOME` pointing there: FreeRDP 2 keeps its certificate records in
//! `$XDG_CONFIG_HOME/freerdp/known_hosts2` (checked with 2.11.7). `/cert:tofu,deny`
//! accepts and records the first certificate without a prompt and refuses a changed
//! one: xfreerdp then exits with 143 (`XF_EXIT_TLS_CONNECT_FAILED`) and says "REMOTE
//! HOST IDENTIFICATION HAS CHANGED" on stderr, which [`Viewer::wait`] tells apart.
//!
//! The programs are configurable ([`ViewerPrograms`]), which is also how tests put a
//! recording stand-in in their place.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use thindesk_shared::{ConnectionInfo, ConnectionType, Desktop};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewerPrograms {
    pub spice: String,
    pub rdp: String,
    /// Where RDP certificates are recorded, one directory per desktop; absent:
    /// [`rdp_records_dir`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdp_records: Option<PathBuf>,
}

impl Default for ViewerPrograms {
    fn default() -> Self {
        Self { spice: "remote-viewer".into(), rdp: "xfreerdp".into(), rdp_records: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewerError {
    #[error("the desktop has no display to connect to")]
    NoDisplay,
    #[error("{0} is not installed")]
    Missing(String),
    #[error("{0}")]
    Failed(String),
}

/// A viewer to start: the command line holds no secret, `stdin` does.
#[derive(Clone, PartialEq, Eq)]
pub struct Launch {
    pub kind: ConnectionType,
    pub program: String,
    pub args: Vec<String>,
    pub stdin: String,
    /// Variables set for the viewer only.
    pub env: Vec<(String, String)>,
    /// RDP: the desktop's own directory of certificate records, made (0700) before
    /// the start.
    pub records: Option<PathBuf>,
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("stdin", &"***")
            .finish()
    }
}

/// The connection to use: the desktop's default type if it has one, else any.
pub fn pick_connection(desktop: &Desktop) -> Option<&ConnectionInfo> {
    let usable = |c: &&ConnectionInfo| match c.kind {
        ConnectionType::Spice => c.port.is_some() || c.tls_port.is_some(),
        ConnectionType::Rdp => true,
    };
    let info = &desktop.connection_info;
    info.iter()
        .filter(usable)
        .find(|c| c.kind == desktop.default_connection_type)
        .or_else(|| info.iter().find(|c| usable(c) && c.kind == ConnectionType::Spice))
        .or_else(|| info.iter().find(usable))
}

/// Where RDP certificate records are kept: `$XDG_STATE_HOME/thindesk/rdp` or
/// `~/.local/state/thindesk/rdp`.
pub fn rdp_records_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))?;
    Some(base.join("thindesk").join("rdp"))
}

/// The directory of `desktop_id`'s records under `records`: the id itself where it
/// is a plain name, else its bytes in hex (no id can reach outside `records`).
pub fn desktop_records(records: &Path, desktop_id: &str) -> PathBuf {
    let plain = !desktop_id.is_empty()
        && !desktop_id.starts_with('.')
        && desktop_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    let name = if plain {
        desktop_id.to_owned()
    } else {
        let hex: String = desktop_id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}")
    };
    records.join(name)
}

/// What to start to open `desktop`. `fullscreen` for kiosk terminals. RDP
/// certificates are recorded under `programs.rdp_records`, else [`rdp_records_dir`].
pub fn plan(desktop: &Desktop, programs: &ViewerPrograms, fullscreen: bool) -> Result<Launch, ViewerError> {
    let records = programs.rdp_records.clone().or_else(rdp_records_dir);
    plan_with_records(desktop, programs, fullscreen, records.as_deref())
}

/// [`plan`] with RDP certificate records under `records`.
pub fn plan_with_records(
    desktop: &Desktop,
    programs: &ViewerPrograms,
    fullscreen: bool,
    records: Option<&Path>,
) -> Result<Launch, ViewerError> {
    let connection = pick_connection(desktop).ok_or(ViewerError::NoDisplay)?;
    Ok(match connection.kind {
        ConnectionType::Spice => {
            let mut args = Vec::new();
            if fullscreen {
                args.extend(["--kiosk".to_owned(), "--kiosk-quit=on-disconnect".to_owned()]);
            }
            args.push("-".to_owned());
            Launch {
                kind: ConnectionType::Spice,
                program: programs.spice.clone(),
                args,
                stdin: vv_file(desktop, connection, fullscreen, false),
                env: Vec::new(),
                records: None,
            }
        }
        ConnectionType::Rdp => {
            let policy = desktop.policy;
            let records = records.ok_or_else(|| {
                ViewerError::Failed("no state directory for RDP certificates (HOME is not set)".into())
            })?;
            let records = desktop_records(records, &desktop.id);
            let mut args = vec![
                format!("/v:{}", rdp_address(connection)),
                format!("/t:{}", desktop.name),
                "/from-stdin:force".to_owned(),
                // The first certificate is recorded, a changed one refused: never ignored.
                "/cert:tofu,deny".to_owned(),
                if policy.enable_clipboard { "+clipboard" } else { "-clipboard" }.to_owned(),
            ];
            if policy.enable_audio {
                args.push("/sound".to_owned());
            }
            if policy.enable_usb {
                args.push("/usb:auto".to_owned());
            }
            if fullscreen {
                args.push("/f".to_owned());
            }
            // The prompts /from-stdin answers, in FreeRDP's order: user, domain, password.
            let stdin = format!("{}\n\n{}\n", desktop.os_username, desktop.os_password);
            let env = vec![("XDG_CONFIG_HOME".to_owned(), records.display().to_string())];
            Launch {
                kind: ConnectionType::Rdp,
                program: programs.rdp.clone(),
                args,
                stdin,
                env,
                records: Some(records),
            }
        }
    })
}

fn rdp_address(connection: &ConnectionInfo) -> String {
    match &connection.port {
        Some(port) => format!("{}:{port}", connection.ip),
        None => connection.ip.clone(),
    }
}

/// A virt-viewer connection file. The desktop's policy maps to its keys: USB
/// redirection and auto-share, audio (the playback and record channels). SPICE's
/// clipboard has no `.vv` key in virt-viewer 11; the server enforces it on the display.
/// `for_saving`: a file the user keeps, which must not delete itself.
pub fn vv_file(desktop: &Desktop, connection: &ConnectionInfo, fullscreen: bool, for_saving: bool) -> String {
    let policy = desktop.policy;
    let flag = |on: bool| if on { "1" } else { "0" };
    let mut lines = vec!["[virt-viewer]".to_owned(), "type=spice".to_owned(), format!("host={}", connection.ip)];
    match &connection.tls_port {
        Some(tls_port) => {
            lines.push(format!("tls-port={tls_port}"));
            lines.push(format!("secure-channels={}", connection.secure_channels.as_deref().unwrap_or("all")));
            if let Some(ca) = &connection.ca {
                lines.push(format!("ca={}", key_file_value(ca)));
            }
            if let Some(subject) = &connection.host_subject {
                lines.push(format!("host-subject={}", key_file_value(subject)));
            }
        }
        None => lines.push(format!("port={}", connection.port.as_deref().unwrap_or_default())),
    }
    lines.extend([
        format!("title={}", desktop.name.replace(['\n', '\r'], " ")),
        format!("enable-usbredir={}", flag(policy.enable_usb)),
        format!("enable-usb-autoshare={}", flag(policy.enable_usb)),
        "enable-smartcard=0".to_owned(),
        // Thin terminals: spare the wallpaper and animations.
        "disable-effects=wallpaper;animation".to_owned(),
        "secure-attention=ctrl+alt+end".to_owned(),
        "release-cursor=shift+f12".to_owned(),
        format!("fullscreen={}", flag(fullscreen)),
        format!("delete-this-file={}", flag(!for_saving)),
    ]);
    if !policy.enable_audio {
        lines.push("disable-channels=playback;record".to_owned());
    }
    if let Some(password) = &connection.password {
        lines.push(format!("password={password}"));
    }
    lines.join("\n") + "\n"
}

/// A value as a GLib key file (`.vv`) reads it back: backslashes and line breaks
/// escaped (a PEM's newlines become a literal `\n`), a leading space kept.
fn key_file_value(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t");
    match escaped.strip_prefix(' ') {
        Some(rest) => format!("\\s{rest}"),
        None => escaped,
    }
}

/// A `.rdp` file for use elsewhere. The password cannot be written portably into an
/// `.rdp` file, so the viewer will ask for it.
pub fn rdp_file(desktop: &Desktop, connection: &ConnectionInfo) -> String {
    let policy = desktop.policy;
    let flag = |on: bool| if on { "1" } else { "0" };
    [
        format!("full address:s:{}", rdp_address(connection)),
        format!("username:s:{}", desktop.os_username),
        format!("redirectclipboard:i:{}", flag(policy.enable_clipboard)),
        format!("audiomode:i:{}", if policy.enable_audio { "0" } else { "2" }),
        format!("usbdevicestoredirect:s:{}", if policy.enable_usb { "*" } else { "" }),
        "prompt for credentials:i:1".to_owned(),
    ]
    .join("\r\n")
        + "\r\n"
}

/// The connection file to save for `desktop`: its extension and content.
pub fn connection_file(desktop: &Desktop) -> Result<(&'static str, String), ViewerError> {
    let connection = pick_connection(desktop).ok_or(ViewerError::NoDisplay)?;
    Ok(match connection.kind {
        ConnectionType::Spice => ("vv", vv_file(desktop, connection, false, true)),
        ConnectionType::Rdp => ("rdp", rdp_file(desktop, connection)),
    })
}

/// A running viewer.
pub struct Viewer {
    pub child: tokio::process::Child,
    /// Its stderr, read to its end as it runs: the first [`STDERR_KEPT`] bytes.
    stderr: Option<tokio::task::JoinHandle<String>>,
}

/// How a viewer ended.
#[derive(Debug)]
pub struct Exit {
    pub status: std::io::Result<std::process::ExitStatus>,
    /// What it said on stderr (its first [`STDERR_KEPT`] bytes): it tells a lost
    /// connection from a closed window.
    pub stderr: String,
    /// xfreerdp refused the desktop: its certificate is not the one recorded.
    pub certificate_changed: bool,
}

/// How much of a viewer's stderr is kept; the rest is read and dropped.
pub const STDERR_KEPT: u64 = 64 * 1024;

/// xfreerdp 2's exit code when the TLS connection failed (`XF_EXIT_TLS_CONNECT_FAILED`).
const XFREERDP_TLS_CONNECT_FAILED: i32 = 143;
/// What xfreerdp 2 writes on stderr when the certificate differs from the record.
const CERTIFICATE_CHANGED_SAYS: &str = "REMOTE HOST IDENTIFICATION HAS CHANGED";

impl Viewer {
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the viewer to end.
    pub async fn wait(&mut self) -> Exit {
        let status = self.child.wait().await;
        // A process the viewer left behind may hold its stderr open: what was said by
        // then is enough.
        let stderr = match self.stderr.take() {
            Some(reader) => {
                tokio::time::timeout(Duration::from_secs(1), reader).await.ok().and_then(Result::ok).unwrap_or_default()
            }
            None => String::new(),
        };
        let certificate_changed = stderr.contains(CERTIFICATE_CHANGED_SAYS)
            && status.as_ref().is_ok_and(|status| status.code() == Some(XFREERDP_TLS_CONNECT_FAILED));
        Exit { status, stderr, certificate_changed }
    }
}

/// Makes `dir` and its missing parents, each readable by this user only.
fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Starts the viewer and hands it its secrets on stdin. Returns the running process.
pub async fn start(launch: &Launch) -> Result<Viewer, ViewerError> {
    if let Some(records) = &launch.records {
        make_private_dir(records).map_err(|e| ViewerError::Failed(format!("{}: {e}", records.display())))?;
    }
    let mut child = tokio::process::Command::new(&launch.program)
        .args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        // Read as it runs: it tells a lost connection from a closed window, and a
        // changed RDP certificate.
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ViewerError::Missing(launch.program.clone()),
            _ => ViewerError::Failed(format!("{}: {e}", launch.program)),
        })?;
    // Read to the end as the viewer runs (a full pipe would stop it), keeping the first
    // STDERR_KEPT bytes.
    let stderr = child.stderr.take().map(|mut stderr| {
        tokio::spawn(async move {
            let mut kept = Vec::new();
            let _ = (&mut stderr).take(STDERR_KEPT).read_to_end(&mut kept).await;
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            String::from_utf8_lossy(&kept).into_owned()
        })
    });
    if let Some(mut stdin) = child.stdin.take() {
        // A viewer that exits at once closes the pipe; its exit status tells the rest.
        let _ = stdin.write_all(launch.stdin.as_bytes()).await;
        let _ = stdin.shutdown().await;
    }
    Ok(Viewer { child, stderr })
}

/// Whether a viewer's standard error says it lost (or never had) its connection, in
/// remote-viewer's and xfreerdp's usual words.
pub fn says_connection_lost(stderr: &str) -> bool {
    let stderr = stderr.to_ascii_lowercase();
    [
        "connection lost",
        "lost connection",
        "disconnected",
        "connection closed",
        "connection reset",
        "broken pipe",
        "unable to connect",
        "failed to connect",
        "could not connect",
        "errconnect",
    ]
    .iter()
    .any(|words| stderr.contains(words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use thindesk_shared::{DesktopStatus, Policy};

    #[test]
    fn a_lost_connection_is_told_from_stderr() {
        assert!(says_connection_lost("(remote-viewer:42): Unable to connect to the graphic server spice://h:5900"));
        assert!(says_connection_lost("[ERROR][com.freerdp.core] - ERRCONNECT_CONNECT_FAILED"));
        assert!(says_connection_lost("Connection lost"));
        assert!(!says_connection_lost("(remote-viewer:42): GLib-WARNING: a theme is missing"));
        assert!(!says_connection_lost(""));
    }

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\\x\n-----END CERTIFICATE-----\n";

    fn desktop(kind: ConnectionType, policy: Policy) -> Desktop {
        Desktop {
            id: "d1".into(),
            name: "Lab PC".into(),
            status: DesktopStatus::Active,
            os_username: "alice".into(),
            os_password: "os-secret".into(),
            default_connection_type: kind,
            policy,
            connection_info: vec![
                ConnectionInfo {
                    kind: ConnectionType::Rdp,
                    ip: "10.0.0.5".into(),
                    port: Some("3389".into()),
                    password: None,
                    tls_port: None,
                    ca: None,
                    host_subject: None,
                    secure_channels: None,
                },
                ConnectionInfo {
                    kind: ConnectionType::Spice,
                    ip: "10.0.0.5".into(),
                    port: Some("5901".into()),
                    password: Some("ticket-xyz".into()),
                    tls_port: Some("5901".into()),
                    ca: Some(CA.into()),
                    host_subject: Some("O=thindesk,CN=thindesk server lab".into()),
                    secure_channels: Some("all".into()),
                },
            ],
            image: None,
            size: None,
        }
    }

    #[test]
    fn spice_ticket_goes_to_stdin_only() {
        let launch =
            plan(&desktop(ConnectionType::Spice, Policy::default()), &ViewerPrograms::default(), false).expect("plan");
        assert_eq!(launch.program, "remote-viewer");
        assert_eq!(launch.args, ["-"]);
        assert!(launch.stdin.contains("password=ticket-xyz\n"));
        assert!(launch.stdin.contains("delete-this-file=1"));
        assert!(!format!("{launch:?}").contains("ticket-xyz"));
    }

    #[test]
    fn spice_goes_over_tls_only_trusting_the_servers_authority() {
        let launch =
            plan(&desktop(ConnectionType::Spice, Policy::default()), &ViewerPrograms::default(), false).expect("plan");
        let lines: Vec<&str> = launch.stdin.lines().collect();
        assert!(lines.contains(&"tls-port=5901"), "{lines:?}");
        assert!(!lines.iter().any(|l| l.starts_with("port=")), "no plain port: {lines:?}");
        assert!(lines.contains(&"secure-channels=all"));
        assert!(lines.contains(&"host-subject=O=thindesk,CN=thindesk server lab"));
        // The PEM on one line, as a GLib key file reads it back.
        assert!(
            lines.contains(&"ca=-----BEGIN CERTIFICATE-----\\nMIIB\\\\x\\n-----END CERTIFICATE-----\\n"),
            "{lines:?}"
        );
        assert_eq!(key_file_value(" lead\ttab"), "\\slead\\ttab");
    }

    #[test]
    fn a_display_without_tls_keeps_its_plain_port() {
        let mut old = desktop(ConnectionType::Spice, Policy::default());
        let spice = &mut old.connection_info[1];
        (spice.tls_port, spice.ca, spice.host_subject, spice.secure_channels) = (None, None, None, None);
        let launch = plan(&old, &ViewerPrograms::default(), false).expect("plan");
        assert!(launch.stdin.lines().any(|l| l == "port=5901"));
        assert!(!launch.stdin.contains("tls-port") && !launch.stdin.contains("ca="));
    }

    #[test]
    fn policy_maps_to_vv_keys() {
        let closed = Policy { enable_usb: false, enable_clipboard: false, enable_audio: false };
        let launch = plan(&desktop(ConnectionType::Spice, closed), &ViewerPrograms::default(), true).expect("plan");
        assert!(launch.stdin.contains("enable-usbredir=0"));
        assert!(launch.stdin.contains("enable-usb-autoshare=0"));
        assert!(launch.stdin.contains("disable-channels=playback;record"));
        assert!(launch.stdin.contains("fullscreen=1"));
        assert!(launch.args.contains(&"--kiosk".to_owned()));
    }

    #[test]
    fn rdp_credentials_go_to_stdin_only() {
        let closed = Policy { enable_usb: false, enable_clipboard: false, enable_audio: true };
        let records = Path::new("/state/thindesk/rdp");
        let launch =
            plan_with_records(&desktop(ConnectionType::Rdp, closed), &ViewerPrograms::default(), false, Some(records))
                .expect("plan");
        assert_eq!(launch.program, "xfreerdp");
        assert!(launch.args.contains(&"/v:10.0.0.5:3389".to_owned()));
        assert!(launch.args.contains(&"-clipboard".to_owned()));
        assert!(launch.args.contains(&"/sound".to_owned()));
        assert!(!launch.args.iter().any(|a| a.starts_with("/usb")));
        assert!(launch.args.iter().all(|a| !a.contains("os-secret") && !a.contains("alice")));
        assert_eq!(launch.stdin, "alice\n\nos-secret\n");
    }

    #[test]
    fn rdp_certificates_are_recorded_per_desktop_and_never_ignored() {
        let records = Path::new("/state/thindesk/rdp");
        let launch = plan_with_records(
            &desktop(ConnectionType::Rdp, Policy::default()),
            &ViewerPrograms::default(),
            false,
            Some(records),
        )
        .expect("plan");
        assert!(launch.args.contains(&"/cert:tofu,deny".to_owned()));
        assert!(!launch.args.iter().any(|a| a.contains("ignore")));
        assert_eq!(launch.records.as_deref(), Some(Path::new("/state/thindesk/rdp/d1")));
        assert_eq!(launch.env, [("XDG_CONFIG_HOME".to_owned(), "/state/thindesk/rdp/d1".to_owned())]);
        let none = plan_with_records(
            &desktop(ConnectionType::Rdp, Policy::default()),
            &ViewerPrograms::default(),
            false,
            None,
        );
        assert!(matches!(none, Err(ViewerError::Failed(_))), "no record, no connection: {none:?}");
    }

    #[test]
    fn odd_desktop_ids_stay_inside_the_records() {
        let records = Path::new("/r");
        assert_eq!(desktop_records(records, "4f2a-b_c.9"), Path::new("/r/4f2a-b_c.9"));
        assert_eq!(desktop_records(records, "../x"), Path::new("/r/x-2e2e2f78"));
        assert_eq!(desktop_records(records, ".."), Path::new("/r/x-2e2e"));
        assert_eq!(desktop_records(records, ""), Path::new("/r/x-"));
    }

    #[tokio::test]
    async fn a_refused_certificate_is_told_from_other_failures() {
        let dir = tempfile::tempdir().expect("dir");
        let run = |code: i32, says: &str| Launch {
            kind: ConnectionType::Rdp,
            program: "sh".into(),
            args: vec!["-c".into(), format!("cat >/dev/null; echo '{says}' >&2; exit {code}")],
            stdin: "alice\n\npw\n".into(),
            env: Vec::new(),
            records: Some(dir.path().join("rdp/d1")),
        };
        let changed = "[ERROR][com.freerdp.crypto] - @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @";
        for (code, says, expected) in
            [(143, changed, true), (143, "ERRCONNECT_TLS_CONNECT_FAILED", false), (131, changed, false), (0, "", false)]
        {
            let exit = start(&run(code, says)).await.expect("starts").wait().await;
            assert_eq!(exit.certificate_changed, expected, "exit {code}, said {says:?}");
        }
        let mode = std::fs::metadata(dir.path().join("rdp/d1")).expect("made").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o700);
    }

    #[test]
    fn no_display_is_an_error_not_a_launch() {
        let mut off = desktop(ConnectionType::Spice, Policy::default());
        off.connection_info.clear();
        assert_eq!(plan(&off, &ViewerPrograms::default(), false), Err(ViewerError::NoDisplay));
    }

    #[test]
    fn saved_vv_file_keeps_itself() {
        let (ext, content) = connection_file(&desktop(ConnectionType::Spice, Policy::default())).expect("file");
        assert_eq!(ext, "vv");
        assert!(content.contains("delete-this-file=0"));
    }
}
