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
    /// Most HTTP connections served at once; more wait in the listen backlog.
    #[arg(long, default_value_t = 4096)]
    pub connections_max: usize,
    /// Trust this OpenID Connect issuer's tokens as directory proof of a tenant and its
    /// global admin (repeatable). May contain `{tenantid}`, as Entra ID's multi-tenant
    /// issuer `https://login.microsoftonline.com/{tenantid}/v2.0` does; it must then match
    /// the token's own tenant claim. Keys come from the issuer's discovery document.
    #[arg(long = "oidc-issuer", value_name = "URL")]
    pub oidc_issuers: Vec<String>,
    /// The audience directory tokens must name: the ledger's application id at the issuer
    /// (repeatable; needed with --oidc-issuer).
    #[arg(long = "oidc-audience", value_name = "ID")]
    pub oidc_audiences: Vec<String>,
    /// The claim naming the token's tenant.
    #[arg(long, default_value = "tid")]
    pub oidc_tenant_claim: String,
    /// The claim naming the directory user (`sub` is used when it is absent).
    #[arg(long, default_value = "oid")]
    pub oidc_user_claim: String,
    /// The claim listing the user's directory role ids.
    #[arg(long, default_value = "wids")]
    pub oidc_roles_claim: String,
    /// The role id that makes a tenant's global admin.
    #[arg(long, default_value = directory::GLOBAL_ADMIN_ROLE)]
    pub oidc_global_admin_role: String,
    /// Shortest time between two fetches of an issuer's keys (a token naming an unknown key
    /// id makes the ledger fetch them again, for key rotation).
    #[arg(long, default_value_t = 10)]
    pub oidc_keys_refetch_seconds: u64,
    /// Clock skew tolerated on directory tokens' `exp` and `nbf`, in seconds.
    #[arg(long, default_value_t = 60)]
    pub oidc_leeway_seconds: u64,
    /// Serve a development directory (an OpenID issuer with its own key in the data
    /// directory) under /dev-directory, and trust it: for the demo and trying the API on one
    /// machine. Refused unless --listen is a loopback address.
    #[arg(long)]
    pub dev_directory: bool,
    /// The signed checkpoints of the log's Merkle tree.
    #[command(flatten)]
    pub checkpoints: crate::verifiable::CheckpointArgs,
    /// Keep the events in KurrentDB instead of the data directory's embedded log: a
    /// `kurrentdb://…` or `esdb://…` connection string (credentials and TLS settings as the
    /// official client takes them). Credentials and keys stay in the data directory.
    #[cfg(feature = "kurrentdb")]
    #[arg(long, env = "CSP_LEDGER_STORE")]
    pub store: Option<String>,
    /// With --store: a prefix put before every stream name in KurrentDB, so that the ledger
    /// keeps to its own namespace of a shared database and ignores the rest of `$all`.
    #[cfg(feature = "kurrentdb")]
    #[arg(long, env = "CSP_LEDGER_STORE_NAMESPACE", default_value = "")]
    pub store_namespace: String,
    /// With --store: the writer lease's TTL. One `serve` at a time writes to a namespace;
    /// the others serve reads as replicas and take over when the writer's heartbeats stop
    /// for this long (see the kurrentdb crate's `lease` docs).
    #[cfg(feature = "kurrentdb")]
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub writer_lease_ttl_ms: u64,
    /// Also serve the KurrentDB client protocol (gRPC over TLS) on this address, so that
    /// KurrentDB's official clients can read and follow the ledger. Basic authentication:
    /// any user name with an auditor or service key as password reads; user `admin` with the
    /// store-admin key may append (checked as the ledger would read it, but bypassing the
    /// domain's rules: for migration and tooling only).
    #[cfg(feature = "kurrentdb")]
    #[arg(long)]
    pub kurrentdb_listen: Option<SocketAddr>,
    /// The KurrentDB door's TLS certificate chain (PEM, leaf first); with
    /// --kurrentdb-tls-key. Without them the door serves a certificate generated once into
    /// the data directory (`kurrentdb-tls/`, its authority's path printed), which it does
    /// only on a loopback address: elsewhere it refuses to start without one.
    #[cfg(feature = "kurrentdb")]
    #[arg(long, value_name = "FILE", requires = "kurrentdb_tls_key")]
    pub kurrentdb_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --kurrentdb-tls-cert.
    #[cfg(feature = "kurrentdb")]
    #[arg(long, value_name = "FILE", requires = "kurrentdb_tls_cert")]
    pub kurrentdb_tls_key: Option<PathBuf>,
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
            let holder = format!(
                "{}/pid-{}/{}",
                hostname(),
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            let config = kurrentdb::KurrentStoreConfig {
                namespace: args.store_namespace.clone(),
                lease: Some(kurrentdb::LeaseConfig {
                    holder,
                    ttl: std::time::Duration::from_millis(args.writer_lease_ttl_ms),
                }),
                ..kurrentdb::KurrentStoreConfig::default()
            };
            let store =
                kurrentdb::KurrentStore::connect(url, config).context("connecting to KurrentDB")?;
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

/// This machine's name, for the writer lease's holder.
#[cfg(feature = "kurrentdb")]
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Starts the KurrentDB protocol door when asked for; it stops when `stop` turns true.
#[cfg(feature = "kurrentdb")]
async fn start_kurrentdb_protocol(
    data: &DataDir,
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
        // The read policy decides who reads here too: the keys that may follow the feed.
        state.feed_key(password).then_some(Principal::Reader)
    });
    let tls = door_tls(data, args, address)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} for the KurrentDB protocol"))?;
    let bound = listener.local_addr()?;
    println!("csp-ledger kurrentdb protocol on {bound}");
    if let DoorTls::Generated(local) = &tls {
        // Clients need the authority to verify the door (tlsCaFile), so its path is printed
        // where scripts read the addresses.
        println!(
            "csp-ledger kurrentdb certificate authority {}",
            local.authority_path.display()
        );
    }
    let append_check = kurrentdb::protocol::AppendCheck::new(|stream, proposed| {
        proposed
            .into_iter()
            .map(|mut p| {
                if p.json {
                    // A JSON payload becomes the MessagePack the ledger keeps, then passes
                    // the same check as any other.
                    p.event.payload =
                        handler::payload_from_json(&p.event.event_type, &p.event.payload)
                            .map_err(|error| format!("JSON payload: {error}"))?
                            .encode()
                            .map_err(|error| error.to_string())?;
                }
                handler::admit_asserted(stream.as_str(), p.event, p.enveloped, KURRENTDB_DOOR)
            })
            .collect()
    });
    // Readers asking for JSON get each event the ledger can read in its JSON form; what it
    // cannot read (another application's events, a fault) is served as stored.
    let json_view = kurrentdb::JsonView::new(|event| match handler::read_event(event) {
        handler::LogEntry::Event(_, event) => handler::payload_to_json(&event).ok(),
        _ => None,
    });
    let config = kurrentdb::protocol::ProtocolConfig {
        auth,
        append_check,
        tls: Some(tls.identity()),
        json_view: Some(json_view),
    };
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

