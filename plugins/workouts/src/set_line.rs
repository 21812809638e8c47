//! Parsing a set line such as `bench press 5x5 62.5kg`, and formatting
//! weights.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Maximum number of sets in one line.
pub const MAX_SETS: u32 = 100;
/// Maximum number of reps per set.
pub const MAX_REPS: u32 = 1000;
/// Maximum weight per rep in grams (1000 kg).
pub const MAX_WEIGHT_GRAMS: u32 = 1_000_000;
/// Maximum length of an exercise name in characters.
pub const MAX_EXERCISE_CHARS: usize = 64;

/// The set line format, as shown in hints.
pub const FORMAT: &str = "<exercise> <sets>x<reps> [<weight>kg]";

/// Maximum length of user input quoted in an error message, in characters,
/// so a hint stays short whatever was sent.
const MAX_QUOTED_CHARS: usize = 20;

/// One line of a workout: an exercise done for some sets of the same reps
/// and weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetEntry {
    /// Exercise name as typed, with runs of whitespace collapsed to one space.
    pub exercise: String,
    pub sets: u32,
    pub reps: u32,
    /// Weight per rep in grams; `None` for bodyweight sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<u32>,
}

impl SetEntry {
    /// Returns sets × reps × weight in grams; 0 for bodyweight sets.
    pub fn volume_grams(&self) -> u64 {
        u64::from(self.sets) * u64::from(self.reps) * u64::from(self.weight_grams.unwrap_or(0))
    }

    /// Formats the sets, reps and weight without the exercise, for example
    /// `3x5 100kg` or `3x8`.
    pub fn load(&self) -> String {
        match self.weight_grams {
            Some(grams) => format!(
                "{}x{} {}kg",
                self.sets,
                self.reps,
                format_kilograms(grams.into())
            ),
            None => format!("{}x{}", self.sets, self.reps),
        }
    }
}

impl fmt::Display for SetEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.exercise, self.load())
    }
}

/// An error reading a set line. The `Display` text is the hint sent to the
/// user, and each one shows the expected format or an example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetLineError {
    Empty,
    /// No word of the form `<sets>x<reps>` was found.
    MissingSetsAndReps,
    /// A word such as `3x`, `x5` or `3x5x2` that is not `<sets>x<reps>`.
    InvalidSetsAndReps {
        word: String,
    },
    SetsOutOfRange {
        word: String,
    },
    RepsOutOfRange {
        word: String,
    },
    MissingExercise,
    ExerciseTooLong {
        chars: usize,
    },
    InvalidWeight {
        word: String,
    },
    WeightOutOfRange {
        word: String,
    },
}

impl fmt::Display for SetLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetLineError::Empty => write!(
                f,
                "The message is empty. Send a set as {FORMAT}, \
                 for example squat 3x5 100kg or pull-ups 3x8."
            ),
            SetLineError::MissingSetsAndReps => write!(
                f,
                "I could not find the sets and reps. Send a set as {FORMAT}, \
                 for example squat 3x5 100kg or pull-ups 3x8."
            ),
            SetLineError::InvalidSetsAndReps { word } => write!(
                f,
                "{} is not valid sets and reps. Write the number of sets, an x and \
                 the number of reps, for example squat 3x5 100kg.",
                quote(word)
            ),
            SetLineError::SetsOutOfRange { word } => write!(
                f,
                "The number of sets in {} must be from 1 to {MAX_SETS}, for example squat 3x5.",
                quote(word)
            ),
            SetLineError::RepsOutOfRange { word } => write!(
                f,
                "The number of reps in {} must be from 1 to {MAX_REPS}, for example squat 3x5.",
                quote(word)
            ),
            SetLineError::MissingExercise => write!(
                f,
                "Put the exercise name first, then the sets and reps, \
                 for example squat 3x5 100kg."
            ),
            SetLineError::ExerciseTooLong { chars } => write!(
                f,
                "The exercise name is too long: {chars} characters, the maximum is \
                 {MAX_EXERCISE_CHARS}. Send the set again with a shorter name, for example \
                 bench press 5x5 60kg."
            ),
            SetLineError::InvalidWeight { word } => write!(
                f,
                "{} is not a weight in kilograms. Write it like 100kg or 62.5kg, \
                 or leave it out for bodyweight sets, for example pull-ups 3x8.",
                quote(word)
            ),
            SetLineError::WeightOutOfRange { word } => write!(
                f,
                "The weight {} is over the maximum of {} kg. Send the set again, \
                 for example squat 3x5 100kg.",
                quote(word),
                MAX_WEIGHT_GRAMS / 1000
            ),
        }
    }
}

