//! Access control. Every call carries `authorization: Bearer <token>`; the credentials file
//! binds the SHA-256 of each token (never the token itself) to a principal and a role. The
//! [`Authenticator`] interceptor turns the token into a [`Principal`] (or UNAUTHENTICATED);
//! each handler then asks [`require`] whether the principal's role may call its RPC, and the
//! recording path asks [`may_append`] whether the role may record the event's type. The policy
//! is the two tables below and nothing else.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gryning_domain::{Body, EventType};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Police,
    Prosecution,
    Care,
    /// Tables only, never event-level data.
    Analyst,
    /// Reads the event log and explains figures (`Insight.Explain`): event-level data.
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Police,
        Role::Prosecution,
        Role::Care,
        Role::Analyst,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Police => "police",
            Role::Prosecution => "prosecution",
            Role::Care => "care",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == text)
    }
}

/// Who is calling: a name recorded in each event's metadata, and a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// Every RPC of every service, so the policy can be one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rpc {
    OpenCase,
    ReportCrime,
    ReclassifyCrime,
    ReclassifyCase,
    ReferToProsecutor,
    CloseInvestigation,
    NotifyChildWelfare,
    DecideProsecution,
    ProposeContractCare,
    StartTreatmentProgramme,
    EndTreatmentProgramme,
    GrantSupport,
    Append,
    Read,
    Subscribe,
    GetTable,
    Watch,
    Status,
    Publish,
    ListPublications,
    Explain,
}

impl Rpc {
    pub const ALL: [Rpc; 21] = [
        Rpc::OpenCase,
        Rpc::ReportCrime,
        Rpc::ReclassifyCrime,
        Rpc::ReclassifyCase,
        Rpc::ReferToProsecutor,
        Rpc::CloseInvestigation,
        Rpc::NotifyChildWelfare,
        Rpc::DecideProsecution,
        Rpc::ProposeContractCare,
        Rpc::StartTreatmentProgramme,
        Rpc::EndTreatmentProgramme,
        Rpc::GrantSupport,
        Rpc::Append,
        Rpc::Read,
        Rpc::Subscribe,
        Rpc::GetTable,
        Rpc::Watch,
        Rpc::Status,
        Rpc::Publish,
        Rpc::ListPublications,
        Rpc::Explain,
    ];

    /// The policy: which roles may call this RPC at all.
    pub fn allows(self, role: Role) -> bool {
        use Rpc::*;
        role == Role::Admin
            || match self {
                OpenCase | ReportCrime | ReclassifyCrime | ReclassifyCase | ReferToProsecutor
                | CloseInvestigation | NotifyChildWelfare => role == Role::Police,
                DecideProsecution => role == Role::Prosecution,
                ProposeContractCare
                | StartTreatmentProgramme
                | EndTreatmentProgramme
                | GrantSupport => role == Role::Care,
                // Checked again per event with `may_append`.
                Append => matches!(role, Role::Police | Role::Prosecution | Role::Care),
                // Event-level data: the log itself, or the events behind a figure.
                Read | Subscribe | Explain => role == Role::Auditor,
                GetTable | Watch | Status | ListPublications => role == Role::Analyst,
                // Records a publication: admin only.
                Publish => false,
            }
    }
}

/// The agency whose role records events of this type.
pub fn agency_of(body: &Body) -> Role {
    agency_of_type(body.event_type())
}

/// The agency whose role records events of type `event_type`.
pub fn agency_of_type(event_type: EventType) -> Role {
    use EventType::*;
    match event_type {
        ProsecutionDecided => Role::Prosecution,
        ContractCareProposed
        | TreatmentProgrammeStarted
        | TreatmentProgrammeEnded
        | SupportGranted => Role::Care,
        CaseOpened
        | CrimeReported
        | CrimeReclassified
        | CaseReclassified
        | CaseReferredToProsecutor
        | InvestigationClosed
        | ChildWelfareNotified => Role::Police,
        // Publications are recorded by `Insight.Publish`, `gryning publish` and `gryning up`'s
        // automatic publisher, or copied with an admin's `Append`: no agency records them.
        TablesPublished => Role::Admin,
    }
}

