//! `apply`: JSON Lines of commands through the command handler — the bulk-import path.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context as _;
use domain::{Actor, Command};
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use handler::{CommandRequest, HandleError, IssuedSecret, Outcome};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::DataDir;

/// Longest accepted line: a command is a few hundred bytes; a megabyte is a mistake.
const LINE_BYTES_MAX: usize = 1024 * 1024;

/// One line of input: the same command JSON the HTTP API takes, with its actor and id.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandLine {
    /// Client-chosen; applying the same file twice records nothing new.
    pub command_id: Uuid,
    /// Who issues the command.
    pub actor: Actor,
    /// The command.
    pub command: Command,
    /// The business conversation, if the caller tracks one.
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
}

impl From<CommandLine> for CommandRequest {
    fn from(line: CommandLine) -> Self {
        CommandRequest {
            command_id: line.command_id,
            actor: line.actor,
            // A command file names its actors; nothing proves them.
            proof: domain::Proof::Asserted { by: "apply".into() },
            command: line.command,
            correlation_id: line.correlation_id,
        }
    }
}

pub async fn run(
    data: &DataDir,
    file: &str,
    keep_going: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let input: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {file}"))?,
        ))
    };
    let handler = data.open_handler().await?;
    let mut tally = Tally::default();
    // Lines are decided in order, each on the ones before it, and queued without waiting
    // for their fsync; their answers are printed in order as they become durable.
    let mut window = FuturesOrdered::new();
    // On standard error, and only when it is a terminal: long imports take minutes.
    let progress = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}  {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > LINE_BYTES_MAX {
            anyhow::bail!(
                "line {number} is longer than {LINE_BYTES_MAX} bytes; nothing applied from it"
            );
        }
        let parsed: CommandLine = serde_json::from_str(&line).with_context(|| {
            format!("line {number} is not a valid command; nothing applied from it")
        })?;
        let name = parsed.command.name();
        let queued = handler.queue(parsed.into()).await;
        let refused_now = matches!(queued, Err(HandleError::Rejected(_)));
        window.push_back(async move {
            let answer = match queued {
                Ok(durable) => durable.await,
                Err(error) => Err(error),
            };
            (number, name, answer)
        });
        while window.len() >= IN_FLIGHT_MAX || (refused_now && !window.is_empty()) {
            if let Some((number, name, answer)) = window.next().await {
                tally.report(number, name, answer, json)?;
            }
        }
        progress.set_position(number as u64);
        if number.is_multiple_of(1024) {
            progress.set_message(format!(
                "{number} lines: {} recorded, {} refused, {} replayed",
                tally.recorded, tally.refused, tally.replayed
            ));
        }
        if refused_now && !keep_going {
            break;
        }
    }
    while let Some((number, name, answer)) = window.next().await {
        tally.report(number, name, answer, json)?;
    }
    progress.finish_and_clear();
    tally.summary(json);
    Ok(if tally.refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Commands decided and queued but not yet durable, at most: enough to fill the store's
/// group commits, few enough to bound memory.
const IN_FLIGHT_MAX: usize = 1024;

/// How the lines went.
#[derive(Default)]
struct Tally {
    recorded: u64,
    refused: u64,
    replayed: u64,
}

impl Tally {
    /// Prints one line's answer; a failure that is not a refusal stops the run.
    fn report(
        &mut self,
        number: usize,
        name: &str,
        answer: Result<Outcome, HandleError>,
        json: bool,
    ) -> anyhow::Result<()> {
        match answer {
            Ok(outcome) => {
                if outcome.replayed {
                    self.replayed += 1;
                } else {
                    self.recorded += 1;
                }
                print_outcome(number, name, &outcome, json);
            }
            Err(HandleError::Rejected(rejection)) => {
                self.refused += 1;
                if json {
                    println!(
                        "{}",
                        json!({"line": number, "command": name, "status": "refused", "rule": rejection.rule(), "message": rejection.to_string()})
                    );
                } else {
                    println!(
                        "line {number}: {name} refused [{}]: {rejection}",
                        rejection.rule()
                    );
                }
            }
            Err(error) => {
                return Err(error).with_context(|| format!("line {number}: {name} failed"));
            }
        }
        Ok(())
    }

    fn summary(&self, json: bool) {
        if json {
            println!(
                "{}",
                json!({"summary": {"recorded": self.recorded, "refused": self.refused, "replayed": self.replayed}})
            );
        } else {
            println!(
                "{} recorded, {} refused, {} replayed",
                self.recorded, self.refused, self.replayed
            );
        }
    }
}

fn print_outcome(number: usize, name: &str, outcome: &Outcome, json: bool) {
    let positions: Vec<u64> = outcome.events.iter().map(|e| e.position.0).collect();
    let status = if outcome.replayed {
        "replayed"
    } else {
        "recorded"
    };
    if json {
        let secrets: Vec<_> = outcome.secrets.iter().map(secret_json).collect();
        println!(
            "{}",
            json!({"line": number, "command": name, "status": status, "stream": outcome.stream, "revision": outcome.revision, "positions": positions, "events": outcome.events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), "secrets": secrets})
        );
    } else {
        let types: Vec<&str> = outcome
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        println!(
            "line {number}: {name} {status}: {}@{} {} at {:?}",
            outcome.stream,
            outcome.revision,
            types.join(", "),
            positions
        );
        for secret in &outcome.secrets {
            println!("  {}", secret_text(secret));
        }
    }
}

/// A secret for a machine reader (shown once; the ledger keeps no copy).
pub fn secret_json(secret: &IssuedSecret) -> serde_json::Value {
    match secret {
        IssuedSecret::LinkToken(token) => json!({"kind": "link_token", "token": token}),
        IssuedSecret::TemporaryPassword { user_id, password } => {
            json!({"kind": "temporary_password", "user_id": user_id, "password": password})
        }
    }
}

/// A secret for a person.
pub fn secret_text(secret: &IssuedSecret) -> String {
    match secret {
        IssuedSecret::LinkToken(token) => format!("link token (shown once): {token}"),
        IssuedSecret::TemporaryPassword { user_id, password } => {
            format!("temporary password of user {user_id} (shown once): {password}")
        }
    }
}
