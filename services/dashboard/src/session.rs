//! Dashboard sessions: a signed-in page holds a random session id in a cookie that scripts
//! cannot read (`HttpOnly`) and that no other site's page sends (`SameSite=Strict`); the
//! server keeps id → principal in memory, so a restart signs everyone out, and the token a
//! person signed in with is kept nowhere.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use gryning_service_common::Principal;

/// The session cookie's name.
pub const COOKIE: &str = "gryning_session";

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// Sessions kept at most; signing in beyond it forgets the oldest.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    principal: Principal,
    opened: Instant,
}

/// Open sessions by id.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// A fresh session id: 244 random bits from the operating system (two UUID v4).
fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The `Set-Cookie` value of session `id`.
pub fn cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The session id a request's `Cookie` headers carry.
fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
}

impl Sessions {
    /// Opens a session for `principal`; its id.
    pub fn open(&self, principal: Principal) -> String {
        let id = new_id();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| s.opened.elapsed() < SESSION_LIFETIME);
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.opened)
                .map(|(id, _)| id.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            id.clone(),
            Session {
                principal,
                opened: Instant::now(),
            },
        );
        id
    }

    /// Whether session `id` is open and not expired.
    pub fn is_open(&self, id: &str) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(id)
            .is_some_and(|s| s.opened.elapsed() < SESSION_LIFETIME)
    }

    /// The id of the open session a request carries.
    pub fn id(&self, headers: &HeaderMap) -> Option<String> {
        cookie_id(headers).filter(|id| self.is_open(id))
    }

    /// The principal of the open session a request carries.
    pub fn principal(&self, headers: &HeaderMap) -> Option<Principal> {
        let id = cookie_id(headers)?;
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&id)
            .filter(|s| s.opened.elapsed() < SESSION_LIFETIME)
            .map(|s| s.principal.clone())
    }

    /// Forgets the session a request carries.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie_id(headers) {
            self.open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gryning_service_common::Role;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, value.parse().unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_only() {
        let sessions = Sessions::default();
        let id = sessions.open(Principal {
            name: "analyst".into(),
            role: Role::Analyst,
            scope: Default::default(),
        });
        assert_eq!(id.len(), 64);
        let found = sessions.principal(&with_cookie(&format!("theme=dark; {COOKIE}={id}")));
        assert_eq!(found.map(|p| p.role), Some(Role::Analyst));
        assert!(sessions.principal(&HeaderMap::new()).is_none());
        let other = "0".repeat(64);
        assert!(sessions
            .principal(&with_cookie(&format!("{COOKIE}={other}")))
            .is_none());
        assert!(sessions
            .principal(&with_cookie(&format!("x{COOKIE}={id}")))
            .is_none());
        sessions.close(&with_cookie(&format!("{COOKIE}={id}")));
        assert!(!sessions.is_open(&id));
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let c = cookie("ab");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
        assert!(cleared_cookie().contains("Max-Age=0"));
    }
}
