//! The prosecution service (`gryning.v1.Prosecution`): a decision per crime of a referred case,
//! recorded through the shared `Recorder` like every other event.

use std::sync::Arc;

use gryning_proto::pb;
use gryning_proto::pb::event::Body as B;
use gryning_proto::pb::prosecution_server::{Prosecution, ProsecutionServer};
use gryning_service_common::auth::Authenticator;
use gryning_service_common::{Context, Rpc};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

pub use gryning_proto::pb::prosecution_server::SERVICE_NAME;

/// The handlers: each builds the event from the request's fields and records it through the
/// shared recorder; the role check comes first, so a denied caller learns nothing about the
/// case.
pub struct ProsecutionService {
    ctx: Arc<Context>,
}

/// The service with its authentication interceptor and its request-size limit, ready to mount.
pub fn service(
    ctx: Arc<Context>,
) -> InterceptedService<ProsecutionServer<ProsecutionService>, Authenticator> {
    let auth = ctx.authenticator();
    let limit =
        gryning_service_common::limits::decoding_limit(&ctx.settings, Rpc::DecideProsecution);
    InterceptedService::new(
        ProsecutionServer::new(ProsecutionService { ctx }).max_decoding_message_size(limit),
        auth,
    )
}

#[tonic::async_trait]
impl Prosecution for ProsecutionService {
    async fn decide_prosecution(
        &self,
        request: Request<pb::DecideProsecutionRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, DecideProsecution, case, |r| {
            B::ProsecutionDecided(r.prosecution_decided.unwrap_or_default())
        })
    }
}

gryning_service_common::service_application! {
    /// The prosecution server: this service plus health and reflection, on its own port.
    names: [SERVICE_NAME],
    mount(ctx, routes) {
        routes.add_service(service(std::sync::Arc::clone(&ctx)));
    }
}
