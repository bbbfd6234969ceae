//! `demo`: the seed story, recorded through the real command handler into the embedded
//! store, so that a newcomer sees the product working in one command.
//!
//! Two providers and three resellers enroll and are vetted, add users, partner up, invite
//! customers of both kinds, place orders, and then history moves on: a partnership ends and
//! a customer removes a reseller relationship, so that as-of queries have an earlier truth
//! to show. A few refusals are shown along the way.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use domain::commands::*;
use domain::types::*;
use domain::{
    Actor, AdminRole, AgentRole, Command, Country, CustomerId, Email, Event, GranularDuration,
    InvitationId, PartnerId, PartnerNumber, SecretHash, TenantId, UserId,
};
use filelog::FileStore;
use handler::{CommandHandler, CommandRequest, HandleError, IssuedSecret, Outcome};
use serde_json::json;
use store::EventStore;
use uuid::Uuid;

use crate::DataDir;

/// The password every demo user sets at first sign-in. A demo dataset, not a real one.
pub const DEMO_PASSWORD: &str = "demo-password-2026";

/// A partner of the story.
#[derive(Clone)]
struct Org {
    name: String,
    id: PartnerId,
    tenant: TenantId,
    number: PartnerNumber,
    admin: UserId,
}

/// A user of the story.
struct Person {
    name: String,
    email: String,
    partner: String,
    roles: String,
    id: UserId,
}

/// A customer of the story.
struct Client {
    name: String,
    id: CustomerId,
    tenant: TenantId,
    /// The token of the link it accepted, for acting as its admin later.
    token: String,
}

struct Script<'a> {
    handler: &'a CommandHandler<FileStore>,
    people: Vec<Person>,
    clients: Vec<Client>,
    refusals: Vec<String>,
    orders: Vec<String>,
    counter: u32,
}

pub async fn run(data: &DataDir, json: bool) -> anyhow::Result<ExitCode> {
    let handler = data.open_handler().await?;
    if let Some(head) = handler.store().head().await? {
        bail!(
            "the data directory {} already holds {} events; the demo writes into an empty one (use --data <new dir>)",
            data.root().display(),
            head.0 + 1
        );
    }
    let mut script = Script {
        handler: &handler,
        people: Vec::new(),
        clients: Vec::new(),
        refusals: Vec::new(),
        orders: Vec::new(),
        counter: 0,
    };
    let story = script.tell().await?;
    let report = filelog::verify_dir(data.log()).context("verifying the demo log")?;
    let head = handler.store().head().await?.map_or(0, |p| p.0);
    if json {
        print_json(&script, &story, head, report.records_intact);
    } else {
        print_text(data, &script, &story, head, report.records_intact);
    }
    Ok(ExitCode::SUCCESS)
}

/// The parties the story ends with.
struct Story {
    northwind: Org,
    tailspin: Org,
    contoso: Org,
    fabrikam: Org,
    adatum: Org,
}

