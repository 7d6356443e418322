//! The page's files, built into the binary: `assets/` holds them as written (no build step,
//! no bundler, no external reference).

/// The dashboard page (served only with a session).
pub const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");

/// The page's script: tables, the funnel and the backlog as DOM and SVG, fed by `EventSource`.
pub const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");

/// The style sheet of both pages.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");

const SIGN_IN_HTML: &str = include_str!("../assets/sign-in.html");

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The sign-in page, with `message` (why the last sign-in was refused) when there is one.
pub fn sign_in_page(message: Option<&str>) -> String {
    let message = match message {
        Some(m) => format!(
            "<p class=\"refused\" id=\"refused\" role=\"alert\">{}</p>",
            escape(m)
        ),
        None => String::new(),
    };
    SIGN_IN_HTML.replace("<!-- message -->", &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_load_nothing_from_elsewhere() {
        for text in [DASHBOARD_HTML, DASHBOARD_JS, STYLE_CSS, SIGN_IN_HTML] {
            // SVG's namespace is a name, not an address anything is loaded from.
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            for outside in ["http://", "https://", "//cdn", "@import", "url("] {
                assert!(!text.contains(outside), "{outside} in an asset");
            }
        }
        assert!(!SIGN_IN_HTML.contains("<script"));
        assert!(!DASHBOARD_HTML.contains("<script>"), "no inline script");
    }

    #[test]
    fn the_refusal_is_escaped() {
        let page = sign_in_page(Some("<b>no</b>"));
        assert!(page.contains("&lt;b&gt;no&lt;/b&gt;") && !page.contains("<b>no"));
    }
}
