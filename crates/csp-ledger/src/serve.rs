//! `serve`: the HTTP API over the data directory, with the read models kept live, until
//! SIGINT or SIGTERM.
//!
//! Shutdown is graceful: the listener stops, event feeds get a closing message, requests in
//! flight finish (a command acknowledged was fsynced before its response), then the read
//! models save a checkpoint and the store closes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use projections::{Runner, RunnerConfig};
use server::{ApiKeys, AppState, Handler, ServerConfig};
use store::EventStore;
use tokio::sync::watch;

use crate::DataDir;

/// Where the operator key comes from: never a default, never the command line (argv is
/// visible to every local user through `ps`).
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A file holding the operator key (at least 32 characters). Alternatively set
    /// CSP_LEDGER_OPERATOR_KEY. The server refuses to start without one.
    #[arg(long)]
    pub operator_key_file: Option<PathBuf>,
    /// Seconds between heartbeat comments on event feeds.
    #[arg(long, default_value_t = 15)]
    pub heartbeat_seconds: u64,
    /// Minutes a session token lasts.
    #[arg(long, default_value_t = 60)]
    pub session_minutes: u64,
}

/// The environment variable that may hold the operator key.
pub const OPERATOR_KEY_ENV: &str = "CSP_LEDGER_OPERATOR_KEY";

fn operator_key(args: &ServeArgs) -> anyhow::Result<String> {
    let key = match &args.operator_key_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the operator key from {}", path.display()))?,
        None => match std::env::var(OPERATOR_KEY_ENV) {
            Ok(key) => key,
            Err(_) => bail!(
                "no operator key: pass --operator-key-file <FILE> or set {OPERATOR_KEY_ENV} (at least {} characters); there is no default",
                server::OPERATOR_KEY_CHARS_MIN
            ),
        },
    };
    let key = key.trim().to_string();
    if key.chars().count() < server::OPERATOR_KEY_CHARS_MIN {
        bail!(
            "the operator key must be at least {} characters",
            server::OPERATOR_KEY_CHARS_MIN
        );
    }
    Ok(key)
}

/// Waits for SIGINT or SIGTERM.
async fn stop_signal() {
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
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(data: &DataDir, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let operator_key = operator_key(args)?;
    let file_store = data.open_store()?;
    let dyn_store: Arc<dyn EventStore> = file_store.clone();
    let handler: Arc<Handler> = Arc::new(data.open_handler_over(dyn_store).await?);
    let store: Arc<dyn EventStore> = handler.store().clone();
    let runner = Runner::start(
        store,
        RunnerConfig {
            checkpoint_path: Some(data.projections_checkpoint()),
            ..RunnerConfig::default()
        },
    )
    .await
    .context("starting the read models")?;
    let keys = ApiKeys::open(data.api_keys()).context("opening the api key file")?;
    let config = ServerConfig {
        sse_heartbeat: std::time::Duration::from_secs(args.heartbeat_seconds.max(1)),
        session_ttl: std::time::Duration::from_secs(args.session_minutes.max(1) * 60),
        ..ServerConfig::default()
    };
    let (stop_sender, stop_receiver) = watch::channel(false);
    let state = AppState::new(
        handler.clone(),
        runner.handle(),
        keys,
        &operator_key,
        config,
        stop_receiver,
    )?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data = %data.root().display(), "serving");
    // One line on stdout, so that scripts and tests learn the port.
    println!("csp-ledger listening on http://{address}");
    let shutdown = async move {
        stop_signal().await;
        tracing::info!("stopping: no new connections; finishing requests in flight");
        let _ = stop_sender.send(true);
    };
    server::serve(listener, Arc::new(state), shutdown)
        .await
        .context("serving")?;
    let checkpoint = runner.handle();
    runner.stop();
    if let Err(error) = checkpoint
        .save_checkpoint(data.projections_checkpoint())
        .await
    {
        tracing::warn!(%error, "saving the read models' checkpoint at shutdown");
    }
    // Every acknowledged append is already durable; closing waits for the writer anyway, so
    // that nothing queued is left behind and the directory's lock is released.
    tokio::task::spawn_blocking(move || file_store.close())
        .await
        .context("closing the event log")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