impl Script<'_> {
    async fn tell(&mut self) -> anyhow::Result<Story> {
        // §2.3.1 The operator onboards two indirect providers.
        let northwind = self
            .onboard_provider("Northwind Distribution", &["US", "CA"])
            .await?;
        let tailspin = self.onboard_provider("Tailspin Supply", &["US"]).await?;

        // §2.1 Three resellers enroll, are verified, vetted, authorized and sign.
        let contoso = self.enroll_reseller("Contoso Cloud", "US").await?;
        let fabrikam = self.enroll_reseller("Fabrikam IT", "US").await?;
        let adatum = self.enroll_reseller("Adatum Services", "CA").await?;

        // §2.2 Users with roles; each changes its temporary password first.
        let contoso_agent = self
            .add_user(&contoso, "Avery Agent", Some(AgentRole::AdminAgent), None)
            .await?;
        let contoso_helpdesk = self
            .add_user(
                &contoso,
                "Hana Helpdesk",
                Some(AgentRole::HelpdeskAgent),
                None,
            )
            .await?;
        self.add_user(
            &contoso,
            "Uma Usermanager",
            None,
            Some(AdminRole::UserManagementAdmin),
        )
        .await?;
        let northwind_sales = self
            .add_user(&northwind, "Sam Sales", Some(AgentRole::SalesAgent), None)
            .await?;
        let tailspin_sales = self
            .add_user(&tailspin, "Tia Sales", Some(AgentRole::SalesAgent), None)
            .await?;
        self.add_user(&fabrikam, "Finn Agent", Some(AgentRole::AdminAgent), None)
            .await?;

        // §2.3 Provider ↔ reseller partnerships.
        self.partner_up(&northwind, &contoso).await?;
        self.partner_up(&northwind, &fabrikam).await?;
        self.partner_up(&northwind, &adatum).await?;
        self.partner_up(&tailspin, &contoso).await?;

        // A helpdesk agent may not invite customers.
        self.refused(
            "a helpdesk agent invites a customer",
            Actor::user(contoso_helpdesk),
            InviteCustomer {
                partner_id: contoso.id,
                customer_email: email("it@nowhere.example")?,
                provider_id: None,
            },
        )
        .await?;

        // §2.4 Customers: an imported existing one, a reseller-only invitation, and
        // invitations naming a provider.
        self.import_customer(&contoso, "Wide World Importers", "US")
            .await?;
        let litware = self
            .invite_and_accept(contoso_agent, &contoso, None, "Litware Inc", "US")
            .await?;
        let alpine = self
            .invite_and_accept(
                contoso_agent,
                &contoso,
                Some(&northwind),
                "Alpine Ski House",
                "US",
            )
            .await?;
        let coho = self
            .invite_and_accept(
                fabrikam.admin,
                &fabrikam,
                Some(&northwind),
                "Coho Winery",
                "US",
            )
            .await?;
        let margie = self
            .invite_and_accept(
                contoso_agent,
                &contoso,
                Some(&tailspin),
                "Margie's Travel",
                "US",
            )
            .await?;
        let trey = self
            .invite_and_accept(
                adatum.admin,
                &adatum,
                Some(&northwind),
                "Trey Research",
                "CA",
            )
            .await?;

        // §2.5 Orders by provider users, citing the reseller of record.
        self.order(northwind_sales, &northwind, alpine, &contoso)
            .await?;
        self.order(northwind_sales, &northwind, coho, &fabrikam)
            .await?;
        self.order(northwind_sales, &northwind, trey, &adatum)
            .await?;
        self.order(tailspin_sales, &tailspin, margie, &contoso)
            .await?;
        self.refused(
            "Northwind orders for Litware, where it is not reseller of record",
            Actor::user(northwind_sales),
            order_command(&northwind, self.client(litware).id, &contoso),
        )
        .await?;
        self.refused(
            "Northwind orders for Coho Winery citing Contoso, which is not its reseller",
            Actor::user(northwind_sales),
            order_command(&northwind, self.client(coho).id, &contoso),
        )
        .await?;

        // §2.4.5 Time-bound granular delegated admin, requested and approved.
        let request = self
            .run(
                Actor::user(contoso_agent),
                RequestGranularAdmin {
                    customer_id: self.client(alpine).id,
                    partner_id: contoso.id,
                    roles: vec![
                        "Exchange Administrator".into(),
                        "Helpdesk Administrator".into(),
                    ],
                    duration: GranularDuration::parse("P90D")
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                },
            )
            .await?;
        let Some(Event::GranularAdminRequested(requested)) =
            request.events.first().map(|e| &e.event)
        else {
            bail!("granular admin request recorded no request");
        };
        let request_id = requested.request_id;
        let alpine_admin = self.customer_admin(alpine);
        self.run(
            alpine_admin,
            ApproveGranularAdmin {
                customer_id: self.client(alpine).id,
                request_id,
            },
        )
        .await?;

        // History moves on. Tailspin and Contoso end their partnership: Margie's Travel stays
        // a customer of both, but Tailspin may no longer order through Contoso.
        self.run(
            Actor::user(contoso.admin),
            EndPartnership {
                provider_id: tailspin.id,
                reseller_id: contoso.id,
                reason: Some("distribution agreement not renewed".into()),
            },
        )
        .await?;
        self.refused(
            "Tailspin orders for Margie's Travel after the partnership ended",
            Actor::user(tailspin_sales),
            order_command(&tailspin, self.client(margie).id, &contoso),
        )
        .await?;

        // Litware removes Contoso as its reseller (it has no subscriptions through it).
        let litware_admin = self.customer_admin(litware);
        self.run(
            litware_admin,
            RemoveResellerRelationship {
                customer_id: self.client(litware).id,
                partner_id: contoso.id,
            },
        )
        .await?;
        // Alpine cannot remove Contoso while it has subscriptions through it.
        let alpine_admin = self.customer_admin(alpine);
        self.refused(
            "Alpine Ski House removes Contoso while subscriptions are active",
            alpine_admin,
            RemoveResellerRelationship {
                customer_id: self.client(alpine).id,
                partner_id: contoso.id,
            },
        )
        .await?;

        Ok(Story {
            northwind,
            tailspin,
            contoso,
            fabrikam,
            adatum,
        })
    }

    /// Records a command; a refusal stops the demo (the story only does allowed things).
    async fn run(&mut self, actor: Actor, command: impl Into<Command>) -> anyhow::Result<Outcome> {
        let command = command.into();
        let name = command.name();
        self.handler
            .handle(CommandRequest {
                command_id: Uuid::now_v7(),
                actor,
                // The demo story names its actors; nothing proves them.
                proof: domain::Proof::Asserted { by: "demo".into() },
                command,
                correlation_id: None,
            })
            .await
            .with_context(|| format!("demo step {name}"))
    }

    /// Issues a command the rules must refuse, and keeps the refusal to show.
    async fn refused(
        &mut self,
        what: &str,
        actor: Actor,
        command: impl Into<Command>,
    ) -> anyhow::Result<()> {
        let command = command.into();
        let result = self
            .handler
            .handle(CommandRequest {
                command_id: Uuid::now_v7(),
                actor,
                // The demo story names its actors; nothing proves them.
                proof: domain::Proof::Asserted { by: "demo".into() },
                command,
                correlation_id: None,
            })
            .await;
        match result {
            Err(HandleError::Rejected(rejection)) => {
                self.refusals.push(format!(
                    "{what}: refused [{}] {rejection}",
                    rejection.rule()
                ));
                Ok(())
            }
            Ok(_) => bail!("demo: {what} was accepted, but the rules should refuse it"),
            Err(error) => Err(error).with_context(|| format!("demo: {what}")),
        }
    }

    fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    fn client(&self, index: usize) -> &Client {
        &self.clients[index]
    }

    fn customer_admin(&self, index: usize) -> Actor {
        let client = &self.clients[index];
        Actor::CustomerAdmin {
            tenant_id: client.tenant,
            token: Some(SecretHash::of(client.token.as_bytes())),
        }
    }

    async fn onboard_provider(&mut self, name: &str, countries: &[&str]) -> anyhow::Result<Org> {
        let n = self.next();
        let tenant = TenantId(Uuid::now_v7());
        let number = partner_number(1_000_000 + n)?;
        let domain = domain_of(name);
        let outcome = self
            .run(
                Actor::Operator,
                OnboardProvider {
                    tenant_id: tenant,
                    tenant_country: country(countries[0])?,
                    partner_number: number.clone(),
                    legal_name: name.into(),
                    countries_served: countries
                        .iter()
                        .map(|c| country(c))
                        .collect::<Result<_, _>>()?,
                    support: support(&domain)?,
                    first_admin: NewUser {
                        full_name: format!("{name} Admin"),
                        email: email(&format!("admin@{domain}"))?,
                    },
                },
            )
            .await?;
        let (id, admin) = match (
            outcome.events.first().map(|e| &e.event),
            outcome.events.get(1).map(|e| &e.event),
        ) {
            (Some(Event::ProviderOnboarded(p)), Some(Event::UserAdded(u))) => {
                (p.partner_id, u.user_id)
            }
            _ => bail!("onboarding {name} recorded no provider and first admin"),
        };
        let org = Org {
            name: name.into(),
            id,
            tenant,
            number,
            admin,
        };
        self.first_sign_in(&org, admin, &outcome).await?;
        self.people.push(Person {
            name: format!("{name} Admin"),
            email: format!("admin@{domain}"),
            partner: name.into(),
            roles: "global admin".into(),
            id: admin,
        });
        self.run(
            Actor::user(admin),
            SignPartnerAgreement {
                partner_id: id,
                agreement_version: "2026-01".into(),
            },
        )
        .await?;
        Ok(org)
    }

    /// The first sign-in: the temporary password is changed before anything else.
    async fn first_sign_in(
        &mut self,
        org: &Org,
        user: UserId,
        outcome: &Outcome,
    ) -> anyhow::Result<()> {
        let temporary = outcome.secrets.iter().find_map(|secret| match secret {
            IssuedSecret::TemporaryPassword { user_id, password } if *user_id == user => {
                Some(password.clone())
            }
            _ => None,
        });
        let Some(temporary) = temporary else {
            bail!("no temporary password was issued for {user:?}");
        };
        self.handler
            .change_temporary_password(Uuid::now_v7(), user, org.id, &temporary, DEMO_PASSWORD)
            .await
            .context("changing a temporary password")?;
        Ok(())
    }

    async fn enroll_reseller(&mut self, name: &str, country_code: &str) -> anyhow::Result<Org> {
        let n = self.next();
        let tenant = TenantId(Uuid::now_v7());
        let domain = domain_of(name);
        let admin = Actor::TenantAdmin {
            tenant_id: tenant,
            email: email(&format!("admin@{domain}"))?,
            name: format!("{name} Admin"),
        };
        let started = self
            .run(
                admin.clone(),
                StartEnrollment {
                    organization_name: name.into(),
                    tenant_country: country(country_code)?,
                },
            )
            .await?;
        let Some(Event::EnrollmentStarted(started)) = started.events.first().map(|e| &e.event)
        else {
            bail!("enrollment of {name} recorded no start");
        };
        let id = started.partner_id;
        let number = partner_number(4_000_000 + n)?;
        // The Partner Membership Center's profiles, as observed: the chosen one is active
        // and in the tenant's country; an old inactive one is there too.
        self.run(
            Actor::System,
            RecordMpnProfiles {
                partner_id: id,
                profiles: vec![
                    MpnProfile {
                        partner_number: number.clone(),
                        organization_name: name.into(),
                        country: country(country_code)?,
                        active: true,
                    },
                    MpnProfile {
                        partner_number: partner_number(9_000_000 + n)?,
                        organization_name: format!("{name} (old)"),
                        country: country(country_code)?,
                        active: false,
                    },
                ],
            },
        )
        .await?;
        self.run(
            admin.clone(),
            LinkMpnProfile {
                partner_id: id,
                partner_number: number.clone(),
            },
        )
        .await?;
        if n == 3 {
            // Web-based mail is refused as a primary contact.
            self.refused(
                &format!("{name} gives a webmail primary contact"),
                admin.clone(),
                SubmitLegalProfile {
                    partner_id: id,
                    profile: legal_profile(name, country_code, "pat.contact@gmail.com")?,
                },
            )
            .await?;
        }
        self.run(
            admin.clone(),
            SubmitLegalProfile {
                partner_id: id,
                profile: legal_profile(name, country_code, &format!("pat@{domain}"))?,
            },
        )
        .await?;
        let requested = self
            .run(
                admin.clone(),
                RequestPrimaryContactVerification { partner_id: id },
            )
            .await?;
        let Some(IssuedSecret::LinkToken(token)) = requested.secrets.first() else {
            bail!("verification request issued no link");
        };
        self.run(
            Actor::PrimaryContact {
                token: SecretHash::of(token.as_bytes()),
            },
            VerifyPrimaryContact { partner_id: id },
        )
        .await?;
        for step in ReviewStep::ALL {
            self.run(
                Actor::Operator,
                CompleteReviewStep {
                    partner_id: id,
                    step,
                },
            )
            .await?;
        }
        let authorized = self
            .run(Actor::Operator, AuthorizeEnrollment { partner_id: id })
            .await?;
        let Some(Event::EnrollmentAuthorized(authorized)) =
            authorized.events.first().map(|e| &e.event)
        else {
            bail!("authorizing {name} recorded no authorization");
        };
        let first_user = authorized.first_user_id;
        // The first user of an enrolled reseller signs in through its directory, so the
        // domain issues it no temporary password; the demo gives it the demo password so
        // that it can sign in to the API (`serve` binds the enrollment's password instead).
        self.handler
            .credentials()
            .set_password(
                &first_user.to_string(),
                DEMO_PASSWORD,
                self.handler.clock().now(),
            )
            .context("setting the demo password of a reseller's first admin")?;
        self.people.push(Person {
            name: format!("{name} Admin"),
            email: format!("admin@{domain}"),
            partner: name.into(),
            roles: "global admin, admin agent".into(),
            id: first_user,
        });
        self.run(
            Actor::user(first_user),
            SignPartnerAgreement {
                partner_id: id,
                agreement_version: "2026-01".into(),
            },
        )
        .await?;
        Ok(Org {
            name: name.into(),
            id,
            tenant,
            number,
            admin: first_user,
        })
    }

    async fn add_user(
        &mut self,
        org: &Org,
        full_name: &str,
        agent_role: Option<AgentRole>,
        admin_role: Option<AdminRole>,
    ) -> anyhow::Result<UserId> {
        let address = format!(
            "{}@{}",
            full_name.split(' ').next().unwrap_or("user").to_lowercase(),
            domain_of(&org.name)
        );
        let outcome = self
            .run(
                Actor::user(org.admin),
                AddUser {
                    partner_id: org.id,
                    full_name: full_name.into(),
                    email: email(&address)?,
                    agent_role,
                    admin_role,
                },
            )
            .await?;
        let Some(Event::UserAdded(added)) = outcome.events.first().map(|e| &e.event) else {
            bail!("adding {full_name} recorded no user");
        };
        let id = added.user_id;
        self.first_sign_in(org, id, &outcome).await?;
        let roles = [
            agent_role.map(|r| format!("{r:?}")),
            admin_role.map(|r| format!("{r:?}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        self.people.push(Person {
            name: full_name.into(),
            email: address,
            partner: org.name.clone(),
            roles,
            id,
        });
        Ok(id)
    }

    async fn partner_up(&mut self, provider: &Org, reseller: &Org) -> anyhow::Result<()> {
        let invited = self
            .run(
                Actor::user(provider.admin),
                InviteReseller {
                    provider_id: provider.id,
                    reseller_partner_number: reseller.number.clone(),
                },
            )
            .await?;
        let Some(IssuedSecret::LinkToken(token)) = invited.secrets.first() else {
            bail!("the reseller invitation issued no link");
        };
        self.run(
            Actor::user(reseller.admin),
            AuthorizeIndirectProvider {
                provider_id: provider.id,
                reseller_id: reseller.id,
                token_hash: SecretHash::of(token.as_bytes()),
                consent: true,
            },
        )
        .await?;
        Ok(())
    }

    async fn import_customer(
        &mut self,
        reseller: &Org,
        name: &str,
        country_code: &str,
    ) -> anyhow::Result<()> {
        let tenant = TenantId(Uuid::now_v7());
        self.run(
            Actor::Operator,
            ImportExistingCustomer {
                reseller_id: reseller.id,
                customer: CustomerProfile {
                    tenant_id: tenant,
                    company_name: name.into(),
                    primary_domain: domain_of(name),
                    country: country(country_code)?,
                },
                source: CustomerSource::Office365PartnerAdminCenter,
                original_start: chrono::NaiveDate::from_ymd_opt(2019, 4, 1)
                    .context("a valid date")?,
                delegated_admin: true,
            },
        )
        .await?;
        Ok(())
    }

    async fn invite_and_accept(
        &mut self,
        by: UserId,
        reseller: &Org,
        provider: Option<&Org>,
        name: &str,
        country_code: &str,
    ) -> anyhow::Result<usize> {
        let domain = domain_of(name);
        let invited = self
            .run(
                Actor::user(by),
                InviteCustomer {
                    partner_id: reseller.id,
                    customer_email: email(&format!("it@{domain}"))?,
                    provider_id: provider.map(|p| p.id),
                },
            )
            .await?;
        let (Some(Event::CustomerInvitationCreated(created)), Some(IssuedSecret::LinkToken(token))) = (
            invited.events.first().map(|e| &e.event),
            invited.secrets.first(),
        ) else {
            bail!("inviting {name} recorded no invitation and link");
        };
        let invitation: InvitationId = created.invitation_id;
        let tenant = TenantId(Uuid::now_v7());
        let accepted = self
            .run(
                Actor::CustomerAdmin {
                    tenant_id: tenant,
                    token: Some(SecretHash::of(token.as_bytes())),
                },
                AcceptCustomerInvitation {
                    invitation_id: invitation,
                    company_name: name.into(),
                    primary_domain: domain,
                    country: country(country_code)?,
                },
            )
            .await?;
        let Some(Event::ResellerRelationshipAccepted(accepted)) =
            accepted.events.first().map(|e| &e.event)
        else {
            bail!("{name} accepted, but no relationship was recorded");
        };
        self.clients.push(Client {
            name: name.into(),
            id: accepted.customer_id,
            tenant,
            token: token.clone(),
        });
        Ok(self.clients.len() - 1)
    }

    async fn order(
        &mut self,
        by: UserId,
        provider: &Org,
        customer: usize,
        reseller: &Org,
    ) -> anyhow::Result<()> {
        let customer_name = self.client(customer).name.clone();
        let outcome = self
            .run(
                Actor::user(by),
                order_command(provider, self.client(customer).id, reseller),
            )
            .await?;
        if let Some(Event::OrderSubmitted(order)) = outcome.events.first().map(|e| &e.event) {
            self.orders.push(format!(
                "order {} by {} for {customer_name} citing {} (at position {})",
                order.order_id.uuid(),
                provider.name,
                reseller.name,
                outcome.events[0].position
            ));
        }
        Ok(())
    }
}

