//! Access control. Every call carries `authorization: Bearer <token>`; the credentials file
//! binds the SHA-256 of each token (never the token itself) to a principal and a role. The
//! [`Authenticator`] interceptor turns the token into a [`Principal`] (or UNAUTHENTICATED);
//! each handler then asks [`require`] whether the principal's role may call its RPC, and the
//! recording path asks [`may_append`] whether the role may record the event's type. The policy
//! is the two tables below and nothing else, narrowed by a principal's [`Scope`]: a scoped
//! principal records only in its police region (and local police areas) or municipality
//! ([`check_scope`]).
//!
//! Every refusal (no token, an unknown token, an RPC or event type the role may not, a case
//! outside the scope) is logged at `warn` with the principal (or `unknown`) and the RPC, never
//! the token, and counted in [`crate::metrics::ACCESS_REFUSED_TOTAL`] by reason.

use std::sync::Arc;

use gryning_domain::{Body, EventType};

pub use crate::credentials::{Credentials, CredentialsError, IssuedToken};

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

/// Who is calling: a name recorded in each event's metadata, a role, and where it may record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub scope: Scope,
}

/// Where a principal may record events. Reading (tables, the log for auditors) is never scoped:
/// tables stay county-wide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Today's behaviour: anywhere its role may record.
    #[default]
    County,
    /// Cases of one police region (its full name, `Polisregion Syd`), and when `areas` is not
    /// empty only cases of those local police areas.
    PoliceRegion { region: String, areas: Vec<String> },
    /// One municipality's social services: the clients that municipality's principals started
    /// recording (the scope is in each stored event's metadata).
    Municipality(String),
}

impl Scope {
    /// How the scope reads in messages and listings: `police region Polisregion Syd (local
    /// police areas Malmö, Lund)`, `municipality Botkyrka`, `county`.
    pub fn describe(&self) -> String {
        match self {
            Scope::County => "county".to_string(),
            Scope::PoliceRegion { region, areas } if areas.is_empty() => {
                format!("police region {region}")
            }
            Scope::PoliceRegion { region, areas } => format!(
                "police region {region} (local police areas {})",
                areas.join(", ")
            ),
            Scope::Municipality(m) => format!("municipality {m}"),
        }
    }

    /// The scope as stored in an event's metadata (`EventMetadata.scope`): empty for the
    /// county, `police-region:NAME` or `municipality:NAME`.
    pub fn stored(&self) -> String {
        match self {
            Scope::County => String::new(),
            Scope::PoliceRegion { region, .. } => format!("police-region:{region}"),
            Scope::Municipality(m) => format!("municipality:{m}"),
        }
    }

