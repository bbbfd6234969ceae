//! Roles and the permission matrix of SPEC §2.2, as one data table used by every command.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A partner user's agent role (at most one; `None` means no agent role).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    /// Sells, manages customers and subscriptions, administers delegated admin.
    AdminAgent,
    /// Sells and submits orders; exists only for indirect providers.
    SalesAgent,
    /// Supports customers.
    HelpdeskAgent,
}

/// A partner user's admin role (at most one; `None` means no admin role).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// Holds every capability; at least one per partner, always.
    GlobalAdmin,
    /// Manages users, but cannot grant or revoke global admin.
    UserManagementAdmin,
}

/// One role that a matrix cell can name. Global admin is not in the table: it holds every
/// capability by rule, so no row can forget it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// An agent role.
    Agent(AgentRole),
    /// The user management admin role.
    UserManagementAdmin,
}

/// The roles one user holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Roles {
    /// The agent role, if any.
    pub agent_role: Option<AgentRole>,
    /// The admin role, if any.
    pub admin_role: Option<AdminRole>,
}

impl Roles {
    /// Global admin and admin agent: what the first user of a partner gets (SPEC §2.1.7).
    pub const FIRST_USER: Roles = Roles {
        agent_role: Some(AgentRole::AdminAgent),
        admin_role: Some(AdminRole::GlobalAdmin),
    };

    /// Whether these roles include global admin.
    pub fn is_global_admin(&self) -> bool {
        self.admin_role == Some(AdminRole::GlobalAdmin)
    }

    /// Whether these roles hold `role`.
    pub fn holds(&self, role: Role) -> bool {
        match role {
            Role::Agent(agent) => self.agent_role == Some(agent),
            Role::UserManagementAdmin => self.admin_role == Some(AdminRole::UserManagementAdmin),
        }
    }
}

/// One row of the permission matrix of SPEC §2.2.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// View, create, change roles of and remove users.
    ManageUsers,
    /// View the partner's profile.
    ViewPartnerProfile,
    /// Accept a provider's partnership (authorize an indirect provider); also needed to end
    /// a partnership from either side, which weighs the same.
    AuthorizeIndirectProvider,
    /// Open and manage partner support tickets.
    PartnerSupportTickets,
    /// Request a reseller relationship: invite customers (and, for providers, resellers).
    InviteCustomers,
    /// Search and view customers.
    ViewCustomers,
    /// Customer service health and service requests.
    CustomerServiceHealth,
    /// Manage customer subscriptions other than Office 365 ones.
    ManageSubscriptions,
    /// Manage Office 365 customer subscriptions.
    ManageOffice365Subscriptions,
    /// Request and administer delegated admin (admin on behalf of), including granular.
    AdministerDelegatedAdmin,
    /// Submit orders for customers (provider users).
    SubmitOrders,
    /// Manage leads.
    ManageLeads,
    /// Remove a customer reseller relationship.
    RemoveResellerRelationship,
}

impl Capability {
    /// Every capability, in the table's order.
    pub const ALL: [Capability; 13] = [
        Capability::ManageUsers,
        Capability::ViewPartnerProfile,
        Capability::AuthorizeIndirectProvider,
        Capability::PartnerSupportTickets,
        Capability::InviteCustomers,
        Capability::ViewCustomers,
        Capability::CustomerServiceHealth,
        Capability::ManageSubscriptions,
        Capability::ManageOffice365Subscriptions,
        Capability::AdministerDelegatedAdmin,
        Capability::SubmitOrders,
        Capability::ManageLeads,
        Capability::RemoveResellerRelationship,
    ];

    /// A stable snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Capability::ManageUsers => "manage_users",
            Capability::ViewPartnerProfile => "view_partner_profile",
            Capability::AuthorizeIndirectProvider => "authorize_indirect_provider",
            Capability::PartnerSupportTickets => "partner_support_tickets",
            Capability::InviteCustomers => "invite_customers",
            Capability::ViewCustomers => "view_customers",
            Capability::CustomerServiceHealth => "customer_service_health",
            Capability::ManageSubscriptions => "manage_subscriptions",
            Capability::ManageOffice365Subscriptions => "manage_office365_subscriptions",
            Capability::AdministerDelegatedAdmin => "administer_delegated_admin",
            Capability::SubmitOrders => "submit_orders",
            Capability::ManageLeads => "manage_leads",
            Capability::RemoveResellerRelationship => "remove_reseller_relationship",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const ADMIN_AGENT: Role = Role::Agent(AgentRole::AdminAgent);
const SALES_AGENT: Role = Role::Agent(AgentRole::SalesAgent);
const HELPDESK_AGENT: Role = Role::Agent(AgentRole::HelpdeskAgent);
const USER_MANAGEMENT_ADMIN: Role = Role::UserManagementAdmin;

/// The permission matrix of SPEC §2.2: each capability and the roles, other than global
/// admin, that hold it. Rows with no roles are global-admin-only.
pub const PERMISSION_MATRIX: &[(Capability, &[Role])] = &[
    (Capability::ManageUsers, &[USER_MANAGEMENT_ADMIN]),
    (
        Capability::ViewPartnerProfile,
        &[ADMIN_AGENT, SALES_AGENT, USER_MANAGEMENT_ADMIN],
    ),
    (Capability::AuthorizeIndirectProvider, &[]),
    (Capability::PartnerSupportTickets, &[]),
    (Capability::InviteCustomers, &[ADMIN_AGENT, SALES_AGENT]),
    (
        Capability::ViewCustomers,
        &[ADMIN_AGENT, SALES_AGENT, HELPDESK_AGENT],
    ),
    (
        Capability::CustomerServiceHealth,
        &[ADMIN_AGENT, HELPDESK_AGENT],
    ),
    (
        Capability::ManageSubscriptions,
        &[ADMIN_AGENT, SALES_AGENT, HELPDESK_AGENT],
    ),
    (Capability::ManageOffice365Subscriptions, &[ADMIN_AGENT]),
    (Capability::AdministerDelegatedAdmin, &[ADMIN_AGENT]),
    (Capability::SubmitOrders, &[ADMIN_AGENT, SALES_AGENT]),
    (Capability::ManageLeads, &[ADMIN_AGENT, SALES_AGENT]),
    (Capability::RemoveResellerRelationship, &[]),
];

/// The roles, other than global admin, that hold `capability`.
pub fn holders(capability: Capability) -> &'static [Role] {
    PERMISSION_MATRIX
        .iter()
        .find(|(row, _)| *row == capability)
        .map_or(&[], |(_, roles)| *roles)
}

/// Whether a user with `roles` holds `capability`: global admin holds all of them, any other
/// role holds what its matrix row names.
pub fn can(roles: &Roles, capability: Capability) -> bool {
    roles.is_global_admin() || holders(capability).iter().any(|role| roles.holds(*role))
}

/// Every capability that `roles` holds, in the table's order.
pub fn capabilities(roles: &Roles) -> Vec<Capability> {
    Capability::ALL
        .into_iter()
        .filter(|capability| can(roles, *capability))
        .collect()
}
