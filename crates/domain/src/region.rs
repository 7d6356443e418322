//! The seven police regions of Sweden and how a table query names one. `CaseOpened` carries the
//! region as free text (`police_region`); tables are asked for a region by its full name
//! (`Polisregion Stockholm`) or its short one (`Stockholm`), in any letter case.

/// The police regions, in the police authority's order (north to south).
pub const POLICE_REGIONS: [&str; 7] = [
    "Polisregion Nord",
    "Polisregion Mitt",
    "Polisregion Bergslagen",
    "Polisregion Stockholm",
    "Polisregion Öst",
    "Polisregion Väst",
    "Polisregion Syd",
];

/// The prefix of every police region's full name.
pub const REGION_PREFIX: &str = "Polisregion ";

/// A region name that is neither a police region nor a region of the stored events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "field region: unknown region {shown:?}; the regions are {known} (the full name, or without \"Polisregion \", in any case); leave region empty for all regions together",
    shown = crate::echo(.given),
    known = .known.join(", ")
)]
pub struct UnknownRegion {
    pub given: String,
    /// The police regions, then any other region names found in the stored events.
    pub known: Vec<String>,
}

fn same(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Whether `given` names `region`: its full name, or without the `Polisregion ` prefix, in
/// any letter case.
pub fn names_region(given: &str, region: &str) -> bool {
    let given = given.trim();
    same(given, region)
        || region
            .strip_prefix(REGION_PREFIX)
            .is_some_and(|short| same(given, short))
}

/// The region `given` names among the police regions and the region names `seen` in stored
/// events (a stored name wins when it matches exactly).
pub fn resolve_region<'a>(
    given: &str,
    seen: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<String, UnknownRegion> {
    if let Some(exact) = seen.clone().into_iter().find(|s| *s == given) {
        return Ok(exact.to_string());
    }
    let candidates = POLICE_REGIONS.iter().copied().chain(
        seen.clone()
            .into_iter()
            .filter(|s| !POLICE_REGIONS.contains(s)),
    );
    for candidate in candidates {
        if names_region(given, candidate) {
            return Ok(candidate.to_string());
        }
    }
    let mut known: Vec<String> = POLICE_REGIONS.iter().map(|s| s.to_string()).collect();
    known.extend(
        seen.into_iter()
            .filter(|s| !POLICE_REGIONS.contains(s))
            .map(crate::echo),
    );
    Err(UnknownRegion {
        given: given.to_string(),
        known,
    })
}

/// A region's name without the `Polisregion ` prefix, for narrow columns.
pub fn short_name(region: &str) -> &str {
    region.strip_prefix(REGION_PREFIX).unwrap_or(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_short_names_in_any_case_resolve() {
        for given in [
            "Polisregion Stockholm",
            "stockholm",
            "STOCKHOLM",
            " Stockholm ",
        ] {
            assert_eq!(
                resolve_region(given, []).unwrap(),
                "Polisregion Stockholm",
                "{given}"
            );
        }
        assert_eq!(resolve_region("öst", []).unwrap(), "Polisregion Öst");
        assert_eq!(
            resolve_region("Gotland", ["Gotland"]).unwrap(),
            "Gotland",
            "a region of the stored events is known too"
        );
    }

    #[test]
    fn an_unknown_region_names_the_field_and_lists_the_known_ones() {
        let e = resolve_region("Atlantis", ["Polisregion Stockholm", "Gotland"]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("field region: unknown region \"Atlantis\""),
            "{text}"
        );
        for r in POLICE_REGIONS {
            assert!(text.contains(r), "{text}");
        }
        assert!(text.contains("Gotland"), "{text}");
        assert_eq!(e.known.len(), 8);
    }
}
