//! A builder for inline keyboards.

use crate::Button;

/// Maximum length of a button's callback data in bytes, set by Telegram.
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// An inline keyboard under construction: rows of buttons, filled left to
/// right and top to bottom.
///
/// ```
/// use flowbot_sdk::Keyboard;
///
/// let keyboard = Keyboard::new()
///     .button("Finish", "finish")
///     .button("Cancel", "cancel")
///     .row()
///     .button("Help", "help");
///
/// assert_eq!(keyboard.rows().len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keyboard {
    rows: Vec<Vec<Button>>,
}

impl Keyboard {
    /// Creates an empty keyboard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a button to the end of the current row.
    ///
    /// # Panics
    ///
    /// Panics when `data` is empty or longer than 64 bytes, because Telegram
    /// rejects such buttons. Callback data should be built from ids, never
    /// from user text.
    pub fn button(mut self, text: impl Into<String>, data: impl Into<String>) -> Self {
        let data = data.into();
        assert!(
            !data.is_empty() && data.len() <= MAX_CALLBACK_DATA_BYTES,
            "callback data must be 1 to {MAX_CALLBACK_DATA_BYTES} bytes, got {} bytes: {data:?}",
            data.len()
        );

        let button = Button {
            text: text.into(),
            data,
        };
        match self.rows.last_mut() {
            Some(row) => row.push(button),
            None => self.rows.push(vec![button]),
        }
        self
    }

    /// Ends the current row, so the next button starts a new one. Ending an
    /// empty row does nothing.
    pub fn row(mut self) -> Self {
        if self.rows.last().is_some_and(|row| !row.is_empty()) {
            self.rows.push(Vec::new());
        }
        self
    }

    /// Returns the rows built so far, without a trailing empty row.
    pub fn rows(&self) -> &[Vec<Button>] {
        match self.rows.split_last() {
            Some((last, rest)) if last.is_empty() => rest,
            _ => &self.rows,
        }
    }

    /// Returns whether the keyboard has no buttons.
    pub fn is_empty(&self) -> bool {
        self.rows().is_empty()
    }

    /// Converts the keyboard into the WIT `keyboard` type.
    pub fn into_rows(mut self) -> Vec<Vec<Button>> {
        if self.rows.last().is_some_and(Vec::is_empty) {
            self.rows.pop();
        }
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn button(text: &str, data: &str) -> Button {
        Button {
            text: text.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn buttons_fill_one_row() {
        let rows = Keyboard::new()
            .button("A", "a")
            .button("B", "b")
            .into_rows();

        assert_eq!(rows, vec![vec![button("A", "a"), button("B", "b")]]);
    }

    #[test]
    fn row_starts_a_new_row() {
        let rows = Keyboard::new()
            .button("A", "a")
            .row()
            .button("B", "b")
            .button("C", "c")
            .into_rows();

        assert_eq!(
            rows,
            vec![
                vec![button("A", "a")],
                vec![button("B", "b"), button("C", "c")]
            ]
        );
    }

    #[test]
    fn trailing_and_repeated_rows_add_nothing() {
        let keyboard = Keyboard::new().row().button("A", "a").row().row();

        assert_eq!(keyboard.rows(), &[vec![button("A", "a")]]);
        assert_eq!(keyboard.into_rows(), vec![vec![button("A", "a")]]);
    }

    #[test]
    fn empty_keyboard_has_no_rows() {
        let keyboard = Keyboard::new().row();

        assert!(keyboard.is_empty());
        assert!(keyboard.into_rows().is_empty());
    }

    #[test]
    fn data_of_64_bytes_is_accepted() {
        let data = "d".repeat(64);

        let rows = Keyboard::new().button("A", data.clone()).into_rows();

        assert_eq!(rows[0][0].data, data);
    }

    #[test]
    #[should_panic(expected = "callback data must be 1 to 64 bytes, got 65 bytes")]
    fn data_over_64_bytes_panics() {
        let _ = Keyboard::new().button("A", "d".repeat(65));
    }

    #[test]
    #[should_panic(expected = "callback data must be 1 to 64 bytes, got 0 bytes")]
    fn empty_data_panics() {
        let _ = Keyboard::new().button("A", "");
    }
}
