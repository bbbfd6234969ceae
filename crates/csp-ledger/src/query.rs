//! `query <what>` and `replay`: the §5 queries and a full rebuild of the read models, from
//! the log in the data directory.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use projections::Progress;
use projections::dispatch::{Everything, Query, parse_as_of, run, view};
use store::EventStore;

use crate::DataDir;

/// The parameters of a query.
#[derive(Clone, Debug, clap::Args)]
pub struct QueryArgs {
    /// The query: reseller-of-record, may-order, ordering-pairs, providers, resellers,
    /// shared-customers, customers, partner, users, user, can, admin-access,
    /// tenant-admin-access.
    pub what: String,
    /// A customer id.
    #[arg(long)]
    pub customer: Option<String>,
    /// A provider's partner id.
    #[arg(long)]
    pub provider: Option<String>,
    /// A reseller's partner id.
    #[arg(long)]
    pub reseller: Option<String>,
    /// A partner id.
    #[arg(long)]
    pub partner: Option<String>,
    /// A user id.
    #[arg(long)]
    pub user: Option<String>,
    /// A capability name (such as submit_orders).
    #[arg(long)]
    pub capability: Option<String>,
    /// Answer as of a global position or an RFC 3339 time.
    #[arg(long)]
    pub as_of: Option<String>,
    /// List the events behind the answer.
    #[arg(long)]
    pub explain: bool,
}

/// Builds the read models from the log as it is at open (read-only: a `serve` may be
/// writing it meanwhile).
async fn build(
    data: &DataDir,
    progress: &mut dyn FnMut(&Progress),
) -> anyhow::Result<projections::Projections> {
    let store = data.open_reader(false)?;
    projections::rebuild(store.as_ref() as &dyn EventStore, progress)
        .await
        .context("building the read models from the log")
}

pub async fn query(data: &DataDir, args: &QueryArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut params = HashMap::new();
    for (name, value) in [
        ("customer", &args.customer),
        ("provider", &args.provider),
        ("reseller", &args.reseller),
        ("partner", &args.partner),
        ("user", &args.user),
        ("capability", &args.capability),
    ] {
        if let Some(value) = value {
            params.insert(name.to_string(), value.clone());
        }
    }
    let query = Query::parse(&args.what, &params).map_err(|e| anyhow::anyhow!("{e}"))?;
    let as_of = args
        .as_of
        .as_deref()
        .map(parse_as_of)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let projections = build(data, &mut |_| {}).await?;
    let view = view(&projections, as_of, chrono::Utc::now()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let answer =
        run(&view, &query, args.explain, &Everything).map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        println!("{}", serde_json::to_string(&answer)?);
    } else {
        println!(
            "{} at position {} ({})",
            answer.query,
            answer
                .position
                .map_or("(empty log)".to_string(), |p| p.to_string()),
            answer.instant.to_rfc3339()
        );
        println!("{}", serde_json::to_string_pretty(&answer.answer)?);
        if let Some(explanation) = &answer.explanation {
            println!("because of:");
            for event in explanation {
                println!(
                    "  {:>8}  {}  {}  {}  by {}",
                    event["position"],
                    event["recorded_at"].as_str().unwrap_or(""),
                    event["stream"].as_str().unwrap_or(""),
                    event["event_type"].as_str().unwrap_or(""),
                    crate::render::actor_short(event["actor"].as_str().unwrap_or("")),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn replay(data: &DataDir, checkpoint: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events  {per_sec}  {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let projections = build(data, &mut |progress| {
        if let Some(total) = progress.events_total {
            bar.set_length(total);
        }
        bar.set_position(progress.events_done);
    })
    .await?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let events = projections.events_applied();
    let rate = events as f64 / elapsed.as_secs_f64().max(1e-9);
    // The next `serve` resumes from the rebuilt models instead of replaying the log again.
    let image = projections::checkpoint::encode(&projections)?;
    projections::checkpoint::write_image(checkpoint, &image)?;
    let saved = true;
    if json {
        println!(
            "{}",
            serde_json::json!({"events": events, "position": projections.position(), "seconds": elapsed.as_secs_f64(), "events_per_second": rate, "checkpoint_saved": saved})
        );
    } else {
        println!(
            "rebuilt every projection from {events} events in {:.2}s ({rate:.0} events/s), at position {}",
            elapsed.as_secs_f64(),
            projections
                .position()
                .map_or("(empty log)".to_string(), |p| p.to_string())
        );
        if saved {
            println!(
                "checkpoint written to {}",
                data.projections_checkpoint().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