/// Parses `<exercise> <sets>x<reps> [<weight>kg]`.
///
/// The `x` may be `x`, `X`, `×` or the Cyrillic `х`, and `3 x 5` with spaces
/// is read as `3x5`. The weight may have up to two decimal places, with a
/// point or a comma, and a space before `kg` (any case). The exercise name
/// may contain spaces and any characters.
pub fn parse_set_line(text: &str) -> Result<SetEntry, SetLineError> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err(SetLineError::Empty);
    }

    let weight_grams = take_weight(&mut words)?;
    let (sets, reps) = take_sets_and_reps(&mut words, weight_grams.is_some())?;

    let exercise = words.join(" ");
    if exercise.is_empty() {
        return Err(SetLineError::MissingExercise);
    }
    let chars = exercise.chars().count();
    if chars > MAX_EXERCISE_CHARS {
        return Err(SetLineError::ExerciseTooLong { chars });
    }

    Ok(SetEntry {
        exercise,
        sets,
        reps,
        weight_grams,
    })
}

/// Formats a weight in grams as kilograms without trailing zeros, for
/// example `100`, `62.5` or `1.25`.
pub fn format_kilograms(grams: u64) -> String {
    let whole = grams / 1000;
    let fraction = grams % 1000;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Removes a trailing `<weight>kg` or `<weight> kg` from `words` and parses
/// it; `None` when the last word does not end in `kg`.
fn take_weight(words: &mut Vec<&str>) -> Result<Option<u32>, SetLineError> {
    let Some(&last) = words.last() else {
        return Ok(None);
    };
    if !ends_with_kg(last) {
        return Ok(None);
    }

    let (number, word) = if last.len() == 2 {
        // A separate unit, as in `100 kg`; a lone `kg` is left for the
        // exercise name.
        if words.len() < 2 {
            return Ok(None);
        }
        let number = words[words.len() - 2];
        words.truncate(words.len() - 2);
        (number, format!("{number} {last}"))
    } else {
        words.pop();
        (&last[..last.len() - 2], last.to_owned())
    };

    let grams =
        parse_grams(number).ok_or_else(|| SetLineError::InvalidWeight { word: word.clone() })?;
    match u32::try_from(grams) {
        Ok(grams) if grams <= MAX_WEIGHT_GRAMS => Ok(Some(grams)),
        _ => Err(SetLineError::WeightOutOfRange { word }),
    }
}

/// Removes the `<sets>x<reps>` word (or the three words `<sets> x <reps>`)
/// from the end of `words` and parses it.
fn take_sets_and_reps(words: &mut Vec<&str>, has_weight: bool) -> Result<(u32, u32), SetLineError> {
    let count = words.len();
    if count >= 3 && is_spaced_sets_and_reps(&words[count - 3..]) {
        let word = words[count - 3..].join(" ");
        let (sets, reps) = (words[count - 3], words[count - 1]);
        words.truncate(count - 3);
        return parse_sets_and_reps(&word, sets, reps);
    }

    let Some(&last) = words.last() else {
        return Err(SetLineError::MissingSetsAndReps);
    };
    if is_sets_and_reps_candidate(last) {
        words.pop();
        let mut sides = last.split(is_times_sign);
        let (Some(sets), Some(reps), None) = (sides.next(), sides.next(), sides.next()) else {
            return Err(SetLineError::InvalidSetsAndReps {
                word: last.to_owned(),
            });
        };
        return parse_sets_and_reps(last, sets, reps);
    }

    // The sets and reps are there but not last: `squat 3x5 100` and
    // `squat 3x5 100lb` have a weight without `kg`, and `3x5 squat` has the
    // exercise name in the wrong place.
    if !has_weight && count >= 2 && is_sets_and_reps_candidate(words[count - 2]) {
        if count == 2 && !last.chars().any(|c| c.is_ascii_digit()) {
            return Err(SetLineError::MissingExercise);
        }
        return Err(SetLineError::InvalidWeight {
            word: last.to_owned(),
        });
    }
    Err(SetLineError::MissingSetsAndReps)
}

fn parse_sets_and_reps(word: &str, sets: &str, reps: &str) -> Result<(u32, u32), SetLineError> {
    if sets.is_empty() || reps.is_empty() {
        return Err(SetLineError::InvalidSetsAndReps {
            word: word.to_owned(),
        });
    }
    let sets = parse_count(sets, MAX_SETS).ok_or_else(|| SetLineError::SetsOutOfRange {
        word: word.to_owned(),
    })?;
    let reps = parse_count(reps, MAX_REPS).ok_or_else(|| SetLineError::RepsOutOfRange {
        word: word.to_owned(),
    })?;
    Ok((sets, reps))
}

/// Parses ASCII digits as a count from 1 to `max`. Digits too long for
/// `u32` are out of range as well.
fn parse_count(digits: &str, max: u32) -> Option<u32> {
    digits
        .parse::<u32>()
        .ok()
        .filter(|count| (1..=max).contains(count))
}

/// Parses a decimal number of kilograms with at most two decimal places
/// into grams. Values too long to fit are reported as `u64::MAX`, which is
/// out of range.
fn parse_grams(number: &str) -> Option<u64> {
    let (whole, fraction) = match number.split_once(['.', ',']) {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 2 {
        return None;
    }
    if number.ends_with(['.', ',']) {
        return None;
    }

    let Ok(kilograms) = whole.parse::<u64>() else {
        return Some(u64::MAX);
    };
    let fraction_grams = format!("{fraction:0<3}").parse::<u64>().ok()?;
    Some(
        kilograms
            .saturating_mul(1000)
            .saturating_add(fraction_grams),
    )
}

fn ends_with_kg(word: &str) -> bool {
    let bytes = word.as_bytes();
    // Two trailing ASCII bytes always start on a character boundary, so the
    // caller may slice the word at `len - 2`.
    bytes.len() >= 2 && bytes[bytes.len() - 2..].eq_ignore_ascii_case(b"kg")
}

fn is_times_sign(c: char) -> bool {
    matches!(c, 'x' | 'X' | '×' | 'х' | 'Х')
}

/// Returns whether a word is made of digits and at least one times sign, so
/// it was meant as `<sets>x<reps>` even when malformed (`3x`, `x5`).
fn is_sets_and_reps_candidate(word: &str) -> bool {
    word.chars().any(is_times_sign)
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().all(|c| c.is_ascii_digit() || is_times_sign(c))
}

fn is_spaced_sets_and_reps(words: &[&str]) -> bool {
    let digits = |word: &str| !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_digit());
    let mut sign = words[1].chars();
    digits(words[0])
        && digits(words[2])
        && sign.next().is_some_and(is_times_sign)
        && sign.next().is_none()
}

/// Quotes user input for an error message, cut to a few characters.
pub fn quote(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_CHARS {
        return format!("\"{text}\"");
    }
    let start: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    format!("\"{start}…\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exercise: &str, sets: u32, reps: u32, weight_grams: Option<u32>) -> SetEntry {
        SetEntry {
            exercise: exercise.to_owned(),
            sets,
            reps,
            weight_grams,
        }
    }

    #[test]
    fn parses_weighted_line() {
        assert_eq!(
            parse_set_line("squat 3x5 100kg"),
            Ok(entry("squat", 3, 5, Some(100_000)))
        );
    }

    #[test]
    fn parses_bodyweight_line() {
        assert_eq!(
            parse_set_line("pull-ups 3x8"),
            Ok(entry("pull-ups", 3, 8, None))
        );
    }

    #[test]
    fn parses_name_with_spaces() {
        assert_eq!(
            parse_set_line("  bench   press 5x5 60kg "),
            Ok(entry("bench press", 5, 5, Some(60_000)))
        );
    }

    #[test]
    fn parses_decimal_weights() {
        assert_eq!(
            parse_set_line("bench 5x5 62.5kg").unwrap().weight_grams,
            Some(62_500)
        );
        assert_eq!(
            parse_set_line("curl 3x10 12,25kg").unwrap().weight_grams,
            Some(12_250)
        );
        assert_eq!(
            parse_set_line("curl 3x10 0.5kg").unwrap().weight_grams,
            Some(500)
        );
    }

    #[test]
    fn accepts_times_sign_variants() {
        for line in [
            "squat 3X5",
            "squat 3×5",
            "squat 3х5",
            "squat 3Х5",
            "squat 3 x 5",
        ] {
            assert_eq!(
                parse_set_line(line),
                Ok(entry("squat", 3, 5, None)),
                "{line}"
            );
        }
    }

    #[test]
    fn accepts_kg_spacing_and_case() {
        for line in [
            "squat 3x5 100 kg",
            "squat 3x5 100KG",
            "squat 3x5 100Kg",
            "squat 3x5 100 KG",
        ] {
            assert_eq!(
                parse_set_line(line),
                Ok(entry("squat", 3, 5, Some(100_000))),
                "{line}"
            );
        }
    }

    #[test]
    fn parses_unicode_exercise_name() {
        assert_eq!(
            parse_set_line("Жим лёжа 3x5 60kg"),
            Ok(entry("Жим лёжа", 3, 5, Some(60_000)))
        );
        assert_eq!(
            parse_set_line("💪 curls 2x12"),
            Ok(entry("💪 curls", 2, 12, None))
        );
    }

    #[test]
    fn zero_weight_counts_as_weighted() {
        assert_eq!(
            parse_set_line("dips 3x10 0kg"),
            Ok(entry("dips", 3, 10, Some(0)))
        );
    }

    #[test]
    fn limits_are_inclusive() {
        let line = format!("squat {MAX_SETS}x{MAX_REPS} 1000kg");

        assert_eq!(
            parse_set_line(&line),
            Ok(entry("squat", MAX_SETS, MAX_REPS, Some(MAX_WEIGHT_GRAMS)))
        );
    }

    #[test]
    fn rejects_empty_text() {
        assert_eq!(parse_set_line(""), Err(SetLineError::Empty));
        assert_eq!(parse_set_line(" \n\t"), Err(SetLineError::Empty));
    }

    #[test]
    fn rejects_text_without_sets_and_reps() {
        for line in ["squat", "squat 5", "💪", "squat 5 reps", "kg", "squat x"] {
            assert_eq!(
                parse_set_line(line),
                Err(SetLineError::MissingSetsAndReps),
                "{line}"
            );
        }
    }

    #[test]
    fn rejects_incomplete_sets_and_reps() {
        for word in ["3x", "x5", "3x5x2", "xx5"] {
            let line = format!("squat {word}");
            assert_eq!(
                parse_set_line(&line),
                Err(SetLineError::InvalidSetsAndReps {
                    word: word.to_owned()
                }),
                "{line}"
            );
        }
    }

    #[test]
    fn rejects_zero_sets_or_reps() {
        assert_eq!(
            parse_set_line("squat 0x5"),
            Err(SetLineError::SetsOutOfRange {
                word: "0x5".to_owned()
            })
        );
        assert_eq!(
            parse_set_line("squat 3x0"),
            Err(SetLineError::RepsOutOfRange {
                word: "3x0".to_owned()
            })
        );
    }

    #[test]
    fn rejects_huge_numbers() {
        assert_eq!(
            parse_set_line("squat 101x5"),
            Err(SetLineError::SetsOutOfRange {
                word: "101x5".to_owned()
            })
        );
        assert_eq!(
            parse_set_line("squat 3x1001"),
            Err(SetLineError::RepsOutOfRange {
                word: "3x1001".to_owned()
            })
        );
        assert_eq!(
            parse_set_line("squat 99999999999999999999x5"),
            Err(SetLineError::SetsOutOfRange {
                word: "99999999999999999999x5".to_owned()
            })
        );
        assert_eq!(
            parse_set_line("squat 3x5 1000.01kg"),
            Err(SetLineError::WeightOutOfRange {
                word: "1000.01kg".to_owned()
            })
        );
        assert_eq!(
            parse_set_line("squat 3x5 99999999999999999999999kg"),
            Err(SetLineError::WeightOutOfRange {
                word: "99999999999999999999999kg".to_owned()
            })
        );
    }

    #[test]
    fn rejects_missing_exercise() {
        assert_eq!(
            parse_set_line("3x5 100kg"),
            Err(SetLineError::MissingExercise)
        );
        assert_eq!(parse_set_line("3x5"), Err(SetLineError::MissingExercise));
        assert_eq!(
            parse_set_line("3x5 squat"),
            Err(SetLineError::MissingExercise)
        );
    }

    #[test]
    fn rejects_long_exercise_name() {
        let line = format!("{} 3x5", "a".repeat(MAX_EXERCISE_CHARS + 1));

        assert_eq!(
            parse_set_line(&line),
            Err(SetLineError::ExerciseTooLong {
                chars: MAX_EXERCISE_CHARS + 1
            })
        );
    }

    #[test]
    fn rejects_invalid_weights() {
        let cases = [
            ("squat 3x5 100lb", "100lb"),
            ("squat 3x5 100", "100"),
            ("squat 3x5 abckg", "abckg"),
            ("squat 3x5 -5kg", "-5kg"),
            ("squat 3x5 62.555kg", "62.555kg"),
            ("squat 3x5 62.kg", "62.kg"),
            ("squat 3x5 .5kg", ".5kg"),
            ("squat 3x5 1.2.3kg", "1.2.3kg"),
            ("squat 3x5 abc kg", "abc kg"),
        ];
        for (line, word) in cases {
            assert_eq!(
                parse_set_line(line),
                Err(SetLineError::InvalidWeight {
                    word: word.to_owned()
                }),
                "{line}"
            );
        }
    }

    #[test]
    fn error_messages_show_format_or_example() {
        let errors = [
            SetLineError::Empty,
            SetLineError::MissingSetsAndReps,
            SetLineError::InvalidSetsAndReps {
                word: "3x".to_owned(),
            },
            SetLineError::SetsOutOfRange {
                word: "0x5".to_owned(),
            },
            SetLineError::RepsOutOfRange {
                word: "3x0".to_owned(),
            },
            SetLineError::MissingExercise,
            SetLineError::ExerciseTooLong { chars: 70 },
            SetLineError::InvalidWeight {
                word: "100lb".to_owned(),
            },
            SetLineError::WeightOutOfRange {
                word: "5000kg".to_owned(),
            },
        ];
        for error in errors {
            let message = error.to_string();
            assert!(
                message.contains("for example") || message.contains(FORMAT),
                "{message}"
            );
        }
    }

    #[test]
    fn error_message_texts() {
        assert_eq!(
            SetLineError::MissingSetsAndReps.to_string(),
            "I could not find the sets and reps. Send a set as \
             <exercise> <sets>x<reps> [<weight>kg], for example squat 3x5 100kg or pull-ups 3x8."
        );
        assert_eq!(
            SetLineError::InvalidSetsAndReps {
                word: "3x".to_owned()
            }
            .to_string(),
            "\"3x\" is not valid sets and reps. Write the number of sets, an x and \
             the number of reps, for example squat 3x5 100kg."
        );
        assert_eq!(
            SetLineError::SetsOutOfRange {
                word: "0x5".to_owned()
            }
            .to_string(),
            "The number of sets in \"0x5\" must be from 1 to 100, for example squat 3x5."
        );
    }

    #[test]
    fn quote_cuts_long_input() {
        assert_eq!(quote("3x"), "\"3x\"");
        assert_eq!(quote(&"9".repeat(30)), format!("\"{}…\"", "9".repeat(20)));
    }

    #[test]
    fn formats_kilograms() {
        assert_eq!(format_kilograms(0), "0");
        assert_eq!(format_kilograms(100_000), "100");
        assert_eq!(format_kilograms(62_500), "62.5");
        assert_eq!(format_kilograms(1_250), "1.25");
        assert_eq!(format_kilograms(1_830_000), "1830");
    }

    #[test]
    fn entry_volume_and_display() {
        let weighted = entry("squat", 3, 5, Some(62_500));
        let bodyweight = entry("pull-ups", 3, 8, None);

        assert_eq!(weighted.volume_grams(), 937_500);
        assert_eq!(bodyweight.volume_grams(), 0);
        assert_eq!(weighted.to_string(), "squat 3x5 62.5kg");
        assert_eq!(bodyweight.to_string(), "pull-ups 3x8");
    }

    #[test]
    fn maximum_volume_fits() {
        let heaviest = entry("squat", MAX_SETS, MAX_REPS, Some(MAX_WEIGHT_GRAMS));

        assert_eq!(heaviest.volume_grams(), 100_000_000_000);
    }
}
