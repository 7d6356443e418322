//! The crime-code catalogue: codes with their Swedish texts and named groups of codes. It is
//! data, not code: classification changes over the years, so the catalogue is a TOML file (the
//! default one ships with the binary; `--catalog FILE` replaces it) holding one or more
//! **versions**, each with the date it took effect, and between consecutive versions a mapping
//! of codes (docs/contract.md, "Classification history").
//!
//! A file without `[[version]]` tables is one version, as before versions existed. The top-level
//! `version` (with its `[[code]]`, `[[group]]`, `[[map]]` and `[[back]]` tables) is one version;
//! each `[[version]]` table is another, complete or stated as a base version less some codes.
//! Versions are ordered by the date they took effect; the latest is the one in force, whose
//! groups the tables use under the recorded classification.
//!
//! Between a version and the one before it, `map` entries take a code of the earlier version to
//! this one's (one code, or a code per victim gender), and `back` entries take a code this version
//! adds to the earlier version's. A code both versions list is itself in both, unless a `map`
//! entry names it: the newer version supersedes it (the code stays valid for recording).
//! [`Catalogue::under`] gives the catalogue as seen through one version: every code of any
//! version is translated into that version's codes, step by step along the versions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use sha2::Digest as _;

use serde::Deserialize;
use toml::Spanned;

use crate::{CrimeCode, Date, Gender};

/// The catalogue shipped with gryning.
pub const DEFAULT_TOML: &str = include_str!("../data/catalogue.toml");

/// The name of the classification that takes codes as recorded (and reclassified).
pub const RECORDED: &str = "recorded";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub codes: Vec<CrimeCode>,
    /// Shown with the group: where its definition comes from and what to keep in mind.
    pub note: Option<String>,
}

/// Where a mapping entry takes a code: one code, or one per victim gender (`Gender::ALL`
/// order). A case's lead code has no victim and takes the `UNKNOWN` gender's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Code(CrimeCode),
    ByVictimGender([CrimeCode; 3]),
}

impl Target {
    /// The code for a crime whose victim has the gender of index `gender` in `Gender::ALL`.
    pub fn code_for(self, gender: usize) -> CrimeCode {
        match self {
            Target::Code(c) => c,
            Target::ByVictimGender(codes) => codes[gender.min(2)],
        }
    }

    /// The distinct codes it can give, in order.
    pub fn codes(self) -> Vec<CrimeCode> {
        match self {
            Target::Code(c) => vec![c],
            Target::ByVictimGender(codes) => {
                let mut v: Vec<CrimeCode> = codes.to_vec();
                v.sort();
                v.dedup();
                v
            }
        }
    }

    /// `9691`, or `by victim gender: FEMALE 9691, MALE 9695, UNKNOWN 9691`.
    pub fn describe(self) -> String {
        match self {
            Target::Code(c) => c.to_string(),
            Target::ByVictimGender(codes) => format!(
                "by victim gender: FEMALE {}, MALE {}, UNKNOWN {}",
                codes[0], codes[1], codes[2]
            ),
        }
    }
}

/// One version of the classification.
#[derive(Clone, Debug)]
pub struct Version {
    name: String,
    effective: Option<Date>,
    note: Option<String>,
    codes: BTreeMap<CrimeCode, String>,
    groups: Vec<Group>,
    /// For each code, the indexes of the groups holding it.
    groups_of: BTreeMap<CrimeCode, Vec<usize>>,
    /// From the previous version's codes into this one's.
    map: BTreeMap<CrimeCode, Target>,
    /// From the codes this version adds back into the previous version's.
    back: BTreeMap<CrimeCode, Target>,
}

impl Version {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The date it took effect (absent only in a file of one version that states none).
    pub fn effective(&self) -> Option<Date> {
        self.effective
    }

    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    pub fn contains(&self, code: CrimeCode) -> bool {
        self.codes.contains_key(&code)
    }

    /// Every code with its text, in code order.
    pub fn codes(&self) -> impl Iterator<Item = (CrimeCode, &str)> {
        self.codes.iter().map(|(c, t)| (*c, t.as_str()))
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The mapping from the previous version into this one, by code.
    pub fn map(&self) -> impl Iterator<Item = (CrimeCode, Target)> + '_ {
        self.map.iter().map(|(c, t)| (*c, *t))
    }

    /// The mapping of the codes this version adds back into the previous version, by code.
    pub fn back(&self) -> impl Iterator<Item = (CrimeCode, Target)> + '_ {
        self.back.iter().map(|(c, t)| (*c, *t))
    }
}

