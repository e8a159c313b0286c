//! The command line: flags over the environment over the settings file.

use crate::app::{App, Setup};
use crate::i18n::Lang;
use crate::settings::{Memory, Settings};
use clap::Parser;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use thindesk_shared::MacAddress;

#[derive(Debug, Parser)]
#[command(name = "thindesk", version, about = "thindesk thin-terminal client: log in and open your virtual desktop")]
pub struct Cli {
    /// Management server, e.g. http://10.1.2.3:5000 [default: `server` in the settings file]
    #[arg(long, env = "THINDESK_SERVER")]
    pub server: Option<String>,
    /// This terminal's MAC address [default: the machine's], so one machine can play
    /// several terminals
    #[arg(long)]
    pub mac: Option<String>,
    /// Kiosk mode: fullscreen, cannot be closed, back to the login screen after each
    /// session and when idle
    #[arg(long)]
    pub kiosk: bool,
    /// Settings file [default: $XDG_CONFIG_HOME/thindesk/client.toml]
    #[arg(long, env = "THINDESK_CLIENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Language: en or zh [default: the system's]
    #[arg(long, value_parser = ["en", "zh"])]
    pub lang: Option<String>,
    /// Start a throw-away demo server inside the client and use it
    #[arg(long)]
    pub demo: bool,
    /// Window size in points, WIDTHxHEIGHT
    #[arg(long, default_value = "1024x700")]
    pub size: String,
    /// The window of a `--demo`, started by the demo's supervising process, which
    /// hands it the server and the hint on stdin.
    #[arg(long, hide = true)]
    pub demo_gui: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error("no server given: use --server URL, THINDESK_SERVER or `server = \"…\"` in {0}")]
    NoServer(String),
    #[error("{0}")]
    Mac(String),
    #[error("--size must be WIDTHxHEIGHT, like 960x680")]
    Size,
    #[error("cannot start the background runtime: {0}")]
    Runtime(std::io::Error),
    #[cfg(feature = "demo")]
    #[error(transparent)]
    Demo(#[from] crate::demo::SuperviseError),
    #[cfg(not(feature = "demo"))]
    #[error("this build has no demo: build the client with `--features demo`")]
    NoDemo,
    #[error("the demo's supervisor sent no setup: {0}")]
    DemoSetup(String),
    #[error("cannot catch signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot open the window: {0}")]
    Gui(String),
}

pub fn main() -> ExitCode {
    let started = Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("THINDESK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text for a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = if cli.demo && !cli.demo_gui { supervise_demo() } else { run(cli, started).map(|()| 0) };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("thindesk: {e}");
            ExitCode::FAILURE
        }
    }
}

/// This machine's MAC address, or the one given, in the server's spelling.
pub fn terminal_mac(given: Option<&str>) -> Result<String, CliError> {
    match given {
        Some(text) => text.parse::<MacAddress>().map(|m| m.to_string()).map_err(|e| CliError::Mac(e.to_string())),
        None => match mac_address::get_mac_address() {
            Ok(Some(mac)) => Ok(MacAddress::new(mac.bytes()).to_string()),
            Ok(None) => {
                Err(CliError::Mac("this machine has no network interface with a MAC address: use --mac".into()))
            }
            Err(e) => Err(CliError::Mac(format!("cannot read this machine's MAC address ({e}): use --mac"))),
        },
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("thindesk-bg")
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// What the demo's supervisor tells the window process: one JSON line on its stdin.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct GuiSetup {
    pub server: String,
    /// The demo server's certificate: the window trusts it without asking.
    pub fingerprint: crate::pinning::Fingerprint,
    pub hint: crate::screens::login::DemoHint,
}

/// `--demo`: this process runs the demo and supervises the window, a child process
/// given this process's flags (see `crate::demo`).
#[cfg(feature = "demo")]
fn supervise_demo() -> Result<i32, CliError> {
    let gui_args: Vec<_> = std::env::args_os().skip(1).filter(|arg| arg != "--demo").collect();
    Ok(runtime()?.block_on(crate::demo::supervise(gui_args))?)
}

#[cfg(not(feature = "demo"))]
fn supervise_demo() -> Result<i32, CliError> {
    Err(CliError::NoDemo)
}

/// The demo's window: the server and the hint from the supervisor, on stdin. The
/// supervisor keeps stdin open while it runs; its end ends the window.
fn demo_gui_setup() -> Result<GuiSetup, CliError> {
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).map_err(|e| CliError::DemoSetup(e.to_string()))?;
    let setup = serde_json::from_str(&line).map_err(|e| CliError::DemoSetup(e.to_string()))?;
    drop(stdin);
    std::thread::spawn(|| {
        let mut rest = std::io::stdin().lock();
        let mut sink = String::new();
        while matches!(rest.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
        crate::leaving::leave(1, "the demo's supervisor is gone");
    });
    Ok(setup)
}

fn run(cli: Cli, started: Instant) -> Result<(), CliError> {
    let (width, height) = cli
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<f32>().ok()?, h.parse::<f32>().ok()?)))
        .ok_or(CliError::Size)?;
    let runtime = runtime()?;
    // Every way out hands the session over (viewers closed, token revoked) first; see
    // `leaving`. Signals are caught before the window is made.
    crate::leaving::catch_signals(&runtime).map_err(CliError::Signals)?;
    crate::leaving::leave_on_ui_panic();
    let demo = if cli.demo_gui { Some(demo_gui_setup()?) } else { None };
    let settings_path = cli.config.clone().or_else(Settings::default_path);
    let mut settings = match &settings_path {
        Some(path) => Settings::load(path)?,
        None => Settings::default(),
    };
    settings.kiosk |= cli.kiosk;
    if let Some(demo) = &demo {
        settings.server_fingerprint = Some(demo.fingerprint);
    }
    let server = match (&demo, &cli.server, &settings.server) {
        (Some(demo), _, _) => demo.server.clone(),
        (None, Some(server), _) | (None, None, Some(server)) => server.clone(),
        (None, None, None) => {
            let path = settings_path.as_ref().map_or("the settings file".into(), |p| p.display().to_string());
            return Err(CliError::NoServer(path));
        }
    };
    let mac = terminal_mac(cli.mac.as_deref())?;
    let lang = cli.lang.as_deref().and_then(Lang::parse).or(settings.language).unwrap_or_else(Lang::from_system);
    let kiosk = settings.kiosk;
    let setup = Setup {
        server,
        mac,
        // The demo neither reads nor writes the user's keyring or settings.
        settings_path: if demo.is_some() { None } else { settings_path },
        memory: if demo.is_some() { Memory::in_memory() } else { Memory::Keyring },
        settings,
        runtime: runtime.handle().clone(),
        lang,
        demo_hint: demo.map(|demo| demo.hint),
        started,
    };
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("thindesk")
        .with_app_id("thindesk")
        .with_inner_size([width, height])
        .with_min_inner_size([560.0, 420.0]);
    if kiosk {
        viewport = viewport.with_fullscreen(true).with_decorations(false);
    }
    let options = eframe::NativeOptions { viewport, ..Default::default() };
    crate::leaving::watch_display();
    // Nothing in the windowing stack sets an I/O error handler of its own.
    crate::leaving::install_x_io_handler();
    let result = eframe::run_native(
        "thindesk",
        options,
        Box::new(|cc| {
            let app = App::new(cc, setup);
            crate::leaving::register(app.session());
            Ok(Box::new(app))
        }),
    );
    // The window closed (or could not open): the session is handed over before the
    // process ends.
    crate::leaving::hand_over_now();
    result.map_err(|e| CliError::Gui(e.to_string()))
}
