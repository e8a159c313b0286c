//! The command line: flags over the environment over the settings file.

use crate::app::{App, Setup};
use crate::i18n::Lang;
use crate::settings::{Memory, Settings};
use clap::Parser;
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
    #[arg(long, default_value = "960x680")]
    pub size: String,
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
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
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
        .init();
    match run(Cli::parse(), started) {
        Ok(()) => ExitCode::SUCCESS,
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

fn run(cli: Cli, started: Instant) -> Result<(), CliError> {
    let (width, height) = cli
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<f32>().ok()?, h.parse::<f32>().ok()?)))
        .ok_or(CliError::Size)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("thindesk-bg")
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let settings_path = cli.config.clone().or_else(Settings::default_path);
    let mut settings = match &settings_path {
        Some(path) => Settings::load(path)?,
        None => Settings::default(),
    };
    settings.kiosk |= cli.kiosk;
    let demo = if cli.demo { Some(runtime.block_on(crate::demo::start())?) } else { None };
    // The demo's machine must not outlive the client, however it ends: a Ctrl-C in
    // the terminal, or SIGTERM, stops the demo before the process exits. The signals
    // are caught from here on, before anyone is told the demo exists.
    let signals = match &demo {
        Some(_) => Some(DemoSignals::catch(&runtime).map_err(CliError::Runtime)?),
        None => None,
    };
    let server = match (&demo, &cli.server, &settings.server) {
        (Some(demo), _, _) => demo.server.url(),
        (None, Some(server), _) | (None, None, Some(server)) => server.clone(),
        (None, None, None) => {
            let path = settings_path.as_ref().map_or("the settings file".into(), |p| p.display().to_string());
            return Err(CliError::NoServer(path));
        }
    };
    let mac = terminal_mac(cli.mac.as_deref())?;
    let lang = cli.lang.as_deref().and_then(Lang::parse).or(settings.language).unwrap_or_else(Lang::from_system);
    let demo_hint = demo.as_ref().map(|demo| {
        let (student, admin) = (&demo.logins.student, &demo.logins.admin);
        let hint = format!("Demo: {} / {}   ·   administrator: {} / {}", student.0, student.1, admin.0, admin.1);
        println!("{hint}");
        println!("Demo server at {} (data in {}, removed on exit)", demo.url(), demo.data_dir().display());
        hint
    });
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
        demo_hint,
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
    let demo = std::sync::Arc::new(std::sync::Mutex::new(demo));
    let gui: Window = std::sync::Arc::default();
    let signalled = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    if let Some(signals) = signals {
        runtime.spawn(signals.stop_demo(demo.clone(), gui.clone(), signalled.clone()));
    }
    let result = eframe::run_native(
        "thindesk",
        options,
        Box::new(|cc| {
            let _ = gui.context.set(cc.egui_ctx.clone());
            gui.up.store(true, std::sync::atomic::Ordering::SeqCst);
            // A signal that came while the window was being made found no window to
            // close and left that to us (the signal's side stores its code before it
            // looks for the window, we publish the window before we look for a code:
            // one of the two always sees the other).
            if signalled.load(std::sync::atomic::Ordering::SeqCst) != 0 {
                cc.egui_ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Ok(Box::new(App::new(cc, setup)))
        }),
    );
    if let Some(demo) = take_demo(&demo) {
        runtime.block_on(demo.stop());
    }
    // Exiting here, on the main thread once the window and its GL context are gone,
    // rather than from the signal's thread while a frame may be drawing.
    let code = signalled.load(std::sync::atomic::Ordering::SeqCst);
    if code != 0 {
        std::process::exit(code);
    }
    result.map_err(|e| CliError::Gui(e.to_string()))
}

type SharedDemo = std::sync::Arc<std::sync::Mutex<Option<crate::demo::Demo>>>;

/// The window, once made, for a signal to close.
#[derive(Default)]
struct MadeWindow {
    context: std::sync::OnceLock<egui::Context>,
    /// Set after `context`, with the signal's code read after it (both sequentially
    /// consistent), so that a signal and the window's making never miss each other.
    up: std::sync::atomic::AtomicBool,
}

type Window = std::sync::Arc<MadeWindow>;

/// The demo, for whoever stops it first: the end of the window, or a signal.
fn take_demo(demo: &SharedDemo) -> Option<crate::demo::Demo> {
    demo.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
}

/// SIGINT and SIGTERM, caught for as long as the demo runs.
struct DemoSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl DemoSignals {
    fn catch(runtime: &tokio::runtime::Runtime) -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let _context = runtime.enter();
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Waits for either signal, stops the demo (its machine and files), then closes
    /// the window; the main thread exits with the signal's code. Nothing here exits
    /// while the window is still being made (another thread calling `exit()` then
    /// tears the graphics library down under it): a window not made yet closes itself
    /// when it sees the code. Should an open window not close (a kiosk refuses), the
    /// process exits from here after a grace period.
    async fn stop_demo(
        mut self,
        demo: SharedDemo,
        gui: Window,
        signalled: std::sync::Arc<std::sync::atomic::AtomicI32>,
    ) {
        let (signal_name, code) = tokio::select! {
            _ = self.interrupt.recv() => ("interrupt", 130),
            _ = self.terminate.recv() => ("terminate", 143),
        };
        if let Some(demo) = take_demo(&demo) {
            tracing::info!(signal = signal_name, "stopping the demo: destroying its machine");
            demo.stop().await;
        }
        signalled.store(code, std::sync::atomic::Ordering::SeqCst);
        if gui.up.load(std::sync::atomic::Ordering::SeqCst)
            && let Some(ctx) = gui.context.get()
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            ctx.request_repaint();
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            std::process::exit(code);
        }
    }
}
