//! `pam-sim`: run the stand-ins on loopback for the demo, the benchmark and manual tries.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

/// Loopback stand-ins for PVWA (self-hosted or Privilege Cloud), Exchange (EWS and Graph),
/// ServiceNow, Remedy and Remote Access.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Scenario file (TOML) with the initial state.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8443")]
    bind: SocketAddr,
    /// Serve HTTPS with a test CA kept in this directory (generated when missing).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// Write the base URL to this file once listening (for scripts).
    #[arg(long)]
    url_file: Option<PathBuf>,
    /// Latency added to every call, in milliseconds (all stand-ins).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Play Privilege Cloud instead of the scenario's PVWA mode: Identity Bearer tokens from
    /// `/oauth2/platformtoken`, no PVWA logon.
    #[arg(long)]
    privilege_cloud: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let mut scenario = match &args.scenario {
        Some(p) => pam_sim::Scenario::load(p)?,
        None => pam_sim::Scenario::default(),
    };
    if args.privilege_cloud {
        scenario.pvwa.mode = pam_sim::pvwa::PvwaMode::PrivilegeCloud;
    }
    let sim = pam_sim::Sim::start(
        scenario,
        pam_sim::SimOptions {
            bind: args.bind,
            tls_dir: args.tls_dir.clone(),
        },
    )
    .await?;
    if args.latency_ms > 0 {
        sim.state.faults.set(
            "all",
            pam_sim::faults::Faults {
                latency_ms: args.latency_ms,
                ..Default::default()
            },
        );
    }
    if let Some(f) = &args.url_file {
        std::fs::write(f, format!("{}\n", sim.url()))?;
    }
    log::info!("pam-sim listening on {}", sim.url());
    if let Some(ca) = &sim.ca_cert {
        log::info!("clients must trust {}", ca.display());
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.stop().await;
    Ok(())
}
