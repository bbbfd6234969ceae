//! Several `serve` processes on one KurrentDB (the first ledger's own door): exactly one
//! writes at a time, so a rule that spans aggregates (one partner per tenant) holds when two
//! processes are sent the same command at once; the others serve reads as replicas; a crashed
//! writer is taken over after its lease's TTL, and a writer that was paused past its lease
//! records nothing when it wakes.

#![cfg(feature = "kurrentdb")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{OPERATOR_KEY, STORE_ADMIN_KEY, Server, start_door};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TTL_MS: &str = "1500";

fn onboard_provider(tenant: uuid::Uuid, number: &str) -> Value {
    json!({"type": "onboard_provider", "tenant_id": tenant, "tenant_country": "US",
        "partner_number": number, "legal_name": format!("Provider {number}"), "countries_served": ["US"],
        "support": {"email": format!("support@{number}.example"), "phone": "+1 555 0100", "website": null},
        "first_admin": {"full_name": "Ada Admin", "email": format!("ada@{number}.example")}})
}

fn on_kurrentdb(data: &Path, url: &str) -> Server {
    Server::start_with(data, &["--store", url, "--writer-lease-ttl-ms", TTL_MS])
}

/// Sends `command` until it is recorded (a replica becoming the writer), bounded.
async fn until_recorded(server: &Server, command: Value) -> Value {
    for _ in 0..300 {
        let (status, answer) = server.command(OPERATOR_KEY, command.clone()).await;
        if status == StatusCode::CREATED {
            return answer;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the command was never recorded");
}

/// The number of onboarded partners of `tenant` that the door's own log holds.
async fn partners_of(door_base: &str, tenant: uuid::Uuid) -> usize {
    let client = reqwest::Client::new();
    let page: Value = client
        .get(format!("{door_base}/v1/events/page?from=0&limit=10000"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            event["event_type"] == "ProviderOnboarded"
                && event.to_string().contains(&tenant.to_string())
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_writes_at_a_time_and_a_stale_writer_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut door, door_base, grpc, authority) = start_door(&dir.path().join("door"));
    let url = format!("esdb://admin:{STORE_ADMIN_KEY}@{grpc}?tls=true&tlsCaFile={authority}");
    // The first takes the lease at start; the second finds it held.
    let first = on_kurrentdb(&dir.path().join("first"), &url);
    let second = on_kurrentdb(&dir.path().join("second"), &url);

    // The replica records nothing: it says which process does.
    let tenant = uuid::Uuid::now_v7();
    let (status, answer) = second
        .command(OPERATOR_KEY, onboard_provider(tenant, "4000099"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["rule"], "not-the-writer");
    assert!(
        answer["detail"].as_str().unwrap().contains("read replica"),
        "the replica says why: {answer}"
    );
    assert_eq!(partners_of(&door_base, tenant).await, 0);

    // The same onboarding sent to both at once, for eight tenants: one partner per tenant.
    // The replica either refuses to write or, when it has read the writer's event first,
    // refuses by rule.
    let mut tenants = Vec::new();
    for round in 0..8u32 {
        let tenant = uuid::Uuid::now_v7();
        tenants.push(tenant);
        let command = onboard_provider(tenant, &format!("40000{round:02}"));
        let (a, b) = tokio::join!(
            first.command(OPERATOR_KEY, command.clone()),
            second.command(OPERATOR_KEY, command.clone()),
        );
        assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
        assert!(
            (b.0 == StatusCode::SERVICE_UNAVAILABLE && b.1["rule"] == "not-the-writer")
                || (b.0 == StatusCode::CONFLICT && b.1["rule"] == "tenant-already-partner"),
            "{}",
            b.1
        );
        assert_eq!(partners_of(&door_base, tenant).await, 1);
    }

    // The writer crashes (no release): the replica takes over after the TTL, with every
    // event the writer recorded.
    first.crash();
    let tenant = uuid::Uuid::now_v7();
    until_recorded(&second, onboard_provider(tenant, "4000100")).await;
    // It decides on what the old writer recorded: the tenants are partners already.
    for tenant in &tenants {
        second
            .refused(
                OPERATOR_KEY,
                onboard_provider(*tenant, "4000199"),
                409,
                "tenant-already-partner",
            )
            .await;
    }

    // A third process follows; the writer is paused past its lease; the third takes over;
    // the paused one, woken, records nothing.
    let third = on_kurrentdb(&dir.path().join("third"), &url);
    second.signal("STOP");
    let tenant = uuid::Uuid::now_v7();
    until_recorded(&third, onboard_provider(tenant, "4000200")).await;
    second.signal("CONT");
    let stale_tenant = uuid::Uuid::now_v7();
    let (status, answer) = second
        .command(OPERATOR_KEY, onboard_provider(stale_tenant, "4000300"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["rule"], "not-the-writer");
    assert_eq!(partners_of(&door_base, stale_tenant).await, 0);
    assert_eq!(partners_of(&door_base, tenant).await, 1);

    third.stop();
    second.stop();
    assert!(door.stop());
}
