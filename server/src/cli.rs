//! The `thindesk-server` command line: `serve`, `demo`, and the administration
//! commands. Administration works on the same data directory as a running server
//! (SQLite in WAL mode lets both in), through the same services, so the rules are the
//! same whichever way a change is made.

use crate::app::{RunningServer, Services};
use crate::compute::{Compute, NoCompute};
use crate::config::{Config, Overrides};
use crate::service::desktops::DesktopSpec;
use crate::service::random_token;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use thindesk_shared::{ConnectionType, Policy, RegistrationMode, TerminalState};

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
    /// What runs the desktops: qemu or none [default: qemu]
    #[arg(long, env = "THINDESK_HYPERVISOR")]
    hypervisor: Option<crate::config::Hypervisor>,
}

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
enum SettingCommand {
    /// Show every setting
    List,
    /// Change a setting: terminal_registration_mode = auto | approval | closed
    Set { key: String, value: String },
}

fn parse_terminal_state(text: &str) -> Result<TerminalState, String> {
    TerminalState::parse(&text.to_ascii_uppercase()).ok_or_else(|| "expected approved, waiting or rejected".into())
}

const REGISTRATION_MODE_KEY: &str = crate::store::setting::TERMINAL_REGISTRATION_MODE;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides { data_dir: cli.data_dir.clone(), ..Overrides::default() };
    match cli.command {
        Command::Serve(args) => {
            overrides.listen = args.listen;
            overrides.public_address = args.public_address;
            overrides.token_ttl_secs = args.token_ttl;
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
            administer(&services, command, &mut std::io::stdout().lock())
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
    let data_dir = tempfile::Builder::new().prefix("thindesk-demo-").tempdir()?;
    let config = Config { listen, data_dir: data_dir.path().to_owned(), ..Config::default() };
    let server = RunningServer::start(config, Arc::new(NoCompute)).await?;
    let services = server.services().clone();
    let admin_password = random_token(9);
    let student_password = random_token(9);
    {
        let (admin_password, student_password) = (admin_password.clone(), student_password.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            services.terminals.add_place("b101", "Building B, floor 1")?;
            services.terminals.add_place("b201", "Building B, floor 2")?;
            services.terminals.set_registration_mode(RegistrationMode::Approval)?;
            services.accounts.create_user("admin", &admin_password, true)?;
            services.accounts.create_user("student", &student_password, false)?;
            services.desktops.create(&DesktopSpec {
                name: "Demo desktop".into(),
                owner: "student".into(),
                os_username: "student".into(),
                os_password: random_token(9),
                default_connection_type: ConnectionType::Spice,
                policy: Policy::default(),
            })?;
            Ok(())
        })
        .await??;
    }
    let url = server.url();
    println!("thindesk demo server at {url} (data in {}, removed on exit)", data_dir.path().display());
    println!("  administrator: admin / {admin_password}");
    println!("  student:       student / {student_password}");
    println!("  try: curl -s -u student:{student_password} {url}/api/v1.0/users/me/desktops");
    println!("Press Ctrl-C to stop.");
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

fn administer(services: &Services, command: Command, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        Command::User(command) => user(services, command, out),
        Command::Place(command) => place(services, command, out),
        Command::Terminal(command) => terminal(services, command, out),
        Command::Setting(command) => setting(services, command, out),
        Command::Serve(_) | Command::Demo { .. } => bail!("not an administration command"),
    }
}

fn user(services: &Services, command: UserCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let accounts = &services.accounts;
    match command {
        UserCommand::Add { name, admin } => {
            let password = read_new_password(&format!("Password for {name}: "))?;
            accounts.create_user(&name, &password, admin).map_err(explain)?;
            writeln!(out, "created {}{name}", if admin { "administrator " } else { "user " })?;
        }
        UserCommand::List => {
            writeln!(out, "{:<32} {:<6} created", "name", "admin")?;
            for user in accounts.users()? {
                let created = crate::service::iso8601(user.created_at);
                writeln!(out, "{:<32} {:<6} {created}", user.name, if user.is_admin { "yes" } else { "no" })?;
            }
        }
        UserCommand::Passwd { name } => {
            let password = read_new_password(&format!("New password for {name}: "))?;
            accounts.reset_password(&name, &password).map_err(explain)?;
            writeln!(out, "password of {name} changed; their tokens are revoked")?;
        }
        UserCommand::Admin { name, enabled } => {
            accounts.set_admin(&name, enabled).map_err(explain)?;
            writeln!(out, "{name} is {}an administrator", if enabled { "" } else { "no longer " })?;
        }
        UserCommand::Delete { name } => {
            accounts.delete_user(&name).map_err(explain)?;
            writeln!(out, "deleted {name}")?;
        }
    }
    Ok(())
}

fn place(services: &Services, command: PlaceCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let terminals = &services.terminals;
    match command {
        PlaceCommand::Add { name, address } => {
            terminals.add_place(&name, &address).map_err(explain)?;
            writeln!(out, "added place {}", name.trim())?;
        }
        PlaceCommand::List => {
            writeln!(out, "{:<24} address", "name")?;
            for place in terminals.places()? {
                writeln!(out, "{:<24} {}", place.name, place.address)?;
            }
        }
        PlaceCommand::Delete { name } => {
            terminals.delete_place(&name).map_err(explain)?;
            writeln!(out, "deleted place {name}")?;
        }
    }
    Ok(())
}

fn terminal(services: &Services, command: TerminalCommand, out: &mut impl Write) -> anyhow::Result<()> {
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
            terminals.set_state(&mac, TerminalState::Approved).map_err(explain)?;
            writeln!(out, "approved {mac}")?;
        }
        TerminalCommand::Reject { mac } => {
            terminals.set_state(&mac, TerminalState::Rejected).map_err(explain)?;
            writeln!(out, "rejected {mac}")?;
        }
        TerminalCommand::Delete { mac } => {
            terminals.delete(&mac).map_err(explain)?;
            writeln!(out, "deleted {mac}")?;
        }
    }
    Ok(())
}

fn setting(services: &Services, command: SettingCommand, out: &mut impl Write) -> anyhow::Result<()> {
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
            terminals.set_registration_mode(mode)?;
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
