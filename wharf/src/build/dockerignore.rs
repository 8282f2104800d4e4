//! `.dockerignore` with docker's rules: one Go-style pattern per line (`*`, `?`, `[...]`,
//! `**` for any number of directories, `\` escapes), `#` comments, `!` re-includes, paths
//! cleaned and taken relative to the context root; the last pattern that matches a path or
//! one of its parent directories decides.

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
            // The path itself or any of its parent directories (moby's
            // MatchesOrParentMatches, what docker's client applies since 20.10).
            let hit = p.re.is_match(&path)
                || (1..=parents.len()).any(|n| p.re.is_match(&parents[..n].join("/")));
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

    /// The vectors of moby's patternmatcher tests (`MatchesOrParentMatches`: a path or one
    /// of its parents matches), as data.
    #[test]
    fn mobys_matcher_vectors() {
        let yes = [
            ("**", "file"),
            ("**", "file/"),
            ("**/", "file"),
            ("**/", "file/"),
            ("**", "dir/file"),
            ("**/", "dir/file"),
            ("**/**", "dir/file"),
            ("dir/**", "dir/file"),
            ("dir/**", "dir/dir2/file"),
            ("**/dir", "dir"),
            ("**/dir", "dir/file"),
            ("**/dir2/*", "dir/dir2/file"),
            ("**/dir2/*", "dir/dir2/file/"),
            ("**/dir2/**", "dir/dir2/dir3/file"),
            ("**file", "file"),
            ("**file", "dir/file"),
            ("**/file", "dir/file"),
            ("**file", "dir/dir/file"),
            ("**/file*", "dir/dir/file.txt"),
            ("**/file*txt", "dir/dir/file.txt"),
            ("**/file*.txt*", "dir/dir/file.txt"),
            ("**/**/*.txt", "dir/dir/file.txt"),
            ("**/*.txt", "file.txt"),
            ("**/**/*.txt", "file.txt"),
            ("a**/*.txt", "a/file.txt"),
            ("a**/*.txt", "a/dir/dir/file.txt"),
            ("a/*.txt", "a/file.txt"),
            ("a/*.txt**", "a/file.txt"),
            ("a[b-d]e", "ace"),
            ("a[^b-d]e", "aze"),
            (".*", ".foo"),
            ("abc.def", "abc.def"),
            ("abc?def", "abcZdef"),
            ("**/foo/bar", "foo/bar"),
            ("**/foo/bar", "dir/dir2/foo/bar"),
            ("abc/**", "abc/def"),
            ("**/.foo", ".foo"),
            ("a(b)c/def", "a(b)c/def"),
            ("a.|)$(}+{bc", "a.|)$(}+{bc"),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ),
            ("a\\*b", "a*b"),
            ("*", "abc"),
            ("a*", "ab/c"),
            ("a*/b", "abc/b"),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f"),
            ("a*b?c*x", "abxbbxdbxebxczzx"),
            ("ab[^e-g]", "abc"),
            ("a?b", "a☺b"),
            ("*x", "xxx"),
        ];
        let no = [
            ("**/**/*.txt2", "dir/dir/file.txt"),
            ("a/*.txt", "a/dir/file.txt"),
            ("a[b-d]e", "ae"),
            ("a[b-d]e", "aae"),
            (".*", "foo"),
            ("abc.def", "abcdef"),
            ("abc.def", "abcZdef"),
            ("abc?def", "abcdef"),
            ("abc/**", "abc"),
            ("**/.foo", "bar.foo"),
            ("a(b)c/def", "a(b)c/xyz"),
            ("a*/b", "a/c/b"),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"),
            ("a*b?c*x", "abxbbxdbxebxczzy"),
            ("ab[e-g]", "abc"),
            ("ab[^c]", "abc"),
            ("a?b", "a/b"),
            ("a*b", "a/b"),
            ("a???b", "a☺b"),
        ];
        for (p, t) in yes {
            assert!(m(p).ignored(t), "{p:?} should match {t:?}");
        }
        for (p, t) in no {
            assert!(!m(p).ignored(t), "{p:?} should not match {t:?}");
        }
        assert!(!m("**\n!util/docker/web\n").ignored("util/docker/web/foo"));
        assert!(m("**\n!util/docker/web\nutil/docker/web/foo\n").ignored("util/docker/web/foo"));
        assert!(!m("**\n!dist/*.whl\n")
            .ignored("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"));
        assert!(!m("docs\n!docs/README.md\n").ignored("docs/README.md"));
        assert!(!m("*.go\n!fileutils.go\n").ignored("fileutils.go"));
        assert!(m("!fileutils.go\n*.go\n").ignored("fileutils.go"));
        for bad in ["[", "a[", "[^bc"] {
            assert!(Matcher::parse(bad).is_err(), "{bad:?} is a bad pattern");
        }
    }
}
