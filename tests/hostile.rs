//! The hostile-input corpus (`tests/corpus/`), sent to one real `gryning up` and through
//! `gryning import`. Every input is refused with its documented status and a message naming
//! the field and the rule, nothing of it is stored, and the server keeps serving: after each
//! input it still records a valid event and answers health.
//!
//! `GRYNING_CORPUS_SKIP_OVERSIZE=1` skips the cases marked `oversize` (requests larger than
//! the server's message limit).

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::{Buf, BufMut};
use gryning_proto::pb;
use prost::Message;
use serde::Deserialize;
use serde_json::Value;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use harness::Server;
use up::{as_role, Clients};

const GRPC_CORPUS: &str = include_str!("corpus/grpc.toml");
const IMPORT_CORPUS: &str = include_str!("corpus/import.toml");
const IMPORT_FILE: &[u8] = include_bytes!("corpus/import.ndjson");

/// The longest status or rejection message accepted: values are echoed as a short prefix.
const MAX_MESSAGE_BYTES: usize = 512;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    templates: BTreeMap<String, String>,
    events: BTreeMap<String, String>,
    identity_numbers: IdentityNumbers,
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityNumbers {
    forms: Vec<String>,
    free_text_forms: Vec<String>,
    rules: BTreeMap<String, String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    rpc: String,
    role: Option<String>,
    json: Option<String>,
    events: Option<Vec<String>>,
    hex: Option<String>,
    messages_hex: Option<Vec<String>>,
    append_hex: Option<String>,
    generate: Option<Generate>,
    #[serde(default)]
    setup: Vec<String>,
    code: String,
    reason: Option<String>,
    message: Vec<String>,
    rejected: Option<u64>,
    #[serde(default)]
    oversize: bool,
    /// Text no part of the answer may show (`absent`; the identity-number loop sets it too).
    #[serde(default, rename = "absent")]
    never_shown: Vec<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Generate {
    string: Option<String>,
    bytes: Option<usize>,
    repeat: Option<String>,
    count: Option<usize>,
    value: Option<String>,
}

/// Request and response bodies as raw bytes, so garbage can be sent as it is.
#[derive(Clone, Copy, Default)]
struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16)
                .unwrap_or_else(|_| panic!("not hex: {text:?}"))
        })
        .collect()
}

/// Fresh UUIDs for `{name}` placeholders, the same name the same UUID; `{future}` is the day
/// after tomorrow in the Stockholm calendar.
#[derive(Default)]
struct Placeholders(HashMap<String, String>);

impl Placeholders {
    fn fill_bytes(&mut self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'{' {
                let name_len = text[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
                    .count();
                if name_len > 0 && text.get(i + 1 + name_len) == Some(&b'}') {
                    let name = std::str::from_utf8(&text[i + 1..i + 1 + name_len]).unwrap();
                    out.extend_from_slice(self.value(name).as_bytes());
                    i += name_len + 2;
                    continue;
                }
            }
            out.push(text[i]);
            i += 1;
        }
        out
    }

    fn fill(&mut self, text: &str) -> String {
        String::from_utf8(self.fill_bytes(text.as_bytes())).unwrap()
    }

    fn value(&mut self, name: &str) -> String {
        if name == "future" {
            let today = gryning_domain::Date::in_stockholm(jiff::Timestamp::now());
            return today.add_days(2).to_string();
        }
        self.0
            .entry(name.to_string())
            .or_insert_with(up::id)
            .clone()
    }
}

/// Sets the field at the dotted `path` of a JSON object, creating the objects on the way; an
/// array on the way (a repeated message) is entered at its first item.
fn set_path(json: &mut Value, path: &str, value: Value) {
    let mut at = json;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let object = at.as_object_mut().expect("a JSON object on the path");
        if parts.peek().is_none() {
            object.insert(part.to_string(), value);
            return;
        }
        at = object
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Array(items) = at {
            at = items
                .first_mut()
                .expect("a repeated message on the path has an item");
        }
    }
}

