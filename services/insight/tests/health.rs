//! A server whose live projections stop following the store reports NOT_SERVING on gRPC health,
//! for the insight service and for the server as a whole (`""`), and logs why. The trigger is
//! real: a writer that bypasses the recorder (a faulty or newer one) stores an event this
//! server cannot decode, and the projections meet it while following the store.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gryning_service_common::server::RoutesBuilder;
use gryning_service_common::{Application, Context, LiveProjections, Settings};
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const DEADLINE: Duration = Duration::from_secs(20);

/// The process's log lines, as the server writes them.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

async fn status(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    let reply = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(reply.status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_event_that_cannot_be_read_makes_the_server_not_serving() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..Settings::default()
    };
    let store: Arc<dyn EventStore> =
        Arc::new(gryning_store::sqlite::SqliteStore::open(&settings.data_dir).unwrap());
    let ctx = Context::with_store(settings, Arc::clone(&store)).unwrap();
    let live = LiveProjections::start(&ctx).await.unwrap();
    let mut routes = RoutesBuilder::default();
    routes.add_service(gryning_insight::service(Arc::clone(&ctx), live));
    let app = Application::bind(ctx, routes, &[gryning_insight::SERVICE_NAME])
        .await
        .unwrap();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    assert_eq!(
        status(&mut health, gryning_insight::SERVICE_NAME).await,
        ServingStatus::Serving
    );
    assert_eq!(status(&mut health, "").await, ServingStatus::Serving);

    // Field 1, length-delimited, 5 bytes long, followed by one: no reader can decode it.
    let unreadable = vec![0x0a, 0x05, 0x01];
    let appended = store
        .append(AppendRequest {
            stream: format!("case-{}", uuid::Uuid::new_v4()),
            expected_version: ExpectedVersion::Exact(0),
            events: vec![NewEvent {
                event_id: uuid::Uuid::new_v4(),
                payload: unreadable,
                metadata: Vec::new(),
            }],
        })
        .await
        .unwrap();
    assert_eq!(appended.positions, vec![1]);

    // The status changes asynchronously: watch it, with a deadline.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: gryning_insight::SERVICE_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(DEADLINE, async {
        while let Some(reply) = watch.message().await.unwrap() {
            if reply.status == ServingStatus::NotServing as i32 {
                return;
            }
        }
        panic!("the health watch ended before NOT_SERVING");
    })
    .await
    .expect("the insight service turns NOT_SERVING");
    assert_eq!(status(&mut health, "").await, ServingStatus::NotServing);

    let text = log.text();
    let why = "projections stopped at position 1: the stored event there cannot be decoded";
    let line = text
        .lines()
        .find(|l| l.contains("NOT_SERVING"))
        .unwrap_or_else(|| panic!("no NOT_SERVING line in the log:\n{text}"));
    assert!(
        line.contains("ERROR")
            && line.contains(why)
            && line.contains(gryning_insight::SERVICE_NAME),
        "{line}"
    );

    // An open health watch would hold the graceful shutdown.
    drop(watch);
    drop(health);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
