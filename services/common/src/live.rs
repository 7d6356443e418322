//! Live projections for the insight service: resumed from the checkpoint in the data
//! directory, caught up from the store, then fed by a subscription. Readers take the state under
//! a read lock; a watch channel announces the position after every applied batch (the `Watch`
//! RPC diffs tables on it). The checkpoint is written every [`CHECKPOINT_EVERY`] events and
//! once more when the server shuts down, so a restart reads only the events after it.
//!
//! When the projections stop following the store (the subscription fails, or a stored event
//! cannot be read), the insight service reports NOT_SERVING on gRPC health, and so does the
//! server as a whole, and the log says why: tables that no longer advance must not be served
//! as current.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use gryning_projections::{Projections, Resumed};
use gryning_store::EventStore;
use tokio::sync::watch;

use crate::context::{Context, StartError};

/// File under the data directory holding the projections' checkpoint (shared with the CLI).
pub const CHECKPOINT_FILE: &str = "projections.ckpt";

/// Events applied between two checkpoints while running.
pub const CHECKPOINT_EVERY: u64 = 50_000;

/// How long the live projections keep reading again while the store is out of reach before
/// they stop (and the insight service reports NOT_SERVING).
pub const RETRY_UNAVAILABLE_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// The running projections.
pub struct LiveProjections {
    state: Arc<RwLock<Projections>>,
    position: watch::Receiver<u64>,
    resumed_from: u64,
}

impl LiveProjections {
    /// Loads the checkpoint (one that is damaged or does not fit the store — another store,
    /// ahead of its head, or a store restored to an older copy — is logged and ignored: the
    /// state is rebuilt, and its checkpoint written over the discarded one), catches up
    /// with the store, and starts following it in a background task of `ctx`.
    pub async fn start(ctx: &Context) -> Result<Arc<LiveProjections>, StartError> {
        let path = ctx.settings.data_dir.join(CHECKPOINT_FILE);
        let mut discarded = false;
        let mut projections = match gryning_projections::resume(&path, ctx.store.as_ref()).await? {
            Resumed::Discarded(why) => {
                tracing::warn!(path = %path.display(), reason = %why, "discarding the projections checkpoint; rebuilding from the first event");
                discarded = true;
                Projections::default()
            }
            resumed => resumed.into_projections(),
        };
        let resumed_from = projections.position();
        gryning_projections::catch_up(&mut projections, ctx.store.as_ref(), None, |_| {}).await?;
        tracing::info!(
            resumed_from,
            position = projections.position(),
            "projections caught up"
        );
        let (tx, rx) = watch::channel(projections.position());
        crate::metrics::global().follow_projections(rx.clone());
        let state = Arc::new(RwLock::new(projections));
        let follower = Follower {
            store: Arc::clone(&ctx.store),
            state: Arc::clone(&state),
            position: tx,
            checkpoint: path,
            snapshots: gryning_projections::Snapshots::in_data_dir(&ctx.settings.data_dir),
            snapshot_every: ctx.settings.snapshot_every,
            data_dir_exists: ctx.settings.data_dir.exists(),
            health: ctx.health.clone(),
        };
        if discarded {
            // Replaced at once, not at the next periodic or final checkpoint: a process that
            // is killed before either (on a small or empty store, before any) would otherwise
            // discard the same file, and warn, at every start.
            follower.save().await;
        }
        let shutdown = ctx.shutdown_signal();
        ctx.spawn_background(tokio::spawn(follower.run(shutdown)));
        Ok(Arc::new(LiveProjections {
            state,
            position: rx,
            resumed_from,
        }))
    }

