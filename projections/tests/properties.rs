//! Properties over random valid histories made by the domain's own commands:
//! live incremental == full rebuild == resume from a checkpoint (byte for byte); as-of
//! answers at sampled positions == answers of a rebuild of the prefix; may-order on the read
//! models agrees with the rule judged on the facts of the raw events and on the write model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use domain::{Event, EventMeta};
use projections::{AsOf, Envelope, Projections, Runner, RunnerConfig, checkpoint};
use proptest::prelude::*;
use store::{EventStore, ExpectedRevision, MemoryStore, NewEvent, RecordedEvent};

fn cases() -> u32 {
    // Longer soaks behind an environment variable, never behind #[ignore].
    std::env::var("PROJECTIONS_PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(64)
}

fn sampled_positions(len: usize, seed: usize) -> Vec<u64> {
    let mut positions: Vec<u64> = (0..8)
        .map(|i| ((seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7919)) % len) as u64)
        .collect();
    positions.push(len as u64 - 1);
    positions.sort_unstable();
    positions.dedup();
    positions
}

fn new_event(recorded: &RecordedEvent) -> NewEvent {
    NewEvent {
        event_id: recorded.event_id,
        event_type: recorded.event_type.clone(),
        schema_version: recorded.schema_version,
        recorded_at: recorded.recorded_at,
        actor: recorded.actor.clone(),
        command_id: recorded.command_id,
        correlation_id: recorded.correlation_id,
        causation_id: recorded.causation_id,
        payload: recorded.payload.clone(),
    }
}

/// Live: a runner follows a memory store while the events are appended one by one.
fn live(events: &[RecordedEvent], checkpoint_path: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let dynamic: Arc<dyn EventStore> = store.clone();
        let half = events.len() / 2;
        for event in &events[..half] {
            store
                .append(&event.stream, ExpectedRevision::Any, vec![new_event(event)])
                .await
                .unwrap();
        }
        let runner = Runner::start(
            dynamic.clone(),
            RunnerConfig {
                checkpoint_path: Some(checkpoint_path.to_path_buf()),
                checkpoint_every_events: 7,
                batch_events_max: 5,
            },
        )
        .await
        .unwrap();
        let handle = runner.handle();
        let mut last = None;
        for event in &events[half..] {
            let result = store
                .append(&event.stream, ExpectedRevision::Any, vec![new_event(event)])
                .await
                .unwrap();
            last = Some(result.positions[0].0);
        }
        let last = last.unwrap_or(half as u64 - 1);
        let live_bytes = {
            let guard = handle
                .wait_for(last, Duration::from_secs(20))
                .await
                .unwrap();
            checkpoint::encode(&guard).unwrap()
        };
        runner.stop();
        // Resume: from the runner's last checkpoint (somewhere in the middle or at the end),
        // catching up the rest from the log.
        let mut resumed = projections::resume(dynamic.as_ref(), checkpoint_path)
            .await
            .unwrap();
        projections::catch_up(dynamic.as_ref(), &mut resumed, &mut |_| {})
            .await
            .unwrap();
        (live_bytes, checkpoint::encode(&resumed).unwrap())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn live_rebuild_and_resume_agree_byte_for_byte(steps in prop::collection::vec(step(), 1..100)) {
        let run = history(&steps);
        let events = recorded(&run.w.log);
        let rebuilt = build(&events);
        let rebuilt_bytes = checkpoint::encode(&rebuilt).unwrap();
        // Rebuilding again gives the same bytes (determinism).
        prop_assert_eq!(&checkpoint::encode(&build(&events)).unwrap(), &rebuilt_bytes);
        // Reading the numerous events through the read models' views gives what applying
        // the domain's own decoding of every event gives.
        let mut decoded = Projections::new();
        for (recorded, (_, event)) in events.iter().zip(&run.w.log) {
            decoded.apply_event(Envelope::of(recorded), event).unwrap();
        }
        prop_assert!(checkpoint::encode(&decoded).unwrap() == rebuilt_bytes, "views and the domain's decoding disagree");
        // Applying all at once is applying one by one.
        let mut all = Projections::new();
        all.apply_all(&events).unwrap();
        prop_assert!(checkpoint::encode(&all).unwrap() == rebuilt_bytes, "apply_all differs from apply");
        let directory = tempfile::tempdir().unwrap();
        let (live_bytes, resumed_bytes) = live(&events, &directory.path().join("projections.ckpt"));
        prop_assert!(live_bytes == rebuilt_bytes, "live state differs from the rebuild");
        prop_assert!(resumed_bytes == rebuilt_bytes, "resumed state differs from the rebuild");
        // A checkpoint round-trips to an equal state.
        let decoded = checkpoint::decode(&rebuilt_bytes).unwrap();
        prop_assert!(decoded == rebuilt);
    }

    #[test]
    fn as_of_answers_equal_a_rebuild_of_the_prefix(steps in prop::collection::vec(step(), 1..80), seed in any::<usize>()) {
        let run = history(&steps);
        let events = recorded(&run.w.log);
        let full = build(&events);
        for position in sampled_positions(events.len(), seed) {
            let prefix = build(&events[..=position as usize]);
            let expected = render(&view_at(&prefix, position), &run);
            prop_assert_eq!(render(&view_at(&full, position), &run), expected.clone());
            // As of the recorded time of that event: the same, unless later events share its
            // timestamp (the fake clock stands still between commands), so compare with the
            // prefix through the last event of that time.
            let time = events[position as usize].recorded_at;
            let through = events.iter().rposition(|e| e.recorded_at <= time).unwrap();
            let prefix_through = build(&events[..=through]);
            let by_time = full.at(Some(AsOf::Time(time))).unwrap();
            prop_assert_eq!(render(&by_time, &run), render(&view_at(&prefix_through, through as u64), &run));
        }
    }

    #[test]
    fn may_order_agrees_with_the_naive_rule_and_the_domain(steps in prop::collection::vec(step(), 1..120), seed in any::<usize>()) {
        let run = history(&steps);
        let log: &[(EventMeta, Event)] = &run.w.log;
        let events = recorded(log);
        let full = build(&events);
        let orgs = run.orgs();
        let mut checked = 0;
        let mut allowed = 0;
        for position in sampled_positions(events.len(), seed) {
            let prefix = &log[..=position as usize];
            let state = domain::replay(prefix.iter().map(|(m, e)| (m, e)));
            let view = view_at(&full, position);
            for customer in &run.customers {
                for p in &orgs {
                    for r in &orgs {
                        let answer = view.may_order(p.id, customer.id, r.id);
                        prop_assert_eq!(answer.position, Some(position));
                        let ours = answer.value.as_ref().map(|right| right.events().map(|e| view.event(e).position)).map_err(|d| d.refusal.rule());
                        let naive = naive_may_order(prefix, p.id, customer.id, r.id);
                        prop_assert_eq!(ours, naive, "position {} p {} c {} r {}", position, p.id, customer.id, r.id);
                        let domain = domain::may_order(&state, p.id, customer.id, r.id);
                        match (&answer.value, &domain) {
                            (Ok(right), Ok(evidence)) => {
                                let e = right.events().map(|e| view.event(e).position);
                                prop_assert_eq!(e, [
                                    evidence.provider.authorized_at, evidence.provider.agreement_signed_at,
                                    evidence.reseller.authorized_at, evidence.reseller.agreement_signed_at,
                                    evidence.partnership_authorized_at, evidence.reseller_of_record_at,
                                    evidence.provider_of_record_at,
                                ]);
                                allowed += 1;
                            }
                            (Err(denial), Err(refusal)) => {
                                prop_assert_eq!(&denial.refusal, refusal);
                                // The event that made it fail is of the right kind.
                                if let Some(failed_by) = denial.failed_by {
                                    let kind = view.event(failed_by).event_type;
                                    prop_assert!(matches!(kind,
                                        "PartnerDeauthorized" | "EnrollmentRejected" | "PartnershipEnded" | "ResellerRelationshipRemoved"),
                                        "failed by {}", kind);
                                }
                            }
                            (ours, theirs) => prop_assert!(false, "projection {:?} vs domain {:?}", ours, theirs),
                        }
                        checked += 1;
                    }
                }
            }
        }
        prop_assert!(checked > 0 || run.customers.is_empty());
        let _ = allowed;
    }
}

