//! The police service (`gryning.v1.Police`): one RPC per police case event. Every command goes
//! through `Context::command`: role check, `from_pb`, per-event agency check, the shared
//! `Recorder` (validation against the case's state, expected-version append, bounded retries).

use std::sync::Arc;

use gryning_proto::pb;
use gryning_proto::pb::event::Body as B;
use gryning_proto::pb::police_server::{Police, PoliceServer};
use gryning_service_common::auth::Authenticator;
use gryning_service_common::{Context, Rpc};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

pub use gryning_proto::pb::police_server::SERVICE_NAME;

/// The handlers: each builds the event from the request's fields and records it through the
/// shared recorder; the role check comes first, so a denied caller learns nothing about the
/// case.
pub struct PoliceService {
    ctx: Arc<Context>,
}

/// The service with its authentication interceptor and its request-size limit, ready to mount.
pub fn service(
    ctx: Arc<Context>,
) -> InterceptedService<PoliceServer<PoliceService>, Authenticator> {
    let auth = ctx.authenticator();
    let limit = gryning_service_common::limits::decoding_limit(&ctx.settings, Rpc::OpenCase);
    InterceptedService::new(
        PoliceServer::new(PoliceService { ctx }).max_decoding_message_size(limit),
        auth,
    )
}

#[tonic::async_trait]
impl Police for PoliceService {
    async fn open_case(
        &self,
        request: Request<pb::OpenCaseRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, OpenCase, case, |r| B::CaseOpened(
            r.case_opened.unwrap_or_default()
        ))
    }

    async fn report_crime(
        &self,
        request: Request<pb::ReportCrimeRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, ReportCrime, case, |r| {
            B::CrimeReported(r.crime_reported.unwrap_or_default())
        })
    }

    async fn reclassify_crime(
        &self,
        request: Request<pb::ReclassifyCrimeRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, ReclassifyCrime, case, |r| {
            B::CrimeReclassified(r.crime_reclassified.unwrap_or_default())
        })
    }

    async fn reclassify_case(
        &self,
        request: Request<pb::ReclassifyCaseRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, ReclassifyCase, case, |r| {
            B::CaseReclassified(r.case_reclassified.unwrap_or_default())
        })
    }

    async fn refer_to_prosecutor(
        &self,
        request: Request<pb::ReferToProsecutorRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, ReferToProsecutor, case, |r| {
            B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {})
        })
    }

    async fn close_investigation(
        &self,
        request: Request<pb::CloseInvestigationRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, CloseInvestigation, case, |r| {
            B::InvestigationClosed(r.investigation_closed.unwrap_or_default())
        })
    }

    async fn notify_child_welfare(
        &self,
        request: Request<pb::NotifyChildWelfareRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        gryning_service_common::record_command!(self, request, NotifyChildWelfare, case, |r| {
            B::ChildWelfareNotified(pb::ChildWelfareNotified {})
        })
    }
}

gryning_service_common::service_application! {
    /// The police server: this service plus health and reflection, on its own port.
    names: [SERVICE_NAME],
    mount(ctx, routes) {
        routes.add_service(service(std::sync::Arc::clone(&ctx)));
    }
}
