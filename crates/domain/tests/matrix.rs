//! The permission matrix checked cell by cell against SPEC §2.2, with the expected table
//! written out again here, independently of the code's table.

use domain::roles::{Role, capabilities, holders};
use domain::*;

/// SPEC §2.2, row by row: admin agent, sales agent, helpdesk agent, user management admin.
const SPEC: &[(&str, [bool; 4])] = &[
    ("manage_users", [false, false, false, true]),
    ("view_partner_profile", [true, true, false, true]),
    ("authorize_indirect_provider", [false, false, false, false]),
    ("partner_support_tickets", [false, false, false, false]),
    ("invite_customers", [true, true, false, false]),
    ("view_customers", [true, true, true, false]),
    ("customer_service_health", [true, false, true, false]),
    ("manage_subscriptions", [true, true, true, false]),
    (
        "manage_office365_subscriptions",
        [true, false, false, false],
    ),
    ("administer_delegated_admin", [true, false, false, false]),
    ("submit_orders", [true, true, false, false]),
    ("manage_leads", [true, true, false, false]),
    ("remove_reseller_relationship", [false, false, false, false]),
];

fn column(index: usize) -> Roles {
    match index {
        0 => Roles {
            agent_role: Some(AgentRole::AdminAgent),
            admin_role: None,
        },
        1 => Roles {
            agent_role: Some(AgentRole::SalesAgent),
            admin_role: None,
        },
        2 => Roles {
            agent_role: Some(AgentRole::HelpdeskAgent),
            admin_role: None,
        },
        _ => Roles {
            agent_role: None,
            admin_role: Some(AdminRole::UserManagementAdmin),
        },
    }
}

#[test]
fn every_cell_matches_the_spec() {
    assert_eq!(
        SPEC.len(),
        Capability::ALL.len(),
        "one spec row per capability"
    );
    assert_eq!(
        PERMISSION_MATRIX.len(),
        Capability::ALL.len(),
        "one table row per capability"
    );
    for (name, cells) in SPEC {
        let capability = Capability::ALL
            .into_iter()
            .find(|c| c.name() == *name)
            .unwrap_or_else(|| panic!("no capability {name}"));
        for (index, expected) in cells.iter().enumerate() {
            let roles = column(index);
            assert_eq!(can(&roles, capability), *expected, "{name} for {roles:?}");
        }
        // Global admin holds every capability, whatever its agent role.
        for agent_role in [
            None,
            Some(AgentRole::AdminAgent),
            Some(AgentRole::HelpdeskAgent),
        ] {
            let global = Roles {
                agent_role,
                admin_role: Some(AdminRole::GlobalAdmin),
            };
            assert!(can(&global, capability), "global admin holds {name}");
        }
        // No role holds anything.
        assert!(!can(&Roles::default(), capability), "no role, no {name}");
    }
}

#[test]
fn roles_combine_as_a_union() {
    let both = Roles {
        agent_role: Some(AgentRole::HelpdeskAgent),
        admin_role: Some(AdminRole::UserManagementAdmin),
    };
    assert!(can(&both, Capability::ManageUsers));
    assert!(can(&both, Capability::ViewCustomers));
    assert!(!can(&both, Capability::SubmitOrders));
    assert_eq!(capabilities(&Roles::FIRST_USER), Capability::ALL.to_vec());
    assert!(
        !holders(Capability::AuthorizeIndirectProvider)
            .contains(&Role::Agent(AgentRole::AdminAgent))
    );
}
