//! The quotas one copy of the dataset must meet, derived from the published figures
//! ([`crate::reference()`]) and the catalogue's groups: how many crimes, cases and referred cases
//! each crime code gets per year, which clearance rates must come out, and how many contract-care
//! proposals and treatment programmes Kriminalvården records. The code lists that carry each
//! group's volume are this module's data; everything that must match a published figure is
//! computed from the fixture, never typed in twice.

use std::collections::BTreeMap;

use gryning_domain::{Catalogue, CrimeCode, Gender};

use crate::reference::{MapsTo, Reference, ReportVerdict, VictimGender};
use crate::rng::splitmix64;

/// The years of the report; every generated event is dated in one of them.
pub const YEARS: [i32; 2] = [2019, 2020];

pub(crate) const GROUP_CLOSE_RELATION: &str = "Brott i nära relation";
pub(crate) const GROUP_CHILDREN: &str = "Brott mot barn";
pub(crate) const GROUP_SEXUAL: &str = "Sexualbrott";
pub(crate) const GROUP_SEXUAL_CHILDREN: &str = "Sexualbrott mot barn";

/// The Tabell-1 groups overlap, so volume is planned per disjoint category: a code's category
/// is the exact set of Tabell-1 groups holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    CloseRelation,
    /// In "Brott mot barn" but not in "Sexualbrott mot barn".
    ChildrenOnly,
    /// In "Sexualbrott" but not in "Sexualbrott mot barn".
    SexualOnly,
    /// Sexual crimes against children: in "Brott mot barn", "Sexualbrott" and "Sexualbrott mot barn".
    SexualChildren,
}

impl Category {
    fn groups(self) -> &'static [&'static str] {
        match self {
            Category::CloseRelation => &[GROUP_CLOSE_RELATION],
            Category::ChildrenOnly => &[GROUP_CHILDREN],
            Category::SexualOnly => &[GROUP_SEXUAL],
            Category::SexualChildren => &[GROUP_CHILDREN, GROUP_SEXUAL, GROUP_SEXUAL_CHILDREN],
        }
    }

    const ALL: [Category; 4] = [
        Category::CloseRelation,
        Category::ChildrenOnly,
        Category::SexualOnly,
        Category::SexualChildren,
    ];
}

/// Codes that carry each category's volume beyond the Tabell-2 codes, with relative weights:
/// most volume sits in a few codes, as in police statistics. 4012 ("Fiskelagen") is in the
/// close-relation group only because of the report's footnote; no domestic-violence case is a
/// fishing-law case, so it gets no volume. Barnfridsbrott (9495-9496) did not exist before
/// July 2021 and gets none either.
const CATEGORY_CODES: &[(Category, &[(&str, u32)])] = &[
    (
        Category::CloseRelation,
        &[("9365", 72), ("9381", 16), ("9382", 12)],
    ),
    (
        Category::ChildrenOnly,
        &[
            ("9301", 3),
            ("9302", 4),
            ("9305", 6),
            ("9306", 8),
            ("9309", 6),
            ("9310", 8),
            ("9313", 10),
            ("9314", 10),
            ("9317", 5),
            ("9318", 5),
            ("9321", 4),
            ("9322", 4),
            ("9325", 3),
            ("9326", 3),
            ("9333", 2),
            ("9334", 2),
            ("0422", 2),
            ("0423", 1),
            ("0450", 6),
            ("0451", 4),
            ("0452", 3),
            ("0453", 2),
        ],
    ),
    (
        Category::SexualOnly,
        &[
            ("0660", 8),
            ("0661", 4),
            ("0662", 3),
            ("0663", 2),
            ("0648", 2),
            ("0649", 1),
            ("9611", 1),
            ("9612", 1),
            ("9635", 6),
            ("9636", 4),
            ("9637", 3),
            ("9638", 2),
            ("9627", 1),
            ("9628", 1),
            ("9643", 1),
            ("9647", 1),
            ("9651", 1),
            ("9659", 1),
            ("0607", 6),
            ("9605", 12),
            ("9606", 6),
            ("9691", 3),
            ("9692", 2),
        ],
    ),
    (
        Category::SexualChildren,
        &[
            ("0640", 3),
            ("0641", 2),
            ("0642", 2),
            ("0652", 2),
            ("0653", 1),
            ("0684", 5),
            ("0685", 3),
            ("0686", 2),
            ("0687", 2),
            ("0688", 1),
            ("9601", 10),
            ("9602", 6),
            ("9603", 5),
            ("9604", 3),
            ("0682", 8),
        ],
    ),
];