/// A bad event in the middle of a batch stops the batch there: everything before it is
/// applied, nothing from it on, and the error names it.
#[test]
fn apply_all_stops_at_the_first_bad_event() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let steps = prop::collection::vec(step(), 60)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let run = history(&steps);
    let mut events = recorded(&run.w.log);
    let bad = events.len() / 2;
    events[bad].payload = vec![0xc1];
    let mut all = Projections::new();
    let error = all.apply_all(&events).unwrap_err();
    assert!(
        matches!(error, projections::ApplyError::Undecodable { position, .. } if position == events[bad].position.0),
        "{error}"
    );
    let prefix = build(&events[..bad]);
    assert!(checkpoint::encode(&all).unwrap() == checkpoint::encode(&prefix).unwrap());
}

/// The random histories reach the interesting facts, or the properties prove little.
#[test]
fn random_histories_reach_the_interesting_events() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut kinds = std::collections::BTreeSet::new();
    let mut allowed_orders = 0;
    for _ in 0..12 {
        let steps = prop::collection::vec(step(), 150)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let run = history(&steps);
        kinds.extend(run.w.log.iter().map(|(_, e)| e.event_type()));
        let full: Projections = build(&recorded(&run.w.log));
        let view = full.at(None).unwrap();
        allowed_orders += run
            .customers
            .iter()
            .map(|c| view.ordering_pairs(c.id).value.len())
            .sum::<usize>();
    }
    for kind in [
        "PrimaryContactVerificationRequested",
        "IndirectProviderAuthorized",
        "PartnershipEnded",
        "ResellerRelationshipAccepted",
        "CustomerImported",
        "OrderSubmitted",
        "SubscriptionCancelled",
        "ResellerRelationshipRemoved",
        "DelegatedAdminRemoved",
        "GranularAdminApproved",
        "GranularAdminRevoked",
        "UserRolesChanged",
        "UserRemoved",
        "PartnerDeauthorized",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} in random histories: {kinds:?}"
        );
    }
    assert!(allowed_orders > 0, "no customer has a pair that may order");
}