/// The policy per event: a role records only its own agency's event types; admin records all.
pub fn may_append(role: Role, body: &Body) -> bool {
    role == Role::Admin || agency_of(body) == role
}

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("metadata authorization: missing; send \"authorization: Bearer <token>\"")]
    MissingToken,
    #[error("metadata authorization: must be \"Bearer <token>\" (value {0:?})")]
    MalformedHeader(String),
    #[error("metadata authorization: unknown token")]
    UnknownToken,
    #[error("principal {principal} (role {role}) may not call {rpc:?}")]
    RpcDenied {
        principal: String,
        role: &'static str,
        rpc: Rpc,
    },
    #[error("principal {principal} (role {role}) may not record {event_type} events (value {event_id:?})")]
    EventDenied {
        principal: String,
        role: &'static str,
        event_type: &'static str,
        event_id: String,
    },
}

/// Why the credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    principal: String,
    role: String,
    sha256: String,
}

/// A token issued on first start: shown once to the operator, then only its hash is kept.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub principal: Principal,
    pub token: String,
}

/// Token hashes → principals.
#[derive(Debug, Default)]
pub struct Credentials {
    by_hash: HashMap<[u8; 32], Principal>,
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

impl Credentials {
    pub fn from_tokens(tokens: &[IssuedToken]) -> Credentials {
        Credentials {
            by_hash: tokens
                .iter()
                .map(|t| (hash(&t.token), t.principal.clone()))
                .collect(),
        }
    }

