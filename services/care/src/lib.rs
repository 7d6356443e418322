//! The care service (`gryning.v1.Care`) for Kriminalvården and the social services: contract care
//! proposed in a case, and a client's treatment programmes and support, recorded through the
//! shared `Recorder`.

use std::sync::Arc;

use gryning_proto::pb;
use gryning_proto::pb::care_server::{Care, CareServer};
use gryning_proto::pb::event::Body as B;
use gryning_service_common::auth::Authenticator;
use gryning_service_common::{Context, Rpc};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

pub use gryning_proto::pb::care_server::SERVICE_NAME;

/// The handlers: each builds the event from the request's fields and records it through the
/// shared recorder; the role check comes first, so a denied caller learns nothing about the
/// case.
pub struct CareService {
    ctx: Arc<Context>,
}

/// The service with its authentication interceptor and its request-size limit, ready to mount.
pub fn service(ctx: Arc<Context>) -> InterceptedService<CareServer<CareService>, Authenticator> {
    let auth = ctx.authenticator();
    let limit =
        gryning_service_common::limits::decoding_limit(&ctx.settings, Rpc::ProposeContractCare);
    InterceptedService::new(
        CareServer::new(CareService { ctx }).max_decoding_message_size(limit),
        auth,
    )
}

#[tonic::async_trait]
impl Care for CareService {
    async fn propose_contract_care(
        &self,
        request: Request<pb::ProposeContractCareRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, ProposeContractCare, case, |r| {
            B::ContractCareProposed(pb::ContractCareProposed {})
        })
    }

    async fn start_treatment_programme(
        &self,
        request: Request<pb::StartTreatmentProgrammeRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(
            self,
            request,
            StartTreatmentProgramme,
            client,
            |r| B::TreatmentProgrammeStarted(r.treatment_programme_started.unwrap_or_default())
        )
    }

    async fn end_treatment_programme(
        &self,
        request: Request<pb::EndTreatmentProgrammeRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, EndTreatmentProgramme, client, |r| {
            B::TreatmentProgrammeEnded(r.treatment_programme_ended.unwrap_or_default())
        })
    }

    async fn grant_support(
        &self,
        request: Request<pb::GrantSupportRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, GrantSupport, client, |r| {
            B::SupportGranted(r.support_granted.unwrap_or_default())
        })
    }
}

gryning_service_common::service_application! {
    /// The care server: this service plus health and reflection, on its own port.
    names: [SERVICE_NAME],
    mount(ctx, routes) {
        routes.add_service(service(std::sync::Arc::clone(&ctx)));
    }
}
