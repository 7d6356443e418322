//! The credentials file: the SHA-256 of each bearer token (never the token itself) bound to a
//! principal, a role and optionally a scope. It is created with mode 0600 and refused when
//! group or others may read or write it; `gryning credentials add|rotate|revoke` edit it under
//! a lock file, writing a temporary file of mode 0600 and renaming it over the old one, so a
//! reader sees the old file or the new one, never half of one. A running server polls the
//! file ([`Credentials::reload_if_changed`], every second) and serves the new table from the
//! next call on; a file that does not parse or has a bad mode is logged and the old table kept.
//! Every edit also appends one line to the change journal beside the file
//! ([`journal_path`]): when, which change, principal, role and scope, never a token or a hash.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Error, Principal, Role, Scope};

/// Why the credentials file could not be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "credentials file {path} may be read or written by group or others (mode {mode:04o}); it must be private to the user the servers run as: run `chmod 600 {path}`",
        path = .path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    /// A change `gryning credentials` cannot make (the message names the option and the rule).
    #[error("credentials file {path}: {message}")]
    Change { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

/// One `[[token]]` of the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    principal: String,
    role: String,
    sha256: String,
    #[serde(default)]
    police_region: Option<String>,
    #[serde(default)]
    local_police_areas: Vec<String>,
    #[serde(default)]
    municipality: Option<String>,
}

/// A token issued now: shown once to the operator, then only its hash is kept.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub principal: Principal,
    pub token: String,
}

/// One line of the change journal: who changed which principal's credentials and when. Counts
/// and names only: never a token or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// RFC 3339 with the Europe/Stockholm offset.
    pub at: String,
    /// `created` (a new file, one principal per role), `added`, `rotated` or `revoked`.
    pub change: String,
    pub principal: String,
    pub role: String,
    /// `Scope::describe` of the principal's scope.
    pub scope: String,
    /// Tokens the change removed (a revocation or rotation of a principal with several).
    pub tokens_removed: u32,
    /// The operating-system user that ran the change, when known (`USER`).
    pub by: String,
}

/// Token hashes → principals, reloaded from its file when that changes.
#[derive(Debug, Default)]
pub struct Credentials {
    path: Option<PathBuf>,
    table: RwLock<Arc<Table>>,
    /// What the file looked like when last read (or refused): a changed stamp means read again.
    stamp: Mutex<Option<Stamp>>,
}

