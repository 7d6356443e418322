//! The crime-code catalogue: codes with their Swedish texts and named groups of codes. It is
//! data, not code: classification changes over the years, so the catalogue in force is a TOML
//! file (the default one ships with the binary; `--catalog FILE` replaces it).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::Digest as _;

use serde::Deserialize;

use crate::CrimeCode;

/// The catalogue shipped with gryning.
pub const DEFAULT_TOML: &str = include_str!("../data/catalogue.toml");

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub codes: Vec<CrimeCode>,
    /// Shown with the group: where its definition comes from and what to keep in mind.
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Catalogue {
    version: String,
    /// SHA-256 of the file's text, lowercase hex: names the exact content a publication used.
    content_sha256: String,
    codes: BTreeMap<CrimeCode, String>,
    groups: Vec<Group>,
    /// For each code, the indexes of the groups holding it.
    groups_of: BTreeMap<CrimeCode, Vec<usize>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalogue is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("catalogue code {code:?}: a crime code has exactly four digits")]
    BadCode { code: String },
    #[error("catalogue code {code} is listed twice")]
    DuplicateCode { code: String },
    #[error("catalogue group {group:?} names code {code:?}, which the catalogue does not list")]
    UnknownGroupCode { group: String, code: String },
    #[error("catalogue group {group:?} is listed twice")]
    DuplicateGroup { group: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    #[serde(default, rename = "code")]
    codes: Vec<CodeEntry>,
    #[serde(default, rename = "group")]
    groups: Vec<GroupEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeEntry {
    code: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    name: String,
    codes: Vec<String>,
    note: Option<String>,
}

impl Catalogue {
    /// Parses a catalogue file's text and checks that every group names listed codes.
    pub fn from_toml(text: &str) -> Result<Catalogue, Error> {
        let file: File = toml::from_str(text)?;
        let mut codes = BTreeMap::new();
        for entry in file.codes {
            let code = CrimeCode::parse(&entry.code).ok_or_else(|| Error::BadCode {
                code: entry.code.clone(),
            })?;
            if codes.insert(code, entry.text).is_some() {
                return Err(Error::DuplicateCode { code: entry.code });
            }
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut groups_of: BTreeMap<CrimeCode, Vec<usize>> = BTreeMap::new();
        for entry in file.groups {
            if groups.iter().any(|g| g.name == entry.name) {
                return Err(Error::DuplicateGroup { group: entry.name });
            }
            let mut members = Vec::new();
            for text in &entry.codes {
                let code = CrimeCode::parse(text)
                    .filter(|c| codes.contains_key(c))
                    .ok_or_else(|| Error::UnknownGroupCode {
                        group: entry.name.clone(),
                        code: text.clone(),
                    })?;
                if !members.contains(&code) {
                    members.push(code);
                    groups_of.entry(code).or_default().push(groups.len());
                }
            }
            groups.push(Group {
                name: entry.name,
                codes: members,
                note: entry.note,
            });
        }
        let digest = sha2::Sha256::digest(text.as_bytes());
        let content_sha256 = digest.iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        Ok(Catalogue {
            version: file.version,
            content_sha256,
            codes,
            groups,
            groups_of,
        })
    }

    /// The catalogue shipped with gryning.
    pub fn default_catalogue() -> Catalogue {
        Catalogue::from_toml(DEFAULT_TOML).expect("the shipped catalogue is valid")
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// SHA-256 of the catalogue file's text, as 64 lowercase hex digits.
    pub fn content_sha256(&self) -> &str {
        &self.content_sha256
    }

    pub fn contains(&self, code: CrimeCode) -> bool {
        self.codes.contains_key(&code)
    }

    pub fn text(&self, code: CrimeCode) -> Option<&str> {
        self.codes.get(&code).map(String::as_str)
    }

    /// Every code with its text, in code order.
    pub fn codes(&self) -> impl Iterator<Item = (CrimeCode, &str)> {
        self.codes.iter().map(|(c, t)| (*c, t.as_str()))
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Indexes into [`Catalogue::groups`] of the groups holding `code` (groups may overlap).
    pub fn groups_of(&self, code: CrimeCode) -> &[usize] {
        self.groups_of.get(&code).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
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
            "catalogue group \"g\" names code \"0002\", which the catalogue does not list"
        );
        let err = Catalogue::from_toml("version = \"t\"\n[[code]]\ncode = \"12\"\ntext = \"a\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("exactly four digits"), "{err}");
    }
}
