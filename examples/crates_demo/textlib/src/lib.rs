//! Text statistics: word counts, pattern matches and line scanning.

use std::collections::BTreeMap;

use once_cell::sync::Lazy;
use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

static WORD: Lazy<Regex> = Lazy::new(|| Regex::new(r"[A-Za-z']+").expect("valid word pattern"));

/// Statistics of one text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub lines: usize,
    pub words: usize,
    pub longest_word: String,
    pub top_words: Vec<(String, usize)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TextError {
    #[error("empty input")]
    Empty,
    #[error("invalid pattern `{0}`: {1}")]
    BadPattern(String, String),
}

/// Word and line counts with the `top` most frequent words (ties broken alphabetically).
pub fn analyze(text: &str, top: usize) -> Result<Stats, TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for word in WORD.find_iter(text) {
        *counts.entry(word.as_str().to_lowercase()).or_default() += 1;
    }
    let longest_word = counts
        .keys()
        .fold(String::new(), |best, w| if w.len() > best.len() { w.clone() } else { best });
    let mut ranked: Vec<(String, usize)> = counts.iter().map(|(w, c)| (w.clone(), *c)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(top);
    log::debug!("analyzed {} distinct words", counts.len());
    Ok(Stats {
        lines: memchr::memchr_iter(b'\n', text.as_bytes()).count() + usize::from(!text.ends_with('\n')),
        words: counts.values().sum(),
        longest_word,
        top_words: ranked,
    })
}

/// How often `pattern` (a regular expression) matches `text`.
pub fn count_matches(text: &str, pattern: &str) -> Result<usize, TextError> {
    let regex = Regex::new(pattern).map_err(|e| TextError::BadPattern(pattern.to_string(), e.to_string()))?;
    Ok(regex.find_iter(text).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_and_lines() {
        let stats = analyze("the cat\nthe dog\n", 2).unwrap();
        assert_eq!(stats.lines, 2);
        assert_eq!(stats.words, 4);
        assert_eq!(stats.top_words, vec![("the".to_string(), 2), ("cat".to_string(), 1)]);
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(analyze("  \n", 3), Err(TextError::Empty));
    }

    #[test]
    fn bad_pattern_is_reported() {
        assert!(matches!(count_matches("x", "("), Err(TextError::BadPattern(_, _))));
        assert_eq!(count_matches("a1b22c333", r"\d+").unwrap(), 3);
    }

    #[test]
    fn stats_round_trip_through_serde() {
        let stats = analyze("hello world", 1).unwrap();
        let text = format!("{stats:?}");
        assert!(text.contains("hello"));
    }
}
