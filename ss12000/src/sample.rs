//! A deterministic, realistic Swedish school sample: a huvudman, school units, students and
//! teachers with Swedish names, personnummer (valid check digit, synthetic), EPPNs, e-mail
//! addresses and enrolments, teachers' duties, classes and teaching groups with members, and
//! activities with groups and teachers. The same [`SampleSpec`] always gives the same bytes.
//!
//! Used by the quickstart (2 units, ~500 persons) and the benchmarks (100,000 persons, which
//! gives 2,000 groups). Roughly one person in twelve is a teacher; there is one group per 50
//! persons, half classes and half teaching groups, and one activity per group.

use crate::collection::Collection;
use crate::model::{
    Activity, ActivityTeacher, CivicNo, Duty, Email, Enrolment, Group, GroupMembership, Meta,
    ObjectRef, Organisation, Person,
};
use crate::object::Object;
use crate::timestamp::Timestamp;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSpec {
    /// School units (at least one is made).
    pub school_units: usize,
    /// Persons, students and teachers together.
    pub persons: usize,
    /// Seed: the same seed gives the same data.
    pub seed: u64,
}

/// SplitMix64: small, fast and good enough for sample data (not for anything secret).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

const GIRLS: &[&str] = &[
    "Alice", "Maja", "Vera", "Elsa", "Astrid", "Wilma", "Freja", "Olivia", "Selma", "Alma", "Ebba",
    "Ella", "Saga", "Agnes", "Clara", "Stella", "Signe", "Lilly", "Ellen", "Elvira", "Märta",
    "Ingrid", "Linnéa", "Åsa", "Sofia", "Hanna", "Ida", "Karin", "Emma", "Lova",
];
const BOYS: &[&str] = &[
    "Noah",
    "William",
    "Hugo",
    "Lucas",
    "Liam",
    "Oscar",
    "Elias",
    "Matteo",
    "Adam",
    "Vincent",
    "Nils",
    "Alexander",
    "Leo",
    "Olle",
    "Ludvig",
    "Theo",
    "Gustav",
    "Axel",
    "Arvid",
    "Viktor",
    "Erik",
    "Anton",
    "Isak",
    "Måns",
    "Sixten",
    "Björn",
    "Johan",
    "Per",
    "Karl",
    "Oliver",
];
const FAMILY: &[&str] = &[
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Pettersson",
    "Jonsson",
    "Jansson",
    "Hansson",
    "Bengtsson",
    "Jönsson",
    "Lindberg",
    "Jakobsson",
    "Magnusson",
    "Lindström",
    "Olofsson",
    "Lindqvist",
    "Lindgren",
    "Berg",
    "Axelsson",
    "Bergström",
    "Lundberg",
    "Lind",
    "Lundgren",
    "Lundqvist",
    "Mattsson",
    "Berglund",
    "Fredriksson",
    "Sandberg",
    "Henriksson",
    "Forsberg",
    "Sjöberg",
    "Wallin",
    "Engström",
    "Eklund",
    "Danielsson",
    "Lundin",
    "Håkansson",
    "Björk",
    "Bergman",
    "Gunnarsson",
    "Holm",
    "Wikström",
    "Samuelsson",
    "Isaksson",
    "Fransson",
    "Bergqvist",
    "Nyström",
    "Holmberg",
    "Arvidsson",
    "Löfgren",
    "Söderberg",
    "Nyberg",
    "Blomqvist",
    "Claesson",
    "Öberg",
    "Åberg",
    "Ekström",
    "Mårtensson",
];
const PLACES: &[&str] = &[
    "Björkhaga",
    "Ekdal",
    "Lindvik",
    "Sjöstad",
    "Granbacka",
    "Ängsbo",
    "Tallmo",
    "Rönnhagen",
    "Almvik",
    "Solberga",
    "Hagaby",
    "Vikhem",
    "Fjällbo",
    "Strandby",
    "Kvarnbo",
    "Backa",
];
const SUBJECTS: &[&str] = &[
    "Matematik",
    "Svenska",
    "Engelska",
    "Biologi",
    "Fysik",
    "Kemi",
    "Historia",
    "Geografi",
    "Samhällskunskap",
    "Religionskunskap",
    "Bild",
    "Musik",
    "Slöjd",
    "Idrott och hälsa",
    "Teknik",
    "Moderna språk",
];

