//! Why a scenario could not be used: [`ScenarioError`], with the file:line:column it is about.
//! Its own module, below `load`, `compose` and the builder that all make one: `load` uses
//! `compose`, so the error cannot live in `load` without an import circle.

use std::ops::Range;
use std::path::PathBuf;

/// Why a scenario file could not be used. Every variant says where and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read the file: {source} (check the path; `aftershock suite` runs every file in scenarios/)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    At {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ScenarioError {
    /// An error at a byte range of `source`.
    pub(crate) fn at(file: &str, source: &str, span: Range<usize>, message: String) -> Self {
        let (line, column) = line_column(source, span.start);
        ScenarioError::At {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
