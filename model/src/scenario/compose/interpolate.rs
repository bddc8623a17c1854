//! `${VAR}` interpolation as Compose does it (the compose-spec's "Interpolation"): `$VAR`,
//! `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?error}`,
//! `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}`, `$$` for a literal `$`; a
//! default may itself hold `${…}`. An unset variable without a default is the empty string.

use super::error::ComposeError;

/// Replaces every variable of `text` with its value from `lookup`; `Err` for a `?` form whose
/// variable is missing (its message) or a `${` without its `}`.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ComposeError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end =
                closing_brace(body).ok_or_else(|| ComposeError::Unclosed { text: text.into() })?;
            out.push_str(&braced(&body[..end], lookup)?);
            rest = &body[end + 1..];
        } else {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..name_len]).unwrap_or_default());
            }
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${`, counting nested `${…}`.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The value of `NAME`, `NAME:-default`, `NAME?error`, … (the inside of `${…}`).
fn braced(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ComposeError> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, op) = body.split_at(name_len);
    if name.is_empty() {
        let body = body.into();
        return Err(ComposeError::NoVariable { body });
    }
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (colon, op) = match op.strip_prefix(':') {
        Some(op) => (true, op),
        None => (false, op),
    };
    // With a colon the test is "set and not empty", without it "set".
    let present = if colon { set_nonempty } else { value.is_some() };
    let Some(kind) = op.chars().next() else {
        if colon {
            let body = body.into();
            return Err(ComposeError::BareColon { body });
        }
        return Ok(value.unwrap_or_default());
    };
    let arg = &op[kind.len_utf8()..];
    match kind {
        '-' if present => Ok(value.unwrap_or_default()),
        '-' => interpolate(arg, lookup),
        '?' if present => Ok(value.unwrap_or_default()),
        '?' => Err(ComposeError::Required {
            name: name.into(),
            message: interpolate(arg, lookup)?,
        }),
        '+' if present => interpolate(arg, lookup),
        '+' => Ok(String::new()),
        _ => Err(ComposeError::Operator {
            body: body.into(),
            name: name.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::interpolate;

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("15".into()),
            "EMPTY" => Some(String::new()),
            "HOST" => Some("db".into()),
            _ => None,
        }
    }

    fn i(text: &str) -> Result<String, String> {
        interpolate(text, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(i("postgres:${TAG}").unwrap(), "postgres:15");
        assert_eq!(i("postgres:$TAG-x").unwrap(), "postgres:15-x");
        assert_eq!(i("${UNSET}").unwrap(), "");
        assert_eq!(i("no vars").unwrap(), "no vars");
    }

    #[test]
    fn defaults_follow_compose() {
        assert_eq!(i("${UNSET:-5432}").unwrap(), "5432");
        assert_eq!(i("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY-d}").unwrap(), "");
        assert_eq!(i("${UNSET-d}").unwrap(), "d");
        assert_eq!(i("${TAG:-d}").unwrap(), "15");
        assert_eq!(i("${UNSET:-${HOST}:5432}").unwrap(), "db:5432");
    }

    #[test]
    fn alternatives_and_required() {
        assert_eq!(i("${TAG:+set}").unwrap(), "set");
        assert_eq!(i("${EMPTY:+set}").unwrap(), "");
        assert_eq!(i("${EMPTY+set}").unwrap(), "set");
        let e = i("${PASSWORD:?give a password}").unwrap_err();
        assert!(
            e.contains("PASSWORD") && e.contains("give a password"),
            "{e}"
        );
        assert_eq!(i("${TAG?x}").unwrap(), "15");
    }

    #[test]
    fn dollars_escape_and_mistakes() {
        assert_eq!(i("$$HOME and $").unwrap(), "$HOME and $");
        assert_eq!(i("a $$${TAG}").unwrap(), "a $15");
        assert!(i("${TAG").unwrap_err().contains("without"));
        assert!(i("${}").is_err());
        assert!(i("${TAG:x}").is_err());
    }
}