/// The protobuf encoding of `json` as the request message of `rpc`.
fn encode_json(rpc: &str, json: &Value) -> Vec<u8> {
    macro_rules! encode {
        ($t:ty) => {
            serde_json::from_value::<$t>(json.clone())
                .unwrap_or_else(|e| {
                    panic!("{rpc}: the corpus request is not valid JSON for it: {e}")
                })
                .encode_to_vec()
        };
    }
    match rpc {
        "Police/OpenCase" => encode!(pb::OpenCaseRequest),
        "Police/ReportCrime" => encode!(pb::ReportCrimeRequest),
        "Police/ReclassifyCrime" => encode!(pb::ReclassifyCrimeRequest),
        "Police/ReclassifyCase" => encode!(pb::ReclassifyCaseRequest),
        "Police/ReferToProsecutor" => encode!(pb::ReferToProsecutorRequest),
        "Police/CloseInvestigation" => encode!(pb::CloseInvestigationRequest),
        "Police/NotifyChildWelfare" => encode!(pb::NotifyChildWelfareRequest),
        "Prosecution/DecideProsecution" => encode!(pb::DecideProsecutionRequest),
        "Care/ProposeContractCare" => encode!(pb::ProposeContractCareRequest),
        "Care/StartTreatmentProgramme" => encode!(pb::StartTreatmentProgrammeRequest),
        "Care/EndTreatmentProgramme" => encode!(pb::EndTreatmentProgrammeRequest),
        "Care/GrantSupport" => encode!(pb::GrantSupportRequest),
        "EventLog/Append" => encode!(pb::Event),
        "EventLog/Read" => encode!(pb::ReadRequest),
        "EventLog/Subscribe" => encode!(pb::SubscribeRequest),
        "Insight/GetTable" => encode!(pb::GetTableRequest),
        "Insight/Watch" => encode!(pb::WatchRequest),
        "Insight/Status" => encode!(pb::StatusRequest),
        "Insight/Publish" => encode!(pb::PublishRequest),
        "Insight/ListPublications" => encode!(pb::ListPublicationsRequest),
        "Insight/Explain" => encode!(pb::ExplainRequest),
        "Insight/Audit" => encode!(pb::AuditRequest),
        other => panic!("the corpus names an RPC the runner does not know: {other}"),
    }
}

/// The role that owns an RPC's service.
fn default_role(rpc: &str) -> &'static str {
    match rpc.split('/').next().unwrap() {
        "Police" => "police",
        "Prosecution" => "prosecution",
        "Care" => "care",
        "Insight" if rpc == "Insight/Publish" => "admin",
        // Event-level data: the auditor's.
        "Insight" if rpc == "Insight/Explain" || rpc == "Insight/Audit" => "auditor",
        "Insight" => "analyst",
        "EventLog" if rpc == "EventLog/Append" => "admin",
        "EventLog" => "auditor",
        other => panic!("unknown service {other}"),
    }
}

fn with_token<T>(mut request: Request<T>, token: Option<&str>) -> Request<T> {
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", token.parse().unwrap());
    }
    request
}

/// What a call answered: the response messages, or the status it failed with.
async fn call(
    channel: &Channel,
    rpc: &str,
    token: Option<&str>,
    messages: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::try_from(format!("/gryning.v1.{rpc}")).unwrap();
    match rpc {
        "EventLog/Append" => {
            let request = with_token(Request::new(tokio_stream::iter(messages)), token);
            let reply = grpc.client_streaming(request, path, RawCodec).await?;
            Ok(vec![reply.into_inner()])
        }
        "EventLog/Read" | "EventLog/Subscribe" | "Insight/Watch" => {
            let [message] = <[Vec<u8>; 1]>::try_from(messages).expect("one request message");
            let mut stream = grpc
                .server_streaming(with_token(Request::new(message), token), path, RawCodec)
                .await?
                .into_inner();
            // A live stream never ends: its first message says it was accepted.
            let mut out = Vec::new();
            while let Some(item) = stream.message().await? {
                out.push(item);
                if rpc != "EventLog/Read" {
                    break;
                }
            }
            Ok(out)
        }
        _ => {
            let [message] = <[Vec<u8>; 1]>::try_from(messages).expect("one request message");
            let reply = grpc
                .unary(with_token(Request::new(message), token), path, RawCodec)
                .await?;
            Ok(vec![reply.into_inner()])
        }
    }
}

