//! The six police regions beside Stockholm, as the generator writes them with every region:
//! each with its volume relative to Stockholm's (roughly its population's share, a little
//! higher in the thinly populated north where crimes per head run higher) and its local police
//! areas. Their rates follow from Stockholm's through the offsets in `plan.rs`.

use crate::cases::Region;

/// (region, volume relative to Stockholm), in the police authority's order without Stockholm.
pub(crate) const OTHER_REGIONS: [(Region, f64); 6] = [
    (
        Region {
            name: "Polisregion Nord",
            areas: &[
                ("Luleå", 6),
                ("Umeå", 7),
                ("Skellefteå", 4),
                ("Kiruna", 2),
                ("Piteå", 3),
                ("Lycksele", 2),
            ],
            pilot_areas: &[],
        },
        0.40,
    ),
    (
        Region {
            name: "Polisregion Mitt",
            areas: &[
                ("Östersund", 5),
                ("Sundsvall", 6),
                ("Gävle", 7),
                ("Örnsköldsvik", 3),
                ("Hudiksvall", 3),
            ],
            pilot_areas: &[],
        },
        0.42,
    ),
    (
        Region {
            name: "Polisregion Bergslagen",
            areas: &[
                ("Örebro", 7),
                ("Karlstad", 6),
                ("Västerås", 7),
                ("Falun", 4),
                ("Borlänge", 3),
            ],
            pilot_areas: &[],
        },
        0.55,
    ),
    (
        Region {
            name: "Polisregion Öst",
            areas: &[
                ("Linköping", 7),
                ("Norrköping", 6),
                ("Jönköping", 6),
                ("Eskilstuna", 5),
                ("Nyköping", 3),
            ],
            pilot_areas: &[],
        },
        0.60,
    ),
    (
        Region {
            name: "Polisregion Väst",
            areas: &[
                ("Göteborg City", 8),
                ("Hisingen", 6),
                ("Storgöteborg Syd", 6),
                ("Borås", 5),
                ("Trollhättan", 4),
                ("Halmstad", 4),
                ("Skövde", 3),
            ],
            pilot_areas: &[],
        },
        0.85,
    ),
    (
        Region {
            name: "Polisregion Syd",
            areas: &[
                ("Malmö Norr", 6),
                ("Malmö Söder", 6),
                ("Helsingborg", 5),
                ("Lund", 4),
                ("Kristianstad", 3),
                ("Växjö", 3),
                ("Kalmar", 3),
                ("Karlskrona", 3),
            ],
            pilot_areas: &[],
        },
        0.75,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stockholm_and_the_others_are_the_seven_police_regions() {
        let mut names: Vec<&str> = OTHER_REGIONS.iter().map(|(r, _)| r.name).collect();
        names.insert(3, crate::POLICE_REGION);
        assert_eq!(names, gryning_domain::POLICE_REGIONS);
    }
}