    /// Whether a case opened in `region` and `area` lies in this scope (a municipality's
    /// principal records no case events: its role records client events only).
    pub fn covers_case(&self, region: &str, area: &str) -> bool {
        match self {
            Scope::County => true,
            Scope::PoliceRegion { region: r, areas } => {
                gryning_domain::region::names_region(region, r)
                    && (areas.is_empty() || areas.iter().any(|a| same_name(a, area)))
            }
            Scope::Municipality(_) => false,
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
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
    Audit,
}

impl Rpc {
    pub const ALL: [Rpc; 22] = [
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
        Rpc::Audit,
    ];

    /// `Service.Method`, as logs and the metrics' `rpc` label name it.
    pub fn name(self) -> &'static str {
        use Rpc::*;
        match self {
            OpenCase => "Police.OpenCase",
            ReportCrime => "Police.ReportCrime",
            ReclassifyCrime => "Police.ReclassifyCrime",
            ReclassifyCase => "Police.ReclassifyCase",
            ReferToProsecutor => "Police.ReferToProsecutor",
            CloseInvestigation => "Police.CloseInvestigation",
            NotifyChildWelfare => "Police.NotifyChildWelfare",
            DecideProsecution => "Prosecution.DecideProsecution",
            ProposeContractCare => "Care.ProposeContractCare",
            StartTreatmentProgramme => "Care.StartTreatmentProgramme",
            EndTreatmentProgramme => "Care.EndTreatmentProgramme",
            GrantSupport => "Care.GrantSupport",
            Append => "EventLog.Append",
            Read => "EventLog.Read",
            Subscribe => "EventLog.Subscribe",
            GetTable => "Insight.GetTable",
            Watch => "Insight.Watch",
            Status => "Insight.Status",
            Publish => "Insight.Publish",
            ListPublications => "Insight.ListPublications",
            Explain => "Insight.Explain",
            Audit => "Insight.Audit",
        }
    }

    /// Whether a call records events (the commands, a bulk `Append`, `Publish`); the other
    /// RPCs only read.
    pub fn records(self) -> bool {
        use Rpc::*;
        !matches!(
            self,
            Read | Subscribe | GetTable | Watch | Status | ListPublications | Explain | Audit
        )
    }

    /// The RPC a `Service.Method` name (or a `/gryning.v1.Service/Method` path) names.
    pub fn from_name(name: &str) -> Option<Rpc> {
        let name = name
            .strip_prefix("/gryning.v1.")
            .map(|rest| rest.replacen('/', ".", 1))
            .unwrap_or_else(|| name.to_string());
        Rpc::ALL.into_iter().find(|r| r.name() == name)
    }

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
                // Event-level data: the log itself, or the events behind a figure; the audit
                // trail (who recorded what and when).
                Read | Subscribe | Explain | Audit => role == Role::Auditor,
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
        // Recorded only by `gryning retain`, with the erasure; the field rules refuse it from
        // every caller, an admin's included.
        StreamsErased => Role::Admin,
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
    /// A scoped principal recording outside its scope. `what` names the stream only: where
    /// another scope's case or client belongs is not the caller's to learn, so the message
    /// names the caller's own scope and nothing of the other.
    #[error("principal {principal} (role {role}) is bound to {scope} and may not record in {what}: it lies outside that scope (event_id {event_id:?})")]
    OutOfScope {
        principal: String,
        role: &'static str,
        scope: String,
        what: String,
        event_id: String,
    },
}

impl Error {
    /// The reason label of [`crate::metrics::ACCESS_REFUSED_TOTAL`].
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingToken => "missing-token",
            Error::MalformedHeader(_) => "malformed-token",
            Error::UnknownToken => "unknown-token",
            Error::RpcDenied { .. } => "rpc-denied",
            Error::EventDenied { .. } => "event-type-denied",
            Error::OutOfScope { .. } => "out-of-scope",
        }
    }

    /// The refused principal's name, or `unknown` when the call had no valid token.
    pub fn principal(&self) -> &str {
        match self {
            Error::MissingToken | Error::MalformedHeader(_) | Error::UnknownToken => "unknown",
            Error::RpcDenied { principal, .. }
            | Error::EventDenied { principal, .. }
            | Error::OutOfScope { principal, .. } => principal,
        }
    }
}

/// Logs and counts one refusal of `rpc` (a `Service.Method` name, or `other`). The message
/// is the error's, which never holds a token (a malformed header shows its first 8 characters,
/// which `Bearer ` mostly fills).
pub fn refused(error: &Error, rpc: &str) {
    tracing::warn!(
        principal = error.principal(),
        rpc,
        reason = error.reason(),
        error = %error,
        "access refused"
    );
    crate::metrics::global().access_refused(error.reason(), rpc);
}

/// Which RPC a request is for, as the limits layer found it in the request's path (an
/// extension of the request, read by the interceptor, which sees no path).
#[derive(Clone, Copy, Debug)]
pub struct CalledRpc(pub Rpc);

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
        let principal = match self.credentials.authenticate(header) {
            Ok(principal) => principal,
            Err(e) => {
                let rpc = request.extensions().get::<CalledRpc>().map(|c| c.0.name());
                refused(&e, rpc.unwrap_or("other"));
                return Err(crate::status::ServiceError::from(e).into());
            }
        };
        tracing::debug!(principal = %principal.name, role = principal.role.name(), "authenticated");
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The caller of `request`, if its role may call `rpc` (a refusal is logged and counted).
pub fn require<T>(request: &tonic::Request<T>, rpc: Rpc) -> Result<Principal, Error> {
    let checked = match request.extensions().get::<Principal>().cloned() {
        None => Err(Error::MissingToken),
        Some(principal) if rpc.allows(principal.role) => Ok(principal),
        Some(principal) => Err(Error::RpcDenied {
            principal: principal.name,
            role: principal.role.name(),
            rpc,
        }),
    };
    if let Err(e) = &checked {
        refused(e, rpc.name());
    }
    checked
}