/// Codes outside the Tabell-1 groups: their volume is free, chosen to look like Stockholm and to
/// give the clearance rows mapped to them enough crimes. (reported, cases, referred) per year.
/// Cases may be fewer than crimes or zero: child-pornography crimes, for instance, mostly sit in
/// cases led by sexual posing (0611), threats in domestic-violence cases.
/// (reported, cases, referred) for each of [`YEARS`].
type YearFigures = [(u32, u32, u32); 2];

const FREE_CODES: &[(&str, YearFigures)] = &[
    ("0412", [(430, 310, 95), (455, 330, 104)]),
    ("0411", [(70, 55, 12), (64, 50, 11)]),
    ("4090", [(380, 260, 45), (410, 280, 50)]),
    ("9440", [(420, 120, 15), (450, 130, 16)]),
    ("1607", [(90, 10, 3), (110, 12, 4)]),
    ("1616", [(20, 0, 0), (25, 0, 0)]),
    ("0433", [(36, 28, 4), (30, 24, 4)]),
    ("9469", [(16, 12, 2), (20, 15, 2)]),
    ("0434", [(8, 7, 1), (6, 5, 1)]),
    ("9470", [(12, 9, 2), (14, 11, 2)]),
    ("9599", [(24, 19, 2), (20, 16, 1)]),
    ("9595", [(9, 7, 1), (12, 10, 1)]),
];

/// One code's volume in one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Quota {
    pub year: i32,
    pub code: CrimeCode,
    /// Crimes whose final code is `code`, reported in `year`.
    pub reported: u32,
    /// Cases opened in `year` whose final lead code is `code`.
    pub cases: u32,
    /// Of those cases, how many are referred to the prosecutor (all within `year`).
    pub referred: u32,
}

/// A published clearance rate to reproduce: crimes of `codes` (and `gender`, if any) handled in
/// `year`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClearanceTarget {
    pub year: i32,
    pub codes: Vec<CrimeCode>,
    pub gender: Option<Gender>,
    pub percent: f64,
    /// The report's crime type, which the time series and the verdicts are keyed by.
    pub crime_type: String,
    /// How the report judges Stockholm's 2019 rate against the median of the country: the
    /// other regions' rates are placed so that the comparison comes out so.
    pub verdict: Option<ReportVerdict>,
    /// The target's place in the list, which varies the order of the other regions' rates.
    pub row: usize,
    /// Whether the rate must come out within 0.25 points (a published one: Stockholm's 2019
    /// rates and the points of the time series) or as near as the volume allows (the other
    /// regions' rates, and Stockholm's between the series' points).
    pub exact: bool,
}

/// How the treatment programmes of the two years start and end, so that the published starts,
/// completions and year-end continuations come out exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProgrammePlan {
    /// Started in the first year: completed / discontinued in it.
    pub first_completed: u32,
    pub first_discontinued: u32,
    /// Started in the first year, ended in the second: completed / discontinued / still running.
    pub carried_completed: u32,
    pub carried_discontinued: u32,
    pub carried_continuing: u32,
    /// Started in the second year.
    pub second_completed: u32,
    pub second_discontinued: u32,
    pub second_continuing: u32,
    /// Second-year starts by clients who dropped out in the first year and start again.
    pub restarts: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub quotas: Vec<Quota>,
    pub targets: Vec<ClearanceTarget>,
    /// (year, ContractCareProposed events).
    pub contract_care: Vec<(i32, u32)>,
    pub programmes: ProgrammePlan,
}

/// Stockholm's crimes of assault against a man in a close relationship (9369), generated only
/// with every region, for the report's verdict on men: (reported, cases, referred) per year.
/// 9369 is in no Tabell-1 group, so no published figure moves.
const MALE_PARTNER_ASSAULT: (&str, YearFigures) = ("9369", [(64, 48, 12), (70, 52, 13)]);

/// Each year before the report's first has this much less volume than the next (a slow rise
/// in reported crimes, as in police statistics of the 2010s).
const YEARLY_GROWTH: f64 = 0.05;