fn order_command(provider: &Org, customer: CustomerId, reseller: &Org) -> SubmitOrder {
    SubmitOrder {
        provider_id: provider.id,
        customer_id: customer,
        reseller_id: reseller.id,
        lines: vec![
            OrderLine {
                offer_id: "CFQ7TTC0LH18:0001".into(),
                product_family: ProductFamily::Office365,
                quantity: 25,
            },
            OrderLine {
                offer_id: "DZH318Z0BQ3Q:0001".into(),
                product_family: ProductFamily::Azure,
                quantity: 1,
            },
        ],
    }
}

fn domain_of(name: &str) -> String {
    let slug: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    format!("{slug}.example")
}

fn email(text: &str) -> anyhow::Result<Email> {
    Email::parse(text).map_err(|e| anyhow::anyhow!("{text}: {e}"))
}

fn country(code: &str) -> anyhow::Result<Country> {
    Country::parse(code).map_err(|e| anyhow::anyhow!("{code}: {e}"))
}

fn partner_number(n: u32) -> anyhow::Result<PartnerNumber> {
    PartnerNumber::parse(&format!("{n:07}")).map_err(|e| anyhow::anyhow!("{n}: {e}"))
}

fn support(domain: &str) -> anyhow::Result<SupportDetails> {
    Ok(SupportDetails {
        email: email(&format!("support@{domain}"))?,
        phone: "+1 555 0100".into(),
        website: Some(format!("https://{domain}/support")),
    })
}