    /// Runs `f` on the current state.
    pub fn read<R>(&self, f: impl FnOnce(&Projections) -> R) -> R {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Announces the position after every applied batch.
    pub fn watch_position(&self) -> watch::Receiver<u64> {
        self.position.clone()
    }

    /// The checkpoint position this process resumed from (0: rebuilt from the first event).
    pub fn resumed_from(&self) -> u64 {
        self.resumed_from
    }
}

struct Follower {
    store: Arc<dyn EventStore>,
    state: Arc<RwLock<Projections>>,
    position: watch::Sender<u64>,
    checkpoint: PathBuf,
    /// Where a checkpoint is kept as a snapshot each time the state crosses a multiple of
    /// `snapshot_every` events (for as-of queries).
    snapshots: gryning_projections::Snapshots,
    snapshot_every: u64,
    data_dir_exists: bool,
    health: crate::server::Health,
}

/// The service whose answers come from the live projections.
const SERVICE: &str = gryning_proto::pb::insight_server::SERVICE_NAME;

impl Follower {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let start = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .position();
        let mut subscription = gryning_store::subscribe(Arc::clone(&self.store), start);
        let mut since_checkpoint = 0u64;
        // Since when the store has been out of reach, while it is.
        let mut out_of_reach: Option<std::time::Instant> = None;
        loop {
            let batch = tokio::select! {
                batch = subscription.next_batch() => batch,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            let batch = match batch {
                Ok(batch) => {
                    out_of_reach = None;
                    batch
                }
                // A store out of reach for a moment (a JetStream member restarting, a leader
                // election) is read again from the same position; only a store that stays
                // out of reach for `RETRY_UNAVAILABLE_FOR` stops the projections.
                Err(gryning_store::Error::Unavailable(why))
                    if out_of_reach
                        .get_or_insert_with(std::time::Instant::now)
                        .elapsed()
                        < RETRY_UNAVAILABLE_FOR =>
                {
                    tracing::warn!(reason = %why, "the live projections cannot read the store; reading again");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                    continue;
                }
                Err(e) => {
                    let reason = format!(
                        "projections stopped following the store after position {}: {e}",
                        self.position.borrow().to_owned()
                    );
                    self.health.stop_serving(SERVICE, &reason).await;
                    break;
                }
            };
            let applied = {
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                let mut unreadable = None;
                for recorded in &batch {
                    match gryning_proto::decode_event(&recorded.payload) {
                        Ok(event) => state.apply(recorded.position, &event),
                        Err(e) => {
                            unreadable = Some(format!(
                                "projections stopped at position {}: the stored event there cannot be decoded: {e}",
                                recorded.position
                            ));
                            break;
                        }
                    }
                }
                match unreadable {
                    None => Ok(state.position()),
                    Some(reason) => Err(reason),
                }
            };
            let position = match applied {
                Ok(position) => position,
                Err(reason) => {
                    // Stored events were validated on the way in; one that does not decode is
                    // corruption (or a newer writer), and skipping it silently would falsify
                    // every table after it. What was applied before it is announced, not saved.
                    self.position.send_replace(
                        self.state
                            .read()
                            .unwrap_or_else(|e| e.into_inner())
                            .position(),
                    );
                    self.health.stop_serving(SERVICE, &reason).await;
                    return;
                }
            };
            since_checkpoint += batch.len() as u64;
            let before = self.position.send_replace(position);
            if gryning_projections::asof::crosses_interval(before, position, self.snapshot_every) {
                since_checkpoint = 0;
                if let Some(at) = self.save().await {
                    match self
                        .snapshots
                        .keep(&self.checkpoint, at, self.snapshot_every)
                    {
                        Ok(()) => tracing::info!(position = at, "projections snapshot kept"),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot keep the projections snapshot")
                        }
                    }
                }
            } else if since_checkpoint >= CHECKPOINT_EVERY {
                since_checkpoint = 0;
                self.save().await;
            }
        }
        self.save().await;
    }

    /// Writes the checkpoint on a blocking thread: its time grows with the state (tens of
    /// milliseconds at a quarter of a million events), and on a runtime worker it would stall
    /// every call that worker serves. Readers keep
    /// reading meanwhile; the next batch is applied once it is written.
    /// Returns the position written, if it was.
    async fn save(&self) -> Option<u64> {
        if !self.data_dir_exists {
            return None;
        }
        // Only this task changes the state, so it stays at this position until the save is done.
        let at = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .position();
        let origin = match gryning_projections::origin_of(self.store.as_ref(), at).await {
            Ok(origin) => origin,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the projections checkpoint");
                return None;
            }
        };
        let state = Arc::clone(&self.state);
        let path = self.checkpoint.clone();
        let written = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let state = state.read().unwrap_or_else(|e| e.into_inner());
            state
                .save_checkpoint(&path, &origin)
                .map(|()| (state.position(), started.elapsed()))
        })
        .await;
        match written {
            Ok(Ok((position, took))) => {
                tracing::info!(
                    position,
                    ms = took.as_millis() as u64,
                    "projections checkpoint written"
                );
                Some(position)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot write the projections checkpoint");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "the projections checkpoint task failed");
                None
            }
        }
    }
}
