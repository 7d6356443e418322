//! The `gryning up` process and its signals: SIGPIPE is ignored, and a SIGTERM that comes as
//! soon as the server has printed its address stops it cleanly.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use up::up;

/// A peer that resets its connection while the server writes to it makes the write fail with
/// EPIPE, and vectored writes (HTTP/2's) also raise SIGPIPE: a server that did not ignore it
/// would be killed by any client hanging up at the wrong moment. Read the signal mask the
/// kernel shows for the running process.
#[test]
fn the_server_ignores_sigpipe() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .expect("SigIgn line");
    const SIGPIPE: u32 = 13; // on Linux
    assert_ne!(ignored & (1 << (SIGPIPE - 1)), 0, "SigIgn: {ignored:#x}");
    server.stop();
}

/// Scripts and tests start the server, read its "listening on" line and may stop it at once:
/// the SIGTERM handler must be in place before that line is printed, or the signal's default
/// action kills the process (no graceful shutdown, no checkpoint). Repeated, as a race shows
/// only now and then.
#[test]
fn a_sigterm_right_after_the_listening_line_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        let server = up(dir.path());
        server.stop();
    }
}
