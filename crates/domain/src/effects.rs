//! The side effects of a decision: what the shell must do besides appending the events.
//!
//! The domain does no I/O, so a decision cannot store a credential or end a session; it
//! states them as data ([`Decision::effects`]) and the layers above carry them out, without
//! re-reading the command or the events to guess. The effects follow from the events alone,
//! so that a retried command, which has only its recorded events, gets the same ones.
//!
//! [`Decision::effects`]: crate::Decision::effects

use crate::events::Event;
use crate::ids::UserId;

/// One thing the shell must do for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Hand out, once, the link token whose SHA-256 the decision recorded (the context's
    /// `secret_hash`): an invitation or a verification link.
    IssueLinkToken,
    /// Give the user a new temporary password: store its hash, hand it out once.
    IssueTemporaryCredential(UserId),
    /// Delete the user's credential: a removed user keeps no way to sign in.
    DeleteCredential(UserId),
    /// End every session of the user: whoever held one must sign in again, with the new
    /// password or not at all.
    EndSessions(UserId),
}

impl Effect {
    /// The effects of a decision's events, in their order.
    pub fn of<'e>(events: impl IntoIterator<Item = &'e Event>) -> Vec<Effect> {
        let mut effects = Vec::new();
        for event in events {
            effects_of(event, &mut effects);
        }
        effects
    }

    /// Whether a retry of the command carries it out again. Deleting a credential and
    /// ending sessions can be done twice, and doing so covers a shell that stopped between
    /// recording the command and carrying them out; secrets are handed out once only.
    pub fn repeated_on_retry(&self) -> bool {
        matches!(self, Effect::DeleteCredential(_) | Effect::EndSessions(_))
    }
}

// Every event is named, without a catch-all, so that a new event type must be given its
// effects (most have none).
fn effects_of(event: &Event, effects: &mut Vec<Effect>) {
    match event {
        Event::PrimaryContactVerificationRequested(_)
        | Event::IndirectResellerInvited(_)
        | Event::CustomerInvitationCreated(_) => effects.push(Effect::IssueLinkToken),
        Event::TemporaryPasswordIssued(issued) => effects.extend([
            Effect::IssueTemporaryCredential(issued.user_id),
            Effect::EndSessions(issued.user_id),
        ]),
        Event::UserRemoved(removed) => effects.extend([
            Effect::DeleteCredential(removed.user_id),
            Effect::EndSessions(removed.user_id),
        ]),
        Event::EnrollmentStarted(_)
        | Event::MpnProfilesObserved(_)
        | Event::MpnProfileLinked(_)
        | Event::LegalProfileSubmitted(_)
        | Event::PrimaryContactEmailVerified(_)
        | Event::EnrollmentReviewStepCompleted(_)
        | Event::EnrollmentAuthorized(_)
        | Event::EnrollmentRejected(_)
        | Event::EnrollmentResubmitted(_)
        | Event::PartnerAgreementSigned(_)
        | Event::PartnerDeauthorized(_)
        | Event::ResellerProgramAdded(_)
        | Event::ProviderOnboarded(_)
        | Event::UserAdded(_)
        | Event::TemporaryPasswordChanged(_)
        | Event::UserRolesChanged(_)
        | Event::IndirectProviderAuthorized(_)
        | Event::PartnershipEnded(_)
        | Event::CustomerImported(_)
        | Event::ResellerRelationshipAccepted(_)
        | Event::DelegatedAdminRemoved(_)
        | Event::GranularAdminRequested(_)
        | Event::GranularAdminApproved(_)
        | Event::GranularAdminRevoked(_)
        | Event::ResellerRelationshipRemoved(_)
        | Event::OrderSubmitted(_)
        | Event::SubscriptionCancelled(_) => {}
    }
}