/// The request messages of a case, with its placeholders filled.
fn messages(case: &Case, fill: &mut Placeholders) -> Vec<Vec<u8>> {
    if let Some(hex_body) = &case.hex {
        return vec![hex(hex_body)];
    }
    if let Some(bodies) = &case.messages_hex {
        return bodies.iter().map(|b| hex(b)).collect();
    }
    let jsons: Vec<String> = match (&case.json, &case.events) {
        (Some(json), None) => vec![json.clone()],
        (None, Some(events)) => events.clone(),
        _ => panic!(
            "{}: give exactly one of json, events, hex, messages_hex",
            case.name
        ),
    };
    jsons
        .iter()
        .map(|text| {
            let mut json: Value = serde_json::from_str(&fill.fill(text))
                .unwrap_or_else(|e| panic!("{}: request is not JSON: {e}", case.name));
            if let Some(g) = &case.generate {
                if let Some(field) = &g.string {
                    let value = "x".repeat(g.bytes.expect("generate.bytes"));
                    set_path(&mut json, field, Value::String(value));
                }
                if let Some(field) = &g.repeat {
                    let count = g.count.expect("generate.count");
                    let value = g.value.as_deref().expect("generate.value");
                    let items = (0..count)
                        .map(|_| {
                            Value::String(if value == "fresh" {
                                up::id()
                            } else {
                                fill.fill(value)
                            })
                        })
                        .collect();
                    set_path(&mut json, field, Value::Array(items));
                }
            }
            let mut bytes = encode_json(&case.rpc, &json);
            if let Some(suffix) = &case.append_hex {
                bytes.extend(hex(suffix));
            }
            bytes
        })
        .collect()
}

/// A string field of a request message.
struct StringField {
    /// `Service/Method`.
    rpc: String,
    /// Its dotted path in the request's JSON (a repeated message: its first item).
    path: String,
    /// The field as the server's messages name it: the path, with `[0]` after each repeated
    /// message on the way.
    named: String,
    repeated: bool,
}

