//! CSV exports (1Password, LastPass): the csv crate reads them (quoted
//! fields, embedded commas, quotes and newlines, a UTF-8 BOM); this module
//! turns them into rows addressed by column name, each with the line it
//! began on. Errors name lines, never content.

use zeroize::Zeroizing;

/// A CSV file: its header (lower-cased, trimmed) and its rows.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

/// One row: where it began, its cells (wiped when dropped).
pub struct Row {
    pub line: u64,
    pub cells: Vec<Zeroizing<String>>,
}

impl Table {
    /// The column named one of `names`, if any.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        self.header.iter().position(|h| names.contains(&h.as_str()))
    }

    /// The cell of `row` in column `col` (`""` when absent).
    pub fn take(row: &mut Row, col: Option<usize>) -> String {
        col.and_then(|c| row.cells.get_mut(c))
            .map(|cell| std::mem::take(&mut **cell))
            .unwrap_or_default()
    }
}

/// The header line of `text`, lower-cased, for format detection.
pub fn header_of(text: &[u8]) -> Option<Vec<String>> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text);
    let h = r.headers().ok()?;
    Some(h.iter().map(|c| c.trim().to_ascii_lowercase()).collect())
}

/// Reads `text` as CSV with a header row.
pub fn read(text: &[u8]) -> Result<Table, String> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text);
    let header = r
        .headers()
        .map_err(|e| describe(&e))?
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match r.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let cells = record
                    .iter()
                    .map(|c| Zeroizing::new(c.to_string()))
                    .collect();
                rows.push(Row { line, cells });
            }
            Err(e) => return Err(describe(&e)),
        }
    }
    Ok(Table { header, rows })
}

/// A csv error as a line number and a kind; the crate's own text is not
/// shown (it is about positions, but stays out on principle).
fn describe(e: &csv::Error) -> String {
    let line = e.position().map(|p| p.line());
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => format!("{at}not UTF-8 text"),
        csv::ErrorKind::Io(io) => format!("cannot read it: {io}"),
        _ => format!("{at}not valid CSV"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_know_their_first_line() {
        let t = read(b"\xEF\xBB\xBFTitle,Notes\nA,\"one\ntwo, \"\"three\"\"\"\nB,x\n").unwrap();
        assert_eq!(t.header, ["title", "notes"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!((t.rows[0].line, t.rows[1].line), (2, 4));
        assert_eq!(t.rows[0].cells[1].as_str(), "one\ntwo, \"three\"");
        let e = read(b"a,b\nx,\xff\n").err().unwrap();
        assert_eq!(e, "line 2: not UTF-8 text");
    }
}