#[derive(Debug, Default)]
struct Table {
    by_hash: HashMap<[u8; 32], Principal>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// What a reload found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reloaded {
    pub tokens: usize,
    pub principals: usize,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A fresh token with 244 random bits from the operating system (through UUID v4).
fn new_token() -> String {
    format!(
        "gry_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

const HEADER: &str = "# gryning credentials: the SHA-256 of each bearer token, never the token.\n\
# Keep this file mode 0600. Change it with `gryning credentials add|rotate|revoke`; running\n\
# servers read it again within a second or two.\n";

/// The change journal beside a credentials file: `credentials.toml` → `credentials.changes.ndjson`.
pub fn journal_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("credentials");
    path.with_file_name(format!("{stem}.changes.ndjson"))
}

/// The rule every file of secrets gryning reads is held to (this credentials file, and the
/// NATS password, token, seed, `.creds` and client key files): group and others may neither
/// read nor write it. The file's mode when it breaks the rule.
pub fn shared_mode(meta: &std::fs::Metadata) -> Option<u32> {
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Refuses a file group or others may read or write.
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), CredentialsError> {
    match shared_mode(meta) {
        Some(mode) => Err(CredentialsError::Mode {
            path: path.to_path_buf(),
            mode,
        }),
        None => Ok(()),
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CredentialsError + '_ {
    move |source| CredentialsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `text` as a TOML basic string.
fn quoted(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Entry {
    fn principal(&self, path: &Path) -> Result<Principal, CredentialsError> {
        let bad = |message: String| CredentialsError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let role = Role::parse(&self.role).ok_or_else(|| {
            bad(format!(
                "role {:?} of principal {:?} is not one of police, prosecution, care, analyst, auditor, admin",
                self.role, self.principal
            ))
        })?;
        let scope = scope_of(
            role,
            self.police_region.as_deref(),
            &self.local_police_areas,
            self.municipality.as_deref(),
        )
        .map_err(|rule| bad(format!("principal {:?}: {rule}", self.principal)))?;
        Ok(Principal {
            name: self.principal.clone(),
            role,
            scope,
        })
    }

    fn render(&self) -> String {
        let mut text = format!(
            "\n[[token]]\nprincipal = {}\nrole = {}\n",
            quoted(&self.principal),
            quoted(&self.role)
        );
        if let Some(region) = &self.police_region {
            let _ = writeln!(text, "police_region = {}", quoted(region));
        }
        if !self.local_police_areas.is_empty() {
            let areas: Vec<String> = self.local_police_areas.iter().map(|a| quoted(a)).collect();
            let _ = writeln!(text, "local_police_areas = [{}]", areas.join(", "));
        }
        if let Some(m) = &self.municipality {
            let _ = writeln!(text, "municipality = {}", quoted(m));
        }
        let _ = writeln!(text, "sha256 = {}", quoted(&self.sha256));
        text
    }

    fn of(principal: &Principal, token: &str) -> Entry {
        let (police_region, local_police_areas, municipality) = match &principal.scope {
            Scope::County => (None, Vec::new(), None),
            Scope::PoliceRegion { region, areas } => (Some(region.clone()), areas.clone(), None),
            Scope::Municipality(m) => (None, Vec::new(), Some(m.clone())),
        };
        Entry {
            principal: principal.name.clone(),
            role: principal.role.name().to_string(),
            sha256: hex(&hash(token)),
            police_region,
            local_police_areas,
            municipality,
        }
    }
}

/// The scope the file's (or `gryning credentials add`'s) fields give a principal of `role`.
/// A police region (full name or without `Polisregion `, in any case) scopes the roles that
/// record case events, police and prosecution; a municipality scopes care (social services);
/// analysts, auditors and admins read county-wide and take no scope.
pub fn scope_of(
    role: Role,
    police_region: Option<&str>,
    local_police_areas: &[String],
    municipality: Option<&str>,
) -> Result<Scope, String> {
    let named = |s: &str| !s.trim().is_empty();
    match (police_region, municipality) {
        (None, None) if local_police_areas.is_empty() => Ok(Scope::County),
        (None, None) => Err("local_police_areas needs a police_region".to_string()),
        (Some(_), Some(_)) => Err("police_region and municipality exclude each other".to_string()),
        (Some(region), None) => {
            if !matches!(role, Role::Police | Role::Prosecution) {
                return Err(format!(
                    "police_region scopes the police and prosecution roles only, not {}",
                    role.name()
                ));
            }
            let region = gryning_domain::resolve_region(region, [])
                .map_err(|e| e.to_string().replacen("field region", "police_region", 1))?;
            if let Some(bad) = local_police_areas.iter().find(|a| !named(a)) {
                return Err(format!(
                    "local_police_areas: an area is empty (value {bad:?})"
                ));
            }
            Ok(Scope::PoliceRegion {
                region,
                areas: local_police_areas
                    .iter()
                    .map(|a| a.trim().to_string())
                    .collect(),
            })
        }
        (None, Some(m)) => {
            if role != Role::Care {
                return Err(format!(
                    "municipality scopes the care role (social services) only, not {}",
                    role.name()
                ));
            }
            if !local_police_areas.is_empty() {
                return Err("local_police_areas needs a police_region".to_string());
            }
            if !named(m) || m.contains(':') {
                return Err(format!(
                    "municipality must be a name without ':' (value {m:?})"
                ));
            }
            Ok(Scope::Municipality(m.trim().to_string()))
        }
    }
}

fn parse_entries(path: &Path, text: &str) -> Result<Vec<Entry>, CredentialsError> {
    let file: File = toml::from_str(text).map_err(|e| CredentialsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(file.token)
}

fn table_of(path: &Path, entries: &[Entry]) -> Result<Table, CredentialsError> {
    let mut by_hash = HashMap::new();
    for entry in entries {
        let principal = entry.principal(path)?;
        let digest = unhex(&entry.sha256).ok_or_else(|| CredentialsError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "sha256 of principal {:?} must be 64 hex digits (value {:?})",
                entry.principal, entry.sha256
            ),
        })?;
        by_hash.insert(digest, principal);
    }
    Ok(Table { by_hash })
}

/// Reads the file (refusing a bad mode) and its stamp.
fn read(path: &Path) -> Result<(Vec<Entry>, Stamp), CredentialsError> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let meta = file.metadata().map_err(io_error(path))?;
    check_mode(path, &meta)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).map_err(io_error(path))?;
    Ok((parse_entries(path, &text)?, Stamp::of(&meta)))
}

fn render(entries: &[Entry]) -> String {
    let mut text = String::from(HEADER);
    for e in entries {
        text.push_str(&e.render());
    }
    text
}

/// Writes `text` to `path` atomically: a new temporary file of mode 0600 in the same
/// directory, synced, renamed over `path`, and the directory synced.
fn write_atomically(path: &Path, text: &str) -> Result<(), CredentialsError> {
    let io = io_error(path);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("credentials");
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map_err(io)
}

/// Holds the lock file beside `path` (`credentials.toml.lock`) while edits run, so two
/// `gryning credentials` runs never lose each other's change.
fn lock(path: &Path) -> Result<std::fs::File, CredentialsError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    file.lock().map_err(io_error(&lock_path))?;
    Ok(file)
}

fn journal(path: &Path, changes: &[Change]) -> Result<(), CredentialsError> {
    let journal = journal_path(path);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&journal)
        .map_err(io_error(&journal))?;
    let mut text = String::new();
    for c in changes {
        text.push_str(&serde_json::to_string(c).expect("a change serializes"));
        text.push('\n');
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&journal))
}