/// Every string field of every request message of every gryning.v1 RPC, from the descriptors
/// compiled into the binary.
fn string_fields() -> Vec<StringField> {
    use prost_types::field_descriptor_proto::{Label, Type};
    let set = prost_types::FileDescriptorSet::decode(gryning_proto::FILE_DESCRIPTOR_SET).unwrap();
    let files: Vec<_> = set
        .file
        .iter()
        .filter(|f| f.package() == "gryning.v1")
        .collect();
    let messages: HashMap<String, &prost_types::DescriptorProto> = files
        .iter()
        .flat_map(|f| &f.message_type)
        .map(|m| (format!(".gryning.v1.{}", m.name()), m))
        .collect();
    /// Each string field as (JSON path, the field as the server names it, repeated): the name
    /// gives the first item of a repeated message (`tables[0].name`), as the server counts.
    fn walk(
        messages: &HashMap<String, &prost_types::DescriptorProto>,
        message: &prost_types::DescriptorProto,
        (prefix, named): (&str, &str),
        out: &mut Vec<(String, String, bool)>,
    ) {
        for field in &message.field {
            let path = format!("{prefix}{}", field.name());
            let name = format!("{named}{}", field.name());
            let repeated = field.label() == Label::Repeated;
            match field.r#type() {
                Type::String => out.push((path, name, repeated)),
                Type::Message => {
                    let inner = messages[field.type_name()];
                    let item = if repeated { "[0]" } else { "" };
                    walk(
                        messages,
                        inner,
                        (&format!("{path}."), &format!("{name}{item}.")),
                        out,
                    );
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for file in &files {
        for service in &file.service {
            for method in &service.method {
                let rpc = format!("{}/{}", service.name(), method.name());
                let mut fields = Vec::new();
                walk(
                    &messages,
                    messages[method.input_type()],
                    ("", ""),
                    &mut fields,
                );
                out.extend(fields.into_iter().map(|(p, n, r)| StringField {
                    rpc: rpc.clone(),
                    path: p,
                    named: n,
                    repeated: r,
                }));
            }
        }
    }
    out
}

/// The identity-number cases: every form in every string field of every request message.
fn identity_cases(corpus: &Corpus) -> Vec<Case> {
    let fields = string_fields();
    assert!(
        fields.len() > 30,
        "found only {} string fields",
        fields.len()
    );
    let mut cases = Vec::new();
    for StringField {
        rpc,
        path,
        named,
        repeated,
    } in fields
    {
        let leaf = path.rsplit('.').next().unwrap();
        // The rule of one RPC's field (`Explain.period`), else of the field's path (a name
        // several messages use for different things), else of every field of that name.
        let method = rpc.rsplit('/').next().unwrap();
        let rules = &corpus.identity_numbers.rules;
        let rule = rules
            .get(&format!("{method}.{path}"))
            .or_else(|| rules.get(&path))
            .or_else(|| rules.get(leaf))
            .unwrap_or_else(|| {
                panic!("{rpc} field {path}: add the rule it breaks to [identity_numbers.rules]")
            });
        // An event for the bulk append is the command request of its body (the same fields).
        let template_rpc = if rpc == "EventLog/Append" {
            let first = path.split('.').next().unwrap();
            corpus
                .templates
                .iter()
                .find(|(name, json)| match first {
                    "client_id" => name.as_str() == "Care/StartTreatmentProgramme",
                    "event_id" | "occurred_on" | "case_id" => name.as_str() == "Police/OpenCase",
                    body => json.contains(&format!("\"{body}\"")),
                })
                .map(|(name, _)| name.clone())
                .unwrap_or_else(|| panic!("no template holds the body {first}"))
        } else {
            rpc.clone()
        };
        let template = corpus
            .templates
            .get(&template_rpc)
            .unwrap_or_else(|| panic!("{rpc}: add a valid request to [templates]"));
        let numbers = &corpus.identity_numbers;
        let free_text = rule.contains("personal identity");
        let forms = numbers
            .forms
            .iter()
            .chain(numbers.free_text_forms.iter().filter(|_| free_text));
        for number in forms {
            let mut json: Value = serde_json::from_str(template).unwrap();
            let value = Value::String(number.clone());
            set_path(
                &mut json,
                &path,
                if repeated {
                    Value::Array(vec![value])
                } else {
                    value
                },
            );
            let append = rpc == "EventLog/Append";
            let mut never_shown = vec![number.clone()];
            let tail: String = number
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if tail.chars().all(|c| c.is_numeric()) {
                never_shown.push(tail);
            }
            cases.push(Case {
                name: format!("identity number {number:?} in {rpc} {path}"),
                rpc: rpc.clone(),
                role: None,
                json: (!append).then(|| json.to_string()),
                events: append.then(|| vec![json.to_string()]),
                hex: None,
                messages_hex: None,
                append_hex: None,
                generate: None,
                setup: Vec::new(),
                code: if append { "Ok" } else { "InvalidArgument" }.into(),
                reason: Some("invalid-field".into()),
                message: vec![format!("field {named}"), rule.clone()],
                rejected: append.then_some(1),
                oversize: false,
                never_shown,
            });
        }
    }
    cases
}

fn code(name: &str) -> Code {
    match name {
        "Ok" => Code::Ok,
        "InvalidArgument" => Code::InvalidArgument,
        "NotFound" => Code::NotFound,
        "AlreadyExists" => Code::AlreadyExists,
        "PermissionDenied" => Code::PermissionDenied,
        "ResourceExhausted" => Code::ResourceExhausted,
        "FailedPrecondition" => Code::FailedPrecondition,
        "OutOfRange" => Code::OutOfRange,
        "Unauthenticated" => Code::Unauthenticated,
        "Unavailable" => Code::Unavailable,
        "Internal" => Code::Internal,
        "DataLoss" => Code::DataLoss,
        other => panic!("unknown status code name {other}"),
    }
}

fn check_text(case: &Case, what: &str, text: &str) {
    for part in &case.message {
        assert!(
            text.contains(part.as_str()),
            "{}: the {what} must contain {part:?}: {text:?}",
            case.name
        );
    }
    for secret in &case.never_shown {
        assert!(
            !text.contains(secret.as_str()),
            "{}: the {what} shows {secret:?}: {text:?}",
            case.name
        );
    }
    assert!(
        text.len() <= MAX_MESSAGE_BYTES,
        "{}: the {what} is {} bytes: {:?}…",
        case.name,
        text.len(),
        &text[..MAX_MESSAGE_BYTES]
    );
}

/// Checks what the server answered to `case`.
fn check_answer(case: &Case, answer: Result<Vec<Vec<u8>>, Status>) {
    let expected = code(&case.code);
    match answer {
        Err(status) => {
            assert_eq!(
                status.code(),
                expected,
                "{}: {:?}",
                case.name,
                status.message()
            );
            check_text(case, "status message", status.message());
            if let Some(reason) = &case.reason {
                assert_eq!(
                    &up::reason(&status),
                    reason,
                    "{}: gryning-reason",
                    case.name
                );
            }
        }
        Ok(replies) => {
            assert_eq!(
                expected,
                Code::Ok,
                "{}: the call succeeded ({} replies)",
                case.name,
                replies.len()
            );
            assert_eq!(
                case.rpc, "EventLog/Append",
                "{}: only a bulk append answers OK",
                case.name
            );
            let summary = pb::AppendSummary::decode(replies[0].as_slice()).unwrap();
            let rejected = case
                .rejected
                .expect("rejected, for a bulk append answering OK");
            assert_eq!(
                (summary.accepted, summary.duplicates, summary.rejected),
                (0, 0, rejected),
                "{}: {summary:?}",
                case.name
            );
            assert_eq!(summary.rejections.len() as u64, rejected, "{}", case.name);
            for r in &summary.rejections {
                check_text(case, "rejection message", &r.message);
                if let Some(reason) = &case.reason {
                    assert_eq!(&r.reason, reason, "{}", case.name);
                }
            }
        }
    }
}

/// The stored events after `head` (at most 10,000: more than any case could store).
async fn read_after(c: &mut Clients, head: u64) -> Vec<pb::RecordedEvent> {
    let mut read = c
        .log
        .read(pb::ReadRequest {
            after: head,
            limit: 10_000,
        })
        .await
        .expect("EventLog.Read")
        .into_inner();
    let mut events = Vec::new();
    while let Some(e) = read.message().await.expect("EventLog.Read stream") {
        events.push(e);
    }
    events
}

struct Probe {
    admin: Clients,
    police: Clients,
    health: tonic_health::pb::health_client::HealthClient<Channel>,
    open_case: String,
}

impl Probe {
    async fn head(&mut self) -> u64 {
        self.admin
            .insight
            .status(pb::StatusRequest {})
            .await
            .expect("Insight.Status")
            .into_inner()
            .head
    }

    /// Nothing was stored after `head`, and the server still serves: health, and a valid
    /// event is recorded.
    async fn still_serving(&mut self, name: &str, head: u64) {
        assert_eq!(self.head().await, head, "{name}: the store's head moved");
        let stored = read_after(&mut self.admin, head).await;
        assert!(stored.is_empty(), "{name}: stored {stored:?}");
        let health = self
            .health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap_or_else(|s| panic!("{name}: health after it: {s:?}"))
            .into_inner();
        assert_eq!(
            health.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{name}"
        );
        let json = Placeholders::default().fill(&self.open_case);
        let request: pb::OpenCaseRequest = serde_json::from_str(&json).unwrap();
        let recorded = self
            .police
            .police
            .open_case(request)
            .await
            .unwrap_or_else(|s| panic!("{name}: a valid OpenCase after it failed: {s:?}"))
            .into_inner();
        assert!(
            !recorded.duplicate && recorded.position > head,
            "{name}: {recorded:?}"
        );
    }
}

fn skip_oversize() -> bool {
    std::env::var("GRYNING_CORPUS_SKIP_OVERSIZE").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_is_refused_and_the_server_keeps_serving() {
    let corpus: Corpus = toml::from_str(GRPC_CORPUS).expect("tests/corpus/grpc.toml");
    assert!(corpus.case.len() >= 60, "{} cases", corpus.case.len());
    let dir = tempfile::tempdir().unwrap();
    // Limits raised above the defaults (64 KiB messages, 1,000 crime ids), so that the field
    // and lifecycle rules are tried on megabyte values and 100,000 crime ids; the 10 MB cases
    // still pass the raised message limit. `tests/limits.rs` tries the limits themselves.
    let server = harness::Server::start(
        up::BIN,
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
        ],
        &[
            ("GRYNING_MAX_MESSAGE_BYTES", "8388608"),
            ("GRYNING_MAX_QUERY_BYTES", "8388608"),
            ("GRYNING_MAX_CRIME_IDS", "200000"),
        ],
        &dir.path().join("up.log"),
    );
    let channel = server.channel().await;
    let tokens = &server.tokens;
    let mut probe = Probe {
        admin: as_role(&server, tokens, "admin").await,
        police: as_role(&server, tokens, "police").await,
        health: tonic_health::pb::health_client::HealthClient::new(channel.clone()),
        open_case: corpus.templates["Police/OpenCase"].clone(),
    };
    let mut cases = corpus.case.clone();
    cases.extend(identity_cases(&corpus));
    let (mut tried, mut skipped) = (0usize, 0usize);
    for case in &cases {
        if case.oversize && skip_oversize() {
            skipped += 1;
            continue;
        }
        let mut fill = Placeholders::default();
        if !case.setup.is_empty() {
            let events: Vec<pb::Event> = case
                .setup
                .iter()
                .map(|name| {
                    let json = corpus.events.get(name).unwrap_or_else(|| {
                        panic!("{}: setup names {name}, not in [events]", case.name)
                    });
                    serde_json::from_str(&fill.fill(json)).unwrap()
                })
                .collect();
            let n = events.len() as u64;
            let summary = probe
                .admin
                .log
                .append(up::tokio_stream_iter(events))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                (summary.accepted, summary.rejected),
                (n, 0),
                "{}: setup {summary:?}",
                case.name
            );
        }
        let head = probe.head().await;
        let token = match case.role.as_deref() {
            Some("none") => None,
            Some("garbage") => Some("Bearer".to_string()),
            Some(role) => Some(format!("Bearer {}", tokens[role])),
            None => Some(format!("Bearer {}", tokens[default_role(&case.rpc)])),
        };
        let answer = call(
            &channel,
            &case.rpc,
            token.as_deref(),
            messages(case, &mut fill),
        )
        .await;
        check_answer(case, answer);
        probe.still_serving(&case.name, head).await;
        tried += 1;
    }
    println!(
        "hostile gRPC corpus: {tried} inputs refused ({} written cases, {} identity-number \
         placements), {skipped} oversized skipped",
        corpus.case.len(),
        cases.len() - corpus.case.len()
    );
    import_corpus(&server, &mut probe, dir.path()).await;
    server.stop();
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportCorpus {
    line: Vec<ImportLine>,
    generated: Vec<GeneratedLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    line: u64,
    message: Vec<String>,
    /// Text the line's message must not show.
    #[serde(default)]
    absent: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneratedLine {
    kind: String,
    bytes: Option<usize>,
    count: Option<usize>,
    message: Vec<String>,
}

/// The NDJSON corpus with fresh ids and its generated lines: the file's bytes, the expected
/// refusals by line number, and the event ids of the valid lines.
fn import_file() -> (Vec<u8>, BTreeMap<u64, Vec<String>>, HashSet<String>) {
    let corpus: ImportCorpus = toml::from_str(IMPORT_CORPUS).expect("tests/corpus/import.toml");
    let mut fill = Placeholders::default();
    let mut text = fill.fill_bytes(IMPORT_FILE);
    let mut expected: BTreeMap<u64, Vec<String>> = corpus
        .line
        .into_iter()
        .map(|l| {
            let mut parts = l.message;
            parts.extend(l.absent.into_iter().map(|a| format!("!{a}")));
            (l.line, parts)
        })
        .collect();
    let mut valid = HashSet::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let n = i as u64 + 1;
        if expected.contains_key(&n) || line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event: pb::Event = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!("line {n} is not listed as refused but is not an event: {e}")
        });
        valid.insert(event.event_id);
    }
    let mut line_no = text.iter().filter(|&&b| b == b'\n').count() as u64;
    for g in corpus.generated {
        let line = match g.kind.as_str() {
            "string" => format!(
                r#"{{"eventId":"{}","occurredOn":"2020-03-02","caseId":"{}","caseOpened":{{"leadCrimeCode":"4024","policeRegion":"{}"}}}}"#,
                up::id(),
                up::id(),
                "x".repeat(g.bytes.unwrap())
            ),
            "crime-ids" => {
                let ids: Vec<String> = (0..g.count.unwrap())
                    .map(|_| format!("\"{}\"", up::id()))
                    .collect();
                format!(
                    r#"{{"eventId":"{}","occurredOn":"2020-03-02","caseId":"{}","investigationClosed":{{"crimeIds":[{}],"reason":"CLOSURE_REASON_NO_SUSPECT"}}}}"#,
                    up::id(),
                    fill.value("case_a"),
                    ids.join(",")
                )
            }
            "programme" => format!(
                r#"{{"eventId":"{}","occurredOn":"2020-03-02","clientId":"{}","treatmentProgrammeStarted":{{"programme":"{}"}}}}"#,
                up::id(),
                up::id(),
                "x".repeat(g.bytes.unwrap())
            ),
            other => panic!("unknown generated line kind {other}"),
        };
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        line_no += 1;
        expected.insert(line_no, g.message);
    }
    (text, expected, valid)
}

/// Checks an import's output: every expected line refused with its substrings, no other line
/// refused, and the counts.
fn check_import(
    what: &str,
    out: &std::process::Output,
    expected: &BTreeMap<u64, Vec<String>>,
    valid: usize,
) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{what}: {stdout}\n{stderr}");
    let mut refused: BTreeMap<u64, String> = BTreeMap::new();
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("line ") {
            let (n, reason) = rest.split_once(": ").expect("line N: reason");
            refused.insert(n.parse().unwrap(), reason.to_string());
        }
    }
    assert_eq!(
        refused.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: the lines refused\n{stderr}"
    );
    let mut wrong = Vec::new();
    for (n, parts) in expected {
        let reason = &refused[n];
        for part in parts {
            // `!TEXT`: the message must not show TEXT.
            match part.strip_prefix('!') {
                Some(absent) if reason.contains(absent) => {
                    wrong.push(format!("line {n} shows {absent:?}: {reason}"))
                }
                None if !reason.contains(part.as_str()) => {
                    wrong.push(format!("line {n} must contain {part:?}: {reason}"))
                }
                _ => {}
            }
        }
        // A JSON error lists the names it expected: longer than other messages, but bounded.
        if reason.len() > 2 * MAX_MESSAGE_BYTES {
            wrong.push(format!("line {n}: {} bytes: {reason}", reason.len()));
        }
    }
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
    assert!(
        stdout.contains(&format!(
            "{valid} accepted, 0 duplicate, {} rejected",
            expected.len()
        )),
        "{what}: {stdout}"
    );
}

