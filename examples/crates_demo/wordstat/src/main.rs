//! wordstat: statistics of text files or of built-in sample texts, as JSON or plain text.

use anyhow::{Context, Result};
use clap::Parser;
use rayon::prelude::*;

const SAMPLES: [&str; 3] = [
    "It was the best of times, it was the worst of times.\nIt was the age of wisdom.\n",
    "Call me Ishmael. Some years ago, never mind how long precisely.\n",
    "Happy families are all alike; every unhappy family is unhappy in its own way.\n",
];

#[derive(Parser, Debug)]
#[command(name = "wordstat", version, about)]
struct Args {
    /// Files to read; the built-in samples when none are given.
    files: Vec<String>,
    /// How many of the most frequent words to show.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Also count matches of this regular expression.
    #[arg(long)]
    pattern: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let texts: Vec<(String, String)> = if args.files.is_empty() {
        SAMPLES.iter().enumerate().map(|(i, t)| (format!("sample{}", i + 1), t.to_string())).collect()
    } else {
        args.files
            .iter()
            .map(|f| Ok((f.clone(), std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?)))
            .collect::<Result<_>>()?
    };
    let results: Vec<_> = texts
        .par_iter()
        .map(|(name, text)| -> Result<_> {
            let stats = textlib::analyze(text, args.top).with_context(|| format!("analyzing {name}"))?;
            let matches = match &args.pattern {
                Some(p) => Some(textlib::count_matches(text, p)?),
                None => None,
            };
            Ok((name.clone(), stats, matches))
        })
        .collect::<Result<_>>()?;
    for (name, stats, matches) in results {
        if args.json {
            let value = serde_json::json!({"name": name, "stats": stats, "matches": matches});
            println!("{}", serde_json::to_string(&value)?);
        } else {
            let top: Vec<String> = stats.top_words.iter().map(|(w, c)| format!("{w}={c}")).collect();
            let matched = matches.map(|m| format!(" matches={m}")).unwrap_or_default();
            println!(
                "{name}: lines={} words={} longest={} top=[{}]{matched}",
                stats.lines,
                stats.words,
                stats.longest_word,
                top.join(", ")
            );
        }
    }
    Ok(())
}
