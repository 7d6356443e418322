//! The projections' open-addressing id index against hash maps from libraries, doing the same
//! inserts and lookups in the same run:
//!
//!     cargo run --release -p gryning-projections --example index_bench [-- RUNS]
//!
//! For 1M and 10M random (version 4) ids, in each of RUNS rounds (default 3), each index is
//! built by inserting id → position in position order from empty (growing, as the state does
//! while events are applied), then every id is looked up once in a shuffled order. Bytes are
//! the growth of live heap bytes (a counting global allocator) from before the build to after
//! it; times are of the thread's CPU time, not of wall time. The id vector itself is allocated first and not counted, because the state keeps its ids
//! in its records whichever index it uses.
//!
//! - `IdIndex` (hand-written): a tag byte and a `u32` position a slot, ids read from the vector;
//! - `std HashMap<u128, u32>`: the standard library's map with its default (SipHash) hasher;
//! - `hashbrown HashMap<u128, u32>`: hashbrown with its default hasher (foldhash);
//! - `std HashMap<u128, u32> + foldhash`: the standard map with the same fast hasher;
//! - `hashbrown HashTable<u32>`: hashbrown's raw table holding positions only, ids read from
//!   the vector and hashed with the index's own hash, which is the same design on a library's
//!   table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use gryning_projections::bench::{hash_id, IdIndex};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` random version-4 UUIDs as `u128`, and a shuffled order to look them up in.
fn ids(n: usize, seed: u64) -> (Vec<u128>, Vec<u32>) {
    let mut state = seed;
    let ids = (0..n)
        .map(|_| {
            let raw = u128::from(splitmix(&mut state)) << 64 | u128::from(splitmix(&mut state));
            // Version 4 in bits 76–79, the RFC 4122 variant in bits 62–63.
            raw & !(0xf << 76) & !(0b11 << 62) | (0x4 << 76) | (0b10 << 62)
        })
        .collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    (ids, order)
}

/// One index under test: build it over `ids`, then look every id up in `order`; the sum of the
/// positions found proves every lookup was made and right.
trait Index {
    fn build(ids: &[u128]) -> Self;
    fn lookups(&self, ids: &[u128], order: &[u32]) -> u64;
}

impl Index for IdIndex {
    fn build(ids: &[u128]) -> IdIndex {
        let hash_of = |p: u32| hash_id(ids[p as usize], 0);
        let mut index = IdIndex::default();
        for &id in ids {
            index.push(hash_id(id, 0), hash_of);
        }
        index
    }
    fn lookups(&self, ids: &[u128], order: &[u32]) -> u64 {
        order
            .iter()
            .map(|&p| {
                let id = ids[p as usize];
                let found = self.find(hash_id(id, 0), |q| ids[q as usize] == id);
                u64::from(found.expect("every id was inserted"))
            })
            .sum()
    }
}

macro_rules! map_index {
    ($map:ty) => {
        impl Index for $map {
            fn build(ids: &[u128]) -> Self {
                let mut map = <$map>::default();
                for (p, &id) in ids.iter().enumerate() {
                    map.insert(id, p as u32);
                }
                map
            }
            fn lookups(&self, ids: &[u128], order: &[u32]) -> u64 {
                order
                    .iter()
                    .map(|&p| u64::from(self[&ids[p as usize]]))
                    .sum()
            }
        }
    };
}

map_index!(HashMap<u128, u32>);
map_index!(hashbrown::HashMap<u128, u32>);
map_index!(HashMap<u128, u32, foldhash::fast::RandomState>);

struct Table(hashbrown::HashTable<u32>);