/// The door's TLS identity: given by files, or generated for a loopback door.
#[cfg(feature = "kurrentdb")]
enum DoorTls {
    Given(kurrentdb::TlsIdentity),
    Generated(kurrentdb::tls::LocalTls),
}

#[cfg(feature = "kurrentdb")]
impl DoorTls {
    fn identity(&self) -> kurrentdb::TlsIdentity {
        match self {
            Self::Given(identity) => identity.clone(),
            Self::Generated(local) => local.identity.clone(),
        }
    }
}

/// The door always serves TLS: official clients send credentials over nothing else. A
/// certificate is generated only for a loopback address, where no one else can be reached
/// by it; anywhere else the operator must give one that clients can verify.
#[cfg(feature = "kurrentdb")]
fn door_tls(data: &DataDir, args: &ServeArgs, address: SocketAddr) -> anyhow::Result<DoorTls> {
    if let (Some(certificate), Some(key)) = (&args.kurrentdb_tls_cert, &args.kurrentdb_tls_key) {
        let identity = kurrentdb::TlsIdentity::from_files(certificate, key)
            .context("reading the KurrentDB door's certificate and key")?;
        tracing::info!(certificate = %certificate.display(), "KurrentDB door serves TLS");
        return Ok(DoorTls::Given(identity));
    }
    if !address.ip().is_loopback() {
        bail!(
            "the KurrentDB door on {address} needs a certificate clients can verify: pass --kurrentdb-tls-cert FILE and --kurrentdb-tls-key FILE (a certificate is generated only for a loopback address)"
        );
    }
    let directory = data.root().join(KURRENTDB_TLS_DIR);
    let local = kurrentdb::tls::LocalTls::load_or_generate(
        &directory,
        &kurrentdb::tls::loopback_names(address.ip()),
    )
    .with_context(|| {
        format!(
            "the KurrentDB door's local certificate in {}",
            directory.display()
        )
    })?;
    tracing::info!(
        authority = %local.authority_path.display(),
        certificate = %local.certificate_path.display(),
        generated = local.generated,
        "KurrentDB door serves TLS with a locally generated certificate, for loopback only: clients trust it with tlsCaFile=<authority> (or tlsVerifyCert=false)"
    );
    Ok(DoorTls::Generated(local))
}

