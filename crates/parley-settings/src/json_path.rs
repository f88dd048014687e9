//! The JSON paths of seed 001's custom TURN provider, in JavaScript's dot
//! notation: `data[0].urls`, `data.iceServers[].urls`, `v.iceServers.urls[]`.
//! `[n]` picks one element, `[]` every element.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object key.
    Key(String),
    /// One array element.
    Index(usize),
    /// Every array element.
    Each,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(pub Vec<Step>);

impl JsonPath {
    /// Parses `a.b[0].c[]`.
    pub fn parse(raw: &str) -> Result<JsonPath, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("the path is empty; e.g. data.iceServers[].urls".into());
        }
        let mut steps = Vec::new();
        for part in raw.split('.') {
            let (key, mut brackets) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && brackets.is_empty() {
                return Err(format!(
                    "{raw:?} has an empty step (two dots, or a dot at an end)"
                ));
            }
            if !key.is_empty() {
                if !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'$')
                {
                    return Err(format!("{key:?} in {raw:?} is not a plain key"));
                }
                steps.push(Step::Key(key.to_owned()));
            }
            while !brackets.is_empty() {
                let close = brackets
                    .find(']')
                    .ok_or_else(|| format!("a [ in {raw:?} is not closed"))?;
                let inside = &brackets[1..close];
                if inside.is_empty() {
                    steps.push(Step::Each);
                } else {
                    let n = inside.parse::<usize>().map_err(|_| {
                        format!("[{inside}] in {raw:?} is not an index; use [0] or []")
                    })?;
                    steps.push(Step::Index(n));
                }
                brackets = &brackets[close + 1..];
                if !brackets.is_empty() && !brackets.starts_with('[') {
                    return Err(format!("unexpected {brackets:?} in {raw:?}"));
                }
            }
        }
        Ok(JsonPath(steps))
    }

    /// Every value the path reaches.
    pub fn select<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Key(k) => next.extend(v.get(k)),
                    Step::Index(i) => next.extend(v.get(*i)),
                    Step::Each => {
                        if let Value::Array(items) = v {
                            next.extend(items.iter());
                        }
                    }
                }
            }
            current = next;
        }
        current
    }

    /// Every string reached, arrays of strings flattened (for URLs).
    pub fn strings(&self, root: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.select(root) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Array(items) => {
                    out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                }
                _ => {}
            }
        }
        out
    }

    /// The first string reached (for a username or password).
    pub fn first_string(&self, root: &Value) -> Option<String> {
        self.strings(root).into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> JsonPath {
        JsonPath::parse(s).unwrap()
    }

    #[test]
    fn the_seed_examples_work() {
        let xirsys = serde_json::json!({"v": {"iceServers": {"username": "u", "urls": ["turn:a", "turn:b"], "credential": "c"}}, "s": "ok"});
        assert_eq!(
            p("v.iceServers.urls[]").strings(&xirsys),
            vec!["turn:a", "turn:b"]
        );
        assert_eq!(
            p("v.iceServers.urls").strings(&xirsys),
            vec!["turn:a", "turn:b"]
        );
        assert_eq!(
            p("v.iceServers.username").first_string(&xirsys).as_deref(),
            Some("u")
        );

        let list = serde_json::json!({"data": [{"urls": "turn:x", "username": "ux", "credential": "cx"}, {"urls": ["turn:y"]}]});
        assert_eq!(p("data[0].urls").strings(&list), vec!["turn:x"]);
        assert_eq!(p("data[].urls").strings(&list), vec!["turn:x", "turn:y"]);
        assert_eq!(
            p("data[0].credential").first_string(&list).as_deref(),
            Some("cx")
        );

        let nested = serde_json::json!({"data": {"iceServers": [{"urls": ["stun:s"]}, {"urls": ["turn:t"]}]}});
        assert_eq!(
            p("data.iceServers[].urls").strings(&nested),
            vec!["stun:s", "turn:t"]
        );
        assert!(p("data.missing").strings(&nested).is_empty());
    }

    #[test]
    fn malformed_paths_are_explained() {
        for bad in ["", "a..b", ".a", "a[", "a[x]", "a[0]b", "a b"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
