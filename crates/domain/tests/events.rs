//! The log's vocabulary: every event type has a sample, encodes as MessagePack with named
//! fields, decodes back, refuses unknown types and newer versions; commands parse from JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::*;

#[test]
fn every_event_type_has_one_sample_in_order() {
    let samples = sample_events();
    let names: Vec<_> = samples.iter().map(Event::event_type).collect();
    let listed: Vec<_> = EVENT_TYPES.iter().map(|t| t.name).collect();
    assert_eq!(names, listed);
    let schemas = event_schemas();
    assert_eq!(schemas.len(), EVENT_TYPES.len());
    for (sample, (kind, _)) in samples.iter().zip(&schemas) {
        assert_eq!(sample.schema_version(), kind.version);
        assert_eq!(kind.version, 1);
    }
}

#[test]
fn samples_round_trip_through_messagepack_with_named_fields() {
    for event in sample_events() {
        let bytes = event.encode().unwrap();
        let decoded = Event::decode(event.event_type(), event.schema_version(), &bytes).unwrap();
        assert_eq!(decoded, event);
        // Named fields: the payload is a map whose keys are the field names.
        assert_eq!(
            bytes[0] & 0xf0,
            0x80,
            "{} encodes as a fixmap",
            event.event_type()
        );
    }
}

#[test]
fn unknown_types_and_newer_versions_are_typed_errors() {
    let event = &sample_events()[0];
    let bytes = event.encode().unwrap();
    assert!(matches!(
        Event::decode("NoSuchEvent", 1, &bytes),
        Err(DecodeError::UnknownType(_))
    ));
    assert!(matches!(
        Event::decode(event.event_type(), 2, &bytes),
        Err(DecodeError::UnsupportedVersion {
            version: 2,
            current: 1,
            ..
        })
    ));
    assert!(matches!(
        Event::decode(event.event_type(), 1, &[0xc1]),
        Err(DecodeError::Malformed { .. })
    ));
    // A payload of another type does not pass for this one.
    let other = sample_events()[1].encode().unwrap();
    assert!(Event::decode(event.event_type(), 1, &other).is_err());
}

#[test]
fn old_readers_ignore_added_fields() {
    // A future writer adds a field; today's reader still decodes the event.
    #[derive(serde::Serialize)]
    struct Later<'a> {
        #[serde(flatten)]
        payload: &'a domain::events::EnrollmentStarted,
        added_later: u32,
    }
    let Event::EnrollmentStarted(payload) = &sample_events()[0] else {
        panic!()
    };
    let bytes = rmp_serde::to_vec_named(&Later {
        payload,
        added_later: 42,
    })
    .unwrap();
    let decoded = Event::decode("EnrollmentStarted", 1, &bytes).unwrap();
    assert_eq!(decoded, Event::EnrollmentStarted(payload.clone()));
}

#[test]
fn commands_parse_from_json_and_refuse_unknown_fields() {
    let json =
        r#"{"type": "start_enrollment", "organization_name": "Contoso", "tenant_country": "US"}"#;
    let command: Command = serde_json::from_str(json).unwrap();
    assert_eq!(command.name(), "StartEnrollment");
    let json = r#"{"type": "start_enrollment", "organization_name": "Contoso", "tenant_country": "US", "admin": true}"#;
    assert!(serde_json::from_str::<Command>(json).is_err());
    let json =
        r#"{"type": "start_enrollment", "organization_name": "Contoso", "tenant_country": "usa"}"#;
    assert!(serde_json::from_str::<Command>(json).is_err());
    let json = r#"{"type": "request_granular_admin", "customer_id": "0195f000-0000-7000-8000-000000000001",
        "partner_id": "0195f000-0000-7000-8000-000000000002", "roles": ["Helpdesk Administrator"], "duration": "P2Y"}"#;
    let Command::RequestGranularAdmin(request) = serde_json::from_str::<Command>(json).unwrap()
    else {
        panic!()
    };
    assert_eq!(request.duration.days(), 730);
    assert!(command_schema().as_object().is_some());
}

#[test]
fn rejections_have_stable_rules_and_kinds() {
    let rejection = Rejection::MissingCapability(Capability::SubmitOrders);
    assert_eq!(rejection.rule(), "missing-capability");
    assert_eq!(rejection.kind(), RejectionKind::Forbidden);
    assert_eq!(
        rejection.to_string(),
        "forbidden: missing capability submit_orders"
    );
    let refusal: Rejection = OrderRefusal::PartnershipNotActive {
        provider: PartnerId::new(uuid::Uuid::nil()),
        reseller: PartnerId::new(uuid::Uuid::nil()),
    }
    .into();
    assert_eq!(refusal.rule(), "partnership-not-active");
    assert_eq!(refusal.kind(), RejectionKind::RuleRefused);
}
