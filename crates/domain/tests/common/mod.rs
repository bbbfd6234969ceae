//! A tiny world for tests: the ledger's state, a fake clock, counters for ids and secrets,
//! and commands applied the way the command handler will apply them (decide, then evolve
//! with increasing revisions and positions). A test reads like the flow it checks.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::commands::*;
use domain::types::*;
use domain::*;
use uuid::Uuid;

/// A partner made by a flow helper, with its first global admin.
#[derive(Clone, Debug)]
pub struct Org {
    pub id: PartnerId,
    pub tenant: TenantId,
    pub number: PartnerNumber,
    pub country: Country,
    pub admin: UserId,
}

/// A customer made by a flow helper.
#[derive(Clone, Copy, Debug)]
pub struct Cust {
    pub id: CustomerId,
    pub tenant: TenantId,
}

pub struct World {
    pub state: LedgerState,
    pub log: Vec<(EventMeta, Event)>,
    pub now: DateTime<Utc>,
    counter: u64,
    /// Every raw token and password the "handler" generated, to scan the log for.
    pub secrets: Vec<String>,
    /// The raw token of the last command that issued one.
    pub last_token: Option<String>,
    /// The current temporary password of each user, as the credential store would hold it.
    pub passwords: BTreeMap<UserId, String>,
}

pub fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

pub fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

pub fn hash(token: &str) -> SecretHash {
    SecretHash::of(token.as_bytes())
}

pub fn user(id: UserId) -> Actor {
    Actor::user(id)
}