/// ASCII for e-mail addresses and EPPNs: `Linnéa Öberg` → `linnea.oberg`.
fn ascii(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            'å' | 'ä' | 'Å' | 'Ä' => Some('a'),
            'ö' | 'Ö' => Some('o'),
            'é' | 'É' => Some('e'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The Luhn check digit over the ten-digit form's first nine digits.
fn luhn(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            d / 10 + d % 10
        })
        .sum();
    (10 - sum % 10) % 10
}

/// A synthetic personnummer `YYYYMMDDNNNC` with a valid check digit; the third serial digit is
/// odd for men and even for women.
fn civic_no(rng: &mut Rng, year: u32, female: bool) -> String {
    let month = 1 + rng.below(12) as u32;
    let day = 1 + rng.below(28) as u32;
    let serial = rng.below(100) as u32;
    let sex = (rng.below(5) as u32) * 2 + u32::from(!female);
    let nine = format!("{:02}{month:02}{day:02}{serial:02}{sex}", year % 100);
    format!("{year}{}{}", &nine[2..], luhn(&nine))
}

const DAY: i64 = 86_400;

fn meta(rng: &mut Rng, base: Timestamp) -> Option<Meta> {
    let created = base.add_seconds(rng.below(30) as i64 * DAY + rng.below(DAY as usize) as i64);
    let modified = created.add_seconds(rng.below(200) as i64 * DAY + rng.below(3_600) as i64);
    Some(Meta {
        created: Some(created),
        modified: Some(modified),
        ..Meta::default()
    })
}

fn object<T: serde::Serialize>(collection: Collection, value: &T) -> (Collection, Object) {
    let json = serde_json::to_string(value).unwrap_or_default();
    // The model types always serialise to an object with a string id.
    match Object::from_json(&json) {
        Ok(object) => (collection, object),
        Err(e) => unreachable!("sample object is invalid: {e}: {json}"),
    }
}

fn reference(id: &str, display_name: &str) -> ObjectRef {
    ObjectRef {
        id: id.to_owned(),
        display_name: Some(display_name.to_owned()),
        ..ObjectRef::default()
    }
}

struct Unit {
    id: String,
    name: String,
    domain: String,
    students: Vec<(String, String, u32)>,
    teachers: Vec<(String, String)>,
}

/// Generates the sample, in Skolverket's fetch order (organisations, persons, groups, duties,
/// activities).
pub fn generate(spec: &SampleSpec) -> Vec<(Collection, Object)> {
    let unit_count = spec.school_units.max(1);
    let teacher_count = if spec.persons == 0 {
        0
    } else {
        (spec.persons / 12).max(1).min(spec.persons)
    };
    let group_count = spec.persons / 50;
    let mut sample = Sample {
        rng: Rng(spec.seed ^ 0x5353_3132_3030_3030),
        base: Timestamp::from_unix_micros(1_754_006_400_000_000), // 2025-08-01T00:00:00Z
        out: Vec::with_capacity(1 + unit_count + spec.persons * 2 + group_count * 2),
    };
    // The order of the steps is the order of the random draws: keep it, or every seed's
    // sample changes.
    let mut units = sample.organisations(unit_count);
    sample.persons(spec.persons, teacher_count, &mut units);
    let (duties, duty_objects) = sample.duties(&units, teacher_count);
    let activities = sample.groups(group_count, &units, &duties);
    let mut out = sample.out;
    out.extend(duty_objects);
    out.extend(activities.iter().map(|a| object(Collection::Activities, a)));
    out
}

/// The generator's state: its random numbers, the time everything was created, the output.
struct Sample {
    rng: Rng,
    base: Timestamp,
    out: Vec<(Collection, Object)>,
}

/// Per school unit: its duties' (id, teacher's name).
type UnitDuties = Vec<Vec<(String, String)>>;