/// The change journal of `path`, oldest first (empty when there is none).
pub fn read_journal(path: &Path) -> Result<Vec<Change>, CredentialsError> {
    let journal = journal_path(path);
    let text = match std::fs::read_to_string(&journal) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(&journal)(e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| CredentialsError::Parse {
                path: journal.clone(),
                message: format!("line {}: {e}", n + 1),
            })
        })
        .collect()
}

fn change(kind: &str, principal: &Principal, tokens_removed: u32) -> Change {
    let now = jiff::Timestamp::now();
    Change {
        at: crate::context::recorded_at(now),
        change: kind.to_string(),
        principal: principal.name.clone(),
        role: principal.role.name().to_string(),
        scope: principal.scope.describe(),
        tokens_removed,
        by: std::env::var("USER").unwrap_or_default(),
    }
}

/// Whether `name` may name a principal: 1 to 64 of `A-Z a-z 0-9 . _ @ -`, holding no personal
/// identity or coordination number.
fn check_name(path: &Path, name: &str) -> Result<(), CredentialsError> {
    let ok = gryning_domain::personnummer::find(name).is_none()
        && (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CredentialsError::Change {
            path: path.to_path_buf(),
            message: format!(
                "--principal must be 1 to 64 letters, digits, '.', '_', '@' or '-', and no personal identity or coordination number (value {:?})",
                gryning_domain::echo(name)
            ),
        })
    }
}

impl Credentials {
    /// A fixed table (no file behind it).
    pub fn from_tokens(tokens: &[IssuedToken]) -> Credentials {
        let table = Table {
            by_hash: tokens
                .iter()
                .map(|t| (hash(&t.token), t.principal.clone()))
                .collect(),
        };
        Credentials {
            table: RwLock::new(Arc::new(table)),
            ..Credentials::default()
        }
    }

