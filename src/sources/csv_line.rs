//! Line numbers of CSV records, for errors that name `file:line` in files users write.

/// The line a record starts on. The reader's position is taken before the blank lines it skips
/// ahead of a record, so those are counted here.
pub fn line_of(text: &str, position: &csv::Position) -> usize {
    let skipped = text
        .as_bytes()
        .get(position.byte() as usize..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count();
    position.line() as usize + skipped
}
