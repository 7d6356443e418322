//! Debian's headless Chromium for the browser tests (the report, the dashboard). Included as
//! `#[path = "support/chromium.rs"] mod chromium;`.

use std::path::Path;

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser's path, or a panic saying how to install it; `who` names the test that needs it.
pub fn path(who: &str) -> &'static str {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing, so {who} cannot run: install Debian's Chromium with \
         `apt-get install -y chromium` (as root), or run `bash scripts/test.sh`, which installs \
         it when missing"
    );
    CHROMIUM
}