    /// Reads the credentials file; when there is none, issues one token per role, writes their
    /// hashes to a new file of mode 0600 and returns the tokens, which exist nowhere else from
    /// then on. A file group or others may read is refused, saying how to fix it.
    pub fn load_or_create(
        path: &Path,
    ) -> Result<(Credentials, Vec<IssuedToken>), CredentialsError> {
        let io = io_error(path);
        match read(path) {
            Ok((entries, stamp)) => Ok((Credentials::with(path, &entries, stamp)?, Vec::new())),
            Err(CredentialsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let issued: Vec<IssuedToken> = Role::ALL
                    .into_iter()
                    .map(|role| IssuedToken {
                        principal: Principal {
                            name: role.name().to_string(),
                            role,
                            scope: Scope::County,
                        },
                        token: new_token(),
                    })
                    .collect();
                let entries: Vec<Entry> = issued
                    .iter()
                    .map(|t| Entry::of(&t.principal, &t.token))
                    .collect();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(&io)?;
                }
                // create_new: two servers starting at once must not both issue tokens.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(&io)?;
                file.write_all(render(&entries).as_bytes()).map_err(&io)?;
                file.sync_all().map_err(&io)?;
                let stamp = Stamp::of(&file.metadata().map_err(&io)?);
                let changes: Vec<Change> = issued
                    .iter()
                    .map(|t| change("created", &t.principal, 0))
                    .collect();
                journal(path, &changes)?;
                Ok((Credentials::with(path, &entries, stamp)?, issued))
            }
            Err(e) => Err(e),
        }
    }

    fn with(path: &Path, entries: &[Entry], stamp: Stamp) -> Result<Credentials, CredentialsError> {
        Ok(Credentials {
            path: Some(path.to_path_buf()),
            table: RwLock::new(Arc::new(table_of(path, entries)?)),
            stamp: Mutex::new(Some(stamp)),
        })
    }

    /// The file these credentials were read from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Reads the file again when it changed since it was last read: `None` when it did not
    /// (or there is no file), the new table's size when it was taken, and the error when the
    /// changed file cannot be used (the old table stays in force; the same change is reported
    /// once).
    pub fn reload_if_changed(&self) -> Option<Result<Reloaded, CredentialsError>> {
        let path = self.path.as_deref()?;
        let current = match std::fs::metadata(path) {
            Ok(meta) => Some(Stamp::of(&meta)),
            Err(_) => None,
        };
        let mut stamp = self.stamp.lock().expect("stamp poisoned");
        if current == *stamp {
            return None;
        }
        *stamp = current;
        let read = read(path).and_then(|(entries, stamp)| {
            let table = table_of(path, &entries)?;
            Ok((table, stamp))
        });
        Some(read.map(|(table, new_stamp)| {
            *stamp = Some(new_stamp);
            let reloaded = Reloaded {
                tokens: table.by_hash.len(),
                principals: table
                    .by_hash
                    .values()
                    .map(|p| p.name.as_str())
                    .collect::<std::collections::HashSet<_>>()
                    .len(),
            };
            *self.table.write().expect("table poisoned") = Arc::new(table);
            reloaded
        }))
    }

    /// The principal holding the token in an `authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, Error> {
        let header = header.ok_or(Error::MissingToken)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            // Never echo a whole credential back: the first characters identify the mistake.
            .ok_or_else(|| Error::MalformedHeader(header.chars().take(8).collect()))?;
        let digest = hash(token);
        self.table
            .read()
            .expect("table poisoned")
            .by_hash
            .get(&digest)
            .cloned()
            .ok_or(Error::UnknownToken)
    }
}