pub fn customer_admin(tenant: TenantId, token: Option<&str>) -> Actor {
    Actor::CustomerAdmin {
        tenant_id: tenant,
        token: token.map(hash),
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        World {
            state: LedgerState::new(),
            log: Vec::new(),
            now: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
            counter: 0,
            secrets: Vec::new(),
            last_token: None,
            passwords: BTreeMap::new(),
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A fresh UUIDv7 at the fake clock, with counter bits for uniqueness.
    pub fn fresh_uuid(&mut self) -> Uuid {
        let n = self.next();
        let millis = self.now.timestamp_millis() as u64;
        let mut random = [0u8; 10];
        random[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    pub fn tenant(&mut self) -> TenantId {
        TenantId(Uuid::from_u128(
            0x7e7e_0000_0000_4000_8000_0000_0000_0000 | u128::from(self.next()),
        ))
    }

    pub fn advance_days(&mut self, days: i64) {
        self.now += Duration::days(days);
    }

    /// Decides and, if accepted, records a command; returns the events or the rejection.
    pub fn try_as(
        &mut self,
        actor: Actor,
        command: impl Into<Command>,
    ) -> Result<Vec<Event>, Rejection> {
        let command = command.into();
        let token = format!(
            "tok-{:016x}-{:016x}",
            self.next().wrapping_mul(0x9e37_79b9_7f4a_7c15),
            self.counter
        );
        let ctx = Context {
            now: self.now,
            actor: actor.clone(),
            new_id: self.fresh_uuid(),
            secret_hash: Some(hash(&token)),
        };
        // `decide` borrows the state immutably: a refusal cannot change it, so there is
        // nothing to compare.
        let decision = decide(&self.state, &command, &ctx)?;
        assert_eq!(
            decision.expected_revision,
            self.state.stream_revision(&decision.stream)
        );
        let issues_token = decision.effects.contains(&Effect::IssueLinkToken);
        // The effect is stated exactly when the events record the token's hash: otherwise
        // the handler would hand out a token that opens nothing, or keep one that does.
        let recorded_hash = serde_json::to_string(&decision.events)
            .unwrap()
            .contains(&serde_json::to_string(&hash(&token)).unwrap());
        assert_eq!(
            issues_token,
            recorded_hash,
            "{}: link token effect",
            command.name()
        );
        if issues_token {
            self.secrets.push(token.clone());
            self.last_token = Some(token);
        }
        let first_revision = decision
            .expected_revision
            .map_or(0, |revision| revision + 1);
        for (offset, event) in decision.events.iter().enumerate() {
            let meta = EventMeta {
                stream: decision.stream.clone(),
                stream_revision: first_revision + offset as u64,
                global_position: self.log.len() as u64,
                recorded_at: self.now,
                actor: actor.clone(),
            };
            self.state.evolve(&meta, event);
            self.log.push((meta, event.clone()));
        }
        for effect in &decision.effects {
            if let Effect::IssueTemporaryCredential(user_id) = effect {
                // The handler makes the password and hands it out once; only the
                // credential store (here, this map) keeps it.
                let password = format!(
                    "Temp!{:012}#{}",
                    self.next() * 7919,
                    user_id.uuid().simple()
                );
                self.secrets.push(password.clone());
                self.passwords.insert(*user_id, password);
            }
        }
        Ok(decision.events)
    }

    #[track_caller]
    pub fn ok(&mut self, actor: Actor, command: impl Into<Command>) -> Vec<Event> {
        let command = command.into();
        let name = command.name();
        match self.try_as(actor, command) {
            Ok(events) => events,
            Err(rejection) => panic!("{name} refused: {} ({rejection})", rejection.rule()),
        }
    }

    /// Asserts the command is refused by `rule`.
    #[track_caller]
    pub fn refused(&mut self, actor: Actor, command: impl Into<Command>, rule: &str) -> Rejection {
        let command = command.into();
        let name = command.name();
        match self.try_as(actor, command) {
            Ok(events) => panic!("{name} was accepted, expected refusal {rule}: {events:?}"),
            Err(rejection) => {
                assert_eq!(rejection.rule(), rule, "{name}: {rejection}");
                rejection
            }
        }
    }

    #[track_caller]
    pub fn operator(&mut self, command: impl Into<Command>) -> Vec<Event> {
        self.ok(Actor::Operator, command)
    }

    #[track_caller]
    pub fn as_user(&mut self, user_id: UserId, command: impl Into<Command>) -> Vec<Event> {
        self.ok(user(user_id), command)
    }

    pub fn token(&self) -> String {
        self.last_token.clone().expect("a token was issued")
    }

    pub fn partner(&self, id: PartnerId) -> &domain::partner::Partner {
        self.state.partner(id).expect("partner exists")
    }

    // ------------------------------------------------------------ flows

    pub fn legal_profile(&self, country_code: &str, contact: &str) -> LegalProfile {
        LegalProfile {
            legal_name: "Contoso Ltd".into(),
            address: Address {
                lines: vec!["1 Main Street".into()],
                city: "Springfield".into(),
                region: None,
                postal_code: Some("12345".into()),
                country: country(country_code),
            },
            primary_contact: Contact {
                name: "Pat Contact".into(),
                email: email(contact),
                phone: None,
            },
            support: support(),
        }
    }

    /// Starts an enrollment and records one active MPN profile in the tenant's country.
    pub fn start_enrollment(
        &mut self,
        name: &str,
        country_code: &str,
    ) -> (PartnerId, TenantId, Actor, PartnerNumber) {
        let tenant = self.tenant();
        let n = self.next();
        let admin = Actor::TenantAdmin {
            tenant_id: tenant,
            email: email(&format!("admin{n}@{}.example", name.to_lowercase())),
            name: format!("{name} Admin"),
        };
        let events = self.ok(
            admin.clone(),
            StartEnrollment {
                organization_name: name.into(),
                tenant_country: country(country_code),
            },
        );
        let Event::EnrollmentStarted(started) = &events[0] else {
            panic!()
        };
        let partner_id = started.partner_id;
        let number = PartnerNumber::parse(&format!("{:07}", 4_000_000 + n)).unwrap();
        self.ok(
            Actor::System,
            RecordMpnProfiles {
                partner_id,
                profiles: vec![MpnProfile {
                    partner_number: number.clone(),
                    organization_name: name.into(),
                    country: country(country_code),
                    active: true,
                }],
            },
        );
        (partner_id, tenant, admin, number)
    }

    /// Links, submits the profile, requests and performs the contact verification.
    pub fn complete_application(
        &mut self,
        partner_id: PartnerId,
        admin: &Actor,
        number: &PartnerNumber,
        country_code: &str,
    ) {
        self.ok(
            admin.clone(),
            LinkMpnProfile {
                partner_id,
                partner_number: number.clone(),
            },
        );
        let contact = format!("pat@{}.example", partner_id.uuid().simple());
        let profile = self.legal_profile(country_code, &contact);
        self.ok(
            admin.clone(),
            SubmitLegalProfile {
                partner_id,
                profile,
            },
        );
        self.ok(
            admin.clone(),
            RequestPrimaryContactVerification { partner_id },
        );
        let token = self.token();
        self.ok(
            Actor::PrimaryContact {
                token: hash(&token),
            },
            VerifyPrimaryContact { partner_id },
        );
    }

    pub fn review(&mut self, partner_id: PartnerId) {
        for step in ReviewStep::ALL {
            self.operator(CompleteReviewStep { partner_id, step });
        }
    }

    /// The whole enrollment of an indirect reseller, agreement signed.
    pub fn reseller(&mut self, name: &str, country_code: &str) -> Org {
        let org = self.reseller_unsigned(name, country_code);
        self.sign(&org);
        org
    }

    /// The whole enrollment, authorized, before the agreement.
    pub fn reseller_unsigned(&mut self, name: &str, country_code: &str) -> Org {
        let (partner_id, tenant, admin, number) = self.start_enrollment(name, country_code);
        self.complete_application(partner_id, &admin, &number, country_code);
        self.review(partner_id);
        let events = self.operator(AuthorizeEnrollment { partner_id });
        let Event::EnrollmentAuthorized(authorized) = &events[0] else {
            panic!()
        };
        Org {
            id: partner_id,
            tenant,
            number,
            country: country(country_code),
            admin: authorized.first_user_id,
        }
    }

    pub fn sign(&mut self, org: &Org) {
        self.as_user(
            org.admin,
            SignPartnerAgreement {
                partner_id: org.id,
                agreement_version: "2026-01".into(),
            },
        );
    }

    /// An onboarded provider whose first admin changed its password and signed.
    pub fn provider(&mut self, name: &str, countries: &[&str]) -> Org {
        let org = self.provider_unsigned(name, countries);
        self.sign(&org);
        org
    }

    pub fn provider_unsigned(&mut self, name: &str, countries: &[&str]) -> Org {
        let tenant = self.tenant();
        let n = self.next();
        let number = PartnerNumber::parse(&format!("{:07}", 1_000_000 + n)).unwrap();
        let events = self.operator(OnboardProvider {
            tenant_id: tenant,
            tenant_country: country(countries[0]),
            partner_number: number.clone(),
            legal_name: name.into(),
            countries_served: countries.iter().map(|c| country(c)).collect(),
            support: support(),
            first_admin: NewUser {
                full_name: format!("{name} Admin"),
                email: email(&format!("admin{n}@{}.example", name.to_lowercase())),
            },
        });
        let Event::ProviderOnboarded(onboarded) = &events[0] else {
            panic!()
        };
        let Event::UserAdded(added) = &events[1] else {
            panic!()
        };
        let org = Org {
            id: onboarded.partner_id,
            tenant,
            number,
            country: country(countries[0]),
            admin: added.user_id,
        };
        self.as_user(org.admin, ChangeTemporaryPassword { partner_id: org.id });
        org
    }

    /// Adds a user (by the org's first admin) and lets it change its temporary password.
    pub fn user(
        &mut self,
        org: &Org,
        agent_role: Option<AgentRole>,
        admin_role: Option<AdminRole>,
    ) -> UserId {
        let id = self.user_pending(org, agent_role, admin_role);
        self.as_user(id, ChangeTemporaryPassword { partner_id: org.id });
        id
    }

    /// Adds a user who has not yet changed its temporary password.
    pub fn user_pending(
        &mut self,
        org: &Org,
        agent_role: Option<AgentRole>,
        admin_role: Option<AdminRole>,
    ) -> UserId {
        let n = self.next();
        let events = self.as_user(
            org.admin,
            AddUser {
                partner_id: org.id,
                full_name: format!("User {n}"),
                email: email(&format!("user{n}@{}.example", org.id.uuid().simple())),
                agent_role,
                admin_role,
            },
        );
        let Event::UserAdded(added) = &events[0] else {
            panic!()
        };
        added.user_id
    }

    /// The provider invites the reseller; the reseller's admin authorizes it.
    pub fn partner_up(&mut self, provider: &Org, reseller: &Org) {
        self.as_user(
            provider.admin,
            InviteReseller {
                provider_id: provider.id,
                reseller_partner_number: reseller.number.clone(),
            },
        );
        let token = self.token();
        self.as_user(
            reseller.admin,
            AuthorizeIndirectProvider {
                provider_id: provider.id,
                reseller_id: reseller.id,
                token_hash: hash(&token),
                consent: true,
            },
        );
    }

    /// A customer invitation by the org's admin, optionally naming a provider; returns its
    /// id and the link's raw token.
    pub fn invite(
        &mut self,
        by: UserId,
        partner: &Org,
        provider: Option<&Org>,
    ) -> (InvitationId, String) {
        let events = self.as_user(
            by,
            InviteCustomer {
                partner_id: partner.id,
                customer_email: email("it@fabrikam.example"),
                provider_id: provider.map(|p| p.id),
            },
        );
        let Event::CustomerInvitationCreated(created) = &events[0] else {
            panic!()
        };
        (created.invitation_id, self.token())
    }

    pub fn accept_command(
        &self,
        invitation_id: InvitationId,
        country_code: &str,
    ) -> AcceptCustomerInvitation {
        AcceptCustomerInvitation {
            invitation_id,
            company_name: "Fabrikam".into(),
            primary_domain: "fabrikam.example".into(),
            country: country(country_code),
        }
    }

    /// The customer's admin of `tenant` accepts through the link.
    pub fn accept(
        &mut self,
        tenant: TenantId,
        invitation_id: InvitationId,
        token: &str,
        country_code: &str,
    ) -> Cust {
        let command = self.accept_command(invitation_id, country_code);
        let events = self.ok(customer_admin(tenant, Some(token)), command);
        let Event::ResellerRelationshipAccepted(accepted) = &events[0] else {
            panic!()
        };
        Cust {
            id: accepted.customer_id,
            tenant,
        }
    }

    /// A new customer of the reseller and the provider together.
    pub fn shared_customer(&mut self, provider: &Org, reseller: &Org) -> Cust {
        let (invitation, token) = self.invite(reseller.admin, reseller, Some(provider));
        let tenant = self.tenant();
        self.accept(tenant, invitation, &token, reseller.country.as_str())
    }

    pub fn order_command(provider: &Org, customer: Cust, reseller: &Org) -> SubmitOrder {
        SubmitOrder {
            provider_id: provider.id,
            customer_id: customer.id,
            reseller_id: reseller.id,
            lines: vec![
                OrderLine {
                    offer_id: "CFQ7TTC0LH18:0001".into(),
                    product_family: ProductFamily::Office365,
                    quantity: 10,
                },
                OrderLine {
                    offer_id: "DZH318Z0BQ3Q:0001".into(),
                    product_family: ProductFamily::Azure,
                    quantity: 1,
                },
            ],
        }
    }

    /// An accepted order; returns the order and its subscriptions.
    pub fn order(
        &mut self,
        by: UserId,
        provider: &Org,
        customer: Cust,
        reseller: &Org,
    ) -> (OrderId, Vec<SubscriptionId>) {
        let events = self.as_user(by, Self::order_command(provider, customer, reseller));
        let Event::OrderSubmitted(submitted) = &events[0] else {
            panic!()
        };
        (
            submitted.order_id,
            submitted.lines.iter().map(|l| l.subscription_id).collect(),
        )
    }
}

pub fn support() -> SupportDetails {
    SupportDetails {
        email: email("support@contoso.example"),
        phone: "+1 555 0100".into(),
        website: None,
    }
}
