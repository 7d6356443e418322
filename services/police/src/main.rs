//! The `gryning-police` server on its own: telemetry, settings (defaults, then the file named by
//! `GRYNING_CONFIG`, then `GRYNING_…` variables), build, serve until SIGTERM or ctrl-c.

use gryning_service_common::{init_telemetry, Options, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load(&Settings::process_env(), &Options::default())?;
    init_telemetry(&settings.log);
    let app = gryning_police::Application::build(settings).await?;
    app.announce();
    app.run_until_stopped().await?;
    Ok(())
}
