//! `GET /v1/history/{target}`: the events of a party (partner, customer or user id), a
//! partnership (`partnership-{provider}-{reseller}`) or any stream, in order, with actors and
//! times, at any instant (`as_of`), scoped to what the caller may read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use domain::{CustomerId, PartnerId, UserId};
use projections::View;
use serde_json::{Value, json};
use store::{Direction, ReadFrom};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::params::PathParam;
use crate::policy::{Party, Visible, history_scope};
use crate::problem::{ApiResult, Problem};
use crate::routes::queries::{ReadParams, positioned, view_problem, wait_min_position};

/// Most events one history response carries (with payloads).
const HISTORY_EVENTS_MAX: usize = 1000;

/// What a target names, judged on the current read models.
fn resolve(now: &View<'_>, target: &str) -> Option<(Party, String)> {
    if let Ok(id) = Uuid::parse_str(target) {
        if now.partner_info(PartnerId(id)).value.is_some() {
            return Some((Party::Partner(PartnerId(id)), target.to_string()));
        }
        if now.customer_info(CustomerId(id)).value.is_some() {
            return Some((Party::Customer(CustomerId(id)), target.to_string()));
        }
        if now.user_info_of(UserId(id)).value.is_some() {
            return Some((Party::User(UserId(id)), target.to_string()));
        }
        return None;
    }
    let parse = |text: &str| Uuid::parse_str(text).ok();
    if let Some(rest) = target.strip_prefix("partner-") {
        return parse(rest).map(|id| (Party::Partner(PartnerId(id)), target.to_string()));
    }
    if let Some(rest) = target.strip_prefix("customer-") {
        return parse(rest).map(|id| (Party::Customer(CustomerId(id)), target.to_string()));
    }
    if let Some(rest) = target.strip_prefix("partnership-") {
        // Two UUIDs of 36 characters joined by '-'.
        if rest.len() == 73 {
            let (provider, reseller) = (parse(&rest[..36])?, parse(&rest[37..])?);
            return Some((
                Party::Partnership {
                    provider: PartnerId(provider),
                    reseller: PartnerId(reseller),
                },
                target.to_string(),
            ));
        }
        return None;
    }
    Some((Party::OtherStream, target.to_string()))
}

/// `GET /v1/history/{target}`.
pub async fn history(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    PathParam(target): PathParam<String>,
    params: Result<QueryParams<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let QueryParams(mut params) =
        params.map_err(|rejection| Problem::bad_request("invalid-query", rejection.body_text()))?;
    let read = ReadParams::take(&mut params)?;
    wait_min_position(&state, read.min_position).await?;
    let (position, events) = {
        let projections = state.projections.read();
        let now = projections.at(None).map_err(view_problem)?;
        // A name that is not an id of anything is another stream's name to a scoped reader,
        // so that "unknown" takes the same path as "foreign".
        let resolved = resolve(&now, &target);
        let (party, stream) = resolved
            .clone()
            .unwrap_or((Party::OtherStream, target.clone()));
        let visible = history_scope(&caller, &projections, party);
        let unknown = || {
            if caller.reads_everything() {
                Problem::not_found(format!("nothing is known as {target:?}"))
            } else {
                Problem::forbidden()
            }
        };
        let Some(visible) = visible.filter(|_| resolved.is_some() || !caller.reads_everything())
        else {
            return Err(unknown());
        };
        let view = projections.at(read.as_of).map_err(view_problem)?;
        let answer = match party {
            Party::Partner(partner) if !stream.starts_with("partner-") => {
                view.partner_history(partner)
            }
            Party::Customer(customer) if !stream.starts_with("customer-") => {
                view.customer_history(customer)
            }
            Party::User(user) => view.user_history(user),
            _ => view.stream_history(&stream),
        };
        let shown: Vec<_> = answer
            .value
            .iter()
            .filter(|event| visible.shows(**event))
            .collect();
        // A scoped reader that sees nothing of it cannot tell it from a name nobody knows.
        if shown.is_empty() && visible != Visible::All {
            return Err(unknown());
        }
        let events: Vec<Value> = shown
            .into_iter()
            .take(HISTORY_EVENTS_MAX)
            .map(|event| serde_json::to_value(view.event(*event)).unwrap_or(Value::Null))
            .collect();
        (answer.position, events)
    };
    // The payloads come from the log itself, read after the lock on the read models is let go.
    let mut detailed = Vec::with_capacity(events.len());
    for event in events {
        let Some(position) = event["position"].as_u64() else {
            continue;
        };
        let recorded = state
            .store
            .read_all(ReadFrom::At(position), Direction::Forwards, 1)
            .await
            .map_err(|error| {
                tracing::error!(%error, "reading a history event");
                Problem::internal()
            })?;
        match recorded.first() {
            Some(recorded) if recorded.position.0 == position => {
                detailed.push(crate::render::event_json(recorded));
            }
            _ => detailed.push(event),
        }
    }
    Ok(positioned(
        json!({"target": target, "position": position, "events": detailed}),
        position,
    ))
}