#[derive(Clone, Debug)]
pub struct Catalogue {
    /// Ordered by the date each took effect.
    versions: Arc<Vec<Version>>,
    /// The version whose codes and groups the catalogue shows: the latest, or under a
    /// classification the version asked for.
    current: usize,
    /// Under a classification: each code of any version whose code in `current` differs, per
    /// victim gender (`Gender::ALL` order).
    mapping: Option<Arc<BTreeMap<CrimeCode, [CrimeCode; 3]>>>,
    /// SHA-256 of the file's text, lowercase hex: names the exact content a publication used.
    content_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalogue is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// A rule of the file broken at a place in it: the line, the field and what is wrong.
    #[error("catalogue line {line}, {field}: {problem}")]
    At {
        line: usize,
        field: String,
        problem: String,
    },
}

/// A classification a query named that the catalogue does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown classification {shown:?}: the classifications are {}", .known.join(", "), shown = crate::echo(.given))]
pub struct UnknownClassification {
    pub given: String,
    /// `recorded` and the versions, oldest first.
    pub known: Vec<String>,
}

type S = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: S,
    effective: Option<S>,
    note: Option<String>,
    #[serde(default, rename = "code")]
    codes: Vec<CodeEntry>,
    #[serde(default, rename = "group")]
    groups: Vec<GroupEntry>,
    #[serde(default)]
    map: Vec<MapEntry>,
    #[serde(default)]
    back: Vec<MapEntry>,
    #[serde(default, rename = "versions")]
    versions: Vec<VersionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionEntry {
    name: S,
    effective: S,
    note: Option<String>,
    /// Start from this version's codes and groups (less `drop_codes`) instead of listing them.
    base: Option<S>,
    #[serde(default)]
    drop_codes: Vec<S>,
    #[serde(default, rename = "code")]
    codes: Vec<CodeEntry>,
    #[serde(default, rename = "group")]
    groups: Vec<GroupEntry>,
    #[serde(default)]
    map: Vec<MapEntry>,
    #[serde(default)]
    back: Vec<MapEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeEntry {
    code: S,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    name: S,
    codes: Vec<S>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapEntry {
    from: S,
    to: Option<S>,
    /// `victim_gender`: the target depends on the crime's victim gender.
    by: Option<S>,
    female: Option<S>,
    male: Option<S>,
    unknown: Option<S>,
}

/// Line numbers (1-based) of byte offsets in a text.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn of(&self, s: &S) -> usize {
        let at = s.span().start.min(self.0.len());
        self.0.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&self, s: &S, field: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::At {
            line: self.of(s),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A version as read, before the mappings between versions are checked.
struct Raw {
    version: Version,
    /// Where its name is, for errors about the version as a whole.
    name: S,
    /// True for the file's top-level version, false for a `[[versions]]` table.
    top: bool,
    map: Vec<MapEntry>,
    back: Vec<MapEntry>,
}

fn code_of(lines: &Lines, s: &S, field: &str) -> Result<CrimeCode, Error> {
    CrimeCode::parse(s.get_ref()).ok_or_else(|| {
        lines.err(
            s,
            field,
            format!(
                "code {:?}: a crime code has exactly four digits",
                s.get_ref()
            ),
        )
    })
}

fn read_codes(
    lines: &Lines,
    entries: Vec<CodeEntry>,
    codes: &mut BTreeMap<CrimeCode, String>,
) -> Result<(), Error> {
    for entry in entries {
        let code = code_of(lines, &entry.code, "code.code")?;
        if codes.insert(code, entry.text).is_some() {
            return Err(lines.err(
                &entry.code,
                "code.code",
                format!("code {code} is listed twice"),
            ));
        }
    }
    Ok(())
}

fn read_groups(
    lines: &Lines,
    entries: Vec<GroupEntry>,
    codes: &BTreeMap<CrimeCode, String>,
    groups: &mut Vec<Group>,
) -> Result<(), Error> {
    for entry in entries {
        if groups.iter().any(|g| &g.name == entry.name.get_ref()) {
            return Err(lines.err(
                &entry.name,
                "group.name",
                format!("group {:?} is listed twice", entry.name.get_ref()),
            ));
        }
        let mut members = Vec::new();
        for text in &entry.codes {
            let code = CrimeCode::parse(text.get_ref())
                .filter(|c| codes.contains_key(c))
                .ok_or_else(|| {
                    lines.err(
                        text,
                        "group.codes",
                        format!(
                            "group {:?} names code {:?}, which the catalogue does not list",
                            entry.name.get_ref(),
                            text.get_ref()
                        ),
                    )
                })?;
            if !members.contains(&code) {
                members.push(code);
            }
        }
        groups.push(Group {
            name: entry.name.into_inner(),
            codes: members,
            note: entry.note,
        });
    }
    Ok(())
}

fn index_groups(groups: &[Group]) -> BTreeMap<CrimeCode, Vec<usize>> {
    let mut groups_of: BTreeMap<CrimeCode, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        for &code in &g.codes {
            groups_of.entry(code).or_default().push(i);
        }
    }
    groups_of
}

fn effective_of(lines: &Lines, s: &S, field: &str) -> Result<Date, Error> {
    Date::parse(s.get_ref()).ok_or_else(|| {
        lines.err(
            s,
            field,
            format!("{:?} is not a date YYYY-MM-DD that exists", s.get_ref()),
        )
    })
}

/// Reads one mapping entry of `version` (from a code of `from_codes` to codes of `to_codes`).
fn read_target(
    lines: &Lines,
    entry: &MapEntry,
    field: &str,
    to_codes: &BTreeMap<CrimeCode, String>,
    to_version: &str,
) -> Result<Target, Error> {
    let target = |s: &S, name: &str| -> Result<CrimeCode, Error> {
        let f = format!("{field}.{name}");
        let code = code_of(lines, s, &f)?;
        if !to_codes.contains_key(&code) {
            return Err(lines.err(
                s,
                f,
                format!("code {code} is not a code of version {to_version:?}"),
            ));
        }
        Ok(code)
    };
    match (&entry.to, &entry.by) {
        (Some(to), None) => {
            if let Some(s) = entry
                .female
                .as_ref()
                .or(entry.male.as_ref())
                .or(entry.unknown.as_ref())
            {
                return Err(lines.err(
                    s,
                    field.to_string(),
                    "female, male and unknown go with by = \"victim_gender\", not with to",
                ));
            }
            Ok(Target::Code(target(to, "to")?))
        }
        (None, Some(by)) => {
            if by.get_ref() != "victim_gender" {
                return Err(lines.err(
                    by,
                    format!("{field}.by"),
                    format!(
                        "{:?} is not a rule: a split is by \"victim_gender\" (the field every crime carries)",
                        by.get_ref()
                    ),
                ));
            }
            let mut codes = Vec::with_capacity(3);
            for (name, s) in [
                ("female", &entry.female),
                ("male", &entry.male),
                ("unknown", &entry.unknown),
            ] {
                let Some(s) = s else {
                    return Err(lines.err(
                        by,
                        format!("{field}.{name}"),
                        "a split by victim_gender names the code for each of female, male and unknown",
                    ));
                };
                codes.push(target(s, name)?);
            }
            Ok(Target::ByVictimGender([codes[0], codes[1], codes[2]]))
        }
        (Some(to), Some(_)) => Err(lines.err(
            to,
            field.to_string(),
            "either to (one code) or by = \"victim_gender\" (a split), not both",
        )),
        (None, None) => Err(lines.err(
            &entry.from,
            field.to_string(),
            "a mapping needs to (one code) or by = \"victim_gender\" with female, male and unknown",
        )),
    }
}

impl Catalogue {
    /// Parses a catalogue file's text and checks every rule of the format (docs/contract.md,
    /// "Classification history"); an error names the line and the field.
    pub fn from_toml(text: &str) -> Result<Catalogue, Error> {
        let file: File = toml::from_str(text)?;
        let lines = Lines(text);
        let mut raws: Vec<Raw> = Vec::new();
        let mut codes = BTreeMap::new();
        read_codes(&lines, file.codes, &mut codes)?;
        let mut groups = Vec::new();
        read_groups(&lines, file.groups, &codes, &mut groups)?;
        let effective = match &file.effective {
            Some(s) => Some(effective_of(&lines, s, "effective")?),
            None => None,
        };
        if effective.is_none() && !file.versions.is_empty() {
            return Err(lines.err(
                &file.version,
                "effective",
                "a catalogue of several versions gives each the date it took effect: add effective = \"YYYY-MM-DD\" beside version",
            ));
        }
        raws.push(Raw {
            version: Version {
                name: file.version.get_ref().clone(),
                effective,
                note: file.note,
                groups_of: index_groups(&groups),
                codes,
                groups,
                map: BTreeMap::new(),
                back: BTreeMap::new(),
            },
            name: file.version,
            top: true,
            map: file.map,
            back: file.back,
        });
        for entry in file.versions {
            let field = "versions.name";
            if entry.name.get_ref().is_empty() || entry.name.get_ref() == RECORDED {
                return Err(lines.err(
                    &entry.name,
                    field,
                    format!(
                        "{:?} cannot name a version (empty, or the name of the recorded classification)",
                        entry.name.get_ref()
                    ),
                ));
            }
            if raws.iter().any(|r| r.version.name == *entry.name.get_ref()) {
                return Err(lines.err(
                    &entry.name,
                    field,
                    format!("version {:?} is listed twice", entry.name.get_ref()),
                ));
            }
            let effective = effective_of(&lines, &entry.effective, "versions.effective")?;
            let (mut codes, mut groups) = match &entry.base {
                None => (BTreeMap::new(), Vec::new()),
                Some(base) => {
                    let Some(b) = raws.iter().find(|r| r.version.name == *base.get_ref()) else {
                        return Err(lines.err(
                            base,
                            "versions.base",
                            format!(
                                "{:?} is not a version listed before this one",
                                base.get_ref()
                            ),
                        ));
                    };
                    (b.version.codes.clone(), b.version.groups.clone())
                }
            };
            if entry.base.is_none() && !entry.drop_codes.is_empty() {
                return Err(lines.err(
                    &entry.drop_codes[0],
                    "versions.drop_codes",
                    "drop_codes goes with base (the version whose codes it starts from)",
                ));
            }
            for s in &entry.drop_codes {
                let code = code_of(&lines, s, "versions.drop_codes")?;
                if codes.remove(&code).is_none() {
                    return Err(lines.err(
                        s,
                        "versions.drop_codes",
                        format!("code {code} is not a code of the base version"),
                    ));
                }
            }
            for g in &mut groups {
                g.codes.retain(|c| codes.contains_key(c));
            }
            let mut added = BTreeMap::new();
            read_codes(&lines, entry.codes, &mut added)?;
            for (code, text) in added {
                // A code listed again replaces the base's text.
                codes.insert(code, text);
            }
            let mut own = Vec::new();
            read_groups(&lines, entry.groups, &codes, &mut own)?;
            for g in own {
                // A group listed again replaces the base's group of that name.
                match groups.iter_mut().find(|b| b.name == g.name) {
                    Some(b) => *b = g,
                    None => groups.push(g),
                }
            }
            raws.push(Raw {
                version: Version {
                    name: entry.name.get_ref().clone(),
                    effective: Some(effective),
                    note: entry.note,
                    groups_of: index_groups(&groups),
                    codes,
                    groups,
                    map: BTreeMap::new(),
                    back: BTreeMap::new(),
                },
                name: entry.name,
                top: false,
                map: entry.map,
                back: entry.back,
            });
        }
        if raws[0].version.name.is_empty() || raws[0].version.name == RECORDED {
            return Err(lines.err(
                &raws[0].name,
                "version",
                format!(
                    "{:?} cannot name a version (empty, or the name of the recorded classification)",
                    raws[0].version.name
                ),
            ));
        }
        raws.sort_by_key(|r| r.version.effective);
        for pair in raws.windows(2) {
            if pair[0].version.effective == pair[1].version.effective {
                return Err(lines.err(
                    &pair[1].name,
                    if pair[1].top {
                        "effective"
                    } else {
                        "versions.effective"
                    },
                    format!(
                        "versions {:?} and {:?} take effect on the same date; each version has its own date",
                        pair[0].version.name, pair[1].version.name
                    ),
                ));
            }
        }
        if let Some(entry) = raws[0].map.first().or(raws[0].back.first()) {
            return Err(lines.err(
                &entry.from,
                "map",
                format!(
                    "version {:?} is the earliest: it has no earlier version to map from",
                    raws[0].version.name
                ),
            ));
        }
        for i in 1..raws.len() {
            let (before, after) = raws.split_at_mut(i);
            let (prev, this) = (&before[i - 1].version, &mut after[0]);
            let name = this.version.name.clone();
            for entry in &this.map {
                let from = code_of(&lines, &entry.from, "map.from")?;
                if !prev.codes.contains_key(&from) {
                    return Err(lines.err(
                        &entry.from,
                        "map.from",
                        format!(
                            "code {from} is not a code of version {:?}, the one before {name:?}",
                            prev.name
                        ),
                    ));
                }
                let target = read_target(&lines, entry, "map", &this.version.codes, &name)?;
                if this.version.map.insert(from, target).is_some() {
                    return Err(lines.err(
                        &entry.from,
                        "map.from",
                        format!("code {from} is mapped twice"),
                    ));
                }
            }
            for entry in &this.map {
                let from = code_of(&lines, &entry.from, "map.from")?;
                for to in this.version.map[&from].codes() {
                    if to != from && this.version.map.contains_key(&to) {
                        return Err(lines.err(
                            &entry.from,
                            "map",
                            format!(
                                "code {from} maps to {to}, which is itself mapped away: map it to {to}'s target"
                            ),
                        ));
                    }
                }
            }
            for entry in &this.back {
                let from = code_of(&lines, &entry.from, "back.from")?;
                if !this.version.codes.contains_key(&from) || prev.codes.contains_key(&from) {
                    return Err(lines.err(
                        &entry.from,
                        "back.from",
                        format!(
                            "code {from} is not a code that version {name:?} adds to {:?} (back maps only those)",
                            prev.name
                        ),
                    ));
                }
                let target = read_target(&lines, entry, "back", &prev.codes, &prev.name)?;
                if this.version.back.insert(from, target).is_some() {
                    return Err(lines.err(
                        &entry.from,
                        "back.from",
                        format!("code {from} is mapped back twice"),
                    ));
                }
            }
            let gone: Vec<CrimeCode> = prev
                .codes
                .keys()
                .filter(|c| {
                    !this.version.codes.contains_key(c) && !this.version.map.contains_key(c)
                })
                .copied()
                .collect();
            if let Some(code) = gone.first() {
                return Err(lines.err(
                    &this.name,
                    "map",
                    format!(
                        "version {name:?} drops code {code} of {:?} without mapping it: add a [[map]] entry from {code}",
                        prev.name
                    ),
                ));
            }
            let new: Vec<CrimeCode> = this
                .version
                .codes
                .keys()
                .filter(|c| !prev.codes.contains_key(c) && !this.version.back.contains_key(c))
                .copied()
                .collect();
            if let Some(code) = new.first() {
                return Err(lines.err(
                    &this.name,
                    "back",
                    format!(
                        "version {name:?} adds code {code}, which {:?} does not list, without mapping it back: add a [[back]] entry from {code}",
                        prev.name
                    ),
                ));
            }
        }
        let digest = sha2::Sha256::digest(text.as_bytes());
        let content_sha256 = digest.iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        let versions: Vec<Version> = raws.into_iter().map(|r| r.version).collect();
        Ok(Catalogue {
            current: versions.len() - 1,
            versions: Arc::new(versions),
            mapping: None,
            content_sha256,
        })
    }

    /// The catalogue shipped with gryning.
    pub fn default_catalogue() -> Catalogue {
        Catalogue::from_toml(DEFAULT_TOML).expect("the shipped catalogue is valid")
    }

    fn shown(&self) -> &Version {
        &self.versions[self.current]
    }

    /// The name of the version shown: the one in force, or under a classification its version.
    pub fn version(&self) -> &str {
        &self.shown().name
    }

    /// SHA-256 of the catalogue file's text, as 64 lowercase hex digits.
    pub fn content_sha256(&self) -> &str {
        &self.content_sha256
    }

    /// True for a code of any version: a crime may be recorded under an earlier version's code.
    pub fn contains(&self, code: CrimeCode) -> bool {
        self.versions.iter().any(|v| v.codes.contains_key(&code))
    }

    /// The code's text in the version shown, or else in the latest version that lists it.
    pub fn text(&self, code: CrimeCode) -> Option<&str> {
        self.shown()
            .codes
            .get(&code)
            .or_else(|| self.versions.iter().rev().find_map(|v| v.codes.get(&code)))
            .map(String::as_str)
    }

    /// Every code of the version shown with its text, in code order.
    pub fn codes(&self) -> impl Iterator<Item = (CrimeCode, &str)> {
        self.shown().codes()
    }

    pub fn groups(&self) -> &[Group] {
        &self.shown().groups
    }

    /// Indexes into [`Catalogue::groups`] of the groups holding `code` (groups may overlap).
    pub fn groups_of(&self, code: CrimeCode) -> &[usize] {
        self.shown()
            .groups_of
            .get(&code)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups().iter().find(|g| g.name == name)
    }

    /// Every version, oldest first (the last is the one in force).
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    pub fn version_named(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// `recorded` and every version's name, oldest first: what [`Catalogue::under`] accepts.
    pub fn classifications(&self) -> Vec<String> {
        std::iter::once(RECORDED.to_string())
            .chain(self.versions.iter().map(|v| v.name.clone()))
            .collect()
    }

    /// The version a classified catalogue maps into; `None` for codes as recorded.
    pub fn classification(&self) -> Option<&str> {
        self.mapping.as_ref().map(|_| self.version())
    }

    /// The catalogue under a classification: `recorded` (codes as recorded and reclassified,
    /// the groups of the version in force) or a version's name (every code translated into
    /// that version's codes, and that version's groups).
    pub fn under(&self, classification: &str) -> Result<Catalogue, UnknownClassification> {
        if classification == RECORDED {
            return Ok(Catalogue {
                current: self.versions.len() - 1,
                mapping: None,
                ..self.clone()
            });
        }
        let Some(target) = self.versions.iter().position(|v| v.name == classification) else {
            return Err(UnknownClassification {
                given: classification.to_string(),
                known: self.classifications(),
            });
        };
        let every: BTreeSet<CrimeCode> = self
            .versions
            .iter()
            .flat_map(|v| v.codes.keys().copied())
            .collect();
        let mut mapping = BTreeMap::new();
        for code in every {
            let mapped: [CrimeCode; 3] = std::array::from_fn(|g| self.translate(code, g, target));
            if mapped.iter().any(|&c| c != code) {
                mapping.insert(code, mapped);
            }
        }
        Ok(Catalogue {
            current: target,
            mapping: Some(Arc::new(mapping)),
            ..self.clone()
        })
    }

    /// A code of any version, for a victim of gender index `gender`, in version `target`'s
    /// codes: from the nearest version listing it (the target itself, else the nearest earlier,
    /// else the nearest later), one version at a time.
    fn translate(&self, code: CrimeCode, gender: usize, target: usize) -> CrimeCode {
        let has = |i: usize, c: CrimeCode| self.versions[i].codes.contains_key(&c);
        let home = if has(target, code) {
            target
        } else if let Some(i) = (0..target).rev().find(|&i| has(i, code)) {
            i
        } else if let Some(i) = (target + 1..self.versions.len()).find(|&i| has(i, code)) {
            i
        } else {
            return code;
        };
        let mut c = code;
        if home <= target {
            // Forward: each later version's map, up to the target's own (a code the target
            // still lists but maps is read as its target there).
            for step in home.max(1)..=target {
                if step == home && !has(step - 1, c) {
                    continue;
                }
                if let Some(t) = self.versions[step].map.get(&c) {
                    c = t.code_for(gender);
                }
            }
        } else {
            for step in (target + 1..=home).rev() {
                if !has(step - 1, c) {
                    if let Some(t) = self.versions[step].back.get(&c) {
                        c = t.code_for(gender);
                    }
                }
            }
        }
        c
    }

    /// A crime's code under the classification (itself when codes are taken as recorded), for a
    /// victim of `gender`.
    pub fn classify(&self, code: CrimeCode, gender: Gender) -> CrimeCode {
        let index = Gender::ALL.iter().position(|&g| g == gender).unwrap_or(2);
        self.classify_index(code, index)
    }

    /// [`Catalogue::classify`] with the gender as its index in `Gender::ALL`.
    pub fn classify_index(&self, code: CrimeCode, gender: usize) -> CrimeCode {
        match &self.mapping {
            None => code,
            Some(m) => m.get(&code).map_or(code, |codes| codes[gender.min(2)]),
        }
    }

    /// A case's lead code under the classification: a lead code has no victim, so a split takes
    /// its `UNKNOWN` gender's code.
    pub fn classify_lead(&self, code: CrimeCode) -> CrimeCode {
        self.classify_index(code, 2)
    }

    /// What changes from version `from` to version `to`: codes added and removed, codes mapped
    /// (along the versions between), and groups whose codes differ.
    pub fn diff(&self, from: &str, to: &str) -> Result<Diff, UnknownClassification> {
        let unknown = |given: &str| UnknownClassification {
            given: given.to_string(),
            known: self.versions.iter().map(|v| v.name.clone()).collect(),
        };
        let a = self.version_named(from).ok_or_else(|| unknown(from))?;
        let b = self.version_named(to).ok_or_else(|| unknown(to))?;
        let into_b = self.under(to).expect("a version of the catalogue");
        let added = b
            .codes
            .keys()
            .filter(|c| !a.codes.contains_key(c))
            .copied()
            .collect();
        let removed = a
            .codes
            .keys()
            .filter(|c| !b.codes.contains_key(c))
            .copied()
            .collect();
        let mut mapped = Vec::new();
        for &code in a.codes.keys() {
            let codes: [CrimeCode; 3] = std::array::from_fn(|g| into_b.classify_index(code, g));
            if codes.iter().any(|&c| c != code) {
                mapped.push((
                    code,
                    if codes[0] == codes[1] && codes[1] == codes[2] {
                        Target::Code(codes[0])
                    } else {
                        Target::ByVictimGender(codes)
                    },
                ));
            }
        }
        let mut groups = Vec::new();
        let names: BTreeSet<&str> = a
            .groups
            .iter()
            .chain(&b.groups)
            .map(|g| g.name.as_str())
            .collect();
        for name in names {
            let of = |v: &Version| -> Option<BTreeSet<CrimeCode>> {
                v.groups
                    .iter()
                    .find(|g| g.name == name)
                    .map(|g| g.codes.iter().copied().collect())
            };
            let (ga, gb) = (of(a), of(b));
            if ga != gb {
                let (ga, gb) = (ga.unwrap_or_default(), gb.unwrap_or_default());
                groups.push(GroupChange {
                    name: name.to_string(),
                    in_from: of(a).is_some(),
                    in_to: of(b).is_some(),
                    added: gb.difference(&ga).copied().collect(),
                    removed: ga.difference(&gb).copied().collect(),
                });
            }
        }
        Ok(Diff {
            from: a.name.clone(),
            to: b.name.clone(),
            added,
            removed,
            mapped,
            groups,
        })
    }
}

/// [`Catalogue::diff`]: what a table under one version shows differently under another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    pub from: String,
    pub to: String,
    /// Codes `to` lists and `from` does not.
    pub added: Vec<CrimeCode>,
    /// Codes `from` lists and `to` does not.
    pub removed: Vec<CrimeCode>,
    /// Codes of `from` that a crime under `to`'s classification is counted under another code.
    pub mapped: Vec<(CrimeCode, Target)>,
    pub groups: Vec<GroupChange>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupChange {
    pub name: String,
    /// Whether each version has a group of this name.
    pub in_from: bool,
    pub in_to: bool,
    pub added: Vec<CrimeCode>,
    pub removed: Vec<CrimeCode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalogue_holds_the_contract_codes_and_groups() {
        let cat = Catalogue::default_catalogue();
        for code in [
            "9365", "9381", "9382", "4012", "0418", "0419", "0609", "0610", "0611", "4024",
        ] {
            assert!(cat.contains(CrimeCode::parse(code).unwrap()), "{code}");
        }
        let close: Vec<String> = cat
            .group("Brott i nära relation")
            .unwrap()
            .codes
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(close, ["9365", "9381", "9382", "4012"]);
        for group in ["Brott mot barn", "Sexualbrott", "Sexualbrott mot barn"] {
            assert!(cat.group(group).is_some(), "{group}");
        }
        assert_eq!(
            cat.text(CrimeCode::parse("4024").unwrap()),
            Some("Köp av sexuell tjänst")
        );
    }

    #[test]
    fn rejects_groups_naming_unlisted_codes() {
        let err = Catalogue::from_toml("version = \"t\"\n[[code]]\ncode = \"0001\"\ntext = \"a\"\n[[group]]\nname = \"g\"\ncodes = [\"0002\"]\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "catalogue line 7, group.codes: group \"g\" names code \"0002\", which the catalogue does not list"
        );
        let err = Catalogue::from_toml("version = \"t\"\n[[code]]\ncode = \"12\"\ntext = \"a\"\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "catalogue line 3, code.code: code \"12\": a crime code has exactly four digits"
        );
    }

    #[test]
    fn a_file_without_versions_is_one_version() {
        let cat =
            Catalogue::from_toml("version = \"t\"\n[[code]]\ncode = \"0001\"\ntext = \"a\"\n")
                .unwrap();
        assert_eq!(cat.versions().len(), 1);
        assert_eq!(cat.version(), "t");
        assert_eq!(cat.versions()[0].effective(), None);
        assert_eq!(cat.classifications(), ["recorded", "t"]);
        let under = cat.under("t").unwrap();
        assert_eq!(under.classification(), Some("t"));
        let code = CrimeCode::parse("0001").unwrap();
        assert_eq!(under.classify(code, Gender::Male), code);
        assert_eq!(cat.under("recorded").unwrap().classification(), None);
    }

    #[test]
    fn the_shipped_catalogue_has_two_versions_and_maps_between_them() {
        let cat = Catalogue::default_catalogue();
        let names: Vec<&str> = cat.versions().iter().map(|v| v.name()).collect();
        assert_eq!(names, ["2019.1", "2020.1"]);
        assert_eq!(cat.version(), "2020.1");
        assert_eq!(
            cat.versions()[0].effective(),
            Some(Date::parse("2019-01-01").unwrap())
        );
        let c = |s: &str| CrimeCode::parse(s).unwrap();
        let (old, new) = (cat.under("2019.1").unwrap(), cat.under("2020.1").unwrap());
        // 2020.1 reads 9605 (still listed) by the victim's gender; a lead code as UNKNOWN.
        assert_eq!(new.classify(c("9605"), Gender::Male), c("9695"));
        assert_eq!(new.classify(c("9605"), Gender::Female), c("9691"));
        assert_eq!(new.classify_lead(c("9606")), c("9691"));
        assert_eq!(new.classify(c("0457"), Gender::Male), c("9444"));
        assert_eq!(new.classify(c("9381"), Gender::Female), c("9381"));
        // 2019.1 takes the codes 2020.1 added back.
        assert_eq!(old.classify(c("9381"), Gender::Female), c("9365"));
        assert_eq!(old.classify(c("9382"), Gender::Unknown), c("9365"));
        assert_eq!(old.classify(c("9697"), Gender::Male), c("9606"));
        assert_eq!(old.classify(c("9697"), Gender::Female), c("9605"));
        assert_eq!(old.classify(c("9605"), Gender::Male), c("9605"));
        assert_eq!(old.classify(c("4024"), Gender::Male), c("4024"));
        // Groups follow the version.
        let close = |cat: &Catalogue| -> Vec<String> {
            cat.group("Brott i nära relation")
                .unwrap()
                .codes
                .iter()
                .map(|c| c.to_string())
                .collect()
        };
        assert_eq!(close(&old), ["9365", "4012"]);
        assert_eq!(close(&new), ["9365", "9381", "9382", "4012"]);
        assert!(!old.contains(c("9999")) && old.contains(c("9381")));
        let d = cat.diff("2019.1", "2020.1").unwrap();
        assert_eq!(d.added.len(), 26);
        assert!(d.removed.is_empty());
        assert_eq!(d.mapped.len(), 6);
        assert!(d
            .groups
            .iter()
            .any(|g| g.name == "Brott i nära relation" && g.added == [c("9381"), c("9382")]));
        let back = cat.diff("2020.1", "2019.1").unwrap();
        assert_eq!(back.removed.len(), 26);
        assert_eq!(back.mapped.len(), 26);
        let e = cat.under("2018.1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown classification \"2018.1\": the classifications are recorded, 2019.1, 2020.1"
        );
    }

    const TWO: &str = r#"version = "b"
effective = "2020-01-01"
[[code]]
code = "0002"
text = "two"
[[code]]
code = "0003"
text = "three"
[[map]]
from = "0001"
by = "victim_gender"
female = "0002"
male = "0003"
unknown = "0002"
[[back]]
from = "0002"
to = "0001"
[[back]]
from = "0003"
to = "0001"
[[versions]]
name = "a"
effective = "2019-01-01"
[[versions.code]]
code = "0001"
text = "one"
"#;

    #[test]
    fn versions_map_both_ways_and_every_rule_names_its_line() {
        let cat = Catalogue::from_toml(TWO).unwrap();
        let c = |s: &str| CrimeCode::parse(s).unwrap();
        assert_eq!(
            cat.under("b").unwrap().classify(c("0001"), Gender::Male),
            c("0003")
        );
        assert_eq!(
            cat.under("a").unwrap().classify(c("0003"), Gender::Male),
            c("0001")
        );
        let broken = |from: &str, to: &str| {
            Catalogue::from_toml(&TWO.replacen(from, to, 1))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            broken("male = \"0003\"", "male = \"0009\""),
            "catalogue line 13, map.male: code 0009 is not a code of version \"b\""
        );
        assert_eq!(
            broken("by = \"victim_gender\"", "by = \"age\""),
            "catalogue line 11, map.by: \"age\" is not a rule: a split is by \"victim_gender\" (the field every crime carries)"
        );
        assert_eq!(
            broken("from = \"0001\"", "from = \"0004\""),
            "catalogue line 10, map.from: code 0004 is not a code of version \"a\", the one before \"b\""
        );
        assert_eq!(
            broken("[[back]]\nfrom = \"0003\"\nto = \"0001\"\n", ""),
            "catalogue line 1, back: version \"b\" adds code 0003, which \"a\" does not list, without mapping it back: add a [[back]] entry from 0003"
        );
        assert_eq!(
            broken("effective = \"2019-01-01\"", "effective = \"2019-02-30\""),
            "catalogue line 23, versions.effective: \"2019-02-30\" is not a date YYYY-MM-DD that exists"
        );
        assert_eq!(
            broken("effective = \"2019-01-01\"", "effective = \"2020-01-01\""),
            "catalogue line 22, versions.effective: versions \"b\" and \"a\" take effect on the same date; each version has its own date"
        );
        assert_eq!(
            broken("effective = \"2020-01-01\"\n", ""),
            "catalogue line 1, effective: a catalogue of several versions gives each the date it took effect: add effective = \"YYYY-MM-DD\" beside version"
        );
        assert_eq!(
            broken("name = \"a\"", "name = \"recorded\""),
            "catalogue line 22, versions.name: \"recorded\" cannot name a version (empty, or the name of the recorded classification)"
        );
        // A code dropped without a mapping.
        let dropped = TWO.replace(
            "[[map]]\nfrom = \"0001\"\nby = \"victim_gender\"\nfemale = \"0002\"\nmale = \"0003\"\nunknown = \"0002\"\n",
            "",
        );
        assert_eq!(
            Catalogue::from_toml(&dropped).unwrap_err().to_string(),
            "catalogue line 1, map: version \"b\" drops code 0001 of \"a\" without mapping it: add a [[map]] entry from 0001"
        );
    }
}
