//! The persistent-subscription and projection services of the protocol, as far as the
//! ledger has them: none of either. Clients list both routinely (test suites' teardowns,
//! dashboards, tooling probing a server), so each call answers what is true rather than
//! `UNIMPLEMENTED`, which clients raise as an error: the listings are empty; naming one
//! (to read, inspect, change, delete or replay it) answers `NOT_FOUND`, as KurrentDB does
//! for one that does not exist; restarting the persistent-subscription subsystem, which
//! holds nothing, succeeds. Only creating one is `UNIMPLEMENTED`: the ledger's read models
//! are its own, and its subscribers follow `$all` with checkpoints of their own.
//!
//! Every call needs credentials (a reader's suffice), as every read of the door does.

// `tonic::Status` is the error type every gRPC handler must return.
#![allow(clippy::result_large_err)]

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::protocol::ProtocolAuth;
use crate::protocol::generated::event_store::client::persistent_subscriptions as persistent;
use crate::protocol::generated::event_store::client::projections;

use persistent::persistent_subscriptions_server::PersistentSubscriptions;
use projections::projections_server::Projections;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn no_persistent_subscriptions() -> Status {
    Status::unimplemented(
        "the ledger keeps no persistent subscriptions: subscribe to $all (or a stream) and keep a checkpoint",
    )
}

fn no_projections() -> Status {
    Status::unimplemented("the ledger runs no KurrentDB projections: its read models are its own")
}

/// `PersistentSubscriptions` without any: see the module docs.
pub(crate) struct PersistentSubscriptionsService {
    pub(crate) auth: ProtocolAuth,
}

#[tonic::async_trait]
impl PersistentSubscriptions for PersistentSubscriptionsService {
    type ReadStream = ResponseStream<persistent::ReadResp>;

    async fn create(
        &self,
        _request: Request<persistent::CreateReq>,
    ) -> Result<Response<persistent::CreateResp>, Status> {
        Err(no_persistent_subscriptions())
    }

    async fn update(
        &self,
        request: Request<persistent::UpdateReq>,
    ) -> Result<Response<persistent::UpdateResp>, Status> {
        self.auth.principal(&request)?;
        let group = request.into_inner().options.map(|o| o.group_name);
        Err(no_group(group))
    }

    async fn delete(
        &self,
        request: Request<persistent::DeleteReq>,
    ) -> Result<Response<persistent::DeleteResp>, Status> {
        self.auth.principal(&request)?;
        let group = request.into_inner().options.map(|o| o.group_name);
        Err(no_group(group))
    }

    async fn read(
        &self,
        request: Request<Streaming<persistent::ReadReq>>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        use persistent::read_req::Content;
        self.auth.principal(&request)?;
        let group = match request.into_inner().message().await? {
            Some(persistent::ReadReq {
                content: Some(Content::Options(options)),
            }) => Some(options.group_name),
            _ => None,
        };
        Err(no_group(group))
    }

    async fn get_info(
        &self,
        request: Request<persistent::GetInfoReq>,
    ) -> Result<Response<persistent::GetInfoResp>, Status> {
        self.auth.principal(&request)?;
        let group = request.into_inner().options.map(|o| o.group_name);
        Err(no_group(group))
    }

    async fn replay_parked(
        &self,
        request: Request<persistent::ReplayParkedReq>,
    ) -> Result<Response<persistent::ReplayParkedResp>, Status> {
        self.auth.principal(&request)?;
        let group = request.into_inner().options.map(|o| o.group_name);
        Err(no_group(group))
    }

    async fn list(
        &self,
        request: Request<persistent::ListReq>,
    ) -> Result<Response<persistent::ListResp>, Status> {
        self.auth.principal(&request)?;
        Ok(Response::new(persistent::ListResp {
            subscriptions: Vec::new(),
        }))
    }

    async fn restart_subsystem(&self, request: Request<()>) -> Result<Response<()>, Status> {
        // Nothing runs, so nothing needs restarting: done.
        self.auth.principal(&request)?;
        Ok(Response::new(()))
    }
}

fn no_group(group: Option<String>) -> Status {
    Status::not_found(format!(
        "persistent subscription group {:?} does not exist",
        group.unwrap_or_default()
    ))
}

/// `Projections` without any: see the module docs.
pub(crate) struct ProjectionsService {
    pub(crate) auth: ProtocolAuth,
}

fn no_projection_named(name: Option<String>) -> Status {
    Status::not_found(format!(
        "projection {:?} does not exist",
        name.unwrap_or_default()
    ))
}

#[tonic::async_trait]
impl Projections for ProjectionsService {
    type StatisticsStream = ResponseStream<projections::StatisticsResp>;

    async fn create(
        &self,
        _request: Request<projections::CreateReq>,
    ) -> Result<Response<projections::CreateResp>, Status> {
        Err(no_projections())
    }

    async fn update(
        &self,
        request: Request<projections::UpdateReq>,
    ) -> Result<Response<projections::UpdateResp>, Status> {
        self.auth.principal(&request)?;
        let name = request.into_inner().options.map(|o| o.name);
        Err(no_projection_named(name))
    }

    async fn delete(
        &self,
        request: Request<projections::DeleteReq>,
    ) -> Result<Response<projections::DeleteResp>, Status> {
        self.auth.principal(&request)?;
        let name = request.into_inner().options.map(|o| o.name);
        Err(no_projection_named(name))
    }

    async fn statistics(
        &self,
        request: Request<projections::StatisticsReq>,
    ) -> Result<Response<Self::StatisticsStream>, Status> {
        use projections::statistics_req::options::Mode;
        self.auth.principal(&request)?;
        let mode = request
            .into_inner()
            .options
            .and_then(|options| options.mode);
        if let Some(Mode::Name(name)) = mode {
            return Err(no_projection_named(Some(name)));
        }
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }

    async fn disable(
        &self,
        request: Request<projections::DisableReq>,
    ) -> Result<Response<projections::DisableResp>, Status> {
        self.auth.principal(&request)?;
        let name = request.into_inner().options.map(|o| o.name);
        Err(no_projection_named(name))
    }

    async fn enable(
        &self,
        request: Request<projections::EnableReq>,
    ) -> Result<Response<projections::EnableResp>, Status> {
        self.auth.principal(&request)?;
        let name = request.into_inner().options.map(|o| o.name);
        Err(no_projection_named(name))
    }

    async fn reset(
        &self,
        request: Request<projections::ResetReq>,
    ) -> Result<Response<projections::ResetResp>, Status> {
        self.auth.principal(&request)?;
        let name = request.into_inner().options.map(|o| o.name);
        Err(no_projection_named(name))
    }

    async fn state(
        &self,
        request: Request<projections::StateReq>,
    ) -> Result<Response<projections::StateResp>, Status> {
        self.auth.principal(&request)?;
        let name = request.into_inner().options.map(|o| o.name);
        Err(no_projection_named(name))
    }

    async fn result(
        &self,
        request: Request<projections::ResultReq>,
    ) -> Result<Response<projections::ResultResp>, Status> {
        self.auth.principal(&request)?;
        let name = request.into_inner().options.map(|o| o.name);
        Err(no_projection_named(name))
    }

    async fn restart_subsystem(&self, _request: Request<()>) -> Result<Response<()>, Status> {
        Err(no_projections())
    }
}