/// Where in the data directory the door's generated certificates are kept.
#[cfg(feature = "kurrentdb")]
const KURRENTDB_TLS_DIR: &str = "kurrentdb-tls";

/// How the door's appends record their actor's proof: asserted by this path.
#[cfg(feature = "kurrentdb")]
const KURRENTDB_DOOR: &str = "kurrentdb-door";

/// Compares two secrets in time independent of where they differ.
#[cfg(feature = "kurrentdb")]
fn keys_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The development directory's audience: the ledger's name as its own application.
pub const DEV_DIRECTORY_AUDIENCE: &str = "api://csp-ledger";

/// Configures the trusted directories: the `--oidc-issuer`s and the development directory.
fn directory_of(
    data: &DataDir,
    args: &ServeArgs,
    address: SocketAddr,
    state: AppState,
) -> anyhow::Result<AppState> {
    if !args.oidc_issuers.is_empty() && args.oidc_audiences.is_empty() {
        bail!("--oidc-issuer needs --oidc-audience: the ledger's application id at the issuer");
    }
    let mut issuers: Vec<directory::IssuerConfig> = args
        .oidc_issuers
        .iter()
        .map(|issuer| directory::IssuerConfig {
            issuer: issuer.clone(),
            audiences: args.oidc_audiences.clone(),
            discovery_url: None,
        })
        .collect();
    let dev = if args.dev_directory {
        let issuer = format!("http://{address}/dev-directory");
        let dev = directory::DevDirectory::load_or_create(
            &data.root().join("dev-directory.key"),
            issuer.clone(),
            DEV_DIRECTORY_AUDIENCE,
        )?;
        issuers.push(dev.issuer_config());
        tracing::warn!(
            %issuer,
            "development directory on: POST {issuer}/token mints directory tokens for any tenant; never use it in production"
        );
        Some(Arc::new(dev))
    } else {
        None
    };
    if issuers.is_empty() {
        tracing::info!(
            "no directory is trusted (--oidc-issuer, --dev-directory): enrollments and customer admins cannot sign in"
        );
        return Ok(state);
    }
    for issuer in &issuers {
        tracing::info!(issuer = %issuer.issuer, "trusting directory tokens");
    }
    let verifier = directory::Verifier::new(directory::DirectoryConfig {
        issuers,
        claims: directory::ClaimNames {
            tenant: args.oidc_tenant_claim.clone(),
            user: args.oidc_user_claim.clone(),
            roles: args.oidc_roles_claim.clone(),
            ..directory::ClaimNames::default()
        },
        global_admin_role: args.oidc_global_admin_role.clone(),
        keys_refetch_min: std::time::Duration::from_secs(args.oidc_keys_refetch_seconds),
        leeway: std::time::Duration::from_secs(args.oidc_leeway_seconds),
        ..directory::DirectoryConfig::default()
    })?;
    Ok(state.with_directory(Arc::new(verifier), dev))
}