impl Sample {
    /// The school organizer and its `unit_count` school units.
    fn organisations(&mut self, unit_count: usize) -> Vec<Unit> {
        let (rng, base) = (&mut self.rng, self.base);
        let owner_id = rng.uuid();
        let owner_name = format!("{} kommun", rng.pick(PLACES));
        self.out.push(object(
            Collection::Organisations,
            &Organisation {
                id: owner_id.clone(),
                meta: meta(rng, base),
                display_name: owner_name.clone(),
                organisation_type: Some("Huvudman".to_owned()),
                organisation_number: Some(format!("2120{:06}", rng.below(1_000_000))),
                ..Organisation::default()
            },
        ));
        let mut units = Vec::with_capacity(unit_count);
        for n in 0..unit_count {
            let place = PLACES[(n + rng.below(PLACES.len())) % PLACES.len()];
            let name = if n < PLACES.len() {
                format!("{place}skolan")
            } else {
                format!("{place}skolan {}", n / PLACES.len() + 1)
            };
            let unit = Unit {
                id: rng.uuid(),
                domain: format!("{}{}.skola.example", ascii(place), n + 1),
                name,
                students: Vec::new(),
                teachers: Vec::new(),
            };
            self.out.push(object(
                Collection::Organisations,
                &Organisation {
                    id: unit.id.clone(),
                    meta: meta(rng, base),
                    display_name: unit.name.clone(),
                    organisation_type: Some("Skolenhet".to_owned()),
                    school_unit_code: Some(format!("{:08}", 10_000_000 + rng.below(89_999_999))),
                    parent_organisation: Some(reference(&owner_id, &owner_name)),
                    school_types: Some(vec!["GR".to_owned()]),
                    ..Organisation::default()
                },
            ));
            units.push(unit);
        }
        units
    }

    /// `count` persons spread over the units, the first `teacher_count` of them teachers.
    fn persons(&mut self, count: usize, teacher_count: usize, units: &mut [Unit]) {
        let unit_count = units.len();
        for n in 0..count {
            let teacher = n < teacher_count;
            let unit = &mut units[n % unit_count];
            let school_year = 1 + (n / unit_count) as u32 % 9;
            let (id, display, person) = self.person(n, teacher, school_year, unit);
            if teacher {
                unit.teachers.push((id, display));
            } else {
                unit.students.push((id, display, school_year));
            }
            self.out.push(object(Collection::Persons, &person));
        }
    }

    /// Person number `n` of `unit`: (id, display name, the object).
    fn person(
        &mut self,
        n: usize,
        teacher: bool,
        school_year: u32,
        unit: &Unit,
    ) -> (String, String, Person) {
        let (rng, base) = (&mut self.rng, self.base);
        let female = rng.below(2) == 0;
        let given = rng.pick(if female { GIRLS } else { BOYS });
        let family = rng.pick(FAMILY);
        let birth_year = if teacher {
            1960 + rng.below(38) as u32
        } else {
            2019 - school_year
        };
        let id = rng.uuid();
        let login = format!("{}.{}{}", ascii(given), ascii(family), n);
        let eppn = format!("{login}@{}", unit.domain);
        let person = Person {
            id: id.clone(),
            meta: meta(rng, base),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            edu_person_principal_names: Some(vec![eppn.clone()]),
            civic_no: Some(CivicNo {
                value: civic_no(rng, birth_year, female),
                nationality: Some("SE".to_owned()),
                ..CivicNo::default()
            }),
            emails: Some(vec![Email {
                value: eppn,
                kind: Some(
                    if teacher {
                        "Skola personal"
                    } else {
                        "Skola elev"
                    }
                    .to_owned(),
                ),
                ..Email::default()
            }]),
            enrolments: (!teacher).then(|| {
                vec![Enrolment {
                    enroled_at: reference(&unit.id, &unit.name),
                    school_year: Some(i64::from(school_year)),
                    school_type: Some("GR".to_owned()),
                    start_date: Some(format!("{}-08-15", 2025 - school_year + 1)),
                    ..Enrolment::default()
                }]
            }),
            security_marking: Some(
                if rng.below(200) == 0 {
                    "Skyddad folkbokföring"
                } else {
                    "Ingen"
                }
                .to_owned(),
            ),
            ..Person::default()
        };
        (id, format!("{given} {family}"), person)
    }

