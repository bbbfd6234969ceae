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
    /// Keep the events in KurrentDB instead of the data directory's embedded log: a
    /// `kurrentdb://…` or `esdb://…` connection string (credentials and TLS settings as the
    /// official client takes them). Credentials and keys stay in the data directory.
    #[cfg(feature = "kurrentdb")]
    #[arg(long, env = "CSP_LEDGER_STORE")]
    pub store: Option<String>,
    /// Also serve the KurrentDB client protocol (gRPC) on this address, so that KurrentDB's
    /// official clients can read and follow the ledger. Basic authentication: any user name
    /// with an auditor or service key as password reads; user `admin` with the store-admin
    /// key may append (bypassing the domain's rules: for migration and tooling only).
    #[cfg(feature = "kurrentdb")]
    #[arg(long)]
    pub kurrentdb_listen: Option<SocketAddr>,
    /// A file holding the store-admin key for appends through the KurrentDB protocol
    /// (at least 32 characters). Alternatively set CSP_LEDGER_STORE_ADMIN_KEY. Without one,
    /// that door is read-only.
    #[cfg(feature = "kurrentdb")]
    #[arg(long)]
    pub store_admin_key_file: Option<PathBuf>,
}

/// The environment variable that may hold the operator key.
pub const OPERATOR_KEY_ENV: &str = "CSP_LEDGER_OPERATOR_KEY";

fn operator_key(args: &ServeArgs) -> anyhow::Result<String> {
    secret_key("operator", args.operator_key_file.as_ref(), OPERATOR_KEY_ENV)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no operator key: pass --operator-key-file <FILE> or set {OPERATOR_KEY_ENV} (at least {} characters); there is no default",
            server::OPERATOR_KEY_CHARS_MIN
        )
    })
}

/// A key from a file or an environment variable (`None`: neither given), checked for length.
fn secret_key(what: &str, file: Option<&PathBuf>, env: &str) -> anyhow::Result<Option<String>> {
    let key = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the {what} key from {}", path.display()))?,
        None => match std::env::var(env) {
            Ok(key) => key,
            Err(_) => return Ok(None),
        },
    };
    let key = key.trim().to_string();
    if key.chars().count() < server::OPERATOR_KEY_CHARS_MIN {
        bail!(
            "the {what} key must be at least {} characters",
            server::OPERATOR_KEY_CHARS_MIN
        );
    }
    Ok(Some(key))
}

/// The environment variable that may hold the store-admin key.
#[cfg(feature = "kurrentdb")]
pub const STORE_ADMIN_KEY_ENV: &str = "CSP_LEDGER_STORE_ADMIN_KEY";

/// The store the server runs on: the embedded log, or KurrentDB when `--store` says so.
enum Backend {
    Embedded(Arc<filelog::FileStore>),
    #[cfg(feature = "kurrentdb")]
    Kurrent(Arc<kurrentdb::KurrentStore>),
}

impl Backend {
    fn open(data: &DataDir, args: &ServeArgs) -> anyhow::Result<Self> {
        #[cfg(feature = "kurrentdb")]
        if let Some(url) = &args.store {
            let store =
                kurrentdb::KurrentStore::connect(url, kurrentdb::KurrentStoreConfig::default())
                    .context("connecting to KurrentDB")?;
            return Ok(Self::Kurrent(store));
        }
        let _ = args;
        Ok(Self::Embedded(data.open_store()?))
    }

    fn store(&self) -> Arc<dyn EventStore> {
        match self {
            Self::Embedded(store) => store.clone(),
            #[cfg(feature = "kurrentdb")]
            Self::Kurrent(store) => store.clone(),
        }
    }
}

/// Starts the KurrentDB protocol door when asked for; it stops when `stop` turns true.
#[cfg(feature = "kurrentdb")]
async fn start_kurrentdb_protocol(
    args: &ServeArgs,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(address) = args.kurrentdb_listen else {
        return Ok(None);
    };
    let store_admin = secret_key(
        "store-admin",
        args.store_admin_key_file.as_ref(),
        STORE_ADMIN_KEY_ENV,
    )?;
    let store = state.store_handle();
    let auth = kurrentdb::protocol::ProtocolAuth::new(move |user, password| {
        use kurrentdb::protocol::Principal;
        if user == "admin"
            && store_admin
                .as_deref()
                .is_some_and(|key| keys_equal(key, password))
        {
            return Some(Principal::StoreAdmin);
        }
        state
            .api_keys()
            .resolve(password)
            .map(|_| Principal::Reader)
    });
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} for the KurrentDB protocol"))?;
    let bound = listener.local_addr()?;
    println!("csp-ledger kurrentdb protocol on {bound}");
    let config = kurrentdb::protocol::ProtocolConfig { auth, tls: None };
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    Ok(Some(tokio::spawn(async move {
        if let Err(error) = kurrentdb::protocol::serve(store, listener, config, shutdown).await {
            tracing::error!(%error, "the KurrentDB protocol server stopped");
        }
    })))
}

/// Compares two secrets in time independent of where they differ.
#[cfg(feature = "kurrentdb")]
fn keys_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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
    let backend = Backend::open(data, args)?;
    let dyn_store: Arc<dyn EventStore> = backend.store();
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
    #[cfg(feature = "kurrentdb")]
    let protocol_stop = stop_receiver.clone();
    let state = AppState::new(
        handler.clone(),
        runner.handle(),
        keys,
        &operator_key,
        config,
        stop_receiver,
    )?;
    let state = Arc::new(state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data = %data.root().display(), "serving");
    // One line on stdout, so that scripts and tests learn the port.
    println!("csp-ledger listening on http://{address}");
    // The protocol door's line comes second, so the first line stays the HTTP address.
    #[cfg(feature = "kurrentdb")]
    let protocol = start_kurrentdb_protocol(args, state.clone(), protocol_stop).await?;
    let shutdown = async move {
        stop_signal().await;
        tracing::info!("stopping: no new connections; finishing requests in flight");
        let _ = stop_sender.send(true);
    };
    server::serve(listener, state, shutdown)
        .await
        .context("serving")?;
    #[cfg(feature = "kurrentdb")]
    if let Some(protocol) = protocol {
        let _ = protocol.await;
    }
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
    if let Backend::Embedded(file_store) = backend {
        tokio::task::spawn_blocking(move || file_store.close())
            .await
            .context("closing the event log")?;
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
