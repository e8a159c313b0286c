//! `thindesk-load`: the real `thindesk-server` binary under a class's load (issue 11).
//!
//! Scenarios, each against a server process of its own over HTTP on loopback, every
//! terminal from its own address (127.1.x.y):
//! - `login-storm`: 500 terminals ask for a token at the same instant;
//! - `poll`: 2,000 terminals poll `/terminals/<mac>` and their desktops;
//! - `throughput`: the token-authenticated desktops list beside a warp hello-world
//!   served by this binary (`hello`), same connections, same run;
//! - `tls`: HTTPS beside plain HTTP on one server: kept-alive requests, and a new
//!   connection for each request (the handshake's cost);
//! - `connect`: 40 students press Connect at once on real QEMU machines.
//!
//! `all` runs the five. Users, places, terminals and desktops are seeded once through
//! the server's command line and admin API and kept in the work directory.

mod http;
mod scenarios;
mod server;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "Load harness for thindesk-server (issue 11)")]
struct Cli {
    /// The server binary [default: thindesk-server beside this program]
    #[arg(long, global = true)]
    server: Option<PathBuf>,
    /// Seeded data, logs and results [default: thindesk-load/ in the target directory]
    #[arg(long, global = true)]
    work_dir: Option<PathBuf>,
    /// Shorter runs: the poll lasts 1 minute instead of 10, throughput 10 s instead of 30
    #[arg(long, global = true)]
    quick: bool,
    /// Run the login storm's server under `/usr/bin/time -v` and report its maximum
    /// resident size beside this harness's own reading
    #[arg(long, global = true)]
    time_v: bool,
    #[command(subcommand)]
    command: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Every scenario, in order
    All,
    /// 500 terminals log in at once
    LoginStorm {
        #[arg(long, default_value_t = 500)]
        terminals: usize,
        /// How long to wait after the storm before reading the server's memory again
        #[arg(long, default_value_t = 60)]
        settle_secs: u64,
    },
    /// 2,000 terminals poll their terminal record and desktops
    Poll {
        #[arg(long, default_value_t = 2000)]
        terminals: usize,
        /// Default: 600 s, or 60 s with --quick
        #[arg(long)]
        duration_secs: Option<u64>,
        /// Each terminal's polling interval (the client refreshes every 5 s)
        #[arg(long, default_value_t = 5)]
        interval_secs: u64,
    },
    /// Desktops list against a warp hello-world, same connections
    Throughput {
        #[arg(long, default_value_t = 500)]
        connections: usize,
        /// Default: 30 s each, or 10 s with --quick
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// HTTPS beside plain HTTP: kept-alive requests, and a new connection each
    Tls {
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Default: 30 s, or 12 s with --quick (each transport gets half)
        #[arg(long)]
        duration_secs: Option<u64>,
        /// Requests on a new connection each, per transport
        #[arg(long, default_value_t = 4000)]
        handshakes: usize,
    },
    /// 40 students press Connect at once on real VMs
    Connect {
        #[arg(long, default_value_t = 40)]
        students: usize,
    },
    /// (internal) serve a warp hello-world on LISTEN until killed
    Hello {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Scenario::Hello { listen } = cli.command {
        // The same runtime shape as the server's: tokio's default multi-threaded one.
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(async move {
            use warp::Filter;
            let hello = warp::path("hello").map(|| "Hello, World!");
            warp::serve(hello).run(listen).await;
        });
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("the program's directory")?.to_owned();
    let server = cli.server.clone().unwrap_or_else(|| bin_dir.join("thindesk-server"));
    anyhow::ensure!(
        server.is_file(),
        "{} is missing: build it first (cargo build --release -p thindesk-server)",
        server.display()
    );
    let work_dir = match &cli.work_dir {
        Some(dir) => dir.clone(),
        None => bin_dir.parent().context("the target directory")?.join("thindesk-load"),
    };
    std::fs::create_dir_all(&work_dir)?;
    let (before, after) = server::raise_fd_limit();
    println!(
        "open files: soft limit {} raised to {} for this harness and the servers it starts \
         (thindesk-server does not raise its own)",
        before.map_or("unlimited".into(), |n| n.to_string()),
        after.map_or("unlimited".into(), |n| n.to_string())
    );
    let harness = scenarios::Harness { server, work_dir, hello: exe, quick: cli.quick, time_v: cli.time_v };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Scenario::All => {
                harness.login_storm(500, 60).await?;
                let poll = if harness.quick { 60 } else { 600 };
                harness.poll(2000, Duration::from_secs(poll), Duration::from_secs(5)).await?;
                let seconds = if harness.quick { 10 } else { 30 };
                harness.throughput(500, Duration::from_secs(seconds)).await?;
                harness.tls(100, Duration::from_secs(if harness.quick { 12 } else { 30 }), 4000).await?;
                harness.connect(40).await
            }
            Scenario::LoginStorm { terminals, settle_secs } => harness.login_storm(terminals, settle_secs).await,
            Scenario::Poll { terminals, duration_secs, interval_secs } => {
                let seconds = duration_secs.unwrap_or(if harness.quick { 60 } else { 600 });
                harness.poll(terminals, Duration::from_secs(seconds), Duration::from_secs(interval_secs)).await
            }
            Scenario::Throughput { connections, duration_secs } => {
                let seconds = duration_secs.unwrap_or(if harness.quick { 10 } else { 30 });
                harness.throughput(connections, Duration::from_secs(seconds)).await
            }
            Scenario::Tls { connections, duration_secs, handshakes } => {
                let seconds = duration_secs.unwrap_or(if harness.quick { 12 } else { 30 });
                harness.tls(connections, Duration::from_secs(seconds), handshakes).await
            }
            Scenario::Connect { students } => harness.connect(students).await,
            Scenario::Hello { .. } => Ok(()),
        }
    })
}
