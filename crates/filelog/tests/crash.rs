//! Crash test: a child process appends in a loop and prints each acknowledged position; it is
//! killed with SIGKILL at random moments, and every acknowledged event must survive, intact
//! and in order, with the chain verifying.
//!
//! About 20 rounds by default; set `CSP_LEDGER_CRASH_ROUNDS` for more.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{open, read_all, stream};
use rand::Rng;
use store::{EventStore, ExpectedRevision, NewEvent};
use uuid::Uuid;

/// Small segments, so that kills also land during segment roll-over.
const SEGMENT_BYTES_MAX: u64 = 16 * 1024;
/// Concurrent writers in the child, so that kills land in group commits.
const WRITERS: usize = 4;

fn payload_of(id: Uuid) -> Vec<u8> {
    id.as_bytes().iter().cycle().take(200).copied().collect()
}

fn crash_event() -> NewEvent {
    let id = Uuid::now_v7();
    NewEvent {
        event_id: id,
        event_type: "CrashTested".into(),
        schema_version: 1,
        recorded_at: chrono::Utc::now(),
        actor: "crash-writer".into(),
        command_id: Uuid::now_v7(),
        correlation_id: id,
        causation_id: id,
        payload: payload_of(id),
    }
}

/// The child: appends forever (until killed, or 30 s), printing `ACK <position> <event id>`
/// for every acknowledged event.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("FILELOG_CRASH_DIR") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async move {
        let store = open(std::path::Path::new(&dir), SEGMENT_BYTES_MAX);
        let deadline = Instant::now() + Duration::from_secs(30);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    let name = stream(&format!("crash-{writer}"));
                    let mut round = 0usize;
                    while Instant::now() < deadline {
                        round += 1;
                        let batch: Vec<NewEvent> =
                            (0..1 + round % 3).map(|_| crash_event()).collect();
                        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
                        let result = store
                            .append(&name, ExpectedRevision::Any, batch)
                            .await
                            .unwrap_or_else(|e| panic!("append: {e}"));
                        let mut out = std::io::stdout().lock();
                        for (position, id) in result.positions.iter().zip(ids) {
                            let _ = writeln!(out, "\nACK {} {}", position.0, id.as_u128());
                        }
                        let _ = out.flush();
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let rounds: usize = std::env::var("CSP_LEDGER_CRASH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut acknowledged: Vec<(u64, u128)> = Vec::new();
    let mut rng = rand::thread_rng();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("FILELOG_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning the writer: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(rest) = line.strip_prefix("ACK ") else {
                    continue;
                };
                let mut fields = rest.split(' ');
                let position = fields.next().and_then(|p| p.parse::<u64>().ok());
                let id = fields.next().and_then(|id| id.parse::<u128>().ok());
                // A line cut by the kill is not complete: it was never fully reported.
                if let (Some(position), Some(id)) = (position, id) {
                    acks.push((position, id));
                }
            }
            acks
        });
        let delay_ms = rng.gen_range(5..150);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.kill().unwrap_or_else(|e| panic!("SIGKILL: {e}"));
        let _ = child.wait();
        let acks = reader.join().unwrap_or_else(|_| panic!("reader thread"));
        acknowledged.extend(acks);

        let store = open(dir.path(), SEGMENT_BYTES_MAX);
        let events = read_all(&store).await;
        for (index, event) in events.iter().enumerate() {
            assert_eq!(
                event.position.0, index as u64,
                "positions are dense and in order"
            );
            assert_eq!(
                event.payload,
                payload_of(event.event_id),
                "payload intact at {index}"
            );
        }
        for &(position, id) in &acknowledged {
            let event = events.get(position as usize).unwrap_or_else(|| {
                panic!(
                    "round {round}: acknowledged position {position} lost ({} events on disk)",
                    events.len()
                )
            });
            assert_eq!(
                event.event_id.as_u128(),
                id,
                "round {round}: position {position} holds another event"
            );
        }
        let report = store.verify().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.damage, None, "round {round}");
        assert_eq!(report.records_intact, events.len() as u64);
        store.close();
        drop(store);
    }
    assert!(
        !acknowledged.is_empty(),
        "the writer never got an append acknowledged"
    );
    eprintln!(
        "{rounds} rounds, {} acknowledged events checked",
        acknowledged.len()
    );
}