/// The other regions' rates for a target, as offsets in percentage points from Stockholm's
/// rate that year, by the report's verdict; rotated per target so no region is always first.
/// In line: three regions below Stockholm and three above, so the median of the seven is
/// Stockholm's own rate. Above (below): five regions 3.5–7 points under (over) it and one over
/// (under), so the median lies more than 3 points from it.
const IN_LINE: [f64; 6] = [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0];
const ABOVE: [f64; 6] = [-3.5, -4.0, -5.0, -6.0, -7.0, 5.0];
const BELOW: [f64; 6] = [3.5, 4.0, 5.0, 6.0, 7.0, -5.0];

/// Fewest crimes a target code is given per year in another region, so that every region
/// handles enough of them for a verdict.
const TARGET_CODE_FLOOR: u32 = 14;

fn code(text: &str) -> CrimeCode {
    CrimeCode::parse(text)
        .unwrap_or_else(|| panic!("generator data holds a malformed crime code {text:?}"))
}

/// Splits `total` in proportion to `weights` by largest remainder; ties go to the earlier entry.
fn apportion(total: u32, weights: &[u32]) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let mut shares: Vec<u32> = weights
        .iter()
        .map(|&w| (u64::from(total) * u64::from(w) / sum) as u32)
        .collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(u64::from(total) * u64::from(weights[i]) % sum));
    let missing = total - shares.iter().sum::<u32>();
    for &i in order.iter().take(missing as usize) {
        shares[i] += 1;
    }
    shares
}

impl Plan {
    /// # Panics
    /// When the catalogue's groups do not hold the generator's codes the way the default
    /// catalogue does (the quotas would not add up), or the fixture lacks a Tabell-1 row.
    pub(crate) fn new(reference: &Reference, catalogue: &Catalogue) -> Plan {
        let membership = |c: CrimeCode| -> Vec<&str> {
            let mut names: Vec<&str> = catalogue
                .groups_of(c)
                .iter()
                .map(|&i| catalogue.groups()[i].name.as_str())
                .filter(|n| {
                    [
                        GROUP_CLOSE_RELATION,
                        GROUP_CHILDREN,
                        GROUP_SEXUAL,
                        GROUP_SEXUAL_CHILDREN,
                    ]
                    .contains(n)
                })
                .collect();
            names.sort_unstable();
            names
        };
        let category_of = |c: CrimeCode| -> Option<Category> {
            let m = membership(c);
            Category::ALL.into_iter().find(|cat| {
                let mut g = cat.groups().to_vec();
                g.sort_unstable();
                g == m
            })
        };
        let known = |c: CrimeCode| {
            assert!(
                catalogue.contains(c),
                "the catalogue in force lacks crime code {c}, which the generator uses"
            );
        };

        let mut quotas = Vec::new();
        for year in YEARS {
            let row = |group: &str| {
                reference
                    .tabell_1
                    .iter()
                    .find(|r| r.group == group && r.year == year)
                    .unwrap_or_else(|| panic!("reference lacks Tabell 1 row {group} {year}"))
            };
            let (close, children, sexual, sexual_children) = (
                row(GROUP_CLOSE_RELATION),
                row(GROUP_CHILDREN),
                row(GROUP_SEXUAL),
                row(GROUP_SEXUAL_CHILDREN),
            );
            let mut left: BTreeMap<Category, [u32; 3]> = BTreeMap::from([
                (
                    Category::CloseRelation,
                    [close.reported, close.cases, close.referred],
                ),
                (
                    Category::ChildrenOnly,
                    [
                        children.reported - sexual_children.reported,
                        children.cases - sexual_children.cases,
                        children.referred - sexual_children.referred,
                    ],
                ),
                (
                    Category::SexualOnly,
                    [
                        sexual.reported - sexual_children.reported,
                        sexual.cases - sexual_children.cases,
                        sexual.referred - sexual_children.referred,
                    ],
                ),
                (
                    Category::SexualChildren,
                    [
                        sexual_children.reported,
                        sexual_children.cases,
                        sexual_children.referred,
                    ],
                ),
            ]);
            // Tabell-2 codes get their published figures, which are part of their category's.
            for r in reference.tabell_2.iter().filter(|r| r.year == year) {
                let c = code(&r.code);
                known(c);
                if let Some(cat) = category_of(c) {
                    let rest = left.get_mut(&cat).expect("every category is listed");
                    rest[0] -= r.reported;
                    rest[1] -= r.cases;
                    rest[2] -= r.referred;
                } else {
                    assert!(
                        membership(c).is_empty(),
                        "Tabell 2 code {c} is in an unexpected mix of groups"
                    );
                }
                quotas.push(Quota {
                    year,
                    code: c,
                    reported: r.reported,
                    cases: r.cases,
                    referred: r.referred,
                });
            }
            for &(cat, codes) in CATEGORY_CODES {
                let [reported, cases, referred] = left[&cat];
                let weights: Vec<u32> = codes.iter().map(|&(_, w)| w).collect();
                let codes: Vec<CrimeCode> = codes.iter().map(|(c, _)| code(c)).collect();
                for &c in &codes {
                    known(c);
                    assert_eq!(
                        category_of(c),
                        Some(cat),
                        "code {c} is not in the groups the generator plans it for"
                    );
                }
                let case_split = apportion(cases, &weights);
                let extra_split = apportion(reported - cases, &weights);
                let referred_split = apportion(referred, &weights);
                for (i, &c) in codes.iter().enumerate() {
                    assert!(
                        referred_split[i] <= case_split[i],
                        "more referred than cases for {c} {year}"
                    );
                    quotas.push(Quota {
                        year,
                        code: c,
                        reported: case_split[i] + extra_split[i],
                        cases: case_split[i],
                        referred: referred_split[i],
                    });
                }
            }
            for (text, figures) in FREE_CODES {
                let c = code(text);
                known(c);
                assert!(
                    membership(c).is_empty(),
                    "free code {c} is in a Tabell-1 group"
                );
                let i = (year - YEARS[0]) as usize;
                let (reported, cases, referred) = figures[i];
                quotas.push(Quota {
                    year,
                    code: c,
                    reported,
                    cases,
                    referred,
                });
            }
        }

        let targets = reference
            .clearance
            .iter()
            .filter_map(|row| {
                let codes = match row.maps_to.as_ref()? {
                    MapsTo::Code(c) => vec![code(c)],
                    MapsTo::Group(name) => catalogue
                        .group(name)
                        .unwrap_or_else(|| panic!("the catalogue in force lacks group {name:?}"))
                        .codes
                        .clone(),
                };
                let gender = match row.victim_gender {
                    VictimGender::All => None,
                    VictimGender::Female => Some(Gender::Female),
                    VictimGender::Male => Some(Gender::Male),
                };
                Some(ClearanceTarget {
                    year: row.year,
                    codes,
                    gender,
                    percent: row.percent,
                    crime_type: row.crime_type.clone(),
                    verdict: verdict_of(reference, &row.crime_type, row.victim_gender),
                    row: 0,
                    exact: true,
                })
            })
            .collect();
        let mut targets: Vec<ClearanceTarget> = targets;
        for (i, t) in targets.iter_mut().enumerate() {
            t.row = i;
        }

        let kv = &reference.kriminalvarden;
        let contract_care = YEARS
            .iter()
            .map(|&y| {
                let n = kv
                    .contract_care_proposed
                    .iter()
                    .find(|r| r.year == y)
                    .map_or(0, |r| r.count);
                (y, n)
            })
            .collect();
        let programmes = ProgrammePlan::new(reference);
        Plan {
            quotas,
            targets,
            contract_care,
            programmes,
        }
    }

