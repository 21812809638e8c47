//! Splitting a command's arguments into words and numbers.

use std::fmt;
use std::str::FromStr;

/// The arguments of a command, split at whitespace.
///
/// ```
/// use flowbot_sdk::Args;
///
/// let args = Args::new("bench press 5");
///
/// assert_eq!(args.words(), ["bench", "press", "5"]);
/// assert_eq!(args.number::<u32>(2), Ok(5));
/// assert_eq!(args.rest(0), "bench press 5");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args<'a> {
    text: &'a str,
}

/// An error reading a command argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// There is no word at this zero-based position.
    Missing { index: usize },
    /// The word at this position is not a number of the requested type.
    NotANumber { index: usize, word: String },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Missing { index } => write!(f, "argument {} is missing", index + 1),
            ArgError::NotANumber { index, word } => {
                write!(f, "argument {} is not a valid number: {word:?}", index + 1)
            }
        }
    }
}

impl std::error::Error for ArgError {}

impl<'a> Args<'a> {
    /// Wraps a command's argument text, such as [`crate::Command::args`].
    pub fn new(text: &'a str) -> Self {
        Self { text: text.trim() }
    }

    /// Returns the argument text, trimmed.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Returns whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Returns the words, split at any Unicode whitespace.
    pub fn words(&self) -> Vec<&'a str> {
        self.text.split_whitespace().collect()
    }

    /// Returns the word at a zero-based position.
    pub fn word(&self, index: usize) -> Option<&'a str> {
        self.text.split_whitespace().nth(index)
    }

    /// Returns the number of words.
    pub fn len(&self) -> usize {
        self.text.split_whitespace().count()
    }

    /// Parses the word at a zero-based position as a number, or any other
    /// [`FromStr`] type.
    pub fn number<T: FromStr>(&self, index: usize) -> Result<T, ArgError> {
        let word = self.word(index).ok_or(ArgError::Missing { index })?;
        word.parse().map_err(|_| ArgError::NotANumber {
            index,
            word: word.to_owned(),
        })
    }

    /// Parses every word as a number.
    pub fn numbers<T: FromStr>(&self) -> Result<Vec<T>, ArgError> {
        (0..self.len()).map(|index| self.number(index)).collect()
    }

    /// Returns the text from the word at a zero-based position to the end,
    /// with its inner spacing kept; empty when there are fewer words.
    pub fn rest(&self, index: usize) -> &'a str {
        let mut remaining = self.text;
        for _ in 0..index {
            remaining = remaining.trim_start();
            match remaining.find(char::is_whitespace) {
                Some(end) => remaining = &remaining[end..],
                None => return "",
            }
        }
        remaining.trim_start()
    }

    /// Splits off the last word, returning the text before it (trimmed) and
    /// the word; `None` when there are no words. Suits commands whose free
    /// text comes first, such as `/log bench press 5`.
    pub fn split_last_word(&self) -> Option<(&'a str, &'a str)> {
        let start = self.text.rfind(char::is_whitespace).map_or(0, |position| {
            position
                + self.text[position..]
                    .chars()
                    .next()
                    .map_or(1, char::len_utf8)
        });
        let last = &self.text[start..];
        if last.is_empty() {
            return None;
        }
        Some((self.text[..start].trim_end(), last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_args_have_no_words() {
        let args = Args::new("   ");

        assert!(args.is_empty());
        assert_eq!(args.len(), 0);
        assert!(args.words().is_empty());
        assert_eq!(args.word(0), None);
        assert_eq!(args.split_last_word(), None);
        assert_eq!(args.rest(0), "");
    }

    #[test]
    fn words_split_at_any_whitespace() {
        let args = Args::new(" squat\t3x5 \u{a0}100kg\n");

        assert_eq!(args.words(), ["squat", "3x5", "100kg"]);
        assert_eq!(args.word(1), Some("3x5"));
        assert_eq!(args.len(), 3);
        assert_eq!(args.as_str(), "squat\t3x5 \u{a0}100kg");
    }

    #[test]
    fn number_parses_requested_type() {
        let args = Args::new("5 62.5 -3");

        assert_eq!(args.number::<u32>(0), Ok(5));
        assert_eq!(args.number::<f64>(1), Ok(62.5));
        assert_eq!(args.number::<i64>(2), Ok(-3));
    }

    #[test]
    fn number_reports_missing_word() {
        let args = Args::new("5");

        let error = args.number::<u32>(1).unwrap_err();

        assert_eq!(error, ArgError::Missing { index: 1 });
        assert_eq!(error.to_string(), "argument 2 is missing");
    }

    #[test]
    fn number_reports_invalid_word() {
        let args = Args::new("five 99999999999");

        let error = args.number::<u32>(0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "argument 1 is not a valid number: \"five\""
        );
        assert_eq!(
            args.number::<u32>(1),
            Err(ArgError::NotANumber {
                index: 1,
                word: "99999999999".to_owned(),
            })
        );
    }

    #[test]
    fn numbers_parses_every_word() {
        assert_eq!(Args::new("3 5 8").numbers::<u32>(), Ok(vec![3, 5, 8]));
        assert_eq!(
            Args::new("3 x").numbers::<u32>(),
            Err(ArgError::NotANumber {
                index: 1,
                word: "x".to_owned(),
            })
        );
    }

    #[test]
    fn rest_keeps_inner_spacing() {
        let args = Args::new("log  bench   press 5");

        assert_eq!(args.rest(0), "log  bench   press 5");
        assert_eq!(args.rest(1), "bench   press 5");
        assert_eq!(args.rest(3), "5");
        assert_eq!(args.rest(4), "");
    }

    #[test]
    fn split_last_word_separates_trailing_word() {
        assert_eq!(
            Args::new("bench press 5").split_last_word(),
            Some(("bench press", "5"))
        );
        assert_eq!(Args::new("squat").split_last_word(), Some(("", "squat")));
        assert_eq!(
            Args::new("Жим лёжа\u{a0}8").split_last_word(),
            Some(("Жим лёжа", "8"))
        );
    }
}
