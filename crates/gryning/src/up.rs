//! `gryning up`: one process serving every gRPC service (police, prosecution, care,
//! event_log, insight) on one port, over the store the global options choose (the embedded
//! store by default), and publishes each quarter automatically once it is due
//! (`publish_after_days`; off with `publish_automatically = false`). One process owns the store, so the embedded SQLite store, which must not
//! be opened by two processes, is safe here.
//!
//! With `dashboard_listen` set, the analysts' web dashboard (`gryning-dashboard`) is served
//! on that address too, on the same runtime and over the same live projections.
//!
//! [`application`] is the composition alone (no settings, no store choice), so the benchmarks
//! in `examples/` serve exactly what `gryning up` serves.

use std::sync::Arc;

use gryning_service_common::{Application, Context, LiveProjections, Settings, StartError};
use gryning_store::EventStore;
use tonic::service::RoutesBuilder;

/// Every service, health and reflection, bound (not yet serving) with `ctx`'s settings.
pub(crate) async fn application(ctx: Arc<Context>) -> Result<Application, StartError> {
    let live = LiveProjections::start(&ctx).await?;
    if ctx.settings.publish_automatically {
        let publisher =
            gryning_service_common::publish::run_automatic(Arc::clone(&ctx), Arc::clone(&live));
        ctx.spawn_background(tokio::spawn(publisher));
    }
    if let Some(addr) = ctx.settings.dashboard_listen {
        let dashboard =
            gryning_dashboard::Dashboard::bind(addr, Arc::clone(&ctx), Arc::clone(&live)).await?;
        // Printed before the gRPC address, which `announce` prints last for scripts to wait on.
        println!("dashboard on http://{}:{}/", addr.ip(), dashboard.port());
        ctx.spawn_background(tokio::spawn(dashboard.serve()));
    }
    let mut routes = RoutesBuilder::default();
    routes
        .add_service(gryning_police::service(Arc::clone(&ctx)))
        .add_service(gryning_prosecution::service(Arc::clone(&ctx)))
        .add_service(gryning_care::service(Arc::clone(&ctx)))
        .add_service(gryning_event_log::service(Arc::clone(&ctx)))
        .add_service(gryning_insight::service(Arc::clone(&ctx), live));
    Application::bind(
        ctx,
        routes,
        &[
            gryning_police::SERVICE_NAME,
            gryning_prosecution::SERVICE_NAME,
            gryning_care::SERVICE_NAME,
            gryning_event_log::SERVICE_NAME,
            gryning_insight::SERVICE_NAME,
        ],
    )
    .await
}

/// Serves every service over `store` (the CLI's backend choice) until SIGTERM or ctrl-c.
pub(crate) async fn run(settings: Settings, store: Arc<dyn EventStore>) -> anyhow::Result<()> {
    let ctx = Context::with_store(settings, store)?;
    let app = application(ctx).await?;
    app.announce();
    app.run_until_stopped().await?;
    Ok(())
}