fn legal_profile(name: &str, country_code: &str, contact: &str) -> anyhow::Result<LegalProfile> {
    Ok(LegalProfile {
        legal_name: format!("{name} Ltd"),
        address: Address {
            lines: vec!["1 Main Street".into()],
            city: "Springfield".into(),
            region: None,
            postal_code: Some("12345".into()),
            country: country(country_code)?,
        },
        primary_contact: Contact {
            name: "Pat Contact".into(),
            email: email(contact)?,
            phone: None,
        },
        support: support(&domain_of(name))?,
    })
}

fn print_json(script: &Script<'_>, story: &Story, head: u64, records: u64) {
    let org = |o: &Org| json!({"name": o.name, "partner_id": o.id, "tenant_id": o.tenant, "partner_number": o.number, "global_admin": o.admin});
    let value = json!({
        "operator": "operator",
        "providers": [org(&story.northwind), org(&story.tailspin)],
        "resellers": [org(&story.contoso), org(&story.fabrikam), org(&story.adatum)],
        "users": script.people.iter().map(|p| json!({"name": p.name, "email": p.email, "partner": p.partner, "roles": p.roles, "user_id": p.id})).collect::<Vec<_>>(),
        "customers": script.clients.iter().map(|c| json!({"name": c.name, "customer_id": c.id, "tenant_id": c.tenant})).collect::<Vec<_>>(),
        "demo_password": DEMO_PASSWORD,
        "orders": script.orders,
        "refusals": script.refusals,
        "head_position": head,
        "records_verified": records,
    });
    println!("{value}");
}

