//! The `thindesk-server` command line: `serve`, `demo`, and the administration
//! commands. Administration works on the same data directory as a running server
//! (SQLite in WAL mode lets both in), through the same services, so the rules are the
//! same whichever way a change is made.

use crate::app::{RunningServer, Services};
use crate::compute::Compute;
use crate::config::{ApiKey, Config, Overrides};
use crate::service::catalogue::{Flavor, ImageSpec};
use crate::service::desktops::DesktopSpec;
use crate::service::{Actor, iso8601};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use thindesk_shared::{ConnectionType, RegistrationMode, TerminalState};

#[derive(Debug, Parser)]
#[command(name = "thindesk-server", version, about = "thindesk management server and its administration")]
pub struct Cli {
    /// TOML configuration file [default: /etc/thindesk/server.toml when it exists]
    #[arg(long, global = true, env = "THINDESK_CONFIG")]
    config: Option<PathBuf>,
    /// Directory holding the database
    #[arg(long, global = true, env = "THINDESK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the terminal API until interrupted
    Serve(ServeArgs),
    /// Serve a throw-away demo: a temporary data directory with a place, an
    /// administrator, a student and a desktop, whose passwords are printed
    Demo {
        #[arg(long, default_value = "127.0.0.1:5000")]
        listen: SocketAddr,
    },
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage places (classrooms)
    #[command(subcommand)]
    Place(PlaceCommand),
    /// Manage terminals
    #[command(subcommand)]
    Terminal(TerminalCommand),
    /// Read and change server settings
    #[command(subcommand)]
    Setting(SettingCommand),
    /// Manage the catalogue's images (base disks)
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage the catalogue's flavors (machine sizes)
    #[command(subcommand)]
    Flavor(FlavorCommand),
    /// Manage desktops
    #[command(subcommand)]
    Desktop(DesktopCommand),
    /// Look at the cloud API's instances
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Read the audit log, newest first
    Audit {
        /// Only what this user (or `terminal`, `cloud-api`, `cli:USER`) did
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (`terminal.approve`) or kind of action (`terminal`)
        #[arg(long)]
        action: Option<String>,
        /// From this time on: 2026-11-24, 2026-11-24T08:00:00Z or Unix seconds
        #[arg(long)]
        since: Option<String>,
        /// Up to this time
        #[arg(long)]
        until: Option<String>,
        /// At most this many entries (1 to 1000)
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address and port to listen on [default: 0.0.0.0:5000]
    #[arg(long, env = "THINDESK_LISTEN")]
    listen: Option<SocketAddr>,
    /// Host name or address terminals use to reach desktops on this host
    #[arg(long, env = "THINDESK_PUBLIC_ADDRESS")]
    public_address: Option<String>,
    /// Token lifetime in seconds [default: 7200]
    #[arg(long, env = "THINDESK_TOKEN_TTL")]
    token_ttl: Option<u64>,
    /// Networks or addresses allowed to call the cloud API, comma-separated
    /// [default: 127.0.0.0/8,::1]
    #[arg(long, env = "THINDESK_CLOUD_API_ALLOW", value_delimiter = ',')]
    cloud_api_allow: Option<Vec<String>>,
    /// What runs the desktops: qemu or none [default: qemu]
    #[arg(long, env = "THINDESK_HYPERVISOR")]
    hypervisor: Option<crate::config::Hypervisor>,
}

/// The cloud API key is a secret: it comes from the file or from this variable, never
/// from an argument that every user of the host can read.
const CLOUD_API_KEY_VARIABLE: &str = "THINDESK_CLOUD_API_KEY";

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from the terminal (or one line of stdin)
    Add {
        name: String,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
    },
    /// List users
    List,
    /// Set a user's password (read like `add`); their tokens are revoked
    Passwd { name: String },
    /// Grant or withdraw administrator rights
    Admin {
        name: String,
        #[arg(action = clap::ArgAction::Set, value_name = "true|false")]
        enabled: bool,
    },
    /// Delete a user who owns no desktops
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
enum PlaceCommand {
    /// Add a place
    Add {
        name: String,
        /// Where it is, e.g. "Building B, floor 1"
        #[arg(long, default_value = "")]
        address: String,
    },
    /// List places
    List,
    /// Delete a place with no terminals
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
enum TerminalCommand {
    /// List terminals
    List {
        /// Only terminals in this state
        #[arg(long, value_parser = parse_terminal_state)]
        state: Option<TerminalState>,
    },
    /// Approve a terminal
    Approve { mac: String },
    /// Reject a terminal
    Reject { mac: String },
    /// Delete a terminal, so that it may register again
    Delete { mac: String },
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Add an image; the guest's OS password is read from the terminal (or one line of
    /// stdin)
    Add {
        name: String,
        /// Absolute path of the base disk (qcow2)
        #[arg(long)]
        disk: PathBuf,
        /// How terminals connect to desktops of this image
        #[arg(long, default_value = "spice", value_parser = parse_connection_type)]
        connection: ConnectionType,
        /// The account desktops of this image log in with
        #[arg(long, default_value = "")]
        os_username: String,
    },
    /// List images
    List,
    /// Delete an image no desktop or instance uses
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
enum FlavorCommand {
    /// Add a flavor
    Add {
        name: String,
        /// Virtual CPUs (1 to 64)
        #[arg(long)]
        vcpus: u32,
        /// Memory in MiB (at least 64)
        #[arg(long)]
        ram: u32,
        /// Disk size in GiB (at least 1)
        #[arg(long)]
        disk: u32,
    },
    /// List flavors
    List,
    /// Delete a flavor no desktop or instance uses
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
enum DesktopCommand {
    /// Create a desktop for a user from an image and a flavor; its machine is defined
    /// at once, and the user starts it from their terminal
    Create {
        /// The user who owns it
        #[arg(long)]
        user: String,
        #[arg(long)]
        image: String,
        #[arg(long)]
        flavor: String,
        /// Shown to the user [default: the image's name]
        #[arg(long)]
        name: Option<String>,
    },
    /// List desktops
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a desktop and free its machine
    Delete {
        /// Desktop ids are random and may begin with `-`
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum InstanceCommand {
    /// List the instances launched through the cloud API
    List,
}

#[derive(Debug, Subcommand)]
enum SettingCommand {
    /// Show every setting
    List,
    /// Change a setting: terminal_registration_mode = auto | approval | closed
    Set { key: String, value: String },
}

fn parse_connection_type(text: &str) -> Result<ConnectionType, String> {
    ConnectionType::parse(&text.to_ascii_lowercase()).ok_or_else(|| "expected spice or rdp".into())
}

fn parse_terminal_state(text: &str) -> Result<TerminalState, String> {
    TerminalState::parse(&text.to_ascii_uppercase()).ok_or_else(|| "expected approved, waiting or rejected".into())
}

const REGISTRATION_MODE_KEY: &str = crate::store::setting::TERMINAL_REGISTRATION_MODE;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        cloud_api_key: std::env::var(CLOUD_API_KEY_VARIABLE).ok().filter(|key| !key.is_empty()).map(ApiKey::new),
        ..Overrides::default()
    };
    match cli.command {
        Command::Serve(args) => {
            overrides.listen = args.listen;
            overrides.public_address = args.public_address;
            overrides.token_ttl_secs = args.token_ttl;
            overrides.cloud_api_allow = args.cloud_api_allow;
            overrides.hypervisor = args.hypervisor;
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            let compute = crate::compute::from_config(&config)?;
            runtime()?.block_on(serve(config, compute))
        }
        Command::Demo { listen } => runtime()?.block_on(demo(listen)),
        command => {
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            let compute = crate::compute::from_config(&config)?;
            let services = Services::open(&config, compute)
                .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
            administer(&services, command, &mut std::io::stdout().lock(), &mut read_new_password)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn serve(config: Config, compute: Arc<dyn Compute>) -> anyhow::Result<()> {
    let server = RunningServer::start(config, compute).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn demo(listen: SocketAddr) -> anyhow::Result<()> {
    println!("Starting the thindesk demo (the first start builds the demo image: a few seconds)...");
    let demo = crate::demo::Demo::start(listen).await?;
    let url = demo.url();
    let (admin, student) = (&demo.logins.admin, &demo.logins.student);
    println!("thindesk demo server at {url} (data in {}, removed on exit)", demo.data_dir().display());
    println!("  administrator: {} / {}", admin.0, admin.1);
    println!("  student:       {} / {}  (owns \"{}\", running)", student.0, student.1, crate::demo::DESKTOP);
    println!("  try: curl -s -u {}:{} {url}/api/v1.0/users/me/desktops", student.0, student.1);
    println!("  management console: {url}/admin/ (log in as the administrator)");
    println!("Press Ctrl-C to stop; the demo's machines are destroyed then.");
    shutdown_signal().await;
    demo.stop().await;
    Ok(())
}

/// Where administration commands get passwords from: a no-echo prompt or stdin in
/// the binary, a script in tests. Never from arguments.
type PasswordSource<'a> = dyn FnMut(&str) -> anyhow::Result<String> + 'a;

fn administer(
    services: &Services,
    command: Command,
    out: &mut impl Write,
    passwords: &mut PasswordSource<'_>,
) -> anyhow::Result<()> {
    match command {
        Command::User(command) => user(services, command, out, passwords),
        Command::Place(command) => place(services, command, out),
        Command::Terminal(command) => terminal(services, command, out),
        Command::Setting(command) => setting(services, command, out),
        Command::Image(command) => image(services, command, out, passwords),
        Command::Flavor(command) => flavor(services, command, out),
        Command::Desktop(command) => desktop(services, command, out),
        Command::Instance(command) => instance(services, command, out),
        Command::Audit { actor, action, since, until, limit } => {
            let time = |flag: &str, text: Option<String>| -> anyhow::Result<Option<i64>> {
                text.map(|t| {
                    crate::service::audit::parse_time(&t).with_context(|| {
                        format!("--{flag} {t:?}: expected 2026-11-24, 2026-11-24T08:00:00Z or Unix seconds")
                    })
                })
                .transpose()
            };
            let filter = crate::service::AuditFilter {
                actor,
                action,
                since: time("since", since)?,
                until: time("until", until)?,
                limit: Some(limit),
            };
            writeln!(out, "{:<20} {:<16} {:<15} {:<18} {:<20} detail", "time", "actor", "address", "action", "target")?;
            for e in services.audit.list(&filter)? {
                writeln!(
                    out,
                    "{:<20} {:<16} {:<15} {:<18} {:<20} {}",
                    iso8601(e.at),
                    e.actor,
                    e.address,
                    e.action,
                    e.target,
                    e.detail
                )?;
            }
            Ok(())
        }
        Command::Serve(_) | Command::Demo { .. } => bail!("not an administration command"),
    }
}

fn user(
    services: &Services,
    command: UserCommand,
    out: &mut impl Write,
    passwords: &mut PasswordSource<'_>,
) -> anyhow::Result<()> {
    let by = Actor::cli();
    let accounts = &services.accounts;
    match command {
        UserCommand::Add { name, admin } => {
            let password = passwords(&format!("Password for {name}: "))?;
            accounts.create_user(&by, &name, &password, admin).map_err(explain)?;
            writeln!(out, "created {}{name}", if admin { "administrator " } else { "user " })?;
        }
        UserCommand::List => {
            writeln!(out, "{:<32} {:<6} created", "name", "admin")?;
            for user in accounts.users()? {
                let created = iso8601(user.created_at);
                writeln!(out, "{:<32} {:<6} {created}", user.name, if user.is_admin { "yes" } else { "no" })?;
            }
        }
        UserCommand::Passwd { name } => {
            let password = passwords(&format!("New password for {name}: "))?;
            accounts.reset_password(&by, &name, &password).map_err(explain)?;
            writeln!(out, "password of {name} changed; their tokens are revoked")?;
        }
        UserCommand::Admin { name, enabled } => {
            accounts.set_admin(&by, &name, enabled).map_err(explain)?;
            writeln!(out, "{name} is {}an administrator", if enabled { "" } else { "no longer " })?;
        }
        UserCommand::Delete { name } => {
            accounts.delete_user(&by, &name).map_err(explain)?;
            writeln!(out, "deleted {name}")?;
        }
    }
    Ok(())
}

fn place(services: &Services, command: PlaceCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let by = Actor::cli();
    let terminals = &services.terminals;
    match command {
        PlaceCommand::Add { name, address } => {
            terminals.add_place(&by, &name, &address).map_err(explain)?;
            writeln!(out, "added place {}", name.trim())?;
        }
        PlaceCommand::List => {
            writeln!(out, "{:<24} address", "name")?;
            for place in terminals.places()? {
                writeln!(out, "{:<24} {}", place.name, place.address)?;
            }
        }
        PlaceCommand::Delete { name } => {
            terminals.delete_place(&by, &name).map_err(explain)?;
            writeln!(out, "deleted place {name}")?;
        }
    }
    Ok(())
}

fn terminal(services: &Services, command: TerminalCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let by = Actor::cli();
    let terminals = &services.terminals;
    match command {
        TerminalCommand::List { state } => {
            writeln!(out, "{:<18} {:<16} {:<8} {:<9} registered by", "mac_address", "place", "seat", "state")?;
            for t in terminals.terminals(state)? {
                writeln!(
                    out,
                    "{:<18} {:<16} {:<8} {:<9} {}",
                    t.mac_address, t.place, t.seat_number, t.state, t.register_mode
                )?;
            }
        }
        TerminalCommand::Approve { mac } => {
            terminals.set_state(&by, &mac, TerminalState::Approved).map_err(explain)?;
            writeln!(out, "approved {mac}")?;
        }
        TerminalCommand::Reject { mac } => {
            terminals.set_state(&by, &mac, TerminalState::Rejected).map_err(explain)?;
            writeln!(out, "rejected {mac}")?;
        }
        TerminalCommand::Delete { mac } => {
            terminals.delete(&by, &mac).map_err(explain)?;
            writeln!(out, "deleted {mac}")?;
        }
    }
    Ok(())
}

fn image(
    services: &Services,
    command: ImageCommand,
    out: &mut impl Write,
    passwords: &mut PasswordSource<'_>,
) -> anyhow::Result<()> {
    let by = Actor::cli();
    let catalogue = &services.catalogue;
    match command {
        ImageCommand::Add { name, disk, connection, os_username } => {
            let os_password = passwords(&format!("OS password of {os_username:?} on image {name}: "))?;
            let spec = ImageSpec {
                name: name.clone(),
                base_disk: disk,
                default_connection_type: connection,
                os_username,
                os_password,
            };
            catalogue.add_image(&by, &spec).map_err(explain)?;
            writeln!(out, "added image {}", name.trim())?;
        }
        ImageCommand::List => {
            writeln!(out, "{:<32} {:<10} {:<16} {:<20} base disk", "name", "connection", "os user", "created")?;
            for image in catalogue.images()? {
                writeln!(
                    out,
                    "{:<32} {:<10} {:<16} {:<20} {}",
                    image.name,
                    image.default_connection_type.as_str(),
                    image.os_username,
                    iso8601(image.created_at),
                    image.base_disk.display()
                )?;
            }
        }
        ImageCommand::Delete { name } => {
            catalogue.delete_image(&by, &name).map_err(explain)?;
            writeln!(out, "deleted image {name}")?;
        }
    }
    Ok(())
}

fn flavor(services: &Services, command: FlavorCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let by = Actor::cli();
    let catalogue = &services.catalogue;
    match command {
        FlavorCommand::Add { name, vcpus, ram, disk } => {
            catalogue
                .add_flavor(&by, &Flavor { name: name.clone(), vcpus, ram_mib: ram, disk_gib: disk })
                .map_err(explain)?;
            writeln!(out, "added flavor {}", name.trim())?;
        }
        FlavorCommand::List => {
            writeln!(out, "{:<24} {:>5} {:>9} {:>8}", "name", "vcpus", "ram (MiB)", "disk (GiB)")?;
            for flavor in catalogue.flavors()? {
                writeln!(out, "{:<24} {:>5} {:>9} {:>8}", flavor.name, flavor.vcpus, flavor.ram_mib, flavor.disk_gib)?;
            }
        }
        FlavorCommand::Delete { name } => {
            catalogue.delete_flavor(&by, &name).map_err(explain)?;
            writeln!(out, "deleted flavor {name}")?;
        }
    }
    Ok(())
}

fn desktop(services: &Services, command: DesktopCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let by = Actor::cli();
    let desktops = &services.desktops;
    match command {
        DesktopCommand::Create { user, image, flavor, name } => {
            let spec = DesktopSpec::from_catalogue(name.as_deref().unwrap_or(&image), &user, &image, &flavor);
            let id = desktops.create(&by, &spec).map_err(explain)?;
            writeln!(out, "created desktop {id} for {user}")?;
        }
        DesktopCommand::List { user } => {
            writeln!(out, "{:<18} {:<24} {:<16} {:<9} {:<24} flavor", "id", "name", "owner", "status", "image")?;
            for d in desktops.list_all(user.as_deref()).map_err(explain)? {
                writeln!(
                    out,
                    "{:<18} {:<24} {:<16} {:<9} {:<24} {}",
                    d.id,
                    d.name,
                    d.owner,
                    d.status,
                    d.image.as_deref().unwrap_or("-"),
                    d.flavor.as_deref().unwrap_or("-")
                )?;
            }
        }
        DesktopCommand::Delete { id } => {
            desktops.delete(&by, &id).map_err(explain)?;
            writeln!(out, "deleted desktop {id}")?;
        }
    }
    Ok(())
}

fn instance(services: &Services, command: InstanceCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        InstanceCommand::List => {
            writeln!(
                out,
                "{:<18} {:<24} {:<24} {:<12} {:<8} {:<9} created",
                "vm_id", "name", "image", "flavor", "internet", "status"
            )?;
            for i in services.cloud.list_instances()? {
                writeln!(
                    out,
                    "{:<18} {:<24} {:<24} {:<12} {:<8} {:<9} {}",
                    i.vm_id,
                    i.name,
                    i.image,
                    i.flavor,
                    if i.internet { "yes" } else { "no" },
                    i.status,
                    i.created_at
                )?;
            }
        }
    }
    Ok(())
}

fn setting(services: &Services, command: SettingCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let by = Actor::cli();
    let terminals = &services.terminals;
    match command {
        SettingCommand::List => {
            writeln!(out, "{REGISTRATION_MODE_KEY} = {}", terminals.registration_mode()?)?;
        }
        SettingCommand::Set { key, value } => {
            if key != REGISTRATION_MODE_KEY {
                bail!("unknown setting {key:?}; settings: {REGISTRATION_MODE_KEY}");
            }
            let mode = RegistrationMode::parse(&value)
                .with_context(|| format!("{REGISTRATION_MODE_KEY} must be auto, approval or closed, not {value:?}"))?;
            terminals.set_registration_mode(&by, mode)?;
            writeln!(out, "{REGISTRATION_MODE_KEY} = {mode}")?;
        }
    }
    Ok(())
}

/// Field errors read better on a terminal as one line per field.
fn explain(error: crate::service::ServiceError) -> anyhow::Error {
    match error {
        crate::service::ServiceError::Invalid(fields) => {
            let lines: Vec<String> =
                fields.0.iter().map(|(field, messages)| format!("{field}: {}", messages.join("; "))).collect();
            anyhow::anyhow!(lines.join("\n"))
        }
        other => other.into(),
    }
}

/// Passwords never come from arguments, which other users can read in the process
/// list: a terminal is asked twice without echo; otherwise one line of stdin is read.
fn read_new_password(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let second = rpassword::prompt_password("Again: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::double::TestCompute;

    struct Admin {
        _dir: tempfile::TempDir,
        disk: PathBuf,
        compute: Arc<TestCompute>,
        services: Services,
    }

    impl Admin {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("dir");
            let config = Config { data_dir: dir.path().join("data"), ..Config::default() };
            let compute = Arc::new(TestCompute::new());
            let services = Services::open(&config, compute.clone()).expect("services");
            let disk = dir.path().join("xubuntu.qcow2");
            std::fs::write(&disk, b"QFI\xfb").expect("disk");
            Self { _dir: dir, disk, compute, services }
        }

        /// Runs one command line; passwords come from `password`, and the test fails
        /// if a command asks for one when none is given.
        fn run(&self, args: &[&str], password: Option<&str>) -> anyhow::Result<String> {
            let cli = Cli::try_parse_from(std::iter::once("thindesk-server").chain(args.iter().copied()))?;
            let mut out = Vec::new();
            let mut passwords = |_prompt: &str| -> anyhow::Result<String> {
                password.map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no password expected"))
            };
            administer(&self.services, cli.command, &mut out, &mut passwords)?;
            Ok(String::from_utf8(out)?)
        }
    }

    #[test]
    fn a_desktop_created_from_the_command_line_gets_its_machine_and_loses_it_on_delete() {
        let admin = Admin::new();
        admin.run(&["user", "add", "kim"], Some("kims-password")).expect("user");
        let disk = admin.disk.to_str().expect("utf-8");
        admin
            .run(&["image", "add", "xubuntu", "--disk", disk, "--os-username", "student"], Some("os-password"))
            .expect("image");
        let created = admin
            .run(&["desktop", "create", "--user", "kim", "--image", "xubuntu", "--flavor", "m1.small"], None)
            .expect("desktop");
        let id = created.split_whitespace().nth(2).expect("id printed").to_owned();
        let machine = admin.compute.spec(&id).expect("machine defined");
        assert_eq!((machine.vcpus, machine.ram_mib, machine.disk_gib), (1, 2048, 20));
        assert_eq!(machine.base_disk, admin.disk);

        let listed = admin.run(&["desktop", "list", "--user", "kim"], None).expect("list");
        let row = listed.lines().find(|line| line.starts_with(&id)).expect("listed");
        assert!(row.contains("xubuntu") && row.contains("m1.small") && row.contains("kim"), "{row}");
        assert!(!listed.contains("os-password"), "credentials are not listed");
        let principal = crate::service::Principal {
            user_id: 1,
            name: "kim".into(),
            is_admin: false,
            token_hash: None,
            address: None,
        };
        let wire = admin.services.desktops.list_for(&principal).expect("list");
        assert_eq!((wire[0].os_username.as_str(), wire[0].os_password.as_str()), ("student", "os-password"));

        let refused = admin.run(&["image", "delete", "xubuntu"], None).expect_err("in use");
        assert!(refused.to_string().contains("use this image"), "{refused}");
        admin.run(&["desktop", "delete", &id], None).expect("delete");
        assert!(admin.compute.spec(&id).is_none(), "machine destroyed");
        assert_eq!(admin.run(&["desktop", "list"], None).expect("list").lines().count(), 1, "header only");
        admin.run(&["image", "delete", "xubuntu"], None).expect("free now");
    }

    #[test]
    fn command_line_changes_are_audited_as_the_os_user_and_read_back_without_secrets() {
        let admin = Admin::new();
        admin.run(&["user", "add", "kim"], Some("kims-secret-password")).expect("user");
        admin.run(&["place", "add", "b101"], None).expect("place");
        let log = admin.run(&["audit", "--action", "user"], None).expect("audit");
        let row = log.lines().find(|line| line.contains("user.create")).expect("user.create logged");
        assert!(row.contains("cli:") && row.contains("kim"), "{row}");
        assert!(!log.contains("place.create"), "filtered by action: {log}");
        assert!(!log.contains("kims-secret-password"));
        let all = admin.run(&["audit", "--since", "2000-01-01", "--limit", "1"], None).expect("audit");
        assert_eq!(all.lines().count(), 2, "header and the newest entry: {all}");
        assert!(all.contains("place.create"), "{all}");
        assert!(admin.run(&["audit", "--since", "yesterday"], None).is_err());
    }

    #[test]
    fn instances_are_listed_without_their_tickets() {
        let admin = Admin::new();
        let disk = admin.disk.to_str().expect("utf-8");
        admin.run(&["image", "add", "xubuntu", "--disk", disk, "--os-username", "student"], Some("pw")).expect("image");
        let launched = admin.services.cloud.launch_instance("xubuntu", "m1.tiny", false, "exam-42").expect("launch");
        let listed = admin.run(&["instance", "list"], None).expect("list");
        let row = listed.lines().find(|line| line.starts_with(&launched.vm_id)).expect("listed");
        assert!(row.contains("exam-42") && row.contains("m1.tiny") && row.contains("ACTIVE"), "{row}");
        assert!(!listed.contains(&launched.spice_password), "the SPICE ticket is not printed");
    }
}