    /// Reads the credentials file; when there is none, issues one token per role, writes their
    /// hashes to a new file and returns the tokens, which exist nowhere else from then on.
    pub fn load_or_create(
        path: &Path,
    ) -> Result<(Credentials, Vec<IssuedToken>), CredentialsError> {
        let io = |source| CredentialsError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Credentials::parse(path, &text)?, Vec::new())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let issued: Vec<IssuedToken> = Role::ALL
                    .into_iter()
                    .map(|role| IssuedToken {
                        principal: Principal {
                            name: role.name().to_string(),
                            role,
                        },
                        token: new_token(),
                    })
                    .collect();
                let mut text = String::from(
                    "# gryning credentials: the SHA-256 of each bearer token, never the token.\n\
                     # Add a principal with its own token's hash; remove a line to revoke it.\n",
                );
                for t in &issued {
                    let _ = write!(
                        text,
                        "\n[[token]]\nprincipal = \"{}\"\nrole = \"{}\"\nsha256 = \"{}\"\n",
                        t.principal.name,
                        t.principal.role.name(),
                        hex(&hash(&t.token))
                    );
                }
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                // create_new: two servers starting at once must not both issue tokens.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(io)?;
                std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok((Credentials::from_tokens(&issued), issued))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Credentials, CredentialsError> {
        let bad = |message: String| CredentialsError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut by_hash = HashMap::new();
        for entry in file.token {
            let role = Role::parse(&entry.role).ok_or_else(|| {
                bad(format!(
                    "role {:?} of principal {:?} is not one of police, prosecution, care, analyst, auditor, admin",
                    entry.role, entry.principal
                ))
            })?;
            let digest = unhex(&entry.sha256).ok_or_else(|| {
                bad(format!(
                    "sha256 of principal {:?} must be 64 hex digits (value {:?})",
                    entry.principal, entry.sha256
                ))
            })?;
            by_hash.insert(
                digest,
                Principal {
                    name: entry.principal,
                    role,
                },
            );
        }
        Ok(Credentials { by_hash })
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
        self.by_hash
            .get(&hash(token))
            .cloned()
            .ok_or(Error::UnknownToken)
    }
}

/// The interceptor mounted on every service: authenticates and leaves the [`Principal`] in the
/// request's extensions for the handler. Health and reflection are mounted without it.
#[derive(Clone)]
pub struct Authenticator {
    credentials: Arc<Credentials>,
}

impl Authenticator {
    pub fn new(credentials: Arc<Credentials>) -> Authenticator {
        Authenticator { credentials }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or("<not ascii>"));
        let principal = self
            .credentials
            .authenticate(header)
            .map_err(crate::status::ServiceError::from)?;
        tracing::debug!(principal = %principal.name, role = principal.role.name(), "authenticated");
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The caller of `request`, if its role may call `rpc`.
pub fn require<T>(request: &tonic::Request<T>, rpc: Rpc) -> Result<Principal, Error> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or(Error::MissingToken)?;
    if rpc.allows(principal.role) {
        Ok(principal)
    } else {
        Err(Error::RpcDenied {
            principal: principal.name,
            role: principal.role.name(),
            rpc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_authenticate_and_only_hashes_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/credentials.toml");
        let (creds, issued) = Credentials::load_or_create(&path).unwrap();
        assert_eq!(issued.len(), Role::ALL.len());
        let text = std::fs::read_to_string(&path).unwrap();
        for t in &issued {
            assert!(!text.contains(&t.token), "token stored in clear");
            let header = format!("Bearer {}", t.token);
            assert_eq!(creds.authenticate(Some(&header)).unwrap(), t.principal);
        }
        // The second start reads the file and issues nothing.
        let (again, none) = Credentials::load_or_create(&path).unwrap();
        assert!(none.is_empty());
        let header = format!("Bearer {}", issued[0].token);
        assert_eq!(
            again.authenticate(Some(&header)).unwrap(),
            issued[0].principal
        );
        assert_eq!(
            again.authenticate(Some("Bearer nope")),
            Err(Error::UnknownToken)
        );
        assert_eq!(again.authenticate(None), Err(Error::MissingToken));
        assert!(matches!(
            again.authenticate(Some("Basic abc")),
            Err(Error::MalformedHeader(_))
        ));
    }

    #[test]
    fn policy_table() {
        // (rpc, roles allowed besides admin)
        let check = |rpc: Rpc, allowed: &[Role]| {
            for role in Role::ALL {
                let expected = role == Role::Admin || allowed.contains(&role);
                assert_eq!(rpc.allows(role), expected, "{rpc:?} by {role:?}");
            }
        };
        check(Rpc::OpenCase, &[Role::Police]);
        check(Rpc::DecideProsecution, &[Role::Prosecution]);
        check(Rpc::GrantSupport, &[Role::Care]);
        check(Rpc::Append, &[Role::Police, Role::Prosecution, Role::Care]);
        check(Rpc::Subscribe, &[Role::Auditor]);
        check(Rpc::Watch, &[Role::Analyst]);
        check(Rpc::Explain, &[Role::Auditor]);
        assert!(may_append(Role::Care, &Body::ContractCareProposed));
        assert!(!may_append(Role::Police, &Body::ContractCareProposed));
        assert!(may_append(Role::Police, &Body::ChildWelfareNotified));
        assert!(!may_append(Role::Analyst, &Body::ChildWelfareNotified));
        assert!(may_append(Role::Admin, &Body::ContractCareProposed));
    }

    /// The policy's lists against the proto, the one declaration of the API: `Rpc::ALL` names
    /// every RPC of the gryning services and `EventType::ALL` every body of `Event`, so a new
    /// RPC or event type cannot be left out of the policy (or of the metrics labels and the
    /// role tests that iterate these lists).
    #[test]
    fn the_policy_lists_every_rpc_and_event_type_of_the_proto() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(gryning_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let files = || set.file.iter().filter(|f| f.package() == "gryning.v1");
        let mut in_proto: Vec<&str> = files()
            .flat_map(|f| &f.service)
            .flat_map(|s| s.method.iter().map(|m| m.name()))
            .collect();
        let mut in_policy: Vec<String> = Rpc::ALL.iter().map(|r| format!("{r:?}")).collect();
        in_proto.sort_unstable();
        in_policy.sort_unstable();
        assert_eq!(in_policy, in_proto, "Rpc::ALL against the proto's RPCs");

        let event = files()
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == "Event")
            .expect("message gryning.v1.Event");
        let body = event
            .oneof_decl
            .iter()
            .position(|o| o.name() == "body")
            .expect("oneof body") as i32;
        let bodies: Vec<&str> = event
            .field
            .iter()
            .filter(|f| f.oneof_index == Some(body))
            .map(|f| f.type_name().trim_start_matches(".gryning.v1."))
            .collect();
        let types: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(types, bodies, "EventType::ALL against Event.body");

        for t in EventType::ALL {
            let agency = agency_of_type(t);
            assert!(
                Rpc::Append.allows(agency),
                "{t}: {agency:?} may not call Append"
            );
            // A client's events are recorded by the care agencies.
            assert!(!t.is_care() || agency == Role::Care, "{t}: {agency:?}");
        }
    }
}
