//! ps(1)'s table cut down to a set of pids: how `hull ps` and wharf's `top` show a
//! container's processes with whatever columns the ps options ask for.

/// The header and the lines of `table` whose PID column is one of `pids`; None when the
/// header has no PID column.
pub fn filter(table: &str, pids: &[i32]) -> Option<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let column = header.split_whitespace().position(|h| h == "PID")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_header_and_matching_pids() {
        let table = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 420 1 other\n";
        assert_eq!(
            super::filter(table, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert_eq!(super::filter("UID CMD\nroot sh\n", &[1]), None);
    }
}