    /// One duty per teacher, collected per unit for the activities.
    fn duties(
        &mut self,
        units: &[Unit],
        teacher_count: usize,
    ) -> (UnitDuties, Vec<(Collection, Object)>) {
        let (rng, base) = (&mut self.rng, self.base);
        let mut duties: UnitDuties = vec![Vec::new(); units.len()];
        let mut duty_objects = Vec::with_capacity(teacher_count);
        for (unit_index, unit) in units.iter().enumerate() {
            for (person_id, display) in &unit.teachers {
                let id = rng.uuid();
                let signature: String = display
                    .split(' ')
                    .filter_map(|w| w.chars().next())
                    .chain(std::iter::once(char::from(b'A' + rng.below(26) as u8)))
                    .collect::<String>()
                    .to_uppercase();
                duty_objects.push(object(
                    Collection::Duties,
                    &Duty {
                        id: id.clone(),
                        meta: meta(rng, base),
                        person: reference(person_id, display),
                        duty_at: reference(&unit.id, &unit.name),
                        duty_role: "Lärare".to_owned(),
                        signature: Some(signature),
                        start_date: Some("2025-08-01".to_owned()),
                        ..Duty::default()
                    },
                ));
                duties[unit_index].push((id, display.clone()));
            }
        }
        (duties, duty_objects)
    }

    /// `count` groups spread over the units (even ones classes, odd ones teaching groups),
    /// each with its activity.
    fn groups(&mut self, count: usize, units: &[Unit], duties: &UnitDuties) -> Vec<Activity> {
        let unit_count = units.len();
        let mut activities = Vec::with_capacity(count);
        for g in 0..count {
            let unit_index = g % unit_count;
            let unit = &units[unit_index];
            let per_unit = count / unit_count + usize::from(unit_index < count % unit_count);
            let local = g / unit_count;
            let class = local.is_multiple_of(2);
            let members = self.members(&unit.students, class, per_unit, local);
            let (group, display_name) = self.group(unit, &members, class, local);
            let id = group.id.clone();
            self.out.push(object(Collection::Groups, &group));
            activities.push(self.activity(unit, &duties[unit_index], &id, &display_name, class));
        }
        activities
    }