/// The place a scoped principal's event lands in, as [`check_scope`] needs it: the case's
/// region and local police area (from its `CaseOpened`, or the event itself when it opens the
/// case), or the scope stored with the first event of a client's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    Case {
        region: String,
        area: String,
    },
    /// A client whose first event was recorded under `scope` (`EventMetadata.scope`, empty
    /// for an unscoped principal).
    Client {
        scope: String,
    },
    /// A stream with no events yet (a client's first event), or a case not opened (the
    /// recorder refuses it as NOT_FOUND, whoever asks).
    New,
}

/// Whether `principal` may record an event landing in `place` (always, for an unscoped
/// principal); the refusal names the principal's scope and the stream, not the place.
pub fn check_scope(
    principal: &Principal,
    place: &Place,
    stream: &str,
    event_id: &str,
) -> Result<(), Error> {
    let allowed = match (&principal.scope, place) {
        (Scope::County, _) => true,
        (_, Place::New) => true,
        (scope, Place::Case { region, area }) => scope.covers_case(region, area),
        (scope, Place::Client { scope: stored }) => *stored == scope.stored(),
    };
    if allowed {
        return Ok(());
    }
    Err(Error::OutOfScope {
        principal: principal.name.clone(),
        role: principal.role.name(),
        scope: principal.scope.describe(),
        what: stream.to_string(),
        event_id: event_id.to_string(),
    })
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
        check(Rpc::Audit, &[Role::Auditor]);
        assert!(may_append(Role::Care, &Body::ContractCareProposed));
        assert!(!may_append(Role::Police, &Body::ContractCareProposed));
        assert!(may_append(Role::Police, &Body::ChildWelfareNotified));
        assert!(!may_append(Role::Analyst, &Body::ChildWelfareNotified));
        assert!(may_append(Role::Admin, &Body::ContractCareProposed));
    }

    #[test]
    fn a_scope_admits_its_own_places_and_names_itself_when_it_refuses() {
        let principal = |scope: Scope| Principal {
            name: "p".into(),
            role: Role::Police,
            scope,
        };
        let case = |region: &str, area: &str| Place::Case {
            region: region.into(),
            area: area.into(),
        };
        let syd = principal(Scope::PoliceRegion {
            region: "Polisregion Syd".into(),
            areas: vec![],
        });
        let farsta = principal(Scope::PoliceRegion {
            region: "Polisregion Stockholm".into(),
            areas: vec!["Farsta".into()],
        });
        let botkyrka = principal(Scope::Municipality("Botkyrka".into()));
        let county = principal(Scope::County);
        let ok = |p: &Principal, place: &Place| check_scope(p, place, "case-x", "e").is_ok();
        assert!(ok(&syd, &case("Polisregion Syd", "Malmö")));
        assert!(
            ok(&syd, &case("syd", "")),
            "a short, differently cased name"
        );
        assert!(!ok(&syd, &case("Polisregion Stockholm", "Farsta")));
        assert!(ok(&farsta, &case("Polisregion Stockholm", "farsta")));
        assert!(!ok(&farsta, &case("Polisregion Stockholm", "Södermalm")));
        assert!(!ok(&farsta, &case("Polisregion Syd", "Farsta")));
        assert!(!ok(&botkyrka, &case("Polisregion Stockholm", "Farsta")));
        let started = |scope: &str| Place::Client {
            scope: scope.into(),
        };
        assert!(ok(&botkyrka, &started("municipality:Botkyrka")));
        assert!(!ok(&botkyrka, &started("municipality:Huddinge")));
        assert!(!ok(&botkyrka, &started("")));
        for place in [
            case("Polisregion Nord", ""),
            started("municipality:Huddinge"),
        ] {
            assert!(ok(&county, &place), "unscoped principals keep the county");
        }
        assert!(ok(&botkyrka, &Place::New));
        let e =
            check_scope(&farsta, &case("Polisregion Syd", "Malmö"), "case-x", "e1").unwrap_err();
        assert_eq!(e.reason(), "out-of-scope");
        assert_eq!(
            e.to_string(),
            "principal p (role police) is bound to police region Polisregion Stockholm (local police areas Farsta) and may not record in case-x: it lies outside that scope (event_id \"e1\")"
        );
        assert_eq!(Error::UnknownToken.principal(), "unknown");
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