/// Runs one edit of the file under its lock: reads it (or starts empty when it does not
/// exist), lets `edit` change the entries and say what changed, then writes it atomically and
/// journals the changes.
fn edit<R>(
    path: &Path,
    edit: impl FnOnce(&mut Vec<Entry>) -> Result<(R, Vec<Change>), CredentialsError>,
) -> Result<R, CredentialsError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error(path))?;
    }
    let _lock = lock(path)?;
    let mut entries = match read(path) {
        Ok((entries, _)) => entries,
        Err(CredentialsError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    // The file as it stands must be valid: an edit never writes a file a server would refuse.
    table_of(path, &entries)?;
    let (result, changes) = edit(&mut entries)?;
    table_of(path, &entries)?;
    write_atomically(path, &render(&entries))?;
    journal(path, &changes)?;
    Ok(result)
}

/// Adds `principal` (a name not in the file yet) with a new token, which is returned: the
/// caller shows it once.
pub fn add(path: &Path, principal: Principal) -> Result<IssuedToken, CredentialsError> {
    check_name(path, &principal.name)?;
    edit(path, |entries| {
        if entries.iter().any(|e| e.principal == principal.name) {
            return Err(CredentialsError::Change {
                path: path.to_path_buf(),
                message: format!(
                    "principal {:?} exists already; give it a new token with `gryning credentials rotate --principal {}` or choose another name",
                    principal.name, principal.name
                ),
            });
        }
        let token = new_token();
        entries.push(Entry::of(&principal, &token));
        let changes = vec![change("added", &principal, 0)];
        Ok((IssuedToken { principal, token }, changes))
    })
}

fn missing(path: &Path, name: &str) -> CredentialsError {
    CredentialsError::Change {
        path: path.to_path_buf(),
        message: format!(
            "no principal {:?}; `gryning credentials list` shows the principals",
            gryning_domain::echo(name)
        ),
    }
}

/// Replaces every token of `name` with one new token (same role and scope), returned for the
/// caller to show once; the old tokens stop working as soon as servers reload the file.
pub fn rotate(path: &Path, name: &str) -> Result<IssuedToken, CredentialsError> {
    edit(path, |entries| {
        let Some(first) = entries.iter().position(|e| e.principal == name) else {
            return Err(missing(path, name));
        };
        let principal = entries[first].principal(path)?;
        let before = entries.len();
        entries.retain(|e| e.principal != name);
        let removed = (before - entries.len()) as u32;
        let token = new_token();
        entries.insert(first.min(entries.len()), Entry::of(&principal, &token));
        let changes = vec![change("rotated", &principal, removed)];
        Ok((IssuedToken { principal, token }, changes))
    })
}

/// Removes every token of `name`; returns how many there were.
pub fn revoke(path: &Path, name: &str) -> Result<usize, CredentialsError> {
    edit(path, |entries| {
        let Some(first) = entries.iter().find(|e| e.principal == name) else {
            return Err(missing(path, name));
        };
        let principal = first.principal(path)?;
        let before = entries.len();
        entries.retain(|e| e.principal != name);
        let removed = before - entries.len();
        let changes = vec![change("revoked", &principal, removed as u32)];
        Ok((removed, changes))
    })
}

/// The principals of the file, one per token, in file order (no hashes).
pub fn list(path: &Path) -> Result<Vec<Principal>, CredentialsError> {
    let (entries, _) = read(path)?;
    entries.iter().map(|e| e.principal(path)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn police_in(region: &str) -> Principal {
        Principal {
            name: "polis-syd".into(),
            role: Role::Police,
            scope: scope_of(Role::Police, Some(region), &[], None).unwrap(),
        }
    }

    #[test]
    fn the_file_is_private_and_a_readable_one_is_refused_saying_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        let (_, issued) = Credentials::load_or_create(&path).unwrap();
        assert_eq!(issued.len(), Role::ALL.len());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Credentials::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("mode 0644"), "{e}");
        assert!(e.contains(&format!("chmod 600 {}", path.display())), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Credentials::load_or_create(&path).is_ok());
    }

    #[test]
    fn add_rotate_and_revoke_edit_atomically_and_a_server_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        let (creds, issued) = Credentials::load_or_create(&path).unwrap();
        assert_eq!(creds.reload_if_changed().map(|r| r.is_ok()), None);

        let added = add(&path, police_in("syd")).unwrap();
        let header = |t: &IssuedToken| format!("Bearer {}", t.token);
        assert_eq!(
            creds.authenticate(Some(&header(&added))),
            Err(Error::UnknownToken)
        );
        let reloaded = creds.reload_if_changed().unwrap().unwrap();
        assert_eq!(reloaded.principals, Role::ALL.len() + 1);
        let p = creds.authenticate(Some(&header(&added))).unwrap();
        assert_eq!(
            p.scope,
            Scope::PoliceRegion {
                region: "Polisregion Syd".into(),
                areas: vec![]
            }
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an edit keeps the mode");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&added.token));
        assert!(add(&path, police_in("syd"))
            .unwrap_err()
            .to_string()
            .contains("exists already"));

        let rotated = rotate(&path, "polis-syd").unwrap();
        creds.reload_if_changed().unwrap().unwrap();
        assert_eq!(
            creds.authenticate(Some(&header(&added))),
            Err(Error::UnknownToken)
        );
        assert_eq!(
            creds.authenticate(Some(&header(&rotated))).unwrap().scope,
            p.scope
        );

        assert_eq!(revoke(&path, "polis-syd").unwrap(), 1);
        creds.reload_if_changed().unwrap().unwrap();
        assert_eq!(
            creds.authenticate(Some(&header(&rotated))),
            Err(Error::UnknownToken)
        );
        assert!(revoke(&path, "polis-syd").is_err());
        // The issued tokens were never touched.
        assert!(creds.authenticate(Some(&header(&issued[0]))).is_ok());

        // A broken file keeps the old table, reported once.
        std::fs::write(&path, "[[token]]\nprincipal = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(creds.reload_if_changed().unwrap().is_err());
        assert!(creds.reload_if_changed().is_none());
        assert!(creds.authenticate(Some(&header(&issued[0]))).is_ok());

        let journal: Vec<String> = read_journal(&path)
            .unwrap()
            .into_iter()
            .map(|c| format!("{} {}", c.change, c.principal))
            .collect();
        assert_eq!(journal.len(), Role::ALL.len() + 3);
        assert_eq!(
            journal[Role::ALL.len()..],
            ["added polis-syd", "rotated polis-syd", "revoked polis-syd"]
        );
        let journal_text = std::fs::read_to_string(journal_path(&path)).unwrap();
        for t in issued.iter().chain([&added, &rotated]) {
            assert!(!journal_text.contains(&t.token));
            assert!(!journal_text.contains(&hex(&hash(&t.token))));
        }
    }

    #[test]
    fn scopes_follow_the_roles_that_record_where_they_apply() {
        assert!(scope_of(Role::Police, Some("Atlantis"), &[], None)
            .unwrap_err()
            .contains("police_region"));
        assert!(scope_of(Role::Analyst, Some("Syd"), &[], None)
            .unwrap_err()
            .contains("not analyst"));
        assert!(scope_of(Role::Police, None, &[], Some("Botkyrka"))
            .unwrap_err()
            .contains("care role"));
        assert!(scope_of(Role::Police, None, &["Farsta".into()], None).is_err());
        assert_eq!(
            scope_of(Role::Care, None, &[], Some("Botkyrka")).unwrap(),
            Scope::Municipality("Botkyrka".into())
        );
        assert_eq!(
            scope_of(
                Role::Prosecution,
                Some("stockholm"),
                &["Farsta".into()],
                None
            )
            .unwrap(),
            Scope::PoliceRegion {
                region: "Polisregion Stockholm".into(),
                areas: vec!["Farsta".into()]
            }
        );
    }
}