    /// Stockholm's plan for years `first_year` to the report's last: the report's two years as
    /// [`Plan::new`] has them, each earlier year the first one's volume less
    /// [`YEARLY_GROWTH`] per year, with the rates of the report's time series (interpolated
    /// between its points, held beyond them). With every region, also 9369 and its verdict
    /// target (see [`MALE_PARTNER_ASSAULT`]).
    pub(crate) fn stockholm(
        reference: &Reference,
        catalogue: &Catalogue,
        first_year: i32,
        every_region: bool,
    ) -> Plan {
        let mut plan = Plan::new(reference, catalogue);
        if every_region {
            let (text, figures) = MALE_PARTNER_ASSAULT;
            let c = code(text);
            assert!(
                catalogue.contains(c) && catalogue.groups_of(c).is_empty(),
                "the catalogue in force lacks {c} or holds it in a group"
            );
            for (i, &year) in YEARS.iter().enumerate() {
                let (reported, cases, referred) = figures[i];
                plan.quotas.push(Quota {
                    year,
                    code: c,
                    reported,
                    cases,
                    referred,
                });
            }
            for v in &reference.verdicts {
                let gender = gender_of(v.victim_gender);
                let covered = plan.targets.iter().any(|t| {
                    t.year == v.year && t.crime_type == v.crime_type && t.gender == gender
                });
                let published = reference.clearance.iter().find(|r| {
                    r.year == v.year
                        && r.crime_type == v.crime_type
                        && r.victim_gender == v.victim_gender
                });
                if let (false, Some(published)) = (covered, published) {
                    let row = plan.targets.len();
                    plan.targets.push(ClearanceTarget {
                        year: v.year,
                        codes: codes_of(&v.maps_to, catalogue),
                        gender,
                        percent: published.percent,
                        crime_type: v.crime_type.clone(),
                        verdict: Some(v.verdict),
                        row,
                        exact: true,
                    });
                }
            }
        }
        let first = YEARS[0];
        for year in (first_year..first).rev() {
            let factor = (1.0 - YEARLY_GROWTH).powi(first - year);
            let base: Vec<Quota> = plan
                .quotas
                .iter()
                .filter(|q| q.year == first)
                .cloned()
                .collect();
            for q in base {
                let scale = |n: u32| (f64::from(n) * factor).round() as u32;
                let cases = scale(q.cases).max(u32::from(q.cases > 0));
                plan.quotas.push(Quota {
                    year,
                    reported: scale(q.reported).max(cases),
                    cases,
                    referred: scale(q.referred).min(cases),
                    ..q
                });
            }
            let proposals = plan
                .contract_care
                .iter()
                .find(|&&(y, _)| y == first)
                .map_or(0, |&(_, n)| n);
            plan.contract_care
                .push((year, (f64::from(proposals) * factor).round() as u32));
            let base: Vec<ClearanceTarget> = plan
                .targets
                .iter()
                .filter(|t| t.year == first)
                .cloned()
                .collect();
            for t in base {
                let (percent, exact) = series_percent(reference, &t.crime_type, year, t.percent);
                plan.targets.push(ClearanceTarget {
                    year,
                    percent,
                    exact,
                    ..t
                });
            }
        }
        plan
    }

