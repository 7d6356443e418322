//! The hand-written checkpoint format against serde with postcard, on the same state in the
//! same run:
//!
//!     cargo run --release -p gryning-projections --example checkpoint_bench [-- SCALE [RUNS]]
//!
//! Applies the generated dataset (SCALE copies, default 8: about 1M events), then in each of
//! RUNS rounds (default 3) writes the state's checkpoint payload and reads it back both ways:
//! - hand-written: the payload `save_checkpoint` writes, and the reader `load_checkpoint` runs
//!   on it (which checks every link and rebuilds the two id indexes);
//! - postcard: `postcard::to_extend` of the state into a buffer sized as the hand-written
//!   writer sizes its own (serde derives on the state itself, the id
//!   indexes skipped) and `postcard::from_bytes`, followed by the same link check and index
//!   rebuild, which a reader of any format must still do.
//!
//! Both are in memory and timed in the thread's CPU time: the header, checksum and durable file
//! write around the payload are the same whichever format fills it. One whole `save_checkpoint`
//! and `load_checkpoint` a round are timed too (in wall time as well, as they wait for the
//! disk), to show what the payload's share of a checkpoint is.

use std::hint::black_box;
use std::time::Instant;

use gryning_projections::bench::{finish_read, read_checkpoint_payload, write_checkpoint_payload};
use gryning_projections::{load_checkpoint, Projections};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

/// Milliseconds of this thread's CPU time since `started` (a [`thread_cpu`] reading).
fn ms(started: f64) -> f64 {
    (thread_cpu() - started) * 1e3
}

fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{:.1} / {:.1} / {:.1}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scale: u32 = args
        .next()
        .map_or(8, |s| s.parse().expect("SCALE is a positive integer"));
    let runs: usize = args
        .next()
        .map_or(3, |s| s.parse().expect("RUNS is a positive integer"));
    let catalogue = gryning_domain::Catalogue::default_catalogue();
    let mut state = Projections::new();
    let mut n = 0u64;
    for event in gryning_synth::events(gryning_synth::DEFAULT_SEED, scale, &catalogue) {
        n += 1;
        state.apply(n, &event);
    }
    let memory = state.memory_use();
    println!(
        "state after {n} events (scale {scale}): {} cases, {} crimes",
        memory.cases, memory.crimes
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("projections.ckpt");
    // Where the state came from: a stand-in store (the origin is a few dozen bytes).
    let origin = gryning_projections::Origin {
        store: gryning_store::StoreIdentity {
            backend: "sqlite".into(),
            id: "00000000-0000-4000-8000-000000000000".into(),
        },
        event_id: (state.position() > 0).then(gryning_domain::Uuid::nil),
    };

    let [mut hand_write, mut hand_read, mut post_write, mut post_read, mut finish, mut save, mut load, mut save_cpu, mut load_cpu] =
        std::array::from_fn(|_| Vec::new());
    let (mut hand_bytes, mut post_bytes) = (0, 0);
    for run in 1..=runs {
        let started = thread_cpu();
        let hand = black_box(write_checkpoint_payload(&state));
        hand_write.push(ms(started));
        let started = thread_cpu();
        let back = black_box(read_checkpoint_payload(&hand).expect("own payload reads back"));
        hand_read.push(ms(started));
        assert_eq!(back, state, "the hand-written format lost something");
        drop(back);

        let started = thread_cpu();
        // Sized up front as the hand-written writer sizes its buffer.
        let buffer = Vec::with_capacity(64 + memory.crimes * 40 + memory.cases * 32);
        let post = black_box(postcard::to_extend(&state, buffer).expect("the state serialises"));
        post_write.push(ms(started));
        let started = thread_cpu();
        let back: Projections = postcard::from_bytes(&post).expect("own postcard reads back");
        let finishing = thread_cpu();
        let back = black_box(finish_read(back).expect("links hold"));
        finish.push(ms(finishing));
        post_read.push(ms(started));
        assert_eq!(back, state, "postcard lost something");
        drop(back);

        let (started, cpu) = (Instant::now(), thread_cpu());
        state
            .save_checkpoint(&path, &origin)
            .expect("checkpoint written");
        save.push(started.elapsed().as_secs_f64() * 1e3);
        save_cpu.push(ms(cpu));
        let (started, cpu) = (Instant::now(), thread_cpu());
        let back = load_checkpoint(&path).expect("checkpoint read");
        load.push(started.elapsed().as_secs_f64() * 1e3);
        load_cpu.push(ms(cpu));
        assert_eq!(back.as_ref().map(|c| &c.projections), Some(&state));
        drop(back);

        (hand_bytes, post_bytes) = (hand.len(), post.len());
        println!(
            "run {run}: hand-written write {:.1} ms, read {:.1} ms, {hand_bytes} bytes; \
             postcard write {:.1} ms, read {:.1} ms, {post_bytes} bytes; \
             whole save_checkpoint {:.1} ms ({:.1} ms CPU), load_checkpoint {:.1} ms ({:.1} ms CPU)",
            hand_write[run - 1],
            hand_read[run - 1],
            post_write[run - 1],
            post_read[run - 1],
            save[run - 1],
            save_cpu[run - 1],
            load[run - 1],
            load_cpu[run - 1],
        );
    }
    println!("summary over {runs} runs, ms of CPU time (min / median / max):");
    println!(
        "  write: hand-written {}, postcard {} (postcard / hand-written {:.2})",
        spread(hand_write.clone()),
        spread(post_write.clone()),
        median(post_write) / median(hand_write)
    );
    println!(
        "  read:  hand-written {}, postcard {} (postcard / hand-written {:.2})",
        spread(hand_read.clone()),
        spread(post_read.clone()),
        median(post_read) / median(hand_read)
    );
    println!(
        "  of each read, the link check and index rebuild (timed in the postcard read): {}",
        spread(finish)
    );
    println!(
        "  bytes: hand-written {hand_bytes}, postcard {post_bytes} (postcard / hand-written {:.2})",
        post_bytes as f64 / hand_bytes as f64
    );
    println!(
        "  whole checkpoint file (hand-written, with checksum and fsync): save {} ms of wall time, \
         {} ms of CPU time; load {} ms of wall time, {} ms of CPU time",
        spread(save),
        spread(save_cpu),
        spread(load),
        spread(load_cpu)
    );
}
