//! The published figures the generator reproduces, as the project's own data: a copy of the
//! tables of Länsstyrelsen Stockholm's *Regional lägesrapport 2020* (report 2021:7), with each
//! clearance row mapped to the catalogue code or group it is computed from. It lives in
//! `data/reference.json` and is compiled in, so neither the generator nor the tests read
//! anything outside the crate at run time.

use serde::Deserialize;

/// `data/reference.json`, as shipped.
pub const REFERENCE_JSON: &str = include_str!("../data/reference.json");

/// Every figure of the fixture, typed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub source: String,
    pub region: String,
    /// Tabell 1: case flow by crime-code group.
    pub tabell_1: Vec<GroupFlowRow>,
    /// Tabell 2: case flow by crime code.
    pub tabell_2: Vec<CodeFlowRow>,
    pub kriminalvarden: Kriminalvarden,
    /// Person-clearance rates (personuppklaringsprocent).
    pub clearance: Vec<ClearanceRow>,
    /// Stockholm's 2019 rates against the median of the country, in the report's words.
    pub verdicts: Vec<VerdictRow>,
    /// Points of the report's time series of Stockholm's rates (its figures 2 and 3).
    pub series: Vec<SeriesPoint>,
}

/// How the report judges a rate against the median of the country.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum ReportVerdict {
    #[serde(rename = "above")]
    Above,
    #[serde(rename = "in line")]
    InLine,
    #[serde(rename = "below")]
    Below,
}

impl ReportVerdict {
    /// `above`, `in line`, `below`: the words of the `region-comparison` table.
    pub fn name(self) -> &'static str {
        match self {
            ReportVerdict::Above => "above",
            ReportVerdict::InLine => "in line",
            ReportVerdict::Below => "below",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictRow {
    pub year: i32,
    pub crime_type: String,
    pub victim_gender: VictimGender,
    pub verdict: ReportVerdict,
    /// The report's own wording (Swedish).
    pub report_words: String,
    pub maps_to: MapsTo,
    /// Why a mapping is an assumption, where it is one.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesPoint {
    pub crime_type: String,
    pub year: i32,
    pub percent: f64,
    pub maps_to: MapsTo,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFlowRow {
    pub group: String,
    pub year: i32,
    pub reported: u32,
    pub cases: u32,
    pub referred: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeFlowRow {
    /// Four digits, as in the catalogue.
    pub code: String,
    /// The report's wording, which may differ from the catalogue's text.
    pub text: String,
    pub year: i32,
    pub reported: u32,
    pub cases: u32,
    pub referred: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kriminalvarden {
    pub contract_care_proposed: Vec<YearCount>,
    /// Treatment programmes against intimate-partner violence.
    pub ipv_treatment_programmes: Vec<ProgrammeYear>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearCount {
    pub year: i32,
    pub count: u32,
}

/// `None` where the report gives no figure.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeYear {
    pub year: i32,
    pub started: u32,
    pub completed: Option<u32>,
    /// Started on or before 31 December and not ended on or before it.
    pub continuing_over_year_end: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VictimGender {
    All,
    Female,
    Male,
}

/// What a report crime type is computed from in gryning.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MapsTo {
    /// One crime code, four digits.
    Code(String),
    /// A group of the catalogue in force, by name.
    Group(String),
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearanceRow {
    pub year: i32,
    pub crime_type: String,
    pub victim_gender: VictimGender,
    pub percent: f64,
    /// `None` when the catalogue has no code for the report's crime type; `note` says why.
    pub maps_to: Option<MapsTo>,
    #[serde(default)]
    pub note: Option<String>,
}

/// The shipped fixture, parsed.
pub fn reference() -> Reference {
    serde_json::from_str(REFERENCE_JSON).expect("data/reference.json matches the Reference types")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_parses_and_holds_every_table() {
        let r = reference();
        assert_eq!(r.tabell_1.len(), 8);
        assert_eq!(r.tabell_2.len(), 12);
        assert_eq!(r.clearance.len(), 12);
        let unmapped: Vec<_> = r.clearance.iter().filter(|c| c.maps_to.is_none()).collect();
        assert_eq!(unmapped.len(), 1);
        assert!(unmapped[0].note.is_some(), "an unmapped row says why");
        assert_eq!(r.clearance[8].maps_to, Some(MapsTo::Code("0609".into())));
        // Spot checks against the printed report, so a slip in the fixture cannot hide behind
        // tests that read the same fixture.
        assert_eq!(
            r.tabell_1[0],
            GroupFlowRow {
                group: "Brott i nära relation".into(),
                year: 2019,
                reported: 5192,
                cases: 4247,
                referred: 633
            }
        );
        assert_eq!(
            (
                r.tabell_2[11].code.as_str(),
                r.tabell_2[11].reported,
                r.tabell_2[11].referred
            ),
            ("4024", 327, 178)
        );
        assert_eq!(
            r.kriminalvarden.ipv_treatment_programmes[1].continuing_over_year_end,
            Some(44)
        );
    }

    #[test]
    fn verdicts_and_series_are_the_reports() {
        let r = reference();
        let verdict = |crime: &str, gender: VictimGender| {
            r.verdicts
                .iter()
                .find(|v| v.crime_type.starts_with(crime) && v.victim_gender == gender)
                .unwrap_or_else(|| panic!("no verdict for {crime}"))
                .verdict
        };
        assert_eq!(r.verdicts.len(), 12);
        use ReportVerdict::*;
        use VictimGender::*;
        assert_eq!(verdict("Människohandel", All), Above);
        assert_eq!(verdict("Tvångsäktenskap", All), Above);
        assert_eq!(verdict("Grov kvinnofridskränkning", Female), Below);
        assert_eq!(verdict("Köp av sexuell handling av barn", All), Below);
        for (crime, gender) in [
            ("Misshandel", Female),
            ("Misshandel", Male),
            ("Könsstympning", All),
            ("Kontakt med barn", All),
            ("Våldtäktsbrott", Female),
            ("Våldtäktsbrott", Male),
            ("Koppleri", All),
            ("Köp av sexuell tjänst", All),
        ] {
            assert_eq!(verdict(crime, gender), InLine, "{crime} {gender:?}");
        }
        let point = |crime: &str, year: i32| {
            r.series
                .iter()
                .find(|p| p.crime_type.starts_with(crime) && p.year == year)
                .map(|p| p.percent)
        };
        assert_eq!(point("Köp av sexuell tjänst", 2016), Some(64.0));
        assert_eq!(point("Köp av sexuell handling av barn", 2018), Some(63.0));
        assert_eq!(point("Människohandel", 2017), Some(0.0));
    }
}
