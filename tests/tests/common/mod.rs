//! What the handler's tests share: a handler over a store, requests, a provider ready to
//! act, the secrets of an outcome.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use credentials::{CredentialStore, HashCost};
use domain::commands::*;
use domain::types::SupportDetails;
use domain::{Actor, AgentRole, Command, Country, Email, Event, PartnerId, PartnerNumber, UserId};
use handler::{
    Clock, CommandHandler, CommandRequest, HandlerConfig, IssuedSecret, ManualClock, Outcome,
};
use store::EventStore;
use uuid::Uuid;

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    ))
}

/// A handler over `store` with a manual clock.
pub async fn handler_over<S: EventStore + ?Sized>(store: Arc<S>) -> CommandHandler<S> {
    handler_with_clock(store, clock()).await
}

/// A handler over `store` reading time from `clock`.
pub async fn handler_with_clock<S: EventStore + ?Sized>(
    store: Arc<S>,
    clock: Arc<dyn Clock>,
) -> CommandHandler<S> {
    CommandHandler::new(
        store,
        Arc::new(CredentialStore::in_memory(HashCost::Minimal).unwrap()),
        clock,
        HandlerConfig::default(),
    )
    .await
    .unwrap()
}

pub fn request(actor: Actor, command: impl Into<Command>) -> CommandRequest {
    CommandRequest {
        command_id: Uuid::now_v7(),
        actor,
        proof: domain::Proof::Asserted { by: "test".into() },
        command: command.into(),
        correlation_id: None,
    }
}

pub fn onboard(name: &str, number: &str) -> OnboardProvider {
    OnboardProvider {
        tenant_id: domain::TenantId(Uuid::now_v7()),
        tenant_country: Country::parse("US").unwrap(),
        partner_number: PartnerNumber::parse(number).unwrap(),
        legal_name: name.into(),
        countries_served: vec![Country::parse("US").unwrap()],
        support: SupportDetails {
            email: Email::parse("support@provider.example").unwrap(),
            phone: "+1 555 0100".into(),
            website: None,
        },
        first_admin: NewUser {
            full_name: format!("{name} Admin"),
            email: Email::parse(&format!("admin@{number}.example")).unwrap(),
        },
    }
}

pub fn temporary_password(outcome: &Outcome) -> (UserId, String) {
    outcome
        .secrets
        .iter()
        .find_map(|secret| match secret {
            IssuedSecret::TemporaryPassword { user_id, password } => {
                Some((*user_id, password.clone()))
            }
            IssuedSecret::LinkToken(_) => None,
        })
        .expect("a temporary password")
}

pub fn partner_of(outcome: &Outcome) -> PartnerId {
    match &outcome.events[0].event {
        Event::ProviderOnboarded(onboarded) => onboarded.partner_id,
        other => panic!("expected ProviderOnboarded, got {other:?}"),
    }
}

/// A provider whose first admin has changed its password: ready to act.
pub async fn ready_provider<S: EventStore + ?Sized>(
    handler: &CommandHandler<S>,
    number: &str,
) -> (PartnerId, UserId) {
    let outcome = handler
        .handle(request(Actor::Operator, onboard("Northwind", number)))
        .await
        .unwrap();
    let partner = partner_of(&outcome);
    let (admin, password) = temporary_password(&outcome);
    handler
        .change_temporary_password(
            Uuid::now_v7(),
            admin,
            partner,
            &password,
            "a fine new password",
        )
        .await
        .unwrap();
    (partner, admin)
}

pub fn add_user(partner: PartnerId, name: &str) -> AddUser {
    AddUser {
        partner_id: partner,
        full_name: name.into(),
        email: Email::parse(&format!("{}@northwind.example", name.to_lowercase())).unwrap(),
        agent_role: Some(AgentRole::SalesAgent),
        admin_role: None,
    }
}