    /// The students of group `local` of a unit: a class takes every `classes`-th student, a
    /// teaching group 28 students from a random start.
    fn members<'a>(
        &mut self,
        students: &'a [(String, String, u32)],
        class: bool,
        per_unit: usize,
        local: usize,
    ) -> Vec<&'a (String, String, u32)> {
        if students.is_empty() {
            Vec::new()
        } else if class {
            // Each student in one class: split the unit's students into its classes.
            let classes = per_unit.div_ceil(2).max(1);
            let k = local / 2;
            students
                .iter()
                .enumerate()
                .filter(|(i, _)| i % classes == k)
                .map(|(_, s)| s)
                .collect()
        } else {
            let start = self.rng.below(students.len());
            (0..28.min(students.len()))
                .map(|i| &students[(start + i) % students.len()])
                .collect()
        }
    }

    /// A group of `members` and its display name.
    fn group(
        &mut self,
        unit: &Unit,
        members: &[&(String, String, u32)],
        class: bool,
        local: usize,
    ) -> (Group, String) {
        let (rng, base) = (&mut self.rng, self.base);
        let year = members.first().map_or(1, |m| m.2);
        let letter = char::from(b'A' + (local / 2 % 26) as u8);
        let subject = rng.pick(SUBJECTS);
        let display_name = if class {
            format!("{year}{letter}")
        } else {
            format!("{subject} {year}{letter}")
        };
        let group = Group {
            id: rng.uuid(),
            meta: meta(rng, base),
            display_name: display_name.clone(),
            group_type: Some(if class { "Klass" } else { "Undervisning" }.to_owned()),
            school_type: Some("GR".to_owned()),
            organisation: Some(reference(&unit.id, &unit.name)),
            group_memberships: Some(
                members
                    .iter()
                    .map(|(pid, name, _)| GroupMembership {
                        person: reference(pid, name),
                        start_date: Some("2025-08-15".to_owned()),
                        ..GroupMembership::default()
                    })
                    .collect(),
            ),
            start_date: Some("2025-08-15".to_owned()),
            end_date: Some("2026-06-12".to_owned()),
            ..Group::default()
        };
        (group, display_name)
    }

    /// The activity of group `group_id`, taught by one of the unit's teachers.
    fn activity(
        &mut self,
        unit: &Unit,
        teachers: &[(String, String)],
        group_id: &str,
        display_name: &str,
        class: bool,
    ) -> Activity {
        let (rng, base) = (&mut self.rng, self.base);
        let teacher = (!teachers.is_empty()).then(|| &teachers[rng.below(teachers.len())]);
        Activity {
            id: rng.uuid(),
            meta: meta(rng, base),
            display_name: if class {
                format!("Mentorstid {display_name}")
            } else {
                display_name.to_owned()
            },
            // Code_ActivityType: mentor time is a student activity.
            activity_type: Some(
                if class {
                    "Elevaktivitet"
                } else {
                    "Undervisning"
                }
                .to_owned(),
            ),
            groups: Some(vec![reference(group_id, display_name)]),
            teachers: Some(
                teacher
                    .map(|(duty_id, name)| ActivityTeacher {
                        duty: reference(duty_id, name),
                        ..ActivityTeacher::default()
                    })
                    .into_iter()
                    .collect(),
            ),
            organisation: Some(reference(&unit.id, &unit.name)),
            ..Activity::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SampleSpec, generate, luhn};
    use crate::Collection;
    use crate::model::{Group, Person};
    use std::collections::HashSet;

    #[test]
    fn deterministic_and_seed_dependent() {
        let spec = SampleSpec {
            school_units: 2,
            persons: 500,
            seed: 1,
        };
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(a, b);
        let c = generate(&SampleSpec { seed: 2, ..spec });
        assert_ne!(a, c);
    }

    #[test]
    fn realistic_and_consistent() {
        let data = generate(&SampleSpec {
            school_units: 2,
            persons: 500,
            seed: 7,
        });
        let count = |c: Collection| data.iter().filter(|(k, _)| *k == c).count();
        assert_eq!(count(Collection::Organisations), 3);
        assert_eq!(count(Collection::Persons), 500);
        assert_eq!(count(Collection::Duties), 41);
        assert_eq!(count(Collection::Groups), 10);
        assert_eq!(count(Collection::Activities), 10);
        let order: Vec<&Collection> = data.iter().map(|(c, _)| c).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|c| Collection::SYNC_ORDER.iter().position(|s| s == *c));
        assert_eq!(order, sorted, "Skolverket's fetch order");
        let ids: HashSet<&str> = data.iter().map(|(_, o)| o.id()).collect();
        assert_eq!(ids.len(), data.len(), "ids are unique");
        let mut eppns = HashSet::new();
        for (c, o) in &data {
            assert!(o.created().is_some() && o.modified() >= o.created());
            if *c == Collection::Persons {
                let p: Person = o.parse().unwrap();
                let civic = p.civic_no.unwrap().value;
                assert_eq!(civic.len(), 12);
                assert_eq!(luhn(&civic[2..11]).to_string(), &civic[11..], "{civic}");
                assert!(eppns.insert(p.edu_person_principal_names.unwrap()[0].clone()));
            }
            if *c == Collection::Groups {
                let g: Group = o.parse().unwrap();
                for m in g.group_memberships.unwrap() {
                    assert!(
                        ids.contains(m.person.id.as_str()),
                        "member refers to a person"
                    );
                }
            }
        }
    }

    #[test]
    fn luhn_matches_a_known_number() {
        // Skatteverket's documented example 811218-9876.
        assert_eq!(luhn("811218987"), 6);
    }

    #[test]
    fn degenerate_specs_do_not_panic() {
        for (units, persons) in [(0, 0), (1, 1), (3, 2), (20, 60)] {
            let data = generate(&SampleSpec {
                school_units: units,
                persons,
                seed: 3,
            });
            assert_eq!(
                data.iter()
                    .filter(|(c, _)| *c == Collection::Persons)
                    .count(),
                persons
            );
        }
    }
}