    /// Another region's plan after Stockholm's: each code's volume `volume` times
    /// Stockholm's (varied by up to 15 % per code, and at least [`TARGET_CODE_FLOOR`] crimes
    /// for a target's codes), the rates of Stockholm's targets moved by the offsets of their
    /// verdict, and no treatment programmes (those are Stockholm's published figures).
    pub(crate) fn region(stockholm: &Plan, slot: usize, volume: f64) -> Plan {
        let target_codes: Vec<CrimeCode> = stockholm
            .targets
            .iter()
            .flat_map(|t| t.codes.iter().copied())
            .collect();
        let quotas = stockholm
            .quotas
            .iter()
            .map(|q| {
                let mut h = (slot as u64 + 1) * 0x9E37_79B9 + u64::from(q.code.number());
                let jitter = (splitmix64(&mut h) >> 11) as f64 / (1u64 << 53) as f64;
                let factor = volume * (0.85 + 0.3 * jitter);
                let scale = |n: u32| (f64::from(n) * factor).round() as u32;
                let mut reported = scale(q.reported);
                if target_codes.contains(&q.code) && q.reported > 0 {
                    reported = reported.max(TARGET_CODE_FLOOR);
                }
                let cases = scale(q.cases).max(u32::from(q.cases > 0)).min(reported);
                Quota {
                    reported,
                    cases,
                    referred: scale(q.referred).min(cases),
                    ..q.clone()
                }
            })
            .collect();
        let targets = stockholm
            .targets
            .iter()
            .map(|t| {
                let offsets = match t.verdict {
                    Some(ReportVerdict::Above) => ABOVE,
                    Some(ReportVerdict::Below) => BELOW,
                    Some(ReportVerdict::InLine) | None => IN_LINE,
                };
                let offset = offsets[(slot + t.row) % offsets.len()];
                ClearanceTarget {
                    percent: (t.percent + offset).clamp(0.0, 100.0),
                    exact: false,
                    ..t.clone()
                }
            })
            .collect();
        let contract_care = stockholm
            .contract_care
            .iter()
            .map(|&(year, n)| (year, (f64::from(n) * volume).round() as u32))
            .collect();
        Plan {
            quotas,
            targets,
            contract_care,
            programmes: stockholm.programmes.clone(),
        }
    }
}

fn gender_of(g: VictimGender) -> Option<Gender> {
    match g {
        VictimGender::All => None,
        VictimGender::Female => Some(Gender::Female),
        VictimGender::Male => Some(Gender::Male),
    }
}

