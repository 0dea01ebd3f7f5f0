//! Documents shown as text: JSON pretty-printed with syntax colouring, anything else verbatim.
//! Everything is rendered as text nodes, never as HTML, so a payload holding `<script>` is inert.

use leptos::prelude::*;

/// Kinds of JSON token, used as CSS classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Key,
    Str,
    Num,
    Lit,
    Punct,
}

impl Token {
    fn class(self) -> &'static str {
        match self {
            Token::Key => "j-key",
            Token::Str => "j-str",
            Token::Num => "j-num",
            Token::Lit => "j-lit",
            Token::Punct => "j-punct",
        }
    }
}

/// Splits pretty-printed JSON into coloured runs. Whitespace goes with punctuation.
pub fn tokenize(pretty: &str) -> Vec<(Token, String)> {
    let chars: Vec<char> = pretty.chars().collect();
    let mut out: Vec<(Token, String)> = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<(Token, String)>, kind: Token, text: String| match out.last_mut() {
        Some((k, t)) if *k == kind && kind == Token::Punct => t.push_str(&text),
        _ => out.push((kind, text)),
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            let text: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let kind = if chars.get(j) == Some(&':') { Token::Key } else { Token::Str };
            push(&mut out, kind, text);
        } else if c == '-' || c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || "+-.eE".contains(chars[i])) {
                i += 1;
            }
            push(&mut out, Token::Num, chars[start..i].iter().collect());
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            push(&mut out, Token::Lit, chars[start..i].iter().collect());
        } else {
            push(&mut out, Token::Punct, c.to_string());
            i += 1;
        }
    }
    out
}

/// Pretty JSON when `text` parses as JSON, else `None`.
pub fn pretty_json(text: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(text).ok().and_then(|v| serde_json::to_string_pretty(&v).ok())
}

/// Lines above which a document starts collapsed.
const COLLAPSE_LINES: usize = 60;

/// A document viewer: coloured JSON or plain text, collapsible when long, with a copy button.
#[component]
pub fn DocumentView(
    /// What the viewer is labelled with (e.g. "Payload").
    label: &'static str,
    text: String,
    #[prop(optional)] test_id: &'static str,
) -> impl IntoView {
    let pretty = pretty_json(&text);
    let shown = pretty.clone().unwrap_or_else(|| text.clone());
    let lines = shown.lines().count();
    let body = match pretty {
        Some(p) => tokenize(&p)
            .into_iter()
            .map(|(kind, t)| view! { <span class=kind.class()>{t}</span> })
            .collect_view()
            .into_any(),
        None => view! { <span>{text}</span> }.into_any(),
    };
    let copy_text = shown.clone();
    view! {
        <details class="document" open=lines <= COLLAPSE_LINES data-test=test_id>
            <summary>
                <span class="strong">{label}</span>
                <span class="muted small">{format!(" {lines} lines")}</span>
            </summary>
            <div class="document-tools">
                <super::copy::CopyButton text=copy_text label="Copy"/>
            </div>
            <pre class="code" tabindex="0">{body}</pre>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_keys_strings_numbers_and_literals() {
        let pretty = pretty_json(r#"{"a":"<script>x</script>","n":-1.5e3,"ok":true,"z":null}"#).unwrap();
        let tokens = tokenize(&pretty);
        let of =
            |kind| tokens.iter().filter(|(k, _)| *k == kind).map(|(_, t)| t.as_str()).collect::<Vec<_>>();
        assert_eq!(of(Token::Key), ["\"a\"", "\"n\"", "\"ok\"", "\"z\""]);
        assert_eq!(of(Token::Str), ["\"<script>x</script>\""]);
        assert_eq!(of(Token::Num), ["-1500.0"]);
        assert_eq!(of(Token::Lit), ["true", "null"]);
        let rebuilt: String = tokens.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(rebuilt, pretty, "nothing lost or added");
    }

    #[test]
    fn keys_keep_the_order_they_were_sent_in() {
        let pretty = pretty_json(r#"{"zeta":1,"alpha":{"y":2,"b":3}}"#).unwrap();
        let keys: Vec<String> =
            tokenize(&pretty).into_iter().filter(|(k, _)| *k == Token::Key).map(|(_, t)| t).collect();
        assert_eq!(keys, ["\"zeta\"", "\"alpha\"", "\"y\"", "\"b\""]);
    }

    #[test]
    fn escaped_quotes_stay_inside_strings() {
        let tokens = tokenize(r#"{"k": "say \"hi\""}"#);
        let strings: Vec<&(Token, String)> = tokens.iter().filter(|(k, _)| *k == Token::Str).collect();
        assert_eq!(strings, [&(Token::Str, r#""say \"hi\"""#.to_owned())]);
        assert!(pretty_json("not json <b>").is_none());
    }
}
