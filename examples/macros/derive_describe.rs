//! `#[derive(Describe)]` implemented with nothing but the `proc_macro` crate.
//!
//! The input token stream is walked by hand to find the struct name and its
//! fields; the impl is generated as a string and parsed back into tokens.

use proc_macro::{Delimiter, Spacing, TokenStream, TokenTree};

/// Derives `describe::Describe` for a non-generic struct (named, tuple or unit).
#[proc_macro_derive(Describe)]
pub fn derive_describe(input: TokenStream) -> TokenStream {
    let code = match parse_struct(input) {
        Ok(item) => expand(&item),
        Err(msg) => format!("::core::compile_error!({:?});", msg),
    };
    code.parse()
        .expect("derive(Describe) generated invalid Rust")
}

enum Fields {
    Named(Vec<String>),
    Tuple(usize),
    Unit,
}

struct Item {
    name: String,
    fields: Fields,
}

fn parse_struct(input: TokenStream) -> Result<Item, String> {
    let mut tokens = input.into_iter();

    // Skip outer attributes (`#[...]`) and visibility (`pub`, `pub(crate)`)
    // until the `struct` keyword.
    loop {
        match tokens.next() {
            Some(TokenTree::Ident(ident)) => match ident.to_string().as_str() {
                "struct" => break,
                "enum" | "union" => {
                    return Err("#[derive(Describe)] only supports structs".to_string())
                }
                _ => {}
            },
            Some(_) => {}
            None => return Err("#[derive(Describe)] expected a struct".to_string()),
        }
    }

    let name = match tokens.next() {
        Some(TokenTree::Ident(ident)) => ident.to_string(),
        _ => return Err("#[derive(Describe)] expected a struct name".to_string()),
    };

    let fields = match tokens.next() {
        Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Brace => {
            let mut names = Vec::new();
            for field in split_top_level(group.stream()) {
                names.push(named_field(field)?);
            }
            Fields::Named(names)
        }
        Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Parenthesis => {
            Fields::Tuple(split_top_level(group.stream()).len())
        }
        Some(TokenTree::Punct(punct)) if punct.as_char() == ';' => Fields::Unit,
        Some(TokenTree::Punct(punct)) if punct.as_char() == '<' => {
            return Err("#[derive(Describe)] does not support generic structs".to_string())
        }
        _ => return Err("#[derive(Describe)] could not parse the struct body".to_string()),
    };

    Ok(Item { name, fields })
}

/// Splits a field list at top-level commas. Commas inside groups are already
/// hidden by the token tree; commas inside `<...>` are tracked by hand.
fn split_top_level(stream: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut angle_depth = 0usize;
    let mut after_joint_dash = false;
    for tree in stream {
        let mut joint_dash = false;
        if let TokenTree::Punct(punct) = &tree {
            match punct.as_char() {
                '<' => angle_depth += 1,
                // `->` (as in `fn(u8) -> u8`) is not a closing angle bracket.
                '>' if !after_joint_dash => angle_depth = angle_depth.saturating_sub(1),
                ',' if angle_depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    after_joint_dash = false;
                    continue;
                }
                '-' => joint_dash = punct.spacing() == Spacing::Joint,
                _ => {}
            }
        }
        after_joint_dash = joint_dash;
        current.push(tree);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// Extracts the field name from `#[attr] pub(crate) name: Type`.
fn named_field(tokens: Vec<TokenTree>) -> Result<String, String> {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            // Attribute: `#` followed by a `[...]` group.
            TokenTree::Punct(punct) if punct.as_char() == '#' => {
                iter.next();
            }
            // Visibility restriction such as `(crate)` after `pub`.
            TokenTree::Group(_) => {}
            TokenTree::Ident(ident) => {
                let text = ident.to_string();
                if text == "pub" {
                    continue;
                }
                return match iter.peek() {
                    Some(TokenTree::Punct(punct)) if punct.as_char() == ':' => Ok(text),
                    _ => Err(format!(
                        "#[derive(Describe)] expected `:` after field `{}`",
                        text
                    )),
                };
            }
            _ => break,
        }
    }
    Err("#[derive(Describe)] could not find a field name".to_string())
}

fn expand(item: &Item) -> String {
    let name = &item.name;
    let body = match &item.fields {
        Fields::Unit => format!("::std::string::String::from({:?})", name),
        Fields::Named(fields) if fields.is_empty() => {
            format!(
                "::std::string::String::from({:?})",
                format!("{} {{}}", name)
            )
        }
        Fields::Tuple(0) => format!("::std::string::String::from({:?})", format!("{}()", name)),
        Fields::Named(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|field| {
                    let label = field.trim_start_matches("r#");
                    format!(
                        "::std::format!({:?}, self.{})",
                        format!("{}: {{:?}}", label),
                        field
                    )
                })
                .collect();
            format!(
                "::std::format!({:?}, [{}].join(\", \"))",
                format!("{} {{{{ {{}} }}}}", name),
                parts.join(", ")
            )
        }
        Fields::Tuple(count) => {
            let parts: Vec<String> = (0..*count)
                .map(|index| format!("::std::format!(\"{{:?}}\", self.{})", index))
                .collect();
            format!(
                "::std::format!({:?}, [{}].join(\", \"))",
                format!("{}({{}})", name),
                parts.join(", ")
            )
        }
    };
    format!(
        "impl ::describe::Describe for {name} {{\n\
         \x20   fn type_label(&self) -> &'static str {{ {label:?} }}\n\
         \x20   fn describe(&self) -> ::std::string::String {{ {body} }}\n\
         }}\n",
        name = name,
        label = name,
        body = body,
    )
}