/// The NDJSON corpus through `gryning import --server` into the running server: only the
/// valid lines are stored.
async fn import_corpus(server: &Server, probe: &mut Probe, dir: &std::path::Path) {
    let (text, expected, valid) = import_file();
    let file = dir.join("hostile.ndjson");
    std::fs::write(&file, &text).unwrap();
    let head = probe.head().await;
    let out = std::process::Command::new(up::BIN)
        .args([
            "import",
            file.to_str().unwrap(),
            "--server",
            &server.url(),
            "--token",
        ])
        .arg(&server.tokens["admin"])
        .env_remove("GRYNING_TOKEN")
        .output()
        .unwrap();
    check_import("import --server", &out, &expected, valid.len());
    let stored: HashSet<String> = read_after(&mut probe.admin, head)
        .await
        .into_iter()
        .map(|e| e.event.unwrap().event_id)
        .collect();
    assert_eq!(
        stored, valid,
        "import --server stored exactly the valid lines"
    );
    probe
        .still_serving("import --server", head + valid.len() as u64)
        .await;
    println!(
        "hostile NDJSON corpus through import --server: {} lines refused, {} valid lines stored",
        expected.len(),
        valid.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_ndjson_line_is_refused_by_the_offline_import() {
    let dir = tempfile::tempdir().unwrap();
    let (text, expected, valid) = import_file();
    let file = dir.path().join("hostile.ndjson");
    std::fs::write(&file, &text).unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(up::BIN)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "import",
            file.to_str().unwrap(),
        ])
        .env_remove("GRYNING_STORE")
        .env_remove("GRYNING_CATALOG")
        .output()
        .unwrap();
    check_import("import", &out, &expected, valid.len());
    let store = gryning_store::sqlite::SqliteStore::open_read_only(&data).unwrap();
    let events = gryning_store::EventStore::read_all(&store, 0, 10_000)
        .await
        .unwrap();
    let stored: HashSet<String> = events
        .iter()
        .map(|e| {
            gryning_proto::decode_event(&e.payload)
                .unwrap()
                .event_id
                .to_string()
        })
        .collect();
    assert_eq!(stored, valid, "the import stored exactly the valid lines");
    println!(
        "hostile NDJSON corpus through import: {} lines refused, {} valid lines stored",
        expected.len(),
        valid.len()
    );
}