impl Index for Table {
    fn build(ids: &[u128]) -> Table {
        let mut table = hashbrown::HashTable::new();
        for (p, &id) in ids.iter().enumerate() {
            table.insert_unique(hash_id(id, 0), p as u32, |&q| hash_id(ids[q as usize], 0));
        }
        Table(table)
    }
    fn lookups(&self, ids: &[u128], order: &[u32]) -> u64 {
        order
            .iter()
            .map(|&p| {
                let id = ids[p as usize];
                let found = self.0.find(hash_id(id, 0), |&q| ids[q as usize] == id);
                u64::from(*found.expect("every id was inserted"))
            })
            .sum()
    }
}

#[path = "support/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

struct Figures {
    build: f64,
    lookup: f64,
    bytes: usize,
}

fn measure<I: Index>(ids: &[u128], order: &[u32]) -> Figures {
    let before = LIVE.load(Ordering::Relaxed);
    let started = thread_cpu();
    let index = black_box(I::build(ids));
    let build = thread_cpu() - started;
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let started = thread_cpu();
    let sum = black_box(index.lookups(ids, order));
    let lookup = thread_cpu() - started;
    let n = ids.len() as u64;
    assert_eq!(sum, n * (n - 1) / 2, "a lookup found the wrong position");
    drop(index);
    Figures {
        build,
        lookup,
        bytes,
    }
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(3, |s| s.parse().expect("RUNS is a positive integer"));
    type Way = fn(&[u128], &[u32]) -> Figures;
    let ways: [(&str, Way); 5] = [
        ("IdIndex (hand-written)", measure::<IdIndex>),
        (
            "std HashMap<u128, u32> (SipHash)",
            measure::<HashMap<u128, u32>>,
        ),
        (
            "hashbrown HashMap<u128, u32> (foldhash)",
            measure::<hashbrown::HashMap<u128, u32>>,
        ),
        (
            "std HashMap<u128, u32> + foldhash",
            measure::<HashMap<u128, u32, foldhash::fast::RandomState>>,
        ),
        (
            "hashbrown HashTable<u32> + the index's hash",
            measure::<Table>,
        ),
    ];
    for n in [1_000_000usize, 10_000_000] {
        let (ids, order) = ids(n, 2021);
        // [way][run]
        let mut figures: Vec<Vec<Figures>> = ways.iter().map(|_| Vec::new()).collect();
        for run in 1..=runs {
            for (i, (name, way)) in ways.iter().enumerate() {
                let f = way(&ids, &order);
                println!(
                    "{n} ids, run {run}: {name}: build {:.1} ns/id, lookup {:.1} ns/id, {:.1} bytes/id",
                    f.build * 1e9 / n as f64,
                    f.lookup * 1e9 / n as f64,
                    f.bytes as f64 / n as f64
                );
                figures[i].push(f);
            }
        }
        println!(
            "{n} ids, summary over {runs} runs (min / median / max), ratio of medians to IdIndex:"
        );
        let median = |mut v: Vec<f64>| -> (f64, f64, f64) {
            v.sort_by(f64::total_cmp);
            (v[0], v[v.len() / 2], v[v.len() - 1])
        };
        let ns = |s: f64| s * 1e9 / n as f64;
        let base = &figures[0];
        let base_build = median(base.iter().map(|f| ns(f.build)).collect()).1;
        let base_lookup = median(base.iter().map(|f| ns(f.lookup)).collect()).1;
        let base_bytes = base[0].bytes as f64 / n as f64;
        for ((name, _), f) in ways.iter().zip(&figures) {
            let build = median(f.iter().map(|f| ns(f.build)).collect());
            let lookup = median(f.iter().map(|f| ns(f.lookup)).collect());
            let bytes = f[0].bytes as f64 / n as f64;
            println!(
                "  {name}: build {:.1} / {:.1} / {:.1} ns/id ({:.2}×), lookup {:.1} / {:.1} / {:.1} ns/id ({:.2}×), {:.1} bytes/id ({:.2}×)",
                build.0,
                build.1,
                build.2,
                build.1 / base_build,
                lookup.0,
                lookup.1,
                lookup.2,
                lookup.1 / base_lookup,
                bytes,
                bytes / base_bytes
            );
        }
    }
}
