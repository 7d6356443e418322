//! The police service (`gryning.v1.Police`): one RPC per police case event. Every command goes
//! through `Context::command`: role check, `from_pb`, per-event agency check, the shared
//! `Recorder` (validation against the case's state, expected-version append, bounded retries).

use std::sync::Arc;

use gryning_proto::pb;
use gryning_proto::pb::event::Body as B;
use gryning_proto::pb::police_server::{Police, PoliceServer};
use gryning_service_common::auth::{require, Authenticator};
use gryning_service_common::{case_event, Context, Rpc};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

pub use gryning_proto::pb::police_server::SERVICE_NAME;

/// The handlers: each builds the event from the request's fields and records it through the
/// shared recorder; the role check comes first, so a denied caller learns nothing about the
/// case.
pub struct PoliceService {
    ctx: Arc<Context>,
}

/// The service with its authentication interceptor, ready to mount.
pub fn service(
    ctx: Arc<Context>,
) -> InterceptedService<PoliceServer<PoliceService>, Authenticator> {
    let auth = ctx.authenticator();
    PoliceServer::with_interceptor(PoliceService { ctx }, auth)
}

#[tonic::async_trait]
impl Police for PoliceService {
    async fn open_case(
        &self,
        request: Request<pb::OpenCaseRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        let principal = require(&request, Rpc::OpenCase);
        let r = request.into_inner();
        let event = case_event(
            r.event_id,
            r.occurred_on,
            r.case_id,
            B::CaseOpened(r.case_opened.unwrap_or_default()),
        );
        self.ctx.command(principal, event).await
    }

    async fn report_crime(
        &self,
        request: Request<pb::ReportCrimeRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        let principal = require(&request, Rpc::ReportCrime);
        let r = request.into_inner();
        let event = case_event(
            r.event_id,
            r.occurred_on,
            r.case_id,
            B::CrimeReported(r.crime_reported.unwrap_or_default()),
        );
        self.ctx.command(principal, event).await
    }

    async fn reclassify_crime(
        &self,
        request: Request<pb::ReclassifyCrimeRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        let principal = require(&request, Rpc::ReclassifyCrime);
        let r = request.into_inner();
        let event = case_event(
            r.event_id,
            r.occurred_on,
            r.case_id,
            B::CrimeReclassified(r.crime_reclassified.unwrap_or_default()),
        );
        self.ctx.command(principal, event).await
    }

    async fn reclassify_case(
        &self,
        request: Request<pb::ReclassifyCaseRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        let principal = require(&request, Rpc::ReclassifyCase);
        let r = request.into_inner();
        let event = case_event(
            r.event_id,
            r.occurred_on,
            r.case_id,
            B::CaseReclassified(r.case_reclassified.unwrap_or_default()),
        );
        self.ctx.command(principal, event).await
    }

    async fn refer_to_prosecutor(
        &self,
        request: Request<pb::ReferToProsecutorRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        let principal = require(&request, Rpc::ReferToProsecutor);
        let r = request.into_inner();
        let event = case_event(
            r.event_id,
            r.occurred_on,
            r.case_id,
            B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {}),
        );
        self.ctx.command(principal, event).await
    }

    async fn close_investigation(
        &self,
        request: Request<pb::CloseInvestigationRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        let principal = require(&request, Rpc::CloseInvestigation);
        let r = request.into_inner();
        let event = case_event(
            r.event_id,
            r.occurred_on,
            r.case_id,
            B::InvestigationClosed(r.investigation_closed.unwrap_or_default()),
        );
        self.ctx.command(principal, event).await
    }

    async fn notify_child_welfare(
        &self,
        request: Request<pb::NotifyChildWelfareRequest>,
    ) -> Result<Response<pb::Recorded>, Status> {
        let principal = require(&request, Rpc::NotifyChildWelfare);
        let r = request.into_inner();
        let event = case_event(
            r.event_id,
            r.occurred_on,
            r.case_id,
            B::ChildWelfareNotified(pb::ChildWelfareNotified {}),
        );
        self.ctx.command(principal, event).await
    }
}

gryning_service_common::service_application! {
    /// The police server: this service plus health and reflection, on its own port.
    names: [SERVICE_NAME],
    mount(ctx, routes) {
        routes.add_service(service(std::sync::Arc::clone(&ctx)));
    }
}