fn codes_of(maps_to: &MapsTo, catalogue: &Catalogue) -> Vec<CrimeCode> {
    match maps_to {
        MapsTo::Code(c) => vec![code(c)],
        MapsTo::Group(name) => catalogue
            .group(name)
            .unwrap_or_else(|| panic!("the catalogue in force lacks group {name:?}"))
            .codes
            .clone(),
    }
}

/// The report's verdict on Stockholm's 2019 rate for a crime type and gender, if it gives one.
fn verdict_of(
    reference: &Reference,
    crime_type: &str,
    gender: VictimGender,
) -> Option<ReportVerdict> {
    reference
        .verdicts
        .iter()
        .find(|v| v.crime_type == crime_type && v.victim_gender == gender)
        .map(|v| v.verdict)
}

/// Stockholm's rate for a crime type in `year`, and whether the report gives it: the report's
/// series point, else a straight line between its points (the 2019 rate `at_first` among them)
/// or the nearest point's value beyond them, rounded to a whole percent as the report's are.
fn series_percent(
    reference: &Reference,
    crime_type: &str,
    year: i32,
    at_first: f64,
) -> (f64, bool) {
    let mut points: Vec<(i32, f64)> = reference
        .series
        .iter()
        .filter(|p| p.crime_type == crime_type)
        .map(|p| (p.year, p.percent))
        .collect();
    if !points.iter().any(|&(y, _)| y == YEARS[0]) {
        points.push((YEARS[0], at_first));
    }
    points.sort_by_key(|&(y, _)| y);
    if let Some(&(_, p)) = points.iter().find(|&&(y, _)| y == year) {
        return (p, true);
    }
    let before = points.iter().rev().find(|&&(y, _)| y < year);
    let after = points.iter().find(|&&(y, _)| y > year);
    let p = match (before, after) {
        (Some(&(y0, p0)), Some(&(y1, p1))) => {
            p0 + (p1 - p0) * f64::from(year - y0) / f64::from(y1 - y0)
        }
        (Some(&(_, p)), None) | (None, Some(&(_, p))) => p,
        (None, None) => at_first,
    };
    (p.round(), false)
}

impl ProgrammePlan {
    fn new(reference: &Reference) -> ProgrammePlan {
        let year = |y: i32| {
            reference
                .kriminalvarden
                .ipv_treatment_programmes
                .iter()
                .find(|r| r.year == y)
                .unwrap_or_else(|| panic!("reference lacks treatment programmes for {y}"))
        };
        let (first, second) = (year(YEARS[0]), year(YEARS[1]));
        // The report gives no first-year outcomes: about 44 % of first-year starts end within the
        // year, roughly half of them completed. Programmes run for months, so a few first-year
        // starters are still running at the end of the second year.
        let ended = (first.started * 44 + 50) / 100;
        let first_completed = ended / 2;
        let first_discontinued = ended - first_completed;
        let carried = first.started - ended;
        let continuing = second
            .continuing_over_year_end
            .unwrap_or(second.started / 2);
        let completed = second.completed.unwrap_or(second.started / 4);
        let carried_continuing = 2.min(continuing).min(carried);
        let carried_completed = ((carried * 6 + 5) / 10)
            .min(completed)
            .min(carried - carried_continuing);
        let carried_discontinued = carried - carried_continuing - carried_completed;
        let second_completed = completed - carried_completed;
        let second_continuing = continuing - carried_continuing;
        let second_discontinued = second
            .started
            .checked_sub(second_completed + second_continuing)
            .expect("second-year completions and continuations fit within its starts");
        ProgrammePlan {
            first_completed,
            first_discontinued,
            carried_completed,
            carried_discontinued,
            carried_continuing,
            second_completed,
            second_discontinued,
            second_continuing,
            restarts: 4.min(first_discontinued).min(second.started),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_keeps_the_total_and_the_proportions() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(0, &[5, 1]), vec![0, 0]);
        assert_eq!(apportion(7, &[72, 16, 12]).iter().sum::<u32>(), 7);
    }

    #[test]
    fn category_quotas_add_up_to_tabell_1() {
        let plan = Plan::new(&crate::reference(), &Catalogue::default_catalogue());
        let sum = |year: i32, codes: &[&str]| -> u32 {
            plan.quotas
                .iter()
                .filter(|q| q.year == year && codes.contains(&q.code.to_string().as_str()))
                .map(|q| q.reported)
                .sum()
        };
        assert_eq!(sum(2019, &["9365", "9381", "9382", "4012"]), 5192);
        assert_eq!(sum(2020, &["0418"]), 5);
    }
}