/// SIGINT and SIGTERM, listened for from the start: a signal that arrives after the
/// listening lines are printed (a script that reads them and stops the server at once) must
/// stop the server cleanly, not find the default action that kills it.
struct StopSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn listen() -> anyhow::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignal {})
    }

    async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(data: &DataDir, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let stop_signal = StopSignal::listen()?;
    let operator_key = operator_key(args)?;
    let backend = Backend::open(data, args)?;
    // On KurrentDB: the writer lease first, so that a lone process writes from the start.
    #[cfg(feature = "kurrentdb")]
    if let Backend::Kurrent(store) = &backend {
        match store.try_take_lease().await {
            Ok(kurrentdb::LeaseRole::Writer { epoch }) => {
                tracing::info!(epoch, "this process writes (it holds the writer lease)")
            }
            Ok(kurrentdb::LeaseRole::Replica { holder }) => tracing::info!(
                holder = holder.as_deref().unwrap_or("nobody"),
                "this process is a read replica until the writer lease is free"
            ),
            Err(error) => {
                tracing::warn!(%error, "could not take the writer lease yet; trying again")
            }
        }
    }
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
    let tree = crate::verifiable::start(data, &args.checkpoints, handler.store().clone()).await?;
    let keys = ApiKeys::open(data.api_keys()).context("opening the api key file")?;
    let config = ServerConfig {
        sse_heartbeat: std::time::Duration::from_secs(args.heartbeat_seconds.max(1)),
        session_ttl: std::time::Duration::from_secs(args.session_minutes.max(1) * 60),
        connections_max: args.connections_max.max(1),
        ..ServerConfig::default()
    };
    let (stop_sender, stop_receiver) = watch::channel(false);
    #[cfg(feature = "kurrentdb")]
    let protocol_stop = stop_receiver.clone();
    #[cfg(feature = "kurrentdb")]
    let lease = match &backend {
        Backend::Kurrent(store) => {
            Some(tokio::spawn(store.clone().run_lease(stop_receiver.clone())))
        }
        Backend::Embedded(_) => None,
    };
    if args.dev_directory && !args.listen.ip().is_loopback() {
        bail!(
            "--dev-directory mints tokens for anyone who asks: it is refused on {} (listen on a loopback address, or trust a real directory with --oidc-issuer)",
            args.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let state = AppState::new(
        handler.clone(),
        runner.handle(),
        keys,
        &operator_key,
        config,
        stop_receiver,
    )?
    .with_sessions_file(data.sessions())
    .with_transparency(tree.clone());
    let state = Arc::new(directory_of(data, args, address, state)?);
    tracing::info!(%address, data = %data.root().display(), "serving");
    // One line on stdout, so that scripts and tests learn the port.
    println!("csp-ledger listening on http://{address}");
    // The protocol door's line comes second, so the first line stays the HTTP address.
    #[cfg(feature = "kurrentdb")]
    let protocol = start_kurrentdb_protocol(data, args, state.clone(), protocol_stop).await?;
    // The development directory's hint comes after the lines scripts read.
    if args.dev_directory {
        // Only a hint for a person: a closed stdout (a script that read the address and
        // went away) must not stop the server.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stdout(),
            "development directory: a token for a tenant's global admin: curl -s -X POST http://{address}/dev-directory/token -H 'content-type: application/json' -d '{{\"tenant_id\":\"<uuid>\",\"email\":\"admin@example.com\",\"name\":\"Ada Admin\"}}'"
        );
    }
    let shutdown = async move {
        stop_signal.received().await;
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
    // Released after the last request: the next writer may take over at once.
    #[cfg(feature = "kurrentdb")]
    if let Some(lease) = lease {
        let _ = lease.await;
    }
    crate::verifiable::stop(&tree).await;
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
