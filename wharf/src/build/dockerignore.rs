//! `.dockerignore` with docker's rules: one Go-style pattern per line (`*`, `?`, `[...]`,
//! `**` for any number of directories, `\` escapes), `#` comments, `!` re-includes, paths
//! cleaned and taken relative to the context root; the last pattern that matches a path, or
//! one of its parent directories cut to the pattern's depth, decides.

use regex::Regex;

#[derive(Debug, thiserror::Error)]
#[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Pattern {
    re: Regex,
    /// Components of the cleaned pattern: it is also tried on that many leading
    /// components of a path's parent directory.
    depth: usize,
    exclusion: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// Lexical cleaning as Go's `filepath.Clean`, without a leading `/`.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let err = |reason: &str| PatternError {
        pattern: pattern.to_string(),
        reason: reason.to_string(),
    };
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                i += 1;
                let n = chars.get(i).ok_or_else(|| err("trailing escape"))?;
                re.push_str(&regex::escape(&n.to_string()));
            }
            '[' => {
                let end = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or_else(|| err("unterminated character class"))?;
                let class: String = chars[i + 1..i + end].iter().collect();
                let class = match class.strip_prefix('^') {
                    Some(rest) => format!("^{}", rest.replace('\\', "\\\\")),
                    None => class.replace('\\', "\\\\"),
                };
                re.push('[');
                re.push_str(&class);
                re.push(']');
                i += end;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| err(&e.to_string()))
}

/// Go's `filepath.Match` of one name against one pattern (COPY's wildcards).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    compile(pattern).is_ok_and(|re| re.is_match(name))
}

impl Matcher {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let p = clean(p);
            if p == "." {
                continue;
            }
            patterns.push(Pattern {
                re: compile(&p)?,
                depth: p.split('/').count(),
                exclusion,
            });
        }
        Ok(Self { patterns })
    }

    /// Whether the path (relative to the context root, `/`-separated) is ignored.
    pub fn ignored(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path.split('/').collect();
        let parents = &parents[..parents.len().saturating_sub(1)];
        let mut ignored = false;
        for p in &self.patterns {
            let mut hit = p.re.is_match(&path);
            if !hit && !parents.is_empty() && p.depth <= parents.len() {
                hit = p.re.is_match(&parents[..p.depth].join("/"));
            }
            if hit {
                ignored = !p.exclusion;
            }
        }
        ignored
    }

    /// Whether any `!` pattern exists: an ignored directory must then still be walked,
    /// since something under it may be re-included.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn patterns_match_like_dockers() {
        // Cases from docker's documentation and its patternmatcher tests.
        let i = m("*/temp*\n*/*/temp*\ntemp?\n");
        assert!(i.ignored("somedir/temporary.txt"));
        assert!(i.ignored("somedir/temp"));
        assert!(i.ignored("somedir/subdir/temporary.txt"));
        assert!(i.ignored("tempa"));
        assert!(!i.ignored("tempab"));
        assert!(!i.ignored("temporary.txt"));
        let i = m("**/*.go\n");
        assert!(i.ignored("main.go"));
        assert!(i.ignored("a/b/c/main.go"));
        assert!(!i.ignored("a/main.rs"));
        let i = m("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(i.ignored("CHANGES.md"));
        assert!(!i.ignored("README.md"));
        assert!(i.ignored("README-secret.md"));
        // A directory's pattern covers everything under it.
        let i = m("node_modules\n/build/\n");
        assert!(i.ignored("node_modules"));
        assert!(i.ignored("node_modules/x/y.js"));
        assert!(i.ignored("build/out.o"));
        assert!(!i.ignored("src/build.rs"));
        let i = m("docs/**\n!docs/keep.txt\n");
        assert!(i.ignored("docs/a.txt"));
        assert!(!i.ignored("docs/keep.txt"));
        assert!(i.has_exclusions());
        let i = m("# comment\n\n  \na[bc]d\n\\*star\n");
        assert!(i.ignored("abd"));
        assert!(!i.ignored("aed"));
        assert!(i.ignored("*star"));
        assert!(!i.ignored("xstar"));
        let i = m("a/../b\n./c\n");
        assert!(i.ignored("b"));
        assert!(i.ignored("c"));
        assert!(Matcher::parse("[abc\n").is_err());
    }
}
