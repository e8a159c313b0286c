//! The `thindesk-server` command line: `serve`, `demo`, and the administration
//! commands (in [`admin`]). Administration works on the same data directory as a running server
//! (SQLite in WAL mode lets both in), through the same services, so the rules are the
//! same whichever way a change is made.

mod admin;

use crate::app::RunningServer;
use crate::compute::Compute;
use crate::config::{ApiKey, Config, Overrides};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

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
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the terminal API until interrupted
    Serve(ServeArgs),
    /// Serve a throw-away demo: a temporary data directory with a place, an
    /// administrator, a student and a desktop, whose passwords are printed
    Demo {
        #[arg(long, default_value = "127.0.0.1:5000")]
        listen: SocketAddr,
    },
    /// The server's TLS certificate: show its fingerprint (what terminals pin), or
    /// install the school's own
    #[command(subcommand)]
    Tls(TlsCommand),
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TlsCommand {
    /// Print the certificate's SHA-256 fingerprint, names and authority (making them
    /// first if the server has never started)
    Show,
    /// Install a certificate (PEM: the server's, then any intermediates) and its
    /// private key; a running server uses them within seconds
    Import {
        cert: PathBuf,
        key: PathBuf,
        /// The authority terminals and viewers should trust [default: the last
        /// certificate of CERT]
        #[arg(long)]
        ca: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
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
            let compute = crate::app::compute_for(&config)?;
            runtime()?.block_on(serve(config, compute))
        }
        Command::Demo { listen } => runtime()?.block_on(demo(listen)),
        Command::Tls(command) => {
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            tls(&config, command, &mut std::io::stdout().lock())
        }
        Command::Admin(command) => {
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            let compute = crate::app::compute_for(&config)?;
            let services = crate::app::open(&config, compute)
                .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
            // On a cloud, the images and flavors a command names are the cloud's as
            // they are now, whether or not a server has read them yet.
            if services.catalogue.follows_platform() {
                services.catalogue.follow_platform().context("reading the cloud's images and flavors")?;
            }
            admin::administer(&services, command, &mut std::io::stdout().lock(), &mut read_new_password)
        }
    }
}

fn tls(config: &Config, command: TlsCommand, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let dir = crate::tls::directory(&config.data_dir);
    let identity = match command {
        TlsCommand::Show => crate::tls::ensure(&dir, &crate::tls::default_names(&config.public_address()))?,
        TlsCommand::Import { cert, key, ca } => {
            let identity = crate::tls::import(&dir, &cert, &key, ca.as_deref())?;
            writeln!(out, "installed; terminals that pinned the former certificate must be told the new fingerprint")?;
            identity
        }
    };
    writeln!(out, "fingerprint (SHA-256)  {}", identity.fingerprint)?;
    writeln!(out, "subject                {}", identity.subject)?;
    writeln!(out, "names                  {}", identity.names.join(", "))?;
    writeln!(out, "valid until            {}", identity.not_after)?;
    if let Some(ca) = &identity.ca_fingerprint {
        writeln!(out, "authority (SHA-256)    {ca}")?;
    }
    writeln!(out, "files                  {}", dir.display())?;
    Ok(())
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
