//! Here-documents that `parse-dockerfile` does not take: a RUN whose here-document is not
//! its first word (`RUN cat <<EOF > /etc/motd`, `RUN python3 - <<'EOF'`). Their bodies are
//! lifted out of the text before parsing (the lines left blank, so every line number the
//! parser reports stays the file's), and the RUN step gives them back to the shell as
//! BuildKit does: the command line, then each body and its delimiter.

use std::collections::HashMap;

/// One here-document as written: its delimiter and its lines, each with its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub delimiter: String,
    pub body: String,
}

/// The Dockerfile with lifted bodies blanked, and the documents by the 0-based line on
/// which their RUN instruction starts.
#[derive(Debug, Default)]
pub struct Lifted {
    pub text: String,
    pub docs: HashMap<usize, Vec<Doc>>,
}

impl Lifted {
    /// The documents of the instruction starting at byte `start` of the lifted text.
    pub fn at(&self, start: usize) -> Option<&[Doc]> {
        let line = self.text[..start].matches('\n').count();
        self.docs.get(&line).map(Vec::as_slice)
    }
}

/// A here-document opener as BuildKit recognises one: a word of its own, `<<` (after an
/// optional fd number), an optional `-`, and a delimiter, quoted or not. Returns the
/// delimiter and whether leading tabs are stripped.
pub fn opener(word: &str) -> Option<(String, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let name = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest.strip_prefix(q)?.strip_suffix(q)?,
        _ => rest,
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    valid.then(|| (name.to_string(), strip_tabs))
}

/// The delimiters of the here-documents a line opens, in order.
pub fn names(line: &str) -> Vec<String> {
    line.split_whitespace()
        .filter_map(opener)
        .map(|(name, _)| name)
        .collect()
}

/// The escape character a Dockerfile's `# escape=` directive sets (directives are the
/// comment lines before anything else).
fn escape_of(text: &str) -> char {
    for line in text.lines() {
        let Some(d) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = d.split_once('=') else {
            break;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "escape" => return v.trim().chars().next().unwrap_or('\\'),
            "syntax" | "check" => continue,
            _ => break,
        }
    }
    '\\'
}

/// Lifts the bodies of the here-documents of RUN lines whose first command word is not
/// itself a here-document (those the parser reads).
pub fn lift(text: &str) -> Lifted {
    let escape = escape_of(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut docs = HashMap::new();
    let mut n = 0;
    while n < lines.len() {
        let first = n;
        let mut words: Vec<&str> = lines[n].split_whitespace().collect();
        let is_run = words.first().is_some_and(|w| w.eq_ignore_ascii_case("RUN"));
        // The instruction's logical line: continuation lines joined, comment lines inside
        // it skipped, as the parser does.
        out.push(lines[n].to_string());
        n += 1;
        let continues = |l: &str| l.trim_end().ends_with(escape);
        let mut last = lines[first];
        while continues(last) && n < lines.len() {
            if !lines[n].trim_start().starts_with('#') {
                words.extend(lines[n].split_whitespace());
                last = lines[n];
            }
            out.push(lines[n].to_string());
            n += 1;
        }
        if !is_run {
            continue;
        }
        let command: Vec<&str> = words[1..]
            .iter()
            .copied()
            .skip_while(|w| w.starts_with("--"))
            .collect();
        if command.first().is_none_or(|w| opener(w).is_some()) {
            continue;
        }
        let openers: Vec<(String, bool)> = command.iter().filter_map(|w| opener(w)).collect();
        let mut found = Vec::new();
        for (delimiter, strip_tabs) in openers {
            let mut body = String::new();
            while n < lines.len() {
                let l = lines[n];
                out.push("\n".repeat(l.ends_with('\n') as usize));
                n += 1;
                let bare = l.trim_end_matches(['\n', '\r']);
                let bare = if strip_tabs {
                    bare.trim_start_matches('\t')
                } else {
                    bare
                };
                if bare == delimiter {
                    break;
                }
                body.push_str(l);
            }
            found.push(Doc { delimiter, body });
        }
        if !found.is_empty() {
            docs.insert(first, found);
        }
    }
    Lifted {
        text: out.concat(),
        docs,
    }
}

/// The shell script of a RUN with lifted documents: the command line as written, then each
/// body and its delimiter.
pub fn script(command: &str, docs: &[Doc]) -> String {
    let mut s = command.to_string();
    for d in docs {
        s.push('\n');
        s.push_str(&d.body);
        if !d.body.is_empty() && !d.body.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&d.delimiter);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers_are_buildkits() {
        assert_eq!(opener("<<EOF"), Some(("EOF".into(), false)));
        assert_eq!(opener("<<-'A'"), Some(("A".into(), true)));
        assert_eq!(opener("0<<\"B\""), Some(("B".into(), false)));
        assert_eq!(opener("<<a.txt"), Some(("a.txt".into(), false)));
        for not in ["$((1<<2))", "<<<word", "<<", "<<'A", "cat"] {
            assert_eq!(opener(not), None, "{not}");
        }
        assert_eq!(names("COPY <<-'A' <<\"B\" /d/"), ["A", "B"]);
        assert!(names("COPY a b").is_empty());
    }

    #[test]
    fn bodies_after_the_command_are_lifted_keeping_line_numbers() {
        let text = "FROM busybox\nRUN cat <<EOF > /a && \\\n  cat <<-'X' > /b\nhello $HOME\nEOF\n\tworld\n\tX\nCMD [\"sh\"]\n";
        let l = lift(text);
        assert_eq!(l.text.lines().count(), text.lines().count());
        assert_eq!(
            l.text,
            "FROM busybox\nRUN cat <<EOF > /a && \\\n  cat <<-'X' > /b\n\n\n\n\nCMD [\"sh\"]\n"
        );
        let start = l.text.find("RUN").unwrap();
        let docs = l.at(start).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].body, "hello $HOME\n");
        assert_eq!(docs[1].body, "\tworld\n");
        assert_eq!(
            script("cat <<EOF > /a", &docs[..1]),
            "cat <<EOF > /a\nhello $HOME\nEOF"
        );
    }

    #[test]
    fn heredocs_the_parser_reads_are_left_alone() {
        for text in [
            "FROM x\nRUN <<EOF\necho hi\nEOF\n",
            "FROM x\nRUN --mount=type=cache,target=/c <<EOF sh\necho hi\nEOF\n",
            "FROM x\nCOPY <<EOF /f\nhi\nEOF\n",
            "FROM x\nRUN echo $((1<<2))\n",
        ] {
            let l = lift(text);
            assert_eq!(l.text, text);
            assert!(l.docs.is_empty(), "{text}");
        }
    }

    #[test]
    fn the_escape_directive_is_followed() {
        let text = "# escape=`\nFROM x\nRUN cat <<EOF `\n  > /f\nbody\nEOF\n";
        let l = lift(text);
        assert_eq!(l.docs.values().next().unwrap()[0].body, "body\n");
    }
}
