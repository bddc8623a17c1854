//! Measured values as people read them: "512 B", "964 ms", "1.24 s", "yes" — not "512.000
//! bytes" or "1.000 flag". Pure; the report's table and the checkers' words use it.

/// `value` in `unit` (`bytes`, `flag`, `ms`, `s`, `%`, or a count's noun), in the unit people
/// use for its size.
pub fn human(value: f64, unit: &str) -> String {
    match unit {
        "bytes" | "B" => bytes(value),
        "flag" => if value != 0.0 { "yes" } else { "no" }.into(),
        "ms" => millis(value),
        "s" => millis(value * 1e3),
        "%" => format!("{} %", number(value)),
        "" => number(value),
        noun => format!("{} {noun}", number(value)),
    }
}

/// A plain number: whole numbers without decimals, others with up to three significant ones.
fn number(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn bytes(v: f64) -> String {
    const K: f64 = 1024.0;
    match v.abs() {
        a if a < K => format!("{} B", number(v)),
        a if a < K * K => format!("{:.1} KiB", v / K),
        a if a < K * K * K => format!("{:.1} MiB", v / (K * K)),
        _ => format!("{:.2} GiB", v / (K * K * K)),
    }
}

fn millis(ms: f64) -> String {
    match ms.abs() {
        a if a >= 1000.0 => format!("{:.2} s", ms / 1e3),
        a if a >= 10.0 => format!("{ms:.0} ms"),
        a if a >= 1.0 => format!("{ms:.1} ms"),
        _ => format!("{} ms", number(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn values_read_in_the_units_people_use() {
        let cases = [
            (512.0, "bytes", "512 B"),
            (1536.0, "bytes", "1.5 KiB"),
            (3.5 * 1024.0 * 1024.0, "bytes", "3.5 MiB"),
            (1.0, "flag", "yes"),
            (0.0, "flag", "no"),
            (964.2, "ms", "964 ms"),
            (1.36, "ms", "1.4 ms"),
            (0.03, "ms", "0.03 ms"),
            (1240.0, "ms", "1.24 s"),
            (0.7, "s", "700 ms"),
            (14.2, "s", "14.20 s"),
            (50.0, "%", "50 %"),
            (12.5, "%", "12.5 %"),
            (3.0, "records", "3 records"),
            (0.0, "", "0"),
        ];
        for (value, unit, want) in cases {
            assert_eq!(human(value, unit), want, "{value} {unit}");
        }
    }
}
