//! Numbers as the programs stats sites compare us with print them: C's
//! `%f` (BOINC's exporter) and PHP's string conversion
//! (export_credit_by_app.php).

use std::io::Write as _;

/// C's `%f`: six decimals, `inf`/`-inf`/`nan` spelled as glibc does.
pub fn fixed6(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    // Whole numbers (most host sizes and speeds) print exactly from an
    // integer; the rest goes through std, whose fixed-precision formatting
    // is exact and rounds like glibc's.
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        if v == 0.0 && v.is_sign_negative() {
            out.push(b'-');
        }
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
        out.extend_from_slice(b".000000");
        return;
    }
    let _ = write!(out, "{v:.6}");
}

/// A sum as PHP 8 prints it in a string (`precision` 14): whole numbers
/// plainly (PHP sums the database's integral strings as ints), otherwise
/// up to 14 significant digits without trailing zeros, exponent form
/// (`1.0E+25`) when the rounded exponent is below -4 or above 13.
pub fn php_number(out: &mut Vec<u8>, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
        return;
    }
    if !v.is_finite() {
        out.extend_from_slice(if v.is_nan() {
            b"NAN"
        } else if v > 0.0 {
            b"INF"
        } else {
            b"-INF"
        });
        return;
    }
    // 14 significant digits, then decide the form by the exponent.
    let e = format!("{v:.13e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if neg {
        out.push(b'-');
    }
    if (-4..14).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.extend_from_slice(digits.as_bytes());
        } else {
            let point = exp as usize + 1;
            if digits.len() <= point {
                out.extend_from_slice(digits.as_bytes());
                for _ in digits.len()..point {
                    out.push(b'0');
                }
            } else {
                out.extend_from_slice(&digits.as_bytes()[..point]);
                out.push(b'.');
                out.extend_from_slice(&digits.as_bytes()[point..]);
            }
        }
    } else {
        out.extend_from_slice(&digits.as_bytes()[..1]);
        out.push(b'.');
        if digits.len() > 1 {
            out.extend_from_slice(&digits.as_bytes()[1..]);
        } else {
            out.push(b'0');
        }
        let _ = write!(out, "E{}{}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}