fn print_text(data: &DataDir, script: &Script<'_>, story: &Story, head: u64, records: u64) {
    println!(
        "csp-ledger demo: {} events recorded in {} (hash chain verified: {records} records)\n",
        head + 1,
        data.root().display()
    );
    println!("Indirect providers");
    for org in [&story.northwind, &story.tailspin] {
        println!(
            "  {:<24} partner {}  MPN {}",
            org.name,
            org.id.uuid(),
            org.number
        );
    }
    println!("Indirect resellers");
    for org in [&story.contoso, &story.fabrikam, &story.adatum] {
        println!(
            "  {:<24} partner {}  MPN {}",
            org.name,
            org.id.uuid(),
            org.number
        );
    }
    println!("Users (all changed their temporary password to {DEMO_PASSWORD:?})");
    for person in &script.people {
        println!(
            "  {:<20} {:<34} {:<24} {:<32} user {}",
            person.name,
            person.email,
            person.partner,
            person.roles,
            person.id.uuid()
        );
    }
    println!("Customers");
    for client in &script.clients {
        println!("  {:<24} customer {}", client.name, client.id.uuid());
    }
    println!("Orders");
    for order in &script.orders {
        println!("  {order}");
    }
    println!("Refused, as the rules require");
    for refusal in &script.refusals {
        println!("  {refusal}");
    }
    println!("\nTry:");
    println!(
        "  csp-ledger --data {} history partner-{}",
        data.root().display(),
        story.contoso.id.uuid()
    );
    println!(
        "  csp-ledger --data {} history partnership-{}-{}",
        data.root().display(),
        story.tailspin.id.uuid(),
        story.contoso.id.uuid()
    );
    println!(
        "  csp-ledger --data {} export --format csv",
        data.root().display()
    );
    println!("  csp-ledger --data {} verify", data.root().display());
}
